"""Every setting of a training run, declared once.

`TrainConfig` is the one declaration: its fields, types, bounds and defaults are what `harlab train` options,
spec keys, the `HARClassifier` parameters and the registry's per-model defaults all mean. `TrainOverrides` is
derived from it field by field: what a configuration sets on top of a model's own defaults, None meaning "the
model's". `resolve` combines the two.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

import pydantic
from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass
from pydantic.fields import FieldInfo

from harlab.errors import HarlabError
from harlab.training.device import Precision

Schedule = Literal["constant", "cosine", "plateau"]
Sampler = Literal["shuffle", "balanced"]
Monitor = Literal["val_loss", "val_accuracy", "val_balanced_accuracy", "val_macro_f1"]
Weight = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Augmentation = Literal["jitter", "scaling", "time_warp", "rotation"]


@dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class TrainConfig:
    """How to fit: the tutorial trains with Adam(1e-3) and the model's own epochs and batch size.

    With `patience`, training stops once the `monitor`ed validation score (the loss by default, or accuracy,
    balanced accuracy or macro-F1 for imbalanced classes) has not improved for that many epochs, and the weights of
    the best epoch are restored. `validation_split` is the fraction of training subjects held out
    for that validation set. `schedule` is constant, cosine (annealed to zero over the planned steps) or plateau
    (halved when the validation loss, or without validation the training loss, stalls). `augment` names the
    augmentations applied to every training batch (see harlab.training.augment). `standardize` fits a
    per-channel standardization on the training windows. `precision` is fp32, bf16 (autocast, where the device
    computes bf16 natively) or fp16 (CUDA, with a gradient scaler); see harlab.training.device. For imbalanced
    classes, `class_weight` weighs each window's loss by its class: `balanced` (n / (classes × windows of the
    class), scikit-learn's rule) or a weight per class name (1 for those not named); `sampler` balanced draws
    each epoch's windows with replacement, every class equally likely, instead of shuffling them.
    """

    epochs: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    learning_rate: float = Field(default=1e-3, gt=0, allow_inf_nan=False)
    validation_split: float = Field(default=0.0, ge=0, lt=1)
    patience: int | None = Field(default=None, ge=0)
    schedule: Schedule = "constant"
    weight_decay: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    label_smoothing: float = Field(default=0.0, ge=0, lt=1)
    augment: tuple[Augmentation, ...] = ()
    standardize: bool = False
    precision: Precision = "fp32"
    class_weight: Literal["balanced"] | dict[str, Weight] | None = None
    sampler: Sampler = "shuffle"
    monitor: Monitor = "val_loss"


# The settings a registered model gives its own default for (its tutorial's, or the modern recipe).
MODEL_DEFAULTS = ("epochs", "batch_size", "validation_split", "patience", "schedule", "weight_decay",
                  "label_smoothing", "augment", "precision", "class_weight", "sampler", "monitor")
# Settings added after results were first recorded: left out of dumps while unset, so older records still match.
LATER_SETTINGS = ("schedule", "weight_decay", "label_smoothing", "augment", "precision", "class_weight", "sampler",
                  "monitor")


def override_fields() -> dict[str, Any]:
    """TrainConfig's fields as a configuration gives them (pydantic field definitions): the model-defaulted ones
    optional (None: the model's), the others with TrainConfig's own default; bounds and types are TrainConfig's.
    `standardize` comes first, the order records have always been written in."""
    fields: dict[str, Any] = {}
    names = ["standardize", *(name for name in TrainConfig.__pydantic_fields__ if name != "standardize")]
    for name in names:
        info = TrainConfig.__pydantic_fields__[name]
        if name in MODEL_DEFAULTS:
            optional = FieldInfo.merge_field_infos(info, default=None)
            fields[name] = (info.annotation | None, optional)
        else:
            fields[name] = (info.annotation, info)
    return fields


TrainOverrides: type[pydantic.BaseModel] = pydantic.create_model(
    "TrainOverrides", __config__=ConfigDict(extra="forbid", frozen=True), **override_fields())
TrainOverrides.__doc__ = "TrainConfig's settings as a configuration overrides them; None means the model's default."
SETTING_NAMES = tuple(TrainConfig.__pydantic_fields__)


def model_defaults(defaults: dict[str, Any], model: str) -> TrainConfig:
    """The TrainConfig a model registers (`register(name, epochs=..., ...)`), validated."""
    try:
        return TrainConfig(**defaults)
    except (pydantic.ValidationError, TypeError) as exc:
        raise HarlabError(f"model {model!r} registers bad training defaults: {exc}") from None


def resolve(defaults: TrainConfig, overrides: dict[str, Any]) -> TrainConfig:
    """`defaults` with every override that is not None; a validation split of 0 turns early stopping off."""
    given = {k: v for k, v in overrides.items() if v is not None and k in SETTING_NAMES}
    config = dataclasses.replace(defaults, **given)
    if config.validation_split == 0 and config.patience is not None:
        config = dataclasses.replace(config, patience=None)
    return config


def describe(config: TrainConfig) -> str:
    """A short text such as `10 epochs, batch 32, cosine learning rate, augmented by jitter/rotation`."""
    text = f"{config.epochs} epochs, batch {config.batch_size}"
    if config.patience is not None:
        on = "" if config.monitor == "val_loss" else f" on {config.monitor}"
        text += f", early stopping{on} (patience {config.patience}, {config.validation_split:.0%} of subjects held out)"
    if config.schedule != "constant":
        text += f", {config.schedule} learning rate"
    if config.weight_decay:
        text += f", weight decay {config.weight_decay:g}"
    if config.label_smoothing:
        text += f", label smoothing {config.label_smoothing:g}"
    if config.augment:
        text += ", augmented by " + "/".join(config.augment)
    if config.precision != "fp32":
        text += f", {config.precision}"
    if config.class_weight is not None:
        text += ", class weights " + (config.class_weight if isinstance(config.class_weight, str) else ", ".join(
            f"{name} {weight:g}" for name, weight in config.class_weight.items()))
    if config.sampler != "shuffle":
        text += f", {config.sampler} sampler"
    return text
