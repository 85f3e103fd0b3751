"""The GAN of "Looser is worse" (appendix A.2) on the 2D grid (sec. 3.1): its losses against hand
values, each optimiser of the training loop moving only its own group, the grid sampler, and a short
seeded run that moves generated points onto the modes."""
from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from rvae import methods
from rvae.errors import ParameterError
from rvae.looseness import class_radius, grid_means, modes_captured
from rvae.methods import get_method, register
from rvae.methods.gan import (GANConfig, MLPDiscriminator, MLPGenerator, discriminator_loss, gan_losses,
                              gan_networks, generator_loss, prior_sample)
from rvae.train import TrainConfig, train
from rvae.worlds import grid2d


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _softplus(v):
    return math.log1p(math.exp(v))


# ------------------------------------------------------------------------------------------ losses
def test_the_losses_match_hand_values_for_given_logits():
    real, fake = torch.tensor([0.0, 2.0]), torch.tensor([-1.0, 3.0])
    # -log sigmoid(l) = log(1 + e^-l) and -log(1 - sigmoid(l)) = log(1 + e^l)
    d_hand = (_softplus(-0.0) + _softplus(-2.0)) / 2 + (_softplus(-1.0) + _softplus(3.0)) / 2
    g_hand = (_softplus(1.0) + _softplus(-3.0)) / 2
    assert discriminator_loss(real, fake).item() == pytest.approx(d_hand, rel=1e-6)
    assert generator_loss(fake).item() == pytest.approx(g_hand, rel=1e-6)
    assert discriminator_loss(torch.zeros(3), torch.zeros(5)).item() == pytest.approx(2 * math.log(2), rel=1e-6)
    assert generator_loss(torch.tensor([-200.0])).item() == pytest.approx(200.0, rel=1e-6)     # stable, no inf


def test_the_generator_loss_does_not_saturate_where_the_discriminator_wins():
    """d/dl of -log sigmoid(l) is -(1 - sigmoid(l)) -> -1 as D rejects a fake (l -> -inf), where the
    minimax loss log(1 - sigmoid(l)) has gradient -sigmoid(l) -> 0."""
    logit = torch.tensor([-8.0], requires_grad=True)
    (grad,) = torch.autograd.grad(generator_loss(logit), [logit])
    assert grad.item() == pytest.approx(-(1 - torch.sigmoid(torch.tensor(-8.0)).item()), rel=1e-6)
    assert grad.item() < -0.999
    (minimax,) = torch.autograd.grad(torch.log1p(-torch.sigmoid(logit)).mean(), [logit])
    assert abs(minimax.item()) < 1e-3


def _nets(seed=0):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        g = MLPGenerator(latent_dim=2, data_dim=2, hidden=8, depth=2)
        return {"vae": g, **gan_networks(g, GANConfig(discriminator_hidden=8))}


def test_gan_losses_are_those_of_the_discriminators_logits_on_real_points_and_fresh_fakes():
    nets = _nets()
    x = grid2d.sample_grid(6, generator=_gen(1))
    losses, logs = gan_losses(x, nets, GANConfig(), _gen(4))
    with torch.no_grad():
        fakes = nets["vae"](prior_sample(6, 2, _gen(4)))
        real_logits, fake_logits = nets["discriminator"](x), nets["discriminator"](fakes)
    assert losses["discriminator"].item() == pytest.approx(discriminator_loss(real_logits, fake_logits).item(), rel=1e-6)
    assert losses["generator"].item() == pytest.approx(generator_loss(fake_logits).item(), rel=1e-6)
    assert logs["d_real"] == pytest.approx(torch.sigmoid(real_logits).mean().item(), rel=1e-6)
    assert logs["d_fake"] == pytest.approx(torch.sigmoid(fake_logits).mean().item(), rel=1e-6)
    # the fakes are detached for D, and D is differentiated through for G (its optimiser must not step then)
    g_params, d_params = list(nets["vae"].parameters()), list(nets["discriminator"].parameters())
    assert all(grad is None for grad in torch.autograd.grad(losses["discriminator"], g_params, allow_unused=True,
                                                              retain_graph=True))
    assert any(grad.abs().sum() > 0 for grad in torch.autograd.grad(losses["generator"], d_params))


# ------------------------------------------------------------------------------------------ the training loop
def test_each_optimiser_of_the_loop_moves_only_its_own_group(monkeypatch):
    """Snapshots at every call of the losses: the discriminator's sub-step leaves the generator
    bit-identical and moves the discriminator, and the generator's sub-step the other way round."""
    monkeypatch.setattr(methods, "_USED", set(methods._USED))
    gan = get_method("ns_gan")
    snapshots = []

    def snapshot(nets):
        return {name: [p.detach().clone() for p in nets[name].parameters()] for name in ("vae", "discriminator")}

    def recording_losses(x, nets, config, generator=None):
        snapshots.append(snapshot(nets))
        return gan.losses(x, nets, config, generator)

    register(dataclasses.replace(gan, name="test_ns_gan_recorded", losses=recording_losses))
    try:
        g = grid2d.build_generator(hidden=16, depth=2, seed=0)
        steps = 3
        result = train(g, grid2d.grid_batches(32), TrainConfig("test_ns_gan_recorded", GANConfig(discriminator_hidden=16),
                                                               steps=steps, log_every=1), progress=False)
    finally:
        methods._REGISTRY.pop("test_ns_gan_recorded", None)
    snapshots.append(snapshot({"vae": g, **result.networks}))
    assert len(snapshots) == 2 * steps + 1
    for call, (before, after) in enumerate(zip(snapshots, snapshots[1:])):
        stepped, other = ("discriminator", "vae") if call % 2 == 0 else ("vae", "discriminator")
        assert all(torch.equal(a, b) for a, b in zip(before[other], after[other])), (call, other)
        assert all(not torch.equal(a, b) for a, b in zip(before[stepped], after[stepped])), (call, stepped)
    assert set(result.history[0]) == {"step", "loss_discriminator", "loss_generator", "discriminator_loss",
                                      "generator_loss", "d_real", "d_fake"}


