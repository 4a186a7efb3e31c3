"""What a tokenizer is: text to ids and back, learned from training text, saved as JSON."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar

from zoo_core.catalog import resolve_class
from zoo_core.errors import ZooError, printable
from zoo_core.plugins import get_catalog

# The most training text (characters) a tokenizer is fitted on when the text comes in pieces
# (a corpus larger than memory); the char tokenizer reads all of it.
FIT_CHARS = 1 << 26


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

    def encode_batch(self, texts: list[str]) -> list[Sequence[int]]:
        """The ids of each text (a list or a numpy array each), as ``encode`` gives them; a
        tokenizer that encodes many texts faster at once (in parallel, vectorised) overrides it."""
        return [self.encode(text) for text in texts]

    @classmethod
    def fit_pieces(cls, pieces: Iterable[str], **options: Any) -> Tokenizer:
        """Learn from a text given in pieces (larger than memory): from its first ``FIT_CHARS``
        characters, unless the tokenizer can learn from all of it as it streams."""
        head, n = [], 0
        for piece in pieces:
            head.append(piece[: FIT_CHARS - n])
            n += len(head[-1])
            if n >= FIT_CHARS:
                break
        return cls.fit("".join(head), **options)

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
        """The tokenizer saved in ``path``, or one line on why that file is not one."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise TypeError(f"it holds a JSON {type(data).__name__}, not an object")
            return cls.from_dict(data)
        except ZooError:
            raise
        except RecursionError:  # nested deeper than the parser recurses: not one of ours
            raise ZooError(
                f"'{path}' is not a valid {cls.name} tokenizer: nested too deeply"
            ) from None
        except (ValueError, KeyError, TypeError, IndexError) as exc:  # malformed or truncated
            # A ValueError may be an integer of more digits than Python converts.
            reason = f"no field {exc}" if isinstance(exc, KeyError) else str(exc).splitlines()[0]
            raise ZooError(
                f"'{path}' is not a valid {cls.name} tokenizer: {printable(reason)}"
            ) from None


def tokenizer_class(name: str) -> type[Tokenizer]:
    """The :class:`Tokenizer` subclass registered as ``name`` (imports its code)."""
    spec = get_catalog().get("tokenizer", name)
    what = f"tokenizer '{spec.name}' of plugin '{spec.plugin}'"
    return resolve_class(spec.tokenizer, what, Tokenizer)


def fit_tokenizer(name: str, vocab_size: int | None, text: str | Iterable[str]) -> Tokenizer:
    """Learn the registered tokenizer ``name`` from ``text``, a string or an iterable of its
    pieces (``vocab_size`` where it has one)."""
    options = {} if vocab_size is None else {"vocab_size": vocab_size}
    cls = tokenizer_class(name)
    if isinstance(text, str):
        tokenizer = cls.fit(text, **options)
    else:
        tokenizer = cls.fit_pieces(text, **options)
    tokenizer.name = name  # the name it is registered under (the class's may differ): saved
    return tokenizer
