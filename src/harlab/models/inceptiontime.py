"""InceptionTime of Ismail Fawaz et al. (2020), "InceptionTime: finding AlexNet for time series classification"
(Data Mining and Knowledge Discovery): stacked inception modules with a residual connection every three, global
average pooling, a dense layer; optionally an ensemble of such networks, as the paper's five."""

from __future__ import annotations

import math
from typing import Annotated

import torch
from pydantic import Field, PositiveInt
from torch import nn

from harlab.models.init import keras_init
from harlab.models.layers import Conv1D, ConvBN, ConvOptions
from harlab.models.registry import MODERN_RECIPE, register

MODULES_PER_RESIDUAL = 3
_LINEAR_SAME = ConvOptions(padding="same", activation="linear", use_bias=False)


def branch_kernel_sizes(kernel_size: int) -> tuple[int, int, int]:
    """The paper's kernel_size, kernel_size/2, kernel_size/4 (40, 20, 10), each lowered to an odd size (39, 19, 9)
    so that `same` padding is symmetric."""
    sizes = (kernel_size // 2**i for i in range(3))
    return tuple(size - 1 + size % 2 for size in sizes)


class InceptionModule(nn.Module):
    """A 1×1 bottleneck (when the input has more than one channel) read by three convolutions of decreasing
    kernel size, beside MaxPool(3) → 1×1 convolution of the input; the four concatenated → BatchNorm → ReLU."""

    def __init__(self, in_channels: int, filters: int, kernel_size: int):
        super().__init__()
        bottleneck = filters if in_channels > 1 else in_channels
        self.bottleneck = Conv1D(in_channels, filters, 1, _LINEAR_SAME) if in_channels > 1 else nn.Identity()
        self.convolutions = nn.ModuleList(Conv1D(bottleneck, filters, k, _LINEAR_SAME)
                                          for k in branch_kernel_sizes(kernel_size))
        self.pool_branch = nn.Sequential(nn.MaxPool1d(3, stride=1, padding=1),
                                         Conv1D(in_channels, filters, 1, _LINEAR_SAME))
        self.out = nn.Sequential(nn.BatchNorm1d(4 * filters), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        narrow = self.bottleneck(x)
        return self.out(torch.cat([*(conv(narrow) for conv in self.convolutions), self.pool_branch(x)], dim=1))


class InceptionNetwork(nn.Module):
    """`depth` inception modules, the input of every third added back (1×1 ConvBN) before its ReLU;
    GlobalAveragePooling → Dense(classes)."""

    def __init__(self, n_channels: int, n_classes: int, filters: int, depth: int, kernel_size: int):
        super().__init__()
        width = 4 * filters
        self.blocks = nn.ModuleList(InceptionModule(n_channels if d == 0 else width, filters, kernel_size)
                                    for d in range(depth))
        self.shortcuts = nn.ModuleList(ConvBN(n_channels if s == 0 else width, width, 1, relu=False)
                                       for s in range(depth // MODULES_PER_RESIDUAL))
        self.classifier = nn.Sequential(nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(width, n_classes))
        keras_init(self.classifier)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x
        for d, block in enumerate(self.blocks):
            x = block(x)
            if (d + 1) % MODULES_PER_RESIDUAL == 0:
                x = residual = torch.relu(x + self.shortcuts[d // MODULES_PER_RESIDUAL](residual))
        return self.classifier(x)


@register("inceptiontime", **MODERN_RECIPE)
class InceptionTime(nn.Module):
    """Inception modules (f filters per branch, kernels ≈ k, k/2, k/4) with residuals every 3 → GAP → Dense.

    The paper uses f = 32 and a bottleneck of 32; here the bottleneck has f channels too, and the default f = 8
    keeps an epoch of 7,400 windows within about five seconds on two CPU cores (f = 16 takes twice that).
    With `n_networks` > 1 the module holds that many independent networks: training, it returns their logits
    stacked [n_networks, batch, classes], one loss each; in eval mode, the log of their mean probabilities
    [batch, classes], the paper's ensemble, usable as logits.
    """

    def __init__(self, n_channels: int, n_timesteps: int, n_classes: int, filters: PositiveInt = 8,
                 depth: PositiveInt = 6, kernel_size: Annotated[int, Field(ge=4)] = 40, n_networks: PositiveInt = 1):
        super().__init__()
        self.members = nn.ModuleList(InceptionNetwork(n_channels, n_classes, filters, depth, kernel_size)
                                     for _ in range(n_networks))

    @property
    def ensemble_members(self) -> int:
        """How many networks: more than 1 returns their logits stacked while training (harlab.models.contract)."""
        return len(self.members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for x [batch, channels, time]; stacked per network when training an ensemble."""
        if len(self.members) == 1:
            return self.members[0](x)
        logits = torch.stack([member(x) for member in self.members])
        if self.training:
            return logits
        return torch.logsumexp(torch.log_softmax(logits, dim=-1), dim=0) - math.log(len(self.members))
