"""`WindowSet`: the one value every dataset loads into, and its compact binary cache."""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from harlab.errors import DataError
from harlab.files import atomic_write_bytes

CACHE_FORMAT = 1


@dataclass(frozen=True)
class Provenance:
    """Where windows came from: dataset, source (file or URL), its sha256, and how they were made."""

    dataset: str
    source: str
    sha256: str
    options: dict[str, Any] = field(default_factory=dict)
    note: str = ""


@dataclass(frozen=True)
class WindowSet:
    """Labelled sensor windows: X float32 [samples, time, channels], y 0-based int64, subject ids.

    `test_subjects` names the dataset's own held-out subjects; `step` is the hop between consecutive
    windows (equal to `X.shape[1]` when windows do not overlap). `test_mask` (bool per window), where set,
    is the held-out split instead (a single-subject recording split in time).
    """

    X: np.ndarray
    y: np.ndarray
    subject: np.ndarray
    channels: tuple[str, ...]
    classes: tuple[str, ...]
    sampling_rate: float
    step: int
    test_subjects: tuple[int, ...]
    provenance: Provenance
    test_mask: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.X)
        if self.X.ndim != 3 or self.X.shape[2] != len(self.channels):
            raise ValueError(f"X must be [samples, time, {len(self.channels)} channels], got {self.X.shape}")
        if len(self.y) != n or len(self.subject) != n:
            raise ValueError(f"X, y, subject lengths differ: {n}, {len(self.y)}, {len(self.subject)}")
        if self.test_mask is not None and len(self.test_mask) != n:
            raise ValueError(f"test_mask has {len(self.test_mask)} entries for {n} windows")

    def __len__(self) -> int:
        return len(self.X)

    @property
    def window(self) -> int:
        return int(self.X.shape[1])

    def select(self, mask: np.ndarray) -> WindowSet:
        """The windows where `mask` (boolean or index array) selects."""
        test_mask = None if self.test_mask is None else self.test_mask[mask]
        return replace(self, X=self.X[mask], y=self.y[mask], subject=self.subject[mask], test_mask=test_mask)

    def split(self) -> tuple[WindowSet, WindowSet]:
        """(train, test) by the dataset's own held-out subjects (or its `test_mask`, where set)."""
        is_test = np.isin(self.subject, self.test_subjects) if self.test_mask is None else self.test_mask
        return self.select(~is_test), self.select(is_test)

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.y, minlength=len(self.classes))
        return {name: int(c) for name, c in zip(self.classes, counts, strict=True)}

    def without_overlap(self) -> np.ndarray:
        """Samples [n, channels] with the overlap between consecutive windows removed: the last `step`
        samples of each window (the tutorial's way for 50 % overlap)."""
        return self.X[:, -min(self.step, self.window):, :].reshape(-1, self.X.shape[2])

    def metadata(self) -> dict[str, Any]:
        return {"channels": list(self.channels), "classes": list(self.classes),
                "sampling_rate": self.sampling_rate, "step": self.step,
                "test_subjects": list(self.test_subjects), "provenance": asdict(self.provenance)}


def save_windowset(ws: WindowSet, path: Path, key: dict[str, Any]) -> None:
    """Write `ws` to an uncompressed npz (no pickled objects) atomically, tagged with a cache `key`."""
    buffer = io.BytesIO()
    meta = {"format": CACHE_FORMAT, "key": key, **ws.metadata()}
    arrays = {"test_mask": ws.test_mask} if ws.test_mask is not None else {}
    np.savez(buffer, X=ws.X, y=ws.y, subject=ws.subject, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8),
             **arrays)
    atomic_write_bytes(path, buffer.getvalue())


def load_windowset(path: Path, key: dict[str, Any]) -> WindowSet | None:
    """The cached WindowSet at `path` if it exists and was made with the same `key`, else None."""
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            meta = json.loads(npz["meta"].tobytes())
            if meta.get("format") != CACHE_FORMAT or meta.get("key") != key:
                return None
            X, y, subject = npz["X"], npz["y"], npz["subject"]
            test_mask = npz["test_mask"] if "test_mask" in npz.files else None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
        raise DataError(path, f"unreadable cache file ({exc})", "delete it; it will be rebuilt") from None
    return WindowSet(X=X, y=y, subject=subject, channels=tuple(meta["channels"]),
                     classes=tuple(meta["classes"]), sampling_rate=meta["sampling_rate"], step=meta["step"],
                     test_subjects=tuple(meta["test_subjects"]), provenance=Provenance(**meta["provenance"]),
                     test_mask=test_mask)
