"""Transforms fitted on training windows only and applied to any windows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harlab.data.windowset import WindowSet


@dataclass(frozen=True)
class Standardizer:
    """Per-channel mean and standard deviation, fitted on training windows with the overlap removed."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, train: WindowSet) -> Standardizer:
        samples = train.without_overlap().astype(np.float64)
        std = samples.std(axis=0)
        return cls(samples.mean(axis=0), np.where(std > 0, std, 1.0))

    def apply(self, X: np.ndarray) -> np.ndarray:
        """(X − mean) / std per channel, X [samples, time, channels]."""
        return ((X - self.mean) / self.std).astype(np.float32)

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}
