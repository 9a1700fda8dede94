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
- pretrained:hapt-resnet1d fine-tuned (`init`, its defaults: a new head for the 4 new classes, trained at 1e-3,
  the backbone at 1e-4);
- pretrained:hapt-acc fine-tuned (it picks its accelerometer channels by name);
- both fine-tuned again with the head at 1e-4 too (`head_learning_rate`: the default before 2026-12-02), and
  with everything at the learning rate of training from scratch (1e-3).

The experiment's report gives mean ± std, CIs, Welch's tests with Holm's correction and Friedman/Nemenyi.
`--per-class N` trains on the first N training recordings of each activity only (the test stays all 40): how far
the pretrained start carries when labelled data is scarce.

    python benchmarks/basic_motions.py --work /tmp/basic-motions [--per-class 1]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from harlab import api
from harlab.data.recordings import ImportOptions, import_recordings, load_recordings_dataset
from harlab.data.windowset import WindowSet
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


def fewer_training_recordings(data: WindowSet, per_class: int) -> WindowSet:
    """`data` with only the first `per_class` training recordings (subjects) of each activity, and every test one."""
    is_test = data.is_test()
    kept = set(np.unique(data.subject[is_test]).tolist())
    for code in range(len(data.classes)):
        recordings = np.unique(data.subject[~is_test & (data.y == code)])
        kept |= set(recordings[:per_class].tolist())
    return data.select(np.isin(data.subject, sorted(kept)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("results/basic-motions"))
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--per-class", type=int, default=None, help="training recordings kept per activity")
    args = parser.parse_args()
    windows = args.work / "windows"
    if not (windows / "dataset.json").is_file():
        paths, test = write_recordings(args.work / "recordings")
        options = ImportOptions(rate=50, window=128, step=64, pipeline="uci-har", acc_units="m/s2",
                                time_unit="s", test_subjects=test)
        import_recordings(paths, options, windows)
    data = load_recordings_dataset(windows)
    if args.per_class is not None:
        data = fewer_training_recordings(data, args.per_class)
    train, test_windows = data.split()
    print(f"BasicMotions: {len(train)} training and {len(test_windows)} test windows, classes {data.classes}")
    shipped = [m.name for m in pretrained_models()]
    variants = [{"model": "resnet1d"}, *({"init": f"pretrained:{name}"} for name in shipped),
                *({"init": f"pretrained:{name}", "head_learning_rate": 1e-4} for name in shipped),
                *({"init": f"pretrained:{name}", "learning_rate": 1e-3} for name in shipped)]
    spec = {"name": "basic-motions-transfer", "dataset": str(windows), "repeats": args.repeats, "seed": 0,
            "description": "BasicMotions (aeon): resnet1d from scratch vs the pretrained HAPT models fine-tuned",
            "variants": variants}
    out = args.work / ("experiment" if args.per_class is None else f"experiment-{args.per_class}-per-class")
    results = api.run_experiment(spec, out, data=data)
    analysis = results.analysis()
    print("\n".join([*summary_lines(analysis), *comparison_lines(analysis), *ranking_lines(analysis)]))
    print(f"report: {results.report()}")


if __name__ == "__main__":
    main()
