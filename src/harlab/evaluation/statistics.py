"""Statistics of repeated runs: the tutorial's mean ± std, a confidence interval of the mean, and pairwise
tests between configurations, so "is standardization better?" gets an answer rather than a guess."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Summary:
    """Accuracy of one configuration's runs in percent: mean, population std (the tutorial's np.std) and the
    95 % confidence interval of the mean (Student t with the sample std; None with fewer than two runs)."""

    runs: int
    mean: float
    std: float
    ci_low: float | None
    ci_high: float | None


def describe(accuracies: list[float], confidence: float = 0.95) -> Summary:
    """Summary of accuracies given as fractions (0.913), reported in percent (91.3)."""
    values = np.asarray(accuracies, dtype=float) * 100
    n = len(values)
    mean = float(values.mean())
    if n < 2:
        return Summary(n, mean, 0.0, None, None)
    half = float(stats.t.ppf((1 + confidence) / 2, n - 1) * values.std(ddof=1) / math.sqrt(n))
    return Summary(n, mean, float(values.std()), mean - half, mean + half)


@dataclass(frozen=True)
class Comparison:
    """Welch's t-test of configuration b against a: difference of means (b − a, points), p-value, and the
    p-value after Holm's correction for testing every pair."""

    a: str
    b: str
    difference: float
    t: float
    p: float
    p_holm: float

    def verdict(self, alpha: float = 0.05) -> str:
        if math.isnan(self.p_holm):
            return "not testable (too few runs or no variation)"
        if self.p_holm < alpha:
            return f"{self.b if self.difference > 0 else self.a} is better"
        return "no significant difference"


def compare_all(groups: dict[str, list[float]]) -> list[Comparison]:
    """Welch's t-test for every pair of configurations (accuracies as fractions), Holm-corrected."""
    raw = []
    for a, b in itertools.combinations(groups, 2):
        x, y = np.asarray(groups[a]) * 100, np.asarray(groups[b]) * 100
        if len(x) < 2 or len(y) < 2 or (x.std() == 0 and y.std() == 0):
            t, p = math.nan, math.nan
        else:
            result = stats.ttest_ind(y, x, equal_var=False)
            t, p = float(result.statistic), float(result.pvalue)
        raw.append((a, b, float(y.mean() - x.mean()), t, p))
    return [Comparison(a, b, d, t, p, q) for (a, b, d, t, p), q in zip(raw, holm([r[4] for r in raw]), strict=True)]


def holm(p_values: list[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (NaN stays NaN and is not counted as a test)."""
    tested = [(p, i) for i, p in enumerate(p_values) if not math.isnan(p)]
    adjusted = [math.nan] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(sorted(tested)):
        running = max(running, min(1.0, (len(tested) - rank) * p))
        adjusted[i] = running
    return adjusted
