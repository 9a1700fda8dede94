"""The HAPT raw recordings, cut the UCI HAR way, against UCI HAR's own label files (shipped in tests/data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import TEST_DATA

from harlab.data import hapt
from harlab.data.datasets import load_dataset
from harlab.data.uci_har import CHANNELS


def official_labels() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    folder = TEST_DATA / "uci-har-labels"
    y = [np.loadtxt(folder / f"y_{s}.txt", dtype=int) - 1 for s in ("train", "test")]
    subject = [np.loadtxt(folder / f"subject_{s}.txt", dtype=int) for s in ("train", "test")]
    split = np.concatenate([np.zeros(len(y[0]), bool), np.ones(len(y[1]), bool)])
    return np.concatenate(y), np.concatenate(subject), split


def first_appearance(labels: np.ndarray) -> list[int]:
    return list(dict.fromkeys(labels.tolist()))


@pytest.fixture(scope="module")
def windows(real_data: Path, tmp_path_factory: pytest.TempPathFactory):
    import os

    os.environ["HARLAB_CACHE"] = str(tmp_path_factory.mktemp("hapt-cache"))
    return load_dataset("hapt", real_data, quiet=True)


def test_hapt_windows_match_uci_har(windows) -> None:
    train, test = windows.split()
    assert (len(train), len(test)) == (7415, 2996)
    assert windows.X.shape == (10411, 128, 9) and windows.X.dtype == np.float32
    assert windows.channels == CHANNELS
    assert windows.classes == hapt.ACTIVITIES[:6]
    y, subject, is_test = official_labels()
    assert sorted(set(test.subject.tolist())) == sorted(set(subject[is_test].tolist()))
    differences, same_order = [], 0
    for s in range(1, 31):
        for c in range(6):
            ours = int(((windows.subject == s) & (windows.y == c)).sum())
            theirs = int(((subject == s) & (y == c)).sum())
            differences.append(ours - theirs)
        # the same activities, met in the same order (HAPT revised a few labels)
        ours, theirs = first_appearance(windows.y[windows.subject == s]), first_appearance(y[subject == s])
        assert sorted(ours) == sorted(theirs) == list(range(6))
        same_order += ours == theirs
    assert same_order >= 29
    differences = np.abs(differences)
    assert differences.max() <= 6, "per subject and class, counts agree within a few windows"
    assert (differences <= 2).mean() > 0.8


def test_signal_physics(windows) -> None:
    train, _ = windows.split()
    total = train.X[:, :, 0:3]
    body = train.X[:, :, 3:6]
    gravity_magnitude = np.linalg.norm((total - body).mean(axis=1), axis=1)
    assert np.median(gravity_magnitude) == pytest.approx(1.0, abs=0.05)  # in g
    assert abs(float(body.mean())) < 0.01  # body acceleration has no DC part


def test_second_load_comes_from_the_binary_cache(windows, real_data: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    def no_parsing(*_: object) -> None:
        raise AssertionError("the recordings were parsed again")

    load_dataset("hapt", real_data, quiet=True)  # fills this test's own (empty) cache
    monkeypatch.setattr(hapt, "read_recordings", no_parsing)
    again = load_dataset("hapt", real_data, quiet=True)
    np.testing.assert_array_equal(again.X, windows.X)
    assert again.provenance == windows.provenance


def test_twelve_classes_and_other_windowing(real_data: Path) -> None:
    twelve = load_dataset("hapt", real_data, transitions=True, quiet=True)
    assert len(twelve.classes) == 12 and set(np.unique(twelve.y)) == set(range(12))
    short = load_dataset("hapt", real_data, window=64, step=32, quiet=True)
    assert short.X.shape[1:] == (64, 9) and short.step == 32 and len(short) > 2 * 10411


def test_rawdata_facts(real_data: Path) -> None:
    source = hapt.find_local(real_data / "hapt", "local")
    assert source is not None
    recordings, names = hapt.read_recordings(source)
    assert len(recordings) == 61 and len({r.subject for r in recordings}) == 30
    assert sum(len(r.signals) for r in recordings) == 1_122_772
    assert names == hapt.ACTIVITIES
    assert hapt.check_complete(recordings) == []
