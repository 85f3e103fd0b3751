"""rvae.quality: torchmetrics' Fréchet and kernel distances with the book's feature network, and the
true FID's guard (no Inception weights on this machine)."""
import numpy as np
import pytest
import torch

from rvae import fidelity, quality
from rvae.errors import ParameterError


def flat(images):
    return images.flatten(1)


def gaussian_images(n, shift=0.0, seed=0):
    """(n, 1, 4, 4) 'images' whose 16 pixels are independent Gaussians of std 0.1 around 0.5 + shift."""
    generator = torch.Generator().manual_seed(seed)
    return 0.5 + shift + 0.1 * torch.randn(n, 1, 4, 4, generator=generator)


def test_the_frechet_distance_equals_ours_and_the_gaussian_closed_form():
    real, fake = gaussian_images(4000, seed=1), gaussian_images(4000, shift=0.05, seed=2)
    net = quality.FeatureNetwork(flat)
    result = quality.distances(net, real, fake, kid_subsets=5, kid_subset_size=500)
    ours = fidelity.frechet_distance(flat(fake).double().numpy(), flat(real).double().numpy())
    assert result.frechet == pytest.approx(ours, rel=1e-4)
    # equal covariances: FD = ||mean shift||^2 = 16 * 0.05^2 = 0.04, plus the finite-n bias
    assert result.frechet == pytest.approx(0.04, abs=0.01)
    assert (result.n_real, result.n_fake) == (4000, 4000)


def test_the_kernel_distance_is_near_zero_for_one_distribution_and_grows_with_a_shift():
    net = quality.standardised(flat, gaussian_images(2000, seed=3))
    real = gaussian_images(2000, seed=4)
    same = quality.distances(net, real, gaussian_images(2000, seed=5), kid_subsets=20, kid_subset_size=500)
    shifted = [quality.distances(net, real, gaussian_images(2000, shift=s, seed=6), kid_subsets=20,
                                 kid_subset_size=500).kernel for s in (0.02, 0.05)]
    assert abs(same.kernel) < 3 * same.kernel_std + 1e-3
    assert same.kernel < shifted[0] < shifted[1]


def test_standardised_features_have_zero_mean_and_unit_mean_variance_on_the_reference():
    reference = gaussian_images(500, seed=7) * torch.linspace(1, 3, 16).reshape(1, 1, 4, 4)
    net = quality.standardised(flat, reference)
    values = net(reference)
    assert np.allclose(values.mean(0).numpy(), 0, atol=1e-5)
    assert float(values.var(0).mean()) == pytest.approx(1.0, rel=1e-5)


def test_scaling_the_features_divides_the_frechet_distance_by_the_square():
    real, fake = gaussian_images(1000, seed=8), gaussian_images(1000, shift=0.1, seed=9)
    plain = quality.distances(quality.FeatureNetwork(flat), real, fake, kid_subsets=2, kid_subset_size=100)
    scaled = quality.distances(quality.FeatureNetwork(flat, scale=4.0), real, fake, kid_subsets=2, kid_subset_size=100)
    assert scaled.frechet == pytest.approx(plain.frechet / 16, rel=1e-3)


@pytest.mark.parametrize("fake, message", [
    (torch.rand(10, 1, 5, 5), "generated images have shape"),
    (torch.rand(10, 16), "generated images must be a (N, C, H, W)"),
    (torch.rand(1, 1, 4, 4), "at least 2 images"),
])
def test_bad_image_sets_are_refused_with_one_clear_line(fake, message):
    with pytest.raises(ParameterError, match=message.replace("(", r"\(").replace(")", r"\)")) as error:
        quality.distances(quality.FeatureNetwork(flat), gaussian_images(10), fake)
    assert "\n" not in str(error.value)


def test_the_true_fid_is_computed_only_where_the_inception_weights_are(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(quality.importlib.util, "find_spec", lambda name: object())
    assert quality.inception_weights() is None          # torch-fidelity "installed", no weights file
    assert quality.inception_fid(gaussian_images(4), gaussian_images(4)) is None
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / quality.INCEPTION_FILE).write_bytes(b"")
    assert quality.inception_weights() == tmp_path / "checkpoints" / quality.INCEPTION_FILE
    monkeypatch.setattr(quality.importlib.util, "find_spec", lambda name: None)
    assert quality.inception_weights() is None          # weights present, torch-fidelity missing


def test_the_kernel_distance_subsets_follow_the_seed_and_leave_the_global_generator_alone():
    net = quality.FeatureNetwork(flat)
    real, fake = gaussian_images(300, seed=10), gaussian_images(300, shift=0.02, seed=11)
    state = torch.random.get_rng_state()
    first, again, other = (quality.distances(net, real, fake, kid_subsets=3, kid_subset_size=50, seed=s)
                           for s in (1, 1, 2))
    assert torch.equal(torch.random.get_rng_state(), state)
    assert first.kernel == again.kernel and first.kernel_std == again.kernel_std
    assert first.kernel != other.kernel
