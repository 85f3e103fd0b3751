"""The chapter registry: every ``notebooks/NN_name.ipynb`` is a chapter.

A chapter's parameters are read (never executed) from its cell tagged ``parameters``:
one ``name = literal`` per line, optionally annotated (``steps: int = 300``), with a trailing
``# comment`` as the help text, which may end with the valid values (``; valid: [1, inf)``, see
:class:`rvae.params.Valid`). Those defaults are the *quick* profile. The *paper* profile is
the dict literal ``PAPER_PROFILE = {...}`` in the cell tagged ``paper-profile``: overrides of
the quick defaults. Every chapter declares ``profile`` and ``device``; the runner sets them.
"""
from __future__ import annotations

import ast
import io
import os
import re
import tokenize
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import nbformat

from rvae.errors import ParameterError, UnknownChapterError
from rvae.params import Valid

PROFILES = ("quick", "full", "paper")     # weakest to strongest evidence
PROFILES_CELL_TAG = "profiles"
RUNNER_PARAMETERS = ("profile", "device")
DEVICES = ("cpu", "cuda")
_TYPES = {"int": int, "float": float, "str": str, "bool": bool, "list": list, "tuple": tuple}


def book_root() -> Path:
    """The repository root holding ``notebooks/`` and ``_toc.yml`` (``RVAE_BOOK_ROOT`` overrides)."""
    configured = os.environ.get("RVAE_BOOK_ROOT")
    root = Path(configured).expanduser().resolve() if configured else Path(__file__).resolve().parents[2]
    if not (root / "notebooks").is_dir():
        raise UnknownChapterError(
            f"no notebooks/ folder under {root}: run rvae from a checkout of the book "
            "(pip install -e .) or set RVAE_BOOK_ROOT to the checkout")
    return root


@dataclass(frozen=True)
class Parameter:
    """One entry of a chapter's parameters cell."""
    name: str
    type: type
    default: Any
    help: str = ""
    valid: Valid | None = None
    empty_allowed: bool = False      # a list parameter whose spec ends "or empty": [] is valid too

    @property
    def valid_text(self) -> str:
        """The valid values as the parameters cell states them ('' when none are stated)."""
        if self.valid is None:
            return ""
        return f"{self.valid} or empty" if self.empty_allowed else str(self.valid)

    @property
    def type_name(self) -> str:
        return self.type.__name__

    def parse(self, text: str, where: str) -> Any:
        """Convert a command-line string to a valid value of this parameter's type, or raise ParameterError.

        ``where`` names the parameter's owner in messages, e.g. 'chapter 03_smooth_encoders'.
        """
        return self.check(self._parse_text(text, where), where)

    def _parse_text(self, text: str, where: str) -> Any:
        def bad(expected: str) -> ParameterError:
            return ParameterError(f"parameter {self.name!r} of {where} is {expected}; "
                                  f"got {text!r}")
        if self.type is bool:
            lowered = text.strip().lower()
            if lowered in {"true", "1", "yes", "on"}:
                return True
            if lowered in {"false", "0", "no", "off"}:
                return False
            raise bad("a bool (true/false)")
        if self.type is int:
            try:
                return int(text)
            except ValueError:
                raise bad("an int") from None
        if self.type is float:
            try:
                return float(text)
            except ValueError:
                raise bad("a float") from None
        if self.type is str:
            return text
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            raise bad(f"a {self.type_name} literal such as {self.default!r}") from None
        return value

    def check(self, value: Any, where: str) -> Any:
        """Accept an already-typed value (ints for floats too) within the valid values, or raise ParameterError."""
        value = self._typed(value, where)
        if self.empty_allowed and isinstance(value, (list, tuple)) and len(value) == 0:
            return value
        if self.valid is not None:
            self.valid.check(f"parameter {self.name!r}", value, where)
        return value

    def _typed(self, value: Any, where: str) -> Any:
        expected = self.type
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if expected in (list, tuple) and isinstance(value, (list, tuple)):
            element_types = {type(v) for v in self.default}
            if element_types and not all(_element_fits(v, element_types) for v in value):
                raise ParameterError(
                    f"parameter {self.name!r} of {where} holds "
                    f"{'/'.join(sorted(t.__name__ for t in element_types))} values; got {value!r}")
            return expected(value)
        if type(value) is not expected:
            article = "an" if self.type_name[0] in "aeiou" else "a"
            raise ParameterError(f"parameter {self.name!r} of {where} is {article} {self.type_name}; "
                                 f"got {value!r}")
        return value


