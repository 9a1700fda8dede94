"""The hidden-Markov smoother: transitions counted on training label sequences, Viterbi and forward-backward
checked against brute force, the matrix carried by bundles and ONNX exports, `--smoothing hmm` end to end on a
real recording, and one-line refusals."""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from harlab.cli import app
from harlab.deploy.hmm import PSEUDO_COUNT, Transitions
from harlab.deploy.predict import StreamPredictor, WindowModel, open_model, parse_smoothing, predict
from harlab.errors import DataError, HarlabError

RNG = np.random.default_rng(0)


def _random_model(n_classes: int = 3) -> Transitions:
    matrix = RNG.random((n_classes, n_classes)) + 3 * np.eye(n_classes)
    priors = RNG.random(n_classes) + 0.2
    return Transitions(4, matrix / matrix.sum(1, keepdims=True), priors / priors.sum())


def _joint(model: Transitions, probabilities: np.ndarray, path: tuple[int, ...]) -> float:
    emission = model.emissions(probabilities)
    value = model.priors[path[0]] * emission[0, path[0]]
    for t in range(1, len(path)):
        value *= model.matrix[path[t - 1], path[t]] * emission[t, path[t]]
    return value


def test_transitions_are_counted_within_groups_with_a_pseudo_count() -> None:
    labels = np.array([0, 0, 1, 1, 2, 0, 0])
    groups = np.array([1, 1, 1, 1, 1, 2, 2])  # 2 → 0 crosses subjects: not a transition
    model = Transitions.count(labels, groups, 3, step=64)
    counts = np.full((3, 3), PSEUDO_COUNT) + np.array([[2, 1, 0], [0, 1, 1], [0, 0, 0]])
    np.testing.assert_allclose(model.matrix, counts / counts.sum(1, keepdims=True))
    np.testing.assert_allclose(model.priors, (np.array([4, 2, 1]) + PSEUDO_COUNT) / (7 + 3 * PSEUDO_COUNT))
    assert model.step == 64 and Transitions.from_dict(json.loads(json.dumps(model.to_dict()))).step == 64


def test_viterbi_and_forward_backward_equal_brute_force() -> None:
    model = _random_model()
    probabilities = RNG.dirichlet(np.ones(3), size=6)
    paths = list(itertools.product(range(3), repeat=6))
    joints = np.array([_joint(model, probabilities, path) for path in paths])
    assert tuple(model.viterbi(probabilities, model.step)) == paths[int(joints.argmax())]
    marginals = np.zeros((6, 3))
    for path, joint in zip(paths, joints, strict=True):
        marginals[np.arange(6), path] += joint
    np.testing.assert_allclose(model.posteriors(probabilities, model.step), marginals / joints.sum(), rtol=1e-9)
    filtered = model.filtered(probabilities, model.step)
    first_three = np.zeros(3)  # filtering: what the first 3 windows alone say of the third
    for path in itertools.product(range(3), repeat=3):
        first_three[path[2]] += _joint(model, probabilities[:3], path)
    np.testing.assert_allclose(filtered[2], first_three / first_three.sum(), rtol=1e-9)
    streamed = np.concatenate([model.filtered(probabilities[:2], model.step),
                               model.filtered(probabilities[2:], model.step,
                                              model.filtered(probabilities[:2], model.step)[-1])])
    np.testing.assert_allclose(streamed, filtered, rtol=1e-12)
    assert np.allclose(filtered[-1], model.posteriors(probabilities, model.step)[-1])  # the last window agrees


def test_the_matrix_follows_the_prediction_step() -> None:
    model = _random_model()
    np.testing.assert_allclose(model.at_step(8), model.matrix @ model.matrix, rtol=1e-9)
    half = model.at_step(2)
    np.testing.assert_allclose(half @ half, model.matrix, atol=1e-6)
    assert (half >= 0).all() and np.allclose(half.sum(1), 1)


def _level_model(transitions: Transitions | None) -> WindowModel:
    """Channel a's value at the window's middle is the class (0, 1, 2), said with 60 % confidence."""

    def probabilities(X: np.ndarray) -> np.ndarray:
        level = np.clip(np.rint(X[:, 5, 0]), 0, 2).astype(int)
        out = np.full((len(X), 3), 0.2)
        out[np.arange(len(X)), level] = 0.6
        return out

    return WindowModel("levels", ("a",), ("rest", "walk", "run"), 10, 10.0, {"pipeline": "none"}, probabilities,
                       transitions)


