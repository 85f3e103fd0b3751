"""The chapter registry: parameters cells, profiles and the typing of --set values."""
from __future__ import annotations

import pytest

from rvae.book import chapters
from rvae.book.chapters import Parameter, parse_assignments, parse_parameters_cell
from rvae.errors import ParameterError, UnknownChapterError

from conftest import make_chapter


def test_parameters_cell_reads_types_defaults_and_help():
    parsed = parse_parameters_cell(
        'steps = 3  # optimisation steps\nrate: float = 1  # step size\nname = "x"\nflag = True\n'
        "sizes = [1, 2]\n", "test")
    assert [p for p in parsed] == ["steps", "rate", "name", "flag", "sizes"]
    assert parsed["steps"] == Parameter("steps", int, 3, "optimisation steps")
    assert parsed["rate"].type is float and parsed["rate"].default == 1.0 and isinstance(parsed["rate"].default, float)
    assert parsed["flag"].type is bool and parsed["sizes"].type is list and parsed["name"].help == ""


@pytest.mark.parametrize("source", ["x = y", "x, y = 1, 2", "import os", "x = [i for i in range(3)]", "x = None"])
def test_parameters_cell_rejects_what_is_not_name_equals_literal(source):
    with pytest.raises(ParameterError):
        parse_parameters_cell(source, "test")


@pytest.mark.parametrize("declared, text, expected", [
    (int, "12", 12), (float, "0.5", 0.5), (float, "3", 3.0), (bool, "true", True), (bool, "0", False),
    (str, "hello world", "hello world"), (list, "[3, 4.5]", [3, 4.5]),
])
def test_parse_converts_command_line_text(declared, text, expected):
    default = {int: 1, float: 1.0, bool: False, str: "", list: [1.0, 2.0]}[declared]
    value = Parameter("p", declared, default).parse(text, "chapter ch")
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize("declared, default, text", [
    (int, 1, "abc"), (int, 1, "0.5"), (float, 1.0, "fast"), (bool, False, "maybe"),
    (list, [1, 2], "[1, 'a']"), (list, [1, 2], "3"), (list, [1, 2], "[1,"),
])
def test_parse_rejects_ill_typed_text_with_the_parameter_named(declared, default, text):
    with pytest.raises(ParameterError, match=r"parameter 'p' of chapter ch"):
        Parameter("p", declared, default).parse(text, "chapter ch")


def test_resolve_layers_profile_then_overrides(mini_book):
    chapter = chapters.get_chapter("01_demo")
    quick = chapter.resolve("quick", {}, "cpu")
    assert quick["steps"] == 3 and quick["profile"] == "quick" and quick["device"] == "cpu"
    paper = chapter.resolve("paper", {"label": "z"}, "cuda")
    assert paper["steps"] == 30 and paper["rate"] == 2.0 and paper["label"] == "z" and paper["device"] == "cuda"


def test_resolve_rejects_unknown_and_runner_parameters(mini_book):
    chapter = chapters.get_chapter("01")
    with pytest.raises(ParameterError, match="unknown parameter 'stepz'.*valid: steps, rate, label, verbose, sizes"):
        chapter.resolve("quick", {"stepz": "1"}, "cpu")
    with pytest.raises(ParameterError, match="--profile"):
        chapter.resolve("quick", {"profile": "paper"}, "cpu")
    with pytest.raises(ParameterError, match="unknown profile"):
        chapter.resolve("slow", {}, "cpu")


def test_profiles_with_unknown_or_ill_typed_entries_are_refused(mini_book):
    make_chapter(mini_book, "02_bad", "pass", profiles="PAPER_PROFILE = {'stepz': 1}")
    make_chapter(mini_book, "03_bad", "pass", profiles="FULL_PROFILE = {'steps': 'many'}")
    make_chapter(mini_book, "04_bad", "pass", profiles="FAST_PROFILE = {'steps': 2}")
    make_chapter(mini_book, "05_bad", "pass", profiles="FULL_PROFILE = {'steps': 2}\nFULL_PROFILE = {'steps': 3}")
    for name, message in [("02_bad", "unknown parameter 'stepz'"), ("03_bad", "is an int"),
                          ("04_bad", "may only assign FULL_PROFILE and PAPER_PROFILE"), ("05_bad", "assigned twice")]:
        with pytest.raises(ParameterError, match=message):
            chapters.get_chapter(name).profiles


def test_every_profile_resolves_and_a_missing_one_equals_quick(mini_book):
    chapter = chapters.get_chapter("01")
    assert chapter.resolve("full", {}, "cpu")["steps"] == 10 and chapter.resolve("paper", {}, "cpu")["steps"] == 30
    make_chapter(mini_book, "02_plain", "pass")
    plain = chapters.get_chapter("02_plain")
    assert plain.profiles == {"quick": {}, "full": {}, "paper": {}}
    make_chapter(mini_book, "03_same", "pass", profiles="FULL_PROFILE = PAPER_PROFILE = {'steps': 7}")
    assert chapters.get_chapter("03_same").profiles == {"quick": {}, "full": {"steps": 7}, "paper": {"steps": 7}}


