"""The training loop: tensors resident in memory, Keras-equivalent Adam (decoupled weight decay optional),
learning-rate schedules, label smoothing, augmentation, per-epoch history, early stopping.

It knows nothing about a particular architecture: any module mapping [batch, channels, time] to logits.
Layers may add loss terms or constrain their weights (see harlab.models.layers); the loop honours both.
An ensemble may return its members' logits stacked [members, batch, classes] while training: each member
then gets its own loss. A model that fits itself without gradients (`SelfFitting`) is handed the data (with
augmented copies of it when the run augments).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from harlab.data.transforms import Standardizer
from harlab.errors import HarlabError
from harlab.limits import MEMORY
from harlab.models.layers import apply_constraints, regularization_loss
from harlab.models.registry import Augmentation, Schedule
from harlab.training.seeding import seed_everything

KERAS_ADAM_EPS = 1e-7
PLATEAU_FACTOR, PLATEAU_PATIENCE = 0.5, 3  # halve the learning rate after 3 epochs without improvement

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


@runtime_checkable
class SelfFitting(Protocol):
    """A model fitted in closed form (e.g. random features and a ridge classifier), not by gradient descent."""

    def fit_windows(self, X: torch.Tensor, y: torch.Tensor, seed: int, copies: Sequence[torch.Tensor] = ()) -> None:
        """Fit on windows X [n, channels, time] with labels y, and on augmented `copies` of X (same labels)."""


@dataclass(frozen=True)
class TrainConfig:
    """How to fit: the tutorial trains with Adam(1e-3) and the model's own epochs and batch size.

    With `patience`, training stops once the validation loss has not improved for that many epochs and the
    weights of the best epoch are restored. `validation_split` is the fraction of training subjects the
    experiment runner holds out for that validation set. `schedule` is constant, cosine (annealed to zero over
    the planned steps) or plateau (halved when the validation loss, or without validation the training loss,
    stalls). `augment` names the augmentations the runner applies (see harlab.training.augment).
    """

    epochs: int
    batch_size: int
    learning_rate: float = 1e-3
    validation_split: float = 0.0
    patience: int | None = None
    schedule: Schedule = "constant"
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    augment: tuple[Augmentation, ...] = ()


@dataclass
class History:
    """Per-epoch training (and validation) loss and accuracy, the epoch kept, and the seconds the fit took."""

    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    best_epoch: int | None = None
    fit_seconds: float = 0.0

    def as_dict(self) -> dict[str, list[float]]:
        curves = {"loss": self.loss, "accuracy": self.accuracy}
        if self.val_loss:
            curves |= {"val_loss": self.val_loss, "val_accuracy": self.val_accuracy}
        return curves


def to_tensor(X: np.ndarray, standardizer: Standardizer | None = None) -> torch.Tensor:
    """Windows [samples, time, channels] (the files' layout), standardized when a standardizer is given →
    contiguous float32 [samples, channels, time]."""
    if standardizer is not None:
        X = standardizer.apply(X)
    return torch.from_numpy(np.ascontiguousarray(X.transpose(0, 2, 1), dtype=np.float32))


def _with_penalty(loss: torch.Tensor, model: nn.Module) -> torch.Tensor:
    penalty = regularization_loss(model)
    return loss if penalty is None else loss + penalty


def _member_loss(loss_fn: nn.Module, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if logits.dim() == 3:  # an ensemble's members, each with its own loss
        return loss_fn(logits.flatten(0, 1), y.repeat(len(logits)))
    return loss_fn(logits, y)


def _scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig, steps_per_epoch: int
               ) -> torch.optim.lr_scheduler.LRScheduler | torch.optim.lr_scheduler.ReduceLROnPlateau | None:
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, config.epochs * steps_per_epoch)
    if config.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=PLATEAU_FACTOR, patience=PLATEAU_PATIENCE)
    return None


def _fit_self(model: SelfFitting, X: torch.Tensor, y: torch.Tensor, config: TrainConfig, seed: int,
              validation: tuple[torch.Tensor, torch.Tensor] | None, augment: Augment | None) -> History:
    """Without augmentation the model sees the training windows once; with it, also one augmented copy for every
    further epoch (a new draw each), all at once."""
    generator = seed_everything(seed)
    start = time.perf_counter()
    if augment is not None:
        MEMORY.check((config.epochs - 1) * X.numel() * X.element_size(),
                     f"{config.epochs} epochs (an augmented copy of the {len(X):,} training windows for each after the "
                     "first)", "train fewer epochs")
    copies = [augment(X, generator) for _ in range(config.epochs - 1)] if augment is not None else []
    model.fit_windows(X, y, seed, copies)
    fit_seconds = time.perf_counter() - start
    loss, accuracy = evaluate(model, X, y)
    history = History(loss=[loss], accuracy=[accuracy], fit_seconds=fit_seconds)
    if validation is not None:
        val_loss, val_accuracy = evaluate(model, *validation)
        history.val_loss, history.val_accuracy = [val_loss], [val_accuracy]
    return history


def fit(model: nn.Module, X: torch.Tensor, y: torch.Tensor, config: TrainConfig, seed: int,
        on_epoch: Callable[[int, History], None] | None = None,
        validation: tuple[torch.Tensor, torch.Tensor] | None = None, augment: Augment | None = None) -> History:
    """Train `model` in place on X [n, channels, time], y [n]; reshuffle every epoch, keep the last batch.

    With `validation` (X, y), record its loss and accuracy after every epoch and, when the config has a
    patience, stop early and restore the best epoch's weights. `augment` changes each training batch. Training
    windows of fewer than two classes are refused: a classifier of one class scores 100 % and means nothing.
    """
    if config.patience is not None and validation is None:
        raise ValueError("early stopping (patience) needs a validation set")
    if len(present := torch.unique(y).tolist()) < 2:
        found = f"only one class (index {present[0]} of the dataset's classes)" if present else "no windows"
        raise HarlabError(f"{found} in the training windows; a classifier needs at least two classes; train on "
                          "windows of several activities (check the split and the labels)")
    if isinstance(model, SelfFitting):
        history = _fit_self(model, X, y, config, seed, validation, augment)
        if on_epoch is not None:
            on_epoch(1, history)
        return history
    generator = seed_everything(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, eps=KERAS_ADAM_EPS,
                                  weight_decay=config.weight_decay)
    scheduler = _scheduler(optimizer, config, -(-len(X) // config.batch_size))
    loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    history = History()
    best_state: dict[str, torch.Tensor] | None = None
    start = time.perf_counter()
    n = len(X)
    for epoch in range(1, config.epochs + 1):
        model.train()
        order = torch.randperm(n, generator=generator)
        total_loss, correct = 0.0, 0
        for first in range(0, n, config.batch_size):
            idx = order[first:first + config.batch_size]
            xb, yb = X[idx], y[idx]
            if augment is not None:
                xb = augment(xb, generator)
            optimizer.zero_grad(set_to_none=True)
            logits = model(xb)
            loss = _with_penalty(_member_loss(loss_fn, logits, yb), model)
            loss.backward()
            optimizer.step()
            apply_constraints(model)
            if isinstance(scheduler, torch.optim.lr_scheduler.CosineAnnealingLR):
                scheduler.step()
            total_loss += loss.item() * len(idx)
            votes = logits.softmax(-1).mean(0) if logits.dim() == 3 else logits
            correct += int((votes.argmax(1) == yb).sum())
        history.loss.append(total_loss / n)
        history.accuracy.append(correct / n)
        if validation is not None:
            val_loss, val_accuracy = evaluate(model, *validation)
            history.val_loss.append(val_loss)
            history.val_accuracy.append(val_accuracy)
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step((history.val_loss or history.loss)[-1])
        if on_epoch is not None:
            on_epoch(epoch, history)
        if config.patience is not None:
            if history.val_loss[-1] <= min(history.val_loss):
                history.best_epoch = epoch
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            elif epoch - history.best_epoch >= config.patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    history.fit_seconds = time.perf_counter() - start
    return history


@torch.no_grad()
def evaluate(model: nn.Module, X: torch.Tensor, y: torch.Tensor, batch_size: int = 1024) -> tuple[float, float]:
    """Loss (regularization included, as Keras reports it) and accuracy of `model` on X, y."""
    logits = _logits(model, X, batch_size)
    loss = _with_penalty(nn.functional.cross_entropy(logits, y), model)
    return float(loss), float((logits.argmax(1) == y).float().mean())


@torch.no_grad()
def predict(model: nn.Module, X: torch.Tensor, batch_size: int = 1024) -> np.ndarray:
    """Predicted class per window of X [n, channels, time]."""
    return _logits(model, X, batch_size).argmax(1).numpy()


def _logits(model: nn.Module, X: torch.Tensor, batch_size: int) -> torch.Tensor:
    model.eval()
    return torch.cat([model(X[i:i + batch_size]) for i in range(0, len(X), batch_size)])
