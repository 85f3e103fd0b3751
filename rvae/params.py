"""Valid values of a parameter, for chapter parameters and method configs alike.

A :class:`Valid` is an interval or a set of choices, written as a reader would:

    "[1, inf)"   "(0, 1]"   "[0, 1]"   "{mnist, fashion_mnist}"

For a list or tuple value it applies to every element, nested lists included (and the list
may not be empty). A chapter
states it at the end of a parameter's help comment (``train_steps = 800  # steps per model; valid:
[1, inf)``); a method config field states it with :func:`option`. ``rvae run`` refuses a value
outside it in one line before anything executes.
"""
from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from typing import Any

from rvae.errors import ParameterError

_INTERVAL = re.compile(r"^\s*([\[(])\s*([^,\s]+)\s*,\s*([^\])\s]+)\s*([\])])\s*$")
_CHOICES = re.compile(r"^\s*\{(.*)\}\s*$")


def _number(text: str) -> float:
    lowered = text.strip().lower()
    if lowered in ("inf", "+inf", "∞"):
        return math.inf
    if lowered in ("-inf", "-∞"):
        return -math.inf
    return float(text)


@dataclass(frozen=True)
class Valid:
    """An interval (``low``/``high``, each end open or closed) or a tuple of ``choices``."""
    low: float = -math.inf
    high: float = math.inf
    low_closed: bool = True
    high_closed: bool = True
    choices: tuple[Any, ...] | None = None

    @classmethod
    def parse(cls, text: str) -> "Valid":
        """Read ``[a, b]``, ``(a, b]``, ``[a, inf)`` or ``{x, y, z}``; raise ValueError otherwise."""
        interval = _INTERVAL.match(text)
        if interval:
            opening, low, high, closing = interval.groups()
            return cls(_number(low), _number(high), opening == "[", closing == "]")
        choices = _CHOICES.match(text)
        if choices:
            return cls(choices=tuple(c.strip() for c in choices.group(1).split(",") if c.strip()))
        raise ValueError(f"{text!r} is neither an interval such as [1, inf) nor choices such as {{a, b}}")

    def __str__(self) -> str:
        if self.choices is not None:
            return "{" + ", ".join(str(c) for c in self.choices) + "}"

        def end(value: float) -> str:
            if math.isinf(value):
                return "inf" if value > 0 else "-inf"
            return f"{value:g}"
        return f"{'[' if self.low_closed else '('}{end(self.low)}, {end(self.high)}{']' if self.high_closed else ')'}"

    def admits(self, value: Any) -> bool:
        """Whether one (scalar) value lies in the interval or among the choices."""
        if self.choices is not None:
            return str(value) in self.choices
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            return False
        above = value >= self.low if self.low_closed else value > self.low
        below = value <= self.high if self.high_closed else value < self.high
        return above and below

    def check(self, name: str, value: Any, where: str) -> Any:
        """Return ``value`` if it (or, for a list, each element) is valid; else raise ParameterError."""
        if isinstance(value, (list, tuple)):
            elements = list(_flatten(value))
            if not value or len(elements) == 0:
                raise ParameterError(f"{name} of {where} must be a non-empty list of values in {self}; got {value!r}")
            if not all(self.admits(v) for v in elements):
                raise ParameterError(f"{name} of {where} must hold values in {self}; got {value!r}")
            return value
        if not self.admits(value):
            raise ParameterError(f"{name} of {where} must be in {self}; got {value!r}")
        return value


def _flatten(values):
    """The scalars of a (possibly nested) list or tuple, in order."""
    for value in values:
        if isinstance(value, (list, tuple)):
            yield from _flatten(value)
        else:
            yield value


def option(default: Any, help: str, valid: str | None = None) -> Any:
    """A config dataclass field with its one-line help and (optionally) its valid values."""
    return dataclasses.field(default=default, metadata={"help": help, "valid": Valid.parse(valid) if valid else None})


@dataclass(frozen=True)
class FieldInfo:
    """One config field as ``rvae methods`` shows it."""
    name: str
    type: str
    default: Any
    valid: Valid | None
    help: str


def describe(config_class: type) -> list[FieldInfo]:
    """The fields of a config dataclass with their defaults, valid values and help."""
    rows = []
    for f in dataclasses.fields(config_class):
        type_name = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        rows.append(FieldInfo(f.name, type_name, f.default, f.metadata.get("valid"), f.metadata.get("help", "")))
    return rows


class CheckedConfig:
    """Mixin for a (frozen) config dataclass: every field with a :class:`Valid` is checked on creation."""

    def __post_init__(self) -> None:
        where = f"{type(self).__name__}"
        for f in dataclasses.fields(self):
            valid = f.metadata.get("valid")
            if valid is not None:
                valid.check(f.name, getattr(self, f.name), where)
