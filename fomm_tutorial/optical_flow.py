"""Optical flow: brightness constancy, image gradients, dense Lucas-Kanade,
visualisation, EPE.

Explained in chapter 1 (book/01_optical_flow.ipynb).

Conventions:

* Images are NHWC float32 ``(B, H, W, C)`` in [0, 1]; flows are ``(B, H, W, 2)`` in
  **pixels**, ``flow[..., 0] = u`` (along x, the width) and ``flow[..., 1] = v`` (along
  y, the height).
* ``lucas_kanade(image0, image1)`` returns the flow ``w`` with
  ``image1(p + w(p)) ~ image0(p)``: for every pixel ``p`` of ``image0`` it says *where
  to look* in ``image1``. That is a backward map ``T_{1<-0}(p) = p + w(p)``, exactly the
  kind FOMM predicts (``T_{S<-D}``: for each pixel of the driving frame, where to sample
  the source), and ``warp_image(image1, w)`` rebuilds ``image0`` from ``image1`` with
  one bilinear lookup per output pixel.
"""

from __future__ import annotations

import math

import numpy as np
import sympy as sp
import tensorflow as tf

from fomm_tutorial.resampler import grid_sample
from fomm_tutorial.visualization import hsv_to_rgb

__all__ = [
    "brightness_constancy_derivation",
    "to_grayscale",
    "image_gradients",
    "pixel_grid",
    "warp_image",
    "lucas_kanade",
    "lucas_kanade_step",
    "synthetic_flow",
    "stereo_flow",
    "endpoint_error",
    "endpoint_error_map",
    "flow_to_color",
    "color_wheel",
    "plot_flow_arrows",
]


# --------------------------------------------------------------------------------------
# Symbolic derivation
# --------------------------------------------------------------------------------------
def brightness_constancy_derivation() -> dict:
    """Derive the optical-flow constraint ``I_x u + I_y v + I_t = 0`` with sympy.

    Brightness constancy: a point moving with velocity (u, v) keeps its brightness,
    ``I(x + u dt, y + v dt, t + dt) = I(x, y, t)``. Expanding the left side to first
    order in ``dt`` and dividing by ``dt`` gives the linear constraint.

    Returns:
      dict of sympy objects: ``symbols`` (x, y, t, u, v, dt), ``I`` (the undefined
      function), ``constancy`` (the equation), ``first_order``
      (``I + dt (I_x u + I_y v + I_t)``), ``constraint`` (``I_x u + I_y v + I_t``, the
      expression that must vanish) and ``gradient`` (``(I_x, I_y, I_t)``).
    """
    x, y, t, u, v = sp.symbols("x y t u v", real=True)
    dt = sp.Symbol("delta_t", positive=True)
    I = sp.Function("I")
    moved = I(x + u * dt, y + v * dt, t + dt)
    constancy = sp.Eq(moved, I(x, y, t))
    # First-order Taylor expansion in dt (chain rule done by sympy, then evaluated at dt
    # = 0).
    slope = sp.diff(moved, dt).subs(dt, 0).doit()
    first_order = I(x, y, t) + dt * slope
    constraint = sp.expand(sp.simplify((first_order - I(x, y, t)) / dt))
    gradient = tuple(sp.diff(I(x, y, t), s) for s in (x, y, t))
    return {
        "symbols": (x, y, t, u, v, dt),
        "I": I,
        "constancy": constancy,
        "first_order": first_order,
        "constraint": constraint,
        "gradient": gradient,
    }


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------
def _check_images(image, name):
    image = tf.convert_to_tensor(image)
    if image.shape.rank != 4:
        raise ValueError(
            f"{name} must be a 4-D NHWC tensor (B, H, W, C), got shape {image.shape}; "
            "add a batch axis with image[None] or a channel axis with "
            "image[..., None]."
        )
    if not image.dtype.is_floating:
        raise ValueError(
            f"{name} must be floating point in [0, 1], got dtype {image.dtype.name}; "
            f"convert with tf.image.convert_image_dtype(image, tf.float32)."
        )
    return tf.cast(image, tf.float32)


def _check_flow(flow, name="flow"):
    flow = tf.convert_to_tensor(flow, tf.float32)
    if flow.shape.rank != 4 or flow.shape[-1] != 2:
        raise ValueError(
            f"{name} must have shape (B, H, W, 2) with (u, v) in pixels in the last "
            f"axis, got {flow.shape}."
        )
    return flow


