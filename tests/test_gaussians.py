"""Closed forms for diagonal Gaussians, each checked against an independent computation.

KL against Monte Carlo and torch.distributions; W2^2 against sorted samples and against the
general formula with matrix square roots (appendix B.1, eq. 15); the entropic cross-covariance
against a numerical minimiser of F(psi) (appendix B.2, eq. 19); the coupling term against an
explicitly built Gaussian coupling; gradients against finite differences.
"""
from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Independent, MultivariateNormal, Normal, kl_divergence

from rvae import gaussians
from rvae.gaussians import (entropic_coupling_term, entropic_cross_covariance, entropic_w2,
                            kl_to_standard_normal, w2_squared)
from conftest import random_gaussian_pair

pytestmark = pytest.mark.usefixtures("double_precision")


def diagonal_normal(mu, logvar):
    return Independent(Normal(mu, (0.5 * logvar).exp()), 1)


# --- KL ---------------------------------------------------------------------------------------

def test_kl_matches_torch_distributions():
    mu_a, logvar_a, mu_b, logvar_b = random_gaussian_pair(16, 5, seed=0)
    expected = kl_divergence(diagonal_normal(mu_a, logvar_a), diagonal_normal(mu_b, logvar_b))
    assert torch.allclose(gaussians.kl_divergence(mu_a, logvar_a, mu_b, logvar_b), expected, rtol=1e-12, atol=1e-12)
    standard = diagonal_normal(torch.zeros_like(mu_a), torch.zeros_like(logvar_a))
    assert torch.allclose(kl_to_standard_normal(mu_a, logvar_a),
                          kl_divergence(diagonal_normal(mu_a, logvar_a), standard), rtol=1e-12, atol=1e-12)


def test_kl_matches_monte_carlo():
    mu_a, logvar_a, mu_b, logvar_b = random_gaussian_pair(6, 4, seed=1, low=-1.0, high=1.0)
    generator = torch.Generator().manual_seed(2)
    n = 200_000
    z = mu_a + (0.5 * logvar_a).exp() * torch.randn(n, *mu_a.shape, generator=generator)    # (n, B, d)
    log_ratio = diagonal_normal(mu_a, logvar_a).log_prob(z) - diagonal_normal(mu_b, logvar_b).log_prob(z)
    estimate, error = log_ratio.mean(0), log_ratio.std(0) / math.sqrt(n)
    closed = gaussians.kl_divergence(mu_a, logvar_a, mu_b, logvar_b)
    assert ((closed - estimate).abs() < 5 * error).all()
    to_standard = diagonal_normal(mu_a, logvar_a).log_prob(z) - Normal(0.0, 1.0).log_prob(z).sum(-1)
    assert ((kl_to_standard_normal(mu_a, logvar_a) - to_standard.mean(0)).abs()
            < 5 * to_standard.std(0) / math.sqrt(n)).all()


def test_kl_is_zero_only_for_equal_gaussians_and_asymmetric():
    mu_a, logvar_a, mu_b, logvar_b = random_gaussian_pair(8, 3, seed=3)
    assert torch.allclose(gaussians.kl_divergence(mu_a, logvar_a, mu_a, logvar_a), torch.zeros(8), atol=1e-14)
    forward = gaussians.kl_divergence(mu_a, logvar_a, mu_b, logvar_b)
    assert (forward > 0).all()
    assert not torch.allclose(forward, gaussians.kl_divergence(mu_b, logvar_b, mu_a, logvar_a))


# --- W2 ---------------------------------------------------------------------------------------

def matrix_sqrt(matrix: torch.Tensor) -> torch.Tensor:
    """The symmetric square root of a symmetric positive semidefinite matrix, by eigendecomposition."""
    values, vectors = torch.linalg.eigh(matrix)
    return vectors @ torch.diag_embed(values.clamp_min(0).sqrt()) @ vectors.mT


def general_w2_squared(mean_a, cov_a, mean_b, cov_b):
    """Appendix B.1, eq. (15): ||m_a - m_b||^2 + tr(S_a + S_b - 2 (S_b^1/2 S_a S_b^1/2)^1/2), any covariances."""
    root_b = matrix_sqrt(cov_b)
    cross = matrix_sqrt(root_b @ cov_a @ root_b)
    trace = torch.diagonal(cov_a + cov_b - 2 * cross, dim1=-2, dim2=-1).sum(-1)
    return (mean_a - mean_b).pow(2).sum(-1) + trace


