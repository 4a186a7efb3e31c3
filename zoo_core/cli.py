"""The ``zoo`` command: parse, call the Python API, print. No logic of its own lives here."""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from zoo_core._version import __version__
from zoo_core.artifacts import format_metric
from zoo_core.errors import ZooError


class _Group(click.Group):
    """Turns a user's mistake (a ZooError) into one line on stderr and a non-zero exit."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ZooError as exc:
            # Only a loaded trainer can have raised TrainingInterrupted: don't import torch to ask.
            trainer = sys.modules.get("zoo_core.training.trainer")
            interrupted = trainer is not None and isinstance(exc, trainer.TrainingInterrupted)
            from zoo_core.launch import report_rank_error

            if not report_rank_error(f"Error: {exc}"):  # under --nproc the launcher prints it
                click.echo(f"Error: {exc}", err=True)
            ctx.exit(exc.exit_code if interrupted else 1)


def _table(columns: list[str], rows: list[list[Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*[str(c) for c in row])
    console = Console()
    if console.is_terminal:
        console.print(table)
        return
    # Pipes and logs: wide rows, no wrapping at 80 columns, no padding after the last column.
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(table)
    for line in console.export_text().splitlines():
        click.echo(line.rstrip())


def _json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def _parse_sets(values: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ZooError(f"--set takes key=value, not {item!r}")
        out[key.strip()] = value.strip()
    return out


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="zoo", message="%(prog)s %(version)s")
def cli() -> None:
    """A plugin-based model zoo for PyTorch: list, train, evaluate and sample models."""


# -- the catalog -----------------------------------------------------------------------------------
@cli.command("list")
@click.argument("pattern", required=False)
@click.option("--task", help="Only models that do this task.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option(
    "--pretrained", is_flag=True, help="Only models with named pretrained weights, and those."
)
def list_cmd(pattern: str | None, task: str | None, as_json: bool, pretrained: bool) -> None:
    """List models; PATTERN is a shell-style wildcard (`zoo list 'lstm*'`)."""
    from zoo_core.catalog import list_models

    specs = list_models(pattern, task=task)
    if pretrained:
        _list_pretrained(specs, as_json)
        return
    if as_json:
        _json(
            [
                {
                    "name": s.name,
                    "family": s.family,
                    "tasks": list(s.tasks),
                    "plugin": s.plugin,
                    "summary": s.summary,
                }
                for s in specs
            ]
        )
        return
    if not specs:
        if pattern or task:
            asked = " and ".join(
                ([f"'{pattern}'"] if pattern else []) + ([f"task '{task}'"] if task else [])
            )
            total = len(list_models())
            click.echo(f"No model matches {asked}; `zoo list` shows all {total}.")
        else:
            from zoo_core.scaffold import left_out_note

            note = left_out_note()
            click.echo(
                f"No models: ZOO_LOAD_PLUGINS loads no plugin that registers one{note}."
                if note
                else "No models: install a plugin (pip install zoo-lstm)."
            )
        return
    _table(
        ["name", "family", "tasks", "plugin", "summary"],
        [[s.name, s.family, ",".join(s.tasks), s.plugin, s.summary] for s in specs],
    )


def _list_pretrained(specs: list, as_json: bool) -> None:
    rows = [(s, key, w) for s in specs for key, w in s.pretrained.items()]
    if as_json:
        _json([{"model": s.name, "weights": key, **vars(w)} for s, key, w in rows])
        return
    if not rows:
        click.echo("No model declares pretrained weights.")
        return
    _table(
        ["model", "weights", "repo", "revision", "sha256", "summary"],
        [
            [s.name, key, w.repo, w.revision, (w.sha256 or "-")[:12], w.summary]
            for s, key, w in rows
        ],
    )


@cli.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def info(name: str, as_json: bool) -> None:
    """Show a model: summary, paper, plugin, tasks, config fields and parameter count. Given a
    run folder or a Hub repo (ORG/NAME), show that trained model: its task, data, training and
    last metrics."""
    from pathlib import Path

    from zoo_core.catalog import model_info
    from zoo_core.plugins import get_catalog

    if name not in get_catalog().models and (Path(name).is_dir() or "/" in name):
        _run_info(name, as_json)  # a run folder, or a Hub repo's ORG/NAME
        return
    data = model_info(name)
    if as_json:
        _json(data)
        return
    click.echo(f"{data['name']}: {data['summary']}")
    for key in ("family", "plugin", "paper"):
        if data.get(key):
            click.echo(f"  {key}: {data[key]}")
    click.echo(f"  tasks: {', '.join(data['tasks'])}")
    click.echo(f"  parameters (default config): {data['parameters']:,}")
    click.echo("  config:")
    _table(
        ["  field", "type", "default"],
        [[f"  {f['name']}", f["type"], json.dumps(f["default"])] for f in data["config"]],
    )
    if data["train_defaults"]:
        click.echo(
            "  training defaults: "
            + ", ".join(f"{k}={v}" for k, v in data["train_defaults"].items())
        )


def _run_info(source: str, as_json: bool) -> None:
    from zoo_core.artifact import run_info

    data = run_info(source)
    if as_json:
        _json(data)
        return
    plugin = f"plugin {data['plugin']}, {data['distribution']}" if data["plugin"] else ""
    click.echo(f"{source}: {data['model']} ({plugin}) for task {data['task']}")
    if data["folder"] != source:
        click.echo(f"  folder: {data['folder']}")
    data_line = data["data"] or "made by the task as it trains"
    if data["val_data"]:
        data_line += f"; validation: {data['val_data']}"
    click.echo(f"  data: {data_line}")
    if data["tokenizer"]:
        click.echo(f"  tokenizer: {data['tokenizer']}")
    seconds = "" if data["seconds"] is None else f" in {data['seconds']:.0f} s"
    if data["finished"]:
        click.echo(f"  trained: {data['steps']:,} steps{seconds}")
    else:
        budget = data["train_config"].get("time")
        planned = (
            f" steps{seconds} of a {budget:g} s budget"
            if budget
            else f" of {data['planned_steps']:,} steps{seconds}"
        )
        how = "continue with" if data["steps"] else "no checkpoint yet; start it again with"
        hint = f" ({how}: zoo train --resume {source})" if data["local"] else ""
        click.echo(f"  trained: {data['steps']:,}{planned}, unfinished{hint}")
    if data["metrics"]:
        shown = ", ".join(f"{k} {format_metric(v)}" for k, v in data["metrics"].items())
        click.echo(f"  metrics: {shown}")
    if data["parameters"] is not None:
        click.echo(f"  parameters: {data['parameters']:,}")
    else:
        click.echo(f"  parameters: install {data['distribution'] or 'its plugin'} to count them")
    for key, title in (("model_config", "model config"), ("train_config", "training")):
        if data[key]:
            click.echo(
                f"  {title}: " + ", ".join(f"{k}={json.dumps(v)}" for k, v in data[key].items())
            )


@cli.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def plugins(ctx: click.Context, as_json: bool) -> None:
    """Installed plugins, their versions, what they register and load errors."""
    if ctx.invoked_subcommand is not None:
        return
    from zoo_core.plugins import get_catalog
    from zoo_core.scaffold import unloaded_plugins

    infos, skipped = list(get_catalog().plugins.values()), unloaded_plugins()
    if as_json:
        _json(
            [{**vars(i), "loaded": True} for i in infos]
            + [{**vars(i), "loaded": False} for i in skipped]
        )
        return
    rows = [
        [i.name, i.distribution, i.version, "-", "not loaded (ZOO_LOAD_PLUGINS)"] for i in skipped
    ]
    for i in infos:
        registers = "; ".join(
            f"{kind}: {', '.join(names)}"
            for kind, names in (
                ("models", i.models),
                ("tasks", i.tasks),
                ("tokenizers", i.tokenizers),
                ("commands", i.commands),
            )
            if names
        )
        rows.append(
            [i.name, i.distribution, i.version, registers or "-", "; ".join(i.errors) or "ok"]
        )
    rows.sort(key=lambda row: (row[1] != "zoo-core", row[0]))  # built-ins first
    _table(["plugin", "distribution", "version", "registers", "status"], rows)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def tasks(as_json: bool) -> None:
    """List tasks."""
    from zoo_core.catalog import list_tasks

    specs = list_tasks()
    if as_json:
        _json([{"name": s.name, "plugin": s.plugin, "summary": s.summary} for s in specs])
        return
    _table(["name", "plugin", "summary"], [[s.name, s.plugin, s.summary] for s in specs])


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def tokenizers(as_json: bool) -> None:
    """List tokenizers."""
    from zoo_core.catalog import list_tokenizers

    specs = list_tokenizers()
    if as_json:
        _json([{"name": s.name, "plugin": s.plugin, "summary": s.summary} for s in specs])
        return
    _table(["name", "plugin", "summary"], [[s.name, s.plugin, s.summary] for s in specs])


# -- training and inference ------------------------------------------------------------------------
@cli.command()
@click.argument("name", required=False)
@click.option("--task", help="Task to train for (default: the model's first).")
@click.option(
    "--data", type=click.Path(), help="Training data (default: the task's embedded data)."
)
@click.option("--val-data", type=click.Path(), help="Validation data (default: a held-out split).")
@click.option("--steps", type=int, help="Optimisation steps.")
@click.option("--time", "seconds", type=float, help="Train for this many seconds.")
@click.option("--batch-size", type=int)
@click.option("--lr", type=float, help="Peak learning rate.")
@click.option("--seed", type=int)
@click.option(
    "--device",
    metavar="auto|cpu|cuda[:N]|mps",
    help="Where to train (default: auto, a GPU when there is one).",
)
@click.option("--compile", "compile_", is_flag=True, default=None, help="torch.compile the model.")
@click.option("--out", type=click.Path(), help="Run folder (default: a new one under runs/).")
@click.option("--resume", type=click.Path(), help="Continue the run in this folder.")
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    help="Set a model config field, task option or training setting (repeatable).",
)
@click.option(
    "--tokenizer", help="Tokenizer for text tasks (see `zoo tokenizers`); as --set tokenizer=."
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option(
    "--nproc", type=int, help="Train data-parallel in N processes on this machine (torchrun)."
)
def train(
    name,
    task,
    data,
    val_data,
    steps,
    seconds,
    batch_size,
    lr,
    seed,
    device,
    compile_,
    out,
    resume,
    sets,
    tokenizer,
    quiet,
    nproc,
) -> None:
    """Train model NAME (see `zoo list`) and save it in a run folder."""
    from zoo_core.artifact import train as run_training

    if name is None and resume is None:
        raise ZooError("name a model to train (see `zoo list`), or --resume a run folder")
    if nproc is not None:
        from zoo_core.launch import launch

        sys.exit(launch(nproc, name, out, resume))
    overrides = _parse_sets(sets)
    if tokenizer:
        if overrides.get("tokenizer", tokenizer) != tokenizer:
            raise ZooError(
                f"--tokenizer {tokenizer} and --set tokenizer={overrides['tokenizer']} disagree; "
                "give one of them"
            )
        overrides["tokenizer"] = tokenizer
    artifact, final = run_training(
        name,
        task=task,
        data=data,
        val_data=val_data,
        out=out,
        resume=resume,
        overrides=overrides,
        progress=not quiet,
        steps=steps,
        time=seconds,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        device=device,
        compile=compile_,
    )
    if not final:  # a rank other than 0 under torchrun: rank 0 reports
        return
    metrics = " ".join(f"{k} {format_metric(v)}" for k, v in final.items() if k.startswith("val_"))
    click.echo(f"done: {final['step']} steps in {final['elapsed']:.0f}s | {metrics}")
    click.echo(f"saved to {artifact.path}")


@cli.command("eval")
@click.argument("source")
@click.option("--data", type=click.Path(), help="Evaluation data (default: the validation split).")
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--device", default="cpu", show_default=True, metavar="cpu|cuda[:N]|mps|auto")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def eval_cmd(source: str, data: str | None, batch_size: int, device: str, as_json: bool) -> None:
    """Evaluate a trained model (a run folder or a Hub repo)."""
    from zoo_core.artifact import load

    metrics = load(source, device=device).evaluate(data, batch_size=batch_size)
    if as_json:
        _json(metrics)
    else:
        for key, value in metrics.items():
            click.echo(f"{key}: {format_metric(value)}")


@cli.command()
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
) -> None:
    """Sample text from a trained language model, or a picture of samples (images in a grid,
    2-D points in a scatter plot) from a generative model, into --out."""
    from zoo_core.artifact import load

    def given(*names: str) -> list[str]:
        """The options among ``names`` that the user set (a default is not an answer)."""
        source_of = ctx.get_parameter_source
        return [
            "--" + name.replace("_", "-")
            for name in names
            if source_of(name) not in (None, click.core.ParameterSource.DEFAULT)
        ]

    artifact = load(source, device=device)
    if not hasattr(artifact.task, "stream") and hasattr(artifact.task, "sample_to_file"):
        text_only = given("prompt", "length", "temperature", "top_k", "top_p", "stop", "no_cache")
        if text_only:
            raise ZooError(
                f"{', '.join(text_only)} {'is' if len(text_only) == 1 else 'are'} for language "
                "models; this model draws pictures (its options: --num, --out, --seed, --label)"
            )
        if out is None:
            raise ZooError("give --out FILE.png: this model's samples are written as a picture")
        path = artifact.task.sample_to_file(artifact.model, num, out, seed, label)
        click.echo(f"wrote {num} samples to {path}")
        return
    if not hasattr(artifact.task, "stream"):
        raise ZooError(f"task '{artifact.config.task}' does not generate text")
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
    pieces = artifact.task.stream(
        artifact.model, prompt, length, temperature, top_k, top_p, stop, seed, not no_cache
    )
    first = next(pieces, "")  # the options are checked here, before anything is printed
    click.echo(prompt + first, nl=False)
    for piece in pieces:
        click.echo(piece, nl=False)
    click.echo()


# -- plugins: write, install, check ----------------------------------------------------------------
@plugins.command("new")
@click.argument("name")
@click.option(
    "--dir", "folder", type=click.Path(), help="Folder to write into (default: ./zoo-NAME)."
)
def plugins_new(name: str, folder: str | None) -> None:
    """Write a new plugin package zoo-NAME: a model, its hooks, tests and a README."""
    from zoo_core.scaffold import new_plugin, package_name

    path = new_plugin(name, folder)
    click.echo(f"wrote the plugin zoo-{name} (package {package_name(name)}) to {path}; next:")
    shown = path if path.is_absolute() else f"./{path}"  # pip reads a bare word as a project name
    click.echo(f"  zoo plugins install -e {shown}")
    click.echo(f"  zoo list '{name}*' && zoo train {name} && zoo plugins check {name}")
    click.echo(f"  python -m pytest {shown}/tests")


def _run_pip(command: str, args: tuple[str, ...]) -> None:
    from zoo_core.scaffold import PipError, pip, zoo_entry_points

    before = zoo_entry_points()
    try:
        pip(command, list(args))
    except PipError as exc:
        click.echo(f"Error: {exc}", err=True)
        click.get_current_context().exit(exc.returncode)
    after = zoo_entry_points()
    for key in sorted(after):
        if before.get(key) != after[key]:
            click.echo(f"plugin '{key[0]}' ({after[key]}) installed")
            others = [v for (name, _), v in after.items() if name == key[0] and v != after[key]]
            if others:
                click.echo(
                    f"zoo: warning: {', '.join(others)} has a plugin named '{key[0]}' too; "
                    "only one of them loads: uninstall one, or rename its entry point",
                    err=True,
                )
    for key in sorted(set(before) - set(after)):
        click.echo(f"plugin '{key[0]}' ({before[key]}) uninstalled")


_PIP_ARGS = {"ignore_unknown_options": True}


@plugins.command("install", context_settings=_PIP_ARGS)
@click.argument("names", nargs=-1, type=click.UNPROCESSED)
def plugins_install(names: tuple[str, ...]) -> None:
    """pip install plugins (names, paths, wheels; pip's options pass through, e.g. -e, -U)
    into the environment the zoo runs in."""
    _run_pip("install", names)


@plugins.command("uninstall", context_settings=_PIP_ARGS)
@click.argument("names", nargs=-1, type=click.UNPROCESSED)
def plugins_uninstall(names: tuple[str, ...]) -> None:
    """pip uninstall plugins (their distributions, zoo-NAME, or plugin names) from the zoo's
    environment, without asking."""
    from zoo_core.scaffold import uninstall_args

    _run_pip("uninstall", tuple(uninstall_args(list(names))))


@plugins.command("check")
@click.argument("name", required=False)
def plugins_check(name: str | None) -> None:
    """Contract checks (forward, backward, save/load, metadata) of every model a plugin registers.

    NAME is a plugin or distribution name; without it, every plugin is checked.
    """
    from zoo_core.scaffold import check_plugins

    reports = check_plugins(name)
    passed = failed = 0
    for report in reports:
        status = "pass" if report.ok else "FAIL"
        click.echo(f"{report.plugin} ({report.distribution} {report.version}): {status}")
        for error in report.errors:
            click.echo(f"  FAIL {error}")
        for model, results in report.models.items():
            bad = [r for r in results if not r.ok]
            failed, passed = failed + bool(bad), passed + (not bad)
            click.echo(
                f"  {'FAIL' if bad else 'pass'} {model}"
                + ("" if bad else f" ({len(results)} checks)")
            )
            for r in bad:
                click.echo(f"       {r.check}: {r.message.splitlines()[0] if r.message else ''}")
    broken = sum(bool(r.errors) for r in reports)
    click.echo(f"{passed} models passed, {failed} failed; {broken} plugins with errors")
    if failed or broken:
        click.get_current_context().exit(1)


# -- the Hugging Face Hub --------------------------------------------------------------------------
@cli.command()
@click.argument("source")
@click.option("--revision", help="Branch, tag or commit (default: main, or SOURCE's @REVISION).")
def pull(source: str, revision: str | None) -> None:
    """Download model SOURCE (ORG/NAME[@REVISION]) into the Hugging Face cache; print its folder."""
    from zoo_core.hub import pull as hub_pull

    click.echo(hub_pull(source, revision=revision, folder_hint=False))


@cli.command()
@click.argument("run", type=click.Path())
@click.argument("repo_id")
@click.option("--private", is_flag=True, help="Create the repo private (if it does not exist yet).")
@click.option("--revision", help="Branch to push to, created if needed (default: main).")
@click.option("--message", help="Commit message.")
@click.option(
    "--include-checkpoints",
    is_flag=True,
    help="Upload checkpoints/ too (and delete the branch's checkpoints this run has not).",
)
@click.option(
    "--allow-unfinished",
    is_flag=True,
    help="Push a run whose training has not finished (its latest checkpoint's weights).",
)
@click.option(
    "--force",
    is_flag=True,
    help="Push even to a branch whose config.json is not a zoo model's, replacing its files.",
)
def push(
    run: str,
    repo_id: str,
    private: bool,
    revision: str | None,
    message: str | None,
    include_checkpoints: bool,
    allow_unfinished: bool,
    force: bool,
) -> None:
    """Upload run folder RUN to Hub repo REPO_ID (ORG/NAME[@BRANCH]), with a model card, in one
    commit. Unchanged files are not sent again; artifact files the run lacks are deleted. A run
    still training, an unfinished one (unless --allow-unfinished) or one that does not load is
    refused before anything is sent."""
    from zoo_core.artifact import push as hub_push

    result = hub_push(
        run,
        repo_id,
        private=private,
        revision=revision,
        message=message,
        include_checkpoints=include_checkpoints,
        allow_unfinished=allow_unfinished,
        force=force,
    )
    where = f"{result.repo_url} ({result.revision})"
    if not result.changed:
        click.echo(f"nothing to push: {where} already has this run's {len(result.unchanged)} files")
    else:
        count = len(result.files)
        line = f"pushed {count} file{'' if count == 1 else 's'} to {where}"
        if result.unchanged:
            line += f"; {len(result.unchanged)} unchanged"
        if result.removed:
            line += f"; removed {_removed(result.removed)}, which this run does not have"
        click.echo(line)
    click.echo(result.commit_url)


def _removed(paths: list[str]) -> str:
    """``tokenizer.json and checkpoints step-00000024, step-00000030``: files, then the
    checkpoints they belong to, each once."""
    from zoo_core import artifacts

    prefix = artifacts.CHECKPOINTS_DIR + "/"
    files = [p for p in paths if not p.startswith(prefix)]
    steps = sorted({p[len(prefix) :].split("/")[0] for p in paths if p.startswith(prefix)})
    if steps:
        files.append(f"checkpoint{'s' if len(steps) > 1 else ''} {', '.join(steps)}")
    return ", ".join(files[:-1]) + " and " + files[-1] if len(files) > 1 else files[0]


_MAX_LISTED = 20  # unreadable inputs named one by one, before a count of the rest


# -- classification --------------------------------------------------------------------------------
@cli.command()
@click.argument("source")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--top-k", type=int, default=5, show_default=True, help="Classes to show per input.")
@click.option("--device", default="cpu", show_default=True, metavar="cpu|cuda[:N]|mps|auto")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def predict(source: str, inputs: tuple[str, ...], top_k: int, device: str, as_json: bool) -> None:
    """Classify INPUTS with a trained classifier (a run folder or a Hub repo): image files or
    folders of them for an image model, texts for a text model (`-` reads one text per line
    from stdin)."""
    from zoo_core.artifact import load

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
    results = artifact.predict(items, top_k=top_k, on_error="report")
    unread = [result for result in results if "error" in result]
    if len(unread) == len(results) == 1:
        raise ZooError(unread[0]["error"])
    if as_json:
        _json(results)
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


@cli.group()
def data() -> None:
    """Embedded data sets, written out as files to look at or to train on."""


@data.command("shapes")
@click.option("--out", required=True, type=click.Path(), help="Folder to write (new or empty).")
@click.option("--num", type=int, default=8000, show_default=True, help="Number of images.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--size", type=int, default=32, show_default=True, help="Width and height in pixels.")
def data_shapes(out: str, num: int, seed: int, size: int) -> None:
    """Write the default image data set (coloured shapes) as one sub-folder of PNGs per class."""
    from zoo_core.data.shapes import write_folder

    path = write_folder(out, num=num, seed=seed, size=size)
    click.echo(f"wrote {num} {size}x{size} images to {path}")


@data.command("text")
@click.option("--out", required=True, type=click.Path(), help="File to write (new).")
def data_text(out: str) -> None:
    """Write the default text of language models (Python's pydoc topics) as one UTF-8 file."""
    from zoo_core.data.text import DEFAULT_TEXT_NAME, write_default

    path, length = write_default(out)
    click.echo(f"wrote {DEFAULT_TEXT_NAME} ({length:,} characters) to {path}")


@data.command("brackets")
@click.option("--out", required=True, type=click.Path(), help="Folder to write (new or empty).")
def data_brackets(out: str) -> None:
    """Write the default data of text classifiers (balanced brackets or not) as train.jsonl and
    val.jsonl, one {"text", "label"} a line; train on them with `--data OUT/train.jsonl
    --val-data OUT/val.jsonl`."""
    from zoo_core.data.brackets import default_splits, write_default

    path = write_default(out)
    train, val = (len(split) for split in default_splits())
    click.echo(
        f"wrote {train:,} training and {val:,} validation examples to {path / 'train.jsonl'} "
        f"and {path / 'val.jsonl'}"
    )


def _numbers(text: str | None, kind: type, option: str) -> list | None:
    if text is None:
        return None
    try:
        return [kind(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ZooError(f"{option} takes comma-separated numbers, not {text!r}") from None


@cli.command()
@click.argument("models", nargs=-1)
@click.option("--task", help="Task to train on (default: the first model's first).")
@click.option("--train-length", type=int, help="Length (or seq_len) trained at.")
@click.option(
    "--eval-lengths", help="Comma-separated lengths to evaluate at (default: the trained one)."
)
@click.option("--steps", type=int, help="Optimisation steps of every run.")
@click.option(
    "--seeds", type=int, default=1, show_default=True, help="Runs per variant (seeds 0..K-1)."
)
@click.option("--batch-size", type=int)
@click.option("--lr", type=float, help="Peak learning rate of every run.")
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=V1,V2",
    help="A setting for every model that has it; a comma list is swept (repeatable).",
)
@click.option(
    "--match-params", is_flag=True, help="Scale widths to the first model's parameter count."
)
@click.option(
    "--data-fraction", help="Comma-separated fractions of the training data to sweep (lm)."
)
@click.option(
    "--out", type=click.Path(), help="Folder for runs, results.json and plots (new or empty)."
)
@click.option(
    "--resume",
    type=click.Path(),
    help="Continue the interrupted comparison in this folder, with its own settings.",
)
@click.option("--json", "as_json", is_flag=True, help="Print results.json's summary as JSON.")
@click.pass_context
def compare(
    ctx: click.Context,
    models,
    task,
    train_length,
    eval_lengths,
    steps,
    seeds,
    batch_size,
    lr,
    sets,
    match_params,
    data_fraction,
    out,
    resume,
    as_json,
) -> None:
    """Train MODELS on the same data and budget; compare them at several lengths."""
    from zoo_core.compare import compare as run_compare
    from zoo_core.compare import format_cell
    from zoo_core.compare import resume as resume_compare

    if resume is not None:
        given = [
            param.opts[0] if isinstance(param, click.Option) else param.name.upper()
            for param in ctx.command.params
            if param.name not in ("resume", "as_json")
            and ctx.get_parameter_source(param.name) is not click.core.ParameterSource.DEFAULT
            and ctx.params[param.name] not in ((), None)
        ]
        if given:
            raise ZooError(
                f"a resumed comparison keeps the settings it was started with; drop "
                f"{', '.join(given)}"
            )
    elif not models:
        raise ZooError("name the models to compare (see `zoo list`), or --resume a comparison")

    def on_run(run: dict, done: int, total: int) -> None:
        if "error" in run:
            line = f"failed: {run['error']}"
        else:
            seconds = run.get("train_seconds")
            line = (
                ("-" if seconds is None else f"{seconds:.0f}s")
                + " | "
                + " ".join(
                    f"@{n} "
                    + (
                        f"{m.get('val_accuracy', m.get('val_loss', 0)):.3f}"
                        if "refused" not in m
                        else "refused"
                    )
                    for n, m in run["eval"].items()
                )
            )
        click.echo(f"[{done}/{total}] {run['variant']} seed {run['seed']}: {line}", err=True)

    if resume is not None:
        results = resume_compare(resume, on_run=on_run)
    else:
        results = run_compare(
            list(models),
            task,
            train_length=train_length,
            eval_lengths=_numbers(eval_lengths, int, "--eval-lengths"),
            steps=steps,
            seeds=seeds,
            sets=_parse_sets(sets),
            match_params=match_params,
            data_fractions=_numbers(data_fraction, float, "--data-fraction"),
            batch_size=batch_size,
            lr=lr,
            out=out,
            on_run=on_run,
        )
    if as_json:
        _json(results["summary"])
        return
    metric = results["metric"]
    keys = list(results["summary"][0]["lengths"]) if results["summary"] else []
    better = "lower" if results["lower_is_better"] else "higher"
    _table(
        ["variant", "params", "train s"] + [metric if k == "-" else f"{metric} @{k}" for k in keys],
        [
            [
                row["label"],
                f"{row['params']:,}",
                "-" if row["train_seconds"] is None else f"{row['train_seconds']:.0f}",
            ]
            + [format_cell(row["lengths"][k], metric) for k in keys]
            for row in results["summary"]
        ],
    )
    click.echo(f"{metric}: {better} is better; mean ± std over {results['seeds']} seed(s)")
    click.echo(f"results, runs and plots ({', '.join(results['plots'])}) in {results['folder']}")


def main() -> None:
    """Entry point of the ``zoo`` console script."""
    from zoo_core.plugins import add_commands

    try:
        add_commands(cli)
    except ZooError as exc:  # ZOO_STRICT_PLUGINS=1 and a broken plugin
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    try:
        cli(prog_name="zoo")
    except SystemExit as exc:
        if "TORCHELASTIC_RUN_ID" in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1:
            # A rank under torchrun, its work done and its process group destroyed, leaves at
            # once. Tearing down the interpreter could destroy tensors still held by gloo's
            # worker threads, which now and then aborts the process (SIGABRT) while rank 0 is
            # still writing the run, and torchrun then kills rank 0 too.
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            if not isinstance(exc.code, int | None):
                print(exc.code, file=sys.stderr)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        raise
