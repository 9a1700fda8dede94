"""Replicas: the repeats of one configuration trained as one batched computation. Each replica is the run
trained alone with its seed, within float tolerance (its own initialisation, shuffling, augmentation and
dropout), whatever other replicas it trains beside; what cannot be batched is refused in one line, and
experiments fall back to one run at a time for it."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import train_cli_on_hapt_subjects
from typer.testing import CliRunner

from harlab.cli import app
from harlab.data.datasets import load_dataset
from harlab.errors import HarlabError
from harlab.experiments.backends import LocalBackend, choose_backend, replica_groups
from harlab.experiments.runner import run_experiment
from harlab.experiments.spec import ExperimentSpec
from harlab.experiments.store import ResultsStore
from harlab.models.registry import create_model
from harlab.training.augment import Augmenter
from harlab.training.config import TrainConfig
from harlab.training.loop import fit
from harlab.training.replicas import fit_replicas, replicas_refusal

SHAPE = (9, 64, 6)


def _problem(windows: int = 96) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    y = torch.arange(windows) % SHAPE[2]
    X = torch.randn(windows, *SHAPE[:2], generator=generator) + y[:, None, None] * 0.3
    return X, y


def _build(name: str, seed: int, **hyperparameters: object) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_model(name, *SHAPE, **hyperparameters)


def _assert_same_run(alone: torch.nn.Module, replica: torch.nn.Module, X: torch.Tensor, atol: float = 1e-4) -> None:
    for (name, a), b in zip(alone.state_dict().items(), replica.state_dict().values(), strict=True):
        torch.testing.assert_close(b, a, rtol=1e-3, atol=atol, msg=name)
    alone.eval(), replica.eval()
    torch.testing.assert_close(replica(X), alone(X), rtol=1e-3, atol=atol)


@pytest.mark.parametrize(("name", "hyperparameters", "settings", "atol"), [
    ("cnn", {"kernel_l2": 1e-3, "kernel_max_norm": 0.5}, {"schedule": "cosine"}, 1e-4),
    ("convlstm", {}, {}, 1e-4),
    # Batch norm makes some gradients vanish; Adam's first steps move a weight by ±lr (1e-3) whatever the size of
    # its gradient, so where float rounding flips a vanishing gradient's sign a few weights differ by ~2·lr.
    ("resnet1d", {}, {"weight_decay": 1e-2}, 1e-2),
])
def test_each_replica_ends_where_its_run_trained_alone_ends(name: str, hyperparameters: dict[str, object],
                                                           settings: dict[str, object], atol: float) -> None:
    X, y = _problem()
    config = TrainConfig(epochs=2, batch_size=40, **settings)  # 96 windows: a short last batch of 16
    seeds = [11, 12, 13]
    alone = [_build(name, seed, **hyperparameters) for seed in seeds]
    histories = [fit(model, X, y, config, seed) for model, seed in zip(alone, seeds, strict=True)]
    replicas = [_build(name, seed, **hyperparameters) for seed in seeds]
    together = fit_replicas(replicas, X, y, config, seeds)
    for model, replica, history, replica_history in zip(alone, replicas, histories, together, strict=True):
        _assert_same_run(model, replica, X, atol)
        assert replica_history.loss == pytest.approx(history.loss, rel=1e-3)
        assert replica_history.accuracy == pytest.approx(history.accuracy, abs=1.5 / len(X))
    assert not torch.allclose(replicas[0](X), replicas[1](X))  # different seeds, different runs


def test_a_replica_does_not_depend_on_the_replicas_beside_it() -> None:
    """Seed 7 trained beside seeds 1 and 2, and beside seed 9 alone, with augmentation drawing from each
    replica's own generator: the same run."""
    X, y = _problem()
    kinds = ("jitter", "scaling", "time_warp", "rotation")
    channels = [f"{sensor}_{axis}" for sensor in ("acc", "gyro", "total") for axis in "xyz"]
    augment = Augmenter(kinds, channels, np.zeros(SHAPE[0]), np.ones(SHAPE[0]), standardized=True)
    config = TrainConfig(epochs=2, batch_size=32, augment=kinds)
    first = [_build("cnn", seed) for seed in (1, 7, 2)]
    fit_replicas(first, X, y, config, [1, 7, 2], augment=augment)
    second = [_build("cnn", seed) for seed in (7, 9)]
    fit_replicas(second, X, y, config, [7, 9], augment=augment)
    _assert_same_run(first[1], second[0], X)
    alone = _build("cnn", 7)
    fit(alone, X, y, config, 7, augment=augment)
    _assert_same_run(alone, second[0], X)


