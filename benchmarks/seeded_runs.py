"""The tutorial's protocol for the benchmarks: one configuration trained `repeats` times with seeds seed, seed + 1,
… into a resumable results folder (harlab.api.run_training, the format of `harlab train`), with a callback per
finished run — the runs an earlier invocation finished first, then each one trained now."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from harlab.api import Results, run_training
from harlab.data.windowset import WindowSet
from harlab.evaluation.runs import RunResult
from harlab.evaluation.statistics import Summary
from harlab.experiments.runner import ExperimentCallback, FinishedRun, Progress
from harlab.experiments.spec import ExperimentSpec
from harlab.experiments.store import ResultsStore
from harlab.training.settings import RepeatConfig


class _EachRun(ExperimentCallback):
    def __init__(self, out: Path, on_run: Callable[[RunResult], None]):
        self.out, self.on_run = out, on_run

    def on_experiment_start(self, progress: Progress) -> None:
        for row in ResultsStore(self.out).rows():  # finished by an earlier invocation
            self.on_run(RunResult(**{k: row[k] for k in RunResult.__dataclass_fields__ if k in row}))

    def on_run_end(self, run: FinishedRun) -> None:
        self.on_run(run.result)


def train_repeats(data: WindowSet, config: RepeatConfig, out: Path, name: str,
                  on_run: Callable[[RunResult], None] = lambda run: None, **options: Any) -> Results:
    """Train every run of `config` that the results folder `out` (experiment `name`) does not hold yet; `options`
    are run_training's (save=...)."""
    spec = ExperimentSpec(name=name, **config.model_dump())
    return run_training(spec, data, out, callbacks=[_EachRun(out, on_run)], **options)


def summary(results: Results) -> Summary:
    """Runs, mean and std (percent) of the one configuration's accuracy."""
    return results.analysis().configurations[0].summary


def summary_dict(results: Results) -> dict[str, float]:
    """{"runs", "mean", "std"}, as the results files of the old `harlab train` summarized them."""
    described = summary(results)
    return {"runs": described.runs, "mean": described.mean, "std": described.std}
