"""rvae.geometry: the pullback metric of an encoder, each piece checked against an independent computation.

Batched Jacobians against central finite differences and a per-sample autograd loop; the spectrum
from the (2d x N) factor against numpy's eigvalsh of the explicitly formed N x N metric (flat and
decoder-curved); the top direction against random search; a linear Gaussian encoder against its
closed form; the entropies on spectra whose answer is known; the attack's box and step bounds;
BatchNorm modes and running statistics left as they were.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from rvae import geometry
from rvae.geometry import (PullbackSpectrum, eigen_attack, encoder_jacobians, latent_displacement, metric_factor,
                           mse_along_directions, pullback_eigenvalues, pullback_spectrum, robustness_scores,
                           spectral_radius, von_neumann_entropy)
from rvae.nets import build_vae

pytestmark = pytest.mark.usefixtures("double_precision")

SHAPE = (1, 4, 4)          # N = 16 input dimensions
N = math.prod(SHAPE)


def seeded_vae(architecture: str, latent_dim: int = 3, seed: int = 0) -> nn.Module:
    """A small VAE in float64; conv BatchNorm layers carry running statistics of one random batch."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = build_vae(architecture, SHAPE, latent_dim=latent_dim, **({"hidden": 32} if architecture == "mlp" else {}))
        if architecture in ("conv", "tanh_mlp"):   # BatchNorm: give it non-trivial statistics
            for module in model.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.momentum = None                       # cumulative average: exact batch statistics
            with torch.no_grad():
                model.train()(torch.rand(64, *SHAPE))
    return model


def images(batch: int, seed: int) -> torch.Tensor:
    return torch.rand(batch, *SHAPE, generator=torch.Generator().manual_seed(seed))


def mean_and_std(model: nn.Module):
    """One flattened input (N,) -> (2, d): the encoder's mean and standard deviation (model in eval mode)."""
    def f(flat: torch.Tensor) -> torch.Tensor:
        mu, logvar = model.encode(flat.view(1, *SHAPE))
        return torch.stack((mu[0], (0.5 * logvar[0]).exp()))
    return f


def explicit_metric(model: nn.Module, x: torch.Tensor, curvature: str) -> np.ndarray:
    """G (B, N, N) formed explicitly from per-sample autograd Jacobians (eq. 4 or supplement eq. 11)."""
    model.eval()
    metrics = []
    for image in x:
        flat = image.flatten()
        jac = torch.autograd.functional.jacobian(mean_and_std(model), flat)          # (2, d, N)
        j_mu, j_sigma = jac[0], jac[1]
        if curvature == "flat":
            g_z = torch.eye(j_mu.shape[0])
        else:
            mu = model.encode(image[None])[0][0]
            j_g = torch.autograd.functional.jacobian(lambda z: model.decode(z[None]).flatten(), mu)   # (N, d)
            g_z = j_g.T @ j_g
        metrics.append((j_mu.T @ g_z @ j_mu + j_sigma.T @ g_z @ j_sigma).numpy())
    return np.stack(metrics)


