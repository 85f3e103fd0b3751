"""Write the DRAFT of chapter 08_wae_aae (issue 13) as drafts/08_wae_aae.ipynb, unexecuted.

    .venv/bin/python drafts/make_08_wae_aae.py

Its methods are registry entries (rvae.methods.aae, rvae.methods.wae); its kernel statistics live in
rvae.kernels. It needs torchmetrics (FID and KID with the book's classifier as the feature network),
which pyproject.toml does not list yet: the chapter moves to notebooks/ together with that line.
"""
from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
CELLS: list = []


def md(text: str) -> None:
    CELLS.append(new_markdown_cell(text.strip("\n")))


def code(text: str, *tags: str) -> None:
    cell = new_code_cell(text.strip("\n"))
    if tags:
        cell.metadata["tags"] = list(tags)
    CELLS.append(cell)


md(r"""
# Adversarial and Wasserstein autoencoders beside the VAE

*DRAFT (issue 13), not yet executed at its full profile.*

The VAE regularises every encoding: its bound charges $\mathrm{KL}(q(z\mid x)\,\|\,p(z))$ for each $x$.
Two later families regularise only the *aggregated* posterior $q(z) = \mathbb E_{x}\, q(z\mid x)$,
the cloud of all codes together, and leave each encoding free, even deterministic:

- the **adversarial autoencoder** (AAE) trains a discriminator $D(z)$ to tell prior draws from codes
  and the encoder to fool it, after each reconstruction step;
- the **Wasserstein autoencoder** (WAE) starts from the optimal-transport distance between the data
  and the model and arrives at a reconstruction cost plus a penalty on $q(z)$ against $p(z)$: a kernel
  MMD (WAE-MMD) or a latent discriminator (WAE-GAN).

The AAE/WAE slides report that on CelebA the WAEs' samples are closer to the data than the VAE's
(FID: VAE 82, WAE-MMD 55, WAE-GAN 42). This chapter

1. derives the three objectives from the VAE's bound, and shows why WAE-GAN with a squared-error
   cost is the AAE (checked on the trained models);
2. trains VAE, AAE, WAE-MMD and WAE-GAN with the same networks and budgets on MNIST (and
   FashionMNIST at full), shows samples and reconstructions, and measures sample quality with a
   Fréchet distance and a kernel distance in the features of a classifier trained here;
3. asks whether the slides' ranking (WAE-GAN < WAE-MMD < VAE) holds, with bootstrap intervals;
4. beyond the sources: attacks linear probes on each model's codes (chapter 3's protocol), beside a
   Smooth Encoder: is a deterministic-encoder autoencoder more or less robust than the VAE?
""")

md(r"""
## From the VAE's bound to a penalty on $q(z)$

For data $P_X$, decoder $G$ (here the mean of $p(x\mid z)$) and prior $P_Z = \mathcal N(0, I)$, the VAE
minimises, per example, $-\mathbb E_{q(z\mid x)} \log p(x\mid z) + \mathrm{KL}(q(z\mid x)\,\|\,p(z))$. Averaged
over the data, the KL term splits as
$$\mathbb E_x\, \mathrm{KL}(q(z\mid x)\,\|\,p(z)) = I_q(x; z) + \mathrm{KL}(q(z)\,\|\,p(z)),$$
the mutual information between input and code under the encoder plus the divergence of the
aggregated posterior from the prior. The first term pulls every encoding towards the prior — the
encoder is charged for telling inputs apart — and is the reason VAE codes overlap and decoded
samples average over neighbouring inputs.

**AAE.** Keep the reconstruction term and replace the KL by a divergence between $q(z)$ and $p(z)$
only, estimated adversarially: $D$ maximises $\mathbb E_{p(z)}\log D(z) + \mathbb E_{q(z)}\log(1 - D(z))$, whose
optimum is the Jensen-Shannon divergence up to constants, and the encoder, the generator of this
latent GAN, minimises $-\mathbb E_{q(z)}\log D(z)$ (the non-saturating form). `rvae.methods.aae` steps
three groups in turn: encoder and decoder on the reconstruction, $D$, then the encoder alone.

**WAE.** The optimal-transport cost between $P_X$ and the model $P_G$ (the law of $G(Z)$) with a cost
$c$ equals, for a deterministic decoder, the best reconstruction cost over encoders whose aggregated
posterior *is* the prior:
$$W_c(P_X, P_G) = \inf_{q:\; q(z) = p(z)} \mathbb E_x\, \mathbb E_{q(z\mid x)}\, c(x, G(z)).$$
Relaxing the constraint with a penalty gives the WAE objective
$\mathbb E_x \mathbb E_{q(z\mid x)} c(x, G(z)) + \lambda\, \mathcal D(q(z), p(z))$. With $\mathcal D$ the squared MMD
of a kernel $k$ (estimated by the unbiased U-statistic, `rvae.kernels.mmd_u`; inverse multiquadric
kernels at seven scales) this is **WAE-MMD**; with $\mathcal D$ the Jensen-Shannon divergence through a
latent discriminator it is **WAE-GAN**.

**WAE-GAN with the squared error is the AAE.** A Gaussian decoder has
$-\log p(x\mid z) = \|x - G(z)\|^2 / (2v) + \tfrac{D}{2}\log(2\pi v)$: with $c(x, y) = \|x - y\|^2/(2v)$ and
$\lambda$ equal to the AAE's adversarial weight, the encoder's and decoder's total loss of the AAE
(reconstruction plus adversarial) is WAE-GAN's plus a constant, and the discriminators' losses agree
up to the factor $\lambda$. The two differ only in their schedule (the AAE steps the encoder twice per
batch). The unit tests check the identity on random networks; the chapter checks it on its trained
models.
""")

