"""UCI HAR (Anguita et al. 2013): the official 128-sample windows of nine inertial signals,
6 activities, 21 training and 9 test subjects."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from harlab.data.fetch import cache_dir, download, record_sha256
from harlab.data.text import parse_activity_labels, read_table
from harlab.data.tree import FileTree
from harlab.errors import DataError

NAME = "uci-har"
URL = "https://archive.ics.uci.edu/static/public/240/human+activity+recognition+using+smartphones.zip"
ARCHIVE = "human+activity+recognition+using+smartphones.zip"
SAMPLING_RATE = 50.0
WINDOW, STEP = 128, 64
# The tutorial's channel order.
CHANNELS = ("total_acc_x", "total_acc_y", "total_acc_z", "body_acc_x", "body_acc_y", "body_acc_z",
            "body_gyro_x", "body_gyro_y", "body_gyro_z")
# Documented facts of the release, checked on load.
WINDOWS = {"train": 7352, "test": 2947}
SUBJECTS = {"train": 21, "test": 9}
CLASS_COUNTS = {"train": (1226, 1073, 986, 1286, 1374, 1407), "test": (496, 471, 420, 491, 532, 537)}


def find_local(folder: Path) -> Path | None:
    """An archive (outer or inner zip) or an extracted `UCI HAR Dataset` folder inside `folder`."""
    if not folder.is_dir():
        return None
    if (folder / "train" / "y_train.txt").is_file():
        return folder
    for candidate in sorted(folder.iterdir()):
        if candidate.is_dir() and (candidate / "train" / "y_train.txt").is_file():
            return candidate
    zips = sorted(folder.glob("*.zip"))
    return zips[0] if zips else None


def fetch(quiet: bool = False) -> Path:
    """Download the official archive into the cache (once), record its sha256 beside it (UCI publishes no
    checksum; see `check_recorded_sha256`), and return its path."""
    target = cache_dir() / NAME / ARCHIVE
    if not target.exists():
        record_sha256(target, download(URL, target, quiet=quiet))
    return target


def read_split(tree: FileTree, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """X [n, 128, 9] float32, y 1-based, subjects of one split ("train" or "test")."""
    y_name = tree.find(f"{split}/y_{split}.txt")
    if y_name is None:
        raise DataError(tree.where(f"{split}/y_{split}.txt"), "file not found", "use the complete dataset")
    base = y_name[: -len(f"y_{split}.txt")]
    y = read_table(tree.read(y_name), tree.where(y_name), n_cols=1, integer=True)[:, 0]
    subject_name = f"{base}subject_{split}.txt"
    if subject_name not in tree.names():
        raise DataError(tree.where(subject_name), "file not found", "use the complete dataset")
    subjects = read_table(tree.read(subject_name), tree.where(subject_name), n_cols=1, integer=True)[:, 0]
    if len(subjects) != len(y):
        raise DataError(tree.where(subject_name), f"{len(subjects)} rows but y_{split}.txt has {len(y)}",
                        "the files of one split must have one row per window")
    columns = []
    for channel in CHANNELS:
        name = f"{base}Inertial Signals/{channel}_{split}.txt"
        if name not in tree.names():
            raise DataError(tree.where(name), "file not found", "use the complete dataset")
        values = read_table(tree.read(name), tree.where(name), n_cols=WINDOW)
        if len(values) != len(y):
            raise DataError(tree.where(name), f"{len(values)} rows but y_{split}.txt has {len(y)}",
                            "the files of one split must have one row per window")
        columns.append(values.astype(np.float32))
    return np.stack(columns, axis=-1), y, subjects


def read(tree: FileTree) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[str, ...], tuple[int, ...], list[str]]:
    """Both splits of a UCI HAR copy: X, 0-based y, subjects, class names, test subjects, and the
    ways the copy differs from the documented release (empty for an intact copy)."""
    tree = tree.descend("train/y_train.txt")
    labels_name = tree.find("activity_labels.txt")
    if labels_name is None:
        raise DataError(tree.root, "no activity_labels.txt inside", "use the complete dataset")
    classes = parse_activity_labels(tree.read(labels_name), tree.where(labels_name))
    parts = {split: read_split(tree, split) for split in ("train", "test")}
    differences = []
    for split, (_, y, subjects) in parts.items():
        bad = y[(y < 1) | (y > len(classes))]
        if len(bad):
            name = tree.find(f"{split}/y_{split}.txt")
            row = int(np.flatnonzero((y < 1) | (y > len(classes)))[0]) + 1
            raise DataError(tree.where(name or split), f"label {int(bad[0])} outside the class range "
                            f"1..{len(classes)}", "fix the label", line=row)
        if len(y) != WINDOWS[split]:
            differences.append(f"{split}: {len(y)} windows, the release has {WINDOWS[split]}")
        if len(set(subjects.tolist())) != SUBJECTS[split]:
            differences.append(f"{split}: {len(set(subjects.tolist()))} subjects, the release has {SUBJECTS[split]}")
        counts = tuple(np.bincount(y - 1, minlength=len(classes)).tolist())
        if counts != CLASS_COUNTS[split]:
            differences.append(f"{split}: class counts {counts}, the release has {CLASS_COUNTS[split]}")
    train_subjects, test_subjects = set(parts["train"][2].tolist()), set(parts["test"][2].tolist())
    if overlap := train_subjects & test_subjects:
        raise DataError(tree.root, f"subjects {sorted(overlap)} are in both train and test",
                        "the split must be by subject")
    X = np.concatenate([parts["train"][0], parts["test"][0]])
    y = np.concatenate([parts["train"][1], parts["test"][1]]) - 1
    subjects = np.concatenate([parts["train"][2], parts["test"][2]])
    return X, y, subjects, classes, tuple(sorted(test_subjects)), differences
