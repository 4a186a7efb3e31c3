from dataclasses import dataclass
from typing import Literal

import pytest

from zoo_core import _config
from zoo_core.errors import ZooError


@dataclass
class Example:
    n: int = 1
    x: float = 0.5
    flag: bool = False
    name: str = "a"
    mode: Literal["fast", "slow"] = "fast"
    limit: int | None = None
    sizes: tuple[int, ...] = (1, 2)


def test_strings_are_typed_by_the_dataclass():
    cfg = _config.build(
        Example,
        {"n": "3", "x": "1e-3", "flag": "true", "mode": "slow", "limit": "none", "sizes": "4,5,6"},
        "example",
    )
    assert cfg == Example(n=3, x=1e-3, flag=True, mode="slow", limit=None, sizes=(4, 5, 6))
    assert _config.build(Example, {"limit": "7"}, "example").limit == 7


@pytest.mark.parametrize(
    "values, message",
    [
        ({"n": "three"}, "n must be an integer"),
        ({"flag": "maybe"}, "flag must be true or false"),
        ({"x": "small"}, "x must be a number"),
        ({"mode": "medium"}, "mode must be one of fast, slow"),
        ({"nope": "1"}, "has no field 'nope'"),
    ],
)
def test_bad_values_are_one_clear_error(values, message):
    with pytest.raises(ZooError, match=message):
        _config.build(Example, values, "example")


def test_python_values_are_checked_as_strings_are():
    cfg = _config.build(
        Example,
        {"n": 3, "x": 2, "flag": True, "mode": "slow", "limit": None, "sizes": [4, "5"]},
        "example",
    )
    assert cfg == Example(n=3, x=2.0, flag=True, mode="slow", limit=None, sizes=(4, 5))
    assert type(cfg.x) is float and type(cfg.sizes) is tuple
    numpy = pytest.importorskip("numpy")
    assert _config.build(Example, {"n": numpy.int64(4)}, "example").n == 4


@pytest.mark.parametrize(
    "values, message",
    [
        ({"n": 1.5}, "n must be an integer, not 1.5"),
        ({"n": True}, "n must be an integer, not True"),
        ({"n": None}, "n must be an integer, not None"),
        ({"flag": 1}, "flag must be true or false, not 1"),
        ({"x": True}, "x must be a number, not True"),
        ({"mode": "medium"}, "mode must be one of fast, slow"),
        ({"limit": 2.5}, "limit must be an integer, not 2.5"),
        ({"sizes": 3}, "sizes must be a list, not 3"),
        ({"sizes": [1, 2.5]}, "sizes must be an integer, not 2.5"),
    ],
)
def test_bad_python_values_are_one_clear_error(values, message):
    with pytest.raises(ZooError, match=message):
        _config.build(Example, values, "example")


def test_json_round_trip_keeps_tuples():
    cfg = Example(sizes=(3, 4))
    assert _config.from_json(Example, _config.to_json(cfg)) == cfg
