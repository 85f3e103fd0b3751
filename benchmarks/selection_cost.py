"""One table of the SE selection options: ms per step, factor against the VAE, adversarial accuracy.

The step costs are measured here, in this one run, on one fixed batch of 64 training images per
dataset (rvae.costs: the same fresh MLP for every option, repeats interleaved, median kept). The
adversarial accuracies (digit probe on the encoder means, L-inf PGD at eps = 0.1) are those of the
strongest recorded run of chapter 10_selection_cost (paper > full > quick; its profile, attack and
number of test images are printed), measured on the models that chapter trained with the same
options.

Run by hand, alone:  RVAE_DATA=DATA_ROOT python benchmarks/selection_cost.py [--steps 10] [--repeats 3]
"""
from __future__ import annotations

import argparse
import inspect
import json

import torch

from rvae import data
from rvae.book.chapters import PROFILES, book_root, get_chapter
from rvae.book.results import result_path
from rvae.costs import selection_options, step_costs
from rvae.methods import get_method

CHAPTER = "10_selection_cost"


def strongest_result() -> dict | None:
    for profile in reversed(PROFILES):
        path = result_path(book_root(), CHAPTER, profile)
        if path.exists():
            return json.loads(path.read_text())
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per option and repeat")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats (median kept)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    recorded = strongest_result()
    parameters = recorded["provenance"]["parameters"] if recorded else get_chapter(CHAPTER).resolve("quick", {}, "cpu")
    options = selection_options(**{name: parameters[name] for name in inspect.signature(selection_options).parameters})
    variants = {label: (method, get_method(method).make_config(**fields)) for label, (method, fields) in options.items()}
    grey, _ = data.mnist_tensors("train", limit=64)
    batches = {"MNIST": grey, "ColorMNIST": data.colorize(grey, torch.arange(64) % len(data.COLOURS))}
    seconds = {name: step_costs(variants, "mlp", tuple(x.shape[1:]), parameters["latent_dim"], x, args.steps,
                                args.repeats, args.device) for name, x in batches.items()}

    print(f"MLP, batch 64, {torch.get_num_threads()} threads, device {args.device}; "
          f"{args.steps} steps x {args.repeats} interleaved repeats per option")
    if recorded:
        p = recorded["provenance"]
        print(f"adversarial accuracy: chapter {CHAPTER}, {recorded['profile']} run of {p['finished_utc'][:10]} "
              f"({p['hardware']}): PGD {p['parameters']['attack_iterations']} x {p['parameters']['attack_restarts']}, "
              f"eps = {p['parameters']['claim_radius']}, {p['parameters']['n_eval']} test images, "
              f"{p['parameters']['train_steps']} steps a model")
    else:
        print(f"adversarial accuracy: no recorded run of {CHAPTER} (run it: rvae run {CHAPTER} --profile full)")
    models = recorded["metrics"]["models"] if recorded else {}
    header = "".join(f"{d + ' ms':>16}{'x VAE':>7}{'adv.':>7}" for d in batches)
    print(f"{'option':10}{'method':9}{header}")
    for label, (method, _) in options.items():
        row = ""
        for dataset in batches:
            adversarial = models.get(dataset, {}).get(label, {}).get("adversarial")
            row += (f"{1000 * seconds[dataset][label]:16.1f}{seconds[dataset][label] / seconds[dataset]['VAE']:7.2f}"
                    + (f"{adversarial:7.3f}" if adversarial is not None else f"{'-':>7}"))
        print(f"{label:10}{method:9}{row}")
    for label in ("warm, equal time", "free, equal time"):
        cells = [models.get(d, {}).get(label) for d in batches]
        if all(cells):
            print(f"{label:19}" + "".join(f"{d}: {c['steps']} steps, adv. {c['adversarial']:.3f}   "
                                           for d, c in zip(batches, cells)))


if __name__ == "__main__":
    main()
