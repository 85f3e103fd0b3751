"""Valid values: intervals and choices as a reader writes them, checked on scalars and lists."""
from __future__ import annotations

import math
from dataclasses import dataclass

import pytest

from rvae.errors import ParameterError
from rvae.params import CheckedConfig, Valid, describe, option


@pytest.mark.parametrize("text, inside, outside", [
    ("[1, inf)", [1, 2, 10 ** 9], [0, -5, 0.999, math.nan]),
    ("(0, 1]", [1e-12, 0.5, 1.0], [0.0, 1.0000001, -1]),
    ("[0, 1)", [0.0, 0.999], [1.0, -1e-9]),
    ("[-1, 1]", [-1, 0, 1], [-1.01, 1.01]),
    ("{mnist, fashion_mnist}", ["mnist", "fashion_mnist"], ["cifar", "MNIST", 1]),
])
def test_intervals_and_choices_admit_exactly_their_values(text, inside, outside):
    valid = Valid.parse(text)
    assert all(valid.admits(v) for v in inside)
    assert not any(valid.admits(v) for v in outside)
    assert Valid.parse(str(valid)) == valid                    # the printed form reads back


def test_booleans_are_not_numbers():
    assert not Valid.parse("[0, 1]").admits(True)


def test_lists_are_checked_elementwise_and_must_not_be_empty():
    valid = Valid.parse("[0, 1]")
    assert valid.check("radii", [0.0, 0.5, 1.0], "chapter 03") == [0.0, 0.5, 1.0]
    with pytest.raises(ParameterError, match=r"radii of chapter 03 must hold values in \[0, 1\]; got \[0.5, 2.0\]"):
        valid.check("radii", [0.5, 2.0], "chapter 03")
    with pytest.raises(ParameterError, match="non-empty"):
        valid.check("radii", [], "chapter 03")


def test_unreadable_spec_is_a_value_error():
    for text in ("1..5", "[1, 2", ">= 1", ""):
        with pytest.raises(ValueError):
            Valid.parse(text)


@dataclass(frozen=True)
class _Example(CheckedConfig):
    count: int = option(3, "how many", "[1, inf)")
    kind: str = option("a", "which", "{a, b}")
    free: float = option(0.5, "no constraint")


def test_checked_config_refuses_out_of_range_fields_in_one_line():
    assert _Example(count=7, kind="b").count == 7
    with pytest.raises(ParameterError) as error:
        _Example(count=0)
    assert str(error.value) == "count of _Example must be in [1, inf); got 0"
    with pytest.raises(ParameterError, match=r"kind of _Example must be in \{a, b\}; got 'c'"):
        _Example(kind="c")
    assert _Example(free=-1e9).free == -1e9


def test_describe_lists_fields_with_help_and_valid_values():
    rows = {row.name: row for row in describe(_Example)}
    assert list(rows) == ["count", "kind", "free"]
    assert (rows["count"].default, str(rows["count"].valid), rows["count"].help) == (3, "[1, inf)", "how many")
    assert rows["free"].valid is None


def test_nested_lists_are_checked_element_by_element():
    valid = Valid.parse("[0, 1)")
    assert valid.check("rho_settings", [[0.97, 0.975], [0.5, 0.0]], "chapter 04") == [[0.97, 0.975], [0.5, 0.0]]
    with pytest.raises(ParameterError, match="must hold values in"):
        valid.check("rho_settings", [[0.97, 1.0]], "chapter 04")
    with pytest.raises(ParameterError, match="non-empty"):
        valid.check("rho_settings", [[]], "chapter 04")
