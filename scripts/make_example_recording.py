"""Write a small, realistic example of users' own recordings: one CSV per subject, as a phone app saves them.

Each file holds ISO 8601 timestamps at about 50 Hz (with a little jitter), a waist phone's accelerometer
(acc_x..acc_z, in g) and gyroscope (gyro_x..gyro_z, in rad/s), and an `activity` column: bouts of
walking, sitting, standing and laying in a random order, with short unlabelled transitions between them.
Postures differ by the phone's orientation to gravity, walking by a ~1.8 Hz gait on top of it.

    python scripts/make_example_recording.py examples/recordings
    harlab data import examples/recordings --out examples/my-dataset

`--layout sensor-logger|phyphox|metawear` writes each subject as those apps export a recording instead: a folder of
per-sensor CSV files, the accelerometer at 100 Hz and the gyroscope at 50 Hz (both jittered, the gyroscope starting
a little late), in the app's units and time column, and the labels apart in `intervals.csv` (start, end, label,
recording; seconds since each recording's start):

    python scripts/make_example_recording.py examples/phone --layout sensor-logger
    harlab data import examples/phone/subject* --labels examples/phone/intervals.csv --rate 50 --out examples/phone-ds
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


def _synthesize(rate: float, bout_seconds: float, cycles: int, seed: int
                ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """One subject's jittered timestamps (s), signals [n, 6] and labels ("" unlabelled)."""
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
    return seconds, signals, labels


def make_recording(path: Path, rate: float = 50.0, bout_seconds: float = 30.0, cycles: int = 2,
                   seed: int = 0, start: str = "2024-05-01T09:00:00") -> Path:
    """Write one subject's recording to `path` (CSV) and return it."""
    seconds, signals, labels = _synthesize(rate, bout_seconds, cycles, seed)
    frame = pd.DataFrame(signals.round(5), columns=["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"])
    frame.insert(0, "time", (pd.Timestamp(start) + pd.to_timedelta(seconds, unit="s")).strftime(
        "%Y-%m-%dT%H:%M:%S.%f"))
    frame["activity"] = labels
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


G = 9.80665
EPOCH = pd.Timestamp("2024-05-01T09:00:00Z").value  # ns


def _sensor_logger(seconds: np.ndarray, values: np.ndarray, sensor: str) -> tuple[str, pd.DataFrame]:
    scale = G if sensor == "acc" else 1.0  # m/s², rad/s
    frame = pd.DataFrame({"time": EPOCH + np.round(seconds * 1e9).astype(np.int64), "seconds_elapsed": seconds})
    for i, axis in reversed(list(enumerate("xyz"))):  # the app writes z, y, x
        frame[axis] = values[:, i] * scale
    return ("TotalAcceleration" if sensor == "acc" else "Gyroscope"), frame


def _phyphox(seconds: np.ndarray, values: np.ndarray, sensor: str) -> tuple[str, pd.DataFrame]:
    unit, scale = ("m/s^2", G) if sensor == "acc" else ("rad/s", 1.0)
    frame = pd.DataFrame({"Time (s)": seconds})
    for i, axis in enumerate("XYZ"):
        frame[f"{axis} ({unit})"] = values[:, i] * scale
    return ("Accelerometer" if sensor == "acc" else "Gyroscope"), frame


def _metawear(seconds: np.ndarray, values: np.ndarray, sensor: str) -> tuple[str, pd.DataFrame]:
    unit, scale = ("g", 1.0) if sensor == "acc" else ("deg/s", 180 / np.pi)
    epoch_ms = EPOCH // 1_000_000 + np.round(seconds * 1000).astype(np.int64)
    frame = pd.DataFrame({"epoch (ms)": epoch_ms, "time (+00:00)": pd.to_datetime(epoch_ms, unit="ms").strftime(
        "%Y-%m-%dT%H.%M.%S.%f").str[:-3], "elapsed (s)": seconds})
    for i, axis in enumerate("xyz"):
        frame[f"{axis}-axis ({unit})"] = values[:, i] * scale
    name = "Accelerometer" if sensor == "acc" else "Gyroscope"
    return f"MetaWear_2024-05-01T09.00.00.000_C8D2A1B3E4F5_{name}", frame


WRITERS = {"sensor-logger": _sensor_logger, "phyphox": _phyphox, "metawear": _metawear}


def _intervals(seconds: np.ndarray, labels: list[str], recording: str) -> pd.DataFrame:
    """The runs of one label as start, end (s since the recording's start), label, recording."""
    codes = pd.Series(labels)
    runs = (codes != codes.shift()).cumsum()
    rows = [(seconds[idx[0]], seconds[idx[-1]] + (seconds[1] - seconds[0]), codes[idx[0]], recording)
            for idx in codes.groupby(runs).indices.values() if codes[idx[0]]]
    return pd.DataFrame(rows, columns=["start", "end", "label", "recording"]).round(3)


def make_sensor_recording(folder: Path, layout: str, bout_seconds: float = 30.0, cycles: int = 2,
                          seed: int = 0) -> pd.DataFrame:
    """Write one subject's recording as `layout` exports it into `folder`; return its label intervals."""
    seconds, signals, labels = _synthesize(100.0, bout_seconds, cycles, seed)
    seconds = seconds - seconds[0]
    folder.mkdir(parents=True, exist_ok=True)
    late = int(np.random.default_rng(seed).uniform(20, 60))  # the gyroscope starts 0.2–0.6 s late, at half the rate
    for sensor, rows, columns in (("acc", slice(None), slice(0, 3)), ("gyro", slice(late, None, 2), slice(3, 6))):
        name, frame = WRITERS[layout](seconds[rows], signals[rows, columns].round(5), sensor)
        frame.round(5).to_csv(folder / f"{name}.csv", index=False)
    return _intervals(seconds, labels, folder.name)


def make_example(folder: Path, subjects: int = 3, rate: float = 50.0, bout_seconds: float = 30.0,
                 seed: int = 0, layout: str = "tables") -> list[Path]:
    """One CSV per subject (`subject1.csv`, ...) in `folder`; or, for a per-sensor `layout`, one folder per subject
    (`subject1/`, ...) and the labels of all in `intervals.csv`."""
    if layout == "tables":
        return [make_recording(folder / f"subject{s}.csv", rate, bout_seconds, seed=seed + s) for s in
                range(1, subjects + 1)]
    intervals = [make_sensor_recording(folder / f"subject{s}", layout, bout_seconds, seed=seed + s)
                 for s in range(1, subjects + 1)]
    pd.concat(intervals).to_csv(folder / "intervals.csv", index=False)
    return [folder / f"subject{s}" for s in range(1, subjects + 1)] + [folder / "intervals.csv"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="where to write the CSV files")
    parser.add_argument("--subjects", type=int, default=3)
    parser.add_argument("--rate", type=float, default=50.0, help="sampling rate in Hz")
    parser.add_argument("--bout-seconds", type=float, default=30.0, help="mean length of one activity bout")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--layout", choices=["tables", *WRITERS], default="tables",
                        help="one table per subject, or per-sensor files as a phone or wearable app exports them")
    args = parser.parse_args()
    for path in make_example(args.folder, args.subjects, args.rate, args.bout_seconds, args.seed, args.layout):
        print(path)


if __name__ == "__main__":
    main()
