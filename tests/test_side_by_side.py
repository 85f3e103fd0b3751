"""The generated "Methods side by side" page (rvae.book.side_by_side): every model card of each chapter's
strongest profile and nothing else, values with intervals, a dash for what was not measured."""
from __future__ import annotations

import json
import re

import pytest

from rvae.book.side_by_side import FIGURE, PAGE, strongest_cards, write_side_by_side_page


def interval(effect):
    return {"effect": effect, "low": effect - 0.05, "high": effect + 0.05, "n": 100}


def card(dataset, model, **values):
    return {"dataset": dataset, "model": model, **values}


def file_result(root, chapter, profile, metrics):
    path = root / "results" / chapter / f"{profile}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"chapter": chapter, "profile": profile, "metrics": metrics, "claims": [], "checks": []}))


def listed_models(page: str) -> list[str]:
    return re.findall(r"<tr><td>([^<]*)</td>", page)


def test_the_page_lists_every_card_of_each_chapters_strongest_profile_and_nothing_else(tmp_path):
    file_result(tmp_path, "03_a", "quick", {"model_cards": [card("MNIST", "quick only VAE", nominal=interval(0.5))]})
    file_result(tmp_path, "03_a", "full", {"model_cards": [
        card("MNIST", "VAE", nominal=interval(0.9), pgd=interval(0.1), autoattack=interval(0.05), cost_vs_vae=1.0),
        card("MNIST", "SE", nominal=interval(0.88), pgd=interval(0.4), autoattack=interval(0.35),
             certified=interval(0.6), spectral_radius=2.5, entropy=0.41, cost_vs_vae=2.2)]})
    file_result(tmp_path, "05_b", "quick", {"model_cards": [card("ColorMNIST", "AVAE", nominal=interval(0.7))]})
    file_result(tmp_path, "06_c", "full", {"models": {"MNIST": {"mixup": {"nominal": 0.9}}}})   # no cards: not listed
    write_side_by_side_page(tmp_path)
    page = (tmp_path / PAGE).read_text()
    assert sorted(listed_models(page)) == ["AVAE", "SE", "VAE"]
    assert "quick only VAE" not in page and "mixup" not in page
    assert "## ColorMNIST" in page and "## MNIST" in page
    assert "0.350 [0.300, 0.400]" in page                 # the SE's AutoAttack accuracy with its interval
    se_row = next(row for row in page.splitlines() if row.startswith("<tr><td>SE<"))
    assert se_row.count("–") == 3                          # class radius, MSE and Fréchet were not measured
    assert 'data-sort="2.2"' in se_row and ">full<" in se_row
    assert (tmp_path / FIGURE).exists() and FIGURE.name in page


def test_no_cards_give_a_page_that_says_so(tmp_path):
    file_result(tmp_path, "01_a", "quick", {"anything": 1})
    write_side_by_side_page(tmp_path)
    assert "No chapter has filed model cards yet." in (tmp_path / PAGE).read_text()
    assert not (tmp_path / FIGURE).exists()


def test_a_card_without_its_dataset_is_refused():
    with pytest.raises(ValueError, match="lacks its dataset or model name"):
        strongest_cards([{"chapter": "01_a", "profile": "full", "metrics": {"model_cards": [{"model": "VAE"}]}}])
