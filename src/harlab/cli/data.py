"""`harlab data`: fetch, import, inspect and plot datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harlab.cli.common import DataDir, Step, Transitions, Window, data_app, dataset_options, names, progress_bar
from harlab.console import say
from harlab.errors import HarlabError


@data_app.command("fetch")
def data_fetch(dataset: str, data_dir: DataDir = None, window: Window = None, step: Step = None,
               transitions: Transitions = False,
               extract: Annotated[Path | None, typer.Option(help="Also unpack the dataset's zip archive into "
                                                            "this new folder (entries checked, all or nothing).",
                                                            file_okay=False)] = None) -> None:
    """Download (or find) a dataset, verify it, and cache its windows."""
    from harlab.data.datasets import load_dataset
    from harlab.data.fetch import safe_extract_zip

    ws = load_dataset(dataset, data_dir, **dataset_options(window, step, transitions))
    p = ws.provenance
    say(f"{dataset}: {len(ws)} windows from {p.source} (sha256 {p.sha256}, {p.options.get('origin')})")
    if extract is not None:
        if Path(p.source).suffix != ".zip":
            raise HarlabError(f"{p.source}: not a zip archive, nothing to extract (it is read in place)")
        say(f"extracted into {safe_extract_zip(Path(p.source), extract)}")



@data_app.command("import")
def data_import(
    paths: Annotated[list[Path], typer.Argument(help="CSV or Parquet recordings, per-sensor recordings (a folder "
                                                "or zip as a phone app exports it), or folders of them.")],
    out: Annotated[Path, typer.Option(help="New dataset folder (windows.npz + dataset.json) for --dataset.",
                                      file_okay=False)],
    time_column: Annotated[str | None, typer.Option(help="Timestamp column (default time).")] = None,
    label_column: Annotated[str | None, typer.Option(help="Activity column (default activity).")] = None,
    subject_column: Annotated[str | None, typer.Option(help="Subject column (default: one subject a file).")] = None,
    session_column: Annotated[str | None, typer.Option(help="Session column (rows of one session form one "
                                                       "recording).")] = None,
    channels: Annotated[str | None, typer.Option(help="Signal columns a,b,c (default: the other numeric ones).")
                        ] = None,
    rate: Annotated[float | None, typer.Option(help="Target rate in Hz (default: the recordings' own).")] = None,
    window: Annotated[int | None, typer.Option(help="Window length in samples (default 128).")] = None,
    step: Annotated[int | None, typer.Option(help="Samples between windows (default window // 2).")] = None,
    purity: Annotated[float | None, typer.Option(help="Drop windows whose majority label covers less than "
                                                 "this share (default 0).")] = None,
    max_gap: Annotated[float | None, typer.Option(help="Seconds; a longer gap splits a recording (default 0.5).")
                       ] = None,
    pipeline: Annotated[str | None, typer.Option(help="none, or uci-har (median + 20 Hz low-pass, gravity "
                                                 "split, UCI HAR channel names).")] = None,
    align: Annotated[str | None, typer.Option(help="stretch (default), or label: windows inside each run of one "
                                              "label, from its start, as UCI HAR cut them.")] = None,
    time_unit: Annotated[str | None, typer.Option(help="auto, s, ms, us, ns or datetime (default auto).")] = None,
    test_subjects: Annotated[str | None, typer.Option(help="Test subjects 1,2 (default: a seeded 30 %).")] = None,
    labels: Annotated[list[Path] | None, typer.Option(help="Interval file(s) of start, end, label (and recording): "
                                                      "the activities, apart from the signals.", dir_okay=False)
                      ] = None,
    label_times: Annotated[str | None, typer.Option(help="Interval times on the recording's clock, or elapsed "
                                                    "seconds since its start: auto (default), clock, elapsed.")
                           ] = None,
    acc_units: Annotated[str | None, typer.Option(help="The accelerometer's unit, converted to g: g or m/s2 "
                                                  "(default: as the export says, else as they are).")] = None,
    gyro_units: Annotated[str | None, typer.Option(help="The gyroscope's unit, converted to rad/s: rad/s or deg/s "
                                                   "(default: as the export says, else as they are).")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML file of import options (same keys); the options "
                                                "above override it.", dir_okay=False)] = None,
) -> None:
    """Cut your own recordings (CSV/Parquet, one row a sample, or per-sensor exports) into a dataset folder."""
    from harlab.data.blocks import count_rows
    from harlab.data.recordings import ImportOptions, import_recordings, input_files

    values = ImportOptions.from_yaml(config).model_dump(exclude_unset=True) if config else {}
    try:
        subjects = None if test_subjects is None else [int(s) for s in names(test_subjects) or []]
    except ValueError:
        raise HarlabError(f"--test-subjects {test_subjects!r}: expected subject numbers, e.g. 2,5") from None
    given = {"time_column": time_column, "label_column": label_column, "subject_column": subject_column,
             "session_column": session_column, "channels": names(channels), "rate": rate, "window": window,
             "step": step, "purity": purity, "max_gap_s": max_gap, "pipeline": pipeline, "align": align,
             "time_unit": time_unit, "test_subjects": subjects, "labels": [str(p) for p in labels or []] or None,
             "label_times": label_times, "acc_units": acc_units, "gyro_units": gyro_units}
    values.update({k: v for k, v in given.items() if v is not None})
    options = ImportOptions.parse(values, "command line")
    rows = sum(count_rows(path) or 0 for path in input_files(paths, options.time_column))
    with progress_bar("reading (rows)", rows or None) as (progress, task):
        ws = import_recordings(paths, options, out, lambda done: progress.update(task, completed=done))
    train, test = ws.split()
    print(f"{out}: {len(ws)} windows of {ws.window} samples every {ws.step}, {len(ws.channels)} channels at "
          f"{ws.sampling_rate:g} Hz ({', '.join(ws.channels)})")
    for i, name in enumerate(ws.classes):
        print(f"  {name}: {int((train.y == i).sum())} train, {int((test.y == i).sum())} test")
    if ws.test_mask is not None:
        print(f"subject {int(ws.subject[0])}, split in time: {len(train)} train, {len(test)} test windows")
    else:
        print(f"train subjects: {' '.join(map(str, sorted(set(train.subject.tolist()))))}; "
              f"test subjects: {' '.join(map(str, ws.test_subjects))}")
    print(f"skipped: {ws.provenance.note or 'nothing'}")


@data_app.command("info")
def data_info(dataset: str, data_dir: DataDir = None, window: Window = None, step: Step = None,
              transitions: Transitions = False) -> None:
    """Shapes, classes with counts, subjects per split, provenance."""
    from harlab.data.datasets import load_dataset

    ws = load_dataset(dataset, data_dir, **dataset_options(window, step, transitions))
    train, test = ws.split()
    out = Console(highlight=False, soft_wrap=True)
    out.print(f"[bold]{dataset}[/]: X {list(ws.X.shape)} {escape('[samples, time, channels]')} float32, "
              f"{ws.sampling_rate:g} Hz, windows of {ws.window} samples every {ws.step}")
    out.print(f"channels: {', '.join(ws.channels)}")
    table = Table("class", "train", "test", "total")
    for i, name in enumerate(ws.classes):
        a, b = int((train.y == i).sum()), int((test.y == i).sum())
        table.add_row(f"{i} {name}", str(a), str(b), str(a + b))
    table.add_row("all", str(len(train)), str(len(test)), str(len(ws)), style="bold")
    out.print(table)
    for name, part in (("train", train), ("test", test)):
        subjects = sorted(set(part.subject.tolist()))
        out.print(f"{name} subjects ({len(subjects)}): {' '.join(map(str, subjects))}")
    p = ws.provenance
    note = f"; {p.note}" if p.note else ""
    out.print(escape(f"provenance: {p.source} sha256 {p.sha256} ({p.options.get('origin')}){note}"))


@data_app.command("plot")
def data_plot(dataset: str, out: Annotated[Path, typer.Option(help="Figure file (.png, .svg or .pdf).")] = Path(
        "channel-histograms.png"), data_dir: DataDir = None, standardize: bool = False, window: Window = None,
        step: Step = None, transitions: Transitions = False) -> None:
    """The tutorial's figure: a histogram per channel of the training windows, overlap removed."""
    from dataclasses import replace

    from harlab.data.datasets import load_dataset
    from harlab.data.transforms import Standardizer
    from harlab.reports.plots import channel_histograms, save_figure

    train, _ = load_dataset(dataset, data_dir, **dataset_options(window, step, transitions)).split()
    if standardize:
        train = replace(train, X=Standardizer.fit(train).apply(train.X))
    save_figure(channel_histograms(train), out)
    say(f"wrote {out}")

