"""pyproject.toml and environment.yml describe the same environment."""
from __future__ import annotations

import re
import tomllib

import yaml

from conftest import REPO


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~ \[;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_pyproject_and_environment_list_the_same_packages():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    from_pyproject = {_name(r) for r in project["dependencies"]}
    for extra in project["optional-dependencies"].values():
        from_pyproject |= {_name(r) for r in extra}

    environment = yaml.safe_load((REPO / "environment.yml").read_text())
    from_conda = set()
    for entry in environment["dependencies"]:
        entries = entry["pip"] if isinstance(entry, dict) else [entry]
        from_conda |= {_name(e) for e in entries if not e.startswith("-")}
    from_conda -= {"python", "pip"}
    assert from_pyproject == from_conda


def test_jupyter_book_is_pinned_below_2_in_both():
    assert "jupyter-book>=1.0.4,<2" in (REPO / "pyproject.toml").read_text()
    assert "jupyter-book>=1.0.4,<2" in (REPO / "environment.yml").read_text()
