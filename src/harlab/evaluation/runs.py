"""One seeded run, trained and scored: data, fold, configuration and repeat → the trained model, its
standardizer and its result row. Experiments (in this process or as Ray tasks), `harlab train` and bundle saving
all train their runs here, through the one training core (harlab.training.run)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from harlab.data.splits import OWN_SPLIT, Fold
from harlab.data.transforms import Standardizer
from harlab.data.windowset import WindowSet
from harlab.deploy.bundle import starting_point
from harlab.errors import HarlabError
from harlab.evaluation.metrics import score
from harlab.models.registry import count_parameters, create_model
from harlab.training.callbacks import Callback
from harlab.training.device import resolve_device
from harlab.training.loop import predict
from harlab.training.replicas import replicas_refusal
from harlab.training.run import FittedRun, PreparedData, build_model, fit_replica_runs, fit_run, prepare
from harlab.training.settings import RepeatConfig
from harlab.training.transfer import Start


@dataclass
class RunResult:
    """One finished run: its seed, test scores, per-epoch history, fit time and test-set inference speed."""

    repeat: int
    seed: int
    accuracy: float
    macro_f1: float
    per_class: dict[str, dict[str, float]]
    confusion: list[list[int]]
    history: dict[str, list[float]]
    best_epoch: int | None
    validation_subjects: list[int]
    fit_seconds: float
    parameters: int
    standardization: dict[str, list[float]] | None
    fold: str = "fixed"
    inference_windows_per_second: float | None = None
    device: str = "cpu"
    precision: str = "fp32"
    threads: int | None = None  # torch's CPU threads: a CPU run's numbers depend on them
    workers: int = 1  # runs trained at once beside it on this machine: its share of the machine is 1/workers
    replicas: int = 1  # runs trained with it as one batched computation; fit_seconds is its share of the batch
    balanced_accuracy: float | None = None  # the mean recall of the test classes (None in rows recorded before)
    init_weights_sha256: str | None = None  # fine-tuned: the sha256 of the weights it started from


@dataclass
class TrainedRun:
    """A run trained in this process: the model, the standardizer it expects its input through, the result."""

    model: nn.Module
    standardizer: Standardizer | None
    result: RunResult


class RunTrainer:
    """Trains single seeded runs of any configuration on one fold of a dataset (by default its own train/test
    split), preparing the tensors a configuration needs once (or once per run, where each run holds out its own
    validation subjects), on `device` (auto, cpu, cuda, cuda:N or mps; None: auto)."""

    def __init__(self, data: WindowSet, fold: Fold = OWN_SPLIT, device: torch.device | str | None = None):
        self.data, self.fold = data, fold
        self.device = resolve_device(device)
        self.train, self.test = fold.apply(data)
        if len(self.train) == 0 or len(self.test) == 0:
            raise HarlabError(f"{data.provenance.dataset}: empty train ({len(self.train)}) or test "
                              f"({len(self.test)}) split in fold {fold.name}")
        self._prepared: dict[tuple[bool, tuple[str, ...], str | None], tuple[PreparedData, torch.Tensor]] = {}
        self._refusals: dict[str, str | None] = {}
        self._starts: dict[str, Start] = {}

    @property
    def shape(self) -> tuple[int, int, int]:
        """(channels, timesteps, classes) of the models this data trains."""
        return self.data.X.shape[2], self.data.window, len(self.data.classes)

    def check(self, config: RepeatConfig) -> None:
        """Fail now, with one line, if `config`'s model cannot be built for these windows (or, fine-tuning, its
        bundle does not fit them)."""
        if (start := self.start(config)) is not None:
            start.check(config.model, config.hyperparameters)
            start.channel_order(self.data)
            start.head_rows(self.data.classes, config.new_head)
            return
        create_model(config.model, *self.shape, **config.hyperparameters)

    def start(self, config: RepeatConfig) -> Start | None:
        """The trained model `config` fine-tunes (loaded once), or None when it trains from random weights."""
        if config.init is None:
            return None
        if config.init not in self._starts:
            self._starts[config.init] = starting_point(config.init)
        return self._starts[config.init]

    def prepared(self, config: RepeatConfig, seed: int) -> tuple[PreparedData, torch.Tensor]:
        """The run's prepared training data and its test windows as tensors."""
        train_config, start = config.train_config(), self.start(config)
        if train_config.validation_split:
            prepared = prepare(self.train, train_config, seed, start=start)
            return prepared, prepared.tensor(self.test.X)
        # what the tensors and the augmenter depend on
        key = train_config.standardize, train_config.augment, train_config.init
        if key not in self._prepared:
            prepared = prepare(self.train, train_config, seed, start=start)
            self._prepared[key] = prepared, prepared.tensor(self.test.X)
        return self._prepared[key]

    def run(self, config: RepeatConfig, repeat: int, callbacks: Sequence[Callback] = ()) -> TrainedRun:
        """Train and score repeat `repeat` (1-based) of `config`; `callbacks` watch the fit."""
        seed = config.run_seed(repeat)
        prepared, X_test = self.prepared(config, seed)
        start = self.start(config)
        fitted = fit_run(prepared, config.model, config.hyperparameters, config.train_config(), seed, self.shape,
                         callbacks, self.device, start)
        trained = self._scored(fitted, repeat, seed, X_test)
        trained.result.init_weights_sha256 = start and start.weights_sha256
        return trained

    def replicas_refusal(self, config: RepeatConfig) -> str | None:
        """Why runs of `config` cannot train together as replicas here, or None when they can."""
        if config.init is not None:
            return "fine-tuned runs train one at a time"
        key = config.key()
        if key not in self._refusals:
            seed = config.run_seed(1)
            prepared, _ = self.prepared(config, seed)
            model = build_model(config.model, config.hyperparameters, seed, self.shape)
            self._refusals[key] = replicas_refusal(model, config.train_config(), prepared.X_fit)
        return self._refusals[key]

    def run_replicas(self, config: RepeatConfig, repeats: Sequence[int], callbacks: Sequence[Callback] = ()
                     ) -> list[TrainedRun]:
        """Train and score the repeats `repeats` of `config` together as replicas, each as `run` would (within
        float tolerance); its result records how many trained together (`replicas`)."""
        seeds = [config.run_seed(repeat) for repeat in repeats]
        prepared, X_test = self.prepared(config, seeds[0])  # no validation set: the same data for every seed
        fitted = fit_replica_runs(prepared, config.model, config.hyperparameters, config.train_config(), seeds,
                                  self.shape, callbacks, self.device)
        runs = [self._scored(f, repeat, seed, X_test) for f, repeat, seed in zip(fitted, repeats, seeds, strict=True)]
        for run in runs:
            run.result.replicas = len(repeats)
        return runs

    def _scored(self, fitted: FittedRun, repeat: int, seed: int, X_test: torch.Tensor) -> TrainedRun:
        start = time.perf_counter()
        predicted = predict(fitted.model, X_test)
        windows_per_second = len(X_test) / (time.perf_counter() - start)
        scores = score(self.test.y, predicted, self.data.classes)
        history, prepared = fitted.history, fitted.prepared
        result = RunResult(repeat, seed, scores.accuracy, scores.macro_f1, scores.per_class, scores.confusion,
                           history.as_dict(), history.best_epoch, prepared.validation_subjects,
                           history.fit_seconds, count_parameters(fitted.model),
                           prepared.standardizer.to_dict() if prepared.standardizer else None, self.fold.name,
                           windows_per_second, history.device, history.precision, torch.get_num_threads())
        result.balanced_accuracy = scores.balanced_accuracy
        return TrainedRun(fitted.model, prepared.standardizer, result)


def train_run(data: WindowSet, config: RepeatConfig, repeat: int, fold: Fold = OWN_SPLIT,
              callbacks: Sequence[Callback] = (), device: torch.device | str | None = None) -> TrainedRun:
    """Train and score one run: repeat `repeat` of `config` on `fold` of `data` (by default its own split), on
    `device` (None: auto)."""
    return RunTrainer(data, fold, device).run(config, repeat, callbacks)
