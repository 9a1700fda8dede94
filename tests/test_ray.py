"""The Ray backend on a real local Ray instance of two worker processes: the same rows as training in-process,
resumable without duplicates, failing runs retried then left unfinished, and the data put into Ray once."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import ray
import torch
from conftest import synthetic_windows

from harlab.data.windowset import WindowSet
from harlab.errors import HarlabError
from harlab.experiments.backends import LocalBackend
from harlab.experiments.runner import ExperimentCallback, FinishedRun, run_experiment
from harlab.experiments.spec import ExperimentSpec, parse_spec
from harlab.integrations.ray import RayBackend, make_backend

COMPARED = ("key", "fold", "repeat", "seed", "accuracy", "confusion", "history")


def small_spec(seed: int = 0) -> ExperimentSpec:
    return parse_spec({"name": "grid", "model": "cnn", "repeats": 2, "epochs": 1, "batch_size": 16, "seed": seed,
                       "hyperparameters": {"filters": 4}, "grid": {"standardize": [False, True]}}, "test")


def fault_injection(control: Path) -> Callable[[], None]:
    """A setup hook for Ray's workers: a run whose seed has a file `control/<seed>` fails — always, or only on
    its first attempt when the file says `once`; each attempt is counted in `control/<seed>-<key>.attempts`."""

    def install() -> None:  # a nested function: Ray sends it to the workers by value
        from harlab.evaluation.runs import RunTrainer

        train = RunTrainer.run

        def run(self: RunTrainer, config: Any, repeat: int, *args: Any, **kwargs: Any) -> Any:
            flag = control / str(config.run_seed(repeat))
            if flag.exists():
                counter = control / f"{flag.name}-{config.key()}.attempts"
                with counter.open("a") as f:
                    f.write("attempt\n")
                attempts = len(counter.read_text().splitlines())
                if flag.read_text() == "always" or attempts == 1:
                    raise RuntimeError(f"injected failure of seed {config.run_seed(repeat)}")
            return train(self, config, repeat, *args, **kwargs)

        RunTrainer.run = run  # type: ignore[method-assign]

    return install


@pytest.fixture(scope="module")
def control(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A local Ray instance of two one-CPU workers for the module, with fault injection controlled by files."""
    folder = tmp_path_factory.mktemp("faults")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING", log_to_driver=False,
             runtime_env={"worker_process_setup_hook": fault_injection(folder)})
    yield folder
    ray.shutdown()


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Train in-process on one thread, as the Ray workers do, so that the floating-point sums agree."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def compared(rows: list[dict[str, Any]]) -> dict[tuple[str, str, int], dict[str, Any]]:
    return {(r["key"], r["fold"], r["repeat"]): {k: r[k] for k in COMPARED} for r in rows}


def test_ray_trains_the_same_runs_as_local_and_resumes(control: Path, one_thread: None, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    data, spec = synthetic_windows([1, 2, 3]), small_spec()
    local = run_experiment(spec, data, tmp_path / "local", backend=LocalBackend())
    puts: list[object] = []
    put = ray.put
    monkeypatch.setattr(ray, "put", lambda value, **kwargs: puts.append(value) or put(value, **kwargs))
    finished: list[int] = []
    epochs: list[None] = []

    class Watch(ExperimentCallback):  # runs trained elsewhere count their planned epochs when they end
        def on_run_end(self, run: FinishedRun) -> None:
            finished.append(run.result.repeat)
            epochs.extend([None] * run.epochs)

    store = run_experiment(spec, data, tmp_path / "ray", backend=RayBackend(), callbacks=[Watch()])
    assert len(local.rows()) == len(store.rows()) == 4 and len(finished) == len(epochs) == 4
    assert compared(store.rows()) == compared(local.rows())
    assert len(puts) == 1 and isinstance(puts[0], WindowSet)  # the data went into Ray once, for all 4 tasks

    rows = store.rows()
    again = run_experiment(spec, data, tmp_path / "ray", backend=RayBackend(), callbacks=[Watch()])
    assert again.rows() == rows and len(finished) == 4 and len(puts) == 1  # nothing trained, nothing put


def attempts(control: Path, seed: str) -> list[int]:
    return [len(path.read_text().splitlines()) for path in sorted(control.glob(f"{seed}-*.attempts"))]


def test_failing_runs_are_retried_then_left_unfinished(control: Path, tmp_path: Path, notices: list[str]) -> None:
    spec = small_spec(seed=100)  # seeds 100 and 101, for both configurations
    (control / "100").write_text("once")
    (control / "101").write_text("always")
    store = run_experiment(spec, synthetic_windows([1, 2, 3]), tmp_path / "faults", backend=RayBackend(max_retries=2))
    assert sorted(row["seed"] for row in store.rows()) == [100, 100]  # both seed-101 runs keep failing
    assert attempts(control, "100") == [2, 2]  # a failure and a successful retry, in each configuration
    assert attempts(control, "101") == [3, 3]  # a failure and 2 failed retries
    reported = [line for line in notices if "left unfinished" in line]
    assert len(reported) == 2 and all("repeat 2 failed after 2 retries" in line for line in reported)
    assert all("injected failure of seed 101" in line for line in reported)

    (control / "101").unlink()
    rows = store.rows()
    again = run_experiment(spec, synthetic_windows([1, 2, 3]), tmp_path / "faults", backend=RayBackend())
    assert again.rows()[:2] == rows and sorted(row["seed"] for row in again.rows()) == [100, 100, 101, 101]
    assert len({(r["key"], r["repeat"]) for r in again.rows()}) == 4  # no row twice


def test_backend_names_and_a_missing_ray_are_one_line_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    assert make_backend("local") is None  # this machine: the runner chooses between one process and several
    assert isinstance(make_backend("ray", "auto"), RayBackend)
    assert make_backend("ray", device="cuda").gpus == make_backend("ray", device="cuda:1").gpus > 0
    assert make_backend("ray", device="cpu").gpus == 0
    with pytest.raises(HarlabError, match="unknown backend 'dask'; choose one of local, ray"):
        make_backend("dask")
    with pytest.raises(HarlabError, match="needs backend=ray"):
        make_backend("local", "auto")
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(HarlabError, match=r"^backend=ray needs Ray: pip install 'harlab\[distributed\]'$"):
        make_backend("ray")


def test_the_cli_passes_the_backend(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from harlab.cli import app

    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"name": "x"}))
    result = CliRunner().invoke(app, ["experiment", "run", str(spec), "--backend", "dask"])
    assert isinstance(result.exception, HarlabError) and "unknown backend 'dask'" in str(result.exception)
