"""Inference speed of the tutorial CNN, ONNX Runtime against PyTorch, on one CPU thread: throughput (windows/s at
batch 256) and single-window latency (p50, p99).

Usage: python benchmarks/inference_speed.py [--seconds 5]

Targets set for harlab: ≥ 20,000 windows/s and ≤ 0.2 ms p50 on one core. Numbers are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime
import torch

from harlab.deploy.bundle import load_bundle, save_bundle
from harlab.deploy.onnx_export import RawWindowClassifier, export_onnx
from harlab.models.registry import create_model


def throughput(run: Callable[[np.ndarray], object], batch: np.ndarray, seconds: float) -> float:
    run(batch)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        run(batch)
        count += len(batch)
    return count / (time.perf_counter() - start)


def latencies(run: Callable[[np.ndarray], object], window: np.ndarray, seconds: float) -> tuple[float, float]:
    for _ in range(50):
        run(window)
    times, start = [], time.perf_counter()
    while time.perf_counter() - start < seconds:
        t = time.perf_counter()
        run(window)
        times.append(time.perf_counter() - t)
    return float(np.percentile(times, 50) * 1e3), float(np.percentile(times, 99) * 1e3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        bundle_dir = save_bundle(Path(tmp) / "cnn", create_model("cnn", 9, 128, 6), model_name="cnn",
                                 hyperparameters={}, channels=[f"c{i}" for i in range(9)], window=128, step=64,
                                 sampling_rate=50.0, classes=[str(i) for i in range(6)], standardizer=None,
                                 metrics={}, provenance={}, training={})
        bundle = load_bundle(bundle_dir)
        onnx_path = export_onnx(bundle, Path(tmp) / "cnn.onnx")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        wrapper = RawWindowClassifier(bundle).eval()

        def run_torch(x: np.ndarray) -> object:
            with torch.inference_mode():
                return wrapper(torch.from_numpy(x))

        def run_onnx(x: np.ndarray) -> object:
            return session.run(None, {"windows": x})

        rng = np.random.default_rng(0)
        batch = rng.standard_normal((256, 128, 9), dtype=np.float32)
        single = batch[:1].copy()
        for name, run in (("onnxruntime", run_onnx), ("pytorch", run_torch)):
            p50, p99 = latencies(run, single, args.seconds)
            print(json.dumps({"engine": name, "threads": 1, "windows_per_s_batch256": round(
                throughput(run, batch, args.seconds)), "latency_ms_p50": round(p50, 4),
                "latency_ms_p99": round(p99, 4)}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
