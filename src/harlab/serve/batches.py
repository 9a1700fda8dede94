"""The JSON batches a client streams, parsed into per-channel samples, or refused in one line.

Two formats are read (docs/serve.md):

- harlab's own: `{"time": [seconds...], "acc_x": [...], ..., "units": {"acc": "g", "gyro": "rad/s"}}`: one time
  column and a column per model input (by the model's names), units optional (g and rad/s by default);
- the Sensor Logger app's HTTP push: `{"messageId": 0, "sessionId": ..., "deviceId": ..., "payload": [{"name":
  "totalacceleration" | "accelerometer" | "gyroscope", "time": nanoseconds, "values": {"x", "y", "z"}}, ...]}`,
  acceleration in m/s² and rotation in rad/s; other sensors in the payload are ignored.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from harlab.data.sensors import CONVERSIONS
from harlab.errors import HarlabError

FORMAT_HINT = "see the batch format in docs/serve.md"
SENSOR_LOGGER_SENSORS = {"totalacceleration": "acc", "accelerometer": "acc", "gyroscope": "gyro"}
AXES = ("x", "y", "z")


class RequestError(HarlabError):
    """A request refused with an HTTP status and one line saying what is wrong and what to send instead."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Batch:
    """Samples by channel name: each channel's times (seconds, increasing) and values, in the model's units."""

    channels: dict[str, tuple[np.ndarray, np.ndarray]]

    @property
    def samples(self) -> int:
        """The most samples any channel holds."""
        return max((len(times) for times, _ in self.channels.values()), default=0)

    @classmethod
    def table(cls, times: np.ndarray, values: np.ndarray, names: tuple[str, ...]) -> Batch:
        """A batch of `values` [n, len(names)] sampled together at `times`."""
        return cls({name: (times, values[:, i]) for i, name in enumerate(names)})


def parse_batch(body: bytes, names: tuple[str, ...]) -> Batch:
    """A request body as a batch of the stream's channels `names` (acc_x ... gyro_z for a HAPT model); a
    RequestError (400: not JSON, 422: not a batch) in one line otherwise."""
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        raise RequestError(400, f"the batch is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
                           f"send one JSON object per request — {FORMAT_HINT}") from None
    except (RecursionError, UnicodeDecodeError):
        raise RequestError(400, f"the batch is not readable JSON text; {FORMAT_HINT}") from None
    if not isinstance(data, dict):
        raise RequestError(422, f"the batch is a JSON {type(data).__name__}, not an object; {FORMAT_HINT}")
    return _sensor_logger(data, names) if "payload" in data else _harlab(data, names)


def _numbers(value: Any, field: str) -> np.ndarray:
    """A JSON list of finite numbers as floats; a one-line refusal naming `field` otherwise."""
    if not isinstance(value, list) or not value:
        raise RequestError(422, f"{field}: expected a non-empty list of numbers; {FORMAT_HINT}")
    try:
        numbers = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        numbers = None
    if numbers is None or numbers.ndim != 1:
        raise RequestError(422, f"{field}: not a flat list of numbers; {FORMAT_HINT}")
    if (bad := int((~np.isfinite(numbers)).sum())) > 0:
        raise RequestError(422, f"{field}: {bad} of {len(numbers)} values are NaN or infinite; send only finite "
                           "numbers (leave out the samples a sensor did not give)")
    return numbers


def _unit_factor(units: Any, kind: str) -> float:
    default = next(iter(CONVERSIONS[kind]))
    unit = units.get(kind, default) if isinstance(units, dict) else default
    if unit not in CONVERSIONS[kind]:
        raise RequestError(422, f"units.{kind}: {unit!r} is not one of {', '.join(CONVERSIONS[kind])}")
    return CONVERSIONS[kind][unit]


def _harlab(data: dict[str, Any], names: tuple[str, ...]) -> Batch:
    """harlab's batch: a time column (seconds) and a column per channel."""
    times = _numbers(data.get("time"), "time")
    if missing := [name for name in names if name not in data]:
        raise RequestError(422, f"the batch has no {', '.join(missing)}: the model reads {', '.join(names)} (one "
                           f"list each, as long as time); {FORMAT_HINT}")
    channels = {}
    for name in names:
        values = _numbers(data[name], name)
        if len(values) != len(times):
            raise RequestError(422, f"{name}: {len(values)} values for {len(times)} times; send one value per time")
        kind = name.split("_")[0]
        channels[name] = (times, values * (_unit_factor(data.get("units"), kind) if kind in CONVERSIONS else 1.0))
    return Batch(channels)


def _sensor_logger(data: dict[str, Any], names: tuple[str, ...]) -> Batch:
    """Sensor Logger's HTTP push: readings of several sensors, each with its own times (ns since the epoch)."""
    payload = data["payload"]
    if not isinstance(payload, list):
        raise RequestError(422, "payload: expected a list of sensor readings (Sensor Logger's HTTP push format)")
    readings: dict[str, list[tuple[float, list[Any]]]] = {}
    for number, reading in enumerate(payload):
        name = reading.get("name") if isinstance(reading, dict) else None
        if not isinstance(name, str) or name.lower() not in SENSOR_LOGGER_SENSORS:
            continue
        values, when = reading.get("values"), reading.get("time")
        if not isinstance(values, dict) or isinstance(when, bool) or not isinstance(when, int | float | str):
            raise RequestError(422, f"payload[{number}] ({name}): expected a time and values {{x, y, z}}")
        readings.setdefault(name.lower(), []).append((_nanoseconds(when, number), [values.get(a) for a in AXES]))
    if "totalacceleration" in readings:  # with gravity, as the model was trained; "accelerometer" may lack it
        readings.pop("accelerometer", None)
    channels = {}
    for sensor, rows in readings.items():
        kind = SENSOR_LOGGER_SENSORS[sensor]
        times = np.array([t for t, _ in rows]) / 1e9
        for i, axis in enumerate(AXES):
            if (name := f"{kind}_{axis}") in names:
                factor = CONVERSIONS[kind]["m/s2" if kind == "acc" else "rad/s"]
                channels[name] = (times, _numbers([v[i] for _, v in rows], f"{sensor}.{axis}") * factor)
    return Batch(channels)


def _nanoseconds(when: float | str, number: int) -> float:
    try:
        value = float(when)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise RequestError(422, f"payload[{number}].time: {when!r} is not a number of nanoseconds")
    return value
