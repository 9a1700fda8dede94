"""Live streams: samples arriving in batches, each channel at its own times, linearly interpolated onto the model's
uniform grid and predicted window by window with the streaming predictor (harlab.deploy.predict.StreamPredictor).

A stream's clock is its client's (seconds): the page shows times since the stream's first grid sample. A step
longer than `max_gap_s` between a channel's samples restarts the grid and the predictor there (the timeline keeps
what came before). Everything a stream keeps is bounded: the samples awaiting the grid, the last seconds of signals
shown, and the last MAX_WINDOWS windows.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harlab.deploy.predict import Smoothing, StreamPredictor, WindowModel
from harlab.serve.batches import Batch, RequestError

MAX_WINDOWS = 10_000  # about 3.5 hours at 1.28 s a window
MAX_PENDING_S = 30.0  # a channel's samples kept while another channel lags
DISPLAY_S = 20.0  # seconds of signals a page is sent when it connects
DISPLAY_RATE = 25.0  # signals are sent to pages at about this rate
STREAM_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")


def stream_channels(model: WindowModel) -> tuple[str, ...]:
    """The channels a stream gives the model: the raw acc/gyro axes its pipeline starts from, else its own."""
    return model.raw_channels() or model.channels


@dataclass
class GridSamples:
    """Samples on the grid: `values` [n, channels] from grid index `first` of a run starting at `origin` (s on the
    client's clock); `restarted` when this run began in this batch (after a gap, or the first samples)."""

    origin: float
    first: int
    values: np.ndarray
    restarted: bool


class GridResampler:
    """Each channel's samples at its own times → samples of all channels on one grid at `rate` Hz, from the latest
    first sample of any channel, up to the earliest last sample (linear interpolation)."""

    def __init__(self, names: tuple[str, ...], rate: float, max_gap_s: float):
        self.names, self.rate, self.max_gap_s = names, rate, max_gap_s
        self.max_pending = int(MAX_PENDING_S * 1000)  # samples of a channel at up to 1 kHz
        self.ignored = 0
        self._reset()

    def _reset(self) -> None:
        self.times = {name: np.empty(0) for name in self.names}
        self.values = {name: np.empty(0) for name in self.names}
        self.origin: float | None = None
        self.next_index = 0

    def add(self, batch: Batch) -> GridSamples | None:
        """Take a batch's samples; the grid samples they complete (None: none yet)."""
        new = {name: self._newer(name, *batch.channels[name]) for name in self.names if name in batch.channels}
        resumes = {name: self._gap_end(name, t) for name, (t, _) in new.items()}
        restarted = self.origin is None or any(at is not None for at in resumes.values())
        if any(at is not None for at in resumes.values()):  # each channel from where it resumed
            self._reset()
            new = {name: (t[t >= (resumes[name] or -np.inf)], v[t >= (resumes[name] or -np.inf)])
                   for name, (t, v) in new.items()}
        for name, (t, v) in new.items():
            self.times[name] = np.concatenate([self.times[name], t])[-self.max_pending:]
            self.values[name] = np.concatenate([self.values[name], v])[-self.max_pending:]
        if self.origin is None:
            if any(len(t) == 0 for t in self.times.values()):
                return None
            self.origin = max(float(t[0]) for t in self.times.values())
        return self._grid(restarted)

    def _newer(self, name: str, times: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A channel's samples in time order, without those at or before the last one taken (repeats)."""
        order = np.argsort(times, kind="stable")
        times, values = times[order], values[order]
        keep = np.concatenate([[True], np.diff(times) > 0])
        if len(self.times[name]):
            keep &= times > self.times[name][-1]
        self.ignored += int((~keep).sum())
        return times[keep], values[keep]

    def _gap_end(self, name: str, times: np.ndarray) -> float | None:
        """Where the last step longer than max_gap_s among a channel's samples ends (None: no such step)."""
        steps = np.diff(np.concatenate([self.times[name][-1:], times]))
        gaps = np.flatnonzero(steps > self.max_gap_s)
        return float(times[gaps[-1] + 1 - len(self.times[name][-1:])]) if len(gaps) else None

    def _grid(self, restarted: bool) -> GridSamples | None:
        assert self.origin is not None
        end = min(float(t[-1]) for t in self.times.values())
        last = int(np.floor((end - self.origin) * self.rate + 1e-6))
        if last < self.next_index:
            return None
        grid = self.origin + np.arange(self.next_index, last + 1) / self.rate
        values = np.column_stack([np.interp(grid, self.times[n], self.values[n]) for n in self.names])
        first, self.next_index = self.next_index, last + 1
        following = self.origin + self.next_index / self.rate
        for name in self.names:  # keep the sample before the next grid time: it interpolates that
            keep = max(0, int(np.searchsorted(self.times[name], following, side="right")) - 1)
            self.times[name], self.values[name] = self.times[name][keep:], self.values[name][keep:]
        return GridSamples(self.origin, first, values, restarted)


@dataclass
class LiveStream:
    """One client's stream: its grid, its predictor, the windows predicted so far and its latest signals."""

    name: str
    model: WindowModel
    smoothing: Smoothing
    max_gap_s: float = 0.5
    windows: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=MAX_WINDOWS))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.channels = stream_channels(self.model)
        self.resampler = GridResampler(self.channels, self.model.sampling_rate, self.max_gap_s)
        self.predictor = StreamPredictor(self.model, self.channels, smoothing=self.smoothing)
        self.stride = max(1, round(self.model.sampling_rate / DISPLAY_RATE))
        self.signals: deque[tuple[float, list[float]]] = deque(maxlen=int(DISPLAY_S * DISPLAY_RATE) + 1)
        self.start: float | None = None  # the client-clock time of the stream's first grid sample
        self.samples, self.updated, self.status = 0, time.time(), "waiting for samples"

    def add(self, batch: Batch) -> list[dict[str, Any]]:
        """Take a batch; the events it makes for the pages watching: new signals, then each completed window."""
        with self.lock:
            self.updated = time.time()
            grid = self.resampler.add(batch)
            if grid is None:
                missing = [n for n in self.channels if not len(self.resampler.times[n])]
                self.status = f"waiting for {', '.join(missing)}" if missing else self.status
                return []
            if grid.restarted:
                self.predictor = StreamPredictor(self.model, self.channels, smoothing=self.smoothing)
                self.start = grid.origin if self.start is None else self.start
            self.samples += len(grid.values)
            self.status = "streaming"
            return [self._signals(grid), *self._windows(grid)]

    def _signals(self, grid: GridSamples) -> dict[str, Any]:
        assert self.start is not None
        rate = self.model.sampling_rate
        offset = grid.origin - self.start
        picked = [i for i in range(len(grid.values)) if (grid.first + i) % self.stride == 0]
        rows = [(round(offset + (grid.first + i) / rate, 3), np.round(grid.values[i], 4).tolist()) for i in picked]
        self.signals.extend(rows)
        return {"type": "signals", "times": [t for t, _ in rows], "values": [v for _, v in rows]}

    def _windows(self, grid: GridSamples) -> list[dict[str, Any]]:
        assert self.start is not None
        rate, offset = self.model.sampling_rate, grid.origin - self.start
        events = []
        for prediction in self.predictor.push(grid.values):
            window = {"type": "window", "start": round(offset + prediction.first_sample / rate, 3),
                      "end": round(offset + (prediction.last_sample + 1) / rate, 3),
                      "activity": prediction.activity, "confidence": round(prediction.confidence, 4)}
            self.windows.append(window)  # kept without the probabilities: a long stream keeps thousands
            events.append({**window, "probabilities": np.round(prediction.probabilities, 4).tolist()})
        return events

    def snapshot(self) -> dict[str, Any]:
        """What a page needs when it starts watching: every window kept, the last seconds of signals, the status."""
        with self.lock:
            return {"type": "snapshot", "stream": self.name, "channels": list(self.channels),
                    "classes": list(self.model.classes), "status": self.status, "windows": list(self.windows),
                    "times": [t for t, _ in self.signals], "values": [v for _, v in self.signals]}

    def summary(self) -> dict[str, Any]:
        """One line of the stream list: name, grid samples, windows, latest activity, seconds since its last batch,
        and the channel samples left out (repeated or late)."""
        latest = self.windows[-1] if self.windows else None
        return {"name": self.name, "samples": self.samples, "ignored": self.resampler.ignored,
                "windows": len(self.windows), "status": self.status,
                "activity": latest and latest["activity"], "idle_s": round(time.time() - self.updated, 1)}