def _energy_distance(a, b):
    return (2 * torch.cdist(a, b).mean() - torch.cdist(a, a).mean() - torch.cdist(b, b).mean()).item()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_short_run_moves_generated_points_onto_the_modes(seed):
    """The 9-mode grid (n = 1), the generator's output shifted to (1, 1), midway between four modes
    (mean distance to the nearest mode ~1.3). 120 steps; measured over seeds 0-7: distance ratio
    0.63-0.79, energy distance to the data ratio 0.03-0.09, all 9 modes within 6 std."""
    g = grid2d.build_generator(hidden=64, depth=2, seed=seed)
    with torch.no_grad():
        g.body[-1].bias.copy_(torch.tensor([1.0, 1.0]))
    real = grid2d.sample_grid(2000, n=1, generator=_gen(8))
    before = g.sample(2000, _gen(9)).detach()
    train(g, grid2d.grid_batches(64, n=1), TrainConfig("ns_gan", steps=120, learning_rate=3e-3, seed=seed),
          progress=False)
    after = g.sample(2000, _gen(9)).detach()
    assert grid2d.mode_distance(after, n=1).mean() < 0.85 * grid2d.mode_distance(before, n=1).mean()
    assert _energy_distance(after, real) < 0.2 * _energy_distance(before, real)
    assert modes_captured(before, grid_means(1), n_std=6) <= 1
    assert modes_captured(after, grid_means(1), n_std=6) >= 7


def test_fit_gan_trains_the_generator_and_returns_the_discriminator():
    config = TrainConfig("ns_gan", GANConfig(discriminator_hidden=8, discriminator_depth=1), steps=3, seed=5)
    g, result = grid2d.fit_gan(config, batch_size=16, hidden=8, depth=1, progress=False)
    fresh = grid2d.build_generator(hidden=8, depth=1, seed=5)
    assert isinstance(result.networks["discriminator"], MLPDiscriminator) and result.steps_done == 3
    assert any(not torch.equal(a, b) for a, b in zip(g.parameters(), fresh.parameters()))
    with pytest.raises(ValueError, match="ns_gan"):
        grid2d.fit_gan(TrainConfig("elbo", steps=1))


# ------------------------------------------------------------------------------------------ the grid
def test_grid_samples_are_equally_spread_gaussians_around_the_25_means():
    points = grid2d.sample_grid(25_000, generator=_gen(0))
    means = grid_means(2)
    nearest = torch.cdist(points, means).argmin(1)
    counts = torch.bincount(nearest, minlength=25).float()
    assert counts.min() > 850 and counts.max() < 1150                       # 1000 each, sd ~31
    offsets = points - means[nearest]
    assert offsets.mean(0).abs().max() < 0.002
    assert offsets.var(0).tolist() == pytest.approx([0.0025, 0.0025], rel=0.03)
    assert torch.equal(grid2d.sample_grid(5, generator=_gen(3)), grid2d.sample_grid(5, generator=_gen(3)))
    assert grid2d.mode_distance(torch.tensor([[0.3, -0.4], [4.0, 4.0], [-9.0, 0.0]])).tolist() == pytest.approx(
        [0.5, 0.0, 5.0])


def test_the_label_function_gives_the_class_radius_of_a_known_generator():
    """G(z) = 2 z (a generator set by hand): c(G(z)) is the nearest mean of 2 z, the classes are boxes
    with sides at z = +-0.5, +-1.5, and r(z) is the distance to the nearest side."""
    g = MLPGenerator(latent_dim=2, data_dim=2, hidden=2, depth=1)
    with torch.no_grad():
        g.body[0].weight.copy_(torch.eye(2)), g.body[0].bias.fill_(10.0)     # ReLU(z + 10) = z + 10 for |z| < 10
        g.body[2].weight.copy_(2 * torch.eye(2)), g.body[2].bias.fill_(-20.0)
    label_fn = grid2d.grid_label_fn(g)
    z = torch.tensor([[0.1, 0.2], [1.2, -0.7], [-2.0, 0.0]])
    assert label_fn(z).tolist() == [12, 16, 2]
    radius = class_radius(label_fn, z, directions=16, generator=_gen(0))
    assert radius.upper.tolist() == pytest.approx([0.3, 0.2, 0.5], abs=1e-3)


# ------------------------------------------------------------------------------------------ registry and config
def test_the_registry_finds_the_gan_with_two_alternating_groups():
    method = get_method("ns_gan")
    assert method.alternating and method.networks is gan_networks
    assert [(g.name, g.networks) for g in method.groups] == [("discriminator", ("discriminator",)),
                                                             ("generator", ("vae",))]
    assert "ns_gan" in methods.all_methods()
    with pytest.raises(ParameterError, match="^unknown method 'gan'"):      # the name other tests use as unknown
        get_method("gan")
    with pytest.raises(TypeError, match="data_dim"):
        gan_networks(torch.nn.Linear(2, 2), GANConfig())


@pytest.mark.parametrize(("fields", "field"), [({"discriminator_hidden": 0}, "discriminator_hidden"),
                                               ({"discriminator_depth": -1}, "discriminator_depth")])
def test_bad_gan_config_values_are_one_line_naming_the_field(fields, field):
    with pytest.raises(ParameterError) as error:
        get_method("ns_gan").make_config(**fields)
    message = str(error.value)
    assert message.startswith(f"{field} of GANConfig must be in ") and "\n" not in message
