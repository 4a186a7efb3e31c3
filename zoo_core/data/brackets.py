"""A seeded synthetic classification set: is a string of brackets balanced?

Half the examples are balanced (every ``)`` closes an earlier ``(``). Of the other half, one in two
has a flipped bracket (the counts differ) and one in two is a shuffle of a balanced string (the
counts agree, the order is wrong), so counting alone gets about 75% and the rest needs the order
of the whole string.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from zoo_core.artifacts import new_folder

NAME = "brackets"
CLASSES = ("balanced", "unbalanced")


def _balanced(rng: random.Random, pairs: int) -> str:
    out, depth, opens = [], 0, pairs
    while opens or depth:
        if opens and (depth == 0 or rng.random() < 0.5):
            out.append("(")
            opens, depth = opens - 1, depth + 1
        else:
            out.append(")")
            depth -= 1
    return "".join(out)


def is_balanced(text: str) -> bool:
    depth = 0
    for c in text:
        depth += 1 if c == "(" else -1
        if depth < 0:
            return False
    return depth == 0


def _unbalanced(rng: random.Random, pairs: int) -> str:
    chars = list(_balanced(rng, pairs))
    if rng.random() < 0.5:  # flip one bracket: the counts no longer match
        i = rng.randrange(len(chars))
        chars[i] = "(" if chars[i] == ")" else ")"
        return "".join(chars)
    while True:  # same counts, wrong order
        rng.shuffle(chars)
        text = "".join(chars)
        if not is_balanced(text):
            return text


def examples(n: int, seed: int, min_pairs: int = 4, max_pairs: int = 16) -> list[tuple[str, str]]:
    """``n`` (text, label) pairs, label in :data:`CLASSES`, the same for the same seed."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        pairs = rng.randint(min_pairs, max_pairs)
        if rng.random() < 0.5:
            out.append((_balanced(rng, pairs), CLASSES[0]))
        else:
            out.append((_unbalanced(rng, pairs), CLASSES[1]))
    return out


def default_splits() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The embedded default: 6000 training and 1000 validation examples (fixed seeds)."""
    return examples(6000, seed=1234), examples(1000, seed=5678)


def write_default(out: str | Path) -> Path:
    """Write the default splits as ``train.jsonl`` and ``val.jsonl`` (one ``{"text", "label"}``
    a line) in the new or empty folder ``out``, which appears complete or not at all. Training
    on them (``--data train.jsonl --val-data val.jsonl``) is training on the default."""
    with new_folder(out) as tmp:
        for name, examples in zip(("train.jsonl", "val.jsonl"), default_splits(), strict=True):
            lines = [json.dumps({"text": text, "label": label}) for text, label in examples]
            (tmp / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Path(out)
