"""Devices, precision and the CPU fast path of the one training core: device names resolved or refused in one
line, the host reading the device once per epoch (never per step), bf16 only where it is native and accurate on
real windows, the cheap dropout mask, runs trained in worker processes giving the numbers of one-thread runs in
this process, and bundles that load on a CPU wherever they trained."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from harlab.cli import main
from harlab.data.datasets import load_dataset
from harlab.deploy.bundle import cpu_state_dict, load_bundle
from harlab.errors import HarlabError
from harlab.estimator import HARClassifier
from harlab.experiments.backends import LocalBackend, ProcessBackend, choose_backend
from harlab.experiments.runner import run_experiment
from harlab.experiments.spec import ExperimentSpec
from harlab.experiments.store import ResultsStore
from harlab.models.layers import Dropout
from harlab.models.registry import create_model
from harlab.training import device as devices
from harlab.training.callbacks import Callback
from harlab.training.config import TrainConfig
from harlab.training.device import check_precision, resolve_device
from harlab.training.loop import evaluate, fit, to_tensor

CUDA = torch.cuda.is_available()


def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(devices, "_mps_available", lambda: False)


def test_auto_picks_cuda_then_mps_then_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    no_gpu(monkeypatch)
    assert resolve_device("auto") == resolve_device(None) == torch.device("cpu")
    monkeypatch.setattr(devices, "_mps_available", lambda: True)
    assert resolve_device("auto") == torch.device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("CUDA:1") == torch.device("cuda", 1)


@pytest.mark.parametrize(("name", "expected"), [
    ("cuda", "sees no CUDA GPU here; use --device auto or cpu"),
    ("cuda:0", "sees no CUDA GPU here"),
    ("mps", "has no Apple MPS backend"),
    ("tpu", "unknown device 'tpu'; use auto, cpu, cuda, cuda:N or mps"),
    ("cuda:x", "unknown device 'cuda:x'"),
])
def test_an_unavailable_device_is_refused_in_one_line(monkeypatch: pytest.MonkeyPatch, name: str,
                                                      expected: str) -> None:
    no_gpu(monkeypatch)
    with pytest.raises(HarlabError, match=expected) as caught:
        resolve_device(name)
    assert "\n" not in str(caught.value)


def test_a_gpu_index_beyond_the_machines_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(HarlabError, match=r"'cuda:3': this machine has 1 CUDA GPU\(s\), cuda:0 to cuda:0"):
        resolve_device("cuda:3")


@pytest.mark.parametrize("command", [["train"], ["reproduce", "--quick"]])
def test_the_cli_refuses_a_missing_gpu_before_loading_anything(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path,
        command: list[str]) -> None:
    no_gpu(monkeypatch)
    monkeypatch.setattr(sys, "argv", ["harlab", *command, "--device", "cuda", "--out", str(tmp_path / "out")])
    with pytest.raises(SystemExit) as exit_info:
        main()
    error = capsys.readouterr().err.strip()
    assert exit_info.value.code == 1 and error.splitlines() == [error] and "Traceback" not in error
    assert error.startswith("error: device 'cuda': torch") and "no CUDA GPU" in error
    assert not (tmp_path / "out").exists()


def test_precision_is_refused_where_it_is_emulated_or_unsupported(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu = torch.device("cpu")
    check_precision("fp32", cpu)
    with pytest.raises(HarlabError, match="fp16 trains only on a CUDA GPU"):
        check_precision("fp16", cpu)
    monkeypatch.setattr(devices, "cpu_features", lambda: {"avx2", "fma"})
    with pytest.raises(HarlabError, match=r"no native bf16 \(AVX-512 BF16 or AMX\).*use --precision fp32"):
        check_precision("bf16", cpu)
    monkeypatch.setattr(devices, "cpu_features", lambda: {"avx2", "avx512f", "avx512_bf16"})
    check_precision("bf16", cpu)
    monkeypatch.setattr(devices, "cpu_features", lambda: {"amx_tile", "amx_bf16"})
    check_precision("bf16", cpu)


def _problem(n: int = 96, steps: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    y = torch.arange(n) % 3
    X = torch.randn(n, 9, steps, generator=generator) + y[:, None, None] * 0.5
    return X, y


def _host_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every read of a tensor's value by the host (each one a synchronization on a GPU), by name."""
    reads: list[str] = []
    for name in ("item", "tolist", "numpy", "__float__", "__int__", "__bool__"):
        original = getattr(torch.Tensor, name)

        def counted(self: torch.Tensor, *args: object, _name: str = name, _original: object = original) -> object:
            reads.append(_name)
            return _original(self, *args)  # type: ignore[operator]

        monkeypatch.setattr(torch.Tensor, name, counted)
    return reads


