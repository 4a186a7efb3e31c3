"""SCAN regenerated from its grammar: the size of the set, the paper's splits, the semantics."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from zoo_core.data import scan
from zoo_core.errors import ZooError

# Worked out by hand from the paper's interpretation functions, not by running the code; the
# first five are the examples of the published data set's README.
PAPER_EXAMPLES = [
    ("jump", "JUMP"),
    ("jump left", "LTURN JUMP"),
    ("jump around right", "RTURN JUMP RTURN JUMP RTURN JUMP RTURN JUMP"),
    ("turn left twice", "LTURN LTURN"),
    ("jump opposite left and walk thrice", "LTURN LTURN JUMP WALK WALK WALK"),
    (
        "jump opposite left after walk around left",
        "LTURN WALK LTURN WALK LTURN WALK LTURN WALK LTURN LTURN JUMP",
    ),
    ("jump twice and walk left", "JUMP JUMP LTURN WALK"),
    (
        "walk opposite left thrice after run around right",
        "RTURN RUN RTURN RUN RTURN RUN RTURN RUN LTURN LTURN WALK LTURN LTURN WALK LTURN LTURN WALK",
    ),
    ("turn around left", "LTURN LTURN LTURN LTURN"),
    ("turn opposite right", "RTURN RTURN"),
    ("jump thrice", "JUMP JUMP JUMP"),
    ("look right thrice", "RTURN LOOK RTURN LOOK RTURN LOOK"),
    ("turn right after look", "LOOK RTURN"),
    ("walk and turn left", "WALK LTURN"),
    ("run opposite right twice", "RTURN RTURN RUN RTURN RTURN RUN"),
    ("turn around right twice", "RTURN RTURN RTURN RTURN RTURN RTURN RTURN RTURN"),
    # (LTURN LOOK) four times for "around", three times over for "thrice": 12 pairs
    ("look around left thrice", " ".join(["LTURN LOOK"] * 12)),
]


def _lengths(pairs: list[tuple[str, str]]) -> set[int]:
    return {len(actions.split()) for _, actions in pairs}


def test_the_grammar_generates_20910_distinct_commands() -> None:
    pairs = scan.commands()
    assert len(pairs) == 20910
    assert len({command for command, _ in pairs}) == 20910
    # 34 V, each bare, twice or thrice: 102 S; then S and S, S after S
    single = [c for c, _ in pairs if " and " not in c and " after " not in c]
    assert len(single) == 102
    assert len(pairs) == 102 + 2 * 102 * 102
    assert scan.commands() == pairs  # a fixed order


def test_the_parser_agrees_with_the_generator_on_every_command() -> None:
    for command, actions in scan.commands():
        assert scan.interpret(command) == actions, command


@pytest.mark.parametrize(("command", "actions"), PAPER_EXAMPLES)
def test_hand_checked_examples(command: str, actions: str) -> None:
    assert scan.interpret(command) == actions
    assert (command, actions) in scan.commands()


def test_turn_alone_is_not_a_command() -> None:
    commands = {c for c, _ in scan.commands()}
    assert "turn" not in commands
    assert "turn twice" not in commands
    assert "turn left" in commands


@pytest.mark.parametrize(
    ("name", "n_train", "n_test"),
    [("simple", 16728, 4182), ("length", 16990, 3920), ("addprim-jump", 14670, 7706)],
)
def test_split_sizes_are_the_papers(name: str, n_train: int, n_test: int) -> None:
    train, test = scan.split(name)
    assert (len(train), len(test)) == (n_train, n_test)


@pytest.mark.parametrize("name", ["simple", "length"])
def test_train_and_test_are_disjoint_and_cover_every_command(name: str) -> None:
    train, test = scan.split(name)
    assert len(set(train)) == len(train)
    assert not set(train) & set(test)
    assert set(train) | set(test) == set(scan.commands())


def test_simple_split_is_drawn_by_its_seed() -> None:
    assert scan.split("simple", seed=0) == scan.split("simple", seed=0)
    assert scan.split("simple", seed=0)[0] != scan.split("simple", seed=1)[0]
    assert len(scan.split("simple", seed=1)[0]) == 16728


def test_length_split_trains_on_at_most_22_actions_and_tests_on_24_to_48() -> None:
    train, test = scan.split("length")
    assert max(_lengths(train)) == 22
    assert min(_lengths(test)) == 24
    assert max(_lengths(test)) == 48
    assert 23 not in _lengths(scan.commands())


def test_addprim_jump_trains_on_jump_alone_and_tests_on_its_compositions() -> None:
    train, test = scan.split("addprim-jump")
    with_jump = [c for c, _ in train if "jump" in c.split()]
    assert set(with_jump) == {"jump"}
    # the published train file repeats "jump" to make up 10% of it
    assert len(with_jump) == 1467 == len(train) // 10
    distinct = set(train)
    assert len(distinct) == 13204
    assert all("jump" in c.split() and c != "jump" for c, _ in test)
    assert not distinct & set(test)
    assert distinct | set(test) == set(scan.commands())


@pytest.mark.parametrize(
    ("command", "word"),
    [
        ("turn twice", "'twice' (word 2)"),
        ("walk jump", "'jump' (word 2)"),
        ("jump left twice thrice", "'thrice' (word 4)"),
        ("run and walk after look", "'after' (word 4)"),
        ("Jump", "'Jump' (word 1)"),
    ],
)
def test_a_command_outside_the_grammar_names_the_first_word_not_read(
    command: str, word: str
) -> None:
    with pytest.raises(ZooError, match=re.escape(f"cannot read {word}")) as raised:
        scan.interpret(command)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize("command", ["", "turn", "walk opposite", "jump and"])
def test_a_command_that_stops_short_says_what_was_expected(command: str) -> None:
    with pytest.raises(ZooError, match="expected") as raised:
        scan.interpret(command)
    assert "\n" not in str(raised.value)


def test_an_unknown_split_lists_the_known_ones() -> None:
    with pytest.raises(ZooError, match="simple, length, addprim-jump"):
        scan.split("addprim-turn")


def test_write_splits_reads_back(tmp_path: Path) -> None:
    out = scan.write_splits(tmp_path / "scan", seed=3)
    assert sorted(p.name for p in out.iterdir()) == sorted(scan.SPLITS)
    for name in scan.SPLITS:
        for part, expected in zip(("train", "test"), scan.split(name, seed=3), strict=True):
            lines = (out / name / f"{part}.jsonl").read_text(encoding="utf-8").splitlines()
            rows = [json.loads(line) for line in lines]
            assert [(r["source"], r["target"]) for r in rows] == expected
    assert not [p for p in tmp_path.iterdir() if p.name != "scan"]  # no temporary folder left


def test_write_splits_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "scan").mkdir()
    (tmp_path / "scan" / "notes.txt").write_text("mine")
    with pytest.raises(ZooError, match="not empty"):
        scan.write_splits(tmp_path / "scan")
    assert [p.name for p in (tmp_path / "scan").iterdir()] == ["notes.txt"]
