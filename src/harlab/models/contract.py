"""What the training loop may ask of a model besides `forward`, declared in one place.

Any `nn.Module` mapping windows [batch, channels, time] to logits [batch, classes] trains. A model (or any of
its layers) may also declare, by implementing the matching protocol:

- `Penalized.penalty()`: a loss term added to the training loss (Keras's layer losses, e.g. an L2 kernel penalty);
- `Constrained.constrain()`: a projection of its weights after every optimizer step (e.g. a max-norm);
- `Ensemble.ensemble_members`: more than 1 means that in training mode it returns its members' logits stacked
  [members, batch, classes], each member getting its own loss; in eval mode it returns one set of logits;
- `SelfFitting.fit_windows(...)`: it is fitted in closed form on the windows, not by gradient descent.

`Contract.of(model)` reads them once; the loop uses only the contract.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch
from torch import nn


@runtime_checkable
class Penalized(Protocol):
    def penalty(self) -> torch.Tensor | None:
        """The loss term this layer adds, or None when it adds none."""


@runtime_checkable
class Constrained(Protocol):
    def constrain(self) -> None:
        """Project this layer's weights onto their constraint (called after every optimizer step)."""


@runtime_checkable
class Ensemble(Protocol):
    ensemble_members: int


@runtime_checkable
class SelfFitting(Protocol):
    """A model fitted in closed form (e.g. random features and a ridge classifier), not by gradient descent."""

    def fit_windows(self, X: torch.Tensor, y: torch.Tensor, seed: int, copies: Sequence[torch.Tensor] = ()) -> None:
        """Fit on windows X [n, channels, time] with labels y, and on augmented `copies` of X (same labels)."""


@dataclass(frozen=True)
class Contract:
    """What one model declares: its ensemble size, whether it fits itself, its penalized and constrained layers."""

    members: int
    self_fitting: bool
    penalized: tuple[Penalized, ...]
    constrained: tuple[Constrained, ...]

    @classmethod
    def of(cls, model: nn.Module) -> Contract:
        members = model.ensemble_members if isinstance(model, Ensemble) else 1
        modules = list(model.modules())
        return cls(members, isinstance(model, SelfFitting), tuple(m for m in modules if isinstance(m, Penalized)),
                   tuple(m for m in modules if isinstance(m, Constrained)))

    def penalty(self) -> torch.Tensor | None:
        """The sum of the layers' loss terms, or None when none adds one."""
        terms = [t for t in (m.penalty() for m in self.penalized) if t is not None]
        return torch.stack(terms).sum() if terms else None

    def constrain(self) -> None:
        for module in self.constrained:
            module.constrain()
