"""`harlab tune`: search a spec's `search` space with Optuna (TPE, median pruning), honest about the test set.

Each trial trains one configuration on the training subjects minus a seeded set of validation subjects and is
scored on them by the spec's `monitor`: the validation loss (minimized; the default), or accuracy, balanced
accuracy or macro-F1 (maximized; for imbalanced classes), of the weights the trial keeps. The test split is set
aside before the search and never seen by it. The search lives in an SQLite database (OUT/optuna.db), so a killed
search resumes and runs only the trials still missing. Afterwards the best configuration is written as a spec
(OUT/best.yaml), trained again with the spec's repeats into OUT/best/ like any experiment, and only then scored on
the test split, once.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

from harlab.data.splits import folds, split_record
from harlab.data.windowset import WindowSet
from harlab.deploy.bundle import starting_point
from harlab.environment import describe_environment, now_iso
from harlab.errors import DataError, HarlabError
from harlab.evaluation.runs import RunResult
from harlab.evaluation.statistics import Summary, describe
from harlab.experiments.runner import ExperimentCallback, FinishedRun, run_experiment
from harlab.experiments.spec import RUN_SETTINGS, ExperimentSpec, SearchDimension, load_spec, parse_spec
from harlab.experiments.store import SPEC_FILE, ResultsStore, same_configuration, writing
from harlab.files import atomic_write_bytes, atomic_write_json
from harlab.reports.html import HtmlReport, add_environment
from harlab.training.callbacks import Callback, FitState
from harlab.training.device import resolve_device
from harlab.training.run import fit_run, hold_out_validation, prepare

if TYPE_CHECKING:
    import optuna

SEARCH_DB, BEST_SPEC, BEST_DIR, REPORT, SUMMARY = "optuna.db", "best.yaml", "best", "report.html", "tune.json"
DEFAULT_VALIDATION_SPLIT = 0.2
# Not the search's concern: what a rerun may change without starting the search over.
FREE_FIELDS = ("repeats", "description", "tutorial")


def import_optuna() -> ModuleType:
    """Optuna, an optional extra, or a one-line error saying how to install it."""
    try:
        import optuna
    except ImportError:
        raise HarlabError("harlab tune needs Optuna: pip install 'harlab[tune]'") from None
    return optuna


@dataclass(frozen=True)
class SearchData:
    """What the search may see: the training subjects, split into the windows trials fit on and those of the
    seeded validation subjects they are scored on. The test split is not part of it."""

    fit: WindowSet
    validation: WindowSet
    validation_subjects: list[int]
    fraction: float


def search_data(spec: ExperimentSpec, data: WindowSet) -> SearchData:
    """Set the test split aside and hold out the spec's `validation_split` (default 0.2) of the training subjects,
    seeded with the spec's seed, the same for every trial."""
    splits = folds(data, spec.split)
    if len(splits) != 1:
        raise HarlabError(f"split.kind {spec.split.kind}: harlab tune needs one test split (fixed or holdout), "
                          f"not {len(splits)} folds")
    train, _ = splits[0].apply(data)
    fraction = spec.validation_split or DEFAULT_VALIDATION_SPLIT
    try:
        fit_part, validation, held_out = hold_out_validation(train, fraction, spec.seed)
    except HarlabError:
        raise HarlabError(f"harlab tune validates on held-out training subjects; {data.provenance.dataset}'s "
                          f"training split has {len(np.unique(train.subject))}, at least 2 are needed") from None
    return SearchData(fit_part, validation, held_out, fraction)


def fixed_spec_data(spec: ExperimentSpec, params: dict[str, Any]) -> dict[str, Any]:
    """The spec's settings (as given) with the searched `params` fixed and no search space left."""
    data = spec.model_dump(mode="json", exclude_unset=True)
    data.pop("search", None)
    data.update({k: v for k, v in params.items() if k in RUN_SETTINGS})
    data["hyperparameters"] = {**spec.hyperparameters, **{k: v for k, v in params.items() if k not in RUN_SETTINGS}}
    return data


def objective_of(spec: ExperimentSpec) -> str:
    """What the search compares: the spec's `monitor` (a TrainConfig monitor), by default the validation loss."""
    return spec.monitor or "val_loss"


def direction(objective: str) -> str:
    return "minimize" if objective == "val_loss" else "maximize"


