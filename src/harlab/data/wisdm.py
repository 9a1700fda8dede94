"""WISDM Activity Prediction v1.1: 36 users, a phone's accelerometer at 20 Hz, 6 activities, read from the
official `WISDM_ar_latest.tar.gz` (never extracted: only the raw member is read, in memory) or a local copy,
and cut into windows within continuous stretches of one user's recording.

Checksum: the WISDM lab publishes none (none found for WISDM_ar_latest.tar.gz), so harlab trusts the first
download: it records the archive's sha256 beside it (`WISDM_ar_latest.tar.gz.sha256`) and in the windows'
provenance, and refuses a cached archive whose sha256 later differs from the recorded one. A cached archive
without a record (put there by hand, or its record deleted) cannot be checked: it is trusted as it is, with a
one-line note saying so, and recorded.

Unlike the WISDM tutorial, windows never span two users, a skipped record or a gap in the timestamps (more
than MAX_GAP_NS = 1 s, i.e. 20 samples, between consecutive records, or a jump back), and nothing is
standardized here: the tutorial fitted its scaler on the whole file (test users included), a leak;
harlab standardizes on training subjects only (the `standardize` setting).
"""

from __future__ import annotations

import csv
import io
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pandas as pd

from harlab.data import fetch
from harlab.data.fetch import cache_dir, check_recorded_sha256, download, read_tar_member, record_sha256, regular_file
from harlab.data.signals import check_window_memory
from harlab.data.windowset import Provenance, WindowSet
from harlab.errors import DataError, HarlabError
from harlab.files import sha256_file

logger = logging.getLogger(__name__)

NAME = "wisdm"
URL = "https://www.cis.fordham.edu/wisdm/includes/datasets/latest/WISDM_ar_latest.tar.gz"
ARCHIVE = "WISDM_ar_latest.tar.gz"
FOLDER = "WISDM_ar_v1.1"
RAW_MEMBER = "WISDM_ar_v1.1_raw.txt"
SAMPLING_RATE = 20.0
CHANNELS = ("acc_x", "acc_y", "acc_z")
CLASSES = ("Walking", "Jogging", "Upstairs", "Downstairs", "Sitting", "Standing")
TEST_SUBJECTS = tuple(range(29, 37))
MAX_GAP_NS = 1_000_000_000
"""A stretch ends where consecutive timestamps (ns) are more than 1 s (20 samples at 20 Hz) apart, or go back."""

_SEPARATOR = re.compile(r"[;\n]")
_ARCHIVE_SUFFIXES = (".tar.gz", ".tgz")
_EXAMPLES = 3
_EXAMPLE_CHARS = 80
WRONG_FIELD_COUNT, EMPTY_FIELD, BAD_NUMBER, UNKNOWN_ACTIVITY, ZERO_TIMESTAMP = REASONS = (
    "wrong field count", "empty field", "bad number", "unknown activity", "zero timestamp")
"""Why a record is skipped, in the order they are checked (a record counts under the first that applies)."""
_NUMBER = r"\s*[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?\s*"
_RECORD = rf"\s*\d+\s*,[^,]*\S[^,]*,\s*\d+\s*,{_NUMBER},{_NUMBER},{_NUMBER}"
"""A well-formed record (without its trailing comma): whole user and timestamp, an activity, three decimals."""
_DTYPES = {0: np.float64, 1: str, 2: np.float64, 3: np.float64, 4: np.float64, 5: np.float64}


def _malformed(record: str) -> int:
    """Why a record that is not well-formed is skipped (the index of its reason)."""
    values = record.split(",")
    if len(values) != 6:
        return REASONS.index(WRONG_FIELD_COUNT)
    return REASONS.index(EMPTY_FIELD if any(not value.strip() for value in values) else BAD_NUMBER)


