"""Keras-semantics building blocks shared by the architectures: a Conv1D with every option Keras documents,
time-major flattening, and the penalty/constraint protocol the training loop honours.

A layer that adds a loss term defines `penalty()`; one whose weights are projected after each optimizer step
defines `constrain()` (the protocols of harlab.models.contract, which the training loop reads).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from harlab.models.init import initialize

BiasInitializerName = Literal["glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_uniform",
                              "lecun_normal", "random_normal", "random_uniform", "truncated_normal", "zeros", "ones"]
InitializerName = Literal[BiasInitializerName, "orthogonal"]  # orthogonal needs a matrix, as in Keras
ActivationName = Literal["relu", "relu6", "elu", "selu", "gelu", "sigmoid", "hard_sigmoid", "tanh", "softplus",
                         "softsign", "swish", "silu", "leaky_relu", "mish", "exponential", "linear"]

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": F.relu, "relu6": F.relu6, "elu": F.elu, "selu": F.selu, "gelu": F.gelu, "sigmoid": torch.sigmoid,
    "hard_sigmoid": F.hardsigmoid, "tanh": torch.tanh, "softplus": F.softplus, "softsign": F.softsign,
    "swish": F.silu, "silu": F.silu, "leaky_relu": lambda x: F.leaky_relu(x, 0.2),  # Keras 3's default slope
    "mish": F.mish, "exponential": torch.exp, "linear": lambda x: x,
}

KERAS_EPSILON = 1e-7


MaskSource = Callable[[torch.Tensor, float], torch.Tensor]
_mask_source: ContextVar[MaskSource | None] = ContextVar("mask_source", default=None)


@contextlib.contextmanager
def masks_from(source: MaskSource) -> Iterator[None]:
    """Within the block, every dropout layer takes its mask from `source(x, p)` (harlab.training.replicas)."""
    token = _mask_source.set(source)
    try:
        yield
    finally:
        _mask_source.reset(token)


def dropout_mask(x: torch.Tensor, p: float) -> torch.Tensor:
    """Dropout's scaled keep-mask for x (0 with probability p, else 1/(1-p)), from the source `masks_from` set,
    where one is, else from one uniform draw per element of torch's generator, in
    row-major order whatever x's memory layout."""
    if (source := _mask_source.get()) is not None:
        return source(x, p)
    return torch.rand(x.shape, dtype=x.dtype, device=x.device).ge_(p).mul_(1 / (1 - p))


class Dropout(nn.Dropout):
    """nn.Dropout with a cheaper mask: one uniform draw per element compared with p in place, the same
    distribution as torch's `bernoulli_` at about a third of its cost on a CPU (benchmarks/step_speed.py; the
    mask was a fifth of a CNN step). Identity outside training, so it exports as nothing."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        return x * dropout_mask(x, self.p)


class ConvOptions(BaseModel):
    """The options of Keras's Conv1D besides filters and kernel size, applied to every convolution of a model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    strides: int = Field(default=1, ge=1)
    padding: Literal["valid", "same", "causal"] = "valid"
    dilation_rate: int = Field(default=1, ge=1)
    activation: ActivationName = "relu"
    use_bias: bool = True
    kernel_initializer: InitializerName = "glorot_uniform"
    bias_initializer: BiasInitializerName = "zeros"
    kernel_l2: float = Field(default=0.0, ge=0, allow_inf_nan=False,
                             description="Keras l2(λ): adds λ·Σw² of the kernels to the loss.")
    kernel_max_norm: float | None = Field(default=None, gt=0, description="Keras MaxNorm per filter, after each step.")


class Conv1D(nn.Module):
    """Keras's Conv1D on [batch, channels, time]: `valid`, `same` (TensorFlow's split) or `causal` padding."""

    def __init__(self, in_channels: int, filters: int, kernel_size: int, options: ConvOptions | None = None):
        super().__init__()
        self.options = options = options or ConvOptions()
        self.kernel_size = kernel_size
        self.activation = ACTIVATIONS[options.activation]
        self.weight = nn.Parameter(torch.empty(filters, in_channels, kernel_size))
        self.bias = nn.Parameter(torch.empty(filters)) if options.use_bias else None
        initialize(self.weight, options.kernel_initializer)
        if self.bias is not None:
            initialize(self.bias, options.bias_initializer)

    def padding(self, length: int) -> tuple[int, int]:
        """Zeros added (before, after) the time axis of an input `length` steps long."""
        o = self.options
        span = (self.kernel_size - 1) * o.dilation_rate + 1
        if o.padding == "causal":
            return span - 1, 0
        if o.padding == "same":
            total = max((math.ceil(length / o.strides) - 1) * o.strides + span - length, 0)
            return total // 2, total - total // 2
        return 0, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        before, after = self.padding(x.shape[-1])
        if before or after:
            x = F.pad(x, (before, after))
        y = F.conv1d(x, self.weight, self.bias, stride=self.options.strides, dilation=self.options.dilation_rate)
        return self.activation(y)

    def penalty(self) -> torch.Tensor | None:
        """Keras's kernel_regularizer=l2(kernel_l2), or None without one."""
        if not self.options.kernel_l2:
            return None
        return self.options.kernel_l2 * self.weight.square().sum()

    @torch.no_grad()
    def constrain(self) -> None:
        """Keras's kernel_constraint=max_norm(kernel_max_norm) over each filter, when set."""
        if self.options.kernel_max_norm is None:
            return
        norms = self.weight.square().sum(dim=(1, 2), keepdim=True).sqrt()
        self.weight.mul_(norms.clamp(max=self.options.kernel_max_norm) / (KERAS_EPSILON + norms))

    def extra_repr(self) -> str:
        o = self.options
        return (f"{self.weight.shape[1]}, {self.weight.shape[0]}, kernel_size={self.kernel_size}, "
                f"strides={o.strides}, padding={o.padding}, dilation_rate={o.dilation_rate}, "
                f"activation={o.activation}")


class ConvBN(nn.Sequential):
    """Conv1D(filters, kernel, stride) with `same` padding and no bias → BatchNorm → ReLU (left out with
    `relu=False`): the unit of the residual and inception networks. Conv1D pads explicitly, an even kernel one
    step more after than before as TensorFlow does, where torch's own padding="same" would warn; ONNX sees a Pad."""

    def __init__(self, in_channels: int, filters: int, kernel_size: int, stride: int = 1, relu: bool = True):
        options = ConvOptions(strides=stride, padding="same", activation="linear", use_bias=False)
        super().__init__(Conv1D(in_channels, filters, kernel_size, options), nn.BatchNorm1d(filters),
                         *([nn.ReLU()] if relu else []))


class TimeMajorFlatten(nn.Module):
    """Keras's Flatten of [batch, time, channels], applied to [batch, channels, time]: dense weights map 1:1."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(1, 2).flatten(1)


class ShapeError(ValueError):
    """A model cannot be built for the given input shape (e.g. the window is shorter than the kernels need)."""


def output_shape(layers: nn.Module, n_channels: int, n_timesteps: int) -> tuple[int, ...]:
    """Shape of one window after `layers` (batch dimension dropped), found by passing a zero window through."""
    try:
        with torch.no_grad():
            return tuple(layers(torch.zeros(1, n_channels, n_timesteps)).shape[1:])
    except RuntimeError as exc:
        raise ShapeError(f"the window is too short for these layers ({str(exc).splitlines()[0]})") from None
