"""Numerical checks of the Smooth Encoder derivation (chapter 2), independent of its closed forms.

The closed forms live in :mod:`rvae.gaussians`. This module computes the same quantities the slow,
direct way, so that the chapter can compare the two:

* the cross-covariance psi by minimising F(psi) of appendix B.2 with a derivative-free search;
* the coupling term  max_Q -gamma/2 E_Q||z_a - z_b||^2 + H(Q)  from an explicitly built Gaussian
  coupling (2 x 2 covariance per latent dimension), by Monte Carlo, and by Sinkhorn's algorithm
  over *all* couplings of two discretised 1-D Gaussians;
* the SE-ELBO, the plain ELBO, the objective of the paper's algorithm box and the exact
  log-likelihood for a linear-Gaussian decoder, where every expectation is in closed form;
* the beta-VAE objective rebuilt from beta - 1 selected copies of x (appendix D.2).

Shapes: means and log-variances are (B, d); per-example values are (B,). Everything works in the
dtype of its inputs (the chapter uses float64).
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Iterator

import torch
from torch import Tensor
from torch.distributions import MultivariateNormal

from rvae.gaussians import LOG_2PI, entropic_coupling_term, entropic_w2, expected_log_prior, kl_to_standard_normal

_INVERSE_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


# ---------------------------------------------------------------------------------------------
# The cross-covariance psi by direct minimisation
# ---------------------------------------------------------------------------------------------

def coupling_potential(psi: Tensor, var_a: Tensor, var_b: Tensor, gamma: float | Tensor) -> Tensor:
    """F(psi) = -gamma psi - 1/2 log(S_a - psi^2 / S_b), elementwise (appendix B.2, eq. 19).

    Minus the coupling objective of one latent dimension, up to terms free of psi. Written as
    -gamma psi - 1/2 log S_a - 1/2 log1p(-psi^2 / (S_a S_b)) to keep its rounding small near the
    optimum; +inf outside the feasible interval |psi| < sqrt(S_a S_b).
    """
    ratio = psi.pow(2) / (var_a * var_b)
    inside = -gamma * psi - 0.5 * torch.log(var_a) - 0.5 * torch.log1p(-ratio.clamp(max=1.0))
    return torch.where(ratio < 1.0, inside, torch.full_like(inside, math.inf))


def minimise_coupling_potential(var_a: Tensor, var_b: Tensor, gamma: float | Tensor,
                                iterations: int = 200) -> Tensor:
    """The minimiser of F(psi) over the feasible interval, found by golden-section search.

    Uses only values of F (no derivative, no closed form): the search runs over the correlation
    rho = psi / sqrt(S_a S_b) in (-1, 1), where F is strictly convex. Elementwise over any shape;
    ``gamma`` may be a float or a tensor broadcastable to the variances.
    """
    var_a, var_b = torch.broadcast_tensors(var_a, var_b)
    gamma = torch.as_tensor(gamma, dtype=var_a.dtype).expand_as(var_a)
    scale = torch.sqrt(var_a * var_b)

    def objective(rho: Tensor) -> Tensor:
        return coupling_potential(rho * scale, var_a, var_b, gamma)

    low, high = -torch.ones_like(var_a), torch.ones_like(var_a)
    inner_low = high - _INVERSE_GOLDEN * (high - low)
    inner_high = low + _INVERSE_GOLDEN * (high - low)
    value_low, value_high = objective(inner_low), objective(inner_high)
    for _ in range(iterations):
        go_left = value_low < value_high                  # the minimum lies in [low, inner_high]
        high = torch.where(go_left, inner_high, high)
        low = torch.where(go_left, low, inner_low)
        candidate_low = high - _INVERSE_GOLDEN * (high - low)
        candidate_high = low + _INVERSE_GOLDEN * (high - low)
        new_low = torch.where(go_left, candidate_low, inner_high)
        new_high = torch.where(go_left, inner_low, candidate_high)
        value_new_low = torch.where(go_left, objective(candidate_low), value_high)
        value_new_high = torch.where(go_left, value_low, objective(candidate_high))
        inner_low, inner_high, value_low, value_high = new_low, new_high, value_new_low, value_new_high
    return 0.5 * (low + high) * scale


# ---------------------------------------------------------------------------------------------
# The coupling term from an explicit Gaussian coupling
# ---------------------------------------------------------------------------------------------

def gaussian_coupling(mu_a: Tensor, logvar_a: Tensor, mu_b: Tensor, logvar_b: Tensor,
                      psi: Tensor) -> MultivariateNormal:
    """Q per latent dimension: N((mu_a, mu_b), [[S_a, psi], [psi, S_b]]); batch shape (B, d), event 2."""
    var_a, var_b = logvar_a.exp(), logvar_b.exp()
    covariance = torch.stack([torch.stack([var_a, psi], -1), torch.stack([psi, var_b], -1)], -2)  # (B, d, 2, 2)
    return MultivariateNormal(torch.stack([mu_a, mu_b], -1), covariance_matrix=covariance)


_DIFFERENCE = (1.0, -1.0)


def explicit_coupling_value(mu_a: Tensor, logvar_a: Tensor, mu_b: Tensor, logvar_b: Tensor,
                            psi: Tensor, gamma: float) -> Tensor:
    """-gamma/2 E_Q||z_a - z_b||^2 + H(Q) for the Gaussian coupling with cross-covariance psi, (B,).

    E_Q (z_a - z_b)^2 = (mu_a - mu_b)^2 + u^T Cov u with u = (1, -1), read off the 2 x 2
    covariance; H(Q) is torch.distributions' entropy of the coupling.
    """
    coupling = gaussian_coupling(mu_a, logvar_a, mu_b, logvar_b, psi)
    u = torch.tensor(_DIFFERENCE, dtype=mu_a.dtype, device=mu_a.device)
    spread = torch.einsum("i,...ij,j->...", u, coupling.covariance_matrix, u)     # (B, d)
    squared_distance = ((mu_a - mu_b).pow(2) + spread).sum(-1)
    return -0.5 * gamma * squared_distance + coupling.entropy().sum(-1)


def monte_carlo_coupling_value(mu_a: Tensor, logvar_a: Tensor, mu_b: Tensor, logvar_b: Tensor,
                               psi: Tensor, gamma: float, n_samples: int,
                               generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Monte Carlo estimate of -gamma/2 E_Q||z_a - z_b||^2 - E_Q log Q and its standard error, (B,) each.

    Samples (z_a, z_b) = mean + L u from the Gaussian coupling (L its Cholesky factor, u standard
    normal from ``generator``); both the cost and the entropy are sample averages. log Q at a sample
    is -log 2 pi - log det L - |u|^2 / 2, which avoids a triangular solve per sample.
    """
    coupling = gaussian_coupling(mu_a, logvar_a, mu_b, logvar_b, psi)
    noise = torch.randn((n_samples, *coupling.loc.shape), generator=generator,
                        dtype=mu_a.dtype, device=mu_a.device)                          # (n, B, d, 2)
    samples = coupling.loc + torch.einsum("...ij,n...j->n...i", coupling.scale_tril, noise)
    cost = (samples[..., 0] - samples[..., 1]).pow(2).sum(-1)                          # (n, B)
    log_det = coupling.scale_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1)             # (B, d)
    log_density = (-LOG_2PI - log_det - 0.5 * noise.pow(2).sum(-1)).sum(-1)            # (n, B)
    per_sample = -0.5 * gamma * cost - log_density
    return per_sample.mean(0), per_sample.std(0) / math.sqrt(n_samples)


