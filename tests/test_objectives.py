"""Loss terms of every objective against hand computation and known identities."""
from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch import nn

from rvae import gaussians, objectives
from rvae.objectives import ObjectiveConfig


class TinyVAE(nn.Module):
    """A 4-pixel linear VAE whose every number can be followed by hand."""

    latent_dim = 2

    def __init__(self):
        super().__init__()
        self.observation_variance = 0.5
        self.mean_map = nn.Linear(4, 2)
        self.logvar_map = nn.Linear(4, 2)
        self.decoder = nn.Linear(2, 4)
        generator = torch.Generator().manual_seed(0)
        for layer in (self.mean_map, self.logvar_map, self.decoder):
            with torch.no_grad():
                layer.weight.copy_(0.5 * torch.randn(layer.weight.shape, generator=generator))
                layer.bias.copy_(0.1 * torch.randn(layer.bias.shape, generator=generator))

    def encode(self, x):
        flat = x.flatten(1)
        return self.mean_map(flat), self.logvar_map(flat)

    def decode(self, z):
        return torch.sigmoid(self.decoder(z)).view(-1, 1, 2, 2)


X = torch.tensor([[[[0.1, 0.9], [0.5, 0.0]]], [[[1.0, 0.2], [0.3, 0.7]]]])


def _noise(seed, shape=(2, 2)):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def test_gaussian_log_likelihood_matches_torch_distributions():
    mean = torch.rand(3, 1, 2, 2)
    x = torch.rand(3, 1, 2, 2)
    expected = torch.distributions.Normal(mean, math.sqrt(0.3)).log_prob(x).flatten(1).sum(1)
    assert torch.allclose(objectives.gaussian_log_likelihood(x, mean, 0.3), expected, atol=1e-5)


def test_expected_log_prior_matches_monte_carlo():
    mu, logvar = torch.tensor([[0.5, -1.0]]), torch.tensor([[0.2, -0.7]])
    z = mu + (0.5 * logvar).exp() * torch.randn(200_000, 2, generator=torch.Generator().manual_seed(1))
    monte_carlo = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(1).mean()
    assert objectives.expected_log_prior(mu, logvar).item() == pytest.approx(monte_carlo.item(), abs=0.01)


def test_elbo_equals_the_hand_computed_bound():
    model = TinyVAE()
    loss, logs = objectives.elbo(X, model, ObjectiveConfig(), torch.Generator().manual_seed(5))
    with torch.no_grad():
        mu, logvar = model.encode(X)
        z = mu + (0.5 * logvar).exp() * _noise(5)
        reconstruction = [-2 * math.log(2 * math.pi * 0.5) - ((X[i] - model.decode(z[i:i + 1])[0]) ** 2).sum().item() / (2 * 0.5)
                          for i in range(2)]
        kl = [0.5 * sum(mu[i, k].item() ** 2 + math.exp(logvar[i, k].item()) - 1 - logvar[i, k].item() for k in range(2))
              for i in range(2)]
    by_hand = sum(r - k for r, k in zip(reconstruction, kl)) / 2
    assert loss.item() == pytest.approx(-by_hand, rel=1e-5)
    assert logs["kl"] == pytest.approx(sum(kl) / 2, rel=1e-5)


def test_beta_vae_weights_the_kl_and_reduces_to_the_elbo_at_one():
    model = TinyVAE()
    elbo_loss, logs = objectives.elbo(X, model, ObjectiveConfig(), torch.Generator().manual_seed(2))
    beta1, _ = objectives.beta_vae(X, model, ObjectiveConfig(beta=1.0), torch.Generator().manual_seed(2))
    beta3, _ = objectives.beta_vae(X, model, ObjectiveConfig(beta=3.0), torch.Generator().manual_seed(2))
    assert beta1.item() == pytest.approx(elbo_loss.item(), rel=1e-6)
    assert (beta3 - beta1).item() == pytest.approx(2 * logs["kl"], rel=1e-5)


@pytest.fixture
def fixed_partner(monkeypatch):
    """Replace the selection by a fixed, generator-free shift so SE and ELBO draw the same noise."""
    def select(x, model, config, generator=None):
        return (x + 0.05).clamp(0, 1)
    monkeypatch.setattr(objectives, "select_partners", select)


