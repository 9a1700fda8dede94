"""Users' own recordings — CSV or Parquet files of continuous sensor signals — as a harlab dataset.

Rows are samples: a time column, signal columns, a label column and optionally subject and session
columns; the rows of one subject and session of a file form one recording (in file order).
`import_recordings` cuts them into a `WindowSet` and writes a dataset folder (`windows.npz` +
`dataset.json`) that `load_dataset(FOLDER)`, `harlab train --dataset FOLDER` and spec files read.

Files. CSV files are UTF-8 text, comma-separated; a file whose header has more semicolons (or tabs) than
commas is read as separated by them, as spreadsheets export CSV in many locales, and then with decimal commas
(1,23) where its first rows have them. Without `channels`, the signals are the columns of numbers: a column
of a numeric type, or text more than half of whose values are numbers (any other value in it is then an
error naming its row). Columns of text, true/false values or date-times are not signals; a notice lists them.

Time. `time_unit="auto"` parses date-time and duration columns, and text that is not mostly numbers, as ISO
date-times. Numbers are read in the
unit in which the median step means a rate between 1 Hz and 1 kHz: seconds if the median step is ≤ 1,
else milliseconds if ≤ 10³, microseconds if ≤ 10⁶, nanoseconds above (so a 1 kHz recording in ms reads
as 1 Hz in seconds: name the unit then). Timestamps must strictly increase within a recording.

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

import contextlib
import csv
import hashlib
import json
import logging
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from scipy import interpolate, signal, stats

from harlab.data.fetch import regular_file
from harlab.data.signals import Recording, UciHarPipeline, check_window_memory, window_count, window_starts
from harlab.data.text import not_utf8, read_text_file
from harlab.data.windowset import Provenance, WindowSet, load_windowset, save_windowset
from harlab.errors import DataError, HarlabError
from harlab.files import atomic_directory, atomic_write_bytes, atomic_write_json, sha256_file
from harlab.limits import load_yaml

logger = logging.getLogger(__name__)

NAME = "recordings"
FORMAT = "harlab-recordings/1"
SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
JITTER = 0.01  # largest relative deviation of a step from the grid before resampling
MAX_UPSAMPLING = 10
TEST_FRACTION, SPLIT_SEED = 0.3, 0
TRAIN_SHARE = 0.8  # single subject: the first 80 % of each stretch trains
NUMBERS, DECIMAL_COMMAS = "numbers", "numbers with decimal commas"  # the kinds of column (`_kind`) read as signals
SNIFF_BYTES, SNIFF_ROWS = 1 << 16, 20  # how much of a CSV file its separator and decimal mark are told from
DECIMAL_COMMA = re.compile(r"\s*[-+]?\d+,\d+(?:[eE][-+]?\d+)?\s*")


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
    """One subject's and session's rows of a file, parsed."""

    path: Path
    subject: str
    rows: np.ndarray  # 0-based data rows of the file, for messages
    seconds: np.ndarray
    signals: np.ndarray
    labels: pd.Series  # str, NaN where unlabelled


def _error(path: Path, problem: str, fix: str, row: int | None = None) -> DataError:
    """A DataError at a data row: a CSV line (after the header) or a Parquet row."""
    if row is None:
        return DataError(path, problem, fix)
    if SUFFIXES[path.suffix.lower()] == "csv":
        return DataError(path, problem, fix, line=row + 2)
    return DataError(path, f"row {row + 1}: {problem}", fix)


def input_files(paths: Iterable[str | Path]) -> list[Path]:
    """The recording files to read, in sorted path order: files as given, folders by their CSV/Parquet files."""
    files: set[Path] = set()
    for path in map(Path, paths):
        if path.is_dir():
            found = {f for f in path.iterdir() if f.suffix.lower() in SUFFIXES and f.is_file()}
            if not found:
                raise DataError(path, "no .csv or .parquet files in this folder", "pass the recording files")
            files |= found
        else:
            regular_file(path, "check the path; pass a recording's .csv or .parquet file")
            if path.suffix.lower() not in SUFFIXES:
                raise DataError(path, f"unsupported file type {path.suffix or '(none)'!r}",
                                "use .csv or .parquet files")
            files.add(path)
    if not files:
        raise HarlabError("no recording files given; pass CSV or Parquet files")
    return sorted(files)


def _csv_format(path: Path) -> dict[str, str]:
    """pandas' `sep` and `decimal` for a CSV file (see the module docstring); a header naming a column twice is an
    error (pandas would rename the second)."""
    with path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES).decode("utf-8-sig", errors="replace")
    lines = head.splitlines()[:SNIFF_ROWS]
    header = lines[0] if lines else ""
    sep = max((",", ";", "\t"), key=header.count)  # no separator at all: a comma, for a single column
    names = next(csv.reader([header], delimiter=sep), [])
    if repeated := sorted({name for name in names if names.count(name) > 1}):
        raise DataError(path, f"column {repeated[0]!r} appears twice in the header", "rename one of them")
    comma = sep != "," and any(DECIMAL_COMMA.fullmatch(field) for line in lines[1:] for field in line.split(sep))
    return {"sep": sep, "decimal": "," if comma else "."}


@contextlib.contextmanager
def _reading(path: Path) -> Iterator[None]:
    """What pandas and pyarrow raise for a bad recording file, as one line naming it."""
    import pyarrow

    try:
        yield
    except pd.errors.EmptyDataError:
        raise DataError(path, "the file is empty", "export the recording with a header row and its samples") from None
    except UnicodeDecodeError as exc:
        raise DataError(path, not_utf8(exc), "save it as CSV UTF-8 or Parquet") from None
    except (OSError, ValueError, pd.errors.ParserError, pyarrow.ArrowException) as exc:
        raise DataError(path, f"unreadable ({' '.join(str(exc).split())})",
                        "export it again as CSV or Parquet") from None


def read_header(path: Path) -> list[str]:
    """The column names of a recording file, read as `read_table` reads the file."""
    with _reading(path):
        if SUFFIXES[path.suffix.lower()] == "csv":
            return list(pd.read_csv(path, nrows=0, skipinitialspace=True, **_csv_format(path)).columns)
        import pyarrow.parquet

        return pyarrow.parquet.read_schema(path).names


def read_table(path: Path, options: ImportOptions) -> pd.DataFrame:
    """A recording file as a DataFrame (label, subject and session columns as text)."""
    text = {c: str for c in (options.label_column, options.subject_column, options.session_column) if c}
    with _reading(path):
        if SUFFIXES[path.suffix.lower()] == "csv":
            frame = pd.read_csv(path, dtype=text, skipinitialspace=True, **_csv_format(path))
        else:
            frame = pd.read_parquet(path)
    if frame.empty:
        raise DataError(path, f"no samples (columns: {', '.join(map(str, frame.columns)) or 'none'})",
                        "export the recording with its samples")
    return frame.reset_index(drop=True)


def _to_numbers(column: pd.Series) -> pd.Series:
    """A column as numbers, NaN where a value is not one."""
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        return column
    return pd.to_numeric(column.astype(str), errors="coerce")


def _kind(column: pd.Series) -> str:
    """What a column holds: NUMBERS (a numeric type, or text more than half of whose values are numbers),
    DECIMAL_COMMAS (text mostly like 1,23), "text", "true/false values", "date-times", "durations" or "no values"."""
    types = pd.api.types
    present = column.dropna()
    if not len(present):
        return "no values"
    if types.is_bool_dtype(column):
        return "true/false values"
    if types.is_datetime64_any_dtype(column):
        return "date-times"
    if types.is_timedelta64_dtype(column):
        return "durations"
    if _to_numbers(present).notna().mean() > 0.5:
        return NUMBERS
    return DECIMAL_COMMAS if present.astype(str).str.fullmatch(DECIMAL_COMMA.pattern).mean() > 0.5 else "text"


def _number_fix(value: object, fix: str) -> str:
    """What to do about `value`, which is not a number: `fix`, or write decimal points where it has a comma."""
    comma = DECIMAL_COMMA.fullmatch(str(value))
    return "write decimal points (1.23), or separate the columns with semicolons" if comma else fix


def _shown(value: object) -> str:
    """A cell's value as a message quotes it: 'abc', '0.5', 'False'."""
    return repr(str(value))


