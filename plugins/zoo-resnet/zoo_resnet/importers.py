"""ResNet as `transformers` publishes it (``model_type: resnet``), imported onto the zoo's ResNet.

`transformers` builds the ImageNet layout the zoo's ``stem="imagenet"`` builds: a 7x7 stride-2
stem and a max-pool, projection shortcuts (option B) where a block changes shape, and the
bottleneck's stride on its 3x3 convolution. Its class names come from ``id2label``, its
preprocessing (resize, crop, mean, std) from ``preprocessor_config.json``.
"""

from __future__ import annotations

import math
import re
from typing import Any

import torch

from zoo_core import ForeignModel, Imported, ZooError

_VARIANTS = {("basic", (2, 2, 2, 2)): "resnet18", ("bottleneck", (3, 4, 6, 3)): "resnet50"}
_EXPANSION = {"basic": 1, "bottleneck": 4}
_RESAMPLE = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic"}
_IMAGENET_MEAN, _IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
_MAX_CLASSES = 100_000
_STEM = re.compile(r"embedder\.embedder\.(convolution|normalization)\.(\w+)")
_LAYER = re.compile(
    r"encoder\.stages\.(\d+)\.layers\.(\d+)\."
    r"(?:layer\.(\d+)|(shortcut))\.(convolution|normalization)\.(\w+)"
)


def _whole(value: Any, what: str, limit: int = 1 << 16) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= limit:
        raise ZooError(f"its {what} is {value!r}, not a whole number from 1 to {limit}")
    return value


def _numbers(value: Any, what: str) -> list[float]:
    ok = isinstance(value, list) and len(value) == 3
    if not ok or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
        raise ZooError(f"its preprocessor's {what} is {value!r}, not three numbers")
    if not all(math.isfinite(v) for v in value):
        raise ZooError(f"its preprocessor's {what} holds a number that is not finite")
    return [float(v) for v in value]


def _classes(config: dict[str, Any]) -> list[str]:
    """Class names in index order, from ``id2label`` (``{"0": "tench", ...}``)."""
    labels = config.get("id2label")
    if not isinstance(labels, dict) or not labels:
        count = _whole(config.get("num_labels", 2), "num_labels", _MAX_CLASSES)
        return [f"LABEL_{i}" for i in range(count)]
    if len(labels) > _MAX_CLASSES:
        raise ZooError(f"its id2label has {len(labels)} classes, more than {_MAX_CLASSES}")
    names = []
    for i in range(len(labels)):
        name = labels.get(str(i))
        if not isinstance(name, str) or not 0 < len(name) <= 200:
            raise ZooError(f"its id2label has no name of up to 200 characters for class {i}")
        names.append(name)
    return names


def _preprocessing(pre: dict[str, Any] | None) -> dict[str, Any]:
    """The image task's state for this preprocessing: image_size (the crop), resize (the
    shortest edge first), resample, mean and std. Without a file, ImageNet's usual ones."""
    pre = pre or {}
    size = pre.get("size", {"shortest_edge": 224})
    if isinstance(size, int) and not isinstance(size, bool):
        size = {"shortest_edge": size}
    if not isinstance(size, dict):
        raise ZooError(f"its preprocessor's size is {size!r}, not a size")
    crop = pre.get("crop_size")
    if "shortest_edge" in size:
        edge = _whole(size["shortest_edge"], "preprocessor's shortest_edge", 4096)
        if "crop_pct" in pre:  # ConvNextImageProcessor's rule
            pct = pre["crop_pct"]
            if isinstance(pct, bool) or not isinstance(pct, int | float) or not 0 < pct <= 1:
                raise ZooError(f"its preprocessor's crop_pct {pct!r} is not in (0, 1]")
            image_size = edge
            resize = int(edge / pct) if edge < 384 else None
        elif isinstance(crop, dict):
            image_size = _whole(crop.get("height"), "preprocessor's crop height", 4096)
            if crop.get("width") != image_size:
                raise ZooError("its preprocessor crops to a rectangle; the zoo reads squares")
            resize = edge
        else:
            image_size, resize = edge, edge
    else:
        image_size = _whole(size.get("height"), "preprocessor's height", 4096)
        if size.get("width") != image_size:
            raise ZooError("its preprocessor resizes to a rectangle; the zoo reads squares")
        resize = None
    resample = _RESAMPLE.get(pre.get("resample", 2))
    if resample is None:
        raise ZooError(f"its preprocessor's resample {pre.get('resample')!r} is not known")
    normalize = pre.get("do_normalize", True) is not False
    mean = _numbers(pre.get("image_mean", _IMAGENET_MEAN), "image_mean") if normalize else [0.0] * 3
    std = _numbers(pre.get("image_std", _IMAGENET_STD), "image_std") if normalize else [1.0] * 3
    if min(std) <= 0:
        raise ZooError("its preprocessor's image_std holds a number that is not positive")
    return {
        "image_size": image_size,
        "resize": resize,
        "resample": resample,
        "mean": mean,
        "std": std,
    }


