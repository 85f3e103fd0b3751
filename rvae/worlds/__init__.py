"""Small worlds where everything is exact: the models of the derivations, solved in closed form or
by brute force, that the chapters set beside the neural experiments.

``discrete_vae`` (the discrete von Mises VAE and its smooth encoder, SE sec. 2.2), ``discrete_avae``
(the AVAE's discrete example, appendix D), ``ppca`` (probabilistic PCA: posteriors, transition
kernels, the latent encode-decode chain, AVAE appendix B), ``derivations`` (direct numerical checks
of the SE-ELBO's closed forms, chapter 2).
"""
