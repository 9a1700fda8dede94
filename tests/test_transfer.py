"""Fine-tuning a trained model (harlab.training.transfer): `init` from a bundle or pretrained:NAME, channels matched
by name, the head's rows kept or a new head, the backbone frozen, a smaller default learning rate, one-line
refusals; through HARClassifier, `harlab train --init` and a spec."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from harlab.cli import app
from harlab.data.datasets import load_dataset
from harlab.data.windowset import WindowSet
from harlab.deploy.bundle import load_bundle, starting_point
from harlab.errors import HarlabError
from harlab.estimator import HARClassifier
from harlab.models.heads import backbone_parameters, head_of
from harlab.training.config import TrainConfig, head_learning_rate_for
from harlab.training.settings import RepeatConfig
from harlab.training.transfer import fine_tuned_model, parameter_groups

PRETRAINED = "pretrained:hapt-resnet1d"


@pytest.fixture(scope="module")
def hapt(real_data: Path) -> WindowSet:
    return load_dataset("hapt", real_data, quiet=True)


def subjects(data: WindowSet, *ids: int) -> WindowSet:
    return data.select(np.isin(data.subject, ids))


def only_classes(data: WindowSet, names: list[str]) -> WindowSet:
    kept = data.select(np.isin(np.asarray(data.classes)[data.y], names))
    codes = np.array([names.index(data.classes[code]) for code in kept.y], dtype=np.int64)
    return replace(kept, y=codes, classes=tuple(names))


def test_head_rows_are_picked_by_class_name_and_a_new_class_gets_a_new_head() -> None:
    start = starting_point(PRETRAINED)
    old = head_of(start.model, 6)
    model = fine_tuned_model(start, ["LAYING", "WALKING"], None, seed=0)
    head = head_of(model, 2)
    assert torch.equal(head.weight, old.weight[[5, 0]]) and torch.equal(head.bias, old.bias[[5, 0]])
    assert head_of(start.model, 6) is old  # the start itself is untouched
    for new_head in (None, True):
        fresh = head_of(fine_tuned_model(start, ["LAYING", "JUMPING"], new_head, seed=0), 2)
        assert not torch.equal(fresh.weight[0], old.weight[5])
    with pytest.raises(HarlabError, match=r"^init=pretrained:hapt-resnet1d knows the classes WALKING, .*LAYING, "
                                          r"not JUMPING; its head cannot predict them: set new_head=true"):
        fine_tuned_model(start, ["LAYING", "JUMPING"], False, seed=0)


def test_fine_tuning_matches_channels_by_name_and_keeps_the_bundles_input(hapt: WindowSet) -> None:
    data = only_classes(subjects(hapt, 2, 4), ["WALKING", "SITTING", "LAYING"])
    clf = HARClassifier(init=PRETRAINED, epochs=1, random_state=0).fit(data)
    bundle = load_bundle(Path(PRETRAINED))
    assert clf.config_.model == "resnet1d" and clf.config_.hyperparameters == bundle.manifest["hyperparameters"]
    assert clf.config_.train_config().learning_rate == 1e-4  # the fine-tuning default
    assert clf.config_.model_dump()["learning_rate"] == 1e-4 and clf.config_.model_dump()["init"] == PRETRAINED
    assert list(clf.channels_) == bundle.channels and list(clf.classes_) == ["WALKING", "SITTING", "LAYING"]
    assert clf.standardizer_ is None and bundle.standardizer is None  # resnet1d's input is normalised in the model
    assert clf.preprocessing_ == bundle.manifest["preprocessing"]

    reversed_channels = data.with_channels(list(range(len(data.channels)))[::-1])
    again = HARClassifier(init=PRETRAINED, epochs=1, random_state=0).fit(reversed_channels)
    test = only_classes(subjects(hapt, 9), ["WALKING", "SITTING", "LAYING"])
    assert np.allclose(again.predict_proba(test), clf.predict_proba(test), atol=1e-5)
    assert clf.score(test) > 0.9  # three of the pretrained model's own classes, on a subject it was trained on


def test_freezing_keeps_the_backbone_for_the_given_epochs(hapt: WindowSet) -> None:
    data = subjects(hapt, 2)
    start = [p.detach().clone() for p in backbone_parameters(starting_point(PRETRAINED).model, 6)]
    frozen = HARClassifier(init=PRETRAINED, epochs=2, freeze="all", random_state=0).fit(data)
    assert all(torch.equal(a, b) for a, b in zip(backbone_parameters(frozen.model_, 6), start, strict=True))
    assert all(p.requires_grad for p in frozen.model_.parameters())  # trainable again after the fit
    assert not torch.equal(head_of(frozen.model_, 6).weight, head_of(starting_point(PRETRAINED).model, 6).weight)
    thawed = HARClassifier(init=PRETRAINED, epochs=2, freeze=1, random_state=0).fit(data)
    assert not all(torch.equal(a, b) for a, b in zip(backbone_parameters(thawed.model_, 6), start, strict=True))


def test_a_new_head_trains_at_the_from_scratch_rate_and_the_backbone_slower(hapt: WindowSet) -> None:
    def config(**settings: object) -> TrainConfig:
        return RepeatConfig(model="resnet1d", init=PRETRAINED, **settings).train_config()

    assert [head_learning_rate_for(config(), new) for new in (True, False)] == [1e-3, 1e-4]
    assert head_learning_rate_for(config(learning_rate=3e-3), True) == 3e-3
    assert head_learning_rate_for(config(head_learning_rate=1e-5), True) == 1e-5
    model = fine_tuned_model(starting_point(PRETRAINED), ["A", "B"], True, seed=0)
    backbone, head = parameter_groups(model, 2, config(), new_head=True)
    assert (backbone["lr"], head["lr"]) == (1e-4, 1e-3)
    assert {id(p) for p in backbone["params"]} | {id(p) for p in head["params"]} == {id(p) for p in model.parameters()}
    assert len(head["params"]) == 2  # the head's weight and bias, in no other group

    data = only_classes(subjects(hapt, 2, 4), ["WALKING", "SITTING", "LAYING"])
    new_head = head_of(fine_tuned_model(starting_point(PRETRAINED), data.classes, True, seed=0), 3).weight

    def moved(head_rate: float | None) -> float:
        """How far the new head's weights move in one epoch at `head_rate` (the backbone frozen)."""
        clf = HARClassifier(init=PRETRAINED, new_head=True, freeze="all", head_learning_rate=head_rate, epochs=1,
                            random_state=0).fit(data)
        return float((head_of(clf.model_, 3).weight - new_head).abs().max().detach())

    assert moved(1e-12) < 1e-8  # the head's rate reaches the optimizer
    assert moved(None) > 5 * moved(1e-4)  # Adam's steps scale with the rate: the default moves it ~10× as far


