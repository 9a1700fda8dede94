"""What every command shares: the Typer apps, common options, value parsing, and progress and Ctrl-C handling
written once."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from typer.core import TyperGroup

from harlab.cli.flags import as_flags
from harlab.console import console, say, show_notices
from harlab.errors import HarlabError


class _FlagSpeakingGroup(TyperGroup):
    """The command group: an error raised by the library names settings as fields (validation_split=0); here it
    leaves every command naming them as this command line's flags (--validation-split 0)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except HarlabError as exc:
            exc.args = (as_flags(str(exc)), *exc.args[1:])
            raise


app = typer.Typer(help="Human activity recognition from raw sensor signals.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False, cls=_FlagSpeakingGroup)
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
    show_notices()


DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Folder of local copies: DIR/<dataset>/ "
                                              "(default $HARLAB_DATA_DIR).", file_okay=False)]
Window = Annotated[int | None, typer.Option(help="hapt, wisdm: window length in samples (default 128, 80).")]
Step = Annotated[int | None, typer.Option(help="hapt, wisdm: step between windows in samples (default 64, 40).")]
Transitions = Annotated[bool, typer.Option("--transitions", help="hapt: 12 classes, postural transitions too.")]
Threads = Annotated[int | None, typer.Option(min=1, help="torch CPU threads (default: all cores).")]
Device = Annotated[str | None, typer.Option(help="Where to train: auto (a CUDA GPU, else Apple MPS, else the CPU), "
                                            "cpu, cuda, cuda:N or mps (default: the spec's, else auto).")]
Workers = Annotated[int | None, typer.Option(min=1, help="On a CPU: runs trained at once, each in its own process "
                                             "(default: one per core; 1: one at a time in this process).")]
Replicas = Annotated[int | None, typer.Option(min=1, help="Repeats of a configuration trained together as one "
                                              "batched computation (default: all of them on a GPU or MPS, 1 on a "
                                              "CPU).")]
Precision = Annotated[str | None, typer.Option(help="fp32, bf16 (autocast, where the CPU or GPU computes bf16 "
                                               "natively) or fp16 (CUDA GPUs) (default: each model's).")]
PROGRESS_COLUMNS = (TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn())


def set_threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


def dataset_options(window: int | None, step: int | None, transitions: bool) -> dict[str, Any]:
    options: dict[str, Any] = {"window": window, "step": step, "transitions": transitions or None}
    return {k: v for k, v in options.items() if v is not None}


Param = Annotated[list[str] | None, typer.Option(
    help="Model hyperparameter NAME=VALUE, repeatable (see `harlab models list`); lists as 3,5,11.")]


def parse_value(raw: str) -> Any:
    if "," in raw:
        return [parse_value(part) for part in raw.split(",") if part]
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


def parse_params(params: list[str] | None) -> dict[str, Any]:
    parsed: dict[str, Any] = {}
    for item in params or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise HarlabError(f"--param {item!r}: expected NAME=VALUE, e.g. --param filters=128")
        parsed[key.strip()] = parse_value(raw.strip())
    return parsed


def parse_input(text: str) -> tuple[int, int]:
    steps, sep, channels = text.lower().partition("x")
    if not (sep and steps.isdigit() and channels.isdigit()) or not int(steps) or not int(channels):
        raise HarlabError(f"--input {text!r}: expected TIMESTEPSxCHANNELS, e.g. --input 128x9")
    return int(steps), int(channels)



def names(text: str | None) -> list[str] | None:
    """A comma-separated option as a list (None when not given)."""
    return None if text is None else [part.strip() for part in text.split(",") if part.strip()]


@contextlib.contextmanager
def progress_bar(description: str, total: float | None = None) -> Iterator[tuple[Progress, Any]]:
    """A transient progress bar on the console (stderr) and its task."""
    with Progress(*PROGRESS_COLUMNS, console=console, transient=True) as progress:
        yield progress, progress.add_task(description, total=total)


@contextlib.contextmanager
def interruptible(progress: Progress, kept: str) -> Iterator[None]:
    """Ctrl-C stops the progress bar, says what was kept (`kept`) and exits with status 130."""
    try:
        yield
    except KeyboardInterrupt:
        progress.stop()
        say(f"interrupted: {kept}")
        raise typer.Exit(130) from None
