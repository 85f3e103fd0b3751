"""rvae.rank_correlation: Spearman's rho against its definition and scipy, the permutation test's exact values."""
from __future__ import annotations

import math

import numpy as np
import pytest

from rvae.rank_correlation import average_ranks, rank_correlation, spearman


def test_average_ranks_share_ties():
    assert average_ranks([10.0, 30.0, 20.0, 30.0]).tolist() == [1.0, 3.5, 2.0, 3.5]


def test_spearman_without_ties_is_the_classical_formula():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=9), rng.normal(size=9)
    d = np.argsort(np.argsort(x)) - np.argsort(np.argsort(y))
    assert spearman(x, y) == pytest.approx(1 - 6 * (d ** 2).sum() / (9 * (9 ** 2 - 1)))


def test_spearman_matches_scipy_with_ties():
    stats = pytest.importorskip("scipy.stats")
    x, y = [1, 2, 2, 3, 5, 5, 7], [0.3, 0.1, 0.4, 0.4, 0.9, 0.2, 0.8]
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic)


def test_monotone_pairs_give_plus_and_minus_one_and_the_exact_p_value():
    result = rank_correlation([1, 2, 3, 4], [10, 20, 30, 40])
    assert result.rho == pytest.approx(1.0) and result.exact and result.n == 4
    assert result.p_value == pytest.approx(2 / 24)          # only the identity and the reversal reach |rho| = 1
    falling = rank_correlation([1, 2, 3, 4], [4, 3, 2, 1], alternative="less")
    assert falling.rho == pytest.approx(-1.0) and falling.p_value == pytest.approx(1 / 24)
    assert rank_correlation([1, 2, 3, 4], [4, 3, 2, 1], alternative="greater").p_value == pytest.approx(1.0)


def test_sampled_p_value_agrees_with_the_exact_one():
    x, y = [0.1, 0.5, 0.2, 0.9, 0.7, 0.3, 0.8, 0.6], [1, 3, 2, 9, 5, 4, 8, 7]
    exact = rank_correlation(x, y)
    sampled = rank_correlation(x, y, samples=4000, seed=1, exact=False)
    assert exact.exact and not sampled.exact and exact.rho == sampled.rho
    assert 0 < exact.p_value < 0.05
    assert sampled.p_value == pytest.approx(exact.p_value, abs=0.01)


def test_constant_side_and_bad_input():
    assert math.isnan(rank_correlation([1, 1, 1], [1, 2, 3]).rho)
    with pytest.raises(ValueError, match="at least 3"):
        spearman([1, 2], [2, 1])
    with pytest.raises(ValueError, match="one length"):
        spearman([1, 2, 3], [2, 1])
    with pytest.raises(ValueError, match="finite"):
        spearman([1, 2, float("nan")], [1, 2, 3])
    with pytest.raises(ValueError, match="alternative"):
        rank_correlation([1, 2, 3], [1, 2, 3], alternative="bigger")
