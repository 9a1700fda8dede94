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
Freeze = Annotated[int, Field(ge=1)] | Literal["all"]
DEFAULT_LEARNING_RATE = 1e-3  # the tutorial's Adam
FINE_TUNE_LEARNING_RATE = 1e-4  # a tenth: enough to adapt a trained backbone without undoing it


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

    `init` starts from a trained model instead of random weights: a bundle's folder or `pretrained:NAME` (see
    harlab.training.transfer). Its classification head is kept when the windows' classes are all among the
    bundle's (its rows picked by class name) and replaced by a new one otherwise, or always with `new_head`;
    `freeze` keeps the backbone's weights fixed for that many first epochs, or `all` of them (batch-norm
    statistics still adapt). Fine-tuning defaults to a smaller learning rate (FINE_TUNE_LEARNING_RATE);
    `head_learning_rate` is the head's own (default: `head_learning_rate_for`).
    """

    epochs: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    learning_rate: float = Field(default=DEFAULT_LEARNING_RATE, gt=0, allow_inf_nan=False)
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
    init: str | None = Field(default=None, min_length=1)
    freeze: Freeze | None = None
    new_head: bool | None = None
    head_learning_rate: float | None = Field(default=None, gt=0, allow_inf_nan=False)


# The settings a registered model gives its own default for (its tutorial's, or the modern recipe).
MODEL_DEFAULTS = ("epochs", "batch_size", "validation_split", "patience", "schedule", "weight_decay",
                  "label_smoothing", "augment", "precision", "class_weight", "sampler", "monitor")
# Settings added after results were first recorded: left out of dumps while unset, so older records still match.
LATER_SETTINGS = ("schedule", "weight_decay", "label_smoothing", "augment", "precision", "class_weight", "sampler",
                  "monitor", "init", "freeze", "new_head", "head_learning_rate")


def override_fields() -> dict[str, Any]:
    """TrainConfig's fields as a configuration gives them (pydantic field definitions): the model-defaulted ones
    optional (None: the model's), the learning rate too (None: `learning_rate_for` the init), the others with
    TrainConfig's own default; bounds and types are TrainConfig's.
    `standardize` comes first, the order records have always been written in."""
    fields: dict[str, Any] = {}
    fields_with_none = {*MODEL_DEFAULTS, "learning_rate"}  # None: the default, which depends on `init`
    names = ["standardize", *(name for name in TrainConfig.__pydantic_fields__ if name != "standardize")]
    for name in names:
        info = TrainConfig.__pydantic_fields__[name]
        if name in fields_with_none:
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


def learning_rate_for(init: str | None) -> float:
    """The learning rate a configuration that does not set one trains with: smaller when fine-tuning."""
    return DEFAULT_LEARNING_RATE if init is None else FINE_TUNE_LEARNING_RATE


def head_learning_rate_for(config: TrainConfig, new_head: bool) -> float:
    """The learning rate of a fine-tuned model's head: `head_learning_rate` where set; otherwise a new head, whose
    weights are random, trains as from scratch (DEFAULT_LEARNING_RATE, or the learning rate where higher) and a
    kept one at the learning rate (benchmarks/basic_motions.py: with 4 recordings, a new head at 1e-4 barely
    trained in 30 steps)."""
    if config.head_learning_rate is not None:
        return config.head_learning_rate
    return max(config.learning_rate, DEFAULT_LEARNING_RATE) if new_head else config.learning_rate


def resolve(defaults: TrainConfig, overrides: dict[str, Any]) -> TrainConfig:
    """`defaults` with every override that is not None (an unset learning rate is `learning_rate_for` the init);
    a validation split of 0 turns early stopping off."""
    given = {k: v for k, v in overrides.items() if v is not None and k in SETTING_NAMES}
    given.setdefault("learning_rate", learning_rate_for(given.get("init")))
    config = dataclasses.replace(defaults, **given)
    if config.validation_split == 0 and config.patience is not None:
        config = dataclasses.replace(config, patience=None)
    return config


def describe(config: TrainConfig) -> str:
    """A short text such as `10 epochs, batch 32, cosine learning rate, augmented by jitter/rotation`."""
    text = f"{config.epochs} epochs, batch {config.batch_size}"
    if config.init is not None:
        text = f"fine-tuning {config.init} ({describe_fine_tuning(config)}), " + text
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


def describe_fine_tuning(config: TrainConfig) -> str:
    head = {None: "its head where the classes fit", True: "a new head", False: "its head"}[config.new_head]
    frozen = {None: "", "all": ", backbone frozen"}.get(config.freeze, f", backbone frozen for {config.freeze} epochs")
    head_rate = "" if config.head_learning_rate is None else f" (head {config.head_learning_rate:g})"
    return f"{head}{frozen}, learning rate {config.learning_rate:g}{head_rate}"
