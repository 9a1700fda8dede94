"""The `harlab` command line: a thin shell over the package; each command parses, calls, prints."""

from __future__ import annotations

import errno
import os
import sys
import typing
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, get_args

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from harlab.console import console, say
from harlab.errors import HarlabError
from harlab.files import check_output_folder

app = typer.Typer(help="Human activity recognition from raw sensor signals.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
data_app = typer.Typer(help="Fetch, inspect and plot datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")
models_app = typer.Typer(help="List the registered models and show their layers.", no_args_is_help=True)
app.add_typer(models_app, name="models")
experiment_app = typer.Typer(help="Run experiments from spec files and report on them.", no_args_is_help=True)
app.add_typer(experiment_app, name="experiment")


@app.callback()
def _options(debug: Annotated[bool, typer.Option("--debug", help="Show the full traceback of an error instead "
                                                 "of one line (also HARLAB_DEBUG=1).")] = False) -> None:
    """Human activity recognition from raw sensor signals."""


DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Folder of local copies: DIR/<dataset>/ "
                                              "(default $HARLAB_DATA_DIR).", file_okay=False)]
Window = Annotated[int | None, typer.Option(help="hapt, wisdm: window length in samples (default 128, 80).")]
Step = Annotated[int | None, typer.Option(help="hapt, wisdm: step between windows in samples (default 64, 40).")]
Transitions = Annotated[bool, typer.Option("--transitions", help="hapt: 12 classes, postural transitions too.")]
Threads = Annotated[int | None, typer.Option(min=1, help="torch CPU threads (default: all cores).")]
PROGRESS_COLUMNS = (TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn())


def _set_threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


def _dataset_options(window: int | None, step: int | None, transitions: bool) -> dict[str, Any]:
    options: dict[str, Any] = {"window": window, "step": step, "transitions": transitions or None}
    return {k: v for k, v in options.items() if v is not None}


Param = Annotated[list[str] | None, typer.Option(
    help="Model hyperparameter NAME=VALUE, repeatable (see `harlab models list`); lists as 3,5,11.")]


def _parse_value(raw: str) -> Any:
    if "," in raw:
        return [_parse_value(part) for part in raw.split(",") if part]
    if raw.lower() in {"true", "false"}:
        return raw.lower() == "true"
    if raw.lower() in {"none", "null"}:
        return None
    for kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            pass
    return raw


def _parse_params(params: list[str] | None) -> dict[str, Any]:
    parsed: dict[str, Any] = {}
    for item in params or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise HarlabError(f"--param {item!r}: expected NAME=VALUE, e.g. --param filters=128")
        parsed[key.strip()] = _parse_value(raw.strip())
    return parsed


def _parse_input(text: str) -> tuple[int, int]:
    steps, sep, channels = text.lower().partition("x")
    if not (sep and steps.isdigit() and channels.isdigit()) or not int(steps) or not int(channels):
        raise HarlabError(f"--input {text!r}: expected TIMESTEPSxCHANNELS, e.g. --input 128x9")
    return int(steps), int(channels)


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


def _names(text: str | None) -> list[str] | None:
    return None if text is None else [part.strip() for part in text.split(",") if part.strip()]