def _element_fits(value: Any, element_types: set[type]) -> bool:
    if type(value) in element_types:
        return True
    return float in element_types and isinstance(value, int) and not isinstance(value, bool)


def _comments_by_line(source: str) -> dict[int, str]:
    comments = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            comments[token.start[0]] = token.string.lstrip("#").strip()
    return comments


_VALID = re.compile(r"(?:^|;\s*)valid:\s*(.*)$")
_OR_EMPTY = re.compile(r",?\s+or\s+empty\s*$")


def _split_help(comment: str, name: str, where: str) -> tuple[str, Valid | None, bool]:
    """'help text; valid: [1, inf)' -> ('help text', Valid, False); a spec ending in 'or empty'
    (a list that may be empty, e.g. 'valid: [0, inf) or empty') gives True."""
    found = _VALID.search(comment)
    if not found:
        return comment, None, False
    spec = found.group(1)
    empty_allowed = bool(_OR_EMPTY.search(spec))
    try:
        valid = Valid.parse(_OR_EMPTY.sub("", spec))
    except ValueError as error:
        raise ParameterError(f"{where}: parameter {name!r}: {error}") from None
    return comment[:found.start()].strip(), valid, empty_allowed


def parse_parameters_cell(source: str, where: str) -> dict[str, Parameter]:
    """Read ``name = literal`` lines (with optional annotation and help comment) from a cell."""
    try:
        tree = ast.parse(source)
    except SyntaxError as error:
        raise ParameterError(f"{where}: the parameters cell is not valid Python ({error.msg})") from None
    comments = _comments_by_line(source)
    parameters: dict[str, Parameter] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name, annotation, value_node = node.targets[0].id, None, node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            name, annotation, value_node = node.target.id, node.annotation, node.value
        else:
            raise ParameterError(f"{where}: line {node.lineno} of the parameters cell is not "
                                 "'name = literal'")
        try:
            default = ast.literal_eval(value_node)
        except ValueError:
            raise ParameterError(f"{where}: the default of {name!r} is not a literal") from None
        if annotation is not None:
            if not (isinstance(annotation, ast.Name) and annotation.id in _TYPES):
                raise ParameterError(f"{where}: parameter {name!r} has an unsupported annotation")
            declared = _TYPES[annotation.id]
        else:
            declared = type(default)
        if declared not in _TYPES.values():
            raise ParameterError(f"{where}: parameter {name!r} has a default of unsupported type "
                                 f"{type(default).__name__}")
        help_text, valid, empty_allowed = _split_help(comments.get(node.lineno, ""), name, where)
        if empty_allowed and declared not in (list, tuple):
            raise ParameterError(f"{where}: parameter {name!r} is no list, so it cannot be 'or empty'")
        parameter = Parameter(name, declared, default, help_text, valid, empty_allowed)
        parameters[name] = Parameter(name, declared, parameter.check(default, where), help_text, valid, empty_allowed)
    return parameters


def _tagged_cells(notebook: nbformat.NotebookNode, tag: str) -> list[nbformat.NotebookNode]:
    return [cell for cell in notebook.cells if tag in cell.get("metadata", {}).get("tags", [])]


