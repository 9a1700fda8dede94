"""Tables of samples — CSV or Parquet files — read column by column, each problem one line naming the file, the
column and the CSV line (or Parquet row).

CSV files are UTF-8 text, comma-separated; a file whose header has more semicolons (or tabs) than commas is read
as separated by them, as spreadsheets export CSV in many locales, and then with decimal commas (1,23) where its
first rows have them. Time columns are read by `timestamps` (see its docstring).
"""

from __future__ import annotations

import contextlib
import csv
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from harlab.data.text import not_utf8
from harlab.errors import DataError

SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
NUMBERS, DECIMAL_COMMAS = "numbers", "numbers with decimal commas"  # the kinds of column read as signals
SNIFF_BYTES, SNIFF_ROWS = 1 << 16, 20  # how much of a CSV file its separator and decimal mark are told from
DECIMAL_COMMA = re.compile(r"\s*[-+]?\d+,\d+(?:[eE][-+]?\d+)?\s*")


@dataclass(frozen=True)
class Clock:
    """Where a recording's first timestamp lies on the clock of its time column: `start` in seconds (since the
    epoch for date-times), `unit` the seconds per number of a numeric column (None for date-times)."""

    start: float
    unit: float | None


def row_place(path: Path, row: int) -> str:
    """Where data row `row` (0-based) of a table is: its CSV line (after the header), or its Parquet row."""
    return f"{path}:{row + 2}" if SUFFIXES.get(path.suffix.lower()) == "csv" else f"{path} row {row + 1}"


def row_error(path: Path, problem: str, fix: str, row: int | None = None) -> DataError:
    """A DataError at a data row: a CSV line (after the header) or a Parquet row."""
    if row is None:
        return DataError(path, problem, fix)
    if SUFFIXES[path.suffix.lower()] == "csv":
        return DataError(path, problem, fix, line=row + 2)
    return DataError(path, f"row {row + 1}: {problem}", fix)


def csv_format(path: Path) -> dict[str, str]:
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
def reading(path: Path) -> Iterator[None]:
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
    with reading(path):
        if SUFFIXES[path.suffix.lower()] == "csv":
            return list(pd.read_csv(path, nrows=0, skipinitialspace=True, **csv_format(path)).columns)
        import pyarrow.parquet

        return pyarrow.parquet.read_schema(path).names


def read_table(path: Path, text_columns: Iterable[str | None] = ()) -> pd.DataFrame:
    """A recording file as a DataFrame (`text_columns` read as text)."""
    text = {c: str for c in text_columns if c}
    with reading(path):
        if SUFFIXES[path.suffix.lower()] == "csv":
            frame = pd.read_csv(path, dtype=text, skipinitialspace=True, **csv_format(path))
        else:
            frame = pd.read_parquet(path)
    if frame.empty:
        raise DataError(path, f"no samples (columns: {', '.join(map(str, frame.columns)) or 'none'})",
                        "export the recording with its samples")
    return frame.reset_index(drop=True)


def read_chunks(path: Path, rows: int, columns: list[str] | None = None,
                text_columns: Iterable[str | None] = ()) -> Iterator[pd.DataFrame]:
    """A recording file `rows` rows at a time (only `columns`, if given; `text_columns` read as text), each chunk
    indexed by its rows' positions in the file; a file without rows is an error."""
    text = {c: str for c in text_columns if c}
    empty = True
    with reading(path):
        if SUFFIXES[path.suffix.lower()] == "csv":
            chunks = pd.read_csv(path, usecols=columns, dtype=text, chunksize=rows, skipinitialspace=True,
                                 **csv_format(path))
        else:
            import pyarrow.parquet

            chunks = (batch.to_pandas() for batch in
                      pyarrow.parquet.ParquetFile(path).iter_batches(batch_size=rows, columns=columns))
        first = 0
        for chunk in chunks:
            if chunk.empty:
                continue
            empty = False
            chunk.index = pd.RangeIndex(first, first + len(chunk))
            first += len(chunk)
            yield chunk
    if empty:
        raise DataError(path, f"no samples (columns: {', '.join(read_header(path)) or 'none'})",
                        "export the recording with its samples")


