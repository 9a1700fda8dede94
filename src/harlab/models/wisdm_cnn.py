"""The WISDM tutorial's 4-layer 1D CNN (80 steps × 3 accelerometer axes there; any window shape here)."""

from __future__ import annotations

import torch
from pydantic import PositiveInt
from torch import nn

from harlab.models.init import keras_init
from harlab.models.layers import Conv1D, ConvOptions, Dropout, output_shape
from harlab.models.registry import register


@register("wisdm_cnn", epochs=50, batch_size=400, validation_split=0.2, patience=5)
class WisdmCNN(nn.Module):
    """Conv1D(100, 10) ×2 → MaxPool(3) → Conv1D(160, 10) ×2 → GlobalAveragePooling → Dropout(0.5) → Dense(classes).

    Takes [batch, channels, time] windows, or the tutorial's flat vectors [batch, time·channels] (time-major,
    as it flattened them), which it reshapes first.
    """

    def __init__(self, n_channels: int, n_timesteps: int, n_classes: int, filters: PositiveInt = 100,
                 late_filters: PositiveInt = 160, kernel_size: PositiveInt = 10, pool_size: PositiveInt = 3,
                 conv: ConvOptions = ConvOptions()):
        super().__init__()
        self.n_channels, self.n_timesteps = n_channels, n_timesteps
        self.features = nn.Sequential(
            Conv1D(n_channels, filters, kernel_size, conv), Conv1D(filters, filters, kernel_size, conv),
            nn.MaxPool1d(pool_size),
            Conv1D(filters, late_filters, kernel_size, conv), Conv1D(late_filters, late_filters, kernel_size, conv),
            nn.AdaptiveAvgPool1d(1), nn.Flatten())
        output_shape(self.features, n_channels, n_timesteps)  # fails early, clearly, on too short windows
        self.classifier = nn.Sequential(Dropout(0.5), nn.Linear(late_filters, n_classes))
        keras_init(self.classifier)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for x [batch, channels, time] or flat [batch, time·channels]."""
        if x.dim() == 2:
            x = x.reshape(len(x), self.n_timesteps, self.n_channels).transpose(1, 2)
        return self.classifier(self.features(x))
