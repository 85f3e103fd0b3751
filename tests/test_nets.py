"""rvae.nets: shapes, output ranges, clamped log-variances, the reparameterisation, gradients."""
from __future__ import annotations

import pytest
import torch

from rvae.gaussians import reparameterise
from rvae.nets import (ARCHITECTURES, LOGVAR_MAX, LOGVAR_MIN, VAE, ConvDecoder, ConvEncoder, GaussianEncoder,
                       MLPEncoder, TanhMLPDecoder, TanhMLPEncoder, build_vae)

ARCHS = list(ARCHITECTURES)


@pytest.fixture(autouse=True)
def _seeded():
    with torch.random.fork_rng():
        torch.manual_seed(0)  # initialisation only; the global RNG is restored afterwards
        yield


@pytest.mark.parametrize("architecture", ARCHS)
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_and_ranges(architecture, channels):
    model = build_vae(architecture, (channels, 28, 28), latent_dim=8)
    assert isinstance(model, VAE) and isinstance(model.encoder, GaussianEncoder)
    assert model.latent_dim == 8 and model.observation_variance == 0.5
    x = torch.rand(5, channels, 28, 28, generator=torch.Generator().manual_seed(1))
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (5, 8)
    x_mean, mu2, logvar2, z = model(x, generator=torch.Generator().manual_seed(2))
    assert x_mean.shape == x.shape and z.shape == (5, 8)
    assert torch.equal(mu, mu2) and torch.equal(logvar, logvar2)
    assert 0 <= x_mean.min() and x_mean.max() <= 1
    decoded = model.decode(torch.randn(4, 8, generator=torch.Generator().manual_seed(3)) * 100)
    assert decoded.shape == (4, channels, 28, 28) and 0 <= decoded.min() and decoded.max() <= 1


def test_conv_matches_appendix_f_and_works_at_64():
    encoder = ConvEncoder((3, 28, 28), 32)
    convs = [m for m in encoder.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [8, 16, 32, 64, 128, 256, 512]
    assert [c.stride[0] for c in convs] == [2, 1, 2, 1, 2, 1, 2]
    assert all(c.kernel_size == (3, 3) for c in convs)
    assert encoder.feature_shape == (512, 2, 2)
    deconvs = [m for m in ConvDecoder((3, 28, 28), 32).modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [d.out_channels for d in deconvs] == [64, 32, 3] and [d.stride[0] for d in deconvs] == [1, 2, 1]
    model = build_vae("conv", (3, 64, 64), latent_dim=16).eval()
    x = torch.rand(2, 3, 64, 64)
    x_mean, mu, _, _ = model(x)
    assert x_mean.shape == x.shape and mu.shape == (2, 16)


def test_mlp_has_four_hidden_layers_of_200():
    encoder = MLPEncoder((1, 28, 28), 32)
    linears = [m for m in encoder.modules() if isinstance(m, torch.nn.Linear)]
    assert [m.out_features for m in linears] == [200, 200, 200, 200, 64]
    assert linears[0].in_features == 784


def test_tanh_mlp_matches_the_local_geometry_supplement():
    encoder, decoder = TanhMLPEncoder((1, 28, 28), 32), TanhMLPDecoder((1, 28, 28), 32)
    widths = [m.out_features for m in encoder.modules() if isinstance(m, torch.nn.Linear)]
    assert widths == [256, 256, 512, 32, 64]                  # the last: two 32 x 32 maps (mean, log-variance)
    assert [m.out_features for m in decoder.modules() if isinstance(m, torch.nn.Linear)] == [32, 512, 256, 256, 784]
    for net in (encoder, decoder):                            # Linear -> BatchNorm -> tanh, every hidden layer
        kinds = [type(m).__name__ for m in net.body if not isinstance(m, torch.nn.Flatten)]
        assert kinds == ["Linear", "BatchNorm1d", "Tanh"] * 4 + ["Linear"]


@pytest.mark.parametrize("architecture", ARCHS)
def test_logvar_is_finite_and_clamped_for_extreme_inputs(architecture):
    model = build_vae(architecture, (1, 28, 28), latent_dim=4).eval()
    with torch.no_grad():
        last = [m for m in model.encoder.modules() if isinstance(m, torch.nn.Linear)][-1]
        last.weight.mul_(1e4)  # push the raw log-variances far out of range
        for x in (torch.zeros(2, 1, 28, 28), torch.ones(2, 1, 28, 28), torch.full((2, 1, 28, 28), 1e3)):
            mu, logvar = model.encode(x)
            assert torch.isfinite(logvar).all() and torch.isfinite(logvar.exp()).all()
            assert LOGVAR_MIN <= logvar.min() and logvar.max() <= LOGVAR_MAX
    assert (logvar == LOGVAR_MIN).any() or (logvar == LOGVAR_MAX).any()  # the clamp was exercised


def test_reparameterised_samples_have_the_encoder_moments():
    mu = torch.tensor([[0.5, -2.0, 3.0]])
    logvar = torch.tensor([[0.0, 2 * torch.log(torch.tensor(0.1)).item(), 2 * torch.log(torch.tensor(3.0)).item()]])
    z = reparameterise(mu.expand(20000, 3), logvar.expand(20000, 3), torch.Generator().manual_seed(0))
    std = torch.tensor([1.0, 0.1, 3.0])
    assert torch.allclose(z.mean(0), mu[0], atol=4 * (std / 20000 ** 0.5).max().item())
    assert torch.allclose(z.std(0), std, rtol=0.03)
    again = reparameterise(mu.expand(20000, 3), logvar.expand(20000, 3), torch.Generator().manual_seed(0))
    assert torch.equal(again, z)  # the generator alone fixes the noise
    other = reparameterise(mu.expand(20000, 3), logvar.expand(20000, 3), torch.Generator().manual_seed(1))
    assert not torch.equal(other, z)


def test_forward_leaves_global_rng_alone_with_a_generator():
    model = build_vae("mlp", (1, 28, 28), latent_dim=4)
    x = torch.rand(3, 1, 28, 28)
    state = torch.get_rng_state()
    model(x, generator=torch.Generator().manual_seed(0))
    assert torch.equal(state, torch.get_rng_state())


@pytest.mark.parametrize("architecture", ARCHS)
def test_gradient_reaches_every_parameter(architecture):
    model = build_vae(architecture, (3, 28, 28), latent_dim=6)
    x = torch.rand(4, 3, 28, 28)
    x_mean, mu, logvar, _ = model(x, generator=torch.Generator().manual_seed(0))
    loss = (x_mean - x).pow(2).sum() + (mu.pow(2) + logvar.exp() - logvar).sum()
    loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_unknown_architecture_and_bad_arguments():
    with pytest.raises(ValueError, match="valid: mlp, tanh_mlp, conv"):
        build_vae("resnet")
    with pytest.raises(ValueError, match="even"):
        build_vae("conv", (1, 27, 27))
    with pytest.raises(ValueError, match="observation_variance"):
        build_vae("mlp", observation_variance=0.0)