class OptunaPruning(Callback):
    """Reports every epoch's `objective` (a validation series of the history) to the Optuna trial and stops the fit
    by raising `optuna.TrialPruned` when the pruner says the trial is behind the others at this epoch."""

    def __init__(self, trial: optuna.Trial, objective: str = "val_loss"):
        self.trial = trial
        self.objective = objective

    def on_epoch_end(self, state: FitState) -> None:
        self.trial.report(state.history.monitored(self.objective)[-1], state.epoch)
        if self.trial.should_prune():
            raise import_optuna().TrialPruned(f"pruned at epoch {state.epoch}")


@dataclass(frozen=True)
class TrialRecord:
    """One trial as the report and the progress lines show it."""

    number: int
    state: str  # complete, pruned, fail (or running: another process's trial)
    params: dict[str, Any]
    objective: str  # what `value` is: val_loss, val_macro_f1, ...
    value: float | None
    val_accuracy: float | None
    epochs: int | None
    seconds: float | None
    error: str = ""

    @classmethod
    def of(cls, trial: optuna.trial.FrozenTrial, objective: str = "val_loss") -> TrialRecord:
        state = trial.state.name.lower()
        steps = trial.intermediate_values
        last = max(steps) if steps else None
        value = trial.value if state == "complete" else steps[last] if last is not None else None
        attrs = trial.user_attrs
        return cls(trial.number, state, dict(trial.params), objective, value, attrs.get("val_accuracy"),
                   attrs.get("epochs", last), attrs.get("seconds"), attrs.get("error", ""))

    def outcome(self) -> str:
        """`val_loss 0.4120`"""
        return f"{self.objective} {self.value:.4f}"

    def params_text(self) -> str:
        return "{" + ", ".join(f"{k}: {_short(v)}" for k, v in self.params.items()) + "}"

    def line(self) -> str:
        """`trial 3: val_loss 0.412 (val_accuracy 87.1%) {filters: 64, …}`, or why it stopped."""
        if self.state == "complete":
            outcome = f"{self.outcome()} (val_accuracy {self.val_accuracy:.1%})"
        elif self.state == "pruned":
            outcome = f"pruned at epoch {self.epochs}" + (f" ({self.outcome()})" if self.value is not None else "")
        else:
            outcome = self.state + (f" ({self.error})" if self.error else "")
        return f"trial {self.number}: {outcome} {self.params_text()}"


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


class Objective:
    """Train one configuration per trial on the search data and return its objective (`objective_of`)."""

    def __init__(self, spec: ExperimentSpec, parts: SearchData, shape: tuple[int, int, int]):
        self.spec, self.parts, self.shape = spec, parts, shape  # shape: channels, timesteps, classes

    def __call__(self, trial: optuna.Trial) -> float:
        optuna = import_optuna()
        params = {key: _suggest(trial, key, dimension) for key, dimension in self.spec.search.items()}
        start = time.perf_counter()
        try:
            config = parse_spec(fixed_spec_data(self.spec, params), f"trial {trial.number}").configurations()[0].config
            # The configuration's own epochs, batch and early stopping, validated on the search's subjects.
            train_config = replace(config.train_config(), validation_split=self.parts.fraction)
            initial = starting_point(config.init) if config.init is not None else None
            prepared = prepare(self.parts.fit, train_config, config.seed,
                               (self.parts.validation, self.parts.validation_subjects), initial)
            history = fit_run(prepared, config.model, config.hyperparameters, train_config, config.seed, self.shape,
                              [OptunaPruning(trial, objective_of(self.spec))], resolve_device(self.spec.device),
                              initial).history
        except optuna.TrialPruned:
            trial.set_user_attr("seconds", time.perf_counter() - start)
            raise
        except HarlabError as exc:
            trial.set_user_attr("error", str(exc))
            return math.nan  # Optuna records the trial as failed and goes on
        kept = (history.best_epoch or len(history.val_loss)) - 1
        trial.set_user_attr("val_accuracy", history.val_accuracy[kept])
        trial.set_user_attr("epochs", len(history.loss))
        trial.set_user_attr("seconds", time.perf_counter() - start)
        if math.isnan(history.val_loss[kept]):
            trial.set_user_attr("error", "validation loss is NaN: training diverged")
        return history.monitored(objective_of(self.spec))[kept]


