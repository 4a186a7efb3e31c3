"""SCAN (Lake & Baroni 2018, "Generalization without systematicity"), regenerated from its grammar.

A command such as ``jump twice and walk left`` maps to an action sequence such as
``JUMP JUMP LTURN WALK``. The data set is every command the paper's grammar generates, 20,910 of
them, with no sampling::

    C -> S and S | S after S | S
    S -> V twice | V thrice | V
    V -> D[1] opposite D[2] | D[1] around D[2] | D | U
    D -> U left | U right | turn left | turn right
    U -> walk | look | run | jump

In ``D[1] opposite D[2]`` the two D share their words: what is generated is ``x opposite left``
and ``x opposite right`` (likewise ``around``) for x one of the four U or ``turn``. So there are
4 U, 10 D, 10 opposite and 10 around phrases: 34 V, 102 S, and 102 + 2 * 102 * 102 = 20,910 C.

The splits are the paper's:

- ``simple``: a seeded random 80/20 split, 16,728 train and 4,182 test commands. The published
  files are one such draw; this is another with the same sizes.
- ``length``: train on the commands of at most 22 actions, test on the longer ones (24 to 48
  actions; none has 23): 16,990 train, 3,920 test, as published.
- ``addprim-jump``: train on every command without "jump" (13,203) and on the lone command
  "jump", test on the other 7,706 commands that contain it. The published train file holds
  14,670 lines because "jump" is repeated to make up 10% of it: 1,467 copies, and
  13,203 + 1,467 = 14,670 with 1,467 / 14,670 = 10% exactly. The train list here repeats it the
  same way, so its size is the published one while its distinct commands number 13,204.
"""

from __future__ import annotations

import functools
import json
import random
from pathlib import Path

from zoo_core.artifacts import new_folder
from zoo_core.errors import ZooError

SPLITS = ("simple", "length", "addprim-jump")

_U = {"walk": "WALK", "look": "LOOK", "run": "RUN", "jump": "JUMP"}
# "turn" acts as a U whose own action is empty: then [[turn left]] = LTURN and
# [[turn around left]] = LTURN x4 are the same rules as [[u left]] and [[u around left]].
_VERBS = {**_U, "turn": ""}
_TURNS = {"left": "LTURN", "right": "RTURN"}
_MODIFIERS = ("opposite", "around")
_REPEATS = {"twice": 2, "thrice": 3}
_CONJUNCTIONS = ("and", "after")

_SIMPLE_TRAIN_FRACTION = 0.8
_LONGEST_LENGTH_TRAIN = 22  # actions: the paper's length split trains on up to 22
_JUMP_SHARE = 0.1  # of the addprim-jump train list, made up by repeating "jump"


def _phrase(verb: str, modifier: str | None, direction: str | None) -> list[str]:
    """The actions of a V: ``verb``, ``verb direction`` or ``verb modifier direction``."""
    own = [_VERBS[verb]] if _VERBS[verb] else []
    if direction is None:
        return own
    turn = _TURNS[direction]
    if modifier == "opposite":
        return [turn, turn, *own]
    if modifier == "around":
        return [turn, *own] * 4
    return [turn, *own]


def _v_phrases() -> list[tuple[str, list[str]]]:
    out = [(u, _phrase(u, None, None)) for u in _U]
    for modifier in (None, *_MODIFIERS):
        for verb in _VERBS:
            for direction in _TURNS:
                words = " ".join(w for w in (verb, modifier, direction) if w)
                out.append((words, _phrase(verb, modifier, direction)))
    return out


def _s_phrases() -> list[tuple[str, list[str]]]:
    out = []
    for words, actions in _v_phrases():
        out.append((words, actions))
        out.extend((f"{words} {rep}", actions * n) for rep, n in _REPEATS.items())
    return out


@functools.cache
def _commands() -> tuple[tuple[str, str], ...]:
    s = _s_phrases()
    pairs = [(words, actions) for words, actions in s]
    for conjunction in _CONJUNCTIONS:
        for first, first_actions in s:
            for second, second_actions in s:
                # "x1 after x2" does x2 first
                actions = (
                    first_actions + second_actions
                    if conjunction == "and"
                    else second_actions + first_actions
                )
                pairs.append((f"{first} {conjunction} {second}", actions))
    return tuple((command, " ".join(actions)) for command, actions in pairs)


def commands() -> list[tuple[str, str]]:
    """Every SCAN command with its action sequence, (command, actions), in a fixed order."""
    return list(_commands())


