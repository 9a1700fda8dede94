"""Model zoo at the tutorials' accuracy: every tutorial model, R seeded runs with its tutorial defaults, on
the real `hapt` test split.

Usage:
  python benchmarks/model_zoo.py --data-dir ../shared/data [--repeats 10] [--models lstm convlstm]
         [--out benchmarks/results/zoo]

Each model's runs go to the results folder OUT/<model>/ after every run, so an interrupted benchmark resumes where
it stopped. Prints one JSON line per model: mean ± std test accuracy (%), seconds per fit, the tutorial's
figure and the bar this project holds itself to. Numbers are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from seeded_runs import summary_dict, train_repeats

from harlab.data.datasets import load_dataset
from harlab.training.settings import RepeatConfig

# model: (the tutorial's 10-run mean, the bar harlab must reach)
TUTORIAL = {"cnn": (90.9, 90.0), "multihead_cnn": (91.6, 91.0), "lstm": (89.7, 89.0), "cnn_lstm": (90.7, 90.0),
            "convlstm": (90.8, 90.0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--models", nargs="+", default=list(TUTORIAL), choices=list(TUTORIAL))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/zoo"))
    args = parser.parse_args()

    data = load_dataset("hapt", args.data_dir)
    args.out.mkdir(parents=True, exist_ok=True)
    for model in args.models:
        config = RepeatConfig(model=model, repeats=args.repeats, seed=args.seed)
        results = train_repeats(data, config, args.out / model, f"model-zoo-{model}",
                                on_run=lambda run, m=model: print(f"  {m} #{run.repeat}: {run.accuracy * 100:.2f} "
                                                                  f"({run.fit_seconds:.1f} s)", flush=True))
        fits = [run["fit_seconds"] for run in results.store.rows()]
        tutorial, bar = TUTORIAL[model]
        summary = summary_dict(results)
        print(json.dumps({"model": model, **{k: round(v, 2) for k, v in summary.items()},
                          "fit_s": round(float(np.mean(fits)), 1), "tutorial": tutorial, "bar": bar,
                          "meets_bar": summary["mean"] >= bar}), flush=True)


if __name__ == "__main__":
    main()
