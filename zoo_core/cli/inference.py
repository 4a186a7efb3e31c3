"""Inference: ``zoo generate`` (text or a picture of samples), ``zoo predict`` (classes),
``zoo translate`` (a target text for each source text)."""

from __future__ import annotations

from pathlib import Path

import click

from zoo_core.cli._output import print_json
from zoo_core.errors import ZooError
from zoo_core.inference import PictureOptions, PredictOptions, SamplingOptions, TranslateOptions

_MAX_LISTED = 20  # unreadable inputs named one by one, before a count of the rest


@click.command()
@click.argument("source")
@click.option("--prompt", default="", help="Text to continue.")
@click.option("--length", type=int, default=300, show_default=True, help="New tokens.")
@click.option("--temperature", type=float, default=0.8, show_default=True)
@click.option("--top-k", type=int, help="Sample among the k likeliest tokens (0: all).")
@click.option("--top-p", type=float, help="Sample among the likeliest tokens holding this mass.")
@click.option("--stop", help="Stop when this text is generated.")
@click.option("--seed", type=int)
@click.option("--no-cache", is_flag=True, help="Recompute the whole prefix every token.")
@click.option("--device", default="cpu", show_default=True, metavar="cpu|cuda[:N]|mps|auto")
@click.option(
    "--num", type=int, default=64, show_default=True, help="Samples (image and 2-D models)."
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    help="Picture to write, .png, .jpg, ... (image and 2-D models).",
)
@click.option(
    "--label",
    help="Class of the samples (class-conditional image models; default: each class in turn).",
)
@click.option(
    "--source",
    "sources",
    multiple=True,
    help="Text to translate (sequence-to-sequence models; repeat it for more), as zoo translate.",
)
@click.option(
    "--beam", type=int, default=1, show_default=True, help="Beam size of --source (1: greedy)."
)
@click.pass_context
def generate(
    ctx,
    source,
    prompt,
    length,
    temperature,
    top_k,
    top_p,
    stop,
    seed,
    no_cache,
    device,
    num,
    out,
    label,
    sources,
    beam,
) -> None:
    """Sample text from a trained language model, or a picture of samples (images in a grid,
    2-D points in a scatter plot) from a generative model, into --out; or translate --source
    with a sequence-to-sequence model (greedy, or --beam N), one target per line."""
    from zoo_core.artifact import load  # here, not above: keeps torch out of `zoo list`

    def given(*names: str) -> list[str]:
        """The options among ``names`` that the user set (a default is not an answer)."""
        source_of = ctx.get_parameter_source
        return [
            "--" + name.replace("_", "-")
            for name in names
            if source_of(name) not in (None, click.core.ParameterSource.DEFAULT)
        ]

    artifact = load(source, device=device)
    if hasattr(artifact.task, "translate"):  # a sequence-to-sequence model: `zoo translate`
        _translate_sources(source, artifact, sources, beam, length, no_cache, given)
        return
    seq2seq_only = [
        flag for name, flag in (("sources", "--source"), ("beam", "--beam")) if given(name)
    ]
    if seq2seq_only:
        raise ZooError(
            f"{' and '.join(seq2seq_only)} {'is' if len(seq2seq_only) == 1 else 'are'} for "
            f"sequence-to-sequence models; this model's task is '{artifact.config.task}', not "
            "seq2seq"
        )
    if artifact.generate_options is PictureOptions:
        text_only = given("prompt", "length", "temperature", "top_k", "top_p", "stop", "no_cache")
        if text_only:
            raise ZooError(
                f"{', '.join(text_only)} {'is' if len(text_only) == 1 else 'are'} for language "
                "models; this model draws pictures (its options: --num, --out, --seed, --label)"
            )
        if out is None:
            raise ZooError("give --out FILE.png: this model's samples are written as a picture")
        path = artifact.sample_to_file(out, PictureOptions(num=num, seed=seed, label=label))
        click.echo(f"wrote {num} samples to {path}")
        return
    if label is not None:
        raise ZooError("--label picks the class of image samples; a language model has none")
    picture_only = given("num", "out")
    if picture_only:
        raise ZooError(
            f"{', '.join(picture_only)} {'is' if len(picture_only) == 1 else 'are'} for image "
            "and 2-D models; a language model prints its text (redirect it to a file: > FILE.txt)"
        )
    if length < 1:
        raise ZooError(f"--length must be at least 1, not {length}")
    options = SamplingOptions(
        length=length,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        stop=stop,
        seed=seed,
        use_cache=not no_cache,
    )
    shown = False

    def show(piece: str) -> None:
        # The prompt waits for the first piece: by then the task has checked the options, so a
        # bad one is an error line alone, with nothing printed before it.
        nonlocal shown
        click.echo(piece if shown else prompt + piece, nl=False)
        shown = True

    artifact.generate(prompt, options, stream=show)
    if not shown:  # nothing was sampled before the stop text: the prompt alone
        click.echo(prompt, nl=False)
    click.echo()


def _translate_sources(
    run: str, artifact, sources: tuple[str, ...], beam: int, length: int, no_cache: bool, given
) -> None:
    """``zoo generate --source TEXT`` of a sequence-to-sequence model: ``zoo translate``'s
    targets, one a line (``--length``, when given, bounds them as ``--max-length`` does)."""
    if not sources:
        raise ZooError(
            "this model translates (task seq2seq): give the text with --source TEXT, or use "
            f"zoo translate {run} TEXT"
        )
    others = given("prompt", "temperature", "top_k", "top_p", "stop", "seed", "num", "out", "label")
    if others:
        raise ZooError(
            f"{', '.join(others)} {'is' if len(others) == 1 else 'are'} not for a "
            "sequence-to-sequence model (its options: --source, --beam, --length, --no-cache)"
        )
    options = TranslateOptions(
        beam=beam, max_length=length if given("length") else None, use_cache=not no_cache
    )
    for target in artifact.translate(list(sources), options):
        click.echo(target)


