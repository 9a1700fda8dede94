"""Every architecture registered under a name: a name and hyperparameters are enough to build any model.

A builder is a class (or function) `(n_channels, n_timesteps, n_classes, **hyperparameters) -> nn.Module`.
Its annotated keyword defaults are the hyperparameters, validated by pydantic; a parameter typed as a pydantic
model (such as the Conv1D options) is offered flat, one hyperparameter per field.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pydantic
import torch
from pydantic import BaseModel, ConfigDict
from torch import nn

from harlab.errors import HarlabError, field_problems
from harlab.limits import PARAMETERS
from harlab.models.layers import ShapeError

Builder = Callable[..., nn.Module]
_SHAPE_ARGUMENTS = {"n_channels", "n_timesteps", "n_classes"}


@dataclass(frozen=True)
class ModelEntry:
    """A registered architecture: its builder, hyperparameters and the training defaults of its tutorial (settings
    of harlab.training.config.TrainConfig, validated there)."""

    name: str
    builder: Builder
    training: dict[str, Any]
    summary: str
    schema: type[BaseModel]
    groups: dict[str, type[BaseModel]]  # builder argument → the options model whose fields are offered flat

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """Every hyperparameter with its default."""
        return {name: field.default for name, field in self.schema.model_fields.items()}


_REGISTRY: dict[str, ModelEntry] = {}

# How the modern deep models train, chosen on validation subjects (benchmarks/validate_spec.py): the whole cosine
# schedule with all four augmentations. Early stopping on three held-out subjects stopped them far too soon.
MODERN_RECIPE: dict[str, Any] = {"epochs": 30, "batch_size": 64, "schedule": "cosine", "weight_decay": 0.01,
                                 "label_smoothing": 0.1, "augment": ("jitter", "scaling", "rotation", "time_warp")}


def _schema(name: str, builder: Builder) -> tuple[type[BaseModel], dict[str, type[BaseModel]]]:
    target = builder.__init__ if inspect.isclass(builder) else builder
    hints = typing.get_type_hints(target, include_extras=True)
    fields: dict[str, Any] = {}
    groups: dict[str, type[BaseModel]] = {}
    for arg, param in inspect.signature(builder).parameters.items():
        if arg in _SHAPE_ARGUMENTS or param.kind is not inspect.Parameter.POSITIONAL_OR_KEYWORD:
            continue
        hint = hints[arg]
        if inspect.isclass(hint) and issubclass(hint, BaseModel):
            groups[arg] = hint
            fields.update({k: (f.annotation, f) for k, f in hint.model_fields.items()})
        else:
            fields[arg] = (hint, param.default)
    config = ConfigDict(extra="forbid", frozen=True)
    return pydantic.create_model(f"{name}_hyperparameters", __config__=config, **fields), groups


def register(name: str, **training: Any) -> Callable[[Builder], Builder]:
    """Class or function decorator: register a builder under `name` with its training defaults (its tutorial's,
    or for the modern models the recipe chosen on validation subjects), given as TrainConfig settings such as
    `epochs=10, batch_size=32`."""

    def decorate(builder: Builder) -> Builder:
        doc = (inspect.getdoc(builder) or "").splitlines()
        schema, groups = _schema(name, builder)
        _REGISTRY[name] = ModelEntry(name, builder, dict(training), doc[0] if doc else "", schema, groups)
        return builder

    return decorate


def model_names() -> list[str]:
    """Every registered model's name, sorted."""
    return sorted(_REGISTRY)


def get_entry(name: str) -> ModelEntry:
    """The registered model `name`, or a one-line error listing the known ones."""
    if name not in _REGISTRY:
        raise HarlabError(f"unknown model {name!r}; choose one of: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def validate_hyperparameters(name: str, hyperparameters: dict[str, Any]) -> dict[str, Any]:
    """Every hyperparameter of `name`: the given ones checked and converted, defaults for the rest, in JSON
    types (lists, not tuples); a one-line error names a bad one."""
    entry = get_entry(name)
    if unknown := sorted(set(hyperparameters) - set(entry.schema.model_fields)):
        raise HarlabError(f"model {name!r} has no hyperparameter(s) {unknown}; "
                          f"it takes {sorted(entry.schema.model_fields) or 'none'}")
    try:
        return entry.schema(**hyperparameters).model_dump(mode="json")
    except pydantic.ValidationError as exc:
        problems = field_problems(exc)
        raise HarlabError(f"model {name!r}: {problems}") from None


def create_model(name: str, n_channels: int, n_timesteps: int, n_classes: int, **hyperparameters: Any) -> nn.Module:
    """Build model `name` for inputs [batch, n_channels, n_timesteps] and `n_classes` outputs; its size is
    measured first on the meta device (shapes only, no memory) and refused over the PARAMETERS limit."""
    entry = get_entry(name)
    values = validate_hyperparameters(name, hyperparameters)
    for arg, options in entry.groups.items():
        values[arg] = options(**{k: values.pop(k) for k in options.model_fields})
    shape = f"windows of {n_timesteps} steps × {n_channels} channels"

    def build() -> nn.Module:
        try:
            return entry.builder(n_channels=n_channels, n_timesteps=n_timesteps, n_classes=n_classes, **values)
        except ShapeError as exc:
            raise HarlabError(f"model {name!r} on {shape}: {exc}") from None

    with torch.device("meta"):
        skeleton = build()
    given = ", ".join(f"{k}={v}" for k, v in hyperparameters.items())
    PARAMETERS.check(sum(t.numel() for t in (*skeleton.parameters(), *skeleton.buffers())),
                     f"model {name!r}{f' with {given}' if given else ''} on {shape}",
                     "choose smaller hyperparameters (see `harlab models summary`)")
    return build()


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters, as Keras counts them."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
