"""Write a small, realistic example of users' own recordings: one CSV per subject, as a phone app saves them.

Each file holds ISO 8601 timestamps at about 50 Hz (with a little jitter), a waist phone's accelerometer
(acc_x..acc_z, in g) and gyroscope (gyro_x..gyro_z, in rad/s), and an `activity` column: bouts of
walking, sitting, standing and laying in a random order, with short unlabelled transitions between them.
Postures differ by the phone's orientation to gravity, walking by a ~1.8 Hz gait on top of it.

    python scripts/make_example_recording.py examples/recordings
    harlab data import examples/recordings --out examples/my-dataset
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

ACTIVITIES = ("walking", "sitting", "standing", "laying")
GRAVITY = {"walking": (1.0, 0.0, 0.05), "standing": (0.98, -0.1, 0.2), "sitting": (0.93, -0.1, 0.33),
           "laying": (0.05, 0.6, 0.8)}  # where gravity points in the phone's frame, per posture


def _bout(activity: str, n: int, rate: float, rng: np.random.Generator, tilt: np.ndarray) -> np.ndarray:
    """[n, 6] acc (g) and gyro (rad/s) of one bout; `tilt` is how this subject's phone sits."""
    t = np.arange(n) / rate
    gravity = np.asarray(GRAVITY[activity]) + tilt + rng.normal(0, 0.05, 3)
    gravity /= np.linalg.norm(gravity)
    acc = np.tile(gravity, (n, 1)) + rng.normal(0, 0.01, (n, 3))
    gyro = rng.normal(0, 0.01, (n, 3))
    if activity == "walking":
        cadence = rng.uniform(1.6, 2.0)  # steps per second
        phase = rng.uniform(0, 2 * np.pi, 3)
        amplitude = np.array([0.35, 0.15, 0.2]) * rng.uniform(0.8, 1.2)
        acc += amplitude * np.sin(2 * np.pi * cadence * t[:, None] + phase)
        acc[:, 0] += 0.1 * np.sin(4 * np.pi * cadence * t)  # the heel strike's harmonic
        gyro += np.array([0.5, 0.3, 0.8]) * np.sin(np.pi * cadence * t[:, None] + phase)
    else:
        sway = 0.01 * np.sin(2 * np.pi * rng.uniform(0.1, 0.3) * t)  # breathing and balance
        acc += sway[:, None]
    return np.hstack([acc, gyro])


def make_recording(path: Path, rate: float = 50.0, bout_seconds: float = 30.0, cycles: int = 2,
                   seed: int = 0, start: str = "2024-05-01T09:00:00") -> Path:
    """Write one subject's recording to `path` (CSV) and return it."""
    rng = np.random.default_rng(seed)
    tilt = rng.normal(0, 0.15, 3)
    parts, labels = [], []
    for _ in range(cycles):
        for activity in rng.permutation(ACTIVITIES):
            n = int(bout_seconds * rate * rng.uniform(0.8, 1.2))
            parts.append(_bout(str(activity), n, rate, rng, tilt))
            labels += [str(activity)] * n
            transition = int(rng.uniform(1, 3) * rate)  # getting up, lying down: left unlabelled
            parts.append(_bout("standing", transition, rate, rng, tilt) + rng.normal(0, 0.2, (transition, 6)))
            labels += [""] * transition
    signals = np.vstack(parts)
    seconds = np.arange(len(signals)) / rate + rng.uniform(-0.1, 0.1, len(signals)) / rate  # timestamp jitter
    frame = pd.DataFrame(signals.round(5), columns=["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"])
    frame.insert(0, "time", (pd.Timestamp(start) + pd.to_timedelta(seconds, unit="s")).strftime(
        "%Y-%m-%dT%H:%M:%S.%f"))
    frame["activity"] = labels
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


def make_example(folder: Path, subjects: int = 3, rate: float = 50.0, bout_seconds: float = 30.0,
                 seed: int = 0) -> list[Path]:
    """One CSV per subject (`subject1.csv`, ...) in `folder`."""
    return [make_recording(folder / f"subject{s}.csv", rate, bout_seconds, seed=seed + s) for s in
            range(1, subjects + 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="where to write the CSV files")
    parser.add_argument("--subjects", type=int, default=3)
    parser.add_argument("--rate", type=float, default=50.0, help="sampling rate in Hz")
    parser.add_argument("--bout-seconds", type=float, default=30.0, help="mean length of one activity bout")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for path in make_example(args.folder, args.subjects, args.rate, args.bout_seconds, args.seed):
        print(path)


if __name__ == "__main__":
    main()
