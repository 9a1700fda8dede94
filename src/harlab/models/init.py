"""Keras-default initialization, so PyTorch models start where the tutorials' models start."""

from torch import nn


def keras_init(module: nn.Module) -> None:
    """Glorot-uniform weights and zero biases for every convolution and dense layer in `module`."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv1d | nn.Conv2d | nn.Linear):
            nn.init.xavier_uniform_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
