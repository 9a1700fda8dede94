"""The model zoo: Keras parameter counts, Keras layer semantics (Conv1D options, LSTM, ConvLSTM2D), the
registry's validation, layer summaries, and every model training through the repeated protocol."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from harlab.api import Results, run_training
from harlab.cli import _parse_params, app
from harlab.data.datasets import load_dataset
from harlab.data.windowset import WindowSet
from harlab.errors import HarlabError
from harlab.experiments.spec import ExperimentSpec
from harlab.models.contract import Contract
from harlab.models.convlstm import ConvLSTM2D
from harlab.models.cost import training_flops
from harlab.models.layers import Conv1D, ConvOptions
from harlab.models.lstm import KerasLSTM
from harlab.models.registry import count_parameters, create_model, model_names
from harlab.models.summary import layer_table
from harlab.training.loop import TrainConfig, evaluate, fit
from harlab.training.run import holdout_subjects
from harlab.training.settings import RepeatConfig, defaults_of

MODELS = ["cnn", "multihead_cnn", "lstm", "cnn_lstm", "convlstm", "wisdm_cnn"]


def test_every_tutorial_and_modern_model_is_registered() -> None:
    assert model_names() == sorted([*MODELS, "resnet1d", "inceptiontime", "conv_transformer", "minirocket"])


# --- parameter counts, as Keras's model.summary() reports them -------------------------------------------

KERAS_COUNTS = [
    ("cnn", {}, 411_650), ("cnn", {"filters": 8}, 50_730), ("cnn", {"filters": 16}, 101_138),
    ("cnn", {"filters": 32}, 203_106), ("cnn", {"filters": 128}, 847_170), ("cnn", {"filters": 256}, 1_791_938),
    ("cnn", {"kernel_size": 2}, 413_378), ("cnn", {"kernel_size": 5}, 408_194),
    ("cnn", {"kernel_size": 7}, 404_738), ("cnn", {"kernel_size": 11}, 397_826),
    ("multihead_cnn", {}, 1_189_442), ("lstm", {}, 54_706), ("cnn_lstm", {}, 423_650), ("convlstm", {}, 249_026),
]


@pytest.mark.parametrize(("name", "hyperparameters", "expected"), KERAS_COUNTS)
def test_keras_parameter_count(name: str, hyperparameters: dict, expected: int) -> None:
    assert count_parameters(create_model(name, 9, 128, 6, **hyperparameters)) == expected


def test_wisdm_cnn_keras_parameter_count_on_its_own_input() -> None:
    assert count_parameters(create_model("wisdm_cnn", 3, 80, 6)) == 520_486


def keras_lstm_count(inputs: int, units: int) -> int:
    return 4 * (units * (inputs + units) + units)


@pytest.mark.parametrize(("layers", "bidirectional"), [(2, False), (1, True), (3, True)])
def test_stacked_and_bidirectional_lstm_counts(layers: int, bidirectional: bool) -> None:
    directions = 2 if bidirectional else 1
    lstm = sum(directions * keras_lstm_count(9 if i == 0 else 100 * directions, 100) for i in range(layers))
    dense = (100 * directions * 100 + 100) + (100 * 6 + 6)
    model = create_model("lstm", 9, 128, 6, layers=layers, bidirectional=bidirectional)
    assert count_parameters(model) == lstm + dense


def test_training_flops_of_the_tutorial_cnn_match_a_hand_count() -> None:
    """Forward: two convolutions and two dense layers; backward: twice that, less conv1's input gradient."""
    conv1, conv2 = 126 * 64 * 9 * 3 * 2, 124 * 64 * 64 * 3 * 2
    dense = 62 * 64 * 100 * 2 + 100 * 6 * 2
    expected = (conv1 + conv2 + dense) + (conv1 + 2 * conv2 + 2 * dense)
    assert training_flops(create_model("cnn", 9, 128, 6), 9, 128, 6) == expected


def test_training_flops_count_the_lstm_recurrence() -> None:
    recurrence = 3 * 128 * 2 * (9 + 100) * 4 * 100
    dense = 3 * 2 * (100 * 100 + 100 * 6)
    assert training_flops(create_model("lstm", 9, 128, 6), 9, 128, 6) == recurrence + dense


def test_use_bias_false_drops_the_conv_biases() -> None:
    assert count_parameters(create_model("cnn", 9, 128, 6, use_bias=False)) == 411_650 - 2 * 64


# --- Conv1D options --------------------------------------------------------------------------------------