def test_w2_matches_the_general_formula_with_matrix_square_roots():
    mu_a, logvar_a, mu_b, logvar_b = random_gaussian_pair(10, 6, seed=4)
    general = general_w2_squared(mu_a, torch.diag_embed(logvar_a.exp()), mu_b, torch.diag_embed(logvar_b.exp()))
    assert torch.allclose(w2_squared(mu_a, logvar_a, mu_b, logvar_b), general, rtol=1e-10, atol=1e-12)


def test_w2_is_invariant_under_a_common_rotation_of_both_gaussians():
    # After a shared rotation the covariances are no longer diagonal, so eq. (15) does real work.
    mu_a, logvar_a, mu_b, logvar_b = random_gaussian_pair(5, 4, seed=5)
    rotation, _ = torch.linalg.qr(torch.randn(4, 4, generator=torch.Generator().manual_seed(6)))
    rotate = lambda cov: rotation @ cov @ rotation.T        # noqa: E731
    general = general_w2_squared(mu_a @ rotation.T, rotate(torch.diag_embed(logvar_a.exp())),
                                 mu_b @ rotation.T, rotate(torch.diag_embed(logvar_b.exp())))
    assert torch.allclose(w2_squared(mu_a, logvar_a, mu_b, logvar_b), general, rtol=1e-8, atol=1e-10)


def test_w2_matches_sorted_samples_per_dimension():
    # In 1-D the optimal coupling of two empirical distributions of equal size pairs sorted samples.
    mu_a, logvar_a, mu_b, logvar_b = random_gaussian_pair(3, 4, seed=7, low=-1.0, high=1.0)
    generator = torch.Generator().manual_seed(8)
    n = 400_000
    samples_a = mu_a + (0.5 * logvar_a).exp() * torch.randn(n, 3, 4, generator=generator)
    samples_b = mu_b + (0.5 * logvar_b).exp() * torch.randn(n, 3, 4, generator=generator)
    empirical = (samples_a.sort(0).values - samples_b.sort(0).values).pow(2).mean(0).sum(-1)   # (B,)
    closed = w2_squared(mu_a, logvar_a, mu_b, logvar_b)
    assert torch.allclose(empirical, closed, rtol=1e-2, atol=1e-2)


def test_w2_is_a_squared_metric_on_examples():
    mu_a, logvar_a, mu_b, logvar_b = random_gaussian_pair(8, 3, seed=9)
    assert torch.allclose(w2_squared(mu_a, logvar_a, mu_a, logvar_a), torch.zeros(8))
    assert torch.allclose(w2_squared(mu_a, logvar_a, mu_b, logvar_b), w2_squared(mu_b, logvar_b, mu_a, logvar_a))
    mu_c, logvar_c, _, _ = random_gaussian_pair(8, 3, seed=10)
    ab, bc, ac = (w2_squared(*pair).sqrt() for pair in [(mu_a, logvar_a, mu_b, logvar_b),
                                                          (mu_b, logvar_b, mu_c, logvar_c),
                                                          (mu_a, logvar_a, mu_c, logvar_c)])
    assert (ac <= ab + bc + 1e-12).all()


# --- The entropic coupling ------------------------------------------------------------------

def coupling_potential(psi, var_a, var_b, gamma):
    """F(psi) = -gamma psi - 1/2 log(S_a - psi^2 / S_b): appendix B.2, eq. (19), for one dimension."""
    return -gamma * psi - 0.5 * torch.log(var_a - psi.pow(2) / var_b)


def minimise_by_lbfgs(var_a, var_b, gamma):
    """argmin F over |psi| < sqrt(S_a S_b), by L-BFGS on psi = sqrt(S_a S_b) tanh(t), one problem at a time."""
    found = []
    for a, b, g in zip(var_a.flatten(), var_b.flatten(), gamma.flatten()):
        scale = torch.sqrt(a * b)
        t = torch.zeros((), requires_grad=True)
        optimiser = torch.optim.LBFGS([t], lr=1.0, max_iter=500, tolerance_grad=1e-15, tolerance_change=1e-18,
                                      line_search_fn="strong_wolfe")

        def closure():
            optimiser.zero_grad()
            value = coupling_potential(scale * torch.tanh(t), a, b, g)
            value.backward()
            return value

        optimiser.step(closure)
        found.append(float(scale * torch.tanh(t.detach())))
    return torch.tensor(found).reshape(var_a.shape)


