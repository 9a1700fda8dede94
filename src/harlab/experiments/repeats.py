"""The tutorial's protocol: train one configuration R times with different seeds, score each run on the
test split, and summarize as mean ± std. Results are written after every run, so an interrupted
invocation keeps its finished runs and can be finished later."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_serializer

from harlab.console import say
from harlab.data.transforms import Standardizer
from harlab.data.windowset import WindowSet
from harlab.environment import describe_environment, now_iso
from harlab.errors import DataError, HarlabError
from harlab.evaluation.metrics import score
from harlab.evaluation.statistics import describe
from harlab.experiments.splits import OWN_SPLIT, Fold, SplitSpec, folds
from harlab.files import atomic_write_json, exclusive
from harlab.limits import RUNS
from harlab.models.registry import (
    Augmentation,
    Schedule,
    count_parameters,
    create_model,
    get_entry,
    validate_hyperparameters,
)
from harlab.training.augment import Augmenter
from harlab.training.loop import TrainConfig, fit, predict, to_tensor

# Settings added after results were first recorded: left out of dumps while unset, so older records still match.
LATER_SETTINGS = ("schedule", "weight_decay", "label_smoothing", "augment")
MAX_SEED = 2**32 - 1  # NumPy's and Optuna's seeds are 32-bit


class RunSettings(BaseModel):
    """What a run trains besides the model's hyperparameters; None means the model's tutorial default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = "cnn"
    standardize: bool = False
    epochs: int | None = Field(default=None, ge=1)
    batch_size: int | None = Field(default=None, ge=1)
    learning_rate: float = Field(default=1e-3, gt=0, allow_inf_nan=False)
    validation_split: float | None = Field(default=None, ge=0, lt=1)
    patience: int | None = Field(default=None, ge=0)
    schedule: Schedule | None = None
    weight_decay: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    label_smoothing: float | None = Field(default=None, ge=0, lt=1)
    augment: tuple[Augmentation, ...] | None = None
    split: SplitSpec = Field(default_factory=SplitSpec)

    @model_serializer(mode="wrap")
    def _omit_default_split(self, handler: Any) -> dict[str, Any]:
        """The dataset's own split and unset later settings are left out of dumps, so records made before they
        existed still match."""
        data = handler(self)
        if self.split.is_default():
            data.pop("split", None)
        for name in LATER_SETTINGS:
            if data.get(name) is None:
                data.pop(name, None)
        return data


class RepeatConfig(RunSettings):
    """One configuration and how many seeded repeats of it to train."""

    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    repeats: int = Field(default=10, ge=1)
    seed: int = Field(default=0, ge=0, le=MAX_SEED)

    @field_validator("repeats")
    @classmethod
    def _within_limit(cls, value: int) -> int:
        """At most the RUNS limit (harlab.limits), refused before anything is planned."""
        RUNS.check(value, f"repeats={value}", "train fewer repeats")
        return value

    @field_validator("hyperparameters")
    @classmethod
    def _complete(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        """All of the model's hyperparameters, validated, so a record says exactly what was trained."""
        return validate_hyperparameters(info.data["model"], value) if "model" in info.data else value

    def train_config(self) -> TrainConfig:
        """The model's own training settings with this configuration's overrides; a validation split of 0 turns
        early stopping off."""
        entry = get_entry(self.model)
        split = entry.validation_split if self.validation_split is None else self.validation_split
        patience = (entry.patience if self.patience is None else self.patience) if split > 0 else None
        return TrainConfig(self.epochs or entry.epochs, self.batch_size or entry.batch_size, self.learning_rate,
                           split, patience, _given(self.schedule, entry.schedule),
                           _given(self.weight_decay, entry.weight_decay),
                           _given(self.label_smoothing, entry.label_smoothing), _given(self.augment, entry.augment))

    def key(self) -> str:
        """A short stable id of what this configuration trains (the number of repeats aside)."""
        identity = {k: v for k, v in self.model_dump(mode="json").items() if k != "repeats"}
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]

    def run_seed(self, repeat: int) -> int:
        """Seed of repeat `repeat` (1-based): the base seed plus the repeat index."""
        return self.seed + repeat - 1


def _given(value: Any, default: Any) -> Any:
    return default if value is None else value


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


def summarize(accuracies: list[float]) -> dict[str, float]:
    """Mean and (population, as the tutorial's np.std) standard deviation of accuracies in percent."""
    summary = describe(accuracies)
    return {"runs": summary.runs, "mean": summary.mean, "std": summary.std}


def dataset_record(data: WindowSet, train: WindowSet, test: WindowSet) -> dict[str, Any]:
    return {**data.metadata(), "window": data.window, "n_train": len(train), "n_test": len(test),
            "train_subjects": sorted(set(train.subject.tolist())),
            "test_subjects_present": sorted(set(test.subject.tolist()))}


