"""Coordinate grids and keypoint heatmaps against the closed forms of spec sections 0.1, 1.3, 13.1."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from fomm_tutorial.grids import kp2gaussian, make_coordinate_grid


def test_grid_closed_form_4x5():
    grid = make_coordinate_grid(4, 5).numpy()
    assert grid.shape == (4, 5, 2) and grid.dtype == np.float32
    np.testing.assert_allclose(
        grid[0, :, 0], [-1.0, -0.5, 0.0, 0.5, 1.0], atol=1e-7
    )  # x along width
    np.testing.assert_allclose(
        grid[:, 0, 1], [-1.0, -1 / 3, 1 / 3, 1.0], atol=1e-7
    )  # y along height
    i, j = np.meshgrid(np.arange(4), np.arange(5), indexing="ij")
    np.testing.assert_allclose(grid[..., 0], 2 * j / 4 - 1, atol=1e-7)
    np.testing.assert_allclose(grid[..., 1], 2 * i / 3 - 1, atol=1e-7)


@pytest.mark.parametrize("h, w", [(2, 2), (3, 7), (64, 64), (58, 31)])
def test_grid_range_and_order(h, w):
    grid = make_coordinate_grid(h, w).numpy()
    assert grid.shape == (h, w, 2)
    assert grid.min() == -1.0 and grid.max() == 1.0
    assert np.all(np.diff(grid[..., 0], axis=1) > 0) and np.all(
        np.diff(grid[..., 0], axis=0) == 0
    )
    assert np.all(np.diff(grid[..., 1], axis=0) > 0) and np.all(
        np.diff(grid[..., 1], axis=1) == 0
    )


def test_grid_dtype():
    assert make_coordinate_grid(3, 4, tf.float64).dtype == tf.float64


@pytest.mark.parametrize("h, w", [(1, 5), (5, 1), (0, 0)])
def test_grid_too_small(h, w):
    with pytest.raises(ValueError, match=">= 2"):
        make_coordinate_grid(h, w)


def test_kp2gaussian_closed_form_nonsquare():
    rng = np.random.default_rng(0)
    kp = rng.uniform(-1, 1, (2, 3, 2)).astype(np.float32)
    h, w = 6, 9
    out = kp2gaussian(kp, (h, w)).numpy()
    assert out.shape == (2, h, w, 3)
    y, x = np.meshgrid(np.linspace(-1, 1, h), np.linspace(-1, 1, w), indexing="ij")
    for b in range(2):
        for k in range(3):
            d2 = (x - kp[b, k, 0]) ** 2 + (y - kp[b, k, 1]) ** 2
            np.testing.assert_allclose(
                out[b, :, :, k], np.exp(-0.5 * d2 / 0.01), atol=1e-6
            )
    out2 = kp2gaussian(kp, (h, w), kp_variance=0.5).numpy()
    np.testing.assert_allclose(
        out2[0, :, :, 0],
        np.exp(-0.5 * ((x - kp[0, 0, 0]) ** 2 + (y - kp[0, 0, 1]) ** 2) / 0.5),
        atol=1e-6,
    )


def test_kp2gaussian_peak_at_keypoint():
    grid = make_coordinate_grid(5, 7).numpy()
    kp = np.stack([grid[1, 5], grid[3, 2]])[
        None
    ]  # keypoints on pixel centres (row 1, col 5), (3, 2)
    out = kp2gaussian(kp, (5, 7)).numpy()
    assert out[0, 1, 5, 0] == pytest.approx(1.0) and out[0, 3, 2, 1] == pytest.approx(
        1.0
    )
    assert np.unravel_index(out[0, :, :, 0].argmax(), (5, 7)) == (1, 5)
    assert out.max() <= 1.0


@pytest.mark.parametrize("shape", [(3, 2), (2, 3, 3), (1, 2, 3, 2)])
def test_kp2gaussian_bad_shape(shape):
    with pytest.raises(ValueError, match=r"\(B, K, 2\)"):
        kp2gaussian(np.zeros(shape, np.float32), (4, 4))


@pytest.mark.parametrize("size", [(4,), (4, 4, 4)])
def test_kp2gaussian_bad_spatial_size(size):
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        kp2gaussian(np.zeros((1, 2, 2), np.float32), size)


def test_grid_unknown_size_is_a_clear_error():
    # Inside a graph traced with unknown spatial sizes the grid used to fail with
    # "int() argument must be ... not 'NoneType'".
    with pytest.raises(ValueError, match="static sizes"):
        make_coordinate_grid(None, 8)

    @tf.function(input_signature=[tf.TensorSpec((None, None, None, 3))])
    def grid_of(images):
        return make_coordinate_grid(images.shape[1], images.shape[2])

    with pytest.raises(ValueError, match="static sizes"):
        grid_of(tf.zeros((1, 4, 4, 3)))
