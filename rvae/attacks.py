"""Projected gradient ascent (PGD) on any per-example objective, and the book's three uses of it.

:func:`pgd` maximises ``objective(x_adv) -> (B,)`` over the L-inf or L2 ball of radius eps around
x intersected with the image box [0, 1]^n (Madry et al., 2018): signed-gradient steps for L-inf,
normalised-gradient steps for L2, each iterate projected onto the ball and clipped to [0, 1].
It has what attack libraries lack: restarts that keep each example's worst case, and an
early stop per example (``stop_on``) that keeps the first successful point.

- :func:`latent_selection`: the Smooth Encoder selection mechanism (sec. 3.1), PGD on the
  W2^2 between q(z|x) and q(z|x + d);
- :func:`random_selection`: its control, a uniform point of the L-inf ball;
- :func:`downstream_attack` and :func:`adversarial_accuracy`: the untargeted attack on a
  linear probe over a frozen encoder's means (sec. 4), with restarts.

Randomness (the random starts) comes from the ``generator`` argument; ``None`` means torch's
default generator. Gradients are taken with ``torch.autograd.grad`` with respect to the
input only, so no parameter's ``.grad`` changes; the model's train/eval mode is left as the
caller set it (attack BatchNorm models in eval mode: in train mode every attack step's
forward pass also updates the running statistics).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from rvae.gaussians import w2_squared
from rvae.progress import progress_bar

NORMS = ("linf", "l2")
#: The default step is 2.5 eps / iterations (Madry et al.), but never below eps / 100.
MIN_STEP_FRACTION = 0.01


def default_step_size(eps: float, iterations: int) -> float:
    """Madry et al.'s step 2.5 eps / iterations, at least eps / 100 (same units as eps)."""
    return eps * max(2.5 / max(iterations, 1), MIN_STEP_FRACTION)


def _uniform(shape: torch.Size, like: Tensor, generator: torch.Generator | None) -> Tensor:
    """U[0, 1) of ``shape`` drawn on the generator's device, moved to ``like``'s device and dtype."""
    device = generator.device if generator is not None else like.device
    return torch.rand(shape, generator=generator, device=device, dtype=like.dtype).to(like.device)


def _normal(shape: torch.Size, like: Tensor, generator: torch.Generator | None) -> Tensor:
    device = generator.device if generator is not None else like.device
    return torch.randn(shape, generator=generator, device=device, dtype=like.dtype).to(like.device)


def _per_example_norm(t: Tensor) -> Tensor:
    """L2 norm of each example, shaped (B, 1, ..., 1) to broadcast against t."""
    return t.flatten(1).norm(dim=1).view(-1, *([1] * (t.dim() - 1)))


def project(x_adv: Tensor, x: Tensor, eps: float, norm: str = "linf") -> Tensor:
    """x_adv moved into the ``norm`` ball of radius eps around x, then clipped to [0, 1]; same shape as x."""
    delta = x_adv - x
    if norm == "linf":
        delta = delta.clamp(-eps, eps)
    else:
        delta = delta * (eps / _per_example_norm(delta).clamp_min(1e-12)).clamp(max=1.0)
    # Clipping to the box never leaves the ball: x is in [0, 1], so each |coordinate - x_i| only shrinks.
    return (x + delta).clamp(0.0, 1.0)


def random_in_ball(x: Tensor, eps: float, norm: str = "linf", generator: torch.Generator | None = None) -> Tensor:
    """A uniform random point of the ``norm`` ball of radius eps around x, clipped to [0, 1]; shape of x."""
    if norm == "linf":
        delta = (2 * _uniform(x.shape, x, generator) - 1) * eps
    else:  # uniform in the L2 ball: a uniform direction, radius eps * U^(1/n)
        direction = _normal(x.shape, x, generator)
        direction = direction / _per_example_norm(direction).clamp_min(1e-12)
        n = x[0].numel()
        radius = eps * _uniform(torch.Size([len(x)]), x, generator).pow(1.0 / n)
        delta = direction * radius.view(-1, *([1] * (x.dim() - 1)))
    return project(x + delta, x, eps, norm)


