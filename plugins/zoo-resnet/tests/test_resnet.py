"""The ResNet family: published parameter counts, shortcuts and shapes."""

import pytest
import torch

from zoo_core import count_parameters, create_model
from zoo_core.catalog import model_info

# Published figures: He et al. (2015), Table 6 for the CIFAR networks (0.27M, 0.85M; the exact
# counts are those of the option-A reference implementations), torchvision for ImageNet ones.
PUBLISHED = {
    "resnet20": (10, 269_722, 0.27),
    "resnet56": (10, 853_018, 0.85),
    "resnet18": (1000, 11_689_512, 11.7),
    "resnet50": (1000, 25_557_032, 25.6),
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_parameter_counts_match_the_published_models(name):
    classes, exact, millions = PUBLISHED[name]
    with torch.device("meta"):
        model = create_model(name, num_classes=classes)
    assert count_parameters(model) == exact
    assert round(exact / 1e6, 2 if exact < 1e6 else 1) == millions


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_zoo_info_shows_the_imagenet_count(name):
    assert model_info(name)["parameters"] == PUBLISHED[name][1]


def test_the_default_variant_is_a_small_cifar_network():
    info = model_info("resnet")
    fields = {f["name"]: f["default"] for f in info["config"]}
    assert fields["stem"] == "cifar" and fields["shortcut"] == "A" and fields["image_size"] == 32
    assert info["parameters"] < PUBLISHED["resnet20"][1]


def test_shortcut_options_and_output_shapes():
    a = create_model("resnet20", num_classes=7)
    b = create_model("resnet20", num_classes=7, shortcut="B")
    # Option A is parameter-free; B adds a 1x1 conv and a batch norm where the shape changes.
    assert count_parameters(b) - count_parameters(a) == (16 * 32 + 2 * 32) + (32 * 64 + 2 * 64)
    x = torch.randn(2, 3, 32, 32)
    assert a(x).shape == (2, 7)
    grey = create_model("resnet18", num_classes=3, in_channels=1, width=8, image_size=64)
    assert grey(torch.randn(2, 1, 64, 64)).shape == (2, 3)


def test_blocks_start_as_identity_with_zero_init_residual():
    model = create_model("resnet20").eval()
    block = model.stages[0][0]  # same shape in and out
    x = torch.relu(torch.randn(2, 16, 8, 8))
    with torch.no_grad():
        assert torch.equal(block(x), x)


def test_channels_last_is_declared():
    from zoo_core.catalog import get_model_spec, model_class

    assert model_class(get_model_spec("resnet")).channels_last is True
