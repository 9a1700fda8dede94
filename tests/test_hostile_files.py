"""Hostile or unlucky files: an altered windows cache, files that are not regular files, manifests asking for too
much or holding wrong values, decompression bombs, deleted checksum records, and recordings or ONNX files that
are not what they claim. Each is refused (or rebuilt) with one line, never a hang, a traceback or wrong data."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
import threading
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import synthetic_windows
from hapt_layout import write_hapt_rawdata
from uci_layout import pack_inner_zip, pack_outer_zip, write_uci_har

from harlab.data import fetch, hapt, uci_har, wisdm
from harlab.data.datasets import load_dataset
from harlab.data.safe_pickle import read_hapt_pickle_bytes
from harlab.data.transforms import Standardizer
from harlab.data.tree import FileTree
from harlab.deploy import bundle as bundle_module
from harlab.deploy.bundle import MANIFEST, WEIGHTS, load_bundle, save_bundle
from harlab.deploy.onnx_export import ONNX_METADATA, export_onnx
from harlab.deploy.predict import WindowModel, open_model, predict, read_model_input
from harlab.errors import DataError, HarlabError
from harlab.models.registry import create_model

RAW = ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")


def one_line(error: pytest.ExceptionInfo[BaseException]) -> str:
    text = str(error.value)
    assert "\n" not in text and "Traceback" not in text, text
    return text


def finishes(call: Callable[[], Any], seconds: float = 60) -> Any:
    """`call()` in a daemon thread: its value (or its exception, raised here); the test fails instead of hanging
    where it does not end in time (the old code blocked on a pipe or read /dev/zero forever)."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # handed to the test
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


@pytest.fixture
def notes(notices: list[str]) -> list[str]:
    """The one-line notes the data modules log."""
    return notices


def not_a_file(path: Path, kind: str) -> None:
    """Put something that is not a regular file at `path`: a pipe, a link to /dev/zero, or a folder."""
    path.unlink(missing_ok=True)
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "devzero":
        path.symlink_to("/dev/zero")
    else:
        path.mkdir()


# --- the windows cache ---------------------------------------------------------------------------------------


@pytest.fixture
def uci_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data folder holding a small UCI HAR copy; downloads refused."""
    write_uci_har(tmp_path / "data" / uci_har.NAME)
    monkeypatch.setattr(uci_har, "download", lambda *args, **kwargs: pytest.fail("no download expected"))
    return tmp_path / "data"


def cache_file(isolated_cache: Path) -> Path:
    (path,) = (isolated_cache / "windows").iterdir()
    return path


def about(notes: list[str], path: Path) -> list[str]:
    return [note for note in notes if note.startswith(f"note: {path}:")]


def test_a_cache_rewritten_with_other_labels_is_rebuilt(uci_copy: Path, isolated_cache: Path,
                                                         notes: list[str]) -> None:
    first = load_dataset("uci-har", uci_copy, quiet=True)
    path = cache_file(isolated_cache)
    with np.load(path) as npz:
        entries = {name: npz[name] for name in npz.files}
    entries["y"] = (entries["y"] + 1) % 6  # other labels; the metadata (and the source's sha256) unchanged
    buffer = io.BytesIO()
    np.savez(buffer, **entries)
    path.write_bytes(buffer.getvalue())

    again = load_dataset("uci-har", uci_copy, quiet=True)
    np.testing.assert_array_equal(again.y, first.y)
    assert about(notes, path) == [f"note: {path}: cache content does not match its checksum; rebuilding"]
    assert load_dataset("uci-har", uci_copy, quiet=True).provenance == first.provenance
    assert len(about(notes, path)) == 1


@pytest.mark.parametrize("damage", ["truncated", "fifo", "devzero", "folder"])
def test_a_cache_that_is_unreadable_or_not_a_file_is_rebuilt(uci_copy: Path, isolated_cache: Path,
                                                              notes: list[str], damage: str) -> None:
    first = load_dataset("uci-har", uci_copy, quiet=True)
    path = cache_file(isolated_cache)
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:1000])
    else:
        not_a_file(path, damage)
    again = finishes(lambda: load_dataset("uci-har", uci_copy, quiet=True))
    np.testing.assert_array_equal(again.X, first.X)
    said = about(notes, path)
    problem = "cache is unreadable (" if damage == "truncated" else "cache is not a regular file"
    assert said[0].startswith(f"note: {path}: {problem}") and said[0].endswith("; rebuilding")
    if damage == "folder":  # nothing to write over: the windows are used without a cache
        assert said[1].startswith(f"note: {path}: cannot write the cache (") and len(said) == 2
    else:
        assert path.is_file() and not path.is_symlink() and len(said) == 1
        load_dataset("uci-har", uci_copy, quiet=True)
        assert len(about(notes, path)) == 1


# --- bundles and ONNX files ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained 4-filter CNN on synthetic windows (9 channels c0..c8, 32 samples at 50 Hz, 2 classes)."""
    ws = synthetic_windows([1, 2, 3])
    torch.manual_seed(0)
    model = create_model("cnn", 9, 32, 2, filters=4)
    return save_bundle(tmp_path_factory.mktemp("bundle") / "cnn", model, model_name="cnn",
                       hyperparameters={"filters": 4}, channels=list(ws.channels), window=32, step=16,
                       sampling_rate=50.0, classes=list(ws.classes), standardizer=Standardizer.fit(ws), metrics={},
                       provenance={}, training={})


