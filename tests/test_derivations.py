"""The slow, direct computations behind chapter 2, checked against each other and against identities."""
from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Independent, Normal

from rvae.worlds import derivations
from rvae.worlds.derivations import LinearGaussianDecoder
from rvae.gaussians import (entropic_coupling_term, entropic_cross_covariance, entropic_w2,
                            kl_to_standard_normal)
from conftest import random_gaussian_pair

pytestmark = pytest.mark.usefixtures("double_precision")


def entropies(mu, logvar):
    return Independent(Normal(mu, (0.5 * logvar).exp()), 1).entropy()


# --- psi by minimisation ------------------------------------------------------------------------

def test_coupling_potential_is_eq_19_inside_and_infinite_outside_the_feasible_interval():
    var_a, var_b, gamma = torch.tensor(0.7), torch.tensor(2.0), 1.5
    for psi in (-1.0, 0.0, 0.3, 1.1):
        psi = torch.tensor(psi)
        expected = -gamma * psi - 0.5 * torch.log(var_a - psi ** 2 / var_b)
        assert torch.allclose(derivations.coupling_potential(psi, var_a, var_b, gamma), expected, rtol=1e-13)
    assert derivations.coupling_potential(torch.tensor(1.3), var_a, var_b, gamma) == math.inf


def test_golden_section_finds_the_closed_form_minimiser():
    generator = torch.Generator().manual_seed(0)
    logvar_a, logvar_b = torch.empty(2, 30, 4).uniform_(-4.0, 2.0, generator=generator)
    gamma = torch.exp(torch.empty(30, 1).uniform_(math.log(1e-2), math.log(1e2), generator=generator))
    found = derivations.minimise_coupling_potential(logvar_a.exp(), logvar_b.exp(), gamma)
    assert found.shape == (30, 4)
    assert torch.allclose(found, entropic_cross_covariance(logvar_a, logvar_b, gamma), atol=1e-6, rtol=0)


def test_golden_section_returns_zero_without_coupling_and_a_true_minimum():
    var_a, var_b = torch.tensor([0.5, 3.0]), torch.tensor([2.0, 0.1])
    assert torch.allclose(derivations.minimise_coupling_potential(var_a, var_b, 0.0), torch.zeros(2), atol=1e-8)
    psi = derivations.minimise_coupling_potential(var_a, var_b, 4.0)
    value = derivations.coupling_potential(psi, var_a, var_b, 4.0)
    for shift in (-1e-3, 1e-3):
        assert (derivations.coupling_potential(psi + shift, var_a, var_b, 4.0) > value).all()


# --- The coupling term, three ways -------------------------------------------------------------

def test_gaussian_coupling_has_the_encoder_marginals_and_the_given_cross_covariance():
    mu_a, logvar_a, mu_b, logvar_b = random_gaussian_pair(3, 2, seed=1)
    psi = 0.5 * entropic_cross_covariance(logvar_a, logvar_b, 1.0)
    coupling = derivations.gaussian_coupling(mu_a, logvar_a, mu_b, logvar_b, psi)
    assert coupling.batch_shape == (3, 2) and coupling.event_shape == (2,)
    covariance = coupling.covariance_matrix
    assert torch.allclose(covariance[..., 0, 0], logvar_a.exp()) and torch.allclose(covariance[..., 1, 1], logvar_b.exp())
    assert torch.allclose(covariance[..., 0, 1], psi) and torch.allclose(coupling.loc[..., 1], mu_b)


def test_explicit_value_of_the_independent_coupling():
    mu_a, logvar_a, mu_b, logvar_b = random_gaussian_pair(4, 3, seed=2)
    gamma = 0.8
    value = derivations.explicit_coupling_value(mu_a, logvar_a, mu_b, logvar_b, torch.zeros_like(mu_a), gamma)
    expected = (entropies(mu_a, logvar_a) + entropies(mu_b, logvar_b)
                - 0.5 * gamma * ((mu_a - mu_b).pow(2) + logvar_a.exp() + logvar_b.exp()).sum(-1))
    assert torch.allclose(value, expected, rtol=1e-12)


def test_explicit_value_at_the_optimum_is_the_closed_form():
    mu_a, logvar_a, mu_b, logvar_b = random_gaussian_pair(5, 3, seed=3)
    for gamma in (0.1, 3.0):
        psi = entropic_cross_covariance(logvar_a, logvar_b, gamma)
        assert torch.allclose(derivations.explicit_coupling_value(mu_a, logvar_a, mu_b, logvar_b, psi, gamma),
                              entropic_coupling_term(mu_a, logvar_a, mu_b, logvar_b, gamma), rtol=1e-10)


