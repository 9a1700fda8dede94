"""`harlab tune`: an Optuna search on validation subjects, then the best configuration's test accuracy, once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from harlab.cli.common import DataDir, Device, Threads, app, interruptible, progress_bar, set_threads
from harlab.console import say


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
    device: Device = None,
) -> None:
    """Search a spec's hyperparameters with Optuna on validation subjects, then train the best configuration
    again and measure its test accuracy once."""
    from harlab import api
    from harlab.experiments.spec import load_spec
    from harlab.integrations.tune import SEARCH_DB, TrialRecord, import_optuna

    import_optuna()
    set_threads(threads)
    experiment = load_spec(spec, {"device": device} if device else None)
    out = out or Path("results") / f"{experiment.name}-tune"
    with progress_bar(f"{experiment.name} (trials)", trials) as (progress, task), interruptible(
            progress, f"finished trials and runs are kept in {out}; run the same command again to finish"):

        def start(finished: int, planned: int) -> None:
            if finished:
                say(f"resuming: {finished} of {planned} trials already finished in {out / SEARCH_DB}")
            progress.update(task, completed=min(finished, planned))

        def trial(record: TrialRecord) -> None:
            print(f">{record.line()}", flush=True)
            if record.state in ("complete", "pruned"):
                progress.advance(task)

        result: Any = api.tune(experiment, out, data_dir=data_dir, trials=trials, timeout=timeout, repeats=repeats,
                               on_trial=trial, on_start=start,
                               on_run=lambda run: print(f">best #{run.repeat}: {run.accuracy * 100:.3f}", flush=True))
    print(result.summary)
    say(f"best spec: {result.best_spec}; report: {result.report}")