def test_cross_covariance_is_the_minimiser_of_the_entropic_objective():
    generator = torch.Generator().manual_seed(11)
    logvar_a, logvar_b = torch.empty(2, 40, 1).uniform_(-4.0, 2.0, generator=generator)
    gamma = torch.exp(torch.empty(40, 1).uniform_(math.log(1e-2), math.log(1e2), generator=generator))
    closed = torch.cat([entropic_cross_covariance(logvar_a[i:i + 1], logvar_b[i:i + 1], float(gamma[i]))
                        for i in range(40)])
    numerical = minimise_by_lbfgs(logvar_a.exp(), logvar_b.exp(), gamma)
    assert torch.allclose(closed, numerical, rtol=1e-7, atol=1e-9)


def test_cross_covariance_is_the_feasible_root_of_the_quadratic():
    mu_a, logvar_a, mu_b, logvar_b = random_gaussian_pair(8, 5, seed=12)
    product = (logvar_a + logvar_b).exp()
    for gamma in (0.01, 1.0, 50.0):
        psi = entropic_cross_covariance(logvar_a, logvar_b, gamma)
        assert ((psi > 0) & (psi < product.sqrt())).all()
        assert torch.allclose(gamma * psi.pow(2) + psi - gamma * product, torch.zeros_like(psi), atol=1e-12)
        # the other root of the quadratic is infeasible: |psi_-| > sqrt(S_a S_b)
        other = (-1 - torch.sqrt(1 + 4 * gamma ** 2 * product)) / (2 * gamma)
        assert (other.abs() > product.sqrt()).all()
    assert torch.equal(entropic_cross_covariance(logvar_a, logvar_b, 0.0), torch.zeros_like(logvar_a))


def test_cross_covariance_has_no_cancellation_for_small_gamma_in_float32():
    logvar = torch.zeros(1, 3, dtype=torch.float32)
    psi = entropic_cross_covariance(logvar, logvar, 1e-6)            # psi = gamma S_a S_b (1 - O(gamma^2))
    assert torch.allclose(psi, torch.full_like(psi, 1e-6), rtol=1e-5, atol=0)


def test_entropic_w2_decreases_to_w2_squared_with_gap_d_over_gamma():
    mu_a, logvar_a, mu_b, logvar_b = random_gaussian_pair(6, 4, seed=13)
    exact = w2_squared(mu_a, logvar_a, mu_b, logvar_b)
    gammas = [10.0 ** k for k in range(-2, 7)]
    gaps = torch.stack([entropic_w2(mu_a, logvar_a, mu_b, logvar_b, g) - exact for g in gammas])   # (G, B)
    assert (gaps > 0).all() and (gaps[1:] < gaps[:-1]).all()
    # psi = sqrt(S_a S_b) - 1/(2 gamma) + O(gamma^-2) per dimension, so gamma * gap -> d
    assert torch.allclose(gammas[-1] * gaps[-1], torch.full((6,), 4.0), rtol=1e-4)
    independent = (mu_a - mu_b).pow(2).sum(-1) + (logvar_a.exp() + logvar_b.exp()).sum(-1)
    assert torch.allclose(entropic_w2(mu_a, logvar_a, mu_b, logvar_b, 0.0), independent)


def test_coupling_term_at_gamma_zero_is_the_sum_of_the_marginal_entropies():
    mu_a, logvar_a, mu_b, logvar_b = random_gaussian_pair(7, 3, seed=14)
    entropies = diagonal_normal(mu_a, logvar_a).entropy() + diagonal_normal(mu_b, logvar_b).entropy()
    assert torch.allclose(entropic_coupling_term(mu_a, logvar_a, mu_b, logvar_b, 0.0), entropies, rtol=1e-12)
    assert torch.allclose(entropic_coupling_term(mu_a, logvar_a, mu_b, logvar_b, 1e-9), entropies, atol=1e-7)


