"""The training loop: tensors resident in memory, Keras-equivalent Adam (decoupled weight decay optional),
learning-rate schedules, label smoothing, augmentation, per-epoch history, and callbacks (early stopping,
progress, pruning) through named hooks (harlab.training.callbacks).

It knows nothing about a particular architecture: any module mapping [batch, channels, time] to logits. What a
model declares besides (penalties, constraints, ensemble members, fitting itself) it declares through
harlab.models.contract, and the loop reads only that contract.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from harlab.data.transforms import Standardizer
from harlab.errors import HarlabError
from harlab.limits import MEMORY
from harlab.models.contract import Contract, SelfFitting
from harlab.training.callbacks import Callback, EarlyStopping, FitState, History, call
from harlab.training.config import TrainConfig
from harlab.training.device import autocast, check_precision, gradient_scaler, resolve_device
from harlab.training.seeding import seed_everything

KERAS_ADAM_EPS = 1e-7
PLATEAU_FACTOR, PLATEAU_PATIENCE = 0.5, 3  # halve the learning rate after 3 epochs without improvement
FUSED_ADAM_DEVICES = ("cpu", "cuda", "mps")

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
__all__ = ["History", "SelfFitting", "TrainConfig", "evaluate", "fit", "logits_of", "model_device", "predict",
           "to_tensor"]


def to_tensor(X: np.ndarray, standardizer: Standardizer | None = None) -> torch.Tensor:
    """Windows [samples, time, channels] (the files' layout), standardized when a standardizer is given →
    contiguous float32 [samples, channels, time]."""
    if standardizer is not None:
        X = standardizer.apply(X)
    return torch.from_numpy(np.ascontiguousarray(X.transpose(0, 2, 1), dtype=np.float32))


def _with_penalty(loss: torch.Tensor, contract: Contract) -> torch.Tensor:
    penalty = contract.penalty()
    return loss if penalty is None else loss + penalty


def _member_loss(loss_fn: nn.Module, logits: torch.Tensor, y: torch.Tensor, contract: Contract) -> torch.Tensor:
    if contract.members > 1:  # an ensemble's members, each with its own loss
        return loss_fn(logits.flatten(0, 1), y.repeat(contract.members))
    if logits.dim() != 2:
        raise HarlabError(f"the model returned logits of shape {list(logits.shape)} while training, not [batch, "
                          "classes]; an ensemble returning its members' logits stacked declares `ensemble_members` "
                          "(harlab.models.contract)")
    return loss_fn(logits, y)


def make_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig, steps_per_epoch: int
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
    loss, accuracy = evaluate(model, X, y)  # type: ignore[arg-type]  # a self-fitting model is a module too
    history = History(loss=[loss], accuracy=[accuracy], fit_seconds=fit_seconds)
    if validation is not None:
        record_validation(model, validation, history, config.monitor)  # type: ignore[arg-type]
    return history


def check_classes(y: torch.Tensor) -> None:
    if len(present := torch.unique(y).tolist()) < 2:
        found = f"only one class (index {present[0]} of the dataset's classes)" if present else "no windows"
        raise HarlabError(f"{found} in the training windows; a classifier needs at least two classes; train on "
                          "windows of several activities (check the split and the labels)")


def fit(model: nn.Module, X: torch.Tensor, y: torch.Tensor, config: TrainConfig, seed: int,
        validation: tuple[torch.Tensor, torch.Tensor] | None = None, augment: Augment | None = None,
        callbacks: Sequence[Callback] = (), device: torch.device | str | None = None,
        class_weights: torch.Tensor | None = None, parameter_groups: list[dict[str, Any]] | None = None
        ) -> History:
    """Train `model` in place on X [n, channels, time], y [n]; reshuffle every epoch (or draw it with the config's
    balanced sampler), keep the last batch.

    With `validation` (X, y), record its loss and accuracy after every epoch and, when the config has a
    patience, stop early and restore the best epoch's weights (an EarlyStopping callback, run after the given
    `callbacks`). `augment` changes each training batch; `class_weights` weigh each window's training loss by
    its class (the validation loss stays unweighted, as Keras reports it); `parameter_groups` (torch optimizer
    groups, each with its own "lr") replace the default, every parameter at the config's rate. Training windows
    of fewer than two classes are refused: a classifier of one class scores 100 % and means nothing. The model
    and the windows move to `device` (a name as harlab.training.device resolves it; None: where the model is)
    once; the host reads the epoch's loss and accuracy once per epoch, never per step.
    """
    if config.patience is not None and validation is None:
        raise ValueError("early stopping (patience) needs a validation set")
    check_classes(y)
    hooks = [*callbacks, *([EarlyStopping(config.patience, config.monitor)] if config.patience is not None else [])]
    contract = Contract.of(model)
    if contract.self_fitting:  # one closed-form fit on the CPU: nothing to stop early
        state = FitState(model, config.epochs, History())
        call(list(callbacks), "on_fit_start", state)
        state.history = _fit_self(model, X, y, config, seed, validation, augment)  # type: ignore[arg-type]
        state.epoch = 1
        call(list(callbacks), "on_epoch_end", state)
        call(list(callbacks), "on_fit_end", state)
        return state.history
    target = model_device(model) if device is None else resolve_device(device)
    check_precision(config.precision, target)
    generator = seed_everything(seed)
    model.to(target)
    X, y = X.to(target), y.to(target)
    if validation is not None:
        validation = validation[0].to(target), validation[1].to(target)
    optimizer = make_optimizer(model.parameters() if parameter_groups is None else parameter_groups, config, target)
    scaler = gradient_scaler(target, config.precision)
    scheduler = make_scheduler(optimizer, config, -(-len(X) // config.batch_size))
    loss_fn = nn.CrossEntropyLoss(weight=None if class_weights is None else class_weights.to(target),
                                  label_smoothing=config.label_smoothing)
    state = FitState(model, config.epochs, History(device=str(target), precision=config.precision))
    history = state.history
    call(hooks, "on_fit_start", state)
    start = time.perf_counter()
    for epoch in range(1, config.epochs + 1):
        model.train()
        order = epoch_order(y, config, generator).to(target)
        X_epoch, y_epoch = X[order], y[order]  # one gather per epoch; each batch is then a contiguous slice
        total_loss = torch.zeros((), device=target)
        correct = torch.zeros((), dtype=torch.long, device=target)
        for first in range(0, len(X), config.batch_size):
            xb, yb = X_epoch[first:first + config.batch_size], y_epoch[first:first + config.batch_size]
            if augment is not None:
                xb = augment(xb, generator)
            optimizer.zero_grad(set_to_none=True)
            with autocast(target, config.precision):
                logits = model(xb)
                loss = _with_penalty(_member_loss(loss_fn, logits, yb, contract), contract)
            take_step(loss, optimizer, scaler)
            contract.constrain()
            if isinstance(scheduler, torch.optim.lr_scheduler.CosineAnnealingLR):
                scheduler.step()
            total_loss += loss.detach() * len(yb)
            votes = logits.detach().softmax(-1).mean(0) if contract.members > 1 else logits.detach()
            correct += (votes.argmax(1) == yb).sum()
        history.loss.append(float(total_loss) / len(X))  # the epoch's one read of the device
        history.accuracy.append(int(correct) / len(X))
        if validation is not None:
            record_validation(model, validation, history, config.monitor)
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step((history.val_loss or history.loss)[-1])
        state.epoch = epoch
        call(hooks, "on_epoch_end", state)
        if state.should_stop:
            break
    call(hooks, "on_fit_end", state)
    history.fit_seconds = time.perf_counter() - start
    return history


def epoch_order(y: torch.Tensor, config: TrainConfig, generator: torch.Generator) -> torch.Tensor:
    """The windows of one epoch, in order: a shuffle of all of them, or for a balanced sampler as many drawn with
    replacement, each class equally likely (a window's chance is 1 / (classes × windows of its class))."""
    if config.sampler == "shuffle":
        return torch.randperm(len(y), generator=generator)
    counts = torch.bincount(y.cpu())
    chance = 1.0 / counts[y.cpu()].double()
    return torch.multinomial(chance, len(y), replacement=True, generator=generator)


def make_optimizer(parameters: Iterable[torch.Tensor] | Iterable[dict[str, Any]], config: TrainConfig,
                   device: torch.device) -> torch.optim.Optimizer:
    """Keras-equivalent Adam (AdamW's decoupled decay, off by default) as one fused kernel over all parameters
    where torch has one for `device` (benchmarks/step_speed.py: the per-tensor loop was ~14 % of a CNN step)."""
    return torch.optim.AdamW(parameters, lr=config.learning_rate, eps=KERAS_ADAM_EPS,
                             weight_decay=config.weight_decay, fused=device.type in FUSED_ADAM_DEVICES)


def take_step(loss: torch.Tensor, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None) -> None:
    if scaler is None:
        loss.backward()
        optimizer.step()
        return
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter or buffer (the CPU for a model with neither)."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


@torch.no_grad()
def evaluate(model: nn.Module, X: torch.Tensor, y: torch.Tensor, batch_size: int = 1024) -> tuple[float, float]:
    """Loss (regularization included, as Keras reports it) and accuracy of `model` on X, y."""
    logits = logits_of(model, X, batch_size)
    return _loss_and_accuracy(model, logits, y.to(logits.device))


def _loss_and_accuracy(model: nn.Module, logits: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    loss = _with_penalty(nn.functional.cross_entropy(logits, y), Contract.of(model))
    return float(loss), float((logits.argmax(1) == y).float().mean())


def record_validation(model: nn.Module, validation: tuple[torch.Tensor, torch.Tensor], history: History,
                      monitor: str) -> None:
    """Append the validation loss and accuracy to `history`, and the `monitor`ed score where it is another."""
    logits = logits_of(model, validation[0])
    y = validation[1].to(logits.device)
    loss, accuracy = _loss_and_accuracy(model, logits, y)
    history.val_loss.append(loss)
    history.val_accuracy.append(accuracy)
    if monitor in ("val_balanced_accuracy", "val_macro_f1"):
        history.monitored(monitor).append(class_score(monitor, y, logits.argmax(1), logits.shape[1]))


def class_score(monitor: str, y: torch.Tensor, predicted: torch.Tensor, classes: int) -> float:
    """Balanced accuracy (the mean recall of the classes present) or macro-F1 (over all `classes`, 0 for a class
    never predicted nor present), as scikit-learn computes them with zero_division=0."""
    confusion = torch.bincount(y * classes + predicted, minlength=classes * classes).reshape(classes, classes)
    confusion = confusion.double()
    present, hits = confusion.sum(1), confusion.diagonal()
    recall = hits / present.clamp(min=1)
    if monitor == "val_balanced_accuracy":
        return float(recall[present > 0].mean())
    precision = hits / confusion.sum(0).clamp(min=1)
    f1 = torch.where(precision + recall > 0, 2 * precision * recall / (precision + recall).clamp(min=1e-12), 0.0)
    return float(f1.mean())


@torch.no_grad()
def predict(model: nn.Module, X: torch.Tensor, batch_size: int = 1024) -> np.ndarray:
    """Predicted class per window of X [n, channels, time]."""
    return logits_of(model, X, batch_size).argmax(1).cpu().numpy()


@torch.no_grad()
def logits_of(model: nn.Module, X: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Logits of X [n, channels, time] in eval mode, in batches each moved to the model's device (X may stay
    on the CPU); the result is on the model's device."""
    model.eval()
    device = model_device(model)
    return torch.cat([model(X[i:i + batch_size].to(device)) for i in range(0, len(X), batch_size)])
