"""Recordings written one file per sensor, each sensor at its own rate, as phone and wearable apps export them,
merged onto one uniform time grid.

A recording is a folder, or a zip, of per-sensor CSV files. The layouts read (file names matched without case,
the first name found taken; a name holding "uncalibrated" is passed over):

- `sensor-logger` (the Sensor Logger phone app): TotalAcceleration.csv (with gravity), else Accelerometer.csv,
  and Gyroscope.csv; time column `time` in ns since the epoch; axes `x`, `y`, `z` in m/s² and rad/s.
- `phyphox` (the phyphox phone app): Accelerometer.csv (or Raw Data.csv of "acceleration with g") and
  Gyroscope.csv; time column `Time (s)`; axes like `X (m/s^2)` or `Acceleration x (m/s^2)`, units named.
- `metawear` (MbientLab's MetaBase app for its wearables): *Accelerometer*.csv and *Gyroscope*.csv; time column
  `epoch (ms)`; axes like `x-axis (g)` and `x-axis (deg/s)`, units named.
- `generic`: *accelerometer* or *acc*.csv and *gyroscope* or *gyro*.csv; the `time_column` setting's column;
  axes `x`, `y`, `z` (units named in brackets, or set).

Whatever the layout, the channels are HAPT's: acc_x, acc_y, acc_z in g, gyro_x, gyro_y, gyro_z in rad/s.
Units come from the `acc_units` / `gyro_units` settings, else the column names, else the layout; where none
says, values are kept as they are. A warning says when the accelerometer's median magnitude is not about 1 g.

Alignment. A recording's files share one clock; its start is the earliest sample of any sensor. The merged
signals cover the span every sensor covers: from the latest first sample to the earliest last one (a sensor that
starts late or stops early shortens the recording; the import says by how much). On a grid at the target rate
(the `rate` setting, else the slowest sensor's rate) from the start of that span, each sensor is resampled on its
own: linear interpolation onto a uniform grid near its rate, then `scipy.signal.resample_poly`, whose low-pass
filter anti-aliases a downsampling. Gaps: a step longer than `max_gap_s` splits a sensor's samples into stretches,
each resampled on its own; grid samples that a sensor does not cover are dropped, so the recording splits there as
a table does. Shorter gaps are bridged by interpolation.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from harlab.data.fetch import safe_extract_zip
from harlab.data.signals import MAX_UPSAMPLING, resample_uniform
from harlab.data.tables import Clock, read_header, read_table, sample_rate, signal_values, timestamps
from harlab.errors import DataError

logger = logging.getLogger(__name__)

SENSORS = {"acc": "accelerometer", "gyro": "gyroscope"}
CONVERSIONS = {"acc": {"g": 1.0, "m/s2": 1 / 9.80665}, "gyro": {"rad/s": 1.0, "deg/s": math.pi / 180}}
UNIT_SPELLINGS = {"g": "g", "m/s^2": "m/s2", "m/s²": "m/s2", "m/s2": "m/s2", "m/s/s": "m/s2",
                  "rad/s": "rad/s", "deg/s": "deg/s", "°/s": "deg/s", "dps": "deg/s"}
AXIS = re.compile(r"(?:.*\s)?([xyz])(?:-axis)?(?:\s*\(([^)]*)\))?", re.IGNORECASE)


@dataclass(frozen=True)
class Layout:
    """How one app writes a recording: its files' names per sensor (in preference order), time column and unit
    (None: the import settings'), the units its columns do not name, and a column only its files have."""

    name: str
    files: dict[str, tuple[str, ...]]
    time_column: str | None = None
    time_unit: str | None = None
    units: dict[str, str] = field(default_factory=dict)
    marker: str | None = None


LAYOUTS = (
    Layout("sensor-logger", {"acc": ("totalacceleration", "accelerometer"), "gyro": ("gyroscope",)}, "time", "ns",
           {"acc": "m/s2", "gyro": "rad/s"}, marker="seconds_elapsed"),
    Layout("phyphox", {"acc": ("accelerometer", "raw data"), "gyro": ("gyroscope",)}, "time (s)", "s"),
    Layout("metawear", {"acc": ("accelerometer",), "gyro": ("gyroscope",)}, "epoch (ms)", "ms"),
    Layout("generic", {"acc": ("accelerometer", "acc"), "gyro": ("gyroscope", "gyro")}),
)


@dataclass(frozen=True)
class SensorSettings:
    """The import settings a per-sensor recording is read with (see `harlab.data.recordings.ImportOptions`)."""

    time_column: str = "time"
    time_unit: str = "auto"
    rate: float | None = None
    max_gap_s: float = 0.5
    acc_units: str = "auto"
    gyro_units: str = "auto"


@dataclass(frozen=True)
class SensorRecording:
    """A per-sensor recording merged: `signals` [samples, channels] at `seconds` since the recording's start, which
    lies at `clock` on the files' clock; samples are on a grid at `rate` Hz, with gaps where a sensor has one."""

    name: str
    layout: str
    seconds: np.ndarray
    signals: np.ndarray
    channels: tuple[str, ...]
    clock: Clock
    rate: float


@dataclass(frozen=True)
class _Sensor:
    kind: str
    path: Path
    seconds: np.ndarray  # since the recording's start
    values: np.ndarray  # [samples, 3], converted
    rate: float


def _files_of(folder: Path, layout: Layout) -> dict[str, Path]:
    """The layout's file for each sensor found in `folder`."""
    stems = {path: path.stem.lower() for path in sorted(folder.iterdir())
             if path.suffix.lower() == ".csv" and path.is_file() and "uncalibrated" not in path.stem.lower()}
    found = {}
    for kind, names in layout.files.items():
        for name in names:
            exact = [path for path, stem in stems.items() if stem == name]
            matches = exact or [path for path, stem in stems.items() if name in stem]
            if len(matches) > 1:
                raise DataError(folder, f"{len(matches)} {SENSORS[kind]} files ({', '.join(p.name for p in matches)})",
                                "keep one per sensor in a recording's folder")
            if matches:
                found[kind] = matches[0]
                break
    return found


def _columns(header: list[str]) -> dict[str, str]:
    return {str(name).strip().lower(): str(name) for name in header}


def _axes(header: list[str]) -> dict[str, tuple[str, str | None]]:
    """Axis (x, y, z) → (column, unit named in it or None)."""
    axes: dict[str, tuple[str, str | None]] = {}
    for name in header:
        if (match := AXIS.fullmatch(str(name).strip())) and match.group(1).lower() not in axes:
            axes[match.group(1).lower()] = (str(name), match.group(2))
    return axes


def find_layout(folder: Path, time_column: str = "time") -> tuple[Layout, dict[str, Path]] | None:
    """The layout of a per-sensor recording folder and its files, or None if `folder` is not one: it needs an
    accelerometer file whose header has the layout's time column and x, y, z columns."""
    for layout in LAYOUTS:
        files = _files_of(folder, layout)
        if "acc" not in files:
            continue
        header = read_header(files["acc"])
        columns = _columns(header)
        if (layout.time_column or time_column).lower() in columns and len(_axes(header)) == 3 and (
                layout.marker is None or layout.marker in columns):
            return layout, files
    return None


def _unit(kind: str, path: Path, named: str | None, layout: Layout, setting: str) -> str | None:
    """The unit a sensor's values are in: the setting, else the column's name, else the layout's (None: unknown)."""
    if setting != "auto":
        return setting
    if named is None:
        return layout.units.get(kind)
    unit = UNIT_SPELLINGS.get(named.strip().lower().replace(" ", ""))
    if unit not in CONVERSIONS[kind]:
        raise DataError(path, f"unknown {SENSORS[kind]} unit {named!r} in the column names",
                        f"convert to {' or '.join(CONVERSIONS[kind])}, or set {kind}_units to the values' unit")
    return unit


def _read_sensor(kind: str, path: Path, layout: Layout, settings: SensorSettings) -> tuple[np.ndarray, Clock,
                                                                                           np.ndarray]:
    """One sensor file: its timestamps (seconds since its first), clock, and x, y, z values converted."""
    frame = read_table(path)
    header = list(frame.columns)
    time_name = layout.time_column or settings.time_column
    if time_name.lower() not in (columns := _columns(header)):
        raise DataError(path, f"column {time_name!r} not found (columns: {', '.join(map(str, header))})",
                        f"a {layout.name} {SENSORS[kind]} file has it: check the file")
    axes = _axes(header)
    if len(axes) < 3:
        raise DataError(path, f"no x, y and z columns (columns: {', '.join(map(str, header))})",
                        "name the axis columns x, y, z (or `x-axis (g)`, `X (m/s^2)`)")
    values = signal_values(frame, path, [axes[a][0] for a in "xyz"])
    unit = _unit(kind, path, axes["x"][1], layout, getattr(settings, f"{kind}_units"))
    seconds, clock = timestamps(frame[columns[time_name.lower()]], np.arange(len(frame)), path,
                                layout.time_unit or settings.time_unit)
    return seconds, clock, values * CONVERSIONS[kind].get(unit or "", 1.0)


def _sensors(folder: Path, layout: Layout, files: dict[str, Path], settings: SensorSettings
             ) -> tuple[list[_Sensor], Clock]:
    """Every sensor of a recording on one time axis (seconds since the recording's start) and where it starts."""
    read = {kind: _read_sensor(kind, path, layout, settings) for kind, path in files.items()}
    clocks = [clock for _, clock, _ in read.values()]
    if len({clock.unit for clock in clocks}) > 1:
        raise DataError(folder, "its sensor files' time columns are in different units", "export them again")
    start = min(clock.start for clock in clocks)
    sensors = []
    for kind, (seconds, clock, values) in read.items():
        seconds = seconds + (clock.start - start)
        rate = sample_rate(seconds, files[kind], f"{SENSORS[kind]} time", settings.max_gap_s)
        sensors.append(_Sensor(kind, files[kind], seconds, values, rate))
    return sensors, Clock(start, clocks[0].unit)


def _on_grid(sensor: _Sensor, first: float, samples: int, target: float, max_gap_s: float) -> np.ndarray:
    """A sensor's values on the grid first + j / target (j < samples), NaN where it has no samples."""
    out = np.full((samples, sensor.values.shape[1]), np.nan)
    breaks = np.flatnonzero(np.diff(sensor.seconds) > max_gap_s) + 1
    for a, b in zip([0, *breaks], [*breaks, len(sensor.seconds)], strict=True):
        t = sensor.seconds[a:b]
        if b - a < 2:
            continue
        lo = max(0, math.ceil((t[0] - first) * target - 1e-6))
        hi = min(samples, math.floor((t[-1] - first) * target + 1e-6) + 1)
        if hi <= lo:
            continue
        resampled = resample_uniform(t, sensor.values[a:b], sensor.rate, target, first + lo / target)[:hi - lo]
        out[lo:lo + len(resampled)] = resampled
    return out


def _merge(name: str, sensors: list[_Sensor], clock: Clock, folder: Path, layout: Layout, settings: SensorSettings
           ) -> SensorRecording:
    target = settings.rate or min(sensor.rate for sensor in sensors)
    for sensor in sensors:
        if target > MAX_UPSAMPLING * sensor.rate:
            raise DataError(sensor.path, f"target rate {target:g} Hz is over {MAX_UPSAMPLING}× this "
                            f"{SENSORS[sensor.kind]}'s {sensor.rate:g} Hz", "choose a lower rate")
    first = max(float(s.seconds[0]) for s in sensors)
    last = min(float(s.seconds[-1]) for s in sensors)
    if last <= first:
        spans = ", ".join(f"{s.path.name} {s.seconds[0]:.3f}–{s.seconds[-1]:.3f} s" for s in sensors)
        raise DataError(folder, f"its sensors have no common time span ({spans} from the recording's start)",
                        "export sensors recorded at the same time")
    samples = int((last - first) * target + 1e-6) + 1
    merged = np.hstack([_on_grid(s, first, samples, target, settings.max_gap_s) for s in sensors])
    covered = np.isfinite(merged).all(axis=1)
    cut = first - min(float(s.seconds[0]) for s in sensors), max(float(s.seconds[-1]) for s in sensors) - last
    if max(cut) > 1 / target:
        logger.warning(f"{folder}: the first {cut[0]:.2f} s and the last {cut[1]:.2f} s are left out, where not "
                       "every sensor recorded")
    channels = tuple(f"{s.kind}_{axis}" for s in sensors for axis in "xyz")
    seconds = first + np.flatnonzero(covered) / target
    return SensorRecording(name, layout.name, seconds, merged[covered], channels, clock, target)


@contextlib.contextmanager
def _unpacked(source: Path) -> Iterator[Path]:
    """A recording's folder: `source` itself, or a zip's contents (its single top folder, if that is all there is),
    with messages naming the zip's entries rather than the temporary folder."""
    if source.is_dir():
        yield source
        return
    with tempfile.TemporaryDirectory(prefix="harlab-sensors-") as tmp:
        folder = safe_extract_zip(source, Path(tmp) / "x")
        entries = [p for p in folder.iterdir() if p.name != "__MACOSX"]
        inner = entries[0] if len(entries) == 1 and entries[0].is_dir() else folder
        try:
            yield inner
        except DataError as exc:
            if not exc.path.is_relative_to(folder):
                raise
            raise DataError(source / exc.path.relative_to(folder), exc.problem, exc.fix, exc.line) from None


def is_sensor_recording(path: Path, time_column: str = "time") -> bool:
    """Whether `path` is a per-sensor recording: a zip, or a folder in one of the layouts."""
    if path.is_file():
        return path.suffix.lower() == ".zip"
    return path.is_dir() and find_layout(path, time_column) is not None


def read_sensor_recording(source: Path, settings: SensorSettings) -> SensorRecording:
    """A per-sensor recording (folder or zip) merged onto one grid (see the module docstring)."""
    with _unpacked(source) as folder:
        found = find_layout(folder, settings.time_column)
        if found is None:
            raise DataError(source, "no accelerometer file of a known layout (sensor-logger, phyphox, metawear, "
                            "generic)", "see `harlab data import --help` and the recordings docs for the layouts")
        layout, files = found
        sensors, clock = _sensors(folder, layout, files, settings)
        name = source.stem if source.is_file() else source.name
        return _merge(name, sensors, clock, source, layout, settings)


MS2_MAGNITUDES = (6.0, 14.0)  # a median magnitude in this range: gravity in m/s², not g


def gravity_magnitude(acc: np.ndarray) -> float:
    """The median magnitude of accelerometer samples [n, 3]: about 1 in g with gravity."""
    return float(np.median(np.linalg.norm(acc, axis=1))) if len(acc) else 1.0


def check_gravity(acc: np.ndarray, where: str | Path) -> None:
    """Warn in one line when the median magnitude of accelerometer samples [n, 3] in g is not about 1."""
    magnitude = gravity_magnitude(acc)
    if 0.5 <= magnitude <= 1.5:
        return
    if MS2_MAGNITUDES[0] <= magnitude <= MS2_MAGNITUDES[1]:
        hint = "it looks like m/s², not g: set acc_units to m/s2"
    elif magnitude < 0.5:
        hint = ("too little for gravity: linear acceleration (gravity removed) or another unit? Models like HAPT's "
                "need acceleration with gravity, in g")
    else:
        hint = "the unit is unknown: set acc_units"
    logger.warning(f"{where}: the accelerometer's median magnitude is {magnitude:.3g} (about 1 in g): {hint}")


def describe(recording: SensorRecording) -> str:
    """One line about a merged recording, for the import's log."""
    seconds = float(recording.seconds[-1] - recording.seconds[0])
    return (f"{recording.name}: {recording.layout} layout, {', '.join(recording.channels)}, {len(recording.seconds)} "
            f"samples at {recording.rate:g} Hz ({seconds:.0f} s)")
