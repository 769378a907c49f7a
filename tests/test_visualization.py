"""Keypoint drawing, colours and HSV: one convention (the coordinate grid's pixel centres)."""

import colorsys

import numpy as np
import pytest

from fomm_tutorial.grids import make_coordinate_grid
from fomm_tutorial.visualization import (
    draw_jacobians,
    draw_keypoints,
    hsv_to_rgb,
    kp_colours,
    kp_to_pixels,
    side_by_side,
)


def test_kp_to_pixels_matches_the_coordinate_grid():
    height, width = 5, 9
    grid = make_coordinate_grid(height, width).numpy()  # (H, W, 2), x then y
    pixels = kp_to_pixels(grid.reshape(-1, 2), height, width)
    rows, cols = np.mgrid[0:height, 0:width]
    np.testing.assert_allclose(pixels[:, 0], cols.ravel(), atol=1e-5)
    np.testing.assert_allclose(pixels[:, 1], rows.ravel(), atol=1e-5)


def test_corner_keypoints_are_drawn_on_the_corner_pixels():
    # The old animation convention w * (x + 1) / 2 put x = +1 one pixel outside the image.
    image = np.zeros((8, 8, 3), np.float32)
    out = draw_keypoints(image, np.array([[1.0, 1.0], [-1.0, -1.0]]), kp_size=0)
    colours = kp_colours(2)
    np.testing.assert_allclose(out[7, 7], colours[0])
    np.testing.assert_allclose(out[0, 0], colours[1])
    assert np.count_nonzero(out.sum(-1)) == 2
    assert image.max() == 0  # a copy


def test_draw_keypoints_single_and_batch_agree():
    rng = np.random.default_rng(0)
    images = rng.random((3, 16, 20, 3)).astype(np.float32)
    kp = rng.uniform(-1, 1, (3, 4, 2))
    batch = draw_keypoints(images, kp, kp_size=2)
    assert batch.shape == images.shape and batch.dtype == np.float32
    for i in range(3):
        np.testing.assert_array_equal(batch[i], draw_keypoints(images[i], kp[i], 2))
    shared = draw_keypoints(images, kp[0], kp_size=2)  # one set of keypoints for all
    np.testing.assert_array_equal(shared[1], draw_keypoints(images[1], kp[0], 2))
    uint8 = draw_keypoints((images * 255).astype(np.uint8), kp, kp_size=2)
    assert uint8.dtype == np.float32 and uint8.max() <= 1.0


def test_draw_keypoints_errors():
    with pytest.raises(ValueError, match="kp_value"):
        draw_keypoints(np.zeros((2, 8, 8, 3)), np.zeros((3, 4, 2)))
    with pytest.raises(ValueError, match="images"):
        draw_keypoints(np.zeros((8, 8)), np.zeros((4, 2)))


def test_kp_colours():
    colours = kp_colours(10)
    assert colours.shape == (10, 3) and colours.dtype == np.float32
    assert len({tuple(c) for c in colours}) == 10
    assert kp_colours(0).shape == (0, 3)


def test_side_by_side_layout():
    source = np.zeros((8, 8, 3), np.float32)
    driving = np.full((3, 8, 8, 3), 0.5, np.float32)
    prediction = np.full((3, 8, 8, 3), 0.25, np.float32)
    frames = side_by_side(
        source,
        driving,
        prediction,
        kp_source=np.zeros((1, 2, 2)),
        kp_driving=np.zeros((3, 2, 2)),
        kp_norm=np.zeros((3, 2, 2)),
        border=2,
    )
    assert frames.shape == (3, 8, 3 * 8 + 4, 3)
    np.testing.assert_array_equal(frames[:, :, 8:10], 1.0)
    assert frames[0, 0, 0].max() == 0 and frames[0, 0, 10].max() == 0.5
    with pytest.raises(ValueError, match="frame counts"):
        side_by_side(source, driving, prediction[:2])


def test_hsv_to_rgb_matches_colorsys():
    rng = np.random.default_rng(1)
    h, s, v = rng.random((3, 200))
    h[:6] = [0.0, 1 / 6, 0.5, 5 / 6, 1.0, 1.25]
    expected = np.array(
        [colorsys.hsv_to_rgb(a % 1.0, b, c) for a, b, c in zip(h, s, v)]
    )
    np.testing.assert_allclose(hsv_to_rgb(h, s, v), expected, atol=1e-12)
    np.testing.assert_allclose(
        hsv_to_rgb(0.3, 0.5, 0.8), colorsys.hsv_to_rgb(0.3, 0.5, 0.8)
    )
    assert hsv_to_rgb(np.zeros((4, 5)), 1.0, 1.0).shape == (4, 5, 3)


def test_draw_jacobians_two_arrows_per_keypoint():
    """Column j of J_k from the keypoint, scaled per axis to pixels, in k's colour."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    kp = np.array([[0.0, 0.0], [-1.0, 1.0]])
    jac = np.stack([np.eye(2), [[0.0, -2.0], [1.0, 0.0]]])
    draw_jacobians(ax, kp, jac, 9, 17, arrow=0.5)
    arrows = ax.patches
    assert len(arrows) == 4
    colours = kp_colours(2)
    np.testing.assert_allclose(arrows[0].get_facecolor()[:3], colours[0])
    np.testing.assert_allclose(arrows[3].get_facecolor()[:3], colours[1])
    # keypoint 0 sits at pixel (8, 4): J_0's first column (1, 0) ends at 8 + 0.5 * 16 / 2
    # = 12 columns; J_1's second column (-2, 0) from (0, 8) at 0 - 0.5 * 2 * 16 / 2 = -8;
    # matplotlib's head (1.5 x head_width = 3.75 px) is drawn beyond the end
    np.testing.assert_allclose(arrows[0].get_path().vertices[:, 0].max(), 12 + 3.75)
    np.testing.assert_allclose(arrows[3].get_path().vertices[:, 0].min(), -8 - 3.75)
    np.testing.assert_allclose(arrows[3].get_path().vertices[:, 1].mean(), 8.0)
    with pytest.raises(ValueError, match=r"kp_jacobian \(K, 2, 2\)"):
        draw_jacobians(ax, kp, jac[:1], 9, 17)
    plt.close(fig)
