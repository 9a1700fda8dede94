"""The tutorial CNN, Keras-equivalent training, seeding, and the repeated protocol on real recordings."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from harlab.api import Results, run_training
from harlab.data.datasets import load_dataset
from harlab.experiments.runner import ExperimentCallback, FinishedRun
from harlab.experiments.spec import ExperimentSpec
from harlab.models.registry import create_model
from harlab.training.loop import TrainConfig, fit, predict, to_tensor
from harlab.training.settings import RepeatConfig


def test_keras_initialization_and_flatten_order() -> None:
    torch.manual_seed(0)
    model = create_model("cnn", 9, 128, 6)
    dense = model.classifier[0]
    limit = math.sqrt(6 / (3968 + 100))  # Glorot uniform
    assert dense.weight.abs().max() <= limit and dense.weight.abs().max() > 0.9 * limit
    biases = [m.bias.detach() for m in model.modules() if getattr(m, "bias", None) is not None]
    assert biases and all(float(b.abs().max()) == 0 for b in biases)
    # Keras flattens [time, channels]: feature (t, c) lands at t * filters + c
    features = torch.arange(64 * 62, dtype=torch.float32).reshape(1, 64, 62)  # [batch, channels, time]
    flat = features.transpose(1, 2).flatten(1)
    assert flat[0, 1].item() == features[0, 1, 0].item()


def tiny_problem(n: int = 96) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    X = torch.randn(n, 9, 32, generator=g)
    y = (X[:, 0].mean(1) > 0).long()
    return X, y


def test_same_seed_same_numbers_different_seed_different_numbers() -> None:
    X, y = tiny_problem()
    cfg = TrainConfig(epochs=2, batch_size=16)
    runs = []
    for seed in (3, 3, 4):
        torch.manual_seed(seed)
        model = create_model("cnn", 9, 32, 2)
        history = fit(model, X, y, cfg, seed)
        runs.append((history.loss, [p.detach().clone() for p in model.parameters()]))
    assert runs[0][0] == runs[1][0]
    assert all(torch.equal(a, b) for a, b in zip(runs[0][1], runs[1][1], strict=True))
    assert runs[0][0] != runs[2][0]


def test_to_tensor_layout() -> None:
    X = np.arange(2 * 5 * 3, dtype=np.float32).reshape(2, 5, 3)  # [samples, time, channels]
    t = to_tensor(X)
    assert t.shape == (2, 3, 5) and t.is_contiguous() and t[1, 2, 4] == X[1, 4, 2]


def test_end_to_end_on_real_recordings(real_data: Path, tmp_path: Path) -> None:
    """A subset of the real windows, two short runs: far above chance, results folder complete, resumable."""
    data = load_dataset("hapt", real_data, quiet=True)
    keep = np.isin(data.subject, [1, 3, 5, 6, 7, 8, 2, 4])  # 6 train subjects, 2 test subjects
    subset = data.select(keep)
    config = RepeatConfig(model="cnn", repeats=2, epochs=3, seed=11, standardize=True)
    out = tmp_path / "results"
    lines = []

    class Lines(ExperimentCallback):
        def on_run_end(self, run: FinishedRun) -> None:
            lines.append(run.result.repeat)

    spec = ExperimentSpec(name="test", **config.model_dump())
    record = run_training(spec, subset, out, callbacks=[Lines()])
    assert lines == [1, 2]
    saved = Results(out)
    summary = saved.analysis().configurations[0].summary
    assert summary.runs == 2 and summary.mean > 70  # chance is ~17 %
    runs = saved.store.rows()
    run = runs[0]
    assert run["seed"] == 11 and runs[1]["seed"] == 12
    assert len(run["history"]["loss"]) == 3 and run["history"]["loss"][-1] < run["history"]["loss"][0]
    assert np.asarray(run["confusion"]).sum() == int(np.isin(subset.subject, [2, 4]).sum())
    assert set(run["per_class"]) == set(subset.classes) and 0 < run["macro_f1"] <= 1
    assert saved.store.dataset()["provenance"]["sha256"] == data.provenance.sha256
    assert saved.store.environment()["packages"]["torch"] and run["standardization"]["mean"]
    assert record.analysis().configurations[0].summary == summary
    # an identical invocation finds both runs finished and trains nothing
    again = run_training(spec, subset, out, callbacks=[Lines()])
    assert again.store.rows() == runs
    # and the same seed reproduces the same accuracy from scratch
    fresh = run_training(spec.model_copy(update={"repeats": 1}), subset, tmp_path / "fresh")
    assert fresh.store.rows()[0]["accuracy"] == runs[0]["accuracy"]


def test_predict_shape() -> None:
    X, _ = tiny_problem(10)
    assert predict(create_model("cnn", 9, 32, 2), X).shape == (10,)