code(r'''
# Overrides of the quick defaults below: `rvae run 08_wae_aae --profile full` (the book's evidence on two CPU
# cores; not yet measured) and `--profile paper` (the WAE paper's MNIST settings, for a GPU).
FULL_PROFILE = {
    "datasets": ["mnist", "fashion_mnist"], "train_steps": 6000, "classifier_steps": 3000, "n_test": 10000,
    "n_quality": 10000, "quality_resamples": 1000, "kid_subsets": 100, "n_probe": 20000, "n_eval": 1000,
    "attack_iterations": 100, "attack_restarts": 10, "se_selection_budget": 20,
    "checkpoint_dir": "~/.cache/rvae/checkpoints/08_wae_aae",
}
PAPER_PROFILE = {
    "datasets": ["mnist", "fashion_mnist"], "architecture": "conv", "train_steps": 60000, "classifier_steps": 5000,
    "n_test": 10000, "n_quality": 10000, "quality_resamples": 1000, "kid_subsets": 100, "n_probe": 60000,
    "n_eval": 10000, "attack_iterations": 100, "attack_restarts": 10, "se_selection_budget": 20,
    "checkpoint_dir": "~/.cache/rvae/checkpoints/08_wae_aae",
}
''', "profiles")

code(r'''
profile = "quick"                 # set by the runner: quick, full or paper
device = "cpu"                    # set by the runner: cpu or cuda
seed = 0                          # seeds weights, batches, prior draws, bootstraps and attacks; valid: [0, inf)
datasets = ["mnist"]              # the datasets of the chapter; valid: {mnist, fashion_mnist}
architecture = "mlp"              # encoder and decoder of every model (the same for all); valid: {mlp, conv}
latent_dim = 8                    # the WAE paper's MNIST latent dimension; valid: [1, inf)
observation_variance = 0.05       # v, the VAE's and AAE's Gaussian decoder variance; valid: (0, inf)
batch_size = 100                  # training batch size (the WAE paper's); valid: [2, inf)
learning_rate = 0.001             # Adam step size of every group (the WAE paper's); valid: (0, inf)
train_steps = 400                 # training steps per model (full: 6000, 10 epochs at batch 100); valid: [1, inf)
wae_cost_weight = 0.05            # the WAE cost c(x, y) is w ||x - y||^2 (the WAE code's MNIST value); valid: (0, inf)
mmd_weight = 10.0                 # WAE-MMD's lambda (the WAE paper's MNIST value); valid: [0, inf)
gan_weight = 1.0                  # WAE-GAN's lambda (the WAE paper's MNIST value); valid: [0, inf)
aae_weight = 1.0                  # the AAE encoder's adversarial weight (the slides give none); valid: [0, inf)
discriminator_hidden = 512        # units per hidden layer of D(z) (the WAE paper's MNIST D: 4 x 512); valid: [1, inf)
discriminator_depth = 4           # hidden layers of D(z); valid: [1, inf)
classifier_steps = 600            # training steps (batch 128) of each dataset's classifier; valid: [1, inf)
n_test = 2000                     # first test images: classifier accuracy, reconstructions, real features; valid: [2, 10000]
n_quality = 1000                  # samples (and real test images) per Fréchet and kernel distance; valid: [10, 10000]
quality_resamples = 200           # bootstrap resamples of each Fréchet-distance ratio; valid: [10, inf)
kid_subsets = 20                  # subsets of the kernel distance (torchmetrics KID); valid: [1, inf)
kid_subset_size = 500             # points per subset of the kernel distance; valid: [2, inf)
n_probe = 5000                    # training images of the linear probes; valid: [1, inf)
probe_epochs = 30                 # epochs of probe training; valid: [1, inf)
n_eval = 200                      # first test images attacked per model; valid: [1, 10000]
claim_radius = 0.1                # L-inf attack radius of the robustness claims; valid: (0, 1]
attack_iterations = 10            # PGD iterations of the downstream attack; valid: [1, inf)
attack_restarts = 1               # PGD restarts of the downstream attack; valid: [1, inf)
se_gamma = 1.0                    # the Smooth Encoder of the robustness section; valid: [0, inf)
se_selection_budget = 3           # its PGD selection steps (radius 0.1); valid: [1, inf)
n_show = 8                        # images per row of the sample and reconstruction figures; valid: [1, inf)
gate_classifier_accuracy = [0.97, 0.85]   # quality gate of each dataset's classifier (MNIST, FashionMNIST); valid: [0, 1]
gate_reconstruction_accuracy = [0.9, 0.7] # gate: classifier accuracy on a model's reconstructions (per dataset); valid: [0, 1]
gate_vae_accuracy = [0.85, 0.7]   # gate: the VAE's nominal probe accuracy (per dataset); valid: [0, 1]
checkpoint_dir = ""               # where to keep training checkpoints, empty for none
''', "parameters")

