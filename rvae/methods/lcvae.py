"""LC-VAE, the Lipschitz-constrained VAE ("Looser is worse", section 4): the ELBO plus a penalty on
how far the encoder moves codes relative to how far the images are apart, and the encoder's
parameters clipped to [-c, c] after every optimisation step.

For a batch of b = 2n images the paper minimises, per batch,

    sum_j -ELBO(x_j)  +  lambda * sum_{i=1..n} omega(x_i, x_{i+n}),
    omega(I1, I2) = ||f(I1) - f(I2)||^2 / ||I1 - I2||^2                     (section 4.1),

the first half of the batch paired with the second. Its VAE is the PyTorch examples' one, whose
loss is *summed* over the batch, so lambda weighs the sum of n omegas against the sum of 2n
negative ELBOs. Every loss of this registry is a per-example *mean*; the loss here is the paper's
batch loss divided by b:

    loss = -mean_j ELBO(x_j) + (lambda / b) * sum_{i=1..n} omega(x_i, x_{i+n}),

which keeps the paper's balance between the two terms at any batch size (a constant factor that
Adam's updates do not see). With an odd b the last example has no partner: it counts in the ELBO
and b, not in the penalty. A pair of identical images (batches are drawn with replacement) has
omega = 0/0; it is set to 0 (the pair says nothing about the encoder's slope).

f is the encoder *mean* mu(x). The paper writes f for "our encoder" and clips "the weights of f",
the network; its mean is that network's deterministic output, and the Lipschitz argument (omega
is at most the squared Lipschitz constant of f, which clipping bounds) is about that
deterministic map. A sample would add 2 tr(Sigma) / ||I1 - I2||^2 to omega in expectation, which
the penalty could only lower by shrinking the posterior variances, against the KL term.

Clipping follows Arjovsky et al. (2017), whom the paper cites for it: their code clamps every
parameter of the critic, so ``clipped="all"`` (the default) clamps every parameter of
``model.encoder``, biases and BatchNorm scales and shifts included (BatchNorm's running statistics
are buffers, not parameters, and are left alone); ``clipped="weights"`` spares the biases, which do
not change a Lipschitz constant. The decoder is never clipped. The hook runs after each step, so
the first step's forward pass sees the initial weights (call :func:`clip_encoder` first to clip
those too).

The paper's run settings (not method settings): latent dimension 10, Adam with learning rate
1e-3, batches of 300 images, 20 epochs of MNIST, the ConvNets of its tables 1 and 2. Those ConvNets
are the architectures ``lcvae_conv`` (the paper's widths) and ``lcvae_conv_narrow`` (every width
divided by 8, a stand-in for two CPU cores) of :mod:`rvae.lcvae_nets`, registered when that module
is imported (not from here: a method module imports no network code, so that looking methods up
changes no chapter's recorded modules).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from rvae import gaussians
from rvae.methods import Method, register
from rvae.methods.vae import reconstruction_term
from rvae.params import CheckedConfig, option


@dataclass(frozen=True)
class LCVAEConfig(CheckedConfig):
    weight: float = option(30.0, "lambda, the weight of the omega penalty (the paper: 30)", "[0, inf)")
    clip: float = option(0.30, "c: encoder parameters are clipped to [-c, c] after every step (the paper: 0.30)",
                         "(0, inf)")
    clipped: str = option("all", "which encoder parameters are clipped: all (as Arjovsky et al.'s code) or "
                                 "weights (all but biases)", "{all, weights}")


def lipschitz_ratios(x: Tensor, codes: Tensor) -> Tensor:
    """omega(x_i, x_{i+n}) = ||f_i - f_{i+n}||^2 / ||x_i - x_{i+n}||^2 for i < n = b // 2, (n,).

    ``codes`` (b, d) are the encodings f(x) of the batch ``x`` (b, ...). Identical pairs give 0
    (and a zero, finite gradient).
    """
    n = len(x) // 2
    image_gap = (x[:n] - x[n:2 * n]).flatten(1).pow(2).sum(1)
    code_gap = (codes[:n] - codes[n:2 * n]).pow(2).sum(1)
    distinct = image_gap > 0
    return torch.where(distinct, code_gap / torch.where(distinct, image_gap, torch.ones_like(image_gap)),
                       torch.zeros_like(code_gap))


def lc_vae_losses(x: Tensor, nets, config: LCVAEConfig, generator=None):
    """Minus the mean ELBO plus (lambda / b) * sum_i omega(x_i, x_{i+n}) (module docstring)."""
    model = nets["vae"]
    mu, logvar = model.encode(x)
    reconstruction = reconstruction_term(x, model, mu, logvar, generator)
    kl = gaussians.kl_to_standard_normal(mu, logvar)
    bound = reconstruction - kl
    omega = lipschitz_ratios(x, mu)
    penalty = config.weight * omega.sum() / len(x)
    return {"vae": -bound.mean() + penalty}, {
        "bound": bound.mean().item(), "reconstruction": reconstruction.mean().item(), "kl": kl.mean().item(),
        "omega": omega.mean().item() if len(omega) else 0.0, "penalty": penalty.item()}


def encoder_of(model: nn.Module) -> nn.Module:
    """``model.encoder``, the network whose parameters LC-VAE clips (a clear error if there is none)."""
    encoder = getattr(model, "encoder", None)
    if not isinstance(encoder, nn.Module):
        raise TypeError(f"LC-VAE clips the parameters of model.encoder; a {type(model).__name__} has no encoder module")
    return encoder


def clip_encoder(model: nn.Module, clip: float, clipped: str = "all") -> None:
    """Clamp the encoder's parameters (all, or all but biases) to [-clip, clip] in place."""
    with torch.no_grad():
        for name, parameter in encoder_of(model).named_parameters():
            if clipped == "all" or not name.endswith("bias"):
                parameter.clamp_(-clip, clip)


def clip_encoder_weights(nets: dict[str, nn.Module], config: LCVAEConfig) -> None:
    """The post-step hook: :func:`clip_encoder` on the VAE with the config's c."""
    clip_encoder(nets["vae"], config.clip, config.clipped)


register(Method("lc_vae", "Looser is worse, sec. 4",
                "the ELBO plus lambda * sum omega over paired halves of the batch; encoder clipped to [-c, c]",
                LCVAEConfig, lc_vae_losses, post_step=(clip_encoder_weights,)))