@data_app.command("import")
def data_import(
    paths: Annotated[list[Path], typer.Argument(help="CSV or Parquet recordings, or folders of them.")],
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
    config: Annotated[Path | None, typer.Option(help="YAML file of import options (same keys); the options "
                                                "above override it.", dir_okay=False)] = None,
) -> None:
    """Cut your own recordings (CSV/Parquet, one row a sample) into a dataset folder for --dataset."""
    from harlab.data.recordings import ImportOptions, import_recordings

    values = ImportOptions.from_yaml(config).model_dump(exclude_unset=True) if config else {}
    try:
        subjects = None if test_subjects is None else [int(s) for s in _names(test_subjects) or []]
    except ValueError:
        raise HarlabError(f"--test-subjects {test_subjects!r}: expected subject numbers, e.g. 2,5") from None
    given = {"time_column": time_column, "label_column": label_column, "subject_column": subject_column,
             "session_column": session_column, "channels": _names(channels), "rate": rate, "window": window,
             "step": step, "purity": purity, "max_gap_s": max_gap, "pipeline": pipeline, "align": align,
             "time_unit": time_unit, "test_subjects": subjects}
    values.update({k: v for k, v in given.items() if v is not None})
    ws = import_recordings(paths, ImportOptions.parse(values, "command line"), out)
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
    from harlab.reports.plots import channel_histograms, save_figure

    train, _ = load_dataset(dataset, data_dir, **_dataset_options(window, step, transitions)).split()
    if standardize:
        train = replace(train, X=Standardizer.fit(train).apply(train.X))
    save_figure(channel_histograms(train), out)
    say(f"wrote {out}")


@models_app.command("list")
def models_list() -> None:
    """Names, architectures, tutorial training settings and hyperparameters (with defaults)."""
    from harlab.models.layers import ConvOptions
    from harlab.models.registry import get_entry, model_names

    table = Table("name", "architecture", "training", "hyperparameters")
    for name in model_names():
        e = get_entry(name)
        grouped = {field for group in e.groups.values() for field in group.model_fields}
        own = ", ".join(f"{k}={v}" for k, v in e.hyperparameters.items() if k not in grouped)
        table.add_row(name, e.summary, e.training_defaults(), own + (" + Conv1D options" if grouped else ""))
    out = Console(highlight=False, soft_wrap=True)
    out.print(table)
    out.print("Conv1D options (Keras's, applied to every convolution; --param NAME=VALUE):")
    for field, info in ConvOptions.model_fields.items():
        out.print(escape(f"  {field}={info.default}  {_describe_type(info.annotation)}"
                         + (f"  {info.description}" if info.description else "")))


def _describe_type(annotation: Any) -> str:
    choices = typing.get_args(annotation)
    if typing.get_origin(annotation) is typing.Literal:
        return " | ".join(map(str, choices))
    return " | ".join(getattr(t, "__name__", str(t)) for t in choices) if choices else annotation.__name__


@models_app.command("summary")
def models_summary(
    name: str,
    input_shape: Annotated[str, typer.Option("--input", help="Window as TIMESTEPSxCHANNELS.")] = "128x9",
    classes: Annotated[int, typer.Option(min=2, help="Number of classes.")] = 6,
    param: Param = None,
) -> None:
    """A layer table like Keras's model.summary(): layer, output shape, parameters, total."""
    from harlab.models.registry import count_parameters, create_model
    from harlab.models.summary import layer_table

    steps, channels = _parse_input(input_shape)
    model = create_model(name, channels, steps, classes, **_parse_params(param))
    table = Table("layer", "type", "output shape", "params")
    for row in layer_table(model, channels, steps):
        table.add_row(row.name, row.kind, row.output_shape, f"{row.parameters:,}")
    out = Console(highlight=False, soft_wrap=True)
    out.print(escape(f"{name} on windows of {steps} steps × {channels} channels; shapes are [batch, channels, time], "
                     "None·k means k items per window"))
    out.print(table)
    frozen = sum(b.numel() for b in model.buffers())
    out.print(f"Total params: {count_parameters(model):,}" + (f" (and {frozen:,} fixed values)" if frozen else ""))


