"""A small convolution + self-attention network: a convolutional stem reads local motion and halves the window,
a transformer encoder relates its steps across the whole window.

It follows the HAR models that put self-attention over convolutional features of the sensor window (Mahmud et
al. 2020, "Human activity recognition from wearable sensor data using self-attention", ECAI; TinyHAR, Zhou et al.
2022, ISWC), with the pre-norm encoder layer of Xiong et al. 2020 ("On layer normalization in the transformer
architecture") and mean pooling over time as the classifier's input.
"""

from __future__ import annotations

from typing import Annotated

import torch
from pydantic import Field, PositiveInt
from torch import nn

from harlab.errors import HarlabError
from harlab.models.init import keras_init
from harlab.models.layers import ConvBN, Dropout, output_shape
from harlab.models.registry import MODERN_RECIPE, register

STEM_KERNEL = 5
FEEDFORWARD_FACTOR = 2


class LearnedPositions(nn.Module):
    """Adds a learned embedding per time step to [batch, time, features]."""

    def __init__(self, n_steps: int, features: int):
        super().__init__()
        self.embedding = nn.Parameter(nn.init.trunc_normal_(torch.empty(1, n_steps, features), std=0.02))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.embedding


class PreNormEncoderLayer(nn.Module):
    """x + Dropout(Attention(LayerNorm(x))), then x + Dropout(FeedForward(LayerNorm(x))), on [batch, time, features].

    Dropout falls on each sub-layer's output, where Vaswani et al. (2017) put it, not on the attention weights
    or inside the feed-forward as nn.TransformerEncoderLayer also does: on a CPU those masks cost a third of a
    training step. A model summary shows the layer as one row.
    """

    summary_as_layer = True

    def __init__(self, d_model: int, heads: int, feedforward: int, dropout: float):
        super().__init__()
        self.attention_norm = nn.LayerNorm(d_model)
        self.attention = nn.MultiheadAttention(d_model, heads, batch_first=True)
        self.attention_dropout = Dropout(dropout)
        self.feedforward_norm = nn.LayerNorm(d_model)
        self.feedforward = nn.Sequential(nn.Linear(d_model, feedforward), nn.GELU(), nn.Linear(feedforward, d_model))
        self.feedforward_dropout = Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        normed = self.attention_norm(x)
        attended, _ = self.attention(normed, normed, normed, need_weights=False)
        x = x + self.attention_dropout(attended)
        return x + self.feedforward_dropout(self.feedforward(self.feedforward_norm(x)))


@register("conv_transformer", **MODERN_RECIPE)
class ConvTransformer(nn.Module):
    """ConvBN(d, 5) → ConvBN(d, 5, stride 2) → +positions → Dropout → pre-norm encoder ×layers → LayerNorm → mean
    → Dense.

    Each encoder layer: `heads`-head self-attention and a GELU feed-forward of 2·d_model units, each output
    dropped out before it is added back.
    """

    def __init__(self, n_channels: int, n_timesteps: int, n_classes: int, d_model: PositiveInt = 64,
                 heads: PositiveInt = 4, layers: PositiveInt = 2, dropout: Annotated[float, Field(ge=0, lt=1)] = 0.1):
        super().__init__()
        if d_model % heads:
            raise HarlabError(f"model 'conv_transformer': d_model={d_model} does not split into {heads} heads")
        self.stem = nn.Sequential(ConvBN(n_channels, d_model, STEM_KERNEL),
                                  ConvBN(d_model, d_model, STEM_KERNEL, stride=2))
        _, n_steps = output_shape(self.stem, n_channels, n_timesteps)
        self.positions = LearnedPositions(n_steps, d_model)
        self.dropout = Dropout(dropout)
        self.encoder = nn.Sequential(*(PreNormEncoderLayer(d_model, heads, FEEDFORWARD_FACTOR * d_model, dropout)
                                       for _ in range(layers)))
        self.norm = nn.LayerNorm(d_model)
        self.classifier = nn.Linear(d_model, n_classes)
        keras_init(self)  # Glorot-uniform weights, as nn.Transformer's; zero biases

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for x [batch, channels, time]."""
        steps = self.encoder(self.dropout(self.positions(self.stem(x).transpose(1, 2))))  # [batch, time / 2, d_model]
        return self.classifier(self.norm(steps).mean(dim=1))
