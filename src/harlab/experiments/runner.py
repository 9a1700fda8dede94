"""Run an experiment: every (configuration × fold × repeat) of a spec that the store does not already hold."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harlab.data.splits import folds, split_record
from harlab.data.windowset import WindowSet
from harlab.environment import describe_environment, now_iso
from harlab.evaluation.runs import RunResult, RunTrainer, TrainedRun
from harlab.experiments.backends import Backend, choose_backend
from harlab.experiments.spec import Configuration, ExperimentSpec
from harlab.experiments.store import ResultsStore, run_place, writing
from harlab.training.callbacks import Callback


@dataclass(frozen=True)
class Progress:
    """What an experiment plans and what its store already holds, in runs and in epochs."""

    runs: int
    finished_runs: int
    epochs: int
    finished_epochs: int


@dataclass(frozen=True)
class FinishedRun:
    """A run just stored: its configuration, fold, result and planned epochs; `trained` holds the model when it
    was trained in this process (None when it was copied from another experiment or trained elsewhere)."""

    configuration: Configuration
    result: RunResult
    epochs: int
    trained: TrainedRun | None = None


class ExperimentCallback(Callback):
    """A callback that also follows a whole experiment: `on_experiment_start` once with what is planned and
    already done, `on_run_end` after every run stored (its fit hooks run only for runs trained in this process).
    One that sets `needs_models` keeps the runs in this process, where `FinishedRun.trained` holds the model."""

    needs_models = False

    def on_experiment_start(self, progress: Progress) -> None:
        """Before the first run, with the plan."""

    def on_run_end(self, run: FinishedRun) -> None:
        """After a run's row is stored."""


def run_experiment(spec: ExperimentSpec, data: WindowSet, out: Path, shared: Sequence[ResultsStore] = (),
                   callbacks: Sequence[Callback] = (), backend: Backend | None = None) -> ResultsStore:
    """Train every missing run of `spec` on `data` into the store at `out`; return the store.

    A run that one of the `shared` stores (other experiments on the same data) already holds — same
    configuration, same seed, hence the same result — is copied from it instead of trained again, marked
    with the experiment it came from. The runs left to train go to `backend` (default: `choose_backend`'s, on
    the spec's device: on a CPU several at once in worker processes, else in this process), after the copied
    ones; each row is appended here as its run finishes. The folder is locked while this runs: a second process
    on the same `out` is refused in one line. `callbacks` follow the fits and, for ExperimentCallbacks, the
    whole experiment (progress display, tracking).
    """
    configurations = spec.configurations()
    fold_lists = {c.label: folds(data, c.config.split) for c in configurations}
    first = RunTrainer(data, fold_lists[configurations[0].label][0])
    for configuration in configurations:
        first.check(configuration.config)
    del first  # the backend prepares the folds it trains on
    watchers = [c for c in callbacks if isinstance(c, ExperimentCallback)]
    with writing(out):  # one process writes a results folder at a time
        store = ResultsStore.open(out, spec, split_record(data, spec.split), describe_environment())
        finished = store.finished()
        elsewhere = _runs_elsewhere(store, shared)
        plan = [(c, fold, repeat) for c in configurations for fold in fold_lists[c.label]
                for repeat in range(1, spec.repeats + 1)]
        epochs = {c.label: c.config.train_config().epochs for c in configurations}
        done = [(c, f, r) for c, f, r in plan if (c.config.key(), f.name, r) in finished]
        progress = Progress(len(plan), len(done), sum(epochs[c.label] for c, _, _ in plan),
                            sum(epochs[c.label] for c, _, _ in done))
        for watcher in watchers:
            watcher.on_experiment_start(progress)

        def stored(configuration: Configuration, row: dict[str, Any], run: RunResult,
                   trained: TrainedRun | None = None) -> None:
            store.append(row)
            for watcher in watchers:
                watcher.on_run_end(FinishedRun(configuration, run, epochs[configuration.label], trained))

        missing = []
        for configuration, fold, repeat in plan:
            key = configuration.config.key()
            if (key, fold.name, repeat) in finished:
                continue
            if (key, fold.name, repeat) not in elsewhere:
                missing.append((configuration, fold, repeat))
                continue
            row = {**elsewhere[key, fold.name, repeat], "label": configuration.label, "swept": configuration.swept}
            stored(configuration, row, RunResult(**{k: row[k] for k in RunResult.__dataclass_fields__ if k in row}))
        in_process = any(getattr(c, "needs_models", False) for c in callbacks)
        trainer = backend or choose_backend(spec.device, spec.workers, len(missing), in_process, spec.replicas)
        for (configuration, _, _), outcome in trainer.train(data, missing, callbacks):
            trained = outcome if isinstance(outcome, TrainedRun) else None
            run = outcome.result if isinstance(outcome, TrainedRun) else outcome
            stored(configuration, {"key": configuration.config.key(), "label": configuration.label,
                                   "swept": configuration.swept, "config": configuration.config.model_dump(mode="json"),
                                   **asdict(run), "finished": now_iso()}, run, trained)
        return store


def _runs_elsewhere(store: ResultsStore, shared: Sequence[ResultsStore]) -> dict[tuple[str, str, int], dict[str, Any]]:
    """The runs other experiments on the same data trained themselves, by place, marked with where they came from."""
    dataset = store.dataset()
    elsewhere = {}
    for other in shared:
        if other.directory != store.directory and other.dataset() == dataset:
            for row in other.rows():
                if "copied_from" not in row:
                    elsewhere[run_place(row)] = {**row, "copied_from": other.spec()["name"]}
    return elsewhere
