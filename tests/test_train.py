"""The training loop: it learns, it stops on NaN, an interrupted run resumes exactly, a foreign
checkpoint is kept aside, and methods with several parameter groups and post-step hooks work."""
from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from rvae import gaussians, methods
from rvae import train as train_module
from rvae.data import COLOURS
from rvae.errors import NonFiniteLossError, ParameterError
from rvae.methods import Method, ParameterGroup, get_method, register
from rvae.methods.smooth import SEConfig
from rvae.methods.vae import BetaVAEConfig, ELBOConfig
from rvae.nets import build_vae
from rvae.params import CheckedConfig, option
from rvae.train import TrainConfig, sample_coloured_digits, sample_images, train

IMAGES = torch.rand(64, 1, 6, 6, generator=torch.Generator().manual_seed(0)).round()


def _model(seed=0):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_vae("mlp", (1, 6, 6), latent_dim=2, hidden=16, observation_variance=0.05)


def _elbo_on_all(model, images=IMAGES) -> float:
    _, logs = get_method("elbo").losses(images, {"vae": model}, ELBOConfig(), torch.Generator().manual_seed(3))
    return logs["bound"]


def test_training_raises_the_bound_past_the_best_decoder_that_ignores_z():
    """A decoder that ignores z does best with the pixel means: log-likelihood -D/2 log(2 pi v) - sum var / (2v),
    -67.95 nats here. The trained VAE's ELBO (measured -64.35; -69.45 untrained) must beat it: the code carries
    information about the images."""
    model = _model()
    before = _elbo_on_all(model)
    result = train(model, sample_images(IMAGES, 16), TrainConfig(steps=300, log_every=10, learning_rate=3e-3),
                   progress=False)
    constant_decoder = -18 * math.log(2 * math.pi * 0.05) - IMAGES.var(0, unbiased=False).sum().item() / (2 * 0.05)
    after = _elbo_on_all(model)
    assert before < constant_decoder < constant_decoder + 2.0 <= after, (before, constant_decoder, after)
    first, last = result.history[0]["bound"], sum(h["bound"] for h in result.history[-5:]) / 5
    assert last > first + 3.0                            # measured 5.2 on the logged batches
    assert result.steps_done == 300 and result.seconds_per_step > 0
    assert [h["step"] for h in result.history] == list(range(0, 300, 10)) + [299]
    assert set(result.history[0]) == {"step", "loss", "bound", "reconstruction", "kl"}
    assert result.history[0]["loss"] == -result.history[0]["bound"]


def test_a_nan_loss_stops_training_with_a_clear_error():
    poisoned = IMAGES.clone()
    poisoned[:] = float("nan")
    with pytest.raises(NonFiniteLossError, match=r"the elbo loss became nan at step 0"):
        train(_model(), sample_images(poisoned, 8), TrainConfig(steps=5), progress=False)


def test_train_config_checks_its_method_config_and_settings():
    assert TrainConfig("beta_vae").config == BetaVAEConfig()
    with pytest.raises(ParameterError, match=r"^method se takes a SEConfig, not a BetaVAEConfig$"):
        TrainConfig("se", BetaVAEConfig())
    with pytest.raises(ParameterError, match=r"^unknown method 'gan'; valid: "):
        TrainConfig("gan")
    for field, value in (("steps", -1), ("log_every", 0), ("checkpoint_every", 0), ("steps", 2.5)):
        with pytest.raises(ParameterError, match=rf"^{field} must be an integer"):
            TrainConfig(**{field: value})
    with pytest.raises(ParameterError, match="learning_rate must be positive"):
        TrainConfig(learning_rate=0.0)


# ------------------------------------------------------------------------------------------ checkpoints
def test_an_interrupted_run_resumes_to_the_same_parameters(tmp_path):
    config = TrainConfig(method="se", config=SEConfig(selection_budget=2, selection_eps=0.1), steps=12,
                         checkpoint_every=4, log_every=1)
    reference = _model()
    reference_result = train(reference, sample_images(IMAGES, 8), config, progress=False)

    checkpoint = tmp_path / "run.pt"
    interrupted = _model()
    train(interrupted, sample_images(IMAGES, 8), dataclasses.replace(config, steps=8), checkpoint=checkpoint,
          progress=False)
    resumed_model = _model()          # the same initial weights (they are part of the fingerprint); the trained
    #                                   weights, Adam's moments and the batch generator must come from the checkpoint
    result = train(resumed_model, sample_images(IMAGES, 8), config, checkpoint=checkpoint, progress=False)
    assert result.resumed_from == 8
    assert result.seconds_per_step > 0
    finished = train(_model(), sample_images(IMAGES, 8), config, checkpoint=checkpoint, progress=False)
    assert finished.resumed_from == 12 and finished.seconds_per_step == pytest.approx(result.seconds_per_step, rel=0.2)
    for a, b in zip(reference.state_dict().values(), resumed_model.state_dict().values()):
        assert torch.equal(a, b)
    assert [h["step"] for h in result.history] == list(range(12))
    assert result.history == reference_result.history
    assert list(tmp_path.iterdir()) == [checkpoint]          # nothing kept aside: the fingerprints matched


