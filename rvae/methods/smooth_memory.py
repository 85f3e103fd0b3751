"""Cheaper Smooth Encoder selection: the partner's search goes on across an example's visits.

Plain selection (:mod:`rvae.methods.smooth`) starts L fresh PGD steps from a random point of the
ball at every training step, so an SE step costs about (9 + 2L) / 6 VAE steps. These two options
keep each training example's perturbation d = x' - x between its visits instead:

- ``se-warm``: at a visit the search restarts from the example's d (projected onto its ball) and
  runs ``selection_budget`` more signed-gradient steps on W2^2(q(z|x), q(z|x')), as the plain
  selection does; a few steps per visit continue one long search;
- ``se-free``: no selection pass at all. The partner is x + d, and the training step's own
  backward pass gives the loss gradient with respect to x' ("free" adversarial training, Shafahi
  et al., 2019); after the step, d moves one signed step up that gradient (harder for the
  encoder) and is kept for the next visit.

A never-seen example starts at a uniform point of the ball. Both train the SE-ELBO of
:mod:`rvae.methods.smooth` with the full entropic coupling; only the partner's search differs.

An example is recognised by its content: a hash of its per-pixel channel maximum, so no batch
sampler has to name its examples. ColorMNIST recolours a digit at every draw; the digit keeps its
perturbation under its new colour, and projection onto the current image's ball and [0, 1]
keeps every partner valid. The memory stores d in int8 units of eps / 127 (a quarter of the
float32 memory), is saved in checkpoints with the networks, and grows as examples arrive.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from rvae import gaussians
from rvae.attacks import project, random_in_ball
from rvae.methods import Method, register
from rvae.methods.smooth import se_bound
from rvae.params import CheckedConfig, option

#: int8 units per eps of a stored perturbation
UNITS = 127


def example_keys(x: Tensor) -> list[int]:
    """One 64-bit key per example of x (B, C, H, W): a hash of its per-pixel maximum over channels."""
    grey = x.detach().amax(1).flatten(1).cpu().contiguous().numpy()
    return [int.from_bytes(hashlib.blake2b(row.tobytes(), digest_size=8).digest(), "little", signed=True)
            for row in grey]


class PerturbationMemory(nn.Module):
    """Each seen example's perturbation d (int8, units of eps / UNITS), found by :func:`example_keys`.

    Buffers (saved in checkpoints): ``keys`` (capacity,), ``codes`` (capacity, C, H, W), ``used``
    (rows filled). No parameters: no optimiser touches it.
    """

    def __init__(self, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.register_buffer("keys", torch.zeros(0, dtype=torch.int64))
        self.register_buffer("codes", torch.zeros(0, dtype=torch.int8))
        self.register_buffer("used", torch.zeros((), dtype=torch.int64))
        self.rows: dict[int, int] = {}
        self.pending: tuple[Tensor, Tensor, Tensor] | None = None    # se-free: (x, partners, rows) of the step

    def __len__(self) -> int:
        return int(self.used)

    def _rows(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Rows of x's examples (new ones appended, capacity doubled as needed) and which were seen before."""
        keys = example_keys(x)
        seen = torch.tensor([k in self.rows for k in keys], dtype=torch.bool)
        for k in keys:
            if k not in self.rows:
                self.rows[k] = len(self.rows)
        needed = len(self.rows)
        if needed > len(self.keys) or self.codes.shape[1:] != x.shape[1:]:
            capacity = max(needed, 2 * len(self.keys), 1024)
            keys_grown = torch.zeros(capacity, dtype=torch.int64, device=self.keys.device)
            codes_grown = torch.zeros((capacity, *x.shape[1:]), dtype=torch.int8, device=x.device)
            filled = int(self.used)
            if filled:
                keys_grown[:filled], codes_grown[:filled] = self.keys[:filled], self.codes[:filled]
            self.keys, self.codes = keys_grown, codes_grown
        rows = torch.tensor([self.rows[k] for k in keys], dtype=torch.int64)
        new = ~seen
        if new.any():                                             # only new examples' keys are written
            self.keys[rows[new].to(self.keys.device)] = torch.tensor(keys, dtype=torch.int64)[new].to(self.keys.device)
        self.used.fill_(needed)
        return rows.to(x.device), seen.to(x.device)

    def recall(self, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """(x', rows): each example's kept x + d projected onto its eps-ball and [0, 1], or a uniform point of
        the ball for an example not seen before (drawn for the whole batch, so the generator advances alike)."""
        rows, seen = self._rows(x)
        fresh = random_in_ball(x.detach(), self.eps, "linf", generator)
        kept = x.detach() + self.codes[rows].to(x.dtype) * (self.eps / UNITS)
        ones = [1] * (x.dim() - 1)
        return project(torch.where(seen.view(-1, *ones), kept, fresh), x.detach(), self.eps), rows

    def store(self, x: Tensor, partners: Tensor, rows: Tensor) -> None:
        """Keep d = x' - x of each example (rows from :meth:`recall`) for its next visit."""
        delta = (partners.detach() - x.detach()) * (UNITS / self.eps) if self.eps > 0 else torch.zeros_like(x)
        self.codes[rows] = delta.round().clamp(-UNITS, UNITS).to(torch.int8)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for name in ("keys", "codes"):                     # grown buffers: take the saved shape first
            if prefix + name in state_dict:
                setattr(self, name, torch.empty_like(state_dict[prefix + name]))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self.rows = {k: i for i, k in enumerate(self.keys[:int(self.used)].tolist())}


@dataclass(frozen=True)
class WarmSelectionConfig(CheckedConfig):
    """Warm selection of a partner: the example's kept search continued a few steps a visit (also the AVAE
    family's SE partner, :mod:`rvae.methods.avae`)."""
    selection_eps: float = option(0.1, "selection radius, L-inf", "[0, 1]")
    selection_budget: int = option(2, "PGD steps per visit, continuing the example's kept search", "[1, inf)")
    selection_step: float = option(0.5, "PGD step size as a fraction of selection_eps (plain L = 5 steps 0.5)", "(0, 2.5]")


@dataclass(frozen=True)
class WarmSEConfig(WarmSelectionConfig):
    gamma: float = option(1.0, "coupling strength of the entropic W2 term", "[0, inf)")


@dataclass(frozen=True)
class FreeSEConfig(CheckedConfig):
    gamma: float = option(1.0, "coupling strength of the entropic W2 term", "[0, inf)")
    selection_eps: float = option(0.1, "selection radius, L-inf", "[0, 1]")
    selection_step: float = option(0.5, "signed step per visit as a fraction of selection_eps", "(0, 2.5]")


def memory_network(vae: nn.Module, config) -> dict[str, nn.Module]:
    return {"memory": PerturbationMemory(config.selection_eps)}


def continue_search(model, x: Tensor, start: Tensor, eps: float, steps: int, step_size: float) -> Tensor:
    """``steps`` signed-gradient ascent steps on W2^2(q(z|x), q(z|x')) from x' = ``start``, each projected onto
    the eps-ball around x and [0, 1]; the last iterate, detached."""
    x = x.detach()
    with torch.no_grad():
        mu, logvar = model.encode(x)
    x_b = start.detach()
    for _ in range(steps):
        x_var = x_b.requires_grad_(True)
        with torch.enable_grad():
            distance = gaussians.w2_squared(mu, logvar, *model.encode(x_var)).sum()
            (grad,) = torch.autograd.grad(distance, x_var)
        x_b = project(x_var.detach() + step_size * grad.sign(), x, eps)
    return x_b


def warm_partners(x: Tensor, model, memory: PerturbationMemory, config: WarmSelectionConfig,
                  generator: torch.Generator | None = None) -> Tensor:
    """Partners x' of a batch by warm selection: each example's kept x + d (a uniform point of the ball for a
    new one), ``selection_budget`` more PGD steps, the result kept for the example's next visit; detached."""
    start, rows = memory.recall(x, generator)
    partners = continue_search(model, x, start, config.selection_eps, config.selection_budget,
                               config.selection_step * config.selection_eps)
    memory.store(x, partners, rows)
    return partners


def warm_losses(x: Tensor, nets, config: WarmSEConfig, generator=None):
    """Minus the SE-ELBO with partners from the example's kept search, continued ``selection_budget`` steps."""
    model = nets["vae"]
    partners = warm_partners(x, model, nets["memory"], config, generator)
    bound, logs = se_bound(x, partners, model, config.gamma, generator)
    return {"vae": -bound.mean()}, logs


def free_losses(x: Tensor, nets, config: FreeSEConfig, generator=None):
    """Minus the SE-ELBO with the kept partners x + d; x' is a leaf, so the step's backward pass fills x'.grad."""
    model, memory = nets["vae"], nets["memory"]
    partners, rows = memory.recall(x, generator)
    partners = partners.requires_grad_(True)
    memory.pending = (x.detach(), partners, rows)
    bound, logs = se_bound(x, partners, model, config.gamma, generator)
    return {"vae": -bound.mean()}, logs


def advance_free_partners(nets, config: FreeSEConfig) -> None:
    """After the step: d moves one signed step up the loss gradient the backward pass left on x'; kept."""
    memory = nets["memory"]
    if memory.pending is None:
        return
    x, partners, rows = memory.pending
    memory.pending = None
    grad = partners.grad if partners.grad is not None else torch.zeros_like(partners)
    moved = project(partners.detach() + config.selection_step * config.selection_eps * grad.sign(), x,
                    config.selection_eps)
    memory.store(x, moved, rows)


register(Method("se-warm", "Smooth Encoders, appendix C; warm-started selection (this book)",
                "the SE-ELBO; each example's partner search continues from its last visit, a few PGD steps a visit",
                WarmSEConfig, warm_losses, networks=memory_network))
register(Method("se-free", "Smooth Encoders, appendix C; free selection (Shafahi et al., 2019)",
                "the SE-ELBO; the partner moves one signed step per visit along the training step's own gradient",
                FreeSEConfig, free_losses, networks=memory_network, post_step=(advance_free_partners,)))
