"""Shared fixtures: a miniature book (its own notebooks/, results/, book/chapters/) for runner tests."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import torch
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def double_precision():
    """Compare in float64 (modules that want it: pytestmark = usefixtures); restore afterwards."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def spread_discrete_vae(n_x: int, n_z: int, low: float, high: float):
    """A discrete_vae.DiscreteVAE (decoder spread 0.4, seed 3) whose encoder log-sigmas run linearly from low to high."""
    from rvae.worlds import discrete_vae
    vae = discrete_vae.DiscreteVAE(n_x=n_x, n_z=n_z, decoder_spread=0.4, seed=3)
    with torch.no_grad():
        vae.log_sigma.copy_(torch.linspace(low, high, n_x))
    return vae


def random_gaussian_pair(batch: int, dim: int, seed: int, low: float = -3.0, high: float = 1.5):
    """Means and log-variances of two batches of diagonal Gaussians, (batch, dim) each."""
    generator = torch.Generator().manual_seed(seed)
    mu_a, mu_b = torch.randn(2, batch, dim, generator=generator)
    logvar_a, logvar_b = torch.empty(2, batch, dim).uniform_(low, high, generator=generator)
    return mu_a, logvar_a, mu_b, logvar_b


def make_chapter(folder: Path, name: str, body: str, parameters: str | None = None,
                 profiles: str | None = None) -> Path:
    """Write a minimal chapter notebook: title, optional profiles cell, parameters, one body cell."""
    cells = [new_markdown_cell(f"# Test chapter {name}")]
    if profiles is not None:
        cells.append(new_code_cell(profiles, metadata={"tags": ["profiles"]}))
    cells.append(new_code_cell(parameters if parameters is not None else
                               'profile = "quick"  # set by the runner\n'
                               'device = "cpu"  # set by the runner\n'
                               'steps = 3  # how many steps; valid: [1, inf)\n'
                               'rate = 0.5  # a float; valid: (0, inf)\n'
                               'label = "abc"  # a string\n'
                               'verbose = False  # a bool\n'
                               'sizes = [1, 2]  # a list of ints',
                               metadata={"tags": ["parameters"]}))
    cells.append(new_code_cell(body))
    notebook = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                   "language": "python"}})
    path = folder / "notebooks" / f"{name}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)
    return path


REPORTING_BODY = (
    "from rvae.book.results import Check, Claim, report\n"
    "from rvae.stats import Claimed, Evidence\n"
    "print('steps', steps, 'rate', rate, 'label', label, 'sizes', sizes)\n"
    "evidence = Evidence('a test', 10, rate, rate - 0.1, rate + 0.1)\n"
    "report({'steps_seen': steps, 'twice_rate': 2 * rate},\n"
    "       [Claim.judge('rate is positive', paper='> 0', ours=str(rate), evidence=evidence, claimed=Claimed.above(0))],\n"
    "       [Check('steps is positive', reference='> 0', ours=steps, passes=steps > 0)])\n"
)


@pytest.fixture
def mini_book(tmp_path, monkeypatch):
    """A book root with one reporting chapter '01_demo'; RVAE_BOOK_ROOT points at it."""
    root = tmp_path / "book_root"
    make_chapter(root, "01_demo", REPORTING_BODY, profiles="FULL_PROFILE = {'steps': 10}\nPAPER_PROFILE = {'steps': 30, 'rate': 2}")
    monkeypatch.setenv("RVAE_BOOK_ROOT", str(root))
    monkeypatch.setenv("RVAE_PROGRESS", "0")
    return root


def run_cli(*arguments: str, root: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m rvae ...`` in a subprocess, as a user would."""
    environment = dict(os.environ)
    if root is not None:
        environment["RVAE_BOOK_ROOT"] = str(root)
    environment["RVAE_PROGRESS"] = "0"
    return subprocess.run([sys.executable, "-m", "rvae", *arguments], capture_output=True, text=True,
                          env=environment, timeout=600)


def files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()} if folder.exists() else set()
