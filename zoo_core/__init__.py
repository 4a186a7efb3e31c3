"""zoo: a plugin-based model zoo for PyTorch.

Importing this package does not import torch: listing models stays fast. Torch is imported when a
model is built, trained or loaded.
"""

from zoo_core._version import __version__
from zoo_core.api import (
    Artifact,
    count_parameters,
    create_model,
    get_model_spec,
    list_models,
    list_tasks,
    list_tokenizers,
    load,
    train,
)
from zoo_core.errors import ZooError
from zoo_core.plugins import hookimpl
from zoo_core.registry import ModelSpec, PretrainedWeights, TaskSpec, TokenizerSpec

__all__ = [
    "Artifact",
    "ModelSpec",
    "PretrainedWeights",
    "TaskSpec",
    "TokenizerSpec",
    "ZooError",
    "__version__",
    "count_parameters",
    "create_model",
    "get_model_spec",
    "hookimpl",
    "list_models",
    "list_tasks",
    "list_tokenizers",
    "load",
    "train",
]
