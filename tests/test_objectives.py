"""Loss terms of every objective against hand computation and known identities."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from rvae import gaussians, objectives
from rvae.objectives import ObjectiveConfig


class TinyVAE(nn.Module):
    """A 4-pixel linear VAE whose every number can be followed by hand."""

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
