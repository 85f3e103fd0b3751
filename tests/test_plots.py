"""rvae.plots.image_tiles: where each image lands in the tiled picture."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from rvae.plots import image_tiles  # noqa: E402


def test_tiles_are_placed_row_by_row_with_one_pixel_gaps():
    images = np.stack([np.full((1, 2, 3), value) for value in (0.1, 0.2, 0.3)])   # three 2 x 3 grey images
    figure, ax = plt.subplots()
    image_tiles(ax, images, "t", columns=2)
    picture = np.asarray(ax.images[0].get_array())
    assert picture.shape == (2 * 3 - 1, 2 * 4 - 1)                                # 2 rows, 2 columns, gaps of 1
    assert np.allclose(picture[0:2, 0:3], 0.1) and np.allclose(picture[0:2, 4:7], 0.2)
    assert np.allclose(picture[3:5, 0:3], 0.3) and np.allclose(picture[3:5, 4:7], 1.0)   # empty slot stays white
    assert np.allclose(picture[2, :], 1.0) and np.allclose(picture[:, 3], 1.0)
    plt.close(figure)


def test_colour_images_and_bad_shapes():
    figure, ax = plt.subplots()
    image_tiles(ax, np.random.default_rng(0).random((4, 3, 5, 5)))
    assert np.asarray(ax.images[0].get_array()).shape == (5, 4 * 6 - 1, 3)
    with pytest.raises(ValueError, match="B, C, H, W"):
        image_tiles(ax, np.zeros((5, 5)))
    plt.close(figure)


def test_overlaid_histograms_share_bins_and_drop_non_finite_values():
    from rvae.plots import overlaid_histograms
    figure, ax = plt.subplots()
    overlaid_histograms(ax, {"a": np.array([1.0, 10.0, np.nan]), "b": np.array([100.0, np.inf])}, log_scale=True, bins=5)
    counts = [sum(p.get_height() for p in container) for container in ax.containers]
    assert counts == [2, 1] and ax.get_xscale() == "log"
    lefts = [[p.get_x() for p in container] for container in ax.containers]
    assert np.allclose(lefts[0], lefts[1])                                        # the same bins for every label
    with pytest.raises(ValueError, match="no finite"):
        overlaid_histograms(ax, {"a": np.array([np.nan])})
    plt.close(figure)


def test_mean_std_band_returns_what_it_draws():
    from rvae.plots import mean_std_band
    figure, ax = plt.subplots()
    means, stds = mean_std_band(ax, [1, 2], [np.array([1.0, 3.0]), np.array([2.0, np.nan, 4.0])])
    assert means.tolist() == [2.0, 3.0] and stds.tolist() == [1.0, 1.0]
    assert np.allclose(ax.lines[0].get_ydata(), [2.0, 3.0])
    plt.close(figure)
