"""Randomized smoothing (rvae.smoothing): the certificate of a linear classifier against its closed form,
the Clopper-Pearson bound against the beta quantile, abstention, the L-inf/L2 conversion, errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from rvae.smoothing import ABSTAIN, certify, linf_as_l2, lower_confidence_bound, smoothed_predict, smoothed_radius


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def linear_classifier(w: torch.Tensor, b: float):
    """Two classes: 1 where w.x + b > 0, else 0 (as logits [0, w.x + b])."""
    def classify(x: torch.Tensor) -> torch.Tensor:
        score = x.flatten(1) @ w.flatten() + b
        return torch.stack([torch.zeros_like(score), score], 1)
    return classify


def test_the_exact_smoothed_radius_of_a_linear_classifier_is_its_distance_to_the_boundary():
    # g(x) = 1 iff P(w.(x + sigma e) + b > 0) > 1/2; that probability is Phi((w.x + b) / (sigma ||w||)),
    # so sigma Phi^-1(p_A) = |w.x + b| / ||w||, the distance to the hyperplane, for any sigma
    w, b = torch.tensor([3.0, -4.0]), 0.5
    points = torch.randn(20, 2, generator=gen(0), dtype=torch.float64)
    margin = (points @ w.double() + b).abs().numpy()
    for sigma in (0.5, 1.0, 2.0):
        p_a = stats.norm.cdf(margin / (sigma * 5.0))
        np.testing.assert_allclose(smoothed_radius(p_a, sigma), margin / 5.0, rtol=1e-9, atol=1e-12)
    assert smoothed_radius(0.5, 1.0) == 0 and smoothed_radius(0.3, 1.0) == 0


def test_certify_on_a_linear_classifier_is_sound_and_nearly_tight():
    # the certified radius never exceeds the true robust radius (the distance to the boundary) and falls
    # short of it only by the Clopper-Pearson slack, sigma (Phi^-1(p_A) - Phi^-1(p_lower))
    torch.manual_seed(0)
    w, b, sigma, draws, alpha = torch.tensor([0.6, 0.8]), -0.2, 0.5, 20000, 0.001
    x = torch.tensor([[0.5, 0.3], [-0.4, 0.1], [0.9, 0.9], [0.0, 0.25], [0.3, -0.6]])
    score = x @ w + b
    distance = score.abs().numpy()                                        # ||w|| = 1
    result = certify(linear_classifier(w, b), x, sigma, 2, draws=draws, selection_draws=200, alpha=alpha,
                     generator=gen(1))
    decided = result.prediction != ABSTAIN
    assert torch.equal(result.prediction[decided], (score[decided] > 0).long())
    assert (result.radius <= distance + 1e-9).all()
    p_a = stats.norm.cdf(distance / sigma)
    slack = sigma * (stats.norm.ppf(p_a) - stats.norm.ppf(np.clip(p_a - 5 * np.sqrt(p_a * (1 - p_a) / draws)
                                                                  - 3 / draws, 0.5, 1)))
    far = distance > 0.15
    assert (result.radius[far] >= distance[far] - slack[far] - 1e-9).all()
    assert (result.radius[far] > 0.8 * distance[far]).all()


def test_the_lower_bound_is_the_clopper_pearson_beta_quantile():
    for k, n, alpha in ((950, 1000, 0.001), (51, 100, 0.05), (1000, 1000, 0.001), (3, 10, 0.01)):
        assert lower_confidence_bound(k, n, alpha) == pytest.approx(stats.beta.ppf(alpha, k, n - k + 1), rel=1e-9)
    assert lower_confidence_bound(0, 10, 0.01) == 0.0
    # the largest radius n draws can certify: every draw on the top class
    assert smoothed_radius(lower_confidence_bound(1000, 1000, 0.001), 0.25) == pytest.approx(
        0.25 * stats.norm.ppf(0.001 ** (1 / 1000)), rel=1e-9)


def test_a_classifier_that_ignores_its_input_is_not_certified():
    def coin(x: torch.Tensor) -> torch.Tensor:            # a fair coin per noisy copy
        return torch.randint(2, (len(x),), generator=coin.generator)
    coin.generator = gen(2)
    x = torch.zeros(6, 3)
    result = certify(coin, x, 0.5, 2, draws=2000, selection_draws=50, generator=gen(3))
    assert (result.prediction == ABSTAIN).all() and (result.radius == 0).all()
    assert not result.certified(torch.zeros(6, dtype=torch.long), 0.0).any()
    assert (smoothed_predict(coin, x, 0.5, 2, draws=2000, alpha=0.001, generator=gen(4)) == ABSTAIN).all()


def test_an_linf_ball_lies_inside_the_l2_ball_of_radius_eps_sqrt_d():
    eps, d = 0.1, 784
    corner = torch.full((d,), eps)                         # the farthest point of the L-inf ball
    assert float(corner.norm()) == pytest.approx(linf_as_l2(eps, d), rel=1e-6)
    inside = (torch.rand(1000, d, generator=gen(5)) * 2 - 1) * eps
    assert (inside.norm(dim=1) <= linf_as_l2(eps, d) + 1e-6).all()


@pytest.mark.parametrize("settings", [dict(sigma=0.0), dict(draws=0), dict(alpha=0.5), dict(selection_draws=0)])
def test_bad_settings_fail_in_one_line(settings):
    arguments = dict(sigma=0.5, draws=10, selection_draws=10, alpha=0.01) | settings
    with pytest.raises(ValueError, match="certify needs"):
        certify(linear_classifier(torch.ones(2), 0.0), torch.zeros(1, 2), num_classes=2, **arguments)
