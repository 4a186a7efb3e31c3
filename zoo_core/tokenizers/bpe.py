"""Byte-level BPE (GPT-2's scheme) learned from the training text, on Hugging Face `tokenizers`.

Every string is encodable (the base alphabet is the 256 bytes) and ``decode(encode(text)) ==
text`` exactly. The learned tokenizer is stored in ``tokenizer.json`` as the library's own JSON.
"""

from __future__ import annotations

from typing import Any

from zoo_core.errors import ZooError
from zoo_core.tokenizers.base import Tokenizer

DEFAULT_VOCAB_SIZE = 1024


def _library() -> Any:
    try:
        import tokenizers
    except ImportError:
        raise ZooError(
            "the bpe tokenizer needs the Hugging Face 'tokenizers' package; "
            "install it with: pip install 'zoo-core[bpe]'"
        ) from None
    return tokenizers


def _pieces(text: str, size: int = 4096) -> list[str]:
    """The training text in line-aligned chunks (the trainer's iterator)."""
    lines, out, current = text.splitlines(keepends=True), [], []
    length = 0
    for line in lines:
        current.append(line)
        length += len(line)
        if length >= size:
            out.append("".join(current))
            current, length = [], 0
    if current:
        out.append("".join(current))
    return out


class BPETokenizer(Tokenizer):
    """Byte-level BPE with a vocabulary of ``vocab_size`` (default 1024) learned by ``fit``."""

    name = "bpe"

    def __init__(self, hf_tokenizer: Any):
        self._tok = hf_tokenizer

    @property
    def vocab_size(self) -> int:
        return self._tok.get_vocab_size()

    @classmethod
    def fit(cls, text: str, vocab_size: int | None = None, **options: Any) -> BPETokenizer:
        tk = _library()
        vocab_size = DEFAULT_VOCAB_SIZE if vocab_size is None else vocab_size
        if vocab_size < 256:
            raise ZooError(
                f"a byte-level BPE vocabulary holds the 256 bytes and more; vocab_size {vocab_size} "
                "is too small (use 256 or more)"
            )
        tok = tk.Tokenizer(tk.models.BPE())
        tok.pre_tokenizer = tk.pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = tk.decoders.ByteLevel()
        trainer = tk.trainers.BpeTrainer(
            vocab_size=vocab_size,
            initial_alphabet=tk.pre_tokenizers.ByteLevel.alphabet(),
            special_tokens=[],
            show_progress=False,
        )
        tok.train_from_iterator(_pieces(text), trainer=trainer)
        return cls(tok)

    def encode(self, text: str) -> list[int]:
        return self._tok.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        """The library's batch encoder, which encodes the texts in parallel on every core."""
        return [e.ids for e in self._tok.encode_batch(texts, add_special_tokens=False)]

    def decode(self, ids: list[int]) -> str:
        return self._tok.decode(list(ids), skip_special_tokens=False)

    def to_dict(self) -> dict[str, Any]:
        return {"vocab_size": self.vocab_size, "hf_tokenizer": self._tok.to_str()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BPETokenizer:
        tk = _library()
        if "hf_tokenizer" not in data:
            raise ZooError("this tokenizer.json is not a bpe tokenizer (no 'hf_tokenizer' field)")
        return cls(tk.Tokenizer.from_str(data["hf_tokenizer"]))
