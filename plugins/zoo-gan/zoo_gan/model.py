"""Generative adversarial networks: a DCGAN for images and an MLP GAN for 2-D points.

One module holds both players, so one safetensors file holds a trained GAN:

- ``generator``: latent ``(B, latent_dim)`` to a sample (an image in [-1, 1], or a 2-D point);
- ``discriminator``: a sample to one logit per sample ``(B,)``, "real" when positive;
- with ``num_classes`` K > 0 (the DCGAN), both are class-conditional: the generator takes class
  labels ``(B,)`` beside the latents and the discriminator returns ``(B, 1 + K)``, the "real"
  logit followed by K class logits (an auxiliary classifier, as in Odena et al.'s AC-GAN);
- ``generator_ema`` (when ``keep_ema``): an exponential moving average of the generator's weights,
  updated by the task after each step and used for sampling; it never receives gradients.

The DCGAN (Radford et al.) generator upsamples a 4x4 map with stride-2 transposed convolutions,
halving the channels each time; the discriminator mirrors it with stride-2 convolutions, from
its own width (``d_width``; the ``gan`` default makes the generator twice as wide). The
generator uses batch norm, as in both the DCGAN and the SN-GAN papers; ``norm`` picks the
discriminator's: batch norm (DCGAN) or spectral norm on every layer (Miyato et al., SN-GAN).
A class-conditional generator learns a batch-norm scale and shift per class (conditional batch
norm, de Vries et al. 2017; used by Miyato & Koyama and BigGAN); its discriminator adds a class
head beside the "real" one, reading the same 4x4 features.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


def _keep_average(module: nn.Module) -> nn.Module:
    """A frozen copy of ``module`` that only ever changes by weight averaging."""
    average = copy.deepcopy(module)
    average.requires_grad_(False)
    return average


@dataclass
class DCGANConfig:
    latent_dim: int = 64  # size of the noise vector z
    image_size: int = 32  # a power of two, at least 8
    channels: int = 3  # image channels (1 grey, 3 RGB)
    width: int = 32  # channels of the generator's last feature map (doubled at each lower size)
    d_width: int = 0  # channels of the discriminator's first feature map (0: the same as width)
    norm: Literal["batch", "spectral"] = "batch"  # the discriminator's normalisation
    # Classes to condition on (0: unconditional). The image-generation task sets it from the
    # data's class folders; --set num_classes=0 trains an unconditional DCGAN on them.
    num_classes: int = 0
    keep_ema: bool = False  # hold an averaged generator (set from the task's `ema` option)

    def __post_init__(self):
        size = self.image_size
        if size < 8 or size & (size - 1):
            raise ValueError(f"image_size must be a power of two, at least 8, not {size}")
        if self.latent_dim < 1 or self.channels < 1 or self.width < 1:
            raise ValueError("latent_dim, channels and width must be positive")
        if self.d_width < 0:
            raise ValueError(
                f"d_width must be positive, or 0 for the same as width; not {self.d_width}"
            )
        if self.num_classes < 0:
            raise ValueError(
                f"num_classes must be 0 (unconditional) or more, not {self.num_classes}"
            )


class ClassBatchNorm(nn.Module):
    """Batch norm with a learned scale and shift per class; a plain (affine) batch norm when
    ``num_classes`` is 0."""

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=num_classes == 0)
        self.scale = self.shift = None
        if num_classes:
            self.scale = nn.Embedding(num_classes, channels)
            self.shift = nn.Embedding(num_classes, channels)
            nn.init.ones_(self.scale.weight)
            nn.init.zeros_(self.shift.weight)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        x = self.norm(x)  # (B, C, H, W)
        if self.scale is None:
            return x
        return x * self.scale(labels)[:, :, None, None] + self.shift(labels)[:, :, None, None]


class DCGANGenerator(nn.Module):
    def __init__(self, cfg: DCGANConfig):
        super().__init__()
        self.num_classes = cfg.num_classes
        n = cfg.image_size.bit_length() - 3  # stride-2 steps from 4x4 to image_size
        ch = cfg.width * 2 ** (n - 1)
        # 1x1 to 4x4, then each layer doubles H and W and halves the channels.
        self.ups = nn.ModuleList([nn.ConvTranspose2d(cfg.latent_dim, ch, 4, 1, 0, bias=False)])
        self.norms = nn.ModuleList([ClassBatchNorm(ch, cfg.num_classes)])
        for _ in range(n - 1):
            self.ups.append(nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False))
            self.norms.append(ClassBatchNorm(ch // 2, cfg.num_classes))
            ch //= 2
        self.out = nn.ConvTranspose2d(ch, cfg.channels, 4, 2, 1)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Images ``(B, C, S, S)`` in [-1, 1] from latents ``(B, L)`` (and labels ``(B,)``)."""
        if self.num_classes and labels is None:
            raise ValueError("this generator is class-conditional: pass labels (B,) as well")
        h = z[:, :, None, None]  # (B, L, 1, 1)
        for up, norm in zip(self.ups, self.norms, strict=True):
            h = F.relu(norm(up(h), labels))  # an unconditional norm ignores the labels
        return torch.tanh(self.out(h))


