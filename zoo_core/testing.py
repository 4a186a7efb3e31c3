"""Contract checks for every registered model: plugin authors run them on their own models.

```python
import pytest
from zoo_core.testing import check_model, model_names

@pytest.mark.parametrize("name", model_names(plugin="myplugin"))
def test_contract(name):
    check_model(name)
```

Each model is built at a small size (the model class's ``test_overrides`` over the variant's
defaults) and, for each task it declares: the spec is consistent, forward and backward run with
finite values, and a save/load round trip through the artifact format gives identical outputs.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo_core.errors import ZooError


@dataclass
class CheckResult:
    model: str
    check: str
    ok: bool
    message: str = ""


def model_names(pattern: str | None = None, plugin: str | None = None) -> list[str]:
    """Registered model names (optionally of one plugin), for ``pytest.mark.parametrize``."""
    from zoo_core.catalog import list_models

    return [s.name for s in list_models(pattern) if plugin is None or s.plugin == plugin]


def run_checks(name: str, overrides: dict[str, Any] | None = None) -> list[CheckResult]:
    """Every contract check of one model; a failed check does not stop the ones after it."""
    import torch

    from zoo_core import _config
    from zoo_core.artifacts import load_weights, save_weights
    from zoo_core.catalog import get_model_spec, model_class
    from zoo_core.plugins import get_catalog
    from zoo_core.tasks.base import task_class

    results: list[CheckResult] = []

    def record(check: str, fn) -> Any:
        try:
            value = fn()
        except (AssertionError, ZooError, Exception) as exc:  # report, keep going
            results.append(CheckResult(name, check, False, f"{type(exc).__name__}: {exc}"))
            return None
        results.append(CheckResult(name, check, True))
        return value if value is not None else True

    spec = record("spec", lambda: get_model_spec(name))
    if spec is None:
        return results
    cls = record("import", lambda: model_class(spec))
    if cls is None:
        return results

    def spec_consistent() -> None:
        from zoo_core.training.config import TrainConfig

        assert dataclasses.is_dataclass(cls.config_class), "config_class is not a dataclass"
        fields = _config.field_types(cls.config_class)
        unknown = sorted(set(spec.defaults) - set(fields))
        assert not unknown, f"defaults name fields the config lacks: {unknown}"
        required = [
            f.name
            for f in dataclasses.fields(cls.config_class)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ]
        assert not required, (
            f"config fields without a default: {required}; give every field one (a task sets "
            "vocab_size, num_classes... from the data over it)"
        )
        _config.build(cls.config_class, dict(spec.defaults), f"model '{name}' defaults")
        missing = [t for t in spec.tasks if t not in get_catalog().tasks]
        assert not missing, f"declares tasks no plugin registers: {missing}"
        known = set(_config.field_types(TrainConfig))
        for task_name in spec.tasks:
            known |= set(_config.field_types(task_class(task_name).Options))
        stray = sorted(set(spec.train_defaults) - known)
        assert not stray, (
            f"train_defaults name settings that neither the Trainer nor its tasks have: {stray}"
        )

    if not record("metadata", spec_consistent):
        return results
    small = {**getattr(cls, "test_overrides", {}), **(overrides or {})}
    config = record(
        "config", lambda: _config.build(cls.config_class, {**spec.defaults, **small}, name)
    )
    if config is None:
        return results
    for task_name in spec.tasks:
        task = record(f"{task_name}: task", lambda t=task_name: task_class(t)())
        if task is None:
            continue

        def forward_backward(task=task) -> None:
            torch.manual_seed(0)
            model = cls(config)
            model.train()
            batch = task.example_batch(config)
            losses = list(task.training_step(model, batch))
            assert losses, "training_step yielded no loss"
            for opt_name, loss in losses:
                assert loss.dim() == 0, f"loss of '{opt_name}' is not a scalar: {tuple(loss.shape)}"
                assert math.isfinite(loss.item()), f"loss of '{opt_name}' is {loss.item()}"
                model.zero_grad(set_to_none=True)
                loss.backward()
                grads = [p.grad for p in model.parameters() if p.grad is not None]
                assert grads, f"no parameter received a gradient from '{opt_name}'"
                assert all(torch.isfinite(g).all() for g in grads), "non-finite gradient"

        def round_trip(task=task) -> None:
            torch.manual_seed(0)
            model = cls(config).eval()
            batch = task.example_batch(config)
            with torch.no_grad():
                before = task.outputs(model, batch)
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "model.safetensors"
                save_weights(model, path)
                torch.manual_seed(1)  # a different initialisation, overwritten by the load
                loaded = cls(config).eval()
                load_weights(loaded, path)
            with torch.no_grad():
                after = task.outputs(loaded, batch)
            assert torch.equal(before, after), "outputs differ after a save/load round trip"

        record(f"{task_name}: forward/backward", forward_backward)
        record(f"{task_name}: save/load", round_trip)
    return results


def check_model(name: str, overrides: dict[str, Any] | None = None) -> None:
    """Run :func:`run_checks`; raise AssertionError listing the failures, if any."""
    failed = [r for r in run_checks(name, overrides) if not r.ok]
    if failed:
        raise AssertionError(
            f"model '{name}' fails: " + "; ".join(f"{r.check}: {r.message}" for r in failed)
        )