def test_hmm_smoothing_removes_short_blips_the_mean_keeps_and_the_stream_filters() -> None:
    sticky = Transitions(10, np.full((3, 3), 0.01) + np.eye(3) * 0.97, np.full(3, 1 / 3))
    levels = np.concatenate([np.zeros(200), np.full(30, 2.0), np.zeros(200), np.ones(300)])
    frame = pd.DataFrame({"a": levels})
    model = _level_model(sticky)
    plain = predict(model, frame, rate=10.0, time_column=None, step=10)
    decoded = predict(model, frame, rate=10.0, time_column=None, step=10, smoothing="hmm")
    assert "run" in set(plain["activity"])
    assert list(dict.fromkeys(decoded["activity"])) == ["rest", "walk"]  # the 3-window blip is gone, walk stays
    assert decoded["confidence"].between(0, 1).all()
    stream = StreamPredictor(model, ("a",), step=10, smoothing="hmm")
    emitted = [p for chunk in np.array_split(levels[:, None], 7) for p in stream.push(chunk)]
    raw = np.stack([model.window_probabilities(levels[i:i + 10, None][None].astype(np.float32))[0]
                    for i in range(0, len(levels) - 9, 10)])
    np.testing.assert_allclose([p.probabilities for p in emitted], sticky.filtered(raw, 10), rtol=1e-9)


def test_smoothing_options_and_a_model_without_transitions_are_refused_in_one_line() -> None:
    assert parse_smoothing("5") == 5 and parse_smoothing("HMM") == "hmm"
    for text in ("0", "five", "-1"):
        with pytest.raises(HarlabError, match=r"--smoothing .*: give a number of windows \(1: none\) or hmm"):
            parse_smoothing(text)
    frame = pd.DataFrame({"a": np.zeros(100)})
    with pytest.raises(DataError, match="has no transition matrix of the training activities"):
        predict(_level_model(None), frame, rate=10.0, time_column=None, smoothing="hmm")


def test_a_saved_bundle_and_its_onnx_export_carry_the_training_transitions(hapt_bundle: Path, real_data: Path,
                                                                          tmp_path: Path) -> None:
    """On a test subject's real HAPT recording: the matrix counted on the 21 training subjects' windows is
    sticky (an activity lasts many windows), `harlab predict --smoothing hmm` runs from the bundle and from its
    ONNX export with the same timeline, and agrees with the labels at least as well as no smoothing."""
    from harlab.data import hapt
    from harlab.data.recordings import recording_frame
    from harlab.deploy.predict import timeline, timeline_agreement

    table = json.loads((hapt_bundle / "manifest.json").read_text())["transitions"]
    assert table["step"] == 64 and min(np.diag(table["matrix"])) > 0.8
    recordings, activities = hapt.read_recordings(hapt.locate(real_data))
    frame = recording_frame(next(r for r in recordings if r.subject == hapt.UCI_HAR_TEST_SUBJECTS[0]),
                            dict(enumerate(activities, start=1)))
    path = tmp_path / "rec.csv"
    frame.drop(columns=["activity", "subject"]).to_csv(path, index=False)
    runner = CliRunner()
    exported = runner.invoke(app, ["export", str(hapt_bundle), "--onnx", str(tmp_path / "m.onnx")])
    assert exported.exit_code == 0, exported.output
    timelines = {}
    for source in (hapt_bundle, tmp_path / "m.onnx"):
        out = tmp_path / f"{source.name}.csv"
        result = runner.invoke(app, ["predict", str(source), str(path), "--smoothing", "hmm", "--out", str(out)])
        assert result.exit_code == 0, result.output
        timelines[source.name] = pd.read_csv(out)
    assert timelines["cnn"]["activity"].tolist() == timelines["m.onnx"]["activity"].tolist()
    labels = frame["activity"].to_numpy(dtype=str)
    model = open_model(hapt_bundle)
    agreements = {smoothing: timeline_agreement(timeline(predict(model, frame.drop(columns=["activity", "subject"]),
                                                                 smoothing=smoothing)), labels, 50.0,
                                                model.classes)[0] for smoothing in (1, "hmm")}
    assert agreements["hmm"] >= agreements[1] - 0.01 and agreements["hmm"] > 0.75, agreements


def test_a_bundle_with_a_damaged_transition_table_is_refused_in_one_line(hapt_bundle: Path, tmp_path: Path) -> None:
    copy = tmp_path / "bundle"
    shutil.copytree(hapt_bundle, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["transitions"]["matrix"] = manifest["transitions"]["matrix"][:-1]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match=r"field transitions: not a 6 × 6 matrix with 6 priors"):
        open_model(copy)
    manifest["transitions"]["matrix"] = [[0.5] * 6] * 6
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match="rows and the priors must each sum to 1"):
        open_model(copy)