code(r'''
import math
import warnings

import matplotlib.pyplot as plt
import numpy as np
import torch
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from rvae import data, fidelity, plots
from rvae.book.results import Check, Claim, report
from rvae.errors import ParameterError
from rvae.experiment import Experiment, ProbeSetup
from rvae.kernels import mmd_u
from rvae.methods.aae import AAEConfig, aae_losses
from rvae.methods.gan import prior_sample
from rvae.methods.wae import WAEGANConfig, wae_gan_losses
from rvae.stats import Claimed, Evidence, Gate, paired_accuracy, proportion
from rvae.train import sample_images

if len(set(datasets)) != len(datasets):
    raise ParameterError(f"datasets must not repeat; got {datasets}")
LOADERS = {"mnist": data.mnist_tensors, "fashion_mnist": data.fashion_mnist_tensors}
RAW_NAMES = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}
GATE_INDEX = {"mnist": 0, "fashion_mnist": 1}
checks, claims, metrics = [], [], {"datasets": {}}
''')

md(r"""
## The models

Every model has the same encoder and decoder (`architecture`, latent dimension 8), the same training
length, batch size and Adam step size; only the objective differs:

| model | registry method | objective | encoder |
|---|---|---|---|
| VAE | `elbo` | $-\log p(x\mid z)$ + KL per example | Gaussian |
| AAE | `aae` | $-\log p(x\mid z)$, then a latent GAN on $q(z)$ | deterministic |
| WAE-MMD | `wae_mmd` | $0.05\,\|x - G(z)\|^2 + 10\,\mathrm{MMD}^2(q(z), p(z))$ | deterministic |
| WAE-GAN | `wae_gan` | $0.05\,\|x - G(z)\|^2 + 1 \cdot$ latent GAN loss | deterministic |

A Smooth Encoder (chapter 3, $\gamma = 1$, selection radius 0.1) joins them in the robustness section.
The VAE's reconstruction weight is $1/(2v) = 10$ per squared pixel error, the WAEs' 0.05, as each
paper sets it: the comparison is between the methods as their authors run them on MNIST, not at a
matched weight.
""")

