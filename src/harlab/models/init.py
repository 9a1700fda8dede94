"""Keras's initializers by name, so PyTorch models start where the tutorials' Keras models start.

Weights are initialized in PyTorch's layout; fans are computed the way Keras computes them, which for
convolutions and dense layers equals PyTorch's own fan computation.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

# Keras draws "normal" variance-scaling weights from a normal truncated at two standard deviations,
# and widens the standard deviation by this factor so the truncated draw keeps the intended variance.
_TRUNCATION_CORRECTION = 0.87962566103423978


def _truncated_normal(tensor: torch.Tensor, std: float) -> torch.Tensor:
    return nn.init.trunc_normal_(tensor, mean=0.0, std=std, a=-2 * std, b=2 * std)


def _fans(tensor: torch.Tensor) -> tuple[int, int]:
    if tensor.dim() < 2:
        return tensor.numel(), tensor.numel()
    return nn.init._calculate_fan_in_and_fan_out(tensor)


def _variance_scaling(scale: float, mode: str, distribution: str) -> Callable[[torch.Tensor], torch.Tensor]:
    def init(tensor: torch.Tensor) -> torch.Tensor:
        fan_in, fan_out = _fans(tensor)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
        if distribution == "uniform":
            limit = math.sqrt(3 * scale / n)
            return nn.init.uniform_(tensor, -limit, limit)
        return _truncated_normal(tensor, math.sqrt(scale / n) / _TRUNCATION_CORRECTION)

    return init


INITIALIZERS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "glorot_uniform": _variance_scaling(1.0, "fan_avg", "uniform"),
    "glorot_normal": _variance_scaling(1.0, "fan_avg", "normal"),
    "he_uniform": _variance_scaling(2.0, "fan_in", "uniform"),
    "he_normal": _variance_scaling(2.0, "fan_in", "normal"),
    "lecun_uniform": _variance_scaling(1.0, "fan_in", "uniform"),
    "lecun_normal": _variance_scaling(1.0, "fan_in", "normal"),
    "orthogonal": nn.init.orthogonal_,
    "random_normal": lambda t: nn.init.normal_(t, 0.0, 0.05),
    "random_uniform": lambda t: nn.init.uniform_(t, -0.05, 0.05),
    "truncated_normal": lambda t: _truncated_normal(t, 0.05),
    "zeros": nn.init.zeros_,
    "ones": nn.init.ones_,
}


def initialize(tensor: torch.Tensor, name: str) -> None:
    """Fill `tensor` in place with Keras's initializer `name` (e.g. glorot_uniform, he_normal, zeros)."""
    with torch.no_grad():
        INITIALIZERS[name](tensor)


def keras_init(module: nn.Module) -> None:
    """Keras's defaults for every convolution and dense layer in `module`: Glorot-uniform weights, zero biases."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv1d | nn.Conv2d | nn.Linear):
            initialize(layer.weight, "glorot_uniform")
            if layer.bias is not None:
                initialize(layer.bias, "zeros")
