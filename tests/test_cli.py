"""The chapter runner end to end: listing, running, provenance, results, and clean failures."""
from __future__ import annotations

import json

import nbformat
import pytest

from rvae.book.runner import executed_path

from conftest import files_under, make_chapter, run_cli


def _assert_one_line_error(result, *fragments):
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("rvae: error: "), result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in lines[-1], lines[-1]


def test_list_shows_parameters_types_defaults_and_all_three_profiles(mini_book):
    result = run_cli("list", root=mini_book)
    assert result.returncode == 0, result.stderr
    assert "01_demo  Test chapter 01_demo" in result.stdout
    assert "steps: int = 3" in result.stdout and "how many steps  valid: [1, inf)" in result.stdout
    assert "sizes: list = [1, 2]" in result.stdout
    assert "quick profile: the defaults above" in result.stdout
    assert "full profile: steps=10" in result.stdout and "paper profile: steps=30, rate=2.0" in result.stdout
    assert "profile: str" not in result.stdout  # runner parameters are set by flags, not listed


@pytest.mark.parametrize("arguments, fragments", [
    (["run", "nope"], ["unknown chapter 'nope'", "valid: 01_demo"]),
    (["run", "01_demo", "--set", "colour=red"], ["unknown parameter 'colour'", "valid: steps"]),
    (["run", "01_demo", "--set", "steps=many"], ["parameter 'steps'", "is an int", "'many'"]),
    (["run", "01_demo", "--set", "steps"], ["--set expects NAME=VALUE"]),
    (["run", "01_demo", "--set", "device=cuda"], ["--device"]),
    (["run", "01_demo", "--set", "steps=-5"], ["parameter 'steps' of chapter 01_demo must be in [1, inf)", "-5"]),
    (["run", "01_demo", "--set", "rate=0"], ["parameter 'rate'", "must be in (0, inf)", "got 0.0"]),
])
def test_bad_input_fails_with_one_line_and_writes_nothing(mini_book, arguments, fragments):
    before = files_under(mini_book)
    result = run_cli(*arguments, root=mini_book)
    _assert_one_line_error(result, *fragments)
    assert files_under(mini_book) == before


def test_unknown_profile_is_an_argparse_error(mini_book):
    result = run_cli("run", "01_demo", "--profile", "fast", root=mini_book)
    assert result.returncode == 2 and "invalid choice: 'fast'" in result.stderr


def test_run_writes_executed_copy_with_banner_and_result_with_provenance(mini_book):
    result = run_cli("run", "01_demo", "--set", "steps=7", "--set", "sizes=[4, 5, 6]", "--no-progress",
                     root=mini_book)
    assert result.returncode == 0, result.stderr
    assert "checks 1 of 1 pass; claims (1): 1 hold, 0 fail, 0 inconclusive" in result.stdout

    filed = json.loads((mini_book / "results" / "01_demo" / "quick.json").read_text())
    assert filed["metrics"] == {"steps_seen": 7, "twice_rate": 1.0}
    assert filed["checks"] == [{"check": "steps is positive", "reference": "> 0", "ours": 7, "passes": True}]
    assert filed["claims"][0]["verdict"] == "holds" and filed["claims"][0]["n"] == 10
    record = filed["provenance"]
    assert record["overrides"] == {"steps": 7, "sizes": [4, 5, 6]}
    assert record["parameters"]["label"] == "abc" and record["profile"] == "quick" and record["device"] == "cpu"
    for key in ("git_revision", "software", "wall_seconds", "finished_utc", "hardware",
                "notebook_source_hash", "package_source_hash"):
        assert key in record
    assert record["software"]["torch"]

    executed = nbformat.read(executed_path(mini_book, "01_demo"), as_version=4)
    banner = executed.cells[1]
    assert "rvae-provenance" in banner.metadata["tags"]
    assert "Profile **quick**" in banner.source and "`steps=7`" in banner.source
    assert executed.metadata["rvae"]["provenance"]["overrides"] == {"steps": 7, "sizes": [4, 5, 6]}
    printed = "".join(o.get("text", "") for c in executed.cells if c.cell_type == "code" for o in c.outputs)
    assert "steps 7 rate 0.5 label abc sizes [4, 5, 6]" in printed

    status = (mini_book / "book" / "reproduction_status.md").read_text()
    assert "| 1 / 1 | 1: 1 hold, 0 fail, 0 inconclusive |" in status and "current" in status
    assert str(mini_book) not in executed_path(mini_book, "01_demo").read_text()   # no machine path is stored


