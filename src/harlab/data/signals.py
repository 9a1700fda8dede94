"""The UCI HAR signal pipeline as a reusable transform, for any sampling rate and any channels.

UCI HAR turned continuous smartphone recordings into windows like this: a median filter (size 3) and a
3rd-order Butterworth low-pass at 20 Hz on every signal (zero-phase), gravity split off the acceleration
with a 0.3 Hz Butterworth low-pass (body = total − gravity), then windows of 128 samples with 50 %
overlap inside each labelled segment, never across two.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
from scipy import ndimage, signal

from harlab.errors import HarlabError
from harlab.limits import MEMORY


@dataclass(frozen=True)
class Segment:
    """A labelled stretch of a recording: samples `start` to `stop` (exclusive) carry `label`."""

    start: int
    stop: int
    label: int


@dataclass
class Recording:
    """One continuous recording: signals [samples, channels] at `sampling_rate` Hz, with labelled segments."""

    signals: np.ndarray
    channels: tuple[str, ...]
    sampling_rate: float
    segments: list[Segment]
    subject: int
    session: int = 0
    accelerometer: tuple[int, ...] = field(default=())  # channel indices that carry gravity


def median_filter(x: np.ndarray, size: int) -> np.ndarray:
    """Median filter along time (axis 0) of a [samples, channels] array; edges repeat the end value."""
    if size <= 1:
        return x
    return ndimage.median_filter(x, size=(size, 1), mode="nearest")


def butter_lowpass(x: np.ndarray, cutoff_hz: float, sampling_rate: float, order: int = 3) -> np.ndarray:
    """Zero-phase Butterworth low-pass along time (axis 0)."""
    nyquist = sampling_rate / 2
    if not 0 < cutoff_hz < nyquist:
        raise HarlabError(f"low-pass cutoff {cutoff_hz} Hz must lie between 0 and the Nyquist frequency "
                          f"{nyquist} Hz of a {sampling_rate} Hz signal; lower the cutoff")
    sos = signal.butter(order, cutoff_hz, btype="low", fs=sampling_rate, output="sos")
    return signal.sosfiltfilt(sos, x, axis=0)


MAX_UPSAMPLING = 10  # a target rate at most this many times a recording's own: more invents nothing but noise


def rate_ratio(target: float, source: float) -> tuple[int, int]:
    """(up, down): the ratio target/source as a fraction with a denominator ≤ 1000, as resample_poly takes it."""
    ratio = Fraction(target / source).limit_denominator(1000)
    return ratio.numerator, ratio.denominator


def resample_uniform(t: np.ndarray, x: np.ndarray, source: float, target: float, start: float) -> np.ndarray:
    """Samples `x` [n, channels] taken at times `t` (near `source` Hz) at `target` Hz from `start` (≥ t[0]): sample
    j at start + j / target. np.interp onto a uniform grid near the source rate, then `scipy.signal.resample_poly`
    by up/down, the ratio target/source with a denominator ≤ 1000 (its low-pass anti-aliases a downsampling)."""
    up, down = rate_ratio(target, source)
    grid_rate = target * down / up
    grid = start + np.arange(int((t[-1] - start) * grid_rate + 1e-6) + 1) / grid_rate
    x = np.column_stack([np.interp(grid, t, column) for column in x.T])
    return signal.resample_poly(x, up, down, axis=0, padtype="line") if up != down else x


def window_count(n_samples: int, length: int, step: int) -> int:
    """How many full windows of `length` samples, `step` apart, fit in `n_samples` (as `window_starts` cuts them)."""
    return max(0, (n_samples - length) // step + 1)


def check_window_memory(count: int, window: int, channels: int, step: int) -> None:
    """Refuse, before any is cut, `count` windows (float32) that would take more memory than the MEMORY limit."""
    MEMORY.check(count * window * channels * np.dtype(np.float32).itemsize,
                 f"windows of {window} samples every {step} ({count:,} windows × {channels} channels)",
                 "raise the `step` setting or lower the `window` setting")


def window_starts(n_samples: int, length: int, step: int) -> np.ndarray:
    """Start indices of the full windows of `length` samples, `step` apart, that fit in `n_samples`."""
    if n_samples < length:
        return np.empty(0, dtype=np.int64)
    return np.arange(0, n_samples - length + 1, step, dtype=np.int64)


@dataclass(frozen=True)
class UciHarPipeline:
    """Denoise, split gravity and cut windows inside labelled segments, as UCI HAR did.

    Output channels: every input channel denoised (`total_` for accelerometer channels, `body_` for
    the others, as UCI HAR names gyroscope signals), then the body part of each accelerometer channel.
    For HAPT (acc xyz, gyro xyz) that is UCI HAR's tutorial order: total_acc, body_acc, body_gyro.
    """

    window: int = 128
    step: int = 64
    median_size: int = 3
    noise_cutoff_hz: float | None = 20.0
    gravity_cutoff_hz: float | None = 0.3
    order: int = 3

    def output_channels(self, n_channels: int, n_accelerometer: int) -> int:
        """How many channels `filter` gives for a recording of `n_channels`, `n_accelerometer` of them acceleration."""
        return n_channels + (n_accelerometer if self.gravity_cutoff_hz is not None else 0)

    def check_size(self, recordings: Sequence[Recording], labels: set[int] | None = None) -> None:
        """Refuse, before anything is filtered, recordings whose `windows` (of segments with `labels`, all when
        None) would together take more memory than the MEMORY limit."""
        count = sum(window_count(seg.stop - seg.start, self.window, self.step) for rec in recordings
                    for seg in rec.segments if labels is None or seg.label in labels)
        channels = max((self.output_channels(len(r.channels), len(r.accelerometer)) for r in recordings), default=0)
        check_window_memory(count, self.window, channels, self.step)

    def filter(self, rec: Recording) -> tuple[np.ndarray, tuple[str, ...]]:
        """Filtered signals [samples, out channels] of a whole recording, and their names."""
        x = median_filter(np.asarray(rec.signals, dtype=np.float64), self.median_size)
        if self.noise_cutoff_hz is not None:
            x = butter_lowpass(x, self.noise_cutoff_hz, rec.sampling_rate, self.order)
        acc = list(rec.accelerometer)
        others = [i for i in range(x.shape[1]) if i not in acc]
        parts = [x[:, acc]]
        names = [f"total_{rec.channels[i]}" for i in acc]
        if acc and self.gravity_cutoff_hz is not None:
            gravity = butter_lowpass(x[:, acc], self.gravity_cutoff_hz, rec.sampling_rate, self.order)
            parts.append(x[:, acc] - gravity)
            names += [f"body_{rec.channels[i]}" for i in acc]
        parts.append(x[:, others])
        names += [f"body_{rec.channels[i]}" for i in others]
        return np.concatenate(parts, axis=1), tuple(names)

    def windows(self, rec: Recording, labels: set[int] | None = None) -> tuple[np.ndarray, np.ndarray,
                                                                            tuple[str, ...]]:
        """Windows [n, window, channels] (float32) and their labels, from segments whose label is in
        `labels` (all when None); windows never cross a segment boundary."""
        n = len(rec.signals)
        if bad := [seg for seg in rec.segments if not 0 <= seg.start <= seg.stop <= n]:
            raise HarlabError(f"subject {rec.subject} session {rec.session}: segment {bad[0]} lies outside "
                              f"the recording's {n} samples; fix the segment bounds")
        filtered, names = self.filter(rec)
        chunks, ys = [], []
        for seg in rec.segments:
            if labels is not None and seg.label not in labels:
                continue
            starts = seg.start + window_starts(seg.stop - seg.start, self.window, self.step)
            if len(starts):
                idx = starts[:, None] + np.arange(self.window)[None, :]
                chunks.append(filtered[idx].astype(np.float32))
                ys.append(np.full(len(starts), seg.label, dtype=np.int64))
        if not chunks:
            return (np.empty((0, self.window, len(names)), np.float32), np.empty(0, np.int64), names)
        return np.concatenate(chunks), np.concatenate(ys), names
