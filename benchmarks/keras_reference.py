"""Shared by the benchmarks that run the tutorials' Keras code (../shared/bench/keras_ref.py) on harlab's windows."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from harlab.data.windowset import WindowSet

DEFAULT_SCRIPT = Path(__file__).parents[2] / "shared/bench/keras_ref.py"
KERAS_MODEL = {"cnn": "cnn", "multihead_cnn": "multihead", "lstm": "lstm", "cnn_lstm": "cnn_lstm",
               "convlstm": "convlstm"}


def write_windows(train: WindowSet, test: WindowSet, path: Path) -> Path:
    """The windows in the npz layout keras_ref.py reads (labels 1-based, as in UCI HAR's files)."""
    np.savez(path, X_train=train.X, y_train=train.y + 1, X_test=test.X, y_test=test.y + 1)
    return path


def run_keras(python: str, script: Path, npz: Path, model: str, repeats: int, standardize: bool = False,
              hyperparameters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Train harlab model `model`'s Keras twin `repeats` times; one dict per run: acc (%), fit_s."""
    hyperparameters = hyperparameters or {}
    command = [python, str(script), KERAS_MODEL[model], str(repeats), "--npz", str(npz)]
    if standardize:
        command.append("--standardize")
    if model == "cnn":
        command += ["--filters", str(hyperparameters.get("filters", 64)),
                    "--kernel", str(hyperparameters.get("kernel_size", 3))]
    lines = subprocess.run(command, capture_output=True, text=True, check=True).stdout.splitlines()
    return [json.loads(line) for line in lines if '"repeat"' in line]
