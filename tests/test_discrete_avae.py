"""The AVAE bound on the discrete circle example and the encoder/decoder consistency measures."""
from __future__ import annotations

import math

import pytest
import torch

from rvae.worlds import discrete_avae as avae
from rvae.worlds import discrete_vae
from rvae.errors import NonFiniteLossError

from conftest import spread_discrete_vae

pytestmark = pytest.mark.usefixtures("double_precision")

COUNTS = torch.tensor([3.0, 0.0, 2.0, 0.0, 4.0], dtype=torch.float64)     # rows 1 and 3 never observed


@pytest.fixture
def model():
    return spread_discrete_vae(5, 4, -1.2, 0.3)


def _bound_by_loops(model, counts, spread):
    """B = Σ_i s_i B_i / Σ s, every sum written out, the coupling normalised by hand."""
    q = model.log_encoder().exp().tolist()
    p = model.log_decoder().exp().tolist()
    n_x, n_z = model.n_x, model.n_z

    def log_coupling(j, l):
        logits = [math.cos(2 * math.pi * (m - j) / n_z) / spread for m in range(n_z)]
        top = max(logits)
        return logits[l] - top - math.log(sum(math.exp(a - top) for a in logits))

    total = 0.0
    for i in range(n_x):
        if counts[i] == 0:
            continue
        elbo = sum(q[i][j] * (math.log(p[i][j]) - math.log(n_z) - math.log(q[i][j])) for j in range(n_z))
        second = 0.0
        for j in range(n_z):
            for k in range(n_x):
                for l in range(n_z):
                    second += q[i][j] * p[k][j] * q[k][l] * (log_coupling(j, l) - math.log(q[k][l]))
        total += float(counts[i]) * (elbo + second)
    return total / float(counts.sum())


