"""Label-preserving random changes to training batches of inertial windows (Um et al. 2017, "Data augmentation
of wearable sensor data"): jitter, scaling, time-warp and rotation of the 3-axis groups.

They act in the sensors' own units: a standardized batch is un-standardized first and standardized again after,
so that a rotation turns real acceleration vectors and a jitter is a fraction of each channel's spread.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np
import torch

from harlab.data.transforms import Standardizer
from harlab.data.windowset import WindowSet
from harlab.errors import HarlabError
from harlab.training.config import Augmentation

JITTER = 0.05  # noise, as a fraction of each channel's standard deviation
SCALING = 0.1  # standard deviation of the per-window, per-channel gain around 1
WARP = 0.2  # standard deviation of the local speed around 1 at the warp's knots
WARP_KNOTS = 4
MAX_ANGLE = math.radians(15)  # the sensor is worn the same way; small turns of its frame only
_AXIS = re.compile(r"^(.*?)[_-]?([xyz])$", re.IGNORECASE)


def axis_groups(channels: Sequence[str]) -> list[tuple[int, int, int]]:
    """Indices (x, y, z) of every complete 3-axis group, matched by name: `total_acc_x`, `acc_y`, `gyro-z`…"""
    axes: dict[str, dict[str, int]] = {}
    for index, name in enumerate(channels):
        if match := _AXIS.match(name):
            axes.setdefault(match.group(1).lower(), {})[match.group(2).lower()] = index
    return [(axis["x"], axis["y"], axis["z"]) for axis in axes.values() if len(axis) == 3]


class Augmenter:
    """Applies the chosen augmentations, in a fixed order, to training batches [batch, channels, time]."""

    def __init__(self, kinds: Sequence[Augmentation], channels: Sequence[str], mean: np.ndarray, std: np.ndarray,
                 standardized: bool):
        """`mean` and `std` are the training windows' per-channel statistics in sensor units; `standardized`
        says whether batches arrive standardized by them."""
        self.kinds = tuple(kinds)
        self.groups = axis_groups(channels)
        if "rotation" in self.kinds and not self.groups:
            raise HarlabError(f"augment rotation needs x/y/z channel triples (such as acc_x, acc_y, acc_z); the "
                              f"channels are {', '.join(channels)}; leave rotation out")
        self.mean = torch.as_tensor(mean, dtype=torch.float32)[:, None]
        self.std = torch.as_tensor(std, dtype=torch.float32)[:, None]
        self.standardized = standardized

    @classmethod
    def fit(cls, kinds: Sequence[Augmentation], windows: WindowSet,
            standardizer: Standardizer | None) -> Augmenter | None:
        """The augmenter for batches of `windows`, standardized by `standardizer` where one is given (its
        statistics are reused, else the windows' own are fitted); None for no augmentation."""
        if not kinds:
            return None
        statistics = standardizer or Standardizer.fit(windows)
        return cls(kinds, windows.channels, statistics.mean, statistics.std, standardizer is not None)

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The batch x changed; random draws come from `generator` on the CPU (the same draws on every device)."""
        if self.mean.device != x.device:
            self.mean, self.std = self.mean.to(x.device), self.std.to(x.device)
        if self.standardized:
            x = x * self.std + self.mean
        for kind in self.kinds:
            x = getattr(self, f"_{kind}")(x, generator)
        return (x - self.mean) / self.std if self.standardized else x

    def _jitter(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return x + JITTER * self.std * _normal(x.shape, generator, x.device)

    def _scaling(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return x * (1 + SCALING * _normal((x.shape[0], x.shape[1], 1), generator, x.device))

    def _time_warp(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Resample every window along a smooth random time axis (speed varying around 1 between knots)."""
        batch, _, steps = x.shape
        knots = (1 + WARP * _normal((batch, 1, WARP_KNOTS + 2), generator, x.device)).clamp(min=0.1)
        speed = torch.nn.functional.interpolate(knots, size=steps, mode="linear", align_corners=True)[:, 0]
        position = torch.cumsum(speed, dim=1) - speed[:, :1]
        position = position / position[:, -1:] * (steps - 1)
        left = position.floor().long().clamp(max=steps - 2)
        weight = (position - left)[:, None, :]
        index = left[:, None, :].expand(-1, x.shape[1], -1)
        return x.gather(2, index) * (1 - weight) + x.gather(2, index + 1) * weight

    def _rotation(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Turn every 3-axis group of a window by the same random rotation (one device, one frame)."""
        rotation = random_rotations(x.shape[0], generator).to(x.device)
        x = x.clone()
        for group in self.groups:
            x[:, list(group)] = torch.bmm(rotation, x[:, list(group)])
        return x


def _normal(shape: Sequence[int], generator: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.randn(tuple(shape), generator=generator).to(device)


def random_rotations(count: int, generator: torch.Generator, max_angle: float = MAX_ANGLE) -> torch.Tensor:
    """`count` rotation matrices [count, 3, 3] about uniformly random axes by angles uniform in ±max_angle
    (Rodrigues' formula)."""
    axis = torch.nn.functional.normalize(torch.randn(count, 3, generator=generator), dim=1)
    angle = (torch.rand(count, generator=generator) * 2 - 1) * max_angle
    cross = torch.zeros(count, 3, 3)
    cross[:, 0, 1], cross[:, 0, 2], cross[:, 1, 2] = -axis[:, 2], axis[:, 1], -axis[:, 0]
    cross = cross - cross.transpose(1, 2)
    sin, cos = angle.sin()[:, None, None], angle.cos()[:, None, None]
    return torch.eye(3).expand(count, 3, 3) + sin * cross + (1 - cos) * torch.bmm(cross, cross)
