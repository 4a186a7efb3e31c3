"""What the zoo holds: ``zoo list``, ``zoo info``, ``zoo tasks``, ``zoo tokenizers``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from zoo_core.catalog import (
    left_out_note,
    list_models,
    list_tasks,
    list_tokenizers,
    model_info,
)
from zoo_core.cli._output import metrics, print_json, shown, table
from zoo_core.plugins import get_catalog


@click.command("list")
@click.argument("pattern", required=False)
@click.option("--task", help="Only models that do this task.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option(
    "--pretrained", is_flag=True, help="Only models with named pretrained weights, and those."
)
def list_cmd(pattern: str | None, task: str | None, as_json: bool, pretrained: bool) -> None:
    """List models; PATTERN is a shell-style wildcard (`zoo list 'lstm*'`)."""
    specs = list_models(pattern, task=task)
    if pretrained:
        _list_pretrained(specs, as_json)
        return
    if as_json:
        print_json(
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
            note = left_out_note()
            click.echo(
                f"No models: ZOO_LOAD_PLUGINS loads no plugin that registers one{note}."
                if note
                else "No models: install a plugin (pip install zoo-lstm)."
            )
        return
    table(
        ["name", "family", "tasks", "plugin", "summary"],
        [[s.name, s.family, ",".join(s.tasks), s.plugin, s.summary] for s in specs],
    )


def _list_pretrained(specs: list, as_json: bool) -> None:
    rows = [(s, key, w) for s in specs for key, w in s.pretrained.items()]
    if as_json:
        print_json([{"model": s.name, "weights": key, **vars(w)} for s, key, w in rows])
        return
    if not rows:
        click.echo("No model declares pretrained weights.")
        return
    table(
        ["model", "weights", "repo", "revision", "sha256", "summary"],
        [
            [s.name, key, w.repo, w.revision, (w.sha256 or "-")[:12], w.summary]
            for s, key, w in rows
        ],
    )


@click.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def info(name: str, as_json: bool) -> None:
    """Show a model: summary, paper, plugin, tasks, config fields and parameter count. Given a
    run folder or a Hub repo (ORG/NAME), show that trained model: its task, data, training and
    last metrics."""
    if name not in get_catalog().models and (Path(name).is_dir() or "/" in name):
        _run_info(name, as_json)  # a run folder, or a Hub repo's ORG/NAME
        return
    data = model_info(name)
    if as_json:
        print_json(data)
        return
    click.echo(f"{data['name']}: {data['summary']}")
    for key in ("family", "plugin", "paper"):
        if data.get(key):
            click.echo(f"  {key}: {data[key]}")
    click.echo(f"  tasks: {', '.join(data['tasks'])}")
    click.echo(f"  parameters (default config): {data['parameters']:,}")
    click.echo(
        f"  memory to train: {data['train_state_bytes'] / 2**30:,.1f} GiB of weights, gradients "
        "and AdamW state (16 bytes a parameter), plus activations, which grow with the batch"
    )
    click.echo("  config:")
    table(
        ["  field", "type", "default"],
        [[f"  {f['name']}", f["type"], json.dumps(f["default"])] for f in data["config"]],
    )
    if data["train_defaults"]:
        click.echo(
            "  training defaults: "
            + ", ".join(f"{k}={v}" for k, v in data["train_defaults"].items())
        )


def _run_info(source: str, as_json: bool) -> None:
    from zoo_core.artifact import run_info  # here, not above: keeps torch out of `zoo list`

    data = run_info(source)
    if as_json:
        print_json(data)
        return
    # Every string below but the source may come from a Hub repo's config: shown() keeps its
    # escapes and control characters off the terminal.
    plugin = f"plugin {shown(data['plugin'])}" if data["plugin"] else ""
    if data["plugin"] and data["distribution"]:
        plugin += f", {data['distribution']}"
    click.echo(f"{source}: {shown(data['model'])} ({plugin}) for task {shown(data['task'])}")
    if data["folder"] != source:
        click.echo(f"  folder: {data['folder']}")
    data_line = shown(data["data"]) if data["data"] else "made by the task as it trains"
    if data["val_data"]:
        data_line += f"; validation: {shown(data['val_data'])}"
    click.echo(f"  data: {data_line}")
    if data["tokenizer"]:
        click.echo(f"  tokenizer: {shown(data['tokenizer'])}")
    origin = data.get("origin") or {}
    if isinstance(origin, dict) and origin.get("source"):
        how = "converted from" if origin.get("kind") == "import" else "started from"
        at = f"@{shown(origin['revision'])}" if origin.get("revision") else ""
        click.echo(f"  weights: {how} {shown(origin['source'])}{at}")
    seconds = "" if data["seconds"] is None else f" in {data['seconds']:.0f} s"
    if data["finished"]:
        click.echo(f"  trained: {data['steps']:,} steps{seconds}")
    else:
        budget = data["train_config"].get("time")
        if isinstance(budget, int | float) and not isinstance(budget, bool) and budget:
            planned = f" steps{seconds} of a {budget:g} s budget"
        elif data["planned_steps"]:
            planned = f" of {data['planned_steps']:,} steps{seconds}"
        else:
            planned = f" steps{seconds}"
        how = "continue with" if data["steps"] else "no checkpoint yet; start it again with"
        hint = f" ({how}: zoo train --resume {source})" if data["local"] else ""
        click.echo(f"  trained: {data['steps']:,}{planned}, unfinished{hint}")
    if data["metrics"]:
        click.echo(f"  metrics: {metrics(data['metrics'])}")
    if data["parameters"] is not None:
        click.echo(f"  parameters: {data['parameters']:,}")
    else:
        click.echo(
            f"  parameters: install {shown(data['distribution'] or 'its plugin')} to count them"
        )
    for key, title in (("model_config", "model config"), ("train_config", "training")):
        if data[key]:
            fields = ", ".join(f"{k}={json.dumps(v)}" for k, v in data[key].items())
            click.echo(f"  {title}: {shown(fields, 2000)}")


def _names(specs: list[Any], as_json: bool) -> None:
    """Tasks or tokenizers: the name, plugin and summary of each."""
    if as_json:
        print_json([{"name": s.name, "plugin": s.plugin, "summary": s.summary} for s in specs])
        return
    table(["name", "plugin", "summary"], [[s.name, s.plugin, s.summary] for s in specs])


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def tasks(as_json: bool) -> None:
    """List tasks."""
    _names(list_tasks(), as_json)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def tokenizers(as_json: bool) -> None:
    """List tokenizers."""
    _names(list_tokenizers(), as_json)


COMMANDS = (list_cmd, info, tasks, tokenizers)
