"""`harlab tune`: the search space in specs and its errors, seeded TPE, a search that never sees the test
subjects, pruning, a real kill mid-search resumed without losing or repeating trials, the best spec and report."""

from __future__ import annotations

import contextlib
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch
from typer.testing import CliRunner

from harlab.data.datasets import load_dataset
from harlab.data.windowset import WindowSet
from harlab.errors import HarlabError
from harlab.experiments.spec import load_spec, parse_spec
from harlab.integrations.tune import OptunaPruning, TrialRecord, import_optuna, open_study, search
from harlab.training import run as run_module
from harlab.training.callbacks import FitState
from harlab.training.loop import History, to_tensor

# --- the search space in specs ---------------------------------------------------------------------------

SEARCH_SPEC = """name = "search"
dataset = "hapt"
[search]
filters = {low = 16, high = 256, log = true}
kernel_size = {choices = [3, 5, 7]}
learning_rate = {low = 1e-4, high = 1e-2, log = true}
"""


def test_search_space_parses_from_toml_and_yaml(tmp_path: Path) -> None:
    (tmp_path / "s.toml").write_text(SEARCH_SPEC)
    (tmp_path / "s.yaml").write_text("name: search\ndataset: hapt\nsearch:\n"
                                     "  filters: {low: 16, high: 256, log: true}\n"
                                     "  kernel_size: {choices: [3, 5, 7]}\n"
                                     "  learning_rate: {low: 1.0e-4, high: 1.0e-2, log: true}\n")
    spec = load_spec(tmp_path / "s.toml")
    assert spec == load_spec(tmp_path / "s.yaml")
    filters, kernel, rate = spec.search["filters"], spec.search["kernel_size"], spec.search["learning_rate"]
    assert filters.is_int and filters.log and (filters.low, filters.high) == (16, 256)
    assert kernel.choices == [3, 5, 7] and not rate.is_int
    assert "search" in spec.model_dump()
    assert spec.configurations()[0].config.hyperparameters["filters"] == 64  # a spec's own runs are unchanged


def test_a_spec_without_search_dumps_as_before() -> None:
    spec = parse_spec({"name": "x", "model": "lstm", "grid": {"units": [50, 100]}}, "x.toml")
    assert "search" not in spec.model_dump() and "search" not in spec.model_dump(mode="json")
    assert "split" not in spec.model_dump()  # the parent's trick still applies
    assert list(spec.model_dump()) == ["model", "standardize", "epochs", "batch_size", "learning_rate",
                                       "validation_split", "patience", "name", "description", "dataset",
                                       "dataset_options", "hyperparameters", "grid", "repeats", "seed", "tutorial"]


@pytest.mark.parametrize(("search", "message"), [
    ("filterz = {low = 1, high = 3}", "search.filterz: model 'cnn' has no such hyperparameter or run setting"),
    ("filters = {low = 256, high = 16}", "search.filters: Value error, low (256) must be below high (16)"),
    ("filters = {low = 16, high = 16}", "low (16) must be below high (16)"),
    ("filters = {choices = []}", "search.filters: Value error, choices is empty"),
    ("filters = {lwo = 16, high = 32}", "search.filters.lwo: Extra inputs are not permitted"),
    ("filters = {low = 0.5, high = 8.5}", "search.filters: model 'cnn': filters=0.5: Input should be a valid integer"),
    ('filters = {low = "few", high = 8}', "search.filters.low"),
    ("filters = {high = 8}", "give low and high (a range) or choices"),
    ("filters = {low = 8, high = 16, choices = [8]}", "give either choices or a range"),
    ("learning_rate = {low = 0, high = 1, log = true}", "a log range needs low > 0"),
    ("epochs = {low = 0, high = 3}", "search.epochs: epochs: Input should be greater than or equal to 1"),
    ('padding = {choices = ["valid", "full"]}', "search.padding: model 'cnn': padding='full'"),
    ('model = {choices = ["cnn", "resnet"]}', "search.model: unknown model 'resnet'"),
    ('model = {choices = ["cnn", "lstm"]}\nfilters = {choices = [8, 16]}',
     "search.filters: model 'lstm' has no such hyperparameter"),
    ("validation_split = {low = 0.1, high = 0.3}", "search.validation_split: cannot be searched"),
    ("kernel_sizes = {choices = [[3, 5], [7]]}", "search.kernel_sizes: choices must be numbers, strings"),
])
def test_bad_search_spaces_fail_with_one_line_naming_the_field(tmp_path: Path, search: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(f'name = "x"\n[search]\n{search}\n')
    with pytest.raises(HarlabError) as caught:
        load_spec(path)
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert str(caught.value).startswith(f"{path}: bad experiment spec")


def test_model_choice_checks_the_fixed_hyperparameters_too() -> None:
    with pytest.raises(HarlabError, match=r"search\.model: model 'lstm' has no hyperparameter\(s\) \['filters'\]"):
        parse_spec({"name": "x", "hyperparameters": {"filters": 8},
                    "search": {"model": {"choices": ["cnn", "lstm"]}}}, "x.toml")
    with pytest.raises(HarlabError, match="search and grid cannot be combined"):
        parse_spec({"name": "x", "grid": {"filters": [8]}, "search": {"kernel_size": {"choices": [3]}}}, "x.toml")


def test_without_optuna_the_command_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from harlab.cli import app

    monkeypatch.setitem(sys.modules, "optuna", None)  # `import optuna` raises ImportError
    with pytest.raises(HarlabError, match=r"harlab tune needs Optuna: pip install 'harlab\[tune\]'"):
        import_optuna()
    (tmp_path / "s.toml").write_text(SEARCH_SPEC)
    result = CliRunner().invoke(app, ["tune", str(tmp_path / "s.toml")])
    assert isinstance(result.exception, HarlabError) and "harlab[tune]" in str(result.exception)


# --- pruning ---------------------------------------------------------------------------------------------


class FakeTrial:
    def __init__(self, prune_at: int):
        self.prune_at, self.reported = prune_at, []

    def report(self, value: float, step: int) -> None:
        self.reported.append((step, value))

    def should_prune(self) -> bool:
        return self.reported[-1][0] >= self.prune_at


def test_the_pruning_callback_stops_fit_where_the_pruner_says() -> None:
    from harlab.training.loop import TrainConfig, fit

    trial = FakeTrial(prune_at=2)
    X, y = torch.randn(32, 3, 8), torch.randint(0, 2, (32,))
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(24, 2))
    callback = OptunaPruning(trial)  # type: ignore[arg-type]
    callback.on_epoch_end(FitState(model=model, epochs=5, history=History(val_loss=[0.9]), epoch=1))
    with pytest.raises(optuna.TrialPruned, match="pruned at epoch 2"):
        callback.on_epoch_end(FitState(model=model, epochs=5, history=History(val_loss=[0.9, 0.8]), epoch=2))
    assert trial.reported == [(1, 0.9), (2, 0.8)]

    trial = FakeTrial(prune_at=2)
    with pytest.raises(optuna.TrialPruned):
        fit(model, X, y, TrainConfig(epochs=5, batch_size=8), 0, callbacks=[OptunaPruning(trial)],  # type: ignore
            validation=(X, y))
    assert [step for step, _ in trial.reported] == [1, 2]  # epochs 3-5 never ran


