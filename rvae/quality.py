"""Sample quality through torchmetrics: the Fréchet and kernel distances in the feature space of a
network the book trains itself, and the true FID when the Inception weights are on this machine.

torchmetrics' ``FrechetInceptionDistance`` and ``KernelInceptionDistance`` accept any ``nn.Module`` as
their ``feature`` network; with one they need neither torch-fidelity nor a download. The true FID
needs torch-fidelity's Inception weights, which cannot be downloaded here: :func:`inception_weights`
says whether they are present and :func:`inception_fid` computes the FID only then.
"""
from __future__ import annotations

import importlib.util
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor, nn

from rvae.errors import ParameterError

#: The file torch-fidelity (and so torchmetrics) downloads into torch.hub's checkpoint folder.
INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"


class FeatureNetwork(nn.Module):
    """``features(x)``, centred and divided by a scalar, as torchmetrics' feature network.

    The kernel distance's cubic kernel ``(a.b / d + 1)^3`` is meant for features of unit scale; raw
    ReLU activations of a classifier are far larger, which makes the statistic's variance huge.
    A fixed centre and scale (from reference images, not from the sets compared) fix that; the
    Fréchet distance changes by the factor 1 / scale^2 under it and keeps its ranking.
    """

    def __init__(self, features: Callable[[Tensor], Tensor], center: Tensor | None = None, scale: float = 1.0):
        super().__init__()
        if not scale > 0:
            raise ParameterError(f"the feature scale must be positive; got {scale}")
        self.features = features
        self.register_buffer("center", torch.zeros(()) if center is None else center.detach().float().clone())
        self.scale = float(scale)

    def forward(self, images: Tensor) -> Tensor:
        with torch.no_grad():
            return (self.features(images.float()) - self.center) / self.scale


def standardised(features: Callable[[Tensor], Tensor], reference: Tensor) -> FeatureNetwork:
    """A :class:`FeatureNetwork` whose outputs on ``reference`` images have mean 0 and a mean
    per-dimension variance of 1 (one scalar for all dimensions, so dead units stay dead)."""
    with torch.no_grad():
        values = features(reference.float())
    if values.shape[0] < 2:
        raise ParameterError(f"standardising needs at least 2 reference images; got {values.shape[0]}")
    return FeatureNetwork(features, values.mean(0), float(values.var(0).mean().sqrt()))


@dataclass(frozen=True)
class Quality:
    """One model's distances to the real images (in one feature space), with the sample sizes."""

    frechet: float            # Fréchet distance (biased upwards at finite n)
    kernel: float             # kernel distance: mean over subsets of the unbiased cubic-kernel MMD^2
    kernel_std: float         # its standard deviation over the subsets
    n_real: int
    n_fake: int


def _check_images(images: Tensor, name: str, shape: tuple[int, ...] | None = None) -> None:
    if not isinstance(images, Tensor) or images.dim() != 4:
        raise ParameterError(f"{name} must be a (N, C, H, W) image tensor; got "
                             f"{tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__}")
    if shape is not None and tuple(images.shape[1:]) != shape:
        raise ParameterError(f"{name} have shape {tuple(images.shape[1:])}, the real images {shape}")
    if images.shape[0] < 2:
        raise ParameterError(f"{name}: at least 2 images are needed; got {images.shape[0]}")


def distances(feature_net: nn.Module, real: Tensor, fake: Tensor, kid_subsets: int = 100,
              kid_subset_size: int = 1000, seed: int = 0) -> Quality:
    """Fréchet and kernel distance of ``fake`` from ``real`` images (both in [0, 1]) in
    ``feature_net``'s space, by torchmetrics. The kernel distance's subsets have
    min(kid_subset_size, n_real, n_fake) points and are drawn with ``seed`` (torchmetrics draws them
    from the global generator, which is forked and seeded here and left as it was)."""
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    _check_images(real, "real images")
    _check_images(fake, "generated images", tuple(real.shape[1:]))
    if kid_subsets < 1 or kid_subset_size < 2:
        raise ParameterError(f"the kernel distance needs at least 1 subset of 2 points; "
                             f"got {kid_subsets} of {kid_subset_size}")
    with torch.random.fork_rng(devices=[]):     # torchmetrics draws a probe input and the subsets globally
        torch.manual_seed(seed)
        fid = FrechetInceptionDistance(feature=feature_net, input_img_size=tuple(real.shape[1:]), normalize=True)
        with warnings.catch_warnings():      # KID warns that it keeps every feature: a few thousand rows here
            warnings.filterwarnings("ignore", message="Metric `Kernel Inception Distance` will save all extracted")
            kid = KernelInceptionDistance(feature=feature_net, subsets=kid_subsets,
                                          subset_size=min(kid_subset_size, len(real), len(fake)), normalize=True)
        for metric in (fid, kid):
            metric.update(real, real=True)
            metric.update(fake, real=False)
        kid_mean, kid_std = kid.compute()
    return Quality(float(fid.compute()), float(kid_mean), float(kid_std), len(real), len(fake))


def inception_weights() -> Path | None:
    """The Inception weights of the true FID if torch-fidelity is installed and its weights file is in
    torch.hub's checkpoint folder (nothing is downloaded); None otherwise."""
    if importlib.util.find_spec("torch_fidelity") is None:
        return None
    path = Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE
    return path if path.is_file() else None


def inception_fid(real: Tensor, fake: Tensor) -> float | None:
    """The true FID (Inception-v3 pool features, 2048) of ``fake`` against ``real`` images in [0, 1],
    grey images repeated to three channels; None when :func:`inception_weights` finds no weights."""
    path = inception_weights()
    if path is None:
        return None
    from torchmetrics.image.fid import FrechetInceptionDistance

    _check_images(real, "real images")
    _check_images(fake, "generated images", tuple(real.shape[1:]))
    fid = FrechetInceptionDistance(feature=2048, normalize=True, feature_extractor_weights_path=str(path))
    for images, is_real in ((real, True), (fake, False)):
        for batch in images.split(200):
            fid.update(batch.expand(-1, 3, -1, -1) if batch.shape[1] == 1 else batch, real=is_real)
    return float(fid.compute())
