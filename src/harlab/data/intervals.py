"""Activity labels kept apart from the signals: interval tables of start, end and label.

An interval file is a CSV or Parquet table with the columns `start`, `end` and `label`, and optionally
`recording`: the name of the recording a row labels (its file name without the suffix, or its folder's or zip's
name). A file without that column labels the only recording imported, or the one it is named after (`walk1.csv`
or `walk1.labels.csv` label `walk1`). An interval labels the samples at start ≤ t < end; samples outside every
interval are unlabelled. Intervals of one label may overlap; intervals of different labels may not.

Times are numbers or ISO 8601 date-times, read one of two ways (`label_times`):
- `clock`: on the recording's own clock: numbers in the unit of its time column (the nanoseconds of a phone
  export, say), date-times as the time column's date-times or epoch numbers;
- `elapsed`: numbers are seconds since the recording's first sample;
- `auto` (the default): clock where every interval of the recording meets it on its clock, else elapsed.
An interval that meets the recording neither way is an error; one that runs past an end is cut there.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from harlab.data.tables import Clock, column_kind, read_table, row_error, row_place, shown, to_numbers
from harlab.errors import DataError

COLUMNS = ("start", "end", "label")
RECORDING = "recording"
LabelTimes = Literal["auto", "clock", "elapsed"]


@dataclass(frozen=True)
class Interval:
    """One row of an interval file: `start` and `end` as written (numbers), or epoch seconds for date-times."""

    start: float
    end: float
    label: str
    dated: bool
    path: Path
    row: int

    def where(self) -> str:
        """Where the interval is written: its file and line (or Parquet row)."""
        return row_place(self.path, self.row)

    def times(self) -> str:
        return f"{self.start:g}–{self.end:g}"


def _times(frame: pd.DataFrame, name: str, path: Path) -> tuple[np.ndarray, bool]:
    """A start or end column as floats and whether it held date-times (then as epoch seconds)."""
    column = frame[name]
    if column.isna().any():
        raise row_error(path, f"column {name!r}: empty", "give every interval its start and end",
                        int(np.flatnonzero(column.isna())[0]))
    if column_kind(column) == "numbers":
        numbers = to_numbers(column)
        if numbers.isna().any():
            row = int(np.flatnonzero(numbers.isna())[0])
            raise row_error(path, f"column {name!r}: {shown(column.iloc[row])} is not a number or date-time",
                            "write numbers or ISO 8601 date-times", row)
        return numbers.to_numpy(np.float64), False
    parsed = pd.to_datetime(column, errors="coerce", utc=True, format="ISO8601")
    if parsed.isna().any():
        row = int(np.flatnonzero(parsed.isna())[0])
        raise row_error(path, f"column {name!r}: {shown(column.iloc[row])} is not a number or ISO date-time",
                        "write numbers or ISO 8601 date-times (2024-05-01T12:00:00.020)", row)
    return (parsed - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy(), True


def _read_file(path: Path) -> pd.DataFrame:
    """An interval file's rows as start, end (floats), dated, label, recording (or None) and row."""
    frame = read_table(path, ("label", RECORDING))
    if missing := [c for c in COLUMNS if c not in frame.columns]:
        raise DataError(path, f"column {missing[0]!r} not found (columns: {', '.join(map(str, frame.columns))})",
                        "an interval file has the columns start, end, label and optionally recording")
    start, start_dated = _times(frame, "start", path)
    end, end_dated = _times(frame, "end", path)
    if start_dated != end_dated:
        raise DataError(path, "start and end mix numbers and date-times", "write both the same way")
    if (bad := end <= start).any():
        row = int(np.flatnonzero(bad)[0])
        raise row_error(path, f"interval {start[row]:g}–{end[row]:g} ends before it starts",
                        "swap or correct start and end", row)
    labels = frame["label"].astype("string").str.strip()
    if (empty := labels.isna() | (labels == "")).any():
        raise row_error(path, "column 'label': empty", "name the activity of every interval",
                        int(np.flatnonzero(empty)[0]))
    recording = frame[RECORDING].astype("string").str.strip() if RECORDING in frame.columns else None
    return pd.DataFrame({"start": start, "end": end, "dated": start_dated, "label": labels,
                         "recording": recording, "row": np.arange(len(frame))})