def test_monte_carlo_value_agrees_within_its_standard_error():
    mu_a, logvar_a, mu_b, logvar_b = random_gaussian_pair(6, 3, seed=4)
    generator = torch.Generator().manual_seed(5)
    for gamma, scale in ((0.5, 1.0), (5.0, 0.3)):
        psi = scale * entropic_cross_covariance(logvar_a, logvar_b, gamma)
        estimate, error = derivations.monte_carlo_coupling_value(mu_a, logvar_a, mu_b, logvar_b, psi, gamma,
                                                                 50_000, generator)
        exact = derivations.explicit_coupling_value(mu_a, logvar_a, mu_b, logvar_b, psi, gamma)
        assert ((estimate - exact).abs() < 5 * error).all() and (error > 0).all()


@pytest.mark.parametrize("mu_a, var_a, mu_b, var_b, gamma", [
    (0.0, 1.0, 0.5, 2.0, 0.1), (0.3, 0.5, -0.2, 1.5, 1.0), (0.0, 1.0, 1.0, 0.7, 5.0)])
def test_sinkhorn_over_all_couplings_reaches_the_gaussian_closed_form(mu_a, var_a, mu_b, var_b, gamma):
    value, iterations = derivations.sinkhorn_coupling_value(mu_a, var_a, mu_b, var_b, gamma, grid=200)
    closed = entropic_coupling_term(torch.tensor([[mu_a]]), torch.tensor([[math.log(var_a)]]),
                                    torch.tensor([[mu_b]]), torch.tensor([[math.log(var_b)]]), gamma)
    assert abs(value - float(closed)) < 1e-8 and iterations < 100_000


def test_sinkhorn_restores_the_thread_count():
    before = torch.get_num_threads()
    derivations.sinkhorn_coupling_value(0.0, 1.0, 0.0, 1.0, 1.0, grid=50)
    assert torch.get_num_threads() == before


def test_gap_slopes_of_a_power_law():
    gammas = torch.logspace(-1, 3, 9)
    gaps = torch.stack([3.0 * gammas ** -1.0, 0.5 * gammas ** -2.0], 1)
    assert torch.allclose(derivations.entropic_gap_slopes(gammas, gaps), torch.tensor([-1.0, -2.0]).expand(8, 2))


# --- Bounds with a linear-Gaussian decoder -----------------------------------------------------

@pytest.fixture
def decoder():
    return LinearGaussianDecoder.random(data_dim=6, latent_dim=3, noise_variance=0.4,
                                        generator=torch.Generator().manual_seed(6))


def exact_posterior(decoder, x):
    """q(z|x) = p(z|x) for the linear-Gaussian model: precision I + W^T W / v."""
    precision = torch.eye(3) + decoder.weight.T @ decoder.weight / decoder.noise_variance
    covariance = torch.linalg.inv(precision)
    mean = (x - decoder.offset) @ decoder.weight @ covariance.T / decoder.noise_variance
    return mean, covariance


def test_expected_log_likelihood_matches_monte_carlo(decoder):
    generator = torch.Generator().manual_seed(7)
    x = decoder.sample(4, generator)
    mu, logvar = torch.randn(4, 3, generator=generator), torch.randn(4, 3, generator=generator)
    z = mu + (0.5 * logvar).exp() * torch.randn(100_000, 4, 3, generator=generator)
    samples = decoder.log_likelihood(x, z)
    assert ((decoder.expected_log_likelihood(x, mu, logvar) - samples.mean(0)).abs()
            < 5 * samples.std(0) / math.sqrt(100_000)).all()


def test_elbo_of_the_exact_posterior_is_the_log_marginal(decoder):
    # With a diagonal posterior the ELBO is tight; pick a decoder with orthogonal columns.
    columns, _ = torch.linalg.qr(torch.randn(6, 3, generator=torch.Generator().manual_seed(8)))
    decoder = LinearGaussianDecoder(columns * torch.tensor([0.5, 1.0, 2.0]), decoder.offset, decoder.noise_variance)
    x = decoder.sample(5, torch.Generator().manual_seed(9))
    mean, covariance = exact_posterior(decoder, x)
    assert torch.allclose(covariance, torch.diag(covariance.diagonal()), atol=1e-12)
    logvar = covariance.diagonal().log().expand(5, 3)
    assert torch.allclose(derivations.linear_elbo(decoder, x, mean, logvar), decoder.log_marginal(x), rtol=1e-10)


def test_se_elbo_is_below_the_elbo_which_is_below_the_log_marginal(decoder):
    generator = torch.Generator().manual_seed(10)
    x = decoder.sample(20, generator)
    mu_a, logvar_a, mu_b, logvar_b = random_gaussian_pair(20, 3, seed=11)
    elbo = derivations.linear_elbo(decoder, x, mu_a, logvar_a)
    assert (elbo <= decoder.log_marginal(x)).all()
    previous = elbo
    for gamma in (0.0, 0.1, 1.0, 10.0):
        current = derivations.se_elbo(decoder, x, mu_a, logvar_a, mu_b, logvar_b, gamma)
        assert (current < previous).all()
        previous = current
    at_zero = derivations.se_elbo(decoder, x, mu_a, logvar_a, mu_b, logvar_b, 0.0)
    assert torch.allclose(at_zero, elbo - kl_to_standard_normal(mu_b, logvar_b), rtol=1e-12)