def load_previous(path: Path, config: RepeatConfig, dataset: dict[str, Any]) -> list[RunResult]:
    """Finished runs of an earlier invocation with the same configuration (repeats aside) and data; a run found
    twice (same fold and repeat, e.g. from merged files) counts once, the first kept, with a one-line note."""
    if not path.exists():
        return []
    try:
        previous = json.loads(path.read_bytes())
        same = (same_configuration(previous["config"], config.model_dump(mode="json"))
                and previous["dataset"] == dataset)
        runs = [RunResult(**run) for run in previous["runs"]]  # records without folds: the fixed split
    except (OSError, ValueError, KeyError, TypeError) as exc:  # ValueError: not JSON or not UTF-8
        raise DataError(path, f"not a harlab results file ({exc})", "choose another --out") from None
    if not same:
        raise HarlabError(f"{path} holds runs of a different configuration or dataset; choose another --out")
    unique = {(run.fold, run.repeat): run for run in reversed(runs)}
    if len(unique) < len(runs):
        say(f"{path}: {len(runs) - len(unique)} run(s) stored twice (same fold and repeat); each counts once, as "
            "first stored")
    return [run for run in runs if unique[run.fold, run.repeat] is run]


def same_configuration(a: dict[str, Any], b: dict[str, Any], ignore: tuple[str, ...] = ("repeats",)) -> bool:
    """Whether two dumped configurations (or specs) train the same runs: the keys in `ignore` — by default
    the number of repeats — may differ."""
    return {k: v for k, v in a.items() if k not in ignore} == {k: v for k, v in b.items() if k not in ignore}


def holdout_subjects(train: WindowSet, fraction: float, seed: int) -> list[int]:
    """A seeded `fraction` (at least one) of the training subjects, held out to validate on; none for 0."""
    subjects = np.unique(train.subject)
    if fraction == 0:
        return []
    if len(subjects) < 2:
        raise HarlabError(f"validation split {fraction}: the training split has {len(subjects)} subject(s), "
                          "at least 2 are needed; pass --validation-split 0")
    count = min(max(1, round(fraction * len(subjects))), len(subjects) - 1)
    return sorted(np.random.default_rng(seed).choice(subjects, count, replace=False).tolist())


@dataclass(frozen=True)
class PreparedData:
    """One run's tensors: training windows (validation subjects removed), validation and test windows."""

    X_fit: torch.Tensor
    y_fit: torch.Tensor
    validation: tuple[torch.Tensor, torch.Tensor] | None
    X_test: torch.Tensor
    validation_subjects: list[int]
    standardizer: Standardizer | None
    augment: Augmenter | None


def hold_out_validation(train: WindowSet, fraction: float, seed: int) -> tuple[WindowSet, WindowSet, list[int]]:
    """(windows to fit on, validation windows, validation subjects): `holdout_subjects` applied to `train`."""
    held_out = holdout_subjects(train, fraction, seed)
    is_validation = np.isin(train.subject, held_out)
    return train.select(~is_validation), train.select(is_validation), held_out


def prepare(train: WindowSet, test: WindowSet, config: RepeatConfig, seed: int) -> PreparedData:
    """Hold out validation subjects, fit the standardizer on what is left, and convert everything to tensors."""
    train_config = config.train_config()
    fit_part, validation, held_out = hold_out_validation(train, train_config.validation_split, seed)
    standardizer = Standardizer.fit(fit_part) if config.standardize else None
    augment = Augmenter.fit(train_config.augment, fit_part, standardizer)
    return PreparedData(to_tensor(fit_part.X, standardizer), torch.from_numpy(fit_part.y),
                        (to_tensor(validation.X, standardizer), torch.from_numpy(validation.y)) if held_out else None,
                        to_tensor(test.X, standardizer), held_out, standardizer, augment)


