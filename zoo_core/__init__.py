"""zoo: a plugin-based model zoo for PyTorch.

Importing this package does not import torch: listing models stays fast. Torch is imported when a
model is built, trained or loaded; the names below that need it are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from zoo_core._version import __version__
from zoo_core.catalog import (
    count_parameters,
    get_model_spec,
    list_models,
    list_tasks,
    list_tokenizers,
)
from zoo_core.errors import ZooError
from zoo_core.plugins import hookimpl
from zoo_core.registry import (
    ForeignModel,
    Imported,
    ImporterSpec,
    ModelSpec,
    PretrainedWeights,
    StudySpec,
    TaskSpec,
    TokenizerSpec,
)

if TYPE_CHECKING:
    from zoo_core.artifact import Artifact, create_model, load, train

# Names whose module imports torch: imported when first used (PEP 562), so `import zoo_core`
# and `zoo list` stay light.
_LAZY = {
    "Artifact": "zoo_core.artifact",
    "create_model": "zoo_core.artifact",
    "load": "zoo_core.artifact",
    "train": "zoo_core.artifact",
}

__all__ = [
    "Artifact",
    "ForeignModel",
    "Imported",
    "ImporterSpec",
    "ModelSpec",
    "PretrainedWeights",
    "StudySpec",
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


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # once imported, an ordinary attribute
        return value
    raise AttributeError(f"module 'zoo_core' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