def _channels(frame: pd.DataFrame, path: Path, options: ImportOptions) -> list[str]:
    """The signal columns: the option's, or every column of numbers (see `_kind`) that is not
    time/label/subject/session; a notice names the other columns, which are left out."""
    named = [c for c in (options.time_column, options.label_column, options.subject_column,
                         options.session_column) if c]
    wanted = named + list(options.channels or [])
    if missing := [c for c in wanted if c not in frame.columns]:
        raise DataError(path, f"column {missing[0]!r} not found (columns: {', '.join(map(str, frame.columns))})",
                        "rename the column or pass its name (`time_column`, `label_column`, `channels`, ...)")
    if options.channels:
        return list(options.channels)
    kinds = {str(c): _kind(frame[c]) for c in frame.columns if c not in named}
    channels = [c for c, kind in kinds.items() if kind in (NUMBERS, DECIMAL_COMMAS)]  # decimal commas: `_signals` says
    if ignored := [f"{c} ({kind})" for c, kind in kinds.items() if c not in channels]:
        logger.warning(f"{path}: not read as signals, as they do not hold numbers: {', '.join(ignored)}")
    if not channels:
        raise DataError(path, f"no numeric signal columns besides {', '.join(named)}",
                        "name the signal columns with the `channels` setting")
    return channels