def _ascent_step(grad: Tensor, step_size: float, norm: str) -> Tensor:
    if norm == "linf":
        return step_size * grad.sign()
    return step_size * grad / _per_example_norm(grad).clamp_min(1e-12)


def _check(eps: float, iterations: int, norm: str, restarts: int) -> None:
    if norm not in NORMS:
        raise ValueError(f"unknown norm {norm!r}; valid: {', '.join(NORMS)}")
    if not eps >= 0 or math.isinf(eps):
        raise ValueError(f"eps must be a finite number >= 0, not {eps}")
    if iterations < 0:
        raise ValueError(f"iterations must be >= 0, not {iterations}")
    if restarts < 1:
        raise ValueError(f"restarts must be >= 1, not {restarts}")


@dataclass
class PGDResult:
    """What :func:`pgd_search` found: ``x_adv`` (B, C, H, W), its ``objective`` (B,), ``succeeded`` (B,) bool."""
    x_adv: Tensor
    objective: Tensor
    succeeded: Tensor


def pgd_search(objective: Callable[..., Tensor], x: Tensor, eps: float, iterations: int,
               step_size: float | None = None, norm: str = "linf", random_start: bool = True, restarts: int = 1,
               generator: torch.Generator | None = None, stop_on: Callable[..., Tensor] | None = None,
               batch_args: Sequence[Tensor] | None = None) -> PGDResult:
    """:func:`pgd` that also returns each example's best objective (B,) and stop_on success (B,) bool.

    ``batch_args``: tensors with the batch as first dimension. When given, ``objective`` and
    ``stop_on`` are called as f(x_adv, *batch_args) on the examples still attacked only (an
    example that succeeded leaves the computation, which saves most of the work of many
    restarts); the objective must then be per-example (no batch statistics). When None they
    are called as f(x_adv) on the whole batch, and examples that succeeded stay frozen.
    """
    _check(eps, iterations, norm, restarts)
    if eps == 0:                                       # the ball is {x}: evaluate x once
        iterations, restarts = 0, 1
    x = x.detach()
    batch, ones = len(x), [1] * (x.dim() - 1)         # ones: view a (n,) mask as (n, 1, ..., 1)
    if step_size is None:
        step_size = default_step_size(eps, iterations)
    best_x = x.clone()
    best_value = torch.full((batch,), -math.inf, device=x.device,
                            dtype=x.dtype if x.is_floating_point() else torch.float32)
    succeeded = torch.zeros(batch, dtype=torch.bool, device=x.device)
    subset = batch_args is not None
    all_rows = torch.arange(batch, device=x.device)

    for restart in range(restarts):
        if stop_on is not None and bool(succeeded.all()):
            break
        rows = (~succeeded).nonzero().squeeze(1) if subset else all_rows      # examples in the computation
        args = tuple(a[rows] for a in batch_args) if subset else ()
        x0 = x[rows]
        x_cur = x0.clone() if restart == 0 and not random_start else random_in_ball(x0, eps, norm, generator)
        if not subset:                                                        # frozen examples keep their success
            x_cur = torch.where(succeeded.view(-1, *ones), best_x, x_cur)
        for t in range(iterations + 1):
            x_var = x_cur.detach().requires_grad_(True)
            with torch.enable_grad():
                values = objective(x_var, *args)
            if values.shape != (len(rows),):
                raise ValueError(f"objective must return one value per example, shape ({len(rows)},), "
                                 f"not {tuple(values.shape)}")
            # keep each live example's best point; index_put and where, so that a GPU never waits here
            live = ~succeeded[rows]
            detached = values.detach().to(best_value.dtype)
            better = live & (detached > best_value[rows])
            if stop_on is not None:
                with torch.no_grad():
                    hit = stop_on(x_var, *args).to(torch.bool).view(-1) & live
                better = better | hit                                         # a success replaces any best point
                succeeded[rows] = succeeded[rows] | hit
                live = live & ~hit
            best_value[rows] = torch.where(better, detached, best_value[rows])
            best_x[rows] = torch.where(better.view(-1, *ones), x_var.detach(), best_x[rows])
            if t == iterations or (stop_on is not None and not bool(live.any())):
                break
            if not values.requires_grad:
                raise ValueError("objective(x_adv) does not depend on x_adv through autograd "
                                 "(was it computed under torch.no_grad or on detached tensors?)")
            with torch.enable_grad():                                         # also under a caller's no_grad
                (grad,) = torch.autograd.grad(values.sum(), x_var, allow_unused=True)
            if grad is None:
                grad = torch.zeros_like(x_var)
            x_next = project(x_var.detach() + _ascent_step(grad, step_size, norm), x0, eps, norm)
            if stop_on is not None and subset and not bool(live.all()):       # drop the examples that succeeded
                keep = live.nonzero().squeeze(1)
                rows, x0, x_next = rows[keep], x0[keep], x_next[keep]
                args = tuple(a[keep] for a in args)
            elif stop_on is not None and not subset:                          # freeze them
                x_next = torch.where(live.view(-1, *ones), x_next, x_var.detach())
            x_cur = x_next
    return PGDResult(best_x, best_value, succeeded)