def _not_scan(command: str, words: list[str], at: int, expected: tuple[str, ...]) -> ZooError:
    """The error for ``command`` when ``words[at]`` (or the end, past the last word) is not one of
    ``expected``, where "" in ``expected`` stands for the end of the command."""
    options = [f"'{w}'" for w in expected if w] + (
        ["the end of the command"] if "" in expected else []
    )
    wanted = options[0] if len(options) == 1 else ", ".join(options[:-1]) + " or " + options[-1]
    if at < len(words):
        where = f"cannot read '{words[at]}' (word {at + 1}), expected {wanted}"
    elif words:
        where = f"it ends after '{words[-1]}', expected {wanted}"
    else:
        where = f"it is empty, expected {wanted}"
    return ZooError(f"'{command}' is not a SCAN command: {where}")


def _read_s(command: str, words: list[str], at: int) -> tuple[list[str], int, tuple[str, ...]]:
    """Read one S from ``words[at:]``: its actions, the index of the first word after it, and the
    words that could have continued it there."""

    def word(i: int, expected: tuple[str, ...]) -> str:
        if i >= len(words) or words[i] not in expected:
            raise _not_scan(command, words, i, expected)
        return words[i]

    verb = word(at, tuple(_VERBS))
    at += 1
    modifier = direction = None
    after_verb = (*_TURNS, *_MODIFIERS)
    # a bare "turn" is not a V, so a direction or a modifier must follow it
    if verb == "turn" or (at < len(words) and words[at] in after_verb):
        step = word(at, after_verb)
        at += 1
        if step in _MODIFIERS:
            modifier, direction = step, word(at, tuple(_TURNS))
            at += 1
        else:
            direction = step
    actions = _phrase(verb, modifier, direction)
    if at < len(words) and words[at] in _REPEATS:
        return actions * _REPEATS[words[at]], at + 1, ()
    return actions, at, tuple(_REPEATS) if direction else (*after_verb, *_REPEATS)


def interpret(command: str) -> str:
    """The action sequence of a SCAN command, e.g. ``"jump twice"`` -> ``"JUMP JUMP"``.

    Raises :class:`ZooError` naming the first word that does not fit the grammar."""
    words = command.split()
    first, at, more = _read_s(command, words, 0)
    if at == len(words):
        return " ".join(first)
    if words[at] not in _CONJUNCTIONS:
        raise _not_scan(command, words, at, (*more, *_CONJUNCTIONS, ""))
    conjunction = words[at]
    second, at, more = _read_s(command, words, at + 1)
    if at != len(words):
        raise _not_scan(command, words, at, (*more, ""))
    return " ".join(first + second if conjunction == "and" else second + first)


def split(name: str, seed: int = 0) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The (train, test) lists of (command, actions) of split ``name``, one of :data:`SPLITS`.

    ``seed`` draws the ``simple`` split; the other splits are fixed by their definitions."""
    pairs = commands()
    if name == "simple":
        order = list(range(len(pairs)))
        random.Random(seed).shuffle(order)
        n_train = round(_SIMPLE_TRAIN_FRACTION * len(pairs))
        train_ids = set(order[:n_train])
        train = [p for i, p in enumerate(pairs) if i in train_ids]
        test = [p for i, p in enumerate(pairs) if i not in train_ids]
        return train, test
    if name == "length":
        short = [len(actions.split()) <= _LONGEST_LENGTH_TRAIN for _, actions in pairs]
        train = [p for p, keep in zip(pairs, short, strict=True) if keep]
        test = [p for p, keep in zip(pairs, short, strict=True) if not keep]
        return train, test
    if name == "addprim-jump":
        jump = ("jump", interpret("jump"))
        train = [p for p in pairs if "jump" not in p[0].split()]
        test = [p for p in pairs if "jump" in p[0].split() and p != jump]
        # repeats r with r / (len(train) + r) = share, as in the published train file
        repeats = round(len(train) * _JUMP_SHARE / (1 - _JUMP_SHARE))
        return train + [jump] * repeats, test
    known = ", ".join(SPLITS)
    raise ZooError(f"unknown SCAN split '{name}'; the known splits are {known}")


def write_splits(out: str | Path, seed: int = 0) -> Path:
    """Write ``<split>/train.jsonl`` and ``<split>/test.jsonl`` for every split in :data:`SPLITS`
    (one ``{"source", "target"}`` a line) in the new or empty folder ``out``, which appears
    complete or not at all. ``seed`` draws the ``simple`` split."""
    with new_folder(out) as tmp:
        for name in SPLITS:
            (tmp / name).mkdir()
            for part, pairs in zip(("train", "test"), split(name, seed), strict=True):
                lines = [json.dumps({"source": s, "target": t}) for s, t in pairs]
                (tmp / name / f"{part}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Path(out)
