"""The tutorial's multi-headed 1D CNN: the same window read at three temporal scales (kernels 3, 5, 11)."""

from __future__ import annotations

import math
from typing import Annotated

import torch
from pydantic import Field, PositiveInt
from torch import nn

from harlab.models.init import keras_init
from harlab.models.layers import Conv1D, ConvOptions, Dropout, TimeMajorFlatten, output_shape
from harlab.models.registry import register


@register("multihead_cnn", epochs=10, batch_size=32)
class MultiHeadCNN(nn.Module):
    """Heads Conv1D(f, k) → Dropout(0.5) → MaxPool(2) → Flatten for k in 3, 5, 11; concatenated → Dense(100) → Dense."""

    def __init__(self, n_channels: int, n_timesteps: int, n_classes: int, filters: PositiveInt = 64,
                 kernel_sizes: Annotated[tuple[PositiveInt, ...], Field(min_length=1)] = (3, 5, 11),
                 conv: ConvOptions = ConvOptions()):
        super().__init__()
        self.heads = nn.ModuleList(
            nn.Sequential(Conv1D(n_channels, filters, k, conv), Dropout(0.5), nn.MaxPool1d(2), TimeMajorFlatten())
            for k in kernel_sizes)
        features = sum(math.prod(output_shape(head, n_channels, n_timesteps)) for head in self.heads)
        self.classifier = nn.Sequential(nn.Linear(features, 100), nn.ReLU(), nn.Linear(100, n_classes))
        keras_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for x [batch, channels, time]."""
        return self.classifier(torch.cat([head(x) for head in self.heads], dim=1))