@app.command("train")
def train(
    model: Annotated[str, typer.Option(help="Model name (see `harlab models list`).")] = "cnn",
    repeats: Annotated[int, typer.Option(min=1, help="Independently seeded runs.")] = 10,
    dataset: Annotated[str | None, typer.Option(help="uci-har, hapt or wisdm (default: uci-har, else hapt).")
                       ] = None,
    standardize: Annotated[bool, typer.Option(help="Per-channel standardization fitted on train.")] = False,
    seed: Annotated[int, typer.Option(min=0, help="Base seed; run i uses seed + i − 1.")] = 0,
    epochs: Annotated[int | None, typer.Option(min=1, help="Default: the model's tutorial setting.")] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Default: the model's tutorial setting.")] = None,
    validation_split: Annotated[float | None, typer.Option(
        min=0, max=0.99, help="Fraction of training subjects held out for validation curves and early stopping "
        "(default: the model's; 0 turns early stopping off).")] = None,
    patience: Annotated[int | None, typer.Option(min=0, help="Early-stopping patience in epochs on validation "
                                                 "loss (default: the model's).")] = None,
    early_stopping: Annotated[int | None, typer.Option(
        min=0, metavar="PATIENCE", help="Stop when the validation loss has not improved for PATIENCE epochs and "
        "restore the best epoch; validation subjects come from the training subjects (--validation-split, "
        "default 0.2).")] = None,
    schedule: Annotated[str | None, typer.Option(help="Learning rate: constant, cosine (annealed to 0) or plateau "
                                                 "(halved when the loss stalls); default: the model's.")] = None,
    weight_decay: Annotated[float | None, typer.Option(min=0, help="AdamW's decoupled weight decay (default: "
                                                       "the model's).")] = None,
    label_smoothing: Annotated[float | None, typer.Option(min=0, max=0.99, help="Label smoothing of the loss "
                                                          "(default: the model's).")] = None,
    augment: Annotated[str | None, typer.Option(help="Comma-separated augmentations of training batches: jitter, "
                                                "scaling, time_warp, rotation; 'none' for none; default: the "
                                                "model's.")] = None,
    cv: Annotated[str, typer.Option(help="Subject-wise split: fixed (the dataset's own), holdout, kfold or "
                                    "loso (leave one subject out).")] = "fixed",
    folds: Annotated[int, typer.Option(min=2, help="Folds for --cv kfold.")] = 5,
    test_fraction: Annotated[float, typer.Option(min=0.01, max=0.99, help="Test subjects' share for --cv "
                                                 "holdout.")] = 0.3,
    param: Param = None,
    out: Annotated[Path | None, typer.Option(help="Results JSON; an existing one with the same "
                                             "configuration is resumed.")] = None,
    save: Annotated[Path | None, typer.Option(help="Write a model bundle (safetensors + JSON manifest) of one "
                                              "run to this folder.", file_okay=False)] = None,
    save_repeat: Annotated[int, typer.Option(min=1, help="Which run --save keeps (chosen before training, "
                                             "never by its test score).")] = 1,
    data_dir: DataDir = None,
    window: Window = None, step: Step = None, transitions: Transitions = False,
    threads: Threads = None,
) -> None:
    """Train a model `repeats` times with different seeds and report test accuracy as mean ± std."""
    from pydantic import ValidationError

    from harlab.data.datasets import load_tutorial_dataset
    from harlab.deploy.bundle import save_run_bundle
    from harlab.evaluation.metrics import classification_report_lines
    from harlab.experiments.repeats import RepeatConfig, RunResult, run_repeats
    from harlab.experiments.spec import one_line
    from harlab.experiments.splits import SplitKind, SplitSpec
    from harlab.models.registry import get_entry

    _set_threads(threads)
    if save is not None:
        check_output_folder(save, "bundle")  # before hours of training, not after
    if cv not in get_args(SplitKind):
        raise HarlabError(f"--cv {cv}: choose one of {', '.join(get_args(SplitKind))}")
    if early_stopping is not None:
        patience = early_stopping
        if validation_split is None and not get_entry(model).validation_split:
            validation_split = 0.2
    try:
        config = RepeatConfig(
            model=model, hyperparameters=_parse_params(param), standardize=standardize, epochs=epochs,
            batch_size=batch_size, validation_split=validation_split, patience=patience, schedule=schedule,
            weight_decay=weight_decay, label_smoothing=label_smoothing,
            augment=None if augment is None else [a for a in augment.split(",") if a not in ("", "none")],
            repeats=repeats, seed=seed, split=SplitSpec(kind=cv, folds=folds, test_fraction=test_fraction, seed=seed))
    except ValidationError as exc:
        raise HarlabError(f"harlab train: {one_line(exc)}") from None
    train_config = config.train_config()
    data = load_tutorial_dataset(dataset, data_dir, **_dataset_options(window, step, transitions))
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    out = out or Path("results") / f"train-{model}-{data.provenance.dataset}-{stamp}.json"
    say(f"{model} on {data.provenance.dataset} ({len(data)} windows), {repeats} runs × "
        f"{train_config.epochs} epochs, batch {train_config.batch_size}" + (", standardized" if standardize else ""))

    with Progress(*PROGRESS_COLUMNS, console=console, transient=True) as progress:
        task = progress.add_task("epochs", total=repeats * train_config.epochs)

        def on_run(run: RunResult) -> None:
            fold = "" if run.fold == "fixed" else f"{run.fold} "
            print(f">{fold}#{run.repeat}: {run.accuracy * 100:.3f}", flush=True)

        saved: list[Path] = []

        def keep(run: RunResult, trained: Any, prepared: Any) -> None:
            if save is not None and run.repeat == save_repeat and not saved:
                saved.append(save_run_bundle(save, trained, config, data, prepared.standardizer, run))

        try:
            record = run_repeats(data, config, out, on_run=on_run, on_epoch=lambda: progress.advance(task),
                                 on_model=keep)
        except KeyboardInterrupt:
            progress.stop()
            say(f"interrupted: finished runs are kept in {out}; run the same command with --out {out} to finish")
            raise typer.Exit(130) from None
    summary = record["summary"]
    seconds = [run["fit_seconds"] for run in record["runs"]]
    for fold, fold_summary in record.get("folds", {}).items():
        print(f"{fold}: {fold_summary['mean']:.1f}% (+/-{fold_summary['std']:.1f}, {fold_summary['runs']} runs)")
    median = sorted(record["runs"], key=lambda run: run["accuracy"])[(len(record["runs"]) - 1) // 2]
    say(f"classification report of the median run ({median['fold']} #{median['repeat']}, "
        f"{median['accuracy'] * 100:.2f}%):")
    print("\n".join(classification_report_lines(median["per_class"], median["confusion"])))
    print(f"Accuracy: {summary['mean']:.1f}% (+/-{summary['std']:.1f})")
    say(f"{summary['runs']} runs, {sum(seconds) / len(seconds):.1f} s per fit; results in {out}")
    if save is not None:
        say(f"bundle of run #{save_repeat} in {saved[0]}" if saved else
            f"run #{save_repeat} finished in an earlier invocation and its weights were not kept; no bundle "
            "written (use a new --out to train it again)")


def _run_experiment(spec: Any, data: Any, out: Path, shared: Sequence[Any] = (), backend: Any = None,
                    on_run: Callable[[Any, Any], None] = lambda configuration, run: None) -> None:
    """Run `spec` (on `backend`, default in this process) with a progress bar over all its epochs and a
    tutorial-style line per finished run (also handed to `on_run`)."""
    from harlab.experiments.runner import Progress as Plan
    from harlab.experiments.runner import run_experiment

    with Progress(*PROGRESS_COLUMNS, console=console, transient=True) as progress:
        task = progress.add_task(f"{spec.name} (epochs)", total=None)

        def start(plan: Plan) -> None:
            if plan.finished_runs:
                say(f"resuming: {plan.finished_runs} of {plan.runs} runs already finished in {out}")
            progress.update(task, total=plan.epochs, completed=plan.finished_epochs)

        try:
            run_experiment(spec, data, out, shared, on_start=start,
                           on_epoch=lambda: progress.advance(task),
                           on_run=lambda c, run: (print(f">{c.label} #{run.repeat}: {run.accuracy * 100:.3f}",
                                                        flush=True), on_run(c, run)), backend=backend)
        except KeyboardInterrupt:
            progress.stop()
            say(f"interrupted: finished runs are kept in {out}; run the same command again to finish")
            raise typer.Exit(130) from None


def _report_experiment(out: Path) -> Path:
    from harlab.experiments.store import ResultsStore
    from harlab.reports.analysis import analyze, comparison_lines, ranking_lines, summary_lines
    from harlab.reports.html import experiment_report

    result = analyze(ResultsStore(out))
    for line in summary_lines(result):
        print(line)
    for line in comparison_lines(result):
        print("  " + line)
    for line in ranking_lines(result):
        print(line)
    report = experiment_report(result, out)
    say(f"{result.finished} of {result.planned} runs; report: {report}")
    return report


@experiment_app.command("run")
def experiment_run(
    spec: Annotated[Path, typer.Argument(help="Spec file (.toml, .yaml); see src/harlab/experiments/specs/.")],
    out: Annotated[Path | None, typer.Option(help="Results folder (default results/<spec name>); an "
                                             "existing one of the same experiment is resumed.")] = None,
    repeats: Annotated[int | None, typer.Option(min=1, help="Override the spec's repeats.")] = None,
    data_dir: DataDir = None,
    threads: Threads = None,
    backend: Annotated[str, typer.Option(help="Where runs train: local (this process) or ray (Ray tasks, "
                                         "one CPU each; pip install 'harlab[distributed]').")] = "local",
    address: Annotated[str | None, typer.Option(help="--backend ray: the Ray cluster's address (auto, HOST:6379, "
                                                "ray://HOST:10001; default: start Ray on this machine).")] = None,
    track: Annotated[bool, typer.Option(help="Log every run to MLflow (default store: OUT/mlflow.db; "
                                        "pip install 'harlab[track]').")] = False,
    tracking_uri: Annotated[str | None, typer.Option(help="With --track: an MLflow server or store URI (default: "
                                                     "$MLFLOW_TRACKING_URI, else the embedded store).")] = None,
) -> None:
    """Train every configuration × repeat of a spec, resumably, then summarize and write the HTML report."""
    from harlab.data.datasets import load_tutorial_dataset
    from harlab.experiments.backends import make_backend
    from harlab.experiments.spec import load_spec

    _set_threads(threads)
    runner = make_backend(backend, address)
    experiment = load_spec(spec, {"repeats": repeats} if repeats else None)
    data = load_tutorial_dataset(experiment.dataset, data_dir, **experiment.dataset_options)
    out = out or Path("results") / experiment.name
    if tracking_uri and not track:
        raise HarlabError("--tracking-uri needs --track")
    if not track:
        _run_experiment(experiment, data, out, backend=runner)
        _report_experiment(out)
        return
    from harlab.experiments.store import ResultsStore, writing
    from harlab.tracking import ExperimentTracker

    with writing(out), ExperimentTracker.open(experiment, out, tracking_uri) as tracker:  # one writer, MLflow too
        _run_experiment(experiment, data, out, backend=runner, on_run=tracker.log_run)
        tracker.finish(ResultsStore(out), _report_experiment(out))
    say(f"tracked in MLflow: {tracker.uri}")


@experiment_app.command("save")
def experiment_save(
    directory: Annotated[Path, typer.Argument(help="An experiment's results folder.", file_okay=False)],
    to: Annotated[Path, typer.Option(help="The bundle folder to write.", file_okay=False)],
    configuration: Annotated[str | None, typer.Option(help="The configuration's label as the report shows it, "
                                                      "e.g. filters=128 (default: the only one).")] = None,
    repeat: Annotated[int, typer.Option(min=1, help="Which run (its seed is the spec's seed + repeat − 1).")] = 1,
    fold: Annotated[str | None, typer.Option(help="Which fold of a cross-validation (default: the first).")] = None,
    data_dir: DataDir = None,
) -> None:
    """Save one run of an experiment as a model bundle: the run is trained again from its seed (same weights on
    CPU) and its test accuracy checked against the recorded one."""
    from harlab.data.datasets import load_tutorial_dataset
    from harlab.deploy.bundle import save_run_bundle
    from harlab.experiments.repeats import RunTrainer, split_record
    from harlab.experiments.spec import parse_spec
    from harlab.experiments.splits import folds
    from harlab.experiments.store import ResultsStore, run_place

    check_output_folder(to, "bundle")
    store = ResultsStore(directory)
    spec = parse_spec(store.spec(), directory / "spec.json")
    data = load_tutorial_dataset(spec.dataset, data_dir, **spec.dataset_options)
    if split_record(data, spec.split) != store.dataset():
        raise HarlabError(f"{directory}: the experiment ran on other data than "
                          f"{data.provenance.source}; pass the --data-dir it ran with")
    choices = {c.label: c for c in spec.configurations()}
    if configuration is None and len(choices) == 1:
        configuration = next(iter(choices))
    if configuration not in choices:
        raise HarlabError(f"--configuration {configuration}: choose one of {', '.join(choices)}")
    config = choices[configuration].config
    fold_choices = {f.name: f for f in folds(data, config.split)}
    fold = fold or next(iter(fold_choices))
    if fold not in fold_choices:
        raise HarlabError(f"--fold {fold}: choose one of {', '.join(fold_choices)}")
    chosen = fold_choices[fold]
    recorded = {run_place(r): r["accuracy"] for r in store.rows()}
    run = RunTrainer(data, chosen).run(
        config, repeat, on_model=lambda result, model, prepared: save_run_bundle(to, model, config, data,
                                                                                  prepared.standardizer, result))
    before = recorded.get((config.key(), chosen.name, repeat))
    check = "" if before is None else (" — the same as recorded" if abs(before - run.accuracy) < 1e-9 else
                                       f" — recorded {before * 100:.3f}%: this machine trains differently")
    say(f"{configuration} run #{repeat} ({chosen.name}): test accuracy {run.accuracy * 100:.3f}%{check}; "
        f"bundle in {to}")


@experiment_app.command("report")
def experiment_report_command(
    directory: Annotated[Path, typer.Argument(help="An experiment's results folder.", file_okay=False)],
) -> None:
    """Summary per configuration with 95% CIs, pairwise Welch tests, figures and DIR/report.html."""
    if not (directory / "spec.json").is_file():
        raise HarlabError(f"{directory}: not an experiment folder (no spec.json); pass the --out of "
                          "`harlab experiment run`")
    _report_experiment(directory)


@app.command("export")
def export(
    bundle: Annotated[Path, typer.Argument(help="A bundle folder written by `harlab train --save`.")],
    onnx: Annotated[Path | None, typer.Option(help="Write an ONNX model here.", dir_okay=False)] = None,
    coreml: Annotated[Path | None, typer.Option(help="Write a Core ML package (.mlpackage) here; needs "
                                                "harlab[coreml].")] = None,
    flat_input: Annotated[bool, typer.Option(help="Take flat time-major vectors [batch, time·channels] (the "
                                             "WISDM tutorial's iOS input) instead of [batch, time, channels].")
                          ] = False,
) -> None:
    """Export a bundle: raw windows in, class probabilities out, standardization included, any batch size."""
    from harlab.deploy.bundle import load_bundle
    from harlab.deploy.coreml_export import export_coreml
    from harlab.deploy.onnx_export import PARITY_TOLERANCE, export_onnx

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
    model: Annotated[Path, typer.Argument(help="A bundle folder (harlab train --save) or an .onnx file "
                                          "(harlab export --onnx).")],
    recording: Annotated[Path, typer.Argument(help="A continuous recording: CSV or Parquet with a time column and "
                                              "the model's channels (or raw acc/gyro axes).", dir_okay=False)],
    time_column: Annotated[str, typer.Option(help="Time column: seconds, milliseconds or date-times.")] = "time",
    rate: Annotated[float | None, typer.Option(min=0.001, help="The recording's rate in Hz when it has no time "
                                               "column.")] = None,
    step: Annotated[int | None, typer.Option(min=1, help="Samples between windows (default: half a window).")
                    ] = None,
    smoothing: Annotated[int, typer.Option(min=1, help="Average probabilities over this many windows.")] = 5,
    out: Annotated[Path | None, typer.Option(help="Timeline CSV (start, end, activity, confidence, windows).",
                                             dir_okay=False)] = None,
    windows_out: Annotated[Path | None, typer.Option("--windows", help="Per-window CSV with every class's "
                                                     "probability.", dir_okay=False)] = None,
    plot: Annotated[Path | None, typer.Option(help="Figure of the signals with the activity bands (.png, .svg).",
                                              dir_okay=False)] = None,
) -> None:
    """Predict the activities of a long unlabeled recording: a timeline of segments."""
    from harlab.deploy.predict import open_model, predict, read_model_input, timeline
    from harlab.files import atomic_write_bytes
    from harlab.reports.plots import save_figure, timeline_figure

    loaded = open_model(model)
    samples = read_model_input(loaded, recording, time_column=time_column, rate=rate)
    windows = predict(loaded, samples, rate=loaded.sampling_rate, time_column=None, step=step, smoothing=smoothing)
    segments = timeline(windows)
    for row in segments.itertuples(index=False):
        print(f"{row.start:9.2f} – {row.end:9.2f} s  {row.activity:<20} {row.confidence:.2f}")
    if out is not None:
        atomic_write_bytes(out, segments.to_csv(index=False, float_format="%.4f").encode())
    if windows_out is not None:
        atomic_write_bytes(windows_out, windows.to_csv(index=False, float_format="%.4f").encode())
    if plot is not None:
        save_figure(timeline_figure(samples, loaded.sampling_rate, segments, loaded.classes,
                                    f"{recording.name}: {loaded.source}"), plot)
    say(f"{len(windows)} windows, {len(segments)} segments" + (f"; timeline in {out}" if out else ""))


