"""Chapter results: the checks a chapter makes, the claims it judges and the metrics it measured.

Two kinds of statement end a chapter, reported apart:

- a :class:`Check` is an identity of a derivation (a closed form against a numerical optimum, a
  gradient that must be exactly zero, a bound's ordering): it *passes* or *fails*, and a failure
  is a bug, not a finding;
- a :class:`Claim` is one of the papers' empirical statements judged on our numbers: it records
  n, the effect, a 95% interval and the test (an :class:`rvae.stats.Evidence`), the quality gates
  of the models it rests on, and a verdict: *holds*, *fails* or *inconclusive* (see
  :func:`rvae.stats.verdict`).

A chapter ends with :func:`report`. It prints both tables (deterministic text blocks that nbval
checks) and, when the chapter runner asked for it through ``RVAE_RESULTS_FILE``, writes metrics,
checks and claims there; the runner adds provenance and files the result as
``results/<chapter>/<profile>.json``.
"""
from __future__ import annotations

import json
import os
import sys
import textwrap
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from rvae.atomic import atomic_write_json, json_safe
from rvae.book.provenance import loaded_package_modules
from rvae.stats import FAILS, HOLDS, INCONCLUSIVE, UNDER_TRAINED, Claimed, Evidence, Gate, verdict

RESULTS_FILE_VARIABLE = "RVAE_RESULTS_FILE"
VERDICTS = (HOLDS, FAILS, INCONCLUSIVE, UNDER_TRAINED)


@dataclass(frozen=True)
class Check:
    """An identity of a derivation, checked numerically: it passes or it fails."""
    check: str          # the identity, in our words
    reference: Any      # where it comes from (an equation of a paper, or our derivation)
    ours: Any           # what we computed
    passes: bool

    def __post_init__(self):
        object.__setattr__(self, "passes", bool(self.passes))


@dataclass(frozen=True)
class Claim:
    """A paper's empirical statement judged on our numbers (build it with :meth:`judge`)."""
    claim: str                         # the statement, in our words
    paper: Any                         # what the paper reports (a number, or a short description)
    ours: str                          # what we measured, in words
    verdict: str                       # holds / fails / inconclusive / inconclusive (under-trained)
    test: str = ""                     # the statistical test
    n: int | None = None               # test images (or settings) the test rests on
    effect: float | None = None
    interval: tuple[float, float] | None = None   # 95%
    p_value: float | None = None
    claimed: str = ""                  # what the claim says of the effect, e.g. '> 0'
    gates: tuple[str, ...] = field(default_factory=tuple)   # each gate's value, threshold and outcome

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {', '.join(VERDICTS)}; got {self.verdict!r}")

    @classmethod
    def judge(cls, claim: str, paper: Any, ours: str, evidence: Evidence, claimed: Claimed,
              gates: Sequence[Gate] = ()) -> "Claim":
        """The claim with its evidence and its verdict (:func:`rvae.stats.verdict`)."""
        return cls(claim, paper, ours, verdict(evidence, claimed, gates), evidence.test, evidence.n,
                   float(evidence.effect), (float(evidence.low), float(evidence.high)),
                   None if evidence.p_value is None else float(evidence.p_value), str(claimed),
                   tuple(gate.describe() for gate in gates))

    @property
    def holds(self) -> bool:
        return self.verdict == HOLDS

    def evidence_text(self, digits: int = 3) -> str:
        if self.interval is None:
            return ""
        p = f", p = {self.p_value:.{digits}g}" if self.p_value is not None else ""
        return (f"{self.effect:+.{digits}g} [{self.interval[0]:+.{digits}g}, {self.interval[1]:+.{digits}g}] "
                f"(claimed {self.claimed}; {self.test}, n = {self.n}{p})")


def _block(number: int, label: str, text: str, details: list[tuple[str, str]], width: int) -> list[str]:
    wrapped = textwrap.wrap(text, width - 17) or [""]
    lines = [f"{number:>2}. {label:<13}{wrapped[0]}"]
    lines.extend(" " * 17 + rest for rest in wrapped[1:])
    for name, value in details:
        for i, piece in enumerate(textwrap.wrap(value, width - 25) or [""]):
            lines.append(f"{'':17}{(name + ':') if i == 0 else '':8}{piece}")
    return lines


def verdict_counts(verdicts: Sequence[str]) -> str:
    """'2 hold, 1 fails, 3 inconclusive (2 under-trained)' for a list of verdicts."""
    counts = Counter(verdicts)
    inconclusive = counts[INCONCLUSIVE] + counts[UNDER_TRAINED]
    under = f" ({counts[UNDER_TRAINED]} under-trained)" if counts[UNDER_TRAINED] else ""
    return f"{counts[HOLDS]} hold, {counts[FAILS]} fail, {inconclusive} inconclusive{under}"


def format_checks(checks: Sequence[Check], width: int = 92) -> str:
    """The checks as a plain-text table: one block per check, outcome first."""
    lines = [f"Checks: {sum(c.passes for c in checks)} of {len(checks)} pass"]
    for number, check in enumerate(checks, 1):
        lines += _block(number, "PASSES" if check.passes else "FAILS", check.check,
                        [("source", str(check.reference)), ("ours", str(check.ours))], width)
    return "\n".join(lines)


def format_claims(claims: Sequence[Claim], width: int = 92) -> str:
    """The claims as a plain-text table: one block per claim, verdict first."""
    lines = [f"Claims ({len(claims)}): {verdict_counts([c.verdict for c in claims])}"]
    for number, claim in enumerate(claims, 1):
        label = "UNDERTRAINED" if claim.verdict == UNDER_TRAINED else claim.verdict.upper()
        details = [("paper", str(claim.paper)), ("ours", str(claim.ours))]
        if claim.interval is not None:
            details.append(("test", claim.evidence_text()))
        details += [("gate", gate) for gate in claim.gates]
        lines += _block(number, label, claim.claim, details, width)
    return "\n".join(lines)


def format_values(values, spec: str = ".2f") -> str:
    """Numbers joined by ', ' in one format, for a claim's 'ours' text: format_values([0.5, 1], ".2f") -> '0.50, 1.00'."""
    return ", ".join(format(v, spec) for v in values)


def report(metrics: dict[str, Any], claims: Sequence[Claim] = (), checks: Sequence[Check] = ()) -> None:
    """Print the checks and the claims and hand them with the metrics to the chapter runner (if it is listening)."""
    for item in claims:
        if not isinstance(item, Claim):
            raise TypeError(f"report(claims=...) takes Claim objects; got {type(item).__name__}")
    for item in checks:
        if not isinstance(item, Check):
            raise TypeError(f"report(checks=...) takes Check objects; got {type(item).__name__}")
    blocks = ([format_checks(checks)] if checks else []) + ([format_claims(claims)] if claims else [])
    print("\n\n".join(blocks) if blocks else "No checks and no claims.")
    destination = os.environ.get(RESULTS_FILE_VARIABLE)
    if destination:
        loaded_data = sys.modules.get("rvae.data")        # the provenance of the datasets the chapter read
        atomic_write_json(destination, {"metrics": json_safe(metrics),
                                        "data": loaded_data.used_datasets() if loaded_data else {},
                                        "checks": [asdict(c) for c in checks],
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
