"""LC-VAE ("Looser is worse", sec. 4): omega and the loss against hand computation, the clipping
hook (every encoder parameter in [-c, c] after every step of the training loop, the decoder never
clipped), config checks, and that finding methods loads no new package module."""
from __future__ import annotations

import dataclasses
import math
import subprocess
import sys

import pytest
import torch
from torch import nn

from rvae import methods
from rvae.errors import ParameterError
from rvae.methods import get_method, register
from rvae.methods.lcvae import LCVAEConfig, clip_encoder, clip_encoder_weights, lipschitz_ratios
from rvae.methods.vae import ELBOConfig
from rvae.nets import VAE, GaussianEncoder, MLPDecoder, TanhMLPDecoder, TanhMLPEncoder, build_vae
from rvae.train import TrainConfig, sample_images, train


def _gen(seed):
    return torch.Generator().manual_seed(seed)


class LinearEncoder(GaussianEncoder):
    """mu = W x + a and logvar = V x + e on 4 pixels, with hand-set numbers."""

    def __init__(self):
        super().__init__()
        self.latent_dim = 2
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(4, 4))
        with torch.no_grad():
            self.body[1].weight.copy_(torch.tensor([[1.0, 0.0, 0.0, 0.0],      # mu_1 = x_1 + 0.1
                                                     [0.0, 2.0, 0.0, -1.0],     # mu_2 = 2 x_2 - x_4 - 0.2
                                                     [0.1, 0.0, 0.0, 0.0],      # logvar_1 = 0.1 x_1 - 1
                                                     [0.0, 0.0, 0.2, 0.0]]))    # logvar_2 = 0.2 x_3 - 1
            self.body[1].bias.copy_(torch.tensor([0.1, -0.2, -1.0, -1.0]))


def _linear_vae():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return VAE(LinearEncoder(), MLPDecoder((1, 2, 2), 2, hidden=4, depth=1), observation_variance=0.5)


# pairs (0, 2) and (1, 3) of a batch of 4 (and 5: the last one has no partner)
PIXELS = [[0.1, 0.9, 0.5, 0.0], [1.0, 0.2, 0.3, 0.7], [0.4, 0.4, 0.0, 1.0], [0.0, 0.6, 0.9, 0.2], [0.3, 0.3, 0.3, 0.3]]
X = torch.tensor(PIXELS).view(5, 1, 2, 2)


def _hand_mean(p):
    return [p[0] + 0.1, 2 * p[1] - p[3] - 0.2]


def _hand_omega(p, q):
    codes = sum((a - b) ** 2 for a, b in zip(_hand_mean(p), _hand_mean(q)))
    return codes / sum((a - b) ** 2 for a, b in zip(p, q))


# ------------------------------------------------------------------------------------------ omega and the loss
def test_omega_matches_the_hand_computation_for_a_linear_encoder():
    model = _linear_vae()
    mu = model.encode(X[:4])[0]
    expected = [_hand_omega(PIXELS[0], PIXELS[2]), _hand_omega(PIXELS[1], PIXELS[3])]
    # d = x_0 - x_2 = (-0.3, 0.5, 0.5, -1): W d = (-0.3, 2.0);  d = x_1 - x_3 = (1, -0.4, -0.6, 0.5): W d = (1, -1.3)
    assert expected == pytest.approx([(0.09 + 4.0) / 1.59, (1.0 + 1.69) / 1.77])
    assert lipschitz_ratios(X[:4], mu).tolist() == pytest.approx(expected, rel=1e-6)
    # an odd batch pairs i with i + n, n = b // 2: (0, 2), (1, 3); the fifth example has no partner
    assert lipschitz_ratios(X, model.encode(X)[0]).tolist() == pytest.approx(
        [_hand_omega(PIXELS[0], PIXELS[2]), _hand_omega(PIXELS[1], PIXELS[3])], rel=1e-6)
    assert lipschitz_ratios(X[:1], model.encode(X[:1])[0]).numel() == 0


