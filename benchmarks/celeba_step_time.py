"""Step cost of the CelebA ConvNets (AVAE appendix F) on this machine: the paper's widths at 64x64, and the
narrow stand-in at 64x64 and 32x32, for a VAE step and an SE step (L = 5, the appendix's CelebA budget).

Run by hand, alone (CPU) or on a GPU:  python benchmarks/celeba_step_time.py [--device cuda] [--steps 5]
It tells the CelebA chapter which network and image size fit its profiles' time budgets.
"""
from __future__ import annotations

import argparse
import dataclasses

import rvae.celeba_nets  # noqa: F401  (registers celeba_conv and celeba_conv_narrow)
from rvae.methods import get_method
from step_time import seconds_per_step     # this folder's generic step timer (the script's folder is on sys.path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    se = dataclasses.replace(get_method("se").config(), selection_budget=5)
    print(f"device {args.device}, batch {args.batch}, {args.steps} timed steps after a few warm-up steps")
    print(f"{'network':22}{'image':>7}{'VAE ms':>10}{'SE L=5 ms':>11}{'factor':>8}")
    for architecture, size in [("celeba_conv", 64), ("celeba_conv_narrow", 64), ("celeba_conv_narrow", 32)]:
        shape = {"image_shape": (3, size, size), "latent_dim": 64}
        vae = seconds_per_step("elbo", get_method("elbo").config(), architecture, args.device, args.steps, args.batch,
                               **shape)
        smooth = seconds_per_step("se", se, architecture, args.device, args.steps, args.batch, **shape)
        print(f"{architecture:22}{size:>5}px{1000 * vae:10.1f}{1000 * smooth:11.1f}{smooth / vae:8.2f}")


if __name__ == "__main__":
    main()
