"""The occlusion-aware generator (the original ``modules/generator.py``), NHWC.

Explained in chapter 7 (book/07_generator.ipynb).

Encoder (SameBlock 7x7 + DownBlocks) -> warp the features with the dense motion ->
multiply by the occlusion map -> residual bottleneck -> decoder (UpBlocks) -> 7x7 conv
-> sigmoid. No skip connections.

For animation, everything that depends on the source only (its encoder features and its
down-scaled copy for the dense-motion network) can be computed once with
:meth:`OcclusionAwareGenerator.encode_source` and passed as ``source_features=``; a
batch-1 source is then warped for a whole batch of driving frames without being copied.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from fomm_tutorial.blocks import (
    BuildOnFirstCall,
    Conv2d,
    DownBlock2d,
    ResBlock2d,
    SameBlock2d,
    TorchNamed,
    UpBlock2d,
    torch_list_variables,
)
from fomm_tutorial.dense_motion import DenseMotionNetwork
from fomm_tutorial.resampler import grid_sample, warp_shared_source

__all__ = ["OcclusionAwareGenerator", "deform_input"]


def deform_input(inp, deformation):
    """Warp ``inp`` ``(B or 1, H, W, C)`` with ``deformation`` ``(B, h, w, 2)``.

    If ``(h, w) != (H, W)`` the deformation is first resized bilinearly
    (``F.interpolate``, align_corners=False = ``tf.image.resize`` with half-pixel
    centres, checked against torch in the tests), as the original ``deform_input``.
    Returns ``(B, H, W, C)``.
    """
    H, W = inp.shape[1], inp.shape[2]
    if deformation.shape[1] != H or deformation.shape[2] != W:
        deformation = tf.image.resize(
            deformation, (H, W), method="bilinear", antialias=False
        )
        deformation = tf.cast(deformation, inp.dtype)
    if inp.shape[0] == 1 and deformation.shape[0] != 1:
        return warp_shared_source(inp, deformation)
    return grid_sample(inp, deformation, align_corners=True, padding_mode="zeros")


class OcclusionAwareGenerator(BuildOnFirstCall, keras.Model, TorchNamed):
    """``generator(source (B, H, W, C), kp_source=..., kp_driving=...)`` -> dict.

    Keys: ``mask (B, h, w, K+1)``, ``sparse_deformed (B, K+1, h, w, C)``,
    ``deformation (B, h, w, 2)``, ``occlusion_map (B, h, w, 1)`` (if estimated),
    ``deformed (B, H, W, C)`` (the source warped by the upsampled deformation;
    visualisation only), ``prediction (B, H, W, C)`` in [0, 1].

    Built from ``model_params.generator_params`` + ``common_params``
    (:meth:`from_config_dict`).
    """

    def __init__(
        self,
        num_channels,
        num_kp,
        block_expansion,
        max_features,
        num_down_blocks,
        num_bottleneck_blocks,
        estimate_occlusion_map=False,
        dense_motion_params=None,
        estimate_jacobian=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        del estimate_jacobian  # accepted and ignored, as the original
        # Keep keypoints (coordinates) in float32 under mixed precision: Keras would
        # cast every floating argument to the compute dtype; the sub-layers cast their
        # own inputs.
        self._convert_input_args = False
        self.num_channels = int(num_channels)
        if dense_motion_params is not None:
            self.dense_motion_network = DenseMotionNetwork(
                num_kp=num_kp,
                num_channels=num_channels,
                estimate_occlusion_map=estimate_occlusion_map,
                **dense_motion_params,
                name="dense_motion_network",
            )
        else:
            self.dense_motion_network = None
        self.first = SameBlock2d(
            num_channels, block_expansion, kernel_size=7, padding=3, name="first"
        )
        self.down_blocks = [
            DownBlock2d(
                min(max_features, block_expansion * (2**i)),
                min(max_features, block_expansion * (2 ** (i + 1))),
                3,
                1,
                name=f"down_blocks_{i}",
            )
            for i in range(num_down_blocks)
        ]
        self.up_blocks = [
            UpBlock2d(
                min(max_features, block_expansion * (2 ** (num_down_blocks - i))),
                min(max_features, block_expansion * (2 ** (num_down_blocks - i - 1))),
                3,
                1,
                name=f"up_blocks_{i}",
            )
            for i in range(num_down_blocks)
        ]
        bottleneck_features = min(max_features, block_expansion * (2**num_down_blocks))
        self.bottleneck = [
            ResBlock2d(bottleneck_features, 3, 1, name=f"bottleneck_r{i}")
            for i in range(num_bottleneck_blocks)
        ]
        self.final = Conv2d(block_expansion, num_channels, 7, 3, name="final")

    def encode_source(self, source_image, training=False):
        """Everything that depends on the source only, computed once for an animation.

        Returns ``{"features": (B, h, w, F), "source_down": ...}``: the encoder features
        and the source down-scaled for the dense-motion network.

        Pass the result as ``source_features=`` to animate many driving frames from one
        source: a batch-1 ``source_features`` serves any batch of keypoints.
        """
        out = self.first(source_image, training=training)
        for block in self.down_blocks:
            out = block(out, training=training)
        feats = {"features": out}
        if self.dense_motion_network is not None:
            feats["source_down"] = self.dense_motion_network.downsample(source_image)
        return feats

    def call(
        self,
        source_image,
        kp_source=None,
        kp_driving=None,
        training=False,
        source_features=None,
    ):
        if source_features is None:
            source_features = self.encode_source(source_image, training=training)
        out = source_features["features"]
        output = {}
        if self.dense_motion_network is not None:
            dense = self.dense_motion_network(
                source_image,
                kp_driving=kp_driving,
                kp_source=kp_source,
                training=training,
                source_down=source_features.get("source_down"),
            )
            output["mask"] = dense["mask"]
            output["sparse_deformed"] = dense["sparse_deformed"]
            deformation = dense["deformation"]
            output["deformation"] = deformation
            out = deform_input(out, deformation)
            occlusion_map = dense.get("occlusion_map")
            if occlusion_map is not None:
                output["occlusion_map"] = occlusion_map
                if (
                    occlusion_map.shape[1] != out.shape[1]
                    or occlusion_map.shape[2] != out.shape[2]
                ):
                    occlusion_map = tf.image.resize(
                        occlusion_map, tf.shape(out)[1:3], method="bilinear"
                    )
                out = out * tf.cast(occlusion_map, out.dtype)
            output["deformed"] = deform_input(source_image, deformation)
        for block in self.bottleneck:
            out = block(out, training=training)
        for block in self.up_blocks:
            out = block(out, training=training)
        output["prediction"] = tf.sigmoid(
            tf.cast(self.final(out), tf.float32)
        )  # float32 for the losses
        return output

    def torch_variables(self, prefix=""):
        d = {}
        if self.dense_motion_network is not None:
            d.update(self.dense_motion_network.torch_variables("dense_motion_network"))
        d.update(self.first.torch_variables("first"))
        d.update(torch_list_variables(self.down_blocks, "down_blocks"))
        d.update(torch_list_variables(self.up_blocks, "up_blocks"))
        # the bottleneck blocks are registered as r0, r1, ... in the original
        for i, b in enumerate(self.bottleneck):
            d.update(b.torch_variables(f"bottleneck.r{i}"))
        d.update(self.final.torch_variables("final"))
        return d

    def torch_buffers(self):
        dm = self.dense_motion_network
        return (
            {"dense_motion_network.down.weight": dm.down}
            if dm is not None and dm.down is not None
            else {}
        )

    @classmethod
    def from_config_dict(cls, config):
        mp = config["model_params"]
        return cls(**mp["generator_params"], **mp["common_params"], name="generator")
