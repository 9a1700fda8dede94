"""Review: the recordings under the served folder, a recording's signals with its predicted timeline, and the
corrected labels saved beside it as an interval file (`<recording>.labels.csv`: start, end, label on the
recording's own clock) that `harlab data import --labels` reads.

Every path a client names is relative to the served folder and must stay inside it once resolved (symbolic links
included).
"""

from __future__ import annotations

import itertools
import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harlab.data.intervals import read_intervals, sample_labels
from harlab.data.sensors import SensorSettings, is_sensor_recording, read_sensor_recording
from harlab.data.tables import SUFFIXES, Clock, TimeAxis, read_chunks, read_header, signal_values
from harlab.deploy.predict import Smoothing, WindowModel, predict_file, read_model_input
from harlab.errors import DataError
from harlab.files import atomic_write_bytes
from harlab.serve.batches import RequestError

RECORDING_SUFFIXES = {*SUFFIXES, ".zip"}
LABELS_SUFFIX = ".labels.csv"
MAX_LISTED, MAX_DEPTH = 500, 4
MAX_DISPLAY_POINTS = 6000
MAX_INTERVALS, MAX_LABEL_CHARS = 10_000, 64
UPLOAD_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._ -]{0,127}")
LABEL_TEXT = re.compile(r"[^\x00-\x1f\x7f]+")


def inside(folder: Path, relative: str) -> Path:
    """The path `relative` names under `folder`, resolved; a 403 RequestError where it leads outside."""
    if not relative or len(relative) > 1000 or "\x00" in relative or Path(relative).is_absolute():
        raise RequestError(403, f"path={relative[:80]!r}: name a recording by its path under the served folder, "
                           "as the recording list shows it")
    root = folder.resolve()
    path = (root / relative).resolve()
    if not path.is_relative_to(root):
        raise RequestError(403, f"path={relative[:80]!r} leads outside the served folder; only recordings under it "
                           "can be opened")
    return path


def recordings(folder: Path) -> list[str]:
    """The recordings under `folder` (CSV, Parquet, zip; not label files nor hidden ones), as paths relative to
    it: at most MAX_LISTED, MAX_DEPTH folders deep."""
    root = folder.resolve()
    found: list[str] = []
    for here, folders, files in os.walk(root):
        depth = len(Path(here).relative_to(root).parts)
        folders[:] = sorted(f for f in folders if not f.startswith(".")) if depth < MAX_DEPTH else []
        for name in sorted(files):
            path = Path(here) / name
            if (name.startswith(".") or name.lower().endswith(LABELS_SUFFIX)
                    or path.suffix.lower() not in RECORDING_SUFFIXES or not path.resolve().is_relative_to(root)):
                continue
            found.append(path.relative_to(root).as_posix())
            if len(found) >= MAX_LISTED:
                return found
    return found


def upload_path(folder: Path, name: str) -> Path:
    """Where an upload named `name` goes: uploads/NAME under the served folder; a RequestError for a name that
    is not a plain recording file name, or that is taken."""
    if not UPLOAD_NAME.fullmatch(name) or Path(name).suffix.lower() not in RECORDING_SUFFIXES:
        raise RequestError(400, f"name={name[:80]!r}: name the upload like a recording file (letters, digits, "
                           f"'.', '_', '-', spaces; ending {', '.join(sorted(RECORDING_SUFFIXES))})")
    path = folder.resolve() / "uploads" / name
    if path.exists():
        raise RequestError(409, f"uploads/{name} already exists; rename the file, or open it from the list")
    return path


def labels_path(recording: Path) -> Path:
    """The interval file beside a recording: rec.csv → rec.labels.csv (named after the recording it labels)."""
    return recording.with_name(recording.stem + LABELS_SUFFIX)


def recording_clock(model: WindowModel, path: Path, time_column: str) -> tuple[Clock, float]:
    """Where the model's grid for a recording starts: on the recording's clock, and in seconds after its first
    sample (a per-sensor recording's grid starts where every sensor has begun)."""
    if is_sensor_recording(path, time_column):
        merged = read_sensor_recording(path, SensorSettings(time_column=time_column, rate=model.sampling_rate,
                                                            max_gap_s=math.inf))
        return merged.clock, float(merged.seconds[0])
    axis = TimeAxis(path, "auto")
    axis.of(next(read_chunks(path, 2, [time_column]))[time_column], np.arange(2))
    assert axis.clock is not None
    return axis.clock, 0.0


def review(model: WindowModel, folder: Path, relative: str, smoothing: Smoothing, time_column: str
           ) -> dict[str, Any]:
    """A recording's signals (thinned to MAX_DISPLAY_POINTS), its predicted windows, and its saved labels if any,
    all in seconds from the start of the model's grid."""
    path = inside(folder, relative)
    if not path.exists():
        raise RequestError(404, f"path={relative[:80]!r}: no such recording under the served folder")
    windows = predict_file(model, path, smoothing=smoothing, time_column=time_column)
    samples = read_model_input(model, path, time_column=time_column).to_numpy()
    rate, stride = model.sampling_rate, max(1, math.ceil(len(samples) / MAX_DISPLAY_POINTS))
    saved = labels_path(path)
    return {"path": relative, "labels_file": saved.relative_to(folder.resolve()).as_posix(),
            "duration": len(samples) / rate, "step": stride / rate, "channels": list(model.raw_channels()
                                                                                     or model.channels),
            "values": np.round(samples[::stride], 4).tolist(), "classes": list(model.classes),
            "windows": windows[["start", "end", "activity", "confidence"]].round(4).to_dict("records"),
            "labels": _saved_labels(model, path, len(samples), time_column) if saved.is_file() else None}


