"""rvae: robust representation learning with variational autoencoders, as an executable book.

Modules (one purpose each): ``chapters`` (registry and parameters), ``runner`` (papermill
execution and provenance), ``results`` (claims and result files), ``status`` (the
reproduction-status page), ``book`` (the HTML build), ``data`` (datasets), ``toy`` (the discrete
VAE and pPCA), ``plots`` (figure style).
"""
__version__ = "0.1.0"
