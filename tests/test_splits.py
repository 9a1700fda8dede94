"""Subject-wise splits and cross-validation: folds never share a subject, runs record their fold, resume works,
and early stopping validates on training subjects only."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import synthetic_windows
from typer.testing import CliRunner

from harlab.api import Results, run_training
from harlab.cli import app
from harlab.data.splits import SplitSpec, folds
from harlab.errors import HarlabError
from harlab.evaluation.statistics import describe
from harlab.experiments.runner import ExperimentCallback, FinishedRun, run_experiment
from harlab.experiments.spec import ExperimentSpec, parse_spec
from harlab.training.settings import RepeatConfig


@pytest.mark.parametrize("split", [SplitSpec(kind="loso"), SplitSpec(kind="kfold", folds=3),
                                   SplitSpec(kind="holdout", test_fraction=0.4), SplitSpec()])
def test_folds_never_share_a_subject(split: SplitSpec) -> None:
    data = synthetic_windows([1, 2, 3, 4, 5, 6])
    tested: list[int] = []
    for fold in folds(data, split):
        train, test = fold.apply(data)
        assert len(train) + len(test) == len(data)
        assert not set(train.subject) & set(test.subject)
        tested += sorted(set(test.subject.tolist()))
    if split.kind in ("loso", "kfold"):
        assert sorted(tested) == [1, 2, 3, 4, 5, 6]  # every subject tested exactly once
    if split.kind == "loso":
        assert [f.name for f in folds(data, split)] == [f"subject-{s}" for s in range(1, 7)]
    if split.kind == "holdout":
        assert len(tested) == 2 and folds(data, split) == folds(data, split)  # seeded
    if split.kind == "fixed":
        assert tested == [6]  # the dataset's own test subjects


def test_a_single_subject_or_too_many_folds_fail_with_one_line() -> None:
    with pytest.raises(HarlabError, match=r"1 subject.*cannot be split by subject"):
        folds(synthetic_windows([7]), SplitSpec(kind="loso"))
    with pytest.raises(HarlabError, match="5 folds need at least 5 subjects"):
        folds(synthetic_windows([1, 2, 3]), SplitSpec(kind="kfold", folds=5))


def test_the_default_split_stays_out_of_records_and_a_bare_name_is_accepted() -> None:
    assert "split" not in RepeatConfig(model="cnn").model_dump()
    assert RepeatConfig(model="cnn", split="loso").model_dump()["split"]["kind"] == "loso"
    assert RepeatConfig(model="cnn").key() != RepeatConfig(model="cnn", split="loso").key()


def test_cross_validated_repeats_record_their_fold_and_resume(tmp_path: Path) -> None:
    data = synthetic_windows([1, 2, 3, 4])
    config = RepeatConfig(model="cnn", hyperparameters={"filters": 4}, epochs=1, batch_size=16, repeats=2,
                          split=SplitSpec(kind="kfold", folds=2))
    trained: list[str] = []

    class Folds(ExperimentCallback):
        def on_run_end(self, run: FinishedRun) -> None:
            trained.append(run.result.fold)

    spec = ExperimentSpec(name="test", **config.model_dump())
    results = run_training(spec, data, tmp_path / "cv", callbacks=[Folds()])
    rows = results.store.rows()
    by_fold: dict[str, list[float]] = {}
    for row in rows:
        by_fold.setdefault(row["fold"], []).append(row["accuracy"])
    per_fold = {fold: describe(accuracies) for fold, accuracies in by_fold.items()}
    assert sorted(trained) == ["kfold-1/2"] * 2 + ["kfold-2/2"] * 2
    assert set(per_fold) == {"kfold-1/2", "kfold-2/2"} and results.analysis().configurations[0].summary.runs == 4
    assert results.store.dataset()["folds"] == {f.name: list(f.test_subjects) for f in folds(data, config.split)}
    again = run_training(spec, data, tmp_path / "cv")
    assert [r["accuracy"] for r in again.store.rows()] == [r["accuracy"] for r in rows]


def test_an_experiment_spec_runs_leave_one_subject_out(tmp_path: Path) -> None:
    spec = parse_spec({"name": "loso", "model": "cnn", "split": "loso", "repeats": 1, "epochs": 1,
                       "batch_size": 16, "hyperparameters": {"filters": 4}}, "test")
    store = run_experiment(spec, synthetic_windows([1, 2, 3]), tmp_path / "loso")
    assert sorted(row["fold"] for row in store.rows()) == ["subject-1", "subject-2", "subject-3"]
    assert store.dataset()["folds"] == {"subject-1": [1], "subject-2": [2], "subject-3": [3]}
    before = store.rows()
    assert run_experiment(spec, synthetic_windows([1, 2, 3]), tmp_path / "loso").rows() == before  # nothing retrained


def test_early_stopping_validates_on_training_subjects_only(real_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "es"
    result = CliRunner().invoke(app, ["train", "--dataset", "hapt", "--data-dir", str(real_data), "--model",
                                      "cnn", "--param", "filters=8", "--repeats", "1", "--epochs", "3",
                                      "--early-stopping", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    store = Results(out).store
    run = store.rows()[0]
    assert run["config"]["patience"] == 1 and run["config"]["validation_split"] == 0.2
    assert run["validation_subjects"] and set(run["validation_subjects"]) <= set(store.dataset()["train_subjects"])
    assert len(run["history"]["val_loss"]) == len(run["history"]["loss"]) >= 1
    assert "weighted avg" in result.output and "confusion matrix" in result.output


def test_an_unknown_cv_kind_is_one_line() -> None:
    result = CliRunner().invoke(app, ["train", "--cv", "bootstrap"])
    assert isinstance(result.exception, HarlabError)
    assert str(result.exception) == "--cv bootstrap: choose one of fixed, holdout, kfold, loso"