@pytest.mark.parametrize("dilation", [1, 2])
@pytest.mark.parametrize("kernel", [2, 3, 5])
def test_causal_output_depends_only_on_the_past(kernel: int, dilation: int) -> None:
    torch.manual_seed(0)
    conv = Conv1D(2, 4, kernel, ConvOptions(padding="causal", dilation_rate=dilation, activation="linear"))
    x = torch.randn(1, 2, 20)
    base = conv(x)
    assert base.shape == (1, 4, 20)
    for t in range(20):
        changed = x.clone()
        changed[..., t] += 1.0
        diff = (conv(changed) - base).abs().sum(dim=(0, 1))
        assert torch.all(diff[:t] == 0), f"output before step {t} saw step {t}"
        assert diff[t] > 0, f"output at step {t} ignores step {t}"


@pytest.mark.parametrize(("length", "kernel", "stride", "dilation", "expected"), [
    (10, 3, 1, 1, (1, 1)), (10, 4, 1, 1, (1, 2)), (10, 3, 2, 1, (0, 1)), (11, 3, 2, 1, (1, 1)),
    (10, 3, 1, 2, (2, 2)), (10, 1, 3, 1, (0, 0))])
def test_same_padding_splits_like_tensorflow(length: int, kernel: int, stride: int, dilation: int,
                                            expected: tuple[int, int]) -> None:
    conv = Conv1D(1, 1, kernel, ConvOptions(padding="same", strides=stride, dilation_rate=dilation))
    assert conv.padding(length) == expected
    assert conv(torch.zeros(1, 1, length)).shape[-1] == math.ceil(length / stride)


def test_same_padding_with_odd_kernel_equals_centred_convolution() -> None:
    torch.manual_seed(1)
    conv = Conv1D(3, 5, 3, ConvOptions(padding="same", activation="linear"))
    x = torch.randn(2, 3, 16)
    torch.testing.assert_close(conv(x), F.conv1d(x, conv.weight, conv.bias, padding=1))


def test_strides_and_dilation_give_keras_output_lengths() -> None:
    model = create_model("cnn", 9, 128, 6, strides=2, dilation_rate=2)
    conv1, conv2 = model.features[0], model.features[1]
    x = torch.zeros(1, 9, 128)
    # Keras 'valid': floor((n − d·(k−1) − 1) / s) + 1
    assert conv1(x).shape[-1] == (128 - 2 * 2 - 1) // 2 + 1 == 62
    assert conv2(conv1(x)).shape[-1] == (62 - 4 - 1) // 2 + 1 == 29


@pytest.mark.parametrize("name", ["linear", "tanh", "elu", "leaky_relu"])
def test_activation_option_is_applied(name: str) -> None:
    conv = Conv1D(1, 1, 1, ConvOptions(activation=name, use_bias=False))
    with torch.no_grad():
        conv.weight.fill_(1.0)
    x = torch.tensor([[[-2.0, 0.5]]])
    expected = {"linear": x, "tanh": torch.tanh(x), "elu": F.elu(x), "leaky_relu": F.leaky_relu(x, 0.2)}[name]
    torch.testing.assert_close(conv(x), expected)


@pytest.mark.parametrize(("initializer", "std_of_fan"), [("he_normal", lambda fi, fo: math.sqrt(2 / fi)),
                                                         ("glorot_normal", lambda fi, fo: math.sqrt(2 / (fi + fo))),
                                                         ("lecun_normal", lambda fi, fo: math.sqrt(1 / fi))])
def test_truncated_normal_initializers_keep_keras_variance(initializer: str, std_of_fan) -> None:
    torch.manual_seed(0)
    conv = Conv1D(64, 128, 5, ConvOptions(kernel_initializer=initializer))
    fan_in, fan_out = 64 * 5, 128 * 5
    target = std_of_fan(fan_in, fan_out)
    w = conv.weight.detach()
    assert abs(float(w.std()) / target - 1) < 0.03
    assert float(w.abs().max()) <= 2 * target / 0.87962566103423978 + 1e-6  # truncated at two (widened) sigmas


def test_uniform_initializers_and_bias_initializer() -> None:
    torch.manual_seed(0)
    conv = Conv1D(64, 128, 5, ConvOptions(kernel_initializer="he_uniform", bias_initializer="ones"))
    limit = math.sqrt(6 / (64 * 5))
    largest = float(conv.weight.detach().abs().max())
    assert 0.99 * limit < largest <= limit
    assert torch.all(conv.bias == 1)


