"""Training step cost of every registered method against the VAE's, and attack throughput.

Run by hand (CPU) or on a GPU:  python benchmarks/step_time.py [--device cuda] [--architecture conv]
Each method runs with its default config (a selection whose default is the paper's L = 20 also at
L = 5) through rvae.train.train on one fixed batch, after a few warm-up steps (rvae.costs). The AVAE appendix reports
SE at x3.1 (L=5) and x7.8 (L=20) the cost of a VAE step on CelebA.
"""
from __future__ import annotations

import argparse
import dataclasses
import time

import torch

from rvae.attacks import adversarial_accuracy
from rvae.evaluate import train_linear_probe
from rvae.methods import all_methods
from rvae import costs
from rvae.nets import ARCHITECTURES, build_vae


def seconds_per_step(method: str, config, architecture: str, device: str, steps: int, batch: int,
                     image_shape: tuple[int, int, int] = (3, 28, 28), latent_dim: int = 32) -> float:
    """Wall time per training step of ``method`` on one fixed batch of random images (rvae.costs)."""
    x = torch.rand(batch, *image_shape, generator=torch.Generator().manual_seed(0))
    return costs.seconds_per_step(method, config, architecture, image_shape, latent_dim, x, steps, device)


def variants() -> dict[str, tuple[str, object]]:
    """Label -> (method, config): every method that trains a VAE, at its defaults; a selection at the paper's L = 20
    also at L = 5."""
    chosen = {}
    probe_model = build_vae("mlp", (1, 28, 28), latent_dim=2)
    for name, method in all_methods().items():
        config = method.config()
        try:                                            # e.g. the 2-D grid GAN trains no VAE: not timed here
            method.networks and method.networks(probe_model, config)
        except TypeError:
            continue
        if getattr(config, "selection_budget", None) == 20:
            for budget in (5, 20):
                chosen[f"{name} (L = {budget})"] = (name, dataclasses.replace(config, selection_budget=budget))
        else:
            chosen[name] = (name, config)
    return chosen


def attack_throughput(architecture: str, device: str, images: int, iterations: int, restarts: int) -> float:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build_vae(architecture, (3, 28, 28), latent_dim=32).to(device).eval()
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(images, 3, 28, 28, generator=generator).to(device)
    with torch.no_grad():
        features = model.encode(x)[0].cpu()
    labels = torch.randint(10, (images,), generator=generator)
    probe = train_linear_probe(features, labels, 10, epochs=20)
    with torch.no_grad():
        labels = probe(features).argmax(1)      # every example starts correct, so every one is attacked
    probe = probe.to(device)
    start = time.perf_counter()
    adversarial_accuracy(lambda v: model.encode(v)[0], probe, x, labels.to(device), 0.1, iterations, restarts,
                         batch_size=images, generator=generator)
    if device == "cuda":
        torch.cuda.synchronize()
    return images / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--architecture", default="mlp", choices=list(ARCHITECTURES))
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--attack-images", type=int, default=64)
    arguments = parser.parse_args()
    print(f"{arguments.architecture} on {arguments.device}, batch {arguments.batch}, {torch.get_num_threads()} threads")
    timed = {label: seconds_per_step(method, config, arguments.architecture, arguments.device, arguments.steps,
                                     arguments.batch) for label, (method, config) in variants().items()}
    vae = timed["elbo"]
    for label, seconds in timed.items():
        print(f"  {label:22} {seconds * 1e3:8.2f} ms/step   x{seconds / vae:.2f}")
    rate = attack_throughput(arguments.architecture, arguments.device, arguments.attack_images, 100, 10)
    print(f"  downstream attack, 100 iterations x 10 restarts: {rate:.1f} images/s "
          f"({arguments.attack_images} images, one batch)")


if __name__ == "__main__":
    main()
