"""The book's "Methods side by side" page, generated from ``results/``.

A chapter that evaluates models files one *model card* per model in ``metrics.model_cards`` (chapter 11
does, for the models of the chapters' full runs). The page takes each chapter's strongest filed profile
(paper, then full, then quick, as the book shows its chapters) and lists every card of it, nothing else:
one table per dataset, sortable in the HTML by clicking a column's head, and a figure of robust accuracy
against nominal accuracy with one point per model.

A card: ``dataset``, ``model`` (required), and any of ``trained_in``, ``method``, ``nominal``, ``pgd``,
``autoattack``, ``certified`` (each ``{"effect", "low", "high", "n"}``), ``radius_linf``, ``radius_l2``,
``sigma``, ``spectral_radius``, ``entropy``, ``class_radius``, ``mse_per_pixel``, ``frechet``, ``cost_vs_vae``.
"""
from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from rvae.atomic import atomic_write_text
from rvae.book.chapters import PROFILES
from rvae.book.results import load_results

PAGE = Path("book") / "side_by_side.md"
FIGURE = Path("book") / "side_by_side_accuracy.png"
DASH = "–"


def strongest_cards(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every model card of each chapter's strongest profile that has cards, with ``chapter`` and ``profile``."""
    best: dict[str, dict[str, Any]] = {}
    for result in results:
        cards = (result.get("metrics") or {}).get("model_cards")
        if not cards or result.get("profile") not in PROFILES:
            continue
        known = best.get(result["chapter"])
        if known is None or PROFILES.index(result["profile"]) > PROFILES.index(known["profile"]):
            best[result["chapter"]] = result
    rows = []
    for chapter in sorted(best):
        result = best[chapter]
        for card in result["metrics"]["model_cards"]:
            if "dataset" not in card or "model" not in card:
                raise ValueError(f"a model card of {chapter} ({result['profile']}) lacks its dataset or model name")
            rows.append({**card, "chapter": chapter, "profile": result["profile"]})
    return rows


def _interval(value: Any) -> tuple[str, float | None]:
    if not isinstance(value, dict) or value.get("effect") is None:
        return DASH, None
    return f"{value['effect']:.3f} [{value['low']:.3f}, {value['high']:.3f}]", float(value["effect"])


def _number(value: Any, spec: str) -> tuple[str, float | None]:
    if value is None or not isinstance(value, (int, float)):
        return DASH, None
    return format(value, spec), float(value)


COLUMNS = [  # (heading, how a card gives the cell: (text, sort key))
    ("model", lambda c: (c["model"], None)),
    ("trained in", lambda c: (c.get("trained_in", c["chapter"]), None)),
    ("nominal", lambda c: _interval(c.get("nominal"))),
    ("PGD (ours)", lambda c: _interval(c.get("pgd"))),
    ("AutoAttack", lambda c: _interval(c.get("autoattack"))),
    ("certified (L2)", lambda c: _interval(c.get("certified"))),
    ("spectral radius", lambda c: _number(c.get("spectral_radius"), ".3g")),
    ("entropy", lambda c: _number(c.get("entropy"), ".3f")),
    ("class radius", lambda c: _number(c.get("class_radius"), ".3g")),
    ("MSE / pixel", lambda c: _number(c.get("mse_per_pixel"), ".4f")),
    ("Fréchet", lambda c: _number(c.get("frechet"), ".3g")),
    ("cost (× VAE)", lambda c: _number(c.get("cost_vs_vae"), ".2f")),
    ("profile", lambda c: (c["profile"], None)),
]


def _table(cards: list[dict[str, Any]]) -> list[str]:
    lines = ['<table class="rvae-sortable">', "<thead><tr>"
             + "".join(f"<th>{html.escape(heading)}</th>" for heading, _ in COLUMNS) + "</tr></thead>", "<tbody>"]
    for card in cards:
        cells = []
        for _, cell in COLUMNS:
            text, key = cell(card)
            sort = f' data-sort="{key:.6g}"' if key is not None else ""
            cells.append(f"<td{sort}>{html.escape(str(text))}</td>")
        lines.append("<tr>" + "".join(cells) + "</tr>")
    return lines + ["</tbody>", "</table>"]


def _settings(cards: list[dict[str, Any]]) -> str:
    radii = sorted({c.get("radius_linf") for c in cards if c.get("radius_linf") is not None})
    l2 = sorted({(c.get("radius_l2"), c.get("sigma")) for c in cards if c.get("radius_l2") is not None})
    words = []
    if radii:
        words.append("PGD and AutoAttack at L-inf ε = " + ", ".join(f"{r:g}" for r in radii))
    if l2:
        words.append("certified accuracy of the smoothed classifier at L2 radius "
                     + ", ".join(f"{r:g} (σ = {s:g})" for r, s in l2))
    return "; ".join(words)


def draw_figure(cards: list[dict[str, Any]], path: Path) -> bool:
    """Robust accuracy (AutoAttack, else our PGD) against nominal accuracy, one point per model."""
    points = [(c["dataset"], c["nominal"]["effect"], (c.get("autoattack") or c.get("pgd"))["effect"])
              for c in cards if isinstance(c.get("nominal"), dict)
              and isinstance(c.get("autoattack") or c.get("pgd"), dict)]
    if not points:
        return False
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    figure, ax = plt.subplots(figsize=(6, 4))
    for dataset, marker in zip(sorted({p[0] for p in points}), "osD^v<>"):
        chosen = [p for p in points if p[0] == dataset]
        ax.scatter([p[1] for p in chosen], [p[2] for p in chosen], marker=marker, label=dataset, alpha=0.8)
    ax.set_xlabel("nominal accuracy")
    ax.set_ylabel("robust accuracy (AutoAttack, else our PGD)")
    ax.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120, metadata={"Software": None})
    plt.close(figure)
    return True


def render_side_by_side(cards: list[dict[str, Any]], figure_name: str | None) -> str:
    lines = ["# Methods side by side", "",
             "This page is generated by `rvae book` from the model cards in `results/` (each chapter's strongest",
             "profile: paper, then full, then quick). One row per trained model; click a column's head to sort.",
             "Accuracies are on the downstream task of the chapter (encoder mean, then a linear probe), with exact",
             "95% intervals; *PGD (ours)* and *AutoAttack* are upper bounds on robust accuracy, *certified* is a",
             "lower bound for the Gaussian-smoothed classifier (chapter 11). *Cost* is training seconds per step",
             "against the same chapter's VAE, as recorded in the checkpoints. A dash: not measured for that model.",
             ""]
    if not cards:
        return "\n".join(lines + ["No chapter has filed model cards yet.", ""])
    if figure_name:
        lines += [f"![Robust against nominal accuracy, one point per model]({figure_name})", ""]
    for dataset in sorted({c["dataset"] for c in cards}):
        chosen = [c for c in cards if c["dataset"] == dataset]
        lines += [f"## {dataset}", "", f"{len(chosen)} models; {_settings(chosen)}.", ""]
        lines += _table(chosen) + [""]
    return "\n".join(lines)


def write_side_by_side_page(root: Path) -> Path:
    """Regenerate ``book/side_by_side.md`` (and its figure) from the filed results."""
    cards = strongest_cards(load_results(root))
    drawn = draw_figure(cards, root / FIGURE)
    return atomic_write_text(root / PAGE, render_side_by_side(cards, FIGURE.name if drawn else None))