def test_l2_penalty_is_keras_loss_term_on_kernels_only() -> None:
    model = create_model("cnn", 9, 32, 2, kernel_l2=0.01)
    kernels = [m.weight for m in model.modules() if isinstance(m, Conv1D)]
    expected = 0.01 * sum(float(w.detach().square().sum()) for w in kernels)
    assert float(Contract.of(model).penalty().detach()) == pytest.approx(expected, rel=1e-6)
    assert Contract.of(create_model("cnn", 9, 32, 2)).penalty() is None


def tiny_problem(n: int = 96, steps: int = 32, channels: int = 9, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, channels, steps, generator=g)
    return X, (X[:, 0].mean(1) > 0).long()


def kernel_norm(model: torch.nn.Module) -> float:
    return sum(float(m.weight.detach().square().sum()) for m in model.modules() if isinstance(m, Conv1D))


def test_training_with_l2_shrinks_the_kernels() -> None:
    X, y = tiny_problem()
    norms = {}
    for l2 in (0.0, 0.05):
        torch.manual_seed(0)
        model = create_model("cnn", 9, 32, 2, kernel_l2=l2)
        fit(model, X, y, TrainConfig(epochs=3, batch_size=16), seed=0)
        norms[l2] = kernel_norm(model)
    assert norms[0.05] < 0.9 * norms[0.0]  # same seed, same batches: only the penalty differs


def test_max_norm_constraint_holds_after_every_step() -> None:
    X, y = tiny_problem()
    torch.manual_seed(0)
    model = create_model("cnn", 9, 32, 2, kernel_max_norm=0.5, kernel_initializer="ones")
    fit(model, X, y, TrainConfig(epochs=1, batch_size=16), seed=0)
    for conv in (m for m in model.modules() if isinstance(m, Conv1D)):
        per_filter = conv.weight.detach().square().sum(dim=(1, 2)).sqrt()
        assert torch.all(per_filter <= 0.5 + 1e-5) and torch.all(per_filter > 0.4)


def test_max_norm_leaves_small_filters_alone() -> None:
    conv = Conv1D(1, 2, 2, ConvOptions(kernel_max_norm=1.0))
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[[0.3, 0.4]], [[3.0, 4.0]]]))
    Contract.of(conv).constrain()
    torch.testing.assert_close(conv.weight.detach(), torch.tensor([[[0.3, 0.4]], [[0.6, 0.8]]]), atol=1e-6,
                               rtol=1e-6)


# --- LSTM ------------------------------------------------------------------------------------------------


def test_lstm_keeps_one_bias_and_computes_a_standard_lstm() -> None:
    torch.manual_seed(0)
    layer = KerasLSTM(9, 16)
    names = [name for name, _ in layer.named_parameters()]
    assert names == ["lstm.weight_ih_l0", "lstm.weight_hh_l0", "lstm.bias_ih_l0"]
    assert "lstm.bias_hh_l0" not in layer.state_dict()
    bias = layer.lstm.bias_ih_l0.detach()
    assert torch.all(bias[16:32] == 1) and torch.all(bias[:16] == 0) and torch.all(bias[32:] == 0)
    reference = torch.nn.LSTM(9, 16, batch_first=True)
    with torch.no_grad():
        reference.weight_ih_l0.copy_(layer.lstm.weight_ih_l0)
        reference.weight_hh_l0.copy_(layer.lstm.weight_hh_l0)
        reference.bias_ih_l0.copy_(layer.lstm.bias_ih_l0)
        reference.bias_hh_l0.zero_()
    x = torch.randn(3, 7, 9)
    torch.testing.assert_close(layer(x), reference(x)[0][:, -1])


def test_bidirectional_lstm_concatenates_both_final_states() -> None:
    torch.manual_seed(0)
    layer = KerasLSTM(4, 5, bidirectional=True)
    x = torch.randn(2, 6, 4)
    out = layer(x)
    sequence, _ = layer.lstm(x)
    # forward direction: state after the last step; backward: state after reading back to the first step
    torch.testing.assert_close(out, torch.cat([sequence[:, -1, :5], sequence[:, 0, 5:]], dim=1))


# --- ConvLSTM2D ------------------------------------------------------------------------------------------


def sigmoid(v: float) -> float:
    return 1 / (1 + math.exp(-v))


