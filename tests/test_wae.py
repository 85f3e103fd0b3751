"""The adversarial and Wasserstein autoencoders (AAE, WAE-MMD, WAE-GAN): the MMD U-statistic against
closed forms, the losses against hand computations, WAE-GAN = AAE under squared error, each
optimiser of the training loop moving only its own networks, and short runs that do what the
objectives say."""
from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from rvae import gaussians, methods
from rvae.errors import ParameterError
from rvae.methods import get_method, register
from rvae.methods.aae import AAEConfig, aae_losses, aae_networks, encode_codes
from rvae.methods.gan import MLPDiscriminator, discriminator_loss, generator_loss, prior_sample
from rvae.kernels import IMQ_SCALES, imq_kernel, mmd_u, polynomial_kernel
from rvae.methods.wae import WAEGANConfig, WAEMMDConfig, squared_error_cost, wae_gan_losses, wae_mmd_losses
from rvae.nets import build_vae
from rvae.train import TrainConfig, sample_images, train


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _model(seed=0, latent_dim=3):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_vae("mlp", (1, 4, 4), latent_dim=latent_dim, hidden=8)


def _images(count=20, seed=0):
    return torch.rand(count, 1, 4, 4, generator=_gen(seed))


def _rbf(length):
    def kernel(a, b):
        return torch.exp(-torch.cdist(a, b).pow(2) / (2 * length ** 2))
    return kernel


def _rbf_expectation(mu1, s1, mu2, s2, d, length):
    """E k(X, Y) for X ~ N(mu1, s1^2 I), Y ~ N(mu2, s2^2 I) independent, k the RBF of ``length``:
    X - Y ~ N(mu1 - mu2, (s1^2 + s2^2) I), and E exp(-|W|^2 / 2l^2) for W ~ N(m, t I) is
    (l^2 / (l^2 + t))^(d/2) exp(-|m|^2 / (2 (l^2 + t)))."""
    t = s1 ** 2 + s2 ** 2
    return (length ** 2 / (length ** 2 + t)) ** (d / 2) * math.exp(-sum((a - b) ** 2 for a, b in zip(mu1, mu2))
                                                                   / (2 * (length ** 2 + t)))


# ------------------------------------------------------------------------------------------ MMD
def test_the_imq_kernel_matches_a_hand_value():
    a, b = torch.tensor([[0.0, 0.0]]), torch.tensor([[1.0, 2.0]])        # ||a - b||^2 = 5, d = 2
    hand = sum(4 * s / (4 * s + 5) for s in IMQ_SCALES)
    assert imq_kernel(a, b).item() == pytest.approx(hand, rel=1e-6)
    assert imq_kernel(a, a).item() == pytest.approx(len(IMQ_SCALES), rel=1e-6)          # k(x, x) = 1 per scale
    hand_wide = sum(8 * s / (8 * s + 5) for s in IMQ_SCALES)                            # prior variance 2
    assert imq_kernel(a, b, prior_variance=2.0).item() == pytest.approx(hand_wide, rel=1e-6)
    u, w = torch.tensor([[1.0, 2.0, 0.0]]), torch.tensor([[3.0, -1.0, 2.0]])           # u.w = 1, d = 3
    assert polynomial_kernel(u, w).item() == pytest.approx((1 / 3 + 1) ** 3, rel=1e-6)


def test_the_u_statistic_is_unbiased_where_the_plug_in_estimate_is_not():
    """Two Gaussians in d = 2 with an RBF kernel, where the population MMD^2 has a closed form;
    20,000 pairs of samples of 4 and 6 points. The U-statistic's mean is within 4 standard errors
    of the truth; the plug-in (V-statistic, diagonals included) is off by many."""
    d, length, shift = 2, 1.0, (0.8, 0.0)
    truth = (_rbf_expectation((0, 0), 1, (0, 0), 1, d, length) + _rbf_expectation(shift, 1, shift, 1, d, length)
             - 2 * _rbf_expectation((0, 0), 1, shift, 1, d, length))
    generator, kernel = _gen(0), _rbf(length)
    u_values, v_values = [], []
    for _ in range(20_000):
        a = torch.randn(4, d, generator=generator, dtype=torch.float64)
        b = torch.randn(6, d, generator=generator, dtype=torch.float64) + torch.tensor(shift, dtype=torch.float64)
        u_values.append(mmd_u(a, b, kernel).item())
        v_values.append((kernel(a, a).mean() + kernel(b, b).mean() - 2 * kernel(a, b).mean()).item())
    u, v = torch.tensor(u_values), torch.tensor(v_values)
    standard_error = u.std().item() / math.sqrt(len(u))
    assert abs(u.mean().item() - truth) < 4 * standard_error, (u.mean().item(), truth, standard_error)
    assert abs(v.mean().item() - truth) > 20 * standard_error


