"""ONNX export of a bundle: raw sensor windows in, class probabilities out, the standardization folded into
the graph, any batch size; checked with ONNX's checker and against PyTorch with ONNX Runtime."""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from harlab.deploy.bundle import Bundle
from harlab.errors import HarlabError
from harlab.files import atomic_write_bytes

PARITY_TOLERANCE = 1e-4
ONNX_METADATA = "harlab"  # the model property holding what prediction needs (channels, classes, window, rate)


class RawWindowClassifier(nn.Module):
    """The bundle's model behind its standardization: raw windows [batch, time, channels] — or, with
    `flat_input`, [batch, time·channels] flattened time-major as the WISDM tutorial feeds its iOS model — to
    class probabilities [batch, classes]."""

    def __init__(self, bundle: Bundle, flat_input: bool = False):
        super().__init__()
        self.model, self.flat_input = bundle.model, flat_input
        self.window, self.n_channels = bundle.window, len(bundle.channels)
        stats = bundle.standardizer
        mean = np.zeros(self.n_channels) if stats is None else stats.mean
        std = np.ones(self.n_channels) if stats is None else stats.std
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("scale", torch.tensor(1 / std, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.flat_input:
            x = x.reshape(-1, self.window, self.n_channels)
        x = ((x - self.mean) * self.scale).transpose(1, 2)
        return torch.softmax(self.model(x), dim=-1)


def export_onnx(bundle: Bundle, path: Path, flat_input: bool = False) -> Path:
    """Write the ONNX model for `bundle` atomically, after ONNX's checker and a parity check on random
    windows (ONNX Runtime against PyTorch, within 1e-4); return its path."""
    import onnx

    wrapper = RawWindowClassifier(bundle, flat_input).eval()
    shape = (bundle.window * len(bundle.channels),) if flat_input else (bundle.window, len(bundle.channels))
    example = torch.randn(2, *shape)
    batch = torch.export.Dim("batch", min=1)
    exporter_log = logging.getLogger("torch.onnx")
    level = exporter_log.level
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exporter_log.setLevel(logging.ERROR)  # it reports every optional op set it skips (torchvision's)
        try:
            program = torch.onnx.export(wrapper, (example,), input_names=["windows"],
                                        output_names=["probabilities"],
                                        dynamic_shapes={"x": {0: batch}}, dynamo=True, verbose=False)
        finally:
            exporter_log.setLevel(level)
    model = program.model_proto
    model.doc_string = (f"harlab {bundle.manifest['model']}: windows {list(shape)} of "
                        f"{', '.join(bundle.channels)} at {bundle.manifest['sampling_rate']} Hz"
                        f"{' (flattened time-major)' if flat_input else ''} → probabilities of "
                        f"{', '.join(bundle.classes)}")
    manifest = bundle.manifest
    metadata = {"model": manifest["model"], "channels": bundle.channels, "classes": bundle.classes,
                "window": bundle.window, "step": manifest["step"], "sampling_rate": manifest["sampling_rate"],
                "preprocessing": manifest.get("preprocessing") or {"pipeline": "none"}, "flat_input": flat_input,
                "transitions": manifest.get("transitions")}
    onnx.helper.set_model_props(model, {ONNX_METADATA: json.dumps(metadata), "classes": ",".join(bundle.classes),
                                        "channels": ",".join(bundle.channels)})
    onnx.checker.check_model(model, full_check=True)
    data = model.SerializeToString()
    difference = parity(wrapper, data, torch.randn(5, *shape))
    if not np.isfinite(difference):
        raise HarlabError(f"{path}: the model gives NaN or infinite probabilities; not written — its weights are "
                          "not finite (a diverged training?); train it again")
    if difference > PARITY_TOLERANCE:
        raise HarlabError(f"{path}: ONNX Runtime differs from PyTorch by {difference:.2g} (> {PARITY_TOLERANCE}); "
                          "not written")
    atomic_write_bytes(path, data)
    return path


def parity(wrapper: nn.Module, onnx_bytes: bytes, x: torch.Tensor) -> float:
    """Largest absolute difference between ONNX Runtime's and PyTorch's outputs on `x`."""
    import onnxruntime

    session = onnxruntime.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    ours = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    with torch.no_grad():
        theirs = wrapper(x).numpy()
    return float(np.abs(ours - theirs).max())