def pgd(objective: Callable[..., Tensor], x: Tensor, eps: float, iterations: int, step_size: float | None = None,
        norm: str = "linf", random_start: bool = True, restarts: int = 1, generator: torch.Generator | None = None,
        stop_on: Callable[..., Tensor] | None = None, batch_args: Sequence[Tensor] | None = None) -> Tensor:
    """x_adv (B, C, H, W) maximising ``objective(x_adv) -> (B,)`` over the eps-ball around x and [0, 1].

    ``iterations`` ascent steps of ``step_size`` (default :func:`default_step_size`) per restart;
    every restart but a first with ``random_start=False`` begins at a uniform random point of
    the ball. Per example, the highest-objective iterate over all restarts and steps is
    returned; with ``stop_on(x_adv) -> (B,) bool`` an example's first successful iterate is
    returned instead and the example is attacked no further. Detached; x itself is not changed.
    """
    return pgd_search(objective, x, eps, iterations, step_size, norm, random_start, restarts, generator, stop_on,
                      batch_args).x_adv


def latent_selection(vae: nn.Module, x: Tensor, eps: float, budget: int, step_size: float | None = None,
                     generator: torch.Generator | None = None) -> Tensor:
    """Smooth Encoder selection: x_b (B,C,H,W) maximising W2^2(q(z|x), q(z|x_b)) by L-inf PGD, ``budget`` steps.

    ``vae`` has ``encode(x) -> (mu, logvar)``. x's encoding is computed once and detached; the
    search starts at a random point of the ball (at x itself the gradient of W2^2 is zero).
    """
    x = x.detach()
    with torch.no_grad():
        mu, logvar = vae.encode(x)

    def distance(x_b: Tensor, mu_a: Tensor, logvar_a: Tensor) -> Tensor:
        mu_b, logvar_b = vae.encode(x_b)
        return w2_squared(mu_a, logvar_a, mu_b, logvar_b)

    return pgd(distance, x, eps, budget, step_size=step_size, norm="linf", random_start=True, restarts=1,
               generator=generator, batch_args=(mu, logvar))


def random_selection(x: Tensor, eps: float, generator: torch.Generator | None = None) -> Tensor:
    """The random control of the selection: x_b (B,C,H,W) uniform in the L-inf eps-ball around x, clipped to [0, 1]."""
    _check(eps, 0, "linf", 1)
    return random_in_ball(x.detach(), eps, "linf", generator)


@dataclass
class AttackResult:
    """Outcome of :func:`downstream_attack` on a batch of B examples.

    ``robust`` (B,) bool: correctly classified at x and no misclassifying x_adv found;
    ``x_adv`` (B, C, H, W): the misclassifying point where one was found, else the highest-loss
    point found (x itself for examples already misclassified at x, or when eps = 0);
    ``nominal_correct`` (B,) bool: correctly classified at x.
    """
    robust: Tensor
    x_adv: Tensor
    nominal_correct: Tensor


