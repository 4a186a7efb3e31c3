"""A source and a target tokenizer saved as one: what a seq2seq task reads and writes with.

The two may be one tokenizer (``shared``: fitted on the sources and the targets together, as a
shared vocabulary for shared embeddings) or two of their own, of any registered kinds. Both are
saved in the run's ``tokenizer.json`` and restored with the weights. ``encode`` reads a source,
``decode`` writes a target.
"""

from __future__ import annotations

from typing import Any

from zoo_core.errors import ZooError
from zoo_core.tokenizers.base import Tokenizer, fit_tokenizer, tokenizer_class


class PairTokenizer(Tokenizer):
    """The source's tokenizer and the target's (the same object when ``shared``)."""

    name = "source-target"

    def __init__(self, source: Tokenizer, target: Tokenizer):
        self.source = source
        self.target = target

    @property
    def shared(self) -> bool:
        return self.source is self.target

    @property
    def vocab_size(self) -> int:
        """The target's vocabulary: what a model writes."""
        return self.target.vocab_size

    @classmethod
    def fit(cls, text: str, **options: Any) -> PairTokenizer:
        raise ZooError(
            "the source-target tokenizer is made by the seq2seq task; choose its parts with "
            "--set tokenizer=NAME (and --set target_tokenizer=NAME)"
        )

    @classmethod
    def fit_pair(
        cls,
        sources: list[str],
        targets: list[str],
        source_kind: str,
        target_kind: str,
        vocab_size: int | None,
        shared: bool,
    ) -> PairTokenizer:
        """Fit the source tokenizer on ``sources`` and the target's on ``targets``, or one
        tokenizer on both when ``shared``."""
        if shared:
            if source_kind != target_kind:
                raise ZooError(
                    f"a shared vocabulary is one tokenizer, and the source's is {source_kind} "
                    f"while the target's is {target_kind}; set the same, or share_vocab=false"
                )
            one = fit_tokenizer(source_kind, vocab_size, "\n".join(sources + targets))
            return cls(one, one)
        source = fit_tokenizer(source_kind, vocab_size, "\n".join(sources))
        target = fit_tokenizer(target_kind, vocab_size, "\n".join(targets))
        return cls(source, target)

    def encode(self, text: str) -> list[int]:
        """A source text's ids."""
        return self.source.encode(text)

    def decode(self, ids: list[int]) -> str:
        """A target text of ids."""
        return self.target.decode(ids)

    def to_dict(self) -> dict[str, Any]:
        def one(tok: Tokenizer) -> dict[str, Any]:
            return {"type": tok.name, **tok.to_dict()}

        if self.shared:
            return {"shared": one(self.source)}
        return {"source": one(self.source), "target": one(self.target)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PairTokenizer:
        def one(part: Any) -> Tokenizer:
            if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                raise TypeError("a part is not an object with a 'type'")
            tok = tokenizer_class(part["type"]).from_dict(part)
            tok.name = part["type"]
            return tok

        if "shared" in data:
            shared = one(data["shared"])
            return cls(shared, shared)
        return cls(one(data["source"]), one(data["target"]))
