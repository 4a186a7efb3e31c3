"""What a tokenizer is: text to ids and back, learned from training text, saved as JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar


class Tokenizer:
    """Base class of every tokenizer. Subclasses set ``name`` and implement the four methods.

    ``fit`` learns from the training text, ``to_dict``/``from_dict`` save and restore what was
    learned (written as ``tokenizer.json`` beside the weights).
    """

    name: ClassVar[str] = ""
    # Whether ids map to characters one to one (then loss per token is loss per character).
    per_character: ClassVar[bool] = False

    @property
    def vocab_size(self) -> int:
        raise NotImplementedError

    @classmethod
    def fit(cls, text: str, **options: Any) -> Tokenizer:
        raise NotImplementedError

    def encode(self, text: str) -> list[int]:
        raise NotImplementedError

    def decode(self, ids: list[int]) -> str:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Tokenizer:
        raise NotImplementedError

    def save(self, path: str | Path) -> None:
        data = {"type": self.name, **self.to_dict()}
        Path(path).write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Tokenizer:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def fit_tokenizer(name: str, vocab_size: int | None, text: str) -> Tokenizer:
    """Learn the registered tokenizer ``name`` from ``text`` (``vocab_size`` where it has one)."""
    from zoo_core.api import tokenizer_class

    options = {} if vocab_size is None else {"vocab_size": vocab_size}
    tokenizer = tokenizer_class(name).fit(text, **options)
    tokenizer.name = name  # the name it is registered under (the class's may differ): saved
    return tokenizer