def to_numbers(column: pd.Series) -> pd.Series:
    """A column as numbers, NaN where a value is not one."""
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        return column
    return pd.to_numeric(column.astype(str), errors="coerce")


def column_kind(column: pd.Series) -> str:
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
    if to_numbers(present).notna().mean() > 0.5:
        return NUMBERS
    return DECIMAL_COMMAS if present.astype(str).str.fullmatch(DECIMAL_COMMA.pattern).mean() > 0.5 else "text"


def number_fix(value: object, fix: str) -> str:
    """What to do about `value`, which is not a number: `fix`, or write decimal points where it has a comma."""
    comma = DECIMAL_COMMA.fullmatch(str(value))
    return "write decimal points (1.23), or separate the columns with semicolons" if comma else fix


def shown(value: object) -> str:
    """A cell's value as a message quotes it: 'abc', '0.5', 'False'."""
    return repr(str(value))


def signal_values(frame: pd.DataFrame, path: Path, channels: list[str], first_row: int = 0) -> np.ndarray:
    """Signal columns as float64 [rows, channels]; non-numbers and NaNs are errors (naming the row, counted from
    `first_row`: the frame's first row in its file)."""
    columns = []
    for name in channels:
        raw = frame[name]
        if (kind := column_kind(raw)) not in (NUMBERS, DECIMAL_COMMAS, "text"):
            raise DataError(path, f"column {name!r} holds {kind}, not signal values",
                            "convert it to numbers or leave it out of the channels")
        values = to_numbers(raw)
        not_number = values.isna() & raw.notna()
        if not_number.any():
            row = int(np.flatnonzero(not_number)[0])
            raise row_error(path, f"column {name!r}: {shown(raw.iloc[row])} is not a number",
                            number_fix(raw.iloc[row], "fix or remove that row (signal columns hold numbers only)"),
                            first_row + row)
        values = values.to_numpy(np.float64)
        if (bad := ~np.isfinite(values)).any():
            row = int(np.flatnonzero(bad)[0])
            raise row_error(path, f"column {name!r}: {int(bad.sum())} empty, NaN or infinite value(s), the first here",
                            "fill or drop those rows before importing", first_row + row)
        columns.append(values)
    return np.column_stack(columns)