@app.command("tune")
def tune_command(
    spec: Annotated[Path, typer.Argument(help="Spec file (.toml, .yaml) with a search table: NAME = {low, high, "
                                         "log?, step?} or {choices = LIST}.")],
    trials: Annotated[int, typer.Option(min=1, help="Trials to finish (completed or pruned), those of an earlier "
                                        "invocation included.")] = 20,
    timeout: Annotated[float | None, typer.Option(min=1, help="Start no new trial after this many seconds.")] = None,
    out: Annotated[Path | None, typer.Option(help="Search folder (default results/<spec name>-tune); rerun to "
                                             "resume.", file_okay=False)] = None,
    repeats: Annotated[int | None, typer.Option(min=1, help="Runs of the best configuration (default: the spec's "
                                                "repeats).")] = None,
    data_dir: DataDir = None,
    threads: Threads = None,
) -> None:
    """Search a spec's hyperparameters with Optuna on validation subjects, then train the best configuration
    again and measure its test accuracy once."""
    from harlab.data.datasets import load_tutorial_dataset
    from harlab.experiments.spec import load_spec
    from harlab.experiments.tune import SEARCH_DB, TrialRecord, import_optuna, tune

    import_optuna()
    _set_threads(threads)
    experiment = load_spec(spec)
    data = load_tutorial_dataset(experiment.dataset, data_dir, **experiment.dataset_options)
    out = out or Path("results") / f"{experiment.name}-tune"
    with Progress(*PROGRESS_COLUMNS, console=console, transient=True) as progress:
        task = progress.add_task(f"{experiment.name} (trials)", total=trials)

        def start(finished: int, planned: int) -> None:
            if finished:
                say(f"resuming: {finished} of {planned} trials already finished in {out / SEARCH_DB}")
            progress.update(task, completed=min(finished, planned))

        def trial(record: TrialRecord) -> None:
            print(f">{record.line()}", flush=True)
            if record.state in ("complete", "pruned"):
                progress.advance(task)

        try:
            result = tune(experiment, data, out, trials, timeout, on_trial=trial, on_start=start,
                          on_run=lambda run: print(f">best #{run.repeat}: {run.accuracy * 100:.3f}", flush=True),
                          repeats=repeats)
        except KeyboardInterrupt:
            progress.stop()
            say(f"interrupted: finished trials and runs are kept in {out}; run the same command again to finish")
            raise typer.Exit(130) from None
    print(result.summary)
    say(f"best spec: {result.best_spec}; report: {result.report}")


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
) -> None:
    """The tutorials' eight experiments (180 models) and one HTML report beside the tutorials' figures."""
    import time

    from harlab.data.datasets import load_tutorial_dataset
    from harlab.experiments.reproduce import tutorial_specs
    from harlab.experiments.store import ResultsStore
    from harlab.reports.analysis import analyze, summary_lines
    from harlab.reports.html import reproduce_report

    _set_threads(threads)
    start = time.perf_counter()
    specs = tutorial_specs(quick, only)
    data = load_tutorial_dataset(None, data_dir)
    out = out or Path("results") / ("reproduce-quick" if quick else "reproduce")
    for i, spec in enumerate(specs):
        say(f"{spec.name}: {spec.description}")
        _run_experiment(spec, data, out / spec.name, [ResultsStore(out / s.name) for s in specs[:i]])
    results = [analyze(ResultsStore(out / spec.name)) for spec in specs]
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


