"""Prediction on long recordings: windows, smoothing, timelines, streaming, both engines, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harlab.deploy.predict import StreamPredictor, WindowModel, open_model, predict, timeline
from harlab.errors import HarlabError

CLASSES = ("rest", "walk", "run")


def level_model(window: int = 20) -> WindowModel:
    """A stand-in model whose answer is the level of channel `a` (0, 1 or 2) at the window's middle: the timeline
    logic is then checked exactly."""

    def probabilities(X: np.ndarray) -> np.ndarray:
        level = np.clip(np.rint(X[:, window // 2, 0]), 0, 2).astype(int)
        out = np.full((len(X), 3), 0.1)
        out[np.arange(len(X)), level] = 0.8
        return out

    return WindowModel("test", ("a", "b"), CLASSES, window, 10.0, {"pipeline": "none"}, probabilities)


def recording(levels: list[tuple[int, int]], rate: float = 10.0) -> pd.DataFrame:
    """Samples of consecutive activities (level, samples), a time column in seconds."""
    a = np.concatenate([np.full(n, float(level)) for level, n in levels])
    return pd.DataFrame({"time": np.arange(len(a)) / rate, "a": a, "b": np.zeros(len(a))})


def test_a_multi_activity_recording_gives_the_expected_timeline() -> None:
    frame = recording([(0, 200), (1, 300), (2, 100), (0, 200)])
    windows = predict(level_model(), frame, step=10)
    segments = timeline(windows)
    assert segments["activity"].tolist() == ["rest", "walk", "run", "rest"]
    # a window takes the activity at its middle; boundaries land within one step of the truth
    np.testing.assert_allclose(segments["start"].tolist()[1:], [20, 50, 60], atol=1.0)
    assert segments["end"].iloc[-1] == pytest.approx(80.0) and (segments["confidence"] > 0.7).all()
    assert windows.columns.tolist()[:4] == ["start", "end", "activity", "confidence"]


def test_smoothing_removes_a_one_window_blip() -> None:
    frame = recording([(0, 200), (2, 20), (0, 200)])
    assert "run" in set(timeline(predict(level_model(), frame, step=20))["activity"])
    assert set(timeline(predict(level_model(), frame, step=20, smoothing=5))["activity"]) == {"rest"}


def test_the_stream_emits_one_prediction_per_completed_window_like_the_offline_path() -> None:
    frame = recording([(0, 100), (1, 100), (2, 57)])
    model = level_model()
    offline = predict(model, frame, step=10)
    stream = StreamPredictor(model, ("a", "b"), step=10)
    values = frame[["a", "b"]].to_numpy()
    emitted = [p for chunk in np.array_split(values, 37) for p in stream.push(chunk)]  # uneven chunks
    assert len(emitted) == len(offline)
    assert [p.activity for p in emitted] == offline["activity"].tolist()
    assert [p.first_sample for p in emitted] == (offline["start"] * 10).round().astype(int).tolist()


@pytest.mark.parametrize(("change", "message"), [
    ("columns", "missing column"), ("short", "fewer than one window"), ("nan", "column a has a missing"),
    ("rate", "the recording is at 20 Hz, the model at 10 Hz")])
def test_bad_recordings_fail_with_one_line(change: str, message: str) -> None:
    frame = recording([(0, 100)])
    if change == "columns":
        frame = frame.rename(columns={"b": "gyro"})
    elif change == "short":
        frame = frame.iloc[:15]
    elif change == "nan":
        frame.loc[40, "a"] = np.nan
    else:
        frame["time"] /= 2
    with pytest.raises(HarlabError, match=message) as error:
        predict(level_model(), frame)
    assert "\n" not in str(error.value)


def test_a_non_model_path_is_refused(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(HarlabError, match=r"not a bundle folder or an \.onnx file"):
        open_model(tmp_path / "x.txt")


def test_predicting_the_test_windows_reproduces_the_recorded_accuracy(hapt_bundle: Path, real_data: Path,
                                                                     tmp_path: Path) -> None:
    from harlab.data.datasets import load_dataset
    from harlab.deploy.bundle import load_bundle
    from harlab.deploy.onnx_export import export_onnx

    _, test = load_dataset("hapt", real_data, quiet=True).split()
    recorded = load_bundle(hapt_bundle).manifest["metrics"]["accuracy"]
    onnx_path = export_onnx(load_bundle(hapt_bundle), tmp_path / "cnn.onnx")
    for source in (hapt_bundle, onnx_path):
        model = open_model(source)
        predicted = np.concatenate([model.probabilities(test.X[i:i + 512]) for i in range(0, len(test), 512)])
        assert np.mean(predicted.argmax(1) == test.y) == pytest.approx(recorded, abs=1e-3)


def test_a_real_long_recording_gets_a_timeline_that_agrees_with_its_labels(hapt_bundle: Path,
                                                                          real_data: Path) -> None:
    """A test subject's whole HAPT experiment, raw acc/gyro as a user has it, through the UCI HAR filters."""
    from harlab.data import hapt
    from harlab.data.recordings import recording_frame
    from harlab.deploy.predict import timeline_agreement

    recordings, activities = hapt.read_recordings(hapt.locate(real_data))
    recording = next(r for r in recordings if r.subject == hapt.UCI_HAR_TEST_SUBJECTS[0])
    frame = recording_frame(recording, dict(enumerate(activities, start=1)))
    model = open_model(hapt_bundle)
    segments = timeline(predict(model, frame.drop(columns=["activity", "subject"]), smoothing=5))
    agreement, compared = timeline_agreement(segments, frame["activity"].to_numpy(dtype=str), 50.0, model.classes)
    assert compared > 0.5 * len(frame) and agreement > 0.75
    assert 3 <= segments["activity"].nunique() <= 6 and segments["end"].iloc[-1] <= len(frame) / 50 + 1e-9


