"""Transfer to a dataset the pretrained models never saw: BasicMotions (aeon's copy, read from the installed package).

BasicMotions: a smartwatch's accelerometer and gyroscope, 4 activities (standing, walking, running, badminton),
10 s at 10 Hz per recording, 40 training and 40 test recordings (aeon's own split: the recordings do not say which
of the four students made them, so a split by subject is impossible). Its accelerometer has gravity removed and
reads in m/s².

Each recording is written as a CSV file as a user would have it (time in s, acc_*, gyro_*, activity) and imported
through harlab's recordings path (`import_recordings`: resampled to 50 Hz, windows of 128 samples with a step of
64, the UCI HAR pipeline, m/s² converted to g; 6 windows per recording). One experiment then trains, 10 seeds
each, on the 40 training recordings and tests on the 40 others:

- resnet1d from scratch (the modern recipe);
- pretrained:hapt-resnet1d fine-tuned (`init`: a new head for the 4 new classes, learning rate 1e-4);
- pretrained:hapt-acc fine-tuned (it picks its accelerometer channels by name).

The experiment's report gives mean ± std, CIs, Welch's tests with Holm's correction and Friedman/Nemenyi.

    python benchmarks/basic_motions.py --work /tmp/basic-motions
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from harlab import api
from harlab.data.recordings import ImportOptions, import_recordings, load_recordings_dataset
from harlab.deploy.pretrained import pretrained_models
from harlab.reports.analysis import comparison_lines, ranking_lines, summary_lines

SOURCE_RATE, CHANNELS = 10.0, ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"]


def write_recordings(folder: Path) -> tuple[list[Path], list[int]]:
    """Every BasicMotions series as a CSV recording (training ones first); (paths, test subjects)."""
    from aeon.datasets import load_basic_motions

    folder.mkdir(parents=True, exist_ok=True)
    paths, test = [], []
    for split in ("train", "test"):
        X, y = load_basic_motions(split=split)
        for series, activity in zip(X, y, strict=True):
            number = len(paths) + 1
            frame = pd.DataFrame(series.T, columns=CHANNELS)
            frame.insert(0, "time", np.arange(series.shape[1]) / SOURCE_RATE)
            frame["activity"] = activity
            paths.append(folder / f"bm-{number:03d}.csv")
            frame.to_csv(paths[-1], index=False)
            if split == "test":
                test.append(number)
    return paths, test


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("results/basic-motions"))
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    windows = args.work / "windows"
    if not (windows / "dataset.json").is_file():
        paths, test = write_recordings(args.work / "recordings")
        options = ImportOptions(rate=50, window=128, step=64, pipeline="uci-har", acc_units="m/s2",
                                time_unit="s", test_subjects=test)
        import_recordings(paths, options, windows)
    data = load_recordings_dataset(windows)
    train, test_windows = data.split()
    print(f"BasicMotions: {len(train)} training and {len(test_windows)} test windows, classes {data.classes}")
    shipped = [m.name for m in pretrained_models()]
    variants = [{"model": "resnet1d"}, *({"init": f"pretrained:{name}"} for name in shipped)]
    spec = {"name": "basic-motions-transfer", "dataset": str(windows), "repeats": args.repeats, "seed": 0,
            "description": "BasicMotions (aeon): resnet1d from scratch vs the pretrained HAPT models fine-tuned",
            "variants": variants}
    results = api.run_experiment(spec, args.work / "experiment", data=data)
    analysis = results.analysis()
    print("\n".join([*summary_lines(analysis), *comparison_lines(analysis), *ranking_lines(analysis)]))
    print(f"report: {results.report()}")


if __name__ == "__main__":
    main()
