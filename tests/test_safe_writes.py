"""Hostile or unlucky output places: saving never deletes a user's folder, one process writes a results folder at
a time, a run stored twice counts once, and a full disk is one line with nothing half-written left behind."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pytest
from conftest import synthetic_windows
from typer.testing import CliRunner

from harlab import api
from harlab.api import run_training
from harlab.cli import app
from harlab.cli.flags import as_flags
from harlab.data import datasets
from harlab.deploy.bundle import MANIFEST, WEIGHTS, load_bundle, save_bundle
from harlab.errors import DataError, HarlabError
from harlab.experiments.runner import run_experiment
from harlab.experiments.spec import ExperimentSpec, parse_spec
from harlab.experiments.store import ResultsStore
from harlab.files import atomic_directory, atomic_write_json, exclusive
from harlab.models.registry import create_model
from harlab.reports.analysis import analyze
from harlab.reports.plots import save_figure
from harlab.training.settings import RepeatConfig

DATA = synthetic_windows([1, 2, 3])
SPEC = {"name": "tiny", "model": "cnn", "repeats": 2, "epochs": 1, "batch_size": 16, "hyperparameters": {"filters": 4}}


@pytest.fixture
def synthetic(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every command loads the small synthetic dataset."""
    monkeypatch.setattr(datasets, "load_tutorial_dataset", lambda *args, **kwargs: DATA)
    monkeypatch.setattr(api, "load_tutorial_dataset", lambda *args, **kwargs: DATA)


def bundle(directory: Path, accuracy: float = 0.5) -> Path:
    """A small (untrained) cnn bundle for the synthetic windows, its accuracy in the manifest."""
    model = create_model("cnn", len(DATA.channels), DATA.window, len(DATA.classes), filters=4)
    return save_bundle(directory, model, model_name="cnn", hyperparameters={"filters": 4},
                       channels=list(DATA.channels), window=DATA.window, step=DATA.step,
                       sampling_rate=DATA.sampling_rate, classes=list(DATA.classes), standardizer=None,
                       metrics={"accuracy": accuracy}, provenance={}, training={})


def users_folder(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "thesis.tex").write_text("years of work")
    return path


def leftovers(folder: Path) -> list[str]:
    """Temporary folders or files of an atomic write left beside the target."""
    return [p.name for p in folder.iterdir() if p.name.endswith((".part", ".old"))]


def one_line(exc: BaseException | None) -> str:
    assert isinstance(exc, HarlabError), exc
    assert "\n" not in str(exc)
    return str(exc)


# --- 1. saving replaces only harlab's own output ------------------------------------------------------------


def test_saving_over_a_users_folder_refuses_and_touches_nothing(tmp_path: Path) -> None:
    target = users_folder(tmp_path / "work")
    with pytest.raises(DataError, match="work: exists and is not a harlab bundle — choose a new folder"):
        bundle(target)
    assert [p.name for p in target.iterdir()] == ["thesis.tex"] and leftovers(tmp_path) == []
    (target / "thesis.tex").unlink()  # an empty folder may be used
    assert load_bundle(bundle(target)).manifest["model"] == "cnn"


def test_a_bundle_with_the_users_files_added_is_not_replaced(tmp_path: Path) -> None:
    target = bundle(tmp_path / "b")
    (target / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="not a harlab bundle"):
        bundle(target, 0.9)
    assert (target / "notes.txt").exists() and load_bundle(target).manifest["metrics"]["accuracy"] == 0.5


def test_an_existing_bundle_is_replaced_with_nothing_left_beside_it(tmp_path: Path) -> None:
    target = bundle(tmp_path / "b")
    bundle(target, 0.9)
    assert load_bundle(target).manifest["metrics"]["accuracy"] == 0.9
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


@pytest.mark.parametrize("name", [".", "..", "sub/.."])
def test_the_working_folder_is_never_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    work = tmp_path / "work"
    (work / "sub").mkdir(parents=True)
    monkeypatch.chdir(work)
    with pytest.raises(DataError, match="is the working folder"):
        bundle(Path(name))
    assert sorted(p.name for p in work.iterdir()) == ["sub"] and leftovers(tmp_path) == []