def test_smooth_encoder_bound_equals_its_hand_computed_terms(fixed_partner):
    model = TinyVAE()
    gamma = 2.0
    loss, logs = objectives.smooth_encoder(X, model, ObjectiveConfig(gamma=gamma), torch.Generator().manual_seed(9))
    with torch.no_grad():
        partner = (X + 0.05).clamp(0, 1)
        mu_a, la = model.encode(X)
        mu_b, lb = model.encode(partner)
        z = mu_a + (0.5 * la).exp() * _noise(9)
        total = 0.0
        for i in range(2):
            rec = -2 * math.log(2 * math.pi * 0.5) - ((X[i] - model.decode(z[i:i + 1])[0]) ** 2).sum().item()
            prior = sum(-0.5 * (m ** 2 + math.exp(l)) - 0.5 * math.log(2 * math.pi)
                        for m, l in zip(mu_a[i].tolist() + mu_b[i].tolist(), la[i].tolist() + lb[i].tolist()))
            coupling = 0.0
            for k in range(2):
                sa, sb = math.exp(la[i, k].item()), math.exp(lb[i, k].item())
                psi = (math.sqrt(1 + 4 * gamma ** 2 * sa * sb) - 1) / (2 * gamma)
                cost = (mu_a[i, k].item() - mu_b[i, k].item()) ** 2 + sa + sb - 2 * psi
                entropy = math.log(2 * math.pi * math.e) + 0.5 * math.log(sa * sb - psi ** 2)
                coupling += -gamma / 2 * cost + entropy
            total += rec + prior + coupling
    assert loss.item() == pytest.approx(-total / 2, rel=1e-5)
    assert logs["entropic_w2"] > 0


def test_smooth_encoder_without_coupling_is_the_elbo_plus_the_partners_prior_fidelity(fixed_partner):
    model = TinyVAE()
    se_loss, _ = objectives.smooth_encoder(X, model, ObjectiveConfig(gamma=0.0), torch.Generator().manual_seed(4))
    elbo_loss, _ = objectives.elbo(X, model, ObjectiveConfig(), torch.Generator().manual_seed(4))
    mu_b, lb = model.encode((X + 0.05).clamp(0, 1))
    partner_fidelity = -gaussians.kl_to_standard_normal(mu_b, lb).mean()
    assert se_loss.item() == pytest.approx(elbo_loss.item() - partner_fidelity.item(), rel=1e-5)


def test_the_decoder_gets_the_same_gradient_from_se_as_from_the_elbo(fixed_partner):
    model = TinyVAE()
    objectives.smooth_encoder(X, model, ObjectiveConfig(gamma=3.0), torch.Generator().manual_seed(7))[0].backward()
    se_grad = model.decoder.weight.grad.clone()
    model.zero_grad()
    objectives.elbo(X, model, ObjectiveConfig(), torch.Generator().manual_seed(7))[0].backward()
    assert torch.allclose(se_grad, model.decoder.weight.grad, atol=1e-7)
    assert not torch.allclose(model.mean_map.weight.grad, torch.zeros_like(model.mean_map.weight))


