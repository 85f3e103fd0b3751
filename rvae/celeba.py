"""The 17 CelebA downstream tasks of the Smooth Encoders and AVAE papers, and the numbers they report on them.

Both papers train an encoder without labels, fit a linear classifier per task on its mean representation and
report the classifier's nominal and adversarial (PGD, L-inf) test accuracy. This module holds:

* ``TASKS``: each task's name as the papers print it and the CelebA attribute column it reads;
* ``TABLE1``: Table 1 of the Smooth Encoders paper (VAE and SE, nominal and adversarial accuracy);
* ``TABLE3`` and its companion rows: Table 3 of the AVAE paper's appendix (six methods, adversarial accuracy,
  plus the nominal accuracies, time factors, MSE and FID printed in the same table);
* ``task_labels`` and ``majority_rate``: the labels of each task and the accuracy of the constant classifier;
* ``sign_test``: a claim over the tasks ("A beats B on most tasks") as a count with an exact sign test;
* ``train_attribute_classifier``: a 40-attribute classifier whose hidden layer is the feature space of the
  chapter's Fréchet distance (the book's stand-in for Inception features, which cannot be downloaded here).

The values were transcribed by hand from the text extractions of the two papers (the PDFs' tables came out
partly garbled); the comments next to each table say which readings needed reconstructing.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from scipy import stats as scipy_stats
from torch import Tensor, nn

from rvae.fidelity import ImageClassifier
from rvae.stats import CONFIDENCE, Evidence

from rvae.data import CELEBA_ATTRIBUTES
from rvae.errors import ParameterError

#: (paper name, CelebA attribute) for the 17 tasks, in the row order of the AVAE appendix's Table 3. The names are
#: Table 3's; the Smooth Encoders' Table 1 prints "Wearing Hat" for "Hat" and "No Beard" for "Beard" (see
#: ``TABLE1_NAMES``) and lists the rows in another order (``TABLE1_ORDER``).
TASKS: tuple[tuple[str, str], ...] = (
    ("Bald", "Bald"),
    ("Mustache", "Mustache"),
    ("Eyeglasses", "Eyeglasses"),
    ("Necklace", "Wearing_Necklace"),
    ("Smiling", "Smiling"),
    ("Lipstick", "Wearing_Lipstick"),
    ("Bangs", "Bangs"),
    ("Black Hair", "Black_Hair"),
    ("Blond Hair", "Blond_Hair"),
    ("Brown Hair", "Brown_Hair"),
    ("Gender", "Male"),
    # The papers' "Beard" task is CelebA's No_Beard attribute: a positive label means *no* beard (Table 1 calls
    # the same row, with the same SE numbers, "No Beard").
    ("Beard", "No_Beard"),
    ("Straight Hair", "Straight_Hair"),
    ("Wavy Hair", "Wavy_Hair"),
    ("Earrings", "Wearing_Earrings"),
    ("Hat", "Wearing_Hat"),
    ("Necktie", "Wearing_Necktie"),
)
TASK_NAMES: tuple[str, ...] = tuple(name for name, _ in TASKS)

# --------------------------------------------------------------------------------------------------------------
# Smooth Encoders, Table 1: "nominal (Nom) and adversarial (Adv) accuracy (in percentage) on 17 downstream tasks
# using a VAE and a SE trained with a selection radius of eps = 0.1 ... Attack radius of 0.1 and attack iteration
# budget of 100 with 10 restarts."
#
# The extraction interleaves the table's two side-by-side halves; reconstruction notes:
# * Brown Hair, VAE Adv: its 0.0 sits alone on the line below the row; every other VAE Adv is 0.0 as well.
# * Gender, SE Adv: its 0.7 sits alone on the line above the row. Table 3's SE20 column gives Gender 81.6 / 0.7
#   and the rows are sorted by SE Adv (1.1 Smiling > 0.7 Gender > 0.6 Lipstick), which confirms it.
# * A garbled extra row "Пеские 75.2 0.0 12.1 51.7" (an 18th row for 17 tasks) is an OCR duplicate of Necktie: the
#   clean row "Necktie 93.2 0.0 92.7 51.7" matches Table 3's SE20 column (92.7 / 51.7), and a nominal accuracy of
#   12.1 % would be far below the constant classifier. It is not transcribed.
# * Stray tokens "0" (after Straight Hair) and "U" carry no value.
# The SE columns equal Table 3's SE20 columns on all 17 tasks; the VAE columns differ from Table 3's VAE.
# No value was left unreadable, so TABLE1 has no None.
# --------------------------------------------------------------------------------------------------------------

#: Table 1's spelling of the task names that differ from ``TASKS``.
TABLE1_NAMES: dict[str, str] = {"Hat": "Wearing Hat", "Beard": "No Beard"}

#: Table 1's row order (left half, then right half): decreasing SE adversarial accuracy.
TABLE1_ORDER: tuple[str, ...] = (
    "Bald", "Mustache", "Necklace", "Straight Hair", "Hat", "Earrings", "Blond Hair", "Necktie",
    "Brown Hair", "Eyeglasses", "Black Hair", "Bangs", "Beard", "Wavy Hair", "Smiling", "Gender", "Lipstick",
)

#: paper name -> {"VAE": (nominal %, adversarial %), "SE": (nominal %, adversarial %)}.
TABLE1: dict[str, dict[str, tuple[float | None, float | None]]] = {
    "Bald": {"VAE": (97.8, 0.0), "SE": (97.4, 86.5)},
    "Mustache": {"VAE": (96.1, 0.0), "SE": (95.7, 84.4)},
    "Eyeglasses": {"VAE": (95.6, 0.0), "SE": (95.7, 33.0)},
    "Necklace": {"VAE": (86.2, 0.0), "SE": (88.0, 78.9)},
    "Smiling": {"VAE": (82.7, 0.0), "SE": (85.7, 1.1)},
    "Lipstick": {"VAE": (79.2, 0.0), "SE": (80.3, 0.6)},
    "Bangs": {"VAE": (90.3, 0.0), "SE": (89.6, 27.0)},
    "Black Hair": {"VAE": (79.7, 0.0), "SE": (81.4, 31.4)},
    "Blond Hair": {"VAE": (92.4, 0.0), "SE": (90.7, 53.5)},
    "Brown Hair": {"VAE": (83.1, 0.0), "SE": (80.5, 41.5)},
    "Gender": {"VAE": (81.1, 0.0), "SE": (81.6, 0.7)},
    "Beard": {"VAE": (86.5, 0.0), "SE": (85.3, 24.3)},
    "Straight Hair": {"VAE": (79.1, 0.0), "SE": (78.7, 77.3)},
    "Wavy Hair": {"VAE": (71.4, 0.0), "SE": (72.8, 10.2)},
    "Earrings": {"VAE": (79.3, 0.0), "SE": (81.3, 55.3)},
    "Hat": {"VAE": (96.6, 0.0), "SE": (96.4, 77.3)},
    "Necktie": {"VAE": (93.2, 0.0), "SE": (92.7, 51.7)},
}

#: The attack of Table 1's caption (PGD on the downstream classifier; the SE's selection radius is also 0.1).
TABLE1_SETTINGS: dict[str, float | int] = {"radius": 0.1, "iterations": 100, "restarts": 10}

# --------------------------------------------------------------------------------------------------------------
# AVAE appendix, Table 3: "Adversarial test accuracy (in percentage) of the representations for all of
# classification tasks on CelebA"; Appendix H: "compared across models VAE, AVAE, SE with 5 PGD iteration budget,
# SE with 20 PGD iteration budget, SE AVAE and AVAE SS. Here eps = 0.0 represents the nominal downstream accuracy."
# Each method has two columns, eps = 0.0 (nominal, TABLE3_NOMINAL) and eps = 0.1 (adversarial, TABLE3). This table
# extracted cleanly: 17 rows of 12 numbers, then a Time Factor, an MSE and an FID row of 6 entries each.
# * The table header prints "SE AVAE" and "AVAE SS"; the appendix's algorithms and text name them SE-AVAE and
#   AVAE-SS (SE5/SE20: SE trained with a selection budget of 5/20 PGD iterations).
# * Time factors are printed as "x1 x2.2 ..." (the extraction shows the times sign as a stray glyph). The paper
#   does not say what is timed; presumably training time relative to the VAE.
# * MSE and FID are "N/A" for SE20 (recorded as None). AVAE-SS's FID (99.86) equals the VAE's, as printed.
# * The SE20 columns coincide with Table 1's SE columns, which were evaluated with 100 iterations, whereas
#   Appendix F gives 20 evaluation iterations for CelebA (TABLE3_SETTINGS follows Appendix F).
# --------------------------------------------------------------------------------------------------------------

#: Table 3's method columns, left to right.
TABLE3_METHODS: tuple[str, ...] = ("VAE", "AVAE", "SE5", "SE20", "SE-AVAE", "AVAE-SS")


def _rows(values: dict[str, tuple[float | None, ...]]) -> dict[str, dict[str, float | None]]:
    return {task: dict(zip(TABLE3_METHODS, row, strict=True)) for task, row in values.items()}


#: paper name -> {method: adversarial accuracy % at eps = 0.1}.
TABLE3: dict[str, dict[str, float | None]] = _rows({
    "Bald": (2.1, 83.9, 71.0, 86.5, 87.0, 70.0),
    "Mustache": (0.7, 89.8, 69.5, 84.4, 92.3, 74.0),
    "Eyeglasses": (0.0, 71.7, 20.3, 33.0, 67.5, 56.8),
    "Necklace": (0.7, 76.7, 56.0, 78.9, 80.3, 59.9),
    "Smiling": (0.4, 3.0, 3.1, 1.1, 6.3, 1.0),
    "Lipstick": (0.0, 6.5, 2.0, 0.6, 11.2, 0.9),
    "Bangs": (0.2, 36.0, 19.3, 27.0, 45.9, 22.2),
    "Black Hair": (0.0, 31.7, 23.0, 31.4, 33.3, 26.2),
    "Blond Hair": (0.2, 46.4, 35.9, 53.5, 55.8, 37.6),
    "Brown Hair": (1.0, 35.9, 24.1, 41.5, 46.0, 19.3),
    "Gender": (0.0, 5.4, 1.5, 0.7, 10.7, 0.7),
    "Beard": (0.0, 39.2, 18.3, 24.3, 50.1, 16.3),
    "Straight Hair": (2.3, 72.2, 64.8, 77.3, 74.9, 64.8),
    "Wavy Hair": (0.1, 17.8, 10.0, 10.2, 22.1, 9.3),
    "Earrings": (0.1, 60.9, 26.8, 55.3, 64.1, 24.7),
    "Hat": (0.2, 75.2, 55.3, 77.3, 82.7, 65.5),
    "Necktie": (0.2, 61.9, 41.0, 51.7, 72.5, 39.8),
})

#: paper name -> {method: nominal accuracy % (Table 3's eps = 0.0 columns)}.
TABLE3_NOMINAL: dict[str, dict[str, float | None]] = _rows({
    "Bald": (97.9, 97.8, 97.9, 97.4, 97.8, 97.8),
    "Mustache": (94.9, 94.8, 95.0, 95.7, 96.3, 95.2),
    "Eyeglasses": (95.4, 94.9, 95.9, 95.7, 95.3, 94.3),
    "Necklace": (87.7, 88.2, 88.0, 88.0, 86.1, 87.9),
    "Smiling": (87.7, 78.5, 86.9, 85.7, 77.9, 81.6),
    "Lipstick": (84.5, 80.4, 84.5, 80.3, 80.7, 80.3),
    "Bangs": (90.3, 89.7, 90.8, 89.6, 89.6, 89.6),
    "Black Hair": (83.5, 82.5, 83.4, 81.4, 79.5, 83.3),
    "Blond Hair": (91.5, 91.1, 92.5, 90.7, 92.4, 90.6),
    "Brown Hair": (78.4, 77.8, 77.9, 80.5, 82.9, 78.2),
    "Gender": (87.6, 82.6, 87.8, 81.6, 82.1, 82.1),
    "Beard": (85.8, 83.8, 85.4, 85.3, 86.0, 84.4),
    "Straight Hair": (79.6, 79.2, 79.6, 78.7, 78.8, 79.2),
    "Wavy Hair": (75.8, 75.8, 76.1, 72.8, 72.7, 75.5),
    "Earrings": (81.3, 81.0, 81.0, 81.3, 79.5, 81.2),
    "Hat": (96.5, 96.6, 96.9, 96.4, 97.3, 96.0),
    "Necktie": (92.6, 92.5, 92.7, 92.7, 93.0, 92.6),
})

#: method -> Table 3's "Time Factor" row (x the VAE's time).
TABLE3_TIME_FACTOR: dict[str, float | None] = dict(zip(TABLE3_METHODS, (1.0, 2.2, 3.1, 7.8, 4.3, 2.2), strict=True))
#: method -> Table 3's "MSE" row (reconstruction error; None where the table prints N/A).
TABLE3_MSE: dict[str, float | None] = dict(zip(TABLE3_METHODS, (7203.9, 7276.6, 7208.8, None, 7269.2, 7347.3),
                                               strict=True))
#: method -> Table 3's "FID" row (None where the table prints N/A).
TABLE3_FID: dict[str, float | None] = dict(zip(TABLE3_METHODS, (99.86, 97.92, 98.00, None, 109.4, 99.86),
                                               strict=True))

#: The evaluation attack of Table 3: radius from its eps = 0.1 columns, iterations and restarts from Appendix F
#: ("in evaluation 10 random restarts are used with 20 iteration budget").
TABLE3_SETTINGS: dict[str, float | int] = {"radius": 0.1, "iterations": 20, "restarts": 10}


def _check_binary(values: Tensor, name: str, hint: str = "") -> None:
    bad = values[(values != 0) & (values != 1)]
    if bad.numel():
        found = ", ".join(f"{v:g}" for v in torch.unique(bad.double())[:5].tolist())
        raise ParameterError(f"{name} must be 0/1{hint}; found {found}")


def task_labels(attributes: Tensor) -> dict[str, Tensor]:
    """{paper name: (N,) int64 0/1 labels} of the 17 tasks, from the (N, 40) 0/1 attributes in the column order
    of ``CELEBA_ATTRIBUTES`` (as ``rvae.data.CelebA.attributes``)."""
    width = len(CELEBA_ATTRIBUTES)
    if not isinstance(attributes, Tensor) or attributes.dim() != 2 or attributes.shape[1] != width:
        shape = tuple(attributes.shape) if isinstance(attributes, Tensor) else type(attributes).__name__
        raise ParameterError(f"CelebA attributes must be an (N, {width}) tensor; got {shape}")
    _check_binary(attributes, "CelebA attributes", " (the file's -1 is 0)")
    columns = [CELEBA_ATTRIBUTES.index(attribute) for _, attribute in TASKS]
    labels = attributes[:, columns].T.to(torch.int64).contiguous()   # advanced indexing copies the input
    return dict(zip(TASK_NAMES, labels, strict=True))


def majority_rate(labels: Tensor) -> float:
    """Accuracy of always predicting the more frequent class of the (N,) 0/1 ``labels``, N >= 1."""
    if not isinstance(labels, Tensor) or labels.dim() != 1 or labels.numel() == 0:
        shape = tuple(labels.shape) if isinstance(labels, Tensor) else type(labels).__name__
        raise ParameterError(f"labels must be a non-empty (N,) tensor; got {shape}")
    _check_binary(labels, "labels")
    positive = float(labels.double().mean())
    return max(positive, 1.0 - positive)


def sign_test(first: Sequence[float], second: Sequence[float], confidence: float = CONFIDENCE) -> Evidence:
    """"``first`` beats ``second`` on most units" (tasks, models) as an exact sign test.

    Units where the two are equal are dropped (the usual sign test); of the n others, k favour ``first``.
    The effect is k / n, its interval the exact Clopper-Pearson one, p the two-sided binomial p-value of
    k under Binomial(n, 1/2). "Most" is then the claim that the effect exceeds 1/2. With no untied unit
    the effect is 1/2 and the interval [0, 1]: nothing was learned.
    """
    a, b = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise ParameterError(f"a sign test needs two equal, non-empty 1-d sequences; got shapes {a.shape} and {b.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ParameterError("a sign test needs finite values")
    wins, untied = int(np.sum(a > b)), int(np.sum(a != b))
    if untied == 0:
        return Evidence("sign test (all tied)", 0, 0.5, 0.0, 1.0, 1.0)
    result = scipy_stats.binomtest(wins, untied, 0.5)
    interval = result.proportion_ci(confidence_level=confidence, method="exact")
    return Evidence("exact sign test", untied, wins / untied, float(interval.low), float(interval.high),
                    float(result.pvalue))


def train_attribute_classifier(images: Tensor, attributes: Tensor, steps: int, batch_size: int = 128,
                               learning_rate: float = 1e-3, seed: int = 0, device: str | torch.device = "cpu",
                               hidden: tuple[int, ...] = (512, 256)) -> ImageClassifier:
    """An MLP (:class:`rvae.fidelity.ImageClassifier`) trained to predict all (N, A) 0/1 ``attributes`` of
    ``images`` at once (one logit per attribute, binary cross-entropy), with Adam for ``steps`` batches drawn
    with replacement; seeded, the global RNG left as it was; in evaluation mode on return."""
    if steps < 1 or batch_size < 1 or len(images) != len(attributes) or len(images) == 0 or attributes.dim() != 2:
        raise ParameterError(f"steps and batch_size must be >= 1 and images and (N, A) attributes equally many "
                             f"(not none); got steps={steps}, batch_size={batch_size}, {len(images)} images, "
                             f"attributes of shape {tuple(attributes.shape)}")
    _check_binary(attributes, "attributes")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        classifier = ImageClassifier(tuple(images.shape[1:]), hidden, attributes.shape[1]).to(device)
    generator = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.Adam(classifier.parameters(), lr=learning_rate)
    targets = attributes.float()
    for _ in range(steps):
        index = torch.randint(len(images), (batch_size,), generator=generator)
        loss = nn.functional.binary_cross_entropy_with_logits(classifier(images[index].to(device)),
                                                              targets[index].to(device))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return classifier.eval()


@torch.no_grad()
def attribute_accuracy(classifier: nn.Module, images: Tensor, attributes: Tensor, batch_size: int = 1000,
                       device: str | torch.device = "cpu") -> Tensor:
    """(A,) accuracy of each attribute's prediction (logit > 0) on ``images`` against (N, A) 0/1 ``attributes``."""
    predicted = torch.cat([classifier(images[i:i + batch_size].to(device)).cpu() > 0
                           for i in range(0, len(images), batch_size)])
    return (predicted == attributes.bool()).float().mean(0)
