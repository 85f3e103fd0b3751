"""AutoAttack on the book's downstream classifier (rvae.autoattack): the wrapper is the chapters'
classifier, the suite is at least as strong as our PGD on a trained model, its points obey the radius."""
from __future__ import annotations

import functools

import pytest
import torch

from rvae.attacks import robust_mask
from rvae.autoattack import EncoderProbe, autoattack
from rvae.evaluate import encoder_means, train_linear_probe
from rvae.experiment import Experiment
from rvae.nets import build_vae

pytest.importorskip("pyautoattack")


@functools.lru_cache(maxsize=1)
def small_trained_model():
    """A VAE (MLP, latent 8) trained 150 steps on 600 MNIST digits (or, without MNIST, on noisy patterns)
    and a linear probe on its encoder means."""
    from rvae.data import describe_data, mnist_tensors
    if describe_data()["MNIST"]["available"]:
        x, y = mnist_tensors("train", download=False, limit=600)
    else:
        g = torch.Generator().manual_seed(0)
        prototypes, y = torch.rand(10, 1, 28, 28, generator=g), torch.randint(10, (600,), generator=g)
        x = (0.5 + 0.4 * (prototypes[y] - 0.5) + 0.2 * torch.randn(600, 1, 28, 28, generator=g)).clamp(0, 1)
    experiment = Experiment.on_images("mnist600", x, 64, latent_dim=8, observation_variance=0.05, steps=150, seed=0)
    model = experiment.train("elbo").model.eval()
    probe = train_linear_probe(encoder_means(model, x), y, 10, epochs=20)
    return model, probe, x[:48], y[:48]


def test_the_wrapper_gives_the_chapters_logits():
    torch.manual_seed(0)
    model = build_vae("conv", (1, 28, 28), 4).eval()       # BatchNorm: eval mode matters
    probe = torch.nn.Linear(4, 10)
    x = torch.rand(16, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(EncoderProbe(model, probe)(x), probe(encoder_means(model, x)))


def test_autoattack_finds_at_least_as_many_adversarial_examples_as_our_pgd():
    model, probe, x, y = small_trained_model()
    eps = 0.1
    ours = robust_mask(lambda images: model.encode(images)[0], probe, x, y, eps, iterations=20, restarts=1,
                       generator=torch.Generator().manual_seed(0))
    suite = autoattack(model, probe, x, y, eps, seed=0)
    assert suite.robust.sum() <= ours.sum()
    assert ours.sum() > suite.robust.sum() or ours.sum() < len(x)     # the attack had something to do
    assert suite.largest_perturbation <= eps + 1e-6
    assert (suite.adversarial - x).abs().max() <= eps + 1e-6
    assert suite.adversarial.min() >= 0 and suite.adversarial.max() <= 1
    with torch.no_grad():
        clean = EncoderProbe(model, probe)(x).argmax(1) == y
    assert not (suite.robust & ~clean).any()                         # robust means correct to begin with


def test_an_l2_run_stays_in_its_ball():
    model, probe, x, y = small_trained_model()
    suite = autoattack(model, probe, x[:30], y[:30], 0.5, norm="l2", attacks=("apgd-ce",), seed=0)
    assert (suite.adversarial - x[:30]).flatten(1).norm(dim=1).max() <= 0.5 + 1e-4


def test_a_two_class_probe_gets_the_suite_without_its_dlr_attack():
    """CelebA's probes have two classes: APGD-T's DLR loss is undefined there, the rest of the suite runs,
    aims its targeted attack at the one other class, and is still at least as strong as our PGD."""
    model, _, x, y = small_trained_model()
    binary = (y >= 5).long()
    probe = train_linear_probe(encoder_means(model, x), binary, 2, epochs=50)
    ours = robust_mask(lambda images: model.encode(images)[0], probe, x, binary, 0.1, iterations=20, restarts=1,
                       generator=torch.Generator().manual_seed(0))
    suite = autoattack(model, probe, x, binary, 0.1, seed=0)
    assert suite.attacks == ("apgd-ce", "fab-t", "square")
    assert not suite.notes                                           # the suite's own class-count check is quiet
    assert suite.robust.sum() <= ours.sum()
    assert (suite.adversarial - x).abs().max() <= 0.1 + 1e-6
    with pytest.raises(ValueError, match="need at least 4 classes"):
        autoattack(model, probe, x[:2], binary[:2], 0.1, attacks=("apgd-ce", "apgd-t"))


@pytest.mark.parametrize("arguments, message", [(dict(norm="l1"), "norm must be one of"), (dict(eps=0.0), "eps must be"),
                                                (dict(attacks=("pgd",)), "unknown AutoAttack attacks")])
def test_bad_arguments_fail_in_one_line(arguments, message):
    model, probe = build_vae("mlp", (1, 28, 28), 4).eval(), torch.nn.Linear(4, 10)
    settings = dict(eps=0.1) | arguments
    with pytest.raises(ValueError, match=message):
        autoattack(model, probe, torch.rand(2, 1, 28, 28), torch.zeros(2, dtype=torch.long), **settings)
