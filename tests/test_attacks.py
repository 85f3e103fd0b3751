"""rvae.attacks: feasibility, known maximisers, restarts, early stops, the three uses, and a library cross-check."""
from __future__ import annotations

import functools
import math
import warnings

import pytest
import torch
from torch import nn

from rvae.attacks import (AttackResult, adversarial_accuracy, default_step_size, downstream_attack, latent_selection,
                          pgd, pgd_search, random_selection)
from rvae.gaussians import w2_squared
from rvae.nets import build_vae


@pytest.fixture(autouse=True)
def _seeded():
    with torch.random.fork_rng():
        torch.manual_seed(0)  # layer initialisations only; the global RNG is restored afterwards
        yield


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def images_near_the_box_edges(n: int = 16, shape=(1, 6, 6), seed: int = 0) -> torch.Tensor:
    """Images whose pixels are 0, 1, within 0.01 of them, or uniform: clipping must matter."""
    g = gen(seed)
    choices = torch.tensor([0.0, 1.0, 0.005, 0.995, 0.5])
    x = choices[torch.randint(len(choices), (n, *shape), generator=g)]
    uniform = torch.rand(n, *shape, generator=g)
    return torch.where(torch.rand(n, *shape, generator=g) < 0.3, uniform, x)


class TinyVAE(nn.Module):
    """A small random MLP VAE on 6x6 images (what latent_selection needs: encode(x) -> (mu, logvar))."""

    def __init__(self):
        super().__init__()
        with torch.random.fork_rng():
            torch.manual_seed(0)
            self.inner = build_vae("mlp", (1, 6, 6), latent_dim=4, hidden=32)

    def encode(self, x):
        return self.inner.encode(x)


def two_pixel_model() -> tuple[nn.Module, nn.Linear]:
    """Encoder: the 2 pixels of a (1,1,2) image; probe: class 1 iff pixel sum > 1 (logit gap 10 (sum - 1))."""
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(2, 2))
    probe = nn.Linear(2, 2)
    with torch.no_grad():
        encoder[1].weight.copy_(torch.eye(2))
        encoder[1].bias.zero_()
        probe.weight.copy_(torch.tensor([[0.0, 0.0], [10.0, 10.0]]))
        probe.bias.copy_(torch.tensor([0.0, -10.0]))
    return encoder, probe


# Pixel pairs, labels, and the L-inf distance to the decision boundary pixel sum = 1.
TWO_PIXEL_X = torch.tensor([[0.6, 0.6], [0.3, 0.3], [0.95, 0.95], [0.0, 0.1], [0.9, 0.9]]).view(5, 1, 1, 2)
TWO_PIXEL_Y = torch.tensor([1, 0, 1, 0, 0])      # the last one is misclassified at x already
# distances: 0.1, 0.2, 0.45, 0.45, (wrong)


# ------------------------------------------------------------------------------------------------ feasibility
def _linear_objective(seed: int = 1):
    def objective(x_adv):
        w = torch.randn(x_adv[0].shape, generator=gen(seed))
        return (x_adv * w).flatten(1).sum(1)
    return objective


@pytest.mark.parametrize("attack", ["pgd-linf", "pgd-l2", "pgd-linf-restarts", "latent", "random", "downstream"])
def test_every_attack_stays_in_the_ball_and_the_box(attack):
    x = images_near_the_box_edges()
    eps = 0.1
    if attack == "pgd-linf":
        x_adv = pgd(_linear_objective(), x, eps, 10, step_size=0.5, generator=gen())
    elif attack == "pgd-linf-restarts":
        x_adv = pgd(_linear_objective(), x, eps, 5, restarts=3, generator=gen())
    elif attack == "pgd-l2":
        eps = 0.5
        x_adv = pgd(_linear_objective(), x, eps, 10, step_size=2.0, norm="l2", generator=gen())
        assert (x_adv - x).flatten(1).norm(dim=1).max() <= eps + 1e-5
    elif attack == "latent":
        x_adv = latent_selection(TinyVAE(), x, eps, budget=5, step_size=0.5, generator=gen())
    elif attack == "random":
        x_adv = random_selection(x, eps, generator=gen())
    else:
        encoder = nn.Sequential(nn.Flatten(), nn.Linear(36, 8))
        probe = nn.Linear(8, 3)
        y = torch.randint(3, (len(x),), generator=gen(2))
        x_adv = downstream_attack(encoder, probe, x, y, eps, iterations=5, restarts=2, generator=gen()).x_adv
    assert x_adv.shape == x.shape and not x_adv.requires_grad
    assert (x_adv - x).abs().max() <= eps + 1e-6
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert (x_adv != x).any()                                  # it did move


