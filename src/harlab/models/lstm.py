"""The tutorial's LSTM, and the Keras-semantics LSTM layer it and the CNN-LSTM share."""

from __future__ import annotations

import torch
from pydantic import PositiveInt
from torch import nn

from harlab.models.init import initialize, keras_init
from harlab.models.layers import Dropout
from harlab.models.registry import register


class KerasLSTM(nn.Module):
    """Keras's LSTM(units) on [batch, time, features], returning the last hidden state (both directions' when
    bidirectional, as Keras's Bidirectional concatenates them).

    PyTorch's LSTM adds two bias vectors (input and recurrent) where Keras has one; the recurrent one is
    turned into a fixed zero buffer, so parameters, count and function are Keras's. Initialization is
    Keras's too: Glorot-uniform kernel, orthogonal recurrent kernel, zero bias with the forget gate at 1.
    """

    summary_as_layer = True  # one row in a model summary, as Keras shows it

    def __init__(self, input_size: int, units: int, layers: int = 1, bidirectional: bool = False):
        super().__init__()
        self.lstm = nn.LSTM(input_size, units, num_layers=layers, bidirectional=bidirectional, batch_first=True)
        for name, param in list(self.lstm.named_parameters()):
            if name.startswith("bias_hh"):
                delattr(self.lstm, name)
                self.lstm.register_buffer(name, torch.zeros_like(param), persistent=False)
            elif name.startswith("bias_ih"):
                initialize(param, "zeros")
                with torch.no_grad():
                    param[units:2 * units] = 1.0  # gate order i, f, g, o in both frameworks
            else:
                initialize(param, "glorot_uniform" if name.startswith("weight_ih") else "orthogonal")
        self.lstm._init_flat_weights()  # make the LSTM's kernel read the zero buffers
        self.output_size = units * (2 if bidirectional else 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, (hidden, _) = self.lstm(x)
        directions = 2 if self.lstm.bidirectional else 1
        return torch.cat(list(hidden[-directions:]), dim=1)


@register("lstm", epochs=15, batch_size=64)
class LSTMClassifier(nn.Module):
    """LSTM(100) → Dropout(0.5) → Dense(100, relu) → Dense(classes); `layers` stacks, `bidirectional` doubles."""

    def __init__(self, n_channels: int, n_timesteps: int, n_classes: int, units: PositiveInt = 100,
                 layers: PositiveInt = 1, bidirectional: bool = False):
        super().__init__()
        self.lstm = KerasLSTM(n_channels, units, layers, bidirectional)
        self.classifier = nn.Sequential(Dropout(0.5), nn.Linear(self.lstm.output_size, 100), nn.ReLU(),
                                        nn.Linear(100, n_classes))
        keras_init(self.classifier)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for x [batch, channels, time]."""
        return self.classifier(self.lstm(x.transpose(1, 2)))