def test_mmd_of_same_distribution_samples_is_near_zero_and_grows_with_a_shift():
    generator = _gen(1)
    a, b = torch.randn(2, 500, 4, generator=generator)
    same = mmd_u(a, b).item()
    shifted = [mmd_u(a, b + torch.tensor([delta, 0.0, 0.0, 0.0])).item() for delta in (0.25, 0.5, 1.0, 2.0)]
    assert abs(same) < 0.012                  # measured over 60 seeds: sd 0.0034 about a mean of -0.0002
    assert all(x < y for x, y in zip([same] + shifted, shifted)) and shifted[0] > 0.012
    with pytest.raises(ValueError, match="at least two points"):
        mmd_u(a[:1], b)


# ------------------------------------------------------------------------------------------ losses
def test_wae_mmd_loss_is_the_cost_plus_lambda_times_the_u_statistic():
    model, x = _model(), _images(6)
    config = WAEMMDConfig(weight=7.0, cost_weight=0.3)
    losses, logs = wae_mmd_losses(x, {"vae": model}, config, _gen(4))
    with torch.no_grad():
        mu, _ = model.encode(x)
        cost = (0.3 * (x - model.decode(mu)).pow(2).flatten(1).sum(1)).mean()
        prior = prior_sample(6, 3, _gen(4))                      # deterministic codes draw nothing before the prior
        mmd = mmd_u(mu, prior)
    assert set(losses) == {"vae"}
    assert losses["vae"].item() == pytest.approx((cost + 7.0 * mmd).item(), rel=1e-5)
    assert logs["cost"] == pytest.approx(cost.item(), rel=1e-5) and logs["mmd"] == pytest.approx(mmd.item(), rel=1e-5)
    hand = 0.3 * sum(((x[0] - model.decode(mu[:1])[0]) ** 2).flatten().tolist())
    assert squared_error_cost(x[:1], model.decode(mu[:1]), 0.3).item() == pytest.approx(hand, rel=1e-5)


def test_the_gaussian_encoder_kind_draws_codes_from_the_posterior():
    model, x = _model(), _images(5)
    codes, mu, logvar = encode_codes(model, x, "gaussian", _gen(2))
    assert torch.allclose(codes, gaussians.reparameterise(mu, logvar, _gen(2)))
    codes, mu, _ = encode_codes(model, x, "deterministic", _gen(2))
    assert torch.equal(codes, mu)
    with pytest.raises(ValueError, match="unknown encoder kind"):
        encode_codes(model, x, "flow")


def test_aae_losses_are_reconstruction_bce_and_the_non_saturating_encoder_loss():
    model, x = _model(), _images(6)
    config = AAEConfig(weight=2.5, discriminator_hidden=8, discriminator_depth=2)
    nets = {"vae": model, **aae_networks(model, config)}
    assert nets["encoder"] is model.encoder and isinstance(nets["discriminator"], MLPDiscriminator)
    losses, _ = aae_losses(x, nets, config, _gen(3))
    with torch.no_grad():
        mu, _ = model.encode(x)
        prior = prior_sample(6, 3, _gen(3))
        d = nets["discriminator"]
        reconstruction = -gaussians.gaussian_log_likelihood(x, model.decode(mu), model.observation_variance).mean()
    assert losses["autoencoder"].item() == pytest.approx(reconstruction.item(), rel=1e-5)
    assert losses["discriminator"].item() == pytest.approx(discriminator_loss(d(prior), d(mu)).item(), rel=1e-5)
    assert losses["encoder"].item() == pytest.approx(2.5 * generator_loss(d(mu)).item(), rel=1e-5)
    # D's loss sees the codes detached: no gradient reaches the encoder from it
    grads = torch.autograd.grad(losses["discriminator"], list(model.encoder.parameters()), allow_unused=True,
                                retain_graph=True)
    assert all(g is None for g in grads)