class RunTrainer:
    """Trains single seeded runs of any configuration on one fold of a dataset (by default its own train/test
    split), preparing the tensors a configuration needs once (or once per run, where each run holds out its own
    validation subjects)."""

    def __init__(self, data: WindowSet, fold: Fold = OWN_SPLIT):
        self.data, self.fold = data, fold
        self.train, self.test = fold.apply(data)
        if len(self.train) == 0 or len(self.test) == 0:
            raise HarlabError(f"{data.provenance.dataset}: empty train ({len(self.train)}) or test "
                              f"({len(self.test)}) split in fold {fold.name}")
        self._prepared: dict[tuple[bool, tuple[str, ...]], PreparedData] = {}

    def check(self, config: RepeatConfig) -> None:
        """Fail now, with one line, if `config`'s model cannot be built for these windows."""
        create_model(config.model, self.data.X.shape[2], self.data.window, len(self.data.classes),
                     **config.hyperparameters)

    def prepared(self, config: RepeatConfig, seed: int) -> PreparedData:
        train_config = config.train_config()
        if train_config.validation_split:
            return prepare(self.train, self.test, config, seed)
        key = config.standardize, train_config.augment  # what the prepared tensors and augmenter depend on
        if key not in self._prepared:
            self._prepared[key] = prepare(self.train, self.test, config, seed)
        return self._prepared[key]

    def run(self, config: RepeatConfig, repeat: int, on_epoch: Callable[[], None] = lambda: None,
            on_model: Callable[[RunResult, torch.nn.Module, PreparedData], None] | None = None) -> RunResult:
        """Train and score repeat `repeat` (1-based) of `config`; `on_epoch` is called once per planned epoch,
        `on_model` with the result, the trained model and its data (e.g. to save a bundle)."""
        train_config = config.train_config()
        seed = config.run_seed(repeat)
        prepared = self.prepared(config, seed)
        torch.manual_seed(seed)
        data = self.data
        model = create_model(config.model, data.X.shape[2], data.window, len(data.classes), **config.hyperparameters)
        history = fit(model, prepared.X_fit, prepared.y_fit, train_config, seed,
                      on_epoch=lambda *_: on_epoch(), validation=prepared.validation, augment=prepared.augment)
        for _ in range(train_config.epochs - len(history.loss)):  # epochs early stopping skipped
            on_epoch()
        start = time.perf_counter()
        predicted = predict(model, prepared.X_test)
        windows_per_second = len(prepared.X_test) / (time.perf_counter() - start)
        scores = score(self.test.y, predicted, data.classes)
        result = RunResult(repeat, seed, scores.accuracy, scores.macro_f1, scores.per_class, scores.confusion,
                           history.as_dict(), history.best_epoch, prepared.validation_subjects,
                           history.fit_seconds, count_parameters(model),
                           prepared.standardizer.to_dict() if prepared.standardizer else None, self.fold.name,
                           windows_per_second)
        if on_model is not None:
            on_model(result, model, prepared)
        return result


def split_record(data: WindowSet, split: SplitSpec) -> dict[str, Any]:
    """What a results record says about the data: for the dataset's own split, the train/test subjects and
    counts; for a cross-validation, every subject and each fold's test subjects."""
    if split.is_default():
        return dataset_record(data, *data.split())
    return {**data.metadata(), "window": data.window, "n_windows": len(data),
            "subjects": sorted(int(s) for s in np.unique(data.subject)),
            "folds": {f.name: list(f.test_subjects or ()) for f in folds(data, split)}}


def run_repeats(data: WindowSet, config: RepeatConfig, out: Path,
                on_run: Callable[[RunResult], None] = lambda run: None,
                on_epoch: Callable[[], None] = lambda: None,
                on_model: Callable[[RunResult, torch.nn.Module, PreparedData], None] | None = None) -> dict[str, Any]:
    """Train and score `config.repeats` seeded runs on every fold of `config.split` (by default the data's own
    train/test split); write `out` after each run. `on_model` sees each newly trained model (see RunTrainer.run).
    `out` is locked (beside it, .NAME.lock) while this runs: a second process on it is refused in one line."""
    with exclusive(out, out.with_name(f".{out.name}.lock")):
        return _run_repeats(data, config, out, on_run, on_epoch, on_model)


def _run_repeats(data: WindowSet, config: RepeatConfig, out: Path, on_run: Callable[[RunResult], None],
                 on_epoch: Callable[[], None],
                 on_model: Callable[[RunResult, torch.nn.Module, PreparedData], None] | None) -> dict[str, Any]:
    fold_list = folds(data, config.split)
    RunTrainer(data, fold_list[0]).check(config)
    train_config = config.train_config()
    dataset = split_record(data, config.split)
    record: dict[str, Any] = {
        "config": config.model_dump(mode="json"), "training": asdict(train_config), "dataset": dataset,
        "environment": describe_environment(), "started": now_iso(), "runs": []}
    runs = load_previous(out, config, dataset)
    done = {(run.fold, run.repeat) for run in runs}
    order = {fold.name: i for i, fold in enumerate(fold_list)}

    def save() -> None:
        runs.sort(key=lambda r: (order.get(r.fold, len(order)), r.repeat))
        record.update(runs=[asdict(r) for r in runs], summary=summarize([r.accuracy for r in runs]),
                      updated=now_iso())
        if len(fold_list) > 1:
            record["folds"] = {name: summarize([r.accuracy for r in runs if r.fold == name]) for name in order
                               if any(r.fold == name for r in runs)}
        atomic_write_json(out, record)

    for run in runs:
        on_run(run)
        for _ in range(train_config.epochs):
            on_epoch()
    for fold in fold_list:
        missing = [repeat for repeat in range(1, config.repeats + 1) if (fold.name, repeat) not in done]
        if not missing:
            continue
        trainer = RunTrainer(data, fold)  # one fold's tensors in memory at a time
        for repeat in missing:
            run = trainer.run(config, repeat, on_epoch, on_model)
            runs.append(run)
            save()
            on_run(run)
    save()
    return record
