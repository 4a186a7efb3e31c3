"""config.json is read and written through one typed record, and runs of earlier versions load.

``fixtures/lstm-run-0.1.0`` is a run folder written by zoo 0.1.0 before the record existed (a
tiny `lstm`, 3 steps on the embedded text), weights with the ``zoo.tied`` metadata of that time.
"""

import json
import shutil
from pathlib import Path

import pytest

import zoo_core
from zoo_core.artifact import run_info
from zoo_core.errors import ZooError
from zoo_core.runconfig import RunConfig

FIXTURE = Path(__file__).parent / "fixtures" / "lstm-run-0.1.0"


def test_a_run_of_an_earlier_version_loads_and_generates():
    artifact = zoo_core.load(FIXTURE)
    assert artifact.config.model == "lstm" and artifact.config.tokenizer == "char"
    assert artifact.config.finished and set(artifact.config.metrics) == {"val_loss", "val_bpc"}
    # Tied weights come back tied, as they were saved.
    assert artifact.model.head.weight.data_ptr() == artifact.model.embed.weight.data_ptr()
    first = artifact.generate("The ", length=20, seed=3)
    assert first == zoo_core.load(FIXTURE).generate("The ", length=20, seed=3)
    assert len(first) == 20
    metrics = artifact.evaluate(batch_size=2)
    assert metrics["val_loss"] == pytest.approx(5.1265, abs=0.1)


def test_reading_and_writing_the_record_keeps_the_file_as_it_was():
    data = json.loads((FIXTURE / "config.json").read_text())
    config = RunConfig.read(FIXTURE)
    assert config.to_json() == data
    assert list(config.to_json()) == list(data)  # the same keys in the same order


def test_run_info_of_an_earlier_run():
    info = run_info(FIXTURE)
    assert info["model"] == "lstm" and info["finished"] and info["steps"] == 3
    assert info["data"] == "pydoc-topics" and info["parameters"] > 0


def test_fields_of_a_later_version_are_kept_when_the_record_is_rewritten(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(FIXTURE, run)
    data = json.loads((run / "config.json").read_text())
    data["added_later"] = {"x": 1}
    (run / "config.json").write_text(json.dumps(data))
    config = RunConfig.read(run)
    assert config.extra == {"added_later": {"x": 1}}
    config.metrics = None  # as a resume clears them
    config.write(run)
    again = json.loads((run / "config.json").read_text())
    assert again["added_later"] == {"x": 1} and "metrics" not in again


@pytest.mark.parametrize(
    "change, message",
    [
        ({"model": 3}, "has 'model' of the wrong kind (int, not a string)"),
        ({"tokenizer": ["char"]}, "has 'tokenizer' of the wrong kind (list, not a string or null)"),
        ({"metrics": "good"}, "has 'metrics' of the wrong kind (str, not an object or null)"),
        (
            {"data_fingerprints": []},
            "has 'data_fingerprints' of the wrong kind (list, not an object)",
        ),
        ({"task": None}, "has 'task' of the wrong kind (NoneType, not a string)"),
    ],
)
def test_a_field_of_the_wrong_kind_is_one_line(tmp_path, change, message):
    run = tmp_path / "run"
    shutil.copytree(FIXTURE, run)
    data = {**json.loads((run / "config.json").read_text()), **change}
    (run / "config.json").write_text(json.dumps(data))
    with pytest.raises(ZooError) as info:
        zoo_core.load(run)
    assert str(info.value) == f"'{run}' is not a zoo model: its config.json {message}"


def test_a_transformers_config_is_named_as_such(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_embd": 8}))
    with pytest.raises(ZooError, match="is a gpt2 config of another library"):
        RunConfig.read(tmp_path)
