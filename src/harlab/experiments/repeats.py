"""The tutorial's protocol: train one configuration R times with different seeds, score each run on the
test split, and summarize as mean ± std. Results are written after every run, so an interrupted
invocation keeps its finished runs and can be finished later."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from harlab.data.transforms import Standardizer
from harlab.data.windowset import WindowSet
from harlab.environment import describe_environment, now_iso
from harlab.errors import DataError, HarlabError
from harlab.evaluation.metrics import score
from harlab.files import atomic_write_json
from harlab.models.registry import count_parameters, create_model, get_entry
from harlab.training.loop import TrainConfig, fit, predict, to_tensor


class RepeatConfig(BaseModel):
    """One configuration and how many seeded repeats of it to train."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = "cnn"
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    standardize: bool = False
    epochs: int | None = Field(default=None, ge=1)
    batch_size: int | None = Field(default=None, ge=1)
    learning_rate: float = Field(default=1e-3, gt=0)
    repeats: int = Field(default=10, ge=1)
    seed: int = Field(default=0, ge=0)

    def train_config(self) -> TrainConfig:
        entry = get_entry(self.model)
        return TrainConfig(self.epochs or entry.epochs, self.batch_size or entry.batch_size, self.learning_rate)

    def run_seed(self, repeat: int) -> int:
        """Seed of repeat `repeat` (1-based): the base seed plus the repeat index."""
        return self.seed + repeat - 1


@dataclass
class RunResult:
    """One finished run: its seed, test scores, per-epoch history and fit time."""

    repeat: int
    seed: int
    accuracy: float
    macro_f1: float
    per_class: dict[str, dict[str, float]]
    confusion: list[list[int]]
    history: dict[str, list[float]]
    fit_seconds: float
    parameters: int


def summarize(accuracies: list[float]) -> dict[str, float]:
    """Mean and (population, as the tutorial's np.std) standard deviation of accuracies in percent."""
    values = np.asarray(accuracies) * 100
    return {"runs": len(values), "mean": float(values.mean()), "std": float(values.std())}


def dataset_record(data: WindowSet, train: WindowSet, test: WindowSet) -> dict[str, Any]:
    return {**data.metadata(), "window": data.window, "n_train": len(train), "n_test": len(test),
            "train_subjects": sorted(set(train.subject.tolist())),
            "test_subjects_present": sorted(set(test.subject.tolist()))}


def load_previous(path: Path, config: RepeatConfig, dataset: dict[str, Any]) -> list[RunResult]:
    """Finished runs of an earlier invocation with the same configuration and data, to resume from."""
    if not path.exists():
        return []
    try:
        previous = json.loads(path.read_text())
        same = previous["config"] == config.model_dump() and previous["dataset"] == dataset
        runs = [RunResult(**run) for run in previous["runs"]]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DataError(path, f"not a harlab results file ({exc})", "choose another --out") from None
    if not same:
        raise HarlabError(f"{path} holds runs of a different configuration or dataset; choose another --out")
    return runs


def run_repeats(data: WindowSet, config: RepeatConfig, out: Path,
                on_run: Callable[[RunResult], None] = lambda run: None,
                on_epoch: Callable[[], None] = lambda: None) -> dict[str, Any]:
    """Train and score `config.repeats` seeded runs on data's own train/test split; write `out` after each."""
    train, test = data.split()
    if len(train) == 0 or len(test) == 0:
        raise HarlabError(f"{data.provenance.dataset}: empty train ({len(train)}) or test ({len(test)}) split")
    standardizer = Standardizer.fit(train) if config.standardize else None
    X_train, X_test = train.X, test.X
    if standardizer is not None:
        X_train, X_test = standardizer.apply(X_train), standardizer.apply(X_test)
    X_train_t, X_test_t = to_tensor(X_train), to_tensor(X_test)
    y_train_t = torch.from_numpy(train.y)
    train_config = config.train_config()
    dataset = dataset_record(data, train, test)
    record: dict[str, Any] = {
        "config": config.model_dump(), "training": asdict(train_config), "dataset": dataset,
        "standardization": standardizer.to_dict() if standardizer else None,
        "environment": describe_environment(), "started": now_iso(), "runs": []}
    runs = load_previous(out, config, dataset)
    done = {run.repeat for run in runs}

    def save() -> None:
        runs.sort(key=lambda r: r.repeat)
        record.update(runs=[asdict(r) for r in runs], summary=summarize([r.accuracy for r in runs]),
                      updated=now_iso())
        atomic_write_json(out, record)

    for run in runs:
        on_run(run)
        for _ in range(train_config.epochs):
            on_epoch()
    for repeat in range(1, config.repeats + 1):
        if repeat in done:
            continue
        seed = config.run_seed(repeat)
        torch.manual_seed(seed)
        model = create_model(config.model, data.X.shape[2], data.window, len(data.classes), **config.hyperparameters)
        history = fit(model, X_train_t, y_train_t, train_config, seed, on_epoch=lambda *_: on_epoch())
        scores = score(test.y, predict(model, X_test_t), data.classes)
        run = RunResult(repeat, seed, scores.accuracy, scores.macro_f1, scores.per_class, scores.confusion,
                        {"loss": history.loss, "accuracy": history.accuracy}, history.fit_seconds,
                        count_parameters(model))
        runs.append(run)
        save()
        on_run(run)
    save()
    return record