@dataclass
class Chapter:
    """A chapter notebook with its parameters and profiles."""
    name: str
    path: Path
    notebook: nbformat.NotebookNode = field(repr=False)

    @classmethod
    def load(cls, path: Path) -> "Chapter":
        return cls(path.stem, path, nbformat.read(path, as_version=4))

    @cached_property
    def title(self) -> str:
        for cell in self.notebook.cells:
            if cell.cell_type == "markdown":
                for line in cell.source.splitlines():
                    if line.startswith("# "):
                        return line[2:].strip()
        return self.name

    @cached_property
    def parameters(self) -> dict[str, Parameter]:
        cells = _tagged_cells(self.notebook, "parameters")
        if len(cells) != 1:
            raise ParameterError(f"chapter {self.name} must have exactly one cell tagged 'parameters' "
                                 f"(found {len(cells)})")
        parameters = parse_parameters_cell(cells[0].source, f"chapter {self.name}")
        missing = [name for name in RUNNER_PARAMETERS if name not in parameters]
        if missing:
            raise ParameterError(f"chapter {self.name}: the parameters cell must define {', '.join(missing)}")
        return parameters

    @cached_property
    def profiles(self) -> dict[str, dict[str, Any]]:
        """Profile name -> parameter values that differ from the quick defaults (every profile of PROFILES)."""
        cells = _tagged_cells(self.notebook, PROFILES_CELL_TAG)
        if len(cells) > 1:
            raise ParameterError(f"chapter {self.name} has more than one '{PROFILES_CELL_TAG}' cell")
        declared: dict[str, dict[str, Any]] = {}
        if cells:
            try:
                tree = ast.parse(cells[0].source)
            except SyntaxError as error:
                raise ParameterError(f"chapter {self.name}: the profiles cell is not valid Python ({error.msg})") from None
            variables = {f"{name.upper()}_PROFILE": name for name in PROFILES if name != "quick"}
            for node in tree.body:                 # FULL_PROFILE = {...}, or FULL_PROFILE = PAPER_PROFILE = {...}
                targets = [getattr(t, "id", None) for t in getattr(node, "targets", [])]
                if not isinstance(node, ast.Assign) or not all(t in variables for t in targets):
                    raise ParameterError(f"chapter {self.name}: the profiles cell may only assign "
                                         f"{' and '.join(variables)} (line {node.lineno})")
                try:
                    values = ast.literal_eval(node.value)
                except ValueError:
                    raise ParameterError(f"chapter {self.name}: {targets[0]} is not a dict literal") from None
                if not isinstance(values, dict):
                    raise ParameterError(f"chapter {self.name}: {targets[0]} is not a dict literal")
                for target in targets:
                    if variables[target] in declared:
                        raise ParameterError(f"chapter {self.name}: {target} is assigned twice")
                    declared[variables[target]] = dict(values)
        return {"quick": {}, **{profile: {name: self._checked(name, value)
                                          for name, value in declared.get(profile, {}).items()}
                                for profile in PROFILES if profile != "quick"}}

    def _checked(self, name: str, value: Any) -> Any:
        if name not in self.parameters:
            raise ParameterError(self._unknown_message(name))
        if name in RUNNER_PARAMETERS:
            raise ParameterError(f"parameter {name!r} of chapter {self.name} is set by the runner "
                                 f"(use --{name})")
        return self.parameters[name].check(value, f"chapter {self.name}")

    def _unknown_message(self, name: str) -> str:
        valid = ", ".join(p for p in self.parameters if p not in RUNNER_PARAMETERS)
        return f"unknown parameter {name!r} for chapter {self.name}; valid: {valid}"

    def resolve(self, profile: str, overrides: dict[str, str], device: str) -> dict[str, Any]:
        """All parameter values for a run: quick defaults, then the profile, then ``--set`` strings."""
        if profile not in PROFILES:
            raise ParameterError(f"unknown profile {profile!r}; valid: {', '.join(PROFILES)}")
        if device not in DEVICES:
            raise ParameterError(f"unknown device {device!r}; valid: {', '.join(DEVICES)}")
        values = {name: p.default for name, p in self.parameters.items()}
        values.update(self.profiles[profile])
        for name, text in overrides.items():
            if name not in self.parameters:
                raise ParameterError(self._unknown_message(name))
            if name in RUNNER_PARAMETERS:
                raise ParameterError(f"parameter {name!r} is set with --{name}, not --set")
            values[name] = self.parameters[name].parse(text, f"chapter {self.name}")
        values["profile"], values["device"] = profile, device
        return values


def chapter_paths() -> list[Path]:
    """All chapter notebooks, in book order (by file name)."""
    return sorted(book_root().joinpath("notebooks").glob("[0-9][0-9]_*.ipynb"))


def all_chapters() -> list[Chapter]:
    return [Chapter.load(path) for path in chapter_paths()]


def get_chapter(name: str) -> Chapter:
    """Look a chapter up by full name (``01_elbo_fragility``) or number prefix (``01``)."""
    paths = chapter_paths()
    matches = [p for p in paths if p.stem == name] or [p for p in paths if p.stem.split("_")[0] == name]
    if len(matches) != 1:
        valid = ", ".join(p.stem for p in paths) or "(none)"
        raise UnknownChapterError(f"unknown chapter {name!r}; valid: {valid}")
    return Chapter.load(matches[0])


def parse_assignments(pairs: list[str]) -> dict[str, str]:
    """Split ``NAME=VALUE`` strings from the command line (the value may contain '=')."""
    result = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise ParameterError(f"--set expects NAME=VALUE; got {pair!r}")
        result[name.strip()] = value
    return result
