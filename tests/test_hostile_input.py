"""Hostile or unlucky input: flags and specs that would exhaust memory or time are refused in one line before
anything is allocated; recordings never lose or invent data silently; bad files are one line naming the file
and the fix, never a traceback."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import no_downloads, synthetic_windows
from hapt_layout import write_hapt_rawdata
from pydantic import ValidationError

from harlab.cli import main
from harlab.data import hapt, wisdm
from harlab.data.datasets import load_dataset
from harlab.data.recordings import ImportOptions, build_windowset
from harlab.errors import DataError, HarlabError
from harlab.evaluation.runs import RunTrainer
from harlab.experiments.spec import load_spec, parse_spec
from harlab.models.minirocket import MiniRocket
from harlab.models.registry import create_model
from harlab.training.loop import TrainConfig, fit
from harlab.training.settings import RepeatConfig

RATE = 50.0
SPEC = {"name": "x", "model": "cnn"}


def one_line(call, *args: object, error: type[Exception] = HarlabError, **kwargs: object) -> str:
    """The one-line message of the error `call(*args, **kwargs)` raises."""
    with pytest.raises(error) as info:
        call(*args, **kwargs)
    text = str(info.value)
    assert "\n" not in text and "Traceback" not in text, text
    return text


def harlab(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """What `harlab ARGS` prints on stderr when it fails (it must, with status 1)."""
    monkeypatch.setattr(sys, "argv", ["harlab", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 1
    return capsys.readouterr().err


def recording(n: int = 600, **extra: object) -> pd.DataFrame:
    """A 50 Hz recording, `sit` and `walk` alternating every 100 samples, with two signal channels."""
    t = np.arange(n) / RATE
    labels = np.where((np.arange(n) // 100) % 2, "walk", "sit")
    return pd.DataFrame({"time": t, "acc_x": np.sin(t), "acc_y": np.cos(3 * t), "activity": labels, **extra})


def write_csv(path: Path, frame: pd.DataFrame, **to_csv: object) -> Path:
    frame.to_csv(path, index=False, **to_csv)
    return path


def windows(path: Path, **options: object):
    ws, _ = build_windowset([path], ImportOptions(**{"window": 64, **options}))
    return ws


# --- 6: resource exhaustion from flags and specs ---------------------------------------------------------------


def test_a_billion_repeats_is_refused_before_anything_is_planned(monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    text = one_line(RepeatConfig, repeats=10**9)
    assert "repeats=1000000000 gives 1e9 runs (limit 100,000)" in text and "HARLAB_MAX_RUNS=1e9" in text
    err = harlab(monkeypatch, capsys, "train", "--repeats", "1000000000")
    assert err.startswith("error: --repeats 1000000000 gives 1e9 runs") and len(err.strip().splitlines()) == 1
    monkeypatch.setenv("HARLAB_MAX_RUNS", "2e9")
    assert RepeatConfig(repeats=10**9).repeats == 10**9


def test_a_grid_of_a_million_configurations_is_counted_not_expanded(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    grid = {"filters": list(range(1, 1001)), "kernel_size": list(range(1, 1001))}
    start = time.perf_counter()
    text = one_line(parse_spec, {**SPEC, "grid": grid, "repeats": 1}, tmp_path / "spec.toml", error=DataError)
    assert time.perf_counter() - start < 5
    assert "1,000,000 configuration(s) × 1 repeats gives 1e6 runs (limit 100,000)" in text
    assert str(tmp_path / "spec.toml") in text and "HARLAB_MAX_RUNS" in text
    small = {**SPEC, "grid": {"filters": [8, 16, 32]}, "repeats": 2}
    monkeypatch.setenv("HARLAB_MAX_RUNS", "5")
    assert "3 configuration(s) × 2 repeats gives 6 runs (limit 5)" in one_line(parse_spec, small, "s", error=DataError)
    monkeypatch.setenv("HARLAB_MAX_RUNS", "6")
    assert len(parse_spec(small, "s").configurations()) == 3
    monkeypatch.setenv("HARLAB_MAX_RUNS", "many")
    assert "HARLAB_MAX_RUNS='many' is not a number of runs" in one_line(parse_spec, small, "s", error=DataError)


def alias_bomb(levels: int = 6, fan_out: int = 10) -> str:
    """A few lines of YAML that expand to fan_out**levels values."""
    lines = ['a0: &a0 "x"']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * fan_out)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + f"\nbomb: *a{levels}\n"


def test_yaml_alias_bombs_and_self_references_are_refused_in_specs_and_import_options(tmp_path: Path) -> None:
    for name, text in [("spec.yaml", f"{alias_bomb()}name: x\ndescription: *a6\n"), ("options.yaml", alias_bomb())]:
        path = tmp_path / name
        path.write_text(text)
        call = load_spec if name == "spec.yaml" else ImportOptions.from_yaml
        message = one_line(call, path, error=DataError)
        assert message.startswith(f"{path}: expanding its aliases gives "), message
        assert "e6 values (limit 100,000)" in message and "HARLAB_MAX_YAML_VALUES" in message
    (tmp_path / "loop.yaml").write_text("name: &a [*a]\n")
    assert "refers to a value that contains it" in one_line(load_spec, tmp_path / "loop.yaml", error=DataError)
    (tmp_path / "deep.yml").write_text("[" * 5000 + "]" * 5000)
    assert "nested too deeply" in one_line(ImportOptions.from_yaml, tmp_path / "deep.yml", error=DataError)


def test_an_absurd_model_is_measured_on_the_meta_device_and_refused(monkeypatch: pytest.MonkeyPatch,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    text = one_line(create_model, "cnn", 9, 128, 6, filters=1_000_000)
    assert text.startswith("model 'cnn' with filters=1000000 on windows of 128 steps × 9 channels gives 3e12 "
                           "parameters (limit 1e8)") and "HARLAB_MAX_PARAMETERS" in text
    assert "7e9 parameters" in one_line(create_model, "minirocket", 9, 128, 6, features=10**9)  # buffers count
    err = harlab(monkeypatch, capsys, "models", "summary", "resnet1d", "--param", "filters=1000000")
    assert "HARLAB_MAX_PARAMETERS" in err and len(err.strip().splitlines()) == 1
    monkeypatch.setenv("HARLAB_MAX_PARAMETERS", "1e5")
    assert "411,650 parameters (limit 100,000)" in one_line(create_model, "cnn", 9, 128, 6)


@pytest.mark.parametrize(("model", "hyperparameters", "expected"), [
    ("lstm", {"units": 0}, "units=0: Input should be greater than 0"),
    ("lstm", {"layers": 0}, "layers=0"),
    ("minirocket", {"features": 10}, "features=10: Input should be greater than or equal to 84"),
    ("minirocket", {"max_dilations_per_kernel": 0}, "max_dilations_per_kernel=0"),
    ("multihead_cnn", {"kernel_sizes": []}, "kernel_sizes=[]"),
    ("cnn", {"kernel_l2": float("inf")}, "kernel_l2=inf: Input should be a finite number"),
])
def test_hyperparameters_that_cannot_build_a_model_are_one_line(model: str, hyperparameters: dict[str, object],
                                                                expected: str) -> None:
    assert expected in one_line(create_model, model, 9, 128, 6, **hyperparameters)


def test_run_settings_that_would_overflow_or_diverge_are_refused() -> None:
    for setting, value in [("seed", 2**40), ("learning_rate", float("inf")), ("weight_decay", float("nan"))]:
        with pytest.raises(ValidationError, match=setting):
            RepeatConfig(**{setting: value})
    assert "seed: Input should be less than" in one_line(parse_spec, {**SPEC, "seed": 10**30}, "s", error=DataError)


@pytest.fixture
def hapt_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    no_downloads(monkeypatch)
    write_hapt_rawdata(tmp_path / "data" / hapt.NAME)
    return tmp_path / "data"


def test_hapt_windows_every_sample_are_refused_before_they_are_cut(hapt_dir: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARLAB_MAX_MEMORY", "1e6")
    text = one_line(load_dataset, "hapt", hapt_dir, quiet=True, step=1)
    assert text.startswith("windows of 128 samples every 1 (1,476 windows × 9 channels) gives 6.8 MB (limit 1 MB); "
                           "raise the `step` setting or lower the `window` setting, or set HARLAB_MAX_MEMORY=6.9e6 "
                           "to allow it"), text
    assert len(load_dataset("hapt", hapt_dir, quiet=True, step=64)) == 24


def test_a_window_longer_than_every_recording_is_refused_not_an_empty_dataset(hapt_dir: Path) -> None:
    for _ in range(2):  # the second load finds the cache: still refused
        assert one_line(load_dataset, "hapt", hapt_dir, quiet=True, window=100_000) == (
            "hapt: no windows of 100000 samples fit inside its labelled recordings; lower the `window` setting")


def test_a_recording_that_is_a_pipe_or_missing_is_named_as_such(tmp_path: Path) -> None:
    import os

    from harlab.data.recordings import input_files

    pipe = tmp_path / "rec.csv"
    os.mkfifo(pipe)
    assert one_line(input_files, [pipe]).startswith(f"{pipe}: not a regular file (a folder, device or pipe)")
    assert one_line(input_files, [tmp_path / "gone.csv"]).startswith(f"{tmp_path / 'gone.csv'}: cannot read (missing)")


def test_wisdm_windows_every_sample_are_refused_before_they_are_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    n = 1000
    records = wisdm.Records(np.ones(n, np.int64), np.zeros(n, np.int64), np.arange(n) * 50_000_000,
                            np.zeros((n, 3), np.float32), np.zeros(n, bool))
    monkeypatch.setenv("HARLAB_MAX_MEMORY", "1e5")
    text = one_line(wisdm.make_windows, records, 80, 1, "raw.txt")
    assert text.startswith("windows of 80 samples every 1 (921 windows × 3 channels) gives 884 kB (limit 100 kB)")
    assert len(wisdm.make_windows(records, 80, 40, "raw.txt")[0]) == 24


def test_imported_windows_are_estimated_before_they_are_cut(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_csv(tmp_path / "rec.csv", recording())
    monkeypatch.setenv("HARLAB_MAX_MEMORY", "1e5")
    text = one_line(windows, path, step=1, pipeline="uci-har")
    assert "windows of 64 samples every 1 (537 windows × 4 channels) gives 550 kB (limit 100 kB)" in text
    assert len(windows(path, step=32, pipeline="uci-har")) > 0


def test_self_fitting_models_refuse_augmented_copies_and_features_over_the_memory_limit(
        monkeypatch: pytest.MonkeyPatch) -> None:
    X = torch.zeros(10, 9, 32)
    y = torch.arange(10) % 2
    monkeypatch.setenv("HARLAB_MAX_MEMORY", "1e5")
    many = TrainConfig(epochs=20, batch_size=10, augment=("jitter",))
    text = one_line(fit, MiniRocket(9, 32, 2), X, y, many, 0, augment=lambda x, generator: x)
    assert text.startswith("20 epochs (an augmented copy of the 10 training windows for each after the first) gives "
                           "219 kB (limit 100 kB); train fewer epochs"), text
    text = one_line(fit, MiniRocket(9, 32, 2), X, y, TrainConfig(epochs=1, batch_size=10), 0)
    assert text.startswith("9,996 MiniRocket features of 10 windows (copies included) gives 400 kB"), text


# --- 7: silent wrong data in recordings -------------------------------------------------------------------------


def test_a_signal_column_whose_first_value_is_text_is_an_error_not_dropped(tmp_path: Path) -> None:
    frame = recording(acc_z=np.arange(600) / 600)
    frame["acc_z"] = frame["acc_z"].astype(object)
    frame.loc[0, "acc_z"] = "oops"
    path = write_csv(tmp_path / "rec.csv", frame)
    assert one_line(windows, path, error=DataError).startswith(f"{path}:2: column 'acc_z': 'oops' is not a number")
    frame.astype({"acc_z": str}).to_parquet(tmp_path / "rec.parquet")  # text in Parquet: the same, with its row
    text = one_line(windows, tmp_path / "rec.parquet", error=DataError)
    assert "rec.parquet: row 1: column 'acc_z': 'oops' is not a number" in text


def test_columns_that_are_not_numbers_are_named_not_dropped_silently(tmp_path: Path, notices: list[str]) -> None:
    t = np.arange(600) / RATE
    frame = recording(flag=np.sin(t) > 0, note="calm", when=pd.Timestamp("2024-05-01") + pd.to_timedelta(t, "s"))
    frame.to_parquet(tmp_path / "rec.parquet")
    assert windows(tmp_path / "rec.parquet").channels == ("acc_x", "acc_y")
    (notice,) = [text for text in notices if "not read as signals" in text]
    assert "not read as signals" in notice and "flag (true/false values), note (text), when (date-times)" in notice
    text = one_line(windows, tmp_path / "rec.parquet", channels=["acc_x", "flag"], error=DataError)
    assert text == (f"{tmp_path / 'rec.parquet'}: column 'flag' holds true/false values, not signal values — convert "
                    "it to numbers or leave it out of the channels")


@pytest.mark.parametrize("time", ["datetimes", "durations", "numbers as text"])
def test_parquet_time_columns_of_any_type_are_read(tmp_path: Path, time: str) -> None:
    frame = recording()
    seconds = pd.to_timedelta(frame["time"], "s")
    frame["time"] = {"datetimes": pd.Timestamp("2024-05-01") + seconds, "durations": seconds,
                     "numbers as text": frame["time"].map("{:.2f}".format)}[time]
    frame.to_parquet(tmp_path / "rec.parquet")
    ws = windows(tmp_path / "rec.parquet")
    assert ws.sampling_rate == RATE and ws.channels == ("acc_x", "acc_y")
    frame["time"] = frame["acc_x"] > 0
    frame.to_parquet(tmp_path / "bad.parquet")
    assert "column 'time' holds true/false values, not timestamps" in one_line(windows, tmp_path / "bad.parquet")


def test_one_class_is_refused_at_import_and_at_training(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "one.csv", recording().assign(activity="sit"))
    assert one_line(windows, path).startswith("only one class (sit) in the training windows; a classifier needs at "
                                              "least two classes; record and label at least one other activity")
    late = recording(1000).assign(activity=["sit"] * 850 + ["walk"] * 150)  # walking only in the test part
    text = one_line(windows, write_csv(tmp_path / "late.csv", late))
    assert "only one class (sit)" in text
    assert "walk only occur in the test windows (the last 20% of each stretch)" in text
    data = synthetic_windows([1, 2, 3])
    one = type(data)(data.X, np.zeros_like(data.y), data.subject, data.channels, data.classes, data.sampling_rate,
                     data.step, data.test_subjects, data.provenance)
    text = one_line(RunTrainer(one).run, RepeatConfig(epochs=1), 1)
    assert text.startswith("only one class (index 0 of the dataset's classes) in the training windows")


# --- 10: messages that point the right way ----------------------------------------------------------------------


@pytest.mark.parametrize(("sep", "decimal"), [(";", ","), (";", "."), ("\t", ","), ("\t", ".")])
def test_semicolon_and_tab_separated_csv_with_decimal_commas_read_like_comma_csv(tmp_path: Path, sep: str,
                                                                                decimal: str) -> None:
    plain = windows(write_csv(tmp_path / "plain.csv", recording()))
    european = windows(write_csv(tmp_path / "europe.csv", recording(), sep=sep, decimal=decimal))
    np.testing.assert_array_equal(european.X, plain.X)
    np.testing.assert_array_equal(european.y, plain.y)


def test_csv_header_spaces_duplicates_and_decimal_commas_are_named(tmp_path: Path) -> None:
    text = recording().to_csv(index=False)
    spaced = tmp_path / "spaced.csv"
    spaced.write_text(text.replace(",", ", "))
    assert windows(spaced).channels == ("acc_x", "acc_y")
    twice = tmp_path / "twice.csv"
    twice.write_text(text.replace("acc_y", "acc_x", 1))
    assert one_line(windows, twice, error=DataError) == (f"{twice}: column 'acc_x' appears twice in the header — "
                                                         "rename one of them")
    quoted = recording()
    quoted["acc_y"] = quoted["acc_y"].map(lambda v: f"{v:.3f}".replace(".", ","))
    message = one_line(windows, write_csv(tmp_path / "quoted.csv", quoted), error=DataError)
    assert "column 'acc_y': '1,000' is not a number — write decimal points (1.23)" in message


def test_a_file_that_is_not_utf8_text_says_so(tmp_path: Path) -> None:
    latin = tmp_path / "latin.csv"
    latin.write_bytes(recording().assign(activity="Gehen/Stürzen").to_csv(index=False).encode("latin-1"))
    assert "not UTF-8 text (byte 0xfc at offset" in one_line(windows, latin, error=DataError)
    binary = tmp_path / "binary.csv"
    binary.write_bytes(bytes(range(256)) * 4)
    assert one_line(windows, binary, error=DataError) == (f"{binary}: not UTF-8 text (byte 0x80 at offset 128) — "
                                                          "save it as CSV UTF-8 or Parquet")


def test_timestamps_are_quoted_as_written_not_as_numpy_reprs(tmp_path: Path) -> None:
    frame = recording()
    frame.loc[6, "time"] = frame.loc[5, "time"]
    text = one_line(windows, write_csv(tmp_path / "rec.csv", frame), error=DataError)
    assert "column 'time': '0.1' repeats the previous timestamp" in text and "np.float64" not in text


# --- 8: library errors that escaped as tracebacks ----------------------------------------------------------------


def test_specs_of_the_wrong_shape_or_encoding_are_one_line(tmp_path: Path) -> None:
    assert "the spec is a list, not a table of settings" in one_line(parse_spec, [1, 2], "spec.json", error=DataError)
    binary = tmp_path / "spec.toml"
    binary.write_bytes(bytes(range(256)))
    assert one_line(load_spec, binary, error=DataError).startswith(f"{binary}: not UTF-8 text (byte 0x80")
    deep = tmp_path / "deep.toml"
    deep.write_text("a = " + "[" * 5000 + "]" * 5000)
    assert "nested too deeply" in one_line(load_spec, deep, error=DataError)
    (tmp_path / "options.yaml").write_bytes(b"\xff\xfe window: 5")
    assert "not UTF-8 text" in one_line(ImportOptions.from_yaml, tmp_path / "options.yaml", error=DataError)
