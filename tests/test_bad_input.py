"""Every bad input is one line that names the file (and the line, where there is one), never a
traceback, and never leaves a half-written cache behind."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import no_downloads
from hapt_layout import signal_name, write_hapt_rawdata
from uci_layout import INNER_ZIP, OUTER_ZIP, pack_inner_zip, pack_outer_zip, signal_file, write_uci_har

from harlab import files
from harlab.data import hapt, uci_har
from harlab.data.datasets import load_dataset
from harlab.errors import DataError, HarlabError


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    no_downloads(monkeypatch)


@pytest.fixture(autouse=True)
def no_half_written_cache(isolated_cache: Path):
    """After every test here (each ends in a failed load), the windows cache holds nothing at all."""
    yield
    windows = isolated_cache / "windows"
    assert not windows.exists() or list(windows.iterdir()) == []
    assert list(isolated_cache.rglob("*.part")) == []


def failure(call, *args, error: type[Exception] = DataError, **kwargs) -> str:
    """The one-line message of the error `call(*args, **kwargs)` raises."""
    with pytest.raises(error) as info:
        call(*args, **kwargs)
    text = str(info.value)
    assert "\n" not in text, text
    assert "Traceback" not in text
    return text


def edit_line(path: Path, line: int, edit) -> None:
    """Replace 1-based line `line` of a text file with `edit(old_line)`."""
    lines = path.read_text().splitlines()
    lines[line - 1] = edit(lines[line - 1])
    path.write_text("".join(f"{text}\n" for text in lines))


def set_field(path: Path, line: int, column: int, text: str) -> None:
    def edit(old: str) -> str:
        fields = old.split()
        fields[column - 1] = text
        return " ".join(fields)

    edit_line(path, line, edit)


def drop_last_line(path: Path) -> None:
    path.write_text("".join(f"{text}\n" for text in path.read_text().splitlines()[:-1]))


# --- UCI HAR -------------------------------------------------------------------------------------------------


@pytest.fixture
def uci(tmp_path: Path) -> tuple[Path, Path]:
    """(data dir, the extracted `UCI HAR Dataset` folder inside DIR/uci-har/)."""
    folder = write_uci_har(tmp_path / "data" / uci_har.NAME)
    return tmp_path / "data", folder


def load_uci(data_dir: Path) -> str:
    return failure(load_dataset, "uci-har", data_dir, quiet=True)


def test_missing_data_dir(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-folder"
    assert load_uci(missing).startswith(f"{missing}: data folder does not exist")


def test_missing_signal_file(uci) -> None:
    data_dir, folder = uci
    path = signal_file(folder, "test", "body_gyro_z")
    path.unlink()
    assert load_uci(data_dir).startswith(f"{path}: file not found")


def test_missing_subject_file(uci) -> None:
    data_dir, folder = uci
    path = folder / "train" / "subject_train.txt"
    path.unlink()
    assert load_uci(data_dir).startswith(f"{path}: file not found")


def test_missing_activity_labels(uci) -> None:
    data_dir, folder = uci
    (folder / "activity_labels.txt").unlink()
    assert load_uci(data_dir).startswith(f"{folder}: no activity_labels.txt inside")


def uci_archive(tmp_path: Path, kind: str) -> tuple[Path, Path]:
    """(data dir, the damaged archive in DIR/uci-har/)."""
    folder = write_uci_har(tmp_path / "written")
    inner = pack_inner_zip(folder, tmp_path / "staging" / INNER_ZIP)
    target = tmp_path / "data" / uci_har.NAME
    target.mkdir(parents=True)
    data = inner.read_bytes()
    if kind == "truncated":
        archive = target / INNER_ZIP
        archive.write_bytes(data[: len(data) // 2])
    elif kind == "corrupt":
        archive = target / INNER_ZIP
        archive.write_bytes(np.random.default_rng(0).bytes(len(data)))
    else:  # an intact download archive holding a truncated inner zip
        inner.write_bytes(data[: len(data) // 2])
        archive = pack_outer_zip(inner, target / OUTER_ZIP)
    return tmp_path / "data", archive


@pytest.mark.parametrize("kind", ["truncated", "corrupt"])
def test_unreadable_zip(tmp_path: Path, kind: str) -> None:
    data_dir, archive = uci_archive(tmp_path, kind)
    assert load_uci(data_dir).startswith(f"{archive}: not a readable zip archive")


def test_truncated_inner_zip(tmp_path: Path) -> None:
    data_dir, archive = uci_archive(tmp_path, "truncated-inner")
    assert load_uci(data_dir).startswith(f"{archive / INNER_ZIP}: inner archive is not a readable zip")


ROW_PROBLEMS = {
    "short row": (lambda line: " ".join(line.split()[:127]), "row has 127 values, expected 128"),
    "long row": (lambda line: line + "  1.0000000e+000", "row has 129 values, expected 128"),
    "not a number": (lambda line: line.replace(line.split()[4], "abc", 1), "column 5: 'abc' is not a number"),
    "NaN": (lambda line: line.replace(line.split()[4], "NaN", 1), "column 5: value 'NaN' is not finite"),
    "nan": (lambda line: line.replace(line.split()[0], "nan", 1), "column 1: value 'nan' is not finite"),
    "inf": (lambda line: line.replace(line.split()[127], "inf", 1), "column 128: value 'inf' is not finite"),
    "-Infinity": (lambda line: line.replace(line.split()[9], "-Infinity", 1),
                  "column 10: value '-Infinity' is not finite"),
    "huge": (lambda line: line.replace(line.split()[2], "1e999", 1), "column 3: value '1e999' is not finite"),
    "blank": (lambda line: "", "empty line"),
}


@pytest.mark.parametrize("problem", ROW_PROBLEMS)
def test_bad_value_in_a_uci_signal_file(uci, problem: str) -> None:
    data_dir, folder = uci
    edit, message = ROW_PROBLEMS[problem]
    path = signal_file(folder, "train", "body_acc_y")
    edit_line(path, 3, edit)
    assert load_uci(data_dir).startswith(f"{path}:3: {message}")


def test_bad_value_in_a_zipped_uci_signal_file(tmp_path: Path) -> None:
    """Inside an archive, the message names the archive and the entry."""
    folder = write_uci_har(tmp_path / "written")
    path = signal_file(folder, "test", "total_acc_z")
    set_field(path, 5, 100, "NaN")
    archive = pack_outer_zip(pack_inner_zip(folder, tmp_path / INNER_ZIP), tmp_path / "data" / "uci-har" / OUTER_ZIP)
    entry = archive / INNER_ZIP / "UCI HAR Dataset" / "test" / "Inertial Signals" / "total_acc_z_test.txt"
    assert load_uci(tmp_path / "data").startswith(f"{entry}:5: column 100: value 'NaN' is not finite")


@pytest.mark.parametrize(("label", "message"), [("7", "label 7 outside the class range 1..6"),
                                                ("0", "label 0 outside the class range 1..6"),
                                                ("2.5", "column 1: '2.5' is not a whole number"),
                                                ("x", "column 1: 'x' is not a number")])
def test_bad_uci_label(uci, label: str, message: str) -> None:
    data_dir, folder = uci
    path = folder / "train" / "y_train.txt"
    set_field(path, 4, 1, label)
    assert load_uci(data_dir).startswith(f"{path}:4: {message}")


def test_uci_subject_file_shorter_than_labels(uci) -> None:
    data_dir, folder = uci
    path = folder / "train" / "subject_train.txt"
    drop_last_line(path)
    assert load_uci(data_dir).startswith(f"{path}: 11 rows but y_train.txt has 12")


def test_uci_signal_file_shorter_than_labels(uci) -> None:
    data_dir, folder = uci
    path = signal_file(folder, "test", "body_gyro_x")
    drop_last_line(path)
    assert load_uci(data_dir).startswith(f"{path}: 5 rows but y_test.txt has 6")


def test_empty_uci_file(uci) -> None:
    data_dir, folder = uci
    path = folder / "test" / "y_test.txt"
    path.write_text("")
    assert load_uci(data_dir).startswith(f"{path}: file is empty")


def test_bad_activity_labels_line(uci) -> None:
    data_dir, folder = uci
    path = folder / "activity_labels.txt"
    edit_line(path, 2, lambda line: "two WALKING_UPSTAIRS")
    assert load_uci(data_dir).startswith(f"{path}:2: expected `id NAME`")


def test_subject_in_both_splits(uci) -> None:
    data_dir, folder = uci
    set_field(folder / "test" / "subject_test.txt", 1, 1, "3")
    assert load_uci(data_dir).startswith(f"{folder}: subjects [3] are in both train and test")


# --- HAPT RawData -------------------------------------------------------------------------------------------


@pytest.fixture
def raw(tmp_path: Path) -> tuple[Path, Path]:
    """(data dir, DIR/hapt/RawData)."""
    return tmp_path / "data", write_hapt_rawdata(tmp_path / "data" / hapt.NAME)


def load_hapt(data_dir: Path) -> str:
    return failure(load_dataset, "hapt", data_dir, quiet=True)


HAPT_PROBLEMS = {
    "short row": (lambda line: " ".join(line.split()[:2]), "row has 2 values, expected 3"),
    "long row": (lambda line: line + " 0.5", "row has 4 values, expected 3"),
    "not a number": (lambda line: line.replace(line.split()[1], "0.1.2", 1), "column 2: '0.1.2' is not a number"),
    "NaN": (lambda line: line.replace(line.split()[2], "NaN", 1), "column 3: value 'NaN' is not finite"),
    "inf": (lambda line: line.replace(line.split()[0], "inf", 1), "column 1: value 'inf' is not finite"),
    "-inf": (lambda line: line.replace(line.split()[0], "-inf", 1), "column 1: value '-inf' is not finite"),
}


@pytest.mark.parametrize("problem", HAPT_PROBLEMS)
def test_bad_value_in_a_hapt_acc_file(raw, problem: str) -> None:
    data_dir, rawdata = raw
    edit, message = HAPT_PROBLEMS[problem]
    path = rawdata / signal_name("acc", 2, 2)
    edit_line(path, 1234, edit)
    assert load_hapt(data_dir).startswith(f"{path}:1234: {message}")


@pytest.mark.parametrize(("line", "field", "value", "message"), [
    (3, 3, "13", "activity 13 outside the class range 1..12"),
    (8, 5, "2000", "segment "),  # experiment 2's samples are 0..1999
    (2, 4, "400.5", "column 4: '400.5' is not a whole number")])
def test_bad_hapt_label(raw, line: int, field: int, value: str, message: str) -> None:
    data_dir, rawdata = raw
    path = rawdata / "labels.txt"
    set_field(path, line, field, value)
    assert load_hapt(data_dir).startswith(f"{path}:{line}: {message}")


def test_hapt_gyro_file_shorter_than_acc(raw) -> None:
    data_dir, rawdata = raw
    path = rawdata / signal_name("gyro", 1, 1)
    drop_last_line(path)
    assert load_hapt(data_dir).startswith(f"{path}: 1999 rows but RawData/{signal_name('acc', 1, 1)} has 2000")


def test_hapt_missing_gyro_file(raw) -> None:
    data_dir, rawdata = raw
    path = rawdata / signal_name("gyro", 2, 2)
    path.unlink()
    assert load_hapt(data_dir).startswith(f"{path}: file not found")


def test_hapt_truncated_zip(raw, tmp_path: Path) -> None:
    data_dir, rawdata = raw
    archive = Path(shutil.make_archive(str(tmp_path / "hapt"), "zip", rawdata.parent))
    data = archive.read_bytes()
    shutil.rmtree(rawdata)
    target = data_dir / hapt.NAME / "hapt.zip"
    target.write_bytes(data[: len(data) // 2])
    assert load_hapt(data_dir).startswith(f"{target}: not a readable zip archive")


# --- names ----------------------------------------------------------------------------------------------------


def test_unknown_dataset() -> None:
    text = failure(load_dataset, "uci_har", error=HarlabError)
    assert text == ("unknown dataset 'uci_har'; choose one of: uci-har, hapt, wisdm, or the folder of a "
                    "`harlab data import`")


def test_unknown_dataset_option() -> None:
    assert "no option(s) ['windw']" in failure(load_dataset, "hapt", windw=64, error=HarlabError)


def test_unknown_model() -> None:
    from harlab.models.registry import create_model

    text = failure(create_model, "transformer-xl", 9, 128, 6, error=HarlabError)
    assert text.startswith("unknown model 'transformer-xl'; choose one of: ") and "cnn" in text
    assert "no hyperparameter(s) ['filtres']" in failure(create_model, "cnn", 9, 128, 6, filtres=3,
                                                          error=HarlabError)


# --- the cache -------------------------------------------------------------------------------------------


def test_interrupted_cache_write_leaves_nothing(uci, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C while the windows are being written: no cache file, no .part file."""
    data_dir, _ = uci

    def interrupt(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(files.os, "fsync", interrupt)
    with pytest.raises(KeyboardInterrupt):
        load_dataset("uci-har", data_dir, quiet=True)


# --- through the command line ------------------------------------------------------------------------------


def test_command_line_error_is_one_line_without_traceback(tmp_path: Path) -> None:
    """`python -m harlab` (what the `harlab` script runs): `error: …` on one line, exit status 1."""
    data_dir, archive = uci_archive(tmp_path, "corrupt")
    env = {**os.environ, "COLUMNS": "80", "NO_COLOR": "1"}
    result = subprocess.run([sys.executable, "-m", "harlab", "data", "info", "uci-har", "--data-dir", str(data_dir)],
                            capture_output=True, text=True, env=env, timeout=120, check=False)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {archive}: not a readable zip archive")


def test_atomic_writes_get_ordinary_file_permissions(tmp_path: Path) -> None:
    from harlab.files import atomic_write_bytes

    previous = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "report.html", b"<html></html>")
    finally:
        os.umask(previous)
    assert (tmp_path / "report.html").stat().st_mode & 0o777 == 0o644
