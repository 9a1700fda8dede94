"""The Keras yardstick for `harlab reproduce`: the tutorials' Keras code trained on the same hapt windows, for
every configuration of the eight tutorial experiments, timed per fit.

Usage:
  python benchmarks/keras_protocol.py --keras-python /path/to/tf-venv/bin/python [--repeats 1]
         [--data-dir ../shared/data] [--out keras-protocol.json]

With fewer repeats than the protocol's 10, each experiment's Keras time is extrapolated from the measured
mean seconds per fit (a Keras fit's time hardly varies between seeds); the JSON says which. Prints one line
per configuration and per experiment; numbers are printed, never asserted. Run it on an otherwise idle machine,
in the same sitting as `benchmarks/protocol_speed.py`, and compare ratios, never times from different days.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
from keras_reference import DEFAULT_SCRIPT, run_keras, write_windows

from harlab.data.datasets import load_dataset
from harlab.environment import describe_environment, now_iso
from harlab.experiments.reproduce import tutorial_specs
from harlab.files import atomic_write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keras-python", required=True, help="python of a virtualenv with tensorflow-cpu")
    parser.add_argument("--keras-script", type=Path, default=DEFAULT_SCRIPT)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=10, help="fits measured per configuration")
    parser.add_argument("--out", type=Path, default=Path("keras-protocol.json"))
    args = parser.parse_args()

    data = load_dataset("hapt", args.data_dir)
    train, test = data.split()
    experiments = []
    with tempfile.TemporaryDirectory() as tmp:
        npz = write_windows(train, test, Path(tmp) / "windows.npz")
        for spec in tutorial_specs():
            configurations = []
            for configuration in spec.configurations():
                config = configuration.config
                runs = run_keras(args.keras_python, args.keras_script, npz, config.model, args.repeats,
                                 config.standardize, config.hyperparameters)
                fit_s = float(np.mean([r["fit_s"] for r in runs]))
                accuracies = [r["acc"] for r in runs]
                row = {"label": configuration.label, "measured_fits": len(runs), "fit_s": round(fit_s, 2),
                       "protocol_s": round(fit_s * spec.repeats, 1), "accuracies": accuracies,
                       "mean": round(float(np.mean(accuracies)), 2)}
                configurations.append(row)
                print(json.dumps({"experiment": spec.name, **row}), flush=True)
            total = sum(c["protocol_s"] for c in configurations)
            experiments.append({"experiment": spec.name, "protocol_s": round(total, 1),
                                "configurations": configurations})
            print(json.dumps({"experiment": spec.name, "keras_protocol_s": round(total, 1)}), flush=True)
    record = {"repeats_measured": args.repeats, "extrapolated": args.repeats != 10, "measured": now_iso(),
              "environment": describe_environment(), "experiments": experiments,
              "protocol_s": round(sum(e["protocol_s"] for e in experiments), 1)}
    atomic_write_json(args.out, record)
    print(json.dumps({"keras_protocol_s": record["protocol_s"], "models": sum(
        len(e["configurations"]) for e in experiments) * 10, "out": str(args.out)}))


if __name__ == "__main__":
    sys.exit(main())