# --- searching on real data ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hapt(real_data: Path, tmp_path_factory: pytest.TempPathFactory) -> WindowSet:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HARLAB_CACHE", str(tmp_path_factory.mktemp("tune-cache")))
        return load_dataset("hapt", real_data)


def test_empty_search_space_is_refused(hapt: WindowSet, tmp_path: Path) -> None:
    with pytest.raises(HarlabError, match=r"spec 'x', search: empty; harlab tune needs a search space"):
        search(parse_spec({"name": "x", "dataset": "hapt"}, "x.toml"), hapt, tmp_path, 3)
    assert not (tmp_path / "optuna.db").exists()


def test_seeded_search_never_sees_the_test_subjects_and_prunes(hapt: WindowSet, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    test_windows = {bytes(row.numpy()) for row in to_tensor(hapt.split()[1].X)}
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    original_fit = run_module.fit

    def watched_fit(model, X, y, config, seed, **options):  # type: ignore[no-untyped-def]
        seen.append((X, options["validation"][0]))
        return original_fit(model, X, y, config, seed, **options)

    monkeypatch.setattr(run_module, "fit", watched_fit)
    spec = parse_spec({"name": "p", "dataset": "hapt", "epochs": 2, "hyperparameters": {"filters": 4},
                       "search": {"learning_rate": {"choices": [1e-2, 1e-6]}}}, "p.toml")
    runs = []
    for name in ("a", "b"):
        records: list[TrialRecord] = []
        study, parts = search(spec, hapt, tmp_path / name, 3, on_trial=records.append,
                              pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=1))
        runs.append([(t.params, t.state.name, t.value, dict(t.intermediate_values)) for t in study.trials])
        assert [r.number for r in records] == [0, 1, 2]
    assert runs[0] == runs[1]  # TPE seeded with the spec's seed, deterministic training: the same search
    states = [state for _, state, _, _ in runs[0]]
    assert "PRUNED" in states and "COMPLETE" in states
    for params, state, _, steps in runs[0]:
        if state == "PRUNED":  # the hopeless learning rate, stopped after its first epoch
            assert params == {"learning_rate": 1e-6} and list(steps) == [1]
    assert records[2].line().startswith("trial 2: pruned at epoch 1 (val_loss ")

    # the search saw training subjects only: validation subjects held out of them, the test split never
    test_subjects = set(hapt.test_subjects)
    assert not (set(parts.fit.subject.tolist()) | set(parts.validation_subjects)) & test_subjects
    assert set(parts.validation.subject.tolist()) == set(parts.validation_subjects)
    assert not set(parts.fit.subject.tolist()) & set(parts.validation_subjects)
    assert len(parts.fit) + len(parts.validation) == len(hapt.split()[0])
    assert len(seen) == 6
    for X, X_validation in {(id(a), id(b)): (a, b) for a, b in seen}.values():
        assert len(X) == len(parts.fit) and len(X_validation) == len(parts.validation)
        assert not any(bytes(row.numpy()) in test_windows for row in torch.cat([X, X_validation]))

    # a folder holding another spec's search is refused
    other = parse_spec({"name": "p", "dataset": "hapt", "search": {"kernel_size": {"choices": [3, 5]}}}, "p.toml")
    with pytest.raises(HarlabError, match="holds a search of another spec or other data"):
        open_study(other, hapt, tmp_path / "a")