@contextlib.contextmanager
def _single_thread() -> Iterator[None]:
    """Run small dense loops on one intra-op thread (much faster than two on a busy 2-core machine)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def sinkhorn_coupling_value(mu_a: float, var_a: float, mu_b: float, var_b: float, gamma: float,
                            grid: int = 400, width: float = 8.0, tolerance: float = 1e-12,
                            max_iterations: int = 100_000) -> tuple[float, int]:
    """max over all couplings of two 1-D Gaussians of -gamma/2 E(z_a - z_b)^2 + H(Q), by Sinkhorn.

    Each marginal is discretised on ``grid`` equally spaced points within ``width`` standard
    deviations of its mean. Log-domain Sinkhorn solves the discrete problem (maximise
    -gamma/2 <C, Q> - sum Q log Q over couplings of the discrete marginals) without assuming
    anything about the shape of Q; adding log(cell area) turns the discrete entropy into the
    differential one. Returns (value, iterations used). float64 throughout.
    """
    def discretise(mean: float, variance: float) -> tuple[Tensor, Tensor, float]:
        points = mean + math.sqrt(variance) * torch.linspace(-width, width, grid, dtype=torch.float64)
        log_weights = -0.5 * (points - mean).pow(2) / variance
        return points, log_weights - torch.logsumexp(log_weights, 0), float(points[1] - points[0])

    with _single_thread():
        return _sinkhorn(*discretise(mu_a, var_a), *discretise(mu_b, var_b), gamma, tolerance, max_iterations)


def _sinkhorn(z_a: Tensor, log_a: Tensor, step_a: float, z_b: Tensor, log_b: Tensor, step_b: float,
              gamma: float, tolerance: float, max_iterations: int) -> tuple[float, int]:
    """Log-domain Sinkhorn on discretised marginals; the primal value plus log(cell area), and the iterations."""
    log_kernel = -0.5 * gamma * (z_a[:, None] - z_b[None, :]).pow(2)                   # (n, n)
    potential_a, potential_b = torch.zeros_like(log_a), torch.zeros_like(log_b)
    iterations = 0
    for iterations in range(1, max_iterations + 1):
        potential_a = log_a - torch.logsumexp(log_kernel + potential_b[None, :], 1)
        potential_b = log_b - torch.logsumexp(log_kernel + potential_a[:, None], 0)
        if iterations % 10 == 0:                         # after the b-step only row sums can be off
            row_marginal = torch.logsumexp(log_kernel + potential_a[:, None] + potential_b[None, :], 1).exp()
            if float((row_marginal - log_a.exp()).abs().sum()) < tolerance:
                break
    log_q = log_kernel + potential_a[:, None] + potential_b[None, :]
    q = log_q.exp()
    value = (q * (log_kernel - log_q)).sum() + math.log(step_a * step_b)
    return float(value), iterations


def entropic_gap_slopes(gammas: Tensor, gaps: Tensor) -> Tensor:
    """Local slopes d log(gap) / d log(gamma) between neighbouring grid points, (n - 1, ...)."""
    return torch.diff(gaps.log(), dim=0) / torch.diff(gammas.log())[(...,) + (None,) * (gaps.dim() - 1)]


# ---------------------------------------------------------------------------------------------
# Bounds for a linear-Gaussian decoder, where every expectation is in closed form
# ---------------------------------------------------------------------------------------------

@dataclass
class LinearGaussianDecoder:
    """p(x|z) = N(x; W z + c, v I): weight W (D, d), offset c (D,), observation variance v."""
    weight: Tensor
    offset: Tensor
    noise_variance: float

    @classmethod
    def random(cls, data_dim: int, latent_dim: int, noise_variance: float, generator: torch.Generator,
               dtype: torch.dtype = torch.float64) -> "LinearGaussianDecoder":
        weight = torch.randn(data_dim, latent_dim, generator=generator, dtype=dtype) / math.sqrt(latent_dim)
        offset = torch.randn(data_dim, generator=generator, dtype=dtype)
        return cls(weight, offset, noise_variance)

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """n observations drawn from the model, (n, D)."""
        z = torch.randn(n, self.weight.shape[1], generator=generator, dtype=self.weight.dtype)
        noise = torch.randn(n, self.weight.shape[0], generator=generator, dtype=self.weight.dtype)
        return z @ self.weight.T + self.offset + math.sqrt(self.noise_variance) * noise

    def squared_error(self, x: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
        """E_q ||x - W z - c||^2 for q = N(mu, diag e^logvar), (B,)."""
        residual = x - mu @ self.weight.T - self.offset
        return residual.pow(2).sum(-1) + (logvar.exp() * self.weight.pow(2).sum(0)).sum(-1)

    def expected_log_likelihood(self, x: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
        """E_q log p(x|z), (B,)."""
        data_dim = self.weight.shape[0]
        return (-0.5 * data_dim * math.log(2 * math.pi * self.noise_variance)
                - 0.5 * self.squared_error(x, mu, logvar) / self.noise_variance)

    def log_likelihood(self, x: Tensor, z: Tensor) -> Tensor:
        """log p(x|z) for latent samples z (..., B, d) and data x (B, D), (..., B)."""
        data_dim = self.weight.shape[0]
        residual = x - z @ self.weight.T - self.offset
        return -0.5 * data_dim * math.log(2 * math.pi * self.noise_variance) - 0.5 * residual.pow(2).sum(-1) / self.noise_variance

    def log_marginal(self, x: Tensor) -> Tensor:
        """The exact log p(x) = log N(x; c, W W^T + v I), (B,)."""
        data_dim = self.weight.shape[0]
        covariance = self.weight @ self.weight.T + self.noise_variance * torch.eye(data_dim, dtype=self.weight.dtype)
        return MultivariateNormal(self.offset, covariance_matrix=covariance).log_prob(x)


def linear_elbo(decoder: LinearGaussianDecoder, x: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    """E_q log p(x|z) - KL(q || p), (B,)."""
    return decoder.expected_log_likelihood(x, mu, logvar) - kl_to_standard_normal(mu, logvar)


def se_elbo(decoder: LinearGaussianDecoder, x: Tensor, mu_a: Tensor, logvar_a: Tensor,
            mu_b: Tensor, logvar_b: Tensor, gamma: float) -> Tensor:
    """The full SE-ELBO: E_a log p(x|z_a) + E_a log p(z_a) + E_b log p(z_b) + coupling term, (B,)."""
    return (decoder.expected_log_likelihood(x, mu_a, logvar_a) + expected_log_prior(mu_a, logvar_a)
            + expected_log_prior(mu_b, logvar_b) + entropic_coupling_term(mu_a, logvar_a, mu_b, logvar_b, gamma))


def algorithm_box_objective(decoder: LinearGaussianDecoder, x: Tensor, mu_a: Tensor, logvar_a: Tensor,
                            mu_b: Tensor, logvar_b: Tensor, gamma: float) -> Tensor:
    """E = E1 + E2 - W_{2,gamma} of the paper's algorithm box, with E1 in expectation, (B,).

    E1 = -1/(2v) E||x - g(z_a)||^2, E2 = -1/2 (||mu_a||^2 + ||mu_b||^2 + tr(S_a + S_b)): the SE-ELBO
    without its constants, with weight 1 instead of gamma/2 on W_{2,gamma} and without H(Q).
    """
    data_fidelity = -0.5 * decoder.squared_error(x, mu_a, logvar_a) / decoder.noise_variance
    prior_fidelity = -0.5 * (mu_a.pow(2) + mu_b.pow(2) + logvar_a.exp() + logvar_b.exp()).sum(-1)
    return data_fidelity + prior_fidelity - entropic_w2(mu_a, logvar_a, mu_b, logvar_b, gamma)


# ---------------------------------------------------------------------------------------------
# The beta-VAE from beta - 1 selected copies (appendix D.2)
# ---------------------------------------------------------------------------------------------

def beta_vae_objective(decoder: LinearGaussianDecoder, x: Tensor, mu: Tensor, logvar: Tensor,
                       beta: float) -> Tensor:
    """E_q log p(x|z) - beta KL(q || p), (B,)."""
    return decoder.expected_log_likelihood(x, mu, logvar) - beta * kl_to_standard_normal(mu, logvar)


def copies_joint(mu: Tensor, logvar: Tensor, beta: int) -> MultivariateNormal:
    """Q(z, z'_1..z'_{beta-1}) = q(z|x) prod_i q(z'_i|x): one Gaussian over beta * d coordinates, (B,) batch."""
    means = mu.repeat(1, beta)                                                          # (B, beta d)
    return MultivariateNormal(means, covariance_matrix=torch.diag_embed(logvar.exp().repeat(1, beta)))


def bound_with_selected_copies(decoder: LinearGaussianDecoder, x: Tensor, mu: Tensor, logvar: Tensor,
                               beta: int) -> Tensor:
    """E_Q log p(x|z) + sum over the beta copies of E_Q log p(copy) + H(Q), Q = copies_joint, (B,).

    The lower bound of appendix D.2 with beta - 1 partners identical to x; the joint entropy is
    torch.distributions' entropy of the (beta d)-dimensional Q, not a sum of per-copy entropies.
    """
    joint = copies_joint(mu, logvar, beta)
    prior_terms = expected_log_prior(joint.loc, joint.covariance_matrix.diagonal(dim1=-2, dim2=-1).log())
    return decoder.expected_log_likelihood(x, mu, logvar) + prior_terms + joint.entropy()


def bound_with_selected_copies_monte_carlo(decoder: LinearGaussianDecoder, x: Tensor, mu: Tensor,
                                           logvar: Tensor, beta: int, n_samples: int,
                                           generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Monte Carlo estimate (and standard error) of the same bound: samples of all beta copies from Q,
    averaging log p(x|z) + sum_c log N(z_c; 0, I) - log Q(z, z'), (B,) each."""
    joint = copies_joint(mu, logvar, beta)
    noise = torch.randn((n_samples, *joint.loc.shape), generator=generator, dtype=mu.dtype)
    samples = joint.loc + noise * joint.covariance_matrix.diagonal(dim1=-2, dim2=-1).sqrt()  # (n, B, beta d)
    latent_dim = mu.shape[-1]
    log_prior = -0.5 * samples.pow(2).sum(-1) - 0.5 * samples.shape[-1] * LOG_2PI
    per_sample = decoder.log_likelihood(x, samples[..., :latent_dim]) + log_prior - joint.log_prob(samples)
    return per_sample.mean(0), per_sample.std(0) / math.sqrt(n_samples)


# ---------------------------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------------------------

def power_of_ten_above(value: float, floor: float = 1e-10) -> str:
    """The smallest power of ten strictly above |value| (at least ``floor``), as text such as '1e-07'.

    Claims report tiny differences this way, so that their printed form does not depend on the
    last digits of a machine's arithmetic.
    """
    exponent = max(math.floor(math.log10(abs(value))) + 1 if value else -math.inf, round(math.log10(floor)))
    return f"{10.0 ** exponent:.0e}"