def to_grayscale(images):
    """Luma of RGB images (ITU-R 601 weights); single-channel images pass through.

    Args:
      images: ``(B, H, W, C)`` with C = 1 or 3.
    Returns:
      ``(B, H, W, 1)`` float32.
    """
    images = _check_images(images, "images")
    c = images.shape[-1]
    if c == 1:
        return images
    if c != 3:
        raise ValueError(f"images must have 1 or 3 channels, got C={c}.")
    weights = tf.constant([0.299, 0.587, 0.114], tf.float32)
    return tf.reduce_sum(images * weights, axis=-1, keepdims=True)


def image_gradients(images):
    """Spatial derivatives by convolution with the central difference kernel
    ``[-1/2, 0, 1/2]``.

    Borders use symmetric padding (the derivative across the edge is one-sided, halved).

    Args:
      images: ``(B, H, W, C)`` float tensor.
    Returns:
      ``(I_x, I_y)``, each ``(B, H, W, C)``: derivatives along x (width) and y (height),
      in intensity per pixel.
    """
    images = _check_images(images, "images")
    c = images.shape[-1]
    padded = tf.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="SYMMETRIC")
    k = tf.constant([-0.5, 0.0, 0.5], tf.float32)
    kx = tf.tile(tf.reshape(k, [1, 3, 1, 1]), [1, 1, c, 1])  # (1, 3, C, 1) depthwise
    ky = tf.tile(tf.reshape(k, [3, 1, 1, 1]), [1, 1, c, 1])  # (3, 1, C, 1)
    ix = tf.nn.depthwise_conv2d(padded[:, 1:-1], kx, [1, 1, 1, 1], "VALID")
    iy = tf.nn.depthwise_conv2d(padded[:, :, 1:-1], ky, [1, 1, 1, 1], "VALID")
    return ix, iy


def pixel_grid(height: int, width: int):
    """Pixel-centre coordinates ``(H, W, 2)``, ``[..., 0] = x = column``,
    ``[..., 1] = y = row``."""
    ys, xs = tf.meshgrid(
        tf.range(height, dtype=tf.float32),
        tf.range(width, dtype=tf.float32),
        indexing="ij",
    )
    return tf.stack([xs, ys], axis=-1)


def warp_image(image, flow, padding_mode: str = "border"):
    """Backward warp: ``out(p) = image(p + flow(p))`` with bilinear interpolation.

    Args:
      image: ``(B, H, W, C)`` image to sample from (the "source").
      flow: ``(B, H', W', 2)`` backward flow in pixels of ``image`` (H' x W' is the
        output size; usually the same as H x W).
      padding_mode: ``"border"`` (default, repeat the edge), ``"zeros"`` or
        ``"reflection"``.
    Returns:
      ``(B, H', W', C)``.
    """
    image = _check_images(image, "image")
    flow = _check_flow(flow)
    h, w = image.shape[1], image.shape[2]
    pos = (
        pixel_grid(flow.shape[1], flow.shape[2])[None] + flow
    )  # pixel coordinates in image
    # align_corners=True: pixel 0 -> -1, pixel W-1 -> +1.
    scale = tf.constant([2.0 / max(w - 1, 1), 2.0 / max(h - 1, 1)], tf.float32)
    grid = pos * scale - 1.0
    return grid_sample(image, grid, align_corners=True, padding_mode=padding_mode)


def _box_mean(x, window):
    """Mean over a ``window x window`` neighbourhood (stride 1, border windows
    shrink)."""
    return tf.nn.avg_pool2d(x, window, 1, "SAME")


def _resize_flow(flow, size):
    """Resize a pixel flow ``(B, h, w, 2)`` to ``size=(H, W)`` and rescale its
    vectors."""
    h, w = flow.shape[1], flow.shape[2]
    out = tf.image.resize(flow, size, method="bilinear")
    return out * tf.constant([size[1] / w, size[0] / h], tf.float32)


