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


def foolbox_pgd(classifier: nn.Module, x: Tensor, y: Tensor, eps: float, step: float, iterations: int,
                seed: int = 0) -> Tensor:
    """Foolbox's LinfPGD (one random start) on ``classifier``: adversarial images like x (ImportError without it)."""
    import foolbox

    with torch.random.fork_rng(devices=[]):                                      # foolbox draws from torch's RNG
        torch.manual_seed(seed)
        model = foolbox.PyTorchModel(classifier, bounds=(0, 1), device=x.device)
        attack = foolbox.attacks.LinfPGD(abs_stepsize=step, steps=iterations, random_start=True)
        _, adversarial, _ = attack(model, x, y, epsilons=eps)
    return adversarial


def torchattacks_pgd(classifier: nn.Module, x: Tensor, y: Tensor, eps: float, step: float, iterations: int,
                     seed: int = 0) -> Tensor:
    """torchattacks' PGD (one random start) on ``classifier``: adversarial images like x (ImportError without it)."""
    import torchattacks

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return torchattacks.PGD(classifier, eps=eps, alpha=step, steps=iterations, random_start=True)(x, y)


#: Library name -> its L-inf PGD, in order of preference (foolbox is a clean dependency).
LIBRARY_ATTACKS: dict[str, Callable[..., Tensor]] = {"foolbox": foolbox_pgd, "torchattacks": torchattacks_pgd}


def installed_library() -> str | None:
    """The first attack library of :data:`LIBRARY_ATTACKS` that imports, or None."""
    for name in LIBRARY_ATTACKS:
        try:
            module = __import__(name)
        except ImportError:
            continue
        return f"{name} {module.__version__}"
    return None


def library_cross_check(encode_mean: Callable[[Tensor], Tensor], probe: nn.Module, images: Tensor, labels: Tensor,
                        radii: list[float], iterations: int, seed: int = 0,
                        device: str | torch.device = "cpu") -> CrossCheck:
    """Count adversarial examples found by ours and by the library at each radius (one start each)."""
    classifier = _MeanThenProbe(encode_mean, probe).eval().to(device)
    x, y = images.to(device), labels.to(device)
    with torch.no_grad():
        correct = classifier(x).argmax(1) == y
    library = installed_library()
    result = CrossCheck(library=library or "none installed", attacked=int(correct.sum()))
    if library is None:
        return result
    library_attack = LIBRARY_ATTACKS[library.split()[0]]
    for eps in radii:
        step = default_step_size(eps, iterations)
        ours = downstream_attack(encode_mean, probe, x, y, eps, iterations=iterations, restarts=1, step_size=step,
                                 generator=torch.Generator().manual_seed(seed))
        adversarial = library_attack(classifier, x, y, eps, step, iterations, seed)
        with torch.no_grad():
            theirs = correct & (classifier(adversarial).argmax(1) != y)
        result.radii.append(eps)
        result.ours.append(int((correct & ~ours.robust).sum()))
        result.theirs.append(int(theirs.sum()))
    return result
