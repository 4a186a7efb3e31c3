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
