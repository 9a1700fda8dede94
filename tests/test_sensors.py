"""Per-sensor recordings at their own rates, interval label files and units (harlab.data.sensors, .intervals)."""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harlab.data.recordings import ImportOptions, build_windowset
from harlab.errors import HarlabError

G = 9.80665
EPOCH_NS = 1_700_000_000_123_456_789
INTERVALS = [(0.0, 20.013, "walking"), (20.013, 41.271, "sitting"), (41.271, 61.0, "standing")]


def _signals(t: np.ndarray) -> np.ndarray:
    """Smooth acc (g, with gravity) and gyro (rad/s) signals at times `t` [n] → [n, 6]."""
    acc = [0.1 + 0.3 * np.sin(2 * np.pi * 1.1 * t), -0.2 + 0.2 * np.cos(2 * np.pi * 0.7 * t + 1),
           0.95 + 0.15 * np.sin(2 * np.pi * 1.7 * t + 2)]
    gyro = [0.5 * np.sin(2 * np.pi * 0.9 * t), 0.3 * np.cos(2 * np.pi * 1.3 * t), 0.2 * np.sin(2 * np.pi * 0.4 * t)]
    return np.column_stack(acc + gyro)


def _jittered(rng: np.random.Generator, start: float, stop: float, rate: float) -> np.ndarray:
    """Sample times near `rate` Hz with 3 % jitter."""
    t = np.arange(start, stop, 1 / rate)
    return np.sort(t + rng.normal(0, 0.03 / rate, len(t)))


def _sensor_logger(folder: Path, acc_t: np.ndarray, gyro_t: np.ndarray) -> Path:
    """A Sensor Logger export: TotalAcceleration.csv (m/s²) and Gyroscope.csv (rad/s), ns timestamps, z,y,x."""
    folder.mkdir(parents=True)
    for name, t, columns, scale in (("TotalAcceleration", acc_t, slice(0, 3), G),
                                    ("Gyroscope", gyro_t, slice(3, 6), 1)):
        values = _signals(t)[:, columns] * scale
        pd.DataFrame({"time": EPOCH_NS + np.round(t * 1e9).astype(np.int64), "seconds_elapsed": t,
                      "z": values[:, 2], "y": values[:, 1], "x": values[:, 0]}).to_csv(folder / f"{name}.csv",
                                                                                      index=False)
    return folder


def _intervals(path: Path, clock_ns: bool = False) -> Path:
    frame = pd.DataFrame(INTERVALS, columns=["start", "end", "label"])
    if clock_ns:
        frame[["start", "end"]] = (EPOCH_NS + frame[["start", "end"]] * 1e9).round().astype(np.int64)
    frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def two_rates(tmp_path_factory):
    """A recording: accelerometer at 100 Hz from 0 s, gyroscope at 50 Hz starting 1.3 s late and stopping 0.7 s
    early, both jittered; and the same signals as one 50 Hz table over the span both cover."""
    root = tmp_path_factory.mktemp("two-rates")
    rng = np.random.default_rng(7)
    acc_t, gyro_t = _jittered(rng, 0.0, 60.0, 100.0), _jittered(rng, 1.3, 59.3, 50.0)
    folder = _sensor_logger(root / "walk1", acc_t, gyro_t)
    first, last = gyro_t[0], min(acc_t[-1], gyro_t[-1])
    grid = first + np.arange(int((last - first) * 50 + 1e-6) + 1) / 50
    table = pd.DataFrame(_signals(grid), columns=["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"])
    table.insert(0, "time", grid)
    table["activity"] = ""
    for start, end, label in INTERVALS:
        table.loc[(grid >= start) & (grid < end), "activity"] = label
    table.to_csv(root / "walk1.csv", index=False)
    return folder, root / "walk1.csv", root


def _windows(paths, **options):
    ws, manifest = build_windowset(paths, ImportOptions.parse({"rate": 50, **options}))
    return ws, manifest


