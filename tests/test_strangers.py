"""A run folder written by hand or by a stranger is data: every hostile or unlucky input to
loading is one clear line, never a traceback, never a command the repo chose."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

import zoo_core
from zoo_core import _config
from zoo_core.cli import cli
from zoo_core.errors import ZooError

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
