"""The keypoint detector (the original ``modules/keypoint_detector.py``), NHWC.

Explained in chapter 5 (book/05_keypoints.ipynb).

An hourglass predicts one heatmap per keypoint; a spatial softmax (temperature 0.1)
turns each into a probability map whose centroid is the keypoint ("soft-argmax",
:func:`gaussian2kp`). An optional second head predicts a 2x2 matrix per pixel; the
heatmap-weighted average of those is the keypoint's Jacobian (:func:`heatmap_jacobian`).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from fomm_tutorial.blocks import (
    AntiAliasInterpolation2d,
    BuildOnFirstCall,
    Conv2d,
    Hourglass,
    TorchNamed,
)
from fomm_tutorial.grids import make_coordinate_grid

__all__ = ["KeypointDetector", "heatmap_softmax", "gaussian2kp", "heatmap_jacobian"]


def heatmap_softmax(prediction, temperature: float):
    """Spatial softmax of ``prediction / temperature``.

    Args:
      prediction: ``(B, h, w, K)`` raw heatmap logits.
    Returns:
      ``(B, h, w, K)`` heatmaps, each summing to 1 over ``(h, w)``.
    """
    shape = tf.shape(prediction)
    flat = tf.reshape(prediction, tf.stack([shape[0], shape[1] * shape[2], shape[3]]))
    heat = tf.nn.softmax(flat / temperature, axis=1)
    return tf.reshape(heat, shape)


def gaussian2kp(heatmap):
    """Soft-argmax: the heatmap-weighted mean of the coordinate grid.

    Args:
      heatmap: ``(B, h, w, K)`` probability maps.
    Returns:
      ``(B, K, 2)`` keypoints in [-1, 1], (x, y) order. The grid is
      ``make_coordinate_grid(h, w)`` of the *heatmap* (58 x 58 for the valid 7x7 head on
      64 x 64 features, as the original).
    """
    h, w = heatmap.shape[1], heatmap.shape[2]
    grid = make_coordinate_grid(h, w, heatmap.dtype)  # (h, w, 2)
    return tf.einsum("bhwk,hwc->bkc", heatmap, grid)


def heatmap_jacobian(heatmap, jacobian_map):
    """Heatmap-weighted average of per-pixel 2x2 matrices.

    Args:
      heatmap: ``(B, h, w, K)``.
      jacobian_map: ``(B, h, w, 4 J)``, channel
        ``4 j + [0, 1, 2, 3] = [J00, J01, J10, J11]``; J is K or 1
        (``single_jacobian_map``: one map shared by all keypoints).
    Returns:
      ``(B, K, 2, 2)`` row-major Jacobians (``J[..., 0, :] = d x' / d(x, y)``).
    """
    shape = tf.shape(jacobian_map)
    j = jacobian_map.shape[-1] // 4
    jm = tf.reshape(jacobian_map, tf.stack([shape[0], shape[1], shape[2], j, 4]))
    # A product and a sum over (h, w) (one map for all keypoints broadcasts over K):
    # TFLite lowers the einsum "bhwk,bhwki->bki" to a batch matmul it rejects.
    jac = tf.reduce_sum(heatmap[..., None] * jm, axis=(1, 2))  # (B, K, 4)
    return tf.reshape(jac, tf.stack([shape[0], tf.shape(heatmap)[3], 2, 2]))


class KeypointDetector(BuildOnFirstCall, keras.Model, TorchNamed):
    """``KPDetector``: image ``(B, H, W, C)`` in [0, 1] -> ``{"value": (B, K, 2),
    "jacobian": (B, K, 2, 2)}``.

    Built from ``model_params.kp_detector_params`` + ``common_params`` of an original
    config (:meth:`from_config_dict`). ``pad=0`` (the default, required by the published
    checkpoints) makes the 7x7 heads *valid* convolutions: 64x64 features -> 58x58
    heatmaps. With ``estimate_jacobian=False`` the output has no ``"jacobian"`` key.
    ``call(..., return_heatmap=True)`` also returns ``"heatmap"`` ``(B, h, w, K)`` (for
    visualisation).
    """

    def __init__(
        self,
        block_expansion,
        num_kp,
        num_channels,
        max_features,
        num_blocks,
        temperature,
        estimate_jacobian=False,
        scale_factor=1,
        single_jacobian_map=False,
        pad=0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_kp = int(num_kp)
        self.num_channels = int(num_channels)
        self.temperature = float(temperature)
        self.scale_factor = float(scale_factor)
        self.estimate_jacobian = bool(estimate_jacobian)
        self.single_jacobian_map = bool(single_jacobian_map)
        self.predictor = Hourglass(
            block_expansion,
            in_features=num_channels,
            max_features=max_features,
            num_blocks=num_blocks,
            name="predictor",
        )
        self.kp = Conv2d(self.predictor.out_filters, num_kp, 7, pad, name="kp")
        if self.estimate_jacobian:
            self.num_jacobian_maps = 1 if self.single_jacobian_map else self.num_kp
            self.jacobian = Conv2d(
                self.predictor.out_filters,
                4 * self.num_jacobian_maps,
                7,
                pad,
                name="jacobian",
            )
            # Identity initialisation of the Jacobian head (weight 0, bias [1, 0, 0, 1]
            # per map): with heatmaps summing to 1, every Jacobian starts exactly at the
            # identity.
            self.jacobian.build((None, None, None, self.predictor.out_filters))
            self.jacobian.conv.kernel.assign(tf.zeros_like(self.jacobian.conv.kernel))
            self.jacobian.conv.bias.assign(
                np.tile(np.array([1, 0, 0, 1], np.float32), self.num_jacobian_maps)
            )
        else:
            self.jacobian = None
        self.down = (
            AntiAliasInterpolation2d(num_channels, scale_factor)
            if self.scale_factor != 1
            else None
        )

    def call(self, x, training=False, return_heatmap=False):
        if self.down is not None:
            x = self.down(x)
        feature_map = self.predictor(x, training=training)
        # Keypoints are coordinates: softmax and centroid in float32 even under mixed
        # precision.
        prediction = tf.cast(self.kp(feature_map), tf.float32)
        heatmap = heatmap_softmax(prediction, self.temperature)
        out = {"value": gaussian2kp(heatmap)}
        if self.jacobian is not None:
            out["jacobian"] = heatmap_jacobian(
                heatmap, tf.cast(self.jacobian(feature_map), tf.float32)
            )
        if return_heatmap:
            out["heatmap"] = heatmap
        return out

    def torch_variables(self, prefix=""):
        d = {
            **self.predictor.torch_variables("predictor"),
            **self.kp.torch_variables("kp"),
        }
        if self.jacobian is not None:
            d.update(self.jacobian.torch_variables("jacobian"))
        return d

    def torch_buffers(self):
        """Fixed buffers of the original (``{name: expected shape}``), checked by the
        converter."""
        return {"down.weight": self.down} if self.down is not None else {}

    @classmethod
    def from_config_dict(cls, config):
        mp = config["model_params"]
        return cls(
            **mp["kp_detector_params"], **mp["common_params"], name="kp_detector"
        )
