import json
import os
import re
import shutil
import stat
from pathlib import Path

import pytest
import torch
from torch import nn

import zoo_core
from zoo_core import artifacts
from zoo_core.artifact import run_info
from zoo_core.errors import ZooError


class Tied(nn.Module):
    def __init__(self, n=8):
        super().__init__()
        self.embed = nn.Embedding(5, n)
        self.head = nn.Linear(n, 5, bias=False)
        self.head.weight = self.embed.weight


def test_tied_weights_are_stored_once_and_restored(tmp_path):
    from safetensors.torch import load_file

    torch.manual_seed(0)
    model = Tied()
    artifacts.save_weights(model, tmp_path / "m.safetensors")
    assert load_file(tmp_path / "m.safetensors").keys() == {"embed.weight"}  # stored once
    state, meta = artifacts.state_from_file(tmp_path / "m.safetensors")
    assert meta == {"format": "pt"}  # one key: config.json names the model
    other = Tied()
    artifacts.load_weights(other, tmp_path / "m.safetensors")
    assert torch.equal(other.embed.weight, model.embed.weight)
    assert other.head.weight is other.embed.weight
    # Read for a model, the name the file left out is there, as the model's state_dict has it.
    state, _ = artifacts.state_from_file(tmp_path / "m.safetensors", Tied())
    assert (
        state.keys() == model.state_dict().keys() and state["head.weight"] is state["embed.weight"]
    )
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no temp file left


def test_weights_written_with_a_tied_metadata_key_still_load():
    """Files written before the zoo used safetensors' own writer list their aliases in a
    ``zoo.tied`` metadata key, beside ``zoo.model``; this one was written by that code."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    old = Path(__file__).parent / "data" / "tied-zoo-tied-key.safetensors"
    with safe_open(str(old), framework="pt") as f:
        assert f.metadata()["zoo.tied"] == '{"head.weight": "embed.weight"}'
    stored = load_file(old)["embed.weight"]
    model = Tied(4)
    artifacts.load_weights(model, old)
    assert torch.equal(model.embed.weight, stored) and model.head.weight is model.embed.weight
    state, meta = artifacts.state_from_file(old)  # with no model, the key still names the alias
    assert meta["zoo.model"] == "tied" and torch.equal(state["head.weight"], stored)


_WRITE = """
import sys, torch
from zoo_core import artifacts
from zoo_core.artifact import run_info
g = torch.Generator().manual_seed(0)
state = {"w": torch.randn(3, 4, generator=g), "half": torch.randn(5, generator=g).bfloat16(),
         "steps": torch.arange(3), "mask": torch.tensor([True, False]), "scalar": torch.tensor(2.5),
         "empty": torch.zeros(0, 3)}