def _signals(frame: pd.DataFrame, path: Path, channels: list[str]) -> np.ndarray:
    """Signal columns as float64 [rows, channels]; non-numbers and NaNs are errors."""
    columns = []
    for name in channels:
        raw = frame[name]
        if (kind := _kind(raw)) not in (NUMBERS, DECIMAL_COMMAS, "text"):
            raise DataError(path, f"column {name!r} holds {kind}, not signal values",
                            "convert it to numbers or leave it out of the channels")
        values = _to_numbers(raw)
        not_number = values.isna() & raw.notna()
        if not_number.any():
            row = int(np.flatnonzero(not_number)[0])
            raise _error(path, f"column {name!r}: {_shown(raw.iloc[row])} is not a number",
                         _number_fix(raw.iloc[row], "fix or remove that row (signal columns hold numbers only)"), row)
        values = values.to_numpy(np.float64)
        if (bad := ~np.isfinite(values)).any():
            row = int(np.flatnonzero(bad)[0])
            raise _error(path, f"column {name!r}: {int(bad.sum())} empty, NaN or infinite value(s), the first here",
                         "fill or drop those rows before importing", row)
        columns.append(values)
    return np.column_stack(columns)


def _seconds(column: pd.Series, rows: np.ndarray, path: Path, unit: str) -> np.ndarray:
    """Timestamps as float seconds since the recording's first, strictly increasing."""
    name = column.name
    if column.isna().any():
        row = int(rows[np.flatnonzero(column.isna())[0]])
        raise _error(path, f"column {name!r}: missing timestamp", "fill or drop that row", row)
    kind = _kind(column)
    as_times = unit == "datetime" or (unit == "auto" and kind not in (NUMBERS, DECIMAL_COMMAS))
    if kind == "true/false values" or (kind in ("date-times", "durations") and not as_times):
        raise _error(path, f"column {name!r} holds {kind}, not timestamps" + (f" in {unit}" if unit != "auto" else ""),
                     "name the time column (the `time_column` setting)" if kind == "true/false values"
                     else "set time_unit=auto")
    if as_times:
        if pd.api.types.is_numeric_dtype(column):
            raise _error(path, f"column {name!r}: time_unit datetime needs date-time text, found numbers",
                         "set time_unit to s, ms, us or ns (or auto)")
        parsed = column if kind == "durations" else pd.to_datetime(column, errors="coerce", utc=True, format="ISO8601")
        if parsed.isna().any():
            row = int(np.flatnonzero(parsed.isna())[0])
            expected = "an ISO date-time" if unit == "datetime" else "a number or ISO date-time"
            raise _error(path, f"column {name!r}: {_shown(column.iloc[row])} is not {expected}",
                         "write seconds or ISO 8601 date-times (2024-05-01T12:00:00.020)", int(rows[row]))
        seconds = (parsed - parsed.iloc[0]).to_numpy().astype("timedelta64[ns]").astype(np.int64) / 1e9
    else:
        numbers = _to_numbers(column)
        if numbers.isna().any():
            row = int(np.flatnonzero(numbers.isna())[0])
            raise _error(path, f"column {name!r}: {_shown(column.iloc[row])} is not a number",
                         _number_fix(column.iloc[row], "fix or remove that row (this time column holds numbers)"),
                         int(rows[row]))
        values = numbers.to_numpy()
        relative = (values - values[0]).astype(np.float64)  # exact for integer epochs
        if unit == "auto":
            step = float(np.median(np.diff(relative))) if len(relative) > 1 else 0.0
            unit = next((u for u, limit in (("s", 1), ("ms", 1e3), ("us", 1e6)) if step <= limit), "ns")
        seconds = relative * UNITS[unit]
    steps = np.diff(seconds)
    if (bad := steps <= 0).any():
        i = int(np.flatnonzero(bad)[0]) + 1
        what = "repeats the previous timestamp" if steps[i - 1] == 0 else "goes back in time"
        raise _error(path, f"column {name!r}: {_shown(column.iloc[i])} {what}",
                     "sort the rows by time and drop duplicate samples", int(rows[i]))
    return seconds


