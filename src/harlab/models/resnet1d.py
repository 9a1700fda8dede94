"""The fully convolutional ResNet of Wang, Yan & Oates (2017), "Time series classification from scratch with deep
neural networks: a strong baseline" (IJCNN): three residual blocks, global average pooling, a dense layer."""

from __future__ import annotations

import torch
from pydantic import PositiveInt
from torch import nn

from harlab.models.init import keras_init
from harlab.models.layers import ConvBN
from harlab.models.registry import MODERN_RECIPE, register

KERNEL_SIZES = (8, 5, 3)


class ResidualBlock(nn.Module):
    """ConvBN(k=8) → ConvBN(k=5) → Conv(k=3)+BN, plus the shortcut (a 1×1 ConvBN where the channels change,
    else the input itself), then ReLU."""

    def __init__(self, in_channels: int, filters: int):
        super().__init__()
        first, middle, last = KERNEL_SIZES
        self.body = nn.Sequential(ConvBN(in_channels, filters, first), ConvBN(filters, filters, middle),
                                  ConvBN(filters, filters, last, relu=False))
        self.shortcut = ConvBN(in_channels, filters, 1, relu=False) if in_channels != filters else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


@register("resnet1d", **MODERN_RECIPE)
class ResNet1D(nn.Module):
    """Residual blocks of f, 2f, 2f filters (kernels 8, 5, 3) → GlobalAveragePooling → Dense(classes).

    The paper uses f = 64; the default f = 32 keeps an epoch of 7,400 windows to a few seconds on two CPU cores.
    """

    def __init__(self, n_channels: int, n_timesteps: int, n_classes: int, filters: PositiveInt = 32):
        super().__init__()
        widths = (filters, 2 * filters, 2 * filters)
        self.features = nn.Sequential(
            *(ResidualBlock(n_in, n_out) for n_in, n_out in zip((n_channels, *widths[:-1]), widths, strict=True)),
            nn.AdaptiveAvgPool1d(1), nn.Flatten())
        self.classifier = nn.Linear(widths[-1], n_classes)
        keras_init(self.classifier)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for x [batch, channels, time]."""
        return self.classifier(self.features(x))
