"""rvae.costs: every variant timed, the global RNG left alone, bad arguments refused (no speed is asserted:
speed targets live in benchmarks/)."""
from __future__ import annotations

import pytest
import torch

from rvae.costs import step_costs
from rvae.methods import get_method


def test_every_variant_is_timed_and_the_global_rng_is_left_alone():
    x = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    variants = {"VAE": ("elbo", None), "free": ("se-free", get_method("se-free").config())}
    state = torch.get_rng_state()
    seconds = step_costs(variants, "mlp", (1, 28, 28), 2, x, steps=1, repeats=2)
    assert torch.equal(torch.get_rng_state(), state)
    assert set(seconds) == set(variants) and all(s > 0 for s in seconds.values())


@pytest.mark.parametrize("steps, repeats", [(0, 1), (1, 0)])
def test_bad_counts_are_refused_in_one_line(steps, repeats):
    with pytest.raises(ValueError) as error:
        step_costs({"VAE": ("elbo", None)}, "mlp", (1, 28, 28), 2, torch.rand(2, 1, 28, 28), steps, repeats)
    assert "\n" not in str(error.value) and "must be >= 1" in str(error.value)
