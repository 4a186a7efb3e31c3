"""Contract checks for every registered model: plugin authors run them on their own models.

```python
import pytest
from zoo_core.testing import check_model, model_names

@pytest.mark.parametrize("name", model_names(plugin="myplugin"))
def test_contract(name):
    check_model(name)
```

Each model is built at a small size (the model class's ``test_overrides`` over the variant's
defaults) and, for each task it declares: the spec is consistent, the model has the members of
the kind of model the task trains (a Protocol of ``zoo_core.protocols``), forward and backward
run with finite values, and a save/load round trip through the artifact format gives identical
outputs. What a token model declares is checked too: it reads ``max_context`` tokens (and,
declaring none, more than it is trained on), and its ``forward_step`` agrees with ``forward``.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo_core import _config, protocols
from zoo_core.artifacts import load_weights, save_weights
from zoo_core.catalog import get_model_spec, list_models, model_class
from zoo_core.errors import ZooError
from zoo_core.plugins import get_catalog
from zoo_core.tasks.base import task_class
from zoo_core.training.config import TrainConfig


@dataclass
class CheckResult:
    model: str
    check: str
    ok: bool
    message: str = ""


def model_names(pattern: str | None = None, plugin: str | None = None) -> list[str]:
    """Registered model names (optionally of one plugin), for ``pytest.mark.parametrize``."""
    return [s.name for s in list_models(pattern) if plugin is None or s.plugin == plugin]


def run_checks(name: str, overrides: dict[str, Any] | None = None) -> list[CheckResult]:
    """Every contract check of one model; a failed check does not stop the ones after it."""
    import torch  # here, not above: `zoo list` (which imports this module) imports no torch

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
    declared_checked: set[type] = set()
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

        protocol = type(task).model_protocol
        if protocol is not None:
            record(
                f"{task_name}: members",
                lambda p=protocol, t=task_name: _members(cls, config, p, t),
            )
        passed = record(f"{task_name}: forward/backward", forward_backward)
        record(f"{task_name}: save/load", round_trip)
        if passed and protocol in _DECLARED and protocol not in declared_checked:
            # Once per kind, and only over a forward that works: else it says nothing new.
            declared_checked.add(protocol)
            for check, fn in _DECLARED[protocol]:
                record(
                    f"{task_name}: {check}",
                    lambda fn=fn, task=task, p=protocol: fn(cls, config, task, p),
                )
    return results


def check_model(name: str, overrides: dict[str, Any] | None = None) -> None:
    """Run :func:`run_checks`; raise AssertionError listing the failures, if any."""
    failed = [r for r in run_checks(name, overrides) if not r.ok]
    if failed:
        raise AssertionError(
            f"model '{name}' fails: " + "; ".join(f"{r.check}: {r.message}" for r in failed)
        )


_SEE = "see 'What the zoo expects of a model' in docs/hooks.md"


def _members(cls: type, config: Any, protocol: type, task_name: str) -> None:
    """The model has every member of the Protocol of the task's kind of model."""
    import torch  # here, not above: `zoo list` (which imports this module) imports no torch

    torch.manual_seed(0)
    model = cls(config)
    missing = [m for m in protocols.members(protocol) if not hasattr(model, m)]
    # Every nn.Module has a forward, one that raises when it is not written.
    if "forward" in protocols.members(protocol) and type(model).forward is torch.nn.Module.forward:
        missing.append("forward")
    assert not missing and isinstance(model, protocol), (
        f"task '{task_name}' trains a model of the kind {protocol.__name__}, and this one "
        f"lacks {', '.join(missing)}; {_SEE}"
    )


def _read(model: Any, protocol: type, ids: Any) -> Any:
    """The model's output for ids ``(B, T)``, called as the tasks of its kind call it."""
    import torch  # here, not above: `zoo list` (which imports this module) imports no torch

    if protocol is protocols.SequenceClassifier:
        return model(ids, torch.ones_like(ids, dtype=torch.bool))
    return model(ids)


