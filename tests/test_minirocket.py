"""MiniRocket: aeon fits it, harlab's torch module reproduces aeon's transform, trains through the same runner as
the deep models, and ships (bundle, ONNX) like them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch
from aeon.classification.convolution_based import MiniRocketClassifier
from aeon.transformations.collection.convolution_based import MiniRocket as AeonMiniRocket

from harlab.api import run_training
from harlab.data.datasets import load_dataset
from harlab.deploy.bundle import load_bundle, save_bundle
from harlab.deploy.onnx_export import export_onnx
from harlab.experiments.spec import ExperimentSpec
from harlab.models.minirocket import dilation_plan
from harlab.models.registry import count_parameters, create_model
from harlab.training.loop import to_tensor
from harlab.training.settings import RepeatConfig

FEATURES = 1008  # 84 kernels × 12: small enough to fit in seconds


@pytest.fixture(scope="module")
def windows(real_data: Path):
    """A few hundred real training and test windows of the hapt dataset."""
    data = load_dataset("hapt", real_data, quiet=True)
    train, test = data.split()
    pick = np.random.default_rng(0)
    return (data, train.select(np.sort(pick.choice(len(train), 900, replace=False))),
            test.select(np.sort(pick.choice(len(test), 300, replace=False))))


@pytest.fixture(scope="module")
def fitted(windows):
    _, train, _ = windows
    model = create_model("minirocket", 9, 128, 6, features=FEATURES)
    model.fit_windows(to_tensor(train.X), torch.from_numpy(train.y), seed=7)
    return model


def test_dilation_plan_is_aeons() -> None:
    X = np.random.default_rng(0).normal(size=(20, 3, 128)).astype(np.float32)
    parameters = AeonMiniRocket(n_kernels=10_000, random_state=0).fit(X).parameters
    dilations, per_dilation = dilation_plan(128, 10_000, 32)
    assert dilations == parameters[2].tolist() and per_dilation == parameters[3].tolist()
    assert sum(per_dilation) * 84 == 9996


def test_features_match_aeons_transform_on_real_windows(windows, fitted) -> None:
    _, train, test = windows
    aeon = AeonMiniRocket(n_kernels=FEATURES, random_state=7).fit(to_tensor(train.X).numpy())
    expected = aeon.transform(to_tensor(test.X).numpy())
    with torch.no_grad():
        ours = fitted.transform(to_tensor(test.X)).numpy()
    assert ours.shape == expected.shape == (300, FEATURES)
    # A convolution value equal to its bias up to float rounding may fall either side: allow a handful.
    assert (np.abs(ours - expected) > 1e-6).mean() < 1e-3
    assert np.abs(ours - expected).mean() < 1e-5


def test_classifier_agrees_with_aeons_minirocket_classifier(windows, fitted) -> None:
    _, train, test = windows
    aeon = MiniRocketClassifier(n_kernels=FEATURES, random_state=7).fit(to_tensor(train.X).numpy(), train.y)
    theirs = aeon.predict(to_tensor(test.X).numpy())
    with torch.no_grad():
        ours = fitted(to_tensor(test.X)).argmax(1).numpy()
    assert (ours == theirs).mean() >= 0.99
    assert (ours == test.y).mean() > 0.85
    assert count_parameters(fitted) == FEATURES * 6 + 6  # the ridge classifier; the transform is fixed


def test_probabilities_say_how_often_a_window_is_right(windows, fitted) -> None:
    """The ridge's scores, tempered on its leave-one-out scores, give a confidence close to the accuracy."""
    _, _, test = windows
    with torch.no_grad():
        probabilities = torch.softmax(fitted(to_tensor(test.X)), dim=-1).numpy()
    confidence, accuracy = probabilities.max(1).mean(), (probabilities.argmax(1) == test.y).mean()
    assert abs(confidence - accuracy) < 0.05


def test_identical_copies_give_the_plain_fit(windows, fitted) -> None:
    """The ridge penalty scales with the versions of each window, so duplicates change nothing."""
    _, train, test = windows
    X = to_tensor(train.X)
    model = create_model("minirocket", 9, 128, 6, features=FEATURES)
    model.fit_windows(X, torch.from_numpy(train.y), seed=7, copies=[X.clone(), X.clone()])
    with torch.no_grad():
        plain, copied = fitted(to_tensor(test.X)), model(to_tensor(test.X))
    np.testing.assert_allclose(copied.numpy(), plain.numpy(), atol=1e-3 * float(plain.abs().max()))


def test_rotated_copies_through_the_runner(windows, tmp_path: Path) -> None:
    data, _, _ = windows
    small = data.select(np.flatnonzero(np.isin(data.subject, [1, 3, 5, 2, 4])))
    config = RepeatConfig(model="minirocket", hyperparameters={"features": FEATURES}, standardize=False,
                          epochs=3, augment=["rotation"], repeats=1)
    rows = run_training(ExperimentSpec(name="test", **config.model_dump()), small, tmp_path / "r").store.rows()
    assert rows[0]["config"]["augment"] == ["rotation"] and rows[0]["accuracy"] > 0.75


def test_trains_by_name_through_the_runner(windows, tmp_path: Path) -> None:
    data, _, _ = windows
    small = data.select(np.flatnonzero(np.isin(data.subject, [1, 3, 5, 2, 4])))  # 3 train and 2 test subjects
    config = RepeatConfig(model="minirocket", hyperparameters={"features": FEATURES}, standardize=True, repeats=2)
    first, second = run_training(ExperimentSpec(name="test", **config.model_dump()), small,
                                 tmp_path / "r").store.rows()
    assert first["accuracy"] > 0.75 and first["accuracy"] != second["accuracy"]  # seeds pick other kernels
    assert len(first["history"]["loss"]) == 1 and first["parameters"] == FEATURES * 6 + 6
    assert first["inference_windows_per_second"] > 0


def test_bundle_and_onnx_export_keep_the_fitted_transform(windows, fitted, tmp_path: Path) -> None:
    data, _, test = windows
    directory = save_bundle(tmp_path / "b", fitted, model_name="minirocket", hyperparameters={"features": FEATURES},
                            channels=list(data.channels), window=data.window, step=data.step,
                            sampling_rate=data.sampling_rate, classes=list(data.classes),
                            standardizer=None, metrics={"accuracy": 0.9}, provenance={}, training={})
    loaded = load_bundle(directory)
    X = test.X[:37]
    with torch.no_grad():
        expected = torch.softmax(fitted(to_tensor(X)), dim=-1).numpy()
        reloaded = torch.softmax(loaded.model(loaded.prepare(X)), dim=-1).numpy()
    np.testing.assert_allclose(reloaded, expected, atol=1e-6)
    session = onnxruntime.InferenceSession(str(export_onnx(loaded, tmp_path / "m.onnx")),
                                           providers=["CPUExecutionProvider"])
    for batch in (1, 37):
        np.testing.assert_allclose(session.run(None, {"windows": X[:batch]})[0], expected[:batch], atol=1e-4)

