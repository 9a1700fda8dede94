"""Long recordings read in blocks (harlab.data.blocks): the same signals and predictions as the whole recording
in memory, whatever the block size; errors across a block's edge are still one line naming the CSV line."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harlab.data import blocks
from harlab.data.blocks import count_rows, signal_blocks
from harlab.errors import DataError


def _jittered_recording(path: Path, seconds: float = 120.0, rate: float = 100.0) -> Path:
    rng = np.random.default_rng(3)
    t = np.sort(np.arange(0, seconds, 1 / rate) + rng.normal(0, 0.02 / rate, int(seconds * rate)))
    t -= t[0]
    frame = pd.DataFrame({"time": np.round(t * 1000, 3)})  # ms
    for i, name in enumerate(("acc_x", "acc_y", "acc_z")):
        frame[name] = np.sin(2 * np.pi * (0.5 + i) * t) + 0.1 * rng.normal(size=len(t))
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("rate", [50.0, 100.0, 33.0])
def test_blocks_join_into_the_whole_recordings_signals(tmp_path: Path, rate: float) -> None:
    path = _jittered_recording(tmp_path / "rec.csv")
    channels = ["acc_x", "acc_y", "acc_z"]
    whole = np.concatenate([b.core_samples() for b in signal_blocks(path, channels, rate, rows=10**9)])
    assert abs(len(whole) - 120 * rate) <= 2  # 2 minutes
    pieces = list(signal_blocks(path, channels, rate, rows=997, margin_s=2.0))
    assert len(pieces) > 5 and pieces[0].core[0] == 0
    assert all(p.core[0] == q.core[1] for q, p in itertools.pairwise(pieces))  # contiguous, no overlap
    joined = np.concatenate([b.core_samples() for b in pieces])
    assert joined.shape == whole.shape
    # resample_poly's line padding runs from a block's first to its last sample: only at the recording's two ends,
    # where no block has context, does the filter's edge differ
    inner = slice(int(rate), -int(rate))
    np.testing.assert_allclose(joined[inner], whole[inner], atol=1e-9)
    np.testing.assert_allclose(joined, whole, atol=1e-3)
    assert count_rows(path) == 12000


def test_predicting_a_file_block_by_block_equals_the_recording_in_memory(hapt_bundle: Path, real_data: Path,
                                                                         tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A HAPT test subject's raw experiment through the bundle's UCI HAR filters, read 2,000 rows at a time."""
    from harlab.data import hapt
    from harlab.data.recordings import recording_frame
    from harlab.deploy.predict import open_model, predict, predict_file

    recordings, activities = hapt.read_recordings(hapt.locate(real_data))
    frame = recording_frame(next(r for r in recordings if r.subject == hapt.UCI_HAR_TEST_SUBJECTS[0]),
                            dict(enumerate(activities, start=1)))
    path = tmp_path / "exp.csv"
    frame.to_csv(path, index=False)
    model = open_model(hapt_bundle)
    in_memory = predict(model, frame.drop(columns=["activity", "subject"]), smoothing="hmm")
    monkeypatch.setattr(blocks, "ROWS", 2000)
    done: list[int] = []
    from_file = predict_file(model, path, smoothing="hmm", on_rows=done.append)
    assert len(done) == -(-len(frame) // 2000) and done[-1] == len(frame)
    assert len(from_file) == len(in_memory) > 100
    probabilities = [c for c in in_memory.columns if c.startswith("p_")]
    np.testing.assert_allclose(from_file[probabilities], in_memory[probabilities], atol=1e-4)
    assert (from_file["activity"] == in_memory["activity"]).mean() > 0.99


def test_a_timestamp_going_back_at_a_blocks_edge_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "rec.csv"
    frame = pd.DataFrame({"time": np.arange(3000) / 50.0, "acc_x": 0.0})
    frame.loc[2000, "time"] = frame.loc[1990, "time"]
    frame.to_csv(path, index=False)
    with pytest.raises(DataError) as caught:
        list(signal_blocks(path, ["acc_x"], 50.0, rows=1000))
    assert str(caught.value) == (f"{path}:2002: column 'time': '39.8' goes back in time — sort the rows by time and "
                                 "drop duplicate samples")


def test_importing_a_table_chunk_by_chunk_gives_the_same_windows(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Three subjects' rows in one file, interleaved in runs of 500, read 777 rows at a time."""
    from test_recordings import example_script

    from harlab.data import recordings
    from harlab.data.recordings import ImportOptions, build_windowset

    files = example_script().make_example(tmp_path / "in", subjects=3, bout_seconds=6)
    frames = [pd.read_csv(path).assign(subject=number) for number, path in enumerate(files, start=1)]
    runs = [frame.iloc[i:i + 500] for i in range(0, max(map(len, frames)), 500) for frame in frames]
    pd.concat(runs).to_csv(tmp_path / "all.csv", index=False)
    options = ImportOptions(subject_column="subject", pipeline="uci-har", rate=50)
    whole, _ = build_windowset([tmp_path / "all.csv"], options)
    monkeypatch.setattr(recordings, "ROWS", 777)
    chunked, _ = build_windowset([tmp_path / "all.csv"], options)
    np.testing.assert_array_equal(chunked.y, whole.y)
    np.testing.assert_array_equal(chunked.subject, whole.subject)
    np.testing.assert_allclose(chunked.X, whole.X, atol=1e-5)