@pytest.mark.parametrize("spread", [1e-3, 0.2, 3.0])
def test_bound_equals_an_explicit_loop(model, spread):
    expected = _bound_by_loops(model, COUNTS, spread)
    assert avae.avae_bound(model, COUNTS, spread).item() == pytest.approx(expected, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("spread", [1e-3, 0.2, 3.0])
def test_bound_is_below_the_elbo(model, spread):
    # term 2 is -E KL(q(Z'|x̃) || p_ρ(Z'|z)) <= 0, so B_i <= ELBO_i <= log p(x_i)
    assert avae.avae_bound(model, COUNTS, spread).item() < discrete_vae.batch_elbo(model, COUNTS).item()


def test_coupling_rows_normalise_follow_the_formula_and_tend_to_the_identity():
    for spread in (1e-3, 0.3, 5.0):
        table = avae.coupling_table(6, spread)
        assert torch.allclose(table.exp().sum(1), torch.ones(6), atol=1e-14)
        assert torch.isfinite(table).all()
    table = avae.coupling_table(6, 0.3)
    row = [math.exp(math.cos(2 * math.pi * (l - 4) / 6) / 0.3) for l in range(6)]
    assert table[4, 1].exp().item() == pytest.approx(row[1] / sum(row), rel=1e-12)
    assert torch.allclose(avae.coupling_table(8, 1e-3).exp(), torch.eye(8), atol=1e-12)
    errors = [float((avae.coupling_table(8, s).exp() - torch.eye(8)).abs().max()) for s in (1.0, 0.3, 0.1, 0.03)]
    assert all(a > b for a, b in zip(errors, errors[1:]))
    assert torch.allclose(avae.coupling_table(8, 1e6).exp(), torch.full((8, 8), 1 / 8), atol=1e-6)


def _gradients(model, value):
    model.zero_grad()
    value.backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad()
    return grads


def test_the_decoder_learns_from_the_elbo_alone_and_the_encoder_from_both_terms(model):
    elbo = _gradients(model, discrete_vae.batch_elbo(model, COUNTS))
    bound = _gradients(model, avae.avae_bound(model, COUNTS, 0.05))
    assert torch.allclose(bound["m"], elbo["m"], rtol=1e-12, atol=1e-15)
    assert bound["m"].abs().max() > 1e-3
    assert not torch.allclose(bound["mu"], elbo["mu"], rtol=1e-3)
    assert not torch.allclose(bound["log_sigma"], elbo["log_sigma"], rtol=1e-3)


def test_never_observed_rows_of_the_encoder_get_gradient(model):
    unseen = COUNTS == 0
    elbo = _gradients(model, discrete_vae.batch_elbo(model, COUNTS))
    assert torch.all(elbo["mu"][unseen] == 0) and torch.all(elbo["log_sigma"][unseen] == 0)
    bound = _gradients(model, avae.avae_bound(model, COUNTS, 0.05))
    assert torch.all(bound["mu"][unseen].abs() > 1e-8)
    assert torch.all(bound["log_sigma"][unseen].abs() > 1e-8)


def _random_decoder(n_x, n_z, seed):
    """An arbitrary decoder table log p(X|Z) (columns normalise), not of the von Mises family."""
    return torch.log_softmax(1.5 * torch.randn(n_x, n_z, generator=torch.Generator().manual_seed(seed)), dim=0)


@pytest.mark.parametrize("uniform_prior", [True, False])
def test_the_latent_kernel_of_the_exact_posterior_is_reversible_and_keeps_the_prior(uniform_prior):
    n_x, n_z = 9, 6
    log_decoder = _random_decoder(n_x, n_z, seed=1)
    log_prior = (torch.full((n_z,), -math.log(n_z)) if uniform_prior else
                 torch.log_softmax(torch.randn(n_z, generator=torch.Generator().manual_seed(2)), dim=0))
    prior = log_prior.exp()
    kernel = avae.latent_transition(avae.exact_posterior(log_decoder, log_prior), log_decoder)
    assert torch.allclose(kernel.sum(1), torch.ones(n_z), atol=1e-14)
    assert torch.allclose(prior @ kernel, prior, atol=1e-14)
    flow = prior[:, None] * kernel                                            # Q(l|j) p(j)
    assert torch.allclose(flow, flow.T, atol=1e-14)
    # any other encoder breaks the symmetry (and, here, the invariance)
    other = torch.log_softmax(torch.randn(n_x, n_z, generator=torch.Generator().manual_seed(3)), dim=1)
    kernel = avae.latent_transition(other, log_decoder)
    assert torch.allclose(kernel.sum(1), torch.ones(n_z), atol=1e-14)
    flow = prior[:, None] * kernel
    assert float((flow - flow.T).abs().max()) > 1e-3
    assert float((prior @ kernel - prior).abs().max()) > 1e-3


def test_exact_posterior_is_bayes_rule():
    log_decoder = _random_decoder(7, 5, seed=4)
    log_prior = torch.log_softmax(torch.randn(5, generator=torch.Generator().manual_seed(5)), dim=0)
    posterior = avae.exact_posterior(log_decoder, log_prior).exp()
    joint = log_decoder.exp() * log_prior.exp()[None, :]
    assert torch.allclose(posterior, joint / joint.sum(1, keepdim=True), atol=1e-15)


def test_encoder_model_mismatch_vanishes_only_at_the_posterior(model):
    log_decoder, log_prior = model.log_decoder().detach(), model.log_prior()
    exact = avae.exact_posterior(log_decoder, log_prior)
    assert abs(avae.posterior_mismatch(exact, log_decoder, log_prior)) <= 1e-12
    random_decoder = _random_decoder(5, 4, seed=6)
    assert abs(avae.posterior_mismatch(avae.exact_posterior(random_decoder, log_prior),
                                       random_decoder, log_prior)) <= 1e-12
    mismatch = avae.encoder_model_mismatch(model)
    assert mismatch > 1e-3
    # the same number as E_p(X;θ) KL(p(Z|X) || q(Z|X)), one row at a time
    marginal, q, posterior = model.model_marginal().detach(), model.log_encoder().detach().exp(), exact.exp()
    by_rows = sum(marginal[i].item() * discrete_vae.categorical_kl(posterior[i], q[i]) for i in range(5))
    assert mismatch == pytest.approx(by_rows, rel=1e-12)


def test_joint_tables_have_the_marginals_of_figure_8(model):
    tables = avae.joint_tables(model, COUNTS)
    assert set(tables) == {"empirical", "data_encoder", "model_encoder", "decoder", "model"}
    assert all(t.dtype == torch.float64 and not t.requires_grad for t in tables.values())
    assert torch.allclose(tables["empirical"], COUNTS / COUNTS.sum())
    assert torch.allclose(tables["data_encoder"].sum(1), tables["empirical"])
    assert torch.allclose(tables["model_encoder"].sum(1), tables["model"])
    assert torch.allclose(tables["decoder"].sum(1), tables["model"])
    assert torch.allclose(tables["decoder"].sum(0), torch.full((4,), 0.25))
    assert tables["model"].sum().item() == pytest.approx(1.0, rel=1e-12)
    assert torch.all(tables["data_encoder"][COUNTS == 0] == 0)


def _sharp_autoencoder(n, spread):
    """Decoder means on the grid (m_j = j/n) and an encoder that inverts them, both with tiny spread."""
    vae = discrete_vae.DiscreteVAE(n, n, decoder_spread=spread, seed=0)
    with torch.no_grad():
        vae.m.copy_(torch.arange(n) / n)
        vae.mu.copy_(torch.arange(n) / n)
        vae.log_sigma.fill_(math.log(spread))
    return vae


def test_autoencoding_error_is_zero_for_an_inverting_pair_and_a_quarter_for_a_random_one():
    assert avae.autoencoding_error(_sharp_autoencoder(12, 1e-3)) == pytest.approx(0.0, abs=1e-12)
    assert avae.autoencoding_error(_sharp_autoencoder(12, 0.3)) > 0.05
    shifted = _sharp_autoencoder(12, 1e-3)
    with torch.no_grad():
        shifted.mu.add_(3 / 12)                                    # z' = z + 3 steps, always
    assert avae.autoencoding_error(shifted) == pytest.approx(0.25, abs=1e-12)
    flat = _sharp_autoencoder(12, 1e-3)
    with torch.no_grad():
        flat.log_sigma.fill_(math.log(1e6))                        # q(Z|X) uniform: z' independent of z
    expected = sum(min(d, 12 - d) / 12 for d in range(12)) / 12     # mean circular distance on the grid
    assert avae.autoencoding_error(flat) == pytest.approx(expected, rel=1e-6)


# Fitting. A small circle (N_x = N_z = 32), 150 draws from the default two-bump target, so that
# about a quarter of the x values are never observed, the decoder spread 0.4 of the toy tests,
# Adam at 0.05 for 1000 steps and a loose coupling ν = 0.5 (see the module docstring of
# rvae.worlds.discrete_avae: with ν ≪ the decoder's own noise, e.g. the paper's 1e-3, the bound is maximised
# by collapsing the encoder onto one latent value). Both fits start from the same tables.
FIT = dict(n=32, samples=150, decoder_spread=0.4, steps=1000, learning_rate=0.05, coupling_spread=0.5)


@pytest.mark.parametrize("seed", [0, 1])
def test_avae_fits_an_encoder_closer_to_the_decoders_posterior_than_a_vae(seed):
    counts = discrete_vae.sample_counts(discrete_vae.von_mises_target(FIT["n"]), FIT["samples"], seed)
    assert 4 <= int((counts == 0).sum()) <= 12
    vae = discrete_vae.DiscreteVAE(FIT["n"], FIT["n"], FIT["decoder_spread"], seed=seed)
    discrete_vae.fit(vae, counts, "elbo", steps=FIT["steps"], learning_rate=FIT["learning_rate"])
    model = discrete_vae.DiscreteVAE(FIT["n"], FIT["n"], FIT["decoder_spread"], seed=seed)
    history = avae.fit_avae(model, counts, FIT["coupling_spread"], FIT["steps"], FIT["learning_rate"])
    assert history.objective[-1] > history.objective[0]
    assert avae.encoder_model_mismatch(model) < 0.8 * avae.encoder_model_mismatch(vae)
    assert avae.autoencoding_error(model) < avae.autoencoding_error(vae)
    # ... at almost no cost in fit to the data
    assert discrete_vae.batch_elbo(model, counts).item() > discrete_vae.batch_elbo(vae, counts).item() - 0.02


def test_a_coupling_much_tighter_than_the_decoder_noise_collapses_the_encoder():
    # with the paper's ν = 1e-3 against decoder spread 0.4 every informative encoder pays O(1/ν)
    # nats in term 2, so the bound prefers sending (almost) every x to one or two latent values
    seed = 0
    counts = discrete_vae.sample_counts(discrete_vae.von_mises_target(FIT["n"]), FIT["samples"], seed)
    vae = discrete_vae.DiscreteVAE(FIT["n"], FIT["n"], FIT["decoder_spread"], seed=seed)
    discrete_vae.fit(vae, counts, "elbo", steps=500, learning_rate=FIT["learning_rate"])
    model = discrete_vae.DiscreteVAE(FIT["n"], FIT["n"], FIT["decoder_spread"], seed=seed)
    avae.fit_avae(model, counts, 1e-3, steps=500, learning_rate=FIT["learning_rate"])
    assert model.log_encoder().argmax(1).unique().numel() <= 2
    assert avae.autoencoding_error(model) > 0.24                  # z' is unrelated to z
    assert discrete_vae.batch_elbo(model, counts).item() < discrete_vae.batch_elbo(vae, counts).item() - 1.0


def test_fit_refuses_a_nan_and_bad_arguments(model):
    with torch.no_grad():
        model.mu[2] = float("nan")
    with pytest.raises(NonFiniteLossError, match="step 0"):
        avae.fit_avae(model, COUNTS, 0.1, steps=3)
    with pytest.raises(ValueError, match="spread"):
        avae.avae_bound(discrete_vae.DiscreteVAE(5, 4, 0.4), COUNTS, 0.0)
    with pytest.raises(ValueError, match="shape"):
        avae.avae_bound(discrete_vae.DiscreteVAE(6, 4, 0.4), COUNTS, 0.1)
    with pytest.raises(ValueError, match="non-negative"):
        avae.avae_bound(discrete_vae.DiscreteVAE(5, 4, 0.4), -COUNTS, 0.1)
