"""Where an experiment's runs train: in this process (`LocalBackend`, a configuration's repeats as batched
replicas where that pays), several at once in worker processes of this machine (`ProcessBackend`), or elsewhere
(harlab.integrations.ray's `RayBackend`, as Ray tasks on the cores of this machine or of a cluster).
`choose_backend` picks between the first two.

A backend only trains: it yields each (configuration, fold, repeat) with its result as the run finishes, and
the caller records it, so the results store always has one writer.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import multiprocessing
import os
import queue
import signal
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.queues import Queue
from typing import Protocol

import torch

from harlab.data.splits import Fold
from harlab.data.windowset import WindowSet
from harlab.errors import HarlabError
from harlab.evaluation.runs import RunResult, RunTrainer, TrainedRun
from harlab.experiments.spec import Configuration
from harlab.training.callbacks import Callback, FitState, call
from harlab.training.device import resolve_device
from harlab.training.settings import RepeatConfig

Job = tuple[Configuration, Fold, int]  # (configuration, fold, repeat)
WORKERS_VARIABLE = "HARLAB_WORKERS"
PROGRESS_SECONDS = 0.5  # how often the workers' finished epochs are passed on
ALL_REPEATS = 1_000_000  # a replica group as large as a configuration's repeats
logger = logging.getLogger(__name__)


class Backend(Protocol):
    def train(self, data: WindowSet, jobs: Sequence[Job],
              callbacks: Sequence[Callback] = ()) -> Iterator[tuple[Job, TrainedRun | RunResult]]:
        """Train every job on `data`, yielding each as it finishes: with its model (a TrainedRun) when trained in
        this process, else its result. `callbacks` follow the fits that run in this process."""
        ...


class LocalBackend:
    """Trains in this process, in the order given, on `device` (None: auto). The repeats of one configuration on
    one fold train together as replicas (harlab.training.replicas), `replicas` at a time; None: all of them on a
    GPU or MPS, which one run's batches leave mostly idle, and one at a time on a CPU, where replicas measured no
    faster (benchmarks/step_speed.py --replicas). Runs that cannot be replicas train one at a time, said once."""

    def __init__(self, device: torch.device | str | None = None, replicas: int | None = None):
        self.device = resolve_device(device)
        self.replicas = replicas if replicas is not None else (1 if self.device.type == "cpu" else ALL_REPEATS)
        self._told: set[str] = set()

    def train(self, data: WindowSet, jobs: Sequence[Job],
              callbacks: Sequence[Callback] = ()) -> Iterator[tuple[Job, TrainedRun | RunResult]]:
        trainer: RunTrainer | None = None
        for group in replica_groups(jobs, self.replicas):
            configuration, fold, _ = group[0]
            if trainer is None or trainer.fold != fold:  # one fold's tensors in memory at a time
                trainer = RunTrainer(data, fold, self.device)
            if len(group) > 1 and self._can_batch(trainer, configuration):
                runs = trainer.run_replicas(configuration.config, [repeat for *_, repeat in group], callbacks)
                yield from zip(group, runs, strict=True)
                continue
            for job in group:
                yield job, trainer.run(configuration.config, job[2], callbacks)

    def _can_batch(self, trainer: RunTrainer, configuration: Configuration) -> bool:
        reason = trainer.replicas_refusal(configuration.config)
        if reason is not None and configuration.label not in self._told:
            self._told.add(configuration.label)
            logger.info(f"{configuration.label}: training its runs one at a time, not as replicas: {reason}")
        return reason is None


def replica_groups(jobs: Sequence[Job], size: int) -> Iterator[list[Job]]:
    """The jobs in order, consecutive repeats of one configuration on one fold grouped `size` at a time."""
    group: list[Job] = []
    for job in jobs:
        if group and (len(group) == size or _place(group[0]) != _place(job)):
            yield group
            group = []
        group.append(job)
    if group:
        yield group


def _place(job: Job) -> tuple[str, str]:
    configuration, fold, _ = job
    return configuration.config.key(), fold.name


class ProcessBackend:
    """Trains `workers` runs at once in worker processes of this machine, on the CPU, each process on `threads`
    torch threads. On two cores, two processes of one thread train every tutorial model's runs 1.15–1.46× faster
    than one process of two threads (benchmarks/step_speed.py --processes 2 --threads 1): small convolutions
    and recurrences do not keep two threads busy. The data goes to each worker once; results come back as runs
    finish; the workers' epochs reach the callbacks' `on_remote_epochs` as they end (their fit states stay in
    the workers). Interrupted, the workers stop at once and every finished run has already been handed back."""

    def __init__(self, workers: int, threads: int = 1):
        self.workers, self.threads = workers, threads

    def train(self, data: WindowSet, jobs: Sequence[Job],
              callbacks: Sequence[Callback] = ()) -> Iterator[tuple[Job, TrainedRun | RunResult]]:
        if not jobs:
            return
        context = multiprocessing.get_context("spawn")  # fork would copy this process's torch threads and locks
        workers = min(self.workers, len(jobs))
        epochs = context.Queue()
        executor = ProcessPoolExecutor(workers, context, initializer=_start_worker,
                                       initargs=(data, self.threads, workers, epochs))
        try:
            pending = {executor.submit(_train_job, configuration.config, fold, repeat): (configuration, fold, repeat)
                       for configuration, fold, repeat in jobs}
            while pending:
                finished, _ = wait(pending, timeout=PROGRESS_SECONDS, return_when=FIRST_COMPLETED)
                _forward_epochs(epochs, callbacks)
                for future in finished:
                    try:
                        result = future.result()
                    except BrokenProcessPool as exc:
                        raise HarlabError(f"a worker process died ({exc}); finished runs are kept: run again, or "
                                          "with workers=1 to train in this process") from None
                    yield pending.pop(future), result
        finally:
            processes = list(getattr(executor, "_processes", {}).values())  # shutdown alone would wait for runs
            executor.shutdown(wait=False, cancel_futures=True)
            for process in processes:
                process.terminate()


def _forward_epochs(epochs: Queue, callbacks: Sequence[Callback]) -> None:
    count = 0
    with contextlib.suppress(queue.Empty):
        while True:
            epochs.get_nowait()
            count += 1
    if count:
        call(list(callbacks), "on_remote_epochs", count)


class _EpochsToParent(Callback):
    def __init__(self, epochs: Queue):
        self.epochs = epochs

    def on_epoch_end(self, state: FitState) -> None:
        self.epochs.put_nowait(state.epoch)


_worker: tuple[WindowSet, int, Queue] | None = None  # this worker's data, the workers at once, the epoch queue


def _start_worker(data: WindowSet, threads: int, workers: int, epochs: Queue) -> None:
    global _worker
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which stops the workers
    torch.set_num_threads(threads)
    _worker = data, workers, epochs


def _train_job(config: RepeatConfig, fold: Fold, repeat: int) -> RunResult:
    assert _worker is not None
    data, workers, epochs = _worker
    result = RunTrainer(data, fold, "cpu").run(config, repeat, [_EpochsToParent(epochs)]).result
    return dataclasses.replace(result, workers=workers)


def available_cores() -> int:
    """The CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def choose_backend(device: str | None, workers: int | None, jobs: int, in_process: bool,
                   replicas: int | None = None) -> Backend:
    """Where `jobs` runs train when no backend is given: on a GPU or MPS in this process, repeats together as
    `replicas`; on the CPU `workers` at a time in worker processes (None: $HARLAB_WORKERS, else one per core),
    unless a callback needs the trained models here (`in_process`), one worker is asked for, or replicas are."""
    target = resolve_device(device)
    if workers is None and (variable := os.environ.get(WORKERS_VARIABLE)):
        if not variable.isdigit() or int(variable) < 1:
            raise HarlabError(f"{WORKERS_VARIABLE}={variable!r}: give a whole number of worker processes, at least 1")
        workers = int(variable)
    if target.type != "cpu" or (replicas or 1) > 1:
        if workers not in (None, 1):
            where = f"on {target}" if target.type != "cpu" else f"beside replicas={replicas}"
            raise HarlabError(f"workers={workers}: several worker processes train on the CPU only, not {where}; "
                              "leave workers unset")
        return LocalBackend(target, replicas)
    cores = available_cores()
    workers = min(workers or cores, jobs)
    if workers < 2 or in_process:
        return LocalBackend(target, replicas)
    threads = max(1, cores // workers)
    logger.info(f"training {workers} runs at a time, each in its own process on {threads} thread(s) "
                "(workers=1 trains one at a time in this process)")
    return ProcessBackend(workers, threads)
