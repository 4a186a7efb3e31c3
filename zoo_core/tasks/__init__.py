"""Built-in tasks, registered through the same hook as any plugin's."""

from zoo_core.plugins import hookimpl
from zoo_core.registry import TaskSpec


@hookimpl
def register_tasks(register):
    register(
        TaskSpec(
            "lm",
            "zoo_core.tasks.lm:LanguageModeling",
            "next-token language modelling on text (default: Python's pydoc topics)",
        )
    )
    register(
        TaskSpec(
            "image-classification",
            "zoo_core.tasks.image:ImageClassification",
            "classify images: a folder of class sub-folders (default: generated coloured shapes)",
        )
    )
    register(
        TaskSpec(
            "sequence-classification",
            "zoo_core.tasks.seqcls:SequenceClassification",
            "one label per text (default: synthetic balanced-brackets strings)",
        )
    )
    register(
        TaskSpec(
            "seq2seq",
            "zoo_core.tasks.seq2seq:SequenceToSequence",
            "source text to target text, e.g. translation (default: SCAN, --set split=...)",
        )
    )
    # Synthetic long-range tasks: any `lm` model (ids in, next-token logits out) can do them.
    for name, cls, summary in (
        ("copy", "Copy", "reproduce a random sequence after a delimiter (knob: delay)"),
        ("selective-copy", "SelectiveCopy", "copy the symbols hidden in noise (knob: num_marked)"),
        ("associative-recall", "AssociativeRecall", "key-value pairs, then a key: its value"),
        ("parity", "Parity", "is the number of ones in a bit string odd (knob: length)"),
        ("induction", "Induction", "predict what followed the earlier occurrence of a token"),
        ("mqar", "MultiQueryRecall", "key-value pairs, then every key: each value (Zoology)"),
        ("repeated-tokens", "RepeatedTokens", "random tokens repeated: every repeat scored"),
    ):
        register(TaskSpec(name, f"zoo_core.tasks.synthetic:{cls}", summary))
