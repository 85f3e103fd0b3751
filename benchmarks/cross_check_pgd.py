"""Cross-check rvae's L-inf PGD against foolbox's LinfPGD and torchattacks' PGD, at the same budget.

A small MLP encoder (784-128-16, ReLU) and a linear probe are trained together for a few hundred
steps on 2,000 MNIST training images (or, when MNIST is not under the data root, on synthetic
digit-like images), then each attack runs on the same images with the same radius, step size,
number of steps and one random start (the libraries have no restarts). For each radius the
script prints how many correctly classified images each attack turns into misclassified ones.
Ours should find at least as many: it keeps, per image, the first misclassifying iterate,
where the libraries return their last one. Started from the libraries' own random points
(same seed, same draws), ours should misclassify every image that a library does; the
"(missed)" columns count the exceptions. A last column shows what restarts add.

    python benchmarks/cross_check_pgd.py [--data-dir DIR] [--n 2000] [--steps 20] [--eps 0.05 0.1 0.2]

A library that is not installed is reported as such.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rvae import crosscheck  # noqa: E402
from rvae.attacks import default_step_size, downstream_attack, pgd_search  # noqa: E402
from rvae.data import describe_data, mnist_tensors  # noqa: E402

def load_images(n: int = 2000, data_dir: str | None = None, seed: int = 0) -> tuple[Tensor, Tensor, str]:
    """n images (n,1,28,28) in [0,1], labels (n,) and where they come from: MNIST train, else synthetic."""
    if describe_data(data_dir)["MNIST"]["available"]:
        x, y = mnist_tensors("train", data_dir=data_dir, download=False, limit=n)
        return x, y, f"MNIST train[:{len(y)}]"
    g = torch.Generator().manual_seed(seed)
    prototypes = torch.rand(10, 1, 28, 28, generator=g)                         # 10 random "digits"
    y = torch.randint(10, (n,), generator=g)
    x = (0.5 + 0.3 * (prototypes[y] - 0.5) + 0.25 * torch.randn(n, 1, 28, 28, generator=g)).clamp(0, 1)
    return x, y, f"synthetic ({n} noisy low-contrast copies of 10 random patterns)"


def train_model(x: Tensor, y: Tensor, steps: int = 300, seed: int = 0) -> tuple[nn.Module, nn.Linear]:
    """An MLP encoder (B,1,28,28)->(B,16) and a linear probe (B,16)->(B,10), trained jointly with Adam."""
    with torch.random.fork_rng():                                                # initialisation: leave no trace
        torch.manual_seed(seed)
        encoder = nn.Sequential(nn.Flatten(), nn.Linear(x[0].numel(), 128), nn.ReLU(), nn.Linear(128, 16))
        probe = nn.Linear(16, 10)
    g = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.Adam([*encoder.parameters(), *probe.parameters()], lr=1e-3)
    for _ in range(steps):
        index = torch.randint(len(x), (128,), generator=g)
        loss = nn.functional.cross_entropy(probe(encoder(x[index])), y[index])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return encoder.eval(), probe.eval()


def flipped_ours(encoder: nn.Module, probe: nn.Module, x: Tensor, y: Tensor, eps: float, steps: int, alpha: float,
                 seed: int = 0, restarts: int = 1, same_starts: bool = False) -> Tensor:
    """(N,) bool: correctly classified images that rvae's PGD misclassifies.

    ``same_starts``: attack all N images with one restart whose random start is drawn like the
    libraries' (``torch.rand`` of shape (N, ...) from a generator seeded with ``seed``, the
    stream ``torch.manual_seed(seed)`` gives them), so that the trajectories can be compared
    image by image. Otherwise :func:`downstream_attack` as the book uses it.
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        correct = probe(encoder(x)).argmax(1) == y
    if not same_starts:
        result = downstream_attack(encoder, probe, x, y, eps, iterations=steps, restarts=restarts, step_size=alpha,
                                   generator=generator)
        return correct & ~result.robust

    def loss(x_adv: Tensor, labels: Tensor) -> Tensor:
        return nn.functional.cross_entropy(probe(encoder(x_adv)), labels, reduction="none")

    def wrong(x_adv: Tensor, labels: Tensor) -> Tensor:
        return probe(encoder(x_adv)).argmax(1) != labels

    found = pgd_search(loss, x, eps, steps, step_size=alpha, restarts=1, generator=generator, stop_on=wrong,
                       batch_args=(y,))
    return correct & found.succeeded


