"""Statistics of repeated runs: the tutorial's mean ± std, a confidence interval of the mean, pairwise tests
between configurations, so "is standardization better?" gets an answer rather than a guess, and Demšar's (2006)
ranking of many configurations: mean ranks, Friedman's test and the Nemenyi critical difference."""

from __future__ import annotations

import itertools
import math
from collections.abc import Hashable
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

    def significant(self, alpha: float = 0.05) -> bool | None:
        """Whether the Holm-corrected p is below `alpha`; None when the pair could not be tested."""
        return None if math.isnan(self.p_holm) else self.p_holm < alpha

    def verdict(self, alpha: float = 0.05) -> str:
        significant = self.significant(alpha)
        if significant is None:
            return "not testable (too few runs or no variation)"
        if significant:
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


def mean_ranks(scores: np.ndarray) -> np.ndarray:
    """Mean rank of each column of `scores` (blocks × configurations, higher is better) over the blocks: rank 1
    is the best in a block, ties share the average of their ranks."""
    return stats.rankdata(-np.asarray(scores, dtype=float), axis=1).mean(axis=0)


def friedman_p(scores: np.ndarray) -> float:
    """Friedman's test that all configurations (columns of `scores`, at least 3) rank alike over the blocks
    (rows); 1.0 when every block is a complete tie (no evidence of any difference)."""
    scores = np.asarray(scores, dtype=float)
    if (scores == scores[:, :1]).all():
        return 1.0
    return float(stats.friedmanchisquare(*scores.T).pvalue)


def critical_difference(k: int, blocks: int, alpha: float = 0.05) -> float:
    """Nemenyi's critical difference of mean ranks of `k` configurations over `blocks` blocks:
    q_alpha · sqrt(k(k+1) / 6N), q_alpha the studentized range quantile over sqrt(2) (Demšar 2006, table 5)."""
    q = stats.studentized_range.ppf(1 - alpha, k, np.inf) / math.sqrt(2)
    return float(q * math.sqrt(k * (k + 1) / (6 * blocks)))


def nemenyi_groups(ranks: dict[str, float], cd: float) -> list[list[str]]:
    """The maximal runs of configurations, in order of mean rank, whose mean ranks differ by less than `cd`: the
    groups a critical-difference diagram joins by a bar (not significantly different)."""
    ordered = sorted(ranks, key=ranks.__getitem__)
    groups: list[list[str]] = []
    reach = 0
    for i, first in enumerate(ordered):
        last = max(j for j in range(i, len(ordered)) if ranks[ordered[j]] - ranks[first] < cd)
        if last > max(i, reach):
            groups.append(ordered[i:last + 1])
            reach = last
    return groups


@dataclass(frozen=True)
class RankTest:
    """Configurations ranked within each complete block (the runs sharing a repeat, i.e. a seed): the number of
    blocks, the mean rank per configuration (1 = best), Friedman's p and the Nemenyi critical difference at
    `alpha` (both None with fewer than 3 configurations or 2 blocks)."""

    blocks: int
    mean_ranks: dict[str, float]
    friedman_p: float | None
    cd: float | None
    alpha: float = 0.05

    def groups(self) -> list[list[str]]:
        """Groups of configurations not significantly different by Nemenyi's test (empty without a CD)."""
        return nemenyi_groups(self.mean_ranks, self.cd) if self.cd is not None else []


def rank_test(scores: dict[str, dict[Hashable, float]], alpha: float = 0.05) -> RankTest:
    """Rank configurations (`scores`: configuration → block → score, higher is better) over the blocks every
    configuration has, and test them with Friedman and Nemenyi where there are enough to test."""
    common = set.intersection(*(set(by_block) for by_block in scores.values())) if scores else set()
    blocks = sorted(common, key=repr)
    if not blocks:
        return RankTest(0, {}, None, None, alpha)
    matrix = np.array([[scores[label][block] for label in scores] for block in blocks])
    ranks = dict(zip(scores, map(float, mean_ranks(matrix)), strict=True))
    if len(scores) < 3 or len(blocks) < 2:
        return RankTest(len(blocks), ranks, None, None, alpha)
    return RankTest(len(blocks), ranks, friedman_p(matrix), critical_difference(len(scores), len(blocks), alpha),
                    alpha)
