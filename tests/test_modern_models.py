"""The architectures from the time-series literature — ResNet (Wang et al. 2017), InceptionTime (Ismail Fawaz
et al. 2020) alone and as an ensemble, the convolutional transformer: parameter counts, output shapes, one epoch
of training on real windows, and ONNX export matching PyTorch."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch

from harlab.data.datasets import load_dataset
from harlab.data.transforms import Standardizer
from harlab.data.windowset import WindowSet
from harlab.deploy.bundle import load_bundle, save_bundle
from harlab.deploy.onnx_export import PARITY_TOLERANCE, export_onnx
from harlab.errors import HarlabError
from harlab.models.cost import training_flops
from harlab.models.inceptiontime import branch_kernel_sizes
from harlab.models.layers import ConvBN
from harlab.models.registry import count_parameters, create_model
from harlab.training.loop import TrainConfig, fit, to_tensor

ENSEMBLE = {"n_networks": 2}
MODELS = [("resnet1d", {}), ("inceptiontime", {}), ("inceptiontime", ENSEMBLE), ("conv_transformer", {})]
IDS = ["resnet1d", "inceptiontime", "inceptiontime-ensemble", "conv_transformer"]


@pytest.fixture(scope="module")
def hapt(real_data: Path, tmp_path_factory: pytest.TempPathFactory) -> WindowSet:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HARLAB_CACHE", str(tmp_path_factory.mktemp("cache")))
        return load_dataset("hapt", real_data, quiet=True)


# --- counts and shapes -----------------------------------------------------------------------------------

# resnet1d, blocks of 32, 64, 64 filters (kernels 8, 5, 3, bias-free, each with BatchNorm), 1×1 shortcuts into
# the first two: (9·32·8 + 32·32·5 + 32·32·3 + 9·32 + 4·64) + (32·64·8 + 64·64·5 + 64·64·3 + 32·64 + 4·128)
# + (64·64·8 + 64·64·5 + 64·64·3 + 3·128) + 64·6 + 6.
# inceptiontime, 8 filters, kernels 39, 19, 9: module 1 (9·8 + 8·8·67 + 9·8 + 64), modules 2–6
# 5·(32·8 + 8·8·67 + 32·8 + 64), shortcuts (9·32 + 64) + (32·32 + 64), dense 32·6 + 6; twice for two networks.
# conv_transformer: stem 9·64·5 + 64·64·5 + 2·128, positions 64·64, two layers of attention (3·64·64 + 3·64
# + 64·64 + 64), feed-forward (64·128 + 128 + 128·64 + 64) and two LayerNorms (2·128), final LayerNorm, dense.
COUNTS = [129_062, 30_454, 2 * 30_454, 95_174]


@pytest.mark.parametrize(("name", "hyperparameters", "expected"),
                         [(*model, count) for model, count in zip(MODELS, COUNTS, strict=True)], ids=IDS)
def test_parameter_count_with_default_hyperparameters(name: str, hyperparameters: dict, expected: int) -> None:
    assert count_parameters(create_model(name, 9, 128, 6, **hyperparameters)) == expected


@pytest.mark.parametrize(("name", "hyperparameters"), MODELS, ids=IDS)
def test_output_is_one_row_of_logits_per_window(name: str, hyperparameters: dict) -> None:
    model = create_model(name, 9, 128, 6, **hyperparameters).eval()
    with torch.no_grad():
        assert model(torch.randn(3, 9, 128)).shape == (3, 6)


def test_even_kernels_pad_like_tensorflow_and_keep_the_length() -> None:
    block = ConvBN(9, 4, 8)
    assert block[0].padding(128) == (3, 4)
    assert block(torch.randn(2, 9, 128)).shape == (2, 4, 128)


@pytest.mark.parametrize(("kernel_size", "expected"), [(40, (39, 19, 9)), (41, (41, 19, 9)), (4, (3, 1, 1))])
def test_inception_kernels_are_the_papers_halvings_made_odd(kernel_size: int, expected: tuple) -> None:
    assert branch_kernel_sizes(kernel_size) == expected


def test_attention_heads_must_divide_the_width() -> None:
    with pytest.raises(HarlabError, match="does not split into 3 heads"):
        create_model("conv_transformer", 9, 128, 6, heads=3)


# --- the ensemble ----------------------------------------------------------------------------------------


def test_ensemble_trains_members_apart_and_predicts_their_mean_probability() -> None:
    torch.manual_seed(0)
    model = create_model("inceptiontime", 9, 128, 6, **ENSEMBLE)
    x = torch.randn(5, 9, 128)
    assert model.train()(x).shape == (2, 5, 6)
    model.eval()
    with torch.no_grad():
        members = torch.stack([member(x) for member in model.members])
        expected = torch.log(torch.softmax(members, dim=-1).mean(dim=0))
        torch.testing.assert_close(model(x), expected)
    assert not torch.allclose(members[0], members[1])  # independently initialized


def test_a_single_network_returns_plain_logits_when_training() -> None:
    assert create_model("inceptiontime", 9, 128, 6).train()(torch.randn(5, 9, 128)).shape == (5, 6)


# --- training and export on real windows -----------------------------------------------------------------


@pytest.mark.parametrize(("name", "hyperparameters"), MODELS, ids=IDS)
def test_one_epoch_on_real_windows_changes_every_weight(name: str, hyperparameters: dict, hapt: WindowSet) -> None:
    train, _ = hapt.split()
    X = to_tensor(train.X[:64], Standardizer.fit(train))
    y = torch.from_numpy(train.y[:64]).long()
    torch.manual_seed(0)
    model = create_model(name, 9, 128, len(hapt.classes), **hyperparameters)
    before = [p.detach().clone() for p in model.parameters()]
    history = fit(model, X, y, TrainConfig(epochs=1, batch_size=32), seed=0)
    assert math.isfinite(history.loss[0])
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


@pytest.mark.parametrize(("name", "hyperparameters"), MODELS, ids=IDS)
def test_onnx_export_matches_pytorch_on_real_windows(name: str, hyperparameters: dict, hapt: WindowSet,
                                                     tmp_path: Path) -> None:
    train, test = hapt.split()
    torch.manual_seed(0)
    model = create_model(name, len(hapt.channels), hapt.window, len(hapt.classes), **hyperparameters)
    directory = save_bundle(tmp_path / "bundle", model, model_name=name, hyperparameters=hyperparameters,
                            channels=list(hapt.channels), window=hapt.window, step=hapt.step,
                            sampling_rate=hapt.sampling_rate, classes=list(hapt.classes),
                            standardizer=Standardizer.fit(train), metrics={}, provenance={}, training={})
    loaded = load_bundle(directory)
    path = export_onnx(loaded, tmp_path / f"{name}.onnx")
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch in (1, 37):
        X = test.X[:batch]
        with torch.no_grad():
            expected = torch.softmax(loaded.model(loaded.prepare(X)), dim=-1).numpy()
        ours = session.run(None, {"windows": X})[0]
        assert ours.shape == (batch, 6)
        np.testing.assert_allclose(ours, expected, atol=PARITY_TOLERANCE)


def test_an_ensemble_costs_its_members_together() -> None:
    torch.manual_seed(0)
    single = training_flops(create_model("inceptiontime", 9, 128, 6), 9, 128, 6)
    assert single > 0
    assert training_flops(create_model("inceptiontime", 9, 128, 6, **ENSEMBLE), 9, 128, 6) == 2 * single
