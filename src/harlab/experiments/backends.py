"""Where an experiment's runs train: in this process (`LocalBackend`), or elsewhere (harlab.integrations.ray's
`RayBackend`, as Ray tasks on the cores of this machine or of a cluster).

A backend only trains: it yields each (configuration, fold, repeat) with its result as the run finishes, and
the caller records it, so the results store always has one writer.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from harlab.data.splits import Fold
from harlab.data.windowset import WindowSet
from harlab.evaluation.runs import RunResult, RunTrainer, TrainedRun
from harlab.experiments.spec import Configuration
from harlab.training.callbacks import Callback

Job = tuple[Configuration, Fold, int]  # (configuration, fold, repeat)


class Backend(Protocol):
    def train(self, data: WindowSet, jobs: Sequence[Job],
              callbacks: Sequence[Callback] = ()) -> Iterator[tuple[Job, TrainedRun | RunResult]]:
        """Train every job on `data`, yielding each as it finishes: with its model (a TrainedRun) when trained in
        this process, else its result. `callbacks` follow the fits that run in this process."""
        ...


class LocalBackend:
    """Trains in this process, one run after another in the order given."""

    def train(self, data: WindowSet, jobs: Sequence[Job],
              callbacks: Sequence[Callback] = ()) -> Iterator[tuple[Job, TrainedRun | RunResult]]:
        trainer: RunTrainer | None = None
        for configuration, fold, repeat in jobs:
            if trainer is None or trainer.fold != fold:  # one fold's tensors in memory at a time
                trainer = RunTrainer(data, fold)
            yield (configuration, fold, repeat), trainer.run(configuration.config, repeat, callbacks)