class DCGANDiscriminator(nn.Module):
    def __init__(self, cfg: DCGANConfig):
        super().__init__()
        spectral = cfg.norm == "spectral"

        def conv(c_in: int, c_out: int, *args, normed: bool = True) -> nn.Module:
            # A layer followed by batch norm needs no bias.
            layer = nn.Conv2d(c_in, c_out, *args, bias=spectral or not normed)
            return spectral_norm(layer) if spectral else layer

        n = cfg.image_size.bit_length() - 3
        ch = cfg.d_width or cfg.width
        layers: list[nn.Module] = [
            conv(cfg.channels, ch, 4, 2, 1, normed=False),  # no norm on the input layer
            nn.LeakyReLU(0.2, inplace=True),
        ]
        for _ in range(n - 1):
            layers.append(conv(ch, ch * 2, 4, 2, 1))  # halves H and W
            if not spectral:
                layers.append(nn.BatchNorm2d(ch * 2))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            ch *= 2
        self.net = nn.Sequential(*layers)
        # The 4x4 features to one "real" logit, and to class logits when conditional.
        self.real = conv(ch, 1, 4, 1, 0, normed=False)
        self.classes = conv(ch, cfg.num_classes, 4, 1, 0, normed=False) if cfg.num_classes else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, S, S)`` to logits ``(B,)``; ``(B, 1 + num_classes)`` when conditional."""
        h = self.net(x)  # (B, ch, 4, 4)
        real = self.real(h).flatten(1)  # (B, 1)
        if self.classes is None:
            return real.flatten()
        return torch.cat([real, self.classes(h).flatten(1)], 1)


class DCGAN(nn.Module):
    """A DCGAN: ``generator``, ``discriminator`` and, with ``keep_ema``, ``generator_ema``;
    class-conditional when ``num_classes`` > 0."""

    config_class = DCGANConfig
    test_overrides = {"latent_dim": 8, "image_size": 16, "width": 8, "d_width": 4, "num_classes": 3}
    channels_last = True

    def __init__(self, config: DCGANConfig):
        super().__init__()
        self.config = config
        self.latent_dim = config.latent_dim
        self.num_classes = config.num_classes
        self.generator = DCGANGenerator(config)
        self.discriminator = DCGANDiscriminator(config)
        self.apply(_dcgan_init)
        self.generator_ema = _keep_average(self.generator) if config.keep_ema else None

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Images ``(B, C, S, S)`` in [-1, 1] from latents ``(B, latent_dim)`` (and, when
        conditional, class labels ``(B,)``)."""
        return self.generator(z, labels)


def _dcgan_init(module: nn.Module) -> None:
    """The DCGAN paper's initialisation: N(0, 0.02) weights, batch-norm scales N(1, 0.02)."""
    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d) and module.affine:
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


@dataclass
class MLPGANConfig:
    latent_dim: int = 8  # size of the noise vector z
    data_dim: int = 2  # size of one sample (2 for points in the plane)
    hidden: int = 128  # width of every hidden layer, in both players
    layers: int = 3  # hidden layers per player
    keep_ema: bool = False  # hold an averaged generator (set from the task's `ema` option)

    def __post_init__(self):
        if min(self.latent_dim, self.data_dim, self.hidden, self.layers) < 1:
            raise ValueError("latent_dim, data_dim, hidden and layers must be positive")


def _mlp(d_in: int, hidden: int, n: int, d_out: int, act: type[nn.Module]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(n):
        layers += [nn.Linear(d_in if i == 0 else hidden, hidden), act()]
    return nn.Sequential(*layers, nn.Linear(hidden, d_out))


class MLPDiscriminator(nn.Module):
    def __init__(self, cfg: MLPGANConfig):
        super().__init__()
        self.net = _mlp(cfg.data_dim, cfg.hidden, cfg.layers, 1, lambda: nn.LeakyReLU(0.2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten()  # (B, D) -> (B,)


class MLPGAN(nn.Module):
    """Two MLPs: ``generator`` (latent to point) and ``discriminator`` (point to logit)."""

    config_class = MLPGANConfig
    test_overrides = {"hidden": 16, "layers": 2, "latent_dim": 4}

    def __init__(self, config: MLPGANConfig):
        super().__init__()
        self.config = config
        self.latent_dim = config.latent_dim
        self.generator = _mlp(
            config.latent_dim, config.hidden, config.layers, config.data_dim, nn.ReLU
        )
        self.discriminator = MLPDiscriminator(config)
        self.generator_ema = _keep_average(self.generator) if config.keep_ema else None

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Points ``(B, data_dim)`` from latents ``(B, latent_dim)``."""
        return self.generator(z)