def test_an_identical_pair_has_omega_zero_and_a_finite_gradient():
    model = _linear_vae()
    twins = torch.cat([X[:2], X[:1], X[3:4]])                  # pair (0, 2) is one image twice
    omega = lipschitz_ratios(twins, model.encode(twins)[0])
    assert omega[0].item() == 0.0 and omega[1].item() == pytest.approx(_hand_omega(PIXELS[1], PIXELS[3]), rel=1e-6)
    omega.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.encoder.parameters())


def test_the_loss_is_the_elbo_loss_plus_lambda_over_b_times_the_sum_of_omegas():
    """The paper's batch loss sum_j -ELBO_j + lambda sum_i omega_i, divided by the batch size b."""
    model = _linear_vae()
    for batch in (X[:4], X):
        b = len(batch)
        elbo, elbo_logs = get_method("elbo").losses(batch, {"vae": model}, ELBOConfig(), _gen(3))
        losses, logs = get_method("lc_vae").losses(batch, {"vae": model}, LCVAEConfig(weight=30.0), _gen(3))
        omega_sum = _hand_omega(PIXELS[0], PIXELS[2]) + _hand_omega(PIXELS[1], PIXELS[3])
        assert set(losses) == {"vae"}
        assert losses["vae"].item() == pytest.approx(elbo["vae"].item() + 30.0 * omega_sum / b, rel=1e-6)
        assert b * losses["vae"].item() == pytest.approx(-b * elbo_logs["bound"] + 30.0 * omega_sum, rel=1e-6)
        assert logs["penalty"] == pytest.approx(30.0 * omega_sum / b, rel=1e-6)
        assert logs["omega"] == pytest.approx(omega_sum / 2, rel=1e-6)
        assert logs["bound"] == pytest.approx(elbo_logs["bound"], rel=1e-6)
        unweighted, _ = get_method("lc_vae").losses(batch, {"vae": model}, LCVAEConfig(weight=0.0), _gen(3))
        assert unweighted["vae"].item() == pytest.approx(elbo["vae"].item(), rel=1e-6)


def test_the_penalty_is_minimised_its_gradient_shrinks_the_encoder_and_spares_the_decoder():
    model = _linear_vae()
    losses, _ = get_method("lc_vae").losses(X[:4], {"vae": model}, LCVAEConfig(weight=1.0), _gen(3))
    elbo, _ = get_method("elbo").losses(X[:4], {"vae": model}, ELBOConfig(), _gen(3))
    extra = losses["vae"] - elbo["vae"]
    weight = model.encoder.body[1].weight
    (grad,) = torch.autograd.grad(extra, [weight], retain_graph=True)
    # d/dW of sum_i ||W_mu d_i||^2 / ||d_i||^2 / b is 2 W_mu sum_i d_i d_i^T / ||d_i||^2 / b on the mean rows
    d = [torch.tensor(PIXELS[0]) - torch.tensor(PIXELS[2]), torch.tensor(PIXELS[1]) - torch.tensor(PIXELS[3])]
    outer = sum(torch.outer(v, v) / v.dot(v) for v in d)
    assert torch.allclose(grad[:2], 2 * weight[:2].detach() @ outer / 4, atol=1e-6)
    assert torch.equal(grad[2:], torch.zeros(2, 4))               # the log-variance rows play no part
    assert (weight[:2].detach() * grad[:2]).sum() > 0             # descent shrinks the mean map
    decoder_grads = torch.autograd.grad(extra, list(model.decoder.parameters()), allow_unused=True)
    assert all(g is None or torch.equal(g, torch.zeros_like(g)) for g in decoder_grads)


# ------------------------------------------------------------------------------------------ clipping
def _batchnorm_vae():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        model = VAE(TanhMLPEncoder((1, 2, 2), 2, units=(8, 4)), TanhMLPDecoder((1, 2, 2), 2, units=(4, 8)))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(3 * torch.randn(p.shape, generator=_gen(p.numel())))   # well outside [-0.3, 0.3]
    return model