code(r'''
MODELS = {
    "VAE": ("elbo", {}),
    "AAE": ("aae", {"weight": aae_weight, "discriminator_hidden": discriminator_hidden,
                    "discriminator_depth": discriminator_depth}),
    "WAE-MMD": ("wae_mmd", {"weight": mmd_weight, "cost_weight": wae_cost_weight}),
    "WAE-GAN": ("wae_gan", {"weight": gan_weight, "cost_weight": wae_cost_weight,
                            "discriminator_hidden": discriminator_hidden, "discriminator_depth": discriminator_depth}),
}
runs = {}
for name in datasets:
    print(data.idx_provenance(RAW_NAMES[name])["description"])
    train_images, train_labels = LOADERS[name]("train")
    test_images, test_labels = LOADERS[name]("test", limit=n_test)
    classifier = fidelity.train_classifier(train_images, train_labels, classifier_steps, seed=seed, device=device)
    test_outputs = fidelity.classifier_outputs(classifier, test_images, device=device)
    correct = (test_outputs["label"] == test_labels).numpy()
    experiment = Experiment(name, sample_images(train_images, batch_size), tuple(train_images.shape[1:]),
                            architecture=architecture, latent_dim=latent_dim, observation_variance=observation_variance,
                            steps=train_steps, learning_rate=learning_rate, seed=seed, device=device,
                            checkpoint_dir=checkpoint_dir)
    trained = {model: experiment.train(method, **fields) for model, (method, fields) in MODELS.items()}
    runs[name] = {"train_images": train_images, "test_images": test_images, "test_labels": test_labels,
                  "classifier": classifier, "test_outputs": test_outputs, "experiment": experiment, "trained": trained,
                  "classifier_gate": Gate(f"{name} classifier accuracy on the test images", float(correct.mean()),
                                          gate_classifier_accuracy[GATE_INDEX[name]])}
    print(f"{name}: classifier accuracy {proportion(correct).describe()}")
    for model, run in trained.items():
        print(f"  {model:8} {1000 * run.training.seconds_per_step:6.1f} ms per step")
''')

md(r"""
## Samples and reconstructions

The same prior draws $z \sim \mathcal N(0, I)$ decoded by each model, and the first test images
reconstructed through each model's code (the mean for the VAE, the code itself for the others).
""")

code(r'''
prior = prior_sample(max(n_quality, 2 * n_show), latent_dim, torch.Generator().manual_seed(seed + 1))
for name, run in runs.items():
    shown = {"input": run["test_images"][:n_show]}
    shown.update({model: fidelity.reconstruct_batched(t.model, run["test_images"][:n_show], device)
                  for model, t in run["trained"].items()})
    figure, axes = plt.subplots(len(MODELS) + len(shown), 1, figsize=(1.0 * n_show, 1.05 * (len(MODELS) + len(shown))),
                                constrained_layout=True)
    for ax, (model, t) in zip(axes[:len(MODELS)], run["trained"].items()):
        plots.image_tiles(ax, fidelity.decode_batched(t.model, prior[:n_show], device))
        ax.set_ylabel(f"{model}\nsamples", rotation=0, ha="right", va="center")
    for ax, (model, images) in zip(axes[len(MODELS):], shown.items()):
        plots.image_tiles(ax, images)
        ax.set_ylabel(model if model == "input" else f"{model}\nrecon.", rotation=0, ha="right", va="center")
    axes[0].set_title(f"{name}: samples (same z in every row), then reconstructions of the first test images")
    plt.show()
''')

md(r"""
## Sample quality without Inception weights

FID needs the Inception network's ImageNet weights, which this machine cannot download, and an
ImageNet network says little about $28 \times 28$ digits anyway. We use the same formula in the
features of the book's own classifier (`rvae.fidelity.ImageClassifier`, trained on the dataset's
training images; its last hidden layer, 128 units): torchmetrics' `FrechetInceptionDistance` and
`KernelInceptionDistance` with that network as their `feature` module (with the Inception weights
present, the same calls give the real FID). The Fréchet distance fits a Gaussian to each feature
cloud and is biased upwards at finite $n$; the kernel distance (the unbiased MMD$^2$ with a cubic
kernel, averaged over subsets) has no such bias. Both are computed from `n_quality` samples against
as many real test images, and the floor of each, the distance between two sets of real images, is
shown beside them. The slides' numbers are CelebA FIDs: only the ranking carries over.

The ranking claim compares Fréchet distances in pairs, on the same prior draws, by a bootstrap of
the log ratio (`rvae.fidelity.frechet_log_ratio`, real images resampled apart).
""")