@dataclass(frozen=True)
class SkipReport:
    """Skipped records: how many per reason, and up to 3 examples per reason as (line number, text)."""

    total_records: int
    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[tuple[int, str]]] = field(default_factory=dict)

    @property
    def skipped(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        """One line: how many records were skipped and why, with the first example; empty if none were."""
        if not self.skipped:
            return ""
        reasons = ", ".join(f"{reason} {count:,}" for reason, count in self.counts.items())
        line, text = min(example for examples in self.examples.values() for example in examples)
        return (f"skipped {self.skipped:,} of {self.total_records:,} records ({reasons}); "
                f"e.g. line {line}: {text!r}")


@dataclass(frozen=True)
class Records:
    """The valid records in file order: user ids, activities (indices into CLASSES), timestamps (ns),
    accelerations [n, 3] (m/s²), and whether a skipped record came right before each one."""

    user: np.ndarray
    activity: np.ndarray
    timestamp: np.ndarray
    xyz: np.ndarray
    after_skip: np.ndarray

    def __len__(self) -> int:
        return len(self.user)


def parse_raw(text: str, source: str) -> tuple[Records, SkipReport]:
    """Parse WISDM's raw `user,activity,timestamp,x,y,z;` records, skipping (and reporting) bad ones.

    Records end at `;` or a line end (several may share a line); a trailing `,` is ignored, blank lines and
    empty records are not records. A record is skipped (REASONS) for the wrong number of fields, an empty
    field, a bad number (user and timestamp must be whole numbers, the user ≥ 1, x, y, z finite decimals),
    an unknown activity, or timestamp 0. Parsing is vectorized; only skipped records are looked at singly.
    """
    pieces = pd.Series(_SEPARATOR.split(text), dtype=object).str.strip()
    separators = np.frombuffer(text.encode("utf-8", "replace"), np.uint8)
    separators = separators[(separators == ord(";")) | (separators == ord("\n"))]
    line_of = np.concatenate([[1], 1 + np.cumsum(separators == ord("\n"))])
    present = (pieces != "").to_numpy()
    pieces, line_of = pieces[present].reset_index(drop=True), line_of[present]
    if pieces.empty:
        raise DataError(source, "no records", f"the file is empty or not WISDM's {RAW_MEMBER}")
    body = pieces.str.rstrip(",")
    good = body.str.fullmatch(_RECORD).to_numpy()
    numbers = np.full((len(pieces), 5), np.nan)
    activity = np.full(len(pieces), -1)
    if good.any():
        fields = pd.read_csv(io.StringIO("\n".join(body[good])), header=None, names=range(6), dtype=_DTYPES,
                             na_filter=False, quoting=csv.QUOTE_NONE, skipinitialspace=True, engine="c")
        numbers[good] = fields[[0, 2, 3, 4, 5]].to_numpy(np.float64)
        activity[good] = pd.Index(CLASSES).get_indexer(fields[1].str.strip())
    user, timestamp = numbers[:, 0], numbers[:, 1]
    reason = np.full(len(pieces), -1)
    in_range = np.isfinite(numbers).all(axis=1) & (user >= 1) & (user < 2**31) & (timestamp < 2**62)
    reason[good & ~in_range] = REASONS.index(BAD_NUMBER)
    reason[good & (reason == -1) & (activity < 0)] = REASONS.index(UNKNOWN_ACTIVITY)
    reason[good & (reason == -1) & (timestamp == 0)] = REASONS.index(ZERO_TIMESTAMP)
    reason[~good] = [_malformed(text) for text in body[~good]]  # few: looked at one by one
    valid = reason == -1
    if not valid.any():
        raise DataError(source, f"none of its {len(pieces):,} records is a valid `user,activity,timestamp,x,y,z;`",
                        f"use WISDM's {RAW_MEMBER}", line=int(line_of[0]))
    counts, examples = {}, {}
    for code, why in enumerate(REASONS):
        if len(where := np.flatnonzero(reason == code)):
            counts[why] = len(where)
            examples[why] = [(int(line_of[i]), pieces[i][:_EXAMPLE_CHARS]) for i in where[:_EXAMPLES]]
    after_skip = np.concatenate([[False], ~valid[:-1]])[valid]
    records = Records(user[valid].astype(np.int64), activity[valid], timestamp[valid].astype(np.int64),
                      numbers[valid, 2:].astype(np.float32), after_skip)
    return records, SkipReport(len(pieces), counts, examples)


def stretches(records: Records, max_gap_ns: int = MAX_GAP_NS) -> tuple[np.ndarray, np.ndarray]:
    """(starts, stops) of the continuous stretches: a new one begins where the user changes, a record was
    skipped just before, or the timestamp jumps back or ahead by more than `max_gap_ns`."""
    dt = np.diff(records.timestamp)
    new = np.ones(len(records), dtype=bool)
    new[1:] = (np.diff(records.user) != 0) | records.after_skip[1:] | (dt < 0) | (dt > max_gap_ns)
    starts = np.flatnonzero(new)
    return starts, np.append(starts[1:], len(records))


def make_windows(records: Records, window: int, step: int, source: str,
                 max_gap_ns: int = MAX_GAP_NS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Windows X [n, window, 3] float32 every `step` samples inside each stretch, labelled with their most
    frequent activity (a tie goes to the class first in CLASSES), and their users."""
    starts, stops = stretches(records, max_gap_ns)
    per_stretch = np.maximum(0, (stops - starts - window) // step + 1)
    if not per_stretch.sum():
        raise DataError(source, f"no continuous stretch holds a window of {window} samples (the longest has "
                        f"{int((stops - starts).max())})", "lower the `window` setting")
    check_window_memory(int(per_stretch.sum()), window, records.xyz.shape[1], step)
    first = np.repeat(starts, per_stretch)
    offsets = np.arange(len(first)) - np.repeat(np.cumsum(per_stretch) - per_stretch, per_stretch)
    first = first + offsets * step
    X = records.xyz[first[:, None] + np.arange(window)]
    counts = np.zeros((len(records) + 1, len(CLASSES)), dtype=np.int32)
    counts[np.arange(1, len(records) + 1), records.activity] = 1
    counts = np.cumsum(counts, axis=0)
    y = np.argmax(counts[first + window] - counts[first], axis=1).astype(np.int64)
    return X, y, records.user[first]


@dataclass(frozen=True)
class WisdmSource:
    """A located copy: the archive or the raw text file, where it came from, and its sha256."""

    path: Path
    origin: str  # "local", "cache" or "official"
    sha256: str

    @property
    def is_archive(self) -> bool:
        return self.path.name.endswith(_ARCHIVE_SUFFIXES)


def find_local(folder: Path) -> Path | None:
    """`folder`'s copy: the raw text file, a `WISDM_ar_v1.1/` folder holding it, or the .tar.gz archive."""
    for candidate in (folder / RAW_MEMBER, folder / FOLDER / RAW_MEMBER):
        if candidate.is_file():
            return candidate
    archives = [folder / ARCHIVE, *sorted(folder.glob("*.tar.gz")), *sorted(folder.glob("*.tgz"))]
    return next((archive for archive in archives if archive.is_file()), None)


def locate(data_dir: Path | None, offline: bool = False, quiet: bool = False) -> WisdmSource:
    """Find WISDM: a local copy in DATA_DIR/wisdm/, the cached archive, else download the official one."""
    if data_dir is not None and (found := find_local(data_dir / NAME)):
        return WisdmSource(found, "local", sha256_file(found))
    archive = cache_dir() / NAME / ARCHIVE
    if archive.is_file():
        sha256 = sha256_file(archive)
        check_recorded_sha256(archive, sha256, NAME)
        return WisdmSource(archive, "cache", sha256)
    if offline:
        raise HarlabError(f"{NAME}: no local copy in {data_dir} and nothing cached in {archive.parent}; "
                          f"run `harlab data fetch {NAME}` where the network is reachable")
    try:
        sha256 = download(URL, archive, quiet=quiet)
    except HarlabError as exc:
        raise HarlabError(f"{NAME} could not be had: {exc} — put {ARCHIVE} or {RAW_MEMBER} in DIR/{NAME}/ "
                          "and set data_dir=DIR") from None
    record_sha256(archive, sha256)
    return WisdmSource(archive, "official", sha256)


def read_raw_text(path: Path) -> str:
    """The raw records' text: the raw member of a .tar.gz read in memory within the decompression limits
    (nothing is written), or a text file (of at most as many bytes as one archive member)."""
    if not path.name.endswith(_ARCHIVE_SUFFIXES):
        regular_file(path, f"use WISDM's {RAW_MEMBER}", limit=fetch.MAX_MEMBER_BYTES)
        return path.read_bytes().decode("utf-8", "replace")
    data = read_tar_member(path, lambda name: PurePosixPath(name).name == RAW_MEMBER and "__MACOSX" not in name)
    if data is None:
        raise DataError(path, f"no {RAW_MEMBER} inside", f"use the official {ARCHIVE} ({URL})")
    return data.decode("utf-8", "replace")


def build_windowset(source: WisdmSource, window: int, step: int, options: dict[str, Any]) -> WindowSet:
    """Parse `source`, say what was skipped (one line), and cut its windows; `options` go into the provenance."""
    where = str(source.path) + (f"!{RAW_MEMBER}" if source.is_archive else "")
    records, skips = parse_raw(read_raw_text(source.path), where)
    if note := skips.summary():
        logger.warning(f"{NAME}: {note}")
    X, y, subject = make_windows(records, window, step, where)
    provenance = Provenance(NAME, str(source.path), source.sha256,
                            {"origin": source.origin, "format": "archive" if source.is_archive else "text",
                             "url": URL, **options, "records": len(records), "skipped": skips.counts}, note)
    return WindowSet(X, y, subject, CHANNELS, CLASSES, SAMPLING_RATE, step, TEST_SUBJECTS, provenance)
