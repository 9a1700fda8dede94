"""MLflow tracking: a parent run per experiment folder, one nested child per run with its config, curves,
scores, tags and confusion matrix; no child logged twice on resume; embedded store, a real server, bad URIs."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import pytest
from conftest import synthetic_windows

from harlab.errors import HarlabError
from harlab.evaluation.runs import RunResult
from harlab.experiments.runner import ExperimentCallback, FinishedRun, run_experiment
from harlab.experiments.spec import ExperimentSpec, parse_spec
from harlab.experiments.store import ResultsStore
from harlab.integrations.tracking import ExperimentTracker, git_commit, resolve_tracking_uri


def tiny_spec(repeats: int = 2, grid: tuple[int, ...] = (3, 5)) -> ExperimentSpec:
    return parse_spec({"name": "tracked", "model": "cnn", "hyperparameters": {"filters": 4}, "epochs": 1,
                       "batch_size": 16, "validation_split": 0.34, "repeats": repeats,
                       "grid": {"kernel_size": list(grid)}}, "test")


def tracked(spec: ExperimentSpec, out: Path, uri: str | None = None, bundle: Path | None = None) -> list[str]:
    """Run `spec` with a tracker as `harlab experiment run --track` does; the labels of the runs trained."""
    trained: list[str] = []
    with ExperimentTracker.open(spec, out, uri) as tracker:

        class OnRun(ExperimentCallback):
            def on_run_end(self, run: FinishedRun) -> None:
                trained.append(run.configuration.label)
                tracker.on_run_end(run)

        store = run_experiment(spec, synthetic_windows([1, 2, 3, 4]), out, callbacks=[OnRun()])
        report = out / "report.html"
        report.write_text("<html>report</html>")
        tracker.finish(store, report, bundle)
    return trained


def children(client: Any, parent: Any) -> list[Any]:
    return client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")


def the_parent(client: Any, name: str = "tracked") -> Any:
    experiment = client.get_experiment_by_name(name)
    runs = client.search_runs([experiment.experiment_id], f"tags.`harlab.spec` = '{name}'")
    assert len(runs) == 1, "one parent run per results folder"
    return runs[0]


@pytest.fixture(autouse=True)
def no_ambient_uri(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def test_embedded_store_logs_parent_and_nested_children_once(tmp_path: Path) -> None:
    out, bundle = tmp_path / "exp", tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "model.json").write_text("{}")
    spec = tiny_spec()
    assert len(tracked(spec, out, bundle=bundle)) == 4
    uri = f"sqlite:///{out.resolve()}/mlflow.db"
    client = mlflow.MlflowClient(uri)
    parent = the_parent(client)
    commit = git_commit()
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["harlab.dataset"] == "synthetic"
    assert parent.data.tags["harlab.dataset.sha256"] == "0" * 64
    assert parent.data.tags["harlab.version"]
    assert parent.data.tags.get("harlab.git_commit") == commit
    assert {a.path for a in client.list_artifacts(parent.info.run_id)} == {"report.html", "spec.json", "bundle"}
    assert [a.path for a in client.list_artifacts(parent.info.run_id, "bundle/bundle")] == ["bundle/bundle/model.json"]
    assert parent.info.artifact_uri.startswith((out / "mlartifacts").resolve().as_uri())

    rows = {(r["label"], r["repeat"]): r for r in ResultsStore(out).rows()}
    runs = children(client, parent)
    assert len(runs) == 4
    for child in runs:
        tags, params, metrics = child.data.tags, child.data.params, child.data.metrics
        row = rows[tags["harlab.label"], int(tags["harlab.repeat"])]
        assert child.info.status == "FINISHED"
        assert tags["mlflow.parentRunId"] == parent.info.run_id
        assert tags["harlab.dataset"] == "synthetic" and tags["harlab.dataset.sha256"] == "0" * 64
        assert tags["harlab.seed"] == str(row["seed"]) and tags.get("harlab.git_commit") == commit
        assert params["model"] == "cnn" and params["hyperparameters.filters"] == "4"
        assert params["hyperparameters.kernel_size"] == str(row["config"]["hyperparameters"]["kernel_size"])
        assert params["label"] == row["label"] and params["fold"] == "fixed"
        assert params["repeat"] == str(row["repeat"]) and params["seed"] == str(row["seed"])
        assert params["base_seed"] == "0" and params["epochs"] == "1"
        assert metrics["test_accuracy"] == pytest.approx(row["accuracy"])
        assert metrics["macro_f1"] == pytest.approx(row["macro_f1"])
        assert metrics["fit_seconds"] == pytest.approx(row["fit_seconds"])
        for name in ("loss", "accuracy", "val_loss", "val_accuracy"):
            history = client.get_metric_history(child.info.run_id, name)
            assert [m.step for m in history] == [1]
            assert history[0].value == pytest.approx(row["history"][name][0])
        [artifact] = client.list_artifacts(child.info.run_id)
        assert artifact.path == "confusion.png"
        local = client.download_artifacts(child.info.run_id, "confusion.png", str(tmp_path))
        assert Path(local).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # An interruption left one child half-logged: resuming trains nothing, replaces it, and logs no duplicate.
    half = runs[0]
    client.update_run(half.info.run_id, status="RUNNING")
    assert tracked(spec, out) == []
    assert the_parent(client).info.run_id == parent.info.run_id
    again = children(client, parent)
    assert len(again) == 4 and all(c.info.status == "FINISHED" for c in again)
    assert half.info.run_id not in {c.info.run_id for c in again}
    assert sorted((c.data.tags["harlab.label"], c.data.tags["harlab.repeat"]) for c in again) == sorted(
        (c.data.tags["harlab.label"], c.data.tags["harlab.repeat"]) for c in runs)


def test_runs_untracked_or_failed_to_log_are_logged_when_it_finishes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                      notices: list[str]) -> None:
    out = tmp_path / "exp"
    run_experiment(tiny_spec(repeats=1, grid=(3,)), synthetic_windows([1, 2, 3, 4]), out)  # repeat 1 without --track
    upload = mlflow.MlflowClient.log_artifact
    failed: list[str] = []

    def flaky(self: Any, run_id: str, local_path: str, artifact_path: str | None = None) -> None:
        if local_path.endswith("confusion.png") and not failed:  # repeat 2's, after its child run was created
            failed.append(run_id)
            raise mlflow.exceptions.MlflowException("store hiccup")
        upload(self, run_id, local_path, artifact_path)

    monkeypatch.setattr(mlflow.MlflowClient, "log_artifact", flaky)
    assert tracked(tiny_spec(repeats=2, grid=(3,)), out) == ["kernel_size=3"]  # training went on
    assert any("MLflow tracking at sqlite:" in text for text in notices)
    client = mlflow.MlflowClient(f"sqlite:///{out.resolve()}/mlflow.db")
    runs = children(client, the_parent(client))
    assert sorted(c.data.tags["harlab.repeat"] for c in runs) == ["1", "2"]
    assert all(c.info.status == "FINISHED" for c in runs) and failed[0] not in {c.info.run_id for c in runs}
    assert all(client.list_artifacts(c.info.run_id) for c in runs)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """A real `mlflow server` on a free localhost port, with its own SQLite store and served artifacts."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = (tmp_path / "server.log").open("wb")
    command = [str(Path(sys.executable).with_name("mlflow")), "server", "--host", "127.0.0.1", "--port", str(port),
               "--workers", "1", "--backend-store-uri", f"sqlite:///{tmp_path}/server.db",
               "--artifacts-destination", str(tmp_path / "server-artifacts")]
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                               env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"})
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not start: {(tmp_path / 'server.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield uri
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # the server and the workers it started
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def test_tracks_to_a_real_server(server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server)  # the environment names the server
    out = tmp_path / "exp"
    assert tracked(tiny_spec(repeats=1, grid=(3,)), out) == ["kernel_size=3"]
    assert not (out / "mlflow.db").exists()
    client = mlflow.MlflowClient(server)
    parent = the_parent(client)
    [child] = children(client, parent)
    assert child.data.params["hyperparameters.kernel_size"] == "3"
    assert child.data.metrics["test_accuracy"] == pytest.approx(ResultsStore(out).rows()[0]["accuracy"])
    assert [m.step for m in client.get_metric_history(child.info.run_id, "loss")] == [1]
    assert [a.path for a in client.list_artifacts(child.info.run_id)] == ["confusion.png"]
    assert "report.html" in {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert tracked(tiny_spec(repeats=1, grid=(3,)), out) == []  # resumed against the server: no duplicate
    assert len(children(client, parent)) == 1


def test_a_file_store_named_by_uri_works(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "false")
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE")  # restored to unset after the test, whatever open() sets
    spec, uri = tiny_spec(repeats=1, grid=(3,)), (tmp_path / "mlruns").as_uri()
    [configuration] = spec.configurations()
    run = RunResult(1, 0, 0.75, 0.7, {}, [[3, 1], [0, 4]], {"loss": [0.9, 0.5], "accuracy": [0.6, 0.8]}, None, [],
                    1.5, 100, None)
    with ExperimentTracker.open(spec, tmp_path / "exp", uri) as tracker:
        tracker.on_run_end(FinishedRun(configuration, run, 1))
        tracker.on_run_end(FinishedRun(configuration, run, 1))  # the same run again: logged once
    client = mlflow.MlflowClient(uri)
    parent = the_parent(client)
    assert parent.info.status == "FINISHED"  # ended on leaving the block, even without finish()
    [child] = children(client, parent)
    assert [(m.step, m.value) for m in client.get_metric_history(child.info.run_id, "accuracy")] == [(1, 0.6), (2, 0.8)]
    assert child.data.metrics["test_accuracy"] == 0.75 and "val_loss" not in child.data.metrics


def test_tracking_uri_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_tracking_uri(tmp_path) == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://env:5000")
    assert resolve_tracking_uri(tmp_path) == "http://env:5000"
    assert resolve_tracking_uri(tmp_path, "databricks") == "databricks"  # the argument wins
    assert resolve_tracking_uri(tmp_path, f"file:{tmp_path}/mlruns").startswith("file:")


@pytest.mark.parametrize("uri", ["ftp://x", "mlruns", "s3://bucket/path"])
def test_unknown_scheme_is_one_line(uri: str, tmp_path: Path) -> None:
    with pytest.raises(HarlabError, match=r"unsupported scheme; use one of http://, https://, file:") as error:
        ExperimentTracker.open(tiny_spec(), tmp_path, uri)
    assert uri in str(error.value) and "\n" not in str(error.value)


def test_unreachable_server_fails_fast_with_one_line(tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(HarlabError, match=r"MLflow server http://127.0.0.1:9 is unreachable") as error:
        ExperimentTracker.open(tiny_spec(), tmp_path / "exp", "http://127.0.0.1:9")
    assert time.monotonic() - started < 10 and "\n" not in str(error.value)
    assert not (tmp_path / "exp").exists()


def test_missing_mlflow_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)  # `import mlflow` raises ImportError
    with pytest.raises(HarlabError) as error:
        ExperimentTracker.open(tiny_spec(), tmp_path)
    assert str(error.value) == "track=true needs MLflow: pip install 'harlab[track]'"


def test_experiment_run_track_from_the_command_line(real_data: Path, tmp_path: Path) -> None:
    import mlflow
    from typer.testing import CliRunner

    from harlab.cli import app

    spec = tmp_path / "tiny.toml"
    spec.write_text('name = "tiny-cli"\nmodel = "cnn"\ndataset = "hapt"\nrepeats = 2\nepochs = 1\n'
                    "hyperparameters = { filters = 4 }\n")
    runner = CliRunner()
    result = runner.invoke(app, ["experiment", "run", str(spec), "--out", str(tmp_path / "r"), "--data-dir",
                                 str(real_data), "--track"])
    assert result.exit_code == 0, result.output
    client = mlflow.MlflowClient(f"sqlite:///{(tmp_path / 'r' / 'mlflow.db').resolve()}")
    parent = the_parent(client, "tiny-cli")
    assert len(children(client, parent)) == 2
    assert "report.html" in [a.path for a in client.list_artifacts(parent.info.run_id)]
    result = runner.invoke(app, ["experiment", "run", str(spec), "--out", str(tmp_path / "r2"), "--tracking-uri",
                                 "sqlite:///x.db"])
    assert str(result.exception) == "--tracking-uri needs --track"