def test_bad_fine_tuning_inputs_are_one_line(hapt: WindowSet) -> None:
    data = subjects(hapt, 2)
    acc_only = data.channels_named([c for c in data.channels if "gyro" not in c])
    with pytest.raises(HarlabError, match=r"^init=pretrained:hapt-resnet1d needs channels total_acc_x, .*body_gyro_z "
                                          r"\(the uci-har pipeline's: import with pipeline=uci-har\); the windows "
                                          r"lack body_gyro_x, body_gyro_y, body_gyro_z \(they have total_acc_x, "):
        HARClassifier(init=PRETRAINED, epochs=1).fit(acc_only)
    short = replace(data, X=np.ascontiguousarray(data.X[:, :64]))
    with pytest.raises(HarlabError, match=r"^init=pretrained:hapt-resnet1d takes windows of 128 samples at 50 Hz; "
                                          r"these windows are 64 samples at 50 Hz: import the recordings with "
                                          r"rate=50 window=128$"):
        HARClassifier(init=PRETRAINED, epochs=1).fit(short)
    with pytest.raises(HarlabError, match=r"init=pretrained:hapt-resnet1d is a resnet1d \(filters=.*\); the "
                                          r"configuration trains cnn .*leave the `model` setting"):
        HARClassifier("cnn", init=PRETRAINED, epochs=1).fit(data)
    with pytest.raises(HarlabError, match=r"freeze applies to fine-tuning only; set init=BUNDLE"):
        HARClassifier("cnn", freeze="all").fit(data)
    with pytest.raises(HarlabError, match=r"head_learning_rate applies to fine-tuning only"):
        HARClassifier("cnn", head_learning_rate=1e-3).fit(data)
    with pytest.raises(HarlabError, match=r"^pretrained:nope: no such pretrained model"):
        HARClassifier(init="pretrained:nope").fit(data)


