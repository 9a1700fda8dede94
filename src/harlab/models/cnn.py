"""The tutorial's 1D CNN: two convolutions, dropout, max-pooling, a dense layer."""

from __future__ import annotations

import math

import torch
from pydantic import PositiveInt
from torch import nn

from harlab.models.init import keras_init
from harlab.models.layers import Conv1D, ConvOptions, Dropout, TimeMajorFlatten, output_shape
from harlab.models.registry import register


@register("cnn", epochs=10, batch_size=32)
class CNN1D(nn.Module):
    """Conv1D(f, k) ×2 → Dropout(0.5) → MaxPool(2) → Flatten → Dense(100, relu) → Dense(classes)."""

    def __init__(self, n_channels: int, n_timesteps: int, n_classes: int, filters: PositiveInt = 64,
                 kernel_size: PositiveInt = 3,
                 conv: ConvOptions = ConvOptions()):
        super().__init__()
        self.features = nn.Sequential(
            Conv1D(n_channels, filters, kernel_size, conv), Conv1D(filters, filters, kernel_size, conv),
            Dropout(0.5), nn.MaxPool1d(2), TimeMajorFlatten())
        features = math.prod(output_shape(self.features, n_channels, n_timesteps))
        self.classifier = nn.Sequential(nn.Linear(features, 100), nn.ReLU(), nn.Linear(100, n_classes))
        keras_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for x [batch, channels, time]."""
        return self.classifier(self.features(x))
