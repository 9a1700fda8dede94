"""Property-based: random bytes, random CSV tables and random manifests fed to import, predict and bundle
loading end in a result or in harlab's one-line error — never another exception, never a hang."""

from __future__ import annotations

import contextlib
import json
import signal
import string
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harlab.data.recordings import ImportOptions, import_recordings
from harlab.deploy.bundle import MANIFEST, load_bundle, save_bundle
from harlab.deploy.predict import open_model, predict, read_model_input
from harlab.errors import HarlabError
from harlab.models.registry import create_model

SECONDS_PER_EXAMPLE = 20
CHANNELS = ["acc_x", "acc_y", "acc_z"]
FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


class Hang(Exception):
    """An example ran past its time limit."""


@contextlib.contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    def expire(*_: object) -> None:
        raise Hang(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def ends_cleanly(call: Callable[[], Any]) -> None:
    """`call` returns, or raises harlab's error with a one-line message; anything else fails the test."""
    with time_limit(SECONDS_PER_EXAMPLE):
        try:
            call()
        except HarlabError as exc:
            assert "\n" not in str(exc) and str(exc), repr(exc)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = create_model("cnn", len(CHANNELS), 32, 2, filters=4)
    return save_bundle(tmp_path_factory.mktemp("fuzz") / "bundle", model, model_name="cnn",
                       hyperparameters={"filters": 4}, channels=CHANNELS, window=32, step=16, sampling_rate=50.0,
                       classes=["a", "b"], standardizer=None, metrics={}, provenance={}, training={})


def fresh(tmp_path: Path) -> Path:
    """A new folder for one example (hypothesis runs many examples in one test's tmp_path)."""
    folder = tmp_path / uuid.uuid4().hex
    folder.mkdir()
    return folder


def write_fresh(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


CELL = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=32).map(repr),
    st.integers(-10**12, 10**12).map(str),
    st.sampled_from(["", "NaN", "inf", "-", "1,5", "true", "2024-01-01T00:00:00", "null", "\"", "  ", "1e999"]),
    st.text(string.printable, max_size=6),
)
COLUMN = st.sampled_from(["time", *CHANNELS, "gyro_x", "activity", "subject", "x", "time;acc_x", ""])


@st.composite
def csv_tables(draw: st.DrawFn) -> bytes:
    columns = draw(st.lists(COLUMN, min_size=1, max_size=7))
    separator = draw(st.sampled_from([",", ";", "\t"]))
    rows = draw(st.lists(st.lists(CELL, min_size=len(columns), max_size=len(columns)), max_size=40))
    structured = draw(st.booleans())
    if structured and rows:  # mostly well-formed: a rising time, numeric signals, two labels
        for i, row in enumerate(rows):
            for j, name in enumerate(columns):
                if name == "time":
                    row[j] = f"{i * 0.02:.2f}"
                elif name in CHANNELS:
                    row[j] = f"{np.sin(i + j):.4f}"
                elif name == "activity":
                    row[j] = "walk" if i < len(rows) // 2 else "sit"
    lines = [separator.join(columns), *(separator.join(row) for row in rows)]
    return ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass")


@FUZZ
@given(data=st.binary(max_size=4096), suffix=st.sampled_from([".csv", ".parquet"]))
def test_import_takes_random_bytes(data: bytes, suffix: str, tmp_path: Path) -> None:
    folder = fresh(tmp_path)
    path = write_fresh(folder, f"rec{suffix}", data)
    ends_cleanly(lambda: import_recordings([path], ImportOptions(window=8), folder / "out"))


@FUZZ
@given(table=csv_tables())
def test_import_takes_random_tables(table: bytes, tmp_path: Path) -> None:
    folder = fresh(tmp_path)
    path = write_fresh(folder, "rec.csv", table)
    ends_cleanly(lambda: import_recordings([path], ImportOptions(window=8), folder / "out"))


@FUZZ
@given(table=csv_tables(), raw=st.binary(max_size=2048), use_raw=st.booleans())
def test_predict_takes_random_recordings(bundle: Path, table: bytes, raw: bytes, use_raw: bool,
                                         tmp_path: Path) -> None:
    path = write_fresh(fresh(tmp_path), "rec.csv", raw if use_raw else table)
    model = open_model(bundle)

    def run() -> None:
        samples = read_model_input(model, path)
        predict(model, samples, rate=model.sampling_rate, time_column=None)

    ends_cleanly(run)


JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers(-10**9, 10**9) | st.floats(allow_nan=False, width=32)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12)


@FUZZ
@given(changes=st.dictionaries(st.sampled_from(["format", "model", "hyperparameters", "channels", "window", "step",
                                                "sampling_rate", "classes", "standardization", "preprocessing",
                                                "weights_sha256"]), JSON_VALUE, min_size=1, max_size=3),
       drop=st.booleans())
def test_bundle_loading_takes_random_manifests(bundle: Path, changes: dict[str, Any], drop: bool,
                                               tmp_path: Path) -> None:
    copy = fresh(tmp_path)
    for item in bundle.iterdir():
        (copy / item.name).write_bytes(item.read_bytes())
    manifest = json.loads((bundle / MANIFEST).read_text())
    for key, value in changes.items():
        if drop:
            manifest.pop(key, None)
        else:
            manifest[key] = value
    (copy / MANIFEST).write_text(json.dumps(manifest))
    ends_cleanly(lambda: load_bundle(copy))
    ends_cleanly(lambda: open_model(copy))


@FUZZ
@given(data=st.binary(max_size=4096))
def test_bundle_loading_takes_random_bytes(bundle: Path, data: bytes, tmp_path: Path) -> None:
    copy = fresh(tmp_path)
    for item in bundle.iterdir():
        (copy / item.name).write_bytes(item.read_bytes())
    (copy / MANIFEST).write_bytes(data)
    ends_cleanly(lambda: load_bundle(copy))
    onnx = write_fresh(copy, "model.onnx", data)
    ends_cleanly(lambda: open_model(onnx))
