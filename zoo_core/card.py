"""The model card (README.md) of a run folder, built with huggingface_hub's ModelCard."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from zoo_core import artifacts
from zoo_core.data import hf
from zoo_core.errors import ZooError
from zoo_core.plugins import get_catalog
from zoo_core.runconfig import RunConfig
from zoo_core.tasks.base import Task, task_class

# Results of a run that has not trained to its end (or trains on): no final metrics to show.
_UNFINISHED = "Unfinished: its training has not reached its end, so it has no final results yet."


def _task(name: str) -> type[Task]:
    """The task class ``name`` (the base class for a task that is not installed: a card can
    still be written, with the defaults)."""
    try:
        return task_class(name)
    except ZooError:
        return Task


def task_pictures(task: str) -> dict[str, str]:
    """The pictures a task writes into a run folder, with their captions."""
    return dict(_task(task).pictures)


def all_picture_names() -> set[str]:
    """The picture files of every installed task: what a run folder may hold besides its model."""
    return {name for task in get_catalog().tasks for name in task_pictures(task)}


def pictures(folder: Path, config: RunConfig) -> dict[str, str]:
    """The pictures of the run in ``folder`` that are there, with their captions."""
    return {
        name: caption
        for name, caption in task_pictures(config.task).items()
        if (folder / name).is_file()
    }


def _dataset_name(config: RunConfig) -> str:
    """The data set as the Hub names it (``ORG/NAME``, so the Hub links the two), or the name
    of the file, folder or embedded data it was trained on."""
    name = str(config.data_name or "default")
    if hf.is_hub(name):
        return hf.parse(name).repo
    return Path(name).name


def card_data(config: RunConfig, repo_id: str | None = None) -> Any:
    """The card's YAML metadata: library, tags, data set, and the last evaluation's metrics."""
    from huggingface_hub import EvalResult, ModelCardData

    metrics = config.metrics or {}
    dataset = _dataset_name(config)
    pipeline_tag = _task(config.task).pipeline_tag
    task_type = pipeline_tag or config.task
    results = [
        EvalResult(
            task_type=task_type,
            dataset_type=dataset,
            dataset_name=dataset,
            dataset_split="validation",
            metric_type=name,
            metric_name=name,
            metric_value=round(float(value), 6),
        )
        for name, value in sorted(metrics.items())
    ]
    return ModelCardData(
        library_name="zoo",
        pipeline_tag=pipeline_tag,
        tags=["zoo", "pytorch", "safetensors", config.family_name, config.task],
        datasets=[dataset],
        metrics=sorted(metrics) or None,
        model_name=repo_id or config.model,
        eval_results=results or None,
    )


def _use(config: RunConfig, source: str, distribution: str, hub: bool) -> str:
    pull = f"zoo pull {source}\n" if hub else ""
    run = _task(config.task).try_command.format(source=source)
    load = f"hf:{source}" if hub else source
    return f"""```bash
pip install zoo-core {distribution}
{pull}{run}
```

```python
import zoo_core

artifact = zoo_core.load("{load}")  # weights (safetensors), config and tokenizer
model = artifact.model  # a plain torch.nn.Module
```

Only `model.safetensors` is read as weights, and no code from this repository is run: the
model's code comes from the installed `{distribution}` plugin."""


def _origin(origin: dict[str, Any]) -> str:
    """A paragraph naming the weights it was converted or initialised from, if any."""
    if not origin.get("source"):
        return ""
    how = "converted from" if origin.get("kind") == "import" else "initialised from"
    layout = f" ({origin['format']} layout)" if origin.get("format") else ""
    revision = f" at revision `{origin['revision']}`" if origin.get("revision") else ""
    sha = f" (model.safetensors sha256 `{origin['sha256']}`)" if origin.get("sha256") else ""
    return f"\nIts weights were {how} `{origin['source']}`{layout}{revision}{sha}.\n"


def render_card(
    folder: Path, config: RunConfig, repo_id: str | None = None, revision: str | None = None
) -> str:
    """The card's text: YAML metadata, how to load the model, its configuration and curve.
    ``revision``: the branch the card is pushed to, which its commands name (but main)."""
    from huggingface_hub import ModelCard

    metrics = config.metrics or {}
    distribution = config.distribution or config.plugin
    source = repo_id or str(folder)
    if repo_id and revision and revision != "main":
        source = f"{repo_id}@{revision}"
    evals = [r for r in artifacts.read_metrics(folder) if any(k.startswith("val_") for k in r)]
    curve = "\n".join(
        f"| {r['step']} | "
        + " | ".join(artifacts.format_metric(r[k]) for k in sorted(r) if k.startswith("val_"))
        + " |"
        for r in evals
    )
    header = ""
    if evals:
        keys = sorted(k for k in evals[-1] if k.startswith("val_"))
        header = "| step | " + " | ".join(keys) + " |\n|" + "---|" * (len(keys) + 1) + "\n"
    results = "\n".join(f"- {k}: {artifacts.format_metric(v)}" for k, v in sorted(metrics.items()))
    settings = {
        "model_config": config.model_config,
        "task_config": config.task_config,
        "train_config": config.train_config,
    }
    origin = _origin(config.origin)
    trained = f"trained for the `{config.task}` task\non `{_dataset_name(config)}`"
    if config.origin.get("kind") == "import":  # not trained here: converted
        trained = f"for the `{config.task}` task, converted"
    shown = "".join(
        f"\n![{caption}]({name})\n\n*{caption}.*\n"
        for name, caption in pictures(folder, config).items()
    )
    content = f"""---
{card_data(config, repo_id).to_yaml()}
---

# {config.model} ({config.task})

A `{config.model}` model of the `{config.family_name}` family, {trained} with [zoo](https://pypi.org/project/zoo-core/). Its code comes from the
`{distribution}` plugin; this repository holds weights (safetensors) and configuration only.
{origin}
## Use it

{_use(config, source, distribution, repo_id is not None)}

## Results

{results or _UNFINISHED}
{shown}
## Training curve

{header}{curve or "No evaluation was logged."}

## Training configuration

```json
{json.dumps(settings, indent=2)}
```
"""
    return str(ModelCard(content))


def write_card(folder: Path, config: RunConfig, repo_id: str | None = None) -> None:
    """Write the run's model card (``README.md``) into ``folder``."""
    text = render_card(folder, config, repo_id)
    artifacts.atomic_write(
        folder / artifacts.CARD_FILE, lambda p: p.write_text(text, encoding="utf-8")
    )