code(r'''
class Features(torch.nn.Module):
    """The classifier's last hidden layer as torchmetrics' feature network (images in [0, 1])."""

    def __init__(self, classifier):
        super().__init__()
        self.classifier = classifier.eval()

    def forward(self, images):
        return self.classifier.features(images.float())


def distances(feature_net, real, fake, image_shape):
    fid = FrechetInceptionDistance(feature=feature_net, input_img_size=image_shape, normalize=True)
    with warnings.catch_warnings():      # KID warns that it keeps every feature: a few thousand rows of 128 here
        warnings.filterwarnings("ignore", message="Metric `Kernel Inception Distance` will save all extracted")
        kid = KernelInceptionDistance(feature=feature_net, subsets=kid_subsets,
                                      subset_size=min(kid_subset_size, len(fake)), normalize=True)
    for metric in (fid, kid):
        metric.update(real, real=True)
        metric.update(fake, real=False)
    kid_mean, kid_std = kid.compute()
    return float(fid.compute()), float(kid_mean), float(kid_std)


quality = {}
for name, run in runs.items():
    feature_net = Features(run["classifier"])
    shape = tuple(run["test_images"].shape[1:])
    real = run["test_images"][:n_quality]
    floor = distances(feature_net, real, run["train_images"][:n_quality], shape)
    samples = {model: fidelity.decode_batched(t.model, prior[:n_quality], device) for model, t in run["trained"].items()}
    table = {model: distances(feature_net, real, images, shape) for model, images in samples.items()}
    with torch.no_grad():
        features = {model: feature_net(images).double().numpy() for model, images in samples.items()}
        real_features = feature_net(real).double().numpy()
    ours = {model: fidelity.frechet_distance(f, real_features) for model, f in features.items()}
    quality[name] = {"floor": floor, "table": table, "features": features, "real_features": real_features, "ours": ours}
    print(f"{name}: {len(real)} real test images against {n_quality} samples per model")
    print(f"  {'':10}{'Fréchet':>9}{'kernel (x1000)':>18}")
    print(f"  {'floor':10}{floor[0]:9.2f}{1000 * floor[1]:10.2f} ± {1000 * floor[2]:.2f}   (training against test images)")
    for model, (fd, kid_mean, kid_std) in table.items():
        print(f"  {model:10}{fd:9.2f}{1000 * kid_mean:10.2f} ± {1000 * kid_std:.2f}")

largest = max(abs(quality[n]["table"][m][0] - quality[n]["ours"][m]) / quality[n]["ours"][m]
              for n in runs for m in MODELS)
checks.append(Check("torchmetrics' Fréchet distance with our feature network equals rvae.fidelity's (eigh route)",
                    reference="the same formula, computed twice", ours=f"largest relative difference {largest:.1e}",
                    passes=largest < 1e-3))
''')

md(r"""
### The slides' ranking, and what the penalties did to $q(z)$

Each model's codes of the test images against prior draws: the MMD$^2$ of WAE-MMD's own penalty
(the same kernel for every model), which says how closely each aggregated posterior matches the
prior that the samples are drawn from.
""")

code(r'''
ranking = {}
for name, run in runs.items():
    q = quality[name]
    pairs = [("WAE-MMD", "VAE"), ("WAE-GAN", "WAE-MMD"), ("WAE-GAN", "VAE"), ("AAE", "VAE")]
    ranking[name] = {pair: fidelity.frechet_log_ratio(q["real_features"], q["features"][pair[0]], q["features"][pair[1]],
                                                      resamples=quality_resamples, seed=seed) for pair in pairs}
    reference = prior_sample(len(run["test_images"]), latent_dim, torch.Generator().manual_seed(seed + 2))
    with torch.no_grad():
        codes = {model: t.model.encode(run["test_images"].to(device))[0].cpu() for model, t in run["trained"].items()}
    q["code_mmd"] = {model: float(mmd_u(c, reference)) for model, c in codes.items()}
    print(name)
    for (first, second), evidence in ranking[name].items():
        print(f"  log FD({first}) - log FD({second}): {evidence.describe()}")
    print("  MMD² of the test codes against the prior: "
          + ", ".join(f"{model} {value:.4f}" for model, value in q["code_mmd"].items()))
''')

md(r"""
## Beyond the sources: robustness of the codes

Chapter 3's protocol on each model's codes: a linear probe trained on the codes of `n_probe`
training images, then attacked by PGD ($\ell_\infty$, through the encoder) on the first `n_eval` test
images. A Smooth Encoder trained here with the same networks is the robust reference. The VAE's
encoder has a variance; the others are deterministic, so their codes are their whole
representation. Which way should it go? The VAE's per-example KL charges the encoder for
separating inputs, which the Smooth Encoders paper finds is *not* enough to make it smooth; the
WAEs charge nothing per example, so nothing in their objective limits how fast codes move with the
input.
""")

