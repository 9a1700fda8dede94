"""Run an experiment: every (configuration × repeat) of a spec that the store does not already hold."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from harlab.data.windowset import WindowSet
from harlab.environment import describe_environment, now_iso
from harlab.experiments.repeats import RunResult, RunTrainer, dataset_record
from harlab.experiments.spec import Configuration, ExperimentSpec
from harlab.experiments.store import ResultsStore
from harlab.reports.plots import channel_histograms, save_figure

CHANNELS_FIGURE = "channels.png"


@dataclass(frozen=True)
class Progress:
    """What an experiment plans and what its store already holds, in runs and in epochs."""

    runs: int
    finished_runs: int
    epochs: int
    finished_epochs: int


def run_experiment(spec: ExperimentSpec, data: WindowSet, out: Path, shared: Sequence[ResultsStore] = (),
                   on_run: Callable[[Configuration, RunResult], None] = lambda c, r: None,
                   on_start: Callable[[Progress], None] = lambda progress: None,
                   on_epoch: Callable[[], None] = lambda: None) -> ResultsStore:
    """Train every missing run of `spec` on `data` into the store at `out`; return the store.

    A run that one of the `shared` stores (other experiments on the same data) already holds — same
    configuration, same seed, hence the same result — is copied from it instead of trained again, marked
    with the experiment it came from.

    `on_start` is called once before training with what is planned and already done, `on_epoch` after every
    epoch and `on_run` after every finished run, so a caller can show progress over the whole experiment.
    """
    configurations = spec.configurations()
    trainer = RunTrainer(data)
    for configuration in configurations:
        trainer.check(configuration.config)
    store = ResultsStore.open(out, spec, dataset_record(data, trainer.train, trainer.test), describe_environment())
    if not (out / CHANNELS_FIGURE).exists():
        save_figure(channel_histograms(trainer.train), out / CHANNELS_FIGURE, out / "channels.svg")
    finished = store.finished()
    dataset = store.dataset()
    elsewhere = {(row["key"], row["repeat"]): {**row, "copied_from": other.spec()["name"]}
                 for other in shared if other.directory != out and other.dataset() == dataset
                 for row in other.rows() if "copied_from" not in row}
    plan = [(c, repeat) for c in configurations for repeat in range(1, spec.repeats + 1)]
    epochs = {c.label: c.config.train_config().epochs for c in configurations}
    done = [(c, r) for c, r in plan if (c.config.key(), r) in finished]
    on_start(Progress(len(plan), len(done), sum(epochs[c.label] for c, _ in plan),
                      sum(epochs[c.label] for c, _ in done)))
    for configuration, repeat in plan:
        key = configuration.config.key()
        if (key, repeat) in finished:
            continue
        if (key, repeat) in elsewhere:
            row = {**elsewhere[key, repeat], "label": configuration.label, "swept": configuration.swept}
            run = RunResult(**{k: row[k] for k in RunResult.__dataclass_fields__})
            for _ in range(epochs[configuration.label]):
                on_epoch()
        else:
            run = trainer.run(configuration.config, repeat, on_epoch)
            row = {"key": key, "label": configuration.label, "swept": configuration.swept,
                   "config": configuration.config.model_dump(mode="json"), **asdict(run), "finished": now_iso()}
        store.append(row)
        on_run(configuration, run)
    return store