def test_pgd_leaves_its_input_alone_and_checks_arguments():
    x = images_near_the_box_edges()
    before = x.clone()
    pgd(_linear_objective(), x, 0.1, 3, generator=gen())
    assert torch.equal(x, before)
    with pytest.raises(ValueError, match="valid: linf, l2"):
        pgd(_linear_objective(), x, 0.1, 3, norm="l1")
    with pytest.raises(ValueError, match="one value per example"):
        pgd(lambda xa: xa.sum(), x, 0.1, 3)
    with pytest.raises(ValueError, match="eps"):
        pgd(_linear_objective(), x, -0.1, 3)


# ------------------------------------------------------------------------------------------- known maximisers
@pytest.mark.parametrize("random_start", [True, False])
def test_linf_pgd_reaches_the_maximiser_of_a_linear_objective_exactly(random_start):
    x = images_near_the_box_edges(seed=3)
    w = torch.randn(x[0].shape, generator=gen(4))
    eps = 0.07
    x_adv = pgd(lambda xa: (xa * w).flatten(1).sum(1), x, eps, 10, random_start=random_start, generator=gen())
    expected = (x + eps * w.sign()).clamp(0, 1)
    # exact up to float32 rounding: the best iterate may be one whose |delta_i| is eps - 1 ulp
    assert torch.allclose(x_adv, expected, rtol=0, atol=1e-6)
    assert ((x_adv - expected).abs() > 1e-6).sum() == 0 and (x_adv == expected).float().mean() > 0.9


def test_l2_pgd_reaches_the_maximiser_of_a_linear_objective():
    x = torch.full((8, 1, 4, 4), 0.5)
    w = torch.randn(8, 1, 4, 4, generator=gen(5))
    eps = 0.3                                          # the box is inactive: every |delta_i| <= 0.3 < 0.5
    # steps of eps shrink the angle to w fast; the default eps/20 converges slowly on the sphere
    x_adv = pgd(lambda xa: (xa * w).flatten(1).sum(1), x, eps, 30, step_size=eps, norm="l2", generator=gen())
    expected = x + eps * w / w.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    assert torch.allclose(x_adv, expected, atol=5e-4)  # the objective is flat to float32 within ~1e-4 of it
    assert torch.allclose((x_adv - x).flatten(1).norm(dim=1), torch.full((8,), eps), atol=1e-5)
    # one step from x is step_size along the normalised gradient
    one = pgd(lambda xa: (xa * w).flatten(1).sum(1), x, eps, 1, step_size=0.1, norm="l2", random_start=False)
    assert torch.allclose(one - x, 0.1 * w / w.flatten(1).norm(dim=1).view(-1, 1, 1, 1), atol=1e-6)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_random_starts_are_uniform_in_the_ball(norm):
    x = torch.full((4000, 1, 2, 2), 0.5)                 # 4 pixels, the box is inactive at eps = 0.2
    eps = 0.2
    start = pgd(lambda xa: xa.flatten(1).sum(1) * 0, x, eps, 0, norm=norm, generator=gen(23))
    delta = (start - x).flatten(1) / eps
    if norm == "linf":                                   # each coordinate U(-1, 1): mean 0, mean |.| 1/2
        assert delta.abs().max() <= 1 + 1e-6 and delta.abs().max() > 0.99
        assert delta.mean().abs() < 0.02 and (delta.abs().mean() - 0.5).abs() < 0.01
        assert torch.equal(random_selection(x, eps, generator=gen(23)), start)
    else:                                                # radius r: P(r <= s) = s^4, mean 4/5; direction uniform
        radius = delta.norm(dim=1)
        assert radius.max() <= 1 + 1e-6 and (radius.mean() - 0.8).abs() < 0.01
        assert (radius <= 0.5).float().mean() == pytest.approx(0.5 ** 4, abs=0.015)
        assert (delta / radius[:, None]).mean(0).abs().max() < 0.04


