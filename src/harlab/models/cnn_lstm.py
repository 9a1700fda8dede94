"""The tutorial's CNN-LSTM: a CNN reads each sub-sequence of the window, an LSTM reads the CNN's outputs."""

from __future__ import annotations

import math

import torch
from pydantic import PositiveInt
from torch import nn

from harlab.models.init import keras_init
from harlab.models.layers import Conv1D, ConvOptions, Dropout, ShapeError, TimeMajorFlatten, output_shape
from harlab.models.lstm import KerasLSTM
from harlab.models.registry import register


def split_subsequences(x: torch.Tensor, subsequences: int) -> torch.Tensor:
    """[batch, channels, time] → [batch, subsequences, channels, time / subsequences], consecutive pieces."""
    batch, channels, time = x.shape
    return x.reshape(batch, channels, subsequences, time // subsequences).transpose(1, 2)


@register("cnn_lstm", epochs=25, batch_size=64)
class CNNLSTM(nn.Module):
    """Per sub-sequence (shared) Conv1D(f, k) ×2 → Dropout → MaxPool(2) → Flatten; LSTM(100) → Dropout → Dense ×2."""

    def __init__(self, n_channels: int, n_timesteps: int, n_classes: int, subsequences: PositiveInt = 4,
                 filters: PositiveInt = 64, kernel_size: PositiveInt = 3, units: PositiveInt = 100,
                 conv: ConvOptions = ConvOptions()):
        super().__init__()
        if n_timesteps % subsequences:
            raise ShapeError(f"{n_timesteps} steps do not split into {subsequences} equal sub-sequences")
        self.subsequences = subsequences
        length = n_timesteps // subsequences
        self.features = nn.Sequential(
            Conv1D(n_channels, filters, kernel_size, conv), Conv1D(filters, filters, kernel_size, conv),
            Dropout(0.5), nn.MaxPool1d(2), TimeMajorFlatten())
        self.lstm = KerasLSTM(math.prod(output_shape(self.features, n_channels, length)), units)
        self.classifier = nn.Sequential(Dropout(0.5), nn.Linear(units, 100), nn.ReLU(), nn.Linear(100, n_classes))
        keras_init(self.classifier)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for x [batch, channels, time]."""
        pieces = split_subsequences(x, self.subsequences)  # [batch, steps, channels, length]
        batch, steps = pieces.shape[:2]
        features = self.features(pieces.flatten(0, 1)).reshape(batch, steps, -1)  # TimeDistributed
        return self.classifier(self.lstm(features))
