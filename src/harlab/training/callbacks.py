"""Callbacks: code that watches or steers a fit through named hooks, as Lightning's `Callback` does.

`fit` calls, in the order the callbacks were given, `on_fit_start` once, `on_epoch_end` after every epoch (with
the epoch's losses in `state.history`; setting `state.should_stop` ends the fit after this epoch) and `on_fit_end`
once after the last epoch. Early stopping, progress display and Optuna pruning are callbacks; a run-level
callback (harlab.evaluation.runs) adds `on_run_end`, called with each finished run's result.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn


@dataclass
class History:
    """Per-epoch training (and validation) loss and accuracy, the validation score early stopping monitors where
    it is another (balanced accuracy or macro-F1), the epoch kept, the seconds the fit took, and the device and
    precision it trained in."""

    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    val_balanced_accuracy: list[float] = field(default_factory=list)
    val_macro_f1: list[float] = field(default_factory=list)
    best_epoch: int | None = None
    fit_seconds: float = 0.0
    device: str = "cpu"
    precision: str = "fp32"

    def as_dict(self) -> dict[str, list[float]]:
        curves = {"loss": self.loss, "accuracy": self.accuracy}
        if self.val_loss:
            curves |= {"val_loss": self.val_loss, "val_accuracy": self.val_accuracy}
        return curves | {name: values for name, values in (("val_balanced_accuracy", self.val_balanced_accuracy),
                                                            ("val_macro_f1", self.val_macro_f1)) if values}

    def monitored(self, monitor: str) -> list[float]:
        """The per-epoch validation series named `monitor` (a TrainConfig monitor: val_loss, val_accuracy, ...)."""
        values: list[float] = getattr(self, monitor)
        return values


@dataclass
class FitState:
    """What a callback sees: the model being fitted, the planned epochs, the history so far, the epoch just
    finished (0 before the first), and `should_stop`, which a callback sets to end the fit after this epoch."""

    model: nn.Module
    epochs: int
    history: History
    epoch: int = 0
    should_stop: bool = False


class Callback:
    """Base class: override the hooks you need; each default does nothing."""

    def on_fit_start(self, state: FitState) -> None:
        """Before the first epoch."""

    def on_epoch_end(self, state: FitState) -> None:
        """After every epoch, its losses (and validation losses) appended to `state.history`."""

    def on_fit_end(self, state: FitState) -> None:
        """After the last epoch (planned, or the one a callback stopped at)."""

    def on_run_end(self, result: Any) -> None:
        """After a whole run finished and was scored (called by the run core, not by `fit`)."""

    def on_remote_epochs(self, count: int) -> None:
        """`count` more epochs finished in runs training in worker processes, whose fit states stay there."""


def improved(values: list[float], monitor: str) -> bool:
    """Whether the last of `values` is the best so far (ties count): the lowest loss, or the highest score."""
    return values[-1] <= min(values) if monitor == "val_loss" else values[-1] >= max(values)


class EarlyStopping(Callback):
    """Stop once the `monitor`ed validation series (the loss, or a score) has not improved for `patience` epochs and
    restore the best epoch's weights; `history.best_epoch` says which epoch was kept."""

    def __init__(self, patience: int, monitor: str = "val_loss"):
        self.patience = patience
        self.monitor = monitor
        self.best_state: dict[str, torch.Tensor] | None = None

    def on_fit_start(self, state: FitState) -> None:
        self.best_state = None

    def on_epoch_end(self, state: FitState) -> None:
        history = state.history
        if improved(history.monitored(self.monitor), self.monitor):
            history.best_epoch = state.epoch
            self.best_state = {k: v.detach().clone() for k, v in state.model.state_dict().items()}
        elif history.best_epoch is not None and state.epoch - history.best_epoch >= self.patience:
            state.should_stop = True

    def on_fit_end(self, state: FitState) -> None:
        if self.best_state is not None:
            state.model.load_state_dict(self.best_state)


class EpochProgress(Callback):
    """Calls `advance()` once per planned epoch: after each epoch, and at the end for epochs early stopping
    skipped, so a progress bar over many runs reaches its total."""

    def __init__(self, advance: Callable[[], None]):
        self.advance = advance

    def on_epoch_end(self, state: FitState) -> None:
        self.advance()

    def on_fit_end(self, state: FitState) -> None:
        for _ in range(state.epochs - state.epoch):
            self.advance()


def call(callbacks: list[Callback], hook: str, *args: Any) -> None:
    """Call `hook` on every callback, in order."""
    for callback in callbacks:
        getattr(callback, hook)(*args)