def test_linf_pgd_finds_the_projection_for_a_concave_quadratic():
    x = images_near_the_box_edges(seed=6)
    eps, iterations = 0.1, 50
    c = x + 0.3 * torch.randn(x.shape, generator=gen(7))       # mostly outside the ball, partly outside [0, 1]
    x_adv = pgd(lambda xa: -(xa - c).pow(2).flatten(1).sum(1), x, eps, iterations, generator=gen())
    low, high = (x - eps).clamp(min=0), (x + eps).clamp(max=1)
    expected = torch.maximum(torch.minimum(c, high), low)      # projection of c onto ball and box
    on_boundary = (c <= low) | (c >= high)
    assert on_boundary.float().mean() > 0.5 and (~on_boundary).any()
    assert torch.equal(x_adv[on_boundary], expected[on_boundary])
    # inside, signed steps of size eps/20 oscillate around c_i: the best iterate is within one step
    assert (x_adv - expected).abs().max() <= default_step_size(eps, iterations) + 1e-6


# ------------------------------------------------------------------------------------------------- restarts
def _bumpy(x_adv):
    """Many local maxima of different heights along each of 2 pixels."""
    a, b = x_adv[:, 0, 0, 0], x_adv[:, 0, 0, 1]
    return torch.sin(25 * a) + torch.sin(31 * b) + 0.8 * a - 0.5 * b


def test_restarts_keep_the_worst_case_of_every_restart():
    x = torch.rand(64, 1, 1, 2, generator=gen(8))
    eps, iterations = 0.3, 5
    restarts = 6
    combined = _bumpy(pgd(_bumpy, x, eps, iterations, restarts=restarts, generator=gen(9)))
    g = gen(9)                                          # the same generator, one restart per call
    singles = torch.stack([_bumpy(pgd(_bumpy, x, eps, iterations, restarts=1, generator=g))
                           for _ in range(restarts)])
    assert torch.equal(combined, singles.max(0).values)
    assert (combined > singles[0] + 1e-3).float().mean() > 0.2          # restarts do matter here


def test_pgd_search_returns_the_objective_it_found():
    x = torch.rand(32, 1, 1, 2, generator=gen(10))
    found = pgd_search(_bumpy, x, 0.3, 5, restarts=3, generator=gen(11))
    assert torch.allclose(found.objective, _bumpy(found.x_adv)) and not found.succeeded.any()


# ----------------------------------------------------------------------------------------------- early stops
def test_stop_on_keeps_the_first_successful_iterate():
    x = torch.full((2, 1, 3, 3), 0.5)
    w = torch.randn(2, 1, 3, 3, generator=gen(12))
    l1 = w.abs().flatten(1).sum(1)
    eps, iterations = 0.2, 20                            # step eps/8: the objective grows by eps/8 |w|_1 per step
    threshold = torch.stack([0.45 * eps * l1[0], 2.0 * eps * l1[1]])   # reached at step 4; never
    objective = lambda xa: (xa * w).flatten(1).sum(1) - (x * w).flatten(1).sum(1)  # noqa: E731
    stop = lambda xa: objective(xa) >= threshold  # noqa: E731
    step = default_step_size(eps, iterations)
    found = pgd_search(objective, x, eps, iterations, random_start=False, generator=gen(), stop_on=stop)
    assert found.succeeded.tolist() == [True, False]
    assert torch.allclose(found.x_adv[0], x[0] + 4 * step * w[0].sign(), atol=1e-6)   # not pushed further
    assert torch.allclose(found.x_adv[1], x[1] + eps * w[1].sign(), atol=1e-6)        # the maximiser