def _check_max_context(cls: type, config: Any, task: Any, protocol: type) -> None:
    """A declared ``max_context`` is a length the model reads (the tasks refuse longer inputs
    and generation fills it); declaring none, the model reads more than it is trained on."""
    import torch  # here, not above: `zoo list` (which imports this module) imports no torch

    torch.manual_seed(0)
    model = cls(config).eval()
    declared, from_config = protocols.max_context(model), protocols.max_context(config)
    for who, value in (("the model", declared), ("its config", from_config)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise AssertionError(
                f"{who} declares max_context {value!r}; declare a whole number of tokens, or "
                "None for any length"
            )
        if value is not None and value < 1:
            raise AssertionError(f"{who} declares max_context {value}; it reads at least 1 token")
    # The tasks check lengths against the config's, generation and the loss against the model's.
    assert from_config is None or declared == from_config, (
        f"the model declares max_context {declared} and its config {from_config}; the tasks read "
        "both, so they must agree"
    )
    trained = task.example_batch(config)[0].size(1)
    length = declared or max(2 * trained, protocols.context_length(config) or 0) + 1
    ids = torch.randint(
        int(config.vocab_size), (2, length), generator=torch.Generator().manual_seed(0)
    )
    try:
        with torch.no_grad():
            out = _read(model, protocol, ids)
    except Exception as exc:  # the model's own error, whatever it is, is the finding
        said = f"{type(exc).__name__}: {exc}"
        if declared is None:
            raise AssertionError(
                f"it declares no max_context (it reads any length) but fails on {length} tokens "
                f"({said}); declare max_context, the longest input it reads"
            ) from exc
        raise AssertionError(
            f"it declares max_context {declared} but fails on {declared} tokens ({said}); "
            "declare the longest input it reads"
        ) from exc
    if protocol is protocols.LanguageModel:
        assert out.shape[:2] == ids.shape, (
            f"on {length} tokens it returned logits of shape {tuple(out.shape)} for ids of "
            f"shape {tuple(ids.shape)}; a language model returns (batch, length, vocab_size)"
        )


def _check_forward_step(cls: type, config: Any, task: Any, protocol: type) -> None:
    """``forward_step``, fed a first chunk and then one token at a time with the state it
    returns, gives the logits ``forward`` gives on the whole sequence."""
    import torch  # here, not above: `zoo list` (which imports this module) imports no torch

    torch.manual_seed(0)
    model = cls(config).eval()
    step = protocols.forward_step(model)
    if step is None:
        return
    ids = task.example_batch(config)[0][:, :8]  # (B, T)
    T = min(ids.size(1), protocols.max_context(model) or ids.size(1))
    ids = ids[:, :T]
    with torch.no_grad():
        full = model(ids)  # (B, T, V)
        for first in sorted({1, max(1, T // 2)}):
            state, pieces = None, []
            for start, end in [(0, first), *((t, t + 1) for t in range(first, T))]:
                returned = step(ids[:, start:end], state)
                assert isinstance(returned, tuple) and len(returned) == 2, (
                    "forward_step must return (logits, state)"
                )
                logits, state = returned
                assert logits.shape == (*ids[:, start:end].shape, full.size(-1)), (
                    f"forward_step returned logits of shape {tuple(logits.shape)} for ids of "
                    f"shape {tuple(ids[:, start:end].shape)}; it returns (batch, length, vocab)"
                )
                pieces.append(logits)
            stepped = torch.cat(pieces, dim=1)
            gap = (stepped.float() - full.float()).abs()
            if not torch.allclose(stepped.float(), full.float(), rtol=1e-4, atol=1e-4):
                position = int(gap.amax(dim=(0, 2)).gt(1e-4).nonzero()[0])
                raise AssertionError(
                    f"forward_step disagrees with forward: fed {first} token(s), then one at a "
                    f"time, its logits at position {position} differ by up to "
                    f"{gap.max().item():.3g}; forward_step(ids, state) must continue exactly "
                    f"where the state left off"
                )


def _check_blocks(cls: type, config: Any, task: Any, protocol: type) -> None:
    """Declared ``blocks`` are sub-modules of the model, none inside another, and recomputing
    them in backward (activation checkpointing) gives the same loss, gradients and buffers."""
    import torch  # here, not above: `zoo list` (which imports this module) imports no torch

    from zoo_core.training import distributed  # here: it imports torch, which `zoo list` skips

    torch.manual_seed(0)
    model = cls(config).train()
    blocks = protocols.blocks(model)
    if not blocks:
        return
    inside = {id(m) for m in model.modules()}
    for i, block in enumerate(blocks):
        assert isinstance(block, torch.nn.Module) and id(block) in inside, (
            f"blocks[{i}] is not one of the model's sub-modules; declare the model's own blocks "
            f"(an nn.ModuleList, say); {_SEE}"
        )
        nested = {id(m) for m in block.modules()} - {id(block)}
        assert not any(id(other) in nested for other in blocks), (
            f"blocks[{i}] holds another declared block; declare blocks that do not overlap"
        )
    batch = task.example_batch(config)

    def loss_and_grads() -> tuple[Any, dict[str, Any], dict[str, Any]]:
        torch.manual_seed(1)
        model.zero_grad(set_to_none=True)
        _, loss = next(iter(task.training_step(model, batch)))
        loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        return loss.detach(), grads, {n: b.clone() for n, b in model.named_buffers()}

    before = {n: b.clone() for n, b in model.named_buffers()}
    plain = loss_and_grads()
    for name, buffer in model.named_buffers():
        buffer.copy_(before[name])
    distributed.recompute_in_backward(blocks)
    recomputed = loss_and_grads()
    for what, a, b in zip(("loss", "gradients", "buffers"), plain, recomputed, strict=True):
        same = (
            torch.allclose(a, b, rtol=1e-5, atol=1e-6)
            if isinstance(a, torch.Tensor)
            else a.keys() == b.keys()
            and all(torch.allclose(a[k].float(), b[k].float(), rtol=1e-5, atol=1e-6) for k in a)
        )
        assert same, (
            f"with its blocks recomputed in backward (activation_checkpointing) its {what} "
            "differ; a block's forward must depend only on its inputs and parameters"
        )


def _check_decode_step(cls: type, config: Any, task: Any, protocol: type) -> None:
    """``decode_step`` after ``encode``, fed a first chunk of the target and then one token at
    a time with the state it returns, gives the logits ``forward`` gives on the whole target."""
    import torch  # here, not above: `zoo list` (which imports this module) imports no torch

    torch.manual_seed(0)
    model = cls(config).eval()
    source, mask, target = task.example_batch(config)[:3]
    T = target.size(1)
    with torch.no_grad():
        full = model(source, mask, target)  # (B, T, V)
        memory = model.encode(source, mask)
        for first in sorted({1, max(1, T // 2)}):
            state, pieces = None, []
            for start, end in [(0, first), *((t, t + 1) for t in range(first, T))]:
                returned = model.decode_step(target[:, start:end], memory, mask, state)
                assert isinstance(returned, tuple) and len(returned) == 2, (
                    "decode_step must return (logits, state)"
                )
                logits, state = returned
                pieces.append(logits)
            stepped = torch.cat(pieces, dim=1)
            if stepped.shape != full.shape or not torch.allclose(
                stepped.float(), full.float(), rtol=1e-4, atol=1e-4
            ):
                gap = (stepped.float() - full.float()).abs().max().item()
                raise AssertionError(
                    f"decode_step disagrees with forward: fed {first} token(s), then one at a "
                    f"time, its logits differ by up to {gap:.3g}; decode_step(target, memory, "
                    "source_mask, state) must continue exactly where the state left off"
                )


# What a model may declare and the checks that hold it to it, per kind of model.
_DECLARED: dict[type, tuple[tuple[str, Any], ...]] = {
    protocols.LanguageModel: (
        ("max_context", _check_max_context),
        ("forward_step", _check_forward_step),
        ("blocks", _check_blocks),
    ),
    protocols.SequenceClassifier: (
        ("max_context", _check_max_context),
        ("blocks", _check_blocks),
    ),
    protocols.ImageClassifier: (("blocks", _check_blocks),),
    protocols.Seq2SeqModel: (("decode_step", _check_decode_step),),
}