def _saved_labels(model: WindowModel, path: Path, samples: int, time_column: str) -> list[dict[str, Any]]:
    """The intervals of the recording's label file, read as `harlab data import` reads them, on the grid."""
    clock, offset = recording_clock(model, path, time_column)
    intervals = read_intervals([labels_path(path)], [path.stem])[path.stem]
    if not intervals:
        return []
    seconds = offset + np.arange(samples) / model.sampling_rate
    labels = sample_labels(intervals, seconds, clock, "auto", path.stem).to_numpy(dtype=object, na_value=None)
    change = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    starts, ends = np.concatenate([[0], change]), np.concatenate([change, [samples]])
    return [{"start": s / model.sampling_rate, "end": e / model.sampling_rate, "label": labels[s]}
            for s, e in zip(starts, ends, strict=True) if labels[s] is not None]


def save_labels(model: WindowModel, folder: Path, relative: str, intervals: Any, time_column: str) -> str:
    """Write a recording's intervals (seconds from the start of the model's grid, as the page has them) to its
    label file on the recording's clock, atomically; the file's path under the folder."""
    path = inside(folder, relative)
    if not path.is_file() and not path.is_dir():
        raise RequestError(404, f"path={relative[:80]!r}: no such recording under the served folder")
    rows = _checked(intervals)
    clock, offset = recording_clock(model, path, time_column)
    frame = pd.DataFrame(rows, columns=["start", "end", "label"])
    for column in ("start", "end"):
        seconds = clock.start + offset + frame[column].to_numpy(np.float64)
        frame[column] = (pd.to_datetime(seconds, unit="s", utc=True).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                         if clock.unit is None else seconds / clock.unit)
    target = labels_path(path)
    atomic_write_bytes(target, frame.to_csv(index=False).encode())
    return target.relative_to(folder.resolve()).as_posix()


def _checked(intervals: Any) -> list[tuple[float, float, str]]:
    """The page's intervals as (start, end, label), sorted; a 422 RequestError naming the first bad one."""
    if not isinstance(intervals, list) or len(intervals) > MAX_INTERVALS:
        raise RequestError(422, f"intervals: expected a list of at most {MAX_INTERVALS} {{start, end, label}}")
    rows = []
    for number, item in enumerate(intervals):
        start, end, label = (item.get(k) for k in ("start", "end", "label")) if isinstance(item, dict) else [None] * 3
        if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in (start, end)):
            raise RequestError(422, f"intervals[{number}]: start and end must be finite numbers of seconds")
        start, end = round(float(start), 3), round(float(end), 3)  # milliseconds: finer than any sensor's rate
        if not 0 <= start < end:
            raise RequestError(422, f"intervals[{number}]: {start:g}–{end:g} s must start at 0 or later and end "
                               "after it starts")
        if not isinstance(label, str) or not LABEL_TEXT.fullmatch(label.strip()) or len(label) > MAX_LABEL_CHARS:
            raise RequestError(422, f"intervals[{number}]: name the activity with 1 to {MAX_LABEL_CHARS} printable "
                               "characters")
        rows.append((start, end, label.strip()))
    rows.sort()
    for before, after in itertools.pairwise(rows):
        if after[0] < before[1]:
            raise RequestError(422, f"intervals {before[0]:g}–{before[1]:g} s ({before[2]}) and {after[0]:g}–"
                               f"{after[1]:g} s ({after[2]}) overlap; give each stretch one label")
    return rows


def recording_samples(model: WindowModel, path: Path, time_column: str) -> tuple[np.ndarray, np.ndarray]:
    """A recording table's timestamps (seconds from its first) and the raw columns a stream gives `model`
    [n, channels], as they were recorded (for a replay); one-line refusals as an import's."""
    if path.suffix.lower() not in SUFFIXES or not path.is_file():
        raise DataError(path, "not a CSV or Parquet file", "replay a recording table with a time column")
    header = tuple(read_header(path))
    if time_column not in header:
        raise DataError(path, f"no {time_column!r} column", "name the time column (the `time_column` setting)")
    columns = list(model.input_columns(tuple(n for n in header if n != time_column), path))
    axis, times, values = TimeAxis(path, "auto"), [], []
    for chunk in read_chunks(path, 1 << 17, [time_column, *columns]):
        times.append(axis.of(chunk[time_column], chunk.index.to_numpy()))
        values.append(signal_values(chunk, path, columns, int(chunk.index[0])))
    return np.concatenate(times), np.concatenate(values)
