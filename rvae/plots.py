"""One figure style for every chapter, and the figure helpers the chapters share."""
from __future__ import annotations

import itertools
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.colors import PowerNorm
from matplotlib.figure import Figure

HEATMAP_COLOURS = "Greys"


def use_book_style() -> None:
    """Seaborn's paper context with a white grid; figures sized for a book column."""
    sns.set_theme(context="paper", style="whitegrid", font_scale=1.1)
    plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 150, "figure.figsize": (8, 3),
                         "axes.titleweight": "bold"})


def table_heatmap(ax: Axes, table, title: str, xlabel: str = "Z", ylabel: str = "X") -> None:
    """A probability table (rows = ylabel, columns = xlabel) as a heatmap, darker = more probable, on a
    square-root colour scale (so that a few large entries do not bleach the rest) with a colour bar."""
    values = np.asarray(table)
    image = ax.imshow(values, cmap=HEATMAP_COLOURS, aspect="auto", interpolation="nearest", origin="upper",
                      norm=PowerNorm(0.5, vmin=0.0, vmax=max(float(values.max()), 1e-12)))
    colour_bar = ax.figure.colorbar(image, ax=ax, fraction=0.05, pad=0.02)
    colour_bar.ax.tick_params(labelsize=7)
    colour_bar.set_label("probability (√ scale)", fontsize=7)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(False)


def distribution_bars(ax: Axes, probabilities, title: str, horizontal: bool = True) -> None:
    """A distribution over a finite set as bars; horizontal bars line up with a heatmap's rows."""
    values = np.asarray(probabilities)
    positions = np.arange(len(values))
    if horizontal:
        ax.barh(positions, values, height=1.0, color="0.3")
        ax.set_ylim(len(values) - 0.5, -0.5)
        ax.set_ylabel("X")
    else:
        ax.bar(positions, values, width=1.0, color="0.3")
        ax.set_xlabel("X")
    ax.set_title(title)


def panel_row(count: int, width_ratios: Sequence[float] | None = None, height: float = 3.2) -> tuple[Figure, list[Axes]]:
    """A row of ``count`` panels sharing the figure width."""
    figure, axes = plt.subplots(1, count, figsize=(2.3 * count + 1, height),
                                gridspec_kw={"width_ratios": width_ratios} if width_ratios else None,
                                constrained_layout=True)
    return figure, list(np.atleast_1d(axes))


def image_tiles(ax: Axes, images, title: str = "", columns: int | None = None) -> None:
    """Images (B, C, H, W) in [0, 1] tiled in one panel (``columns`` per row, default all in one row), 1-px gaps."""
    tiles = np.asarray(images, dtype=float).clip(0.0, 1.0)
    if tiles.ndim != 4 or len(tiles) == 0:
        raise ValueError(f"images must be a non-empty batch (B, C, H, W), not of shape {tiles.shape}")
    count, channels, height, width = tiles.shape
    columns = count if columns is None else max(1, min(columns, count))
    rows = -(-count // columns)
    canvas = np.ones((channels, rows * (height + 1) - 1, columns * (width + 1) - 1))
    for index, tile in enumerate(tiles):
        top, left = (index // columns) * (height + 1), (index % columns) * (width + 1)
        canvas[:, top:top + height, left:left + width] = tile
    picture = canvas[0] if channels == 1 else canvas.transpose(1, 2, 0)
    ax.imshow(picture, cmap="gray" if channels == 1 else None, vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)


def overlaid_histograms(ax: Axes, samples: dict[str, np.ndarray], log_scale: bool = False, bins: int = 40) -> None:
    """One translucent histogram per label on shared bins (log-spaced if ``log_scale``); NaN and inf are left out."""
    finite = {label: np.asarray(values, dtype=float)[np.isfinite(values)] for label, values in samples.items()}
    pooled = np.concatenate(list(finite.values()))
    if pooled.size == 0:
        raise ValueError("no finite values to histogram")
    if log_scale:
        edges = np.logspace(np.log10(max(pooled.min(), 1e-6)), np.log10(max(pooled.max(), 1e-6)), bins)
        ax.set_xscale("log")
    else:
        edges = np.linspace(pooled.min(), pooled.max(), bins)
    for label, values in finite.items():
        ax.hist(values, bins=edges, alpha=0.5, label=label)


def mean_std_band(ax: Axes, x: Sequence[float], samples: Sequence[np.ndarray], label: str | None = None,
                  alpha: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """Plot the mean of each sample against x with a +- one standard deviation band (NaN ignored); return both."""
    means = np.array([np.nanmean(s) for s in samples])
    stds = np.array([np.nanstd(s) for s in samples])
    ax.plot(x, means, marker="o", ms=3, label=label)
    ax.fill_between(x, means - stds, means + stds, alpha=alpha)
    return means, stds


def direction_curves(ax: Axes, steps: Sequence[float], curves: np.ndarray, unattacked: float,
                     level: float | None = None) -> None:
    """MSE against step size along eigendirections 1..k (rows of ``curves``), log x; dashed: unattacked, dotted: ``level``."""
    for k, curve in enumerate(np.atleast_2d(curves)):
        ax.plot(steps, curve, label=f"λ{k + 1}")
    ax.axhline(unattacked, ls="--", color="0.4", lw=1)
    if level is not None:
        ax.axhline(level, ls=":", color="0.4", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("step δ (L2)")


def joint_table_row(axes: Sequence[Axes], tables: dict, name: str = "") -> None:
    """The five panels of the AVAE appendix's figure 8 on five axes, from
    :func:`rvae.worlds.discrete_avae.joint_tables`: π̂(X), π̂(X)q(Z|X), p(X)q(Z|X), p(X|Z)p(Z), p(X)."""
    tables = {key: np.asarray(value.detach() if hasattr(value, "detach") else value) for key, value in tables.items()}
    distribution_bars(axes[0], tables["empirical"], f"{name}: π̂(X)" if name else "π̂(X)")
    table_heatmap(axes[1], tables["data_encoder"], "π̂(X) q(Z|X)")
    table_heatmap(axes[2], tables["model_encoder"], "p(X) q(Z|X)")
    table_heatmap(axes[3], tables["decoder"], "p(X|Z) p(Z)")
    distribution_bars(axes[4], tables["model"], "p(X)")


def robustness_curves(ax: Axes, curves: dict, title: str = "") -> None:
    """Adversarial accuracy against the attack radius, one line per model (name -> RobustnessCurve,
    whose first radius is 0), with each model's nominal accuracy as a dotted line of its colour."""
    markers = itertools.cycle("os^vDP")
    for name, curve in curves.items():
        line, = ax.plot(curve.radii[1:], curve.accuracy[1:], marker=next(markers), label=name)
        ax.axhline(curve.accuracy[0], ls=":", color=line.get_color(), lw=1)
    ax.set_title(title)
    ax.set_xlabel("attack radius ε (L∞)")
    ax.set_ylim(-0.02, 1.02)