def _check_labels(labels: pd.Series, rows: np.ndarray, path: Path, column: str, classes: list[str] | None) -> None:
    if classes is None:
        return
    unknown = labels.notna() & ~labels.isin(classes)
    if unknown.any():
        row = int(np.flatnonzero(unknown)[0])
        names = sorted(set(labels[unknown]))
        raise _error(path, f"column {column!r}: label(s) {', '.join(map(repr, names[:5]))} not among the classes "
                     f"{', '.join(classes)}", "add them to classes or correct the labels", int(rows[row]))


def _read_files(files: list[Path], options: ImportOptions) -> tuple[list[_Recording], list[str], dict[str, str]]:
    """Every recording of every file, the signal channels, and each file's sha256."""
    recordings: list[_Recording] = []
    channels: list[str] = []
    digests = {}
    for number, path in enumerate(files, start=1):
        digests[str(path)] = sha256_file(path)
        frame = read_table(path, options)
        channels = channels or _channels(frame, path, options)
        _channels(frame, path, options.model_copy(update={"channels": channels}))  # every file has them
        signals = _signals(frame, path, channels)
        labels = frame[options.label_column].astype("string").str.strip().replace("", pd.NA)
        keys = [c for c in (options.subject_column, options.session_column) if c]
        for column in keys:
            if frame[column].isna().any():
                row = int(np.flatnonzero(frame[column].isna())[0])
                raise _error(path, f"column {column!r}: empty value", "fill it in on every row", row)
        groups = frame.groupby(keys, sort=False).indices if keys else {(): np.arange(len(frame))}
        for key, rows in groups.items():
            key = key if isinstance(key, tuple) else (key,)
            subject = str(key[0]) if options.subject_column else str(number)
            _check_labels(labels.iloc[rows], rows, path, options.label_column, options.classes)
            seconds = _seconds(frame[options.time_column].iloc[rows], rows, path, options.time_unit)
            recordings.append(_Recording(path, subject, rows, seconds, signals[rows],
                                         labels.iloc[rows].reset_index(drop=True)))
    return recordings, channels, digests


