"""rvae.celeba: the 17 CelebA tasks, the papers' Tables 1 and 3 as transcribed, the task labels and the
majority rate; and the CelebA files under the data root (header and partition, read as plain text)."""
from __future__ import annotations

import os
from collections import Counter

import numpy as np
import pytest
import torch

from rvae import celeba
from rvae.data import CELEBA_ATTRIBUTES, data_root
from rvae.errors import ParameterError

CELEBA_DIR = data_root() / "celeba"
ATTR_FILE, PARTITION_FILE, IMAGE_DIR = (CELEBA_DIR / "list_attr_celeba.txt", CELEBA_DIR / "list_eval_partition.txt",
                                        CELEBA_DIR / "img_align_celeba")


def test_the_17_tasks_are_distinct_celeba_attributes():
    names = [name for name, _ in celeba.TASKS]
    attributes = [attribute for _, attribute in celeba.TASKS]
    assert len(celeba.TASKS) == 17
    assert len(set(names)) == 17 and len(set(attributes)) == 17
    assert set(attributes) <= set(CELEBA_ATTRIBUTES)
    assert celeba.TASK_NAMES == tuple(names)
    assert dict(celeba.TASKS)["Beard"] == "No_Beard" and dict(celeba.TASKS)["Gender"] == "Male"


@pytest.mark.skipif(not ATTR_FILE.is_file(), reason=f"no CelebA attribute file at {ATTR_FILE}")
def test_the_attribute_file_header_lists_the_40_names_with_all_17_tasks():
    with open(ATTR_FILE) as f:
        count, header = int(f.readline()), f.readline().split()
    assert count > 0
    assert header == CELEBA_ATTRIBUTES
    assert {attribute for _, attribute in celeba.TASKS} <= set(header)


@pytest.mark.skipif(not (PARTITION_FILE.is_file() and IMAGE_DIR.is_dir()),
                    reason=f"no CelebA partition file or image folder under {CELEBA_DIR}")
def test_the_partition_of_the_images_on_disk_is_4560_780_660():
    present = set(os.listdir(IMAGE_DIR))
    with open(PARTITION_FILE) as f:
        codes = Counter(code for name, code in (line.split() for line in f if line.strip()) if name in present)
    assert dict(codes) == {"0": 4560, "1": 780, "2": 660}


def in_percent(value):
    return value is None or 0.0 <= value <= 100.0


def test_table1_has_the_17_tasks_with_percentages():
    assert set(celeba.TABLE1) == set(celeba.TASK_NAMES)
    for task, row in celeba.TABLE1.items():
        assert set(row) == {"VAE", "SE"}, task
        assert all(len(pair) == 2 and all(in_percent(v) for v in pair) for pair in row.values()), task
    assert sorted(celeba.TABLE1_ORDER) == sorted(celeba.TASK_NAMES)
    assert set(celeba.TABLE1_NAMES) <= set(celeba.TASK_NAMES)
    assert celeba.TABLE1_SETTINGS == {"radius": 0.1, "iterations": 100, "restarts": 10}
    assert celeba.TABLE1["Bald"] == {"VAE": (97.8, 0.0), "SE": (97.4, 86.5)}


def test_table1_lists_its_rows_by_decreasing_se_adversarial_accuracy():
    adversarial = [celeba.TABLE1[task]["SE"][1] for task in celeba.TABLE1_ORDER]
    assert adversarial == sorted(adversarial, reverse=True)


@pytest.mark.parametrize("table", ["TABLE3", "TABLE3_NOMINAL"])
def test_table3_has_the_17_tasks_and_the_6_methods_with_percentages(table):
    rows = getattr(celeba, table)
    assert set(rows) == set(celeba.TASK_NAMES)
    for task, row in rows.items():
        assert tuple(row) == celeba.TABLE3_METHODS, task
        assert all(in_percent(v) for v in row.values()), task
    assert len(celeba.TABLE3_METHODS) == 6
    assert celeba.TABLE3_SETTINGS == {"radius": 0.1, "iterations": 20, "restarts": 10}


def test_table3_extra_rows_cover_the_6_methods():
    for row in (celeba.TABLE3_TIME_FACTOR, celeba.TABLE3_MSE, celeba.TABLE3_FID):
        assert tuple(row) == celeba.TABLE3_METHODS
        assert all(v is None or v > 0 for v in row.values())
    assert celeba.TABLE3_TIME_FACTOR["VAE"] == 1.0
    assert celeba.TABLE3_MSE["SE20"] is None and celeba.TABLE3_FID["SE20"] is None


