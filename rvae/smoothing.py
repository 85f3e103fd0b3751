"""Randomized smoothing: certified L2 radii for any classifier (Cohen, Rosenfeld & Kolter, ICML 2019).

The smoothed classifier of a base classifier f is g(x) = argmax_c P(f(x + sigma * e) = c), e ~ N(0, I).
If the top class has probability at least p_A > 1/2, g is constant on the L2 ball of radius
sigma * Phi^{-1}(p_A) around x (their Theorem 1 with p_B = 1 - p_A). p_A is not known; it is
estimated from n noise draws, and a one-sided Clopper-Pearson lower bound at level 1 - alpha makes
the certificate hold with probability at least 1 - alpha per image (their CERTIFY: the class is
guessed from n0 separate draws, so that the bound is not chosen after seeing its own counts).
A certificate for an image that g misclassifies certifies nothing useful; certified accuracy at
radius R counts images that g classifies correctly with a radius of at least R.

An L2 certificate speaks to L-inf attacks only through the inclusion of balls: the L-inf ball of
radius eps in d dimensions lies inside the L2 ball of radius eps * sqrt(d) (:func:`linf_as_l2`).

Binomial bounds come from scipy.stats (``binomtest(...).proportion_ci(method="exact")``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from scipy import stats
from torch import Tensor

ABSTAIN = -1


def smoothed_radius(p_lower: float | np.ndarray, sigma: float) -> np.ndarray:
    """The certified L2 radius sigma * Phi^{-1}(p) for a top-class probability (bound) p; 0 where p <= 1/2."""
    p = np.asarray(p_lower, dtype=float)
    return np.where(p > 0.5, sigma * stats.norm.ppf(np.clip(p, 0.5, 1.0)), 0.0)


def lower_confidence_bound(successes: int, draws: int, alpha: float) -> float:
    """One-sided (1 - alpha) Clopper-Pearson lower bound on a binomial proportion."""
    if successes == 0:
        return 0.0
    return float(stats.binomtest(int(successes), int(draws)).proportion_ci(confidence_level=1 - 2 * alpha,
                                                                           method="exact").low)


def linf_as_l2(eps: float, dimension: int) -> float:
    """The L2 radius whose ball contains the L-inf ball of radius ``eps`` in ``dimension`` coordinates."""
    return float(eps) * float(np.sqrt(dimension))


@torch.no_grad()
def noise_counts(classify: Callable[[Tensor], Tensor], x: Tensor, sigma: float, draws: int, num_classes: int,
                 batch_size: int = 1000, generator: torch.Generator | None = None) -> Tensor:
    """(N, num_classes) counts of the base classifier's labels over ``draws`` noisy copies of each image.

    ``classify`` maps images (B, ...) to labels (B,) (or logits (B, C), whose argmax is taken).
    """
    counts = torch.zeros(len(x), num_classes, dtype=torch.long)
    for i, image in enumerate(x):
        left = draws
        while left > 0:
            b = min(batch_size, left)
            noise = torch.randn((b, *image.shape), generator=generator, dtype=image.dtype).to(image.device)
            out = classify(image.unsqueeze(0) + sigma * noise)
            labels = out.argmax(1) if out.dim() == 2 else out
            counts[i] += torch.bincount(labels.cpu(), minlength=num_classes)
            left -= b
    return counts


@dataclass
class Certificates:
    """Per-image output of :func:`certify`: the smoothed prediction (``ABSTAIN`` = -1 when the bound
    does not reach 1/2), the lower bound on its probability and the certified L2 radius (0 if abstained)."""
    prediction: Tensor          # (N,) long
    p_lower: np.ndarray         # (N,)
    radius: np.ndarray          # (N,)
    sigma: float
    draws: int                  # n, the draws behind the bound (n0 more chose the class)
    selection_draws: int
    alpha: float

    def certified(self, labels: Tensor, radius: float) -> np.ndarray:
        """(N,) bool: correct smoothed prediction, certified at L2 radius ``radius`` or more."""
        correct = (self.prediction == labels.cpu()).numpy()
        return correct & (self.radius >= radius)


def certify(classify: Callable[[Tensor], Tensor], x: Tensor, sigma: float, num_classes: int, draws: int = 1000,
            selection_draws: int = 100, alpha: float = 0.001, batch_size: int = 1000,
            generator: torch.Generator | None = None) -> Certificates:
    """CERTIFY of Cohen et al. for every image of ``x``: choose the class from ``selection_draws`` noisy
    copies, bound its probability from ``draws`` fresh ones, certify radius sigma * Phi^{-1}(p_lower)."""
    if sigma <= 0 or draws < 1 or selection_draws < 1 or not 0 < alpha < 0.5:
        raise ValueError(f"certify needs sigma > 0, draws >= 1, selection_draws >= 1 and 0 < alpha < 0.5; "
                         f"got sigma={sigma}, draws={draws}, selection_draws={selection_draws}, alpha={alpha}")
    chosen = noise_counts(classify, x, sigma, selection_draws, num_classes, batch_size, generator).argmax(1)
    counts = noise_counts(classify, x, sigma, draws, num_classes, batch_size, generator)
    top = counts.gather(1, chosen.unsqueeze(1)).squeeze(1)
    p_lower = np.array([lower_confidence_bound(int(k), draws, alpha) for k in top])
    prediction = torch.where(torch.from_numpy(p_lower > 0.5), chosen, torch.full_like(chosen, ABSTAIN))
    return Certificates(prediction, p_lower, smoothed_radius(p_lower, sigma), sigma, draws, selection_draws, alpha)


@torch.no_grad()
def smoothed_predict(classify: Callable[[Tensor], Tensor], x: Tensor, sigma: float, num_classes: int,
                     draws: int = 1000, alpha: float = 0.001, batch_size: int = 1000,
                     generator: torch.Generator | None = None) -> Tensor:
    """PREDICT of Cohen et al.: the smoothed label of each image, or ``ABSTAIN`` when a two-sided
    binomial test of the top two counts does not reject equality at level ``alpha``."""
    counts = noise_counts(classify, x, sigma, draws, num_classes, batch_size, generator)
    top2 = counts.topk(2, dim=1)
    out = top2.indices[:, 0].clone()
    for i, (a, b) in enumerate(top2.values.tolist()):
        if a + b == 0 or stats.binomtest(a, a + b, 0.5).pvalue > alpha:
            out[i] = ABSTAIN
    return out
