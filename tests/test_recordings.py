"""Users' own recordings (CSV/Parquet) imported as a harlab dataset, checked against HAPT's built-in windows."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import REPO
from typer.testing import CliRunner

from harlab.api import run_training
from harlab.cli import app
from harlab.data import hapt
from harlab.data.datasets import load_dataset
from harlab.data.recordings import ImportOptions, export_recordings, import_recordings, load_recordings_dataset
from harlab.data.signals import UciHarPipeline
from harlab.data.windowset import load_windowset, save_windowset
from harlab.errors import HarlabError
from harlab.experiments.spec import ExperimentSpec
from harlab.training.settings import RepeatConfig

RATE = 50.0


def example_script():
    spec = importlib.util.spec_from_file_location("make_example_recording", REPO / "scripts/make_example_recording.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write(path: Path, seconds: np.ndarray, labels: list[str] | np.ndarray, time: object = None,
          extra: dict[str, object] | None = None) -> Path:
    """A recording with a `clock` channel (its own time in s, to see where windows come from), a 3 Hz sine
    `sine` and an `acc_x` channel, and the given labels."""
    frame = pd.DataFrame({"time": seconds if time is None else time, "clock": seconds,
                          "sine": np.sin(2 * np.pi * 3.0 * seconds), "acc_x": 1 + 0.01 * np.cos(seconds),
                          "activity": labels, **(extra or {})})
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False)
    return path


def blocks(n: int, size: int, names: tuple[str, ...] = ("sit", "walk")) -> np.ndarray:
    return np.array([names[(i // size) % len(names)] for i in range(n)], dtype=object)


def seconds(n: int, rate: float = RATE) -> np.ndarray:
    return np.arange(n) / rate


def load(tmp_path: Path, files: list[Path], **options: object):
    return import_recordings(files, ImportOptions(**options), tmp_path / "dataset")


def peak_hz(ws) -> float:
    spectrum = np.abs(np.fft.rfft(ws.X[:, :, ws.channels.index("sine")], axis=1)).mean(axis=0)
    return float(np.fft.rfftfreq(ws.window, 1 / ws.sampling_rate)[np.argmax(spectrum)])


def test_generated_recordings_end_to_end(tmp_path: Path) -> None:
    files = example_script().make_example(tmp_path / "in", subjects=3, bout_seconds=8)
    folder = tmp_path / "dataset"
    ws = import_recordings(files, ImportOptions(pipeline="uci-har", rate=50), folder)
    assert set(ws.classes) == {"walking", "sitting", "standing", "laying"}
    assert ws.X.dtype == np.float32 and ws.y.dtype == np.int64 and ws.X.shape[1:] == (128, 9)
    assert ws.channels[:3] == ("total_acc_x", "total_acc_y", "total_acc_z")
    assert sorted(set(ws.subject.tolist())) == [1, 2, 3] and len(ws.test_subjects) == 1
    loaded = load_dataset(str(folder))
    np.testing.assert_array_equal(loaded.X, ws.X)
    assert loaded.provenance == ws.provenance and loaded.provenance.dataset == "recordings"
    assert loaded.provenance.options["pipeline"] == "uci-har"
    config = RepeatConfig(model="cnn", epochs=1, batch_size=64, repeats=1)
    results = run_training(ExperimentSpec(name="test", **config.model_dump()), loaded, tmp_path / "r")
    rows = results.store.rows()
    assert results.analysis().configurations[0].summary.runs == 1 and 0 <= rows[0]["accuracy"] <= 1
    assert results.store.dataset()["n_test"] == int(np.isin(ws.subject, ws.test_subjects).sum())


def test_cli_import_with_yaml_config(tmp_path: Path) -> None:
    n = 1000
    files = [write(tmp_path / f"in/{s}.csv", seconds(n), blocks(n, 250), extra={"who": s}) for s in ("ann", "bob")]
    config = tmp_path / "import.yaml"
    config.write_text("subject_column: who\nwindow: 50\nstep: 25\nchannels: [sine, acc_x]\ntest_subjects: [2]\n")
    result = CliRunner().invoke(app, ["data", "import", *map(str, files), "--out", str(tmp_path / "ds"),
                                      "--config", str(config), "--step", "50"])
    assert result.exit_code == 0, result.output
    assert "test subjects: 2" in result.output and "sit: " in result.output
    ws = load_recordings_dataset(tmp_path / "ds")
    assert ws.channels == ("sine", "acc_x") and ws.window == 50 and ws.step == 50 and ws.test_subjects == (2,)
    assert len(ws) == 2 * (n // 50)  # string subjects ann, bob are numbered 1, 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("windw: 50\n")
    with pytest.raises(HarlabError, match=r"bad\.yaml: option windw"):
        ImportOptions.from_yaml(bad)


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns", "iso"])
def test_timestamp_units(tmp_path: Path, unit: str) -> None:
    n = 600
    t = seconds(n) + 1_700_000_000  # an epoch in seconds
    time = {"s": t, "ms": np.round(t * 1e3).astype(np.int64), "us": np.round(t * 1e6).astype(np.int64),
            "ns": np.round(t * 1e9).astype(np.int64),
            "iso": (pd.Timestamp("2024-05-01T12:00:00") + pd.to_timedelta(seconds(n), unit="s")).strftime(
                "%Y-%m-%dT%H:%M:%S.%f")}[unit]
    ws = load(tmp_path, [write(tmp_path / "a.csv", seconds(n), blocks(n, 300), time=time)], window=100, step=100)
    assert ws.sampling_rate == RATE and ws.provenance.note == ""
    # one subject: split in time at sample 480, so 4 training windows and one test window from the cut
    np.testing.assert_allclose(ws.X[:, 0, ws.channels.index("clock")], [0, 2, 4, 6, 9.6], atol=1e-6)


def test_resampling_100_to_50_hz_keeps_the_frequency(tmp_path: Path) -> None:
    n = 3000
    path = write(tmp_path / "a.csv", seconds(n, 100.0), blocks(n, 1500))
    native = import_recordings([path], ImportOptions(window=100), tmp_path / "native")
    assert native.sampling_rate == 100.0 and peak_hz(native) == pytest.approx(3.0)
    ws = load(tmp_path, [path], rate=50, window=100)
    assert ws.sampling_rate == 50.0 and "1 stretch(es) resampled" in ws.provenance.note
    assert peak_hz(ws) == pytest.approx(3.0)
    clock = ws.X[:, :, ws.channels.index("clock")]
    np.testing.assert_allclose(np.diff(clock, axis=1), 1 / 50, atol=1e-4)  # samples 20 ms apart
    assert len(ws) == 2 * ((750 - 100) // 50 + 1)  # 15 s per label = 750 samples at 50 Hz


def test_jittered_timestamps_land_on_a_uniform_grid(tmp_path: Path) -> None:
    n = 3000
    rng = np.random.default_rng(0)
    t = seconds(n) + rng.uniform(-0.004, 0.004, n)  # ±20 % of a step
    ws = load(tmp_path, [write(tmp_path / "a.csv", t, blocks(n, 1500))], window=100)
    assert ws.sampling_rate == RATE and "resampled" in ws.provenance.note
    np.testing.assert_allclose(np.diff(ws.X[:, :, ws.channels.index("clock")], axis=1), 0.02, atol=2e-3)
    assert peak_hz(ws) == pytest.approx(3.0)


def test_gaps_split_stretches(tmp_path: Path) -> None:
    t = np.concatenate([seconds(1000), 30 + seconds(1000)])  # a 10 s gap after 20 s
    files = [write(tmp_path / f"{name}.csv", t, blocks(2000, 500)) for name in "ab"]  # two subjects: no time split
    both = load(tmp_path, files, window=64, step=32, max_gap_s=1.0)
    ws = both.select(both.subject == 1)
    clock = ws.X[:, :, ws.channels.index("clock")]
    assert np.diff(clock, axis=1).max() < 0.021, "a window crosses the gap"
    assert len(ws) == 2 * ((1000 - 64) // 32 + 1) and "2 gap(s)" in ws.provenance.note
    assert (clock[:, 0] < 20).sum() == (clock[:, 0] >= 30).sum()  # each stretch windowed from its own start


def test_purity_and_unlabelled_samples(tmp_path: Path) -> None:
    n = 2000
    labels = blocks(n, 90)
    labels[1000:1030] = ""  # unlabelled
    path = write(tmp_path / "a.csv", seconds(n), labels)
    loose = import_recordings([path], ImportOptions(window=64, step=16), tmp_path / "loose")
    pure = import_recordings([path], ImportOptions(window=64, step=16, purity=1.0), tmp_path / "pure")
    half = import_recordings([path], ImportOptions(window=64, step=16, purity=0.75), tmp_path / "half")
    assert len(pure) < len(half) < len(loose)
    assert "below purity 1" in pure.provenance.note and "unlabelled" in loose.provenance.note
    index = (pure.X[:, :, pure.channels.index("clock")] * RATE).round().astype(int)
    truth = np.where(labels == "walk", 1, 0)
    assert all(len(set(truth[row])) == 1 and truth[row[0]] == y for row, y in zip(index, pure.y, strict=True))
    clock = loose.X[:, :, loose.channels.index("clock")]
    assert not ((clock >= 1000 / RATE - 1e-9) & (clock < 1030 / RATE - 1e-9)).any()
    majority = [np.bincount(truth[row], minlength=2).argmax() for row in (clock * RATE).round().astype(int)]
    np.testing.assert_array_equal(loose.y, majority)


def test_align_label_windows_every_run_from_its_start(tmp_path: Path) -> None:
    n = 1000
    files = [write(tmp_path / f"{name}.csv", seconds(n), blocks(n, 250)) for name in "ab"]
    ws = load(tmp_path, files, window=100, step=50, align="label")
    assert len(ws) == 2 * 4 * 4  # (250 - 100) // 50 + 1 windows per run
    np.testing.assert_allclose(ws.X[:4, 0, ws.channels.index("clock")], [0, 1, 2, 3])


def test_one_subject_per_file_without_a_subject_column(tmp_path: Path) -> None:
    n = 500
    files = [write(tmp_path / f"{name}.csv", seconds(n) + 100 * i, blocks(n, 250))
             for i, name in enumerate(["b-second", "a-first", "c-third"])]
    ws = load(tmp_path, files, window=50, test_subjects=[3])
    starts = {int(s): float(ws.X[ws.subject == s][0, 0, ws.channels.index("clock")]) for s in (1, 2, 3)}
    assert starts == {1: 100.0, 2: 0.0, 3: 200.0}  # numbered in sorted path order
    train, test = ws.split()
    assert set(test.subject.tolist()) == {3} and set(train.subject.tolist()) == {1, 2}


def test_single_subject_is_split_in_time(tmp_path: Path) -> None:
    t = np.concatenate([seconds(1000), 60 + seconds(1000)])  # two stretches
    ws = load(tmp_path, [write(tmp_path / "a.csv", t, blocks(2000, 100))], window=50, step=25)
    assert ws.test_mask is not None and ws.test_subjects == ()
    train, test = ws.split()
    assert len(train) and len(test) and len(train) + len(test) == len(ws)
    for first, cut, last in ((0, 800, 1000), (60 * RATE, 60 * RATE + 800, 60 * RATE + 1000)):
        def samples(part, lo=first, hi=last):
            start = np.round(part.X[:, 0, part.channels.index("clock")] * RATE)
            return start[(start >= lo) & (start < hi)]
        assert samples(train).max() + 50 <= cut <= samples(test).min()  # no window straddles the cut
    reloaded = load_recordings_dataset(tmp_path / "dataset")
    np.testing.assert_array_equal(reloaded.test_mask, ws.test_mask)
    assert len(reloaded.select(np.arange(5)).split()[0]) == 5
    save_windowset(reloaded.select(ws.subject >= 0), tmp_path / "c.npz", {"k": 1})
    np.testing.assert_array_equal(load_windowset(tmp_path / "c.npz", {"k": 1}).test_mask, ws.test_mask)


def test_parquet_reads_like_csv(tmp_path: Path) -> None:
    n = 800
    csv = load(tmp_path, [write(tmp_path / "a.csv", seconds(n), blocks(n, 200))], window=64)
    parquet = import_recordings([write(tmp_path / "a.parquet", seconds(n), blocks(n, 200))],
                                ImportOptions(window=64), tmp_path / "pq")
    np.testing.assert_array_equal(parquet.X, csv.X)
    np.testing.assert_array_equal(parquet.y, csv.y)


def one_line_failure(call, *args: object, **kwargs: object) -> str:
    with pytest.raises(HarlabError) as info:
        call(*args, **kwargs)
    text = str(info.value)
    assert "\n" not in text and "Traceback" not in text
    return text


def bad_case(tmp_path: Path, case: str) -> tuple[Path, dict[str, object]]:
    t, labels = seconds(400), blocks(400, 200)
    path = tmp_path / "rec.csv"
    options: dict[str, object] = {"window": 64}
    if case == "missing column":
        options["label_column"] = "activty"
    elif case == "empty file":
        path.write_text("")
        return path, options
    elif case == "header only":
        path.write_text("time,clock,sine,acc_x,activity\n")
        return path, options
    write(path, t, labels)
    frame = pd.read_csv(path, dtype={"activity": str})
    if case == "non-numeric":
        frame["sine"] = frame["sine"].astype(object)
        frame.loc[7, "sine"] = "abc"
    elif case == "nan":
        frame.loc[[9, 20], "sine"] = np.nan
    elif case == "unsorted":
        frame.loc[[5, 6], "time"] = frame.loc[[6, 5], "time"].to_numpy()
    elif case == "duplicate":
        frame.loc[6, "time"] = frame.loc[5, "time"]
    elif case == "short":
        frame = frame.iloc[:50]
    elif case == "rate":
        options["rate"] = 5000
    elif case == "unknown label":
        options["classes"] = ["sit"]
    elif case == "bad time":
        frame["time"] = frame["time"].astype(object)
        frame.loc[3, "time"] = "yesterday"
    frame.to_csv(path, index=False)
    return path, options


@pytest.mark.parametrize(("case", "column", "expected"), [
    ("missing column", "activty", "not found (columns: time, clock"),
    ("empty file", None, "empty"),
    ("header only", None, "no samples"),
    ("non-numeric", "sine", "rec.csv:9: column 'sine': 'abc' is not a number"),
    ("nan", "sine", "rec.csv:11: column 'sine': 2 empty"),
    ("unsorted", "time", "rec.csv:8: column 'time'"),
    ("duplicate", "time", "repeats the previous timestamp"),
    ("short", "time", "shorter than one window"),
    ("rate", "time", "over 10×"),
    ("unknown label", "activity", "label(s) 'walk' not among the classes"),
    ("bad time", "time", "rec.csv:5: column 'time': 'yesterday' is not a number"),
])
def test_bad_input_is_one_line_naming_file_and_column(tmp_path: Path, case: str, column: str | None,
                                                      expected: str) -> None:
    path, options = bad_case(tmp_path, case)
    text = one_line_failure(import_recordings, [path], ImportOptions(**options), tmp_path / "out")
    assert str(path) in text and expected in text and " — " in text
    if column:
        assert repr(column) in text
    assert not (tmp_path / "out").exists()


def test_bad_options_and_folders(tmp_path: Path) -> None:
    assert "option rate" in one_line_failure(ImportOptions.parse, {"rate": 0})
    assert "option purity" in one_line_failure(ImportOptions.parse, {"purity": 2})
    path = write(tmp_path / "a.csv", seconds(400), blocks(400, 200))
    text = one_line_failure(import_recordings, [path], ImportOptions(rate=30, pipeline="uci-har"), tmp_path / "o")
    assert "a.csv" in text and "'time'" in text and "too low for pipeline uci-har" in text
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "precious.txt").write_text("x")
    assert "not a harlab dataset" in one_line_failure(import_recordings, [path], ImportOptions(), tmp_path / "keep")
    assert (tmp_path / "keep" / "precious.txt").exists()
    assert "no dataset.json" in one_line_failure(load_dataset, str(tmp_path / "keep"))


# --- real data: HAPT's raw recordings exported as users would have them, imported, against built-in hapt ---

SUBJECTS = (1, 2)


@pytest.fixture(scope="module")
def hapt_export(real_data: Path, tmp_path_factory: pytest.TempPathFactory):
    source = hapt.find_local(real_data / "hapt", "local")
    assert source is not None
    recordings, names = hapt.read_recordings(source)
    recordings = [r for r in recordings if r.subject in SUBJECTS]
    folder = tmp_path_factory.mktemp("hapt-csv")
    files = export_recordings(recordings, {i + 1: name for i, name in enumerate(names[:6])}, folder)
    return recordings, names[:6], files


def hapt_options(names: tuple[str, ...], **extra: object) -> ImportOptions:
    return ImportOptions(subject_column="subject", pipeline="uci-har", window=128, step=64, rate=50,
                         classes=list(names), test_subjects=[2], **extra)


def test_hapt_csv_label_aligned_equals_builtin_hapt(hapt_export, real_data: Path, tmp_path: Path) -> None:
    _, names, files = hapt_export
    assert pd.read_csv(files[0], nrows=1).columns.tolist() == ["time", *hapt.CHANNELS, "activity", "subject"]
    builtin = load_dataset("hapt", real_data, quiet=True)
    builtin = builtin.select(np.isin(builtin.subject, SUBJECTS))
    ws = import_recordings(files, hapt_options(names, align="label"), tmp_path / "ds")
    assert ws.channels == builtin.channels and ws.classes == builtin.classes and ws.sampling_rate == 50
    assert len(ws) == len(builtin) == 651
    for s in SUBJECTS:
        np.testing.assert_array_equal(np.bincount(ws.y[ws.subject == s], minlength=6),
                                      np.bincount(builtin.y[builtin.subject == s], minlength=6))
    np.testing.assert_array_equal(ws.y, builtin.y)
    np.testing.assert_allclose(ws.X, builtin.X, rtol=0, atol=1e-6)
    assert [len(part) for part in ws.split()] == [len(part) for part in builtin.split()]


def test_hapt_csv_majority_windows_agree_where_both_cut(hapt_export, tmp_path: Path) -> None:
    """The default grid runs from each recording's start, the built-in one from each labelled segment's start:
    every window holds the built-in filter's output at its place, and windows that start at the same sample
    as a built-in one are equal to it; the rest differ only in where they sit."""
    recordings, names, files = hapt_export
    ws = import_recordings(files, hapt_options(names), tmp_path / "ds")
    offset, common = 0, 0
    for rec in recordings:
        labels = np.zeros(len(rec.signals), np.int64)  # 0: unlabelled or a transition
        for seg in rec.segments:
            labels[seg.start:seg.stop] = seg.label if seg.label <= 6 else 0
        ours = [s for s in range(0, len(labels) - 127, 64) if labels[s:s + 128].min() > 0]
        X, _, _ = UciHarPipeline().windows(rec, set(range(1, 7)))
        theirs = [seg.start + k * 64 for seg in rec.segments if seg.label <= 6
                  for k in range((seg.stop - seg.start - 128) // 64 + 1)] if X.size else []
        assert len(theirs) == len(X)
        mine = ws.X[offset:offset + len(ours)]
        filtered, _ = UciHarPipeline().filter(rec)
        np.testing.assert_allclose(mine, filtered[np.add.outer(ours, np.arange(128))], rtol=0, atol=1e-6)
        expected_y = [np.bincount(labels[s:s + 128], minlength=7).argmax() - 1 for s in ours]
        np.testing.assert_array_equal(ws.y[offset:offset + len(ours)], expected_y)
        for i, start in enumerate(ours):
            if start in theirs:
                np.testing.assert_allclose(mine[i], X[theirs.index(start)], rtol=0, atol=1e-6)
                common += 1
        offset += len(ours)
    assert offset == len(ws) and 500 < len(ws) < 651
    assert common > 10  # segment starts fall on the recording's 64-sample grid now and then


def test_import_train_save_predict_on_a_users_own_recordings(tmp_path: Path) -> None:
    """The whole path a user takes: generated phone recordings → import with the UCI HAR pipeline → train and save
    → predict another raw recording, whose raw acc/gyro columns the bundle knows how to filter."""
    files = example_script().make_example(tmp_path / "in", subjects=3, bout_seconds=8)
    runner = CliRunner()
    result = runner.invoke(app, ["data", "import", *map(str, files), "--out", str(tmp_path / "ds"), "--pipeline",
                                 "uci-har", "--rate", "50"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["train", "--dataset", str(tmp_path / "ds"), "--model", "cnn", "--param",
                                 "filters=8", "--repeats", "1", "--epochs", "1", "--save", str(tmp_path / "b"),
                                 "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["predict", str(tmp_path / "b"), str(files[-1]), "--out", str(tmp_path / "t.csv")])
    assert result.exit_code == 0, result.output
    segments = pd.read_csv(tmp_path / "t.csv")
    assert len(segments) >= 1 and set(segments["activity"]) <= {"walking", "sitting", "standing", "laying"}
    spec = tmp_path / "mine.yaml"  # and as an experiment, with its report
    spec.write_text(f"name: mine\nmodel: cnn\ndataset: {tmp_path / 'ds'}\nrepeats: 2\nepochs: 1\n"
                    "split: loso\nhyperparameters: {filters: 8}\n")
    result = runner.invoke(app, ["experiment", "run", str(spec), "--out", str(tmp_path / "exp")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "exp" / "report.html").stat().st_size > 10_000
    folds = {json.loads(line)["fold"] for line in (tmp_path / "exp" / "runs.jsonl").read_text().splitlines()}
    assert folds == {"subject-1", "subject-2", "subject-3"}
