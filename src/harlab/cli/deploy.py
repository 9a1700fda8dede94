"""`harlab export` and `harlab predict`: bundles to ONNX and Core ML, activities of long recordings."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from harlab.cli.common import app, progress_bar
from harlab.console import say
from harlab.errors import HarlabError


@app.command("export")
def export(
    bundle: Annotated[Path, typer.Argument(help="A bundle folder written by `harlab train --save`, or "
                                           "pretrained:NAME (harlab models list --pretrained).")],
    onnx: Annotated[Path | None, typer.Option(help="Write an ONNX model here.", dir_okay=False)] = None,
    coreml: Annotated[Path | None, typer.Option(help="Write a Core ML package (.mlpackage) here; needs "
                                                "harlab[coreml].")] = None,
    flat_input: Annotated[bool, typer.Option(help="Take flat time-major vectors [batch, time·channels] (the "
                                             "WISDM tutorial's iOS input) instead of [batch, time, channels].")
                          ] = False,
) -> None:
    """Export a bundle: raw windows in, class probabilities out, standardization included, any batch size."""
    from harlab.api import export_onnx
    from harlab.deploy.bundle import load_bundle
    from harlab.deploy.coreml_export import export_coreml
    from harlab.deploy.onnx_export import PARITY_TOLERANCE

    if onnx is None and coreml is None:
        raise HarlabError("nothing to export to: give --onnx PATH and/or --coreml PATH")
    loaded = load_bundle(bundle)
    values = f"{loaded.window * len(loaded.channels)}" if flat_input else f"{loaded.window}, {len(loaded.channels)}"
    if onnx is not None:
        path = export_onnx(loaded, onnx, flat_input)
        say(f"{path}: {loaded.manifest['model']}, input [batch, {values}], {len(loaded.classes)} class "
            f"probabilities; ONNX checker passed, ONNX Runtime matches PyTorch within {PARITY_TOLERANCE}")
    if coreml is not None:
        path = export_coreml(loaded, coreml, flat_input)
        say(f"{path}: Core ML package, input [1, {values}], outputs classLabel and classLabel_probs over "
            f"{', '.join(loaded.classes)} (runs on macOS/iOS)")


@app.command("predict")
def predict_command(
    model: Annotated[Path, typer.Argument(help="A bundle folder (harlab train --save), pretrained:NAME (a model "
                                          "shipped with harlab) or an .onnx file (harlab export --onnx).")],
    recording: Annotated[Path, typer.Argument(help="A continuous recording: CSV or Parquet with a time column and "
                                              "the model's channels (or raw acc/gyro axes), or a per-sensor "
                                              "export (a folder or zip, as phone apps write them).")],
    time_column: Annotated[str, typer.Option(help="Time column: seconds, milliseconds or date-times.")] = "time",
    rate: Annotated[float | None, typer.Option(min=0.001, help="The recording's rate in Hz when it has no time "
                                               "column.")] = None,
    step: Annotated[int | None, typer.Option(min=1, help="Samples between windows (default: half a window).")
                    ] = None,
    smoothing: Annotated[str, typer.Option(help="Average probabilities over this many windows (1: none), or hmm: "
                                           "decode them with the bundle's hidden Markov model of how the training "
                                           "activities followed each other (Viterbi).")] = "5",
    out: Annotated[Path | None, typer.Option(help="Timeline CSV (start, end, activity, confidence, windows).",
                                             dir_okay=False)] = None,
    windows_out: Annotated[Path | None, typer.Option("--windows", help="Per-window CSV with every class's "
                                                     "probability.", dir_okay=False)] = None,
    acc_units: Annotated[str, typer.Option(help="The unit of the recording's raw accelerometer columns: g, or m/s2 "
                                           "(converted to g).")] = "g",
    channels: Annotated[str | None, typer.Option(help="The recording's columns for the model's raw inputs, comma-"
                                                 "separated in their order (e.g. ax,ay,az for acc_x, acc_y, acc_z), "
                                                 "where they are named otherwise.")] = None,
    plot: Annotated[Path | None, typer.Option(help="Figure of the signals with the activity bands (.png, .svg).",
                                              dir_okay=False)] = None,
) -> None:
    """Predict the activities of a long unlabeled recording: a timeline of segments."""
    from harlab.data.blocks import count_rows
    from harlab.deploy.predict import open_model, parse_smoothing, predict_file, read_model_input, timeline
    from harlab.files import atomic_write_bytes
    from harlab.reports.plots import save_figure, timeline_figure

    decoding = parse_smoothing(smoothing)
    loaded = open_model(model)
    columns = None if channels is None else [c.strip() for c in channels.split(",") if c.strip()]
    with progress_bar(f"{recording.name} (rows)", count_rows(recording)) as (progress, task):
        windows = predict_file(loaded, recording, time_column=time_column, rate=rate, step=step, smoothing=decoding,
                               on_rows=lambda done: progress.update(task, completed=done),
                               acc_units=_acc_units(acc_units), channels=columns)
    segments = timeline(windows)
    for row in segments.itertuples(index=False):
        print(f"{row.start:9.2f} – {row.end:9.2f} s  {row.activity:<20} {row.confidence:.2f}")
    if out is not None:
        atomic_write_bytes(out, segments.to_csv(index=False, float_format="%.4f").encode())
    if windows_out is not None:
        atomic_write_bytes(windows_out, windows.to_csv(index=False, float_format="%.4f").encode())
    if plot is not None:  # the figure shows every sample: only here is the whole recording read into memory
        samples = read_model_input(loaded, recording, time_column=time_column, rate=rate,
                                   acc_units=_acc_units(acc_units), channels=columns)
        save_figure(timeline_figure(samples, loaded.sampling_rate, segments, loaded.classes,
                                    f"{recording.name}: {loaded.source}"), plot)
    say(f"{len(windows)} windows, {len(segments)} segments" + (f"; timeline in {out}" if out else ""))



def _acc_units(text: str) -> Any:
    if text not in ("g", "m/s2"):
        raise HarlabError(f"--acc-units {text!r}: give g or m/s2")
    return text
