"""An independent check of our downstream attack: does an attack library find more than we do?

Foolbox's ``LinfPGD`` (preferred: a clean dependency) or torchattacks' ``PGD`` runs on the same
encoder-mean -> probe classifier with the same radius, step size and number of iterations and one
random start (neither library has restarts), and we count the correctly classified images that each
attack turns into misclassified ones. A correct and at-least-as-strong attack of ours finds at
least as many.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import Tensor, nn

from rvae.attacks import default_step_size, downstream_attack


@dataclass
class CrossCheck:
    """Adversarial examples found by our PGD and by a library's, per radius, on ``attacked`` images."""
    library: str
    attacked: int
    radii: list[float] = field(default_factory=list)
    ours: list[int] = field(default_factory=list)
    theirs: list[int] = field(default_factory=list)


class _MeanThenProbe(nn.Module):
    """encoder mean followed by the probe, as one classifier for the libraries."""

    def __init__(self, encode_mean: Callable[[Tensor], Tensor], probe: nn.Module):
        super().__init__()
        self.encode_mean, self.probe = encode_mean, probe

    def forward(self, x: Tensor) -> Tensor:
        return self.probe(self.encode_mean(x))


def _library_attack(classifier: nn.Module, x: Tensor, y: Tensor, eps: float, step: float, iterations: int,
                    seed: int) -> tuple[str, Tensor]:
    """The library's adversarial examples, or raise ImportError when none is installed."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            import foolbox
        except ImportError:
            foolbox = None
        if foolbox is not None:
            model = foolbox.PyTorchModel(classifier, bounds=(0, 1), device=x.device)
            attack = foolbox.attacks.LinfPGD(abs_stepsize=step, steps=iterations, random_start=True)
            _, adversarial, _ = attack(model, x, y, epsilons=eps)
            return f"foolbox {foolbox.__version__}", adversarial
        import torchattacks
        attack = torchattacks.PGD(classifier, eps=eps, alpha=step, steps=iterations, random_start=True)
        return f"torchattacks {torchattacks.__version__}", attack(x, y)


def library_cross_check(encode_mean: Callable[[Tensor], Tensor], probe: nn.Module, images: Tensor, labels: Tensor,
                        radii: list[float], iterations: int, seed: int = 0,
                        device: str | torch.device = "cpu") -> CrossCheck:
    """Count adversarial examples found by ours and by the library at each radius (one start each)."""
    classifier = _MeanThenProbe(encode_mean, probe).eval().to(device)
    x, y = images.to(device), labels.to(device)
    with torch.no_grad():
        correct = classifier(x).argmax(1) == y
    result = CrossCheck(library="none installed", attacked=int(correct.sum()))
    for eps in radii:
        step = default_step_size(eps, iterations)
        ours = downstream_attack(encode_mean, probe, x, y, eps, iterations=iterations, restarts=1, step_size=step,
                                 generator=torch.Generator().manual_seed(seed))
        try:
            result.library, adversarial = _library_attack(classifier, x, y, eps, step, iterations, seed)
        except ImportError:
            return result
        with torch.no_grad():
            theirs = correct & (classifier(adversarial).argmax(1) != y)
        result.radii.append(eps)
        result.ours.append(int((correct & ~ours.robust).sum()))
        result.theirs.append(int(theirs.sum()))
    return result