def _shown_profile(root):
    return nbformat.read(executed_path(root, "01_demo"), as_version=4).metadata["rvae"]["provenance"]["profile"]


def test_the_book_shows_the_strongest_profile_and_keeps_every_profile_copy(mini_book):
    assert run_cli("run", "01_demo", "--profile", "full", "--no-progress", root=mini_book).returncode == 0
    assert _shown_profile(mini_book) == "full"
    result = run_cli("run", "01_demo", "--no-progress", root=mini_book)
    assert result.returncode == 0, result.stderr
    assert "the book still shows the chapter's full run" in result.stdout
    assert _shown_profile(mini_book) == "full"
    assert run_cli("run", "01_demo", "--profile", "paper", "--no-progress", root=mini_book).returncode == 0
    assert _shown_profile(mini_book) == "paper"
    copies = {p.name for p in (mini_book / "book" / "executed" / "01_demo").iterdir()}
    assert copies == {"quick.ipynb", "full.ipynb", "paper.ipynb"}
    assert {p.name for p in (mini_book / "results" / "01_demo").iterdir()} == {"quick.json", "full.json", "paper.json"}
    status = (mini_book / "book" / "reproduction_status.md").read_text()
    assert all(f"(Test chapter 01_demo ({p})" or f"## Test chapter 01_demo ({p})" in status for p in ("quick", "full", "paper"))
    filed = json.loads((mini_book / "results" / "01_demo" / "full.json").read_text())
    assert filed["provenance"]["parameters"]["steps"] == 10


@pytest.mark.parametrize("body, fragments", [
    ("raise ValueError('the loss exploded')", ["chapter 02_broken failed in cell", "ValueError: the loss exploded"]),
    ("from rvae.errors import DatasetNotFoundError\n"
     "raise DatasetNotFoundError('MNIST not found: put t10k-images-idx3-ubyte.gz into /x/MNIST/raw/')",
     ["chapter 02_broken: MNIST not found: put t10k-images-idx3-ubyte.gz into /x/MNIST/raw/"]),
    ("print('no report')", ["reported no results"]),
])
def test_a_failing_chapter_leaves_no_half_written_files(mini_book, body, fragments):
    make_chapter(mini_book, "02_broken", body)
    before = files_under(mini_book)
    result = run_cli("run", "02_broken", "--no-progress", root=mini_book)
    _assert_one_line_error(result, *fragments)
    assert files_under(mini_book) == before


def test_missing_data_in_a_real_loader_is_reported_by_the_runner(mini_book, tmp_path):
    body = "from rvae.data import mnist_tensors\nmnist_tensors('test', download=False)"
    make_chapter(mini_book, "02_data", body)
    empty = tmp_path / "empty_data"
    empty.mkdir()
    result = run_cli("run", "02_data", "--data-dir", str(empty), "--no-progress", root=mini_book)
    _assert_one_line_error(result, "chapter 02_data: MNIST not found", str(empty / "MNIST" / "raw"))


def test_cuda_without_a_gpu_fails_cleanly(mini_book):
    import torch
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    _assert_one_line_error(run_cli("run", "01_demo", "--device", "cuda", root=mini_book), "no CUDA device")


def test_methods_lists_every_method_with_paper_fields_and_groups():
    result = run_cli("methods")
    assert result.returncode == 0, result.stderr
    for name in ("elbo", "beta_vae", "se", "se_rho", "avae", "se_avae", "avae_ss", "mixup"):
        assert f"\n{name}  (" in "\n" + result.stdout, name
    assert "Smooth Encoders, appendix C" in result.stdout
    assert "beta: float = 1.0" in result.stdout and "valid: [0, inf)" in result.stdout
    assert "vae: vae; adam, the run's learning rate, betas (0.9, 0.999)" in result.stdout