@pytest.fixture
def bundle_copy(small_bundle: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(small_bundle, tmp_path / "copy"))


def edit_manifest(directory: Path, **changes: Any) -> Path:
    path = directory / MANIFEST
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))
    return path


def samples(channels: tuple[str, ...], n: int = 200, rate: float = 50.0) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({name: rng.normal(size=n) for name in channels})
    frame.insert(0, "time", np.arange(n) / rate)
    return frame


@pytest.mark.parametrize("name", [WEIGHTS, MANIFEST])
@pytest.mark.parametrize("kind", ["fifo", "devzero"])
def test_a_bundle_file_that_is_not_a_regular_file_is_refused(bundle_copy: Path, name: str, kind: str) -> None:
    not_a_file(bundle_copy / name, kind)
    with pytest.raises(DataError) as error:
        finishes(lambda: load_bundle(bundle_copy))
    assert one_line(error).startswith(f"{bundle_copy / name}: not a regular file")


def test_an_oversized_manifest_is_refused_before_it_is_read(bundle_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bundle_module, "MAX_MANIFEST_BYTES", 100)
    with pytest.raises(DataError) as error:
        load_bundle(bundle_copy)
    assert "over the limit of 100" in one_line(error)


def test_a_manifest_asking_for_a_huge_model_is_compared_before_it_is_built(bundle_copy: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The tensors' shapes come from a model on the meta device; nothing is allocated for the 2,000 filters."""
    devices: list[str] = []

    def recording_create_model(*args: Any, **kwargs: Any) -> torch.nn.Module:
        devices.append(torch.empty(0).device.type)
        return create_model(*args, **kwargs)

    monkeypatch.setattr(bundle_module, "create_model", recording_create_model)
    edit_manifest(bundle_copy, hyperparameters={"filters": 2000})
    with pytest.raises(DataError) as error:
        load_bundle(bundle_copy)
    assert one_line(error).startswith(f"{bundle_copy / WEIGHTS}: tensors do not fit model 'cnn': ")
    assert "[2000, 9, 3]" in str(error.value) and devices == ["meta"]


@pytest.mark.parametrize(("changes", "message"), [
    ({"standardization": {"mean": [0.0] * 8, "std": [1.0] * 8}},
     "field standardization: 8 means and 8 standard deviations for 9 channels"),
    ({"standardization": {"mean": [0.0] * 9, "std": [1.0] * 8 + [0.0]}},
     "field standardization.std.8: Input should be greater than 0 (found 0.0)"),
    ({"standardization": {"mean": [float("nan")] * 9, "std": [1.0] * 9}},
     "field standardization.mean.0: Input should be a finite number (found nan)"),
    ({"standardization": {"mean": [0.0] * 9, "std": [float("inf")] * 9}}, "field standardization.std.0: "),
    ({"window": "32"}, "field window: Input should be a valid integer (found '32')"),
    ({"window": 0}, "field window: Input should be greater than 0"),
    ({"channels": "c0,c1"}, "field channels: Input should be a valid list"),
    ({"classes": []}, "field classes: List should have at least 1 item"),
    ({"sampling_rate": 0}, "field sampling_rate: Input should be greater than 0"),
    ({"hyperparameters": [4]}, "field hyperparameters: Input should be a valid dictionary"),
    ({"preprocessing": {"pipeline": "uci-har", "raw_channels": ["a"], "accelerometer": ["a"]}},
     "field preprocessing: the uci-har pipeline does not make channel(s) c0, c1, c2"),
    ({"model": "transformer-xl"}, "fields model and hyperparameters: unknown model 'transformer-xl'"),
    ({"hyperparameters": {"filtres": 4}}, "fields model and hyperparameters: model 'cnn' has no hyperparameter"),
])
def test_a_manifest_with_a_wrong_field_is_refused_naming_it(bundle_copy: Path, changes: dict[str, Any],
                                                            message: str) -> None:
    path = edit_manifest(bundle_copy, **changes)
    with pytest.raises(DataError) as error:
        open_model(bundle_copy)
    assert one_line(error).startswith(f"{path}: {message}")


def test_a_standardization_with_a_zero_is_refused_at_load_not_predicted_as_nan(tmp_path: Path) -> None:
    """As saved by an older harlab (or by hand): the model would predict NaN for every window."""
    ws = synthetic_windows([1, 2])
    directory = save_bundle(tmp_path / "b", create_model("cnn", 9, 32, 2, filters=4), model_name="cnn",
                            hyperparameters={"filters": 4}, channels=list(ws.channels), window=32, step=16,
                            sampling_rate=50.0, classes=list(ws.classes),
                            standardizer=Standardizer(np.zeros(9), np.array([1.0] * 8 + [0.0])), metrics={},
                            provenance={}, training={})
    with pytest.raises(DataError) as error:
        open_model(directory)
    assert one_line(error).startswith(f"{directory / MANIFEST}: field standardization.std.8")


def test_non_finite_probabilities_are_refused(tmp_path: Path) -> None:
    ws = synthetic_windows([1, 2])
    model = create_model("cnn", 9, 32, 2, filters=4)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.fill_(float("nan"))  # a diverged training
    directory = save_bundle(tmp_path / "b", model, model_name="cnn", hyperparameters={"filters": 4},
                            channels=list(ws.channels), window=32, step=16, sampling_rate=50.0,
                            classes=list(ws.classes), standardizer=None, metrics={}, provenance={}, training={})
    with pytest.raises(DataError) as error:
        predict(open_model(directory), samples(ws.channels))
    assert one_line(error).startswith(f"{directory}: the model gives NaN or infinite probabilities")
    with pytest.raises(HarlabError, match="NaN or infinite probabilities; not written"):
        export_onnx(load_bundle(directory), tmp_path / "nan.onnx")
    assert not (tmp_path / "nan.onnx").exists()


@pytest.fixture(scope="module")
def onnx_file(small_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_onnx(load_bundle(small_bundle), tmp_path_factory.mktemp("onnx") / "cnn.onnx")


def with_metadata(onnx_path: Path, dest: Path, value: str) -> Path:
    import onnx

    model = onnx.load(str(onnx_path))
    for prop in model.metadata_props:
        if prop.key == ONNX_METADATA:
            prop.value = value
    onnx.save(model, str(dest))
    return dest


@pytest.mark.parametrize(("change", "message"), [
    ({"window": 64}, "its graph takes tensor(float) [32, 9] and gives tensor(float) [2] per window; its harlab "
                     "metadata says tensor(float) [64, 9] and tensor(float) [2]"),
    ({"classes": ["a", "b", "c"]}, "its graph takes tensor(float) [32, 9] and gives tensor(float) [2] per window"),
    ({"channels": ["x", "y", "z"]}, "its graph takes tensor(float) [32, 9]"),
    ({"window": "32"}, "field window: Input should be a valid integer"),
    ({"sampling_rate": None}, "field sampling_rate: Input should be a valid number"),
    ("not json", "its harlab metadata is not a JSON object"),
])
def test_an_onnx_file_whose_metadata_belongs_to_another_model_is_refused(onnx_file: Path, tmp_path: Path,
                                                                         change: Any, message: str) -> None:
    import onnx

    meta = json.loads(next(p.value for p in onnx.load(str(onnx_file)).metadata_props if p.key == ONNX_METADATA))
    value = change if isinstance(change, str) else json.dumps({**meta, **change})
    path = with_metadata(onnx_file, tmp_path / "other.onnx", value)
    with pytest.raises(DataError) as error:
        open_model(path)
    assert one_line(error).startswith(f"{path}: {message}")


def test_the_exported_onnx_file_still_opens_and_predicts(onnx_file: Path) -> None:
    model = open_model(onnx_file)
    frame = predict(model, samples(model.channels))
    assert np.isfinite(frame["confidence"]).all() and len(frame) == 11


@pytest.mark.parametrize("kind", ["garbage", "empty", "fifo", "devzero"])
def test_an_onnx_file_that_is_not_onnx_is_refused(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "model.onnx"
    if kind in ("garbage", "empty"):
        path.write_bytes(os.urandom(512) if kind == "garbage" else b"")
        expected = "not a readable ONNX model"
    else:
        not_a_file(path, kind)
        expected = "not a regular file"
    with pytest.raises(DataError) as error:
        finishes(lambda: open_model(path))
    assert one_line(error).startswith(f"{path}: {expected}")


# --- recordings given to predict -----------------------------------------------------------------------------


def uci_har_style_model() -> WindowModel:
    """A model reading UCI HAR's processed channels, from raw acc/gyro columns through its pipeline."""
    return WindowModel("m", uci_har.CHANNELS, ("a", "b"), 128, 50.0,
                       {"pipeline": "uci-har", "raw_channels": list(RAW), "accelerometer": list(RAW[:3])},
                       lambda X: np.full((len(X), 2), 0.5))


def test_a_recording_without_gyroscope_columns_names_the_raw_columns_needed(tmp_path: Path) -> None:
    path = tmp_path / "rec.csv"
    samples(("ax", "ay", "az"), n=400).to_csv(path, index=False)
    with pytest.raises(DataError) as error:
        read_model_input(uci_har_style_model(), path)
    assert one_line(error) == (f"{path}: missing column(s) acc_x, acc_y, acc_z, gyro_x, gyro_y, gyro_z: the model "
                               "needs acc_x, acc_y, acc_z, gyro_x, gyro_y, gyro_z (accelerometer in g, gyroscope "
                               "in rad/s) at any rate; found ax, ay, az — rename them, or name yours in this order: "
                               "set channels=COLUMN,COLUMN,…")
    samples(RAW[:3], n=400).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"missing column\(s\) gyro_x, gyro_y, gyro_z: .* found acc_x, acc_y, acc_z "):
        read_model_input(uci_har_style_model(), path)
    with pytest.raises(DataError, match=r"^recording: missing column\(s\) gyro_x, gyro_y, gyro_z: "):
        predict(uci_har_style_model(), samples(RAW[:3], n=400))


def test_predict_reads_a_semicolon_separated_recording_with_decimal_commas_as_import_does(tmp_path: Path) -> None:
    path = tmp_path / "rec.csv"
    frame = samples(RAW, n=400)
    frame.to_csv(path, index=False, sep=";", decimal=",")
    read = read_model_input(uci_har_style_model(), path)
    np.testing.assert_allclose(read.to_numpy(), frame[list(RAW)].to_numpy(), rtol=0, atol=1e-9)


@pytest.mark.parametrize(("name", "content", "message"), [
    ("empty.csv", b"", "the file is empty"),
    ("binary.csv", bytes(range(256)) * 8, "not UTF-8 text"),
    ("empty.parquet", b"", "unreadable (Parquet file size is 0 bytes)"),
    ("text.parquet", b"time,acc_x\n0,1\n", "unreadable ("),
])
def test_an_empty_or_binary_recording_is_one_line(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError) as error:
        read_model_input(uci_har_style_model(), path)
    assert one_line(error).startswith(f"{path}: {message}")


@pytest.mark.parametrize("kind", ["datetime", "zoned", "iso text", "words"])
def test_a_parquet_recording_with_a_date_time_or_text_time_column(tmp_path: Path, kind: str) -> None:
    frame = samples(RAW, n=400)
    times = pd.date_range("2024-05-01 12:00", periods=len(frame), freq="20ms")
    frame["time"] = {"datetime": times, "zoned": times.tz_localize("Europe/Paris"),
                     "iso text": times.strftime("%Y-%m-%dT%H:%M:%S.%f"), "words": ["soon"] * len(frame)}[kind]
    path = tmp_path / "rec.parquet"
    frame.to_parquet(path)
    if kind == "words":
        with pytest.raises(DataError) as error:
            read_model_input(uci_har_style_model(), path)
        assert one_line(error).startswith(f"{path}:") and "'time'" in str(error.value)
    else:
        assert read_model_input(uci_har_style_model(), path).shape == (400, 6)


# --- decompression bombs ---------------------------------------------------------------------------------------

ZEROS = bytes(50 << 20)  # 50 MB of zeros: about 50 kB deflated, a ratio near 1000


def zip_of(entries: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def tar_gz_of(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture(scope="module")
def bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bomb") / "bomb.zip"
    path.write_bytes(zip_of({"data/labels.txt": b"1 1 1 0 10\n", "data/zeros.bin": ZEROS}))
    assert path.stat().st_size < 200_000
    return path


def test_a_zip_bomb_is_refused_when_read(bomb: Path) -> None:
    tree = FileTree.open(bomb)
    assert tree.read("data/labels.txt") == b"1 1 1 0 10\n"
    with pytest.raises(DataError) as error:
        tree.read("data/zeros.bin")
    assert one_line(error).startswith(f"{bomb}: member 'data/zeros.bin' decompresses to more than 200 times its "
                                      "compressed ")


def test_a_zip_bomb_is_refused_when_extracted_leaving_nothing(bomb: Path, tmp_path: Path) -> None:
    target = tmp_path / "out"
    with pytest.raises(DataError) as error:
        fetch.safe_extract_zip(bomb, target)
    assert one_line(error).startswith(f"{bomb}: member 'data/zeros.bin' decompresses to more than 200 times")
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_an_inner_zip_that_is_a_bomb_is_refused(tmp_path: Path) -> None:
    outer = tmp_path / "outer.zip"
    outer.write_bytes(zip_of({"inner.zip": ZEROS}))
    with pytest.raises(DataError) as error:
        FileTree.open(outer).descend("labels.txt")
    assert one_line(error).startswith(f"{outer}: member 'inner.zip' decompresses to more than 200 times")


def test_the_member_and_total_limits_count_the_bytes_produced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fetch, "MAX_RATIO", 10**9)
    monkeypatch.setattr(fetch, "MAX_MEMBER_BYTES", 3 << 20)
    monkeypatch.setattr(fetch, "MAX_TOTAL_BYTES", 5 << 20)
    big = tmp_path / "big.zip"
    big.write_bytes(zip_of({"a.bin": bytes(4 << 20)}))
    with pytest.raises(DataError) as error:
        FileTree.open(big).read("a.bin")
    assert one_line(error).startswith(f"{big}: member 'a.bin' decompresses to more than the limit of 3,145,728 "
                                      "bytes for one member")
    # two members within the per-member limit, more than the total; an inner zip counts toward the same total
    inner = zip_of({"b.bin": bytes(2 << 20), "c.bin": bytes(2 << 20)})
    nested = tmp_path / "nested.zip"
    nested.write_bytes(zip_of({"a.bin": bytes(2 << 20), "inner.zip": inner}))
    with pytest.raises(DataError) as error:
        fetch.safe_extract_zip(nested, tmp_path / "out")
    assert "for the whole archive" in one_line(error) and not (tmp_path / "out").exists()
    tree = FileTree.open(nested)
    tree.read("a.bin")
    inner_tree = tree.descend("b.bin")
    inner_tree.read("b.bin")
    with pytest.raises(DataError) as error:
        inner_tree.read("c.bin")
    assert one_line(error).startswith(f"{nested / 'inner.zip'}: member 'c.bin' decompresses to more than the limit "
                                      "of 5,242,880 bytes for the whole archive")


def test_a_tar_member_bomb_is_refused(tmp_path: Path) -> None:
    sdist = tmp_path / hapt.MIRROR_FILE
    sdist.write_bytes(tar_gz_of(f"kcc/{hapt.MIRROR_MEMBER}", ZEROS))
    with pytest.raises(DataError) as error:
        hapt.read_mirror(sdist)
    assert one_line(error).startswith(f"{sdist}: member 'kcc/{hapt.MIRROR_MEMBER}' decompresses to more than 200")
    archive = tmp_path / wisdm.ARCHIVE
    archive.write_bytes(tar_gz_of(f"{wisdm.FOLDER}/{wisdm.RAW_MEMBER}", ZEROS))
    with pytest.raises(DataError) as error:
        wisdm.read_raw_text(archive)
    assert one_line(error).startswith(f"{archive}: member '{wisdm.FOLDER}/{wisdm.RAW_MEMBER}' decompresses")


def test_a_gzip_bomb_in_the_mirror_pickle_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "HAPT.pkl.gz"
    with pytest.raises(DataError) as error:
        read_hapt_pickle_bytes(gzip.compress(ZEROS), source)
    assert one_line(error).startswith(f"{source}: the gzip data decompresses to more than 200 times")


@pytest.mark.parametrize("kind", ["fifo", "devzero"])
def test_a_dataset_archive_that_is_not_a_regular_file_is_refused(tmp_path: Path, kind: str) -> None:
    for path, read in ((tmp_path / "a.zip", FileTree.open), (tmp_path / hapt.MIRROR_FILE, hapt.read_mirror),
                       (tmp_path / wisdm.RAW_MEMBER, wisdm.read_raw_text)):
        not_a_file(path, kind)
        with pytest.raises(DataError) as error:
            finishes(lambda read=read, path=path: read(path))
        assert one_line(error).startswith(f"{path}: not a regular file")


# --- checksums recorded at download ----------------------------------------------------------------------------


def test_a_cached_archive_whose_record_was_deleted_is_trusted_only_with_a_note(isolated_cache: Path,
                                                                              notes: list[str]) -> None:
    archive = isolated_cache / wisdm.NAME / wisdm.ARCHIVE
    archive.parent.mkdir(parents=True)
    archive.write_bytes(b"first")
    record = archive.with_name(archive.name + ".sha256")
    first = wisdm.locate(None, offline=True)
    assert notes == [f"note: no recorded checksum for {archive}; trusting it as it is now (sha256 {first.sha256}) "
                     f"and recording that in {record.name}"]
    assert record.read_text().split()[0] == first.sha256
    archive.write_bytes(b"altered")
    with pytest.raises(DataError, match=r"differs from \w+ recorded in"):
        wisdm.locate(None, offline=True)


def uci_archive(folder: Path, tmp_path: Path, label: int = 1) -> Path:
    copy = write_uci_har(tmp_path / "copy")
    (copy / "train" / "y_train.txt").write_text(f"{label}\n" + "".join((copy / "train" / "y_train.txt").read_text()
                                                                        .splitlines(keepends=True)[1:]))
    return pack_outer_zip(pack_inner_zip(copy, tmp_path / "inner.zip"), folder / uci_har.ARCHIVE)


def test_the_uci_har_download_is_recorded_and_a_changed_cached_archive_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, notes: list[str]) -> None:
    served = uci_archive(tmp_path / "served", tmp_path).read_bytes()
    sha = hashlib.sha256(served).hexdigest()

    def fake_download(url: str, dest: Path, expected_sha256: str | None = None, quiet: bool = False) -> str:
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(served)
        return sha

    monkeypatch.setattr(uci_har, "download", fake_download)
    archive = uci_har.fetch(quiet=True)
    assert archive.with_name(archive.name + ".sha256").read_text().split()[0] == sha and notes == []
    uci_archive(archive.parent, tmp_path / "again", label=2)  # another first label, the same size
    with pytest.raises(DataError) as error:
        load_dataset("uci-har", quiet=True)
    assert one_line(error).startswith(f"{archive}: sha256 ") and f"differs from {sha} recorded" in str(error.value)


def test_a_cached_hapt_archive_is_checked_against_its_record(isolated_cache: Path, tmp_path: Path,
                                                             notes: list[str]) -> None:
    folder = isolated_cache / hapt.NAME
    folder.mkdir(parents=True)
    raw = write_hapt_rawdata(tmp_path / "hapt")
    archive = folder / "hapt-official.zip"
    archive.write_bytes(zip_of({f"RawData/{p.name}": p.read_bytes() for p in raw.iterdir()}))
    sha = hapt.source_identity(hapt.locate(None, offline=True))
    assert len(notes) == 1 and notes[0].startswith(f"note: no recorded checksum for {archive}; trusting it")
    assert hapt.source_identity(hapt.locate(None, offline=True)) == sha and len(notes) == 1
    archive.write_bytes(zip_of({f"RawData/{p.name}": p.read_bytes() for p in sorted(raw.iterdir())[1:]}))
    with pytest.raises(DataError, match=f"differs from {sha} recorded"):
        hapt.source_identity(hapt.locate(None, offline=True))
