"""What a model costs to train: floating-point operations per window, counted by torch's FLOP counter."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from harlab.models.lstm import KerasLSTM


def training_flops(model: nn.Module, n_channels: int, n_timesteps: int, n_classes: int) -> int:
    """FLOPs of one training step per window (forward and backward passes; matrix products and convolutions,
    as torch.utils.flop_counter counts them). LSTM layers, which the counter does not see, are added by
    formula: 2·(inputs + units)·4·units per step and direction forward, twice that backward."""
    shapes: dict[KerasLSTM, torch.Size] = {}

    def record(module: KerasLSTM, args: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        shapes[module] = args[0].shape

    hooks = [m.register_forward_hook(record) for m in model.modules() if isinstance(m, KerasLSTM)]
    batch = 2
    x = torch.randn(batch, n_channels, n_timesteps)
    was_training = model.training
    model.train()
    try:
        with FlopCounterMode(display=False) as counter:
            logits = model(x)  # an ensemble's members stacked [members, batch, classes] while training
            targets = (torch.arange(batch) % n_classes).repeat(logits.numel() // (batch * n_classes))
            F.cross_entropy(logits.reshape(-1, n_classes), targets).backward()
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    recurrent = sum(3 * _lstm_forward_flops(module, shape) for module, shape in shapes.items())
    return (counter.get_total_flops() + recurrent) // batch


def _lstm_forward_flops(module: KerasLSTM, shape: torch.Size) -> int:
    lstm = module.lstm
    directions = 2 if lstm.bidirectional else 1
    batch, steps, inputs = shape
    total = 0
    for layer in range(lstm.num_layers):
        width = inputs if layer == 0 else lstm.hidden_size * directions
        total += directions * 2 * (width + lstm.hidden_size) * 4 * lstm.hidden_size
    return batch * steps * total