def test_records_without_init_are_unchanged() -> None:
    dump = RepeatConfig(model="cnn").model_dump(mode="json")
    assert dump["learning_rate"] == 1e-3 and not {"init", "freeze", "new_head", "head_learning_rate"} & set(dump)
    assert RepeatConfig(model="cnn", learning_rate=1e-3).key() == RepeatConfig(model="cnn").key()


def test_a_spec_compares_fine_tuning_with_training_from_scratch() -> None:
    from harlab.experiments.spec import parse_spec

    spec = parse_spec({"name": "transfer", "variants": [{"model": "resnet1d"}, {"init": PRETRAINED},
                                                        {"init": PRETRAINED, "freeze": 2}]}, "spec")
    scratch, tuned, frozen = (c.config for c in spec.configurations())
    assert scratch.model == tuned.model == frozen.model == "resnet1d"
    assert tuned.hyperparameters == load_bundle(Path(PRETRAINED)).manifest["hyperparameters"]
    assert [c.train_config().learning_rate for c in (scratch, tuned, frozen)] == [1e-3, 1e-4, 1e-4]
    assert (tuned.init, frozen.freeze, scratch.init) == (PRETRAINED, 2, None)
    fixed = parse_spec({"name": "tuned", "init": PRETRAINED}, "spec").configurations()[0].config
    assert fixed.model == "resnet1d" and fixed.train_config().learning_rate == 1e-4


def test_train_cli_fine_tunes_saves_and_predicts(hapt: WindowSet, real_data: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from test_pretrained import _recording

    monkeypatch.setattr("harlab.api.load_tutorial_dataset", lambda *args, **kwargs: subjects(hapt, 1, 2, 3))
    result = CliRunner().invoke(app, ["train", "--dataset", "hapt", "--init", PRETRAINED, "--epochs", "1",
                                      "--repeats", "1", "--freeze", "all", "--out", str(tmp_path / "out"),
                                      "--save", str(tmp_path / "tuned")])
    assert result.exit_code == 0, result.output
    assert "fine-tuning pretrained:hapt-resnet1d: resnet1d on hapt" in result.output
    [row] = [json.loads(line) for line in (tmp_path / "out" / "runs.jsonl").read_text().splitlines()]
    assert row["config"]["init"] == PRETRAINED and row["config"]["freeze"] == "all"
    assert row["config"]["learning_rate"] == 1e-4
    assert row["init_weights_sha256"] == load_bundle(Path(PRETRAINED)).manifest["weights_sha256"]
    manifest = json.loads((tmp_path / "tuned" / "manifest.json").read_text())
    assert manifest["model"] == "resnet1d" and manifest["training"]["init"] == PRETRAINED
    _recording(real_data, tmp_path / "rec.csv")
    predicted = CliRunner().invoke(app, ["predict", str(tmp_path / "tuned"), str(tmp_path / "rec.csv"), "--out",
                                         str(tmp_path / "timeline.csv")])
    assert predicted.exit_code == 0, predicted.output
    assert (tmp_path / "timeline.csv").stat().st_size > 1000