# --------------------------------------------------------------------------------------
# Lucas-Kanade
# --------------------------------------------------------------------------------------
def lucas_kanade_step(
    image0,
    image1,
    flow,
    window: int = 15,
    regularisation: float = 1e-4,
    max_step: float = 1.0,
    smoothing: int = 5,
):
    """One Gauss-Newton update of a dense Lucas-Kanade flow at a single scale.

    With ``I_1^w = image1`` warped by ``flow``, each pixel solves the 2 x 2
    least-squares system of the linearised constraint summed over its window::

        [sum Ix Ix  sum Ix Iy] [du]     [sum Ix It]
        [sum Ix Iy  sum Iy Iy] [dv] = - [sum Iy It],   It = I_1^w - I_0

    (window means instead of sums, ``regularisation`` added to the diagonal so flat
    regions get ``du = 0`` instead of a division by zero). Every pixel solves its own
    system but the warp mixes neighbours with different flows, so two safeguards keep
    the iteration convergent: the update is capped at ``max_step`` pixels (the
    linearisation holds only about a pixel) and the new flow is averaged over
    ``smoothing x smoothing`` pixels (0 turns it off).

    Args:
      image0, image1: ``(B, H, W, 1)`` grey images.
      flow: ``(B, H, W, 2)`` current estimate.
    Returns:
      ``(B, H, W, 2)`` updated flow.
    """
    warped = warp_image(image1, flow)
    ix, iy = image_gradients(0.5 * (image0 + warped))
    it = warped - image0
    a11 = _box_mean(ix * ix, window) + regularisation
    a22 = _box_mean(iy * iy, window) + regularisation
    a12 = _box_mean(ix * iy, window)
    b1 = -_box_mean(ix * it, window)
    b2 = -_box_mean(iy * it, window)
    det = a11 * a22 - a12 * a12
    du = (a22 * b1 - a12 * b2) / det
    dv = (a11 * b2 - a12 * b1) / det
    update = tf.concat([du, dv], axis=-1)
    if max_step:
        norm = tf.norm(update, axis=-1, keepdims=True)
        update = update * tf.minimum(1.0, max_step / (norm + 1e-12))
    flow = flow + update
    return _box_mean(flow, smoothing) if smoothing and smoothing > 1 else flow


def lucas_kanade(
    image0,
    image1,
    window: int = 15,
    levels: int = 3,
    iterations: int = 5,
    regularisation: float = 1e-4,
    max_step: float = 1.0,
    smoothing: int = 5,
):
    """Dense coarse-to-fine Lucas-Kanade optical flow.

    Builds an image pyramid (each level half the size, anti-aliased), estimates the flow
    at the coarsest level, then upsamples it (doubling the vectors) as the starting
    point of the next finer level, where ``iterations`` Gauss-Newton steps
    (:func:`lucas_kanade_step`) refine it. Large motions become small at coarse levels,
    where the linearisation holds.

    Args:
      image0: ``(B, H, W, C)`` reference frame in [0, 1] (C = 1 or 3; RGB is converted
        to grey).
      image1: ``(B, H, W, C)`` second frame, same shape.
      window: odd side of the square least-squares window (pixels, at every level).
      levels: number of pyramid levels (1 = single scale).
      iterations: Gauss-Newton steps per level.
      regularisation: added to the normal-equation diagonal (intensity^2 per pixel^2).
      max_step, smoothing: safeguards of :func:`lucas_kanade_step`.
    Returns:
      ``(B, H, W, 2)`` float32 flow ``w`` in pixels with
      ``image1(p + w(p)) ~ image0(p)``.
    """
    image0 = _check_images(image0, "image0")
    image1 = _check_images(image1, "image1")
    if image0.shape != image1.shape:
        raise ValueError(
            f"image0 and image1 must have the same shape, got {image0.shape} and "
            f"{image1.shape}."
        )
    if not (isinstance(window, (int, np.integer)) and window >= 3 and window % 2 == 1):
        raise ValueError(f"window must be an odd integer >= 3, got {window!r}.")
    if not (isinstance(levels, (int, np.integer)) and levels >= 1):
        raise ValueError(f"levels must be a positive integer, got {levels!r}.")
    if not (isinstance(iterations, (int, np.integer)) and iterations >= 1):
        raise ValueError(f"iterations must be a positive integer, got {iterations!r}.")
    h, w = image0.shape[1], image0.shape[2]
    if min(h, w) < 2 ** (levels - 1) * 4:
        raise ValueError(
            f"a {h}x{w} image is too small for {levels} pyramid levels (the coarsest "
            f"level must be at least 4 pixels); use fewer levels."
        )
    g0, g1 = to_grayscale(image0), to_grayscale(image1)
    pyr0, pyr1 = [g0], [g1]
    for _ in range(levels - 1):
        size = (math.ceil(pyr0[-1].shape[1] / 2), math.ceil(pyr0[-1].shape[2] / 2))
        pyr0.append(tf.image.resize(pyr0[-1], size, method="area", antialias=True))
        pyr1.append(tf.image.resize(pyr1[-1], size, method="area", antialias=True))
    flow = tf.zeros(pyr0[-1].shape[:3] + (2,), tf.float32)
    for level in reversed(range(levels)):
        i0, i1 = pyr0[level], pyr1[level]
        if flow.shape[1:3] != i0.shape[1:3]:
            flow = _resize_flow(flow, (i0.shape[1], i0.shape[2]))
        for _ in range(iterations):
            flow = lucas_kanade_step(
                i0, i1, flow, window, regularisation, max_step, smoothing
            )
    return flow


