"""Training options of the modern models: schedules, weight decay, label smoothing, augmentation, and how run
settings that name them are recorded."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from conftest import synthetic_windows
from typer.testing import CliRunner

from harlab.api import Results, run_training
from harlab.cli import app
from harlab.errors import HarlabError
from harlab.evaluation.runs import RunTrainer
from harlab.experiments.spec import ExperimentSpec
from harlab.models.registry import create_model
from harlab.training.augment import Augmenter, axis_groups, random_rotations
from harlab.training.loop import TrainConfig, fit, to_tensor
from harlab.training.settings import RepeatConfig

CHANNELS = ("total_acc_x", "total_acc_y", "total_acc_z", "body_gyro_x", "body_gyro_y", "body_gyro_z", "temp")


def _batch(seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(16, len(CHANNELS), 64, generator=generator) * 2 + 1


def _augmenter(*kinds: str, standardized: bool = False) -> Augmenter:
    return Augmenter(kinds, CHANNELS, np.full(len(CHANNELS), 1.0), np.full(len(CHANNELS), 2.0), standardized)


def test_axis_groups_by_channel_name() -> None:
    assert axis_groups(CHANNELS) == [(0, 1, 2), (3, 4, 5)]
    assert axis_groups(("acc-X", "acc-Y", "acc-Z", "gyro_x", "gyro_y")) == [(0, 1, 2)]  # gyro lacks z
    with pytest.raises(HarlabError, match=r"rotation needs x/y/z channel triples.*c0, c1"):
        Augmenter(("rotation",), ("c0", "c1"), np.zeros(2), np.ones(2), False)


def test_rotations_are_proper_and_small() -> None:
    rotation = random_rotations(200, torch.Generator().manual_seed(1))
    identity = torch.eye(3).expand(200, 3, 3)
    torch.testing.assert_close(rotation @ rotation.transpose(1, 2), identity, atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.linalg.det(rotation), torch.ones(200), atol=1e-5, rtol=0)
    angle = torch.arccos(((rotation.diagonal(dim1=1, dim2=2).sum(1) - 1) / 2).clamp(-1, 1))
    assert angle.max() <= math.radians(15) + 1e-4 and angle.max() > math.radians(10)


def test_rotation_turns_every_group_by_the_same_rotation_and_keeps_other_channels() -> None:
    x = _batch()
    turned = _augmenter("rotation")(x, torch.Generator().manual_seed(2))
    for group in ([0, 1, 2], [3, 4, 5]):
        torch.testing.assert_close(turned[:, group].norm(dim=1), x[:, group].norm(dim=1), atol=1e-4, rtol=1e-5)
    assert not torch.allclose(turned[:, :6], x[:, :6])
    torch.testing.assert_close(turned[:, 6], x[:, 6])
    # One device, one frame: the same rotation maps the accelerometer and the gyroscope.
    first, second = (torch.linalg.lstsq(x[0, g].T, turned[0, g].T).solution for g in ([0, 1, 2], [3, 4, 5]))
    torch.testing.assert_close(first, second, atol=1e-4, rtol=1e-4)


def test_augmentation_works_in_sensor_units_on_standardized_batches() -> None:
    """Rotating standardized channels would be meaningless; the augmenter un-standardizes first."""
    raw = _batch()
    standardized = (raw - 1) / 2
    generator_state = torch.Generator().manual_seed(3)
    expected = _augmenter("rotation")(raw, generator_state)
    got = _augmenter("rotation", standardized=True)(standardized, torch.Generator().manual_seed(3))
    torch.testing.assert_close(got * 2 + 1, expected, atol=1e-5, rtol=1e-5)


def test_jitter_scaling_and_time_warp_change_windows_gently() -> None:
    x = _batch()
    jittered = _augmenter("jitter")(x, torch.Generator().manual_seed(4))
    assert 0.05 < float((jittered - x).std()) < 0.15  # 5 % of a channel std of 2
    scaled = _augmenter("scaling")(x, torch.Generator().manual_seed(4))
    gain = scaled / x
    assert float((gain - gain[..., :1]).abs().max()) < 1e-4  # one gain per window and channel
    assert 0.05 < float(gain[..., 0].std()) < 0.2
    warped = _augmenter("time_warp")(x, torch.Generator().manual_seed(4))
    assert warped.shape == x.shape
    torch.testing.assert_close(warped[..., [0, -1]], x[..., [0, -1]])  # the ends stay put
    ramp = torch.linspace(0, 1, 64).expand(2, len(CHANNELS), 64)
    warped_ramp = _augmenter("time_warp")(ramp, torch.Generator().manual_seed(5))
    assert bool((warped_ramp.diff(dim=-1) >= -1e-6).all())  # time still runs forwards
    assert float((warped_ramp - ramp).abs().max()) > 0.01


def _fit(config: TrainConfig, seed: int = 0) -> tuple[torch.nn.Module, object]:
    data = synthetic_windows([1, 2, 3, 4], per_subject=16)
    torch.manual_seed(seed)
    model = create_model("cnn", 9, 32, 2, filters=8)
    X, y = to_tensor(data.X), torch.from_numpy(data.y)
    return model, fit(model, X, y, config, seed, validation=(X[:16], y[:16]))


def _learning_rates(config: TrainConfig) -> list[float]:
    """The learning rate of every optimizer step of a fit."""
    seen: list[float] = []
    original = torch.optim.AdamW.step

    def record(self: torch.optim.AdamW, *args: object, **kwargs: object) -> object:
        seen.append(self.param_groups[0]["lr"])
        return original(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch.optim.AdamW, "step", record)
        _fit(config)
    return seen


def test_cosine_schedule_anneals_to_zero_and_plateau_halves() -> None:
    cosine = _learning_rates(TrainConfig(4, 16, schedule="cosine"))
    assert len(cosine) == 16 and cosine[0] == pytest.approx(1e-3)
    assert all(a > b for a, b in itertools.pairwise(cosine)) and cosine[-1] < 2e-5
    # A learning rate too small to move the validation loss: halved after every 3 + 1 epochs without progress.
    plateau = _learning_rates(TrainConfig(12, 16, learning_rate=1e-12, schedule="plateau"))
    per_epoch = plateau[::4]
    assert per_epoch == pytest.approx([1e-12] * 5 + [5e-13] * 4 + [2.5e-13] * 3)
    assert set(_learning_rates(TrainConfig(12, 16, learning_rate=1e-12))) == {1e-12}


def test_weight_decay_shrinks_weights_and_label_smoothing_raises_the_loss_floor() -> None:
    plain, _ = _fit(TrainConfig(6, 16))
    decayed, _ = _fit(TrainConfig(6, 16, weight_decay=0.5))
    norm = lambda model: float(sum(p.detach().norm() ** 2 for p in model.parameters()))  # noqa: E731
    assert norm(decayed) < norm(plain)
    _, sharp = _fit(TrainConfig(6, 16))
    _, smoothed = _fit(TrainConfig(6, 16, label_smoothing=0.2))
    assert smoothed.loss[-1] > sharp.loss[-1]


def test_ensemble_members_each_get_their_own_loss() -> None:
    class Twins(torch.nn.Module):
        """Two linear members; while training, their logits stacked [2, batch, classes]."""

        ensemble_members = 2  # declared, as harlab.models.contract asks of an ensemble

        def __init__(self) -> None:
            super().__init__()
            self.members = torch.nn.ModuleList(torch.nn.Linear(9 * 32, 2) for _ in range(2))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            logits = torch.stack([member(x.flatten(1)) for member in self.members])
            return logits if self.training else logits.softmax(-1).mean(0).log()

    data = synthetic_windows([1, 2], per_subject=16)
    X, y = to_tensor(data.X), torch.from_numpy(data.y)
    torch.manual_seed(0)
    twins = Twins()
    alone = [torch.nn.Linear(9 * 32, 2) for _ in range(2)]
    for single, member in zip(alone, twins.members, strict=True):
        single.load_state_dict(member.state_dict())
    history = fit(twins, X, y, TrainConfig(1, 32, learning_rate=0.01), 0)
    assert history.accuracy[0] > 0.5
    # Each member moves by its own loss only (halved by the mean over members, which Adam does not see):
    # a member trained alone from the same start ends in the same place.
    for single, member in zip(alone, twins.members, strict=True):
        wrapped = torch.nn.Sequential(torch.nn.Flatten(), single)
        fit(wrapped, X, y, TrainConfig(1, 32, learning_rate=0.01), 0)
        torch.testing.assert_close(member.weight, single.weight, atol=1e-5, rtol=1e-4)


def test_unset_options_leave_records_unchanged_and_set_ones_reach_training() -> None:
    plain = RepeatConfig(model="cnn")
    # the key of this configuration before the options existed: earlier results still match
    assert set(plain.model_dump()) == {"model", "standardize", "epochs", "batch_size", "learning_rate",
                                       "validation_split", "patience", "hyperparameters", "repeats", "seed"}
    assert plain.key() == "270d8106227c" and plain.train_config().augment == ()
    tuned = RepeatConfig(model="cnn", schedule="cosine", weight_decay=0.01, label_smoothing=0.1,
                         augment=["rotation", "jitter"])
    assert tuned.key() != plain.key()
    config = tuned.train_config()
    assert (config.schedule, config.weight_decay, config.label_smoothing, config.augment) == (
        "cosine", 0.01, 0.1, ("rotation", "jitter"))
    with pytest.raises(ValueError, match="augment"):
        RepeatConfig(model="cnn", augment=["mixup"])


def test_augmented_runs_are_reproducible_and_differ_from_plain_ones(tmp_path) -> None:
    data = synthetic_windows([1, 2, 3, 4], per_subject=16)
    data = type(data)(**{**data.__dict__, "channels": ("acc_x", "acc_y", "acc_z", *data.channels[3:])})
    common = dict(model="cnn", hyperparameters={"filters": 8}, epochs=2, repeats=1, standardize=True)
    runs = [run_training(ExperimentSpec(name="test", **RepeatConfig(**common, **options).model_dump()), data,
                         tmp_path / f"{i}").store.rows()[0]
            for i, options in enumerate([{}, {"augment": ["rotation", "time_warp", "scaling", "jitter"]},
                                         {"augment": ["rotation", "time_warp", "scaling", "jitter"]}])]
    assert runs[1]["history"] == runs[2]["history"]
    assert runs[0]["history"] != runs[1]["history"]
    assert runs[1]["inference_windows_per_second"] > 0


def test_train_command_takes_the_options_and_rejects_bad_ones_in_one_line(real_data, tmp_path) -> None:
    runner = CliRunner()
    bad = runner.invoke(app, ["train", "--schedule", "sometimes", "--augment", "jitter,mixup"])
    assert bad.exit_code == 1 and "\n" not in str(bad.exception)
    assert "schedule: Input should be 'constant', 'cosine' or 'plateau'" in str(bad.exception)
    assert "augment.1" in str(bad.exception) and "mixup" in str(bad.exception)
    out = tmp_path / "r"
    result = runner.invoke(app, ["train", "--dataset", "hapt", "--data-dir", str(real_data), "--model", "cnn",
                                 "--param", "filters=8", "--repeats", "1", "--epochs", "1", "--standardize",
                                 "--schedule", "cosine", "--weight-decay", "0.01", "--label-smoothing", "0.1",
                                 "--augment", "rotation,time_warp", "--out", str(out)])
    assert result.exit_code == 0, result.output
    training = RepeatConfig(**Results(out).store.rows()[0]["config"]).train_config()
    assert (training.schedule, training.weight_decay, training.label_smoothing, training.augment) == (
        "cosine", 0.01, 0.1, ("rotation", "time_warp"))


def test_a_self_fitting_model_gets_one_augmented_copy_per_further_epoch() -> None:
    class Recorder(torch.nn.Module):
        """Fits nothing; keeps what it was handed."""

        def __init__(self) -> None:
            super().__init__()
            self.head = torch.nn.Linear(9 * 32, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(x.flatten(1))

        def fit_windows(self, X: torch.Tensor, y: torch.Tensor, seed: int, copies=()) -> None:
            self.seen = (torch.cat([X, *copies]), y.repeat(1 + len(copies)))

    data = synthetic_windows([1, 2], per_subject=8)
    X, y = to_tensor(data.X), torch.from_numpy(data.y)
    augment = Augmenter(("jitter",), data.channels, np.zeros(9), np.ones(9), False)
    for epochs, augmenter, copies in [(3, augment, 3), (3, None, 1), (1, augment, 1)]:
        model = Recorder()
        history = fit(model, X, y, TrainConfig(epochs, 8), 0, augment=augmenter)
        seen_X, seen_y = model.seen
        assert len(seen_X) == copies * len(X) and torch.equal(seen_y, y.repeat(copies))
        assert torch.equal(seen_X[:len(X)], X) and len(history.loss) == 1
        if copies == 3:
            assert not torch.equal(seen_X[len(X):2 * len(X)], X)
            assert not torch.equal(seen_X[len(X):2 * len(X)], seen_X[2 * len(X):])


def test_configurations_trained_one_after_another_each_get_their_own_augmentation() -> None:
    """One trainer runs a spec's configurations in turn: a later one with augmentation must not reuse the
    tensors prepared (without an augmenter) for an earlier one."""
    trainer = RunTrainer(synthetic_windows([1, 2, 3, 4], per_subject=8))
    plain, jittered = (RepeatConfig(model="cnn", standardize=True, augment=augment) for augment in ([], ["jitter"]))
    assert trainer.prepared(plain, 0)[0].augment is None
    assert trainer.prepared(jittered, 0)[0].augment.kinds == ("jitter",)
    assert trainer.prepared(plain, 0)[0].augment is None
