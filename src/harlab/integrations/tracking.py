"""MLflow tracking of experiments (`pip install 'harlab[track]'`).

One MLflow experiment per harlab experiment (named after the spec), one parent run per results folder and
tracking store (reopened when the experiment resumes; its id is kept in `<out>/mlflow.json`), and one nested
child run per (configuration, fold, repeat) with the resolved configuration as params, the per-epoch curves and
test scores as metrics, provenance tags and the confusion matrix as an artifact. A child that is already logged
under the parent is never logged twice. The default store is embedded in the results folder: a SQLite file
`<out>/mlflow.db` with artifacts under `<out>/mlartifacts`; no server is needed.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from harlab.environment import package_version
from harlab.errors import HarlabError
from harlab.evaluation.runs import RunResult
from harlab.experiments.runner import ExperimentCallback, FinishedRun
from harlab.experiments.spec import ExperimentSpec
from harlab.experiments.store import DATASET_FILE, ResultsStore
from harlab.files import atomic_write_json
from harlab.reports.plots import confusion_figure, save_figure

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from mlflow import MlflowClient

STATE_FILE = "mlflow.json"
SCHEMES = ("http", "https", "file", "sqlite", "databricks")
MISSING_MLFLOW = "track=true needs MLflow: pip install 'harlab[track]'"
PARENT_TAG, RUN_NAME_TAG = "mlflow.parentRunId", "mlflow.runName"
HEALTH_TIMEOUT_S = 3.0
EPOCH_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy", "val_balanced_accuracy", "val_macro_f1")
MAX_PARAMS_PER_BATCH, MAX_METRICS_PER_BATCH = 100, 1000  # MLflow's log_batch limits

Place = tuple[str, str, int]  # (configuration key, fold, repeat): what identifies a run, as in the results store


def resolve_tracking_uri(out: Path, tracking_uri: str | None = None) -> str:
    """The tracking URI to log to: `tracking_uri`, else $MLFLOW_TRACKING_URI, else a SQLite file in `out`;
    a scheme MLflow cannot track to here is a one-line HarlabError."""
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri(out)
    scheme = "databricks" if uri == "databricks" else urlsplit(uri).scheme.lower()
    if scheme not in SCHEMES:
        raise HarlabError(f"tracking URI {uri!r}: unsupported scheme; use one of http://, https://, file:, sqlite:, "
                          "databricks")
    return uri


def default_tracking_uri(out: Path) -> str:
    """The embedded store of the results folder `out`: `sqlite:///<out>/mlflow.db`."""
    return f"sqlite:///{(out / 'mlflow.db').resolve()}"


def check_reachable(uri: str) -> None:
    """For an http(s) URI, fail with one line unless a server answers `GET <uri>/health` within 3 s (any HTTP
    answer counts: a server behind authentication may refuse it)."""
    if urlsplit(uri).scheme.lower() not in ("http", "https"):
        return
    try:
        urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=HEALTH_TIMEOUT_S).close()
    except urllib.error.HTTPError:
        return
    except (OSError, ValueError, http.client.HTTPException) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise HarlabError(f"MLflow server {uri} is unreachable ({_one_line(reason)}); start it or set another "
                          "tracking_uri=URI") from None


def git_commit() -> str | None:
    """`git rev-parse HEAD` in the current folder, or None where that fails."""
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and commit else None


def flatten(values: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested settings as MLflow params: dotted keys (`hyperparameters.filters`), string values."""
    flat: dict[str, str] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat |= flatten(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = json.dumps(value) if isinstance(value, list) else str(value)
    return flat


def _one_line(exc: object) -> str:
    return " ".join(str(exc).split())[:400]


def _import_mlflow() -> Any:
    try:
        import mlflow
    except ImportError:
        raise HarlabError(MISSING_MLFLOW) from None
    return mlflow


def _store_errors() -> tuple[type[Exception], ...]:
    """What a failing or damaged tracking store raises: MLflow's own errors, file errors, and the database
    errors of its SQL store (a damaged mlflow.db surfaces as SQLAlchemy's, not MLflow's)."""
    from sqlalchemy.exc import SQLAlchemyError

    return _import_mlflow().exceptions.MlflowException, OSError, SQLAlchemyError


def _failure(uri: str, exc: Exception) -> HarlabError:
    fix = ("; the store's database is damaged: move it aside (a new one is made) or set another tracking_uri=URI"
           if "DatabaseError" in type(exc).__name__ else "")
    return HarlabError(f"MLflow tracking at {uri} failed: {_one_line(exc)}{fix}")


class ExperimentTracker(ExperimentCallback):
    """Logs one invocation of an experiment to MLflow; use as a context manager (see `open`) and hand it to
    `run_experiment` as a callback: every stored run becomes a child run."""

    def __init__(self, spec: ExperimentSpec, out: Path, uri: str, client: MlflowClient, experiment_id: str,
                 parent_id: str):
        self.spec, self.out, self.uri, self.client = spec, out, uri, client
        self.experiment_id, self.parent_id = experiment_id, parent_id
        commit = git_commit()
        self.tags = {"harlab.version": package_version() or "unknown",
                     **({"harlab.git_commit": commit, "mlflow.source.git.commit": commit} if commit else {})}
        self.logged: set[Place] = set()
        self.failed = False
        self.ended = False
        self._dataset: dict[str, Any] = {}

    @classmethod
    def open(cls, spec: ExperimentSpec, out: Path, tracking_uri: str | None = None) -> ExperimentTracker:
        """Start (or, when `out` was tracked to the same store before, reopen) the parent run of experiment
        `spec` with results in `out`. `tracking_uri` (default: $MLFLOW_TRACKING_URI, else the embedded store in
        `out`) must be reachable; every failure is a one-line HarlabError."""
        uri = resolve_tracking_uri(out, tracking_uri)
        mlflow = _import_mlflow()
        check_reachable(uri)
        embedded = uri == default_tracking_uri(out)
        if urlsplit(uri).scheme.lower() == "file":  # asked for by name: MLflow 3 refuses its file store unless allowed
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        if embedded:
            out.mkdir(parents=True, exist_ok=True)
        try:
            client = mlflow.MlflowClient(tracking_uri=uri)
            experiment = client.get_experiment_by_name(spec.name)
            if experiment is None:
                location = (out / "mlartifacts").resolve().as_uri() if embedded else None
                experiment_id = client.create_experiment(spec.name, artifact_location=location)
            elif experiment.lifecycle_stage == "deleted":
                raise HarlabError(f"MLflow experiment {spec.name!r} is deleted in {uri}; restore it (mlflow "
                                  f"experiments restore --experiment-id {experiment.experiment_id}) or pass "
                                  "another tracking_uri=URI")
            else:
                experiment_id = experiment.experiment_id
            parent_id = cls._previous_parent(client, out, uri, experiment_id)
            if parent_id is None:
                parent_id = client.create_run(experiment_id, tags={"harlab.spec": spec.name,
                                                                   "harlab.results": str(out.resolve())},
                                              run_name=spec.name).info.run_id
                parents = {**cls._parents(out), uri: {"experiment_id": experiment_id, "run_id": parent_id}}
                atomic_write_json(out / STATE_FILE, {"parents": parents})
            else:
                client.update_run(parent_id, status="RUNNING")
            client.log_dict(parent_id, spec.model_dump(mode="json"), "spec.json")
            tracker = cls(spec, out, uri, client, experiment_id, parent_id)
            if not tracker._dataset_record():
                tracker._tag_parent()
            tracker._resume()
        except _store_errors() as exc:
            raise _failure(uri, exc) from None
        return tracker

    @staticmethod
    def _parents(out: Path) -> dict[str, Any]:
        """`<out>/mlflow.json`: the parent run of this folder in each store it was tracked to, by tracking URI."""
        try:
            parents = json.loads((out / STATE_FILE).read_text())["parents"]
        except (OSError, json.JSONDecodeError, KeyError, TypeError):
            return {}
        return parents if isinstance(parents, dict) else {}

    @classmethod
    def _previous_parent(cls, client: MlflowClient, out: Path, uri: str, experiment_id: str) -> str | None:
        """The parent run an earlier invocation on `out` left in this store and experiment, if it still exists."""
        previous = cls._parents(out).get(uri)
        if not isinstance(previous, dict) or previous.get("experiment_id") != experiment_id:
            return None
        try:
            run = client.get_run(str(previous.get("run_id")))
        except _import_mlflow().exceptions.MlflowException:
            return None
        return run.info.run_id if run.info.lifecycle_stage == "active" else None

    def _resume(self) -> None:
        """Note the children already logged under the parent; delete those an interruption left half-logged."""
        self.logged.clear()
        token = None
        while True:
            page = self.client.search_runs([self.experiment_id], f"tags.{PARENT_TAG} = '{self.parent_id}'",
                                           max_results=1000, page_token=token)
            for run in page:
                tags = run.data.tags
                if run.info.status == "FINISHED" and {"harlab.key", "harlab.fold", "harlab.repeat"} <= tags.keys():
                    self.logged.add((tags["harlab.key"], tags["harlab.fold"], int(tags["harlab.repeat"])))
                else:
                    self.client.delete_run(run.info.run_id)
            token = page.token
            if not token:
                break

    def _dataset_record(self) -> dict[str, Any]:
        """The results folder's dataset record ({} until the store has written it); the first time it is read,
        its provenance joins the tags and the parent is tagged with it."""
        if not self._dataset and (self.out / DATASET_FILE).exists():
            self._dataset = json.loads((self.out / DATASET_FILE).read_text())
            provenance = self._dataset.get("provenance", {})
            self.tags |= {"harlab.dataset": str(provenance.get("dataset")),
                          "harlab.dataset.source": str(provenance.get("source")),
                          "harlab.dataset.sha256": str(provenance.get("sha256"))}
            self._tag_parent()
        return self._dataset

    def _tag_parent(self) -> None:
        from mlflow.entities import RunTag

        self.client.log_batch(self.parent_id, tags=[RunTag(k, v) for k, v in self.tags.items()])

    def __enter__(self) -> ExperimentTracker:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self.ended:
            return
        status = "FINISHED" if exc is None else "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
        try:
            self.client.set_terminated(self.parent_id, status)
        except Exception:  # the store is gone too: keep the error that ended the experiment
            if exc is None:
                raise
        self.ended = True

    def on_run_end(self, run: FinishedRun) -> None:
        """Log one finished run as a child of the parent. Tracking never stops training: a failure is reported
        in one line and `finish` logs the run again."""
        if self.failed:
            return
        config = run.configuration.config
        try:
            self._log(config.key(), run.configuration.label, config.model_dump(mode="json"), run.result)
        except _store_errors() as exc:
            self.failed = True
            logger.warning(f"MLflow tracking at {self.uri} failed ({_one_line(exc)}); training goes on, the runs "
                           "are logged when the experiment finishes")

    def _log(self, key: str, label: str, config: dict[str, Any], run: RunResult) -> None:
        """One child run, unless one for the same (configuration, fold, repeat) is already under the parent."""
        if (key, run.fold, run.repeat) in self.logged:
            return
        from mlflow.entities import Metric, Param
        from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH

        dataset = self._dataset_record()
        tags = {**self.tags, PARENT_TAG: self.parent_id, "harlab.key": key, "harlab.label": label,
                "harlab.fold": run.fold, "harlab.repeat": str(run.repeat), "harlab.seed": str(run.seed)}
        child = self.client.create_run(self.experiment_id, tags=tags, run_name=f"{label} {run.fold} #{run.repeat}")
        run_id = child.info.run_id
        settings = {("base_seed" if k == "seed" else k): v for k, v in config.items()}
        params = flatten({**settings, "label": label, "fold": run.fold, "repeat": run.repeat, "seed": run.seed})
        params_list = [Param(k, v[:MAX_PARAM_VAL_LENGTH]) for k, v in params.items()]
        now = int(time.time() * 1000)
        metrics = [Metric(name, float(value), now, epoch) for name in EPOCH_METRICS
                   for epoch, value in enumerate(run.history.get(name, []), 1)]
        metrics += [Metric(name, float(value), now, 0) for name, value in
                    (("test_accuracy", run.accuracy), ("macro_f1", run.macro_f1), ("fit_seconds", run.fit_seconds),
                     ("balanced_accuracy", run.balanced_accuracy)) if value is not None]
        for i in range(0, len(params_list), MAX_PARAMS_PER_BATCH):
            self.client.log_batch(run_id, params=params_list[i:i + MAX_PARAMS_PER_BATCH])
        for i in range(0, len(metrics), MAX_METRICS_PER_BATCH):
            self.client.log_batch(run_id, metrics=metrics[i:i + MAX_METRICS_PER_BATCH])
        classes = dataset.get("classes") or [str(i) for i in range(len(run.confusion))]
        with tempfile.TemporaryDirectory() as tmp:
            figure = confusion_figure(run.confusion, classes, f"{self.spec.name}: {label}, {run.fold} #{run.repeat}")
            save_figure(figure, Path(tmp) / "confusion.png")
            self.client.log_artifact(run_id, str(Path(tmp) / "confusion.png"))
        self.client.set_terminated(run_id, "FINISHED")
        self.logged.add((key, run.fold, run.repeat))

    def finish(self, store: ResultsStore, report_path: Path, bundle: Path | None = None) -> None:
        """Log every run of `store` not logged yet (trained before tracking, or whose logging failed), then
        the HTML report (and a bundle folder, if given) to the parent run, and end it."""
        errors = _store_errors()
        try:
            self._resume()  # a run whose logging failed may have left a half-logged child
            self._dataset_record()
            for row in store.rows():
                run = RunResult(**{k: row[k] for k in RunResult.__dataclass_fields__ if k in row})
                self._log(row["key"], row["label"], row["config"], run)
            self.client.log_artifact(self.parent_id, str(report_path))
            if bundle is not None:
                self.client.log_artifacts(self.parent_id, str(bundle), f"bundle/{bundle.name}")
            self.client.set_terminated(self.parent_id, "FINISHED")
        except errors as exc:
            raise _failure(self.uri, exc) from None
        self.ended = True
