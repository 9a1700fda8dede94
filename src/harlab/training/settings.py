"""What a run trains: a model by name, its hyperparameters, and the training settings on top of the model's own
defaults (`RunSettings`); with a base seed and a number of repeats, one configuration (`RepeatConfig`).

The training settings are TrainConfig's (harlab.training.config), each optional here: None means the model's
default. Dumps of these records are the identity of stored runs, so their shape is kept stable: the dataset's own
split and settings added after records were first made are left out while unset.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pydantic
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_serializer, model_validator

from harlab.data.splits import SplitSpec
from harlab.limits import RUNS
from harlab.models.registry import get_entry, validate_hyperparameters
from harlab.training.config import (
    LATER_SETTINGS,
    TrainConfig,
    TrainOverrides,
    learning_rate_for,
    model_defaults,
    override_fields,
    resolve,
)

MAX_SEED = 2**32 - 1  # NumPy's and Optuna's seeds are 32-bit


def defaults_of(model: str) -> TrainConfig:
    """The training settings model `model` registers (its tutorial's, or the modern recipe)."""
    return model_defaults(get_entry(model).training, model)


class _RunSettingsBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = "cnn"

    @model_serializer(mode="wrap")
    def _omit_default_split(self, handler: Any) -> dict[str, Any]:
        """The dataset's own split and unset later settings are left out of dumps, so records made before they
        existed still match; an unset learning rate is written as the one it trains with."""
        data = handler(self)
        if data.get("learning_rate") is None and not self.sweeps_init():
            data["learning_rate"] = learning_rate_for(self.init)  # type: ignore[attr-defined]
        if self.split.is_default():  # type: ignore[attr-defined]
            data.pop("split", None)
        for name in LATER_SETTINGS:
            if data.get(name) is None:
                data.pop(name, None)
        return data

    @model_validator(mode="after")
    def _fine_tuning_needs_init(self) -> _RunSettingsBase:
        for name in ("freeze", "new_head", "head_learning_rate"):
            if getattr(self, name) is not None and self.init is None and not self.sweeps_init():  # type: ignore[attr-defined]
                raise ValueError(f"{name} applies to fine-tuning only; set init=BUNDLE (a bundle's folder or "
                                 f"pretrained:NAME) or leave {name} unset")
        return self

    def sweeps_init(self) -> bool:
        """Whether configurations made from these settings set their own `init` (then so does their learning rate)."""
        return False


# What a run trains besides the model's hyperparameters: the model, TrainConfig's settings (None: the model's
# default) and the subject split, in the order records have always been written in.
RunSettings: type[_RunSettingsBase] = pydantic.create_model(
    "RunSettings", __base__=_RunSettingsBase, **override_fields(),
    split=(SplitSpec, Field(default_factory=SplitSpec)))
RunSettings.__doc__ = ("What a run trains besides the model's hyperparameters: the model, the training settings "
                       "(None: the model's default) and the subject split.")


class RepeatConfig(RunSettings):  # type: ignore[misc, valid-type]  # a class made from TrainConfig's fields
    """One configuration and how many seeded repeats of it to train."""

    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    repeats: int = Field(default=10, ge=1)
    seed: int = Field(default=0, ge=0, le=MAX_SEED)

    @field_validator("repeats")
    @classmethod
    def _within_limit(cls, value: int) -> int:
        """At most the RUNS limit (harlab.limits), refused before anything is planned."""
        RUNS.check(value, f"repeats={value}", "train fewer repeats")
        return value

    @field_validator("hyperparameters")
    @classmethod
    def _complete(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        """All of the model's hyperparameters, validated, so a record says exactly what was trained."""
        return validate_hyperparameters(info.data["model"], value) if "model" in info.data else value

    def train_config(self) -> TrainConfig:
        """The model's own training settings with this configuration's overrides; a validation split of 0 turns
        early stopping off."""
        return resolve(defaults_of(self.model), {k: getattr(self, k) for k in TrainOverrides.model_fields})

    def key(self) -> str:
        """A short stable id of what this configuration trains (the number of repeats aside)."""
        identity = {k: v for k, v in self.model_dump(mode="json").items() if k != "repeats"}
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]

    def run_seed(self, repeat: int) -> int:
        """Seed of repeat `repeat` (1-based): the base seed plus the repeat index."""
        return self.seed + repeat - 1