state["w_alias"] = state["w"]  # shares storage: stored once
artifacts.state_to_file(state, sys.argv[1])
"""


def test_the_same_tensors_give_the_same_file_bytes_in_every_process(tmp_path):
    import subprocess
    import sys

    from safetensors.torch import load_file

    paths = [tmp_path / f"{i}.safetensors" for i in range(4)]
    for path in paths:  # each process hashes strings with its own seed
        subprocess.run([sys.executable, "-c", _WRITE, str(path)], check=True)
    assert len({path.read_bytes() for path in paths}) == 1
    # safetensors itself reads what the zoo writes: every dtype, a scalar, an empty tensor.
    tensors = load_file(paths[0])
    assert tensors["half"].dtype == torch.bfloat16 and tensors["mask"].tolist() == [True, False]
    assert tensors["scalar"].shape == () and tensors["empty"].shape == (0, 3)
    g = torch.Generator().manual_seed(0)
    assert torch.equal(tensors["w"], torch.randn(3, 4, generator=g))
    assert "w_alias" not in tensors
    state, meta = artifacts.state_from_file(paths[0])
    assert meta == {"format": "pt"}
    assert state.keys() == tensors.keys()


def test_strict_load_names_missing_unexpected_and_mismatched_keys(tmp_path):
    artifacts.state_to_file(
        {"embed.weight": torch.zeros(5, 4), "extra.bias": torch.zeros(3)},
        tmp_path / "w.safetensors",
    )
    with pytest.raises(ZooError) as info:
        artifacts.load_weights(Tied(8), tmp_path / "w.safetensors")
    message = str(info.value)
    assert "unexpected keys: extra.bias" in message
    assert "embed.weight (file (5, 4), model (5, 8))" in message


def test_a_file_that_is_not_safetensors_is_a_clear_error(tmp_path):
    bad = tmp_path / "model.safetensors"
    bad.write_bytes(b"\x80\x04not safetensors at all")
    with pytest.raises(ZooError, match="not a readable safetensors file"):
        artifacts.load_weights(Tied(), bad)


@pytest.mark.parametrize(
    "task, command, pipeline",
    [
        ("lm", "zoo generate acme/m --prompt", "text-generation"),
        ("image-classification", "zoo predict acme/m picture.png", "image-classification"),
        ("sequence-classification", "zoo predict acme/m 'a text", "text-classification"),
        ("image-generation", "zoo generate acme/m --num 64 --out grid.png", None),
        ("parity", "zoo eval acme/m", None),  # a task that makes its own data
    ],
)
def test_the_card_shows_what_to_try_with_a_model_of_its_task(tmp_path, task, command, pipeline):
    from zoo_core.card import render_card
    from zoo_core.runconfig import RunConfig

    config = RunConfig("m", task, {}, family="f", distribution="zoo-f", metrics={})
    text = render_card(tmp_path, config, repo_id="acme/m")
    assert "zoo pull acme/m\n" + command in text
    tags = [line for line in text.splitlines() if line.startswith("pipeline_tag:")]
    assert tags == ([f"pipeline_tag: {pipeline}"] if pipeline else [])


def test_a_loaded_artifact_generates_as_a_pipeline_would(tiny_run):
    import zoo_core

    artifact = zoo_core.load(tiny_run)
    assert repr(artifact) == (
        f"Artifact('{tiny_run}', model='lstm', task='lm', "
        f"parameters={sum(p.numel() for p in artifact.model.parameters()):,})"
    )
    # The prompt may be given by position, as to a Hugging Face pipeline.
    by_position = artifact.generate("def ", length=12, seed=1)
    assert by_position == artifact.generate(prompt="def ", length=12, seed=1)
    assert len(by_position) == 12  # a character model: one character a token
    # An option of another library is named, with the ones this task takes.
    with pytest.raises(ZooError, match="unexpected keyword argument 'max_new_tokens'.*length"):
        artifact.generate("def ", max_new_tokens=5)
    for length in (0, -3, 2.5):
        with pytest.raises(ZooError, match="length must be a whole number of tokens"):
            artifact.generate("def ", length=length)
    with pytest.raises(ZooError, match="the prompt must be a text \\(str\\), not list"):
        artifact.generate(["def ", "class "], length=4)
    # Sampling with no seed leaves torch's global generator as it was, neither reseeded nor
    # advanced: a seeded program around it draws what it would draw without it.
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    unseeded = {artifact.generate("def ", length=12) for _ in range(3)}
    assert torch.equal(torch.rand(3), expected)
    assert len(unseeded) > 1  # and each call draws a fresh sample
    # The same defaults as `zoo generate`: the same seed gives the same text either way.
    from zoo_testutil import run_zoo

    cli = run_zoo("generate", tiny_run, "--prompt", "def ", "--seed", "4").stdout
    assert cli == "def " + artifact.generate("def ", seed=4) + "\n"
    # A temperature near zero is greedy decoding, not a sampling error on infinities.
    assert artifact.generate("def ", length=12, temperature=1e-40, seed=5) == artifact.generate(
        "def ", length=12, temperature=0
    )


def test_streamed_text_is_the_text_generate_returns_and_the_command_prints(tiny_run):
    from zoo_testutil import run_zoo

    from zoo_core.inference import PictureOptions, SamplingOptions

    artifact = zoo_core.load(tiny_run)
    options = SamplingOptions(length=40, temperature=1.0, seed=2)
    pieces: list[str] = []
    text = artifact.generate("def ", options, stream=pieces.append)
    assert len(pieces) > 1 and "".join(pieces) == text
    assert text == artifact.generate("def ", length=40, temperature=1.0, seed=2)
    cli = run_zoo(
        "generate",
        tiny_run,
        "--prompt",
        "def ",
        "--length",
        "40",
        "--temperature",
        "1",
        "--seed",
        "2",
    ).stdout
    assert cli == "def " + text + "\n"
    with pytest.raises(ZooError, match="give options or keywords \\(seed\\), not both"):
        artifact.generate("def ", options, seed=3)
    with pytest.raises(ZooError, match="takes SamplingOptions, not PictureOptions"):
        artifact.generate("def ", PictureOptions(num=4))
    with pytest.raises(ZooError, match="draws no pictures"):
        artifact.sample_to_file("x.png", num=4)


def test_evaluate_takes_its_options_as_a_dataclass_or_as_keywords(tiny_run):
    from zoo_core.inference import EvalOptions

    artifact = zoo_core.load(tiny_run)
    given = artifact.evaluate(None, EvalOptions(batch_size=8, task={"seq_len": 64}))
    assert given == pytest.approx(artifact.evaluate(batch_size=8, seq_len=64))
    with pytest.raises(ZooError, match="the batch size must be at least 1, not 0"):
        artifact.evaluate(batch_size=0)


def test_a_loaded_language_model_is_scored_on_longer_windows(tiny_run):
    artifact = zoo_core.load(tiny_run)  # trained with windows of 32 tokens
    trained = artifact.evaluate()
    longer = artifact.evaluate(seq_len=64)
    assert longer["val_loss"] != trained["val_loss"] and longer["val_loss"] > 0
    # The task's own evaluate on a loaded model reads the same validation text.
    fresh = zoo_core.load(tiny_run)
    assert fresh.task.evaluate(fresh.model, 32, seq_len=64) == pytest.approx(longer)
    with pytest.raises(ZooError, match="unexpected keyword argument 'max_len'.*seq_len"):
        artifact.evaluate(max_len=64)


def test_an_lstm_as_wide_as_the_readme_says(tmp_path):
    model = zoo_core.create_model("lstm", num_layers=3)
    assert model.lstm.num_layers == 3
    with pytest.raises(ZooError, match="tie_weights needs embed_dim == hidden_size"):
        zoo_core.create_model("lstm", hidden_size=512)
    wide = zoo_core.create_model("lstm", hidden_size=512, embed_dim=512)
    assert wide.lstm.hidden_size == 512


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_written_files_and_folders_get_the_umasks_permissions(tmp_path, umask):
    # Temporary files are private (0600), and safetensors writes its files 0600 as well: what the
    # zoo renames into place gets the permissions open() and mkdir() would give instead.
    previous = os.umask(umask)
    try:
        artifacts.state_to_file({"w": torch.ones(2)}, tmp_path / "model.safetensors")
        artifacts.write_json(tmp_path / "config.json", {"a": 1})
        with artifacts.new_folder(tmp_path / "data") as folder:
            (folder / "x.txt").write_text("x")
    finally:
        os.umask(previous)
    for name in ("model.safetensors", "config.json"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~umask, name
    assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o777 & ~umask
    # A file that is replaced keeps its permissions.
    (tmp_path / "config.json").chmod(0o640)
    artifacts.write_json(tmp_path / "config.json", {"a": 2})
    assert stat.S_IMODE((tmp_path / "config.json").stat().st_mode) == 0o640


@pytest.mark.parametrize(
    "config, message",
    [
        ([1, 2], "its config.json holds a JSON list, not an object"),
        ({"model_type": "bert", "architectures": ["BertModel"]}, "is a bert config of another"),
        ({"model": "lstm", "task": "lm"}, "has no 'model_config'"),
        ({"model": "lstm", "task": "lm", "model_config": "big"}, "has 'model_config' of the wrong"),
        ({"model": "lstm", "model_config": {}}, "has no 'task'"),
    ],
)
def test_a_folder_whose_config_is_not_a_zoo_config_is_one_line(tiny_run, tmp_path, config, message):
    folder = tmp_path / "odd"
    shutil.copytree(tiny_run, folder)
    (folder / "config.json").write_text(json.dumps(config))
    for use in (zoo_core.load, run_info):
        with pytest.raises(ZooError, match=re.escape(message)):
            use(folder)


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "is not a valid char tokenizer: Expecting property name"),
        ('{"type": "char"}', "is not a valid char tokenizer: no field 'chars'"),
        ("[1, 2]", "is not a valid char tokenizer: it holds a JSON list"),
    ],
)
def test_a_malformed_tokenizer_file_is_one_line(tiny_run, tmp_path, zoo, content, message):
    folder = tmp_path / "odd"
    shutil.copytree(tiny_run, folder)
    (folder / "tokenizer.json").write_text(content)
    with pytest.raises(ZooError, match=re.escape(message)):
        zoo_core.load(folder)
    result = zoo("eval", folder, check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and message in result.stderr


def test_info_on_a_path_that_is_not_there_says_so(zoo, tmp_path):
    result = zoo("info", tmp_path / "no" / "run", check=False)
    assert result.returncode == 1
    assert "is neither a run folder nor a Hub repo id" in result.stderr
