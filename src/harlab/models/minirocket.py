"""MiniRocket (Dempster, Schmidt & Webb 2021): 84 fixed dilated kernels of length 9, the proportion of positive
values (PPV) of each convolution above fitted biases as features, and a ridge classifier on them.

aeon's maintained MiniRocket fits the random parts (which channels each kernel sums, and the biases, taken
from quantiles of convolutions of training windows) and sklearn's RidgeClassifierCV fits the classifier, exactly
as aeon's MiniRocketClassifier does. The transform itself is re-expressed here with torch operations so that a
fitted MiniRocket is an ordinary module: saved as safetensors, exported to ONNX, run batched by predict. A test
checks its features against aeon's transform.

With augmentation (a run with more than one epoch and `augment`), the ridge classifier is also fitted on augmented
copies of the training windows, one per further epoch: rotated copies make it robust to how the sensor sits on
each subject (on validation subjects of hapt, 95.8 % → 97.0 % with four rotated copies).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations
from typing import TYPE_CHECKING, Annotated

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field, PositiveInt
from torch import nn

from harlab.errors import HarlabError
from harlab.limits import MEMORY
from harlab.models.layers import ShapeError
from harlab.models.registry import register

if TYPE_CHECKING:
    from sklearn.linear_model import RidgeClassifierCV

KERNEL_LENGTH = 9
# The 84 kernels: weight 2 at three of the nine positions, -1 elsewhere.
KERNEL_POSITIONS = list(combinations(range(KERNEL_LENGTH), 3))
RIDGE_ALPHAS = np.logspace(-3, 3, 10)
ABSENT_CLASS_SCORE = -1e4  # a class without training windows is never predicted
# Windows transformed at a time: their [windows, kernels, biases, time] comparisons stay in the CPU's cache
# (2.6× the windows/s of batches of 256 on 2 cores).
CHUNK = 32


def dilation_plan(n_timesteps: int, features: int, max_dilations_per_kernel: int) -> tuple[list[int], list[int]]:
    """The dilations and features per dilation MiniRocket uses for windows of `n_timesteps` (as aeon computes
    them: exponentially spaced dilations up to the window's length)."""
    per_kernel = features // len(KERNEL_POSITIONS)
    true_max = min(per_kernel, max_dilations_per_kernel)
    exponent = np.log2((n_timesteps - 1) / (KERNEL_LENGTH - 1))
    dilations, counts = np.unique(np.logspace(0, exponent, true_max, base=2).astype(np.int32), return_counts=True)
    counts = (counts * (per_kernel / true_max)).astype(np.int32)
    for i in range(per_kernel - int(counts.sum())):
        counts[i % len(counts)] += 1
    return dilations.tolist(), counts.tolist()


def _ppv(convolved: torch.Tensor, biases: torch.Tensor) -> torch.Tensor:
    """Proportion of positive values of convolutions [batch, kernels, time] minus biases [kernels, count, 1]:
    [batch, kernels, count]."""
    return (convolved[:, :, None, :] > biases).float().mean(-1)


@register("minirocket", epochs=1, batch_size=256)
class MiniRocket(nn.Module):
    """MiniRocket: fixed random dilated convolutions, PPV features and a ridge classifier (no gradient training)."""

    def __init__(self, n_channels: int, n_timesteps: int, n_classes: int,
                 features: Annotated[int, Field(ge=len(KERNEL_POSITIONS))] = 10_000,
                 max_dilations_per_kernel: PositiveInt = 32):
        super().__init__()
        if n_timesteps < KERNEL_LENGTH:
            raise ShapeError(f"MiniRocket needs windows of at least {KERNEL_LENGTH} steps")
        self.dilations, self.per_dilation = dilation_plan(n_timesteps, features, max_dilations_per_kernel)
        self.features, self.max_dilations_per_kernel = features, max_dilations_per_kernel
        kernels = -torch.ones(len(KERNEL_POSITIONS), 1, KERNEL_LENGTH)
        for k, positions in enumerate(KERNEL_POSITIONS):
            kernels[k, 0, list(positions)] = 2
        self.register_buffer("kernels", kernels, persistent=False)
        n_combinations = len(self.dilations) * len(KERNEL_POSITIONS)
        self.register_buffer("channel_mask", torch.zeros(n_combinations, n_channels))  # channels each kernel sums
        self.register_buffer("biases", torch.zeros(len(KERNEL_POSITIONS) * sum(self.per_dilation)))
        self.head = nn.Linear(len(self.biases), n_classes)

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        """PPV features [batch, features] of windows x [batch, channels, time], in aeon's order."""
        batch, _, steps = x.shape
        n_kernels = len(KERNEL_POSITIONS)
        outputs, start = [], 0
        for j, (dilation, count) in enumerate(zip(self.dilations, self.per_dilation, strict=True)):
            padding = (KERNEL_LENGTH - 1) * dilation // 2
            # Each kernel sums its convolutions over its own channels: one convolution with masked weights.
            weight = self.channel_mask[j * n_kernels:(j + 1) * n_kernels, :, None] * self.kernels
            convolved = F.conv1d(x, weight, padding=padding, dilation=dilation)
            biases = self.biases[start:start + n_kernels * count].reshape(n_kernels, count, 1)
            # Kernels alternate (and the alternation flips with each dilation) between counting every position
            # and counting only positions without zero padding.
            even, odd = (convolved[:, parity::2] for parity in (0, 1))
            even_biases, odd_biases = biases[0::2], biases[1::2]
            inner = slice(padding, steps - padding)
            if j % 2 == 0:
                parts = _ppv(even, even_biases), _ppv(odd[..., inner], odd_biases)
            else:
                parts = _ppv(even[..., inner], even_biases), _ppv(odd, odd_biases)
            outputs.append(torch.stack(parts, dim=2).reshape(batch, n_kernels * count))
            start += n_kernels * count
        return torch.cat(outputs, dim=1)

    def transform_chunked(self, x: torch.Tensor) -> torch.Tensor:
        """`transform`, CHUNK windows at a time (in one piece when exported: the graph takes any batch size)."""
        if torch.onnx.is_in_onnx_export():
            return self.transform(x)
        return torch.cat([self.transform(chunk) for chunk in x.split(CHUNK)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.transform_chunked(x))

    @torch.no_grad()
    def fit_windows(self, X: torch.Tensor, y: torch.Tensor, seed: int, copies: Sequence[torch.Tensor] = ()) -> None:
        """Fit the kernels' channels and biases with aeon on the windows X, then the ridge classifier on the
        features of X and of its augmented `copies` (labels y each).

        The ridge penalty is chosen by leave-one-out on X alone (a window's copies would otherwise sit in the
        training data of its own left-out fold) and multiplied by the number of versions of each window, so
        that it weighs as much against the data term: copies identical to X give exactly the plain fit."""
        from sklearn.linear_model import RidgeClassifier, RidgeClassifierCV

        windows = len(X) * (1 + len(copies))
        MEMORY.check(windows * self.head.in_features * np.dtype(np.float32).itemsize,
                     f"{self.head.in_features:,} MiniRocket features of {windows:,} windows (copies included)",
                     "lower features, or the epochs that add augmented copies")
        try:
            from aeon.transformations.collection.convolution_based import MiniRocket as AeonMiniRocket
        except ImportError:
            raise HarlabError("training minirocket needs aeon: pip install 'harlab[rocket]'") from None

        aeon = AeonMiniRocket(n_kernels=self.features, max_dilations_per_kernel=self.max_dilations_per_kernel,
                              random_state=seed).fit(X.numpy())
        self.load_aeon_parameters(aeon.parameters)
        features = torch.cat([self.transform_chunked(windows) for windows in (X, *copies)]).numpy()
        scale = features.std(axis=0)
        scale[scale == 0] = 1.0  # as sklearn's StandardScaler(with_mean=False), which aeon's classifier uses
        features /= scale
        ridge: RidgeClassifier | RidgeClassifierCV = RidgeClassifierCV(alphas=RIDGE_ALPHAS, store_cv_results=True).fit(
            features[:len(X)], y.numpy())
        temperature = _softmax_temperature(ridge, y.numpy())
        if copies:
            versions = 1 + len(copies)
            ridge = RidgeClassifier(alpha=ridge.alpha_ * versions).fit(features, y.repeat(versions).numpy())
        coef = ridge.coef_ if len(ridge.classes_) > 2 else np.vstack([-ridge.coef_, ridge.coef_])
        intercept = ridge.intercept_ if len(ridge.classes_) > 2 else np.hstack([-ridge.intercept_, ridge.intercept_])
        weight = np.zeros((self.head.out_features, coef.shape[1]), dtype=np.float32)
        bias = np.full(self.head.out_features, ABSENT_CLASS_SCORE, dtype=np.float32)
        weight[ridge.classes_] = temperature * coef / scale
        bias[ridge.classes_] = temperature * intercept
        self.head.weight.copy_(torch.from_numpy(weight))
        self.head.bias.copy_(torch.from_numpy(bias))

    def load_aeon_parameters(self, parameters: tuple[np.ndarray, ...]) -> None:
        """Take the channel choices and biases of a fitted aeon MiniRocket with the same dilation plan."""
        channels_per_combination, channel_indices, dilations, per_dilation, biases = parameters
        if dilations.tolist() != self.dilations or per_dilation.tolist() != self.per_dilation:
            raise ValueError(f"aeon's dilations {dilations.tolist()} × {per_dilation.tolist()} differ from "
                             f"{self.dilations} × {self.per_dilation}")
        self.channel_mask.zero_()
        ends = np.cumsum(channels_per_combination)
        for combination, (end, count) in enumerate(zip(ends, channels_per_combination, strict=True)):
            self.channel_mask[combination, torch.from_numpy(channel_indices[end - count:end].astype(np.int64))] = 1
        self.biases.copy_(torch.from_numpy(biases))


def _softmax_temperature(ridge: RidgeClassifierCV, y: np.ndarray) -> float:
    """The factor that turns the ridge's scores (about ±1) into class probabilities under a softmax: fitted by
    likelihood on its leave-one-out scores of the training windows at the chosen penalty, so that a window's
    confidence tells how often such a window is right (the argmax, hence accuracy, is unchanged). Overlapping
    windows make leave-one-out a little optimistic: on the hapt test subjects the mean confidence is 99.7 %
    at 98.5 % accuracy (without the temperature, about 30 %)."""
    from scipy.optimize import minimize_scalar
    from scipy.special import log_softmax

    scores = ridge.cv_results_[..., list(ridge.alphas).index(ridge.alpha_)].reshape(len(y), -1)
    if scores.shape[1] == 1:  # two classes: one score for the second
        scores = np.hstack([-scores, scores])
    target = np.searchsorted(ridge.classes_, y)

    def loss(log_temperature: float) -> float:
        return float(-log_softmax(np.exp(log_temperature) * scores, axis=1)[np.arange(len(y)), target].mean())

    return float(np.exp(minimize_scalar(loss, bounds=(-3.0, 6.0), method="bounded").x))