def test_algorithm_box_differs_from_the_se_elbo_by_the_joint_entropy_at_gamma_two(decoder):
    # With gamma = 2 the weights on W_{2,gamma} agree; what is left is H(Q*) and constants.
    x = decoder.sample(7, torch.Generator().manual_seed(12))
    mu_a, logvar_a, mu_b, logvar_b = random_gaussian_pair(7, 3, seed=13)
    gamma = 2.0
    difference = (derivations.se_elbo(decoder, x, mu_a, logvar_a, mu_b, logvar_b, gamma)
                  - derivations.algorithm_box_objective(decoder, x, mu_a, logvar_a, mu_b, logvar_b, gamma))
    joint_entropy = (entropic_coupling_term(mu_a, logvar_a, mu_b, logvar_b, gamma)
                     + 0.5 * gamma * entropic_w2(mu_a, logvar_a, mu_b, logvar_b, gamma))
    constants = -0.5 * 6 * math.log(2 * math.pi * decoder.noise_variance) - 3 * math.log(2 * math.pi)
    assert torch.allclose(difference, joint_entropy + constants, rtol=1e-12)


def test_algorithm_box_rewards_shrinking_all_variances_while_the_se_elbo_does_not(decoder):
    x = decoder.sample(1, torch.Generator().manual_seed(14)).expand(61, 6)
    mu_a, _, mu_b, _ = random_gaussian_pair(1, 3, seed=15)
    logvar = torch.linspace(-15.0, 3.0, 61)[:, None].expand(61, 3)
    for gamma in (0.01, 1.0, 50.0):
        box = derivations.algorithm_box_objective(decoder, x, mu_a.expand(61, 3), logvar, mu_b.expand(61, 3), logvar, gamma)
        full = derivations.se_elbo(decoder, x, mu_a.expand(61, 3), logvar, mu_b.expand(61, 3), logvar, gamma)
        assert (box.diff() < 0).all()
        assert 0 < int(full.argmax()) < 60


# --- beta-VAE from copies ---------------------------------------------------------------------

@pytest.mark.parametrize("beta", [1, 2, 3, 5])
def test_bound_with_selected_copies_is_the_beta_vae_objective(decoder, beta):
    generator = torch.Generator().manual_seed(16)
    x = decoder.sample(4, generator)
    mu, logvar = torch.randn(4, 3, generator=generator), torch.randn(4, 3, generator=generator)
    expected = derivations.beta_vae_objective(decoder, x, mu, logvar, beta)
    assert torch.allclose(derivations.bound_with_selected_copies(decoder, x, mu, logvar, beta), expected, rtol=1e-12)
    estimate, error = derivations.bound_with_selected_copies_monte_carlo(decoder, x, mu, logvar, beta, 20_000, generator)
    assert ((estimate - expected).abs() < 5 * error).all()


def test_copies_joint_is_block_diagonal_with_identical_blocks():
    mu, logvar = torch.randn(2, 3), torch.randn(2, 3)
    joint = derivations.copies_joint(mu, logvar, 3)
    assert joint.event_shape == (9,)
    assert torch.allclose(joint.covariance_matrix, torch.diag_embed(logvar.exp().repeat(1, 3)))
    assert torch.allclose(joint.entropy(), 3 * entropies(mu, logvar))


def test_power_of_ten_above():
    assert derivations.power_of_ten_above(5.4e-8) == "1e-07"
    assert derivations.power_of_ten_above(1e-7) == "1e-06"          # strictly above
    assert derivations.power_of_ten_above(-0.03) == "1e-01"
    assert derivations.power_of_ten_above(3e-15) == "1e-10" and derivations.power_of_ten_above(0.0) == "1e-10"
    assert derivations.power_of_ten_above(3e-15, floor=1e-14) == "1e-14"


def test_gradients_do_not_need_to_flow_through_the_optimal_cross_covariance():
    # Envelope theorem: with psi held fixed at its optimum, the explicit value has the closed form's gradient.
    inputs = [t.requires_grad_(True) for t in random_gaussian_pair(4, 3, seed=17)]
    for gamma in (0.2, 5.0):
        closed = entropic_coupling_term(*inputs, gamma).sum()
        psi = entropic_cross_covariance(inputs[1], inputs[3], gamma).detach()
        frozen = derivations.explicit_coupling_value(*inputs, psi, gamma).sum()
        for through, held in zip(torch.autograd.grad(closed, inputs), torch.autograd.grad(frozen, inputs)):
            assert torch.allclose(through, held, rtol=1e-9, atol=1e-12)