@pytest.mark.parametrize("subset", [False, True])
def test_the_returned_point_of_a_success_is_a_success(subset):
    # Success (pixel 0 pushed up by 0.8 eps) has nothing to do with the objective: a later restart's success
    # often has a lower objective than an earlier restart's best point, and must win all the same.
    x = torch.rand(200, 1, 2, 2, generator=gen(20))
    w = torch.randn(200, 1, 2, 2, generator=gen(21))
    eps = 0.1

    def objective(xa, *args):                            # args: (weights, x) of the examples still attacked
        return (xa * (args[0] if args else w)).flatten(1).sum(1)

    def success(xa, *args):
        return xa[:, 0, 0, 0] - (args[1] if args else x)[:, 0, 0, 0] > 0.8 * eps

    found = pgd_search(objective, x, eps, 0, restarts=10, generator=gen(22), stop_on=success,
                       batch_args=(w, x) if subset else None)
    assert 0.3 < found.succeeded.float().mean() < 1
    assert torch.equal(success(found.x_adv), found.succeeded)
    assert torch.allclose(found.objective, objective(found.x_adv))


def test_succeeded_examples_leave_the_computation():
    x = torch.full((2, 1, 3, 3), 0.5)
    w = torch.randn(2, 1, 3, 3, generator=gen(12))
    l1 = w.abs().flatten(1).sum(1)
    eps, iterations = 0.2, 20
    threshold = torch.stack([0.45 * eps * l1[0], 2.0 * eps * l1[1]])    # reached at step 4; never
    sizes = []

    def objective(xa, weights, x0, limit):
        sizes.append(len(xa))
        return ((xa - x0) * weights).flatten(1).sum(1)

    def stop(xa, weights, x0, limit):
        return ((xa - x0) * weights).flatten(1).sum(1) >= limit

    args = (w, x, threshold)
    pgd(objective, x, eps, iterations, random_start=False, restarts=3, generator=gen(), stop_on=stop, batch_args=args)
    assert sizes[:5] == [2] * 5 and set(sizes[5:]) == {1}    # steps 0..4 with both, then only the second
    assert len(sizes) == 3 * (iterations + 1)
    # attacking the whole batch and freezing the successes gives the same points
    subset = pgd(objective, x, eps, iterations, random_start=False, generator=gen(), stop_on=stop, batch_args=args)
    full = pgd(lambda xa: objective(xa, *args), x, eps, iterations, random_start=False, generator=gen(),
               stop_on=lambda xa: stop(xa, *args))
    assert torch.equal(subset, full)


# ---------------------------------------------------------------------------------------- the selection pair
def test_latent_selection_moves_the_encoding_more_than_random_selection():
    vae = TinyVAE()
    x = torch.rand(64, 1, 6, 6, generator=gen(13))
    eps = 0.1
    with torch.no_grad():
        mu, logvar = vae.encode(x)

        def w2(x_b):
            return w2_squared(mu, logvar, *vae.encode(x_b))

        chosen = w2(latent_selection(vae, x, eps, budget=10, generator=gen(14)))
        random = w2(random_selection(x, eps, generator=gen(14)))
        one_step = w2(latent_selection(vae, x, eps, budget=1, generator=gen(14)))
        # it is PGD from a random start on exactly this W2^2, with the clean encoding held fixed
        same = pgd(w2, x, eps, 10, generator=gen(14))
    assert torch.equal(latent_selection(vae, x, eps, budget=10, generator=gen(14)), same)
    assert (chosen > random).float().mean() >= 0.95 and chosen.mean() > 2 * random.mean()
    assert chosen.mean() > one_step.mean()


def test_selection_is_repeatable_and_leaves_model_and_rng_alone():
    vae = TinyVAE().train()
    x = torch.rand(8, 1, 6, 6, generator=gen(15))
    state = torch.get_rng_state()
    a = latent_selection(vae, x, 0.1, budget=3, generator=gen(16))
    b = latent_selection(vae, x, 0.1, budget=3, generator=gen(16))
    c = latent_selection(vae, x, 0.1, budget=3, generator=gen(17))
    r1, r2 = random_selection(x, 0.1, generator=gen(16)), random_selection(x, 0.1, generator=gen(16))
    assert torch.equal(a, b) and not torch.equal(a, c) and torch.equal(r1, r2)
    assert torch.equal(state, torch.get_rng_state())
    assert vae.training and all(p.grad is None for p in vae.parameters())