def explicit_coupling_value(mu_a, logvar_a, mu_b, logvar_b, psi, gamma):
    """-gamma/2 E_Q||z_a - z_b||^2 + H(Q) for the per-dimension Gaussian coupling with cross-covariance psi."""
    var_a, var_b = logvar_a.exp(), logvar_b.exp()
    covariance = torch.stack([torch.stack([var_a, psi], -1), torch.stack([psi, var_b], -1)], -2)  # (B, d, 2, 2)
    coupling = MultivariateNormal(torch.stack([mu_a, mu_b], -1), covariance_matrix=covariance)
    difference = torch.tensor([1.0, -1.0])
    spread = difference @ coupling.covariance_matrix @ difference                                  # Var(z_a - z_b)
    return -0.5 * gamma * ((mu_a - mu_b).pow(2) + spread).sum(-1) + coupling.entropy().sum(-1)


@pytest.mark.parametrize("gamma", [0.05, 1.0, 20.0])
def test_coupling_term_is_the_value_of_the_optimal_gaussian_coupling(gamma):
    mu_a, logvar_a, mu_b, logvar_b = random_gaussian_pair(9, 4, seed=15)
    psi = entropic_cross_covariance(logvar_a, logvar_b, gamma)
    closed = entropic_coupling_term(mu_a, logvar_a, mu_b, logvar_b, gamma)
    assert torch.allclose(closed, explicit_coupling_value(mu_a, logvar_a, mu_b, logvar_b, psi, gamma), rtol=1e-10)
    # S_a S_b - psi^2 = psi / gamma: the joint entropy in closed form
    assert torch.allclose((logvar_a + logvar_b).exp() - psi.pow(2), psi / gamma, rtol=1e-9)


@pytest.mark.parametrize("gamma", [0.05, 1.0, 20.0])
def test_coupling_term_beats_every_other_feasible_gaussian_coupling(gamma):
    # One latent dimension per row, so a shared grid of correlations rho = psi / sqrt(S_a S_b)
    # scans every row's feasible range |psi| < sqrt(S_a S_b).
    mu_a, logvar_a, mu_b, logvar_b = random_gaussian_pair(6, 1, seed=16)
    closed = entropic_coupling_term(mu_a, logvar_a, mu_b, logvar_b, gamma)                      # (B,)
    rho = torch.linspace(-0.9999, 0.9999, 4001)[:, None, None]                                  # (R, 1, 1)
    psi = rho * (0.5 * (logvar_a + logvar_b)).exp()                                             # (R, B, 1)
    expand = lambda t: t.expand_as(psi)        # noqa: E731
    values = explicit_coupling_value(expand(mu_a), expand(logvar_a), expand(mu_b), expand(logvar_b), psi, gamma)
    assert (values <= closed + 1e-10).all()
    assert torch.allclose(values.max(0).values, closed, atol=1e-4)


def test_coupling_term_beats_random_feasible_couplings_in_several_dimensions():
    mu_a, logvar_a, mu_b, logvar_b = random_gaussian_pair(50, 4, seed=23)
    generator = torch.Generator().manual_seed(24)
    for gamma in (0.05, 1.0, 20.0):
        closed = entropic_coupling_term(mu_a, logvar_a, mu_b, logvar_b, gamma)
        optimal = entropic_cross_covariance(logvar_a, logvar_b, gamma)
        scale = (0.5 * (logvar_a + logvar_b)).exp()
        for _ in range(20):
            rho = torch.empty(50, 4).uniform_(-1.0, 1.0, generator=generator) * 0.999
            assert (explicit_coupling_value(mu_a, logvar_a, mu_b, logvar_b, rho * scale, gamma) < closed).all()
            nearby = (optimal + 1e-3 * scale * torch.randn(50, 4, generator=generator)).clamp(-0.999 * scale, 0.999 * scale)
            assert (explicit_coupling_value(mu_a, logvar_a, mu_b, logvar_b, nearby, gamma) <= closed + 1e-12).all()


