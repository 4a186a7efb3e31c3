"""Built-in tokenizers, registered through the same hook as any plugin's."""

from zoo_core.plugins import hookimpl
from zoo_core.registry import TokenizerSpec
from zoo_core.tokenizers.base import Tokenizer

__all__ = ["Tokenizer"]


@hookimpl
def register_tokenizers(register):
    register(
        TokenizerSpec(
            "char",
            "zoo_core.tokenizers.simple:CharTokenizer",
            "one token per character of the training text, plus one for unknown characters",
        )
    )
    register(
        TokenizerSpec(
            "byte",
            "zoo_core.tokenizers.simple:ByteTokenizer",
            "the 256 byte values of UTF-8 text; nothing to learn, nothing unknown",
        )
    )
    register(
        TokenizerSpec(
            "bpe",
            "zoo_core.tokenizers.bpe:BPETokenizer",
            "byte-level BPE learned from the training text (vocab_size; needs `tokenizers`)",
        )
    )
    register(
        TokenizerSpec(
            "word",
            "zoo_core.tokenizers.word:WordTokenizer",
            "one token per whitespace-separated word of the training text (vocab_size: the most "
            "frequent)",
        )
    )
    register(
        TokenizerSpec(
            "source-target",
            "zoo_core.tokenizers.pair:PairTokenizer",
            "a seq2seq task's source and target tokenizers saved as one (the task makes it)",
        )
    )
