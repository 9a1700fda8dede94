"""`harlab predict` on real long recordings: the HAPT experiments of the UCI HAR test subjects, written as CSV files
the way a user would have them (time, acc and gyro axes, activity, subject), predicted by a bundle trained on the
training subjects and by its ONNX export; per-sample agreement of the timeline with the labelled segments
(transitions and unlabelled stretches left out), per recording and overall.

Usage: python benchmarks/predict_hapt.py [--data-dir ../shared/data] [--bundle DIR] [--smoothing 1,5,hmm]
                                        [--out DIR]

Without --bundle it trains the tutorial CNN (10 epochs, one run) first. --smoothing lists the smoothings to
compare: a number of windows averaged (1: none) or hmm (Viterbi with the bundle's transition matrix). Prints one
JSON line per recording and a summary; numbers are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd
from seeded_runs import train_repeats

from harlab.data import hapt
from harlab.data.datasets import load_dataset
from harlab.data.fetch import local_data_dir
from harlab.data.recordings import export_recordings
from harlab.deploy.onnx_export import export_onnx
from harlab.deploy.predict import open_model, parse_smoothing, predict_file, timeline, timeline_agreement
from harlab.training.settings import RepeatConfig


def train_bundle(data_dir: Path | None, out: Path) -> Path:
    data = load_dataset("hapt", data_dir)
    config = RepeatConfig(model="cnn", repeats=1)
    bundle = out / "bundle"
    train_repeats(data, config, out / "train", "predict-hapt", save=bundle)  # the bundle of the run trained now
    return bundle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--bundle", type=Path, default=None)
    parser.add_argument("--smoothing", default="1,5,hmm", help="comma-separated: windows averaged, or hmm")
    parser.add_argument("--out", type=Path, default=Path("results/predict-hapt"))
    args = parser.parse_args()
    smoothings = [parse_smoothing(text) for text in args.smoothing.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    bundle = args.bundle or train_bundle(args.data_dir, args.out)
    loaded = open_model(bundle)
    from harlab.deploy.bundle import load_bundle

    onnx_path = export_onnx(load_bundle(bundle), args.out / "model.onnx")
    recordings, activities = hapt.read_recordings(hapt.locate(local_data_dir(args.data_dir)))
    test = [r for r in recordings if r.subject in hapt.UCI_HAR_TEST_SUBJECTS]
    totals = {f"{engine}_{smoothing}": [0.0, 0] for engine in ("bundle", "onnx") for smoothing in smoothings}
    for recording in test:
        path, = export_recordings([recording], dict(enumerate(activities, start=1)), args.out / "recordings")
        labels = pd.read_csv(path, keep_default_na=False)["activity"].to_numpy(dtype=str)
        row = {"recording": path.name, "samples": len(labels)}
        for engine, model in (("bundle", loaded), ("onnx", open_model(onnx_path))):
            for smoothing in smoothings:
                name = f"{engine}_{smoothing}"
                start = time.perf_counter()
                windows = predict_file(model, path, smoothing=smoothing)
                agreement, compared = timeline_agreement(timeline(windows), labels, model.sampling_rate,
                                                         model.classes)
                row |= {f"{name}_agreement": round(agreement, 4), f"{name}_seconds": round(
                    time.perf_counter() - start, 2)}
                totals[name][0] += agreement * compared
                totals[name][1] += compared
        print(json.dumps(row), flush=True)
    print(json.dumps({"recordings": len(test), "compared_samples": next(iter(totals.values()))[1], **{
        f"{name}_overall_agreement": round(total / max(count, 1), 4) for name, (total, count) in totals.items()},
        "bundle_test_accuracy": json.loads(
            (bundle / "manifest.json").read_text())["metrics"]["accuracy"]}))


if __name__ == "__main__":
    sys.exit(main())