def _foreign_variants():
    """(name, how the first run differs from the second): each changes the trajectory."""
    other_images = IMAGES.clone()
    other_images[0, 0, 0, 0] = 1 - other_images[0, 0, 0, 0]           # one pixel of the data
    return {
        "seed": (dict(seed=1), IMAGES),
        "learning_rate": (dict(learning_rate=2e-3), IMAGES),
        "data": ({}, other_images),
        "method config": (dict(method="beta_vae", config=BetaVAEConfig(beta=2.0)), IMAGES),
        "initial weights": ({}, IMAGES),
    }


@pytest.mark.parametrize("variant", list(_foreign_variants()))
def test_a_checkpoint_of_another_configuration_is_kept_aside_and_training_restarts(tmp_path, capsys, variant):
    changes, first_images = _foreign_variants()[variant]
    checkpoint = tmp_path / "run.pt"
    config = TrainConfig(steps=4, learning_rate=1e-3, log_every=1, method="beta_vae")
    first_model = _model(seed=1 if variant == "initial weights" else 0)
    train(first_model, sample_images(first_images, 8), dataclasses.replace(config, **changes), checkpoint=checkpoint,
          progress=False)
    foreign = torch.load(checkpoint, weights_only=False)
    capsys.readouterr()

    model = _model()
    result = train(model, sample_images(IMAGES, 8), config, checkpoint=checkpoint, progress=False)
    aside = tmp_path / f"run.foreign-{foreign['fingerprint']}.pt"
    printed = capsys.readouterr().out
    assert result.resumed_from == 0 and [h["step"] for h in result.history] == [0, 1, 2, 3]
    assert sorted(tmp_path.iterdir()) == sorted([checkpoint, aside])
    assert torch.load(aside, weights_only=False)["fingerprint"] == foreign["fingerprint"]       # kept as it was
    assert torch.load(checkpoint, weights_only=False)["fingerprint"] != foreign["fingerprint"]
    assert printed.count("\n") == 1
    assert printed.startswith(f"checkpoint run.pt was written by another configuration (fingerprint "
                              f"{foreign['fingerprint']}, this run ")
    assert printed.rstrip().endswith(f"kept aside as {aside.name}, training from the start")
    fresh = _model()                                     # training really started from step 0, from these weights
    train(fresh, sample_images(IMAGES, 8), config, progress=False)
    for a, b in zip(fresh.state_dict().values(), model.state_dict().values()):
        assert torch.equal(a, b)


def test_a_checkpoint_of_the_previous_format_is_kept_aside(tmp_path, capsys):
    checkpoint = tmp_path / "old.pt"
    torch.save({"fingerprint": "0123456789abcdef", "model": {}, "optimiser": {}, "step": 3}, checkpoint)
    result = train(_model(), sample_images(IMAGES, 8), TrainConfig(steps=2), checkpoint=checkpoint, progress=False)
    assert result.resumed_from == 0
    assert (tmp_path / "old.foreign-0123456789abcdef.pt").exists()
    assert "kept aside as old.foreign-0123456789abcdef.pt" in capsys.readouterr().out


def test_the_fingerprint_ignores_the_length_and_cadence_of_a_run():
    nets = {"vae": _model()}
    sampler = sample_images(IMAGES, 8)
    base = TrainConfig(steps=10)
    same = train_module.fingerprint(base, nets, sampler)
    assert train_module.fingerprint(dataclasses.replace(base, steps=20, log_every=3, checkpoint_every=7),
                                    nets, sampler) == same
    assert train_module.fingerprint(base, {"vae": _model(seed=1)}, sampler) != same      # initial weights
    assert train_module.fingerprint(base, nets, sample_images(IMAGES, 9)) != same          # batch size


# ------------------------------------------------------------------------------------------ several parameter groups
@dataclass(frozen=True)
class ToyGANConfig(CheckedConfig):
    weight: float = option(1.0, "weight of the fool-the-critic term in the VAE's loss", "[0, inf)")
    clip: float = option(0.05, "critic weight clip (the clipped variant only)", "(0, inf)")