def _stretches(rec: _Recording, max_gap_s: float) -> list[tuple[int, int]]:
    """(first, stop) rows of each stretch of `rec`, between steps longer than `max_gap_s`."""
    breaks = np.flatnonzero(np.diff(rec.seconds) > max_gap_s) + 1
    return list(zip([0, *breaks], [*breaks, len(rec.seconds)], strict=True))


def _samples_at(seconds: np.ndarray, rate: float) -> int:
    """Samples of a stretch spanning timestamps `seconds` once it is at `rate` Hz."""
    return int((seconds[-1] - seconds[0]) * rate + 1e-6) + 1


def _source_rate(rec: _Recording, options: ImportOptions) -> float:
    steps = np.diff(rec.seconds)
    if not len(steps):
        raise DataError(rec.path, f"column {options.time_column!r}: subject {rec.subject} has a single sample",
                        f"a recording needs at least one window ({options.window} samples)")
    median = float(np.median(steps))
    if median >= options.max_gap_s:
        raise DataError(rec.path, f"column {options.time_column!r}: median step {median:g} s is not shorter than "
                        f"max_gap_s {options.max_gap_s:g}", "raise the `max_gap_s` setting or check the time unit")
    regular = steps[np.abs(steps / median - 1) <= 0.5]  # gaps and dropped samples aside
    return float(f"{1 / float(np.mean(regular)):.4g}")


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
    ratio = Fraction(target / source).limit_denominator(1000)
    up, down = ratio.numerator, ratio.denominator
    grid_rate = target * down / up
    uniform = bool(np.max(np.abs(np.diff(t) * grid_rate - 1)) <= JITTER)
    if uniform and up == down:
        return x, codes, False
    if not uniform:
        grid = t[0] + np.arange(int((t[-1] - t[0]) * grid_rate + 1e-6) + 1) / grid_rate
        x = np.column_stack([np.interp(grid, t, column) for column in x.T])
    if up != down:
        x = signal.resample_poly(x, up, down, axis=0, padtype="line")
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


def build_windowset(paths: Iterable[str | Path], options: ImportOptions) -> tuple[WindowSet, dict[str, Any]]:
    """Windows of the recordings in `paths` and the manifest describing them (nothing is written)."""
    files = input_files(paths)
    recordings, channels, digests = _read_files(files, options)
    if missing := sorted(set(options.accelerometer or []) - set(channels)):
        raise HarlabError(f"option accelerometer: {missing} are not signal channels ({', '.join(channels)}); fix it")
    accelerometer = options.accelerometer if options.accelerometer is not None else [
        c for c in channels if "acc" in c.lower()]
    found = {str(x) for rec in recordings for x in rec.labels.dropna().unique()}
    classes = list(options.classes) if options.classes else sorted(
        found, key=lambda s: (0, float(s), s) if _is_number(s) else (1, 0.0, s))
    if not classes:
        raise DataError(files[0], f"column {options.label_column!r}: no labels at all", "label the activities")
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
    Xs, ys, subject_ids, tests = [], [], [], []
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
            for start, stop, is_test in _ranges(stretch_codes, time_split, options.align):
                starts = start + window_starts(stop - start, options.window, options.hop)
                if not len(starts):
                    continue
                index = starts[:, None] + np.arange(options.window)[None, :]
                window_codes = stretch_codes[index]
                unlabelled = (window_codes < 0).any(axis=1)
                majority = stats.mode(window_codes, axis=1, keepdims=False)
                impure = ~unlabelled & (majority.count < options.purity * options.window)
                keep = ~unlabelled & ~impure
                counts.unlabelled += int(unlabelled.sum())
                counts.impure += int(impure.sum())
                Xs.append(x[index[keep]].astype(np.float32))
                ys.append(np.asarray(majority.mode, np.int64)[keep])
                subject_ids.append(np.full(int(keep.sum()), ids[rec.subject], np.int64))
                tests.append(np.full(int(keep.sum()), is_test))
    y = np.concatenate(ys) if ys else np.empty(0, np.int64)
    note = counts.note(options)
    if not len(y):
        raise HarlabError(f"no windows could be cut from {len(files)} file(s) ({note or 'no labelled stretch'}); "
                          "check the labels, lower the `window` or `purity` setting")
    test_mask = np.concatenate(tests) if time_split else None
    if time_split and (test_mask.all() or not test_mask.any()):
        raise HarlabError(f"the time split left {int((~test_mask).sum())} training and {int(test_mask.sum())} test "
                          "windows; record longer or lower the `window` setting")
    digest = hashlib.sha256("".join(digests.values()).encode()).hexdigest()
    resolved = options.model_copy(update={"channels": list(channels), "accelerometer": list(accelerometer)})
    options_dump = resolved.model_dump(mode="json")  # the columns actually read, so a model can read them again
    provenance = Provenance(NAME, ", ".join(digests), digest, options_dump, note)
    ws = WindowSet(np.concatenate(Xs), y, np.concatenate(subject_ids), names, tuple(classes), rate, options.hop,
                   test_subjects, provenance, test_mask=test_mask)
    train, test = ws.split()
    if len(trained := [classes[i] for i in np.unique(train.y)]) < 2:
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
        "subjects": {"train": sorted(set(train.subject.tolist())), "test": sorted(set(test.subject.tolist())),
                     "names": ids if options.subject_column else ids_by_file},
        "windows_per_split": {"train": len(train), "test": len(test)}, "skipped": note}
    return ws, manifest


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _windows_key(digest: str) -> dict[str, str]:
    return {"dataset": NAME, "sha256": digest}


