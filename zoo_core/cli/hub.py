"""The Hugging Face Hub: ``zoo pull``, ``zoo push``."""

from __future__ import annotations

import click

from zoo_core import artifacts


@click.command()
@click.argument("source")
@click.option("--revision", help="Branch, tag or commit (default: main, or SOURCE's @REVISION).")
def pull(source: str, revision: str | None) -> None:
    """Download model SOURCE (ORG/NAME[@REVISION]) into the Hugging Face cache; print its folder.

    A repo in the transformers layout (GPT-2, ResNet...) is converted once, by the importer an
    installed plugin registers, and the converted folder is printed."""
    from zoo_core import importers  # here: keeps the card and tasks out of start-up

    click.echo(importers.pull(source, revision=revision, folder_hint=False))


@click.command()
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
    from zoo_core.artifact import push  # here, not above: keeps torch out of `zoo list`

    result = push(
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
    prefix = artifacts.CHECKPOINTS_DIR + "/"
    files = [p for p in paths if not p.startswith(prefix)]
    steps = sorted({p[len(prefix) :].split("/")[0] for p in paths if p.startswith(prefix)})
    if steps:
        files.append(f"checkpoint{'s' if len(steps) > 1 else ''} {', '.join(steps)}")
    return ", ".join(files[:-1]) + " and " + files[-1] if len(files) > 1 else files[0]


COMMANDS = (pull, push)