def test_se_selection_stays_in_the_ball_and_is_not_differentiated():
    from rvae.nets import build_vae
    model = build_vae("mlp", (1, 4, 4), latent_dim=3)
    x = torch.rand(5, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    for selection in ("adversarial", "random"):
        config = ObjectiveConfig(selection=selection, selection_eps=0.1, selection_budget=3)
        partner = objectives.select_partners(x, model, config, torch.Generator().manual_seed(1))
        assert (partner - x).abs().max() <= 0.1 + 1e-6 and partner.min() >= 0 and partner.max() <= 1
        assert not partner.requires_grad
    with pytest.raises(ValueError, match="valid: adversarial, random"):
        objectives.select_partners(x, model, ObjectiveConfig(selection="psychic"), None)


def test_unknown_method_lists_the_valid_ones():
    with pytest.raises(ValueError, match="valid: elbo, beta_vae, se"):
        objectives.get_objective("gan")


# ---------------------------------------------------------------------------------------------
# The AVAE family
# ---------------------------------------------------------------------------------------------
def _hand_coupling(m, s, m2, s2, rho, form="tight"):
    """E log p_rho(z'|z) + H(z'|z) for one dimension, from the 2 x 2 joint Gaussian (numpy)."""
    import numpy as np
    gamma = rho / (1 - rho ** 2)
    psi = max(np.roots([gamma, 1.0, -gamma * s * s2]).real) if form == "tight" else 0.0
    joint = np.array([[s, psi], [psi, s2]])
    target = np.array([[1.0, rho], [rho, 1.0]])
    second = joint + np.outer([m, m2], [m, m2])
    log_joint = -0.5 * np.trace(np.linalg.solve(target, second)) - 0.5 * np.log(np.linalg.det(2 * np.pi * target))
    log_prior = -0.5 * (m ** 2 + s) - 0.5 * np.log(2 * np.pi)
    entropy_given_z = 0.5 * np.log(np.linalg.det(2 * np.pi * np.e * joint)) - 0.5 * np.log(2 * np.pi * np.e * s)
    return log_joint - log_prior + entropy_given_z


def _hand_family_bound(model, x, z, partners, reconstruct=True):
    """Mean over the batch of [log p(x|z)] - KL + sum of couplings, every number by hand."""
    mu, logvar = model.encode(x)
    total = 0.0
    for i in range(len(x)):
        value = 0.0
        if reconstruct:
            value += -2 * math.log(2 * math.pi * 0.5) - ((x[i] - model.decode(z[i:i + 1])[0]) ** 2).sum().item()
        value -= 0.5 * sum(mu[i, k].item() ** 2 + math.exp(logvar[i, k].item()) - 1 - logvar[i, k].item() for k in range(2))
        for partner, rho, form in partners:
            mu_p, logvar_p = model.encode(partner)
            value += sum(_hand_coupling(mu[i, k].item(), math.exp(logvar[i, k].item()), mu_p[i, k].item(),
                                        math.exp(logvar_p[i, k].item()), rho, form) for k in range(2))
        total += value
    return total / len(x)


@pytest.mark.parametrize("form", ["tight", "factorised"])
def test_avae_bound_equals_its_hand_computed_terms(form):
    model = TinyVAE()
    config = ObjectiveConfig(rho=0.9, decoded_coupling=form)
    loss, logs = objectives.avae(X, model, config, torch.Generator().manual_seed(3))
    with torch.no_grad():
        mu, logvar = model.encode(X)
        z = mu + (0.5 * logvar).exp() * _noise(3)
        decoded = model.decode(z)
        by_hand = _hand_family_bound(model, X, z, [(decoded, 0.9, form)])
    assert loss.item() == pytest.approx(-by_hand, rel=1e-5)
    assert logs["bound"] == pytest.approx(logs["reconstruction"] - logs["kl"] + logs["coupling_decoded"], rel=1e-6)


def test_se_rho_and_se_avae_bounds_equal_their_hand_computed_terms(fixed_partner):
    model = TinyVAE()
    config = ObjectiveConfig(rho=0.95, rho_se=0.975)
    partner = (X + 0.05).clamp(0, 1)
    se_loss, _ = objectives.se_rho(X, model, config, torch.Generator().manual_seed(6))
    both_loss, logs = objectives.se_avae(X, model, config, torch.Generator().manual_seed(6))
    with torch.no_grad():
        mu, logvar = model.encode(X)
        z = mu + (0.5 * logvar).exp() * _noise(6)
        se_by_hand = _hand_family_bound(model, X, z, [(partner, 0.975, "tight")])
        both_by_hand = _hand_family_bound(model, X, z, [(model.decode(z), 0.95, "factorised"),
                                                        (partner, 0.975, "tight")])
    assert se_loss.item() == pytest.approx(-se_by_hand, rel=1e-5)
    assert both_loss.item() == pytest.approx(-both_by_hand, rel=1e-5)
    assert set(logs) == {"reconstruction", "kl", "coupling_decoded", "coupling_adversarial", "bound"}


def test_avae_ss_trains_on_decoded_prior_samples_without_a_data_term():
    model = TinyVAE()
    loss, logs = objectives.avae_ss(X, model, ObjectiveConfig(rho=0.97), torch.Generator().manual_seed(8))
    generator = torch.Generator().manual_seed(8)
    with torch.no_grad():
        generated = model.decode(torch.randn((2, 2), generator=generator))
        mu, logvar = model.encode(generated)
        z = mu + (0.5 * logvar).exp() * torch.randn((2, 2), generator=generator)
        by_hand = _hand_family_bound(model, generated, z, [(model.decode(z), 0.97, "factorised")], reconstruct=False)
    assert loss.item() == pytest.approx(-by_hand, rel=1e-5)
    assert "reconstruction" not in logs
    other, _ = objectives.avae_ss(1 - X, model, ObjectiveConfig(rho=0.97), torch.Generator().manual_seed(8))
    assert other.item() == loss.item()                  # the data batch only sets the batch size


def _grads(module):
    return [p.grad for p in module.parameters()]


def _decoder_gradients_equal(model, first, second):
    """Whether the decoder gets exactly the same gradient from first.sum() as from second.sum()."""
    first.sum().backward(retain_graph=True)
    from_first = [g.clone() for g in _grads(model.decoder)]
    model.zero_grad()
    second.sum().backward(retain_graph=True)
    return all(torch.equal(a, b) for a, b in zip(from_first, _grads(model.decoder)))


def test_avae_decoder_learns_only_from_the_data_term_and_the_encoder_from_the_re_encoded_sample():
    model = TinyVAE()
    terms = objectives.bound_terms("avae", X, model, ObjectiveConfig(), torch.Generator().manual_seed(1))
    terms["coupling_decoded"].sum().backward(retain_graph=True)
    assert all(g is None for g in _grads(model.decoder))           # x~ = stopgradient(g(z))
    assert model.mean_map.weight.grad.abs().sum() > 0 and model.logvar_map.weight.grad.abs().sum() > 0
    model.zero_grad()
    assert _decoder_gradients_equal(model, terms["bound"], terms["reconstruction"])


def test_without_the_stop_gradient_the_decoder_would_learn_from_the_coupling():
    """The control for the test above: re-encoding g(z) un-detached does reach the decoder."""
    model = TinyVAE()
    mu, logvar = model.encode(X)
    z = gaussians.reparameterise(mu, logvar, torch.Generator().manual_seed(1))
    mu_t, logvar_t = model.encode(model.decode(z))
    from rvae.coupling import conditional_coupling
    conditional_coupling(mu, logvar, mu_t, logvar_t, 0.97).sum().backward()
    assert model.decoder.weight.grad.abs().sum() > 0


def test_se_avae_decoder_gradient_is_the_reconstruction_gradient(fixed_partner):
    model = TinyVAE()
    terms = objectives.bound_terms("se_avae", X, model, ObjectiveConfig(), torch.Generator().manual_seed(2))
    assert _decoder_gradients_equal(model, terms["bound"], terms["reconstruction"])


def _small_mlp_vae_and_images():
    from rvae.nets import build_vae
    torch.manual_seed(0)
    return build_vae("mlp", (1, 4, 4), latent_dim=3, hidden=8), torch.rand(20, 1, 4, 4, generator=torch.Generator().manual_seed(0))


def test_avae_ss_post_training_leaves_the_decoder_exactly_unchanged():
    from rvae.train import TrainConfig, sample_images, train
    model, images = _small_mlp_vae_and_images()
    decoder_before = [p.detach().clone() for p in model.decoder.parameters()]
    encoder_before = [p.detach().clone() for p in model.encoder.parameters()]
    result = train(model, sample_images(images, 5), TrainConfig(method="avae_ss", steps=5, log_every=1), progress=False)
    assert all(torch.equal(a, b) for a, b in zip(decoder_before, model.decoder.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(encoder_before, model.encoder.parameters()))
    assert all(math.isfinite(row["bound"]) for row in result.history)


@pytest.mark.parametrize("method", ["avae", "se_rho", "se_avae"])
def test_every_family_method_trains_with_the_one_loop(method):
    from rvae.train import TrainConfig, sample_images, train
    model, images = _small_mlp_vae_and_images()
    config = TrainConfig(method=method, steps=30, learning_rate=1e-2, log_every=29,
                         objective=ObjectiveConfig(selection_budget=2, selection_eps=0.1))
    result = train(model, sample_images(images, 10), config, progress=False)
    assert result.history[-1]["bound"] > result.history[0]["bound"]


def test_family_arguments_are_checked():
    model = TinyVAE()
    with pytest.raises(ValueError, match="not an AVAE-family method"):
        objectives.bound_terms("elbo", X, model, ObjectiveConfig())
    with pytest.raises(ValueError, match="rho"):
        objectives.avae(X, model, ObjectiveConfig(rho=1.0))
    with pytest.raises(ValueError, match="unknown coupling"):
        objectives.avae(X, model, ObjectiveConfig(decoded_coupling="joint"))


class InputBlindVAE(TinyVAE):
    """The degenerate encoder q(z|x) = N(0, I) for every x (the decoder is TinyVAE's)."""

    def encode(self, x):
        zeros = torch.zeros(len(x), 2) * self.mean_map.weight.sum()      # keeps a graph to the encoder
        return zeros, zeros


def test_tight_coupling_of_the_decoded_partner_is_maximised_by_an_encoder_that_ignores_its_input():
    """Why the decoded partner is factorised: with psi free, N(0, I) codes reach the AVAE-SS
    bound's maximum 0 (both of its terms are <= 0); the factorised form charges them heavily."""
    model = InputBlindVAE()
    tight = objectives.bound_terms("avae_ss", X, model, ObjectiveConfig(decoded_coupling="tight"))
    factorised = objectives.bound_terms("avae_ss", X, model, ObjectiveConfig(decoded_coupling="factorised"))
    assert tight["bound"].abs().max().item() < 1e-5                 # float32 rounding of 0
    rho = 0.97                                     # per dimension: -(1 + rho^2)/(2(1 - rho^2)) - 1/2 log(1 - rho^2) + 1/2
    expected = 2 * (-(1 + rho ** 2) / (2 * (1 - rho ** 2)) - 0.5 * math.log(1 - rho ** 2) + 0.5)
    assert factorised["bound"][0].item() == pytest.approx(expected, rel=1e-5)
    assert expected < -20


# ------------------------------------------------------------------------------------------------ mixup
def test_mixup_pairs_are_a_permutation_with_beta_distributed_weights():
    partner, alpha = objectives.mixup_pairs(40_000, (0.5, 0.5), torch.Generator().manual_seed(0))
    assert torch.equal(partner.sort().values, torch.arange(40_000))
    assert ((alpha >= 0) & (alpha <= 1)).all()  # float32 rounds draws next to 0 and 1
    # Beta(a, b): mean a / (a + b), variance ab / ((a + b)^2 (a + b + 1)); arcsine law for a = b = 1/2
    assert alpha.mean().item() == pytest.approx(0.5, abs=0.01)
    assert alpha.var().item() == pytest.approx(0.125, abs=0.005)
    assert (alpha < 0.1).float().mean().item() == pytest.approx(2 / math.pi * math.asin(math.sqrt(0.1)), abs=0.01)
    _, skewed = objectives.mixup_pairs(40_000, (2.0, 5.0), torch.Generator().manual_seed(1))
    assert skewed.mean().item() == pytest.approx(2 / 7, abs=0.01)
    assert skewed.var().item() == pytest.approx(10 / (49 * 8), abs=0.003)
    again = objectives.mixup_pairs(40_000, (0.5, 0.5), torch.Generator().manual_seed(0))
    assert torch.equal(again[0], partner) and torch.equal(again[1], alpha)


def test_mixup_penalty_equals_its_hand_computed_value():
    model = TinyVAE()
    images = torch.rand(6, 1, 2, 2, generator=torch.Generator().manual_seed(3))
    config = ObjectiveConfig(mixup_shape=(0.5, 0.5))
    with torch.no_grad():
        mu = model.encode(images)[0]
        penalty = objectives.mixup_penalty(images, mu, model, config, torch.Generator().manual_seed(9))
        partner, alpha = objectives.mixup_pairs(6, (0.5, 0.5), torch.Generator().manual_seed(9))
        for i in range(6):
            j, a = int(partner[i]), float(alpha[i])
            x_m = a * images[i] + (1 - a) * images[j]
            z_m = a * mu[i] + (1 - a) * mu[j]
            encoder_term = math.sqrt(sum(v * v for v in (z_m - model.encode(x_m[None])[0][0]).tolist()))
            decoder_term = math.sqrt(sum(v * v for v in (model.decode(z_m[None])[0] - x_m).flatten().tolist()))
            assert penalty[i].item() == pytest.approx(encoder_term + decoder_term, rel=1e-5)


def test_an_affine_encoder_mean_pays_no_encoder_term():
    """mu(a x_i + (1-a) x_j) = a mu(x_i) + (1-a) mu(x_j) for an affine mu: only the (sigmoid) decoder term is left."""
    model = TinyVAE()                                      # affine mean map, nonlinear decoder
    images = torch.rand(8, 1, 2, 2, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        mu = model.encode(images)[0]
        penalty = objectives.mixup_penalty(images, mu, model, ObjectiveConfig(), torch.Generator().manual_seed(2))
        partner, alpha = objectives.mixup_pairs(8, (0.5, 0.5), torch.Generator().manual_seed(2))
        weight = alpha.view(-1, 1, 1, 1)
        mixed_x = weight * images + (1 - weight) * images[partner]
        mixed_z = alpha[:, None] * mu + (1 - alpha[:, None]) * mu[partner]
        decoder_only = (model.decode(mixed_z) - mixed_x).flatten(1).norm(dim=1)
    assert torch.allclose(penalty, decoder_only, atol=1e-5)
    assert (penalty > 1e-3).all()


def test_mixup_is_the_beta_vae_loss_plus_the_weighted_penalty():
    model = TinyVAE()
    images = torch.rand(6, 1, 2, 2, generator=torch.Generator().manual_seed(5))
    config = ObjectiveConfig(beta=2.0, mixup_weight=3.0)
    base, _ = objectives.beta_vae(images, model, config, torch.Generator().manual_seed(7))
    loss, logs = objectives.mixup(images, model, config, torch.Generator().manual_seed(7))
    assert (loss - base).item() == pytest.approx(3.0 * logs["mixup_penalty"], rel=1e-5)
    unweighted, _ = objectives.mixup(images, model, dataclasses.replace(config, mixup_weight=0.0),
                                     torch.Generator().manual_seed(7))
    assert unweighted.item() == pytest.approx(base.item(), rel=1e-6)
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_training_with_mixup_lowers_the_penalty():
    """Images on a 2-D manifold (a sigmoid of a linear map); the same seeds and batches with and without mixup."""
    from rvae.nets import build_vae
    from rvae.train import TrainConfig, sample_images, train
    generator = torch.Generator().manual_seed(0)
    codes = 6 * torch.rand(40, 2, generator=generator) - 3
    images = torch.sigmoid(codes @ torch.randn(2, 16, generator=generator)).view(40, 1, 4, 4)
    penalties = {}
    for weight in (0.0, 3.0):
        torch.manual_seed(0)
        model = build_vae("mlp", (1, 4, 4), latent_dim=3, hidden=16, observation_variance=0.01)
        config = TrainConfig(method="mixup", steps=200, learning_rate=1e-2, log_every=1000,
                             objective=ObjectiveConfig(mixup_weight=weight))
        train(model, sample_images(images, 10), config, progress=False)
        with torch.no_grad():
            mu = model.encode(images)[0]
            penalties[weight] = objectives.mixup_penalty(images, mu, model, ObjectiveConfig(),
                                                         torch.Generator().manual_seed(0)).mean().item()
    assert penalties[3.0] < 0.9 * penalties[0.0]


def test_mixup_arguments_are_checked():
    model = TinyVAE()
    with pytest.raises(ValueError, match="mixup_shape"):
        objectives.mixup(X, model, ObjectiveConfig(mixup_shape=(0.5, -1.0)))
    with pytest.raises(ValueError, match="mixup_weight"):
        objectives.mixup(X, model, ObjectiveConfig(mixup_weight=-1.0))