@pytest.mark.parametrize("clipped", ["all", "weights"])
def test_the_hook_clamps_the_encoder_only(clipped):
    model = _batchnorm_vae()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    clip_encoder_weights({"vae": model}, LCVAEConfig(clip=0.3, clipped=clipped))
    kinds = set()
    for name, p in model.named_parameters():
        if name.startswith("decoder.") or (clipped == "weights" and name.endswith("bias")):
            assert torch.equal(p, before[name]), name                         # bit-identical
            kinds.add("kept")
        else:
            assert torch.equal(p, before[name].clamp(-0.3, 0.3)), name
            kinds.add("clipped")
    assert kinds == {"kept", "clipped"}
    batchnorm = model.encoder.body[2]
    assert isinstance(batchnorm, nn.BatchNorm1d) and batchnorm.weight.abs().max() <= 0.3   # its scale is clipped
    assert (batchnorm.bias.abs().max() <= 0.3) == (clipped == "all")
    assert any(before[name].abs().max() > 0.3 for name in before if name.startswith("decoder."))


def test_the_hook_needs_an_encoder_module():
    with pytest.raises(TypeError, match="model.encoder"):
        clip_encoder(nn.Linear(2, 2), 0.3)


def test_every_encoder_parameter_is_within_c_after_every_step_of_the_loop(monkeypatch):
    """The training loop with LC-VAE's hook; a recorder in place of its losses snapshots the networks
    at the start of every step, i.e. after the previous step's hook."""
    monkeypatch.setattr(methods, "_USED", set(methods._USED))
    lc = get_method("lc_vae")
    snapshots = []

    def recording_losses(x, nets, config, generator=None):
        snapshots.append({name: p.detach().clone() for name, p in nets["vae"].named_parameters()})
        return lc.losses(x, nets, config, generator)

    register(dataclasses.replace(lc, name="test_lc_vae_recorded", losses=recording_losses))
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = build_vae("mlp", (1, 4, 4), latent_dim=2, hidden=16, observation_variance=0.1)
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(4)                                      # initial weights reach ~1, decoder included
        initial = {name: p.detach().clone() for name, p in model.named_parameters()}
        images = torch.rand(32, 1, 4, 4, generator=_gen(0))
        config = LCVAEConfig(clip=0.2)
        steps = 6
        train(model, sample_images(images, 8), TrainConfig("test_lc_vae_recorded", config, steps=steps,
                                                           learning_rate=1e-2), progress=False)
    finally:
        methods._REGISTRY.pop("test_lc_vae_recorded", None)
    states = snapshots[1:] + [{name: p.detach().clone() for name, p in model.named_parameters()}]
    assert len(snapshots) == steps and len(states) == steps
    assert max(v.abs().max().item() for name, v in snapshots[0].items() if name.startswith("encoder.")) > 0.5
    for step, state in enumerate(states):
        encoder = [v for name, v in state.items() if name.startswith("encoder.")]
        assert all(v.abs().max() <= config.clip for v in encoder), step
        assert any((v.abs() == config.clip).any() for v in encoder), step            # the clip binds
        decoder = {name: v for name, v in state.items() if name.startswith("decoder.")}
        assert max(v.abs().max().item() for v in decoder.values()) > 0.5, step       # never clipped
    moved = [name for name in initial if name.startswith("decoder.") and not torch.equal(initial[name], states[-1][name])]
    assert moved                                                                      # but trained


# ------------------------------------------------------------------------------------------ registry and config
def test_the_registry_finds_lc_vae_with_the_papers_defaults():
    method = get_method("lc_vae")
    assert method.config is LCVAEConfig and method.post_step == (clip_encoder_weights,)
    assert method.make_config() == LCVAEConfig(weight=30.0, clip=0.30, clipped="all")
    assert [g.name for g in method.groups] == ["vae"] and not method.alternating
    assert "after every step: clip_encoder_weights" in method.describe()
    assert "lc_vae" in methods.all_methods()


