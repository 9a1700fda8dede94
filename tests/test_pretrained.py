"""Pretrained models shipped in the package (harlab.deploy.pretrained): listed with their cross-validated accuracy,
used as pretrained:NAME, working in a fresh virtualenv with no data and no network."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from harlab.cli import app
from harlab.deploy.pretrained import FOLDER, pretrained_models, resolve
from harlab.errors import HarlabError

REPO = Path(__file__).resolve().parents[1]
G = 9.80665


def _recording(real_data: Path, path: Path, columns: list[str] | None = None, scale: float = 1.0) -> pd.DataFrame:
    """A HAPT test subject's raw experiment as a user has it in a CSV file: time, acc and gyro axes."""
    from harlab.data import hapt
    from harlab.data.recordings import recording_frame

    recordings, activities = hapt.read_recordings(hapt.locate(real_data))
    frame = recording_frame(next(r for r in recordings if r.subject == hapt.UCI_HAR_TEST_SUBJECTS[0]),
                            dict(enumerate(activities, start=1)))
    written = frame[["time", *(columns or list(hapt.CHANNELS))]].copy()
    acc = [c for c in written.columns if c.startswith("acc")]
    written[acc] *= scale
    written.to_csv(path, index=False)
    return frame


def test_shipped_models_are_listed_with_their_cross_validated_accuracy() -> None:
    models = {m.name: m for m in pretrained_models()}
    assert "hapt-resnet1d" in models
    assert sum(f.stat().st_size for f in FOLDER.rglob("*") if f.is_file()) <= 5 * 2**20
    for model in models.values():
        cv = model.cross_validation
        assert cv["folds"] == 5 and len(cv["accuracy"]["per_fold"]) == 5 and 90 < cv["accuracy"]["mean"] <= 100
        assert np.asarray(cv["confusion"]).sum() > 10_000  # every HAPT window tested once
    assert models["hapt-resnet1d"].channels == ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"]
    assert models["hapt-acc"].channels == ["acc_x", "acc_y", "acc_z"]
    result = CliRunner().invoke(app, ["models", "list", "--pretrained"])
    assert result.exit_code == 0, result.output
    assert "pretrained:hapt-resnet1d" in result.output and "5-fold CV by subject" in result.output
    with pytest.raises(HarlabError, match=r"^pretrained:nope: no such pretrained model; choose one of: .*"
                                          r"hapt-resnet1d.* \(harlab models list --pretrained\)$"):
        resolve("pretrained:nope")


