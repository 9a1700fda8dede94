"""Experiments on Ray: every run a Ray task on the cores of this machine or of a cluster (the optional
`harlab[distributed]` extra). The data goes into Ray's object store once; each task trains one run with the
one training core and returns its result; the caller stores it, so the results store keeps one writer.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from typing import Any

import torch

from harlab.data.splits import Fold
from harlab.data.windowset import WindowSet
from harlab.errors import HarlabError
from harlab.evaluation.runs import RunResult, TrainedRun, train_run
from harlab.experiments.backends import Backend, Job
from harlab.training.callbacks import Callback
from harlab.training.settings import RepeatConfig

BACKENDS = ("local", "ray")
logger = logging.getLogger(__name__)


GPU_SHARE = 0.25  # four runs share a GPU: one run of a tutorial model leaves most of it idle


def ray_task(data: WindowSet, config: RepeatConfig, fold: Fold, repeat: int, device: str | None = None
             ) -> dict[str, Any]:
    """One run as a Ray task on `device` (None: auto, on the worker's machine), on one torch thread so that
    workers sharing a machine do not oversubscribe it."""
    torch.set_num_threads(1)
    return asdict(train_run(data, config, repeat, fold, device=device).result)


class RayBackend:
    """Trains every run as a Ray task (one CPU each) on a local Ray instance (`address` None) or an existing
    cluster (`"auto"`, `"host:6379"`, `"ray://host:10001"`). The data is put into Ray's object store once and
    shared by all tasks. A failing task is retried `max_retries` times; one that still fails is reported in one
    line and left unfinished, for the next invocation to pick up (the workers' own output stays in Ray's logs).
    Ray started here is shut down when training ends; one already started by the caller is used as it is. With a
    GPU `device` (cuda, cuda:N) each task asks Ray for GPU_SHARE of a GPU; with `auto` it does so where this
    machine has one."""

    def __init__(self, address: str | None = None, num_cpus: int | None = None, max_retries: int = 2,
                 device: str | None = None):
        if importlib.util.find_spec("ray") is None:
            raise HarlabError("backend=ray needs Ray: pip install 'harlab[distributed]'")
        self.address, self.num_cpus, self.max_retries, self.device = address, num_cpus, max_retries, device
        name = device or "auto"
        self.gpus = GPU_SHARE if name.startswith("cuda") or (name == "auto" and torch.cuda.is_available()) else 0

    def train(self, data: WindowSet, jobs: Sequence[Job],
              callbacks: Sequence[Callback] = ()) -> Iterator[tuple[Job, TrainedRun | RunResult]]:
        if not jobs:
            return
        import ray

        started = not ray.is_initialized()
        if started:  # num_cpus only sizes a new local instance; a cluster has its own
            ray.init(address=self.address, num_cpus=self.num_cpus if self.address is None else None,
                     logging_level=logging.WARNING, log_to_driver=False)
        try:
            task = ray.remote(num_cpus=1, num_gpus=self.gpus, max_retries=self.max_retries,
                              retry_exceptions=True)(ray_task)
            shared = ray.put(data)
            pending = {task.remote(shared, c.config, fold, repeat, self.device): (c, fold, repeat)
                       for c, fold, repeat in jobs}
            while pending:
                [ready], _ = ray.wait(list(pending), num_returns=1)
                job = pending.pop(ready)
                try:
                    result = RunResult(**ray.get(ready))
                except ray.exceptions.RayError as exc:
                    cause = getattr(exc, "cause", None) or exc
                    reason = (str(cause).strip().splitlines() or [""])[0]
                    logger.warning(f"{job[0].label}, fold {job[1].name}, repeat {job[2]} failed after "
                                   f"{self.max_retries} retries ({type(cause).__name__}: {reason}); left unfinished, "
                                   "run the experiment again")
                    continue
                yield job, result
        finally:
            if started:
                ray.shutdown()


def make_backend(name: str, address: str | None = None, device: str | None = None) -> Backend | None:
    """The backend called `name` (one of BACKENDS): for ray a RayBackend (`address`: the cluster's) training on
    `device`; for local None, which leaves the choice on this machine to the runner (`choose_backend`)."""
    if name == "ray":
        return RayBackend(address, device=device)
    if name != "local":
        raise HarlabError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    if address is not None:
        raise HarlabError("`address` is the Ray cluster's; it needs backend=ray")
    return None
