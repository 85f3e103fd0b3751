"""Verdict logic: exact paired tests against hand-computed tails, bootstrap coverage, gates, trends."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.stats import beta as beta_distribution

from rvae import stats
from rvae.stats import Claimed, Evidence, Gate, paired_accuracy, paired_bootstrap, rank_trend, verdict


def _pairs(both, only_first, only_second, neither):
    first = [True] * both + [True] * only_first + [False] * only_second + [False] * neither
    second = [True] * both + [False] * only_first + [True] * only_second + [False] * neither
    return first, second


def test_exact_paired_test_matches_hand_computed_binomial_tails():
    first, second = _pairs(50, 8, 2, 40)                    # 10 discordant images, 8 favour the first model
    evidence = paired_accuracy(first, second)
    tail = sum(math.comb(10, k) for k in (8, 9, 10)) / 2 ** 10          # P(X >= 8), X ~ Bin(10, 1/2) = 56/1024
    assert evidence.p_value == pytest.approx(2 * tail, rel=1e-12)       # two-sided, symmetric
    assert evidence.effect == pytest.approx((8 - 2) / 100)
    assert evidence.n == 100


def test_paired_interval_is_the_clopper_pearson_interval_mapped_to_the_difference():
    first, second = _pairs(30, 12, 3, 55)
    evidence = paired_accuracy(first, second)
    k, m = 12, 15
    low_p, high_p = beta_distribution.ppf(0.025, k, m - k + 1), beta_distribution.ppf(0.975, k + 1, m - k)
    assert evidence.low == pytest.approx(m / 100 * (2 * low_p - 1), rel=1e-9)
    assert evidence.high == pytest.approx(m / 100 * (2 * high_p - 1), rel=1e-9)
    assert evidence.low < evidence.effect < evidence.high


def test_no_discordant_images_bounds_the_difference_by_the_rule_of_three():
    few = paired_accuracy([True, False, True], [True, False, True])
    assert (few.effect, few.p_value) == (0.0, 1.0)
    assert few.high == pytest.approx(1 - 0.025 ** (1 / 3)) and few.low == -few.high   # exact bound for 0 of 3
    assert verdict(few, Claimed.above(0.0)) == stats.INCONCLUSIVE       # three images prove nothing
    many = paired_accuracy([True] * 2000, [True] * 2000)
    assert many.high == pytest.approx(1 - 0.025 ** (1 / 2000)) and many.high < 0.002   # about 3.7 / n
    assert verdict(many, Claimed.within(-0.01, 0.01)) == stats.HOLDS
    assert verdict(many, Claimed.above(0.01)) == stats.FAILS


def test_paired_accuracy_refuses_unpaired_or_non_boolean_input():
    with pytest.raises(ValueError, match="equal"):
        paired_accuracy([True, False], [True])
    with pytest.raises(ValueError, match="booleans"):
        paired_accuracy([0.5, 1.0], [1.0, 0.0])


def test_bootstrap_interval_covers_a_known_difference():
    true_difference, covered = 0.3, 0
    for seed in range(20):
        rng = np.random.default_rng(100 + seed)
        base = rng.normal(0, 1, 200)
        first, second = base + true_difference + rng.normal(0, 0.5, 200), base + rng.normal(0, 0.5, 200)
        evidence = paired_bootstrap(first, second, resamples=2000, seed=seed)
        covered += evidence.low <= true_difference <= evidence.high
        assert evidence.high - evidence.low < 0.4
    assert covered >= 17                                    # nominal 95%: 19 of 20 expected


def test_bootstrap_of_a_shifted_copy_is_the_shift():
    values = np.linspace(0, 1, 50)
    evidence = paired_bootstrap(values + 0.25, values)
    assert (evidence.effect, evidence.low, evidence.high) == pytest.approx((0.25, 0.25, 0.25))


@pytest.mark.parametrize("low, high, claimed, expected", [
    (0.02, 0.10, Claimed.above(0.0), stats.HOLDS),
    (-0.10, -0.01, Claimed.above(0.0), stats.FAILS),
    (-0.02, 0.05, Claimed.above(0.0), stats.INCONCLUSIVE),
    (-0.03, 0.04, Claimed.within(-0.05, 0.05), stats.HOLDS),
    (0.06, 0.20, Claimed.within(-0.05, 0.05), stats.FAILS),
    (0.01, 0.09, Claimed.within(-0.05, 0.05), stats.INCONCLUSIVE),
    (-0.5, -0.2, Claimed.below(0.0), stats.HOLDS),
])
def test_each_verdict_is_reachable(low, high, claimed, expected):
    evidence = Evidence("test", 100, (low + high) / 2, low, high)
    assert verdict(evidence, claimed) == expected


def test_a_claim_over_a_model_below_its_gate_is_inconclusive():
    strong = Evidence("test", 1000, 0.3, 0.25, 0.35)
    gates = [Gate("VAE nominal accuracy", 0.97, 0.95), Gate("SE nominal accuracy", 0.62, 0.95)]
    assert not gates[1].passed and "FAILED" in gates[1].describe()
    assert verdict(strong, Claimed.above(0.0), gates) == stats.UNDER_TRAINED
    assert verdict(strong, Claimed.above(0.0), gates[:1]) == stats.HOLDS
    assert Gate("MSE per pixel", 0.02, 0.03, higher_is_better=False).passed


def test_rank_trend_p_values_agree_with_the_exact_enumeration():
    for x, y in [([1, 2, 3, 4], [4, 3, 2, 1]), ([0.1, 1, 10, 100, 1000], [5, 3, 4, 1, 2]),
                 ([1, 2, 3, 4, 5, 6], [2, 1, 4, 3, 6, 5])]:
        ours = rank_trend(x, y)
        ranks_x, ranks_y = np.argsort(np.argsort(x)), np.argsort(np.argsort(y))
        n = len(x)

        def rho(order):                                   # Spearman's rho of distinct ranks, by its formula
            return 1 - 6 * float(np.sum((ranks_x - np.asarray(order)) ** 2)) / (n * (n * n - 1))
        observed = rho(ranks_y)
        as_extreme = [abs(rho(order)) >= abs(observed) - 1e-12 for order in itertools.permutations(range(n))]
        assert ours.effect == pytest.approx(observed)
        assert ours.p_value == pytest.approx(sum(as_extreme) / len(as_extreme), abs=1e-12)
    assert rank_trend([1, 2, 3, 4], [4, 3, 2, 1]).p_value == pytest.approx(1 / 12)


def test_rank_trend_over_few_settings_is_never_more_than_inconclusive():
    perfect = rank_trend([1, 2, 3, 4, 5], [5, 4, 3, 2, 1])
    assert (perfect.low, perfect.high) == (-1.0, 1.0)
    assert verdict(perfect, Claimed.below(0.0)) == stats.INCONCLUSIVE
    many = rank_trend(np.arange(20), -np.arange(20.0))
    assert many.high < 0 and verdict(many, Claimed.below(0.0)) == stats.HOLDS


def test_independent_bootstrap_covers_a_known_difference_of_means():
    rng = np.random.default_rng(3)
    first, second = rng.normal(1.0, 1.0, 400), rng.normal(0.0, 2.0, 300)
    evidence = stats.independent_bootstrap(first, second)
    assert evidence.low < 1.0 < evidence.high and evidence.effect == pytest.approx(first.mean() - second.mean())
    assert verdict(evidence, Claimed.above(0.0)) == stats.HOLDS
    with pytest.raises(ValueError, match="two 1-d samples"):
        stats.independent_bootstrap([1.0], [1.0, 2.0])


def test_rank_trend_of_a_constant_score_is_inconclusive_without_a_warning():
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        flat = rank_trend([1, 2, 3, 4], [0.5, 0.5, 0.5, 0.5])
    assert math.isnan(flat.effect) and verdict(flat, Claimed.below(0.0)) == stats.INCONCLUSIVE
