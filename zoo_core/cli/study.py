"""Named studies: ``zoo study NAME``, ``zoo study --list``."""

from __future__ import annotations

import click

from zoo_core.catalog import list_studies
from zoo_core.cli._output import print_json, table
from zoo_core.errors import ZooError


@click.command()
@click.argument("name", required=False)
@click.option("--list", "listing", is_flag=True, help="List the studies and their CPU time.")
@click.option("--quick", is_flag=True, help="A few steps: check that it runs, measure nothing.")
@click.option(
    "--device",
    default="cpu",
    show_default=True,
    metavar="cpu|cuda[:N]|mps",
    help="cuda runs the study's bigger GPU size.",
)
@click.option("--out", type=click.Path(), help="Folder for its tables, plots and runs (new).")
@click.option("--overwrite", is_flag=True, help="Replace an earlier output of this study in --out.")
@click.option(
    "--resume",
    is_flag=True,
    help="Continue an earlier run of this study in --out: keep its finished runs.",
)
@click.option(
    "--doc",
    type=click.Path(),
    help="Then replace this study's tables in a Markdown file (docs/studies.md).",
)
@click.option(
    "--jobs",
    default="auto",
    show_default=True,
    metavar="N|auto",
    help="Runs trained at a time, each in its own process; auto: one per core on a CPU, "
    "1 with --quick or on a GPU.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def study(
    name: str | None,
    listing: bool,
    quick: bool,
    device: str,
    out: str | None,
    overwrite: bool,
    resume: bool,
    doc: str | None,
    jobs: str,
    as_json: bool,
) -> None:
    """Run the study NAME with its recorded settings; write its tables and plots."""
    if listing or name is None:
        if name is not None:
            raise ZooError("--list takes no study name")
        specs = list_studies()
        if as_json:
            print_json([vars(s) for s in specs])
            return
        table(
            ["study", "cpu min", "plugin", "summary"],
            [[s.name, f"{s.cpu_minutes:g}", s.plugin, s.summary] for s in specs],
        )
        click.echo("run one with: zoo study NAME [--quick] [--device cuda] [--out DIR]")
        return
    if resume and (out is None or overwrite):
        raise ZooError("--resume continues the study in --out: give --out, and no --overwrite")
    if jobs != "auto" and not jobs.isdigit():
        raise ZooError(f"--jobs takes a number of processes or auto, not '{jobs}'")
    from zoo_core.studies import base  # here, not above: keeps torch out of `zoo study --list`

    def on_run(part: str, run: dict, done: int, total: int) -> None:
        what = f"failed: {run['error']}" if "error" in run else f"{run.get('seconds', 0):.0f}s"
        click.echo(f"[{part} {done}/{total}] {run['variant']} seed {run['seed']}: {what}", err=True)

    record = base.run_study(
        name,
        quick=quick,
        device=device,
        out=out,
        overwrite=overwrite,
        resume=resume,
        on_run=on_run,
        jobs=jobs if jobs == "auto" else int(jobs),
    )
    if as_json:
        print_json(record)
        return
    for t in record["tables"]:
        click.echo(f"\n{t['key']}")
        table(t["columns"], t["rows"])
    click.echo(
        f"\n{record['wall_seconds']:.0f} s; tables.md, study.json and plots in {record['folder']}"
    )
    if doc is not None:
        missing = base.update_document(doc, record["folder"])
        click.echo(f"updated the tables of {name} in {doc}")
        if missing:
            click.echo(f"not in {doc} (add a marked block to include them): {', '.join(missing)}")


COMMANDS = (study,)
