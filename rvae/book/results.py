"""Chapter results: the claims a chapter checks and the metrics it measured.

A chapter ends with :func:`report`. It prints the claims table (a deterministic text block
that nbval checks) and, when the chapter runner asked for it through ``RVAE_RESULTS_FILE``,
writes the metrics and claims there; the runner adds provenance and files the result as
``results/<chapter>/<profile>.json``.
"""
from __future__ import annotations

import json
import os
import textwrap
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rvae.atomic import atomic_write_json, json_safe
from rvae.book.provenance import loaded_package_modules

RESULTS_FILE_VARIABLE = "RVAE_RESULTS_FILE"


@dataclass(frozen=True)
class Claim:
    """A paper's qualitative statement turned into a check on our numbers."""
    claim: str          # the statement, in our words
    paper: Any          # what the paper reports (a number, or a short description)
    ours: Any           # what we measured
    holds: bool         # whether our numbers support the statement at this profile

    def __post_init__(self):
        object.__setattr__(self, "holds", bool(self.holds))


def format_claims(claims: list[Claim], width: int = 88) -> str:
    """The claims as a plain-text table: one block per claim, verdict first."""
    held = sum(c.holds for c in claims)
    lines = [f"Claims: {held} of {len(claims)} hold"]
    for number, claim in enumerate(claims, 1):
        verdict = "HOLDS " if claim.holds else "FAILS "
        wrapped = textwrap.wrap(claim.claim, width - 11) or [""]
        lines.append(f"{number:>2}. {verdict}{wrapped[0]}")
        lines.extend(" " * 10 + rest for rest in wrapped[1:])
        lines.append(f"{'':10}paper: {claim.paper}")
        lines.append(f"{'':10}ours:  {claim.ours}")
    return "\n".join(lines)


def format_values(values, spec: str = ".2f") -> str:
    """Numbers joined by ', ' in one format, for a claim's 'ours' text: format_values([0.5, 1], ".2f") -> '0.50, 1.00'."""
    return ", ".join(format(v, spec) for v in values)


def report(metrics: dict[str, Any], claims: list[Claim]) -> None:
    """Print the claims table and hand metrics and claims to the chapter runner (if it is listening)."""
    print(format_claims(claims))
    destination = os.environ.get(RESULTS_FILE_VARIABLE)
    if destination:
        atomic_write_json(destination, {"metrics": json_safe(metrics),
                                        "claims": [asdict(c) for c in claims],
                                        "package_modules": loaded_package_modules()})


def results_dir(root: Path) -> Path:
    return root / "results"


def result_path(root: Path, chapter: str, profile: str) -> Path:
    """Where a chapter's result at a profile is filed."""
    return results_dir(root) / chapter / f"{profile}.json"


def load_results(root: Path) -> list[dict[str, Any]]:
    """Every filed result, sorted by chapter and then profile."""
    found = []
    for path in sorted(results_dir(root).glob("*/*.json")):
        with open(path, encoding="utf-8") as stream:
            found.append(json.load(stream))
    return found
