"""The one training core: fit one seeded run of a configuration on training windows.

`prepare` holds out the run's validation subjects, fits the standardizer on what is left and makes the tensors;
`fit_run` builds the model from its seed (or, fine-tuning, from a trained model: harlab.training.transfer) and
fits it. Every entry point trains through `fit_run`: `harlab
train`, experiments (in this process or as Ray tasks), `harlab tune`'s trials, bundle saving and
`HARClassifier.fit`; `fit_replica_runs` fits several seeds of one configuration at once, each as `fit_run` would.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from harlab.data.transforms import Standardizer
from harlab.data.windowset import WindowSet
from harlab.errors import HarlabError
from harlab.models.registry import create_model
from harlab.training.augment import Augmenter
from harlab.training.callbacks import Callback, History
from harlab.training.config import TrainConfig
from harlab.training.loop import fit, to_tensor
from harlab.training.replicas import fit_replicas
from harlab.training.transfer import FreezeBackbone, Start, fine_tuned_model, parameter_groups


def holdout_subjects(train: WindowSet, fraction: float, seed: int) -> list[int]:
    """A seeded `fraction` (at least one) of the training subjects, held out to validate on; none for 0."""
    subjects = np.unique(train.subject)
    if fraction == 0:
        return []
    if len(subjects) < 2:
        raise HarlabError(f"validation_split={fraction}: the training split has {len(subjects)} subject(s), "
                          "at least 2 are needed; set validation_split=0")
    count = min(max(1, round(fraction * len(subjects))), len(subjects) - 1)
    return sorted(np.random.default_rng(seed).choice(subjects, count, replace=False).tolist())


def hold_out_validation(train: WindowSet, fraction: float, seed: int) -> tuple[WindowSet, WindowSet, list[int]]:
    """(windows to fit on, validation windows, validation subjects): `holdout_subjects` applied to `train`."""
    held_out = holdout_subjects(train, fraction, seed)
    is_validation = np.isin(train.subject, held_out)
    return train.select(~is_validation), train.select(is_validation), held_out


@dataclass(frozen=True)
class PreparedData:
    """One run's tensors: training windows (validation subjects removed), the validation pair, the standardizer
    fitted on the training windows (or the fine-tuned model's) and the augmenter; `channel_order` picks the
    fine-tuned model's channels out of the windows'."""

    X_fit: torch.Tensor
    y_fit: torch.Tensor
    validation: tuple[torch.Tensor, torch.Tensor] | None
    validation_subjects: list[int]
    standardizer: Standardizer | None
    augment: Augmenter | None
    fit_windows: WindowSet
    channel_order: list[int] | None = None

    def tensor(self, X: np.ndarray) -> torch.Tensor:
        """Other windows [n, time, channels] as the model sees them (its channels, standardized like the training
        windows)."""
        return to_tensor(X if self.channel_order is None else X[:, :, self.channel_order], self.standardizer)


def prepare(train: WindowSet, config: TrainConfig, seed: int,
            validation: tuple[WindowSet, list[int]] | None = None, start: Start | None = None) -> PreparedData:
    """Hold out the config's validation subjects (seeded; or the given `validation` windows and subjects), fit
    the standardizer on what is left and convert everything to tensors. Fine-tuning `start`, the windows give
    its channels (by name) and go through its standardizer."""
    if validation is None:
        fit_part, held, held_out = hold_out_validation(train, config.validation_split, seed)
    else:
        fit_part, (held, held_out) = train, validation
    order = None
    if start is not None:
        order = start.channel_order(fit_part)
        fit_part, held = fit_part.with_channels(order), held.with_channels(order)
        standardizer = start.standardizer
    else:
        standardizer = Standardizer.fit(fit_part) if config.standardize else None
    augment = Augmenter.fit(config.augment, fit_part, standardizer)
    return PreparedData(to_tensor(fit_part.X, standardizer), torch.from_numpy(fit_part.y),
                        (to_tensor(held.X, standardizer), torch.from_numpy(held.y)) if held_out else None,
                        held_out, standardizer, augment, fit_part, order)


@dataclass
class FittedRun:
    """A trained model with its standardizer, history and the data it was fitted on."""

    model: nn.Module
    history: History
    prepared: PreparedData


def fit_run(prepared: PreparedData, model_name: str, hyperparameters: dict[str, object], config: TrainConfig,
            seed: int, shape: tuple[int, int, int], callbacks: Sequence[Callback] = (),
            device: torch.device | str | None = "cpu", start: Start | None = None) -> FittedRun:
    """Build `model_name` for `shape` (channels, timesteps, classes) with the run's seed, or fine-tuning take
    `start`'s model (the config's `new_head`, `freeze` and `head_learning_rate` apply), and fit it on `prepared`
    on `device` (see harlab.training.device); the seed fixes the weights, the shuffling, the dropout and the
    augmentation on a CPU."""
    groups = None
    if start is None:
        model = build_model(model_name, hyperparameters, seed, shape)
    else:
        start.check(model_name, hyperparameters)
        classes = prepared.fit_windows.classes
        model = fine_tuned_model(start, classes, config.new_head, seed)
        groups = parameter_groups(model, len(classes), config, start.head_rows(classes, config.new_head) is None)
        if config.freeze is not None:
            frozen_epochs = None if config.freeze == "all" else config.freeze
            callbacks = [*callbacks, FreezeBackbone(len(classes), frozen_epochs)]
    history = fit(model, prepared.X_fit, prepared.y_fit, config, seed, validation=prepared.validation,
                  augment=prepared.augment, callbacks=callbacks, device=device,
                  class_weights=class_weights(config, prepared.fit_windows), parameter_groups=groups)
    return FittedRun(model, history, prepared)


def class_weights(config: TrainConfig, windows: WindowSet) -> torch.Tensor | None:
    """The loss weight of each class under `config.class_weight` for these training windows: balanced (n /
    (classes present × windows of the class)), or the named weights (1 for a class not named); None for none.
    A name that is not one of the windows' classes is one line."""
    setting = config.class_weight
    if setting is None:
        return None
    if setting == "balanced":
        counts = np.bincount(windows.y, minlength=len(windows.classes)).astype(np.float64)
        present = counts > 0
        weights = np.ones(len(counts))
        weights[present] = len(windows.y) / (present.sum() * counts[present])
        return torch.tensor(weights, dtype=torch.float32)
    if unknown := sorted(set(setting) - set(windows.classes)):
        raise HarlabError(f"class_weight names {', '.join(unknown)}: not among the classes "
                          f"({', '.join(windows.classes)}); name classes as the dataset does")
    return torch.tensor([setting.get(name, 1.0) for name in windows.classes], dtype=torch.float32)


def build_model(model_name: str, hyperparameters: dict[str, object], seed: int, shape: tuple[int, int, int]
                ) -> nn.Module:
    """`model_name` for `shape` (channels, timesteps, classes), its weights initialised from `seed`."""
    torch.manual_seed(seed)
    return create_model(model_name, *shape, **hyperparameters)


def fit_replica_runs(prepared: PreparedData, model_name: str, hyperparameters: dict[str, object],
                     config: TrainConfig, seeds: Sequence[int], shape: tuple[int, int, int],
                     callbacks: Sequence[Callback] = (), device: torch.device | str | None = "cpu") -> list[FittedRun]:
    """`fit_run` for each of `seeds` (runs with no validation set), trained together as replicas
    (harlab.training.replicas): the same models within float tolerance, in one batched computation."""
    models = [build_model(model_name, hyperparameters, seed, shape) for seed in seeds]
    histories = fit_replicas(models, prepared.X_fit, prepared.y_fit, config, seeds, augment=prepared.augment,
                             callbacks=[callbacks] * len(seeds), device=device,
                             class_weights=class_weights(config, prepared.fit_windows))
    return [FittedRun(model, history, prepared) for model, history in zip(models, histories, strict=True)]
