"""Residual networks (He et al.): basic and bottleneck blocks, CIFAR and ImageNet layouts.

Two layouts share one class:

- ``stem="cifar"``: a 3x3 convolution, then stages of ``width * 2**i`` channels that halve the
  resolution after the first (resnet20, resnet56: three stages of 16, 32, 64 channels).
- ``stem="imagenet"``: a 7x7 stride-2 convolution and a 3x3 max-pool, then four stages of 64, 128,
  256, 512 channels (times 4 at the output of bottleneck blocks), as in torchvision.

Where a block changes shape, the shortcut is either option A (parameter-free: subsample and pad
the new channels with zeros, the paper's CIFAR choice) or option B (a 1x1 convolution and batch
norm, the ImageNet choice). A bottleneck stride sits on its 3x3 convolution ("v1.5").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class ResNetConfig:
    num_classes: int = 10  # set from the data by the task
    in_channels: int = 3
    image_size: int = 32  # the input size the task resizes images to
    block: Literal["basic", "bottleneck"] = "basic"
    layers: tuple[int, ...] = (3, 3, 3)  # blocks per stage (resnet20)
    width: int = 16  # channels of the first stage; each later stage doubles them
    stem: Literal["cifar", "imagenet"] = "cifar"
    shortcut: Literal["A", "B"] = "A"  # A: zero-padded identity; B: 1x1 conv projection
    zero_init_residual: bool = True  # last BN of each block starts at 0: blocks start as identity

    def __post_init__(self):
        if self.num_classes < 1 or self.in_channels < 1 or self.width < 1:
            raise ValueError("num_classes, in_channels and width must be positive")
        if not self.layers or any(n < 1 for n in self.layers):
            raise ValueError("layers needs at least one stage, each of at least one block")
        if self.image_size < 8:
            raise ValueError("image_size must be at least 8")


class _ShortcutA(nn.Module):
    """Option A: subsample by ``stride`` and append zero channels; no parameters."""

    def __init__(self, stride: int, extra_channels: int):
        super().__init__()
        self.stride, self.extra = stride, extra_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]  # (B, C, H/s, W/s)
        return F.pad(x, (0, 0, 0, 0, 0, self.extra))  # (B, C + extra, H/s, W/s)


def _shortcut(kind: str, in_ch: int, out_ch: int, stride: int) -> nn.Module:
    if stride == 1 and in_ch == out_ch:
        return nn.Identity()
    if kind == "A":
        return _ShortcutA(stride, out_ch - in_ch)
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))


class BasicBlock(nn.Module):
    """Two 3x3 convolutions and a shortcut."""

    expansion = 1

    def __init__(self, in_ch: int, width: int, stride: int, shortcut: str):
        super().__init__()
        out_ch = width * self.expansion
        self.conv1 = nn.Conv2d(in_ch, width, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, out_ch, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.shortcut = _shortcut(shortcut, in_ch, out_ch, stride)

    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))  # (B, width, H/s, W/s)
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carrying the stride), 1x1 expand by 4, and a shortcut."""

    expansion = 4

    def __init__(self, in_ch: int, width: int, stride: int, shortcut: str):
        super().__init__()
        out_ch = width * self.expansion
        self.conv1 = nn.Conv2d(in_ch, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_ch, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_ch)
        self.shortcut = _shortcut(shortcut, in_ch, out_ch, stride)

    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))  # (B, width, H, W)
        out = F.relu(self.bn2(self.conv2(out)))  # (B, width, H/s, W/s)
        out = self.bn3(self.conv3(out))  # (B, 4 * width, H/s, W/s)
        return F.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    """Images ``(B, in_channels, H, W)`` to class logits ``(B, num_classes)``."""

    config_class = ResNetConfig
    # Trainers that honour it move the model and batches to channels_last memory.
    channels_last = True
    # Small sizes for the contract tests (zoo_core.testing), applied over any variant.
    test_overrides = {"width": 4, "image_size": 16, "num_classes": 5}

    def __init__(self, config: ResNetConfig):
        super().__init__()
        self.config = config
        block = BasicBlock if config.block == "basic" else Bottleneck
        if config.stem == "cifar":
            stem_ch = config.width
            self.stem = nn.Sequential(
                nn.Conv2d(config.in_channels, stem_ch, 3, 1, 1, bias=False),
                nn.BatchNorm2d(stem_ch),
                nn.ReLU(inplace=True),
            )
        else:
            stem_ch = config.width
            self.stem = nn.Sequential(
                nn.Conv2d(config.in_channels, stem_ch, 7, 2, 3, bias=False),
                nn.BatchNorm2d(stem_ch),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(3, 2, 1),
            )
        stages, in_ch = [], stem_ch
        for i, depth in enumerate(config.layers):
            width = config.width * 2**i
            blocks = []
            for j in range(depth):
                stride = 2 if i > 0 and j == 0 else 1
                blocks.append(block(in_ch, width, stride, config.shortcut))
                in_ch = width * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.head = nn.Linear(in_ch, config.num_classes)
        self._init_weights()

    @property
    def blocks(self) -> list[nn.Module]:
        """The stages: what FSDP shards one by one and activation checkpointing recomputes."""
        return list(self.stages)

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if self.config.zero_init_residual:
            for m in self.modules():
                if isinstance(m, BasicBlock | Bottleneck):
                    nn.init.zeros_(m.last_bn().weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)  # (B, width, H, W) or (B, width, H/4, W/4) for the ImageNet stem
        x = self.stages(x)  # (B, C, H', W')
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)  # (B, C)
        return self.head(x)  # (B, num_classes)
