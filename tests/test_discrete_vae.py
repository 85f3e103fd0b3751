"""The discrete VAE of the fragility chapter and the pPCA closed forms."""
from __future__ import annotations

import math

import pytest
import torch

from rvae.worlds import discrete_vae, ppca
from rvae.errors import NonFiniteLossError

from conftest import spread_discrete_vae


pytestmark = pytest.mark.usefixtures("double_precision")


@pytest.fixture
def model():
    return spread_discrete_vae(7, 5, -1.5, 0.5)


COUNTS = torch.tensor([3.0, 0.0, 1.0, 0.0, 0.0, 2.0, 5.0], dtype=torch.float64)


def test_tables_normalise(model):
    assert torch.allclose(model.log_encoder().exp().sum(1), torch.ones(7))
    assert torch.allclose(model.log_decoder().exp().sum(0), torch.ones(5))
    assert torch.allclose(model.model_marginal().sum(), torch.tensor(1.0))


def test_tables_follow_the_von_mises_formula_entry_by_entry(model):
    i, j = 4, 2
    mu, sigma, m, v = model.mu[i].item(), model.log_sigma[i].exp().item(), model.m[j].item(), 0.4
    encoder_row = [math.exp(math.cos(2 * math.pi * (mu - k / 5)) / sigma) for k in range(5)]
    decoder_col = [math.exp(math.cos(2 * math.pi * (m - k / 7)) / v) for k in range(7)]
    assert model.log_encoder()[i, j].exp().item() == pytest.approx(encoder_row[j] / sum(encoder_row), rel=1e-12)
    assert model.log_decoder()[i, j].exp().item() == pytest.approx(decoder_col[i] / sum(decoder_col), rel=1e-12)


def test_elbo_per_x_matches_a_hand_computed_sum(model):
    q, p = model.log_encoder().exp().detach(), model.log_decoder().exp().detach()
    for i in range(7):
        by_hand = sum(q[i, j] * (math.log(p[i, j]) + math.log(1 / 5) - math.log(q[i, j])) for j in range(5))
        assert model.elbo_per_x()[i].item() == pytest.approx(float(by_hand), rel=1e-12)


def test_elbo_is_below_the_log_marginal_likelihood_by_the_kl_to_the_posterior(model):
    """log p(x) - ELBO(x) = KL(q(z|x) || p(z|x)), the posterior p(z|x) = p(x|z) p(z) / p(x) by Bayes' rule."""
    q, decoder = model.log_encoder().exp().detach(), model.log_decoder().exp().detach()
    log_marginal = model.model_marginal().log().detach()
    gaps = log_marginal - model.elbo_per_x().detach()
    for i in range(7):
        posterior = decoder[i] * (1 / 5) / log_marginal[i].exp()
        assert posterior.sum().item() == pytest.approx(1.0, abs=1e-12)
        assert gaps[i].item() == pytest.approx(discrete_vae.categorical_kl(q[i], posterior), rel=1e-9, abs=1e-12)
    assert torch.all(gaps > 1e-3)              # this encoder is far from the posteriors: the bound is strict


def test_batch_elbo_equals_the_kl_form_of_equation_2(model):
    direct = (COUNTS * model.elbo_per_x()).sum() - torch.special.xlogy(COUNTS, COUNTS).sum()
    assert discrete_vae.elbo_kl_form(model, COUNTS).item() == pytest.approx(direct.item(), rel=1e-12)
    assert discrete_vae.batch_elbo(model, COUNTS).item() == pytest.approx(
        (COUNTS * model.elbo_per_x()).sum().item() / COUNTS.sum().item(), rel=1e-12)


def test_never_observed_rows_get_exactly_zero_gradient_and_observed_rows_do_not(model):
    assert discrete_vae.off_support_gradient(model, COUNTS) == 0.0
    discrete_vae.batch_elbo(model, COUNTS).backward()
    assert torch.all(model.mu.grad[COUNTS > 0] != 0)
    assert torch.all(model.mu.grad[COUNTS == 0] == 0) and torch.all(model.log_sigma.grad[COUNTS == 0] == 0)