@pytest.mark.parametrize(("fields", "field"), [
    ({"clip": 0.0}, "clip"), ({"clip": -0.3}, "clip"), ({"clip": math.nan}, "clip"),
    ({"weight": -1.0}, "weight"), ({"weight": math.inf}, "weight"), ({"clipped": "biases"}, "clipped")])
def test_bad_config_values_are_one_line_naming_the_field(fields, field):
    with pytest.raises(ParameterError) as error:
        get_method("lc_vae").make_config(**fields)
    message = str(error.value)
    assert message.startswith(f"{field} of LCVAEConfig must be in ") and "\n" not in message


def test_finding_methods_loads_no_new_package_module_and_records_what_each_method_draws_on():
    """Chapters hash the package modules they load: the new method modules must import nothing that
    the other method modules did not load already, and count only when looked up."""
    code = ("import pkgutil, importlib, rvae.methods as m\n"
            "from rvae.book.provenance import loaded_package_modules\n"
            "for info in pkgutil.iter_modules(m.__path__):\n"
            "    if info.name not in ('lcvae', 'gan', 'aae', 'wae'): importlib.import_module('rvae.methods.' + info.name)\n"
            "print(','.join(loaded_package_modules()))\n"
            "m.all_methods(); m.get_method('elbo'); print(','.join(loaded_package_modules()))\n"
            "m._USED.clear(); m.get_method('lc_vae'); m.get_method('ns_gan'); print(','.join(m.used_modules()))")
    lines = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    without_new, with_new, used = (line.split(",") for line in lines)
    assert with_new == sorted(set(without_new) | {"methods/vae.py"})
    assert not {"looseness.py", "worlds/grid2d.py", "kernels.py", "methods/lcvae.py", "methods/gan.py",
                "methods/aae.py", "methods/wae.py"} & set(with_new)
    assert used == ["methods/gan.py", "methods/lcvae.py", "methods/vae.py"]


# ---------------------------------------------------------------------------- the paper's ConvNets

def test_the_papers_convnets_have_the_stated_sizes_on_mnist():
    from rvae.lcvae_nets import LCVAEConvDecoder, LCVAEConvEncoder
    encoder, decoder = LCVAEConvEncoder((1, 28, 28), 10), LCVAEConvDecoder((1, 28, 28), 10)
    linear = [m for m in encoder.modules() if isinstance(m, nn.Linear)]
    assert len(linear) == 1 and linear[0].in_features == 1024            # table 1: 1 x 1 x 1024 inputs
    assert [m.out_channels for m in encoder.modules() if isinstance(m, nn.Conv2d)] == [128, 256, 512, 1024]
    assert decoder.project[0].out_features == 12544                      # table 2: 256 x 7 x 7
    encoder.eval(), decoder.eval()
    mu, logvar = encoder(torch.rand(2, 1, 28, 28))
    assert mu.shape == logvar.shape == (2, 10)
    images = decoder(torch.randn(2, 10))
    assert images.shape == (2, 1, 28, 28) and images.min() >= 0 and images.max() <= 1


def test_the_narrow_convnets_are_registered_with_every_width_divided_by_eight():
    import rvae.lcvae_nets  # noqa: F401  (registers the architectures)
    model = build_vae("lcvae_conv_narrow", (1, 28, 28), latent_dim=2)
    assert [m.out_channels for m in model.encoder.modules() if isinstance(m, nn.Conv2d)] == [16, 32, 64, 128]
    assert [m.out_channels for m in model.decoder.modules() if isinstance(m, nn.ConvTranspose2d)] == [16, 1]
    model.eval()
    assert model.decode(model.encode(torch.rand(3, 1, 28, 28))[0]).shape == (3, 1, 28, 28)


def test_the_convnets_reject_image_sizes_they_cannot_take():
    from rvae.lcvae_nets import LCVAEConvDecoder, LCVAEConvEncoder
    with pytest.raises(ValueError, match="divisible by 4"):
        LCVAEConvDecoder((1, 30, 30), 10)
    with pytest.raises(ValueError, match="too small"):
        LCVAEConvEncoder((1, 8, 8), 10)
