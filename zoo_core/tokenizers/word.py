"""A word-level tokenizer: one id per whitespace-separated word of the training text.

Commands and action sequences (SCAN's "jump twice" -> "JUMP JUMP"), word-level corpora and
small vocabularies are read best a word at a time. Decoding joins words with one space, so the
text's own spacing and line breaks are not kept.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from zoo_core.errors import ZooError
from zoo_core.tokenizers.base import Tokenizer


class WordTokenizer(Tokenizer):
    """Words seen in the training text, likeliest first; id 0 stands for any other word."""

    name = "word"
    unknown = "<unk>"

    def __init__(self, words: list[str]):
        self.words = list(words)
        self._ids = {w: i + 1 for i, w in enumerate(self.words)}

    @property
    def vocab_size(self) -> int:
        return len(self.words) + 1

    @classmethod
    def fit(cls, text: str, **options: Any) -> WordTokenizer:
        """The words of ``text``; with ``vocab_size``, the ``vocab_size - 1`` most frequent
        (ties broken by the word, so the same text gives the same vocabulary)."""
        counts = Counter(text.split())
        words = sorted(counts, key=lambda w: (-counts[w], w))
        size = options.get("vocab_size")
        if size is not None:
            if size < 2:
                raise ZooError(f"the word tokenizer needs a vocab_size of at least 2, not {size}")
            words = words[: size - 1]
        if not words:
            raise ZooError("the training text has no words for the word tokenizer to learn")
        return cls(words)

    def encode(self, text: str) -> list[int]:
        ids = self._ids
        return [ids.get(w, 0) for w in text.split()]

    def decode(self, ids: list[int]) -> str:
        words, unk = self.words, self.unknown
        return " ".join(words[i - 1] if 0 < i <= len(words) else unk for i in ids)

    def to_dict(self) -> dict[str, Any]:
        return {"words": self.words}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WordTokenizer:
        words = data["words"]
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            raise TypeError("'words' is not a list of strings")
        return cls(words)
