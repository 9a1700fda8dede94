"""`harlab reproduce`: the tutorials' eight experiments and one report beside the tutorials' figures."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from harlab.cli.common import DataDir, Device, Precision, Replicas, Threads, Workers, app, set_threads
from harlab.cli.experiment import run_with_progress
from harlab.console import say


@app.command("reproduce")
def reproduce(
    quick: Annotated[bool, typer.Option("--quick", help="Smoke test: 2 repeats of 1 epoch per configuration.")
                     ] = False,
    only: Annotated[list[str] | None, typer.Option(help="Run only this experiment (repeatable): cnn, "
                                                   "standardize, filters, kernel-size, multihead_cnn, lstm, "
                                                   "cnn_lstm, convlstm.")] = None,
    out: Annotated[Path | None, typer.Option(help="Results folder (default results/reproduce, or "
                                             "results/reproduce-quick); rerun to resume.")] = None,
    data_dir: DataDir = None,
    threads: Threads = None,
    device: Device = None,
    workers: Workers = None,
    replicas: Replicas = None,
    precision: Precision = None,
) -> None:
    """The tutorials' eight experiments (180 models) and one HTML report beside the tutorials' figures."""
    from harlab import api
    from harlab.experiments.reproduce import tutorial_specs
    from harlab.reports.analysis import summary_lines
    from harlab.reports.html import reproduce_report
    from harlab.training.device import resolve_device

    set_threads(threads)
    start = time.perf_counter()
    specs = tutorial_specs(quick, only, {"precision": precision} if precision else None)
    resolve_device(device)  # a missing GPU is one line now, not after loading the data
    data = api.load_dataset(None, data_dir)
    out = out or Path("results") / ("reproduce-quick" if quick else "reproduce")
    for i, spec in enumerate(specs):
        say(f"{spec.name}: {spec.description}")
        run_with_progress(spec, out / spec.name, data=data, shared=[out / s.name for s in specs[:i]], device=device,
                          workers=workers, replicas=replicas)
    results = [api.Results(out / spec.name).analysis() for spec in specs]
    for result in results:
        print(f"{result.name}:")
        for line in summary_lines(result):
            print("  " + line)
    wall = time.perf_counter() - start
    training = sum(row["fit_seconds"] for r in results for c in r.configurations for row in c.rows
                   if "copied_from" not in row)
    note = (f"{sum(r.finished for r in results)} runs on {data.provenance.dataset}, {training / 60:.1f} min of "
            f"training in all; this invocation took {wall / 60:.1f} min" + (" (quick: 2 repeats of 1 epoch)"
                                                                            if quick else ""))
    say(f"{note}; report: {reproduce_report(results, out, note)}")
