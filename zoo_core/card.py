"""The model card (README.md) of a run folder, built with huggingface_hub's ModelCard."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from zoo_core import artifacts


def _curve(folder: Path) -> list[dict[str, Any]]:
    path = folder / artifacts.METRICS_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def render_card(folder: Path, config: dict[str, Any], repo_id: str | None = None) -> str:
    """The card's text: YAML metadata, how to load the model, its configuration and curve."""
    from huggingface_hub import ModelCard, ModelCardData

    metrics = config.get("metrics", {})
    dataset = config.get("task_state", {}).get("data") or config.get("data") or "default"
    data = ModelCardData(
        library_name="zoo",
        tags=["zoo", "pytorch", "safetensors", config["family"], config["task"]],
        datasets=[Path(str(dataset)).name] if dataset else None,
        metrics=sorted(metrics) or None,
    )
    source = repo_id or str(folder)
    evals = [r for r in _curve(folder) if any(k.startswith("val_") for k in r)]
    curve = "\n".join(
        f"| {r['step']} | " + " | ".join(f"{r[k]:.4f}" for k in sorted(r) if k.startswith("val_")) + " |"
        for r in evals
    )
    header = ""
    if evals:
        keys = sorted(k for k in evals[-1] if k.startswith("val_"))
        header = "| step | " + " | ".join(keys) + " |\n|" + "---|" * (len(keys) + 1) + "\n"
    results = "\n".join(f"- {k}: {v:.4f}" for k, v in sorted(metrics.items()))
    content = f"""---
{data.to_yaml()}
---

# {config["model"]} ({config["task"]})

A `{config["model"]}` model of the `{config["family"]}` family, trained for the `{config["task"]}` task
with [zoo](https://pypi.org/project/zoo-core/). Its code comes from the `{config.get("distribution") or config.get("plugin")}`
plugin; this repository holds weights (safetensors) and configuration only.

## Use it

```bash
pip install zoo-core {config.get("distribution") or ""}
zoo generate {source}
```

```python
import zoo_core
artifact = zoo_core.load("{source}")
model = artifact.model
```

## Results

{results or "No evaluation yet."}

## Training curve

{header}{curve}

## Configuration

```json
{json.dumps({k: config[k] for k in ("model_config", "task_config", "train_config") if k in config}, indent=2)}
```
"""
    return str(ModelCard(content))


def write_card(folder: Path, config: dict[str, Any], repo_id: str | None = None) -> None:
    text = render_card(folder, config, repo_id)
    artifacts.atomic_write(folder / artifacts.CARD_FILE, lambda p: p.write_text(text, encoding="utf-8"))