def test_the_host_reads_the_device_once_per_epoch_not_per_step(monkeypatch: pytest.MonkeyPatch) -> None:
    X, y = _problem(128)
    validation = _problem(32)
    reads = _host_reads(monkeypatch)
    per_fit = []
    for batch_size in (64, 8):  # 2 and 16 steps per epoch
        reads.clear()
        config = TrainConfig(epochs=3, batch_size=batch_size, validation_split=0.2, patience=5)
        fit(create_model("cnn", 9, 32, 3), X, y, config, seed=0, validation=validation)
        per_fit.append(len(reads))
    assert per_fit[0] == per_fit[1]  # the same reads whatever the number of steps
    assert per_fit[0] <= 3 * 6 + 2  # a handful per epoch: loss, accuracy and the validation pair


def test_the_cheap_dropout_mask_keeps_the_rate_the_scale_and_the_seed() -> None:
    layer = Dropout(0.3)
    x = torch.ones(200_000)
    torch.manual_seed(5)
    out = layer(x)
    kept = out != 0
    assert abs(kept.float().mean().item() - 0.7) < 0.005
    assert torch.allclose(out[kept], torch.full_like(out[kept], 1 / 0.7))
    torch.manual_seed(5)
    assert torch.equal(layer(x), out)
    x.requires_grad_(True)
    torch.manual_seed(5)
    layer(x).sum().backward()
    assert torch.equal(x.grad != 0, kept)
    assert torch.equal(layer.eval()(x), x)


def test_bf16_trains_as_accurately_as_fp32_on_real_windows(real_data: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """bf16 autocast (numerically the same where emulated, so this CPU may stand in for a native one) on real
    windows of 8 subjects: within a few points of fp32 and far above chance (17 %)."""
    monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda: True)
    data = load_dataset("hapt", real_data, quiet=True)
    train, test = data.select(np.isin(data.subject, [1, 3, 5, 6, 7, 8])), data.select(np.isin(data.subject, [2, 4]))
    X, y = to_tensor(train.X), torch.from_numpy(train.y)
    accuracies = {}
    for precision in ("fp32", "bf16"):
        model = create_model("cnn", 9, data.window, len(data.classes))
        history = fit(model, X, y, TrainConfig(epochs=2, batch_size=64, precision=precision), seed=3)
        assert history.precision == precision and history.device == "cpu"
        accuracies[precision] = evaluate(model, to_tensor(test.X), torch.from_numpy(test.y))[1]
    assert accuracies["bf16"] > 0.7
    assert abs(accuracies["bf16"] - accuracies["fp32"]) < 0.05, accuracies


