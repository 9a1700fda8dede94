"""What each option for imbalanced classes does: the tutorial CNN trained on HAPT's training subjects subsampled to
WISDM v1.1's class proportions, then tested on the untouched test subjects. Three configurations, 10 seeds each
(an experiment with variants, so resumable): plain shuffling, class_weight=balanced, and the balanced sampler.

WISDM's six shares go to HAPT's six activities by rank: walking 38.6 %, then laying takes jogging's 31.2 %,
upstairs 11.2 %, downstairs 9.1 %, sitting 5.5 %, standing 4.4 %. The training windows kept are the largest set
with those shares (a seeded choice within each class).

Usage: python benchmarks/imbalance.py [--data-dir ../shared/data] [--repeats 10] [--out results/imbalance]

Prints accuracy, macro-F1 and balanced accuracy (mean ± std over the seeds) per configuration, the minority
classes' recall, and paired t-tests of macro-F1 against plain shuffling, as one Markdown table and one JSON line;
numbers are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy import stats

from harlab.api import run_experiment
from harlab.data.datasets import load_dataset
from harlab.data.windowset import WindowSet
from harlab.experiments.store import ResultsStore

WISDM_SHARES = {"WALKING": 0.386, "LAYING": 0.312, "WALKING_UPSTAIRS": 0.112, "WALKING_DOWNSTAIRS": 0.091,
                "SITTING": 0.055, "STANDING": 0.044}
VARIANTS = [{"sampler": "shuffle"}, {"class_weight": "balanced"}, {"sampler": "balanced"}]


def wisdm_like(data: WindowSet, seed: int = 0) -> WindowSet:
    """`data` with its training windows subsampled to WISDM's class shares; the test windows untouched."""
    is_test = np.isin(data.subject, data.test_subjects) if data.test_mask is None else data.test_mask
    counts = {name: int(np.sum(~is_test & (data.y == data.classes.index(name)))) for name in WISDM_SHARES}
    total = min(counts[name] / share for name, share in WISDM_SHARES.items())
    keep = is_test.copy()
    rng = np.random.default_rng(seed)
    for name, share in WISDM_SHARES.items():
        candidates = np.flatnonzero(~is_test & (data.y == data.classes.index(name)))
        keep[rng.choice(candidates, int(total * share), replace=False)] = True
    return data.select(keep)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("results/imbalance"))
    args = parser.parse_args()
    data = wisdm_like(load_dataset("hapt", args.data_dir))
    train, _ = data.split()
    shares = {name: round(float(np.mean(train.y == i)), 3) for i, name in enumerate(data.classes)}
    print(f"training windows: {len(train)}, shares {shares}")
    spec = {"name": "imbalance", "model": "cnn", "repeats": args.repeats, "variants": VARIANTS}
    run_experiment(spec, args.out, data=data)
    rows = ResultsStore(args.out).rows()
    table, summary = ["| configuration | accuracy | macro-F1 | balanced accuracy | recall sitting | recall standing "
                      "| macro-F1 vs shuffle (paired t) |", "|---|---|---|---|---|---|---|"], {}
    baseline = sorted((r for r in rows if r["label"] == "sampler=shuffle"), key=lambda r: r["repeat"])
    for label in dict.fromkeys(r["label"] for r in rows):
        mine = sorted((r for r in rows if r["label"] == label), key=lambda r: r["repeat"])
        values = {metric: 100 * np.array([r[metric] for r in mine])
                  for metric in ("accuracy", "macro_f1", "balanced_accuracy")}
        recall = {name: 100 * np.mean([r["per_class"][name]["recall"] for r in mine]) for name in ("SITTING",
                                                                                                   "STANDING")}
        test = stats.ttest_rel([r["macro_f1"] for r in mine], [r["macro_f1"] for r in baseline])
        p_value = "—" if label == "sampler=shuffle" else f"p = {test.pvalue:.3g}"
        summary[label] = {metric: [round(float(v.mean()), 2), round(float(v.std(ddof=1)), 2)]
                          for metric, v in values.items()} | {"recall": recall, "runs": len(mine)}
        table.append(f"| {label} | " + " | ".join(f"{v.mean():.2f} ± {v.std(ddof=1):.2f}" for v in values.values())
                     + f" | {recall['SITTING']:.1f} | {recall['STANDING']:.1f} | {p_value} |")
    print("\n".join(table))
    print(json.dumps({"imbalance": summary, "training_windows": len(train), "shares": shares}))


if __name__ == "__main__":
    main()
