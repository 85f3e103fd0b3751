"""Kernel two-sample statistics: the unbiased U-statistic of MMD^2 and the kernels the book uses
with it (the WAE-MMD penalty of :mod:`rvae.methods.wae`, the kernel distance between image features
of :mod:`rvae.fidelity`)."""
from __future__ import annotations

from typing import Callable

from torch import Tensor

Kernel = Callable[[Tensor, Tensor], Tensor]

#: The kernel scales of the WAE authors' code: C = 2 d sigma^2 * s for each s.
IMQ_SCALES = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)


def imq_kernel(a: Tensor, b: Tensor, scales: tuple[float, ...] = IMQ_SCALES, prior_variance: float = 1.0) -> Tensor:
    """sum_s C_s / (C_s + ||a_i - b_j||^2), C_s = 2 d prior_variance s: the (N, M) inverse multiquadric
    kernel matrix of the WAE authors (d = a.shape[1])."""
    # ||a||^2 + ||b||^2 - 2 a.b, clamped at 0 against rounding; no square root, whose gradient at a
    # point meeting itself (the within-sample matrices' diagonals) would be undefined
    squared = (a.pow(2).sum(1, keepdim=True) + b.pow(2).sum(1) - 2 * a @ b.T).clamp(min=0)
    base = 2.0 * a.shape[1] * prior_variance
    return sum(base * s / (base * s + squared) for s in scales)


def polynomial_kernel(a: Tensor, b: Tensor) -> Tensor:
    """(a_i . b_j / d + 1)^3: the (N, M) cubic kernel of the kernel inception distance (Binkowski et al. 2018)."""
    return (a @ b.T / a.shape[1] + 1).pow(3)


def mmd_u(a: Tensor, b: Tensor, kernel: Kernel = imq_kernel) -> Tensor:
    """The unbiased U-statistic of MMD_k^2 between samples a (N, d) and b (M, d), N, M >= 2:

    sum_{i != j} k(a_i, a_j) / (N (N - 1)) + sum_{i != j} k(b_i, b_j) / (M (M - 1)) - 2 mean_{i, j} k(a_i, b_j).

    Its expectation is the population MMD^2 (so it can be negative on a sample).
    """
    n, m = len(a), len(b)
    if n < 2 or m < 2:
        raise ValueError(f"the U-statistic needs at least two points in each sample; got {n} and {m}")
    k_aa, k_bb, k_ab = kernel(a, a), kernel(b, b), kernel(a, b)
    within_a = (k_aa.sum() - k_aa.diagonal().sum()) / (n * (n - 1))
    within_b = (k_bb.sum() - k_bb.diagonal().sum()) / (m * (m - 1))
    return within_a + within_b - 2 * k_ab.mean()