# ------------------------------------------------------------------------------------------ downstream attack
def test_downstream_attack_on_a_known_decision_boundary():
    encoder, probe = two_pixel_model()
    strong = downstream_attack(encoder, probe, TWO_PIXEL_X, TWO_PIXEL_Y, 0.3, iterations=20, restarts=2,
                               generator=gen())
    assert isinstance(strong, AttackResult)
    assert strong.nominal_correct.tolist() == [True, True, True, True, False]
    assert strong.robust.tolist() == [False, False, True, True, False]
    with torch.no_grad():
        flipped = probe(encoder(strong.x_adv[:2])).argmax(1) != TWO_PIXEL_Y[:2]
    assert flipped.all() and (strong.x_adv - TWO_PIXEL_X).abs().max() <= 0.3 + 1e-6
    weak = downstream_attack(encoder, probe, TWO_PIXEL_X, TWO_PIXEL_Y, 0.01, iterations=20, restarts=2,
                             generator=gen())
    assert weak.robust.tolist() == [True, True, True, True, False]
    # 0.15 lies between the first two distances (0.1, 0.2)
    middle = downstream_attack(encoder, probe, TWO_PIXEL_X, TWO_PIXEL_Y, 0.15, iterations=20, restarts=2,
                               generator=gen())
    assert middle.robust.tolist() == [False, True, True, True, False]
    assert all(p.grad is None for p in [*encoder.parameters(), *probe.parameters()])


def test_adversarial_accuracy_over_batches_and_at_eps_zero():
    encoder, probe = two_pixel_model()
    kwargs = dict(iterations=20, restarts=2, batch_size=2, progress=False)
    assert adversarial_accuracy(encoder, probe, TWO_PIXEL_X, TWO_PIXEL_Y, 0.0, **kwargs) == pytest.approx(0.8)
    assert adversarial_accuracy(encoder, probe, TWO_PIXEL_X, TWO_PIXEL_Y, 0.01, generator=gen(), **kwargs) \
        == pytest.approx(0.8)
    assert adversarial_accuracy(encoder, probe, TWO_PIXEL_X, TWO_PIXEL_Y, 0.3, generator=gen(), **kwargs) \
        == pytest.approx(0.4)
    calls = []
    counting = lambda x: calls.append(len(x)) or encoder(x)  # noqa: E731
    adversarial_accuracy(counting, probe, TWO_PIXEL_X, TWO_PIXEL_Y, 0.0, **kwargs)
    assert sum(calls) == len(TWO_PIXEL_X)                    # eps = 0: one forward pass, no attack


def test_downstream_attack_restarts_help_and_are_repeatable():
    # A weak attack on a random network: single random starts miss adversarial examples that others find.
    with torch.random.fork_rng():
        torch.manual_seed(0)
        encoder = nn.Sequential(nn.Flatten(), nn.Linear(36, 16), nn.Tanh(), nn.Linear(16, 4))
        probe = nn.Linear(4, 3)
    x = torch.rand(200, 1, 6, 6, generator=gen(18))
    with torch.no_grad():
        y = probe(encoder(x)).argmax(1)
    state = torch.get_rng_state()
    kwargs = dict(iterations=1, step_size=0.01)           # one short step: where it starts decides
    one = downstream_attack(encoder, probe, x, y, 0.05, restarts=1, generator=gen(19), **kwargs)
    many = downstream_attack(encoder, probe, x, y, 0.05, restarts=8, generator=gen(19), **kwargs)
    again = downstream_attack(encoder, probe, x, y, 0.05, restarts=8, generator=gen(19), **kwargs)
    assert torch.equal(state, torch.get_rng_state())
    assert torch.equal(many.robust, again.robust) and torch.equal(many.x_adv, again.x_adv)
    assert not (many.robust & ~one.robust).any()          # the first restart is shared: more restarts never lose
    assert many.robust.sum() < one.robust.sum() < len(x)