# --------------------------------------------------------------------------------------
# Ground truth
# --------------------------------------------------------------------------------------
def synthetic_flow(kind: str, height: int, width: int, amount: float):
    """A known smooth backward flow ``(1, H, W, 2)`` in pixels, about the image centre.

    Args:
      kind: ``"translation"`` (``amount`` pixels along x and ``amount/2`` along y),
        ``"rotation"`` (``amount`` degrees), ``"zoom"`` (scale factor ``1 + amount``:
        the warped image is magnified by it) or ``"smooth"`` (a sinusoidal field of peak
        ``amount`` pixels).
      height, width: image size.
      amount: strength of the motion (see ``kind``).
    Returns:
      ``(1, H, W, 2)`` float32: ``warp_image(image, flow)`` is the moved image and
      ``lucas_kanade(warp_image(image, flow), image)`` estimates ``flow``.
    """
    if height < 2 or width < 2:
        raise ValueError(f"height and width must be >= 2, got {height} x {width}.")
    p = pixel_grid(height, width)
    centre = tf.constant([(width - 1) / 2, (height - 1) / 2], tf.float32)
    d = p - centre
    if kind == "translation":
        flow = tf.ones_like(p) * tf.constant([amount, amount / 2], tf.float32)
    elif kind == "rotation":
        a = math.radians(amount)
        c, s = math.cos(a), math.sin(a)
        rotated = tf.stack(
            [c * d[..., 0] - s * d[..., 1], s * d[..., 0] + c * d[..., 1]], -1
        )
        flow = rotated - d
    elif kind == "zoom":
        if amount <= -1:
            raise ValueError(
                f"zoom amount must be > -1 (scale 1 + amount > 0), got {amount}."
            )
        flow = d / (1.0 + amount) - d
    elif kind == "smooth":
        xn, yn = p[..., 0] / (width - 1), p[..., 1] / (height - 1)
        u = amount * tf.sin(2 * math.pi * yn) * tf.cos(math.pi * xn)
        v = amount * tf.cos(2 * math.pi * xn) * tf.sin(math.pi * yn)
        flow = tf.stack([u, v], -1)
    else:
        raise ValueError(
            "kind must be one of 'translation', 'rotation', 'zoom', 'smooth', "
            f"got {kind!r}."
        )
    return tf.cast(flow[None], tf.float32)