def test_convlstm_cell_matches_a_hand_computed_case() -> None:
    """One channel, one filter, 1×1 kernel, one pixel, two steps: the equations by hand."""
    layer = ConvLSTM2D(1, 1, (1, 1), activation="tanh")
    w = [0.5, -0.3, 0.8, 0.2]  # input kernel, gates i, f, c, o
    u = [0.1, 0.4, -0.6, 0.3]  # recurrent kernel
    b = [0.05, 1.0, -0.1, 0.0]  # forget bias at 1 (Keras's unit_forget_bias)
    with torch.no_grad():
        layer.input_weight.copy_(torch.tensor(w).reshape(4, 1, 1, 1))
        layer.recurrent_weight.copy_(torch.tensor(u).reshape(4, 1, 1, 1))
        layer.bias.copy_(torch.tensor(b))
    xs = [1.5, -0.7]
    h = c = 0.0
    for x in xs:
        i = sigmoid(w[0] * x + u[0] * h + b[0])
        f = sigmoid(w[1] * x + u[1] * h + b[1])
        g = math.tanh(w[2] * x + u[2] * h + b[2])
        o = sigmoid(w[3] * x + u[3] * h + b[3])
        c = f * c + i * g
        h = o * math.tanh(c)
    out = layer(torch.tensor(xs).reshape(1, 2, 1, 1, 1))
    assert out.shape == (1, 1, 1, 1)
    assert out.item() == pytest.approx(h, rel=1e-6)


def reference_convlstm(x: np.ndarray, W: np.ndarray, U: np.ndarray, b: np.ndarray, act) -> np.ndarray:
    """Direct loops over Keras's definition: 'valid' input conv, 'same' recurrent conv, x [T, C, 1, L]."""
    steps, _, _, length = x.shape
    four_f, _, _, k = W.shape
    filters = four_f // 4
    out_len = length - k + 1
    h = np.zeros((filters, out_len))
    c = np.zeros((filters, out_len))
    pad = (k - 1) // 2
    for t in range(steps):
        z = np.zeros((four_f, out_len))
        hp = np.pad(h, ((0, 0), (pad, k - 1 - pad)))
        for o in range(four_f):
            for j in range(out_len):
                z[o, j] = (W[o, :, 0, :] * x[t, :, 0, j:j + k]).sum() + (U[o, :, 0, :] * hp[:, j:j + k]).sum() + b[o]
        i, f, g, og = np.split(z, 4)
        c = 1 / (1 + np.exp(-f)) * c + 1 / (1 + np.exp(-i)) * act(g)
        h = 1 / (1 + np.exp(-og)) * act(c)
    return h


def test_convlstm_matches_direct_loops_with_a_1x3_kernel() -> None:
    torch.manual_seed(0)
    layer = ConvLSTM2D(2, 3, (1, 3), activation="relu")
    with torch.no_grad():
        layer.bias.uniform_(-0.5, 0.5)
    x = torch.randn(2, 4, 2, 1, 8, dtype=torch.float64)
    layer = layer.double()
    out = layer(x).detach().numpy()
    for n in range(2):
        expected = reference_convlstm(x[n].numpy(), layer.input_weight.detach().numpy(),
                                      layer.recurrent_weight.detach().numpy(), layer.bias.detach().numpy(),
                                      lambda v: np.maximum(v, 0))
        np.testing.assert_allclose(out[n, :, 0], expected, rtol=1e-10, atol=1e-12)


def test_convlstm_recurrent_kernel_is_keras_orthogonal() -> None:
    torch.manual_seed(0)
    layer = ConvLSTM2D(9, 8, (1, 3))
    matrix = layer.recurrent_weight.detach().permute(2, 3, 1, 0).reshape(3 * 8, 32)  # Keras (kh·kw·F, 4F)
    torch.testing.assert_close(matrix @ matrix.T, torch.eye(24), atol=1e-5, rtol=1e-5)
    assert torch.all(layer.bias[8:16] == 1)


# --- the registry ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("hyperparameters", "message"), [
    ({"padding": "full"}, "padding='full': Input should be 'valid', 'same' or 'causal'"),
    ({"filters": "many"}, "filters='many': Input should be a valid integer"),
    ({"filters": 0}, "filters=0: Input should be greater than 0"),
    ({"kernel_initializer": "glorot"}, "kernel_initializer='glorot'"),
    ({"kernel_l2": -1}, "kernel_l2=-1: Input should be greater than or equal to 0"),
    ({"bias_initializer": "orthogonal"}, "bias_initializer='orthogonal'"),
    ({"filtres": 3}, "no hyperparameter(s) ['filtres']"),
])
def test_bad_hyperparameters_are_one_line_errors(hyperparameters: dict, message: str) -> None:
    with pytest.raises(HarlabError) as info:
        create_model("cnn", 9, 128, 6, **hyperparameters)
    assert message in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(("name", "steps", "message"), [
    ("cnn", 4, "window is too short"), ("cnn_lstm", 126, "do not split into 4"),
    ("convlstm", 8, "shorter than the kernel"), ("wisdm_cnn", 30, "window is too short")])
