"""`harlab experiment`: run a spec, report on a results folder, save one of its runs as a bundle."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from harlab.cli.common import (
    DataDir,
    Device,
    Replicas,
    Threads,
    Workers,
    experiment_app,
    interruptible,
    progress_bar,
    set_threads,
)
from harlab.console import say


def run_with_progress(spec: Any, out: Path, **options: Any) -> Any:
    """`harlab.run_experiment(spec, out, **options)` with a progress bar over all its epochs and a line per run."""
    from harlab import api
    from harlab.cli.progress import ExperimentProgress, label_line

    name = getattr(spec, "name", out.name)
    with progress_bar(f"{name} (epochs)") as (progress, task), interruptible(
            progress, f"finished runs are kept in {out}; run the same command again to finish"):
        shown = ExperimentProgress(progress, task, out, label_line)
        return api.run_experiment(spec, out, callbacks=[shown, *options.pop("callbacks", ())], **options)


def print_report(results: Any) -> Path:
    """Print the summary, the pairwise tests and the ranking of `results`, and write its HTML report."""
    from harlab.reports.analysis import comparison_lines, ranking_lines, summary_lines

    analysis = results.analysis()
    for line in summary_lines(analysis):
        print(line)
    for line in comparison_lines(analysis):
        print("  " + line)
    for line in ranking_lines(analysis):
        print(line)
    report = results.report()
    say(f"{analysis.finished} of {analysis.planned} runs; report: {report}")
    return report


@experiment_app.command("run")
def experiment_run(
    spec: Annotated[Path, typer.Argument(help="Spec file (.toml, .yaml); see src/harlab/experiments/specs/.")],
    out: Annotated[Path | None, typer.Option(help="Results folder (default results/<spec name>); an "
                                             "existing one of the same experiment is resumed.")] = None,
    repeats: Annotated[int | None, typer.Option(min=1, help="Override the spec's repeats.")] = None,
    data_dir: DataDir = None,
    threads: Threads = None,
    device: Device = None,
    workers: Workers = None,
    replicas: Replicas = None,
    backend: Annotated[str, typer.Option(help="Where runs train: local (this machine) or ray (Ray tasks, "
                                         "one CPU each; pip install 'harlab[distributed]').")] = "local",
    address: Annotated[str | None, typer.Option(help="--backend ray: the Ray cluster's address (auto, HOST:6379, "
                                                "ray://HOST:10001; default: start Ray on this machine).")] = None,
    track: Annotated[bool, typer.Option(help="Log every run to MLflow (default store: OUT/mlflow.db; "
                                        "pip install 'harlab[track]').")] = False,
    tracking_uri: Annotated[str | None, typer.Option(help="With --track: an MLflow server or store URI (default: "
                                                     "$MLFLOW_TRACKING_URI, else the embedded store).")] = None,
) -> None:
    """Train every configuration × repeat of a spec, resumably, then summarize and write the HTML report."""
    from harlab.experiments.spec import load_spec
    from harlab.integrations.ray import make_backend

    set_threads(threads)
    runner = make_backend(backend, address, device)
    overrides = {"repeats": repeats, "device": device, "workers": workers, "replicas": replicas}
    experiment = load_spec(spec, {k: v for k, v in overrides.items() if v is not None} or None)
    out = out or Path("results") / experiment.name
    print_report(run_with_progress(experiment, out, data_dir=data_dir, backend=runner, track=track,
                                   tracking_uri=tracking_uri))


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
    from harlab import api

    saved = api.Results(directory).save_bundle(to, configuration, repeat, fold, data_dir=data_dir)
    same = saved.same_as_recorded
    differs = ("trained alone, a replica matches within float tolerance" if saved.recorded_replicas > 1
               else "this machine trains differently")
    check = "" if same is None else (" — the same as recorded" if same else
                                     f" — recorded {saved.recorded * 100:.3f}%: {differs}")
    say(f"{saved.configuration} run #{repeat} ({saved.fold}): test accuracy {saved.accuracy * 100:.3f}%{check}; "
        f"bundle in {to}")


@experiment_app.command("report")
def experiment_report_command(
    directory: Annotated[Path, typer.Argument(help="An experiment's results folder.", file_okay=False)],
) -> None:
    """Summary per configuration with 95% CIs, pairwise Welch tests, figures and DIR/report.html."""
    from harlab import api

    print_report(api.Results(directory))