def test_methods_name_shows_one_method():
    result = run_cli("methods", "mixup")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("mixup  (Local geometry")
    assert any(line.strip().startswith("shape: tuple") and "valid: (0, inf)" in line for line in lines)
    assert "elbo" not in result.stdout


def test_methods_unknown_name_is_one_line():
    result = run_cli("methods", "gan")
    _assert_one_line_error(result, "unknown method 'gan'", "valid: aae, avae, avae_ss, beta_vae, elbo")


def test_pin_outputs_from_the_executed_copy_needs_a_current_quick_run(mini_book):
    path = mini_book / "notebooks" / "01_demo.ipynb"
    notebook = nbformat.read(path, as_version=4)
    notebook.cells[-1].metadata["tags"] = ["nbval-check-output"]
    nbformat.write(notebook, path)
    _assert_one_line_error(run_cli("pin-outputs", "01_demo", "--from-executed", root=mini_book), "has no executed quick copy")
    assert run_cli("run", "01_demo", "--set", "steps=4", "--no-progress", root=mini_book).returncode == 0
    _assert_one_line_error(run_cli("pin-outputs", "01_demo", "--from-executed", root=mini_book),
                           "not a current quick run without overrides")
    assert run_cli("run", "01_demo", "--no-progress", root=mini_book).returncode == 0
    result = run_cli("pin-outputs", "01_demo", "--from-executed", root=mini_book)
    assert result.returncode == 0, result.stderr
    assert "stored the outputs of 1 checked cell(s)" in result.stdout
    pinned = nbformat.read(path, as_version=4)
    text = "".join(output.get("text", "") for output in pinned.cells[-1].outputs)
    assert "steps 3 rate 0.5" in text and "Checks: 1 of 1 pass" in text
    assert pinned.cells[-1].execution_count == sum(cell.cell_type == "code" for cell in pinned.cells)  # as nbval counts
    assert not any(cell.outputs for cell in pinned.cells[:-1] if cell.cell_type == "code")


THREADS_BODY = (
    "import torch\n"
    "from rvae.book.results import report\n"
    "print('torch threads', torch.get_num_threads())\n"
    "report({'threads': torch.get_num_threads()}, [], [])\n"
)


def test_quick_runs_on_one_thread_and_full_on_what_the_environment_gives(mini_book, monkeypatch):
    """Quick's outputs are pinned for nbval, so its thread count must not depend on the machine."""
    make_chapter(mini_book, "02_threads", THREADS_BODY, profiles="FULL_PROFILE = {'steps': 10}")
    from rvae.book.runner import QUICK_ENVIRONMENT
    for variable in QUICK_ENVIRONMENT:          # torch takes the smaller of OMP's and MKL's counts
        monkeypatch.setenv(variable, "2")
    for profile, expected in (("quick", 1), ("full", 2)):
        result = run_cli("run", "02_threads", "--profile", profile, "--no-progress", root=mini_book)
        assert result.returncode == 0, result.stderr
        filed = json.loads((mini_book / "results" / "02_threads" / f"{profile}.json").read_text())
        assert filed["metrics"]["threads"] == expected
        assert filed["provenance"]["threads"] == expected
    monkeypatch.setenv("MKL_NUM_THREADS", "1")                   # the smallest count set is torch's
    assert run_cli("run", "02_threads", "--profile", "full", "--no-progress", root=mini_book).returncode == 0
    filed = json.loads((mini_book / "results" / "02_threads" / "full.json").read_text())
    assert filed["metrics"]["threads"] == filed["provenance"]["threads"] == 1


def test_nbval_and_the_makefile_give_kernels_the_quick_profiles_threads():
    from rvae.book.runner import QUICK_ENVIRONMENT

    from conftest import REPO
    makefile = (REPO / "Makefile").read_text()
    threads_line = next(line for line in makefile.splitlines() if line.startswith("THREADS :="))
    assert dict(pair.split("=") for pair in threads_line.split(":=", 1)[1].split()) == QUICK_ENVIRONMENT
    notebooks_recipe = makefile.split("\nnotebooks:", 1)[1].split("\n\n", 1)[0]
    assert "$(THREADS)" in notebooks_recipe and "--dist loadfile" in notebooks_recipe
    assert "QUICK_ENVIRONMENT" in (REPO / "notebooks" / "conftest.py").read_text()
