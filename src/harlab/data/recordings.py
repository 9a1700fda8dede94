"""Users' own recordings — CSV or Parquet files, or per-sensor exports, of continuous signals — as a dataset.

Rows are samples: a time column, signal columns, a label column and optionally subject and session
columns; the rows of one subject and session of a file form one recording (in file order).
`import_recordings` cuts them into a `WindowSet` and writes a dataset folder (`windows.npz` +
`dataset.json`) that `load_dataset(FOLDER)`, `harlab train --dataset FOLDER` and spec files read.

Files. CSV or Parquet tables, read as `harlab.data.tables` reads them (separators, decimal commas). Without
`channels`, the signals are the columns of numbers: a column of a numeric type, or text more than half of whose
values are numbers (any other value in it is then an error naming its row). Columns of text, true/false values or
date-times are not signals; a notice lists them. A recording may instead be a folder or zip of per-sensor files at
their own rates, as phone and wearable apps export them: `harlab.data.sensors` merges each onto one grid first.

Time. `time_unit="auto"` reads the time column as `harlab.data.tables.timestamps` says: date-times, or numbers in
the unit in which the median step means a rate between 1 Hz and 1 kHz (so a 1 kHz recording in ms reads as 1 Hz in
seconds: name the unit then). Timestamps must strictly increase within a recording.

Labels. The label column, or with `labels` interval files of start, end and label kept apart from the signals
(`harlab.data.intervals`); samples outside every interval are unlabelled.

Units. `acc_units` (g, m/s2) and `gyro_units` (rad/s, deg/s) convert the accelerometer channels to g and the
gyroscope channels (named gyro...) to rad/s; a warning says when the accelerometer's median magnitude is not
about 1 g.

Gaps. A step longer than `max_gap_s` (default 0.5 s) splits a recording into stretches; windows never
cross a stretch, the pipeline filters each stretch on its own, and stretches shorter than one window are
skipped (counted in the note). Shorter gaps are bridged by linear interpolation.

Rate. The source rate is 1 / the mean step (steps within 50 % of the median step, so gaps and
dropped samples aside), to 4 significant digits; without `rate` it is the target
(all recordings must then agree within 1 %). A stretch is resampled when its steps jitter by more than
1 % or the rates differ: np.interp onto a uniform grid near the source rate, then
`scipy.signal.resample_poly` by up/down, the ratio target/source with a denominator ≤ 1000 (the grid's
rate is target·down/up, so the result is exactly at the target rate). Labels follow by nearest neighbour,
never interpolated. Upsampling is allowed up to 10× the source rate (it adds no content above the source's
Nyquist frequency); a higher target is an error, as is one too low for the uci-har pipeline (≤ 40 Hz).

Windows. `window` samples every `step` from the start of each stretch; a window's label is its majority
label (ties: the earlier class), and with `purity` p windows whose majority share is below p are dropped.
Rows with an empty label are unlabelled: a window holding any is dropped. `align="label"` instead cuts
windows inside each run of one label, from its start (UCI HAR's way: every window is pure). Classes are
the sorted labels (numerically when all are numbers) or `classes`, in its order.

Split. By subject: `test_subjects`, by default a seeded 30 % of the subjects (at least one). A single
subject is split in time instead: the first 80 % of each stretch trains, the last 20 % tests, and no
window straddles the cut (kept as `WindowSet.test_mask`). The training windows must hold at least two classes.

Size. The windows' memory is estimated before any is cut and refused over the MEMORY limit (harlab.limits).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from scipy import interpolate, signal

from harlab.data.blocks import ROWS, count_rows
from harlab.data.fetch import regular_file
from harlab.data.intervals import LabelTimes, read_intervals, sample_labels
from harlab.data.sensors import (
    CONVERSIONS,
    SensorSettings,
    check_gravity,
    describe,
    is_sensor_recording,
    read_sensor_recording,
)
from harlab.data.signals import (
    MAX_UPSAMPLING,
    Recording,
    UciHarPipeline,
    check_window_memory,
    rate_ratio,
    resample_uniform,
    window_count,
    window_starts,
)
from harlab.data.tables import (
    DECIMAL_COMMAS,
    NUMBERS,
    SUFFIXES,
    Clock,
    TimeAxis,
    column_kind,
    read_chunks,
    row_error,
    sample_rate,
    signal_values,
)
from harlab.data.text import read_text_file
from harlab.data.windowset import Provenance, WindowSet, load_windowset, save_windowset
from harlab.errors import DataError, HarlabError
from harlab.files import atomic_directory, atomic_write_bytes, atomic_write_json, sha256_file
from harlab.limits import load_yaml

logger = logging.getLogger(__name__)

NAME = "recordings"
FORMAT = "harlab-recordings/1"
CUT_BATCH = 4096  # windows cut at once: bounds the index arrays of a long stretch
JITTER = 0.01  # largest relative deviation of a step from the grid before resampling
TEST_FRACTION, SPLIT_SEED = 0.3, 0
TRAIN_SHARE = 0.8  # single subject: the first 80 % of each stretch trains


class ImportOptions(BaseModel):
    """How recordings become windows (see the module docstring); a YAML file with the same keys works too."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    time_column: str = "time"
    label_column: str = "activity"
    subject_column: str | None = None  # None: each file is one subject, numbered 1.. in sorted path order
    session_column: str | None = None
    channels: list[str] | None = Field(default=None, min_length=1)  # None: the first file's numeric columns
    accelerometer: list[str] | None = None  # None: the channels whose name contains "acc"
    classes: list[str] | None = Field(default=None, min_length=1)
    rate: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    window: int = Field(default=128, ge=2)
    step: int | None = Field(default=None, ge=1)  # None: window // 2
    purity: float = Field(default=0.0, ge=0, le=1)
    max_gap_s: float = Field(default=0.5, gt=0, allow_inf_nan=False)
    align: Literal["stretch", "label"] = "stretch"
    pipeline: Literal["none", "uci-har"] = "none"
    time_unit: Literal["auto", "s", "ms", "us", "ns", "datetime"] = "auto"
    test_subjects: list[int] | None = None
    labels: list[str] | None = Field(default=None, min_length=1)  # interval files (harlab.data.intervals)
    label_times: LabelTimes = "auto"
    acc_units: Literal["auto", "g", "m/s2"] = "auto"
    gyro_units: Literal["auto", "rad/s", "deg/s"] = "auto"

    @model_validator(mode="after")
    def _filters_need_samples(self) -> ImportOptions:
        if self.pipeline == "uci-har" and self.window < 16:
            raise ValueError("pipeline uci-har needs windows of at least 16 samples (its filters' edges)")
        return self

    @property
    def hop(self) -> int:
        """Samples between window starts."""
        return self.step or max(1, self.window // 2)

    @classmethod
    def parse(cls, values: Mapping[str, Any], where: str | Path = "import options") -> ImportOptions:
        """Validated options; a bad key or value is one line naming it."""
        try:
            return cls.model_validate(dict(values))
        except ValidationError as exc:
            error = exc.errors()[0]
            key = ".".join(map(str, error["loc"])) or "options"
            raise DataError(where, f"option {key}: {error['msg']}",
                            f"fix it (options: {', '.join(cls.model_fields)})") from None

    @classmethod
    def from_yaml(cls, path: str | Path) -> ImportOptions:
        """Options from a YAML mapping with the same keys."""
        path = Path(path)
        values = load_yaml(read_text_file(path, "give a YAML text file"), path) or {}
        if not isinstance(values, dict):
            raise DataError(path, "not a mapping of option: value", "write one `key: value` a line")
        return cls.parse(values, path)


@dataclass
class _Recording:
    """One subject's and session's rows of a file, or one per-sensor recording, parsed."""

    path: Path
    name: str  # what an interval file's recording column calls it: the file's (or folder's) name without suffix
    subject: str
    seconds: np.ndarray  # since the recording's start, which lies at `clock`
    signals: np.ndarray
    labels: pd.Series  # str, NaN where unlabelled
    clock: Clock


def _is_sensor_source(path: Path) -> bool:
    return path.is_dir() or path.suffix.lower() == ".zip"


def input_files(paths: Iterable[str | Path], time_column: str = "time") -> list[Path]:
    """The recordings to read, in sorted path order: table files as given, per-sensor recordings (a zip, or a folder
    in a layout of `harlab.data.sensors`), and other folders by the per-sensor recordings in them, or else by their
    table files."""
    files: set[Path] = set()
    for path in map(Path, paths):
        if path.is_dir():
            if is_sensor_recording(path, time_column):
                files.add(path)
                continue
            found = {f for f in path.iterdir() if is_sensor_recording(f, time_column)} or {
                f for f in path.iterdir() if f.suffix.lower() in SUFFIXES and f.is_file()}
            if not found:
                raise DataError(path, "no .csv or .parquet files, nor per-sensor recordings, in this folder",
                                "pass the recording files")
            files |= found
        else:
            regular_file(path, "check the path; pass a recording's .csv or .parquet file")
            if path.suffix.lower() not in {*SUFFIXES, ".zip"}:
                raise DataError(path, f"unsupported file type {path.suffix or '(none)'!r}",
                                "use .csv or .parquet files, or a zip of per-sensor files")
            files.add(path)
    if not files:
        raise HarlabError("no recording files given; pass CSV or Parquet files")
    sensors = sorted(p for p in files if _is_sensor_source(p))
    if sensors and len(sensors) < len(files):
        table = next(p for p in sorted(files) if not _is_sensor_source(p))
        raise HarlabError(f"the inputs mix per-sensor recordings ({sensors[0]}) and tables ({table}); "
                          "import them separately")
    return sorted(files)


def _channels(frame: pd.DataFrame, path: Path, options: ImportOptions) -> list[str]:
    """The signal columns: the option's, or every column of numbers (see `column_kind`) that is not
    time/label/subject/session; a notice names the other columns, which are left out."""
    label = None if options.labels else options.label_column  # with interval files, a label column may be absent
    named = [c for c in (options.time_column, label, options.subject_column, options.session_column) if c]
    wanted = named + list(options.channels or [])
    named += [options.label_column] if label is None else []  # never a signal
    if missing := [c for c in wanted if c not in frame.columns]:
        raise DataError(path, f"column {missing[0]!r} not found (columns: {', '.join(map(str, frame.columns))})",
                        "rename the column or pass its name (`time_column`, `label_column`, `channels`, ...)")
    if options.channels:
        return list(options.channels)
    kinds = {str(c): column_kind(frame[c]) for c in frame.columns if c not in named}
    channels = [c for c, kind in kinds.items() if kind in (NUMBERS, DECIMAL_COMMAS)]  # decimal commas: say so
    if ignored := [f"{c} ({kind})" for c, kind in kinds.items() if c not in channels]:
        logger.warning(f"{path}: not read as signals, as they do not hold numbers: {', '.join(ignored)}")
    if not channels:
        raise DataError(path, f"no numeric signal columns besides {', '.join(named)}",
                        "name the signal columns with the `channels` setting")
    return channels


def _check_labels(labels: pd.Series, rows: np.ndarray, path: Path, column: str, classes: list[str] | None) -> None:
    if classes is None:
        return
    unknown = labels.notna() & ~labels.isin(classes)
    if unknown.any():
        row = int(np.flatnonzero(unknown)[0])
        names = sorted(set(labels[unknown]))
        raise row_error(path, f"column {column!r}: label(s) {', '.join(map(repr, names[:5]))} not among the classes "
                     f"{', '.join(classes)}", "add them to classes or correct the labels", int(rows[row]))


def _chunk_labels(chunk: pd.DataFrame, options: ImportOptions) -> pd.Series:
    """A chunk's labels (NA where unlabelled; all NA when interval files label the recordings)."""
    if options.labels:
        return pd.Series(pd.NA, index=chunk.index, dtype="string")
    return chunk[options.label_column].astype("string").str.strip().replace("", pd.NA)


def _rows_of(parts: list[np.ndarray]) -> slice | np.ndarray:
    """A group's rows: a slice where they are all the file's rows in order (no copy of its signals), else indices."""
    rows = np.concatenate(parts)
    return slice(int(rows[0]), int(rows[-1]) + 1) if rows[-1] - rows[0] == len(rows) - 1 else rows


def _read_table(path: Path, number: int, options: ImportOptions, channels: list[str],
                on_rows: Callable[[int], None] = lambda done: None) -> tuple[list[_Recording], list[str]]:
    """One table file's recordings (one per subject and session), read `ROWS` rows at a time into arrays of the
    file's length (numbers only: a day at 50 Hz takes 8 bytes a value); `channels` are the signal columns (none
    yet: this file's)."""
    keys = [c for c in (options.subject_column, options.session_column) if c]
    capacity = count_rows(path) or 0
    signals, seconds = np.empty((0, 0)), np.empty(capacity)
    labels: list[pd.Categorical] = []
    groups: dict[tuple[Any, ...], tuple[TimeAxis, list[np.ndarray]]] = {}
    for chunk in read_chunks(path, ROWS, text_columns=(options.label_column, *keys)):
        if not groups:
            channels = channels or _channels(chunk, path, options)
            _channels(chunk, path, options.model_copy(update={"channels": channels}))  # every file has them
            signals = np.empty((capacity, len(channels)))
        first, stop = int(chunk.index[0]), int(chunk.index[-1]) + 1
        if stop > len(seconds):  # more rows than lines counted (a file ending its lines with a bare \r)
            signals = np.resize(signals, (2 * stop, len(channels)))
            seconds = np.resize(seconds, 2 * stop)
        signals[first:stop] = signal_values(chunk, path, channels, first)
        chunk_labels = _chunk_labels(chunk, options)
        labels.append(pd.Categorical(chunk_labels))
        for column in keys:
            if chunk[column].isna().any():
                raise row_error(path, f"column {column!r}: empty value", "fill it in on every row",
                                int(chunk.index[np.flatnonzero(chunk[column].isna())[0]]))
        for key, at in (chunk.groupby(keys, sort=False).indices if keys else {(): np.arange(len(chunk))}).items():
            rows = chunk.index.to_numpy()[at]
            _check_labels(chunk_labels.iloc[at], rows, path, options.label_column, options.classes)
            times, parts = groups.setdefault(key if isinstance(key, tuple) else (key,),
                                             (TimeAxis(path, options.time_unit), []))
            seconds[rows] = times.of(chunk[options.time_column].iloc[at], rows)
            parts.append(rows)
        on_rows(stop)
    every_label = pd.Series(union_categoricals(labels))
    recordings = []
    for key, (times, parts) in groups.items():
        rows = _rows_of(parts)
        recordings.append(_Recording(path, path.stem, str(key[0]) if options.subject_column else str(number),
                                     seconds[rows], signals[rows], every_label.iloc[rows].reset_index(drop=True),
                                     times.clock))
    return recordings, channels


def _read_tables(files: list[Path], options: ImportOptions, on_rows: Callable[[int], None]
                 ) -> tuple[list[_Recording], list[str], dict[str, str]]:
    """Every recording of every table file, the signal channels, and each file's sha256; `on_rows(done)` after each
    chunk with the rows read so far."""
    recordings: list[_Recording] = []
    channels: list[str] = []
    digests = {}
    done = 0
    for number, path in enumerate(files, start=1):
        digests[str(path)] = sha256_file(path)
        found, channels = _read_table(path, number, options, channels, lambda rows, before=done: on_rows(before + rows))
        done += sum(len(rec.seconds) for rec in found)
        recordings += found
    return recordings, channels, digests


def _source_digest(source: Path) -> str:
    """A zip's sha256, or a folder's: the sha256 of its CSV files' names and sha256s."""
    if source.is_file():
        return sha256_file(source)
    files = sorted(p for p in source.iterdir() if p.suffix.lower() == ".csv" and p.is_file())
    return hashlib.sha256("".join(f"{p.name}:{sha256_file(p)}\n" for p in files).encode()).hexdigest()


def _read_sensor_sources(sources: list[Path], options: ImportOptions, on_rows: Callable[[int], None]
                         ) -> tuple[list[_Recording], list[str], dict[str, str]]:
    """Every per-sensor recording merged (`harlab.data.sensors`), the channels, and each source's sha256."""
    settings = SensorSettings(options.time_column, options.time_unit, options.rate, options.max_gap_s,
                              options.acc_units, options.gyro_units)
    recordings: list[_Recording] = []
    channels: list[str] = []
    for number, source in enumerate(sources, start=1):
        merged = read_sensor_recording(source, settings)
        logger.info(describe(merged))
        wanted = options.channels or channels or list(merged.channels)
        if missing := [c for c in wanted if c not in merged.channels]:
            raise DataError(source, f"no channel {missing[0]} (it has {', '.join(merged.channels)})",
                            "record that sensor, or leave it out of the channels")
        channels = wanted
        columns = [merged.channels.index(c) for c in channels]
        recordings.append(_Recording(source, merged.name, str(number), merged.seconds, merged.signals[:, columns],
                                     pd.Series(pd.NA, index=range(len(merged.seconds)), dtype="string"),
                                     merged.clock))
    return recordings, channels, {str(source): _source_digest(source) for source in sources}


def _label_intervals(recordings: list[_Recording], options: ImportOptions) -> None:
    """Each recording's labels from the interval files of `labels`, checked against `classes`."""
    intervals = read_intervals(options.labels or [], sorted({rec.name for rec in recordings}))
    for rec in recordings:
        rec.labels = sample_labels(intervals[rec.name], rec.seconds, rec.clock, options.label_times, rec.name)
        if options.classes and (unknown := sorted(set(rec.labels.dropna()) - set(options.classes))):
            raise DataError(options.labels[0], f"label(s) {', '.join(map(repr, unknown[:5]))} not among the "
                            f"classes {', '.join(options.classes)}", "add them to classes or correct the labels")


def _convert_units(recordings: list[_Recording], channels: list[str], accelerometer: list[str],
                   options: ImportOptions) -> None:
    """Tables' accelerometer channels to g and gyroscope channels (named gyro...) to rad/s, as `acc_units` and
    `gyro_units` say (per-sensor recordings are converted as they are read)."""
    factors = np.array([CONVERSIONS["acc"].get(options.acc_units, 1.0) if name in accelerometer
                        else CONVERSIONS["gyro"].get(options.gyro_units, 1.0) if "gyro" in name.lower() else 1.0
                        for name in channels])
    for rec in recordings:
        rec.signals = rec.signals * factors


def _stretches(rec: _Recording, max_gap_s: float) -> list[tuple[int, int]]:
    """(first, stop) rows of each stretch of `rec`, between steps longer than `max_gap_s`."""
    breaks = np.flatnonzero(np.diff(rec.seconds) > max_gap_s) + 1
    return list(zip([0, *breaks], [*breaks, len(rec.seconds)], strict=True))


def _samples_at(seconds: np.ndarray, rate: float) -> int:
    """Samples of a stretch spanning timestamps `seconds` once it is at `rate` Hz."""
    return int((seconds[-1] - seconds[0]) * rate + 1e-6) + 1


def _source_rate(rec: _Recording, options: ImportOptions) -> float:
    return sample_rate(rec.seconds, rec.path, f"column {options.time_column!r}: subject {rec.subject}",
                       options.max_gap_s)


def _target_rate(recordings: list[_Recording], sources: list[float], options: ImportOptions) -> float:
    """The rate every window will have, checked against each recording's source rate and the pipeline."""
    target = options.rate if options.rate is not None else sources[0]
    column = options.time_column
    for rec, source in zip(recordings, sources, strict=True):
        if options.rate is None and abs(source / target - 1) > JITTER:
            raise DataError(rec.path, f"column {column!r}: {source:g} Hz, but {recordings[0].path.name} has "
                            f"{target:g} Hz", "pass one target rate (the `rate` setting) to resample them all")
        if target > MAX_UPSAMPLING * source:
            raise DataError(rec.path, f"column {column!r}: target rate {target:g} Hz is over {MAX_UPSAMPLING}× the "
                            f"recording's {source:g} Hz", "choose a lower rate")
        duration = rec.seconds[-1] - rec.seconds[0]
        if _samples_at(rec.seconds, target) < options.window:
            raise DataError(rec.path, f"column {column!r}: subject {rec.subject}'s recording spans {duration:.3g} s, "
                            f"shorter than one window ({options.window} samples at {target:g} Hz)",
                            "record longer or lower the `window` setting")
    if options.pipeline == "uci-har" and target <= 40:
        raise DataError(recordings[0].path, f"column {column!r}: rate {target:g} Hz is too low for pipeline "
                        "uci-har (its 20 Hz low-pass needs more than 40 Hz)", "set rate=50 or pipeline=none")
    return target


def _resample(t: np.ndarray, x: np.ndarray, codes: np.ndarray, source: float, target: float
              ) -> tuple[np.ndarray, np.ndarray, bool]:
    """One stretch at exactly `target` Hz (see the module docstring), its label codes, and whether it changed."""
    up, down = rate_ratio(target, source)
    uniform = bool(np.max(np.abs(np.diff(t) * target * down / up - 1)) <= JITTER)
    if uniform and up == down:
        return x, codes, False
    if uniform:  # already on a grid: only the rate changes
        x = signal.resample_poly(x, up, down, axis=0, padtype="line")
    else:
        x = resample_uniform(t, x, source, target, t[0])
    new_t = t[0] + np.arange(len(x)) / target
    nearest = interpolate.interp1d(t, codes, kind="nearest", bounds_error=False, fill_value=(codes[0], codes[-1]),
                                   assume_sorted=True)
    return x, nearest(new_t).astype(np.int64), True


def _ranges(codes: np.ndarray, time_split: bool, align: str) -> list[tuple[int, int, bool]]:
    """(start, stop, is_test) sample ranges of one stretch inside which windows are cut."""
    n = len(codes)
    cut = round(TRAIN_SHARE * n) if time_split else n
    parts = [(0, cut, False), (cut, n, True)] if time_split else [(0, n, False)]
    if align == "stretch":
        return parts
    ranges = []
    for a, b, is_test in parts:
        edges = a + np.flatnonzero(np.diff(codes[a:b])) + 1
        for start, stop in zip([a, *edges], [*edges, b], strict=True):
            if codes[start] >= 0:
                ranges.append((int(start), int(stop), is_test))
    return ranges


@dataclass
class _Counts:
    """What was left out, for the note."""

    short_stretches: int = 0
    gaps: int = 0
    resampled: int = 0
    unlabelled: int = 0
    impure: int = 0

    def note(self, options: ImportOptions) -> str:
        parts = [f"{self.gaps} gap(s) over {options.max_gap_s:g} s split recordings" if self.gaps else "",
                 f"{self.short_stretches} stretch(es) shorter than a window skipped" if self.short_stretches else "",
                 f"{self.resampled} stretch(es) resampled" if self.resampled else "",
                 f"{self.unlabelled} window(s) with unlabelled samples dropped" if self.unlabelled else "",
                 f"{self.impure} window(s) below purity {options.purity:g} dropped" if self.impure else ""]
        return "; ".join(p for p in parts if p)


class _Cutter:
    """Windows cut from stretches into one array allocated once for at most `capacity` windows (so the windows are
    never copied whole), with their labels (the majority label), subjects and test flags; windows holding
    unlabelled samples, or below the purity, are counted and dropped."""

    def __init__(self, capacity: int, options: ImportOptions, channels: int, counts: _Counts):
        self.X = np.empty((capacity, options.window, channels), np.float32)
        self.window, self.purity, self.counts = options.window, options.purity, counts
        self.size = 0
        self.y: list[np.ndarray] = []
        self.subjects: list[np.ndarray] = []
        self.tests: list[np.ndarray] = []

    def add(self, x: np.ndarray, codes: np.ndarray, starts: np.ndarray, subject: int, is_test: bool) -> None:
        """The windows of `x` (a stretch's samples) beginning at `starts`, labelled by `codes`."""
        index = starts[:, None] + np.arange(self.window)[None, :]
        window_codes = codes[index]
        unlabelled = (window_codes < 0).any(axis=1)
        votes = np.stack([(window_codes == c).sum(axis=1) for c in range(max(int(codes.max()) + 1, 1))], axis=1)
        majority = votes.argmax(axis=1)  # ties: the earlier class
        impure = ~unlabelled & (votes.max(axis=1) < self.purity * self.window)
        keep = ~unlabelled & ~impure
        self.counts.unlabelled += int(unlabelled.sum())
        self.counts.impure += int(impure.sum())
        kept = int(keep.sum())
        self.X[self.size:self.size + kept] = x[index[keep]]
        self.size += kept
        self.y.append(majority[keep])
        self.subjects.append(np.full(kept, subject, np.int64))
        self.tests.append(np.full(kept, is_test))

    def result(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Windows, labels, subjects and test flags of all windows cut."""
        if not self.y:
            return self.X[:0], np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, bool)
        return (self.X[:self.size], np.concatenate(self.y).astype(np.int64), np.concatenate(self.subjects),
                np.concatenate(self.tests))


def _subject_ids(recordings: list[_Recording]) -> dict[str, int]:
    """Subject ids: the subject column's integers, else its values numbered 1.. in sorted order."""
    names = sorted({rec.subject for rec in recordings})
    if all(name.lstrip("-").isdigit() for name in names):
        return {name: int(name) for name in names}
    return {name: i for i, name in enumerate(sorted(names), start=1)}


def _test_subjects(subjects: list[int], options: ImportOptions) -> tuple[int, ...]:
    if options.test_subjects is not None:
        if len(subjects) < 2:
            raise HarlabError("option test_subjects: a single subject cannot be split by subject; leave it out "
                              "(the recording is then split in time)")
        if unknown := sorted(set(options.test_subjects) - set(subjects)):
            raise HarlabError(f"option test_subjects: {unknown} not among the subjects {subjects}; fix the list")
        if set(options.test_subjects) >= set(subjects):
            raise HarlabError("option test_subjects: names every subject, none is left to train on; fix the list")
        return tuple(sorted(options.test_subjects))
    count = min(max(1, round(TEST_FRACTION * len(subjects))), len(subjects) - 1)
    return tuple(sorted(int(s) for s in np.random.default_rng(SPLIT_SEED).choice(subjects, count, replace=False)))


def build_windowset(paths: Iterable[str | Path], options: ImportOptions,
                    on_rows: Callable[[int], None] = lambda done: None) -> tuple[WindowSet, dict[str, Any]]:
    """Windows of the recordings in `paths` and the manifest describing them (nothing is written); `on_rows(done)`
    reports the table rows read so far."""
    files = input_files(paths, options.time_column)
    sensors = _is_sensor_source(files[0])
    recordings, channels, digests = (_read_sensor_sources if sensors else _read_tables)(files, options, on_rows)
    if options.labels:
        _label_intervals(recordings, options)
    if missing := sorted(set(options.accelerometer or []) - set(channels)):
        raise HarlabError(f"option accelerometer: {missing} are not signal channels ({', '.join(channels)}); fix it")
    accelerometer = options.accelerometer if options.accelerometer is not None else [
        c for c in channels if "acc" in c.lower()]
    if not sensors:
        _convert_units(recordings, channels, accelerometer, options)
    if len(accelerometer) == 3:
        acc = [channels.index(c) for c in accelerometer]
        check_gravity(np.concatenate([rec.signals[:, acc] for rec in recordings]), files[0])
    found = {str(x) for rec in recordings for x in rec.labels.dropna().unique()}
    classes = list(options.classes) if options.classes else sorted(
        found, key=lambda s: (0, float(s), s) if _is_number(s) else (1, 0.0, s))
    if not classes:
        where, problem = ((options.labels[0], "no intervals at all") if options.labels else
                          (files[0], "per-sensor recordings carry no labels") if sensors else
                          (files[0], f"column {options.label_column!r}: no labels at all"))
        raise DataError(where, problem, "label the activities (in a column, or an interval file: `labels`)")
    ids = _subject_ids(recordings)
    subjects = sorted(set(ids.values()))
    time_split = len(subjects) == 1
    test_subjects = () if time_split else _test_subjects(subjects, options)
    if options.subject_column is None:
        ids_by_file = {rec.path.name: ids[rec.subject] for rec in recordings}
        logger.info("no subject column: each file is one subject, numbered in sorted path order: "
                    + ", ".join(f"{i} = {name}" for name, i in ids_by_file.items()))
    if time_split:
        logger.warning(f"a single subject cannot be split by subject: each stretch is split in time, the first "
                       f"{TRAIN_SHARE:.0%} for training and the last {1 - TRAIN_SHARE:.0%} for test")
    sources = [_source_rate(rec, options) for rec in recordings]
    rate = _target_rate(recordings, sources, options)
    pipeline = UciHarPipeline(window=options.window, step=options.hop)
    acc_index = tuple(channels.index(c) for c in accelerometer)
    stretches = [_stretches(rec, options.max_gap_s) for rec in recordings]
    at_most = sum(window_count(_samples_at(rec.seconds[a:b], rate), options.window, options.hop)
                  for rec, parts in zip(recordings, stretches, strict=True) for a, b in parts)
    filtered = pipeline.output_channels(len(channels), len(acc_index))
    check_window_memory(at_most, options.window, filtered if options.pipeline == "uci-har" else len(channels),
                        options.hop)
    counts = _Counts()
    names: tuple[str, ...] = tuple(channels)
    cut = _Cutter(at_most, options, filtered if options.pipeline == "uci-har" else len(channels), counts)
    for rec, source, parts in zip(recordings, sources, stretches, strict=True):
        codes = pd.Categorical(rec.labels, categories=classes).codes.astype(np.int64)
        counts.gaps += len(parts) - 1
        for a, b in parts:
            t = rec.seconds[a:b]
            if _samples_at(t, rate) < options.window:
                counts.short_stretches += 1
                continue
            x, stretch_codes, changed = _resample(t, rec.signals[a:b], codes[a:b], source, rate)
            counts.resampled += changed
            if options.pipeline == "uci-har":
                x, names = pipeline.filter(Recording(x, tuple(channels), rate, [], 0, accelerometer=acc_index))
            x = x.astype(np.float32)
            for start, stop, is_test in _ranges(stretch_codes, time_split, options.align):
                starts = start + window_starts(stop - start, options.window, options.hop)
                for first in range(0, len(starts), CUT_BATCH):
                    cut.add(x, stretch_codes, starts[first:first + CUT_BATCH], ids[rec.subject], is_test)
    X, y, subject_ids, tests = cut.result()
    note = counts.note(options)
    if not len(y):
        raise HarlabError(f"no windows could be cut from {len(files)} file(s) ({note or 'no labelled stretch'}); "
                          "check the labels, lower the `window` or `purity` setting")
    test_mask = tests if time_split else None
    if time_split and (test_mask.all() or not test_mask.any()):
        raise HarlabError(f"the time split left {int((~test_mask).sum())} training and {int(test_mask.sum())} test "
                          "windows; record longer or lower the `window` setting")
    digest = hashlib.sha256("".join(digests.values()).encode()).hexdigest()
    resolved = options.model_copy(update={"channels": list(channels), "accelerometer": list(accelerometer)})
    options_dump = resolved.model_dump(mode="json")  # the columns actually read, so a model can read them again
    provenance = Provenance(NAME, ", ".join(digests), digest, options_dump, note)
    ws = WindowSet(X, y, subject_ids, names, tuple(classes), rate, options.hop,
                   test_subjects, provenance, test_mask=test_mask)
    is_test = ws.is_test()  # a mask, not a copy of the windows
    if len(trained := [classes[i] for i in np.unique(y[~is_test])]) < 2:
        others = sorted({classes[i] for i in np.unique(y)} - set(trained))
        found = f"only one class ({trained[0]}) in the training windows" if trained else "no training windows"
        held_out = (f"the last {1 - TRAIN_SHARE:.0%} of each stretch" if time_split
                    else f"test subjects {list(test_subjects)}")
        raise HarlabError(f"{found}; a classifier needs at least two classes; "
                          + (f"{', '.join(others)} only occur in the test windows ({held_out}): choose other test "
                             "subjects or record more" if others else "record and label at least one other activity"))
    manifest = {
        "format": FORMAT, "sha256": digest, "options": options_dump,
        "sources": [{"path": p, "sha256": s} for p, s in digests.items()],
        "windows": len(ws), "window": options.window, "step": options.hop, "sampling_rate": rate,
        "channels": list(names), "classes": ws.class_counts(),
        "split": "time" if time_split else "subject",
        "subjects": {"train": sorted(set(subject_ids[~is_test].tolist())),
                     "test": sorted(set(subject_ids[is_test].tolist())),
                     "names": ids if options.subject_column else ids_by_file},
        "windows_per_split": {"train": int((~is_test).sum()), "test": int(is_test.sum())}, "skipped": note}
    return ws, manifest


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _windows_key(digest: str) -> dict[str, str]:
    return {"dataset": NAME, "sha256": digest}


def import_recordings(paths: Iterable[str | Path], options: ImportOptions, out_dir: str | Path,
                      on_rows: Callable[[int], None] = lambda done: None) -> WindowSet:
    """Cut the recordings into windows and write the dataset folder `out_dir` (windows.npz + dataset.json)
    atomically; an existing folder is replaced only if it is a harlab dataset itself."""
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / "dataset.json").is_file():
        raise DataError(out_dir, "exists and is not a harlab dataset", "choose a new out folder")
    ws, manifest = build_windowset(paths, options, on_rows)
    with atomic_directory(out_dir, "dataset") as tmp:
        save_windowset(ws, tmp / "windows.npz", _windows_key(manifest["sha256"]))
        atomic_write_json(tmp / "dataset.json", manifest)
    return ws


def load_recordings_dataset(folder: str | Path) -> WindowSet:
    """The WindowSet of a dataset folder written by `import_recordings`."""
    folder = Path(folder)
    manifest_path = folder / "dataset.json"
    if not manifest_path.is_file():
        raise DataError(folder, "not a harlab dataset (no dataset.json)",
                        "make one by importing recordings into it (`harlab data import`)")
    try:
        manifest = json.loads(manifest_path.read_bytes())
    except (OSError, ValueError) as exc:  # ValueError: not JSON, or not UTF-8
        raise DataError(manifest_path, f"unreadable ({exc})", "import the recordings again") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise DataError(manifest_path, f"not a harlab recordings manifest (format {FORMAT} expected)",
                        "import the recordings again with `harlab data import`")
    ws = load_windowset(folder / "windows.npz", _windows_key(str(manifest.get("sha256"))))
    if ws is None:
        raise DataError(folder / "windows.npz", "missing or not the windows dataset.json describes",
                        "import the recordings again")
    return ws


def recording_frame(recording: Recording, names: Mapping[int, str]) -> pd.DataFrame:
    """A recording as a user would have it in a file: time in seconds, the channels, `activity`
    (names[segment label]; empty where unlabelled or not in `names`) and `subject`."""
    activity = np.full(len(recording.signals), "", dtype=object)
    for segment in recording.segments:
        activity[segment.start:segment.stop] = names.get(segment.label, "")
    frame = pd.DataFrame(recording.signals, columns=list(recording.channels))
    frame.insert(0, "time", np.arange(len(frame)) / recording.sampling_rate)
    frame["activity"] = activity
    frame["subject"] = recording.subject
    return frame


def export_recordings(recordings: Iterable[Recording], names: Mapping[int, str], folder: str | Path) -> list[Path]:
    """Write recordings as CSV files in the import format (see `recording_frame`), one per recording
    (`exp{session}_user{subject}.csv`)."""
    folder = Path(folder)
    written = []
    for rec in recordings:
        path = folder / f"exp{rec.session:02d}_user{rec.subject:02d}.csv"
        atomic_write_bytes(path, recording_frame(rec, names).to_csv(index=False).encode())
        written.append(path)
    return written
