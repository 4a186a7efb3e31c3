"""Comparisons of models on one budget: ``zoo compare``."""

from __future__ import annotations

import click

from zoo_core.cli._args import numbers, parse_sets
from zoo_core.cli._output import print_json, table
from zoo_core.errors import ZooError


@click.command()
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
@click.option(
    "--jobs",
    type=int,
    default=1,
    show_default=True,
    help="Runs trained at a time, each in its own process (cores shared out); also on --resume.",
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
    jobs,
    as_json,
) -> None:
    """Train MODELS on the same data and budget; compare them at several lengths."""
    from zoo_core import compare as comparison  # here, not above: keeps torch out of `zoo list`

    if resume is not None:
        given = [
            param.opts[0] if isinstance(param, click.Option) else param.name.upper()
            for param in ctx.command.params
            if param.name not in ("resume", "jobs", "as_json")
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
        results = comparison.resume(resume, on_run=on_run, jobs=jobs)
    else:
        results = comparison.compare(
            list(models),
            task,
            train_length=train_length,
            eval_lengths=numbers(eval_lengths, int, "--eval-lengths"),
            steps=steps,
            seeds=seeds,
            sets=parse_sets(sets),
            match_params=match_params,
            data_fractions=numbers(data_fraction, float, "--data-fraction"),
            batch_size=batch_size,
            lr=lr,
            out=out,
            on_run=on_run,
            jobs=jobs,
        )
    if as_json:
        print_json(results["summary"])
        return
    metric = results["metric"]
    keys = list(results["summary"][0]["lengths"]) if results["summary"] else []
    better = "lower" if results["lower_is_better"] else "higher"
    table(
        ["variant", "params", "train s"] + [metric if k == "-" else f"{metric} @{k}" for k in keys],
        [
            [
                row["label"],
                f"{row['params']:,}",
                "-" if row["train_seconds"] is None else f"{row['train_seconds']:.0f}",
            ]
            + [comparison.format_cell(row["lengths"][k], metric) for k in keys]
            for row in results["summary"]
        ],
    )
    click.echo(f"{metric}: {better} is better; mean ± std over {results['seeds']} seed(s)")
    click.echo(f"results, runs and plots ({', '.join(results['plots'])}) in {results['folder']}")


COMMANDS = (compare,)