def _suggest(trial: optuna.Trial, key: str, dimension: SearchDimension) -> Any:
    if dimension.choices is not None:
        return trial.suggest_categorical(key, dimension.choices)
    if dimension.is_int:
        return trial.suggest_int(key, dimension.low, dimension.high, step=dimension.step or 1, log=dimension.log)
    return trial.suggest_float(key, dimension.low, dimension.high, step=dimension.step, log=dimension.log)


def open_study(spec: ExperimentSpec, data: WindowSet, out: Path,
               pruner: optuna.pruners.BasePruner | None = None) -> optuna.Study:
    """The study `spec.name` in OUT/optuna.db, created or resumed: trials a killed search left running are
    marked failed (they are not counted), and a study of another spec or other data is refused."""
    from sqlalchemy.exc import SQLAlchemyError

    optuna = import_optuna()
    out.mkdir(parents=True, exist_ok=True)
    database = out / SEARCH_DB
    try:
        storage = optuna.storages.RDBStorage(f"sqlite:///{database.resolve()}")
        study = optuna.create_study(storage=storage, study_name=spec.name, direction=direction(objective_of(spec)),
                                    load_if_exists=True,
                                    pruner=pruner or optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2))
    except SQLAlchemyError as exc:
        reason = " ".join(str(exc.orig if getattr(exc, "orig", None) else exc).split())[:200]
        raise DataError(database, f"not a readable Optuna study ({reason})",
                        "move it aside to start the search over, or choose another out folder") from None
    identity = json.loads(json.dumps({
        "spec": {k: v for k, v in spec.model_dump(mode="json").items() if k not in FREE_FIELDS},
        "data": split_record(data, spec.split)}))
    if "identity" not in study.user_attrs:
        study.set_user_attr("identity", identity)
    elif study.user_attrs["identity"] != identity:
        raise HarlabError(f"{out / SEARCH_DB} holds a search of another spec or other data under the name "
                          f"{spec.name!r}; choose another out folder")
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        # The lock says no other search runs here: this trial's process was killed. (_trial_id: storage's id.)
        storage.set_trial_user_attr(trial._trial_id, "error", "interrupted: its search was killed")
        storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)
    # A fresh search is seeded with the spec's seed; a resumed one must not redraw the first trials' values.
    study.sampler = optuna.samplers.TPESampler(seed=spec.seed + len(study.get_trials(deepcopy=False)))
    return study


def finished_trials(study: optuna.Study) -> int:
    """Trials that count toward `trials`: completed and pruned ones (not failed or interrupted ones)."""
    optuna = import_optuna()
    done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return len(study.get_trials(deepcopy=False, states=done))


def search(spec: ExperimentSpec, data: WindowSet, out: Path, trials: int, timeout: float | None = None,
           on_trial: Callable[[TrialRecord], None] = lambda record: None,
           on_start: Callable[[int, int], None] = lambda finished, planned: None,
           pruner: optuna.pruners.BasePruner | None = None) -> tuple[optuna.Study, SearchData]:
    """Run the trials of `spec`'s search still missing from OUT/optuna.db until `trials` have finished (or
    `timeout` seconds have passed); `on_start(finished, trials)` first, `on_trial` after every trial."""
    optuna = import_optuna()
    if not spec.search:
        raise HarlabError(f"spec {spec.name!r}, search: empty; harlab tune needs a search space, e.g. "
                          "[search] filters = {low = 16, high = 256, log = true}")
    parts = search_data(spec, data)
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # one line per trial comes from on_trial
    try:
        study = open_study(spec, data, out, pruner)
        finished = finished_trials(study)
        on_start(finished, trials)
        if finished < trials:
            study.optimize(Objective(spec, parts, (data.X.shape[2], data.window, len(data.classes))),
                           n_trials=trials - finished, timeout=timeout,
                           callbacks=[lambda _, trial: on_trial(TrialRecord.of(trial, objective_of(spec)))])
    finally:
        optuna.logging.set_verbosity(verbosity)
    return study, parts


@dataclass(frozen=True)
class TuneResult:
    """The search's trials and best one, the spec written for it, and the re-trained best's test accuracy."""

    trials: list[TrialRecord]
    best: TrialRecord
    best_spec: Path
    validation_subjects: list[int]
    test: Summary
    summary: str
    report: Path