class LinearGaussianVAE(nn.Module):
    """mu = A x, logvar = constant (independent of x), decoder mean W z (linear, no sigmoid)."""

    def __init__(self, a: torch.Tensor, w: torch.Tensor, logvar: float = -1.0):
        super().__init__()
        self.a, self.w = nn.Parameter(a), nn.Parameter(w)
        self.logvar = nn.Parameter(torch.full((a.shape[0],), logvar))
        self.latent_dim = a.shape[0]

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x.flatten(1) @ self.a.T, self.logvar.expand(len(x), -1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return (z @ self.w.T).view(len(z), *SHAPE)


def linear_vae(latent_dim: int = 3, seed: int = 0, decoder: torch.Tensor | None = None) -> LinearGaussianVAE:
    generator = torch.Generator().manual_seed(seed)
    a = torch.randn(latent_dim, N, generator=generator)
    w = decoder if decoder is not None else torch.randn(N, latent_dim, generator=generator)
    return LinearGaussianVAE(a, w)


# --- Jacobians --------------------------------------------------------------------------------

@pytest.mark.parametrize("architecture", ["mlp", "conv", "tanh_mlp"])
def test_batched_jacobians_match_finite_differences_and_a_per_sample_loop(architecture):
    model = seeded_vae(architecture)
    x = images(5, seed=1)
    j_mu, j_sigma = encoder_jacobians(model, x, batch_size=2)                   # chunks of 2, 2, 1
    assert j_mu.shape == j_sigma.shape == (5, 3, N)
    model.eval()
    f, h = mean_and_std(model), 1e-6
    for i, image in enumerate(x):
        flat = image.flatten()
        loop = torch.autograd.functional.jacobian(f, flat)                      # (2, d, N)
        basis = torch.eye(N) * h
        central = torch.stack([(f(flat + e) - f(flat - e)) / (2 * h) for e in basis], dim=-1)
        for batched, k in ((j_mu, 0), (j_sigma, 1)):
            scale = loop[k].abs().max()
            assert scale > 0
            assert torch.allclose(batched[i], loop[k], rtol=1e-10, atol=1e-12 * scale)
            assert torch.allclose(batched[i], central[k], rtol=0, atol=1e-6 * scale)


# --- spectrum against the explicit N x N metric ------------------------------------------------

@pytest.mark.parametrize("architecture", ["mlp", "conv", "tanh_mlp"])
@pytest.mark.parametrize("curvature", ["flat", "decoder"])
def test_spectrum_equals_eigvalsh_of_the_explicit_metric(architecture, curvature):
    model = seeded_vae(architecture)
    x = images(4, seed=2)
    spectrum = pullback_spectrum(model, x, curvature, batch_size=3)
    k = 2 * model.latent_dim
    assert spectrum.eigenvalues.shape == (4, k) and spectrum.directions.shape == (4, k, N)
    g = explicit_metric(model, x, curvature)
    for i in range(len(x)):
        reference = np.linalg.eigvalsh(g[i])[::-1]                              # descending, N of them
        top = reference[0]
        assert top > 0
        np.testing.assert_allclose(spectrum.eigenvalues[i].numpy(), reference[:k], rtol=1e-8, atol=1e-11 * top)
        np.testing.assert_allclose(reference[k:], 0.0, atol=1e-11 * top)        # rank <= 2d
        v = spectrum.directions[i].numpy()                                      # (k, N) rows
        np.testing.assert_allclose(v @ v.T, np.eye(k), atol=1e-10)
        residual = g[i] @ v.T - v.T * spectrum.eigenvalues[i].numpy()           # G v = lambda v, columnwise
        assert np.abs(residual).max() <= 1e-9 * top
    # the factor reproduces G itself, and eigenvalues alone agree with the spectrum
    factor = metric_factor(model, x, curvature)
    np.testing.assert_allclose((factor.transpose(1, 2) @ factor).numpy(), g, rtol=0, atol=1e-12 * np.abs(g).max())
    assert torch.allclose(pullback_eigenvalues(model, x, curvature), spectrum.eigenvalues, rtol=1e-10, atol=0)


def test_top_direction_maximises_the_quadratic_form():
    model = seeded_vae("mlp")
    x = images(2, seed=3)
    spectrum = pullback_spectrum(model, x, "flat", top=1)
    assert spectrum.eigenvalues.shape == (2, 1) and spectrum.directions.shape == (2, 1, N)
    g = torch.from_numpy(explicit_metric(model, x, "flat"))
    eta = torch.randn(20_000, N, generator=torch.Generator().manual_seed(4))
    eta = eta / eta.norm(dim=1, keepdim=True)
    for i in range(len(x)):
        lam, v = spectrum.eigenvalues[i, 0], spectrum.directions[i, 0]
        random_values = torch.einsum("sn,nm,sm->s", eta, g[i], eta)
        assert random_values.max() <= lam * (1 + 1e-12)
        assert random_values.max() > 0.3 * lam                                 # the search is not vacuous
        assert torch.isclose(v @ g[i] @ v, lam, rtol=1e-10)


def test_directions_have_their_largest_component_positive():
    spectrum = pullback_spectrum(seeded_vae("mlp"), images(3, seed=5), "decoder")
    largest = spectrum.directions.gather(-1, spectrum.directions.abs().argmax(-1, keepdim=True))
    assert (largest > 0).all()


# --- a linear Gaussian encoder: closed forms ----------------------------------------------------

def test_linear_gaussian_encoder_has_the_closed_form_spectrum_and_scores():
    model = linear_vae()
    x = images(3, seed=6)
    j_mu, j_sigma = encoder_jacobians(model, x)
    assert torch.equal(j_sigma, torch.zeros_like(j_sigma))                     # constant logvar: J_sigma = 0
    assert torch.allclose(j_mu, model.a.detach().expand(3, -1, -1), rtol=1e-14, atol=1e-14)
    s2 = torch.linalg.svdvals(model.a.detach()).square()                       # G = A^T A
    p = s2 / s2.sum()
    eigenvalues = pullback_eigenvalues(model, x)
    assert torch.allclose(eigenvalues[:, :3], s2.expand(3, -1), rtol=1e-12)
    assert torch.allclose(eigenvalues[:, 3:], torch.zeros(3, 3), atol=1e-12 * s2[0])
    scores = robustness_scores(model, x)
    assert torch.allclose(scores["spectral_radius"], s2[0].expand(3), rtol=1e-12)
    assert torch.allclose(scores["entropy"], -(p * p.log()).sum().expand(3), rtol=1e-10)
    assert torch.allclose(scores["entropy_unnormalised"], -(s2 * s2.log()).sum().expand(3), rtol=1e-10)


def test_decoder_curvature_of_a_linear_decoder():
    a_model = linear_vae()
    x = images(2, seed=7)
    flat = pullback_eigenvalues(a_model, x, "flat")
    # W = c Q with orthonormal columns: G_z = c^2 I, so the curved spectrum is c^2 times the flat one
    q, _ = torch.linalg.qr(torch.randn(N, 3, generator=torch.Generator().manual_seed(8)))
    scaled = LinearGaussianVAE(a_model.a.detach(), 3.0 * q)
    assert torch.allclose(pullback_eigenvalues(scaled, x, "decoder"), 9.0 * flat, rtol=1e-12, atol=1e-12 * flat.max())
    # a general W: G = A^T W^T W A, eigenvalues = squared singular values of W A
    general = linear_vae(seed=9)
    expected = torch.linalg.svdvals(general.w.detach() @ general.a.detach()).square()[:3]
    assert torch.allclose(pullback_eigenvalues(general, x, "decoder")[:, :3], expected.expand(2, -1), rtol=1e-10)
    assert not torch.allclose(pullback_eigenvalues(general, x, "flat")[:, :3], expected.expand(2, -1), rtol=1e-3)


# --- entropies ------------------------------------------------------------------------------------

def test_entropy_edge_cases():
    rank_one = torch.tensor([[5.0, 0.0, 0.0, 0.0]])
    assert von_neumann_entropy(rank_one).item() == 0.0
    assert math.isclose(von_neumann_entropy(rank_one, normalise=False).item(), -5 * math.log(5))
    for k in (1, 2, 7):
        isotropic = torch.full((1, k), 0.3)
        assert math.isclose(von_neumann_entropy(isotropic).item(), math.log(k), abs_tol=1e-14)
    spectrum = torch.tensor([[4.0, 2.0, 0.5, 0.1, 0.0], [1.0, 1e-3, 1e-3, 0.0, 0.0]])
    for c in (1e-3, 0.7, 25.0):
        assert torch.allclose(von_neumann_entropy(c * spectrum), von_neumann_entropy(spectrum), rtol=1e-13)
        predicted = c * von_neumann_entropy(spectrum, False) - c * math.log(c) * spectrum.sum(-1)
        assert torch.allclose(von_neumann_entropy(c * spectrum, False), predicted, rtol=1e-12)
    assert von_neumann_entropy(spectrum[:1], normalise=False).item() < 0                # eigenvalues > 1
    assert torch.equal(spectral_radius(spectrum), torch.tensor([4.0, 1.0]))
    assert torch.isnan(von_neumann_entropy(torch.zeros(1, 3))).all()                  # no normalised spectrum
    assert von_neumann_entropy(torch.tensor([[1.0, 1.0, -1e-17]])).item() == pytest.approx(math.log(2))
    with pytest.raises(ValueError, match=">= 0"):
        von_neumann_entropy(torch.tensor([[1.0, -0.1]]))


def test_scaling_the_metric_scales_the_scores_as_predicted():
    model = linear_vae()
    x = images(2, seed=10)
    c = 16.0                                                                    # A -> 4 A: G -> 16 G
    big = LinearGaussianVAE(4.0 * model.a.detach(), model.w.detach())
    small_scores, big_scores = robustness_scores(model, x), robustness_scores(big, x)
    assert torch.allclose(big_scores["spectral_radius"], c * small_scores["spectral_radius"], rtol=1e-12)
    assert torch.allclose(big_scores["entropy"], small_scores["entropy"], rtol=1e-10)
    trace = pullback_eigenvalues(model, x).sum(-1)
    assert torch.allclose(big_scores["entropy_unnormalised"],
                          c * small_scores["entropy_unnormalised"] - c * math.log(c) * trace, rtol=1e-10)


# --- attacks --------------------------------------------------------------------------------------

def test_eigen_attack_stays_in_the_box_and_moves_at_most_the_step():
    generator = torch.Generator().manual_seed(11)
    x = (torch.rand(6, *SHAPE, generator=generator) * 1.6 - 0.3).clamp(0, 1)   # many pixels exactly 0 or 1
    v = torch.randn(6, N, generator=generator)
    v = v / v.norm(dim=1, keepdim=True)
    model = seeded_vae("mlp")
    for step in (0.0, 0.05, 0.5, 3.0):
        for chooser in (None, model):
            attacked = eigen_attack(x, v, step, chooser)
            assert attacked.shape == x.shape and attacked.min() >= 0 and attacked.max() <= 1
            assert ((attacked - x).flatten(1).norm(dim=1) <= step + 1e-12).all()
    clipped = (eigen_attack(x, v, 0.5) - x).flatten(1).norm(dim=1)
    assert (clipped < 0.5 - 1e-3).any()                                         # clipping did shorten some steps
    interior = torch.full((6, *SHAPE), 0.5)
    assert torch.allclose((eigen_attack(interior, v, 0.4) - interior).flatten(1).norm(dim=1), torch.full((6,), 0.4))


def test_eigen_attack_takes_the_sign_that_moves_the_code_further():
    model = seeded_vae("mlp")
    x = (images(8, seed=12) * 1.6 - 0.3).clamp(0, 1)
    v = pullback_spectrum(model, x, top=1).directions[:, 0]
    chosen = eigen_attack(x, v, 0.8, model)
    plus, minus = eigen_attack(x, v, 0.8), eigen_attack(x, -v, 0.8)
    model.eval()
    with torch.no_grad():
        mu = model.encode(x)[0]
        moved = {name: (model.encode(candidate)[0] - mu).norm(dim=1)
                 for name, candidate in (("chosen", chosen), ("plus", plus), ("minus", minus))}
    assert torch.allclose(moved["chosen"], torch.maximum(moved["plus"], moved["minus"]))
    took_minus = moved["minus"] > moved["plus"]
    assert took_minus.any() and (~took_minus).any()                             # both signs occur here
    assert torch.equal(chosen[took_minus], minus[took_minus]) and torch.equal(chosen[~took_minus], plus[~took_minus])


def test_latent_displacement_is_linear_in_the_step_for_a_linear_encoder():
    model = linear_vae()
    x = torch.full((4, *SHAPE), 0.5)                                            # no clipping for steps <= 0.5
    spectrum = pullback_spectrum(model, x)
    steps = [0.0, 0.01, 0.1, 0.25, 0.5]
    for choose_sign in (True, False):
        moved = latent_displacement(model, x, spectrum.directions[:, 0], steps, choose_sign=choose_sign)
        expected = torch.tensor(steps) * spectrum.eigenvalues[0, 0].sqrt()      # ||A v|| = s_max
        assert torch.allclose(moved, expected, rtol=1e-12, atol=1e-14)
        assert (moved.diff() > 0).all()
    second = latent_displacement(model, x, spectrum.directions[:, 1], steps)
    assert (second[1:] < moved[1:]).all()                                       # the top direction moves most


def test_mse_along_directions_matches_a_direct_computation():
    model = seeded_vae("mlp")
    x = images(5, seed=13)
    spectrum = pullback_spectrum(model, x, top=3)
    steps = torch.tensor([0.0, 0.3, 2.0])
    curves = mse_along_directions(model, x, spectrum, steps, n_directions=3, batch_size=2)
    assert curves.shape == (3, 3)
    model.eval()
    with torch.no_grad():
        for k in range(3):
            for j, step in enumerate(steps.tolist()):
                attacked = eigen_attack(x, spectrum.directions[:, k], step, model)
                direct = (x - model.decode(model.encode(attacked)[0])).pow(2).mean()
                assert torch.isclose(curves[k, j], direct, rtol=1e-12)
    assert torch.allclose(curves[:, 0], curves[0, 0].expand(3))                 # step 0: plain reconstruction


# --- modes, BatchNorm statistics and arguments ----------------------------------------------------

def test_batchnorm_models_come_back_in_their_mode_with_their_statistics():
    model = seeded_vae("conv")
    x = images(3, seed=14)
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    calls = [lambda: encoder_jacobians(model, x), lambda: pullback_spectrum(model, x, "decoder"),
             lambda: robustness_scores(model, x),
             lambda: latent_displacement(model, x, torch.zeros(3, N), [0.1]),
             lambda: eigen_attack(x, torch.zeros(3, N), 0.1, model)]
    for setting in ("train", "eval", "mixed"):
        model.train(setting != "eval")
        if setting == "mixed":
            model.decoder.eval()
        before = [m.training for m in model.modules()]
        for call in calls:
            call()
            assert [m.training for m in model.modules()] == before
    assert all(torch.equal(b, buffers[name]) for name, b in model.named_buffers())


def test_bad_arguments_raise_value_error():
    model = seeded_vae("mlp")
    x = images(2, seed=15)
    spectrum = pullback_spectrum(model, x)
    v = spectrum.directions[:, 0]
    with pytest.raises(ValueError, match="curvature"):
        pullback_spectrum(model, x, "riemannian")
    with pytest.raises(ValueError, match="curvature"):
        metric_factor(model, x, "hyperbolic")
    with pytest.raises(ValueError, match="step"):
        eigen_attack(x, v, -0.1)
    with pytest.raises(ValueError, match="step"):
        latent_displacement(model, x, v, [0.1, -1.0])
    with pytest.raises(ValueError, match="step"):
        mse_along_directions(model, x, spectrum, [float("nan")])
    with pytest.raises(ValueError, match="top"):
        pullback_spectrum(model, x, top=0)
    with pytest.raises(ValueError, match="top"):
        pullback_spectrum(model, x, top=7)                                      # 2d = 6
    with pytest.raises(ValueError, match="batch_size"):
        encoder_jacobians(model, x, batch_size=0)
    with pytest.raises(ValueError, match="n_directions"):
        mse_along_directions(model, x, PullbackSpectrum(spectrum.eigenvalues[:, :2], spectrum.directions[:, :2]),
                             [0.1], n_directions=5)
    with pytest.raises(ValueError, match="direction must be"):
        eigen_attack(x, v[:1], 0.1)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        robustness_scores(model, x.flatten(1))
    assert geometry.CURVATURES == ("flat", "decoder")


def test_first_crossing_interpolates_in_log_step():
    steps = [0.1, 1.0, 10.0]
    assert geometry.first_crossing(steps, [0.0, 1.0, 3.0], 2.0) == pytest.approx(math.sqrt(10.0))
    assert geometry.first_crossing(steps, [0.0, 1.0, 3.0], 1.0) == pytest.approx(1.0)
    assert geometry.first_crossing(steps, [5.0, 6.0, 7.0], 2.0) == 0.1
    assert geometry.first_crossing(steps, [0.0, 1.0, 3.0], 4.0) == math.inf
    with pytest.raises(ValueError, match="increasing"):
        geometry.first_crossing([1.0, 0.5], [0.0, 1.0], 0.5)
    with pytest.raises(ValueError, match="one length"):
        geometry.first_crossing([1.0, 2.0], [0.0], 0.5)


def test_per_image_steps_equal_one_call_per_image():
    model = seeded_vae("mlp")
    x = (images(5, seed=13) * 1.6 - 0.3).clamp(0, 1)
    v = pullback_spectrum(model, x, top=1).directions[:, 0]
    steps = torch.tensor([0.0, 0.1, 0.7, 2.0, 5.0], dtype=x.dtype)
    for chooser in (None, model):
        together = eigen_attack(x, v, steps, chooser)
        for i in range(5):
            alone = eigen_attack(x[i:i + 1], v[i:i + 1], float(steps[i]), chooser)
            assert torch.equal(together[i:i + 1], alone)
        assert ((together - x).flatten(1).norm(dim=1) <= steps + 1e-12).all()
    with pytest.raises(ValueError, match="shape"):
        eigen_attack(x, v, steps[:3])
    with pytest.raises(ValueError, match=">= 0"):
        eigen_attack(x, v, -steps)


def test_gram_route_agrees_with_the_svd_of_the_factor():
    torch.manual_seed(0)
    model = build_vae("mlp", (1, 28, 28), latent_dim=8).eval()
    x = torch.rand(6, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    factor = geometry.metric_factor(model, x)                              # (6, 16, 784)
    _, singular, vh = torch.linalg.svd(factor.double(), full_matrices=False)
    spectrum = geometry.pullback_spectrum(model, x, top=4)
    assert torch.allclose(spectrum.eigenvalues.double(), singular[:, :4].square(), rtol=1e-5, atol=0)
    assert torch.allclose(geometry.pullback_eigenvalues(model, x).double(), singular.square(),
                          rtol=1e-5, atol=1e-6 * float(singular.max() ** 2))
    cosines = (spectrum.directions.double() * vh[:, :4]).sum(-1).abs()   # same directions up to sign
    assert bool((cosines > 1 - 1e-6).all())