class Streams:
    """The live streams by name: at most `limit` at once; a new one replaces the longest idle, if idle for
    `idle_s`."""

    def __init__(self, model: WindowModel, smoothing: Smoothing, limit: int = 32, idle_s: float = 300.0):
        self.model, self.smoothing, self.limit, self.idle_s = model, smoothing, limit, idle_s
        self.streams: dict[str, LiveStream] = {}
        self.lock = threading.Lock()

    def get(self, name: str) -> LiveStream:
        """The stream `name`, started on its first batch; a RequestError for a bad name or too many streams."""
        if not STREAM_NAME.fullmatch(name):
            raise RequestError(400, f"stream={name[:80]!r}: name a stream with 1 to 64 letters, digits, '.', '_' "
                               "or '-'")
        with self.lock:
            if name not in self.streams:
                self._make_room()
                self.streams[name] = LiveStream(name, self.model, self.smoothing)
            return self.streams[name]

    def _make_room(self) -> None:
        if len(self.streams) < self.limit:
            return
        idlest = min(self.streams.values(), key=lambda s: s.updated)
        if time.time() - idlest.updated < self.idle_s:
            raise RequestError(429, f"{self.limit} streams are live (the limit); stop one, or wait until one has "
                               f"been idle for {self.idle_s:g} s")
        del self.streams[idlest.name]

    def find(self, name: str) -> LiveStream:
        """An existing stream; a 404 RequestError otherwise."""
        with self.lock:
            if name not in self.streams:
                raise RequestError(404, f"no live stream {name[:80]!r}; streams: "
                                   f"{', '.join(self.streams) or 'none yet'}")
            return self.streams[name]

    def summaries(self) -> list[dict[str, Any]]:
        with self.lock:
            streams = list(self.streams.values())
        return [s.summary() for s in streams]

