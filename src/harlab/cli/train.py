"""`harlab train`: one configuration trained `repeats` times, as a one-configuration experiment."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from harlab.cli.common import (
    DataDir,
    Device,
    Param,
    Precision,
    Replicas,
    Step,
    Threads,
    Transitions,
    Window,
    Workers,
    app,
    dataset_options,
    interruptible,
    parse_params,
    progress_bar,
    set_threads,
)
from harlab.console import say
from harlab.errors import HarlabError


@app.command("train")
def train(
    model: Annotated[str | None, typer.Option(help="Model name (see `harlab models list`); default cnn, or "
                                              "with --init the bundle's.")] = None,
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
    monitor: Annotated[str | None, typer.Option(help="What early stopping watches on the validation subjects: "
                                                "val_loss (default), val_accuracy, val_balanced_accuracy or "
                                                "val_macro_f1.")] = None,
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
    class_weight: Annotated[str | None, typer.Option(help="Weigh each window's loss by its class: balanced, or "
                                                     "NAME=WEIGHT,... (1 for classes not named).")] = None,
    sampler: Annotated[str | None, typer.Option(help="Each epoch's windows: shuffle, or balanced (drawn with "
                                                "replacement, every class equally likely).")] = None,
    learning_rate: Annotated[float | None, typer.Option(min=0, help="Adam's learning rate (default 1e-3, with "
                                                        "--init 1e-4).")] = None,
    init: Annotated[str | None, typer.Option(help="Fine-tune: start from a bundle's weights (a saved bundle's "
                                             "folder or pretrained:NAME); its channels are picked by name.")] = None,
    freeze: Annotated[str | None, typer.Option(help="With --init: keep the backbone fixed for the first N epochs, "
                                               "or 'all' (train the head only).")] = None,
    new_head: Annotated[bool | None, typer.Option("--new-head/--keep-head", help="With --init: a new "
                                                  "classification head, or the bundle's (default: its rows when "
                                                  "the classes are among its own, else new).")] = None,
    head_learning_rate: Annotated[float | None, typer.Option(min=0, help="With --init: the head's learning rate "
                                                             "(default: a new head 1e-3, a kept one the learning "
                                                             "rate's).")] = None,
    cv: Annotated[str, typer.Option(help="Subject-wise split: fixed (the dataset's own), holdout, kfold or "
                                    "loso (leave one subject out).")] = "fixed",
    folds: Annotated[int, typer.Option(min=2, help="Folds for --cv kfold.")] = 5,
    test_fraction: Annotated[float, typer.Option(min=0.01, max=0.99, help="Test subjects' share for --cv "
                                                 "holdout.")] = 0.3,
    param: Param = None,
    out: Annotated[Path | None, typer.Option(help="Results folder (default results/train-MODEL-DATASET-TIME), "
                                             "the same format as `harlab experiment run`; rerun to resume.",
                                             file_okay=False)] = None,
    save: Annotated[Path | None, typer.Option(help="Write a model bundle (safetensors + JSON manifest) of one "
                                              "run to this folder.", file_okay=False)] = None,
    save_repeat: Annotated[int, typer.Option(min=1, help="Which run --save keeps (chosen before training, "
                                             "never by its test score).")] = 1,
    track: Annotated[bool, typer.Option(help="Log every run to MLflow (pip install 'harlab[track]').")] = False,
    data_dir: DataDir = None,
    window: Window = None, step: Step = None, transitions: Transitions = False,
    threads: Threads = None,
    device: Device = None,
    workers: Workers = None,
    replicas: Replicas = None,
    precision: Precision = None,
) -> None:
    """Train a model `repeats` times with different seeds and report test accuracy as mean ± std."""
    from harlab import api
    from harlab.cli.progress import ExperimentProgress

    set_threads(threads)
    settings: dict[str, Any] = {
        "standardize": standardize, "epochs": epochs, "batch_size": batch_size, "validation_split": validation_split,
        "patience": patience, "schedule": schedule, "weight_decay": weight_decay, "label_smoothing": label_smoothing,
        "augment": None if augment is None else [a for a in augment.split(",") if a not in ("", "none")],
        "precision": precision, "class_weight": parse_class_weight(class_weight), "sampler": sampler,
        "monitor": monitor, "learning_rate": learning_rate, "init": init, "freeze": parse_freeze(freeze),
        "new_head": new_head, "head_learning_rate": head_learning_rate}
    spec = api.training_spec(model, dataset=dataset, repeats=repeats, seed=seed,
                                    hyperparameters=parse_params(param), split=cv, folds=folds,
                                    test_fraction=test_fraction, early_stopping=early_stopping, device=device,
                                    workers=workers, replicas=replicas, **settings)
    data = api.load_dataset(dataset, data_dir, **dataset_options(window, step, transitions))
    config = spec.configurations()[0].config.train_config()
    model = spec.model
    tuning = "" if init is None else f"fine-tuning {init}: "
    say(f"{tuning}{model} on {data.provenance.dataset} ({len(data)} windows), {repeats} runs × {config.epochs} epochs, "
        f"batch {config.batch_size}" + (", standardized" if standardize else ""))
    out = out or api.default_train_out(model, data)
    with progress_bar("epochs") as (progress, task), interruptible(progress, f"finished runs are kept in {out}; "
                                                                   "run the same command to finish"):
        shown = ExperimentProgress(progress, task, out, lambda run: _run_line(run.result))
        results = api.run_training(spec, data, out, callbacks=[shown], track=track, save=save,
                                   save_repeat=save_repeat)
    _print_summary(results, save, save_repeat)


def parse_freeze(text: str | None) -> int | str | None:
    """`--freeze`: a number of epochs, or all."""
    if text is None or text.strip() == "all":
        return text and text.strip()
    try:
        return int(text)
    except ValueError:
        raise HarlabError(f"--freeze {text!r}: give a number of epochs or all") from None


def parse_class_weight(text: str | None) -> str | dict[str, float] | None:
    """`--class-weight`: balanced, or NAME=WEIGHT pairs separated by commas; a one-line refusal otherwise."""
    if text is None or text.strip() == "balanced":
        return text and text.strip()
    weights = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = pair.partition("=")
        try:
            weights[name.strip()] = float(value)
        except ValueError:
            raise HarlabError(f"--class-weight {text!r}: give balanced or NAME=WEIGHT,... (found {pair!r})") from None
    return weights


def _run_line(run: Any) -> str:
    fold = "" if run.fold == "fixed" else f"{run.fold} "
    balanced = "" if run.balanced_accuracy is None else f"  (balanced {run.balanced_accuracy * 100:.3f})"
    return f">{fold}#{run.repeat}: {run.accuracy * 100:.3f}{balanced}"


def _print_summary(results: Any, save: Path | None, save_repeat: int) -> None:
    from harlab.evaluation.metrics import classification_report_lines
    from harlab.evaluation.statistics import describe

    [configuration] = results.analysis().configurations
    by_fold: dict[str, list[float]] = {}
    for row in configuration.rows:
        by_fold.setdefault(row.get("fold", "fixed"), []).append(row["accuracy"])
    if len(by_fold) > 1:
        for fold, accuracies in by_fold.items():
            summary = describe(accuracies)
            print(f"{fold}: {summary.mean:.1f}% (+/-{summary.std:.1f}, {summary.runs} runs)")
    median = configuration.median_run()
    say(f"classification report of the median run ({median.get('fold', 'fixed')} #{median['repeat']}, "
        f"{median['accuracy'] * 100:.2f}%):")
    print("\n".join(classification_report_lines(median["per_class"], median["confusion"])))
    print(f"Accuracy: {configuration.summary.mean:.1f}% (+/-{configuration.summary.std:.1f})")
    say(f"{configuration.summary.runs} runs, {configuration.fit_seconds:.1f} s per fit; results in "
        f"{results.directory}")
    if save is not None:
        say(f"bundle of run #{save_repeat} in {save}" if results.saved_bundle else
            f"run #{save_repeat} finished in an earlier invocation and its weights were not kept; no bundle "
            "written (use a new --out to train it again)")