def _random_log_marginals(n, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.log_softmax(torch.randn(2, n, generator=g) * 0.8, dim=1)


def _primal(plan, log_a, log_b, cost, gamma):
    """γ/2 <C, Q> + KL(Q || a⊗b), written directly."""
    product = torch.outer(log_a.exp(), log_b.exp())
    return float((plan * 0.5 * gamma * cost).sum() + (torch.special.xlogy(plan, plan) - torch.special.xlogy(plan, product)).sum())


def _log_domain_plan(log_a, log_b, cost, gamma, iterations=3000):
    """An independent (log-domain) Sinkhorn for the optimal plan."""
    k = -0.5 * gamma * cost
    f, g = torch.zeros_like(log_a), torch.zeros_like(log_b)
    for _ in range(iterations):
        f = -torch.logsumexp(k + log_b + g, dim=1)
        g = -torch.logsumexp(k + (log_a + f)[:, None], dim=0)
    return (log_a[:, None] + log_b[None, :] + f[:, None] + g[None, :] + k).exp()


@pytest.mark.parametrize("gamma", [0.5, 5.0, 40.0])
def test_entropic_ot_equals_the_primal_minimum(gamma):
    n = 6
    log_a, log_b = _random_log_marginals(n, seed=int(gamma * 10))
    cost = discrete_vae.latent_cost(n)
    value = discrete_vae.entropic_ot(log_a[None], log_b[None], cost, gamma, iterations=2000).item()
    plan = _log_domain_plan(log_a, log_b, cost, gamma)
    assert torch.allclose(plan.sum(1), log_a.exp(), atol=1e-9) and torch.allclose(plan.sum(0), log_b.exp(), atol=1e-9)
    assert value == pytest.approx(_primal(plan, log_a, log_b, cost, gamma), rel=1e-7, abs=1e-9)
    # any other coupling with the same marginals costs more: move mass around the 2x2 cycles
    # whose four entries are largest (so the move is well above rounding)
    cycles = [c for c in sorted(((min(plan[r1, c1], plan[r1, c2], plan[r2, c1], plan[r2, c2]).item(), r1, r2, c1, c2)
                                 for r1 in range(n) for r2 in range(r1 + 1, n)
                                 for c1 in range(n) for c2 in range(c1 + 1, n)), reverse=True)[:3] if c[0] > 1e-4]
    assert cycles or gamma > 10      # a strong coupling leaves no 2x2 cycle with mass to move
    for smallest, r1, r2, c1, c2 in cycles:
        for delta in (0.3 * smallest, -0.3 * smallest):
            moved = plan.clone()
            moved[r1, c1] += delta; moved[r2, c2] += delta; moved[r1, c2] -= delta; moved[r2, c1] -= delta
            assert _primal(moved, log_a, log_b, cost, gamma) > value + 1e-10
    # the independent coupling a⊗b is feasible too
    assert _primal(torch.outer(log_a.exp(), log_b.exp()), log_a, log_b, cost, gamma) >= value


def test_entropic_ot_vanishes_without_coupling_and_for_identical_point_masses():
    log_a, log_b = _random_log_marginals(5, seed=1)
    assert discrete_vae.entropic_ot(log_a[None], log_b[None], discrete_vae.latent_cost(5), 0.0).item() == pytest.approx(0.0, abs=1e-12)
    # point masses have one coupling, the product: OT = gamma/2 * cost between their points
    cost = discrete_vae.latent_cost(5)
    point = torch.eye(5).log()                                      # row k: all mass on z = k
    assert discrete_vae.entropic_ot(point[2:3], point[2:3], cost, 5.0).item() == 0.0
    for k, steps in ((3, 1), (4, 2), (0, 2)):
        assert discrete_vae.entropic_ot(point[2:3], point[k:k + 1], cost, 5.0).item() == pytest.approx(
            5.0 / 2 * (2 * math.pi * steps / 5) ** 2, rel=1e-12)


def test_entropic_ot_gradient_matches_finite_differences():
    cost = discrete_vae.latent_cost(5)
    logits = torch.randn(2, 5, generator=torch.Generator().manual_seed(0)).requires_grad_()

    def value(z):
        log_p = torch.log_softmax(z, dim=1)
        return discrete_vae.entropic_ot(log_p[:1], log_p[1:], cost, gamma=3.0, iterations=3000).sum()

    assert torch.autograd.gradcheck(value, (logits,), eps=1e-6, atol=1e-6, rtol=1e-4)


def test_selection_picks_the_neighbour_with_the_farthest_encoder_row():
    vae = discrete_vae.DiscreteVAE(n_x=10, n_z=12, decoder_spread=0.3, seed=0)
    with torch.no_grad():
        vae.mu.copy_(torch.full((10,), 0.1))
        vae.mu[6] = 0.6          # two steps right of x = 4: the far side of the latent circle
        vae.mu[3] = 0.2          # one step left: a little off
        vae.log_sigma.fill_(math.log(0.2))
    partners = discrete_vae.select_discrete_partners(vae.log_encoder(), torch.tensor([4, 0]), radius=2, gamma=5.0, iterations=200)
    assert partners[0].item() == 6
    assert partners[1].item() in {8, 9, 1, 2} and partners[1].item() != 0


def _hand_se_elbo(model, counts, radius, gamma):
    """The mean SE-ELBO from independent parts: for each observed x, the neighbour x' whose encoder row is
    farthest in entropic OT (log-domain Sinkhorn), then ELBO_x - KL(q(z|x') || uniform prior) - OT(q(z|x), q(z|x'))
    (E_q log p(z) + H(q) = -KL(q || p) for the uniform prior); weighted by the counts. Returns (value, partners)."""
    log_q = model.log_encoder().detach()
    cost = discrete_vae.latent_cost(model.n_z)
    uniform = torch.full((model.n_z,), 1 / model.n_z)

    def ot(i, j):
        return _primal(_log_domain_plan(log_q[i], log_q[j], cost, gamma), log_q[i], log_q[j], cost, gamma)

    total, partners = 0.0, {}
    for i in torch.nonzero(counts > 0).squeeze(1).tolist():
        neighbours = [(i + o) % model.n_x for o in range(-radius, radius + 1) if o != 0]
        j = max(neighbours, key=lambda k: ot(i, k))
        partners[i] = j
        per_row = model.elbo_per_x()[i].item() - discrete_vae.categorical_kl(log_q[j].exp(), uniform) - ot(i, j)
        total += counts[i].item() * per_row
    return total / counts.sum().item(), partners


def test_se_elbo_equals_its_hand_computed_value_and_reaches_unobserved_neighbours(model):
    se = discrete_vae.smooth_encoder_elbo(model, COUNTS, radius=1, gamma=5.0, iterations=2000)
    by_hand, partners = _hand_se_elbo(model, COUNTS, radius=1, gamma=5.0)
    assert se.item() == pytest.approx(by_hand, rel=1e-9)
    assert se.item() < discrete_vae.batch_elbo(model, COUNTS).item() - 1.0        # measured gap: 7.3 nats
    # the unobserved rows chosen as partners get a gradient (the ELBO gives them exactly 0), and it is
    # the derivative of the SE-ELBO: central differences (the argmax selection does not move)
    unobserved = sorted({j for j in partners.values() if COUNTS[j] == 0})
    assert unobserved, partners
    se.backward()
    for j in unobserved:
        def value(shift):
            with torch.no_grad():
                model.mu[j] += shift
                result = discrete_vae.smooth_encoder_elbo(model, COUNTS, radius=1, gamma=5.0, iterations=2000).item()
                model.mu[j] -= shift
            return result
        numerical = (value(1e-6) - value(-1e-6)) / 2e-6
        assert model.mu.grad[j].item() == pytest.approx(numerical, rel=1e-4, abs=1e-8)
        assert abs(numerical) > 1e-3


def test_fit_reaches_the_optimum_of_its_decoder_family_and_refuses_a_nan_loss(model):
    history = discrete_vae.fit(model, COUNTS, "elbo", steps=200, learning_rate=0.05)
    assert history.objective[0] == pytest.approx(discrete_vae.batch_elbo(spread_discrete_vae(7, 5, -1.5, 0.5),
                                                                          COUNTS).item(), rel=1e-12)
    fitted = discrete_vae.batch_elbo(model, COUNTS).item()
    with torch.no_grad():
        log_likelihood = (COUNTS * model.model_marginal().log()).sum().item() / COUNTS.sum().item()
    frequencies = COUNTS / COUNTS.sum()
    empirical = torch.special.xlogy(frequencies, frequencies).sum().item()       # -H: no model does better
    # the fitted bound is (nearly) tight, and below the best log-likelihood any model could reach
    assert fitted <= log_likelihood <= empirical
    assert log_likelihood - fitted < 2e-3                                         # measured: 8e-4
    assert empirical == pytest.approx(-1.2407, abs=1e-4)
    # the optimum of this decoder family (fixed spread 0.4): -1.46987 after 1,000 or 3,000 steps
    assert fitted == pytest.approx(-1.4699, abs=1e-3)
    assert history.objective[-1] == pytest.approx(fitted, abs=1e-3)
    with pytest.raises(NonFiniteLossError, match="step 0"):
        discrete_vae.fit(discrete_vae.DiscreteVAE(7, 5, decoder_spread=float("nan")), COUNTS, "elbo", steps=5)
    with pytest.raises(ValueError):
        discrete_vae.fit(model, COUNTS, "gan", steps=1)


def test_mode_jumps_are_circular():
    jumps = discrete_vae.mode_jumps(torch.tensor([0.95, 0.05, 0.55, 0.50]))
    assert torch.allclose(jumps, torch.tensor([0.10, 0.50, 0.05, 0.45]))


# --------------------------------------------------------------------------------------------- pPCA
@pytest.fixture
def ppca_case():
    """(W (5, 2), x (5,), v): named apart from the ppca module, which the tests call."""
    g = torch.Generator().manual_seed(7)
    return torch.randn(5, 2, generator=g), torch.randn(5, generator=g), 0.3


def test_ppca_posterior_matches_numerical_map_and_laplace_covariance(ppca_case):
    weight, x, v = ppca_case

    def negative_log_joint(z):
        return ((x - weight @ z) ** 2).sum() / (2 * v) + (z ** 2).sum() / 2

    z = torch.zeros(2, requires_grad=True)
    optimiser = torch.optim.LBFGS([z], max_iter=200, tolerance_grad=1e-12, tolerance_change=1e-14)

    def closure():
        optimiser.zero_grad()
        loss = negative_log_joint(z)
        loss.backward()
        return loss
    optimiser.step(closure)
    encoder_mean, covariance = ppca.ppca_posterior(weight, v)
    assert torch.allclose(z.detach(), encoder_mean @ x, atol=1e-8)
    hessian = torch.autograd.functional.hessian(negative_log_joint, z.detach())
    assert torch.allclose(torch.linalg.inv(hessian), covariance, atol=1e-10)


def test_ppca_posterior_matches_gaussian_conditioning(ppca_case):
    weight, x, v = ppca_case
    # joint of (z, x): cov(x) = W Wᵀ + v I, cov(z, x) = Wᵀ; condition on x (the 'dual' formula)
    gain = weight.T @ torch.linalg.inv(weight @ weight.T + v * torch.eye(5))
    encoder_mean, covariance = ppca.ppca_posterior(weight, v)
    assert torch.allclose(encoder_mean @ x, gain @ x, atol=1e-12)
    assert torch.allclose(covariance, torch.eye(2) - gain @ weight, atol=1e-12)


def _monte_carlo_moments(samples):
    return samples.mean(0), torch.cov(samples.T)


def test_ppca_transition_kernels_match_monte_carlo(ppca_case):
    weight, x, v = ppca_case
    g = torch.Generator().manual_seed(11)
    n = 400_000
    encoder_mean, covariance = ppca.ppca_posterior(weight, v)
    z = encoder_mean @ x + torch.randn(n, 2, generator=g) @ torch.linalg.cholesky(covariance).T
    x_next = z @ weight.T + math.sqrt(v) * torch.randn(n, 5, generator=g)
    mean, cov = _monte_carlo_moments(x_next)
    projector, data_cov = ppca.ppca_data_transition(weight, v)
    assert torch.allclose(mean, projector @ x, atol=0.02)
    assert torch.allclose(cov, data_cov, atol=0.02)

    z0 = torch.tensor([0.7, -1.2])
    x_from_z = weight @ z0 + math.sqrt(v) * torch.randn(n, 5, generator=g)
    z_next = x_from_z @ encoder_mean.T + torch.randn(n, 2, generator=g) @ torch.linalg.cholesky(covariance).T
    mean, cov = _monte_carlo_moments(z_next)
    jacobian, latent_cov = ppca.ppca_latent_transition(weight, v)
    assert torch.allclose(mean, jacobian @ z0, atol=0.01)
    assert torch.allclose(cov, latent_cov, atol=0.01)


def test_decode_encode_becomes_a_projection_as_noise_vanishes(ppca_case):
    weight, x, _ = ppca_case
    defects = [ppca.projection_defect(ppca.ppca_data_transition(weight, v)[0]) for v in (1.0, 1e-2, 1e-4, 1e-8)]
    assert defects[0] > 1e-2 and defects[-1] < 1e-7
    assert all(a > b for a, b in zip(defects, defects[1:]))
    encoder_mean, _ = ppca.ppca_posterior(weight, 1e-10)
    chain = ppca.encode_decode_chain(weight, encoder_mean, x, steps=3)
    assert torch.allclose(chain[1], chain[3], atol=1e-8) and not torch.allclose(chain[0], chain[1])
