"""The GAN family: shapes, the two normalisations, the weight average, the contract."""

import pytest
import torch
from torch import nn

from zoo_core import create_model
from zoo_core.catalog import model_info
from zoo_core.errors import ZooError
from zoo_core.testing import check_model, model_names


@pytest.mark.parametrize("name", model_names(plugin="gan"))
def test_contract(name):
    check_model(name)


@pytest.mark.parametrize(
    "overrides", [{"norm": "spectral"}, {"keep_ema": True}, {"num_classes": 0}]
)
def test_contract_of_the_options(overrides):
    check_model("gan", overrides)


def test_both_gans_are_registered():
    assert model_names(plugin="gan") == ["gan", "gan-mlp"]
    assert model_info("gan")["tasks"] == ["image-generation"]
    assert model_info("gan-mlp")["tasks"] == ["toy-2d"]


@pytest.mark.parametrize("size", [8, 16, 32, 64])
def test_dcgan_shapes_at_every_power_of_two(size):
    model = create_model("gan", image_size=size, width=4, latent_dim=8, channels=1)
    images = model(torch.randn(3, 8))
    assert images.shape == (3, 1, size, size)
    assert images.abs().max() <= 1  # tanh
    assert model.discriminator(images).shape == (3,)
    # One stride-2 step per doubling from 4x4, in both players.
    ups = [m for m in model.generator.modules() if isinstance(m, nn.ConvTranspose2d)]
    downs = [m for m in model.discriminator.modules() if isinstance(m, nn.Conv2d)]
    assert len(ups) == len(downs) == size.bit_length() - 2


def test_d_width_sizes_the_discriminator_apart_from_the_generator():
    same = create_model("gan", width=8, d_width=0)  # 0: as wide as the generator
    narrow = create_model("gan", width=8, d_width=4)
    convs = lambda m: [c for c in m.discriminator.modules() if isinstance(c, nn.Conv2d)]  # noqa: E731
    assert [c.out_channels for c in convs(same)][:3] == [8, 16, 32]
    assert [c.out_channels for c in convs(narrow)][:3] == [4, 8, 16]
    assert narrow.discriminator(torch.randn(2, 3, 32, 32)).shape == (2,)
    gen = lambda m: [p.shape for p in m.generator.parameters()]  # noqa: E731
    assert gen(same) == gen(narrow)  # the generator is the same either way
    with pytest.raises(ZooError, match="d_width must be positive, or 0"):
        create_model("gan", d_width=-1)


def test_image_size_must_be_a_power_of_two():

    with pytest.raises((ValueError, ZooError), match="power of two"):
        create_model("gan", image_size=24)


def test_norm_picks_the_discriminators_normalisation():
    batch = create_model("gan", width=4)
    spectral = create_model("gan", width=4, norm="spectral")
    has_bn = lambda m: any(isinstance(x, nn.BatchNorm2d) for x in m.modules())  # noqa: E731
    assert has_bn(batch.discriminator) and not has_bn(spectral.discriminator)
    assert has_bn(spectral.generator)  # the generator keeps batch norm either way
    convs = [m for m in spectral.discriminator.modules() if isinstance(m, nn.Conv2d)]
    assert all(hasattr(c, "parametrizations") for c in convs)
    # Spectral norm keeps every layer's largest singular value near 1 after power iterations.
    spectral.train()
    for _ in range(20):
        spectral.discriminator(torch.randn(2, 3, 32, 32))
    for conv in convs:
        weight = conv.weight.flatten(1)  # the normalised weight
        assert torch.linalg.matrix_norm(weight, ord=2).item() == pytest.approx(1.0, abs=0.05)


def test_the_average_generator_is_a_frozen_copy():
    model = create_model("gan", width=4, keep_ema=True)
    assert model.generator_ema is not None
    assert not any(p.requires_grad for p in model.generator_ema.parameters())
    for a, b in zip(
        model.generator_ema.state_dict().values(),
        model.generator.state_dict().values(),
        strict=True,
    ):
        assert torch.equal(a, b)
    assert create_model("gan", width=4).generator_ema is None


def test_a_class_conditional_dcgan_draws_the_class_it_is_asked_for():
    model = create_model("gan", image_size=16, width=4, latent_dim=8, num_classes=5).eval()
    z = torch.randn(4, 8)
    with pytest.raises(ValueError, match="class-conditional: pass labels"):
        model(z)
    # Per-class batch-norm scales and shifts: the same latents give other images for another class
    # once those differ from their initial values (all ones and zeros).
    for norm in model.generator.norms:
        torch.nn.init.normal_(norm.scale.weight, 1.0, 0.5)
        torch.nn.init.normal_(norm.shift.weight, 0.0, 0.5)
    same = torch.zeros(4, dtype=torch.long)
    assert torch.equal(model(z, same), model(z, same))
    assert not torch.allclose(model(z, same), model(z, same + 3))
    # The discriminator returns the "real" logit and one logit per class.
    out = model.discriminator(model(z, same))
    assert out.shape == (4, 1 + 5)
    unconditional = create_model("gan", image_size=16, width=4, latent_dim=8)
    assert unconditional.discriminator(unconditional(z)).shape == (4,)
    assert unconditional.generator.norms[0].scale is None


def test_num_classes_must_not_be_negative():

    with pytest.raises(ZooError, match="num_classes must be 0"):
        create_model("gan", num_classes=-1)
