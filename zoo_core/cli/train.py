"""Training and evaluation: ``zoo train``, ``zoo eval``."""

from __future__ import annotations

import sys

import click

from zoo_core.cli._args import parse_sets
from zoo_core.cli._output import format_metric, metrics, print_json
from zoo_core.errors import ZooError
from zoo_core.inference import EvalOptions
from zoo_core.launch import launch


@click.command()
@click.argument("name", required=False)
@click.option("--task", help="Task to train for (default: the model's first).")
@click.option(
    "--data",
    type=click.Path(),
    help="Training data: a file, a folder or hf:ORG/NAME[:CONFIG][@REVISION] (default: the "
    "task's embedded data).",
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
    "--init",
    "init",
    metavar="RUN|ORG/NAME",
    help="Start from these weights (a run folder or a Hub repo) instead of random ones.",
)
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
@click.option(
    "--fsdp",
    is_flag=True,
    default=None,
    help="Shard the model across the processes (FSDP); as --set parallel=fsdp.",
)
def train(
    name: str | None,
    task: str | None,
    data: str | None,
    val_data: str | None,
    steps: int | None,
    seconds: float | None,
    batch_size: int | None,
    lr: float | None,
    seed: int | None,
    device: str | None,
    compile_: bool | None,
    out: str | None,
    resume: str | None,
    init: str | None,
    sets: tuple[str, ...],
    tokenizer: str | None,
    quiet: bool,
    nproc: int | None,
    fsdp: bool | None,
) -> None:
    """Train model NAME (see `zoo list`) and save it in a run folder."""
    from zoo_core.artifact import train as run_training  # here: keeps torch out of `zoo list`

    if name is None and resume is None:
        raise ZooError("name a model to train (see `zoo list`), or --resume a run folder")
    if nproc is not None:
        sys.exit(launch(nproc, name, out, resume))
    overrides = parse_sets(sets)
    if fsdp:
        if overrides.get("parallel", "fsdp") != "fsdp":
            raise ZooError(
                f"--fsdp and --set parallel={overrides['parallel']} disagree; give one of them"
            )
        overrides["parallel"] = "fsdp"
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
        init=init,
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
    shown = metrics({k: v for k, v in final.items() if k.startswith("val_")}, sep=" ")
    click.echo(f"done: {final['step']} steps in {final['elapsed']:.0f}s | {shown}")
    click.echo(f"saved to {artifact.path}")


@click.command("eval")
@click.argument("source")
@click.option("--data", type=click.Path(), help="Evaluation data (default: the validation split).")
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--device", default="cpu", show_default=True, metavar="cpu|cuda[:N]|mps|auto")
@click.option(
    "--per-position",
    is_flag=True,
    help="The loss at each position of the window and the effective context (lm).",
)
@click.option("--seq-len", type=int, help="With --per-position: the window (default: trained).")
@click.option("--plot", type=click.Path(), help="With --per-position: write the curve here (PNG).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def eval_cmd(
    source: str,
    data: str | None,
    batch_size: int,
    device: str,
    per_position: bool,
    seq_len: int | None,
    plot: str | None,
    as_json: bool,
) -> None:
    """Evaluate a trained model (a run folder or a Hub repo)."""
    if not per_position and (seq_len is not None or plot is not None):
        raise ZooError("--seq-len and --plot go with --per-position")
    if batch_size < 1:
        raise ZooError(f"the batch size must be at least 1, not {batch_size}")
    if seq_len is not None and seq_len < 1:
        raise ZooError(f"--seq-len must be at least 1, not {seq_len}")
    from zoo_core.artifact import load  # here, not above: keeps torch out of `zoo list`

    artifact = load(source, device=device)
    if per_position:
        from zoo_core.studies import context  # here, not above: keeps torch out of `zoo list`

        artifact.task.setup_eval(data)
        found = context.per_position(artifact, batch_size, seq_len)
        if plot is not None:
            context.plot({source: found["loss_by_position"]}, plot, "validation loss by position")
        if as_json:
            print_json(found)
            return
        losses = found["loss_by_position"]
        marks = sorted({p for p in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512) if p <= len(losses)})
        for p in sorted({*marks, len(losses)}):
            click.echo(f"loss at position {p}: {format_metric(losses[p - 1])}")
        click.echo(
            f"effective context: {found['effective_context']} tokens (later positions improve "
            f"the loss by less than {found['tolerance']:.0%})"
        )
        if plot is not None:
            click.echo(f"plot: {plot}")
        return
    results = artifact.evaluate(data, EvalOptions(batch_size=batch_size))
    if as_json:
        print_json(results)
    else:
        for key, value in results.items():
            click.echo(f"{key}: {format_metric(value)}")


COMMANDS = (train, eval_cmd)
