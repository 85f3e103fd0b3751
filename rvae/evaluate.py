"""The downstream robustness protocol of Smooth Encoders (sec. 4).

1. Freeze a trained encoder and take its *means* as the representation.
2. Train a linear probe on those features with standard (not adversarial) training.
3. Attack encoder-mean -> probe with untargeted PGD; an example is robust only if it is
   classified correctly and no restart flips it. Adversarial accuracy = robust fraction.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from rvae.attacks import robust_mask
from rvae.nets import evaluation_mode


@torch.no_grad()
def encoder_means(model: nn.Module, images: Tensor, batch_size: int = 512, device: str | torch.device = "cpu") -> Tensor:
    """The encoder's mean for every image, (N, d), computed in eval mode on ``device``."""
    with evaluation_mode(model):
        means = [model.encode(images[i:i + batch_size].to(device))[0].cpu() for i in range(0, len(images), batch_size)]
    return torch.cat(means)


def train_linear_probe(features: Tensor, labels: Tensor, num_classes: int, epochs: int = 100,
                       learning_rate: float = 1e-2, weight_decay: float = 1e-4, batch_size: int = 256,
                       seed: int = 0) -> nn.Linear:
    """A linear classifier on frozen features, trained with Adam on the cross-entropy (no attacks)."""
    generator = torch.Generator().manual_seed(seed)
    probe = nn.Linear(features.shape[1], num_classes)
    with torch.no_grad():
        probe.weight.copy_(0.01 * torch.randn(probe.weight.shape, generator=generator))
        probe.bias.zero_()
    optimiser = torch.optim.Adam(probe.parameters(), lr=learning_rate, weight_decay=weight_decay)
    for _ in range(epochs):
        order = torch.randperm(len(features), generator=generator)
        for start in range(0, len(features), batch_size):
            index = order[start:start + batch_size]
            loss = nn.functional.cross_entropy(probe(features[index]), labels[index])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return probe.eval()


@torch.no_grad()
def reconstruction_error(model: nn.Module, images: Tensor, batch_size: int = 512,
                         device: str | torch.device = "cpu") -> float:
    """Mean over images of the summed squared error ||x - g(mu(x))||^2 (pixels in [0, 1]), eval mode.

    The decoder is applied to the encoder's mean, the deterministic reconstruction.
    """
    total = 0.0
    with evaluation_mode(model):
        for i in range(0, len(images), batch_size):
            x = images[i:i + batch_size].to(device)
            total += (model.decode(model.encode(x)[0]) - x).pow(2).flatten(1).sum(1).sum().item()
    return total / len(images)


@torch.no_grad()
def probe_accuracy(probe: nn.Module, features: Tensor, labels: Tensor) -> float:
    """Fraction of correctly classified feature vectors."""
    return (probe(features).argmax(1) == labels).float().mean().item()


@dataclass
class RobustnessCurve:
    """Adversarial accuracy of one representation and task at several attack radii, with each test
    image's outcome (so that two curves on the same images can be compared image by image)."""
    radii: list[float]
    accuracy: list[float]            # accuracy[0] at radius 0 is the nominal accuracy
    iterations: int
    restarts: int
    robust: list[Tensor] | None = None   # per radius: (N,) bool, correct and not flipped by the attack

    def at(self, radius: float) -> float:
        return self.accuracy[self.radii.index(radius)]

    def robust_at(self, radius: float) -> Tensor:
        """(N,) bool: which test images stay correctly classified under the attack of this radius."""
        if self.robust is None:
            raise ValueError("this curve was stored without per-image outcomes")
        return self.robust[self.radii.index(radius)]


def robustness_curve(model: nn.Module, probe: nn.Module, images: Tensor, labels: Tensor, radii: list[float],
                     iterations: int = 100, restarts: int = 10, batch_size: int = 250, seed: int = 0,
                     device: str | torch.device = "cpu") -> RobustnessCurve:
    """Adversarial accuracy of encoder-mean -> probe against L-inf PGD at each radius."""
    model.eval().to(device)
    probe = probe.to(device)

    def encode_mean(x: Tensor) -> Tensor:
        return model.encode(x)[0]

    masks = []
    for radius in radii:
        generator = torch.Generator().manual_seed(seed)
        masks.append(robust_mask(encode_mean, probe, images.to(device), labels.to(device), radius,
                                 iterations, restarts, batch_size=batch_size, generator=generator).cpu())
    return RobustnessCurve(list(radii), [int(mask.sum()) / len(mask) for mask in masks], iterations, restarts, masks)


def label_subset(labels: Tensor, fraction: float, seed: int = 0) -> Tensor:
    """Indices of a class-stratified random ``fraction`` of the examples (at least one per class)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for label in labels.unique():
        members = torch.nonzero(labels == label).squeeze(1)
        keep = max(1, round(fraction * len(members)))
        chosen.append(members[torch.randperm(len(members), generator=generator)[:keep]])
    return torch.cat(chosen).sort().values


@dataclass
class TaskEvaluation:
    """One downstream task on one representation: the probe, its nominal and adversarial accuracy."""
    probe: nn.Linear
    curve: RobustnessCurve


def evaluate_representation(model: nn.Module, probe_images: Tensor, probe_labels: dict[str, Tensor],
                            test_images: Tensor, test_labels: dict[str, Tensor], radii: list[float],
                            iterations: int, restarts: int, probe_epochs: int = 100, seed: int = 0,
                            device: str | torch.device = "cpu") -> dict[str, TaskEvaluation]:
    """The whole protocol for each task: features, probe, robustness curve over ``radii``."""
    features = encoder_means(model, probe_images, device=device)
    evaluations = {}
    for task, labels in probe_labels.items():
        probe = train_linear_probe(features, labels, int(labels.max()) + 1, epochs=probe_epochs, seed=seed)
        curve = robustness_curve(model, probe, test_images, test_labels[task], radii, iterations, restarts,
                                 seed=seed, device=device)
        evaluations[task] = TaskEvaluation(probe, curve)
    return evaluations