@pytest.mark.parametrize("clock_ns", [False, True], ids=["elapsed-seconds", "clock-ns"])
def test_two_rates_late_sensor_and_intervals_equal_one_table(two_rates, clock_ns):
    folder, table, root = two_rates
    labels = _intervals(root / f"intervals-{clock_ns}.csv", clock_ns)
    merged, manifest = _windows([folder], labels=[str(labels)])
    single, _ = _windows([table])
    assert merged.channels == single.channels == ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")
    assert len(merged) == len(single) > 20
    np.testing.assert_array_equal(merged.y, single.y)
    assert merged.classes == single.classes == ("sitting", "standing", "walking")
    difference = np.abs(merged.X - single.X)
    assert float(np.quantile(difference, 0.99)) < 0.01, "resampling tolerance"
    assert float(difference.max()) < 0.05  # the ends of a stretch, where resample_poly's filter runs off the data
    assert manifest["sampling_rate"] == 50
    assert len(manifest["sources"][0]["sha256"]) == 64


def test_zip_of_a_recording_imports_as_its_folder(two_rates, tmp_path):
    folder, _, _ = two_rates
    archive = tmp_path / "walk1.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in folder.iterdir():
            zf.write(path, f"walk1/{path.name}")
    labels = str(_intervals(tmp_path / "walk1.labels.csv"))
    from_zip, _ = _windows([archive], labels=[labels])
    from_folder, _ = _windows([folder], labels=[labels])
    np.testing.assert_array_equal(from_zip.X, from_folder.X)


def test_phyphox_and_metawear_units_named_in_columns(tmp_path):
    t = np.arange(0, 30, 0.01)
    values = _signals(t)
    phyphox = tmp_path / "phyphox"
    phyphox.mkdir()
    pd.DataFrame({"Time (s)": t, **{f"{a} (m/s^2)": values[:, i] * G for i, a in enumerate("XYZ")}}).to_csv(
        phyphox / "Accelerometer.csv", index=False)
    pd.DataFrame({"Time (s)": t, **{f"{a} (rad/s)": values[:, 3 + i] for i, a in enumerate("XYZ")}}).to_csv(
        phyphox / "Gyroscope.csv", index=False)
    metawear = tmp_path / "metawear"
    metawear.mkdir()
    ms = 1_700_000_000_000 + np.round(t * 1000).astype(np.int64)
    pd.DataFrame({"epoch (ms)": ms, "elapsed (s)": t, **{f"{a}-axis (g)": values[:, i] for i, a in enumerate("xyz")}}
                 ).to_csv(metawear / "MetaWear_2024_C8_Accelerometer.csv", index=False)
    pd.DataFrame({"epoch (ms)": ms, "elapsed (s)": t,
                  **{f"{a}-axis (deg/s)": np.degrees(values[:, 3 + i]) for i, a in enumerate("xyz")}}
                 ).to_csv(metawear / "MetaWear_2024_C8_Gyroscope.csv", index=False)
    labels = tmp_path / "labels.csv"
    pd.DataFrame({"start": [0, 15], "end": [15, 30], "label": ["walking", "sitting"],
                  "recording": "phyphox"}).to_csv(labels, index=False)
    pd.DataFrame({"start": [0, 15], "end": [15, 30], "label": ["walking", "sitting"],
                  "recording": "metawear"}).to_csv(tmp_path / "more.csv", index=False)
    ws, _ = build_windowset([phyphox, metawear], ImportOptions.parse(
        {"labels": [str(labels), str(tmp_path / "more.csv")], "test_subjects": [2]}))
    assert ws.sampling_rate == 100
    first = ws.X[ws.subject == 1]
    second = ws.X[ws.subject == 2]
    np.testing.assert_allclose(first, second, atol=1e-6)  # m/s² → g and deg/s → rad/s
    np.testing.assert_allclose(first[0, :, 0], values[:128, 0], atol=1e-6)


def test_tables_in_m_s2_warn_and_convert(tmp_path, caplog):
    t = np.arange(0, 20, 0.02)
    values = _signals(t)
    frame = pd.DataFrame(values * [G, G, G, 1, 1, 1], columns=["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"])
    frame.insert(0, "time", t)
    frame["activity"] = np.where(t < 10, "walking", "sitting")
    frame.to_csv(tmp_path / "rec.csv", index=False)
    with caplog.at_level(logging.WARNING, logger="harlab"):
        build_windowset([tmp_path / "rec.csv"], ImportOptions())
    assert "looks like m/s², not g: set acc_units to m/s2" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="harlab"):
        ws, _ = build_windowset([tmp_path / "rec.csv"], ImportOptions(acc_units="m/s2"))
    assert "magnitude" not in caplog.text
    np.testing.assert_allclose(ws.X[0, :, :3], values[:128, :3], atol=1e-5)