def _owner(path: Path, names: list[str]) -> str:
    """The recording a file without a recording column labels."""
    if len(names) == 1:
        return names[0]
    stem = re.sub(r"\.labels$", "", path.stem)
    if stem in names:
        return stem
    raise DataError(path, f"no {RECORDING!r} column, and {len(names)} recordings are imported",
                    f"add a {RECORDING} column naming them ({', '.join(names[:4])}...) or name the file after one")


def read_intervals(paths: Iterable[str | Path], names: list[str]) -> dict[str, list[Interval]]:
    """The intervals of the files `paths`, by the name of the recording they label (`names`: those imported),
    checked for overlaps of different labels."""
    found: dict[str, list[Interval]] = {name: [] for name in names}
    for path in map(Path, paths):
        rows = _read_file(path)
        owner = None if rows["recording"].notna().any() else _owner(path, names)
        for row in rows.itertuples():
            name = owner or row.recording
            if name not in found:
                raise row_error(path, f"column {RECORDING!r}: no recording named {shown(name)}",
                                f"use one of the recordings' names: {', '.join(names[:6])}", row.row)
            found[name].append(Interval(row.start, row.end, row.label, bool(row.dated), path, row.row))
    for intervals in found.values():
        _check_overlaps(intervals)
    return found


def _check_overlaps(intervals: list[Interval]) -> None:
    """Intervals of different labels must not overlap. Sorted by start, each interval is checked against the one
    reaching furthest so far: any other it overlaps overlaps that one too, and was checked against it."""
    furthest: Interval | None = None
    for interval in sorted(intervals, key=lambda i: (i.start, i.end)):
        if furthest is not None and interval.start < furthest.end and interval.label != furthest.label:
            raise DataError(interval.where(), f"interval {interval.times()} labelled {interval.label!r} overlaps "
                            f"{furthest.times()} labelled {furthest.label!r} ({furthest.where()})",
                            "make the intervals not overlap")
        if furthest is None or interval.end > furthest.end:
            furthest = interval


def _on_clock(interval: Interval, clock: Clock) -> tuple[float, float] | None:
    """An interval in seconds since the recording's start, read on its clock (None: not possible)."""
    if interval.dated:
        return interval.start - clock.start, interval.end - clock.start
    if clock.unit is None:
        return None
    return interval.start * clock.unit - clock.start, interval.end * clock.unit - clock.start


def _elapsed(interval: Interval, clock: Clock) -> tuple[float, float] | None:
    return None if interval.dated else (interval.start, interval.end)


def sample_labels(intervals: list[Interval], seconds: np.ndarray, clock: Clock, mode: LabelTimes,
                  name: str) -> pd.Series:
    """Each sample's label (NA outside every interval) for samples at `seconds` since the start of recording
    `name`, whose start lies at `clock`."""
    readings: dict[str, Callable[[Interval, Clock], tuple[float, float] | None]] = {
        "clock": _on_clock, "elapsed": _elapsed}
    first, last = float(seconds[0]), float(seconds[-1])

    def meets(span: tuple[float, float] | None) -> bool:
        return span is not None and span[0] <= last and span[1] > first

    ways = ("clock", "elapsed") if mode == "auto" else (mode,)
    chosen = next((way for way in ways if all(meets(readings[way](i, clock)) for i in intervals)), None)
    if chosen is None:
        outside = next(i for i in intervals if not meets(readings[ways[-1]](i, clock)))
        on_clock = ""
        if clock.unit:
            decimals = 3 if clock.unit == 1 else 0
            on_clock = f", {(clock.start + first) / clock.unit:.{decimals}f}–" \
                       f"{(clock.start + last) / clock.unit:.{decimals}f} on its clock"
        raise DataError(outside.where(), f"interval {outside.times()} lies outside recording {name!r} "
                        f"({first:.4g}–{last:.4g} s from its start{on_clock})",
                        "correct the times, or set label_times to clock or elapsed")
    labels = np.full(len(seconds), None, dtype=object)
    for interval in intervals:
        start, end = readings[chosen](interval, clock)
        labels[np.searchsorted(seconds, start):np.searchsorted(seconds, end)] = interval.label
    return pd.Series(labels, dtype="string")