def tune(spec: ExperimentSpec, data: WindowSet, out: Path, trials: int = 20, timeout: float | None = None,
         on_trial: Callable[[TrialRecord], None] = lambda record: None,
         on_start: Callable[[int, int], None] = lambda finished, planned: None,
         on_run: Callable[[RunResult], None] = lambda run: None, repeats: int | None = None,
         pruner: optuna.pruners.BasePruner | None = None) -> TuneResult:
    """Search (see `search`), write the best configuration as OUT/best.yaml, train it `repeats` times (default:
    the spec's) into OUT/best/ and score those runs on the test split; write OUT/report.html and OUT/tune.json."""
    with writing(out):  # one search per folder; a killed one releases it with its process
        study, parts = search(spec, data, out, trials, timeout, on_trial, on_start, pruner)
        objective = objective_of(spec)
        records = [TrialRecord.of(t, objective) for t in study.get_trials(deepcopy=False)]
        complete = [r for r in records if r.state == "complete"]
        if not complete:
            raise HarlabError(f"no trial of {spec.name} completed ({len(records)} tried, none kept to the end); "
                              "see the lines above, widen the search or give more `trials`")
        sign = 1 if direction(objective) == "minimize" else -1
        best = min(complete, key=lambda r: (sign * r.value, r.number))
        best_spec_path = write_best_spec(spec, best, parts, out / BEST_SPEC)
        best_spec = load_spec(best_spec_path, {"repeats": repeats} if repeats else None)
        best_dir = out / BEST_DIR
        if (best_dir / SPEC_FILE).exists() and not same_configuration(
                ResultsStore(best_dir).spec(), best_spec.model_dump(mode="json"), FREE_FIELDS):
            raise HarlabError(f"{best_dir} holds the re-training of an earlier best configuration; delete it to "
                              f"re-train the new best (trial {best.number})")
        store = run_experiment(best_spec, data, best_dir, callbacks=[_EachRun(on_run)])
        rows = store.rows()
        test = describe([row["accuracy"] for row in rows])
        subjects = ", ".join(map(str, parts.validation_subjects))
        summary = (f"best: trial {best.number} of {finished_trials(study)}, {best.outcome()} "
                   f"{best.params_text()}; chosen on validation subjects {subjects} (held out of the training "
                   f"split); test accuracy measured once, after the choice: {test.mean:.2f}% ± {test.std:.2f} "
                   f"over {_runs(test.runs)} of {best_spec_path}")
        report = write_report(spec, study, records, best, best_spec_path, parts, test, rows, out)
        atomic_write_json(out / SUMMARY, {
            "name": spec.name, "objective": f"{objective} ({direction(objective)}d)",
            "trials": [asdict(r) for r in records],
            "best": asdict(best), "best_spec": str(best_spec_path), "validation_subjects": parts.validation_subjects,
            "test_accuracy": asdict(test), "updated": now_iso()})
        return TuneResult(records, best, best_spec_path, parts.validation_subjects, test, summary, report)


class _EachRun(ExperimentCallback):
    def __init__(self, on_run: Callable[[RunResult], None]):
        self.on_run = on_run

    def on_run_end(self, run: FinishedRun) -> None:
        self.on_run(run.result)


def write_best_spec(spec: ExperimentSpec, best: TrialRecord, parts: SearchData, path: Path) -> Path:
    """OUT/best.yaml: the spec with the best trial's values fixed, no search, the same repeats, ready for
    `harlab experiment run`."""
    data = fixed_spec_data(spec, best.params)
    note = (f"Chosen by harlab tune: trial {best.number}, {best.outcome()} on validation subjects "
            f"{', '.join(map(str, parts.validation_subjects))} of the training split.")
    data = {"name": f"{spec.name}-best", "description": f"{spec.description} {note}".strip(),
            **{k: v for k, v in data.items() if k not in ("name", "description", "repeats")}, "repeats": spec.repeats}
    parse_spec(data, path)  # the file written is a valid spec
    text = f"# {note}\n# Run it with: harlab experiment run {path}\n" + yaml.safe_dump(data, sort_keys=False)
    atomic_write_bytes(path, text.encode("utf-8"))
    return path