@pytest.mark.parametrize(("name", "settings", "reason"), [
    ("lstm", {}, "vmap cannot batch LSTMClassifier: Batching rule not implemented for aten::lstm"),
    ("cnn", {"validation_split": 0.2}, "each run holds out its own validation subjects"),
    ("cnn", {"schedule": "plateau"}, "a plateau schedule follows each run's own loss"),
    ("minirocket", {}, "MiniRocket fits itself in closed form"),
])
def test_what_cannot_be_batched_is_refused_with_its_reason(name: str, settings: dict[str, object],
                                                          reason: str) -> None:
    X, y = _problem()
    config = TrainConfig(epochs=1, batch_size=32, **settings)
    assert reason in (replicas_refusal(_build(name, 1), config, X) or "")
    with pytest.raises(ValueError, match="these runs cannot train as replicas"):
        fit_replicas([_build(name, 1), _build(name, 2)], X, y, config, [1, 2])


def test_replica_groups_are_consecutive_repeats_of_one_configuration_and_fold() -> None:
    spec = ExperimentSpec(name="groups", model="cnn", grid={"filters": [8, 16]}, repeats=5)
    first, second = spec.configurations()
    fold = dataclasses.make_dataclass("Fold", ["name"])("fixed")
    jobs = [(first, fold, r) for r in (1, 2, 3, 4, 5)] + [(second, fold, r) for r in (2, 3)]
    groups = [[(c.label, r) for c, _, r in group] for group in replica_groups(jobs, 2)]
    assert groups == [[("filters=8", 1), ("filters=8", 2)], [("filters=8", 3), ("filters=8", 4)],
                      [("filters=8", 5)], [("filters=16", 2), ("filters=16", 3)]]


def test_replicas_are_chosen_on_a_gpu_and_asked_for_on_a_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    on_gpu = choose_backend("cuda", None, jobs=10, in_process=False)
    assert isinstance(on_gpu, LocalBackend) and on_gpu.replicas >= 10
    assert choose_backend("cuda", None, jobs=10, in_process=False, replicas=1).replicas == 1
    on_cpu = choose_backend("cpu", None, jobs=10, in_process=False, replicas=4)
    assert isinstance(on_cpu, LocalBackend) and on_cpu.replicas == 4
    assert LocalBackend("cpu").replicas == 1
    with pytest.raises(HarlabError, match=r"workers=2: .* not beside replicas=4; leave workers unset"):
        choose_backend("cpu", 2, jobs=10, in_process=False, replicas=4)


def test_an_experiment_trained_as_replicas_gives_the_runs_trained_alone(real_data: Path, tmp_path: Path,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    """On real windows of 4 subjects: 3 repeats of the CNN as replicas and one at a time give the same
    accuracies and curves, each row recording how many trained together; the LSTM's runs, which vmap cannot
    batch, train one at a time, said once."""
    data = load_dataset("hapt", real_data, quiet=True)
    subset = data.select(np.isin(data.subject, [1, 3, 5, 2]))
    spec = ExperimentSpec(name="replicas", model="cnn", repeats=3, epochs=2, seed=4)
    run_experiment(spec, subset, tmp_path / "together", backend=LocalBackend("cpu", replicas=3))
    run_experiment(spec, subset, tmp_path / "alone", backend=LocalBackend("cpu", replicas=1))
    together, alone = ({r["repeat"]: r for r in ResultsStore(tmp_path / name).rows()} for name in ("together", "alone"))
    assert sorted(together) == [1, 2, 3]
    windows = len(subset.select(np.isin(subset.subject, [2])))  # the fixed split's test subjects may vary
    for repeat in (1, 2, 3):
        assert (together[repeat]["replicas"], alone[repeat]["replicas"]) == (3, 1)
        assert together[repeat]["accuracy"] == pytest.approx(alone[repeat]["accuracy"], abs=100 * 2 / windows)
        assert together[repeat]["history"]["loss"] == pytest.approx(alone[repeat]["history"]["loss"], rel=1e-4)
    caplog.set_level(logging.INFO, logger="harlab.experiments.backends")
    lstm = ExperimentSpec(name="lstm-replicas", model="lstm", repeats=2, epochs=1, seed=4)
    run_experiment(lstm, subset, tmp_path / "lstm", backend=LocalBackend("cpu", replicas=2))
    assert [r["replicas"] for r in ResultsStore(tmp_path / "lstm").rows()] == [1, 1]
    told = [r.getMessage() for r in caplog.records if "not as replicas" in r.getMessage()]
    assert len(told) == 1 and "vmap cannot batch LSTMClassifier" in told[0]



def test_harlab_train_replicas_records_them_and_a_saved_replica_trains_again_alone(
        real_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "train"
    result = train_cli_on_hapt_subjects(real_data, monkeypatch, out, "--repeats", "2", "--device", "cpu",
                                        "--replicas", "2")
    assert result.exit_code == 0, result.output
    assert [row["replicas"] for row in ResultsStore(out).rows()] == [2, 2]
    saved = CliRunner().invoke(app, ["experiment", "save", str(out), "--to", str(tmp_path / "bundle"), "--repeat", "2"])
    assert saved.exit_code == 0, saved.output
    assert "the same as recorded" in saved.output or "a replica matches within float tolerance" in saved.output
