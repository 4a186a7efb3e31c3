"""A run folder from a stranger whose sizes are hostile: loading refuses them in one line,
before memory is spent on them, and every reference model still loads as it was trained."""

import dataclasses
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from zoo_lstm.model import LSTMConfig

import zoo_core
from zoo_core import artifacts
from zoo_core.errors import ZooError
from zoo_core.runconfig import RunConfig, build_task, saved_model_config

# Tiny settings per reference model (and the task options that keep its training short).
TINY = {
    "lstm": {"hidden_size": 16, "embed_dim": 16, "seq_len": 16},
    "transformer": {
        "n_layer": 1,
        "n_head": 2,
        "n_embd": 16,
        "context_length": 16,
        "pos_encoding": "alibi",  # a buffer the weights file does not hold
    },
    "transformer-encoder": {"n_layer": 1, "n_head": 2, "n_embd": 16, "context_length": 16},
    "resnet": {"width": 4, "image_size": 16, "num_images": 60},
    "gan": {
        "latent_dim": 8,
        "image_size": 16,
        "width": 8,
        "d_width": 4,
        "num_images": 60,
        "classifier_steps": 0,
        "eval_samples": 8,
        "grid": 4,
    },
    "gan-mlp": {"hidden": 16, "layers": 2, "latent_dim": 4, "eval_samples": 16},
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, zoo_core.Artifact]:
    """Each reference model trained for two steps at tiny sizes."""
    base = tmp_path_factory.mktemp("sizes")
    runs = {}
    for name, overrides in TINY.items():
        torch.manual_seed(0)
        runs[name], _ = zoo_core.train(
            name,
            out=base / name,
            overrides=dict(overrides),
            steps=2,
            batch_size=4,
            eval_interval=100,
            device="cpu",
            progress=False,
        )
    return runs


def _outputs(artifact: zoo_core.Artifact) -> torch.Tensor:
    artifact.model.eval()
    task = artifact.task
    model_cfg = saved_model_config(type(artifact.model), artifact.config)
    with torch.no_grad():
        return task.outputs(artifact.model, task.example_batch(model_cfg))


@pytest.mark.parametrize("name", list(TINY))
def test_reference_models_load_as_trained(trained, name):
    before = trained[name]
    loaded = zoo_core.load(before.path)
    # As a model built at random and given the weights by copying loads (the way before).
    cls = type(before.model)
    copied = cls(saved_model_config(cls, before.config))
    artifacts.load_weights(copied, before.path / artifacts.WEIGHTS_FILE)
    copied.eval()
    assert torch.equal(_outputs(loaded), _outputs(dataclasses.replace(loaded, model=copied)))
    # And as trained (a trained model may keep another memory layout: equal to rounding).
    torch.testing.assert_close(_outputs(loaded), _outputs(before))
    state, loaded_state = before.model.state_dict(), loaded.model.state_dict()
    assert state.keys() == loaded_state.keys()
    assert all(torch.equal(state[k], loaded_state[k]) for k in state)
    assert not any(t.is_meta for t in [*loaded.model.parameters(), *loaded.model.buffers()])
    # Tied weights are one parameter again, as the model defines them.
    assert len(list(loaded.model.parameters())) == len(list(before.model.parameters()))


def test_tied_weights_stay_tied(trained):
    model = zoo_core.load(trained["transformer"].path).model
    assert model.head.weight is model.wte.weight


def _hostile(run: Path, out: Path, **sizes) -> Path:
    """A copy of ``run`` whose config asks for ``sizes``; its weights are the tiny ones."""
    out.mkdir()
    for name in (artifacts.CONFIG_FILE, artifacts.WEIGHTS_FILE, artifacts.TOKENIZER_FILE):
        if (run / name).exists():
            (out / name).write_bytes((run / name).read_bytes())
    config = json.loads((out / artifacts.CONFIG_FILE).read_text())
    config["model_config"].update(sizes)
    (out / artifacts.CONFIG_FILE).write_text(json.dumps(config))
    return out


_LIMITED = textwrap.dedent(
    """
    import resource, sys
    limit = 2 * 2**30
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    import zoo_core
    from zoo_core.errors import ZooError
    try:
        zoo_core.load(sys.argv[1])
    except ZooError as exc:
        print(exc)
        sys.exit(3)
    """
)