def test_worker_processes_give_the_numbers_of_one_thread_runs_here(real_data: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Two runs trained at once in two worker processes of one thread each, and the same two runs trained
    here on one thread: the same results, each row recording its device, precision and threads."""
    data = load_dataset("hapt", real_data, quiet=True)
    subset = data.select(np.isin(data.subject, [1, 3, 5, 2]))
    spec = ExperimentSpec(name="workers", model="cnn", repeats=2, epochs=2, seed=4)
    remote: list[int] = []

    class RemoteEpochs(Callback):
        def on_remote_epochs(self, count: int) -> None:
            remote.append(count)

    run_experiment(spec, subset, tmp_path / "parallel", [], [RemoteEpochs()], ProcessBackend(workers=2, threads=1))
    assert 1 <= sum(remote) <= 4  # the workers' epochs reach the callbacks while they train
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)  # recorded as the worker's
    with devices.torch_threads(1):
        run_experiment(spec, subset, tmp_path / "here", backend=LocalBackend("cpu"))
    parallel, here = ({r["repeat"]: r for r in ResultsStore(tmp_path / name).rows()} for name in ("parallel", "here"))
    assert sorted(parallel) == [1, 2]
    for repeat in (1, 2):
        assert parallel[repeat]["accuracy"] == here[repeat]["accuracy"]
        assert parallel[repeat]["history"]["loss"] == here[repeat]["history"]["loss"]
        assert (parallel[repeat]["device"], parallel[repeat]["precision"], parallel[repeat]["threads"]) == (
            "cpu", "fp32", 1)


def test_the_backend_is_chosen_by_device_cores_and_callbacks(monkeypatch: pytest.MonkeyPatch) -> None:
    no_gpu(monkeypatch)
    monkeypatch.delenv("HARLAB_WORKERS")
    monkeypatch.setattr("harlab.experiments.backends.available_cores", lambda: 2)
    chosen = choose_backend(None, None, jobs=10, in_process=False)
    assert isinstance(chosen, ProcessBackend) and (chosen.workers, chosen.threads) == (2, 1)
    assert isinstance(choose_backend("cpu", None, jobs=1, in_process=False), LocalBackend)
    assert isinstance(choose_backend("cpu", None, jobs=10, in_process=True), LocalBackend)
    assert isinstance(choose_backend("cpu", 1, jobs=10, in_process=False), LocalBackend)
    monkeypatch.setenv("HARLAB_WORKERS", "1")
    assert isinstance(choose_backend(None, None, jobs=10, in_process=False), LocalBackend)
    monkeypatch.setenv("HARLAB_WORKERS", "two")
    with pytest.raises(HarlabError, match="HARLAB_WORKERS='two'"):
        choose_backend(None, None, jobs=10, in_process=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(HarlabError, match="workers=2: several worker processes train on the CPU only"):
        choose_backend("cuda", 2, jobs=10, in_process=False)


def test_a_bundle_holds_cpu_tensors_and_loads_on_the_cpu(tmp_path: Path) -> None:
    X, y = _problem(48)
    clf = HARClassifier("cnn", epochs=1, batch_size=16, random_state=0, device="cpu")
    clf.fit(X.transpose(1, 2).numpy(), y.numpy())
    state = cpu_state_dict(clf.model_)
    assert all(t.device.type == "cpu" and t.is_contiguous() for t in state.values())
    bundle = load_bundle(clf.save(tmp_path / "bundle"))
    assert all(p.device.type == "cpu" for p in bundle.model.parameters())
    assert clf.history_.device == "cpu"


@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU (benchmarks/gpu_check.sh runs it on one)")
def test_a_gpu_trained_bundle_predicts_on_the_cpu(tmp_path: Path) -> None:
    X, y = _problem(256)
    windows = X.transpose(1, 2).numpy()
    clf = HARClassifier("cnn", epochs=2, batch_size=32, random_state=0, device="cuda").fit(windows, y.numpy())
    assert next(clf.model_.parameters()).device.type == "cuda" and clf.history_.device.startswith("cuda")
    on_gpu = clf.predict_proba(windows)
    on_cpu = HARClassifier.load(clf.save(tmp_path / "bundle"))
    assert next(on_cpu.model_.parameters()).device.type == "cpu"
    assert np.allclose(on_cpu.predict_proba(windows), on_gpu, atol=1e-4)


@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU (benchmarks/gpu_check.sh runs it on one)")
@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_every_precision_trains_on_a_gpu(precision: str) -> None:
    X, y = _problem(256)
    model = create_model("cnn", 9, 32, 3)
    config = dataclasses.replace(TrainConfig(epochs=3, batch_size=32), precision=precision)
    history = fit(model, X, y, config, seed=0, device="cuda")
    assert history.precision == precision and history.accuracy[-1] > 0.6
