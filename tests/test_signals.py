"""The UCI HAR signal pipeline on synthetic recordings with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from harlab.data.signals import Recording, Segment, UciHarPipeline, butter_lowpass, median_filter, window_starts
from harlab.errors import HarlabError


def test_window_starts() -> None:
    assert window_starts(256, 128, 64).tolist() == [0, 64, 128]
    assert window_starts(255, 128, 64).tolist() == [0, 64]
    assert window_starts(127, 128, 64).tolist() == []


def test_median_filter_removes_spikes() -> None:
    x = np.zeros((50, 2))
    x[10, 0] = 100.0
    assert np.abs(median_filter(x, 3)).max() == 0


def test_lowpass_keeps_slow_and_removes_fast() -> None:
    t = np.arange(5000) / 50
    slow, fast = np.sin(2 * np.pi * 1 * t), np.sin(2 * np.pi * 23 * t)
    out = butter_lowpass((slow + fast)[:, None], 20, 50)[:, 0]
    inner = slice(200, -200)
    assert np.abs(out[inner] - slow[inner]).max() < 0.1  # zero-phase: no lag on the slow part
    with pytest.raises(HarlabError, match="Nyquist"):
        butter_lowpass(slow[:, None], 30, 50)


def make_recording(n: int = 3000, fs: float = 50.0) -> Recording:
    t = np.arange(n) / fs
    gravity = np.array([0.0, 0.0, 1.0])
    motion = 0.5 * np.sin(2 * np.pi * 2 * t)[:, None] * np.array([1.0, 0.0, 0.0])
    gyro = 0.2 * np.cos(2 * np.pi * 1.5 * t)[:, None] * np.ones(3)
    signals = np.hstack([gravity + motion, gyro])
    segments = [Segment(0, 1000, 1), Segment(1000, 1100, 2), Segment(1200, 3000, 3)]
    return Recording(signals, ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"), fs, segments, subject=7,
                     accelerometer=(0, 1, 2))


def test_pipeline_channels_gravity_and_segments() -> None:
    rec = make_recording()
    pipeline = UciHarPipeline()
    X, y, names = pipeline.windows(rec)
    assert names == ("total_acc_x", "total_acc_y", "total_acc_z", "body_acc_x", "body_acc_y", "body_acc_z",
                     "body_gyro_x", "body_gyro_y", "body_gyro_z")
    # segment of 1000 → 14 windows, of 100 → none, of 1800 → 27; never across a boundary
    assert len(y) == 14 + 27 and y.tolist() == [1] * 14 + [3] * 27
    assert X.dtype == np.float32 and X.shape == (41, 128, 9)
    filtered, _ = pipeline.filter(rec)
    mid = slice(500, 2500)
    gravity = filtered[mid, 0:3] - filtered[mid, 3:6]
    np.testing.assert_allclose(gravity.mean(axis=0), [0, 0, 1], atol=0.02)
    assert np.abs(filtered[mid, 3] - rec.signals[mid, 0] + 0).std() > 0  # body differs from total
    np.testing.assert_allclose(filtered[mid, 3], 0.5 * np.sin(2 * np.pi * 2 * np.arange(3000)[mid] / 50), atol=0.03)
    # second window starts `step` samples after the first
    np.testing.assert_array_equal(X[1, :64], X[0, 64:])


def test_pipeline_any_rate_and_label_filter() -> None:
    rec = make_recording(fs=100.0)
    X, y, _ = UciHarPipeline(window=100, step=50, noise_cutoff_hz=40).windows(rec, labels={3})
    assert set(y.tolist()) == {3} and X.shape[1] == 100
    rec.segments.append(Segment(2900, 3100, 2))
    with pytest.raises(HarlabError, match="outside the recording"):
        UciHarPipeline().windows(rec)