@click.command()
@click.argument("source")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--top-k", type=int, default=5, show_default=True, help="Classes to show per input.")
@click.option("--device", default="cpu", show_default=True, metavar="cpu|cuda[:N]|mps|auto")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def predict(source: str, inputs: tuple[str, ...], top_k: int, device: str, as_json: bool) -> None:
    """Classify INPUTS with a trained classifier (a run folder or a Hub repo): image files or
    folders of them for an image model, texts for a text model (`-` reads one text per line
    from stdin)."""
    from zoo_core.artifact import load  # here, not above: keeps torch out of `zoo list`

    artifact = load(source, device=device)
    items = list(inputs)
    texts = hasattr(artifact.task, "classify")
    if "-" in items and not texts and hasattr(artifact.task, "predict"):
        raise ZooError("`-` (texts from stdin) is for text classifiers; give image files")
    if texts:
        paths = [item for item in items if item != "-" and _is_path(item)]
        if paths:  # the text is the argument itself, which may not be what was meant
            how = (
                f"for the file's lines, give `-` and the file on stdin (- < {paths[0]})"
                if Path(paths[0]).is_file()
                else "give texts, or `-` and one text per line on stdin"
            )
            click.echo(
                f"zoo: note: '{paths[0]}' is classified as a text of its own, not as what it "
                f"names; {how}",
                err=True,
            )
    if "-" in items and texts:  # one text per line, in place of the `-`
        lines = [line.rstrip("\r") for line in _stdin_text().split("\n")]
        at = items.index("-")
        items[at : at + 1] = [line for line in lines if line]
    # An unreadable image among many is reported, not the end of the others: each is named on
    # stderr, and the command still fails, so that a script notices.
    results = artifact.predict(items, PredictOptions(top_k=top_k, on_error="report"))
    unread = [result for result in results if "error" in result]
    if len(unread) == len(results) == 1:
        raise ZooError(unread[0]["error"])
    if as_json:
        print_json(results)
    else:
        for result in results:
            if "error" in result:
                continue
            best = ", ".join(f"{p['class']} {p['probability']:.3f}" for p in result["predictions"])
            what = result["image"] if "image" in result else _shorten(result["text"])
            click.echo(f"{what}: {best}")
    if unread:
        for result in unread[:_MAX_LISTED]:
            click.echo(f"zoo: warning: {result['error']}", err=True)
        if len(unread) > _MAX_LISTED:
            click.echo(f"zoo: warning: ... and {len(unread) - _MAX_LISTED} more", err=True)
        raise ZooError(
            f"{len(unread)} of {len(results)} images could not be read (named above); the "
            "others were classified; fix or remove those files"
        )


@click.command()
@click.argument("source")
@click.argument("texts", nargs=-1, required=True)
@click.option("--beam", type=int, default=1, show_default=True, help="Beam size (1: greedy).")
@click.option(
    "--length-penalty",
    type=float,
    default=0.6,
    show_default=True,
    help="Beam scores over ((5 + length) / 6) ** this (GNMT's alpha).",
)
@click.option("--max-length", type=int, help="Target tokens at most (default: the task's).")
@click.option("--no-cache", is_flag=True, help="Recompute the whole target prefix every token.")
@click.option("--device", default="cpu", show_default=True, metavar="cpu|cuda[:N]|mps|auto")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def translate(
    source: str,
    texts: tuple[str, ...],
    beam: int,
    length_penalty: float,
    max_length: int | None,
    no_cache: bool,
    device: str,
    as_json: bool,
) -> None:
    """Translate TEXTS with a trained sequence-to-sequence model (a run folder or a Hub repo),
    one target per line (`-` reads one source per line from stdin)."""
    from zoo_core.artifact import load  # here, not above: keeps torch out of `zoo list`

    artifact = load(source, device=device)
    items = list(texts)
    if "-" in items:  # one text per line, in place of the `-`
        lines = [line.rstrip("\r") for line in _stdin_text().split("\n")]
        at = items.index("-")
        items[at : at + 1] = [line for line in lines if line.strip()]
    options = TranslateOptions(
        beam=beam, length_penalty=length_penalty, max_length=max_length, use_cache=not no_cache
    )
    outputs = artifact.translate(items, options)
    if as_json:
        print_json([{"source": s, "target": t} for s, t in zip(items, outputs, strict=True)])
        return
    for target in outputs:
        click.echo(target)


def _is_path(item: str) -> bool:
    """Whether ``item`` names an existing file or folder (a long text is no path at all)."""
    try:
        return Path(item).exists()
    except (OSError, ValueError):  # too long a name for the system, or a NUL in it
        return False


def _stdin_text() -> str:
    """All of stdin as UTF-8 text, a byte-order mark left out, or one line on why not."""
    data = click.get_binary_stream("stdin").read()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ZooError(
            f"stdin is not UTF-8 text ({exc.reason} at byte {exc.start}); convert it first, "
            "e.g. iconv -f latin1 -t utf-8"
        ) from None


def _shorten(text: str, width: int = 60) -> str:
    """A text on one line, cut to ``width`` characters, quoted."""
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= width else flat[: width - 3] + "...")


COMMANDS = (generate, predict, translate)
