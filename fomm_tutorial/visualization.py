"""Keypoint drawing and colours: the one place turning keypoints and hues into pixels.

Explained in chapter 10 (book/10_animation.ipynb).

One pixel convention, the one of the coordinate grid
(:func:`fomm_tutorial.grids.make_coordinate_grid`, ``align_corners=True``): a keypoint
``(x, y)`` in [-1, 1] sits at column ``(x + 1) / 2 * (W - 1)`` and row
``(y + 1) / 2 * (H - 1)``, so -1 and +1 are the centres of the first and last pixel and
a keypoint drawn here is exactly where the model samples.

- :func:`kp_colours`: one colour per keypoint (``gist_rainbow(k / K)``, as the original
  Visualizer), so keypoint k has the same colour in every figure.
- :func:`kp_to_pixels` / :func:`draw_keypoints`: keypoints as pixel positions / as
  filled discs on one image ``(H, W, 3)`` or a batch ``(B, H, W, 3)``.
- :func:`draw_jacobians`: each keypoint's Jacobian as two arrows on a matplotlib axes.
- :func:`side_by_side`: ``source | driving | prediction`` frames with keypoints drawn.
- :func:`hsv_to_rgb`: the HSV colour conversion used by the optical-flow colour code
  (:func:`fomm_tutorial.optical_flow.flow_to_color`) and the sprite identities.
"""

from __future__ import annotations

import numpy as np

from fomm_tutorial.media import to_float_rgb

__all__ = [
    "kp_colours",
    "kp_to_pixels",
    "default_kp_size",
    "draw_keypoints",
    "side_by_side",
    "hsv_to_rgb",
]


def kp_colours(num_kp: int, colormap: str = "gist_rainbow") -> np.ndarray:
    """``(K, 3)`` float32 RGB colours ``colormap(k / K)`` for keypoints ``k < K``."""
    import matplotlib

    num_kp = int(num_kp)
    if num_kp < 0:
        raise ValueError(f"num_kp must be >= 0, got {num_kp}.")
    cmap = matplotlib.colormaps[colormap]
    colours = [cmap(k / num_kp)[:3] for k in range(num_kp)]
    return np.array(colours, dtype=np.float32).reshape(num_kp, 3)


def kp_to_pixels(kp_value, height: int, width: int) -> np.ndarray:
    """Keypoints ``(..., K, 2)`` (x, y) in [-1, 1] -> pixels (..., K, 2) (column, row).

    ``column = (x + 1) / 2 * (width - 1)``, ``row = (y + 1) / 2 * (height - 1)``: the
    pixel centres of the coordinate grid (use these with ``ax.scatter(col, row)`` on
    ``imshow``).
    """
    kp = np.asarray(kp_value, dtype=np.float64)
    if kp.ndim < 1 or kp.shape[-1] != 2:
        raise ValueError(f"kp_value must have shape (..., K, 2), got {kp.shape}.")
    scale = np.array([width - 1, height - 1], dtype=np.float64)
    return (kp + 1.0) / 2.0 * scale


def default_kp_size(height: int, width: int) -> int:
    """Disc radius in pixels: the original Visualizer's 5 at 256, scaled."""
    return max(1, int(round(5 * min(height, width) / 256)))


def draw_keypoints(
    images, kp_value, kp_size: int | None = None, colormap: str = "gist_rainbow"
) -> np.ndarray:
    """Draw keypoints as filled discs on a copy of ``images``.

    Args:
      images: one image ``(H, W, 3)`` or a batch ``(B, H, W, 3)``, float in [0, 1] or
        uint8.
      kp_value: ``(K, 2)`` for one image, ``(B, K, 2)`` (or ``(1, K, 2)`` / ``(K, 2)``,
        used for every image) for a batch; (x, y) in [-1, 1].
      kp_size: disc radius in pixels (default :func:`default_kp_size`).
      colormap: matplotlib colormap of :func:`kp_colours`.

    Returns:
      float32 images of the input's shape, keypoint k drawn in ``kp_colours(K)[k]``
      centred on :func:`kp_to_pixels` (the coordinate grid's pixel convention).
    """
    images = np.asarray(images)
    single = images.ndim == 3
    batch = images[None] if single else images
    if batch.ndim != 4 or batch.shape[-1] != 3:
        raise ValueError(
            f"images must have shape (H, W, 3) or (B, H, W, 3), got {images.shape}."
        )
    batch = to_float_rgb(batch, name="images").copy()
    kp = np.asarray(kp_value, dtype=np.float64)
    if kp.ndim == 2:
        kp = kp[None]
    if kp.ndim != 3 or kp.shape[-1] != 2 or kp.shape[0] not in (1, len(batch)):
        raise ValueError(
            f"kp_value must have shape (K, 2) or ({len(batch)}, K, 2) for images of "
            f"shape {images.shape}, got {np.shape(kp_value)}."
        )
    kp = np.broadcast_to(kp, (len(batch),) + kp.shape[1:])
    num_images, height, width = batch.shape[:3]
    radius = default_kp_size(height, width) if kp_size is None else float(kp_size)
    colours = kp_colours(kp.shape[1], colormap)
    pixels = kp_to_pixels(kp, height, width)  # (B, K, 2) column, row
    rows, cols = np.mgrid[0:height, 0:width]
    for i in range(num_images):
        for k, (col, row) in enumerate(pixels[i]):
            disc = (cols - col) ** 2 + (rows - row) ** 2 <= radius**2
            batch[i][disc] = colours[k]
    return batch[0] if single else batch


