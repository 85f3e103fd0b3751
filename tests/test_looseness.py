"""Class radius search, collision probability and the diversity bound (rvae.looseness)."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from rvae import looseness as L

pytestmark = pytest.mark.usefixtures("double_precision")


def _linear_model(d: int, k: int, seed: int):
    """A random linear decoder R^d -> R^6 (with offset) and a linear classifier into k classes."""
    g = torch.Generator().manual_seed(seed)
    decoder, offset = torch.randn(6, d, generator=g), torch.randn(6, generator=g)
    weight, bias = torch.randn(k, 6, generator=g), torch.randn(k, generator=g)
    return weight, bias, decoder, offset


# ---------------------------------------------------------------------------- the search

def test_linear_decoder_binary_classifier_recovers_hyperplane_distance():
    weight, bias, decoder, offset = _linear_model(d=4, k=2, seed=1)
    label_fn = L.linear_label_fn(weight, bias, decoder, offset)
    est = L.expected_class_radius(label_fn, dim=4, n=400, seed=0, confidence=0.999)
    # the boundary is the hyperplane v.z + e = 0 with v = (w0 - w1) A, e = (w0 - w1).a + b0 - b1
    v = (weight[0] - weight[1]) @ decoder
    e = (weight[0] - weight[1]) @ offset + bias[0] - bias[1]
    exact = (est.z @ v + e).abs() / v.norm()
    assert torch.allclose(L.linear_class_radius(est.z, weight, bias, decoder, offset), exact)
    upper = est.radius.upper
    assert est.found_fraction == 1.0
    assert torch.all(upper >= exact * (1 - 1e-9))                      # an upper bound ...
    assert float((upper / exact - 1).mean()) < 1e-3                      # ... and tight
    assert float((upper / exact - 1).max()) < 0.02
    # averaged over the prior: v.z / |v| ~ N(0, 1), so E[r] = E|N(e/|v|, 1)| (folded normal)
    prior_mean = stats.foldnorm(abs(float(e / v.norm()))).mean()
    assert est.low <= prior_mean <= est.high
    assert est.high - est.low < 0.3


def test_linear_multiclass_radius_is_bracketed_and_tight():
    weight, bias, decoder, offset = _linear_model(d=3, k=5, seed=2)
    z = torch.randn(300, 3, generator=torch.Generator().manual_seed(3))
    result = L.class_radius(L.linear_label_fn(weight, bias, decoder, offset), z,
                            generator=torch.Generator().manual_seed(4))
    exact = L.linear_class_radius(z, weight, bias, decoder, offset)
    assert result.found.all()
    assert torch.all(result.upper >= exact * (1 - 1e-9))
    assert float((result.upper / exact - 1).mean()) < 2e-3
    assert torch.isnan(result.lower).all()                               # nothing certified


def test_found_points_belong_to_another_class_at_the_reported_distance():
    label_fn = L.lattice_label_fn("clamp", 2.0)
    z = torch.randn(200, 2, generator=torch.Generator().manual_seed(5))
    result = L.class_radius(label_fn, z, generator=torch.Generator().manual_seed(6))
    assert torch.all(label_fn(result.points) != label_fn(z))
    assert torch.equal(result.labels, label_fn(z))
    assert torch.allclose(torch.linalg.vector_norm(result.points - z, dim=1), result.upper)


def test_found_points_stay_in_another_class_when_evaluated_alone_in_float32():
    # float32 kernels round differently with the batch size: a point bisected onto the boundary
    # must still be of another class when c(g(.)) is evaluated on it alone
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2)).float()
    means = L.grid_means(2, dtype=torch.float32)

    def label_fn(z):
        return L.nearest_mode(net(z), means)
    z = torch.randn(150, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float32)
    result = L.class_radius(label_fn, z, generator=torch.Generator().manual_seed(2))
    assert result.found.sum() > 100
    for i in result.found.nonzero().squeeze(1).tolist():
        assert label_fn(result.points[i:i + 1]).item() != result.labels[i].item()


def test_search_is_seeded():
    z = torch.randn(50, 2, generator=torch.Generator().manual_seed(7))
    runs = [L.class_radius(L.lattice_label_fn(), z, generator=torch.Generator().manual_seed(8))
            for _ in range(2)]
    assert torch.equal(runs[0].upper, runs[1].upper)


def test_unfound_boundary_is_reported_as_infinite_not_guessed():
    # every z is of class 0 unless |z| > 3: from z near 0, max_radius 1 finds nothing
    def label_fn(z):
        return (z.norm(dim=1) > 3).long()
    z = torch.zeros(4, 2)
    result = L.class_radius(label_fn, z, max_radius=1.0, generator=torch.Generator().manual_seed(0))
    assert not result.found.any() and torch.isinf(result.upper).all()
    est = L.expected_class_radius(label_fn, dim=2, n=20, max_radius=1.0)
    assert est.found_fraction < 1 and math.isinf(est.mean) and math.isnan(est.low)
    # with room to search it finds the circle: r = 3 - |z| exactly (in 2D, up to the directions)
    result = L.class_radius(label_fn, z, max_radius=4.0, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(result.upper, torch.full((4,), 3.0), atol=1e-6)


def test_lower_bound_is_reported_and_checked():
    weight, bias, decoder, offset = _linear_model(d=2, k=3, seed=9)
    z = torch.randn(100, 2, generator=torch.Generator().manual_seed(10))
    label_fn = L.linear_label_fn(weight, bias, decoder, offset)

    def exact(points):
        return L.linear_class_radius(points, weight, bias, decoder, offset)
    result = L.class_radius(label_fn, z, lower_bound=exact, generator=torch.Generator().manual_seed(1))
    assert torch.all(result.lower <= result.upper * (1 + 1e-9))
    assert torch.allclose(result.lower, result.upper, rtol=1e-3)        # bracket closes in 2D
    with pytest.raises(ValueError, match="not a valid lower bound"):
        L.class_radius(label_fn, z, lower_bound=lambda p: exact(p) + 1.0)


# ---------------------------------------------------------------------------- example 2.1

def test_example21_closed_form():
    value = L.example21_expected_radius()
    # hand: 4 Phi(1) - 3 - 2 phi(0) + 4 phi(1) = 3.36537898 - 3 - 0.79788456 + 0.96788290
    assert value == pytest.approx(0.5353773216, abs=1e-9)
    quad = integrate.quad(lambda t: abs(abs(t) - 1) * stats.norm.pdf(t), -1, 1)[0] \
        + 2 * integrate.quad(lambda t: (t - 1) * stats.norm.pdf(t), 1, np.inf)[0]
    assert value == pytest.approx(quad, abs=1e-9)
    p = L.example21_probabilities()
    assert p == pytest.approx([0.6826894921, 0.3173105079])
    assert not L.bound_applies(p)                    # two classes: theorem 3.1 does not cover it
    assert value <= L.isoperimetric_bound(p)         # the isoperimetric bound still does


def test_example21_search_matches_closed_form():
    est = L.expected_class_radius(L.example21_labels, dim=1, n=1500, seed=1, confidence=0.999)
    exact = L.example21_radius(est.z)
    # in 1D the two antithetic directions are all there is: only bisection error is left
    assert torch.all(est.radius.upper >= exact - 1e-12)
    assert torch.allclose(est.radius.upper, exact, atol=1e-6)
    assert est.low <= L.example21_expected_radius() <= est.high


# ---------------------------------------------------------------------------- example 2.2

def test_lattice_classifier_is_the_paper_c():
    x = 10 * torch.rand(2000, 2, generator=torch.Generator().manual_seed(11)) - 5
    points = torch.tensor([(-4.0 + 2 * i, -4.0 + 2 * j) for i in range(5) for j in range(5)])
    brute = torch.stack([((points - row) ** 2).sum(dim=1).argmin() for row in x])
    assert torch.equal(L.lattice_classify(x), brute)
    cuts = torch.tensor(L.LATTICE_IMAGE_CUTS)                   # Voronoi cells are boxes
    cells = torch.bucketize(x.T.contiguous(), cuts)
    assert torch.equal(L.lattice_classify(x), 5 * cells[0] + cells[1])


@pytest.mark.parametrize("kind, scale", [("cdf", 1.0), ("clamp", 2.0)])
def test_lattice_search_matches_exact_radius(kind, scale):
    label_fn = L.lattice_label_fn(kind, scale)
    est = L.expected_class_radius(label_fn, dim=2, n=600, seed=2, confidence=0.999)
    exact = L.lattice_radius(est.z, kind, scale)
    assert torch.all(est.radius.upper >= exact * (1 - 1e-9))
    assert float((est.radius.upper / exact - 1).mean()) < 1e-3
    expected = L.lattice_expected_radius(kind, scale)
    assert est.low <= expected <= est.high
    # the integral against a large Monte Carlo average of the exact radius
    z = torch.randn(200_000, 2, generator=torch.Generator().manual_seed(12))
    mc = L.lattice_radius(z, kind, scale)
    assert abs(float(mc.mean()) - expected) < 4 * float(mc.std()) / math.sqrt(len(z))


def test_lattice_probabilities_and_bounds():
    p = L.lattice_probabilities("cdf")
    assert p == pytest.approx(np.full(25, 1 / 25))          # g = 10 Phi(z) - 5 is uniform on the box
    z = torch.randn(100_000, 2, generator=torch.Generator().manual_seed(13))
    freq = L.class_frequencies(L.lattice_label_fn("clamp", 2.0)(z), 25)
    q = L.lattice_probabilities("clamp", 2.0)
    assert np.all(np.abs(freq - q) < 4 * np.sqrt(q * (1 - q) / len(z)) + 1e-12)
    radius = L.lattice_expected_radius("cdf")
    assert radius <= L.isoperimetric_bound(p) <= L.uniform_bound(25)


# ---------------------------------------------------------------------------- the bounds

def test_bound_against_hand_values():
    # h(x) = log(4 pi log(1/x)) / sqrt(2 log(1/x)); x = 0.1: log 10 = 2.302585,
    # log(4 pi 2.302585) = log(28.935138) = 3.3650567, sqrt(4.605170) = 2.1459660
    assert L.diversity_bound(0.1) == pytest.approx(3.3650567 / 2.1459660, rel=1e-6)
    # K = 5: log 5 = 1.609438, log(20.22479) = 3.006909, sqrt(3.218876) = 1.794123
    assert L.uniform_bound(5) == pytest.approx(3.006909 / 1.794123, rel=1e-6)
    assert L.uniform_bound(25) == pytest.approx(1.4582811, rel=1e-6)
    assert L.uniform_bound(25) == L.diversity_bound(L.collision_from_probabilities(np.full(25, 0.04)))
    assert np.allclose(L.diversity_bound(np.array([0.1, 0.04])), [1.5680848, 1.4582811])


def _random_valid_p(rng: np.random.Generator, k: int) -> np.ndarray:
    """A random probability vector on k classes with every entry at most 1/5."""
    while True:
        p = rng.dirichlet(np.full(k, rng.uniform(0.3, 3.0)))
        if p.max() <= 0.2:
            return p


@pytest.mark.parametrize("k", [5, 8, 25, 100])
def test_uniform_p_minimises_the_bound(k):
    rng = np.random.default_rng(k)
    uniform = np.full(k, 1 / k)
    for _ in range(40 if k > 5 else 3):
        p = _random_valid_p(rng, k) if k > 5 else rng.permutation(uniform)
        assert L.bound_applies(p)
        bound = L.diversity_bound(L.collision_from_probabilities(p))
        assert bound >= L.uniform_bound(k) - 1e-12
        # the proof's chain: isoperimetric <= sum_i p_i h(p_i) <= h(||p||^2)
        assert L.isoperimetric_bound(p) <= L.per_class_bound(p) + 1e-12
        assert L.per_class_bound(p) <= bound + 1e-12
        # the isoperimetric bound is Schur-convex too: smallest at the uniform p
        assert L.isoperimetric_bound(p) >= L.isoperimetric_bound(uniform) - 1e-12
    assert L.diversity_bound(L.collision_from_probabilities(uniform)) == pytest.approx(L.uniform_bound(k))


def test_bound_decreases_in_k_towards_zero():
    values = [L.uniform_bound(k) for k in range(5, 2000)]
    assert np.all(np.diff(values) < 0)
    assert L.diversity_bound(1e-300) < 0.25           # theorem 3.3: slowly, to zero


def test_isoperimetric_bound_is_exact_for_a_half_space():
    # a single hyperplane at signed distance b from the origin: r = |N(b, 1)|, half-spaces are
    # the extremal sets of Gaussian isoperimetry, so lemma B.1's bound holds with equality
    for b in (0.0, 0.4, -1.3):
        p = np.array([stats.norm.cdf(b), stats.norm.sf(b)])
        assert L.isoperimetric_bound(p) == pytest.approx(stats.foldnorm(abs(b)).mean(), rel=1e-9)


def test_lemmas_of_the_proof_hold_numerically():
    x = np.geomspace(1e-12, 0.2, 20_000)
    # lemma B.2 with K = 1/x >= 5
    assert np.all(stats.norm.isf(x) >= np.sqrt(np.log(1 / (4 * np.pi * x ** 2 * np.log(1 / x)))))
    grid = np.linspace(1e-6, 0.99, 50_001)
    h = L.diversity_bound(grid)
    assert np.all(h[2:] - 2 * h[1:-1] + h[:-2] <= 0)                     # lemma B.6: concave
    assert np.all(np.diff(h[grid <= 0.55]) > 0)                          # lemma B.7: increasing
    assert not L.bound_applies([0.25, 0.25, 0.25, 0.25])
    assert L.bound_applies([0.2] * 5) and L.bound_applies([0.2, 0.2, 0.2, 0.2, 0.2, 0.0])


def test_max_collision_entropy_inverts_the_bound():
    for radius in (0.3, 1.0, 1.6):
        y = L.max_collision_entropy(radius)
        assert y >= math.log(5)
        assert L.diversity_bound(math.exp(-y)) == pytest.approx(radius, rel=1e-9)
    assert math.isnan(L.max_collision_entropy(1.7))                     # above h(log 5)


# ---------------------------------------------------------------------------- collisions

def test_collision_estimator_hand_value_and_exact_unbiasedness():
    assert L.collision_probability([0, 0, 1], 2) == pytest.approx(1 / 3)   # 2 of 6 ordered pairs
    assert L.collision_probability(torch.tensor([2, 2, 2, 2]), 3) == 1.0
    # expectation and variance over every sample of size n, against sum p^2 and the SE formula
    p, n = np.array([0.5, 0.3, 0.2]), 4
    values, weights = [], []
    for sample in itertools.product(range(3), repeat=n):
        values.append(L.collision_probability(list(sample), 3))
        weights.append(np.prod(p[list(sample)]))
    mean = np.dot(weights, values)
    assert mean == pytest.approx(np.sum(p ** 2), abs=1e-12)
    variance = np.dot(weights, (np.array(values) - mean) ** 2)
    assert L.collision_std_error(p, n) == pytest.approx(math.sqrt(variance), rel=1e-9)


def test_collision_estimator_on_a_large_sample():
    rng = np.random.default_rng(14)
    p = rng.dirichlet(np.ones(10))
    labels = rng.choice(10, size=20_000, p=p)
    estimate = L.collision_probability(labels, 10)
    assert abs(estimate - L.collision_from_probabilities(p)) < 4 * L.collision_std_error(p, 20_000)


# ---------------------------------------------------------------------------- 2D grid

def test_grid_helpers():
    means = L.grid_means(2)
    assert means.shape == (25, 2)
    assert means[0].tolist() == [-4.0, -4.0] and means[-1].tolist() == [4.0, 4.0]
    assert torch.equal(means, L.grid_means(2, dtype=torch.float64))
    g = torch.Generator().manual_seed(15)
    # 300 samples on modes 0, 7 and 12 (std 0.05), plus 10 far-off samples at 0.5 from mode 3
    idx = torch.tensor([0] * 100 + [7] * 100 + [12] * 100)
    samples = means[idx] + 0.05 * torch.randn(300, 2, generator=g)
    samples = torch.cat([samples, means[3] + torch.tensor([[0.5, 0.0]] * 10)])
    assert torch.equal(L.nearest_mode(samples[:300], means), idx)
    counts = L.mode_counts(samples, means)
    assert torch.all(counts[[0, 7, 12]] >= 95)                   # P[chi2_2 <= 9] = 0.989
    assert counts[3] == 0 and counts.sum() <= 300
    assert L.modes_captured(samples, means) == 3
    assert L.modes_captured(samples, means, min_count=101) == 0
    assert L.modes_captured(samples, means, n_std=11.0) == 4              # 0.5 < 11 * 0.05
    assert L.high_quality_fraction(samples, means) == pytest.approx(float(counts.sum()) / 310)


# ---------------------------------------------------------------------------- bad inputs

@pytest.mark.parametrize("call, message", [
    (lambda: L.collision_probability([0, 1], 0), "K must be an integer >= 1"),
    (lambda: L.collision_probability([0, 3], 3), r"integers in \[0, 3\)"),
    (lambda: L.collision_probability([0], 3), "at least two"),
    (lambda: L.collision_from_probabilities([0.5, 0.4]), "summing to one"),
    (lambda: L.isoperimetric_bound([1.2, -0.2]), "non-negative"),
    (lambda: L.uniform_bound(1), "K must be an integer >= 2"),
    (lambda: L.diversity_bound(0.0), "strictly between 0 and 1"),
    (lambda: L.diversity_bound(1.0), "strictly between 0 and 1"),
    (lambda: L.expected_class_radius(L.example21_labels, dim=-1, n=10), "dim must be >= 1"),
    (lambda: L.grid_means(-1), "n must be >= 0"),
    (lambda: L.class_radius(L.example21_labels, torch.zeros(3, 1), directions=3), "even number"),
    (lambda: L.lattice_radius(torch.zeros(1, 2), kind="tanh"), "kind must be"),
    (lambda: L.collision_std_error([1.0], 1), "n must be >= 2"),
])
def test_bad_inputs_raise_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_the_isoperimetric_bound_is_infinite_with_a_single_class():
    assert L.isoperimetric_bound([1.0, 0.0]) == math.inf
    assert math.isfinite(L.isoperimetric_bound([0.999, 0.001]))


# ---------------------------------------------------------------------------- label statistics

def test_label_statistics_by_hand():
    stats_ = L.label_statistics(np.array([0, 0, 1, 2]), 4)
    # counts (2, 1, 1, 0): unbiased collision 2 * 1 / (4 * 3) = 1/6; p_0 = 1/2 > 1/5
    assert stats_.n == 4 and stats_.classes_seen == 3
    assert np.allclose(stats_.frequencies, [0.5, 0.25, 0.25, 0.0])
    assert stats_.collision == pytest.approx(1 / 6)
    assert stats_.collision_entropy == pytest.approx(math.log(6))
    assert not stats_.applies and math.isnan(stats_.per_class)
    assert stats_.theorem_bound == pytest.approx(L.diversity_bound(1 / 6))
    assert stats_.isoperimetric == pytest.approx(L.isoperimetric_bound([0.5, 0.25, 0.25]))
    single = L.label_statistics(np.zeros(10, dtype=int), 3)
    assert single.collision == 1.0 and single.collision_entropy == 0.0
    assert single.theorem_bound == math.inf and single.isoperimetric == math.inf
    spread = L.label_statistics(np.arange(100) % 10, 10)
    assert spread.applies and spread.per_class == pytest.approx(L.per_class_bound(np.full(10, 0.1)))


def test_vectorised_collision_entropies_equal_one_sequence_at_a_time():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, size=(3, 40, 7))                           # sequences along axis 1
    entropies = L.collision_entropies(labels, 5, axis=1)
    assert entropies.shape == (3, 7)
    for i in range(3):
        for j in range(7):
            assert entropies[i, j] == pytest.approx(-math.log(L.collision_probability(labels[i, :, j], 5)))


def test_collision_entropy_difference_is_paired_and_separates_a_diverse_model_from_a_collapsed_one():
    rng = np.random.default_rng(1)
    diverse = rng.integers(0, 10, size=1500)
    collapsed = np.where(rng.random(1500) < 0.7, 0, diverse)              # 70% of draws fall on class 0
    evidence = L.collision_entropy_difference(diverse, collapsed, 10, resamples=999)
    expected = (math.log(1 / L.collision_probability(diverse, 10))
                - math.log(1 / L.collision_probability(collapsed, 10)))
    assert evidence.effect == pytest.approx(expected)
    assert 0 < evidence.low <= evidence.effect <= evidence.high and evidence.n == 1500
    with pytest.raises(ValueError, match="equal 1-d"):
        L.collision_entropy_difference(diverse, collapsed[:10], 10)
    with pytest.raises(ValueError, match=r"\[0, 10\)"):
        L.collision_entropy_difference(diverse, collapsed + 1, 10)


def test_capped_mean_radius_ranks_models_whose_search_found_no_boundary():
    weight, bias, decoder, offset = _linear_model(d=3, k=2, seed=4)
    linear = L.expected_class_radius(L.linear_label_fn(weight, bias, decoder, offset), dim=3, n=50, seed=0)
    assert L.capped_mean_radius(linear, cap=1e9) == pytest.approx(linear.mean)
    capped = L.capped_mean_radius(linear, cap=0.5)
    assert capped == pytest.approx(float(linear.radius.upper.clamp(max=0.5).mean())) and capped <= 0.5
    constant = L.expected_class_radius(lambda z: torch.zeros(len(z), dtype=torch.long), dim=3, n=20, seed=0,
                                       max_radius=2.0)
    assert constant.mean == math.inf and constant.found_fraction == 0.0
    assert L.capped_mean_radius(constant, cap=5.0) == pytest.approx(5.0)
    with pytest.raises(ValueError, match="cap"):
        L.capped_mean_radius(constant, cap=0.0)


def test_decoded_label_fn_is_the_classifier_of_the_decoder_mean_in_eval_mode():
    weight, bias, decoder, offset = _linear_model(d=4, k=3, seed=5)

    class LinearDecoderModel(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.norm = torch.nn.BatchNorm1d(6)          # in train mode it would normalise each batch
            self.norm.running_mean.copy_(offset.neg())   # eval: (x - (-offset)) / sqrt(1 + eps)
            self.norm.running_var.fill_(1 - self.norm.eps)

        def decode(self, z):
            return self.norm(z @ decoder.T)

    classifier = torch.nn.Linear(6, 3)
    with torch.no_grad():
        classifier.weight.copy_(weight)
        classifier.bias.copy_(bias)
    model = LinearDecoderModel().train()
    z = torch.randn(200, 4, generator=torch.Generator().manual_seed(0))
    labels = L.decoded_label_fn(model, classifier)(z)
    assert torch.equal(labels, L.linear_label_fn(weight, bias, decoder, offset)(z))
    assert model.training


# ---------------------------------------------------------------------------- holes

def test_nearest_code_distance_matches_brute_force_in_any_chunking():
    generator = torch.Generator().manual_seed(0)
    z, codes = torch.randn(37, 3, generator=generator), torch.randn(11, 3, generator=generator)
    brute = torch.stack([min((point - code).norm() for code in codes) for point in z])
    for chunk in (1, 5, 100):
        assert torch.allclose(L.nearest_code_distance(z, codes, chunk=chunk), brute)
    with pytest.raises(ValueError, match="non-empty codes"):
        L.nearest_code_distance(z, codes[:, :2])


def test_prior_reference_distances_are_seeded_and_shrink_as_codes_fill_the_prior():
    first = L.prior_reference_distances(2, n_codes=100, n_prior=2000, seed=3)
    assert torch.equal(first, L.prior_reference_distances(2, n_codes=100, n_prior=2000, seed=3))
    denser = L.prior_reference_distances(2, n_codes=10000, n_prior=2000, seed=3)
    # in 2-D the nearest of n codes is at a distance of order n^(-1/2): 100x the codes, ~10x closer
    ratio = float(first.median() / denser.median())
    assert 6 < ratio < 15
