"""The character and byte tokenizers."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from zoo_core.errors import ZooError
from zoo_core.tokenizers.base import Tokenizer


def _no_vocab_size(options: dict[str, Any], name: str, vocabulary: str) -> None:
    """A vocab_size set for a tokenizer whose vocabulary is fixed would be silently ignored."""
    if options.get("vocab_size") is not None:
        raise ZooError(
            f"the {name} tokenizer's vocabulary is {vocabulary}: it takes no vocab_size; drop "
            "it, or use --tokenizer bpe for a vocabulary of the size you choose"
        )


class CharTokenizer(Tokenizer):
    """One id per character seen in the training text; id 0 stands for any unseen character."""

    name = "char"
    per_character = True
    unknown = "\ufffd"

    def __init__(self, chars: list[str]):
        self.chars = list(chars)
        self._ids = {c: i + 1 for i, c in enumerate(self.chars)}

    @property
    def vocab_size(self) -> int:
        return len(self.chars) + 1

    @classmethod
    def fit(cls, text: str, **options: Any) -> CharTokenizer:
        _no_vocab_size(options, "char", "the training text's characters")
        return cls(sorted(set(text)))

    @classmethod
    def fit_pieces(cls, pieces: Iterable[str], **options: Any) -> CharTokenizer:
        """The characters of all of the text, however large: one set of them is all it keeps."""
        _no_vocab_size(options, "char", "the training text's characters")
        seen: set[str] = set()
        for piece in pieces:
            seen.update(piece)
        return cls(sorted(seen))

    def encode(self, text: str) -> list[int]:
        ids = self._ids
        return [ids.get(c, 0) for c in text]

    def encode_batch(self, texts: list[str]) -> list[Sequence[int]]:
        """Vectorised: each character's code point looked up in the sorted code points of the
        vocabulary (numpy), tens of times faster than a dict lookup per character."""
        # A saved vocabulary of other strings, or with a character twice, is looked up as
        # ``encode`` does.
        if any(len(c) != 1 for c in self.chars) or len(set(self.chars)) != len(self.chars):
            return super().encode_batch(texts)
        points = np.array([ord(c) for c in self.chars], dtype=np.uint32)
        order = np.argsort(points)
        keys, values = points[order], (order + 1).astype(np.int32)
        out = []
        for text in texts:
            codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
            if not len(keys):
                out.append(np.zeros(len(codes), dtype=np.int32))
                continue
            at = np.minimum(np.searchsorted(keys, codes), len(keys) - 1)
            out.append(np.where(keys[at] == codes, values[at], 0))
        return out

    def decode(self, ids: list[int]) -> str:
        chars, unk = self.chars, self.unknown
        return "".join(chars[i - 1] if 0 < i <= len(chars) else unk for i in ids)

    def to_dict(self) -> dict[str, Any]:
        return {"chars": self.chars}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CharTokenizer:
        chars = data["chars"]
        if not isinstance(chars, list) or not all(isinstance(c, str) for c in chars):
            raise TypeError("'chars' is not a list of strings")
        return cls(chars)


class ByteTokenizer(Tokenizer):
    """The UTF-8 bytes of the text; decoding replaces incomplete sequences with U+FFFD."""

    name = "byte"

    @property
    def vocab_size(self) -> int:
        return 256

    @classmethod
    def fit(cls, text: str, **options: Any) -> ByteTokenizer:
        _no_vocab_size(options, "byte", "the 256 byte values")
        return cls()

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def encode_batch(self, texts: list[str]) -> list[Sequence[int]]:
        return [np.frombuffer(text.encode("utf-8"), dtype=np.uint8) for text in texts]

    def decode(self, ids: list[int]) -> str:
        return bytes(i for i in ids if 0 <= i < 256).decode("utf-8", errors="replace")

    def to_dict(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ByteTokenizer:
        return cls()
