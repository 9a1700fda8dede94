"""`WindowSet`: the one value every dataset loads into, and its compact binary cache."""

from __future__ import annotations

import hashlib
import io
import json
import stat
import zipfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from harlab.errors import DataError
from harlab.files import atomic_write_bytes

CACHE_FORMAT = 2  # 2: with the sha256 of its content


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

    def with_channels(self, order: list[int]) -> WindowSet:
        """The windows with only the channels at `order`, in that order."""
        return replace(self, X=np.ascontiguousarray(self.X[:, :, order]),
                       channels=tuple(self.channels[i] for i in order))

    def channels_named(self, names: tuple[str, ...] | list[str]) -> WindowSet:
        """The windows with only the channels `names`, in that order (a DataError naming the missing ones)."""
        if missing := [n for n in names if n not in self.channels]:
            raise DataError(self.provenance.dataset, f"has no channel(s) {', '.join(missing)} (it has "
                            f"{', '.join(self.channels)})", "name channels the windows have")
        return self.with_channels([self.channels.index(n) for n in names])

    @property
    def subjects(self) -> np.ndarray:
        """The subject of every window (scikit-learn's `groups`)."""
        return self.subject

    def is_test(self) -> np.ndarray:
        """Whether each window is in the test split: of the dataset's own held-out subjects (or its `test_mask`,
        where set)."""
        return np.isin(self.subject, self.test_subjects) if self.test_mask is None else self.test_mask

    def split(self) -> tuple[WindowSet, WindowSet]:
        """(train, test) by the dataset's own held-out subjects (or its `test_mask`, where set)."""
        is_test = self.is_test()
        return self.select(~is_test), self.select(is_test)

    def folds(self, kind: str = "kfold", *, folds: int = 5, test_fraction: float = 0.3,
              seed: int = 0) -> list[tuple[WindowSet, WindowSet]]:
        """(train, test) pairs by subject, never a person in both: `kind` fixed (the dataset's own split),
        holdout (a seeded `test_fraction` of the subjects), kfold (`folds` groups of subjects) or loso (leave
        one subject out); see harlab.data.splits."""
        from harlab.data.splits import SplitSpec
        from harlab.data.splits import folds as make_folds

        return [fold.apply(self) for fold in make_folds(self, SplitSpec.of(kind, folds, test_fraction, seed))]

    @classmethod
    def from_arrays(cls, X: np.ndarray, y: np.ndarray, subjects: np.ndarray | None = None,
                    channels: tuple[str, ...] | None = None, classes: tuple[str, ...] | None = None,
                    sampling_rate: float = 50.0) -> WindowSet:
        """Windows X [n, time, channels] with 0-based labels y (and each window's subject; default all one
        subject), as a WindowSet with no test split of its own. Channels default to ch0, ch1, …"""
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 3:
            raise DataError("X", f"has shape {X.shape}", "give windows as an array [windows, time, channels]")
        y = np.asarray(y, dtype=np.int64)
        n_classes = int(y.max()) + 1 if len(y) else 0
        return cls(X, y, np.zeros(len(X), np.int64) if subjects is None else np.asarray(subjects, np.int64),
                   channels or tuple(f"ch{i}" for i in range(X.shape[2])),
                   classes or tuple(str(i) for i in range(n_classes)), sampling_rate, X.shape[1], (),
                   Provenance("arrays", "memory", ""))

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


class UnusableWindows(DataError):
    """A windows file that cannot be used: not a regular file, unreadable, or its content does not match its
    checksum. `problem` says which (a cache is rebuilt on it; a dataset folder's file is an error)."""

    def __init__(self, path: Path, problem: str):
        super().__init__(path, problem, "write it again (for a dataset folder: import its recordings again)")


def content_sha256(arrays: dict[str, np.ndarray | None], meta: bytes) -> str:
    """sha256 of the arrays (name, dtype, shape and bytes of each; None for an absent one) and the metadata's
    JSON bytes."""
    digest = hashlib.sha256()
    for name, array in arrays.items():
        if array is None:
            digest.update(f"{name}:none;".encode())
            continue
        array = np.ascontiguousarray(array)
        digest.update(f"{name}:{array.dtype.str}:{array.shape};".encode())
        digest.update(array.data)
    digest.update(meta)
    return digest.hexdigest()


def save_windowset(ws: WindowSet, path: Path, key: dict[str, Any]) -> None:
    """Write `ws` to an uncompressed npz (no pickled objects) atomically, tagged with a cache `key` and the
    sha256 of its content (`content_sha256`), which loading checks."""
    buffer = io.BytesIO()
    meta = json.dumps({"format": CACHE_FORMAT, "key": key, **ws.metadata()}).encode()
    arrays = {"X": ws.X, "y": ws.y, "subject": ws.subject, "test_mask": ws.test_mask}
    checksum = content_sha256(arrays, meta).encode()
    present = {name: array for name, array in arrays.items() if array is not None}
    np.savez(buffer, meta=np.frombuffer(meta, np.uint8), checksum=np.frombuffer(checksum, np.uint8), **present)
    atomic_write_bytes(path, buffer.getvalue())


def load_windowset(path: Path, key: dict[str, Any]) -> WindowSet | None:
    """The WindowSet at `path` if it exists and was made with the same `key` (else None), after checking its
    content against the checksum it carries; `UnusableWindows` where it is not a regular file (a device or pipe
    would never end or never answer), is unreadable, or its content does not match."""
    if not (path.exists() or path.is_symlink()):
        return None
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            raise UnusableWindows(path, "is not a regular file")
        with np.load(path, allow_pickle=False) as npz:
            text = npz["meta"].tobytes()
            meta = json.loads(text)
            if not isinstance(meta, dict) or meta.get("format") != CACHE_FORMAT or meta.get("key") != key:
                return None
            arrays = {name: npz[name] if name in npz.files else None for name in ("X", "y", "subject", "test_mask")}
            checksum = npz["checksum"].tobytes() if "checksum" in npz.files else b""
        if checksum != content_sha256(arrays, text).encode():
            raise UnusableWindows(path, "content does not match its checksum")
        return WindowSet(X=arrays["X"], y=arrays["y"], subject=arrays["subject"], channels=tuple(meta["channels"]),
                         classes=tuple(meta["classes"]), sampling_rate=meta["sampling_rate"], step=meta["step"],
                         test_subjects=tuple(meta["test_subjects"]), provenance=Provenance(**meta["provenance"]),
                         test_mask=arrays["test_mask"])
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as exc:
        raise UnusableWindows(path, f"is unreadable ({' '.join(str(exc).split())})") from None
