"""Closed forms for diagonal Gaussians N(mu, diag(exp(logvar))): log-likelihood, expected log-prior, KL,
W2^2 and the entropic coupling.

All functions take means and *log*-variances of shape (B, d) and return one value per row, (B,).
Working with log-variances keeps every gradient finite when a variance goes to 0 (the square
root of a variance is exp(logvar / 2), never sqrt(var)).

The entropy-regularised optimal transport between N(mu_a, S_a) and N(mu_b, S_b) with cost
gamma/2 ||z_a - z_b||^2 and entropy weight 1 (Smooth Encoder appendix B.2) is solved, per latent
dimension, by a Gaussian coupling with cross-covariance

    psi = (sqrt(1 + 4 gamma^2 S_a S_b) - 1) / (2 gamma) = 2 gamma S_a S_b / (1 + sqrt(1 + 4 gamma^2 S_a S_b)),

the positive root of gamma psi^2 + psi - gamma S_a S_b = 0 (the stationarity condition of
F(psi) = -gamma psi - 1/2 log(S_a - psi^2 / S_b)). The second form is the one computed: it has
no cancellation for small gamma * S.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

LOG_2PI = math.log(2 * math.pi)
LOG_2PI_E = math.log(2 * math.pi * math.e)


def reparameterise(mu: Tensor, logvar: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """A sample z = mu + e^(logvar/2) * u, u ~ N(0, I), differentiable in mu and logvar, (B, d).

    The noise is drawn on ``generator``'s device (torch's default generator if None) and then
    moved to mu's, so a CPU generator also drives a model on the GPU.
    """
    device = generator.device if generator is not None else mu.device
    noise = torch.randn(mu.shape, generator=generator, device=device, dtype=mu.dtype).to(mu.device)
    return mu + (0.5 * logvar).exp() * noise


def gaussian_log_likelihood(x: Tensor, mean: Tensor, variance: float) -> Tensor:
    """log N(x; mean, variance I) summed over pixels, (B,): -D/2 log(2 pi v) - ||x - mean||^2 / (2v)."""
    dims = x[0].numel()
    squared = (x - mean).pow(2).flatten(1).sum(1)
    return -0.5 * dims * (LOG_2PI + math.log(variance)) - squared / (2 * variance)


def expected_log_prior(mu: Tensor, logvar: Tensor) -> Tensor:
    """E_q[log N(z; 0, I)] for q = N(mu, diag e^logvar), (B,): -1/2 (||mu||^2 + tr S) - d/2 log 2 pi."""
    return -0.5 * (mu.pow(2) + logvar.exp()).sum(-1) - 0.5 * mu.shape[-1] * LOG_2PI


def kl_to_standard_normal(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, diag e^logvar) || N(0, I)) in nats, (B,)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1)


def kl_divergence(mu_a: Tensor, logvar_a: Tensor, mu_b: Tensor, logvar_b: Tensor) -> Tensor:
    """KL(N_a || N_b) for diagonal Gaussians in nats, (B,)."""
    return 0.5 * ((logvar_a - logvar_b).exp() + (mu_a - mu_b).pow(2) / logvar_b.exp()
                  - 1.0 - logvar_a + logvar_b).sum(-1)


def w2_squared(mu_a: Tensor, logvar_a: Tensor, mu_b: Tensor, logvar_b: Tensor) -> Tensor:
    """Squared 2-Wasserstein distance ||mu_a - mu_b||^2 + ||S_a^1/2 - S_b^1/2||_F^2, (B,)."""
    return ((mu_a - mu_b).pow(2) + ((0.5 * logvar_a).exp() - (0.5 * logvar_b).exp()).pow(2)).sum(-1)


def entropic_cross_covariance(logvar_a: Tensor, logvar_b: Tensor, gamma: float) -> Tensor:
    """psi per dimension: the cross-covariance of the entropic-optimal Gaussian coupling, (B, d)."""
    product = (logvar_a + logvar_b).exp()
    return 2.0 * gamma * product / (1.0 + torch.sqrt(1.0 + 4.0 * gamma ** 2 * product))


def log_entropic_residual(logvar_a: Tensor, logvar_b: Tensor, gamma: float) -> Tensor:
    """log(S_a S_b - psi^2) per dimension, (B, d), at the optimal psi (where it equals log(psi / gamma)).

    Computed as log 2 + log(S_a S_b) - log(1 + sqrt(1 + 4 gamma^2 S_a S_b)): no cancellation when
    psi^2 is close to S_a S_b. Needs gamma > 0.
    """
    product_log = logvar_a + logvar_b
    root = torch.sqrt(1.0 + 4.0 * gamma ** 2 * product_log.exp())
    return math.log(2.0) + product_log - torch.log1p(root)


def entropic_w2(mu_a: Tensor, logvar_a: Tensor, mu_b: Tensor, logvar_b: Tensor, gamma: float) -> Tensor:
    """W_{2,gamma}: E||z_a - z_b||^2 under the entropic-optimal coupling,
    ||mu_a - mu_b||^2 + sum(S_a + S_b - 2 psi), (B,). Tends to W2^2 as gamma -> inf."""
    psi = entropic_cross_covariance(logvar_a, logvar_b, gamma)
    return ((mu_a - mu_b).pow(2) + logvar_a.exp() + logvar_b.exp() - 2.0 * psi).sum(-1)


def entropic_coupling_term(mu_a: Tensor, logvar_a: Tensor, mu_b: Tensor, logvar_b: Tensor,
                           gamma: float) -> Tensor:
    """max over couplings Q of (N_a, N_b) of  -gamma/2 E_Q||z_a - z_b||^2 + H(Q), in nats, (B,).

    The optimum is Gaussian with cross-covariance psi, whose joint entropy per dimension is
    log(2 pi e) + 1/2 log(S_a S_b - psi^2) and S_a S_b - psi^2 = psi / gamma. At gamma = 0 the
    value is H(N_a) + H(N_b) (the independent coupling). This is the SE-ELBO's coupling term.
    """
    if isinstance(gamma, (int, float)) and gamma < 0:
        raise ValueError(f"the coupling strength gamma must be >= 0, not {gamma}")
    if isinstance(gamma, (int, float)) and gamma == 0:
        return 0.5 * (2 * LOG_2PI_E + logvar_a + logvar_b).sum(-1)
    entropy = (LOG_2PI_E + 0.5 * log_entropic_residual(logvar_a, logvar_b, gamma)).sum(-1)
    return -0.5 * gamma * entropic_w2(mu_a, logvar_a, mu_b, logvar_b, gamma) + entropy