CRITIC_LEARNING_RATE = 5e-3
CRITIC_BETAS = (0.5, 0.999)


def toy_critic(vae, config):
    return {"critic": nn.Sequential(nn.Linear(vae.latent_dim, 8), nn.Tanh(), nn.Linear(8, 1))}


def _snapshot(nets):
    return {name: [p.detach().clone() for p in net.parameters()] for name, net in nets.items()}


class ToyGANLosses:
    """An ELBO with a latent critic: the critic tells prior samples from codes; the VAE also tries to
    fool it. Each group's loss has a gradient for the other group's parameters too (the critic's
    loss through z reaches the encoder; the VAE's through critic(z) reaches the critic), so only
    the loop keeps the groups apart. Records the networks' parameters at every call."""

    def __init__(self):
        self.snapshots = []

    def __call__(self, x, nets, config, generator=None):
        self.snapshots.append(_snapshot(nets))
        vae, critic = nets["vae"], nets["critic"]
        mu, logvar = vae.encode(x)
        z = gaussians.reparameterise(mu, logvar, generator)
        prior = torch.randn(z.shape, generator=generator)
        reconstruction = gaussians.gaussian_log_likelihood(x, vae.decode(z), vae.observation_variance)
        kl = gaussians.kl_to_standard_normal(mu, logvar)
        fool = nn.functional.softplus(-critic(z)).mean()
        critic_loss = nn.functional.softplus(-critic(prior)).mean() + nn.functional.softplus(critic(z)).mean()
        vae_loss = -(reconstruction - kl).mean() + config.weight * fool
        return {"vae": vae_loss, "critic": critic_loss}, {"bound": (reconstruction - kl).mean().item(),
                                                          "critic_loss": critic_loss.item()}


GROUPS = (ParameterGroup("vae"),
          ParameterGroup("critic", networks=("critic",), learning_rate=CRITIC_LEARNING_RATE, betas=CRITIC_BETAS))


@pytest.fixture
def toy_method(monkeypatch):
    """Register throwaway methods (a module of tests is not a method module: keep the record of
    used method modules as it was), and remove them afterwards."""
    monkeypatch.setattr(methods, "_USED", set(methods._USED))
    made = []

    def make(name, **fields):
        losses = ToyGANLosses()
        method = register(Method(name, "a test", "a toy GAN", ToyGANConfig, losses, networks=toy_critic, **fields))
        made.append(name)
        return method, losses
    yield make
    for name in made:
        methods._REGISTRY.pop(name, None)


@pytest.fixture
def built_optimisers(monkeypatch):
    """The optimisers train() builds, by the parameter group they were built for."""
    built = {}
    factories = dict(train_module._OPTIMISERS)

    def recording(kind):
        def build(params, group, rate):
            built[group.name] = factories[kind](params, group, rate)
            return built[group.name]
        return build
    for kind in factories:
        monkeypatch.setitem(train_module._OPTIMISERS, kind, recording(kind))
    return built


def test_alternating_groups_step_in_turn_and_each_optimiser_moves_only_its_group(toy_method, built_optimisers):
    method, losses = toy_method("test_toy_gan", groups=GROUPS, alternating=True)
    model = _model()
    steps = 4
    result = train(model, sample_images(IMAGES, 8), TrainConfig("test_toy_gan", steps=steps, learning_rate=1e-3,
                                                                log_every=1), progress=False)
    critic = result.networks["critic"]
    # each optimiser holds exactly its group's parameters, with the group's own settings
    (vae_group,) = built_optimisers["vae"].param_groups
    (critic_group,) = built_optimisers["critic"].param_groups
    assert [id(p) for p in vae_group["params"]] == [id(p) for p in model.parameters()]
    assert [id(p) for p in critic_group["params"]] == [id(p) for p in critic.parameters()]
    assert (vae_group["lr"], vae_group["betas"]) == (1e-3, (0.9, 0.999))
    assert (critic_group["lr"], critic_group["betas"]) == (CRITIC_LEARNING_RATE, CRITIC_BETAS)
    # two fresh forward passes per step: the VAE's step, then the critic's; each changes only its group
    snapshots = losses.snapshots + [_snapshot({"vae": model, "critic": critic})]
    assert len(snapshots) == 2 * steps + 1
    for call, (before, after) in enumerate(zip(snapshots, snapshots[1:])):
        stepped, other = ("vae", "critic") if call % 2 == 0 else ("critic", "vae")
        assert all(torch.equal(a, b) for a, b in zip(before[other], after[other])), (call, other)
        assert any(not torch.equal(a, b) for a, b in zip(before[stepped], after[stepped])), (call, stepped)
    assert set(result.history[0]) == {"step", "loss_vae", "loss_critic", "bound", "critic_loss"}


