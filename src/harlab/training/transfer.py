"""Fine-tuning: training that starts from a trained model (a bundle's, or a pretrained one's) instead of random
weights.

A `Start` is what the training core needs of that model: its weights, the input it takes (channels by name,
window, rate, the standardizer its input goes through) and its classes. The windows are matched to it by
channel name (`channel_order`). The model keeps the backbone's weights; its head keeps the rows of the classes
the windows have when they are all among the model's, and is new (initialised from the run's seed) otherwise or
when asked (`fine_tuned_model`); a new head trains at a higher rate than the backbone (`parameter_groups`).
`FreezeBackbone` keeps the backbone fixed for the first epochs or throughout.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from harlab.data.transforms import Standardizer
from harlab.data.windowset import WindowSet
from harlab.errors import HarlabError
from harlab.models.contract import Contract
from harlab.models.heads import backbone_parameters, head_of, replace_head
from harlab.training.callbacks import Callback, FitState
from harlab.training.config import TrainConfig, head_learning_rate_for


@dataclass(frozen=True)
class Start:
    """A trained model to fine-tune: `source` (a bundle's folder or pretrained:NAME) and its weights' sha256,
    the registered model and hyperparameters it was built from, its input (with how raw recordings become its
    channels, as a bundle's manifest says) and its classes."""

    source: str
    weights_sha256: str
    model: nn.Module
    model_name: str
    hyperparameters: dict[str, Any]
    channels: tuple[str, ...]
    classes: tuple[str, ...]
    window: int
    sampling_rate: float
    standardizer: Standardizer | None
    preprocessing: dict[str, Any]

    def check(self, model_name: str, hyperparameters: dict[str, Any]) -> None:
        """One line unless a configuration of `model_name` with `hyperparameters` is this model."""
        if (model_name, hyperparameters) != (self.model_name, self.hyperparameters):
            given = ", ".join(f"{k}={v}" for k, v in self.hyperparameters.items())
            raise HarlabError(f"init={self.source} is a {self.model_name} ({given}); the configuration trains "
                              f"{model_name} {hyperparameters}: leave the `model` setting and the hyperparameters "
                              "unset to train the bundle's own")
        if Contract.of(self.model).self_fitting:
            raise HarlabError(f"init={self.source}: {self.model_name} fits itself in closed form, so there are no "
                              "weights to start from; train it without init")

    def channel_order(self, windows: WindowSet) -> list[int]:
        """Where each of this model's channels is among `windows`' (matched by name); one line naming what is
        missing, and a window or rate that differs."""
        if (windows.window, windows.sampling_rate) != (self.window, self.sampling_rate):
            raise HarlabError(f"init={self.source} takes windows of {self.window} samples at {self.sampling_rate:g} "
                              f"Hz; these windows are {windows.window} samples at {windows.sampling_rate:g} Hz: import "
                              f"the recordings with rate={self.sampling_rate:g} window={self.window}")
        if missing := [c for c in self.channels if c not in windows.channels]:
            uci_har = self.preprocessing.get("pipeline") == "uci-har"
            how = " (the uci-har pipeline's: import with pipeline=uci-har)" if uci_har else ""
            raise HarlabError(f"init={self.source} needs channels {', '.join(self.channels)}{how}; the windows lack "
                              f"{', '.join(missing)} (they have {', '.join(windows.channels)})")
        return [windows.channels.index(c) for c in self.channels]

    def head_rows(self, classes: Sequence[str], new_head: bool | None) -> list[int] | None:
        """The head's rows for `classes` (by name), or None for a new head: asked for, or some class is new."""
        unknown = [c for c in classes if c not in self.classes]
        if new_head is False and unknown:
            raise HarlabError(f"init={self.source} knows the classes {', '.join(self.classes)}, not "
                              f"{', '.join(unknown)}; its head cannot predict them: set new_head=true (or leave "
                              "new_head unset)")
        if new_head or unknown:
            return None
        return [self.classes.index(c) for c in classes]


def fine_tuned_model(start: Start, classes: Sequence[str], new_head: bool | None, seed: int) -> nn.Module:
    """A copy of `start`'s model to train on windows of `classes`: its head's rows for them, or a new head whose
    weights come from `seed` (as nn.Linear initialises itself)."""
    model = copy.deepcopy(start.model).float()
    old = head_of(model, len(start.classes))
    rows = start.head_rows(classes, new_head)
    torch.manual_seed(seed)
    head = nn.Linear(old.in_features, len(classes))
    if rows is not None:
        with torch.no_grad():
            head.weight.copy_(old.weight[rows])
            head.bias.copy_(old.bias[rows])
    replace_head(model, len(start.classes), head)
    return model


def parameter_groups(model: nn.Module, n_classes: int, config: TrainConfig, new_head: bool) -> list[dict[str, Any]]:
    """The optimizer's parameter groups for a fine-tuned `model`: its backbone at the config's learning rate, its
    head at `head_learning_rate_for` the config (higher for a `new_head`)."""
    return [{"params": backbone_parameters(model, n_classes), "lr": config.learning_rate},
            {"params": list(head_of(model, n_classes).parameters()),
             "lr": head_learning_rate_for(config, new_head)}]


class FreezeBackbone(Callback):
    """Keep every parameter but the head's fixed for the first `epochs` epochs, or for all of them; the model is
    trainable again when the fit ends. Frozen parameters get no gradient, so the optimizer leaves them (and their
    weight decay) alone."""

    def __init__(self, n_classes: int, epochs: int | None):
        self.n_classes, self.epochs = n_classes, epochs

    def _set(self, model: nn.Module, trainable: bool) -> None:
        for parameter in backbone_parameters(model, self.n_classes):
            parameter.requires_grad_(trainable)

    def on_fit_start(self, state: FitState) -> None:
        self._set(state.model, False)

    def on_epoch_end(self, state: FitState) -> None:
        if state.epoch == self.epochs:
            self._set(state.model, True)

    def on_fit_end(self, state: FitState) -> None:
        self._set(state.model, True)