def downstream_attack(encode_mean: Callable[[Tensor], Tensor], probe: nn.Module, x: Tensor, y: Tensor, eps: float,
                      iterations: int = 100, restarts: int = 10, step_size: float | None = None,
                      generator: torch.Generator | None = None) -> AttackResult:
    """Untargeted L-inf PGD on cross-entropy(probe(encode_mean(x_adv)), y) for x (B,C,H,W), y (B,) -> AttackResult.

    Only correctly classified examples are attacked; each restart stops on an example as soon
    as it is misclassified, and every later restart skips it.
    """
    x, y = x.detach(), y.detach()
    with torch.no_grad():
        nominal_correct = probe(encode_mean(x)).argmax(1) == y
    x_adv = x.clone()
    robust = nominal_correct.clone()
    attacked = nominal_correct.nonzero().squeeze(1)
    if eps == 0 or len(attacked) == 0:
        return AttackResult(robust, x_adv, nominal_correct)

    last: dict[str, Tensor] = {}                       # the predictions of the objective's last forward pass

    def loss(x_var: Tensor, labels: Tensor) -> Tensor:
        logits = probe(encode_mean(x_var))
        last["x"], last["prediction"] = x_var, logits.detach().argmax(1)
        return F.cross_entropy(logits, labels, reduction="none")

    def misclassified(x_var: Tensor, labels: Tensor) -> Tensor:
        if last.get("x") is x_var:                     # pgd calls stop_on right after the objective: reuse it
            return last["prediction"] != labels
        return probe(encode_mean(x_var)).argmax(1) != labels

    found = pgd_search(loss, x[attacked], eps, iterations, step_size=step_size, norm="linf", random_start=True,
                       restarts=restarts, generator=generator, stop_on=misclassified, batch_args=(y[attacked],))
    last.clear()
    with torch.no_grad():                              # a final check of the returned points
        wrong = probe(encode_mean(found.x_adv)).argmax(1) != y[attacked]
    x_adv[attacked] = found.x_adv
    robust[attacked] = ~(found.succeeded | wrong)
    return AttackResult(robust, x_adv, nominal_correct)


def robust_mask(encode_mean: Callable[[Tensor], Tensor], probe: nn.Module, x: Tensor, y: Tensor, eps: float,
                iterations: int = 100, restarts: int = 10, batch_size: int = 250,
                step_size: float | None = None, generator: torch.Generator | None = None,
                progress: bool | None = None) -> Tensor:
    """(N,) bool: which of x (N,C,H,W), y (N,) stay correct under :func:`downstream_attack`, batch by batch
    (eps=0: which are classified correctly).

    ``progress``: draw a bar over the batches (None: :func:`rvae.progress.progress_enabled`).
    """
    if len(x) == 0:
        raise ValueError("an attack needs at least one example")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, not {batch_size}")
    starts = range(0, len(x), batch_size)
    robust = []
    for start in progress_bar(starts, desc=f"PGD eps={eps:g}", total=len(starts), enabled=progress):
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        robust.append(downstream_attack(encode_mean, probe, xb, yb, eps, iterations, restarts, step_size,
                                        generator).robust)
    return torch.cat(robust)


def adversarial_accuracy(encode_mean: Callable[[Tensor], Tensor], probe: nn.Module, x: Tensor, y: Tensor, eps: float,
                         iterations: int = 100, restarts: int = 10, batch_size: int = 250,
                         step_size: float | None = None, generator: torch.Generator | None = None,
                         progress: bool | None = None) -> float:
    """Robust fraction of x (N,C,H,W), y (N,) under :func:`downstream_attack` (:func:`robust_mask`'s mean)."""
    mask = robust_mask(encode_mean, probe, x, y, eps, iterations, restarts, batch_size, step_size, generator, progress)
    return int(mask.sum()) / len(mask)