def import_resnet(foreign: ForeignModel) -> Imported:
    """A `transformers` ResNetForImageClassification as the zoo's ResNet, ImageNet layout."""
    config = foreign.config
    block = config.get("layer_type", "bottleneck")
    if block not in _EXPANSION:
        raise ZooError(f"its layer_type {block!r} is neither basic nor bottleneck")
    depths = config.get("depths")
    if not isinstance(depths, list) or not 0 < len(depths) <= 8:
        raise ZooError(f"its depths {depths!r} are not a list of up to 8 stage depths")
    depths = tuple(_whole(d, "depth of a stage", 64) for d in depths)
    width = _whole(config.get("embedding_size", 64), "embedding_size")
    hidden = config.get("hidden_sizes")
    expected = [width * 2**i * _EXPANSION[block] for i in range(len(depths))]
    if hidden != expected:
        raise ZooError(
            f"its hidden_sizes {hidden!r} are not the doubling stages of embedding_size {width} "
            f"({expected}) that the zoo's ResNet builds"
        )
    if config.get("hidden_act", "relu") != "relu":
        raise ZooError(f"its hidden_act {config.get('hidden_act')!r} is not relu")
    if config.get("downsample_in_first_stage", False) or config.get("downsample_in_bottleneck"):
        raise ZooError(
            "it downsamples in its first stage or in the bottleneck's first 1x1 convolution; "
            "the zoo's ResNet strides the 3x3 convolution of each later stage's first block"
        )
    channels = _whole(config.get("num_channels", 3), "num_channels", 3)
    if channels not in (1, 3):
        raise ZooError(f"its num_channels is {channels}; the zoo reads grey (1) or RGB (3)")
    classes = _classes(config)
    pre = _preprocessing(foreign.preprocessor)
    if "classifier.1.weight" not in foreign.header:
        raise ZooError("it has no classifier (classifier.1.weight): import a classification model")
    model_config = {
        "num_classes": len(classes),
        "in_channels": channels,
        "image_size": pre["image_size"],
        "block": block,
        "layers": depths,
        "width": width,
        "stem": "imagenet",
        "shortcut": "B",
    }
    counted = {n for n in foreign.header if n.endswith(".num_batches_tracked")}
    return Imported(
        model=_VARIANTS.get((block, depths), "resnet"),
        task="image-classification",
        convert=lambda name, tensor: _convert(name, tensor, counted),
        model_config=model_config,
        task_state={
            "data": foreign.repo,
            "classes": classes,
            "channels": channels,
            **pre,
        },
    )


def _bn(prefix: str, kind: str, tensor: torch.Tensor, counted: set[str], foreign: str) -> list:
    """A batch norm tensor; beside its running_mean, a zero step count if the file has none."""
    out = [(f"{prefix}.{kind}", tensor)]
    if (
        kind == "running_mean"
        and foreign.replace("running_mean", "num_batches_tracked") not in counted
    ):
        zero = torch.zeros((), dtype=torch.long, device=tensor.device)
        out.append((f"{prefix}.num_batches_tracked", zero))
    return out


def _convert(name: str, tensor: torch.Tensor, counted: set[str]) -> list[tuple[str, Any]]:
    """One `transformers` ResNet tensor as the zoo ResNet's."""
    short = name.removeprefix("resnet.")
    if short in ("classifier.1.weight", "classifier.1.bias"):
        return [(f"head.{short.rsplit('.', 1)[1]}", tensor)]
    if match := _STEM.fullmatch(short):
        part, kind = match.groups()
        if part == "convolution":
            return [(f"stem.0.{kind}", tensor)]
        return _bn("stem.1", kind, tensor, counted, name)
    if match := _LAYER.fullmatch(short):
        stage, block, index, shortcut, part, kind = match.groups()
        where = f"stages.{stage}.{block}"
        if shortcut:
            prefix = f"{where}.shortcut.{0 if part == 'convolution' else 1}"
        else:
            prefix = f"{where}.{'conv' if part == 'convolution' else 'bn'}{int(index) + 1}"
        if part == "convolution":
            return [(f"{prefix}.{kind}", tensor)]
        return _bn(prefix, kind, tensor, counted, name)
    return [(name, tensor)]  # unknown: the header check names it