@torch.no_grad()
def _flipped(model: nn.Module, x: Tensor, x_adv: Tensor, y: Tensor, eps: float) -> Tensor:
    assert (x_adv - x).abs().max() <= eps + 1e-5 and 0 <= x_adv.min() and x_adv.max() <= 1
    return (model(x).argmax(1) == y) & (model(x_adv).argmax(1) != y)


def _library_flipped(library: str):
    def flipped(encoder: nn.Module, probe: nn.Module, x: Tensor, y: Tensor, eps: float, steps: int,
                alpha: float, seed: int = 0) -> Tensor:
        """(N,) bool: correctly classified images that the library's PGD misclassifies (ImportError without it)."""
        model = nn.Sequential(encoder, probe).eval()
        return _flipped(model, x, crosscheck.LIBRARY_ATTACKS[library](model, x, y, eps, alpha, steps, seed), y, eps)
    return flipped


LIBRARY_ATTACKS = {name: _library_flipped(name) for name in crosscheck.LIBRARY_ATTACKS}


def cross_check(encoder: nn.Module, probe: nn.Module, x: Tensor, y: Tensor, radii: list[float], steps: int = 20,
                seed: int = 0, restarts: int = 10) -> list[dict[str, float | int | None]]:
    """One row per radius of counts of flipped images (None: library not installed).

    Keys: eps, step_size, correct (nominally), ours (the book's attack, 1 restart), same_starts
    (ours from the libraries' random starts), LIBRARY and LIBRARY_missed (images LIBRARY flips
    that ours from the same starts does not) for each library, ours_restarts (``restarts``).
    """
    with torch.no_grad():
        correct = int((probe(encoder(x)).argmax(1) == y).sum())
    rows = []
    for eps in radii:
        alpha = default_step_size(eps, steps)
        row: dict[str, float | int | None] = {"eps": eps, "step_size": alpha, "correct": correct}
        row["ours"] = int(flipped_ours(encoder, probe, x, y, eps, steps, alpha, seed).sum())
        same = flipped_ours(encoder, probe, x, y, eps, steps, alpha, seed, same_starts=True)
        row["same_starts"] = int(same.sum())
        for name, attack in LIBRARY_ATTACKS.items():
            try:
                theirs = attack(encoder, probe, x, y, eps, steps, alpha, seed)
            except ImportError:
                row[name] = row[f"{name}_missed"] = None
                continue
            row[name], row[f"{name}_missed"] = int(theirs.sum()), int((theirs & ~same).sum())
        row["ours_restarts"] = (int(flipped_ours(encoder, probe, x, y, eps, steps, alpha, seed, restarts).sum())
                                if restarts > 1 else None)
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None, help="data root (default: $RVAE_DATA, else ~/.cache/rvae/data)")
    parser.add_argument("--n", type=int, default=2000, help="images to train on and attack")
    parser.add_argument("--steps", type=int, default=20, help="PGD steps (all attacks)")
    parser.add_argument("--train-steps", type=int, default=300, help="Adam steps of the encoder and probe")
    parser.add_argument("--eps", type=float, nargs="+", default=[0.05, 0.1, 0.2], help="L-inf radii")
    parser.add_argument("--restarts", type=int, default=10, help="restarts of the extra column 'ours, restarts'")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    x, y, source = load_images(args.n, args.data_dir, args.seed)
    encoder, probe = train_model(x, y, args.train_steps, args.seed)
    rows = cross_check(encoder, probe, x, y, args.eps, args.steps, args.seed, args.restarts)
    print(f"data: {source}; MLP 784-128-16 + linear probe, {args.train_steps} Adam steps; L-inf PGD, "
          f"{args.steps} steps of 2.5 eps/steps, 1 random start; torch {torch.__version__}")
    print(f"nominally correct: {rows[0]['correct']} of {len(y)}; images turned into misclassified ones:")
    columns = {"ours": "ours", "same_starts": "ours, same starts", "foolbox": "foolbox",
               "foolbox_missed": "(missed)", "torchattacks": "torchattacks", "torchattacks_missed": "(missed)",
               "ours_restarts": f"ours, {args.restarts} restarts"}
    print(f"{'eps':>6} {'step':>7}  " + "  ".join(columns.values()))
    for row in rows:
        cells = ["n/a" if row[k] is None else str(row[k]) for k in columns]
        print(f"{row['eps']:>6g} {row['step_size']:>7.4f}  " + "  ".join(f"{c:>{len(h)}}" for c, h in
                                                                       zip(cells, columns.values())))
    print("(missed): images the library misclassifies that ours, from the same random starts, does not")


if __name__ == "__main__":
    main()
