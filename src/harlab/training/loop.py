"""The training loop: tensors resident in memory, Keras-equivalent Adam, per-epoch history.

It knows nothing about a particular architecture: any module mapping [batch, channels, time] to logits.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from harlab.training.seeding import seed_everything

KERAS_ADAM_EPS = 1e-7


@dataclass(frozen=True)
class TrainConfig:
    """How to fit: the tutorial trains with Adam(1e-3) and the model's own epochs and batch size."""

    epochs: int
    batch_size: int
    learning_rate: float = 1e-3


@dataclass
class History:
    """Per-epoch training loss and accuracy, and the seconds the fit took."""

    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    fit_seconds: float = 0.0


def to_tensor(X: np.ndarray) -> torch.Tensor:
    """Windows [samples, time, channels] (the files' layout) → contiguous [samples, channels, time]."""
    return torch.from_numpy(np.ascontiguousarray(X.transpose(0, 2, 1), dtype=np.float32))


def fit(model: nn.Module, X: torch.Tensor, y: torch.Tensor, config: TrainConfig, seed: int,
        on_epoch: Callable[[int, float, float], None] | None = None) -> History:
    """Train `model` in place on X [n, channels, time], y [n]; reshuffle every epoch, keep the last batch."""
    generator = seed_everything(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate, eps=KERAS_ADAM_EPS)
    loss_fn = nn.CrossEntropyLoss()
    history = History()
    start = time.perf_counter()
    model.train()
    n = len(X)
    for epoch in range(config.epochs):
        order = torch.randperm(n, generator=generator)
        total_loss, correct = 0.0, 0
        for first in range(0, n, config.batch_size):
            idx = order[first:first + config.batch_size]
            xb, yb = X[idx], y[idx]
            optimizer.zero_grad(set_to_none=True)
            logits = model(xb)
            loss = loss_fn(logits, yb)
            loss.backward()
            optimizer.step()
            total_loss += loss.item() * len(idx)
            correct += int((logits.argmax(1) == yb).sum())
        history.loss.append(total_loss / n)
        history.accuracy.append(correct / n)
        if on_epoch is not None:
            on_epoch(epoch + 1, history.loss[-1], history.accuracy[-1])
    history.fit_seconds = time.perf_counter() - start
    return history


@torch.no_grad()
def predict(model: nn.Module, X: torch.Tensor, batch_size: int = 1024) -> np.ndarray:
    """Predicted class per window of X [n, channels, time]."""
    model.eval()
    return torch.cat([model(X[i:i + batch_size]).argmax(1) for i in range(0, len(X), batch_size)]).numpy()
