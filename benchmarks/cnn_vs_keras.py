"""Tutorial CNN: harlab against the tutorials' Keras code, on the same windows, in one sitting.

Usage:
  python benchmarks/cnn_vs_keras.py --data-dir ../shared/data --repeats 10 [--standardize]
         [--keras-python /path/to/tf-venv/bin/python] [--keras-script ../shared/bench/keras_ref.py]

Writes the hapt windows as the npz the Keras script reads, runs both, and prints one JSON line per
side (mean, std, seconds per fit). Without --keras-python only harlab runs. Numbers are printed,
never asserted.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
from keras_reference import DEFAULT_SCRIPT, run_keras, write_windows
from seeded_runs import summary_dict, train_repeats

from harlab.data.datasets import load_dataset
from harlab.training.settings import RepeatConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--standardize", action="store_true")
    parser.add_argument("--keras-python", default=None)
    parser.add_argument("--keras-script", type=Path, default=DEFAULT_SCRIPT)
    args = parser.parse_args()

    data = load_dataset("hapt", args.data_dir)
    train, test = data.split()
    with tempfile.TemporaryDirectory() as tmp:
        config = RepeatConfig(model="cnn", repeats=args.repeats, seed=args.seed, standardize=args.standardize)
        results = train_repeats(data, config, Path(tmp) / "harlab", "cnn-vs-keras")
        fits = [run["fit_seconds"] for run in results.store.rows()]
        print(json.dumps({"side": "harlab", **summary_dict(results), "fit_s": round(float(np.mean(fits)), 2)}),
              flush=True)
        if args.keras_python:
            npz = write_windows(train, test, Path(tmp) / "windows.npz")
            runs = run_keras(args.keras_python, args.keras_script, npz, "cnn", args.repeats, args.standardize)
            accs = [r["acc"] for r in runs]
            fit_s = round(float(np.mean([r["fit_s"] for r in runs])), 2)
            print(json.dumps({"side": "keras", "runs": len(accs), "mean": float(np.mean(accs)),
                              "std": float(np.std(accs)), "fit_s": fit_s}))

if __name__ == "__main__":
    sys.exit(main())
