"""A Keras-like table of a model's layers: name, type, output shape, trainable parameters."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from harlab.models.registry import count_parameters

# Windows in the dummy batch; a leading dimension of k·PROBE_BATCH means k items per window (TimeDistributed).
PROBE_BATCH = 2


@dataclass(frozen=True)
class LayerRow:
    name: str
    kind: str
    output_shape: str
    parameters: int


def _layers(module: nn.Module, prefix: str = "") -> list[tuple[str, nn.Module]]:
    rows = []
    for name, child in module.named_children():
        path = f"{prefix}.{name}" if prefix else name
        if getattr(child, "summary_as_layer", False) or not list(child.children()):
            rows.append((path, child))
        else:
            rows.extend(_layers(child, path))
    return rows


def _shape(output: object) -> str:
    tensor = output[0] if isinstance(output, tuple) else output
    if not isinstance(tensor, torch.Tensor):
        return "?"
    lead = tensor.shape[0]
    batch = "None" if lead == PROBE_BATCH else f"None·{lead // PROBE_BATCH}"
    return "(" + ", ".join([batch, *map(str, tensor.shape[1:])]) + ")"


def layer_table(model: nn.Module, n_channels: int, n_timesteps: int) -> list[LayerRow]:
    """One row per layer in call order, found by running a zero batch [2, channels, time] through `model`."""
    shapes: dict[str, str] = {}
    order: list[str] = []
    layers = _layers(model)
    hooks = []
    for name, layer in layers:
        def record(_: nn.Module, __: object, output: object, name: str = name) -> None:
            shapes.setdefault(name, _shape(output))
            if name not in order:
                order.append(name)
        hooks.append(layer.register_forward_hook(record))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(PROBE_BATCH, n_channels, n_timesteps))
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    by_name = dict(layers)
    return [LayerRow(name, type(by_name[name]).__name__, shapes[name], count_parameters(by_name[name]))
            for name in order]