# -------------------------------------------------------------------------------- cross-check with libraries
def _images_for_the_cross_check(n: int, seed: int = 0):
    """n MNIST training images ($RVAE_DATA) or, without MNIST, n noisy low-contrast copies of 10 random patterns."""
    from rvae.data import describe_data, mnist_tensors
    if describe_data()["MNIST"]["available"]:
        x, y = mnist_tensors("train", download=False, limit=n)
        return x, y
    g = gen(seed)
    prototypes = torch.rand(10, 1, 28, 28, generator=g)
    y = torch.randint(10, (n,), generator=g)
    return (0.5 + 0.3 * (prototypes[y] - 0.5) + 0.25 * torch.randn(n, 1, 28, 28, generator=g)).clamp(0, 1), y


@functools.lru_cache(maxsize=1)
def trained_probe():
    """1,000 images and an MLP encoder (784-128-16) + linear probe trained jointly for 200 Adam steps on them."""
    x, y = _images_for_the_cross_check(1000)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        encoder = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 16))
        probe = nn.Linear(16, 10)
    g = gen(0)
    optimiser = torch.optim.Adam([*encoder.parameters(), *probe.parameters()], lr=1e-3)
    for _ in range(200):
        index = torch.randint(len(x), (128,), generator=g)
        loss = nn.functional.cross_entropy(probe(encoder(x[index])), y[index])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return encoder.eval(), probe.eval(), x, y


def _flipped_by_the_library(library, encoder, probe, x, y, eps, steps, alpha, seed=0):
    """(N,) bool: correctly classified images that the library's PGD (rvae.crosscheck) misclassifies."""
    from rvae.crosscheck import LIBRARY_ATTACKS
    model = nn.Sequential(encoder, probe).eval()
    x_adv = LIBRARY_ATTACKS[library](model, x, y, eps, alpha, steps, seed)
    assert (x_adv - x).abs().max() <= eps + 1e-5 and 0 <= x_adv.min() and x_adv.max() <= 1
    with torch.no_grad():
        return (model(x).argmax(1) == y) & (model(x_adv).argmax(1) != y)


def _flipped_by_ours(encoder, probe, x, y, eps, steps, alpha, seed=0, same_starts=False):
    """(N,) bool: correctly classified images that our PGD misclassifies: the book's downstream_attack with
    one restart, or (``same_starts``) pgd_search from the libraries' random starts (the first draw of a
    generator seeded with ``seed``, the stream torch.manual_seed(seed) gives them)."""
    with torch.no_grad():
        correct = probe(encoder(x)).argmax(1) == y
    if not same_starts:
        result = downstream_attack(encoder, probe, x, y, eps, iterations=steps, restarts=1, step_size=alpha,
                                   generator=gen(seed))
        return correct & ~result.robust
    found = pgd_search(lambda x_adv, labels: nn.functional.cross_entropy(probe(encoder(x_adv)), labels, reduction="none"),
                       x, eps, steps, step_size=alpha, restarts=1, generator=gen(seed),
                       stop_on=lambda x_adv, labels: probe(encoder(x_adv)).argmax(1) != labels, batch_args=(y,))
    return correct & found.succeeded


def _library(name: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # foolbox imports a deprecated scipy namespace
        return pytest.importorskip(name, reason=f"{name} is not installed: the cross-check against it is skipped")


@pytest.mark.parametrize("library", ["foolbox", "torchattacks"])
def test_our_pgd_finds_as_many_adversarial_examples_as_a_library(library):
    _library(library)
    encoder, probe, x, y = trained_probe()                   # trained once, after the library is found
    steps, tolerance = 10, math.ceil(0.01 * len(x))
    informative = 0
    for eps in (0.03, 0.05, 0.1):
        alpha = default_step_size(eps, steps)
        theirs = _flipped_by_the_library(library, encoder, probe, x, y, eps, steps, alpha)
        ours = _flipped_by_ours(encoder, probe, x, y, eps, steps, alpha)          # the book's attack, 1 restart
        same = _flipped_by_ours(encoder, probe, x, y, eps, steps, alpha, same_starts=True)
        informative += bool(0 < theirs.sum() < len(x))
        assert ours.sum() >= theirs.sum() - tolerance, (eps, int(ours.sum()), int(theirs.sum()))
        assert (theirs & ~same).sum() <= tolerance, (eps, int((theirs & ~same).sum()))   # image by image
    assert informative, "no radius where the library finds some adversarial examples but not all"
