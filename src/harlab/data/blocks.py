"""Long recordings read in blocks, in bounded memory: a day at 50 Hz (4.3 million rows) never sits in memory whole.

A recording file (CSV or Parquet) is read `rows` rows at a time and resampled onto its grid at the target rate:
sample k lies k / rate seconds after the recording's first timestamp. Each `Block` answers for a range of grid
samples (its core) and carries `margin_s` seconds of signal on either side as context, so that filters (the
resampler's, a model's pipeline) see the same neighbourhood as on the whole recording. Memory is bounded by the
block size and the margins, whatever the recording's length.

Time comes from the time column (read as `harlab.data.tables.timestamps` reads it, the unit told from the first
block and kept), or from `source_rate` without one. Timestamps must increase across blocks too. Gaps are bridged
by interpolation, as a timeline shows them as they are predicted. Resampling is `resample_uniform`'s; every block
starts its interpolation grid on the same lattice, so blocks join without a seam.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harlab.data.signals import MAX_UPSAMPLING, rate_ratio, resample_uniform
from harlab.data.tables import SUFFIXES, TimeAxis, read_chunks, read_header, reading, sample_rate, signal_values
from harlab.errors import DataError

ROWS = 1 << 17  # rows read at a time: 45 minutes at 50 Hz


@dataclass(frozen=True)
class Block:
    """`samples` [n, channels] at the target rate from grid index `first`; the block answers for grid indices
    `core` = (start, stop); the samples around them are context."""

    first: int
    samples: np.ndarray
    core: tuple[int, int]

    def core_samples(self) -> np.ndarray:
        return self.samples[self.core[0] - self.first:self.core[1] - self.first]


def count_rows(path: Path) -> int | None:
    """The data rows of a recording file, counted without parsing it (for a progress bar); None if it is not one."""
    if not path.is_file() or path.suffix.lower() not in SUFFIXES:
        return None
    if SUFFIXES[path.suffix.lower()] == "parquet":
        import pyarrow.parquet

        with reading(path):
            return int(pyarrow.parquet.ParquetFile(path).metadata.num_rows)
    lines, last = 0, b"\n"
    with path.open("rb") as handle:
        while piece := handle.read(1 << 20):
            lines += piece.count(b"\n")
            last = piece[-1:]
    return max(0, lines + (last != b"\n") - 1)


def _resampled(t: np.ndarray, x: np.ndarray, source: float, rate: float, end: int) -> tuple[int, np.ndarray]:
    """(first grid index, samples) of rows at `t` on the grid, up to grid index `end` (exclusive). The
    interpolation grid starts at a multiple of the rate ratio's numerator, a point every block's grid shares."""
    up, _ = rate_ratio(rate, source)
    first = math.ceil(math.ceil(t[0] * rate - 1e-6) / up) * up
    samples = resample_uniform(t, x, source, rate, first / rate)
    return first, samples[:max(0, end - first)]


def signal_blocks(path: Path, channels: list[str], rate: float, *, time_column: str = "time",
                  time_unit: str = "auto", source_rate: float | None = None, margin_s: float = 10.0,
                  rows: int | None = None, on_rows: Callable[[int], None] = lambda done: None) -> Iterator[Block]:
    """The recording file's `channels` at `rate` Hz, block after block (see the module docstring); `on_rows(done)`
    after every `rows` (default ROWS) rows read. The checks are an import's: missing columns, non-numbers and NaNs,
    unsorted or repeated timestamps, a rate over 10× the recording's."""
    header = read_header(path)
    if missing := [c for c in channels if c not in header]:
        raise DataError(path, f"column {missing[0]!r} not found (columns: {', '.join(map(str, header))})",
                        "rename the recording's columns to the model's")
    has_time = time_column in header
    if not has_time and source_rate is None:
        raise DataError(path, f"no {time_column!r} column", "name the time column (the `time_column` setting) or "
                        "give the recording's rate (the `rate` setting)")
    times = TimeAxis(path, time_unit)
    t, x = np.empty(0), np.empty((0, len(channels)))
    source, done, core_from = source_rate, 0, 0
    for chunk in read_chunks(path, rows or ROWS, [*channels, *([time_column] if has_time else [])]):
        rows_read = chunk.index.to_numpy()
        t = np.concatenate([t, times.of(chunk[time_column], rows_read) if has_time else rows_read / source_rate])
        x = np.concatenate([x, signal_values(chunk, path, channels, done)])
        done += len(chunk)
        on_rows(done)
        if source is None:
            source = sample_rate(t, path, f"column {time_column!r}", math.inf)
            if rate > MAX_UPSAMPLING * source:
                raise DataError(path, f"column {time_column!r}: the model's {rate:g} Hz is over {MAX_UPSAMPLING}× "
                                f"the recording's {source:g} Hz", "record at a higher rate")
        ready = math.floor((t[-1] - margin_s) * rate)  # grid samples whose right context has been read
        if ready > core_from:
            first, samples = _resampled(t, x, source, rate, ready + math.ceil(margin_s * rate))
            yield Block(first, samples, (core_from, ready))
            core_from = ready
            # the next block's left context, from the lattice point its interpolation grid may start at
            keep = np.searchsorted(t, (core_from - rate_ratio(rate, source)[0]) / rate - margin_s)
            t, x = t[keep:], x[keep:]
    if source is None:
        raise DataError(path, "a single sample, so no rate", "a recording needs at least one window")
    end = int(t[-1] * rate + 1e-6) + 1
    if end > core_from:
        first, samples = _resampled(t, x, source, rate, end)
        yield Block(first, samples, (core_from, first + len(samples)))