def test_harlab_predict_reads_a_recording_file_at_another_rate(hapt_bundle: Path, real_data: Path,
                                                               tmp_path: Path) -> None:
    """The same HAPT experiment as a 100 Hz file with millisecond timestamps: resampled to the model's 50 Hz."""
    from typer.testing import CliRunner

    from harlab.cli import app
    from harlab.data import hapt
    from harlab.data.recordings import recording_frame
    from harlab.deploy.predict import timeline_agreement

    recordings, activities = hapt.read_recordings(hapt.locate(real_data))
    frame = recording_frame(next(r for r in recordings if r.subject == hapt.UCI_HAR_TEST_SUBJECTS[1]),
                            dict(enumerate(activities, start=1)))
    fast = pd.DataFrame({"time": np.arange(2 * len(frame) - 1) * 10})  # ms at 100 Hz
    for column in hapt.CHANNELS:
        fast[column] = np.interp(fast["time"] / 1000, frame["time"], frame[column])
    path = tmp_path / "walk.csv"
    fast.to_csv(path, index=False)
    result = CliRunner().invoke(app, ["predict", str(hapt_bundle), str(path), "--out", str(tmp_path / "tl.csv"),
                                      "--plot", str(tmp_path / "tl.png"), "--windows", str(tmp_path / "w.csv")])
    assert result.exit_code == 0, result.output
    segments = pd.read_csv(tmp_path / "tl.csv")
    assert segments.columns.tolist() == ["start", "end", "activity", "confidence", "windows"]
    assert segments["end"].iloc[-1] == pytest.approx(frame["time"].iloc[-1], abs=2.6)
    agreement, _ = timeline_agreement(segments, frame["activity"].to_numpy(dtype=str), 50.0,
                                      tuple(activities[:6]))
    assert agreement > 0.75
    assert (tmp_path / "tl.png").read_bytes()[:4] == b"\x89PNG" and len(pd.read_csv(tmp_path / "w.csv")) > 100


def test_a_recording_too_slow_to_resample_is_one_line(hapt_bundle: Path, tmp_path: Path) -> None:
    from harlab.data import hapt
    from harlab.deploy.predict import read_model_input

    slow = pd.DataFrame({"time": np.arange(400) / 2.0, **{c: np.zeros(400) for c in hapt.CHANNELS}})  # 2 Hz
    slow.to_csv(tmp_path / "slow.csv", index=False)
    with pytest.raises(HarlabError, match="over 10× the recording's 2 Hz") as error:
        read_model_input(open_model(hapt_bundle), tmp_path / "slow.csv")
    assert "slow.csv" in str(error.value) and "\n" not in str(error.value)