def test_impossible_input_shapes_are_one_line_errors(name: str, steps: int, message: str) -> None:
    with pytest.raises(HarlabError, match=message):
        create_model(name, 9, steps, 6)


def test_hyperparameters_are_converted_and_completed() -> None:
    config = RepeatConfig(model="multihead_cnn", hyperparameters={"kernel_sizes": ["3", 7], "filters": "32"})
    assert config.hyperparameters["kernel_sizes"] == [3, 7] and config.hyperparameters["filters"] == 32
    assert config.hyperparameters["padding"] == "valid"
    model = create_model("multihead_cnn", 9, 128, 6, **config.hyperparameters)
    assert [head[0].kernel_size for head in model.heads] == [3, 7]


def test_command_line_values_are_parsed() -> None:
    assert _parse_params(["kernel_sizes=3,5,11", "use_bias=false", "kernel_l2=0.01", "padding=causal",
                          "kernel_max_norm=none"]) == {"kernel_sizes": [3, 5, 11], "use_bias": False,
                                                       "kernel_l2": 0.01, "padding": "causal",
                                                       "kernel_max_norm": None}


def test_wisdm_cnn_takes_the_tutorials_flat_vectors() -> None:
    torch.manual_seed(0)
    model = create_model("wisdm_cnn", 3, 80, 6).eval()
    windows = torch.randn(4, 80, 3)  # [batch, time, channels], as the tutorial's frames
    flat = windows.reshape(4, 240)  # the tutorial's flattened input, time-major
    torch.testing.assert_close(model(flat), model(windows.transpose(1, 2)))


# --- summaries -------------------------------------------------------------------------------------------


def test_layer_table_matches_keras_summary_of_the_cnn() -> None:
    rows = layer_table(create_model("cnn", 9, 128, 6), 9, 128)
    assert [(r.kind, r.output_shape, r.parameters) for r in rows] == [
        ("Conv1D", "(None, 64, 126)", 1792), ("Conv1D", "(None, 64, 124)", 12352), ("Dropout", "(None, 64, 124)", 0),
        ("MaxPool1d", "(None, 64, 62)", 0), ("TimeMajorFlatten", "(None, 3968)", 0), ("Linear", "(None, 100)", 396900),
        ("ReLU", "(None, 100)", 0), ("Linear", "(None, 6)", 606)]


@pytest.mark.parametrize("name", MODELS)
def test_summary_command_totals_the_keras_count(name: str) -> None:
    shape = "80x3" if name == "wisdm_cnn" else "128x9"
    result = CliRunner().invoke(app, ["models", "summary", name, "--input", shape])
    assert result.exit_code == 0, result.output
    total = int(re.search(r"Total params: ([\d,]+)", result.output).group(1).replace(",", ""))
    steps, channels = map(int, shape.split("x"))
    assert total == count_parameters(create_model(name, channels, steps, 6))
    assert sum(int(m.replace(",", "")) for m in re.findall(r"│\s*([\d,]+)\s*│\s*$", result.output, re.M)) == total


