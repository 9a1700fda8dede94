"""Imbalanced classes: class weights (balanced or named) in the loss, a class-balanced sampler, balanced
accuracy in every result, and one-line refusals; configurations recorded before these settings keep their keys."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import synthetic_windows, train_cli_on_hapt_subjects
from typer.testing import CliRunner

from harlab.cli import app
from harlab.errors import HarlabError
from harlab.evaluation.metrics import score
from harlab.experiments.store import ResultsStore
from harlab.models.registry import create_model
from harlab.training.config import TrainConfig, describe
from harlab.training.loop import epoch_order, fit
from harlab.training.replicas import fit_replicas
from harlab.training.run import class_weights
from harlab.training.settings import RepeatConfig


def test_balanced_and_named_class_weights() -> None:
    windows = synthetic_windows([1, 2])
    windows = windows.select(np.r_[np.flatnonzero(windows.y == 0), np.flatnonzero(windows.y == 1)[:4]])
    counts = np.bincount(windows.y, minlength=len(windows.classes))
    balanced = class_weights(TrainConfig(epochs=1, batch_size=8, class_weight="balanced"), windows)
    present = counts > 0
    np.testing.assert_allclose(balanced.numpy()[present], len(windows.y) / (present.sum() * counts[present]))
    assert (balanced.numpy()[~present] == 1).all()
    first = windows.classes[0]
    named = class_weights(TrainConfig(epochs=1, batch_size=8, class_weight={first: 3.0}), windows)
    assert named.tolist() == [3.0] + [1.0] * (len(windows.classes) - 1)
    assert class_weights(TrainConfig(epochs=1, batch_size=8), windows) is None
    with pytest.raises(HarlabError, match=r"class_weight names jogging: not among the classes \("):
        class_weights(TrainConfig(epochs=1, batch_size=8, class_weight={"jogging": 2.0}), windows)


def test_the_balanced_sampler_draws_every_class_equally_and_shuffling_is_unchanged() -> None:
    y = torch.tensor([0] * 900 + [1] * 100)
    config = TrainConfig(epochs=1, batch_size=32, sampler="balanced")
    drawn = y[epoch_order(y, config, torch.Generator().manual_seed(3))]
    assert len(drawn) == 1000 and abs(float((drawn == 1).float().mean()) - 0.5) < 0.05
    again = epoch_order(y, config, torch.Generator().manual_seed(3))
    assert torch.equal(again, epoch_order(y, config, torch.Generator().manual_seed(3)))
    shuffle = TrainConfig(epochs=1, batch_size=32)
    assert torch.equal(epoch_order(y, shuffle, torch.Generator().manual_seed(3)),
                       torch.randperm(1000, generator=torch.Generator().manual_seed(3)))


def test_balanced_accuracy_is_the_mean_recall_of_the_classes_present() -> None:
    y_true = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    y_pred = np.array([0, 0, 0, 1, 1, 0, 2, 2])
    scores = score(y_true, y_pred, ("a", "b", "c", "absent"))
    assert scores.balanced_accuracy == pytest.approx((3 / 4 + 1 / 2 + 1) / 3)
    assert scores.accuracy == pytest.approx(6 / 8)


def test_weighted_replicas_equal_weighted_runs_alone() -> None:
    """The class-weighted loss of a run alone (torch's weighted mean) and of replicas (each replica's weighted
    mean of its own batch) are the same loss: the runs end alike, with the balanced sampler too."""
    generator = torch.Generator().manual_seed(0)
    y = torch.tensor([0] * 60 + [1] * 20 + [2] * 10)
    X = torch.randn(len(y), 9, 64, generator=generator) + y[:, None, None] * 0.3
    config = TrainConfig(epochs=2, batch_size=32, sampler="balanced")
    weights = torch.tensor([0.5, 1.5, 3.0])
    seeds = [5, 6]

    def build(seed: int) -> torch.nn.Module:
        torch.manual_seed(seed)
        return create_model("cnn", 9, 64, 3)

    alone = [build(seed) for seed in seeds]
    histories = [fit(m, X, y, config, s, class_weights=weights) for m, s in zip(alone, seeds, strict=True)]
    replicas = [build(seed) for seed in seeds]
    together = fit_replicas(replicas, X, y, config, seeds, class_weights=weights)
    for model, replica, history, replica_history in zip(alone, replicas, histories, together, strict=True):
        assert replica_history.loss == pytest.approx(history.loss, rel=1e-4)
        torch.testing.assert_close(replica.eval()(X), model.eval()(X), rtol=1e-3, atol=1e-4)
    unweighted = build(5)
    assert fit(unweighted, X, y, config, 5).loss != pytest.approx(histories[0].loss, rel=1e-3)


def test_configurations_without_the_new_settings_keep_their_keys() -> None:
    plain = RepeatConfig(model="cnn")
    dump = plain.model_dump(mode="json")
    assert "class_weight" not in dump and "sampler" not in dump
    weighted = RepeatConfig(model="cnn", class_weight="balanced", sampler="balanced")
    assert weighted.key() != plain.key()
    assert describe(weighted.train_config()).endswith("class weights balanced, balanced sampler")


def test_harlab_train_with_class_weights_and_the_balanced_sampler(real_data: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "train"
    result = train_cli_on_hapt_subjects(real_data, monkeypatch, out, "--repeats", "1", "--class-weight",
                                        "WALKING=2,LAYING=0.5", "--sampler", "balanced")
    assert result.exit_code == 0, result.output
    assert "(balanced " in result.output
    row, = ResultsStore(out).rows()
    assert row["config"]["class_weight"] == {"WALKING": 2.0, "LAYING": 0.5}
    assert row["config"]["sampler"] == "balanced" and 0 < row["balanced_accuracy"] <= 1
    bad = CliRunner().invoke(app, ["train", "--model", "cnn", "--dataset", "hapt", "--class-weight", "WALKING:2",
                              "--out", str(tmp_path / "bad")])
    assert isinstance(bad.exception, HarlabError)  # harlab's main() prints it as one line
    assert "--class-weight 'WALKING:2': give balanced or NAME=WEIGHT" in str(bad.exception)


def test_class_score_is_scikit_learns_balanced_accuracy_and_macro_f1() -> None:
    from sklearn.metrics import balanced_accuracy_score, f1_score

    from harlab.training.loop import class_score

    rng = np.random.default_rng(0)
    for _ in range(20):
        y = rng.choice([0, 1, 3], size=50, p=[0.7, 0.2, 0.1])  # class 2 absent, class 4 neither true nor predicted
        predicted = np.where(rng.random(50) < 0.6, y, rng.integers(0, 4, 50))
        truth, guess = torch.as_tensor(y), torch.as_tensor(predicted)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "y_pred contains classes not in y_true": as meant
            expected = balanced_accuracy_score(y, predicted)
        assert class_score("val_balanced_accuracy", truth, guess, 5) == pytest.approx(expected)
        assert class_score("val_macro_f1", truth, guess, 5) == pytest.approx(
            f1_score(y, predicted, labels=range(5), average="macro", zero_division=0))


def test_early_stopping_on_macro_f1(real_data: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "train"
    result = train_cli_on_hapt_subjects(real_data, monkeypatch, out, "--repeats", "1", "--epochs", "4",
                                        "--validation-split", "0.34", "--patience", "1", "--monitor", "val_macro_f1",
                                        subjects=(1, 3, 5, 6, 2))
    assert result.exit_code == 0, result.output
    row, = ResultsStore(out).rows()
    curve = row["history"]["val_macro_f1"]
    assert row["config"]["monitor"] == "val_macro_f1" and len(curve) == len(row["history"]["val_loss"])
    best = max(range(len(curve)), key=lambda i: (curve[i], i)) + 1  # ties: the later epoch, as for the loss
    assert row["best_epoch"] == best
    assert "monitor" not in RepeatConfig(model="cnn").model_dump(mode="json")
    assert describe(RepeatConfig(model="cnn", patience=2, validation_split=0.2, monitor="val_macro_f1")
                    .train_config()).endswith("early stopping on val_macro_f1 (patience 2, 20% of subjects held out)")
