"""AutoAttack (Croce & Hein, ICML 2020) on the book's downstream classifier, encoder mean -> linear probe.

Our PGD (:func:`rvae.attacks.robust_mask`) gives an upper bound on robust accuracy: an image counts
as robust when *our* search fails. AutoAttack is the accepted stronger, parameter-free suite
(APGD-CE, APGD-T, FAB-T, Square in its standard version); we run the packaged implementation
(``pyautoattack``, the original code on PyPI) on :class:`EncoderProbe`, which makes the encoder mean
and the probe one deterministic module in eval mode, so the suite attacks exactly the classifier
the chapters attack.

The standard suite assumes ten classes. With fewer (CelebA's attribute probes have two) we keep its
settings and cut only what is undefined: the targeted attacks aim at the C - 1 other classes instead
of 9, and APGD-T is left out below four classes, because its DLR loss divides by the gap between the
largest logit and the mean of the third and fourth. With two classes targeted and untargeted attacks
coincide (the only target is the other class), so APGD-CE, FAB-T and Square still cover the suite's
three kinds of search: gradient, boundary and black-box. ``AutoAttackResult.attacks`` names what ran.
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from typing import Sequence

import torch
from torch import Tensor, nn

from rvae.nets import evaluation_mode

STANDARD = ("apgd-ce", "apgd-t", "fab-t", "square")
NORMS = {"linf": "Linf", "l2": "L2"}


class EncoderProbe(nn.Module):
    """logits = probe(encoder mean of x): the chapters' downstream classifier as one module."""

    def __init__(self, model: nn.Module, probe: nn.Module):
        super().__init__()
        self.model, self.probe = model, probe

    def forward(self, x: Tensor) -> Tensor:
        return self.probe(self.model.encode(x)[0])


@dataclass
class AutoAttackResult:
    """Per-image outcome of one AutoAttack run at one radius."""
    robust: Tensor                  # (N,) bool: classified correctly at the clean image and at AutoAttack's point
    adversarial: Tensor             # (N, ...) the points AutoAttack returned (the clean image where it found none)
    eps: float
    norm: str
    attacks: tuple[str, ...]
    largest_perturbation: float     # in the attack's norm, over all images
    notes: list[str] = field(default_factory=list)   # what the suite's own sanity checks said

    @property
    def accuracy(self) -> float:
        return float(self.robust.float().mean())


def autoattack(model: nn.Module, probe: nn.Module, images: Tensor, labels: Tensor, eps: float,
               norm: str = "linf", attacks: Sequence[str] = STANDARD, batch_size: int = 250, seed: int = 0,
               device: str | torch.device = "cpu") -> AutoAttackResult:
    """Run AutoAttack's ``attacks`` (default: the standard version) against encoder mean -> probe."""
    from pyautoattack import AutoAttack

    if norm not in NORMS:
        raise ValueError(f"norm must be one of {sorted(NORMS)}, got {norm!r}")
    if eps <= 0:
        raise ValueError(f"eps must be positive, got {eps}")
    unknown = sorted(set(attacks) - {"apgd-ce", "apgd-dlr", "apgd-t", "fab", "fab-t", "square"})
    if unknown:
        raise ValueError(f"unknown AutoAttack attacks {unknown}")
    classifier = EncoderProbe(model, probe).to(device)
    x, y = images.to(device), labels.to(device)
    with evaluation_mode(classifier), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with torch.no_grad():
            classes = int(classifier(x[:1]).shape[1])
        standard = tuple(attacks) == STANDARD
        if classes < 4 and not standard and {"apgd-t", "apgd-dlr"} & set(attacks):
            raise ValueError(f"APGD's DLR losses need at least 4 classes; this probe has {classes}")
        suite = AutoAttack(classifier, norm=NORMS[norm], eps=eps, seed=seed, device=device,
                           version="standard" if standard else "custom", attacks=None if standard else list(attacks))
        suite.apgd_targeted.n_target_classes = suite.fab.n_target_classes = min(9, classes - 1)
        if classes < 4:
            suite.attacks_to_run = [name for name in suite.attacks_to_run if name != "apgd-t"]
        suite.logger.setLevel(logging.WARNING)
        suite.logger.propagate = False
        adversarial, _ = suite.run_standard_evaluation(x, y, batch_size=batch_size)
        with torch.no_grad():
            predicted = torch.cat([classifier(adversarial[i:i + batch_size]).argmax(1)
                                   for i in range(0, len(adversarial), batch_size)])
    delta = (adversarial - x).flatten(1)
    largest = float(delta.abs().max() if norm == "linf" else delta.norm(dim=1).max()) if len(x) else 0.0
    notes = sorted({str(w.message) for w in caught})
    return AutoAttackResult((predicted == y).cpu(), adversarial.cpu(), eps, norm, tuple(suite.attacks_to_run), largest,
                            notes)