@pytest.mark.parametrize(
    "sizes",
    [{"vocab_size": 200_000_000}, {"n_embd": 16384, "n_layer": 48}],
    ids=["vocab", "width"],
)
def test_huge_config_is_refused_before_allocation(trained, tmp_path, sizes):
    run = _hostile(trained["transformer"].path, tmp_path / "hostile", **sizes)
    proc = subprocess.run(
        [sys.executable, "-c", _LIMITED, str(run)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 3, proc.stderr
    line = proc.stdout.strip()
    # Refused at the header, or sooner: while it is built, once it registers far more tensors
    # than the file holds.
    assert "\n" not in line
    assert ("do not fit the model" in line and "shape mismatches" in line) or (
        "far more tensors than the" in line
    )
    assert "Traceback" not in proc.stderr


def test_a_file_of_another_dtype_is_refused(trained, tmp_path):
    run = _hostile(trained["lstm"].path, tmp_path / "half")
    state, _ = artifacts.state_from_file(run / artifacts.WEIGHTS_FILE)
    artifacts.state_to_file({k: v.half() for k, v in state.items()}, run / artifacts.WEIGHTS_FILE)
    with pytest.raises(ZooError, match=r"dtype mismatches: .*\(file F16, model F32\)"):
        zoo_core.load(run)


def test_missing_and_unexpected_keys_are_named(trained, tmp_path):
    run = _hostile(trained["lstm"].path, tmp_path / "renamed")
    state, _ = artifacts.state_from_file(run / artifacts.WEIGHTS_FILE)
    first = next(k for k in sorted(state) if "lstm" in k)  # not one of the tied pair
    state["extra.weight"] = state.pop(first)
    artifacts.state_to_file(state, run / artifacts.WEIGHTS_FILE)
    with pytest.raises(ZooError, match=rf"missing keys: {first}; unexpected keys: extra.weight"):
        zoo_core.load(run)


# -- task state and options ------------------------------------------------------------------------
def _edit(run: Path, out: Path, change) -> Path:
    """A copy of ``run`` whose config.json ``change`` has edited (in place)."""
    _hostile(run, out)
    config = json.loads((out / artifacts.CONFIG_FILE).read_text())
    change(config)
    (out / artifacts.CONFIG_FILE).write_text(json.dumps(config))
    return out


@pytest.mark.parametrize("name", ["resnet", "gan"])
def test_an_image_size_beyond_the_limit_is_refused(trained, tmp_path, name):
    run = _edit(
        trained[name].path,
        tmp_path / "big",
        lambda c: c["task_state"].update(image_size=100_000),
    )
    with pytest.raises(ZooError, match=r"image_size must be a whole number from 1 to 4,096"):
        zoo_core.load(run)


@pytest.mark.parametrize("name", ["resnet", "gan"])
def test_an_image_size_the_model_contradicts_is_refused(trained, tmp_path, name):
    run = _edit(
        trained[name].path, tmp_path / "other", lambda c: c["task_state"].update(image_size=32)
    )
    with pytest.raises(ZooError, match=r"image_size 32 and the model's is 16"):
        zoo_core.load(run)


@pytest.mark.parametrize("name", ["resnet", "gan"])
def test_num_images_beyond_the_limit_is_refused(trained, tmp_path, name):
    run = _edit(
        trained[name].path, tmp_path / "many", lambda c: c["task_config"].update(num_images=10**7)
    )
    with pytest.raises(ZooError, match=r"num_images must be a whole number .* 200,000"):
        zoo_core.load(run)


def test_a_tokenizer_larger_than_the_vocabulary_is_refused(trained, tmp_path):
    run = _hostile(trained["lstm"].path, tmp_path / "wide")
    tokenizer = json.loads((run / artifacts.TOKENIZER_FILE).read_text())
    tokenizer["chars"] += [chr(0x4E00 + i) for i in range(50)]  # ids the embedding has no row for
    (run / artifacts.TOKENIZER_FILE).write_text(json.dumps(tokenizer))
    with pytest.raises(ZooError, match=r"vocab_size \d+ is smaller than the tokenizer's"):
        zoo_core.load(run)


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda classes: [*classes, "extra"],
            r"num_classes 2 is smaller than the data needs \(3\)",
        ),
        (lambda classes: classes[:1], r"num_classes is 2 but the task has 1 classes"),
    ],
    ids=["more", "fewer"],
)
def test_classes_the_head_contradicts_are_refused(trained, tmp_path, change, message):
    run = _edit(
        trained["transformer-encoder"].path,
        tmp_path / "classes",
        lambda c: c["task_state"].update(classes=change(c["task_state"]["classes"])),
    )
    with pytest.raises(ZooError, match=message):
        zoo_core.load(run)


@pytest.mark.parametrize(
    "options, limit",
    [({"length": 10**9}, "65,536"), ({"val_size": 2**20, "length": 512}, "67,108,864")],
)
def test_synthetic_sizes_beyond_the_limit_are_refused(tmp_path, options, limit):
    config = RunConfig(model="lstm", task="copy", model_config={}, task_config=options)
    with pytest.raises(ZooError, match=limit):
        build_task(config, tmp_path, LSTMConfig(vocab_size=16))


def test_gan_sample_counts_beyond_the_limit_are_refused(tmp_path):
    config = RunConfig(model="gan-mlp", task="toy-2d", model_config={}, task_config={})
    config.task_config = {"eval_samples": 10**9}
    with pytest.raises(ZooError, match=r"eval_samples must be .* 100,000"):
        build_task(config, tmp_path)
