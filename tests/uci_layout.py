"""Write a small UCI HAR copy in the release's exact layout and text format, with values that tell
where they belong: signal, window and time step are encoded in every number.

    UCI HAR Dataset/activity_labels.txt            `1 WALKING` … `6 LAYING`
    UCI HAR Dataset/{train,test}/y_{split}.txt      one label 1..6 per window
    UCI HAR Dataset/{train,test}/subject_{split}.txt
    UCI HAR Dataset/{train,test}/Inertial Signals/{signal}_{split}.txt   128 values per row

Values are written as the release writes them: ` 1.0808980e+000 -1.0418000e+000`, i.e. every value
right-aligned in 15 characters after one space, scientific notation with a 3-digit exponent.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

DATASET_FOLDER = "UCI HAR Dataset"
INNER_ZIP = "UCI HAR Dataset.zip"
OUTER_ZIP = "human+activity+recognition+using+smartphones.zip"
ACTIVITIES = ("WALKING", "WALKING_UPSTAIRS", "WALKING_DOWNSTAIRS", "SITTING", "STANDING", "LAYING")
# The release's file order (alphabetical), deliberately not the tutorial's channel order.
SIGNALS = ("body_acc_x", "body_acc_y", "body_acc_z", "body_gyro_x", "body_gyro_y", "body_gyro_z",
           "total_acc_x", "total_acc_y", "total_acc_z")
WINDOW = 128
TRAIN_SUBJECTS = (1, 3)
TEST_SUBJECTS = (2,)


def format_value(value: float) -> str:
    """One value as the release writes it: `1.0808980e+000` (7 decimals, 3-digit signed exponent)."""
    mantissa, exponent = f"{value:.7e}".split("e")
    return f"{mantissa}e{int(exponent):+04d}"


def format_row(values) -> str:
    """A row of the Inertial Signals files: each value right-aligned in 15 characters after a space."""
    return "".join(f" {format_value(float(v)):>15}" for v in values)


def signal_value(signal: str, window: int, t) -> np.ndarray:
    """The value written for `signal` at time step `t` of window `window` (counted over train, then test).

    |value| = 10·(signal's position in SIGNALS + 1) + 0.1·window + 0.0001·t; odd time steps are negative.
    """
    t = np.asarray(t)
    magnitude = 10.0 * (SIGNALS.index(signal) + 1) + 0.1 * window + 1e-4 * t
    return np.where(t % 2 == 1, -magnitude, magnitude)


def window_rows(n_per_subject: int, subjects: tuple[int, ...]) -> list[tuple[int, int]]:
    """(subject, 1-based label) per window: each subject's windows cycle through the 6 classes."""
    return [(subject, i % len(ACTIVITIES) + 1) for subject in subjects for i in range(n_per_subject)]


def expected(n_train_per_subject: int = 6, n_test_per_subject: int = 6, train_subjects=TRAIN_SUBJECTS,
             test_subjects=TEST_SUBJECTS) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """What `write_uci_har` with the same arguments wrote: {signal: [n, 128]}, 0-based y, subjects
    (train windows first, then test)."""
    rows = window_rows(n_train_per_subject, tuple(train_subjects)) + window_rows(n_test_per_subject,
                                                                                 tuple(test_subjects))
    t = np.arange(WINDOW)
    signals = {s: np.stack([signal_value(s, w, t) for w in range(len(rows))]) for s in SIGNALS}
    y = np.array([label - 1 for _, label in rows], dtype=np.int64)
    subjects = np.array([subject for subject, _ in rows], dtype=np.int64)
    return signals, y, subjects


def write_uci_har(root: Path, n_train_per_subject: int = 6, n_test_per_subject: int = 6,
                  train_subjects=TRAIN_SUBJECTS, test_subjects=TEST_SUBJECTS) -> Path:
    """Write `root/UCI HAR Dataset/` and return that folder."""
    folder = root / DATASET_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "activity_labels.txt").write_text("".join(f"{i} {name}\n" for i, name in enumerate(ACTIVITIES, 1)))
    (folder / "features.txt").write_text("1 tBodyAcc-mean()-X\n2 tBodyAcc-mean()-Y\n")  # unused, as in the release
    first = 0
    for split, n, subjects in (("train", n_train_per_subject, tuple(train_subjects)),
                               ("test", n_test_per_subject, tuple(test_subjects))):
        rows = window_rows(n, subjects)
        split_dir = folder / split
        (split_dir / "Inertial Signals").mkdir(parents=True, exist_ok=True)
        (split_dir / f"y_{split}.txt").write_text("".join(f"{label}\n" for _, label in rows))
        (split_dir / f"subject_{split}.txt").write_text("".join(f"{subject}\n" for subject, _ in rows))
        t = np.arange(WINDOW)
        for signal in SIGNALS:
            lines = [format_row(signal_value(signal, first + w, t)) + "\n" for w in range(len(rows))]
            (split_dir / "Inertial Signals" / f"{signal}_{split}.txt").write_text("".join(lines))
        first += len(rows)
    return folder


def signal_file(folder: Path, split: str, signal: str) -> Path:
    """Path of one Inertial Signals file of a copy written by `write_uci_har`."""
    return folder / split / "Inertial Signals" / f"{signal}_{split}.txt"


def pack_inner_zip(folder: Path, dest: Path) -> Path:
    """Zip an extracted `UCI HAR Dataset` folder as the release's inner `UCI HAR Dataset.zip`
    (folder entries, the top folder in every name, and a `__MACOSX/` resource fork for realism)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            name = f"{DATASET_FOLDER}/{path.relative_to(folder).as_posix()}"
            if path.is_dir():
                zf.writestr(name + "/", b"")
            else:
                zf.write(path, name)
        zf.writestr(f"__MACOSX/{DATASET_FOLDER}/._activity_labels.txt", b"\x00\x05\x16\x07junk")
        zf.writestr(f"__MACOSX/{DATASET_FOLDER}/train/._y_train.txt", b"\x00\x05\x16\x07junk")
    return dest


def pack_outer_zip(inner_zip: Path, dest: Path) -> Path:
    """The download archive: the inner zip, the `.names` description and a `__MACOSX/` junk entry."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_STORED) as zf:
        zf.write(inner_zip, INNER_ZIP)
        zf.writestr("UCI HAR Dataset.names", "Human Activity Recognition Using Smartphones Data Set\n")
        zf.writestr(f"__MACOSX/._{INNER_ZIP}", b"\x00\x05\x16\x07junk that is not a zip")
    return dest
