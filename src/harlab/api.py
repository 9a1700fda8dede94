"""harlab's public Python API; the `harlab` command line is a thin shell over exactly these functions.

Data (`load_dataset` → WindowSet), models (`list_models`, `create_model`), a scikit-learn classifier
(`HARClassifier`, in harlab.estimator), experiments (`train`, `run_experiment` → `Results`), search (`tune`) and
deployment (`export_onnx`, `predict`).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
from torch import nn

from harlab.data.datasets import load_tutorial_dataset
from harlab.data.splits import folds, split_record
from harlab.data.windowset import WindowSet
from harlab.deploy.bundle import Bundle, load_bundle, save_run_bundle
from harlab.deploy.onnx_export import export_onnx as _export_bundle
from harlab.deploy.predict import open_model, predict_file
from harlab.deploy.predict import predict as _predict_frame
from harlab.errors import HarlabError
from harlab.estimator import HARClassifier
from harlab.evaluation.runs import train_run
from harlab.experiments.backends import Backend
from harlab.experiments.runner import ExperimentCallback, FinishedRun, Progress
from harlab.experiments.runner import run_experiment as _run_spec
from harlab.experiments.spec import ExperimentSpec, load_spec, parse_spec, training_spec
from harlab.experiments.store import SPEC_FILE, ResultsStore, refuse_old_train_file, run_place, writing
from harlab.files import check_output_folder
from harlab.integrations.ray import make_backend
from harlab.models import registry
from harlab.reports.analysis import ExperimentResult, analyze
from harlab.reports.html import experiment_report
from harlab.reports.plots import channel_histograms, save_figure
from harlab.training.callbacks import Callback
from harlab.training.device import resolve_device, torch_threads

logger = logging.getLogger(__name__)
CHANNELS_FIGURE = "channels.png"


def load_dataset(name_or_folder: str | Path | None = None, data_dir: str | Path | None = None, **options: Any
                 ) -> WindowSet:
    """A dataset as windows: `uci-har`, `hapt`, `wisdm` (found in `data_dir`, `$HARLAB_DATA_DIR`, the cache, or
    downloaded and checked), or a folder made by `harlab data import`; None is the tutorials' dataset (UCI HAR,
    or the same recordings through HAPT where UCI HAR cannot be had). `options` are the dataset's own (window,
    step, transitions for hapt…)."""
    return load_tutorial_dataset(None if name_or_folder is None else str(name_or_folder), data_dir, **options)


def list_models() -> list[str]:
    """The names of every registered model."""
    return registry.model_names()


def create_model(name: str, n_channels: int, n_timesteps: int, n_classes: int, **hyperparameters: Any) -> nn.Module:
    """Build model `name` for windows [batch, n_channels, n_timesteps] and `n_classes` outputs."""
    return registry.create_model(name, n_channels, n_timesteps, n_classes, **hyperparameters)


@dataclass(frozen=True)
class Results:
    """An experiment's results folder (`harlab experiment run` and `harlab train` write the same format);
    `saved_bundle` is the bundle `train(save=...)` wrote, if it did."""

    directory: Path
    saved_bundle: Path | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "directory", Path(self.directory))

    @property
    def store(self) -> ResultsStore:
        return ResultsStore(self.directory)

    def analysis(self) -> ExperimentResult:
        """Every finished run grouped by configuration, summarized and compared (see harlab.reports.analysis)."""
        if not (self.directory / SPEC_FILE).is_file():
            raise HarlabError(f"{self.directory}: not an experiment folder (no {SPEC_FILE}); give the out folder of "
                              "an experiment or of harlab train")
        return analyze(self.store)

    @property
    def runs(self) -> pd.DataFrame:
        """One row per finished run: configuration label, fold, repeat, seed, accuracy, macro-F1 and balanced
        accuracy (fractions; None for runs recorded before it), fit seconds, parameters, and the swept settings."""
        rows = [{"label": row["label"], "fold": row.get("fold", "fixed"), "repeat": row["repeat"],
                 "seed": row["seed"], "accuracy": row["accuracy"], "macro_f1": row["macro_f1"],
                 "balanced_accuracy": row.get("balanced_accuracy"),
                 "fit_seconds": row["fit_seconds"], "parameters": row["parameters"], **row.get("swept", {})}
                for row in self.store.rows()]
        return pd.DataFrame(rows)

    def summary(self) -> pd.DataFrame:
        """Per configuration: runs, mean and std of accuracy (percent), its 95 % CI, mean macro-F1 and balanced
        accuracy, seconds per fit, parameters and the tutorial's reported mean, in the spec's order."""
        return pd.DataFrame([{"label": c.label, **asdict(c.summary), "macro_f1": c.macro_f1,
                              "balanced_accuracy": c.balanced_accuracy,
                              "fit_seconds": c.fit_seconds, "parameters": c.parameters, "tutorial": c.tutorial}
                             for c in self.analysis().configurations]).set_index("label")

    def compare(self) -> pd.DataFrame:
        """Welch's t-test of every pair of configurations: difference of means (b − a, points), t, p and
        Holm-corrected p, and whether it is significant at 5 %."""
        return pd.DataFrame([{**asdict(c), "significant": c.significant()} for c in self.analysis().comparisons])

    def save_bundle(self, to: str | Path, configuration: str | None = None, repeat: int = 1,
                    fold: str | None = None, data: WindowSet | None = None,
                    data_dir: str | Path | None = None) -> SavedRun:
        """Save run `repeat` of `configuration` (its label; default the only one) on `fold` (default the first)
        as a bundle in `to`: the run is trained again from its seed (the same weights on a CPU) on the data it
        ran on (`data`, else loaded from `data_dir`), and its test accuracy is checked against the recorded one."""
        check_output_folder(Path(to), "bundle")
        spec = parse_spec(self.store.spec(), self.directory / SPEC_FILE)
        data = data if data is not None else load_tutorial_dataset(spec.dataset, data_dir, **spec.dataset_options)
        if split_record(data, spec.split) != self.store.dataset():
            raise HarlabError(f"{self.directory}: the experiment ran on other data than {data.provenance.source}; "
                              "give the data_dir it ran with")
        chosen = _choose(self.directory, {c.label: c for c in spec.configurations()}, configuration, "configuration")
        config = chosen.config
        place = _choose(self.directory, {f.name: f for f in folds(data, config.split)}, fold, "fold")
        row = {run_place(r): r for r in self.store.rows()}.get((config.key(), place.name, repeat), {})
        with torch_threads(row.get("threads")):  # the recorded run's threads and device give its numbers again
            trained = train_run(data, config, repeat, place, device=_device_like(row.get("device")))
        save_run_bundle(Path(to), trained.model, config, data, trained.standardizer, trained.result,
                        place.apply(data)[0])
        return SavedRun(Path(to), chosen.label, place.name, trained.result.accuracy, row.get("accuracy"),
                        row.get("replicas", 1))

    def report(self, path: str | Path | None = None) -> Path:
        """Write the HTML report (default DIR/report.html, figures in DIR/figures/) and return its path."""
        written = experiment_report(self.analysis(), self.directory)
        if path is None or Path(path).resolve() == written.resolve():
            return written
        shutil.copytree(self.directory / "figures", Path(path).parent / "figures", dirs_exist_ok=True)
        shutil.copyfile(written, path)
        return Path(path)


@dataclass(frozen=True)
class SavedRun:
    """A run saved as a bundle: where, which configuration and fold, its test accuracy now and as recorded (None
    when the store does not hold that run), and how many replicas it was recorded among (trained again alone, a
    replica matches within float tolerance, not bit for bit)."""

    bundle: Path
    configuration: str
    fold: str
    accuracy: float
    recorded: float | None
    recorded_replicas: int = 1

    @property
    def same_as_recorded(self) -> bool | None:
        return None if self.recorded is None else abs(self.recorded - self.accuracy) < 1e-9


def _device_like(recorded: str | None) -> str | None:
    """The device a run was recorded on when this machine has it, else None (auto)."""
    try:
        return str(resolve_device(recorded)) if recorded else None
    except HarlabError:
        return None


def _choose(directory: Path, choices: dict[str, Any], name: str | None, what: str) -> Any:
    if name is None and (what == "fold" or len(choices) == 1):
        name = next(iter(choices))
    if name not in choices:
        raise HarlabError(f"{directory}: {what} {name!r}; choose one of {', '.join(choices)}")
    return choices[name]


class BundleSaver(ExperimentCallback):
    """Saves run `repeat` (chosen before training, never by its test score) as a bundle in `to` when it is trained
    in this process; `saved` says whether it was (a run finished in an earlier invocation left no weights)."""

    needs_models = True

    def __init__(self, to: Path, repeat: int, data: WindowSet):
        self.to, self.repeat, self.data = to, repeat, data
        self.saved: Path | None = None

    def on_run_end(self, run: FinishedRun) -> None:
        if run.trained is not None and run.result.repeat == self.repeat and self.saved is None:
            config = run.configuration.config
            place = next(f for f in folds(self.data, config.split) if f.name == run.result.fold)
            self.saved = save_run_bundle(self.to, run.trained.model, config, self.data, run.trained.standardizer,
                                         run.result, place.apply(self.data)[0])


class ChannelsFigure(ExperimentCallback):
    """Draws OUT/channels.png (a histogram per channel of the first fold's training windows, the tutorial's
    figure) once the results folder is open, unless it is there already."""

    def __init__(self, spec: ExperimentSpec, data: WindowSet, out: Path):
        self.spec, self.data, self.out = spec, data, out

    def on_experiment_start(self, progress: Progress) -> None:
        if not (self.out / CHANNELS_FIGURE).exists():
            first = folds(self.data, self.spec.configurations()[0].config.split)[0]
            save_figure(channel_histograms(first.apply(self.data)[0]), self.out / CHANNELS_FIGURE,
                        self.out / "channels.svg")


def _spec(spec: ExperimentSpec | dict[str, Any] | str | Path, repeats: int | None, **execution: Any
          ) -> ExperimentSpec:
    """The spec given, with `repeats` and the `execution` settings (device, workers, replicas) that are not
    None."""
    overrides = {k: v for k, v in {"repeats": repeats, **execution}.items() if v is not None} or None
    if isinstance(spec, ExperimentSpec):
        return spec if overrides is None else parse_spec({**spec.model_dump(mode="json"), **overrides}, "spec")
    if isinstance(spec, dict):
        return parse_spec(spec, "spec", overrides)
    return load_spec(Path(spec), overrides)


def run_experiment(spec: ExperimentSpec | dict[str, Any] | str | Path, out: str | Path | None = None, *,
                   data: WindowSet | None = None, data_dir: str | Path | None = None, repeats: int | None = None,
                   backend: str | Backend = "local", address: str | None = None, device: str | None = None,
                   workers: int | None = None, replicas: int | None = None, callbacks: Sequence[Callback] = (),
                   track: bool = False, tracking_uri: str | None = None, shared: Sequence[str | Path] = ()) -> Results:
    """Train every configuration × fold × repeat of `spec` (a spec file, a dict of its keys or an ExperimentSpec)
    that `out` (default results/<name>) does not hold yet, and return its Results. Interrupted, it keeps every
    finished run; called again, it trains only what is missing.

    `data` defaults to the spec's dataset (from `data_dir`); `backend` is local (this machine: on a CPU several
    runs at once in `workers` processes, one per core unless told) or ray (with `address`, a cluster's);
    `device` (auto, cpu, cuda, cuda:N, mps), `workers` and `replicas` (repeats of a configuration trained as
    one batched computation; default: all on a GPU, one on a CPU) override the spec's; `callbacks` follow the fits and
    the experiment; `track` logs every run to MLflow (`tracking_uri`, default OUT/mlflow.db); `shared` names
    results folders of other experiments on the same data whose identical runs are copied instead of trained
    again.
    """
    experiment = _spec(spec, repeats, device=device, workers=workers, replicas=replicas)
    if tracking_uri and not track:
        raise HarlabError("`tracking_uri` needs track=true")
    runner = make_backend(backend, address, experiment.device) if isinstance(backend, str) else backend
    if runner is None:
        resolve_device(experiment.device)  # a missing GPU is one line now, not after loading the data
    data = data if data is not None else load_tutorial_dataset(experiment.dataset, data_dir,
                                                               **experiment.dataset_options)
    out = Path(out) if out is not None else Path("results") / experiment.name
    stores = [ResultsStore(Path(folder)) for folder in shared]
    callbacks = [ChannelsFigure(experiment, data, out), *callbacks]
    if not track:
        _run_spec(experiment, data, out, stores, callbacks, runner)
        return Results(out)
    from harlab.integrations.tracking import ExperimentTracker

    with writing(out), ExperimentTracker.open(experiment, out, tracking_uri) as tracker:  # one writer, MLflow too
        _run_spec(experiment, data, out, stores, [*callbacks, tracker], runner)
        results = Results(out)
        tracker.finish(results.store, results.report())
    logger.info(f"tracked in MLflow: {tracker.uri}")
    return results


def train(model: str | None = None, *, dataset: str | None = None, data: WindowSet | None = None,
          data_dir: str | Path | None = None, dataset_options: dict[str, Any] | None = None, repeats: int = 10,
          seed: int = 0, hyperparameters: dict[str, Any] | None = None, split: str = "fixed", folds: int = 5,
          test_fraction: float = 0.3, early_stopping: int | None = None, out: str | Path | None = None,
          device: str | None = None, workers: int | None = None, replicas: int | None = None,
          callbacks: Sequence[Callback] = (), track: bool = False, tracking_uri: str | None = None,
          save: str | Path | None = None, save_repeat: int = 1, **settings: Any) -> Results:
    """Train one configuration `repeats` times with seeds seed, seed + 1, … (on every fold of `split`) and
    return its Results: a one-configuration experiment (see `training_spec`), in the same resumable results
    folder as `run_experiment` (default results/train-MODEL-DATASET-TIME). `model` is cnn unless given, or
    fine-tuning (`init=BUNDLE` or `init="pretrained:NAME"`) the bundle's. `settings` are TrainConfig's (epochs,
    batch_size, standardize, init, freeze, new_head, …; None or absent: the model's). `early_stopping` is a
    patience on the validation loss, holding out 20 % of the training subjects unless `validation_split` says
    otherwise. `device` (auto, cpu, cuda, cuda:N, mps), `workers` (runs at once on a CPU) and `replicas`
    (repeats trained as one batched computation) say where and how it trains. With `save`, run `save_repeat`
    (chosen before training) is written there as a bundle when it is trained by this call."""
    spec = training_spec(model, dataset=dataset, dataset_options=dataset_options, repeats=repeats, seed=seed,
                         hyperparameters=hyperparameters, split=split, folds=folds, test_fraction=test_fraction,
                         early_stopping=early_stopping, device=device, workers=workers, replicas=replicas,
                         **settings)
    data = data if data is not None else load_tutorial_dataset(dataset, data_dir, **(dataset_options or {}))
    return run_training(spec, data, out, callbacks=callbacks, track=track, tracking_uri=tracking_uri, save=save,
                        save_repeat=save_repeat)


def default_train_out(model: str, data: WindowSet) -> Path:
    """results/train-MODEL-DATASET-TIME: where `train` writes unless told."""
    return Path("results") / f"train-{model}-{data.provenance.dataset}-{datetime.now():%Y%m%d-%H%M%S}"


def run_training(spec: ExperimentSpec, data: WindowSet, out: str | Path | None = None, *,
                 callbacks: Sequence[Callback] = (), track: bool = False, tracking_uri: str | None = None,
                 save: str | Path | None = None, save_repeat: int = 1) -> Results:
    """Run the one-configuration experiment `spec` (from `training_spec`) on `data`, saving run `save_repeat`
    as a bundle in `save` when this call trains it; `Results.saved_bundle` says whether it did."""
    if save is not None:
        check_output_folder(Path(save), "bundle")  # before hours of training, not after
    out = Path(out) if out is not None else default_train_out(spec.model, data)
    refuse_old_train_file(out)
    saver = [BundleSaver(Path(save), save_repeat, data)] if save is not None else []
    results = run_experiment(spec, out, data=data, callbacks=[*callbacks, *saver], track=track,
                             tracking_uri=tracking_uri)
    return replace(results, saved_bundle=saver[0].saved if saver else None)


def tune(spec: ExperimentSpec | dict[str, Any] | str | Path, out: str | Path | None = None, *,
         data: WindowSet | None = None, data_dir: str | Path | None = None, trials: int = 20,
         timeout: float | None = None, repeats: int | None = None, **hooks: Any) -> Any:
    """Search `spec`'s `search` space with Optuna on validation subjects (`trials` trials, or until `timeout`
    seconds), then train the best configuration `repeats` times (default: the spec's) and score it on the test
    split once; returns harlab.integrations.tune.TuneResult. The search lives in OUT (default
    results/<name>-tune) and resumes when called again. `hooks` are on_trial, on_start and on_run."""
    from harlab.integrations.tune import tune as search

    experiment = _spec(spec, None)
    data = data if data is not None else load_tutorial_dataset(experiment.dataset, data_dir,
                                                               **experiment.dataset_options)
    out = Path(out) if out is not None else Path("results") / f"{experiment.name}-tune"
    return search(experiment, data, out, trials, timeout, repeats=repeats, **hooks)


def export_onnx(model: str | Path | HARClassifier | Bundle, path: str | Path, flat_input: bool = False) -> Path:
    """Write `model` (a bundle folder, a fitted HARClassifier or a loaded Bundle) as an ONNX file: raw windows
    [batch, time, channels] in (flat time-major vectors with `flat_input`), class probabilities out,
    standardization included; checked with ONNX's checker and against PyTorch in ONNX Runtime."""
    if isinstance(model, HARClassifier):
        with tempfile.TemporaryDirectory() as folder:
            return _export_bundle(load_bundle(model.save(Path(folder) / "bundle")), Path(path), flat_input)
    bundle = model if isinstance(model, Bundle) else load_bundle(Path(model))
    return _export_bundle(bundle, Path(path), flat_input)


def predict(model: Any, recording: Any, **options: Any) -> pd.DataFrame:
    """Per-window activity predictions as a DataFrame: `model` a bundle folder, an .onnx file or a loaded model,
    `recording` a DataFrame of samples or a CSV/Parquet file (options: see harlab.deploy.predict.predict)."""
    if isinstance(model, HARClassifier):
        with tempfile.TemporaryDirectory() as folder:
            return predict(model.save(Path(folder) / "bundle"), recording, **options)
    loaded = open_model(Path(model)) if isinstance(model, str | Path) else model
    if isinstance(recording, str | Path):
        return predict_file(loaded, Path(recording), **options)
    return _predict_frame(loaded, recording, **options)
