"""From a results store to what a report shows: per-configuration summaries, pairwise tests, median runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from harlab.evaluation.statistics import Comparison, Summary, compare_all, describe
from harlab.experiments.spec import ExperimentSpec
from harlab.experiments.store import ResultsStore


@dataclass(frozen=True)
class ConfigurationResult:
    """The finished runs of one configuration and what they add up to."""

    label: str
    rows: list[dict[str, Any]]
    summary: Summary
    macro_f1: float
    fit_seconds: float
    tutorial: float | None

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
    planned: int

    @property
    def finished(self) -> int:
        return sum(len(c.rows) for c in self.configurations)


def analyze(store: ResultsStore) -> ExperimentResult:
    """Group a store's finished runs by configuration, in the spec's order, and summarize and compare them."""
    spec = ExperimentSpec(**store.spec())
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
            spec.tutorial.accuracy.get(configuration.label)))
    comparisons = compare_all({c.label: [row["accuracy"] for row in c.rows] for c in results})
    return ExperimentResult(spec.name, spec, store.dataset(), store.environment(), results, comparisons,
                            len(spec.configurations()) * spec.repeats)


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
