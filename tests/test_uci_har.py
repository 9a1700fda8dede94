"""UCI HAR from a small copy in the release's layout: folder, inner zip or download archive; the
binary cache; `harlab data info`; and the hapt fallback when uci-har cannot be had."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import no_downloads
from hapt_layout import windows_per_experiment, write_hapt_rawdata
from typer.testing import CliRunner
from uci_layout import (
    ACTIVITIES,
    DATASET_FOLDER,
    INNER_ZIP,
    OUTER_ZIP,
    expected,
    pack_inner_zip,
    pack_outer_zip,
    write_uci_har,
)

from harlab.cli import app
from harlab.data import datasets, hapt, uci_har
from harlab.data.datasets import load_dataset, load_tutorial_dataset
from harlab.errors import HarlabError
from harlab.files import sha256_file

LAYOUTS = ("folder", "inner-zip", "outer-zip")


def place_copy(tmp_path: Path, layout: str, **sizes) -> tuple[Path, Path]:
    """A data dir whose `uci-har/` holds the copy in `layout`; returns (data_dir, the copy's path)."""
    folder = write_uci_har(tmp_path / "written", **sizes)
    target = tmp_path / "data" / uci_har.NAME
    target.mkdir(parents=True)
    if layout == "folder":
        copy = Path(shutil.copytree(folder, target / DATASET_FOLDER))
    elif layout == "inner-zip":
        copy = pack_inner_zip(folder, target / INNER_ZIP)
    else:
        inner = pack_inner_zip(folder, tmp_path / "staging" / INNER_ZIP)
        copy = pack_outer_zip(inner, target / OUTER_ZIP)
    return tmp_path / "data", copy



@pytest.mark.parametrize("layout", LAYOUTS)
def test_loads_every_layout(tmp_path: Path, layout: str, monkeypatch: pytest.MonkeyPatch) -> None:
    no_downloads(monkeypatch)
    data_dir, copy = place_copy(tmp_path, layout)
    ws = load_dataset("uci-har", data_dir, quiet=True)
    signals, y, subjects = expected()

    assert ws.X.shape == (18, 128, 9)
    assert ws.X.dtype == np.float32
    assert ws.channels == uci_har.CHANNELS
    assert ws.channels == ("total_acc_x", "total_acc_y", "total_acc_z", "body_acc_x", "body_acc_y", "body_acc_z",
                           "body_gyro_x", "body_gyro_y", "body_gyro_z")
    for i, channel in enumerate(uci_har.CHANNELS):
        np.testing.assert_allclose(ws.X[:, :, i], signals[channel], rtol=1e-6, err_msg=channel)
    # Spot checks that need no helper: channel 0 is total_acc_x (7th file), window 13 is test's second row.
    assert ws.X[0, 0, 0] == pytest.approx(70.0)
    assert ws.X[13, 1, 3] == pytest.approx(-(10.0 + 1.3 + 1e-4), rel=1e-6)

    assert ws.y.tolist() == y.tolist()
    assert ws.y.min() == 0 and ws.y.max() == 5
    assert ws.subject.tolist() == subjects.tolist()
    assert ws.classes == ACTIVITIES
    assert ws.test_subjects == (2,)
    assert ws.sampling_rate == 50.0 and ws.step == 64 and ws.window == 128

    train, test = ws.split()
    assert set(train.subject.tolist()) == {1, 3} and set(test.subject.tolist()) == {2}
    assert len(train) == 12 and len(test) == 6
    assert train.class_counts() == dict.fromkeys(ACTIVITIES, 2)

    p = ws.provenance
    assert p.dataset == "uci-har"
    assert p.source == str(copy)
    assert p.options["origin"] == "local"
    assert re.fullmatch(r"[0-9a-f]{64}", p.sha256)
    if layout != "folder":
        assert p.sha256 == sha256_file(copy)
    assert "differs from the published dataset" in p.note
    assert "12 windows, the release has 7352" in p.note


def test_folder_directly_in_uci_har_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """DIR/uci-har/ may itself be the extracted `UCI HAR Dataset` folder."""
    no_downloads(monkeypatch)
    folder = write_uci_har(tmp_path / "written")
    shutil.copytree(folder, tmp_path / "data" / uci_har.NAME)
    ws = load_dataset("uci-har", tmp_path / "data", quiet=True)
    assert ws.X.shape == (18, 128, 9)


def test_second_load_comes_from_the_binary_cache(tmp_path: Path, isolated_cache: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    no_downloads(monkeypatch)
    data_dir, _ = place_copy(tmp_path, "outer-zip")
    first = load_dataset("uci-har", data_dir, quiet=True)

    cached = sorted((isolated_cache / "windows").iterdir())
    assert len(cached) == 1 and cached[0].name.startswith("uci-har-") and cached[0].suffix == ".npz"
    assert not list(isolated_cache.rglob("*.part"))

    def must_not_parse(tree):
        raise AssertionError("the second load parsed the text files again")

    monkeypatch.setattr(uci_har, "read", must_not_parse)
    start = time.perf_counter()
    second = load_dataset("uci-har", data_dir, quiet=True)
    assert time.perf_counter() - start < 5  # generous: the machine may be busy

    np.testing.assert_array_equal(second.X, first.X)
    np.testing.assert_array_equal(second.y, first.y)
    np.testing.assert_array_equal(second.subject, first.subject)
    assert second.X.dtype == np.float32
    assert (second.channels, second.classes, second.test_subjects) == (first.channels, first.classes,
                                                                       first.test_subjects)
    assert second.provenance == first.provenance


def test_changed_copy_is_read_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cache is keyed by the copy's sha256: a different archive is not served stale windows."""
    no_downloads(monkeypatch)
    data_dir, copy = place_copy(tmp_path, "inner-zip")
    assert len(load_dataset("uci-har", data_dir, quiet=True)) == 18
    pack_inner_zip(write_uci_har(tmp_path / "bigger", n_train_per_subject=12), copy)
    assert len(load_dataset("uci-har", data_dir, quiet=True)) == 30


def test_cli_data_info_prints_class_counts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    no_downloads(monkeypatch)
    data_dir, _ = place_copy(tmp_path, "inner-zip", n_train_per_subject=8)  # labels 1..6,1,2 per subject
    result = CliRunner().invoke(app, ["data", "info", "uci-har", "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "X [22, 128, 9]" in out
    assert "total_acc_x, total_acc_y, total_acc_z, body_acc_x" in out
    counts = {"WALKING": (4, 1, 5), "WALKING_UPSTAIRS": (4, 1, 5), "WALKING_DOWNSTAIRS": (2, 1, 3),
              "SITTING": (2, 1, 3), "STANDING": (2, 1, 3), "LAYING": (2, 1, 3)}
    for i, (name, (train, test, total)) in enumerate(counts.items()):
        assert re.search(rf"\b{i} {name}\W+{train}\W+{test}\W+{total}\b", out), (name, out)
    assert re.search(r"\ball\W+16\W+6\W+22\b", out), out
    assert "train subjects (2): 1 3" in out
    assert "test subjects (1): 2" in out
    assert "sha256" in out and "(local)" in out


def test_default_dataset_falls_back_to_hapt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            notices: list[str]) -> None:
    """`harlab train` with no --dataset: uci-har cannot be found nor downloaded, so the hapt windows."""
    no_downloads(monkeypatch)
    write_hapt_rawdata(tmp_path / "data" / "hapt")
    ws = load_tutorial_dataset(None, tmp_path / "data")

    assert ws.provenance.dataset == "hapt"
    assert ws.channels == uci_har.CHANNELS
    assert ws.X.shape == (2 * windows_per_experiment(), 128, 9) == (24, 128, 9)
    assert ws.X.dtype == np.float32
    assert ws.classes == hapt.ACTIVITIES[:6]
    assert set(ws.split()[1].subject.tolist()) == {2}

    fallback = [text for text in notices if "uci-har is not available" in text]
    assert len(fallback) == 1, notices
    assert "download failed" in fallback[0]
    assert fallback[0].endswith("using the hapt windows cut from its raw recordings instead"), notices


def test_requested_dataset_does_not_fall_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    no_downloads(monkeypatch)
    write_hapt_rawdata(tmp_path / "data" / "hapt")
    with pytest.raises(HarlabError, match="download failed"):
        load_tutorial_dataset("uci-har", tmp_path / "data")


def test_offline_without_a_copy_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    with pytest.raises(HarlabError) as info:
        datasets.load_uci_har(tmp_path / "data", offline=True)
    assert "\n" not in str(info.value) and "uci-har" in str(info.value)
