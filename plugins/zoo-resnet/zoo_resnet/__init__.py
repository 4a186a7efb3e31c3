"""The zoo's ResNet plugin: registers the `resnet` family. Imports no torch (specs name code lazily)."""

from zoo_core import ImporterSpec, ModelSpec, PretrainedWeights, hookimpl

_MODEL = "zoo_resnet.model:ResNet"
_PAPER = "He, Zhang, Ren & Sun, Deep Residual Learning for Image Recognition (2015)"
_TASKS = ("image-classification",)
# The small-image layout of the paper's CIFAR-10 networks: 3x3 stem, stages of 16, 32, 64
# channels, parameter-free (option A) shortcuts. Depth 6n + 2.
_CIFAR = {"stem": "cifar", "block": "basic", "width": 16, "shortcut": "A", "image_size": 32}
# The ImageNet layout: 7x7 stem and max-pool, stages of 64 to 512 channels, projection shortcuts.
_IMAGENET = {
    "stem": "imagenet",
    "width": 64,
    "shortcut": "B",
    "image_size": 224,
    "num_classes": 1000,
}


# Microsoft's ImageNet-1k weights as `transformers` publishes them, converted by the resnet
# importer (importers.py), pinned to a commit of each repo.
_MICROSOFT = {
    "resnet18": PretrainedWeights(
        "microsoft/resnet-18",
        revision="65a5785d9156231087c481e0c7dd33a5ff6f7e3e",
        summary="ImageNet-1k, 1000 classes (transformers' ResNetForImageClassification)",
    ),
    "resnet50": PretrainedWeights(
        "microsoft/resnet-50",
        revision="34c2154c194f829b11125337b98c8f5f9965ff19",
        summary="ImageNet-1k, 1000 classes (transformers' ResNetForImageClassification)",
    ),
}


@hookimpl
def register_models(register):
    variants = [
        (
            "resnet",
            "8-layer CIFAR-style ResNet sized to train in ~3 minutes on a laptop CPU",
            {**_CIFAR, "layers": (1, 1, 1)},
            {"steps": 1800, "batch_size": 32, "lr": 2e-2, "warmup": 50, "weight_decay": 0.05},
        ),
        (
            "resnet20",
            "ResNet-20 of the paper's CIFAR-10 study (0.27M parameters)",
            {**_CIFAR, "layers": (3, 3, 3)},
            {"steps": 4000, "batch_size": 128, "lr": 2e-3, "weight_decay": 0.05},
        ),
        (
            "resnet56",
            "ResNet-56 of the paper's CIFAR-10 study (0.85M parameters)",
            {**_CIFAR, "layers": (9, 9, 9)},
            {"steps": 8000, "batch_size": 128, "lr": 2e-3, "weight_decay": 0.05},
        ),
        (
            "resnet18",
            "ResNet-18, ImageNet layout (11.7M parameters with 1000 classes; GPU)",
            {**_IMAGENET, "block": "basic", "layers": (2, 2, 2, 2)},
            {"steps": 10000, "batch_size": 128, "lr": 1e-3, "weight_decay": 0.05},
        ),
        (
            "resnet50",
            "ResNet-50, ImageNet layout, bottleneck blocks (25.6M parameters; GPU)",
            {**_IMAGENET, "block": "bottleneck", "layers": (3, 4, 6, 3)},
            {"steps": 10000, "batch_size": 128, "lr": 1e-3, "weight_decay": 0.05},
        ),
    ]
    for name, summary, defaults, train_defaults in variants:
        register(
            ModelSpec(
                name=name,
                model=_MODEL,
                tasks=_TASKS,
                family="resnet",
                summary=summary,
                paper=_PAPER,
                defaults=defaults,
                train_defaults=train_defaults,
                pretrained={"microsoft": _MICROSOFT[name]} if name in _MICROSOFT else {},
            )
        )


@hookimpl
def register_importers(register):
    register(
        ImporterSpec(
            name="transformers-resnet",
            format="transformers",
            model_type="resnet",
            importer="zoo_resnet.importers:import_resnet",
            summary="ResNet classifiers in the transformers layout (microsoft/resnet-50)",
        )
    )
