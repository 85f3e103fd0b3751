"""Time to score MNIST test images with the pullback-metric robustness scores: batched vs naive.

Batched (rvae.geometry): the encoder Jacobians of a whole chunk from one forward pass and 2d batched
vector-Jacobian products (vmap over the cotangents "output k of every image"), the (2d x N) factor B,
and the eigenvalues of the small Gram matrix B B^T (2d x 2d, float64, eigvalsh). Also timed on the same factors: the
SVD route (singular values of B itself), to show what the Gram matrix saves. Naive: per image,
torch.autograd.functional.jacobian, the explicit 784 x 784 metric G, torch.linalg.eigh. The naive
side runs on a subset; both times are also scaled linearly to 10,000 images (the MNIST test set),
and the output says so. The warm-up runs one whole chunk, so that no one-time cost (vmap's tracing,
the allocator's first large blocks) lands in the timed call.

Run by hand:  RVAE_DATA=DATA_ROOT python benchmarks/geometry_scores.py --images 500 --naive-images 50
"""
from __future__ import annotations

import argparse
import math
import time

import torch

from rvae.data import mnist_tensors
from rvae.geometry import _eigenvalues_of_factor, metric_factor, robustness_scores, von_neumann_entropy
from rvae.nets import ARCHITECTURES, build_vae
from rvae.train import TrainConfig, sample_images, train

TEST_SET = 10_000


def naive_eigenvalues(model, x: torch.Tensor, curvature: str) -> torch.Tensor:
    """All N eigenvalues of the explicitly formed G per image, (B, N) ascending (eigh), one image at a time."""
    shape = x.shape[1:]

    def mean_and_std(flat):
        mu, logvar = model.encode(flat.view(1, *shape))
        return torch.cat((mu[0], (0.5 * logvar[0]).exp()))                     # (2d,)

    out = []
    for image in x:
        flat = image.flatten()
        j = torch.autograd.functional.jacobian(mean_and_std, flat)              # (2d, N)
        j_mu, j_sigma = j.chunk(2, dim=0)
        if curvature == "flat":
            g = j_mu.T @ j_mu + j_sigma.T @ j_sigma
        else:
            mu = model.encode(image[None])[0][0]
            j_g = torch.autograd.functional.jacobian(lambda z: model.decode(z[None]).flatten(), mu)   # (N, d)
            g_z = j_g.T @ j_g
            g = j_mu.T @ g_z @ j_mu + j_sigma.T @ g_z @ j_sigma
        out.append(torch.linalg.eigh(g).eigenvalues)
    return torch.stack(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=500, help="test images scored by the batched method")
    parser.add_argument("--naive-images", type=int, default=50, help="of those, how many the naive loop scores")
    parser.add_argument("--batch-size", type=int, default=128, help="chunk size of the batched method")
    parser.add_argument("--curvature", choices=("flat", "decoder"), default="flat")
    parser.add_argument("--latent-dim", type=int, default=32)
    parser.add_argument("--architecture", choices=list(ARCHITECTURES), default="tanh_mlp",
                        help="network (default: the local-geometry chapters' tanh MLP)")
    parser.add_argument("--train-steps", type=int, default=0,
                        help="Adam steps on the ELBO over MNIST train images before scoring (0: untrained)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data-dir", default=None, help="data root (default: $RVAE_DATA)")
    args = parser.parse_args()
    if not 1 <= args.naive_images <= args.images:
        parser.error("need 1 <= --naive-images <= --images")

    torch.manual_seed(0)
    model = build_vae(args.architecture, (1, 28, 28), latent_dim=args.latent_dim).to(args.device)
    if args.train_steps:
        images, _ = mnist_tensors("train", args.data_dir, download=False, limit=10_000)
        train(model, sample_images(images.to(args.device), 128), TrainConfig("elbo", steps=args.train_steps),
              args.device)
    model.eval()
    x, _ = mnist_tensors("test", args.data_dir, download=False, limit=args.images)
    x = x.to(args.device)
    trained = f"{args.train_steps} ELBO steps" if args.train_steps else "untrained"
    print(f"{args.architecture} VAE, latent {args.latent_dim}, {trained}, "
          f"curvature {args.curvature}, device {args.device}, {torch.get_num_threads()} threads")

    robustness_scores(model, x[:args.batch_size], args.curvature, batch_size=args.batch_size)   # warm-up: one chunk
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    sync()
    start = time.perf_counter()
    scores = robustness_scores(model, x, args.curvature, batch_size=args.batch_size)
    sync()
    batched = time.perf_counter() - start

    start = time.perf_counter()
    naive = naive_eigenvalues(model, x[:args.naive_images], args.curvature)
    sync()
    naive_time = time.perf_counter() - start

    factor = metric_factor(model, x, args.curvature, batch_size=args.batch_size)
    start = time.perf_counter()
    gram_values = torch.cat([_eigenvalues_of_factor(chunk) for chunk in factor.split(args.batch_size)])
    gram_time = time.perf_counter() - start
    start = time.perf_counter()
    svd_values = torch.cat([torch.linalg.svdvals(chunk).square() for chunk in factor.split(args.batch_size)])
    svd_time = time.perf_counter() - start
    spectrum_gap = ((gram_values - svd_values).abs() / svd_values[:, :1]).max().item()

    per_batched, per_naive = batched / len(x), naive_time / args.naive_images
    print(f"batched factor + Gram eigh: {batched:8.3f} s for {len(x)} images  ({1e3 * per_batched:.3f} ms/image)")
    print(f"  of which the spectrum of the factors: Gram route {gram_time:.3f} s, SVD route {svd_time:.3f} s "
          f"(x{svd_time / gram_time:.1f}); largest eigenvalue difference {spectrum_gap:.1e} of the spectral radius")
    print(f"naive jacobian + eigh: {naive_time:8.3f} s for {args.naive_images} images ({1e3 * per_naive:.3f} ms/image)")
    print(f"scaled linearly to the {TEST_SET:,} test images: batched {TEST_SET * per_batched:.1f} s, "
          f"naive {TEST_SET * per_naive:.1f} s (naive measured on a subset of {args.naive_images} and scaled)")
    print(f"speed-up (per image): x{per_naive / per_batched:.1f}")

    common = scores["spectral_radius"][:args.naive_images]
    reference = naive[:, -1]
    relative = ((common - reference).abs() / reference.abs()).max().item()
    entropy_gap = (scores["entropy"][:args.naive_images]
                   - von_neumann_entropy(naive.clamp_min(0))).abs().max().item()
    k = gram_values.shape[1]
    top_naive = naive.flip(-1)[:, :k]                                           # descending, the k that can be > 0
    spectra_gap = ((gram_values[:args.naive_images] - top_naive).abs().amax(1) / top_naive[:, 0]).max().item()
    print(f"on the common {args.naive_images} images: max relative difference of spectral radii {relative:.2e}, "
          f"of the top {k} eigenvalues (relative to each image's spectral radius) {spectra_gap:.2e}, "
          f"max |difference| of normalised entropies {entropy_gap:.2e}")
    entropy = scores["entropy"].median().item()
    print(f"medians over the {len(x)} images: spectral radius {scores['spectral_radius'].median().item():.4g}, "
          f"normalised entropy {entropy:.4f} (max log(2d) = {math.log(2 * args.latent_dim):.4f})")


if __name__ == "__main__":
    main()