def test_without_the_loop_each_loss_would_move_both_groups(toy_method):
    """The control for the test above: each group's loss has a gradient for the other group."""
    method, _ = toy_method("test_toy_gan", groups=GROUPS, alternating=True)
    model = _model()
    nets = {"vae": model, **toy_critic(model, ToyGANConfig())}
    losses, _ = method.losses(IMAGES[:8], nets, ToyGANConfig(), torch.Generator().manual_seed(0))
    for name, other in (("vae", "critic"), ("critic", "vae")):
        grads = torch.autograd.grad(losses[name], list(nets[other].parameters()), retain_graph=True, allow_unused=True)
        assert any(g is not None and g.abs().sum() > 0 for g in grads), (name, other)


def test_simultaneous_groups_step_each_with_its_own_loss_gradient(toy_method):
    """Without alternation both groups step from one forward pass, each with the gradient of its own
    loss only: with SGD, new = old - lr * d(own loss)/d(own parameters), exactly."""
    sgd = (ParameterGroup("vae", optimiser="sgd"),
           ParameterGroup("critic", networks=("critic",), optimiser="sgd", learning_rate=0.5))
    method, _ = toy_method("test_toy_gan_joint", groups=sgd, alternating=False)
    config = TrainConfig("test_toy_gan_joint", steps=1, learning_rate=0.1, seed=4)
    sampler = sample_images(IMAGES, 8)
    model = _model()
    # the same step by hand: the critic as train() builds it, the batch and noise from the run's generator
    nets = {"vae": copy.deepcopy(model)}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed + 1)
        nets.update(toy_critic(model, config.config))
    generator = torch.Generator().manual_seed(config.seed)
    x = sampler(generator)
    losses, _ = method.losses(x, nets, config.config, generator)
    expected = {}
    for name, rate in (("vae", 0.1), ("critic", 0.5)):
        params = list(nets[name].parameters())
        grads = torch.autograd.grad(losses[name], params, retain_graph=True)
        expected[name] = [p.detach() - rate * g for p, g in zip(params, grads)]

    result = train(model, sampler, config, progress=False)
    got = {"vae": list(model.parameters()), "critic": list(result.networks["critic"].parameters())}
    for name in ("vae", "critic"):
        for a, b in zip(got[name], expected[name]):
            assert torch.allclose(a, b, atol=1e-6, rtol=0), name
    assert set(result.history[0]) == {"step", "loss_vae", "loss_critic", "bound", "critic_loss"}


def test_a_post_step_hook_runs_after_every_step(toy_method):
    calls = []

    def clip_critic(nets, config):
        calls.append(len(losses.snapshots))
        with torch.no_grad():
            for p in nets["critic"].parameters():
                p.clamp_(-config.clip, config.clip)

    config = ToyGANConfig(clip=0.05)
    method, losses = toy_method("test_toy_wgan", groups=GROUPS, alternating=True, post_step=(clip_critic,))
    steps = 6
    result = train(_model(), sample_images(IMAGES, 8), TrainConfig("test_toy_wgan", config, steps=steps),
                   progress=False)
    assert calls == [2 * (step + 1) for step in range(steps)]      # once per step, after both groups stepped
    critic = list(result.networks["critic"].parameters())
    assert all(p.abs().max() <= config.clip for p in critic)
    # the clip binds (the initial weights reach ~0.58) and holds at the start of every step but the first
    assert any((p.abs() == config.clip).any() for p in critic)
    first = losses.snapshots[0]["critic"]
    assert max(p.abs().max().item() for p in first) > 10 * config.clip
    for snapshot in losses.snapshots[2:]:
        assert all(p.abs().max() <= config.clip for p in snapshot["critic"])
    assert "after every step: clip_critic" in method.describe()


# ------------------------------------------------------------------------------------------ batches
def test_coloured_batches_use_the_seven_corners_and_redraw_colours():
    grey = torch.ones(10, 1, 2, 2)
    sampler = sample_coloured_digits(grey, 50)
    generator = torch.Generator().manual_seed(0)
    first, second = sampler(generator), sampler(generator)
    colours = first[:, :, 0, 0]
    assert all(any(torch.equal(c, corner) for corner in COLOURS) for c in colours)
    assert len({tuple(c.tolist()) for c in colours}) > 3 and not torch.equal(first, second)
