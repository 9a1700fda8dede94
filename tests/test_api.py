"""The public Python API: the issue's example runs as written, the classifier follows scikit-learn's conventions
and trains exactly the runs `harlab train` trains, and `harlab train` results are an experiment like any other."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, GroupKFold, cross_val_score
from typer.testing import CliRunner

import harlab
from harlab.cli import app
from harlab.data.windowset import WindowSet
from harlab.errors import HarlabError


@pytest.fixture(scope="module")
def hapt(real_data: Path, tmp_path_factory: pytest.TempPathFactory) -> WindowSet:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HARLAB_CACHE", str(tmp_path_factory.mktemp("api-cache")))
        return harlab.load_dataset("hapt", real_data)


@pytest.fixture(scope="module")
def few(hapt: WindowSet) -> WindowSet:
    """Six training and two test subjects: enough for every call below, quick to train."""
    train_subjects, test_subjects = (1, 3, 5, 6, 7, 8), (2, 4)
    keep = hapt.select(np.isin(hapt.subjects, train_subjects + test_subjects))
    return WindowSet(keep.X, keep.y, keep.subject, keep.channels, keep.classes, keep.sampling_rate, keep.step,
                     test_subjects, keep.provenance)


def test_the_issue_example_runs_as_written(real_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARLAB_DATA_DIR", str(real_data))
    data = harlab.load_dataset("hapt")
    train, test = data.split()
    clf = harlab.HARClassifier("cnn", epochs=2, standardize=True, random_state=0).fit(train)
    assert 0.85 < clf.score(test) <= 1
    scores = cross_val_score(harlab.HARClassifier("cnn", epochs=1), train.X, train.y,
                             groups=train.subjects, cv=GroupKFold(3))
    assert scores.shape == (3,) and np.all(scores > 0.6)


def test_the_public_names_are_exported() -> None:
    assert set(harlab.__all__) >= {"load_dataset", "WindowSet", "list_models", "create_model", "HARClassifier",
                                   "run_experiment", "Results", "tune", "export_onnx", "predict", "train"}
    for name in harlab.__all__:
        assert getattr(harlab, name) is not None


def test_the_classifier_follows_scikit_learn_conventions() -> None:
    clf = harlab.HARClassifier("lstm", epochs=3, standardize=True, hyperparameters={"units": 8}, random_state=4)
    params = clf.get_params()
    assert params["model"] == "lstm" and params["epochs"] == 3 and params["random_state"] == 4
    assert params["batch_size"] is None and params["standardize"] is True
    copy = clone(clf)
    assert copy.get_params() == params and not hasattr(copy, "model_")
    with pytest.raises(TypeError, match="unknown parameter"):
        harlab.HARClassifier("cnn", epoch=3)


def test_one_seed_trains_the_same_run_as_harlab_train(few: WindowSet, tmp_path: Path) -> None:
    train, test = few.split()
    clf = harlab.HARClassifier("cnn", epochs=1, standardize=True, random_state=3).fit(train)
    results = harlab.train("cnn", data=few, repeats=1, seed=3, epochs=1, standardize=True, out=tmp_path / "t")
    [row] = results.store.rows()
    assert clf.score(test) == pytest.approx(row["accuracy"], abs=1e-12)
    names = clf.predict(test)
    assert set(names) <= set(few.classes) and list(clf.classes_) == list(few.classes)


def test_fit_takes_arrays_with_any_labels_and_grid_search_works(few: WindowSet) -> None:
    train, test = few.split()
    labels = np.array(["a", "b", "c", "d", "e", "f"])[train.y]
    clf = harlab.HARClassifier("cnn", epochs=1, hyperparameters={"filters": 8}, random_state=0)
    clf.fit(train.X, labels)
    assert list(clf.classes_) == ["a", "b", "c", "d", "e", "f"]
    assert clf.predict_proba(test.X).shape == (len(test), 6)
    assert clf.score(test.X, np.array(["a", "b", "c", "d", "e", "f"])[test.y]) > 0.5
    search = GridSearchCV(harlab.HARClassifier("cnn", epochs=1, hyperparameters={"filters": 8}, random_state=0),
                          {"standardize": [False, True]}, cv=GroupKFold(2))
    search.fit(train.X, train.y, groups=train.subjects)
    assert set(search.cv_results_["param_standardize"]) == {False, True}


def test_bad_input_is_one_line(few: WindowSet) -> None:
    train, _ = few.split()
    with pytest.raises(HarlabError, match="y is missing"):
        harlab.HARClassifier("cnn").fit(train.X)
    with pytest.raises(HarlabError, match="epochs"):
        harlab.HARClassifier("cnn", epochs=0).fit(train)
    with pytest.raises(HarlabError, match="validation_split"):
        harlab.HARClassifier("cnn", validation_split=0.2, epochs=1).fit(train.X, train.y)  # one subject
    clf = harlab.HARClassifier("cnn", epochs=1, random_state=0).fit(train)
    with pytest.raises(HarlabError, match="takes windows"):
        clf.predict(train.X[:, :64])


def test_a_saved_classifier_is_a_bundle_the_cli_predicts_with(few: WindowSet, tmp_path: Path) -> None:
    train, test = few.split()
    clf = harlab.HARClassifier("cnn", epochs=1, standardize=True, random_state=0).fit(train)
    bundle = clf.save(tmp_path / "bundle")
    again = harlab.HARClassifier.load(bundle)
    assert np.allclose(again.predict_proba(test), clf.predict_proba(test), atol=1e-6)
    assert again.get_params()["standardize"] is True and again.score(test) == clf.score(test)
    onnx = harlab.export_onnx(bundle, tmp_path / "m.onnx")
    assert onnx.is_file()


def test_harlab_train_writes_an_experiment_folder_the_report_reads(few: WindowSet, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("harlab.api.load_tutorial_dataset", lambda *args, **kwargs: few)
    out = tmp_path / "train"
    runner = CliRunner()
    result = runner.invoke(app, ["train", "--model", "cnn", "--repeats", "2", "--epochs", "1", "--dataset", "hapt",
                                 "--param", "filters=8", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert ">#1: " in result.output and ">#2: " in result.output and "Accuracy: " in result.output
    report = runner.invoke(app, ["experiment", "report", str(out)])
    assert report.exit_code == 0, report.output
    assert (out / "report.html").is_file() and "2 of 2 runs" in report.output
    results = harlab.Results(out)
    assert list(results.runs["repeat"]) == [1, 2] and results.summary().loc["cnn", "runs"] == 2
    again = runner.invoke(app, ["train", "--model", "cnn", "--repeats", "2", "--epochs", "1", "--dataset", "hapt",
                                "--param", "filters=8", "--out", str(out)])
    assert again.exit_code == 0 and "resuming: 2 of 2 runs" in again.output  # nothing trained twice
    assert len(harlab.Results(out).store.rows()) == 2


def test_an_old_train_results_file_is_refused_with_how_to_convert(few: WindowSet, tmp_path: Path) -> None:
    old = tmp_path / "train-cnn.json"
    old.write_text('{"config": {}, "runs": []}')
    with pytest.raises(HarlabError, match=r"older harlab train.*train again with the same options"):
        harlab.train("cnn", data=few, repeats=1, epochs=1, out=old)
