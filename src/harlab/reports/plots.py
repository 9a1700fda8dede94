"""Figures: each builder returns a matplotlib Figure; `save_figure` writes it as PNG, SVG or PDF by suffix.

Figures are built with matplotlib's object-oriented API (`Figure`, no pyplot), so no backend is needed and
importing harlab leaves the user's backend and rcParams as they are."""

from __future__ import annotations

import io
import sys
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from harlab.data.windowset import WindowSet
from harlab.errors import HarlabError
from harlab.files import atomic_write_bytes

FORMATS = {".png", ".svg", ".pdf"}


def figure_bytes(figure: Figure, fmt: str) -> bytes:
    """`figure` rendered as `fmt` (png, svg or pdf)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format=fmt, dpi=120, bbox_inches="tight")
    return buffer.getvalue()


def close_figure(figure: Figure) -> None:
    """Let pyplot forget `figure` if pyplot made it (e.g. Optuna's plots); a `Figure` of ours needs nothing."""
    if (pyplot := sys.modules.get("matplotlib.pyplot")) is not None:
        pyplot.close(figure)


def save_figure(figure: Figure, *paths: Path) -> None:
    """Write `figure` atomically to each path in the format its suffix names, and close it."""
    try:
        for path in paths:
            if path.suffix.lower() not in FORMATS:
                raise HarlabError(f"{path}: unsupported figure format; use one of {', '.join(sorted(FORMATS))}")
            atomic_write_bytes(path, figure_bytes(figure, path.suffix.lower().lstrip(".")))
    finally:
        close_figure(figure)


def channel_histograms(train: WindowSet, bins: int = 100) -> Figure:
    """The tutorial's figure: one histogram per channel of the training windows, overlap removed."""
    samples = train.without_overlap()
    n = samples.shape[1]
    figure = Figure(figsize=(8, 1.3 * n))
    axes = figure.subplots(n, 1, squeeze=False)
    for ax, channel, values in zip(axes[:, 0], train.channels, samples.T, strict=True):
        ax.hist(values, bins=bins, color="tab:blue")
        ax.set_ylabel(channel, rotation=0, ha="right", va="center", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0, 0].set_title(f"{train.provenance.dataset}: per-channel distribution of {len(train)} training windows "
                         f"({len(samples)} samples, overlap removed)", fontsize=9)
    return figure


def accuracy_boxplot(groups: dict[str, Sequence[float]], title: str,
                     reference: dict[str, float] | None = None) -> Figure:
    """The tutorial's figure: a box of test accuracy (%) per configuration, runs as dots, the tutorial's
    reported mean as a red diamond where it is known."""
    labels = list(groups)
    figure = Figure(figsize=(max(4.0, 1.1 * len(labels) + 1.5), 4))
    ax = figure.subplots()
    ax.boxplot([groups[k] for k in labels], showmeans=True)
    ax.set_xticks(range(1, len(labels) + 1), labels, rotation=20 if len(labels) > 4 else 0, ha="right"
                  if len(labels) > 4 else "center", fontsize=8)
    rng = np.random.default_rng(0)
    for i, label in enumerate(labels, 1):
        values = np.asarray(groups[label])
        ax.plot(i + rng.uniform(-0.08, 0.08, len(values)), values, ".", color="tab:blue", alpha=0.6)
        if reference and label in reference:
            ax.plot(i, reference[label], "D", color="tab:red", label="tutorial" if i == 1 else None)
    if reference and any(k in reference for k in labels):
        ax.legend(handles=[Line2D([], [], marker="D", color="tab:red", linestyle="", label="tutorial's mean")],
                  fontsize=8, loc="lower right")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    return figure


def confusion_figure(confusion: Sequence[Sequence[int]], classes: Sequence[str], title: str) -> Figure:
    """A confusion matrix twice: counts, and normalized per true class (rows sum to 1)."""
    counts = np.asarray(confusion)
    normalized = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    figure = Figure(figsize=(11, 4.6))
    axes = figure.subplots(1, 2)
    for ax, matrix, fmt, name in ((axes[0], counts, "d", "counts"), (axes[1], normalized, ".2f", "row-normalized")):
        ax.imshow(normalized, cmap="Blues", vmin=0, vmax=1)
        for (i, j), value in np.ndenumerate(matrix):
            ax.text(j, i, format(value, fmt), ha="center", va="center", fontsize=7,
                    color="white" if normalized[i, j] > 0.6 else "black")
        ax.set_xticks(range(len(classes)), classes, rotation=35, ha="right", fontsize=7)
        ax.set_yticks(range(len(classes)), classes, fontsize=7)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(name, fontsize=9)
    figure.suptitle(title, fontsize=10)
    return figure


def learning_curves(histories: Sequence[dict[str, Sequence[float]]], title: str) -> Figure:
    """Loss and accuracy per epoch of every run (thin lines), training solid and validation dashed."""
    figure = Figure(figsize=(10, 3.6))
    axes = figure.subplots(1, 2)
    for ax, metric in zip(axes, ("loss", "accuracy"), strict=True):
        for i, history in enumerate(histories):
            epochs = range(1, len(history[metric]) + 1)
            ax.plot(epochs, history[metric], color="tab:blue", alpha=0.5, lw=1, label="training" if i == 0 else None)
            if f"val_{metric}" in history:
                ax.plot(epochs, history[f"val_{metric}"], "--", color="tab:orange", alpha=0.6, lw=1,
                        label="validation" if i == 0 else None)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    figure.suptitle(f"{title} ({len(histories)} runs)", fontsize=10)
    return figure


def timeline_figure(samples: pd.DataFrame, sampling_rate: float, segments: pd.DataFrame, classes: Sequence[str],
                    title: str) -> Figure:
    """The recording's signals over time with the predicted activities as coloured bands behind them."""
    figure = Figure(figsize=(12, 4), layout="constrained")
    axis = figure.subplots()
    colors = dict(zip(classes, matplotlib.colormaps["tab10" if len(classes) <= 10 else "tab20"].colors, strict=False))
    seconds = np.arange(len(samples)) / sampling_rate
    for row in segments.itertuples(index=False):
        axis.axvspan(row.start, row.end, color=colors[row.activity], alpha=0.25, linewidth=0)
    for column in samples.columns:
        axis.plot(seconds, samples[column].to_numpy(), linewidth=0.6, label=column)
    bands = [Rectangle((0, 0), 1, 1, color=colors[c], alpha=0.25) for c in classes]
    first = axis.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small", title="signals")
    axis.add_artist(first)
    axis.legend(bands, classes, loc="lower left", bbox_to_anchor=(1.0, 0.0), fontsize="small", title="activity")
    axis.set(xlabel="time (s)", ylabel="signal", title=title, xlim=(0, seconds[-1] if len(seconds) else 1))
    return figure


def critical_difference_diagram(mean_ranks: dict[str, float], cd: float, groups: Sequence[Sequence[str]],
                                title: str) -> Figure:
    """Demšar's critical-difference diagram: an axis of mean ranks (1, the best, on the left), each configuration
    joined to its label (the better half on the left), the critical difference as a bar above the axis and a
    thick bar under each group of configurations not significantly different."""
    ordered = sorted(mean_ranks, key=mean_ranks.__getitem__)
    k, half = len(ordered), (len(ordered) + 1) // 2
    top = -0.25 - 0.15 * len(groups)
    figure = Figure(figsize=(9, 1.4 + 0.32 * half + 0.12 * len(groups)))
    ax = figure.subplots()
    ax.hlines(0, 1, k, color="black", lw=1)
    for tick in range(1, k + 1):
        ax.vlines(tick, 0, 0.08, color="black", lw=1)
        ax.text(tick, 0.12, str(tick), ha="center", va="bottom", fontsize=8)
    ax.plot([1, 1 + cd], [0.55, 0.55], color="black", lw=1.5, marker="|")
    ax.text(1 + cd / 2, 0.62, f"CD = {cd:.2f}", ha="center", va="bottom", fontsize=8)
    for i, label in enumerate(ordered):
        left = i < half
        y = top - 0.3 * (i if left else k - 1 - i)
        end = 0.7 if left else k + 0.3
        ax.plot([mean_ranks[label], mean_ranks[label], end], [0, y, y], color="black", lw=0.8)
        ax.text(end + (-0.05 if left else 0.05), y, f"{label} ({mean_ranks[label]:.2f})", fontsize=8,
                ha="right" if left else "left", va="center")
    for j, group in enumerate(groups):
        ranks = [mean_ranks[label] for label in group]
        ax.plot([min(ranks) - 0.05, max(ranks) + 0.05], [-0.15 - 0.15 * j] * 2, color="tab:red", lw=4,
                solid_capstyle="round")
    ax.set(xlim=(0.7, k + 0.3), ylim=(top - 0.3 * half, 0.9))
    ax.axis("off")
    ax.set_title(title, fontsize=10)
    return figure


def cost_figure(points: dict[str, tuple[float, float, float, float]], title: str) -> Figure:
    """Accuracy against training cost, one point per configuration: `points` maps a label to (mean fit seconds,
    mean accuracy %, lower and upper end of its 95 % CI, equal to the mean where unknown); log-scaled seconds."""
    figure = Figure(figsize=(7, 4.5))
    ax = figure.subplots()
    for label, (seconds, mean, low, high) in points.items():
        ax.errorbar(seconds, mean, yerr=[[mean - low], [high - mean]], fmt="o", capsize=3, color="tab:blue")
        ax.annotate(label, (seconds, mean), xytext=(5, 4), textcoords="offset points", fontsize=7)
    ax.set_xscale("log")
    ax.set(xlabel="training time per fit (s, log scale)", ylabel="test accuracy (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, which="both")
    return figure