def draw_jacobians(
    ax,
    kp_value,
    kp_jacobian,
    height: int,
    width: int,
    arrow: float = 0.12,
    colormap: str = "gist_rainbow",
) -> None:
    """Draw each keypoint's Jacobian on ``ax`` (an ``imshow`` of an ``(H, W)`` image).

    ``kp_value`` ``(K, 2)`` in [-1, 1], ``kp_jacobian`` ``(K, 2, 2)``: column ``j`` of
    ``J_k`` (where the local affine map sends the unit step along x, then y) becomes an
    arrow from the keypoint of length ``arrow * |J_k[:, j]|`` in normalised units, in
    keypoint ``k``'s colour of :func:`kp_colours`. The identity draws two equal,
    perpendicular arrows; a flip or a collapse shows at a glance.
    """
    kp = np.asarray(kp_value, dtype=np.float64)
    jac = np.asarray(kp_jacobian, dtype=np.float64)
    if kp.ndim != 2 or kp.shape[-1] != 2 or jac.shape != kp.shape[:1] + (2, 2):
        raise ValueError(
            f"kp_value must be (K, 2) and kp_jacobian (K, 2, 2), got {kp.shape} and "
            f"{jac.shape}."
        )
    colours = kp_colours(len(kp), colormap)
    # normalised units -> pixels, per axis (the grid spans W - 1 columns, H - 1 rows)
    scale = arrow * np.array([width - 1, height - 1]) / 2
    for k, ((col, row), j) in enumerate(zip(kp_to_pixels(kp, height, width), jac)):
        for axis in range(2):
            dx, dy = j[:, axis] * scale
            ax.arrow(col, row, dx, dy, color=colours[k], width=0.4, head_width=2.5)


def side_by_side(
    source,
    driving,
    prediction,
    kp_source=None,
    kp_driving=None,
    kp_norm=None,
    kp_size: int | None = None,
    colormap: str = "gist_rainbow",
    border: int = 2,
) -> np.ndarray:
    """Frames ``source | driving | prediction`` (white separators), keypoints if given.

    Args:
      source: ``(H, W, 3)``; driving, prediction: ``(T, H, W, 3)`` (float in [0, 1] or
        uint8).
      kp_source: source keypoint values ``(K, 2)`` or ``(1, K, 2)``.
      kp_driving, kp_norm: ``(T, K, 2)`` keypoint values drawn on driving / prediction.

    Returns:
      ``(T, H, 3 W + 2 border, 3)`` float32.
    """
    source = to_float_rgb(source, name="source")
    driving = to_float_rgb(driving, name="driving")
    prediction = to_float_rgb(prediction, name="prediction")
    if source.ndim != 3 or driving.ndim != 4 or prediction.ndim != 4:
        raise ValueError(
            "side_by_side needs source (H, W, 3), driving and prediction (T, H, W, 3); "
            f"got {source.shape}, {driving.shape}, {prediction.shape}."
        )
    if len(driving) != len(prediction):
        raise ValueError(
            f"driving ({len(driving)}) and prediction ({len(prediction)}) frame counts "
            "differ."
        )
    hw = source.shape[:2]
    if driving.shape[1:3] != hw or prediction.shape[1:3] != hw:
        raise ValueError(
            f"source {hw}, driving {driving.shape[1:3]} and prediction "
            f"{prediction.shape[1:3]} must have the same frame size (resize them with "
            "media.resize_frames)."
        )
    if kp_source is not None:
        source = draw_keypoints(
            source, np.asarray(kp_source).reshape(-1, 2), kp_size, colormap
        )
    if kp_driving is not None:
        driving = draw_keypoints(driving, kp_driving, kp_size, colormap)
    if kp_norm is not None:
        prediction = draw_keypoints(prediction, kp_norm, kp_size, colormap)
    num_frames = len(driving)
    separator = np.ones((num_frames, hw[0], border, 3), np.float32)
    sources = np.broadcast_to(source, (num_frames,) + source.shape)
    return np.concatenate(
        [sources, separator, driving, separator, prediction], axis=2
    ).astype(np.float32)


def hsv_to_rgb(hue, saturation, value) -> np.ndarray:
    """HSV -> RGB for scalars or arrays (broadcast together); hue has period 1.

    Args:
      hue, saturation, value: floats or arrays in [0, 1] (hue taken modulo 1).

    Returns:
      ``(..., 3)`` float64 RGB in [0, 1] (``(3,)`` for scalars); the same numbers as
      :func:`colorsys.hsv_to_rgb`.
    """
    hue, saturation, value = np.broadcast_arrays(
        np.asarray(hue, np.float64) % 1.0,
        np.asarray(saturation, np.float64),
        np.asarray(value, np.float64),
    )
    sector = np.floor(hue * 6.0)
    frac = hue * 6.0 - sector
    sector = sector.astype(int) % 6
    p = value * (1.0 - saturation)
    q = value * (1.0 - frac * saturation)
    t = value * (1.0 - (1.0 - frac) * saturation)
    # Each of the six hue sectors takes (r, g, b) from a different permutation of (v, t,
    # p, q).
    red = np.choose(sector, [value, q, p, p, t, value])
    green = np.choose(sector, [t, value, value, q, p, p])
    blue = np.choose(sector, [p, p, t, value, value, q])
    return np.stack([red, green, blue], axis=-1)
