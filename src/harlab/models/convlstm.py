"""The tutorial's ConvLSTM, with a ConvLSTM2D layer written to Keras's semantics (PyTorch has none)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import PositiveInt
from torch import nn

from harlab.models.cnn_lstm import split_subsequences
from harlab.models.init import initialize, keras_init
from harlab.models.layers import ACTIVATIONS, ActivationName, Dropout, ShapeError
from harlab.models.registry import register


def same_padding(kernel: tuple[int, int]) -> tuple[int, int, int, int]:
    """F.pad widths (left, right, top, bottom) for stride-1 'same' padding, the extra zero after, as in TensorFlow."""
    (kh, kw) = kernel
    return (kw - 1) // 2, kw // 2, (kh - 1) // 2, kh // 2


class ConvLSTM2D(nn.Module):
    """Keras's ConvLSTM2D (Shi et al., 2015) on [batch, time, channels, rows, cols], returning the last state.

    Per step, with * a convolution: i, f, o = sigmoid(W_· * x + U_· * h + b_·),
    c = f ⊙ c + i ⊙ act(W_c * x + U_c * h + b_c), h = o ⊙ act(c). The input convolution uses `padding`
    ('valid' or 'same'), the recurrent one always 'same'; one bias, no peepholes; gates in Keras's order
    i, f, c, o. The input convolution of all steps runs as one batched call; only the recurrence loops.
    """

    def __init__(self, in_channels: int, filters: int, kernel_size: tuple[int, int], padding: str = "valid",
                 activation: ActivationName = "tanh"):
        super().__init__()
        self.filters, self.kernel_size, self.padding = filters, kernel_size, padding
        self.activation = ACTIVATIONS[activation]
        kh, kw = kernel_size
        self.input_weight = nn.Parameter(torch.empty(4 * filters, in_channels, kh, kw))
        self.recurrent_weight = nn.Parameter(torch.empty(4 * filters, filters, kh, kw))
        self.bias = nn.Parameter(torch.zeros(4 * filters))
        initialize(self.input_weight, "glorot_uniform")
        # Keras draws the recurrent kernel as one orthogonal (kh·kw·filters) × (4·filters) matrix.
        recurrent = torch.empty(kh * kw * filters, 4 * filters)
        initialize(recurrent, "orthogonal")
        with torch.no_grad():
            self.recurrent_weight.copy_(recurrent.reshape(kh, kw, filters, 4 * filters).permute(3, 2, 0, 1))
            self.bias[filters:2 * filters] = 1.0  # unit_forget_bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, steps = x.shape[:2]
        frames = x.flatten(0, 1)
        if self.padding == "same":
            frames = F.pad(frames, same_padding(self.kernel_size))
        projected = F.conv2d(frames, self.input_weight, self.bias)
        projected = projected.reshape(batch, steps, *projected.shape[1:])  # [batch, time, 4F, rows', cols']
        h = torch.zeros(batch, self.filters, *projected.shape[-2:], dtype=x.dtype, device=x.device)
        c = torch.zeros_like(h)
        for t in range(steps):
            recurrent = F.conv2d(F.pad(h, same_padding(self.kernel_size)), self.recurrent_weight)
            i, f, g, o = (projected[:, t] + recurrent).chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * self.activation(g)
            h = torch.sigmoid(o) * self.activation(c)
        return h


@register("convlstm", epochs=25, batch_size=64)
class ConvLSTMClassifier(nn.Module):
    """Window as 4 steps of a 1×32 image; ConvLSTM2D(64, 1×3, relu) → Dropout(0.5) → Flatten → Dense(100) → Dense."""

    def __init__(self, n_channels: int, n_timesteps: int, n_classes: int, subsequences: PositiveInt = 4,
                 filters: PositiveInt = 64, kernel_size: PositiveInt = 3, activation: ActivationName = "relu"):
        super().__init__()
        if n_timesteps % subsequences:
            raise ShapeError(f"{n_timesteps} steps do not split into {subsequences} equal sub-sequences")
        length = n_timesteps // subsequences
        if length < kernel_size:
            raise ShapeError(f"sub-sequences of {length} steps are shorter than the kernel ({kernel_size})")
        self.subsequences = subsequences
        self.convlstm = ConvLSTM2D(n_channels, filters, (1, kernel_size), activation=activation)
        features = filters * (length - kernel_size + 1)
        self.classifier = nn.Sequential(Dropout(0.5), nn.Flatten(), nn.Linear(features, 100), nn.ReLU(),
                                        nn.Linear(100, n_classes))
        keras_init(self.classifier)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for x [batch, channels, time]."""
        frames = split_subsequences(x, self.subsequences).unsqueeze(3)  # [batch, steps, channels, 1, length]
        state = self.convlstm(frames)  # [batch, filters, 1, cols]
        return self.classifier(state.permute(0, 2, 3, 1))  # Keras flattens [rows, cols, filters]