def timestamps(column: pd.Series, rows: np.ndarray, path: Path, unit: str) -> tuple[np.ndarray, Clock]:
    """Timestamps as float seconds since the recording's first, strictly increasing, and where the first lies.

    `unit` "auto" parses date-time and duration columns, and text that is not mostly numbers, as ISO date-times;
    numbers are read in the unit in which the median step means a rate between 1 Hz and 1 kHz: seconds if the
    median step is ≤ 1, else milliseconds if ≤ 10³, microseconds if ≤ 10⁶, nanoseconds above."""
    name = column.name
    if column.isna().any():
        row = int(rows[np.flatnonzero(column.isna())[0]])
        raise row_error(path, f"column {name!r}: missing timestamp", "fill or drop that row", row)
    kind = column_kind(column)
    as_times = unit == "datetime" or (unit == "auto" and kind not in (NUMBERS, DECIMAL_COMMAS))
    if kind == "true/false values" or (kind in ("date-times", "durations") and not as_times):
        in_unit = f" in {unit}" if unit != "auto" else ""
        raise row_error(path, f"column {name!r} holds {kind}, not timestamps{in_unit}",
                        "name the time column (the `time_column` setting)" if kind == "true/false values"
                        else "set time_unit=auto")
    if as_times:
        if pd.api.types.is_numeric_dtype(column):
            raise row_error(path, f"column {name!r}: time_unit datetime needs date-time text, found numbers",
                            "set time_unit to s, ms, us or ns (or auto)")
        parsed = column if kind == "durations" else pd.to_datetime(column, errors="coerce", utc=True, format="ISO8601")
        if parsed.isna().any():
            row = int(np.flatnonzero(parsed.isna())[0])
            expected = "an ISO date-time" if unit == "datetime" else "a number or ISO date-time"
            raise row_error(path, f"column {name!r}: {shown(column.iloc[row])} is not {expected}",
                            "write seconds or ISO 8601 date-times (2024-05-01T12:00:00.020)", int(rows[row]))
        seconds = (parsed - parsed.iloc[0]).to_numpy().astype("timedelta64[ns]").astype(np.int64) / 1e9
        first = parsed.iloc[0]
        clock = Clock(first.total_seconds() if kind == "durations" else first.timestamp(), None)
    else:
        numbers = to_numbers(column)
        if numbers.isna().any():
            row = int(np.flatnonzero(numbers.isna())[0])
            raise row_error(path, f"column {name!r}: {shown(column.iloc[row])} is not a number",
                            number_fix(column.iloc[row], "fix or remove that row (this time column holds numbers)"),
                            int(rows[row]))
        values = numbers.to_numpy()
        relative = (values - values[0]).astype(np.float64)  # exact for integer epochs
        if unit == "auto":
            step = float(np.median(np.diff(relative))) if len(relative) > 1 else 0.0
            unit = next((u for u, limit in (("s", 1), ("ms", 1e3), ("us", 1e6)) if step <= limit), "ns")
        seconds = relative * UNITS[unit]
        clock = Clock(float(values[0]) * UNITS[unit], UNITS[unit])
    steps = np.diff(seconds)
    if (bad := steps <= 0).any():
        i = int(np.flatnonzero(bad)[0]) + 1
        what = "repeats the previous timestamp" if steps[i - 1] == 0 else "goes back in time"
        raise row_error(path, f"column {name!r}: {shown(column.iloc[i])} {what}",
                        "sort the rows by time and drop duplicate samples", int(rows[i]))
    return seconds, clock




def sample_rate(seconds: np.ndarray, path: Path, what: str, max_gap_s: float) -> float:
    """The rate of samples at `seconds`: 1 / the mean step, steps within 50 % of the median step (so gaps and
    dropped samples aside), to 4 significant digits; `what` names the series in messages."""
    steps = np.diff(seconds)
    if not len(steps):
        raise DataError(path, f"{what} has a single sample, so no rate", "a recording needs at least one window")
    median = float(np.median(steps))
    if median >= max_gap_s:
        raise DataError(path, f"{what}: median step {median:g} s is not shorter than max_gap_s {max_gap_s:g}",
                        "raise the `max_gap_s` setting or check the time unit")
    regular = steps[np.abs(steps / median - 1) <= 0.5]
    return float(f"{1 / float(np.mean(regular)):.4g}")


class TimeAxis:
    """Seconds since a recording's first timestamp, read part after part (`timestamps` on each): the unit is told
    from the first part and kept, and the timestamps must increase across parts too. `clock` is where the first
    timestamp lies."""

    def __init__(self, path: Path, unit: str):
        self.path, self.unit = path, unit
        self.clock: Clock | None = None
        self.last = -np.inf

    def of(self, column: pd.Series, rows: np.ndarray) -> np.ndarray:
        """The seconds of the next part: a time column's values at file rows `rows` (0-based data rows)."""
        relative, clock = timestamps(column, rows, self.path, self.unit)
        self.unit = "datetime" if clock.unit is None else next(n for n, f in UNITS.items() if f == clock.unit)
        self.clock = self.clock or clock
        seconds = relative + (clock.start - self.clock.start)
        if seconds[0] <= self.last:
            what = "repeats the previous timestamp" if seconds[0] == self.last else "goes back in time"
            raise row_error(self.path, f"column {column.name!r}: {shown(column.iloc[0])} {what}",
                            "sort the rows by time and drop duplicate samples", int(rows[0]))
        self.last = float(seconds[-1])
        return seconds
