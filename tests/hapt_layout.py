"""Write a tiny HAPT copy in the release's `RawData/` layout.

    RawData/acc_expEE_userUU.txt    3 space-separated floats per line (x y z), one line per sample
    RawData/gyro_expEE_userUU.txt   the same for the gyroscope
    RawData/labels.txt              `experiment user activity first_sample last_sample` (inclusive, 0-based)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

EXPERIMENTS = ((1, 1), (2, 2))  # (experiment, user); user 2 is one of UCI HAR's test subjects
N_SAMPLES = 2000
# Activities 1..6, 250 samples each, 50 samples apart, starting at sample 100: two 128-sample windows
# (step 64) per segment, so 12 windows per experiment.
SEGMENTS = tuple((activity, 100 + 300 * (activity - 1), 100 + 300 * (activity - 1) + 249) for activity in range(1, 7))


def signal_name(kind: str, experiment: int, user: int) -> str:
    return f"{kind}_exp{experiment:02d}_user{user:02d}.txt"


def signals(experiment: int, n_samples: int = N_SAMPLES) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic acc (≈ gravity on x plus a wobble) and gyro signals [n_samples, 3] of one experiment."""
    t = np.arange(n_samples) / 50.0
    phase = 0.1 * experiment
    acc = np.stack([1.0 + 0.2 * np.sin(2 * np.pi * 1.5 * t + phase),
                    -0.1 + 0.1 * np.cos(2 * np.pi * 0.7 * t + phase),
                    0.3 + 0.05 * np.sin(2 * np.pi * 3.0 * t)], axis=1)
    gyro = np.stack([0.5 * np.sin(2 * np.pi * 0.9 * t + phase),
                     0.2 * np.cos(2 * np.pi * 2.1 * t),
                     -0.05 + 0.01 * t / t[-1]], axis=1)
    return acc, gyro


def format_rows(values: np.ndarray) -> str:
    return "".join(" ".join(repr(float(v)) for v in row) + "\n" for row in values)


def write_hapt_rawdata(root: Path, experiments=EXPERIMENTS, n_samples: int = N_SAMPLES,
                       segments=SEGMENTS) -> Path:
    """Write `root/RawData/` (acc and gyro file per experiment, labels.txt) and return that folder.

    `segments` are (activity, first_sample, last_sample) and are labelled in every experiment.
    """
    raw = root / "RawData"
    raw.mkdir(parents=True, exist_ok=True)
    labels = []
    for experiment, user in experiments:
        acc, gyro = signals(experiment, n_samples)
        (raw / signal_name("acc", experiment, user)).write_text(format_rows(acc))
        (raw / signal_name("gyro", experiment, user)).write_text(format_rows(gyro))
        labels += [f"{experiment} {user} {activity} {first} {last}\n" for activity, first, last in segments]
    (raw / "labels.txt").write_text("".join(labels))
    return raw


def windows_per_experiment(segments=SEGMENTS, window: int = 128, step: int = 64) -> int:
    """How many windows the UCI HAR pipeline cuts from one experiment's segments."""
    return sum(max(0, (last + 1 - first - window) // step + 1) for _, first, last in segments)
