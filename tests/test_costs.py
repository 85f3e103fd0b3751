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


def test_selection_options_build_valid_configs_of_the_se_family():
    from rvae.costs import selection_options
    from rvae.methods import get_method
    options = selection_options(gamma=10.0, selection_eps=0.1, reference_budget=20, plain_budgets=[1, 5],
                                warm_budget=2, warm_step=0.5, free_step=0.5)
    assert list(options) == ["VAE", "SE L=20", "SE L=1", "SE L=5", "warm", "free"]
    assert [method for method, _ in options.values()] == ["elbo", "se", "se", "se", "se-warm", "se-free"]
    configs = {label: get_method(method).make_config(**fields) for label, (method, fields) in options.items()}
    assert [configs[f"SE L={b}"].selection_budget for b in (20, 1, 5)] == [20, 1, 5]
    assert configs["warm"].selection_budget == 2 and configs["free"].selection_step == 0.5
    assert all(configs[label].gamma == 10.0 and configs[label].selection_eps == 0.1 for label in list(options)[1:])
