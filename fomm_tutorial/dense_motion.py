"""The dense motion network (the original ``modules/dense_motion.py``), NHWC.

Explained in chapter 6 (book/06_dense_motion.ipynb).

From the source and driving keypoints it builds K+1 candidate motions (K local affine
motions around the keypoints, eq. 4, plus the identity for the background), warps the
down-scaled source with each of them, and lets an hourglass decide, per pixel, which
motion applies (a softmax mask, eq. 8-9) and which pixels are occluded (a sigmoid
occlusion map).

The steps are module-level functions so a chapter can call them one at a time:
:func:`create_heatmap_representations` (eq. 6), :func:`create_sparse_motions` (eq. 4),
:func:`create_deformed_source_image` (eq. 7), :func:`hourglass_input`,
:func:`combine_motions`.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from fomm_tutorial.blocks import (
    AntiAliasInterpolation2d,
    BuildOnFirstCall,
    Conv2d,
    Hourglass,
    TorchNamed,
)
from fomm_tutorial.grids import kp2gaussian, make_coordinate_grid
from fomm_tutorial.resampler import grid_sample, warp_shared_source

__all__ = [
    "DenseMotionNetwork",
    "create_heatmap_representations",
    "create_sparse_motions",
    "create_deformed_source_image",
    "hourglass_input",
    "combine_motions",
    "inverse_2x2",
]


def create_heatmap_representations(
    kp_driving, kp_source, spatial_size, kp_variance=0.01
):
    """Eq. 6: Gaussian heatmaps of the driving keypoints minus those of the source
    keypoints.

    Returns:
      ``(B, h, w, K+1)``; channel 0 is the background (zeros).
    """
    heat = kp2gaussian(kp_driving["value"], spatial_size, kp_variance) - kp2gaussian(
        kp_source["value"], spatial_size, kp_variance
    )
    return tf.concat([tf.zeros_like(heat[..., :1]), heat], axis=-1)


def inverse_2x2(m):
    """Closed-form inverse of ``(..., 2, 2)`` matrices
    (``[[d, -b], [-c, a]] / (ad - bc)``)."""
    a, b, c, d = m[..., 0, 0], m[..., 0, 1], m[..., 1, 0], m[..., 1, 1]
    det = a * d - b * c
    inv = tf.stack([tf.stack([d, -b], -1), tf.stack([-c, a], -1)], -2)
    return inv / det[..., None, None]


def create_sparse_motions(kp_driving, kp_source, spatial_size):
    """Eq. 4: ``T_k(z) = p_k^S + J_k^S (J_k^D)^-1 (z - p_k^D)`` on the ``(h, w)`` grid.

    The Jacobian term is used when ``kp_driving`` has a ``"jacobian"``.

    Returns:
      ``(B, K+1, h, w, 2)`` sampling grids in [-1, 1], (x, y); motion 0 is the identity
      (background).
    """
    h, w = int(spatial_size[0]), int(spatial_size[1])
    value_d = kp_driving["value"]
    identity = make_coordinate_grid(h, w, value_d.dtype)  # (h, w, 2)
    coords = identity[None, None] - value_d[:, :, None, None, :]  # (B, K, h, w, 2)
    if kp_driving.get("jacobian") is not None:
        jac = tf.matmul(
            kp_source["jacobian"], inverse_2x2(kp_driving["jacobian"])
        )  # (B, K, 2, 2)
        coords = tf.einsum("bkij,bkhwj->bkhwi", jac, coords)
    coords = coords + kp_source["value"][:, :, None, None, :]
    b = tf.shape(value_d)[0]
    background = tf.tile(identity[None, None], tf.stack([b, 1, 1, 1, 1]))
    return tf.concat([background, coords], axis=1)


def create_deformed_source_image(source_image, sparse_motions):
    """Eq. 7: the source warped by each of the K+1 sparse motions (grid_sample,
    align_corners=True).

    Args:
      source_image: ``(B, h, w, C)`` (already at the motion resolution), or
        ``(1, h, w, C)``: one source shared by the whole batch of motions (sampled
        without copying it).
      sparse_motions: ``(B, K+1, h, w, 2)``.
    Returns:
      ``(B, K+1, h, w, C)``.
    """
    shape = tf.shape(sparse_motions)
    b, k1, h, w = shape[0], shape[1], shape[2], shape[3]
    c = tf.shape(source_image)[3]
    grids = tf.reshape(sparse_motions, tf.stack([b * k1, h, w, 2]))
    if source_image.shape[0] == 1:
        # One source for all B*(K+1) motions: sampled without copying it.
        out = warp_shared_source(source_image, grids)
    else:
        src = tf.repeat(
            source_image, k1, axis=0
        )  # (B*(K+1), h, w, C): batch-major like torch repeat/view
        out = grid_sample(src, grids, align_corners=True, padding_mode="zeros")
    return tf.reshape(out, tf.stack([b, k1, h, w, c]))


def hourglass_input(heatmap, deformed_source):
    """Interleave per motion: channel ``(C+1) k`` = heatmap_k, then the C channels of
    deformed_k.

    Args:
      heatmap: ``(B, h, w, K+1)``; deformed_source: ``(B, K+1, h, w, C)``.
    Returns:
      ``(B, h, w, (K+1)(C+1))`` (k-major order, as the original's ``cat(dim=2).view``).
    """
    deformed = tf.transpose(deformed_source, [0, 2, 3, 1, 4])  # (B, h, w, K+1, C)
    x = tf.concat(
        [tf.cast(heatmap[..., None], deformed.dtype), deformed], axis=-1
    )  # (B, h, w, K+1, C+1)
    shape = tf.shape(x)
    return tf.reshape(x, tf.stack([shape[0], shape[1], shape[2], shape[3] * shape[4]]))


def combine_motions(mask, sparse_motions):
    """Eq. 9: ``deformation = sum_k mask_k * T_k``. mask ``(B, h, w, K+1)`` ->
    ``(B, h, w, 2)``."""
    return tf.einsum("bhwk,bkhwc->bhwc", mask, sparse_motions)


class DenseMotionNetwork(BuildOnFirstCall, keras.layers.Layer, TorchNamed):
    """``DenseMotionNetwork``: source ``(B, H, W, C)`` + keypoints -> dense motion at
    ``scale_factor``.

    Output dict: ``sparse_deformed (B, K+1, h, w, C)``, ``mask (B, h, w, K+1)``,
    ``deformation (B, h, w, 2)``, ``occlusion_map (B, h, w, 1)`` (if
    ``estimate_occlusion_map``).
    """

    def __init__(
        self,
        block_expansion,
        num_blocks,
        max_features,
        num_kp,
        num_channels,
        estimate_occlusion_map=False,
        scale_factor=1,
        kp_variance=0.01,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_kp = int(num_kp)
        # Keep keypoints (coordinates) in float32 under mixed precision: Keras would
        # cast every floating argument to the compute dtype; the sub-layers cast their
        # own inputs.
        self._convert_input_args = False
        self.num_channels = int(num_channels)
        self.kp_variance = float(kp_variance)
        self.scale_factor = float(scale_factor)
        self.hourglass = Hourglass(
            block_expansion,
            in_features=(num_kp + 1) * (num_channels + 1),
            max_features=max_features,
            num_blocks=num_blocks,
            name="hourglass",
        )
        self.mask = Conv2d(self.hourglass.out_filters, num_kp + 1, 7, 3, name="mask")
        self.occlusion = (
            Conv2d(self.hourglass.out_filters, 1, 7, 3, name="occlusion")
            if estimate_occlusion_map
            else None
        )
        self.down = (
            AntiAliasInterpolation2d(num_channels, scale_factor)
            if self.scale_factor != 1
            else None
        )

    def downsample(self, source_image):
        """The source at the motion resolution, ``(B, h, w, C)`` (depends on the source
        only)."""
        return self.down(source_image) if self.down is not None else source_image

    def call(
        self, source_image, kp_driving, kp_source, training=False, source_down=None
    ):
        """``source_down`` (from :meth:`downsample`) skips re-blurring a source seen
        before."""
        if source_down is None:
            source_down = self.downsample(source_image)
        # Keras casts floating inputs to the compute dtype under mixed precision;
        # keypoints are coordinates, so the motion itself is computed in float32.
        kp_driving = {
            k: tf.cast(v, tf.float32) for k, v in kp_driving.items() if v is not None
        }
        kp_source = {
            k: tf.cast(v, tf.float32) for k, v in kp_source.items() if v is not None
        }
        h, w = source_down.shape[1], source_down.shape[2]
        heatmap = create_heatmap_representations(
            kp_driving, kp_source, (h, w), self.kp_variance
        )
        sparse_motion = create_sparse_motions(
            kp_driving, kp_source, (h, w)
        )  # kp dtype (float32)
        deformed_source = create_deformed_source_image(source_down, sparse_motion)
        prediction = self.hourglass(
            hourglass_input(heatmap, deformed_source), training=training
        )
        # Mask, deformation and occlusion in float32 (coordinates; mixed precision
        # safe).
        mask = tf.nn.softmax(tf.cast(self.mask(prediction), tf.float32), axis=-1)
        out = {
            "sparse_deformed": deformed_source,
            "mask": mask,
            "deformation": combine_motions(mask, sparse_motion),
        }
        if self.occlusion is not None:
            out["occlusion_map"] = tf.sigmoid(
                tf.cast(self.occlusion(prediction), tf.float32)
            )
        return out

    def torch_variables(self, prefix=""):
        def p(n):
            return f"{prefix}.{n}" if prefix else n

        d = {
            **self.hourglass.torch_variables(p("hourglass")),
            **self.mask.torch_variables(p("mask")),
        }
        if self.occlusion is not None:
            d.update(self.occlusion.torch_variables(p("occlusion")))
        return d
