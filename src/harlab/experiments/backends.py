"""Where an experiment's runs train: in this process (`LocalBackend`), or as Ray tasks on the cores of this
machine or of a cluster (`RayBackend`, the optional `harlab[distributed]` extra).

A backend only trains: it yields each (configuration, fold, repeat) with its result as the run finishes, and
the caller records it, so the results store always has one writer.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from typing import Any, Protocol

import torch

from harlab.console import say
from harlab.data.windowset import WindowSet
from harlab.errors import HarlabError
from harlab.experiments.repeats import RepeatConfig, RunResult, RunTrainer
from harlab.experiments.spec import Configuration
from harlab.experiments.splits import Fold

BACKENDS = ("local", "ray")

Job = tuple[Configuration, Fold, int]  # (configuration, fold, repeat)


class Backend(Protocol):
    def train(self, data: WindowSet, jobs: Sequence[Job],
              on_epoch: Callable[[], None]) -> Iterator[tuple[Job, RunResult]]:
        """Train every job on `data`, yielding each with its result as it finishes; `on_epoch` once per epoch."""
        ...


class LocalBackend:
    """Trains in this process, one run after another in the order given."""

    def train(self, data: WindowSet, jobs: Sequence[Job],
              on_epoch: Callable[[], None]) -> Iterator[tuple[Job, RunResult]]:
        trainer: RunTrainer | None = None
        for configuration, fold, repeat in jobs:
            if trainer is None or trainer.fold != fold:  # one fold's tensors in memory at a time
                trainer = RunTrainer(data, fold)
            yield (configuration, fold, repeat), trainer.run(configuration.config, repeat, on_epoch)


def train_run(data: WindowSet, config: RepeatConfig, fold: Fold, repeat: int) -> dict[str, Any]:
    """One run as a Ray task, on one torch thread so that workers sharing a machine do not oversubscribe it."""
    torch.set_num_threads(1)
    return asdict(RunTrainer(data, fold).run(config, repeat))


class RayBackend:
    """Trains every run as a Ray task (one CPU each) on a local Ray instance (`address` None) or an existing
    cluster (`"auto"`, `"host:6379"`, `"ray://host:10001"`). The data is put into Ray's object store once and
    shared by all tasks. A failing task is retried `max_retries` times; one that still fails is reported in one
    line and left unfinished, for the next invocation to pick up (the workers' own output stays in Ray's logs).
    Ray started here is shut down when training ends; one already started by the caller is used as it is."""

    def __init__(self, address: str | None = None, num_cpus: int | None = None, max_retries: int = 2):
        if importlib.util.find_spec("ray") is None:
            raise HarlabError("--backend ray needs Ray: pip install 'harlab[distributed]'")
        self.address, self.num_cpus, self.max_retries = address, num_cpus, max_retries

    def train(self, data: WindowSet, jobs: Sequence[Job],
              on_epoch: Callable[[], None]) -> Iterator[tuple[Job, RunResult]]:
        if not jobs:
            return
        import ray

        started = not ray.is_initialized()
        if started:  # num_cpus only sizes a new local instance; a cluster has its own
            ray.init(address=self.address, num_cpus=self.num_cpus if self.address is None else None,
                     logging_level=logging.WARNING, log_to_driver=False)
        try:
            task = ray.remote(num_cpus=1, max_retries=self.max_retries, retry_exceptions=True)(train_run)
            shared = ray.put(data)
            pending = {task.remote(shared, c.config, fold, repeat): (c, fold, repeat) for c, fold, repeat in jobs}
            while pending:
                [ready], _ = ray.wait(list(pending), num_returns=1)
                job = pending.pop(ready)
                try:
                    result = RunResult(**ray.get(ready))
                except ray.exceptions.RayError as exc:
                    cause = getattr(exc, "cause", None) or exc
                    reason = (str(cause).strip().splitlines() or [""])[0]
                    say(f"{job[0].label}, fold {job[1].name}, repeat {job[2]} failed after {self.max_retries} "
                        f"retries ({type(cause).__name__}: {reason}); left unfinished, run the experiment again")
                    continue
                for _ in range(job[0].config.train_config().epochs):
                    on_epoch()
                yield job, result
        finally:
            if started:
                ray.shutdown()


def make_backend(name: str, address: str | None = None) -> Backend:
    """The backend called `name` (one of BACKENDS); `address` is the Ray cluster's, for the ray backend only."""
    if name == "ray":
        return RayBackend(address)
    if name != "local":
        raise HarlabError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    if address is not None:
        raise HarlabError("--address is the Ray cluster's; it needs --backend ray")
    return LocalBackend()
