"""The `harlab` command line: a thin shell over the package; each command parses, calls, prints."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from harlab.console import console, say
from harlab.errors import HarlabError

app = typer.Typer(help="Human activity recognition from raw sensor signals.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
data_app = typer.Typer(help="Fetch, inspect and plot datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Folder of local copies: DIR/<dataset>/ "
                                              "(default $HARLAB_DATA_DIR).", file_okay=False)]
Window = Annotated[int | None, typer.Option(help="hapt: window length in samples (default 128).")]
Step = Annotated[int | None, typer.Option(help="hapt: step between windows in samples (default 64).")]
Transitions = Annotated[bool, typer.Option("--transitions", help="hapt: 12 classes, postural transitions too.")]


def _dataset_options(window: int | None, step: int | None, transitions: bool) -> dict[str, Any]:
    options: dict[str, Any] = {"window": window, "step": step, "transitions": transitions or None}
    return {k: v for k, v in options.items() if v is not None}


def _parse_params(params: list[str]) -> dict[str, Any]:
    parsed: dict[str, Any] = {}
    for item in params:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise HarlabError(f"--param {item!r}: expected NAME=VALUE, e.g. --param filters=128")
        try:
            value: Any = int(raw)
        except ValueError:
            try:
                value = float(raw)
            except ValueError:
                value = raw
        parsed[key] = value
    return parsed


@data_app.command("fetch")
def data_fetch(dataset: str, data_dir: DataDir = None, window: Window = None, step: Step = None,
               transitions: Transitions = False,
               extract: Annotated[Path | None, typer.Option(help="Also unpack the dataset's zip archive into "
                                                            "this new folder (entries checked, all or nothing).",
                                                            file_okay=False)] = None) -> None:
    """Download (or find) a dataset, verify it, and cache its windows."""
    from harlab.data.datasets import load_dataset
    from harlab.data.fetch import safe_extract_zip

    ws = load_dataset(dataset, data_dir, **_dataset_options(window, step, transitions))
    p = ws.provenance
    say(f"{dataset}: {len(ws)} windows from {p.source} (sha256 {p.sha256}, {p.options.get('origin')})")
    if extract is not None:
        if Path(p.source).suffix != ".zip":
            raise HarlabError(f"{p.source}: not a zip archive, nothing to extract (it is read in place)")
        say(f"extracted into {safe_extract_zip(Path(p.source), extract)}")


@data_app.command("info")
def data_info(dataset: str, data_dir: DataDir = None, window: Window = None, step: Step = None,
              transitions: Transitions = False) -> None:
    """Shapes, classes with counts, subjects per split, provenance."""
    from harlab.data.datasets import load_dataset

    ws = load_dataset(dataset, data_dir, **_dataset_options(window, step, transitions))
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
    from harlab.reports.plots import channel_histograms

    train, _ = load_dataset(dataset, data_dir, **_dataset_options(window, step, transitions)).split()
    if standardize:
        train = replace(train, X=Standardizer.fit(train).apply(train.X))
    channel_histograms(train, out)
    say(f"wrote {out}")


@app.command("models")
def models() -> None:
    """The registered models with their tutorial defaults."""
    from harlab.models.registry import get_entry, model_names

    table = Table("name", "epochs", "batch", "hyperparameters", "architecture")
    for name in model_names():
        e = get_entry(name)
        table.add_row(name, str(e.epochs), str(e.batch_size), ", ".join(f"{k}={v}" for k, v in
                                                                         e.hyperparameters.items()), e.summary)
    Console().print(table)


@app.command("train")
def train(
    model: Annotated[str, typer.Option(help="Model name (see `harlab models`).")] = "cnn",
    repeats: Annotated[int, typer.Option(min=1, help="Independently seeded runs.")] = 10,
    dataset: Annotated[str | None, typer.Option(help="uci-har or hapt (default: uci-har, else hapt).")] = None,
    standardize: Annotated[bool, typer.Option(help="Per-channel standardization fitted on train.")] = False,
    seed: Annotated[int, typer.Option(min=0, help="Base seed; run i uses seed + i − 1.")] = 0,
    epochs: Annotated[int | None, typer.Option(min=1, help="Default: the model's tutorial setting.")] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Default: the model's tutorial setting.")] = None,
    param: Annotated[list[str] | None, typer.Option(help="Model hyperparameter NAME=VALUE (repeatable).")] = None,
    out: Annotated[Path | None, typer.Option(help="Results JSON; an existing one with the same "
                                             "configuration is resumed.")] = None,
    data_dir: DataDir = None,
    window: Window = None, step: Step = None, transitions: Transitions = False,
    threads: Annotated[int | None, typer.Option(min=1, help="torch CPU threads (default: all cores).")] = None,
) -> None:
    """Train a model `repeats` times with different seeds and report test accuracy as mean ± std."""
    import torch

    from harlab.data.datasets import load_tutorial_dataset
    from harlab.experiments.repeats import RepeatConfig, RunResult, run_repeats

    if threads:
        torch.set_num_threads(threads)
    config = RepeatConfig(model=model, hyperparameters=_parse_params(param or []), standardize=standardize,
                          epochs=epochs, batch_size=batch_size, repeats=repeats, seed=seed)
    train_config = config.train_config()
    data = load_tutorial_dataset(dataset, data_dir, **_dataset_options(window, step, transitions))
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    out = out or Path("results") / f"train-{model}-{data.provenance.dataset}-{stamp}.json"
    say(f"{model} on {data.provenance.dataset} ({len(data)} windows), {repeats} runs × "
        f"{train_config.epochs} epochs, batch {train_config.batch_size}" + (", standardized" if standardize else ""))

    columns = (TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("epochs", total=repeats * train_config.epochs)

        def on_run(run: RunResult) -> None:
            print(f">#{run.repeat}: {run.accuracy * 100:.3f}", flush=True)

        try:
            record = run_repeats(data, config, out, on_run=on_run, on_epoch=lambda: progress.advance(task))
        except KeyboardInterrupt:
            progress.stop()
            say(f"interrupted: finished runs are kept in {out}; run the same command with --out {out} to finish")
            raise typer.Exit(130) from None
    summary = record["summary"]
    seconds = [run["fit_seconds"] for run in record["runs"]]
    print(f"Accuracy: {summary['mean']:.1f}% (+/-{summary['std']:.1f})")
    say(f"{summary['runs']} runs, {sum(seconds) / len(seconds):.1f} s per fit; results in {out}")


def main() -> None:
    """Entry point: user errors become one line on stderr and exit status 1."""
    try:
        app()
    except HarlabError as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(1)