def test_chapter_without_runner_parameters_is_refused(mini_book):
    make_chapter(mini_book, "02_nodevice", "pass", parameters='profile = "quick"\nsteps = 1')
    with pytest.raises(ParameterError, match="device"):
        chapters.get_chapter("02_nodevice").parameters


def test_unknown_chapter_lists_the_valid_ones(mini_book):
    with pytest.raises(UnknownChapterError, match=r"unknown chapter 'nope'; valid: 01_demo"):
        chapters.get_chapter("nope")


def test_parse_assignments_splits_at_the_first_equals_sign():
    assert parse_assignments(["a=1", "b=x=y"]) == {"a": "1", "b": "x=y"}
    with pytest.raises(ParameterError):
        parse_assignments(["novalue"])


def test_every_real_chapter_has_valid_parameters_and_profiles(monkeypatch):
    monkeypatch.delenv("RVAE_BOOK_ROOT", raising=False)
    found = chapters.all_chapters()
    assert found, "the book has no chapters"
    for chapter in found:
        assert set(chapters.RUNNER_PARAMETERS) <= set(chapter.parameters)
        assert chapter.parameters["profile"].default == "quick"
        assert chapter.parameters["device"].default == "cpu"
        for profile in chapters.PROFILES:
            assert set(chapter.resolve(profile, {}, "cpu")) == set(chapter.parameters)
        assert all(p.help for p in chapter.parameters.values()), f"{chapter.name}: every parameter needs a help comment"
        unconstrained = [p.name for p in chapter.parameters.values()
                         if p.valid is None and p.name not in chapters.RUNNER_PARAMETERS and p.name not in FREE_FORM]
        assert not unconstrained, f"{chapter.name}: parameters without valid values: {unconstrained}"


#: Parameters whose every value is meaningful (a folder name): no valid values to state.
FREE_FORM = {"checkpoint_dir"}


def test_help_comment_may_end_with_valid_values():
    parsed = parse_parameters_cell("steps = 3  # training steps; valid: [1, inf)\n"
                                   "radii = [0.0, 0.1]  # attack radii; valid: [0, 1]\n"
                                   "name = 'mnist'  # the data; valid: {mnist, fashion_mnist}\n"
                                   "free = 2.5  # no constraint", "test")
    assert parsed["steps"].help == "training steps" and str(parsed["steps"].valid) == "[1, inf)"
    assert str(parsed["radii"].valid) == "[0, 1]" and parsed["name"].valid.choices == ("mnist", "fashion_mnist")
    assert parsed["free"].valid is None and parsed["free"].help == "no constraint"
    assert parsed["steps"].parse("8", "chapter 01_demo") == 8
    with pytest.raises(ParameterError, match=r"parameter 'steps' of chapter 01_demo must be in \[1, inf\); got -5"):
        parsed["steps"].parse("-5", "chapter 01_demo")
    with pytest.raises(ParameterError, match=r"must hold values in \[0, 1\]"):
        parsed["radii"].parse("[0.1, 1.5]", "chapter 01_demo")
    with pytest.raises(ParameterError, match=r"must be in \{mnist, fashion_mnist\}; got 'cifar'"):
        parsed["name"].parse("cifar", "chapter 01_demo")


def test_default_outside_its_valid_values_or_unreadable_spec_is_refused():
    with pytest.raises(ParameterError, match="must be in"):
        parse_parameters_cell("steps = 0  # training steps; valid: [1, inf)", "test")
    with pytest.raises(ParameterError, match="neither an interval"):
        parse_parameters_cell("steps = 3  # training steps; valid: at least one", "test")


def test_profile_value_outside_the_valid_values_is_refused(mini_book):
    make_chapter(mini_book, "02_bad", "pass", profiles="PAPER_PROFILE = {'steps': 0}")
    with pytest.raises(ParameterError, match=r"parameter 'steps' of chapter 02_bad must be in \[1, inf\); got 0"):
        chapters.get_chapter("02_bad").profiles


def test_a_list_spec_ending_in_or_empty_admits_the_empty_list_and_checks_the_rest():
    parsed = parse_parameters_cell("extra = []  # more weights; valid: [0, inf) or empty\n"
                                   "radii = [0.1]  # attack radii; valid: [0, 1]", "test")
    extra = parsed["extra"]
    assert extra.empty_allowed and extra.valid_text == "[0, inf) or empty" and extra.help == "more weights"
    assert extra.parse("[]", "chapter 01_demo") == [] and extra.parse("[2, 3.5]", "chapter 01_demo") == [2.0, 3.5]
    with pytest.raises(ParameterError, match=r"must hold values in \[0, inf\)"):
        extra.parse("[-1.0]", "chapter 01_demo")
    with pytest.raises(ParameterError, match="non-empty list"):                 # without 'or empty'
        parsed["radii"].parse("[]", "chapter 01_demo")
    with pytest.raises(ParameterError, match="is no list"):
        parse_parameters_cell("steps = 3  # training steps; valid: [1, inf) or empty", "test")
