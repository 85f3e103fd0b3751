"""The chapter registry: parameters cells, profiles and the typing of --set values."""
from __future__ import annotations

import pytest

from rvae import chapters
from rvae.chapters import Parameter, parse_assignments, parse_parameters_cell
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
    value = Parameter("p", declared, default).parse(text, "ch")
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize("declared, default, text", [
    (int, 1, "abc"), (int, 1, "0.5"), (float, 1.0, "fast"), (bool, False, "maybe"),
    (list, [1, 2], "[1, 'a']"), (list, [1, 2], "3"), (list, [1, 2], "[1,"),
])
def test_parse_rejects_ill_typed_text_with_the_parameter_named(declared, default, text):
    with pytest.raises(ParameterError, match=r"parameter 'p' of chapter ch"):
        Parameter("p", declared, default).parse(text, "ch")


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


def test_paper_profile_with_unknown_or_ill_typed_entries_is_refused(mini_book):
    make_chapter(mini_book, "02_bad", "pass", paper_profile="PAPER_PROFILE = {'stepz': 1}")
    make_chapter(mini_book, "03_bad", "pass", paper_profile="PAPER_PROFILE = {'steps': 'many'}")
    for name in ("02_bad", "03_bad"):
        with pytest.raises(ParameterError):
            chapters.get_chapter(name).profiles


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


def test_every_real_chapter_has_valid_parameters_and_paper_profile(monkeypatch):
    monkeypatch.delenv("RVAE_BOOK_ROOT", raising=False)
    found = chapters.all_chapters()
    assert found, "the book has no chapters"
    for chapter in found:
        assert set(chapters.RUNNER_PARAMETERS) <= set(chapter.parameters)
        assert chapter.parameters["profile"].default == "quick"
        assert chapter.parameters["device"].default == "cpu"
        resolved = chapter.resolve("paper", {}, "cpu")
        assert set(resolved) == set(chapter.parameters)
        assert all(p.help for p in chapter.parameters.values()), f"{chapter.name}: every parameter needs a help comment"
