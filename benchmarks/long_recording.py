"""A day at 50 Hz: peak memory and time of `harlab data import` and `harlab predict` on one long recording.

Writes a labelled recording of `--hours` hours at 50 Hz (4.32 million rows × 6 channels for 24 h: the synthetic
activities of scripts/make_example_recording.py, bout after bout, time in seconds), trains a small CNN bundle on a
short recording, then runs each command in its own process and reports its wall time and peak resident memory
(the process's maximum RSS) — for the first hour and for the whole recording, so that what grows with the length
shows: predict reads block by block (bounded), import keeps the samples as numbers and the windows it writes.

    python benchmarks/long_recording.py --hours 24 --work /tmp/day
"""

from __future__ import annotations

import argparse
import importlib.util
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]


def _example_script():
    spec = importlib.util.spec_from_file_location("make_example_recording", REPO / "scripts/make_example_recording.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_day(path: Path, hours: float, rate: float = 50.0, seed: int = 0) -> int:
    """A labelled recording of `hours` hours at `rate` Hz, written in pieces; returns its rows."""
    script = _example_script()
    rows, offset, piece = 0, 0.0, 0
    target = int(hours * 3600 * rate)
    with path.open("w") as handle:
        while rows < target:
            seconds, signals, labels = script._synthesize(rate, 30.0, 8, seed + piece)
            seconds = seconds[: target - rows]
            frame = pd.DataFrame(signals[: len(seconds)].round(5),
                                 columns=["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"])
            frame.insert(0, "time", (offset + np.arange(len(seconds)) / rate).round(4))
            frame["activity"] = labels[: len(seconds)]
            frame.to_csv(handle, index=False, header=rows == 0)
            rows += len(frame)
            offset += len(frame) / rate
            piece += 1
    return rows


def measured(command: list[str]) -> tuple[float, float]:
    """(seconds, peak RSS in MiB) of `command` run in a child process of a fresh interpreter."""
    probe = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
             "code = subprocess.run(sys.argv[1:]).returncode; s = time.perf_counter() - t; "
             "print(f'@@ {s:.2f} {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.1f}'); "
             "sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", probe, *command], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    line = next(line for line in done.stdout.splitlines() if line.startswith("@@ "))
    seconds, mib = map(float, line.split()[1:])
    return seconds, mib


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--work", type=Path, required=True, help="folder for the recording and the outputs")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    harlab = [sys.executable, "-m", "harlab"]
    day = args.work / "day.csv"
    if not day.exists():
        start = time.perf_counter()
        rows = write_day(day, args.hours)
        size = day.stat().st_size / 2**20
        print(f"wrote {day}: {rows:,} rows, {size:.0f} MiB in {time.perf_counter() - start:.0f} s")
    short = args.work / "short.csv"
    if not (args.work / "bundle").exists():
        write_day(short, 0.25, seed=1000)
        subprocess.run([*harlab, "data", "import", str(short), "--out", str(args.work / "short-ds")], check=True,
                       capture_output=True)
        subprocess.run([*harlab, "train", "--dataset", str(args.work / "short-ds"), "--model", "cnn", "--epochs", "2",
                        "--repeats", "1", "--param", "filters=16", "--save", str(args.work / "bundle"), "--out",
                        str(args.work / "runs")], check=True, capture_output=True)
    hour = args.work / "hour.csv"
    if not hour.exists():
        with day.open() as source, hour.open("w") as target:
            for _ in range(3600 * 50 + 1):
                target.write(source.readline())
    print(f"{'command':<12} {'recording':<10} {'rows':>10} {'seconds':>8} {'peak MiB':>9}")
    for name in ("data import", "predict"):
        for recording in (hour, day):
            command = ([*harlab, "data", "import", str(recording), "--out", str(args.work / f"{recording.stem}-ds")]
                       if name == "data import" else
                       [*harlab, "predict", str(args.work / "bundle"), str(recording), "--out",
                        str(args.work / "timeline.csv"), "--smoothing", "hmm"])
            seconds, mib = measured(command)
            rows = sum(1 for _ in recording.open()) - 1
            print(f"{name:<12} {recording.stem:<10} {rows:>10,} {seconds:8.1f} {mib:9.0f}")
    print(f"python {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB (this script)")


if __name__ == "__main__":
    main()