def test_models_list_shows_every_model_with_its_training_defaults() -> None:
    result = CliRunner().invoke(app, ["models", "list"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    for name in MODELS:
        assert name in result.output
    assert "padding=valid" in result.output and "early stopping" in result.output


# --- training --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", MODELS)
def test_every_model_trains_one_epoch(name: str) -> None:
    X, y = tiny_problem(n=64, steps=128 if name == "wisdm_cnn" else 32)
    torch.manual_seed(0)
    model = create_model(name, 9, X.shape[-1], 2)
    before = [p.detach().clone() for p in model.parameters()]
    history = fit(model, X, y, TrainConfig(epochs=1, batch_size=16), seed=0)
    assert math.isfinite(history.loss[0])
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_early_stopping_restores_the_best_epoch() -> None:
    X, y = tiny_problem(n=128)
    Xv, _ = tiny_problem(n=64, seed=2)
    yv = torch.randint(0, 2, (64,), generator=torch.Generator().manual_seed(3))  # unlearnable: loss rises
    torch.manual_seed(0)
    model = create_model("cnn", 9, 32, 2)
    history = fit(model, X, y, TrainConfig(epochs=30, batch_size=16, patience=2), seed=0, validation=(Xv, yv))
    assert len(history.loss) < 30 and len(history.val_loss) == len(history.loss)
    assert history.best_epoch == int(np.argmin(history.val_loss)) + 1
    assert len(history.loss) == history.best_epoch + 2
    assert evaluate(model, Xv, yv)[0] == pytest.approx(min(history.val_loss), rel=1e-5)


def test_patience_without_validation_is_refused() -> None:
    X, y = tiny_problem()
    with pytest.raises(ValueError, match="needs a validation set"):
        fit(create_model("cnn", 9, 32, 2), X, y, TrainConfig(epochs=1, batch_size=16, patience=1), seed=0)


@pytest.fixture(scope="module")
def small_hapt(real_data: Path, tmp_path_factory: pytest.TempPathFactory) -> WindowSet:
    """Real windows of four training subjects and one test subject."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HARLAB_CACHE", str(tmp_path_factory.mktemp("cache")))
        data = load_dataset("hapt", real_data, quiet=True)
    return data.select(np.isin(data.subject, [1, 3, 5, 6, 2]))


def test_holdout_subjects_are_seeded_training_subjects(small_hapt: WindowSet) -> None:
    train, _ = small_hapt.split()
    assert holdout_subjects(train, 0.25, 7) == holdout_subjects(train, 0.25, 7)
    assert len(holdout_subjects(train, 0.25, 7)) == 1 and set(holdout_subjects(train, 0.5, 7)) <= {1, 3, 5, 6}
    assert holdout_subjects(train, 0.0, 7) == []
    assert len({tuple(holdout_subjects(train, 0.25, seed)) for seed in range(10)}) > 1


@pytest.mark.parametrize("name", ["multihead_cnn", "lstm", "cnn_lstm", "convlstm", "wisdm_cnn"])
def test_every_model_runs_the_protocol_on_real_windows(name: str, small_hapt: WindowSet, tmp_path: Path) -> None:
    entry = defaults_of(name)
    config = RepeatConfig(model=name, repeats=1, epochs=2, seed=5)
    results = run_training(ExperimentSpec(name="test", **config.model_dump()), small_hapt, tmp_path / "results")
    run = results.store.rows()[0]
    training = config.train_config()
    assert training.batch_size == entry.batch_size and run["parameters"] > 0
    assert run["accuracy"] > 1 / 6  # two epochs on four subjects: well above chance
    if entry.patience is not None:
        assert training.patience == entry.patience and len(run["validation_subjects"]) == 1
        assert len(run["history"]["val_loss"]) == len(run["history"]["loss"]) and run["best_epoch"] in (1, 2)
    else:
        assert run["validation_subjects"] == [] and "val_loss" not in run["history"]


def test_train_command_runs_a_model_with_early_stopping(real_data: Path, tmp_path: Path) -> None:
    """`harlab train` end to end on the real windows: per-run lines, summary, a complete results folder."""
    out = tmp_path / "wisdm"
    result = subprocess.run(
        [sys.executable, "-m", "harlab", "train", "--model", "wisdm_cnn", "--repeats", "2", "--epochs", "2",
         "--dataset", "hapt", "--data-dir", str(real_data), "--out", str(out), "--param", "filters=16",
         "--param", "late_filters=16", "--param", "padding=same", "--param", "kernel_initializer=he_uniform"],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert re.search(r"^>#1: \d+\.\d{3}  \(balanced \d+\.\d{3}\)$", result.stdout, re.M)
    assert re.search(r"^>#2: ", result.stdout, re.M)
    assert re.search(r"^Accuracy: \d+\.\d% \(\+/-\d+\.\d\)$", result.stdout, re.M)
    runs = Results(out).store.rows()
    config = runs[0]["config"]
    training = RepeatConfig(**config).train_config()
    assert config["hyperparameters"]["padding"] == "same"
    assert config["hyperparameters"]["kernel_size"] == 10  # defaults recorded too
    assert training.patience == 5 and training.batch_size == 400
    assert [len(run["validation_subjects"]) for run in runs] == [4, 4]  # 20 % of 21 subjects
    assert runs[0]["validation_subjects"] != runs[1]["validation_subjects"]
