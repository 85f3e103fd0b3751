"""Spearman's rank correlation with an exact permutation test, for the few models a chapter compares.

With n models (a handful), asymptotic p-values are unreliable; for n <= ``EXACT_UP_TO`` the test
enumerates all n! orderings of one variable, beyond that it samples orderings with a seeded
generator. The p-value counts orderings whose |rho| (two-sided) or rho (one-sided) is at least the
observed one, the observed ordering included, so it is never 0.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

EXACT_UP_TO = 8
ALTERNATIVES = ("two-sided", "greater", "less")


@dataclass(frozen=True)
class RankCorrelation:
    """Spearman's rho between two paired samples of size ``n``, with its permutation p-value."""
    rho: float
    n: int
    p_value: float
    alternative: str
    exact: bool

    def __str__(self) -> str:
        how = "exact" if self.exact else "sampled"
        return f"Spearman ρ = {self.rho:+.2f} (n = {self.n}, {how} permutation p = {self.p_value:.3f}, {self.alternative})"


def average_ranks(values: Sequence[float]) -> np.ndarray:
    """Ranks 1..n of ``values``; tied values share the mean of the ranks they span."""
    values = np.asarray(values, dtype=float)
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    sorted_values = values[order]
    start = 0
    while start < len(values):
        end = start
        while end + 1 < len(values) and sorted_values[end + 1] == sorted_values[start]:
            end += 1
        ranks[order[start:end + 1]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def _checked_pair(x: Sequence[float], y: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"x and y must be 1-D and of one length, not of shapes {x.shape} and {y.shape}")
    if len(x) < 3:
        raise ValueError(f"a rank correlation needs at least 3 pairs, not {len(x)}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("x and y must be finite")
    return x, y


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    scale = math.sqrt(float((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / scale) if scale > 0 else float("nan")


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rho: Pearson's correlation of the average ranks (NaN if either side is constant)."""
    x, y = _checked_pair(x, y)
    return _pearson(average_ranks(x), average_ranks(y))


def rank_correlation(x: Sequence[float], y: Sequence[float], alternative: str = "two-sided",
                     samples: int = 20_000, seed: int = 0, exact: bool | None = None) -> RankCorrelation:
    """Spearman's rho of (x, y) and its permutation p-value.

    ``alternative``: "two-sided" (|rho| as large), "greater" (rho as large), "less" (rho as small).
    ``exact``: enumerate all n! orderings (default: when n <= EXACT_UP_TO), else sample ``samples``.
    """
    if alternative not in ALTERNATIVES:
        raise ValueError(f"unknown alternative {alternative!r}; valid: {', '.join(ALTERNATIVES)}")
    x, y = _checked_pair(x, y)
    rank_x, rank_y = average_ranks(x), average_ranks(y)
    observed = _pearson(rank_x, rank_y)
    n = len(x)
    exact = n <= EXACT_UP_TO if exact is None else exact
    if math.isnan(observed):
        return RankCorrelation(observed, n, float("nan"), alternative, exact)

    def as_extreme(rho: float) -> bool:
        tolerance = 1e-12
        if alternative == "greater":
            return rho >= observed - tolerance
        if alternative == "less":
            return rho <= observed + tolerance
        return abs(rho) >= abs(observed) - tolerance

    if exact:
        orderings = itertools.permutations(range(n))
        hits = total = 0
        for ordering in orderings:
            hits += as_extreme(_pearson(rank_x, rank_y[list(ordering)]))
            total += 1
        return RankCorrelation(observed, n, hits / total, alternative, True)
    generator = np.random.default_rng(seed)
    hits = sum(as_extreme(_pearson(rank_x, generator.permutation(rank_y))) for _ in range(samples))
    return RankCorrelation(observed, n, (hits + 1) / (samples + 1), alternative, False)
