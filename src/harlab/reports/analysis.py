"""From a results store to what a report shows: per-configuration summaries, pairwise tests, a ranking with
cost and Demšar's rank test, median runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from harlab.evaluation.statistics import Comparison, RankTest, Summary, compare_all, describe, rank_test
from harlab.experiments.spec import ExperimentSpec, parse_spec
from harlab.experiments.store import SPEC_FILE, ResultsStore


@dataclass(frozen=True)
class ConfigurationResult:
    """The finished runs of one configuration and what they add up to."""

    label: str
    rows: list[dict[str, Any]]
    summary: Summary
    macro_f1: float
    fit_seconds: float
    tutorial: float | None
    parameters: int
    inference_windows_per_second: float | None
    balanced_accuracy: float | None = None  # mean, percent; None where a run was recorded without it

    def accuracies(self) -> list[float]:
        return [row["accuracy"] * 100 for row in self.rows]

    def median_run(self) -> dict[str, Any]:
        """The run with the median accuracy (the lower of the two middle ones for an even count)."""
        ordered = sorted(self.rows, key=lambda row: (row["accuracy"], row["repeat"]))
        return ordered[(len(ordered) - 1) // 2]

    def per_class(self) -> dict[str, dict[str, float]]:
        """Precision, recall and F1 per class, averaged over the runs."""
        classes = self.rows[0]["per_class"]
        return {name: {metric: float(np.mean([row["per_class"][name][metric] for row in self.rows]))
                       for metric in ("precision", "recall", "f1")} for name in classes}


@dataclass(frozen=True)
class ExperimentResult:
    name: str
    spec: ExperimentSpec
    dataset: dict[str, Any]
    environment: dict[str, Any]
    configurations: list[ConfigurationResult]
    comparisons: list[Comparison]
    ranks: RankTest
    planned: int

    @property
    def finished(self) -> int:
        return sum(len(c.rows) for c in self.configurations)

    def ranking(self) -> list[ConfigurationResult]:
        """The configurations from the best mean accuracy down (ties keep the spec's order)."""
        return sorted(self.configurations, key=lambda c: -c.summary.mean)


def analyze(store: ResultsStore) -> ExperimentResult:
    """Group a store's finished runs by configuration, in the spec's order, and summarize and compare them."""
    spec = parse_spec(store.spec(), store.directory / SPEC_FILE)
    rows = store.rows()
    results = []
    for configuration in spec.configurations():
        key = configuration.config.key()
        mine = sorted((row for row in rows if row["key"] == key), key=lambda row: row["repeat"])
        if not mine:
            continue
        results.append(ConfigurationResult(
            configuration.label, mine, describe([row["accuracy"] for row in mine]),
            float(np.mean([row["macro_f1"] for row in mine])) * 100,
            float(np.mean([row["fit_seconds"] for row in mine])),
            spec.tutorial.accuracy.get(configuration.label), mine[0]["parameters"], _mean_speed(mine),
            _mean_percent([row.get("balanced_accuracy") for row in mine])))
    comparisons = compare_all({c.label: [row["accuracy"] for row in c.rows] for c in results})
    ranks = rank_test({c.label: {(row.get("fold", "fixed"), row["repeat"]): row["accuracy"] for row in c.rows}
                       for c in results})
    dataset = store.dataset()
    runs_per_configuration = spec.repeats * max(1, len(dataset.get("folds", {})))  # a cross-validation's folds
    return ExperimentResult(spec.name, spec, dataset, store.environment(), results, comparisons, ranks,
                            len(spec.configurations()) * runs_per_configuration)


def _mean_percent(values: list[float | None]) -> float | None:
    """The mean of fractions, in percent; None when a run lacks the value (recorded before it existed)."""
    return None if not values or None in values else float(np.mean(values)) * 100  # type: ignore[arg-type]


def _mean_speed(rows: list[dict[str, Any]]) -> float | None:
    """Mean inference windows per second over the runs that measured it (rows before it existed lack it)."""
    speeds = [row["inference_windows_per_second"] for row in rows
              if row.get("inference_windows_per_second") is not None]
    return float(np.mean(speeds)) if speeds else None


def summary_lines(result: ExperimentResult) -> list[str]:
    """The tutorial's summary per configuration (`Param=True: 91.306% (+/-1.358)`) with the 95 % CI of the mean
    and the tutorial's figure where it reported one."""
    lines = []
    for c in result.configurations:
        s = c.summary
        ci = f"  95% CI [{s.ci_low:.2f}, {s.ci_high:.2f}]" if s.ci_low is not None else ""
        tutorial = f"  tutorial {c.tutorial:.1f}%" if c.tutorial is not None else ""
        lines.append(f"{c.label}: {s.mean:.3f}% (+/-{s.std:.3f}){ci}  n={s.runs}{tutorial}")
    return lines


def comparison_lines(result: ExperimentResult) -> list[str]:
    """One line per pair of configurations: difference, Welch's p, Holm-corrected p, verdict."""
    return [f"{c.b} vs {c.a}: {c.difference:+.2f} points, Welch p={c.p:.3g}, Holm p={c.p_holm:.3g}: {c.verdict()}"
            for c in result.comparisons]


def number(value: float | None, fmt: str = ",.0f") -> str:
    """`value` formatted, or an em dash where it is unknown."""
    return "—" if value is None else format(value, fmt)


def ranking_lines(result: ExperimentResult) -> list[str]:
    """The configurations ranked by mean accuracy with their cost, then Friedman's test and the Nemenyi critical
    difference of the mean ranks over the repeats (nothing for a single configuration)."""
    if len(result.configurations) < 2:
        return []
    ranks = result.ranks
    lines = [f"ranking by mean accuracy (mean rank: ranked within each of {ranks.blocks} complete repeats, "
             "1 = best):"]
    for place, c in enumerate(result.ranking(), 1):
        s = c.summary
        ci = f"[{s.ci_low:.2f}, {s.ci_high:.2f}]" if s.ci_low is not None else "n/a"
        balanced = "" if c.balanced_accuracy is None else f"balanced accuracy {c.balanced_accuracy:.2f}%  "
        lines.append(f"{place:>3}. {c.label}: {s.mean:.3f}% ± {s.std:.3f}  95% CI {ci}  macro-F1 {c.macro_f1:.2f}%  "
                     f"{balanced}"
                     f"fit {c.fit_seconds:.1f} s  {c.parameters:,} parameters  "
                     f"inference {number(c.inference_windows_per_second)} windows/s  "
                     f"mean rank {number(ranks.mean_ranks.get(c.label), '.2f')}")
    return [*lines, rank_test_line(ranks)]


def rank_test_line(ranks: RankTest) -> str:
    """Friedman's p, the critical difference and the groups it cannot tell apart, in one sentence."""
    if ranks.cd is None:
        return "Friedman/Nemenyi: not testable (needs 3 or more configurations and 2 or more complete repeats)"
    groups = "; ".join(" ~ ".join(group) for group in ranks.groups()) or "none"
    return (f"Friedman p={ranks.friedman_p:.3g}; Nemenyi critical difference {ranks.cd:.2f} "
            f"(α = {ranks.alpha}); not significantly different: {groups}")