# --- the command: killed, resumed, best spec and report --------------------------------------------------

KILL_SPEC = """name = "tune-kill"
dataset = "hapt"
epochs = 2
repeats = 1
hyperparameters = { filters = 4 }

[search]
kernel_size = { choices = [3, 5, 7] }
learning_rate = { low = 1e-4, high = 1e-2, log = true }
"""


def trials_in(db: Path) -> dict[int, tuple[str, float | None]]:
    """Trial number → (state, value) as the database holds them (nothing while it is being created)."""
    if not db.exists():
        return {}
    with contextlib.closing(sqlite3.connect(db, timeout=5)) as connection:
        try:
            rows = connection.execute("SELECT t.number, t.state, v.value FROM trials t "
                                      "LEFT JOIN trial_values v ON v.trial_id = t.trial_id").fetchall()
        except sqlite3.OperationalError:
            return {}
    return {number: (state, value) for number, state, value in rows}


def test_killed_search_resumes_and_writes_the_best_spec_and_report(real_data: Path, tmp_path: Path) -> None:
    spec = tmp_path / "kill.toml"
    spec.write_text(KILL_SPEC)
    out = tmp_path / "out"
    args = [sys.executable, "-m", "harlab", "tune", str(spec), "--trials", "3", "--out", str(out), "--data-dir",
            str(real_data), "--threads", "1"]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not any(state == "COMPLETE" for state, _ in trials_in(out / "optuna.db").values()):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "no trial finished in time"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)
    killed = trials_in(out / "optuna.db")
    before = {n: v for n, v in killed.items() if v[0] == "COMPLETE"}
    assert 1 <= len(before) < 3
    assert not (out / "best.yaml").exists()

    resumed = subprocess.run(args, capture_output=True, text=True, timeout=180)
    assert resumed.returncode == 0, resumed.stderr
    after = trials_in(out / "optuna.db")
    complete = {n: v for n, v in after.items() if v[0] == "COMPLETE"}
    assert len(complete) == 3  # --trials counts the finished ones of the killed search
    assert all(complete[n] == v for n, v in before.items())  # none lost, none changed
    assert all(state in ("COMPLETE", "FAIL") for state, _ in after.values())
    assert all(after[n][0] == "FAIL" for n, (state, _) in killed.items() if state == "RUNNING")  # not counted
    assert f"resuming: {len(before)} of 3 trials already finished" in resumed.stderr
    assert len([line for line in resumed.stdout.splitlines() if line.startswith(">trial ")]) == len(after) - len(killed)
    assert "Traceback" not in resumed.stderr

    summary = resumed.stdout.splitlines()[-1]
    best_number, best_value = min(complete.items(), key=lambda item: item[1][1])
    assert summary.startswith(f"best: trial {best_number} of 3, val_loss {best_value[1]:.4f}")
    assert "chosen on validation subjects" in summary and "test accuracy measured once, after the choice" in summary

    best = load_spec(out / "best.yaml")  # ready for `harlab experiment run`
    assert best.name == "tune-kill-best" and not best.search and best.repeats == 1 and best.epochs == 2
    assert best.hyperparameters["filters"] == 4 and best.hyperparameters["kernel_size"] in (3, 5, 7)
    assert len(best.configurations()) == 1
    runs = (out / "best" / "runs.jsonl").read_text().splitlines()
    assert len(runs) == 1
    report = (out / "report.html").read_text()
    for anchor in ("search-space", "trials", "history", "importances", "best", "test", "environment"):
        assert f'id="{anchor}"' in report
    assert "test accuracy measured once, after the choice" in report
    assert (out / "figures" / "optimization-history.png").is_file()
    assert np.isfinite(float(summary.split("after the choice: ")[1].split("%")[0]))


def test_a_search_maximizes_the_monitored_macro_f1(hapt: WindowSet, tmp_path: Path) -> None:
    spec = parse_spec({"name": "f1", "dataset": "hapt", "epochs": 1, "hyperparameters": {"filters": 4},
                       "monitor": "val_macro_f1", "search": {"learning_rate": {"choices": [1e-2, 1e-3]}}}, "f1.toml")
    records: list[TrialRecord] = []
    study, _ = search(spec, hapt, tmp_path / "f1", 2, on_trial=records.append)
    assert study.direction == optuna.study.StudyDirection.MAXIMIZE
    assert [r.objective for r in records] == ["val_macro_f1"] * 2 and all(0 < r.value <= 1 for r in records)
    assert records[0].line().startswith("trial 0: val_macro_f1 0.")
    with pytest.raises(HarlabError, match="monitor"):
        parse_spec({"name": "m", "search": {"monitor": {"choices": ["val_loss", "val_macro_f1"]}}}, "m.toml")