def test_coupling_term_derivative_in_gamma_is_minus_half_the_entropic_w2():
    # Envelope theorem: d/dgamma max_Q [-gamma/2 E c + H(Q)] = -1/2 E_{Q*} c.
    mu_a, logvar_a, mu_b, logvar_b = random_gaussian_pair(6, 3, seed=17)
    for gamma in (0.1, 2.0, 30.0):
        step = 1e-5 * gamma
        difference = (entropic_coupling_term(mu_a, logvar_a, mu_b, logvar_b, gamma + step)
                      - entropic_coupling_term(mu_a, logvar_a, mu_b, logvar_b, gamma - step)) / (2 * step)
        assert torch.allclose(difference, -0.5 * entropic_w2(mu_a, logvar_a, mu_b, logvar_b, gamma), rtol=1e-6)


def test_coupling_term_is_at_most_the_independent_entropy():
    mu_a, logvar_a, mu_b, logvar_b = random_gaussian_pair(8, 4, seed=18)
    independent = entropic_coupling_term(mu_a, logvar_a, mu_b, logvar_b, 0.0)
    values = [entropic_coupling_term(mu_a, logvar_a, mu_b, logvar_b, g) for g in (0.01, 0.1, 1.0, 10.0)]
    assert (values[0] < independent).all()
    assert all((later < earlier).all() for earlier, later in zip(values, values[1:]))


# --- Gradients and shapes -------------------------------------------------------------------

PAIR_FUNCTIONS = {
    "kl_divergence": gaussians.kl_divergence,
    "w2_squared": w2_squared,
    "entropic_w2 gamma=0.5": lambda *args: entropic_w2(*args, 0.5),
    "entropic_w2 gamma=20": lambda *args: entropic_w2(*args, 20.0),
    "coupling gamma=0": lambda *args: entropic_coupling_term(*args, 0.0),
    "coupling gamma=0.5": lambda *args: entropic_coupling_term(*args, 0.5),
    "coupling gamma=20": lambda *args: entropic_coupling_term(*args, 20.0),
    "cross covariance gamma=3": lambda ma, la, mb, lb: entropic_cross_covariance(la, lb, 3.0),
}


@pytest.mark.parametrize("name", PAIR_FUNCTIONS)
def test_gradients_match_finite_differences(name):
    inputs = tuple(t.clone().requires_grad_(True) for t in random_gaussian_pair(3, 2, seed=19))
    assert torch.autograd.gradcheck(PAIR_FUNCTIONS[name], inputs, eps=1e-6, atol=1e-6, rtol=1e-5)


def test_kl_to_standard_normal_gradient_matches_finite_differences():
    mu, logvar, _, _ = random_gaussian_pair(3, 2, seed=20)
    assert torch.autograd.gradcheck(kl_to_standard_normal,
                                    (mu.requires_grad_(True), logvar.requires_grad_(True)), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", PAIR_FUNCTIONS)
@pytest.mark.parametrize("which", ["a", "b", "both"])
def test_gradients_stay_finite_as_a_variance_vanishes(name, which):
    mu_a, logvar_a, mu_b, logvar_b = random_gaussian_pair(4, 3, seed=21)
    if which in ("a", "both"):
        logvar_a[:, 0] = -30.0
    if which in ("b", "both"):
        logvar_b[:, 0] = -30.0
    inputs = [t.clone().requires_grad_(True) for t in (mu_a, logvar_a, mu_b, logvar_b)]
    value = PAIR_FUNCTIONS[name](*inputs)
    assert torch.isfinite(value).all()
    gradients = torch.autograd.grad(value.sum(), inputs, allow_unused=True)
    assert all(g is None or torch.isfinite(g).all() for g in gradients)


def test_kl_to_standard_normal_gradient_stays_finite_as_the_variance_vanishes():
    mu = torch.randn(4, 3, requires_grad=True)
    logvar = torch.full((4, 3), -30.0, requires_grad=True)
    gradients = torch.autograd.grad(kl_to_standard_normal(mu, logvar).sum(), (mu, logvar))
    assert all(torch.isfinite(g).all() for g in gradients)


@pytest.mark.parametrize("name", PAIR_FUNCTIONS)
def test_shapes_one_value_per_row(name):
    mu_a, logvar_a, mu_b, logvar_b = random_gaussian_pair(5, 7, seed=22)
    expected = (5, 7) if name.startswith("cross covariance") else (5,)
    assert PAIR_FUNCTIONS[name](mu_a, logvar_a, mu_b, logvar_b).shape == expected
    assert kl_to_standard_normal(mu_a, logvar_a).shape == (5,)
