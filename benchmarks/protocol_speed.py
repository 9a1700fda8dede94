"""How fast harlab runs the tutorial protocol: per experiment, harlab's training seconds, the GFLOP/s it
achieved (the models' training FLOPs counted by harlab.models.cost) and the mean accuracy of each
configuration; with a Keras measurement (benchmarks/keras_protocol.py), the Keras seconds, the ratio and
Keras's accuracy beside them.

Usage:
  python benchmarks/protocol_speed.py --run [--out results/reproduce] [--data-dir ../shared/data]
  python benchmarks/protocol_speed.py --results results/reproduce [--keras keras-protocol.json]

--run times a whole `harlab reproduce` (wall clock, into a fresh --out; --device, --workers, --replicas and
--precision are passed on) and then reads it; --results reads a finished one. An experiment's seconds are the
fit times of all its runs, those it shares with another experiment included (what it would cost alone), each
divided by the runs trained at once beside it in other processes (its share of the machine; a replica's
fit_seconds is already its share of its batch; the wall clock of --run is printed too); the total counts every
distinct fit once, with its training FLOPs and the sustained GFLOP/s a 5× speed-up over Keras would take.
Prints a Markdown table and one JSON line; numbers are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from harlab.experiments.reproduce import tutorial_specs
from harlab.experiments.store import ResultsStore
from harlab.models.cost import training_flops
from harlab.models.registry import create_model
from harlab.training.settings import RepeatConfig


def fit_flops(row: dict[str, Any], dataset: dict[str, Any], cache: dict[str, int]) -> float:
    """Training FLOPs of one recorded run: per-window FLOPs × training windows × epochs it ran (a run that held
    out validation subjects is counted on all training windows: an upper bound)."""
    config = RepeatConfig(**row["config"])
    shape = (len(dataset["channels"]), dataset["window"], len(dataset["classes"]))
    if row["key"] not in cache:
        cache[row["key"]] = training_flops(create_model(config.model, *shape, **config.hyperparameters), *shape)
    return cache[row["key"]] * dataset["n_train"] * len(row["history"]["loss"])


def machine_seconds(row: dict[str, Any]) -> float:
    """A run's share of the machine: its fit seconds divided by the runs trained at once beside it."""
    return row["fit_seconds"] / row.get("workers", 1)


def analyze(root: Path, keras: dict[str, Any] | None) -> dict[str, Any]:
    keras_by_name = {e["experiment"]: e for e in keras["experiments"]} if keras else {}
    cache: dict[str, int] = {}
    experiments, distinct_seconds, distinct_flops = [], 0.0, 0.0
    order = [spec.name for spec in tutorial_specs()]
    folders = [p for p in root.iterdir() if (p / "runs.jsonl").exists()]
    folders.sort(key=lambda p: (order.index(p.name) if p.name in order else len(order), p.name))
    for directory in folders:
        store = ResultsStore(directory)
        rows, dataset, name = store.rows(), store.dataset(), store.spec()["name"]
        seconds = sum(machine_seconds(r) for r in rows)
        distinct_seconds += sum(machine_seconds(r) for r in rows if "copied_from" not in r)
        flops = sum(fit_flops(r, dataset, cache) for r in rows)
        distinct_flops += sum(fit_flops(r, dataset, cache) for r in rows if "copied_from" not in r)
        accuracy = {label: round(100 * float(np.mean([r["accuracy"] for r in rows if r["label"] == label])), 2)
                    for label in dict.fromkeys(r["label"] for r in rows)}
        entry = {"experiment": name, "runs": len(rows), "harlab_s": round(seconds, 1),
                 "gflop_per_s": round(flops / seconds / 1e9, 1), "accuracy": accuracy}
        if name in keras_by_name:
            k = keras_by_name[name]
            entry |= {"keras_s": k["protocol_s"], "ratio": round(k["protocol_s"] / seconds, 2),
                      "keras_accuracy": {c["label"]: c["mean"] for c in k["configurations"]}}
        experiments.append(entry)
    summary = {"experiments": experiments, "harlab_distinct_fit_s": round(distinct_seconds, 1),
               "distinct_training_tflop": round(distinct_flops / 1e12, 1),
               "keras_s": keras["protocol_s"] if keras else None}
    if keras:  # the sustained rate the whole protocol would need to run 5× as fast as Keras
        summary["gflop_per_s_for_5x"] = round(distinct_flops / (keras["protocol_s"] / 5) / 1e9)
    return summary


def markdown(summary: dict[str, Any]) -> str:
    lines = ["| experiment | runs | Keras s | harlab s | ratio | GFLOP/s | accuracy harlab | accuracy Keras |",
             "|---|---|---|---|---|---|---|---|"]
    for e in summary["experiments"]:
        ours = ", ".join(f"{label} {acc}" for label, acc in e["accuracy"].items())
        theirs = ", ".join(f"{label} {acc}" for label, acc in e.get("keras_accuracy", {}).items())
        lines.append(f"| {e['experiment']} | {e['runs']} | {e.get('keras_s', '—')} | {e['harlab_s']} | "
                     f"{e.get('ratio', '—')} | {e['gflop_per_s']} | {ours} | {theirs or '—'} |")
    lines.append(f"\nDistinct fits: {summary['harlab_distinct_fit_s']} s, "
                 f"{summary['distinct_training_tflop']} TFLOP of training.")
    if "gflop_per_s_for_5x" in summary:
        lines.append(f"5× Keras's {summary['keras_s']} s needs {summary['gflop_per_s_for_5x']} GFLOP/s sustained over "
                     "the whole protocol.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, help="a finished `harlab reproduce` output folder")
    parser.add_argument("--run", action="store_true", help="run `harlab reproduce` into --out first, timed")
    parser.add_argument("--out", type=Path, default=Path("results/reproduce-timed"))
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--keras", type=Path, help="JSON written by benchmarks/keras_protocol.py")
    for option in ("--device", "--workers", "--replicas", "--precision", "--only"):
        parser.add_argument(option, help=f"passed on to `harlab reproduce {option}`")
    args = parser.parse_args()
    wall = None
    if args.run:
        if args.out.exists():  # a timed run starts from nothing; never delete a folder we were merely pointed at
            parser.error(f"--out {args.out} exists; pass a new folder (or delete it yourself)")
        command = [sys.executable, "-m", "harlab", "reproduce", "--out", str(args.out)]
        if args.data_dir:
            command += ["--data-dir", str(args.data_dir)]
        for option in ("device", "workers", "replicas", "precision", "only"):
            if getattr(args, option):
                command += [f"--{option}", getattr(args, option)]
        start = time.perf_counter()
        subprocess.run(command, check=True)
        wall = round(time.perf_counter() - start, 1)
    root = args.out if args.run else args.results
    if root is None:
        parser.error("give --results DIR or --run")
    summary = analyze(root, json.loads(args.keras.read_text()) if args.keras else None)
    summary["reproduce_wall_s"] = wall
    print(markdown(summary))
    print(json.dumps(summary))


if __name__ == "__main__":
    sys.exit(main())