def _one_line(paths, **options) -> str:
    with pytest.raises(HarlabError) as caught:
        build_windowset(paths, ImportOptions.parse(options))
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_bad_intervals_are_one_line(two_rates, tmp_path):
    folder, _, _ = two_rates
    overlapping = tmp_path / "overlap.csv"
    pd.DataFrame({"start": [0, 5, 9.5], "end": [10, 8, 20], "label": ["walking", "walking", "sitting"]}).to_csv(
        overlapping, index=False)
    message = _one_line([folder], labels=[str(overlapping)])
    assert message == (f"{overlapping}:4: interval 9.5–20 labelled 'sitting' overlaps 0–10 labelled 'walking' "
                       f"({overlapping}:2) — make the intervals not overlap")
    outside = tmp_path / "outside.csv"
    pd.DataFrame({"start": [0, 500], "end": [10, 510], "label": ["walking", "sitting"]}).to_csv(outside, index=False)
    message = _one_line([folder], labels=[str(outside)])
    assert message.startswith(f"{outside}:3: interval 500–510 lies outside recording 'walk1' (1.299–59.28 s from "
                              "its start, 1700000001422778880–1700000059402778880 on its clock)")
    assert "set label_times to clock or elapsed" in message
    backwards = tmp_path / "backwards.csv"
    pd.DataFrame({"start": [10], "end": [5], "label": ["walking"]}).to_csv(backwards, index=False)
    assert _one_line([folder], labels=[str(backwards)]) == (
        f"{backwards}:2: interval 10–5 ends before it starts — swap or correct start and end")
    unknown = tmp_path / "unknown.csv"
    pd.DataFrame({"start": [1], "end": [5], "label": ["walking"], "recording": ["walk9"]}).to_csv(unknown, index=False)
    assert _one_line([folder], labels=[str(unknown)]) == (
        f"{unknown}:2: column 'recording': no recording named 'walk9' — use one of the recordings' names: walk1")


def test_bad_sensor_exports_are_one_line(tmp_path):
    rng = np.random.default_rng(1)
    apart = _sensor_logger(tmp_path / "apart", _jittered(rng, 0, 10, 100), _jittered(rng, 20, 30, 50))
    assert ("its sensors have no common time span (TotalAcceleration.csv 0.000–9.990 s, Gyroscope.csv "
            "20.000–29.980 s") in _one_line([apart])
    lonely = _sensor_logger(tmp_path / "lonely", _jittered(rng, 0, 10, 100), np.array([3.0]))
    assert _one_line([lonely]) == (f"{lonely / 'Gyroscope.csv'}: gyroscope time has a single sample, so no rate — "
                                   "a recording needs at least one window")
    slow = _sensor_logger(tmp_path / "slow", _jittered(rng, 0, 10, 100), np.arange(0, 10, 1.0))
    assert _one_line([slow]) == (f"{slow / 'Gyroscope.csv'}: gyroscope time: median step 1 s is not shorter than "
                                 "max_gap_s 0.5 — raise the `max_gap_s` setting or check the time unit")
    milli = tmp_path / "milli"
    milli.mkdir()
    pd.DataFrame({"Time (s)": np.arange(0, 10, 0.01), **{f"{a} (mg)": np.ones(1000) for a in "XYZ"}}).to_csv(
        milli / "Accelerometer.csv", index=False)
    assert _one_line([milli]) == (f"{milli / 'Accelerometer.csv'}: unknown accelerometer unit 'mg' in the column "
                                  "names — convert to g or m/s2, or set acc_units to the values' unit")
    assert _one_line([milli], acc_units="mg") == (
        "import options: option acc_units: Input should be 'auto', 'g' or 'm/s2' — fix it (options: "
        + ", ".join(ImportOptions.model_fields) + ")")
    unlabelled = _one_line([apart.parent / "slow"], max_gap_s=2)
    assert unlabelled == f"{slow}: per-sensor recordings carry no labels — label the activities (in a column, or " \
                         "an interval file: `labels`)"


