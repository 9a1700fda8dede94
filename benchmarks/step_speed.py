"""Milliseconds per training step, and the GFLOP/s they amount to, per tutorial model: the training core's
`fit` for one epoch on `--windows` random windows of the UCI HAR shape (9 channels × 128 steps, 6 classes) at
the model's own batch size, after a warm-up epoch.

Usage:
  python benchmarks/step_speed.py [--models cnn,lstm] [--windows 2048] [--threads 2] [--precision fp32]
  python benchmarks/step_speed.py --processes 2 --threads 1     # two such fits at once, one thread each

With --components, times instead the pieces each choice of the fast path rests on, alone: the dropout mask
(torch's bernoulli_ against one uniform draw compared in place) on the CNN's largest activation, and one AdamW
step over the CNN's parameters as a per-tensor loop, foreach and fused.

With --replicas R, one process trains R seeds at once as replicas (harlab.training.replicas, one batched
computation); the line reports ms per replica step (the batch's time / R) and the steps per second of all
replicas, to compare with R fits one after another (--replicas 1) on the same device (--device).

With --processes P, P processes each time the same fit at the same moment and the line reports their mean step
time and the combined throughput (steps per second of all processes), to compare 2 processes × 1 thread with
1 process × 2 threads on the same cores. Numbers are printed (and one JSON line), never asserted; compare ratios
measured in one sitting on an otherwise idle machine. The script uses only `create_model`, `TrainConfig` and
`fit` (and `fit_replicas` with --replicas), so the same file times an older checkout
(PYTHONPATH=/path/to/old/src).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import time
from typing import Any

import torch

from harlab.models.cost import training_flops
from harlab.models.registry import create_model
from harlab.training.loop import fit
from harlab.training.replicas import fit_replicas
from harlab.training.settings import defaults_of

SHAPE = (9, 128, 6)  # UCI HAR: channels, timesteps, classes
TUTORIAL_MODELS = ("cnn", "multihead_cnn", "lstm", "cnn_lstm", "convlstm")


def time_model(name: str, windows: int, threads: int, options: dict[str, Any], replicas: int = 1,
               device: str = "cpu") -> dict[str, Any]:
    """One warm-up epoch, then one timed epoch of `name`'s fit (of `replicas` seeds at once as replicas, when more
    than 1) on random windows: ms per step (per replica) and GFLOP/s."""
    torch.set_num_threads(threads)
    generator = torch.Generator().manual_seed(0)
    X = torch.randn(windows, SHAPE[0], SHAPE[1], generator=generator)
    y = torch.arange(windows) % SHAPE[2]
    defaults = defaults_of(name)
    config = dataclasses.replace(defaults, epochs=1, validation_split=0.0, patience=None, **options)

    def train(windows_used: int) -> None:
        models = [create_model(name, *SHAPE) for _ in range(replicas)]
        if replicas == 1:
            fit(models[0], X[:windows_used], y[:windows_used], config, seed=1, device=device)
        else:
            fit_replicas(models, X[:windows_used], y[:windows_used], config, list(range(replicas)), device=device)

    train(config.batch_size * 4)  # warm-up
    start = time.perf_counter()
    train(windows)
    seconds = time.perf_counter() - start
    steps = -(-windows // config.batch_size) * replicas
    flops = training_flops(create_model(name, *SHAPE), *SHAPE) * windows * replicas
    return {"model": name, "batch_size": config.batch_size, "ms_per_step": round(1000 * seconds / steps, 2),
            "gflops_per_s": round(flops / seconds / 1e9, 1), "threads": threads, "replicas": replicas,
            "device": device, **options}


def _milliseconds(work: Any, repeats: int = 200) -> float:
    for _ in range(10):
        work()
    start = time.perf_counter()
    for _ in range(repeats):
        work()
    return round(1000 * (time.perf_counter() - start) / repeats, 3)


def time_components(threads: int) -> dict[str, float]:
    """Milliseconds of the dropout masks and of the AdamW implementations on the tutorial CNN's shapes."""
    torch.set_num_threads(threads)
    activation = torch.randn(32, 64, 124)  # the CNN's activation under dropout, batch 32
    times = {"mask_bernoulli_ms": _milliseconds(lambda: torch.empty_like(activation).bernoulli_(0.5)),
             "mask_uniform_ge_ms": _milliseconds(lambda: torch.rand_like(activation).ge_(0.5))}
    model = create_model("cnn", *SHAPE)
    for parameter in model.parameters():
        parameter.grad = torch.randn_like(parameter)
    for name, options in {"loop": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}.items():
        optimizer = torch.optim.AdamW(model.parameters(), eps=1e-7, weight_decay=0.0, **options)
        times[f"adamw_{name}_ms"] = _milliseconds(optimizer.step)
    return times


def _worker(args: tuple[str, int, int, dict[str, Any], Any]) -> dict[str, Any]:
    name, windows, threads, options, barrier = args
    barrier.wait()
    return time_model(name, windows, threads, options)


def time_parallel(name: str, windows: int, threads: int, processes: int, options: dict[str, Any]) -> dict[str, Any]:
    """`processes` simultaneous fits: their mean ms per step and the steps per second of all of them together."""
    context = multiprocessing.get_context("spawn")
    with multiprocessing.Manager() as manager:
        barrier = manager.Barrier(processes)
        with context.Pool(processes) as pool:
            rows = pool.map(_worker, [(name, windows, threads, options, barrier)] * processes)
    mean_ms = sum(r["ms_per_step"] for r in rows) / processes
    return {**rows[0], "processes": processes, "ms_per_step": round(mean_ms, 2),
            "steps_per_s_all": round(sum(1000 / r["ms_per_step"] for r in rows), 1),
            "gflops_per_s": round(sum(r["gflops_per_s"] for r in rows), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(TUTORIAL_MODELS))
    parser.add_argument("--windows", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--replicas", type=int, default=1, help="seeds trained at once as replicas (fit_replicas)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default=None, help="fp32 or bf16 (a TrainConfig setting; omit on old code)")
    parser.add_argument("--components", action="store_true", help="time the dropout masks and AdamW variants")
    args = parser.parse_args()
    if args.components:
        times = time_components(args.threads)
        for name, ms in times.items():
            print(f"{name:22s} {ms:8.3f} ms")
        print(json.dumps({"components": times, "threads": args.threads}))
        return
    options = {"precision": args.precision} if args.precision else {}
    results = []
    for name in args.models.split(","):
        if args.processes > 1:
            row = time_parallel(name, args.windows, args.threads, args.processes, options)
        else:
            row = time_model(name, args.windows, args.threads, options, args.replicas, args.device)
            row["steps_per_s_all"] = round(1000 / row["ms_per_step"], 1)
        results.append(row)
        print(f"{name:15s} batch {row['batch_size']:4d}  {row['ms_per_step']:8.2f} ms/step  "
              f"{row['steps_per_s_all']:7.1f} steps/s in all  {row['gflops_per_s']:6.1f} GFLOP/s  "
              f"({args.processes} process(es) × {args.threads} thread(s), {args.replicas} replica(s) on "
              f"{args.device})", flush=True)
    print(json.dumps({"step_speed": results}))


if __name__ == "__main__":
    main()
