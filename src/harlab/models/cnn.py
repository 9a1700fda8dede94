"""The tutorial's 1D CNN: two convolutions, dropout, max-pooling, a dense layer."""

from __future__ import annotations

import torch
from torch import nn

from harlab.models.init import keras_init
from harlab.models.registry import register


@register("cnn", epochs=10, batch_size=32)
class CNN1D(nn.Module):
    """Conv1D(f, k, relu) ×2 → Dropout(0.5) → MaxPool(2) → Flatten → Dense(100, relu) → Dense(classes)."""

    def __init__(self, n_channels: int, n_timesteps: int, n_classes: int, filters: int = 64, kernel_size: int = 3):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv1d(n_channels, filters, kernel_size), nn.ReLU(),
            nn.Conv1d(filters, filters, kernel_size), nn.ReLU(),
            nn.Dropout(0.5), nn.MaxPool1d(2))
        steps = (n_timesteps - 2 * (kernel_size - 1)) // 2
        self.classifier = nn.Sequential(nn.Linear(steps * filters, 100), nn.ReLU(), nn.Linear(100, n_classes))
        keras_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for x [batch, channels, time]."""
        features = self.features(x)
        # Flatten time-major, as Keras flattens [time, channels], so weights map one to one.
        return self.classifier(features.transpose(1, 2).flatten(1))
