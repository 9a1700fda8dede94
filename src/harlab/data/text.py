"""Fast, strict reading of whitespace-separated numeric text files (the UCI and HAPT formats), and of UTF-8 text
files, with one-line errors."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pandas as pd

from harlab.errors import DataError


def not_utf8(exc: UnicodeDecodeError) -> str:
    """What a UnicodeDecodeError means, for a message: `not UTF-8 text (byte 0xfc at offset 5083)`."""
    return f"not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start})"


def read_text_file(path: Path, fix: str) -> str:
    """A UTF-8 text file's contents; one that cannot be read, or is not UTF-8 (`fix` says what to give instead), is
    a one-line DataError."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DataError(path, f"cannot read ({exc.strerror or exc})", "check the path") from None
    except UnicodeDecodeError as exc:
        raise DataError(path, not_utf8(exc), fix) from None


def _diagnose(data: bytes, source: Path | str, n_cols: int | None, integer: bool) -> DataError:
    """Find the first bad line the slow way, once the fast parser has refused the file."""
    expected = n_cols
    for number, raw in enumerate(data.decode("utf-8", "replace").splitlines(), start=1):
        fields = raw.split()
        if not fields:
            return DataError(source, "empty line", "remove blank lines from the file", line=number)
        if expected is None:
            expected = len(fields)
        if len(fields) != expected:
            return DataError(source, f"row has {len(fields)} values, expected {expected}",
                             "every row must have the same number of values", line=number)
        for col, text in enumerate(fields, start=1):
            try:
                value = float(text)
            except ValueError:
                return DataError(source, f"column {col}: {text!r} is not a number",
                                 "fix or remove that value", line=number)
            if not math.isfinite(value):
                return DataError(source, f"column {col}: value {text!r} is not finite",
                                 "NaN and infinity are not allowed in sensor data", line=number)
            if integer and value != int(value):
                return DataError(source, f"column {col}: {text!r} is not a whole number",
                                 "labels and ids must be integers", line=number)
    return DataError(source, "could not be parsed as a numeric table", "check the file's format")


def read_table(data: bytes, source: Path | str, n_cols: int | None = None, integer: bool = False) -> np.ndarray:
    """Parse whitespace-separated numbers into a 2-D array (float64, or int64 if `integer`).

    Every row must have `n_cols` values (or as many as the first row), every value must be a finite
    number; otherwise a one-line DataError names the file, the line and the fix.
    """
    if not data.strip():
        raise DataError(source, "file is empty", "the file is truncated; fetch the dataset again")
    try:
        frame = pd.read_csv(io.BytesIO(data), sep=r"\s+", header=None, dtype=np.float64, engine="c",
                            skip_blank_lines=False)
    except (ValueError, pd.errors.ParserError):
        raise _diagnose(data, source, n_cols, integer) from None
    values = frame.to_numpy()
    bad_width = n_cols is not None and values.shape[1] != n_cols
    if bad_width or not np.isfinite(values).all():
        raise _diagnose(data, source, n_cols, integer)
    if integer:
        as_int = values.astype(np.int64)
        if (as_int != values).any():
            raise _diagnose(data, source, n_cols, integer)
        return as_int
    return values


def parse_activity_labels(data: bytes, source: Path | str) -> tuple[str, ...]:
    """Class names from an `activity_labels.txt` (`id name` per line, ids 1..K in any order)."""
    rows = {}
    for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise DataError(source, f"expected `id NAME`, got {line.strip()!r}", "fix the line", line=number)
        rows[int(parts[0])] = parts[1]
    if sorted(rows) != list(range(1, len(rows) + 1)):
        raise DataError(source, f"activity ids {sorted(rows)} are not 1..{len(rows)}", "number them 1..K")
    return tuple(rows[i] for i in range(1, len(rows) + 1))