def test_table3_se20_repeats_table1_se_and_adversarial_never_exceeds_nominal():
    for task in celeba.TASK_NAMES:
        assert celeba.TABLE1[task]["SE"] == (celeba.TABLE3_NOMINAL[task]["SE20"], celeba.TABLE3[task]["SE20"]), task
        for method in celeba.TABLE3_METHODS:
            assert celeba.TABLE3[task][method] <= celeba.TABLE3_NOMINAL[task][method], (task, method)
        assert celeba.TABLE1[task]["VAE"][1] <= celeba.TABLE1[task]["VAE"][0], task


@pytest.mark.parametrize("dtype", [torch.int64, torch.uint8, torch.bool, torch.float32])
def test_task_labels_read_the_right_columns(dtype):
    attributes = torch.eye(40, dtype=dtype)      # row i has only attribute i: each column is one-hot at its index
    labels = celeba.task_labels(attributes)
    assert tuple(labels) == celeba.TASK_NAMES
    # indices by hand from the header of list_attr_celeba.txt
    by_hand = {"Bald": 4, "Bangs": 5, "Gender": 20, "Mustache": 22, "Beard": 24, "Smiling": 31, "Hat": 35,
               "Lipstick": 36, "Necklace": 37, "Necktie": 38}
    for name, column in by_hand.items():
        assert labels[name].tolist() == [int(i == column) for i in range(40)], name
    for name, attribute in celeba.TASKS:
        assert labels[name].dtype == torch.int64 and labels[name].shape == (40,)
        assert int(labels[name].argmax()) == CELEBA_ATTRIBUTES.index(attribute)


def test_task_labels_do_not_alias_the_attributes():
    attributes = torch.zeros(3, 40, dtype=torch.int64)
    attributes[:, 20] = torch.tensor([1, 0, 1])
    labels = celeba.task_labels(attributes)
    attributes.fill_(0)
    assert labels["Gender"].tolist() == [1, 0, 1]


@pytest.mark.parametrize("labels, rate", [
    ([1, 0, 0, 0], 0.75), ([1, 1, 0, 1, 1], 0.8), ([1, 1, 1], 1.0), ([0, 1], 0.5), ([0], 1.0),
])
def test_majority_rate_is_the_frequency_of_the_commoner_class(labels, rate):
    assert celeba.majority_rate(torch.tensor(labels)) == pytest.approx(rate)
    assert celeba.majority_rate(torch.tensor(labels, dtype=torch.bool)) == pytest.approx(rate)


@pytest.mark.parametrize("function, value, message", [
    (celeba.task_labels, torch.zeros(5, 39), r"must be an \(N, 40\) tensor; got \(5, 39\)"),
    (celeba.task_labels, torch.zeros(40), r"must be an \(N, 40\) tensor; got \(40,\)"),
    (celeba.task_labels, np.zeros((5, 40)), "must be an .* tensor; got ndarray"),
    (celeba.task_labels, -torch.ones(5, 40), "must be 0/1.*found -1"),
    (celeba.task_labels, torch.full((5, 40), 0.5), "must be 0/1.*found 0.5"),
    (celeba.majority_rate, torch.zeros(3, 2), r"non-empty \(N,\) tensor; got \(3, 2\)"),
    (celeba.majority_rate, torch.zeros(0), r"non-empty \(N,\) tensor; got \(0,\)"),
    (celeba.majority_rate, [0, 1], "tensor; got list"),
    (celeba.majority_rate, torch.tensor([0, 1, 2]), "must be 0/1.*found 2"),
    (celeba.majority_rate, torch.tensor([0.0, float("nan")]), "must be 0/1.*found nan"),
])
def test_bad_input_is_refused_with_one_clear_line(function, value, message):
    with pytest.raises(ParameterError, match=message) as error:
        function(value)
    assert "\n" not in str(error.value)


