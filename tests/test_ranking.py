"""Ranking many configurations: mean ranks over repeats, Friedman's test, Nemenyi's critical difference, and the
ranking with cost in the terminal and the HTML report of a results store."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from harlab.evaluation.statistics import (
    critical_difference,
    friedman_p,
    mean_ranks,
    nemenyi_groups,
    rank_test,
)
from harlab.experiments.spec import parse_spec
from harlab.experiments.store import ResultsStore
from harlab.reports.analysis import analyze, ranking_lines
from harlab.reports.html import experiment_report
from harlab.reports.plots import critical_difference_diagram, figure_bytes

# --- statistics ------------------------------------------------------------------------------------------


def test_mean_ranks_give_ties_the_average_rank() -> None:
    scores = np.array([[0.9, 0.8, 0.8],   # ranks 1, 2.5, 2.5
                       [0.7, 0.9, 0.8],   # ranks 3, 1, 2
                       [0.5, 0.5, 0.5]])  # ranks 2, 2, 2
    assert mean_ranks(scores) == pytest.approx([2.0, 11 / 6, 13 / 6])


def test_friedman_p_when_one_always_wins_and_when_all_are_equal() -> None:
    wins = np.array([[0.95, 0.90 + 0.01 * i, 0.85] for i in range(5)])  # ranks 1, 2, 3 in each of 5 repeats
    # chi² = 12N / (k(k+1)) · ΣR² − 3N(k+1) = 5 · 14 − 60 = 10 with k − 1 = 2 degrees of freedom
    assert friedman_p(wins) == pytest.approx(stats.chi2.sf(10, 2)) and friedman_p(wins) < 0.01
    assert friedman_p(np.full((5, 3), 0.9)) == 1.0
    shuffled = np.array([[0.9, 0.8, 0.7], [0.7, 0.9, 0.8], [0.8, 0.7, 0.9], [0.9, 0.7, 0.8], [0.8, 0.9, 0.7]])
    assert friedman_p(shuffled) > 0.5


def test_critical_difference_matches_demsar_table() -> None:
    assert critical_difference(3, 5) == pytest.approx(2.343 * math.sqrt(3 * 4 / 30), abs=1e-3)
    assert critical_difference(3, 5) == pytest.approx(1.482, abs=1e-3)
    table = {2: 1.960, 3: 2.343, 4: 2.569, 5: 2.728, 6: 2.850, 7: 2.949, 8: 3.031, 9: 3.102, 10: 3.164}
    for k, q in table.items():
        assert critical_difference(k, 12) == pytest.approx(q * math.sqrt(k * (k + 1) / 72), abs=2e-3)


def test_nemenyi_groups_are_maximal_runs_closer_than_cd() -> None:
    ranks = {"d": 3.9, "a": 1.0, "b": 1.5, "c": 2.2}
    assert nemenyi_groups(ranks, 1.3) == [["a", "b", "c"]]
    assert nemenyi_groups(ranks, 1.0) == [["a", "b"], ["b", "c"]]
    assert nemenyi_groups(ranks, 0.1) == []


def test_rank_test_uses_only_complete_blocks() -> None:
    scores = {"a": {1: 0.9, 2: 0.91, 3: 0.92}, "b": {1: 0.8, 2: 0.95, 3: 0.82}, "c": {1: 0.7, 2: 0.71, 4: 0.99}}
    result = rank_test(scores)
    assert result.blocks == 2 and result.mean_ranks == {"a": 1.5, "b": 1.5, "c": 3.0}
    assert result.cd == pytest.approx(critical_difference(3, 2)) and 0 < result.friedman_p < 1
    two = rank_test({"a": scores["a"], "b": scores["b"]})
    assert two.blocks == 3 and two.friedman_p is None and two.cd is None and two.groups() == []


def test_critical_difference_diagram_of_ten_configurations() -> None:
    ranks = {f"model=architecture_{i}": 1 + 0.9 * i for i in range(10)}
    figure = critical_difference_diagram(ranks, 2.1, nemenyi_groups(ranks, 2.1), "sota")
    assert len(figure_bytes(figure, "png")) > 10_000


# --- the report of a results store -----------------------------------------------------------------------

ACCURACY = {"cnn": [0.90, 0.91, 0.89], "lstm": [0.85, 0.86, 0.84], "cnn_lstm": [0.95, 0.94, 0.96]}
SPEED = {"cnn": [1000.0, 3000.0, 2000.0], "lstm": [None, None, None], "cnn_lstm": [500.0, None, None]}


def fake_store(directory: Path) -> ResultsStore:
    """A finished experiment of 3 models × 3 repeats with made-up scores, as `experiment run` stores it; only
    some runs measured their inference speed (older rows lack the field)."""
    spec = parse_spec({"name": "sota", "grid": {"model": list(ACCURACY)}, "repeats": 3}, "sota.yaml")
    dataset = {"classes": ["walk", "sit"], "n_train": 20, "n_test": 10,
               "provenance": {"dataset": "fake", "source": "made up", "sha256": "0" * 64}}
    store = ResultsStore.open(directory, spec, dataset, {"python": "3"})
    for configuration in spec.configurations():
        model = configuration.swept["model"]
        for repeat, (accuracy, speed) in enumerate(zip(ACCURACY[model], SPEED[model], strict=True), 1):
            row = {"key": configuration.config.key(), "label": configuration.label, "repeat": repeat, "seed": repeat,
                   "accuracy": accuracy, "macro_f1": accuracy - 0.01, "fit_seconds": 10.0 * len(model) + repeat,
                   "parameters": 1000 * len(model), "fold": "fixed",
                   "per_class": {c: dict.fromkeys(("precision", "recall", "f1"), accuracy) for c in ("walk", "sit")},
                   "confusion": [[5, 0], [1, 4]], "history": {"loss": [1.0, 0.5], "accuracy": [0.6, accuracy]}}
            if speed is not None:
                row["inference_windows_per_second"] = speed
            store.append(row)
    return store


def test_ranking_of_a_results_store(tmp_path: Path) -> None:
    result = analyze(fake_store(tmp_path))
    assert [c.label for c in result.ranking()] == ["model=cnn_lstm", "model=cnn", "model=lstm"]
    by_label = {c.label: c for c in result.configurations}
    assert by_label["model=cnn"].inference_windows_per_second == pytest.approx(2000.0)
    assert by_label["model=cnn_lstm"].inference_windows_per_second == pytest.approx(500.0)
    assert by_label["model=lstm"].inference_windows_per_second is None
    assert by_label["model=cnn_lstm"].parameters == 8000
    assert result.ranks.mean_ranks == {"model=cnn": 2.0, "model=lstm": 3.0, "model=cnn_lstm": 1.0}
    assert result.ranks.friedman_p == pytest.approx(stats.chi2.sf(6, 2))
    assert result.ranks.cd == pytest.approx(2.343 * math.sqrt(12 / 18), abs=1e-3)
    assert result.ranks.groups() == [["model=cnn_lstm", "model=cnn"], ["model=cnn", "model=lstm"]]
    lines = ranking_lines(result)
    assert len(lines) == 5 and lines[0] == ("ranking by mean accuracy (mean rank: ranked within each of 3 complete "
                                            "repeats, 1 = best):")


def test_report_shows_the_ranking_in_the_terminal_and_the_html(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    from harlab.api import Results
    from harlab.cli.experiment import print_report

    fake_store(tmp_path)
    print_report(Results(tmp_path))
    out = capsys.readouterr().out
    ranked = re.findall(r"^ +(\d)\. (model=\w+): (\d+\.\d{3})% ± \d\.\d{3}  95% CI \[[\d.]+, [\d.]+\]  macro-F1 "
                        r"[\d.]+%  fit [\d.]+ s  ([\d,]+) parameters  inference (\S+) windows/s  "
                        r"mean rank ([\d.]+)$", out, re.M)
    assert ranked == [("1", "model=cnn_lstm", "95.000", "8,000", "500", "1.00"),
                      ("2", "model=cnn", "90.000", "3,000", "2,000", "2.00"),
                      ("3", "model=lstm", "85.000", "4,000", "—", "3.00")]
    assert re.search(r"^Friedman p=0\.0498; Nemenyi critical difference 1\.91 \(α = 0\.05\); not significantly "
                     r"different: model=cnn_lstm ~ model=cnn; model=cnn ~ model=lstm$", out, re.M)
    assert re.search(r"^  model=cnn_lstm vs model=cnn: \+5\.00 points, .*: model=cnn_lstm is better$", out, re.M)

    text = (tmp_path / "report.html").read_text()
    table = re.search(r'id="sota-ranking".*?</table>', text, re.S).group(0)
    rows = re.findall(r"<tr><td>(\d)</td><td>(model=\w+)</td>.*?</tr>", table)
    assert rows == [("1", "model=cnn_lstm"), ("2", "model=cnn"), ("3", "model=lstm")]
    assert "<th>inference windows/s</th>" in table and "<td>—</td>" in table and "<td>2,000</td>" in table
    assert "<th>parameters</th>" in table and "<td>8,000</td>" in table
    assert 'alt="Critical-difference diagram' in text and 'alt="Mean test accuracy with its 95% CI' in text
    assert "<th>significant (Holm, α = 0.05)</th>" in text
    for name in ("sota-critical-difference", "sota-cost", "sota-boxplot"):
        assert (tmp_path / "figures" / f"{name}.png").is_file() and (tmp_path / "figures" / f"{name}.svg").is_file()
    assert experiment_report(analyze(ResultsStore(tmp_path)), tmp_path) == tmp_path / "report.html"


def test_a_cross_validation_plans_every_fold_of_every_repeat(tmp_path: Path) -> None:
    spec = parse_spec({"name": "cv", "model": "cnn", "repeats": 2}, "spec")
    store = ResultsStore.open(tmp_path, spec, {"folds": {"fold1": [1], "fold2": [2], "fold3": [3]}}, {})
    assert analyze(store).planned == 2 * 3
