"""Every registered model, found through `list_models()` (no hand-kept list): its training defaults are valid,
it builds, counts its parameters, trains one epoch through the one training core, and exports to ONNX with the
same probabilities as PyTorch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch

import harlab
from harlab.models.contract import Contract
from harlab.models.registry import count_parameters
from harlab.training.settings import defaults_of

CHANNELS = tuple(f"{sensor}_{axis}" for sensor in ("body_acc", "body_gyro", "total_acc") for axis in "xyz")
WINDOW, N = 128, 48


def windows(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(N) % 3
    X = (rng.normal(size=(N, WINDOW, len(CHANNELS))) + y[:, None, None]).astype(np.float32)
    return X, y, np.arange(N) % 4 + 1  # four subjects, so models that validate can hold one out


def test_every_model_is_registered_by_importing_the_package() -> None:
    assert len(harlab.list_models()) >= 10 and "cnn" in harlab.list_models()


@pytest.mark.parametrize("name", harlab.list_models())
def test_every_registered_model_trains_and_exports(name: str, tmp_path: Path) -> None:
    defaults = defaults_of(name)
    assert defaults.epochs >= 1 and defaults.batch_size >= 1
    model = harlab.create_model(name, len(CHANNELS), WINDOW, 3)
    assert count_parameters(model) > 0
    Contract.of(model)  # its declared capabilities are readable

    X, y, subjects = windows()
    clf = harlab.HARClassifier(name, epochs=1, batch_size=16, random_state=0)
    clf.fit(X, y, subjects=subjects, channels=CHANNELS)
    assert len(clf.history_.loss) == 1 and np.isfinite(clf.history_.loss[0])
    assert count_parameters(clf.model_) == count_parameters(model)
    probabilities = clf.predict_proba(X)
    assert probabilities.shape == (N, 3) and np.allclose(probabilities.sum(1), 1, atol=1e-5)

    path = harlab.export_onnx(clf, tmp_path / f"{name}.onnx")  # checked against PyTorch inside, too
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    exported = session.run(None, {session.get_inputs()[0].name: X})[0]
    assert np.abs(exported - probabilities).max() < 1e-4


def test_a_model_declares_what_the_loop_may_ask_of_it() -> None:
    plain = harlab.create_model("cnn", 9, 32, 2)
    assert Contract.of(plain).members == 1 and Contract.of(plain).penalty() is None
    penalized = harlab.create_model("cnn", 9, 32, 2, kernel_l2=0.01)
    assert isinstance(Contract.of(penalized).penalty(), torch.Tensor)
    assert Contract.of(harlab.create_model("inceptiontime", 9, 64, 2, n_networks=3)).members == 3
    assert Contract.of(harlab.create_model("minirocket", 9, 64, 2)).self_fitting
    assert len(Contract.of(harlab.create_model("cnn", 9, 32, 2, kernel_max_norm=3)).constrained) == 2
