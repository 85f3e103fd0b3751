"""rvae.crosscheck.library_cross_check on a linear classifier, where the images that some point of the
L-inf ball misclassifies can be counted exactly: no attack may find more, and a good one finds (nearly) all."""
from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from rvae import crosscheck

RADII = [0.02, 0.05, 0.1, 0.3]


@pytest.fixture(scope="module")
def linear_problem():
    """A linear encoder mean (16 pixels -> 2) and a linear probe (2 -> 3 classes); 48 images, labels the
    classifier's own predictions except 8 flipped ones (so 40 are correctly classified)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        encoder = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
        probe = nn.Linear(2, 3)
    x = torch.rand(48, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = probe(encoder(x)).argmax(1)
    y[:8] = (y[:8] + 1) % 3
    return encoder.eval(), probe.eval(), x, y


def exactly_attackable(encoder, probe, x, y, eps) -> int:
    """Correctly classified images that some x' in the ball (and in [0, 1]) misclassifies, by linear
    programming in closed form: for a class k, the best x' puts each pixel at the end of its interval
    [max(0, x - eps), min(1, x + eps)] where (w_k - w_y) is larger."""
    with torch.no_grad():
        weight = probe.weight @ encoder[1].weight                             # (3, 16)
        bias = probe.weight @ encoder[1].bias + probe.bias
        flat = x.flatten(1)
        low, high = (flat - eps).clamp(0, 1), (flat + eps).clamp(0, 1)
        correct = (flat @ weight.T + bias).argmax(1) == y
        count = 0
        for i in torch.nonzero(correct).squeeze(1).tolist():
            difference = weight - weight[y[i]]                               # (3, 16): w_k - w_y
            best = torch.maximum(difference * low[i], difference * high[i]).sum(1) + bias - bias[y[i]]
            best[y[i]] = -float("inf")
            count += bool(best.max() > 0)
    return count


def test_our_pgd_and_foolbox_find_the_attackable_images_of_a_linear_classifier(linear_problem):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # foolbox imports a deprecated scipy namespace
        pytest.importorskip("foolbox", reason="foolbox is not installed: the cross-check against it is skipped")
    encoder, probe, x, y = linear_problem
    result = crosscheck.library_cross_check(encoder, probe, x, y, RADII, iterations=20, seed=0)
    assert result.library.startswith("foolbox ")
    assert result.attacked == 40
    assert result.radii == RADII
    exact = [exactly_attackable(encoder, probe, x, y, eps) for eps in RADII]
    assert any(0 < count < 40 for count in exact), exact                       # the radii are informative
    assert exact == sorted(exact) and exact[-1] > exact[0]
    for count, ours, theirs in zip(exact, result.ours, result.theirs):
        assert ours <= count and theirs <= count                                # none can find more than exist
        assert ours >= count - 1 and theirs >= count - 2, (exact, result)       # and on a linear model, nearly all
        assert abs(ours - theirs) <= 2


def test_without_a_library_the_images_are_counted_and_nothing_is_attacked(linear_problem, monkeypatch):
    encoder, probe, x, y = linear_problem
    monkeypatch.setattr(crosscheck, "installed_library", lambda: None)
    result = crosscheck.library_cross_check(encoder, probe, x, y, RADII, iterations=20)
    assert (result.library, result.attacked, result.radii, result.ours, result.theirs) == (
        "none installed", 40, [], [], [])


def test_the_cross_check_leaves_the_global_random_state_alone(linear_problem):
    pytest.importorskip("foolbox")
    encoder, probe, x, y = linear_problem
    state = torch.get_rng_state()
    first = crosscheck.library_cross_check(encoder, probe, x, y, RADII[:2], iterations=5, seed=3)
    assert torch.equal(state, torch.get_rng_state())
    again = crosscheck.library_cross_check(encoder, probe, x, y, RADII[:2], iterations=5, seed=3)
    assert (first.ours, first.theirs) == (again.ours, again.theirs)