_FIXES = {
    errno.ENOSPC: "the disk is full; free space and run the same command again (finished runs are kept)",
    errno.EDQUOT: "the disk quota is used up; free space and run the same command again",
    errno.EACCES: "permission denied; choose a folder you may write to, or fix its permissions",
    errno.EPERM: "not permitted; choose a folder you may write to, or fix its permissions",
    errno.EROFS: "the file system is read-only; choose a writable folder",
    errno.EISDIR: "is a folder where a file is needed; give a file path",
    errno.ENOTDIR: "part of the path is a file, not a folder; fix the path (or HARLAB_CACHE)",
    errno.ENOENT: "not found; check the path",
    errno.EEXIST: "already exists; choose another path",
    errno.ENAMETOOLONG: "the name is too long; choose a shorter path",
}


def one_line_error(exc: BaseException) -> str:
    """What the user sees for an error that escaped a command: one line with the file and the fix."""
    if isinstance(exc, HarlabError):
        return str(exc)
    if isinstance(exc, OSError):
        where = " → ".join(str(name) for name in (exc.filename, exc.filename2) if name is not None)
        fix = _FIXES.get(exc.errno or 0, f"{exc.strerror or exc}; check the path and the disk")
        return f"{where or 'a file operation'}: {fix}"
    if isinstance(exc, MemoryError):
        return ("out of memory; use fewer or shorter windows, a smaller --batch-size or model, or a machine "
                "with more memory")
    if isinstance(exc, RecursionError):
        return "the input is nested too deeply to read; check the file for runaway nesting"
    first = next(iter(str(exc).strip().splitlines()), "")
    return (f"unexpected {type(exc).__name__}" + (f" ({first[:300]})" if first else "")
            + "; run again with --debug for the traceback, and please report it")


def main() -> None:
    """Entry point: any error becomes one line on stderr and exit status 1 (`harlab --debug ...` or
    HARLAB_DEBUG=1 shows the traceback instead); Ctrl-C exits with 130."""
    try:
        app()
    except KeyboardInterrupt:
        console.print("interrupted", highlight=False)
        sys.exit(130)
    except Exception as exc:
        if _debug_wanted():
            raise
        console.print(f"[bold red]error:[/] {escape(one_line_error(exc))}", highlight=False)
        sys.exit(1)


def _debug_wanted() -> bool:
    return os.environ.get("HARLAB_DEBUG", "") not in ("", "0") or "--debug" in sys.argv[1:2]