code(r'''
robustness = {}
for name, run in runs.items():
    reference = run["experiment"].train("se", gamma=se_gamma, selection_eps=0.1, selection_budget=se_selection_budget)
    probe_images, probe_labels = LOADERS[name]("train", limit=n_probe)
    probe = ProbeSetup(probe_images, {"label": probe_labels}, run["test_images"][:n_eval],
                       {"label": run["test_labels"][:n_eval]}, [0.0, claim_radius], attack_iterations, attack_restarts,
                       probe_epochs, seed, device)
    models = {**{m: t.model for m, t in run["trained"].items()}, "SE": reference.model}
    robustness[name] = {model: probe.evaluate(m)["label"].curve for model, m in models.items()}
    print(f"{name}: nominal and adversarial accuracy (ε = {claim_radius:g}, PGD {attack_iterations} x {attack_restarts}, "
          f"{n_eval} test images)")
    for model, curve in robustness[name].items():
        print(f"  {model:8}{curve.at(0.0):8.3f}{curve.at(claim_radius):8.3f}")
''')

md(r"""
## Checks and claims

**Checks.** The AAE/WAE-GAN identity on each dataset's trained AAE, with WAE-GAN's cost set to the
AAE's $1/(2v)$; torchmetrics' Fréchet distance against ours (above); each WAE-MMD penalty's
U-statistic is unbiased (zero in expectation for prior against prior: the mean over 200 pairs of
prior batches lies within four standard errors of zero).

**Quality gates** (fixed before the run): each dataset's classifier (0.97 MNIST, 0.85 FashionMNIST:
its features define every distance); each model's reconstructions classified correctly (0.9, 0.7:
a model that reconstructs digits as other digits is not trained); the VAE's nominal probe accuracy
(0.85, 0.7) for the robustness claims.

| claim | source | test |
|---|---|---|
| WAE-MMD's samples are closer to the data than the VAE's | slides, CelebA FID table | log FD ratio < 0, bootstrap |
| WAE-GAN's samples are closer to the data than WAE-MMD's | slides, CelebA FID table | log FD ratio < 0, bootstrap |
| the VAE's codes are more robust than WAE-MMD's (ε = 0.1) | beyond the sources | exact McNemar, same images |
| the Smooth Encoder's codes are more robust than every deterministic autoencoder's | beyond the sources | exact McNemar |
""")