def stereo_flow(disparity, scale: int = 1):
    """Ground-truth flow and validity mask from a stereo disparity map (left -> right).

    A point at column x in the left image appears at column ``x - d`` in the right image
    (rectified pair, right camera to the right), so with ``image0 = left`` and
    ``image1 = right`` the backward flow is ``u = -d``, ``v = 0``. Pixels without a
    disparity (inf, nan, or <= 0: occluded or unmatched in the Middlebury data) are
    masked out.

    Args:
      disparity: ``(H, W)`` disparity in pixels
        (``skimage.data.stereo_motorcycle()[2]``).
      scale: integer downsampling factor (the flow is averaged over ``scale x scale``
        blocks of valid pixels and divided by ``scale``; a block is valid only if all
        its pixels are).
    Returns:
      ``(flow, mask)``: ``(1, H/scale, W/scale, 2)`` float32 and
      ``(1, H/scale, W/scale)`` bool.
    """
    d = np.asarray(disparity, np.float64)
    if d.ndim != 2:
        raise ValueError(f"disparity must be a 2-D (H, W) map, got shape {d.shape}.")
    if not (isinstance(scale, int) and scale >= 1):
        raise ValueError(f"scale must be a positive integer, got {scale!r}.")
    valid = np.isfinite(d) & (d > 0)
    h, w = (d.shape[0] // scale) * scale, (d.shape[1] // scale) * scale
    d, valid = np.where(valid, d, 0.0)[:h, :w], valid[:h, :w]

    def blocks(a):
        return a.reshape(h // scale, scale, w // scale, scale)

    mask = blocks(valid).all(axis=(1, 3))
    u = -blocks(d).mean(axis=(1, 3)) / scale
    flow = np.stack([np.where(mask, u, 0.0), np.zeros_like(u)], -1)
    return flow[None].astype(np.float32), mask[None]


# --------------------------------------------------------------------------------------
# Evaluation and visualisation
# --------------------------------------------------------------------------------------
def endpoint_error_map(flow, flow_gt):
    """Per-pixel end-point error ``||flow - flow_gt||_2``:
    ``(B, H, W, 2) x 2 -> (B, H, W)``."""
    flow, flow_gt = _check_flow(flow), _check_flow(flow_gt, "flow_gt")
    if flow.shape != flow_gt.shape:
        raise ValueError(
            f"flow and flow_gt must have the same shape, got {flow.shape} and "
            f"{flow_gt.shape}."
        )
    return tf.norm(flow - flow_gt, axis=-1)


def endpoint_error(flow, flow_gt, mask=None, border: int = 0) -> float:
    """Mean end-point error in pixels over valid pixels.

    Args:
      flow, flow_gt: ``(B, H, W, 2)``.
      mask: optional ``(B, H, W)`` boolean validity mask (e.g. from
        :func:`stereo_flow`).
      border: pixels ignored along each image edge (where the motion leaves the frame).
    Returns:
      Python float.
    """
    epe = endpoint_error_map(flow, flow_gt).numpy()
    valid = np.ones(epe.shape, bool) if mask is None else np.asarray(mask, bool)
    if valid.shape != epe.shape:
        raise ValueError(
            f"mask must have shape {epe.shape} (B, H, W), got {valid.shape}."
        )
    if border:
        inner = np.zeros(epe.shape, bool)
        inner[:, border:-border, border:-border] = True
        valid = valid & inner
    if not valid.any():
        raise ValueError("no valid pixel to average over: check mask and border.")
    return float(epe[valid].mean())


def _one_flow(flow) -> np.ndarray:
    """One flow ``(H, W, 2)`` or ``(1, H, W, 2)`` (array or tensor) -> float64
    ``(H, W, 2)``."""
    f = np.asarray(flow, np.float64)
    if f.ndim == 4 and f.shape[0] == 1:
        f = f[0]
    if f.ndim != 3 or f.shape[-1] != 2:
        raise ValueError(
            f"flow must have shape (H, W, 2) or (1, H, W, 2), got {np.shape(flow)}."
        )
    return f


def flow_to_color(flow, max_flow: float | None = None):
    """Colour-code a flow: hue = direction, saturation = magnitude / ``max_flow`` (white
    = still).

    Args:
      flow: ``(H, W, 2)`` or ``(1, H, W, 2)`` array/tensor in pixels.
      max_flow: magnitude shown fully saturated (default: the largest magnitude in
        ``flow``).
    Returns:
      ``(H, W, 3)`` float64 RGB in [0, 1]. Rightward motion is red, downward (+y) is
      yellow-green, leftward cyan, upward violet (hue runs with the angle
      ``atan2(v, u)``).
    """
    f = _one_flow(flow)
    f = np.nan_to_num(f, nan=0.0, posinf=0.0, neginf=0.0)
    mag = np.hypot(f[..., 0], f[..., 1])
    if max_flow is None:
        max_flow = float(mag.max())
    max_flow = max(float(max_flow), 1e-12)
    hue = (np.arctan2(f[..., 1], f[..., 0]) / (2 * np.pi)) % 1.0
    sat = np.clip(mag / max_flow, 0.0, 1.0)
    return hsv_to_rgb(hue, sat, np.ones_like(hue))


def color_wheel(size: int = 101):
    """The key of :func:`flow_to_color`: ``(size, size, 3)`` RGB of the flow
    ``p - centre`` (unit magnitude on the inscribed circle, white outside)."""
    c = (size - 1) / 2
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    f = np.stack([xs - c, ys - c], -1) / max(c, 1e-12)
    rgb = flow_to_color(f, max_flow=1.0)
    rgb[np.hypot(f[..., 0], f[..., 1]) > 1] = 1.0
    return rgb


def plot_flow_arrows(ax, flow, step: int = 8, color="k", scale: float = 1.0, **kwargs):
    """Draw flow vectors every ``step`` pixels on a matplotlib axis in image
    coordinates.

    Arrows start at the pixel and end at ``pixel + scale * flow`` (y down, as
    ``imshow``).

    Args:
      ax: matplotlib ``Axes``.
      flow: ``(H, W, 2)`` or ``(1, H, W, 2)`` in pixels.
    Returns:
      The ``Quiver`` artist.
    """
    f = _one_flow(flow)
    if step < 1:
        raise ValueError(f"step must be >= 1, got {step}.")
    ys, xs = np.mgrid[step // 2 : f.shape[0] : step, step // 2 : f.shape[1] : step]
    u, v = f[ys, xs, 0], f[ys, xs, 1]
    return ax.quiver(
        xs,
        ys,
        u,
        v,
        color=color,
        angles="xy",
        scale_units="xy",
        scale=1.0 / scale,
        **kwargs,
    )
