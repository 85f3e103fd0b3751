"""Training step cost of VAE vs SE (selection budget L = 5 and 20), and attack throughput.

Run by hand (CPU) or on a GPU:  python benchmarks/step_time.py [--device cuda] [--architecture conv]
The AVAE appendix reports SE at x3.1 (L=5) and x7.8 (L=20) the cost of a VAE step on CelebA.
"""
from __future__ import annotations

import argparse
import time

import torch

from rvae.evaluate import train_linear_probe
from rvae.attacks import adversarial_accuracy
from rvae.nets import build_vae
from rvae.objectives import ObjectiveConfig, get_objective


def seconds_per_step(method: str, budget: int, architecture: str, device: str, steps: int, batch: int) -> float:
    torch.manual_seed(0)
    model = build_vae(architecture, (3, 28, 28), latent_dim=32).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-4)
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(batch, 3, 28, 28, generator=generator).to(device)
    objective = get_objective(method)
    config = ObjectiveConfig(selection_budget=budget, selection_eps=0.1)

    def step():
        loss, _ = objective(x, model, config, generator)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    for _ in range(3):                      # warm-up
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def attack_throughput(architecture: str, device: str, images: int, iterations: int, restarts: int) -> float:
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
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--architecture", default="mlp", choices=["mlp", "conv"])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--attack-images", type=int, default=64)
    arguments = parser.parse_args()
    vae = seconds_per_step("elbo", 0, arguments.architecture, arguments.device, arguments.steps, arguments.batch)
    print(f"{arguments.architecture} on {arguments.device}, batch {arguments.batch}")
    print(f"  VAE step          {vae * 1e3:8.2f} ms   x1.00")
    for budget in (5, 20):
        se = seconds_per_step("se", budget, arguments.architecture, arguments.device, arguments.steps, arguments.batch)
        print(f"  SE step (L = {budget:2d})  {se * 1e3:8.2f} ms   x{se / vae:.2f}")
    rate = attack_throughput(arguments.architecture, arguments.device, arguments.attack_images, 100, 10)
    print(f"  downstream attack, 100 iterations x 10 restarts: {rate:.1f} images/s "
          "(an untrained encoder: most examples flip early, so this is an upper bound)")


if __name__ == "__main__":
    main()