def test_a_file_or_a_link_is_not_a_folder_to_replace(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    (tmp_path / "link").symlink_to(bundle(tmp_path / "real"))
    for name in ("file", "link"):
        with pytest.raises(DataError, match="exists and is not a harlab bundle"):
            bundle(tmp_path / name)
    assert (tmp_path / "file").read_text() == "x" and (tmp_path / "link").is_symlink()


def test_a_failed_write_leaves_the_old_folder_whole_and_no_temporary_one(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    target = bundle(tmp_path / "b")
    with pytest.raises(RuntimeError), atomic_directory(target, "bundle") as tmp:
        (tmp / "half").write_text("x")
        raise RuntimeError("killed")
    replace = os.replace

    def swap_fails(src: Any, dst: Any) -> None:
        if str(src).endswith(".part") and Path(dst) == target:  # the new folder cannot be renamed in
            raise OSError(errno.EIO, "I/O error")
        replace(src, dst)

    monkeypatch.setattr(os, "replace", swap_fails)
    with pytest.raises(OSError, match="I/O error"):
        bundle(target, 0.9)
    assert load_bundle(target).manifest["metrics"]["accuracy"] == 0.5  # moved aside and back
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


def test_a_folder_filled_by_someone_else_meanwhile_is_left_alone(tmp_path: Path) -> None:
    target = tmp_path / "new"
    with pytest.raises(DataError, match="exists and is not a harlab dataset folder"), \
            atomic_directory(target, "dataset") as tmp:
        (tmp / "dataset.json").write_text("{}")
        users_folder(target)
    assert [p.name for p in target.iterdir()] == ["thesis.tex"] and leftovers(tmp_path) == []


def test_only_a_dataset_folder_is_replaced_by_data_import(tmp_path: Path) -> None:
    target = tmp_path / "ds"
    with atomic_directory(target, "dataset") as tmp:
        (tmp / "dataset.json").write_text('{"n": 1}')
        (tmp / "windows.npz").write_bytes(b"")
    with atomic_directory(target, "dataset") as tmp:
        (tmp / "dataset.json").write_text('{"n": 2}')
        (tmp / "windows.npz").write_bytes(b"")
    assert json.loads((target / "dataset.json").read_text()) == {"n": 2}
    (target / "windows.npz").unlink()  # a dataset.json of the user's own is not enough
    with pytest.raises(DataError, match="not a harlab dataset folder"), atomic_directory(target, "dataset"):
        pass
    with pytest.raises(DataError, match="not an empty folder"), atomic_directory(target):
        pass


def test_cli_train_save_refuses_a_users_folder_and_the_working_folder(
        synthetic: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    train = ["train", "--model", "cnn", "--param", "filters=4", "--repeats", "1", "--epochs", "1",
             "--out", str(tmp_path / "r"), "--save"]
    target = users_folder(tmp_path / "keep")
    result = runner.invoke(app, [*train, str(target)])
    assert "keep: exists and is not a harlab bundle" in one_line(result.exception)
    assert [p.name for p in target.iterdir()] == ["thesis.tex"]
    result = runner.invoke(app, [*train, str(tmp_path / "b")])
    assert result.exit_code == 0, result.output
    first = (tmp_path / "b" / WEIGHTS).stat().st_ino
    shutil.rmtree(tmp_path / "r")
    result = runner.invoke(app, [*train, str(tmp_path / "b")])  # an existing bundle is replaced
    assert result.exit_code == 0, result.output
    assert (tmp_path / "b" / WEIGHTS).stat().st_ino != first and (tmp_path / "b" / MANIFEST).is_file()
    shutil.rmtree(tmp_path / "r")
    monkeypatch.chdir(target)
    result = runner.invoke(app, [*train, "."])
    assert "is the working folder" in one_line(result.exception)
    assert [p.name for p in target.iterdir()] == ["thesis.tex"] and leftovers(tmp_path) == []


def test_cli_experiment_save_refuses_a_users_folder(synthetic: None, tmp_path: Path) -> None:
    run_experiment(parse_spec({**SPEC, "repeats": 1}, "tiny"), DATA, tmp_path / "exp")
    target = users_folder(tmp_path / "keep")
    result = CliRunner().invoke(app, ["experiment", "save", str(tmp_path / "exp"), "--to", str(target)])
    assert "keep: exists and is not a harlab bundle" in one_line(result.exception)
    assert [p.name for p in target.iterdir()] == ["thesis.tex"] and leftovers(tmp_path) == []


def test_core_ml_export_replaces_only_a_core_ml_package(tmp_path: Path) -> None:
    pytest.importorskip("coremltools")
    from harlab.deploy.coreml_export import export_coreml

    train = ["train", "--model", "cnn", "--param", "filters=4", "--repeats", "1", "--epochs", "1"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(datasets, "load_tutorial_dataset", lambda *args, **kwargs: DATA)
        patch.setattr(api, "load_tutorial_dataset", lambda *args, **kwargs: DATA)
        result = CliRunner().invoke(app, [*train, "--out", str(tmp_path / "r"), "--save", str(tmp_path / "b")])
    assert result.exit_code == 0, result.output
    loaded = load_bundle(tmp_path / "b")
    package = export_coreml(loaded, tmp_path / "m.mlpackage")
    export_coreml(loaded, package, flat_input=True)  # its own kind: replaced
    assert (package / "Manifest.json").is_file()
    target = users_folder(tmp_path / "keep.mlpackage")
    with pytest.raises(DataError, match="exists and is not a Core ML package"):
        export_coreml(loaded, target)
    assert [p.name for p in target.iterdir()] == ["thesis.tex"] and leftovers(tmp_path) == []


# --- 2. one writer per results folder; a run stored twice counts once ----------------------------------------


@pytest.fixture
def holder() -> Iterator[Any]:
    """Start another process holding a lock file (as another harlab would) until it is killed."""
    processes: list[subprocess.Popen] = []

    def hold(target: Path, lock: Path) -> subprocess.Popen:
        code = ("import sys; from pathlib import Path; from harlab.files import exclusive\n"
                "with exclusive(Path(sys.argv[1]), Path(sys.argv[2])):\n"
                "    print('held', flush=True); sys.stdin.read()")
        process = subprocess.Popen([sys.executable, "-c", code, str(target), str(lock)], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, text=True)
        processes.append(process)
        assert process.stdout is not None and process.stdout.readline() == "held\n"
        return process

    yield hold
    for process in processes:
        process.kill()
        process.wait()


def test_a_second_experiment_run_on_one_folder_is_refused_until_the_first_dies(
        synthetic: None, tmp_path: Path, holder: Any) -> None:
    out, spec = tmp_path / "exp", tmp_path / "tiny.yaml"
    spec.write_text(json.dumps(SPEC))  # JSON is YAML
    first = holder(out, out / ".lock")
    result = CliRunner().invoke(app, ["experiment", "run", str(spec), "--out", str(out)])
    # as the command line shows it (translating twice changes nothing, wherever the command line translates)
    assert as_flags(one_line(result.exception)) == (f"{out} is being written by another harlab process (pid "
                                                    f"{first.pid}); wait for it or choose another --out folder")
    assert not (out / "runs.jsonl").exists()
    first.kill()  # killed: the operating system releases its lock
    first.wait()
    result = CliRunner().invoke(app, ["experiment", "run", str(spec), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert len(ResultsStore(out).rows()) == 2


def test_a_second_train_on_one_results_folder_is_refused(synthetic: None, tmp_path: Path, holder: Any) -> None:
    out = tmp_path / "r"
    first = holder(out, out / ".lock")
    result = CliRunner().invoke(app, ["train", "--model", "cnn", "--param", "filters=4", "--repeats", "1",
                                      "--epochs", "1", "--out", str(out)])
    assert f"{out} is being written by another harlab process (pid {first.pid})" in one_line(result.exception)
    assert not (out / "runs.jsonl").exists()


def test_a_second_tune_on_one_folder_is_refused(tmp_path: Path, holder: Any) -> None:
    pytest.importorskip("optuna")
    from harlab.integrations.tune import tune

    spec = parse_spec({**SPEC, "search": {"filters": {"low": 2, "high": 4}}}, "tiny")
    first = holder(tmp_path / "t", tmp_path / "t" / ".lock")
    with pytest.raises(HarlabError, match=f"pid {first.pid}"):
        tune(spec, DATA, tmp_path / "t", trials=1)
    assert not (tmp_path / "t" / "optuna.db").exists()


def test_a_lock_held_by_this_process_may_be_taken_again(tmp_path: Path) -> None:
    with exclusive(tmp_path, tmp_path / ".lock"), exclusive(tmp_path, tmp_path / ".lock"):
        pass
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="file: exists and is not a folder — choose another out folder"), \
            exclusive(tmp_path / "file", tmp_path / "file" / ".lock"):
        pass


def test_a_run_stored_twice_counts_once_in_the_store_and_the_report(tmp_path: Path, notices: list[str]) -> None:
    spec = parse_spec({**SPEC, "grid": {"standardize": [False, True]}}, "tiny")
    store = ResultsStore.open(tmp_path, spec, {"d": 1}, {})
    for i, configuration in enumerate(spec.configurations()):
        for repeat in (1, 2):
            store.append({"key": configuration.config.key(), "label": configuration.label, "repeat": repeat,
                          "accuracy": 0.5 + 0.1 * i + 0.01 * repeat, "macro_f1": 0.5, "fit_seconds": 1.0,
                          "parameters": 10})
    before = analyze(store)
    notices.clear()
    lines = store.runs_path.read_text().splitlines()
    duplicate = {**json.loads(lines[0]), "accuracy": 0.99}  # the same run, pasted in again (and different)
    with store.runs_path.open("a") as f:
        f.write(json.dumps(duplicate) + "\n" + lines[3] + "\n")
    after = analyze(store)
    assert any("runs.jsonl: line(s) 5, 6 store a run again" in text for text in notices)
    assert [c.summary for c in after.configurations] == [c.summary for c in before.configurations]
    assert after.comparisons == before.comparisons and after.finished == 4


def test_a_damaged_row_is_one_line_naming_its_line(tmp_path: Path) -> None:
    store = ResultsStore.open(tmp_path, parse_spec({"name": "x"}, "x"), {"d": 1}, {})
    store.runs_path.write_bytes(b'{"key": "k", "repeat": 1}\n{"accuracy": 1}\n')
    with pytest.raises(DataError, match=r"runs.jsonl:2: not a run \(no key or repeat\)"):
        store.rows()
    store.runs_path.write_bytes(b'{"key": "k", "repeat": 1}\n\xff\xfe\n')
    with pytest.raises(DataError, match=r"runs\.jsonl:2: damaged row"):
        store.rows()


def test_train_counts_a_run_stored_twice_once(tmp_path: Path, notices: list[str]) -> None:
    out = tmp_path / "r"
    config = RepeatConfig(model="cnn", hyperparameters={"filters": 4}, epochs=1, repeats=1)
    spec = ExperimentSpec(name="test", **config.model_dump())
    [row] = run_training(spec, DATA, out).store.rows()
    with (out / "runs.jsonl").open("a") as f:  # the same run again, with another accuracy
        f.write(json.dumps({**row, "accuracy": 0.0}) + "\n")
    notices.clear()
    again = run_training(spec, DATA, out)
    assert any("runs.jsonl: line(s) 2 store a run again" in text for text in notices)
    assert again.analysis().configurations[0].summary.runs == 1 and again.store.rows()[0]["accuracy"] == row["accuracy"]


def test_a_results_folder_that_is_not_json_is_one_line(tmp_path: Path) -> None:
    config = RepeatConfig(model="cnn", hyperparameters={"filters": 4}, epochs=1, repeats=1)
    spec = ExperimentSpec(name="test", **config.model_dump())
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "spec.json").write_bytes(b"\xff\xfe\x00")
    (tmp_path / "file").write_bytes(b"\xff\xfe\x00")
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00")
    for name, problem in [("bin/spec.json", "not valid JSON"), ("file", "exists and is not a folder"),
                          ("bin.json", "a results file of an older harlab train")]:
        with pytest.raises(DataError, match=f"{name}: {problem}"):
            run_training(spec, DATA, tmp_path / name.split("/")[0])
    assert not (tmp_path / "bin" / "runs.jsonl").exists()


# --- 3. a full disk -------------------------------------------------------------------------------------------


@pytest.fixture
def full_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every fsync fails as on a full disk (after the bytes were handed to the kernel)."""

    def fsync(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", fsync)


def test_a_full_disk_is_one_line_and_keeps_the_old_file(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    path = tmp_path / "r.json"
    atomic_write_json(path, {"runs": 1})
    figure = plt.figure()
    request.getfixturevalue("full_disk")
    with pytest.raises(DataError, match=r"r\.json: disk full while writing — free space and run the same command "
                       r"again; nothing half-written was left"):
        atomic_write_json(path, {"runs": 2})
    with pytest.raises(DataError, match=r"fig\.png: disk full while writing"):
        save_figure(figure, tmp_path / "fig.png")
    assert json.loads(path.read_text()) == {"runs": 1} and sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


def test_a_full_disk_while_saving_a_bundle_keeps_the_old_one(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    target = bundle(tmp_path / "b")
    request.getfixturevalue("full_disk")
    with pytest.raises(DataError, match="b: disk full while writing"):
        bundle(target, 0.9)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]
    assert json.loads((target / MANIFEST).read_text())["metrics"]["accuracy"] == 0.5


def test_a_full_disk_while_storing_a_run_keeps_the_finished_runs(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    store = ResultsStore.open(tmp_path, parse_spec({"name": "x"}, "x"), {"d": 1}, {})
    store.append({"key": "k", "repeat": 1})
    real_open = Path.open

    def torn(self: Path, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        handle = real_open(self, mode, *args, **kwargs)
        if mode == "a":
            def write(text: str) -> int:
                handle.buffer.write(text[:7].encode())
                raise OSError(errno.ENOSPC, "No space left on device")
            handle.write = write
        return handle

    monkeypatch.setattr(Path, "open", torn)
    with pytest.raises(DataError, match=r"runs\.jsonl: disk full while writing — free space and run the same "
                       r"command again; the runs finished so far are kept"):
        store.append({"key": "k", "repeat": 2})
    monkeypatch.undo()
    assert store.finished() == {("k", "fixed", 1)}
    store = ResultsStore.open(tmp_path, parse_spec({"name": "x"}, "x"), {"d": 1}, {})  # the torn row is cut
    store.append({"key": "k", "repeat": 2})
    assert store.finished() == {("k", "fixed", 1), ("k", "fixed", 2)}


def test_a_full_disk_while_extracting_says_disk_full_not_corrupt_archive(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import zipfile

    from harlab.data import fetch

    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("data/x.txt", "1 2 3\n" * 100)

    def no_space(*args: Any, **kwargs: Any) -> Iterator[bytes]:
        raise OSError(errno.ENOSPC, "No space left on device")
        yield b""

    monkeypatch.setattr(fetch.Inflation, "blocks", no_space)
    with pytest.raises(DataError, match=r"out: disk full while writing") as info:
        fetch.safe_extract_zip(archive, tmp_path / "out")
    assert "corrupt" not in str(info.value) and sorted(p.name for p in tmp_path.iterdir()) == ["a.zip"]


def test_a_file_that_cannot_be_made_is_named_not_its_temporary_name(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(DataError) as info:
        atomic_write_json(blocker / "result.json", {"runs": 1})
    assert str(info.value).startswith(f"{blocker / 'result.json'}: cannot write (") and ".part" not in str(info.value)


def test_a_hand_edited_spec_json_is_one_line_naming_it_in_the_report(tmp_path: Path) -> None:
    store = ResultsStore.open(tmp_path, parse_spec(SPEC, "spec"), {"d": 1}, {})
    (tmp_path / "spec.json").write_text(json.dumps({**store.spec(), "name": 5, "repeats": "many"}))
    with pytest.raises(DataError, match=r"spec\.json: bad experiment spec: name: Input should be a valid string"):
        analyze(store)


@pytest.mark.parametrize(("edit", "problem"), [
    ({"accuracy": "high"}, "accuracy 'high' is not a fraction between 0 and 1"),
    ({"accuracy": 93.1}, "accuracy 93.1 is not a fraction"),
    ({"repeat": "1"}, "key, fold and repeat must be"),
    ({"fit_seconds": -1}, "fit_seconds -1 is not a number of seconds")])
def test_a_hand_edited_row_is_one_line_naming_its_line_and_value(tmp_path: Path, edit: dict[str, Any],
                                                                  problem: str) -> None:
    store = ResultsStore.open(tmp_path, parse_spec(SPEC, "spec"), {"d": 1}, {})
    store.append({"key": "k", "repeat": 1, "accuracy": 0.9, "fit_seconds": 1.0})
    store.append({"key": "k", "repeat": 2, "accuracy": 0.9, "fit_seconds": 1.0, **edit})
    with pytest.raises(DataError) as info:
        analyze(store)
    assert str(info.value).startswith(f"{store.runs_path}:2: not a run ({problem}")
    assert str(info.value).endswith("— delete that line and run again")


def test_a_pipe_posing_as_a_bundle_manifest_is_refused_without_waiting(tmp_path: Path) -> None:
    target = tmp_path / "b"
    target.mkdir()
    os.mkfifo(target / MANIFEST)
    (target / WEIGHTS).write_bytes(b"")
    with pytest.raises(DataError, match="exists and is not a harlab bundle"), atomic_directory(target, "bundle"):
        pass


def test_a_dataset_manifest_that_is_not_text_is_one_line(tmp_path: Path) -> None:
    from harlab.data.recordings import load_recordings_dataset

    (tmp_path / "dataset.json").write_bytes(bytes(range(256)))
    with pytest.raises(DataError, match=r"dataset\.json: unreadable \("):
        load_recordings_dataset(tmp_path)


def test_a_full_disk_while_caching_windows_goes_on_without_the_cache(request: pytest.FixtureRequest,
                                                                      notices: list[str]) -> None:
    said = notices
    request.getfixturevalue("full_disk")
    windows = datasets._cached("synthetic", "0" * 64, {}, lambda: DATA)
    assert windows is DATA and len(said) == 1
    assert "cannot write the cache (disk full while writing); continuing without it" in said[0]