@pytest.mark.parametrize("encoder", ["deterministic", "gaussian"])
def test_wae_gan_with_squared_error_is_the_aae(encoder):
    """With c(x, y) = ||x - y||^2 / (2v) and lambda = the AAE's weight, WAE-GAN's autoencoder loss is
    the AAE's reconstruction plus encoder losses less the Gaussian constant D/2 log(2 pi v), with the
    same gradients for every encoder and decoder parameter; its D loss is lambda times the AAE's."""
    model, x = _model(seed=2), _images(8, seed=3)
    v, weight = model.observation_variance, 3.0
    aae_config = AAEConfig(encoder=encoder, weight=weight, discriminator_hidden=8, discriminator_depth=2)
    wae_config = WAEGANConfig(encoder=encoder, weight=weight, cost_weight=1 / (2 * v), discriminator_hidden=8,
                              discriminator_depth=2)
    nets = {"vae": model, **aae_networks(model, aae_config)}
    aae, _ = aae_losses(x, nets, aae_config, _gen(5))
    wae, _ = wae_gan_losses(x, nets, wae_config, _gen(5))
    constant = 0.5 * x[0].numel() * math.log(2 * math.pi * v)
    assert wae["autoencoder"].item() == pytest.approx((aae["autoencoder"] + aae["encoder"]).item() - constant, rel=1e-5)
    assert wae["discriminator"].item() == pytest.approx(weight * aae["discriminator"].item(), rel=1e-5)
    parameters = list(model.parameters())
    from_aae = torch.autograd.grad(aae["autoencoder"] + aae["encoder"], parameters, allow_unused=True)
    from_wae = torch.autograd.grad(wae["autoencoder"], parameters, allow_unused=True)
    for a, b in zip(from_aae, from_wae):
        assert (a is None) == (b is None)
        if a is not None:
            assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)


# ------------------------------------------------------------------------------------------ the training loop
def _recorded_run(name, config, steps=2):
    """Train a small VAE with ``name``'s losses wrapped to snapshot every network at each call."""
    method = get_method(name)
    snapshots = []

    def snapshot(nets):
        return {key: [p.detach().clone() for p in net.parameters()]
                for key, net in (("encoder", nets["vae"].encoder), ("decoder", nets["vae"].decoder),
                                 ("discriminator", nets["discriminator"]))}

    def recording(x, nets, config, generator=None):
        snapshots.append(snapshot(nets))
        return method.losses(x, nets, config, generator)

    register(dataclasses.replace(method, name=f"test_{name}_recorded", losses=recording))
    try:
        model = _model()
        result = train(model, sample_images(_images(), 10),
                       TrainConfig(f"test_{name}_recorded", config, steps=steps, log_every=1), progress=False)
    finally:
        methods._REGISTRY.pop(f"test_{name}_recorded", None)
    snapshots.append(snapshot({"vae": model, **result.networks}))
    return snapshots, result


def _moved(before, after, key):
    return [not torch.equal(a, b) for a, b in zip(before[key], after[key])]


@pytest.mark.parametrize(("name", "config", "schedule"), [
    ("aae", AAEConfig(discriminator_hidden=8, discriminator_depth=2),
     [{"encoder", "decoder"}, {"discriminator"}, {"encoder"}]),
    ("wae_gan", WAEGANConfig(discriminator_hidden=8, discriminator_depth=2),
     [{"discriminator"}, {"encoder", "decoder"}]),
])
def test_each_optimiser_moves_only_its_own_networks(monkeypatch, name, config, schedule):
    """Between consecutive calls of the losses exactly one group has stepped: the networks it owns
    moved (the encoder's mean head at least; a deterministic code leaves the log-variance head
    without a gradient) and every other network is bit-identical."""
    monkeypatch.setattr(methods, "_USED", set(methods._USED))
    steps = 2
    snapshots, result = _recorded_run(name, config, steps)
    assert len(snapshots) == len(schedule) * steps + 1
    for call, (before, after) in enumerate(zip(snapshots, snapshots[1:])):
        stepped = schedule[call % len(schedule)]
        for key in ("encoder", "decoder", "discriminator"):
            moved = _moved(before, after, key)
            if key in stepped:
                assert any(moved), (call, key)
            else:
                assert not any(moved), (call, key)
    assert {f"loss_{g.name}" for g in get_method(name).groups} <= set(result.history[0])