def write_report(spec: ExperimentSpec, study: optuna.Study, records: list[TrialRecord], best: TrialRecord,
                 best_spec: Path, parts: SearchData, test: Summary, rows: list[dict[str, Any]], out: Path) -> Path:
    """OUT/report.html: the search space, every trial, Optuna's history and importance plots, the best
    configuration and the test accuracy of its re-training."""
    optuna = import_optuna()
    report = HtmlReport(f"harlab tune: {spec.name}", out / "figures")
    if spec.description:
        report.paragraph(spec.description)
    subjects = ", ".join(map(str, parts.validation_subjects))
    report.paragraph(f"Every trial trained on the training subjects except {subjects} and was scored on those "
                     f"validation subjects ({len(parts.validation)} windows); the search {direction(best.objective)}d "
                     f"{best.objective} and never saw the test split. The best configuration was chosen on validation "
                     f"subjects {subjects}; test accuracy measured once, after the choice, over "
                     f"{_runs(test.runs)} of it trained again.", "note")

    report.heading("Search space", "search-space")
    report.table(("setting", "values"), [(k, d.describe()) for k, d in spec.search.items()])
    report.preformatted(json.dumps({k: v for k, v in spec.model_dump(mode="json").items() if k != "search"},
                                   indent=2))

    report.heading("Trials", "trials")
    counts = {state: sum(r.state == state for r in records) for state in ("complete", "pruned", "fail")}
    report.paragraph(f"{len(records)} trials: {counts['complete']} complete, {counts['pruned']} pruned (median "
                     f"pruner on the per-epoch {best.objective}), {counts['fail']} failed or interrupted.", "note")
    report.table(("trial", "params", best.objective, "val accuracy", "state", "pruned", "epochs", "s"),
                 [(r.number, r.params_text(), _value(r.value, ".4f"), _value(r.val_accuracy, ".1%"), r.state,
                   f"at epoch {r.epochs}" if r.state == "pruned" else "", _value(r.epochs, "d"),
                   _value(r.seconds, ".1f")) for r in records])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        report.heading("Optimization history", "history")
        axes = optuna.visualization.matplotlib.plot_optimization_history(study, target_name=best.objective)
        report.figure(axes.figure, "optimization-history",
                      f"{best.objective} of every completed trial and the best so far.")
        report.heading("Parameter importances", "importances")
        complete = [r for r in records if r.state == "complete"]
        varying = [k for k in spec.search if len({repr(r.params.get(k)) for r in complete}) > 1]
        if len(complete) >= 2 and varying:
            axes = optuna.visualization.matplotlib.plot_param_importances(study, target_name=best.objective)
            report.figure(axes.figure, "param-importances", f"How much each searched setting explains of the "
                          f"{best.objective} of the completed trials (Optuna's default evaluator).")
        else:
            report.paragraph(f"No importances: they need at least 2 completed trials ({len(complete)} here) with "
                             "at least one searched setting taking different values.", "note")

    report.heading("Best configuration", "best")
    report.table(("setting", "value"), [(k, _short(v)) for k, v in best.params.items()],
                 f"Trial {best.number}: {best.outcome()}, validation accuracy "
                 f"{_value(best.val_accuracy, '.1%')}")
    report.paragraph(f"Written as {best_spec} (no search; run it with harlab experiment run).", "note")

    report.heading("Test accuracy of the re-trained best", "test")
    report.paragraph(f"Chosen on validation subjects {subjects}; test accuracy measured once, after the choice: "
                     f"{test.mean:.2f}% ± {test.std:.2f} (mean ± std over {_runs(test.runs)}, seeded and trained on "
                     f"the training split as the spec says; runs in {out / BEST_DIR}).")
    report.table(("repeat", "seed", "test accuracy %", "macro-F1 %", "s per fit"),
                 [(r["repeat"], r["seed"], f"{r['accuracy'] * 100:.2f}", f"{r['macro_f1'] * 100:.2f}",
                   f"{r['fit_seconds']:.1f}") for r in rows])
    add_environment(report, describe_environment())
    path = out / REPORT
    report.write(path)
    return path


def _runs(count: int) -> str:
    return f"{count} run" + ("" if count == 1 else "s")


def _value(value: float | None, fmt: str) -> str:
    return "" if value is None else format(value, fmt)