def test_fresh_virtualenv_predicts_with_a_shipped_model(real_data: Path, tmp_path: Path) -> None:
    """harlab installed from the repo (a real build, so package data must be declared) into a new virtualenv whose
    dependencies come from this one; run with an empty HOME, in an empty folder, no data anywhere."""
    frame = _recording(real_data, tmp_path / "rec.csv")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = Path(subprocess.check_output([venv / "bin" / "python", "-c", "import sysconfig; "
                                         "print(sysconfig.get_paths()['purelib'])"], text=True).strip())
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # no editable finder: no .pth run
    subprocess.run([venv / "bin" / "python", "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", str(REPO)], check=True, cwd=tmp_path)
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir(), home.mkdir()
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "LANG": "C.UTF-8"}
    done = subprocess.run([venv / "bin" / "python", "-m", "harlab", "predict", "pretrained:hapt-resnet1d",
                           str(tmp_path / "rec.csv"), "--out", "timeline.csv"], cwd=work, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    where = subprocess.check_output([venv / "bin" / "python", "-c", "import harlab; print(harlab.__file__)"],
                                    cwd=work, env=env, text=True)
    assert str(venv) in where  # the installed copy, not this checkout
    segments = pd.read_csv(work / "timeline.csv")
    from harlab.deploy.predict import timeline_agreement

    agreement, _ = timeline_agreement(segments, frame["activity"].to_numpy(dtype=str), 50.0,
                                      tuple(segments["activity"].unique()))
    assert agreement > 0.8 and segments["end"].iloc[-1] > 0.9 * frame["time"].iloc[-1]


def test_units_missing_channels_export_and_load_of_a_shipped_model(real_data: Path, tmp_path: Path) -> None:
    from harlab.api import predict
    from harlab.estimator import HARClassifier

    frame = _recording(real_data, tmp_path / "g.csv")
    windows = predict("pretrained:hapt-resnet1d", tmp_path / "g.csv")
    truth = frame["activity"].to_numpy(dtype=str)
    centre = ((windows["start"] + windows["end"]) / 2 * 50).astype(int).clip(upper=len(truth) - 1)
    labelled = np.isin(truth[centre], windows.columns.str.removeprefix("p_"))
    assert np.mean(windows["activity"].to_numpy()[labelled] == truth[centre][labelled]) > 0.8
    _recording(real_data, tmp_path / "ms2.csv", scale=G)
    runner = CliRunner()
    refused = runner.invoke(app, ["predict", "pretrained:hapt-resnet1d", str(tmp_path / "ms2.csv")])
    assert isinstance(refused.exception, HarlabError)
    assert re.fullmatch(rf"{re.escape(str(tmp_path / 'ms2.csv'))}: columns acc_x, acc_y, acc_z: median acceleration "
                        r"magnitude \d+(\.\d+)?, which is gravity in m/s²; the model reads g — pass --acc-units m/s2 "
                        r"\(acc_units='m/s2'\) or convert them to g", str(refused.exception))
    converted = predict("pretrained:hapt-resnet1d", tmp_path / "ms2.csv", acc_units="m/s2")
    np.testing.assert_allclose(converted.filter(like="p_"), windows.filter(like="p_"), atol=1e-4)
    _recording(real_data, tmp_path / "acc.csv", ["acc_x", "acc_y", "acc_z"])
    missing = runner.invoke(app, ["predict", "pretrained:hapt-resnet1d", str(tmp_path / "acc.csv")])
    assert "missing column(s) gyro_x, gyro_y, gyro_z: the model needs acc_x, acc_y, acc_z, gyro_x, gyro_y, " \
           "gyro_z" in str(missing.exception)
    acc_only = predict("pretrained:hapt-acc", tmp_path / "acc.csv")  # the accelerometer-only model reads it
    assert np.mean(acc_only["activity"].to_numpy()[labelled] == truth[centre][labelled]) > 0.75
    renamed = ["ax", "ay", "az", "gx", "gy", "gz"]
    pd.read_csv(tmp_path / "g.csv").set_axis(["time", *renamed], axis=1).to_csv(tmp_path / "axes.csv", index=False)
    unnamed = runner.invoke(app, ["predict", "pretrained:hapt-resnet1d", str(tmp_path / "axes.csv")])
    assert str(unnamed.exception).endswith(
        "the model needs acc_x, acc_y, acc_z, gyro_x, gyro_y, gyro_z (accelerometer in g, gyroscope in rad/s) at "
        "any rate; found ax, ay, az, gx, gy, gz — rename them, or name yours in this order: pass --channels "
        "ax,ay,az,gx,gy,gz")
    mapped = runner.invoke(app, ["predict", "pretrained:hapt-resnet1d", str(tmp_path / "axes.csv"), "--channels",
                                 ",".join(renamed), "--smoothing", "1", "--windows", str(tmp_path / "mapped.csv")])
    assert mapped.exit_code == 0, mapped.output
    np.testing.assert_allclose(pd.read_csv(tmp_path / "mapped.csv").filter(like="p_"), windows.filter(like="p_"),
                               atol=1e-4)
    too_few = runner.invoke(app, ["predict", "pretrained:hapt-resnet1d", str(tmp_path / "axes.csv"), "--channels",
                                  "ax,ay,az"])
    assert str(too_few.exception).endswith("--channels names 3 column(s); the model needs 6: acc_x, acc_y, acc_z, "
                                           "gyro_x, gyro_y, gyro_z (accelerometer in g, gyroscope in rad/s) at any "
                                           "rate — name one of the recording's columns for each, in that order")
    exported = runner.invoke(app, ["export", "pretrained:hapt-resnet1d", "--onnx", str(tmp_path / "m.onnx")])
    assert exported.exit_code == 0, exported.output
    classes = list(HARClassifier.load("pretrained:hapt-resnet1d").classes_)
    assert classes == list(windows.filter(like="p_").columns.str[2:])