def test_a_deterministic_code_leaves_the_log_variance_rows_untouched():
    """The encoder's last layer gives (mu, logvar); with z~ = mu only the mu rows get a gradient."""
    snapshots, _ = _recorded_run("aae", AAEConfig(discriminator_hidden=8, discriminator_depth=2), steps=2)
    last_weight = -2                                   # encoder parameters: ..., last weight, last bias
    first, last = snapshots[0]["encoder"][last_weight], snapshots[-1]["encoder"][last_weight]
    d = first.shape[0] // 2
    assert not torch.equal(first[:d], last[:d]) and torch.equal(first[d:], last[d:])


def test_wae_mmd_training_pulls_the_codes_towards_the_prior():
    """200 steps on 20 noise images (the book's tanh MLP, two latent dimensions): the MMD between
    the codes of the images and fixed prior draws falls from about 1.57 (the initial codes sit near
    zero) to near zero (measured over seeds 0-2: -0.08 to -0.003), and the cost falls too."""
    from rvae.nets import evaluation_mode
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build_vae("tanh_mlp", (1, 4, 4), latent_dim=2)
    images, prior = _images(20), torch.randn(400, 2, generator=_gen(9))
    config = WAEMMDConfig(weight=100.0, cost_weight=0.05)

    def measure():
        with torch.no_grad(), evaluation_mode(model):
            mu, _ = model.encode(images)
            return mmd_u(mu, prior).item(), squared_error_cost(images, model.decode(mu), 0.05).mean().item()

    mmd_before, cost_before = measure()
    train(model, sample_images(images, 10), TrainConfig("wae_mmd", config, steps=200, learning_rate=1e-2),
          progress=False)
    mmd_after, cost_after = measure()
    assert mmd_before > 1.0 and abs(mmd_after) < 0.1 * mmd_before, (mmd_before, mmd_after)
    assert cost_after < cost_before


# ------------------------------------------------------------------------------------------ registry and config
def test_the_registry_lists_the_three_methods_with_their_groups():
    assert [(g.name, g.networks) for g in get_method("aae").groups] == [
        ("autoencoder", ("vae",)), ("discriminator", ("discriminator",)), ("encoder", ("encoder",))]
    assert [(g.name, g.networks) for g in get_method("wae_gan").groups] == [
        ("discriminator", ("discriminator",)), ("autoencoder", ("vae",))]
    assert [g.name for g in get_method("wae_mmd").groups] == ["vae"] and get_method("wae_mmd").groups[0].betas[0] == 0.5
    assert get_method("aae").alternating and get_method("wae_gan").alternating and not get_method("wae_mmd").alternating


@pytest.mark.parametrize(("name", "fields", "field"), [
    ("aae", {"encoder": "flow"}, "encoder"), ("wae_mmd", {"weight": -1.0}, "weight"),
    ("wae_mmd", {"cost_weight": 0.0}, "cost_weight"), ("wae_gan", {"discriminator_depth": 0}, "discriminator_depth")])
def test_bad_config_values_are_one_line_naming_the_field(name, fields, field):
    with pytest.raises(ParameterError) as error:
        get_method(name).make_config(**fields)
    assert str(error.value).startswith(f"{field} of ") and "\n" not in str(error.value)


def test_the_penalty_has_a_finite_gradient_where_codes_coincide():
    """The within-sample kernel matrix meets each code itself (distance 0): the gradient stays finite."""
    codes = torch.zeros(4, 3, requires_grad=True)
    (grad,) = torch.autograd.grad(mmd_u(codes, torch.randn(5, 3, generator=_gen(0))), [codes])
    assert torch.isfinite(grad).all()