code(r'''
for name, run in runs.items():
    aae = run["trained"]["AAE"]
    nets = {"vae": aae.model, **aae.training.networks}
    x = run["test_images"][:256].to(device)
    v = aae.model.observation_variance
    aae_config = AAEConfig(weight=aae_weight, discriminator_hidden=discriminator_hidden, discriminator_depth=discriminator_depth)
    wae_config = WAEGANConfig(weight=aae_weight, cost_weight=1 / (2 * v), discriminator_hidden=discriminator_hidden,
                              discriminator_depth=discriminator_depth)
    with torch.no_grad():
        a, _ = aae_losses(x, nets, aae_config, torch.Generator().manual_seed(seed))
        w, _ = wae_gan_losses(x, nets, wae_config, torch.Generator().manual_seed(seed))
    constant = 0.5 * x[0].numel() * math.log(2 * math.pi * v)
    gap = abs(float(w["autoencoder"]) - (float(a["autoencoder"] + a["encoder"]) - constant))
    checks.append(Check(f"{name}: on the trained AAE, WAE-GAN's loss with c = ||x - y||² / (2v) is the AAE's "
                        "reconstruction plus adversarial loss less D/2 log(2πv)",
                        reference="the identity derived above", ours=f"difference {gap:.1e} on losses of "
                        f"{float(w['autoencoder']):.1f}", passes=gap <= 1e-4 * abs(float(w["autoencoder"]))))

draws = torch.tensor([float(mmd_u(*torch.randn(2, 100, latent_dim, generator=torch.Generator().manual_seed(seed + 100 + k))))
                      for k in range(200)])
standard_error = float(draws.std()) / math.sqrt(len(draws))
checks.append(Check("the MMD² U-statistic is unbiased: over 200 pairs of prior batches (100 draws each) its mean is "
                    "within 4 standard errors of 0", reference="E[MMD²_u] = 0 for equal distributions",
                    ours=f"mean {float(draws.mean()):+.2e}, standard error {standard_error:.1e}",
                    passes=abs(float(draws.mean())) < 4 * standard_error))

for name, run in runs.items():
    index = GATE_INDEX[name]
    recon_gates = {}
    for model, t in run["trained"].items():
        labels = fidelity.classifier_outputs(run["classifier"],
                                             fidelity.reconstruct_batched(t.model, run["test_images"], device),
                                             device=device)["label"]
        recon_gates[model] = Gate(f"{name} {model}: classifier accuracy on its reconstructions",
                                  float((labels == run["test_labels"]).float().mean()), gate_reconstruction_accuracy[index])
    curves = robustness[name]
    vae_gate = Gate(f"{name} VAE: nominal probe accuracy", curves["VAE"].at(0.0), gate_vae_accuracy[index])
    classifier_gate = run["classifier_gate"]
    for (first, second) in [("WAE-MMD", "VAE"), ("WAE-GAN", "WAE-MMD")]:
        claims.append(Claim.judge(
            f"{name}: {first}'s samples are closer to the data than {second}'s (log Fréchet-distance ratio)",
            paper="slides' CelebA FID: VAE 82, WAE-MMD 55, WAE-GAN 42",
            ours=f"FD {quality[name]['table'][first][0]:.2f} vs {quality[name]['table'][second][0]:.2f}",
            evidence=ranking[name][first, second], claimed=Claimed.below(0),
            gates=[classifier_gate, recon_gates[first], recon_gates[second]]))
    claims.append(Claim.judge(
        f"{name}: the VAE's codes are more robust than WAE-MMD's (adversarial accuracy at ε = {claim_radius:g})",
        paper="beyond the sources", ours=f"{curves['VAE'].at(claim_radius):.3f} vs {curves['WAE-MMD'].at(claim_radius):.3f}",
        evidence=paired_accuracy(curves["VAE"].robust_at(claim_radius), curves["WAE-MMD"].robust_at(claim_radius)),
        claimed=Claimed.above(0), gates=[vae_gate, recon_gates["VAE"], recon_gates["WAE-MMD"]]))
    strongest = max(["AAE", "WAE-MMD", "WAE-GAN"], key=lambda m: curves[m].at(claim_radius))
    claims.append(Claim.judge(
        f"{name}: the Smooth Encoder's codes are more robust than the most robust deterministic autoencoder's "
        f"({strongest}) at ε = {claim_radius:g}",
        paper="beyond the sources", ours=f"{curves['SE'].at(claim_radius):.3f} vs {curves[strongest].at(claim_radius):.3f}",
        evidence=paired_accuracy(curves["SE"].robust_at(claim_radius), curves[strongest].robust_at(claim_radius)),
        claimed=Claimed.above(0), gates=[vae_gate, recon_gates[strongest]]))
    metrics["datasets"][name] = {
        "classifier_accuracy": classifier_gate.value,
        "frechet": {m: row[0] for m, row in quality[name]["table"].items()},
        "kernel_distance": {m: [row[1], row[2]] for m, row in quality[name]["table"].items()},
        "floor": {"frechet": quality[name]["floor"][0], "kernel_distance": quality[name]["floor"][1]},
        "code_mmd": quality[name]["code_mmd"],
        "log_frechet_ratios": {f"{a} vs {b}": [e.effect, e.low, e.high] for (a, b), e in ranking[name].items()},
        "accuracy": {m: {"nominal": c.at(0.0), "adversarial": c.at(claim_radius)} for m, c in curves.items()},
        "ms_per_step": {m: 1000 * t.training.seconds_per_step for m, t in run["trained"].items()},
        "gates": {g.name: {"value": g.value, "threshold": g.threshold, "passed": g.passed}
                  for g in [classifier_gate, vae_gate, *recon_gates.values()]},
    }
report(metrics, claims, checks)
''', "nbval-check-output")

md(r"""
## What the full run shows

*To be written after the full run: its wall time, the distance table beside the slides', each
model's adversarial accuracy, and each claim's verdict.*
""")


def main() -> None:
    notebook = new_notebook(cells=CELLS, metadata={
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"}})
    nbformat.validate(notebook)
    target = HERE / "08_wae_aae.ipynb"
    nbformat.write(notebook, target)
    print(f"wrote {target} ({len(CELLS)} cells)")


if __name__ == "__main__":
    main()
