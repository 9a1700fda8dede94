"""Figures, written as PNG or SVG by the file's suffix."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from harlab.data.windowset import WindowSet
from harlab.errors import HarlabError
from harlab.files import atomic_write_bytes

FORMATS = {".png", ".svg", ".pdf"}


def save_figure(figure: plt.Figure, path: Path) -> None:
    """Write `figure` atomically in the format its suffix names."""
    if path.suffix.lower() not in FORMATS:
        raise HarlabError(f"{path}: unsupported figure format; use one of {', '.join(sorted(FORMATS))}")
    buffer = io.BytesIO()
    figure.savefig(buffer, format=path.suffix.lower().lstrip("."), dpi=120, bbox_inches="tight")
    plt.close(figure)
    atomic_write_bytes(path, buffer.getvalue())


def channel_histograms(train: WindowSet, path: Path, bins: int = 100) -> None:
    """The tutorial's figure: one histogram per channel of the training windows, overlap removed."""
    samples = train.without_overlap()
    n = samples.shape[1]
    figure, axes = plt.subplots(n, 1, figsize=(8, 1.3 * n), squeeze=False)
    for ax, channel, values in zip(axes[:, 0], train.channels, samples.T, strict=True):
        ax.hist(values, bins=bins, color="tab:blue")
        ax.set_ylabel(channel, rotation=0, ha="right", va="center", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0, 0].set_title(f"{train.provenance.dataset}: per-channel distribution of {len(train)} training windows "
                         f"({len(samples)} samples, overlap removed)", fontsize=9)
    save_figure(figure, path)
