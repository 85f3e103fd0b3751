"""rvae: robust representation learning with variational autoencoders, as an executable book.

What is where:

- ``methods/`` — the method registry (``methods/__init__.py``) and one module per method family.
  Each method is a config dataclass, its losses per parameter group and its optimiser settings;
  ``rvae methods`` lists them with their papers. ``methods/smooth_memory`` holds the cheaper SE
  selections (se-warm, se-free), which keep each example's perturbation between its visits.
- ``nets`` — encoders and decoders by architecture name (mlp, tanh_mlp, conv) and the Gaussian VAE;
  ``lcvae_nets`` adds the ConvNets of "Looser is worse" (lcvae_conv, lcvae_conv_narrow) on import;
  ``gaussians`` and ``coupling`` — closed forms (log-likelihood, KL, entropic W2, rho-coupling).
- ``train`` — the one training loop (parameter groups, hooks, checkpoint/resume); ``experiment`` —
  what chapters call: train-or-resume a named model, then probe, attack and score it; ``costs`` —
  the step cost of several methods measured alike (one fixed batch, interleaved repeats).
- ``attacks`` (PGD, selection, downstream attack), ``evaluate`` (linear probes, robustness curves,
  reconstruction error), ``looseness`` (class radius, collision probability, the diversity bound,
  holes), ``fidelity`` (the book's image classifier and the Fréchet distance in its features),
  ``geometry`` (pullback metric, spectra, scores, eigen-attacks),
  ``crosscheck`` (our PGD against an attack library), ``stats`` (the verdicts of the papers' claims:
  exact paired tests, bootstrap intervals, rank trends, quality gates; scipy.stats underneath).
- ``data`` — MNIST, FashionMNIST, ColorMNIST, CelebA under one data root, with the provenance of
  the files (official or not, by MD5).
- ``worlds/`` — small exact models: ``discrete_vae``, ``discrete_avae``, ``ppca``, ``derivations``,
  ``grid2d`` (the 25-mode grid of the GAN experiments).
- ``book/`` — the machinery: ``chapters`` (parameters, valid values, the quick/full/paper profiles),
  ``runner``, ``results`` (checks and judged claims), ``provenance``, ``status``, ``checked_outputs``,
  ``build``, ``cli``.
- shared utilities: ``params`` (valid values of parameters), ``atomic`` (atomic file writes),
  ``progress`` (progress bars), ``errors`` (the one-line errors users see), ``plots``.
"""
__version__ = "0.1.0"
