"""Core ML export of a bundle (the WISDM tutorial's route to an iPhone), through coremltools: one raw window in,
the predicted activity and its class probabilities out, the standardization included.

Conversion runs on Linux; running the package needs macOS or iOS. coremltools is an optional extra
(`pip install 'harlab[coreml]'`).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from harlab.deploy.bundle import Bundle
from harlab.deploy.onnx_export import RawWindowClassifier
from harlab.errors import HarlabError
from harlab.files import atomic_directory


def export_coreml(bundle: Bundle, path: Path, flat_input: bool = False) -> Path:
    """Write an .mlpackage (ML program) for one window [1, time, channels] (or [1, time·channels] flat)."""
    try:
        import coremltools as ct
    except ImportError:
        raise HarlabError("Core ML export needs coremltools: pip install 'harlab[coreml]'") from None
    wrapper = RawWindowClassifier(bundle, flat_input).eval()
    shape = (1, bundle.window * len(bundle.channels)) if flat_input else (1, bundle.window, len(bundle.channels))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            traced = torch.jit.trace(wrapper, torch.zeros(shape))
            model = ct.convert(traced, inputs=[ct.TensorType(name="window", shape=shape)],
                               classifier_config=ct.ClassifierConfig(bundle.classes), convert_to="mlprogram")
    except Exception as exc:  # coremltools raises many types; the user needs one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise HarlabError(f"coremltools {ct.__version__} cannot convert this model with torch {torch.__version__} "
                          f"({first}); use the ONNX export instead") from None
    layout = "time-major flattened " if flat_input else ""
    model.short_description = f"harlab {bundle.manifest['model']}: activity from one window of raw sensor data"
    model.input_description["window"] = (f"one {layout}window of {bundle.window} samples of "
                                         f"{', '.join(bundle.channels)} at {bundle.manifest['sampling_rate']} Hz")
    model.output_description["classLabel"] = "the most probable activity"
    model.output_description["classLabel_probs"] = "probability of each activity"
    model.user_defined_metadata.update({"classes": ",".join(bundle.classes), "channels": ",".join(bundle.channels),
                                        "sampling_rate": str(bundle.manifest["sampling_rate"]),
                                        "window": str(bundle.window)})
    with atomic_directory(path, "mlpackage") as tmp:
        package = tmp / path.name
        model.save(str(package))
        for item in package.iterdir():
            item.rename(tmp / item.name)
        package.rmdir()
    return path
