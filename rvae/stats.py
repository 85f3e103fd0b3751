"""Verdicts for the papers' empirical claims: an effect, its 95% interval, the test, and a verdict.

A claim states a direction or a range for an effect ("SE's adversarial accuracy exceeds the VAE's",
"nominal accuracies agree within 5 points"). :class:`Claimed` says which; :func:`verdict` reads
the interval against it:

- **holds** when the whole interval lies on the claimed side (or inside the claimed range);
- **fails** when the whole interval lies on the other side (or outside the range): the data
  exclude the claimed effect;
- **inconclusive** otherwise, and always when a model the claim rests on is below its quality
  gate (*inconclusive (under-trained)*), whatever the interval says.

The evidence comes from well-kept implementations (scipy.stats):

- :func:`paired_accuracy`: two models scored on the *same* test images. Only discordant images
  (right for one, wrong for the other) carry information: under "no difference" each is equally
  likely to favour either model, so the count favouring the first is Binomial(discordant, 1/2)
  (the exact McNemar test, ``binomtest``). The interval for the accuracy difference
  (n10 - n01)/n is the exact Clopper-Pearson interval for n10/(n10 + n01), mapped through
  d = (n10 + n01)/n * (2p - 1) (conditional on the number of discordant images). With no
  discordant image at all the interval is +- the exact upper bound of a proportion seen 0 times
  in n, so that agreement on a handful of images never passes for evidence of equality.
- :func:`proportion`: one accuracy with its exact Clopper-Pearson interval.
- :func:`paired_bootstrap`: any paired statistic (a mean difference by default), with scipy's
  BCa bootstrap interval over images resampled in pairs.
- :func:`independent_bootstrap`: a difference of means of two independent samples, BCa.
- :func:`rank_trend`: Spearman's rho between a setting and a score (a beta ladder, say), its
  p-value from an exact permutation test for n <= 8 (every ordering) and a Monte Carlo one
  beyond, and a Fisher-z interval with the Fieller-Hartley-Pearson standard error
  sqrt(1.06 / (n - 3)). That approximation needs n >= 10 settings; with fewer the interval is
  the whole [-1, 1], so a trend over a handful of settings is never more than inconclusive (over
  4 settings even a perfect ranking has an exact two-sided p of 1/12).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from scipy import stats as scipy_stats

HOLDS, FAILS, INCONCLUSIVE = "holds", "fails", "inconclusive"
UNDER_TRAINED = "inconclusive (under-trained)"
CONFIDENCE = 0.95
MIN_TREND_INTERVAL = 10


@dataclass(frozen=True)
class Evidence:
    """An effect with its interval, the test that produced them and the sample size."""
    test: str
    n: int
    effect: float
    low: float
    high: float
    p_value: float | None = None

    def describe(self, digits: int = 3) -> str:
        p = f", p = {self.p_value:.{digits}g}" if self.p_value is not None else ""
        return (f"{self.effect:+.{digits}g} [{self.low:+.{digits}g}, {self.high:+.{digits}g}] "
                f"(95%, {self.test}, n = {self.n}{p})")


@dataclass(frozen=True)
class Claimed:
    """What a claim says of an effect: above ``low``, below ``high``, or inside [low, high]."""
    low: float = -math.inf
    high: float = math.inf

    @classmethod
    def above(cls, threshold: float = 0.0) -> "Claimed":
        return cls(low=threshold)

    @classmethod
    def below(cls, threshold: float = 0.0) -> "Claimed":
        return cls(high=threshold)

    @classmethod
    def within(cls, low: float, high: float) -> "Claimed":
        if not low <= high:
            raise ValueError(f"a claimed range needs low <= high, not [{low}, {high}]")
        return cls(low, high)

    def __str__(self) -> str:
        if math.isinf(self.high):
            return f"> {self.low:g}"
        if math.isinf(self.low):
            return f"< {self.high:g}"
        return f"in [{self.low:g}, {self.high:g}]"


@dataclass(frozen=True)
class Gate:
    """A model quality a claim needs, fixed before the run: ``value`` must reach ``threshold``
    (from above when ``higher_is_better``, else from below)."""
    name: str
    value: float
    threshold: float
    higher_is_better: bool = True

    @property
    def passed(self) -> bool:
        return self.value >= self.threshold if self.higher_is_better else self.value <= self.threshold

    def describe(self) -> str:
        sign = ">=" if self.higher_is_better else "<="
        return f"{self.name} {self.value:.3g} (gate {sign} {self.threshold:g}: {'passed' if self.passed else 'FAILED'})"


def verdict(evidence: Evidence, claimed: Claimed, gates: Sequence[Gate] = ()) -> str:
    """holds / fails / inconclusive for ``evidence`` read against ``claimed`` (module docstring)."""
    if any(not gate.passed for gate in gates):
        return UNDER_TRAINED
    if any(math.isnan(v) for v in (evidence.low, evidence.high)):
        return INCONCLUSIVE
    above = evidence.low > claimed.low or claimed.low == -math.inf
    below = evidence.high < claimed.high or claimed.high == math.inf
    if above and below:
        return HOLDS
    if evidence.high <= claimed.low or evidence.low >= claimed.high:
        return FAILS
    return INCONCLUSIVE


def _correct(values: Sequence) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype != bool and not np.isin(array, (0, 1)).all():
        raise ValueError("correctness must be given as booleans (or 0/1) per test image")
    return array.astype(bool)


def paired_accuracy(first: Sequence, second: Sequence, confidence: float = CONFIDENCE) -> Evidence:
    """Accuracy of ``first`` minus that of ``second`` on the same images (per-image correctness),
    with the exact McNemar test (two-sided p) and its conditional exact interval (module docstring)."""
    a, b = _correct(first), _correct(second)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise ValueError(f"paired correctness needs two equal, non-empty 1-d arrays; got {a.shape} and {b.shape}")
    n = len(a)
    only_first, only_second = int(np.sum(a & ~b)), int(np.sum(~a & b))
    discordant = only_first + only_second
    effect = (only_first - only_second) / n
    if discordant == 0:
        # no image tells the models apart; the share of images that could still be discordant is at
        # most the exact upper bound for 0 successes in n, so the difference lies within +- that bound
        bound = float(scipy_stats.binomtest(0, n).proportion_ci(confidence_level=confidence, method="exact").high)
        return Evidence("exact McNemar (no discordant images)", n, 0.0, -bound, bound, 1.0)
    result = scipy_stats.binomtest(only_first, discordant, 0.5)
    interval = result.proportion_ci(confidence_level=confidence, method="exact")
    scale = discordant / n
    return Evidence("exact McNemar", n, effect, scale * (2 * interval.low - 1), scale * (2 * interval.high - 1),
                    float(result.pvalue))


def proportion(correct: Sequence, confidence: float = CONFIDENCE) -> Evidence:
    """One accuracy (the fraction of True) with its exact Clopper-Pearson interval (``binomtest``)."""
    a = _correct(correct)
    if a.ndim != 1 or len(a) == 0:
        raise ValueError(f"a proportion needs a non-empty 1-d array of per-image correctness; got shape {a.shape}")
    result = scipy_stats.binomtest(int(a.sum()), len(a))
    interval = result.proportion_ci(confidence_level=confidence, method="exact")
    return Evidence("exact binomial (Clopper-Pearson)", len(a), float(a.mean()), float(interval.low),
                    float(interval.high))


def _bootstrap_batch(n: int) -> int:
    """Resamples per vectorised batch, so that one batch holds about 5 million values (memory stays small)."""
    return max(1, 5_000_000 // max(n, 1))


def paired_bootstrap(first: Sequence[float], second: Sequence[float],
                     statistic: Callable[[np.ndarray, np.ndarray], float] | None = None,
                     confidence: float = CONFIDENCE, resamples: int = 9999, seed: int = 0) -> Evidence:
    """A paired statistic (default: mean of first - second) with scipy's BCa bootstrap interval,
    images resampled in pairs. The default resamples the per-image differences (the same pairs)."""
    a, b = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 2:
        raise ValueError(f"a paired bootstrap needs two equal 1-d arrays of at least 2 values; got {a.shape}, {b.shape}")
    random_state = np.random.default_rng(seed)
    if statistic is None:
        differences = a - b
        effect = float(differences.mean())
        if np.allclose(differences, differences[0], rtol=0.0, atol=1e-12):   # no spread: the interval is the point
            return Evidence("paired bootstrap (constant difference)", len(a), effect, effect, effect)
        result = scipy_stats.bootstrap((differences,), np.mean, vectorized=True, confidence_level=confidence,
                                       n_resamples=resamples, method="BCa", batch=_bootstrap_batch(len(a)),
                                       random_state=random_state)
    else:
        effect = float(statistic(a, b))
        result = scipy_stats.bootstrap((a, b), statistic, paired=True, vectorized=False,
                                       confidence_level=confidence, n_resamples=resamples, method="BCa",
                                       random_state=random_state)
    return Evidence("paired BCa bootstrap", len(a), effect, float(result.confidence_interval.low),
                    float(result.confidence_interval.high))


def independent_bootstrap(first: Sequence[float], second: Sequence[float], confidence: float = CONFIDENCE,
                          resamples: int = 9999, seed: int = 0) -> Evidence:
    """mean(first) - mean(second) for two independent samples, with scipy's BCa bootstrap interval
    (each sample resampled on its own)."""
    a, b = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    if a.ndim != 1 or b.ndim != 1 or len(a) < 2 or len(b) < 2:
        raise ValueError(f"two 1-d samples of at least 2 values each are needed; got {a.shape}, {b.shape}")

    def difference(x, y, axis=-1):
        return np.mean(x, axis=axis) - np.mean(y, axis=axis)

    effect = float(difference(a, b))
    if np.ptp(a) == 0 and np.ptp(b) == 0:
        return Evidence("bootstrap (constant samples)", len(a) + len(b), effect, effect, effect)
    result = scipy_stats.bootstrap((a, b), difference, paired=False, vectorized=True, confidence_level=confidence,
                                   n_resamples=resamples, method="BCa", batch=_bootstrap_batch(len(a) + len(b)),
                                   random_state=np.random.default_rng(seed))
    return Evidence("BCa bootstrap, independent samples", len(a) + len(b), effect,
                    float(result.confidence_interval.low), float(result.confidence_interval.high))


def rank_trend(setting: Sequence[float], score: Sequence[float], confidence: float = CONFIDENCE,
               resamples: int = 9999, seed: int = 0) -> Evidence:
    """Spearman's rho of ``score`` against ``setting`` with a permutation p-value (two-sided; exact
    for n <= 8) and a Fisher-z interval (module docstring)."""
    x, y = np.asarray(setting, dtype=float), np.asarray(score, dtype=float)
    if x.shape != y.shape or x.ndim != 1 or len(x) < 3:
        raise ValueError(f"a rank trend needs two equal 1-d sequences of at least 3 values; got {x.shape}, {y.shape}")
    n = len(x)
    if np.ptp(x) == 0 or np.ptp(y) == 0:              # a constant sequence has no ranking: nothing to test
        return Evidence("Spearman (a constant sequence: no ranking)", n, math.nan, -1.0, 1.0, 1.0)
    rho = float(scipy_stats.spearmanr(x, y).statistic)
    ranks_x = scipy_stats.rankdata(x)
    centred_x = (ranks_x - ranks_x.mean()) / np.linalg.norm(ranks_x - ranks_x.mean())

    def statistic(permuted, axis=-1):                 # Spearman = Pearson of the ranks, vectorised over resamples
        ranks = scipy_stats.rankdata(permuted, axis=axis)
        centred = ranks - ranks.mean(axis=axis, keepdims=True)
        return (centred * centred_x).sum(axis=axis) / np.linalg.norm(centred, axis=axis)

    exact = math.factorial(n) <= resamples
    test = scipy_stats.permutation_test((y,), statistic, permutation_type="pairings", vectorized=True,
                                        n_resamples=math.factorial(n) if exact else resamples,
                                        alternative="two-sided", random_state=np.random.default_rng(seed))
    if n >= MIN_TREND_INTERVAL:
        z = math.atanh(min(max(rho, -0.9999), 0.9999))         # a perfect ranking: z stays finite
        spread = math.sqrt(1.06 / (n - 3)) * scipy_stats.norm.ppf(0.5 + confidence / 2)
        low, high = math.tanh(z - spread), math.tanh(z + spread)
    else:
        low, high = -1.0, 1.0
    name = f"Spearman, {'exact' if exact else 'Monte Carlo'} permutation p"
    return Evidence(name, n, rho, low, high, float(test.pvalue))
