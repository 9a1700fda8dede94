"""Every architecture registered under a name: a spec string is enough to build any model."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from harlab.errors import HarlabError

Builder = Callable[..., nn.Module]


@dataclass(frozen=True)
class ModelEntry:
    """A registered architecture: its builder and the training defaults its tutorial uses."""

    name: str
    builder: Builder
    epochs: int
    batch_size: int
    summary: str = ""
    hyperparameters: dict[str, Any] = field(default_factory=dict)


_REGISTRY: dict[str, ModelEntry] = {}


def register(name: str, *, epochs: int, batch_size: int) -> Callable[[Builder], Builder]:
    """Class or function decorator: register a builder `(n_channels, n_timesteps, n_classes, **hp)`."""

    def decorate(builder: Builder) -> Builder:
        params = inspect.signature(builder).parameters
        hyper = {k: p.default for k, p in params.items()
                 if k not in {"n_channels", "n_timesteps", "n_classes"} and p.default is not inspect.Parameter.empty}
        doc = (inspect.getdoc(builder) or "").splitlines()
        _REGISTRY[name] = ModelEntry(name, builder, epochs, batch_size, doc[0] if doc else "", hyper)
        return builder

    return decorate


def model_names() -> list[str]:
    _load_builtin_models()
    return sorted(_REGISTRY)


def get_entry(name: str) -> ModelEntry:
    """The registered model `name`, or a one-line error listing the known ones."""
    _load_builtin_models()
    if name not in _REGISTRY:
        raise HarlabError(f"unknown model {name!r}; choose one of: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def create_model(name: str, n_channels: int, n_timesteps: int, n_classes: int, **hyperparameters: Any) -> nn.Module:
    """Build model `name` for inputs [batch, n_channels, n_timesteps] and `n_classes` outputs."""
    entry = get_entry(name)
    if unknown := sorted(set(hyperparameters) - set(entry.hyperparameters)):
        raise HarlabError(f"model {name!r} has no hyperparameter(s) {unknown}; "
                          f"it takes {sorted(entry.hyperparameters) or 'none'}")
    return entry.builder(n_channels=n_channels, n_timesteps=n_timesteps, n_classes=n_classes, **hyperparameters)


def _load_builtin_models() -> None:
    from harlab.models import cnn  # noqa: F401  (registers itself on import)


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters, as Keras counts them."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
