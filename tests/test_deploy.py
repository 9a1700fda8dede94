"""Model bundles (safetensors + manifest, tamper-proof) and ONNX export with parity on real windows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch
from typer.testing import CliRunner

from harlab.api import Results
from harlab.cli import app
from harlab.data.datasets import load_dataset
from harlab.data.transforms import Standardizer
from harlab.deploy.bundle import MANIFEST, WEIGHTS, Bundle, load_bundle, save_bundle
from harlab.deploy.onnx_export import export_onnx
from harlab.errors import DataError
from harlab.models.registry import create_model


@pytest.fixture(scope="module")
def hapt(real_data: Path):
    return load_dataset("hapt", real_data, quiet=True)


def bundle_of(name: str, data, directory: Path, **hyperparameters) -> Path:
    """An (untrained, seeded) model of `name` for `data`'s windows, saved with a standardizer fitted on them."""
    train, _ = data.split()
    torch.manual_seed(0)
    model = create_model(name, len(data.channels), data.window, len(data.classes), **hyperparameters)
    return save_bundle(directory, model, model_name=name, hyperparameters=hyperparameters,
                       channels=list(data.channels), window=data.window, step=data.step,
                       sampling_rate=data.sampling_rate, classes=list(data.classes),
                       standardizer=Standardizer.fit(train), metrics={"accuracy": 0.5}, provenance={}, training={})


