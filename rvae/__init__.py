"""rvae: robust representation learning with variational autoencoders, as an executable book.

What is where:

- ``methods/`` — the method registry (``methods/__init__.py``) and one module per method family.
  Each method is a config dataclass, its losses per parameter group and its optimiser settings;
  ``rvae methods`` lists them with their papers.
- ``nets`` — encoders and decoders by architecture name (mlp, tanh_mlp, conv) and the Gaussian VAE;
  ``gaussians`` and ``coupling`` — closed forms (log-likelihood, KL, entropic W2, rho-coupling).
- ``train`` — the one training loop (parameter groups, hooks, checkpoint/resume); ``experiment`` —
  what chapters call: train-or-resume a named model, then probe, attack and score it.
- ``attacks`` (PGD, selection, downstream attack), ``evaluate`` (linear probes, robustness curves,
  reconstruction error), ``geometry`` (pullback metric, spectra, scores, eigen-attacks),
  ``crosscheck`` (our PGD against an attack library), ``rank_correlation``.
- ``data`` — MNIST, FashionMNIST, ColorMNIST, CelebA under one data root.
- ``worlds/`` — small exact models: ``discrete_vae``, ``discrete_avae``, ``ppca``, ``derivations``.
- ``book/`` — the machinery: ``chapters`` (parameters, valid values, profiles), ``runner``,
  ``results``, ``provenance``, ``status``, ``checked_outputs``, ``build``, ``cli``.
- shared utilities: ``params`` (valid values of parameters), ``atomic`` (atomic file writes),
  ``progress`` (progress bars), ``errors`` (the one-line errors users see), ``plots``.
"""
__version__ = "0.1.0"
