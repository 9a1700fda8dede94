"""A damaged database beside the results (MLflow's mlflow.db, Optuna's search.db) is one line naming it and
the fix, never SQLAlchemy's traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from harlab.errors import HarlabError
from harlab.experiments.spec import parse_spec

NOT_A_DATABASE = b"this is not an SQLite database\n" * 200


def test_a_damaged_mlflow_store_is_one_line(tmp_path: Path) -> None:
    from harlab.integrations.tracking import ExperimentTracker

    (tmp_path / "mlflow.db").write_bytes(NOT_A_DATABASE)
    spec = parse_spec({"name": "damaged", "model": "cnn"}, "spec")
    with pytest.raises(HarlabError) as info:
        ExperimentTracker.open(spec, tmp_path)
    message = str(info.value)
    assert "\n" not in message and "mlflow.db" in message and "damaged" in message and "move it aside" in message


def test_a_damaged_study_database_is_one_line(tmp_path: Path) -> None:
    from conftest import synthetic_windows

    from harlab.integrations.tune import SEARCH_DB, open_study

    (tmp_path / SEARCH_DB).write_bytes(NOT_A_DATABASE)
    spec = parse_spec({"name": "damaged", "model": "cnn", "search": {"filters": {"low": 8, "high": 16}}}, "spec")
    with pytest.raises(HarlabError) as info:
        open_study(spec, synthetic_windows(list(range(1, 6))), tmp_path)
    message = str(info.value)
    assert "\n" not in message and SEARCH_DB in message and "move it aside" in message
