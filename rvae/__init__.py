"""rvae: robust representation learning with variational autoencoders, as an executable book.

One purpose per module:

- book machinery: ``chapters`` (registry, parameters, profiles), ``runner`` (papermill execution,
  provenance), ``results`` (claims, result files), ``status`` (reproduction-status page), ``book``
  (HTML build), ``checked_outputs`` (nbval-checked outputs of source notebooks), ``cli``,
  ``provenance``, ``atomic``, ``progress``, ``errors``;
- data: ``data`` (MNIST, FashionMNIST, ColorMNIST, CelebA);
- models and methods: ``nets`` (encoders, decoders, VAE), ``gaussians`` (closed forms),
  ``objectives`` (ELBO, beta-VAE, SE-ELBO), ``train`` (the one training loop);
- attacks and evaluation: ``attacks`` (PGD, selection, downstream attack), ``evaluate`` (linear
  probes, robustness curves), ``crosscheck`` (against an attack library);
- small worlds: ``toy`` (the discrete VAE and pPCA), ``derivations`` (checks of chapter 2);
- ``plots``: one figure style.
"""
__version__ = "0.1.0"