def test_cli_imports_each_apps_layout_to_the_same_windows(tmp_path):
    from test_recordings import example_script
    from typer.testing import CliRunner

    from harlab.cli import app
    from harlab.data.recordings import load_recordings_dataset

    script = example_script()
    imported = {}
    for layout in ("sensor-logger", "phyphox", "metawear"):
        folder = tmp_path / layout
        script.make_example(folder, subjects=2, bout_seconds=6, layout=layout)
        result = CliRunner().invoke(app, ["data", "import", str(folder), "--labels", str(folder / "intervals.csv"),
                                          "--out", str(tmp_path / f"{layout}-ds")])
        assert result.exit_code == 0, result.output or result.exception
        assert "6 channels at 50 Hz (acc_x, acc_y, acc_z, gyro_x, gyro_y, gyro_z)" in result.output
        imported[layout] = load_recordings_dataset(tmp_path / f"{layout}-ds")
    first = imported["sensor-logger"]
    assert set(first.classes) == {"walking", "sitting", "standing", "laying"}
    for layout, ws in imported.items():
        np.testing.assert_array_equal(ws.y, first.y)
        # written with 5 decimals in different units; MetaWear's timestamps are whole milliseconds
        np.testing.assert_allclose(ws.X, first.X, atol=0.02 if layout == "metawear" else 2e-4)


def test_harlab_predict_reads_a_phone_apps_export(hapt_bundle: Path, real_data: Path, tmp_path: Path) -> None:
    """A HAPT test subject's experiment written as Sensor Logger writes it (m/s², ns timestamps, the gyroscope
    starting one window step, 1.28 s, late) gets the timeline of the same experiment as one table."""
    from typer.testing import CliRunner

    from harlab.cli import app
    from harlab.data import hapt
    from harlab.data.recordings import recording_frame

    recordings, activities = hapt.read_recordings(hapt.locate(real_data))
    frame = recording_frame(next(r for r in recordings if r.subject == hapt.UCI_HAR_TEST_SUBJECTS[0]),
                            dict(enumerate(activities, start=1)))
    frame.drop(columns=["activity", "subject"]).to_csv(tmp_path / "exp.csv", index=False)
    export = tmp_path / "export"
    export.mkdir()
    t = frame["time"].to_numpy()
    for name, columns, scale, rows in (("TotalAcceleration", ["acc_x", "acc_y", "acc_z"], G, slice(None)),
                                       ("Gyroscope", ["gyro_x", "gyro_y", "gyro_z"], 1.0, slice(64, None))):
        pd.DataFrame({"time": EPOCH_NS + np.round(t[rows] * 1e9).astype(np.int64), "seconds_elapsed": t[rows],
                      **{axis: frame[column].to_numpy()[rows] * scale for axis, column in zip("zyx", columns[::-1],
                                                                                           strict=True)}}
                     ).to_csv(export / f"{name}.csv", index=False)
    timelines = {}
    for source in (tmp_path / "exp.csv", export):
        result = CliRunner().invoke(app, ["predict", str(hapt_bundle), str(source), "--windows",
                                          str(tmp_path / f"{source.stem}.csv"), "--smoothing", "1"])
        assert result.exit_code == 0, result.output or result.exception
        timelines[source.stem] = pd.read_csv(tmp_path / f"{source.stem}.csv")
    table, phone = timelines["exp"], timelines["export"]
    assert len(table) > 100 and len(phone) == len(table) - 1
    probabilities = [c for c in table.columns if c.startswith("p_")]
    same = phone["activity"].to_numpy() == table["activity"].to_numpy()[1:]  # one window later
    assert same.mean() > 0.98  # the filters' edges differ: the export's recording starts later
    np.testing.assert_allclose(phone[probabilities].to_numpy()[5:-5], table[probabilities].to_numpy()[6:-5],
                               atol=1e-3)