# ------------------------------------------------------------------------------------------- sign test, classifier
def test_sign_test_counts_wins_drops_ties_and_matches_the_binomial():
    from scipy.stats import binom
    first = [3, 2, 5, 1, 4, 4, 7, 9, 0, 2]
    second = [1, 1, 2, 2, 4, 1, 3, 3, 0, 1]          # 7 wins, 1 loss, 2 ties
    evidence = celeba.sign_test(first, second)
    assert evidence.n == 8 and evidence.effect == pytest.approx(7 / 8)
    assert evidence.p_value == pytest.approx(2 * binom.sf(6, 8, 0.5))   # two-sided: P(X >= 7) + P(X <= 1)
    assert evidence.low < 7 / 8 < evidence.high and 0 <= evidence.low and evidence.high <= 1
    # Clopper-Pearson: the lower end is the beta quantile of (k, n - k + 1)
    from scipy.stats import beta
    assert evidence.low == pytest.approx(beta.ppf(0.025, 7, 2))


def test_sign_test_is_antisymmetric_and_all_ties_say_nothing():
    a, b = [0.9, 0.8, 0.2, 0.7, 0.6], [0.1, 0.3, 0.5, 0.2, 0.1]
    forward, backward = celeba.sign_test(a, b), celeba.sign_test(b, a)
    assert forward.effect == pytest.approx(1 - backward.effect)
    assert forward.low == pytest.approx(1 - backward.high) and forward.p_value == pytest.approx(backward.p_value)
    tied = celeba.sign_test([0.5, 0.2], [0.5, 0.2])
    assert (tied.n, tied.effect, tied.low, tied.high) == (0, 0.5, 0.0, 1.0)


@pytest.mark.parametrize("first, second, message", [
    ([1, 2], [1], "two equal, non-empty"),
    ([], [], "two equal, non-empty"),
    ([1, float("nan")], [0, 0], "finite"),
])
def test_sign_test_refuses_bad_input_in_one_line(first, second, message):
    with pytest.raises(ParameterError, match=message) as error:
        celeba.sign_test(first, second)
    assert "\n" not in str(error.value)


def test_a_probe_on_a_balanced_toy_task_beats_the_majority_rate_by_far():
    """Two balanced Gaussian classes 4 standard deviations apart along one direction of a 16-d code: the linear
    probe of the tables reaches the Bayes accuracy (Phi(2) ~ 0.977) on fresh points, far above the 0.5 of the
    constant answer."""
    from scipy.stats import norm
    from rvae.evaluate import probe_accuracy, train_linear_probe
    generator = torch.Generator().manual_seed(0)
    direction = torch.nn.functional.normalize(torch.randn(16, generator=generator), dim=0)

    def sample(n):
        labels = torch.arange(n) % 2
        return torch.randn(n, 16, generator=generator) + (4 * labels.float() - 2)[:, None] * direction, labels

    features, labels = sample(2000)
    test_features, test_labels = sample(4000)
    assert celeba.majority_rate(test_labels) == 0.5
    probe = train_linear_probe(features, labels, 2, epochs=30)
    assert probe_accuracy(probe, test_features, test_labels) == pytest.approx(norm.cdf(2), abs=0.015)


def test_the_attribute_classifier_learns_attributes_of_the_image_and_leaves_the_global_rng_alone():
    generator = torch.Generator().manual_seed(1)
    images = torch.rand(600, 3, 8, 8, generator=generator)
    attributes = (torch.rand(600, 3, generator=generator) > 0.5).long()
    images[attributes[:, 0] == 1, 0, :4, :4] = 1.0           # attribute 0: a red corner
    images[attributes[:, 1] == 1, 2, 4:, 4:] = 0.0           # attribute 1: no blue in the opposite corner
    state = torch.get_rng_state()
    classifier = celeba.train_attribute_classifier(images[:500], attributes[:500], steps=1500, hidden=(64, 32))
    assert torch.equal(torch.get_rng_state(), state)
    accuracy = celeba.attribute_accuracy(classifier, images[500:], attributes[500:])
    assert accuracy.shape == (3,)
    assert accuracy[0] > 0.9 and accuracy[1] > 0.85          # functions of the pixels are learned
    assert accuracy[2] < 0.7                                   # attribute 2, a coin flip, is not
    assert classifier.features(images[:2]).shape == (2, 32)


def test_the_attribute_classifier_refuses_bad_input_in_one_line():
    images = torch.rand(10, 3, 8, 8)
    with pytest.raises(ParameterError, match="0/1") as error:
        celeba.train_attribute_classifier(images, torch.full((10, 2), 2), steps=1)
    assert "\n" not in str(error.value)
    with pytest.raises(ParameterError, match="equally many"):
        celeba.train_attribute_classifier(images, torch.zeros(9, 2, dtype=torch.long), steps=1)
