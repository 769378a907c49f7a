"""Coordinate grids and keypoint heatmaps.

Explained in chapter 3 (book/03_coordinate_grids.ipynb).

Every coordinate in FOMM (keypoints, sparse motions, the dense deformation, TPS control
points) lives in the normalised square [-1, 1] x [-1, 1] in **(x, y)** order: x varies
along the width (last image axis), y along the height, and -1/+1 are the *centres* of
the first/last pixel.
"""

from __future__ import annotations

import tensorflow as tf


def make_coordinate_grid(height: int, width: int, dtype=tf.float32) -> tf.Tensor:
    """Pixel-centre coordinates of an ``height x width`` image in [-1, 1].

    Returns:
      ``(height, width, 2)`` tensor; ``[..., 0]`` is x = 2 j / (width - 1) - 1 for
      column j, ``[..., 1]`` is y = 2 i / (height - 1) - 1 for row i (as the original
      ``make_coordinate_grid``).
    """
    if height is None or width is None:
        # A graph traced with unknown spatial sizes (e.g. a tf.function relaxed to
        # (None, None, None, C) after calls at two frame sizes): the grid needs static
        # sizes.
        raise ValueError(
            f"make_coordinate_grid needs static sizes, got {height} x {width}: trace "
            "the model once per frame size (a tf.function per size, or an "
            "input_signature with fixed height and width)."
        )
    height, width = int(height), int(width)
    if height < 2 or width < 2:
        raise ValueError(
            f"make_coordinate_grid needs height and width >= 2 (the original divides "
            f"by size - 1), got {height} x {width}."
        )
    x = tf.linspace(tf.constant(-1.0, dtype), tf.constant(1.0, dtype), width)
    y = tf.linspace(tf.constant(-1.0, dtype), tf.constant(1.0, dtype), height)
    xx = tf.tile(x[None, :], [height, 1])
    yy = tf.tile(y[:, None], [1, width])
    return tf.stack([xx, yy], axis=-1)


def kp2gaussian(kp_value, spatial_size, kp_variance: float = 0.01) -> tf.Tensor:
    """Unnormalised Gaussian heatmaps around keypoints (peak value 1 at the keypoint).

    Args:
      kp_value: ``(B, K, 2)`` keypoints in [-1, 1], (x, y) order.
      spatial_size: ``(H, W)`` of the heatmaps.
      kp_variance: variance in normalised units (0.01 everywhere in FOMM: sigma = 0.1).

    Returns:
      ``(B, H, W, K)`` heatmaps ``exp(-0.5 |z - kp|^2 / kp_variance)``.
    """
    kp_value = tf.convert_to_tensor(kp_value)
    if kp_value.shape.rank != 3 or kp_value.shape[-1] != 2:
        raise ValueError(
            f"kp2gaussian expects keypoints of shape (B, K, 2), got {kp_value.shape}."
        )
    if len(spatial_size) != 2:
        raise ValueError(
            f"kp2gaussian expects spatial_size = (H, W), got {tuple(spatial_size)}."
        )
    h, w = int(spatial_size[0]), int(spatial_size[1])
    grid = make_coordinate_grid(h, w, kp_value.dtype)  # (H, W, 2)
    diff = grid[None, :, :, None, :] - kp_value[:, None, None, :, :]  # (B, H, W, K, 2)
    return tf.exp(-0.5 * tf.reduce_sum(tf.square(diff), axis=-1) / kp_variance)