def import_recordings(paths: Iterable[str | Path], options: ImportOptions, out_dir: str | Path) -> WindowSet:
    """Cut the recordings into windows and write the dataset folder `out_dir` (windows.npz + dataset.json)
    atomically; an existing folder is replaced only if it is a harlab dataset itself."""
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / "dataset.json").is_file():
        raise DataError(out_dir, "exists and is not a harlab dataset", "choose a new out folder")
    ws, manifest = build_windowset(paths, options)
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


def read_signals(path: Path, channels: list[str], rate: float, time_column: str = "time",
                 time_unit: str = "auto", source_rate: float | None = None) -> np.ndarray:
    """One unlabeled recording file's `channels` [samples, channels] resampled to `rate` Hz, for prediction.

    Time comes from `time_column` (read as in an import), or, without that column, from `source_rate`. The
    checks are an import's: missing columns, non-numbers and NaNs, unsorted or repeated timestamps, a target
    rate over 10× the source; gaps are bridged by interpolation (a timeline shows them as they are predicted).
    """
    options = ImportOptions.parse({"time_column": time_column, "time_unit": time_unit, "channels": channels,
                                   "rate": rate}, path)
    frame = read_table(path, options)
    if missing := [c for c in channels if c not in frame.columns]:
        raise DataError(path, f"column {missing[0]!r} not found (columns: {', '.join(map(str, frame.columns))})",
                        "rename the recording's columns to the model's")
    signals = _signals(frame, path, channels)
    rows = np.arange(len(frame))
    if time_column in frame.columns:
        seconds = _seconds(frame[time_column], rows, path, time_unit)
    elif source_rate is not None:
        seconds = rows / source_rate
    else:
        raise DataError(path, f"no {time_column!r} column", "name the time column (the `time_column` setting) or "
                        "give the recording's rate (the `rate` setting)")
    recording = _Recording(path, "1", rows, seconds, signals, pd.Series([pd.NA] * len(rows), dtype="string"))
    source = _source_rate(recording, options.model_copy(update={"max_gap_s": float("inf")}))
    if rate > MAX_UPSAMPLING * source:
        raise DataError(path, f"column {time_column!r}: the model's {rate:g} Hz is over {MAX_UPSAMPLING}× the "
                        f"recording's {source:g} Hz", "record at a higher rate")
    resampled, _, _ = _resample(seconds, signals, np.zeros(len(rows), dtype=np.int64), source, rate)
    return resampled