def torch_probabilities(bundle: Bundle, X: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return torch.softmax(bundle.model(bundle.prepare(X)), dim=-1).numpy()


def test_a_bundle_round_trips_without_pickle(hapt, tmp_path: Path) -> None:
    directory = bundle_of("cnn", hapt, tmp_path / "b", filters=16)
    manifest = json.loads((directory / MANIFEST).read_text())
    assert manifest["channels"] == list(hapt.channels) and manifest["classes"] == list(hapt.classes)
    assert manifest["window"] == 128 and manifest["sampling_rate"] == 50.0 and manifest["hyperparameters"]
    assert len(manifest["standardization"]["mean"]) == 9 and manifest["environment"]["packages"]["torch"]
    assert (directory / WEIGHTS).read_bytes()[:8] != b"\x80\x02\x8a\n"  # not a pickle
    loaded = load_bundle(directory)
    torch.manual_seed(0)
    original = create_model("cnn", 9, 128, 6, filters=16).eval()
    X = hapt.X[:8]
    with torch.no_grad():
        expected = original(loaded.prepare(X))
        assert torch.equal(loaded.model(loaded.prepare(X)), expected)


@pytest.mark.parametrize(("damage", "message"), [
    ("flip", "checksum mismatch"), ("truncate", "checksum mismatch"), ("drop-key", "missing key"),
    ("shape", "tensors do not fit"), ("no-weights", "missing"), ("bad-json", "not valid JSON")])
def test_a_damaged_bundle_is_refused_with_one_line(hapt, tmp_path: Path, damage: str, message: str) -> None:
    directory = bundle_of("cnn", hapt, tmp_path / "b", filters=8)
    weights, manifest_path = directory / WEIGHTS, directory / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    if damage == "flip":
        data = bytearray(weights.read_bytes())
        data[-5] ^= 0xFF
        weights.write_bytes(bytes(data))
    elif damage == "truncate":
        weights.write_bytes(weights.read_bytes()[:-100])
    elif damage == "drop-key":
        del manifest["classes"]
        manifest_path.write_text(json.dumps(manifest))
    elif damage == "shape":
        manifest["hyperparameters"]["filters"] = 16
        manifest_path.write_text(json.dumps(manifest))
    elif damage == "no-weights":
        weights.unlink()
    else:
        manifest_path.write_text("{not json")
    with pytest.raises(DataError, match=message) as error:
        load_bundle(directory)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("name", ["cnn", "multihead_cnn", "lstm", "cnn_lstm", "convlstm", "wisdm_cnn"])
def test_onnx_export_matches_pytorch_on_real_windows(hapt, tmp_path: Path, name: str) -> None:
    loaded = load_bundle(bundle_of(name, hapt, tmp_path / name))
    path = export_onnx(loaded, tmp_path / f"{name}.onnx")
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    _, test = hapt.split()
    for batch in (1, 37):  # any batch size
        X = test.X[:batch]
        ours = session.run(None, {"windows": X})[0]
        assert ours.shape == (batch, 6)
        np.testing.assert_allclose(ours, torch_probabilities(loaded, X), atol=1e-4)


def test_flat_input_takes_the_wisdm_tutorials_vectors(hapt, tmp_path: Path) -> None:
    """The WISDM tutorial feeds its phone model 80 × 3 = 240 values flattened time-major."""
    small = hapt.select(np.arange(64))
    small = type(small)(**{**small.__dict__, "X": small.X[:, :80, :3], "channels": small.channels[:3]})
    loaded = load_bundle(bundle_of("wisdm_cnn", small, tmp_path / "w"))
    path = export_onnx(loaded, tmp_path / "w.onnx", flat_input=True)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[1] == 240
    X = small.X[:5]
    np.testing.assert_allclose(session.run(None, {"windows": X.reshape(5, 240)})[0],
                               torch_probabilities(loaded, X), atol=1e-4)


def test_train_save_then_export_from_the_command_line(real_data: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["train", "--dataset", "hapt", "--data-dir", str(real_data), "--model", "cnn",
                                 "--param", "filters=8", "--repeats", "2", "--epochs", "1", "--standardize",
                                 "--save", str(tmp_path / "bundle"), "--save-repeat", "2",
                                 "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    runs = Results(tmp_path / "r").store.rows()
    manifest = json.loads((tmp_path / "bundle" / MANIFEST).read_text())
    assert manifest["metrics"]["repeat"] == 2 and manifest["metrics"]["accuracy"] == runs[1]["accuracy"]
    assert manifest["standardization"] == runs[1]["standardization"]
    result = runner.invoke(app, ["export", str(tmp_path / "bundle"), "--onnx", str(tmp_path / "m.onnx")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "m.onnx").stat().st_size > 1000


@pytest.mark.parametrize("flat", [False, True])
def test_core_ml_package_declares_its_input_and_classes(hapt, tmp_path: Path, flat: bool) -> None:
    """Core ML runs only on macOS; here: the package is written, reloads with its spec, and says what it takes."""
    import coremltools

    loaded = load_bundle(bundle_of("cnn", hapt, tmp_path / "b", filters=8))
    result = CliRunner().invoke(app, ["export", str(tmp_path / "b"), "--coreml", str(tmp_path / "m.mlpackage")]
                                + (["--flat-input"] if flat else []))
    assert result.exit_code == 0, result.output
    spec = coremltools.models.MLModel(str(tmp_path / "m.mlpackage"), skip_model_load=True).get_spec()
    shape = list(spec.description.input[0].type.multiArrayType.shape)
    assert shape == ([1, 128 * 9] if flat else [1, 128, 9])
    assert spec.description.predictedFeatureName == "classLabel"
    assert spec.description.metadata.userDefined["classes"] == ",".join(loaded.classes)
    serialized = spec.SerializeToString()
    assert all(name.encode() in serialized for name in loaded.classes)


def test_an_experiment_run_is_saved_by_retraining_it_from_its_seed(real_data: Path, tmp_path: Path) -> None:
    spec = tmp_path / "tiny.toml"
    spec.write_text('name = "tiny"\nmodel = "cnn"\ndataset = "hapt"\nrepeats = 2\nepochs = 1\n'
                    'hyperparameters = { kernel_size = 3 }\n[grid]\nfilters = [4, 8]\n')
    runner = CliRunner()
    out = tmp_path / "results"
    result = runner.invoke(app, ["experiment", "run", str(spec), "--out", str(out), "--data-dir", str(real_data)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["experiment", "save", str(out), "--configuration", "filters=8", "--repeat", "2",
                                 "--to", str(tmp_path / "bundle"), "--data-dir", str(real_data)])
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "bundle" / MANIFEST).read_text())
    row = next(json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()
               if json.loads(line)["label"] == "filters=8" and json.loads(line)["repeat"] == 2)
    assert manifest["metrics"]["accuracy"] == row["accuracy"] and manifest["hyperparameters"]["filters"] == 8
    result = runner.invoke(app, ["experiment", "save", str(out), "--configuration", "filters=9", "--to",
                                 str(tmp_path / "b2"), "--data-dir", str(real_data)])
    assert "choose one of filters=4, filters=8" in str(result.exception)
