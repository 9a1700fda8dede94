"""harlab: human activity recognition from raw wearable and smartphone sensor signals.

The public API (documented in harlab.api and harlab.estimator) is importable from here; it is loaded on first
use, so `import harlab` stays fast and the command line starts without loading PyTorch.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("harlab")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

if TYPE_CHECKING:
    from harlab.api import (
        Results,
        create_model,
        export_onnx,
        list_models,
        load_dataset,
        predict,
        run_experiment,
        train,
        tune,
    )
    from harlab.data.windowset import WindowSet
    from harlab.estimator import HARClassifier

_WHERE = {"load_dataset": "harlab.api", "list_models": "harlab.api", "create_model": "harlab.api",
          "train": "harlab.api", "run_experiment": "harlab.api", "Results": "harlab.api", "tune": "harlab.api",
          "export_onnx": "harlab.api", "predict": "harlab.api", "HARClassifier": "harlab.estimator",
          "WindowSet": "harlab.data.windowset"}
__all__ = ["HARClassifier", "Results", "WindowSet", "__version__", "create_model", "export_onnx", "list_models",
           "load_dataset", "predict", "run_experiment", "train", "tune"]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'harlab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
