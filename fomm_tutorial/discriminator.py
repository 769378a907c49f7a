"""The (multi-scale) patch discriminator (the original ``modules/discriminator.py``).

Explained in chapter 7 (book/07_generator.ipynb).

Four blocks of 4x4 valid conv -> instance norm (not on the first) -> LeakyReLU(0.2) ->
2x2 average pool (not on the last), then a 1x1 conv to a patch prediction map.
Optionally the convolutions are spectrally normalised (``sn``) and the keypoint heatmaps
are appended to the input (``use_kp``).
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from fomm_tutorial.blocks import (
    CONV,
    PLAIN,
    BuildOnFirstCall,
    Conv2d,
    TorchNamed,
    torch_list_variables,
)
from fomm_tutorial.grids import kp2gaussian

__all__ = ["SpectralConv2d", "Discriminator", "MultiScaleDiscriminator", "scale_key"]


def _l2normalize(v, eps=1e-12):
    # torch F.normalize: v / max(||v||, eps)
    return v / tf.maximum(tf.norm(v), eps)


class SpectralConv2d(keras.layers.Layer, TorchNamed):
    """``spectral_norm(nn.Conv2d(in, out, k, padding=0))`` in NHWC (stride 1).

    Weights as the original stores them: ``kernel`` (= ``weight_orig``, Keras layout
    ``(k, k, in, out)``), ``bias``, and the power-iteration vectors ``u`` ``(out,)`` and
    ``v`` ``(in k k,)`` (non-trainable, torch layout). The effective kernel is
    ``kernel / sigma`` with ``sigma = u . (W v)``, ``W`` = ``weight_orig`` reshaped to
    ``(out, in k k)``. In training mode one power iteration (``v = normalize(W^T u)``,
    ``u = normalize(W v)``) updates ``u`` and ``v`` first, as torch does; in eval mode
    the stored ``u``, ``v`` are used as they are.
    """

    def __init__(self, in_features, out_features, kernel_size, eps=1e-12, **kwargs):
        # No autocast: the power iteration and sigma run in float32 under mixed
        # precision.
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        self.in_features, self.out_features, self.kernel_size = (
            int(in_features),
            int(out_features),
            int(kernel_size),
        )
        self.eps = eps

    def build(self, input_shape):
        k, cin, cout = self.kernel_size, self.in_features, self.out_features
        fan_in = cin * k * k
        bound = 1.0 / math.sqrt(fan_in)
        self.kernel = self.add_weight(
            name="kernel",
            shape=(k, k, cin, cout),
            initializer=keras.initializers.VarianceScaling(1 / 3, "fan_in", "uniform"),
        )
        self.bias = self.add_weight(
            name="bias",
            shape=(cout,),
            initializer=keras.initializers.RandomUniform(-bound, bound),
        )
        self.u = self.add_weight(
            name="u",
            shape=(cout,),
            trainable=False,
            initializer=keras.initializers.RandomNormal(),
        )
        self.v = self.add_weight(
            name="v",
            shape=(fan_in,),
            trainable=False,
            initializer=keras.initializers.RandomNormal(),
        )
        # torch starts from normalised random u, v
        self.u.assign(_l2normalize(tf.convert_to_tensor(self.u), self.eps))
        self.v.assign(_l2normalize(tf.convert_to_tensor(self.v), self.eps))

    def weight_matrix(self):
        """``weight_orig`` as torch's ``(out, in * k * k)`` matrix."""
        w = tf.transpose(self.kernel, [3, 2, 0, 1])  # (out, in, kh, kw)
        return tf.reshape(w, (self.out_features, -1))

    def sigma(self, training=False):
        w = self.weight_matrix()
        u, v = self.u, self.v
        if training:
            v = tf.stop_gradient(
                _l2normalize(tf.linalg.matvec(w, u, transpose_a=True), self.eps)
            )
            u = tf.stop_gradient(_l2normalize(tf.linalg.matvec(w, v), self.eps))
            self.u.assign(u)
            self.v.assign(v)
        return tf.tensordot(u, tf.linalg.matvec(w, v), 1)

    def call(self, x, training=False):
        kernel = tf.cast(self.kernel, tf.float32) / self.sigma(training)
        return tf.nn.conv2d(x, tf.cast(kernel, x.dtype), 1, "VALID") + tf.cast(
            self.bias, x.dtype
        )

    def torch_variables(self, prefix=""):
        def p(n):
            return f"{prefix}.{n}" if prefix else n

        return {
            p("weight_orig"): (self.kernel, CONV),
            p("bias"): (self.bias, PLAIN),
            p("weight_u"): (self.u, PLAIN),
            p("weight_v"): (self.v, PLAIN),
        }


class _DiscDownBlock(BuildOnFirstCall, keras.layers.Layer, TorchNamed):
    """4x4 valid conv (spectral-normalised if ``sn``) -> InstanceNorm (if ``norm``) ->
    LeakyReLU(0.2) -> AvgPool2d(2) (if ``pool``)."""

    def __init__(
        self,
        in_features,
        out_features,
        norm=False,
        kernel_size=4,
        pool=False,
        sn=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.conv = (
            SpectralConv2d(in_features, out_features, kernel_size, name="conv")
            if sn
            else Conv2d(in_features, out_features, kernel_size, 0, name="conv")
        )
        # nn.InstanceNorm2d(affine=True): per-sample, per-channel statistics, eps 1e-5.
        self.norm = (
            keras.layers.GroupNormalization(groups=-1, epsilon=1e-5, name="norm")
            if norm
            else None
        )
        self.pool = pool

    def call(self, x, training=False):
        out = (
            self.conv(x, training=training)
            if isinstance(self.conv, SpectralConv2d)
            else self.conv(x)
        )
        if self.norm is not None:
            out = self.norm(out)
        out = tf.nn.leaky_relu(out, 0.2)
        if self.pool:
            out = tf.nn.avg_pool2d(out, 2, 2, "VALID")
        return out

    def torch_variables(self, prefix=""):
        d = dict(self.conv.torch_variables(f"{prefix}.conv"))
        if self.norm is not None:
            d[f"{prefix}.norm.weight"] = (self.norm.gamma, PLAIN)
            d[f"{prefix}.norm.bias"] = (self.norm.beta, PLAIN)
        return d


class Discriminator(BuildOnFirstCall, keras.layers.Layer, TorchNamed):
    """One scale: image ``(B, H, W, C)`` -> ``(feature_maps, prediction_map)``.

    The keypoint heatmaps are appended to the image when ``use_kp``.

    ``feature_maps`` is the list of the ``num_blocks`` block outputs (NHWC);
    ``prediction_map`` is ``(B, h, w, 1)``.
    """

    def __init__(
        self,
        num_channels=3,
        block_expansion=64,
        num_blocks=4,
        max_features=512,
        sn=False,
        use_kp=False,
        num_kp=10,
        kp_variance=0.01,
        **kwargs,
    ):
        # estimate_jacobian etc. from common_params land in **kwargs in the original;
        # drop them.
        layer_kwargs = {
            k: v for k, v in kwargs.items() if k in ("name", "dtype", "trainable")
        }
        super().__init__(**layer_kwargs)
        self.use_kp = bool(use_kp)
        # Keep keypoints (coordinates) in float32 under mixed precision: Keras would
        # cast every floating argument to the compute dtype; the sub-layers cast their
        # own inputs.
        self._convert_input_args = False
        self.kp_variance = float(kp_variance)
        self.down_blocks = [
            _DiscDownBlock(
                num_channels + num_kp * self.use_kp
                if i == 0
                else min(max_features, block_expansion * (2**i)),
                min(max_features, block_expansion * (2 ** (i + 1))),
                norm=(i != 0),
                kernel_size=4,
                pool=(i != num_blocks - 1),
                sn=sn,
                name=f"down_blocks_{i}",
            )
            for i in range(num_blocks)
        ]
        last = min(max_features, block_expansion * (2**num_blocks))
        self.conv = (
            SpectralConv2d(last, 1, 1, name="conv")
            if sn
            else Conv2d(last, 1, 1, 0, name="conv")
        )

    def call(self, x, kp=None, training=False):
        out = x
        if self.use_kp:
            if kp is None:
                raise ValueError(
                    "this discriminator has use_kp=True: pass kp={'value': (B, K, 2)} "
                    "(the keypoints whose heatmaps are appended to the image)."
                )
            heatmap = kp2gaussian(
                kp["value"], (x.shape[1], x.shape[2]), self.kp_variance
            )
            out = tf.concat([out, tf.cast(heatmap, out.dtype)], axis=-1)
        feature_maps = []
        for block in self.down_blocks:
            out = block(out, training=training)
            feature_maps.append(out)
        pred = (
            self.conv(out, training=training)
            if isinstance(self.conv, SpectralConv2d)
            else self.conv(out)
        )
        return feature_maps, pred

    def torch_variables(self, prefix=""):
        d = torch_list_variables(self.down_blocks, f"{prefix}.down_blocks")
        d.update(self.conv.torch_variables(f"{prefix}.conv"))
        return d


def scale_key(scale) -> str:
    """``str(scale)``, as the original builds ``prediction_<scale>`` keys: 1 -> '1'."""
    return str(scale)


class MultiScaleDiscriminator(BuildOnFirstCall, keras.Model, TorchNamed):
    """``discriminator(pyramid, kp=...)``: one :class:`Discriminator` per scale.

    Args (call):
      pyramid: dict with ``prediction_<scale>`` images ``(B, H s, W s, C)`` (keys
        ``str(scale)``).
      kp: keypoints dict (``value`` ``(B, K, 2)``), used when ``use_kp``.
    Returns:
      dict with ``feature_maps_<scale>`` (list of NHWC maps) and
      ``prediction_map_<scale>`` ``(B, h, w, 1)``.
    """

    def __init__(self, scales=(), **kwargs):
        model_kwargs = {k: kwargs.pop(k) for k in ("name",) if k in kwargs}
        super().__init__(**model_kwargs)
        self.scales = [scale_key(s) for s in scales]
        # Keep keypoints (coordinates) in float32 under mixed precision: Keras would
        # cast every floating argument to the compute dtype; the sub-layers cast their
        # own inputs.
        self._convert_input_args = False
        # A list (not a dict) keeps Keras' weight-file structure simple; the keys are
        # self.scales.
        self.discs = [
            Discriminator(**kwargs, name=f"disc_{s.replace('.', '-')}")
            for s in self.scales
        ]

    def call(self, x, kp=None, training=False):
        out = {}
        for scale, disc in zip(self.scales, self.discs):
            key = "prediction_" + scale
            if key not in x:
                raise ValueError(
                    f"discriminator input has no {key!r} (keys: {sorted(x)}); pass the "
                    f"image pyramid with scales {self.scales}."
                )
            feature_maps, prediction_map = disc(x[key], kp=kp, training=training)
            out["feature_maps_" + scale] = feature_maps
            out["prediction_map_" + scale] = prediction_map
        return out

    def torch_variables(self, prefix=""):
        d = {}
        for scale, disc in zip(self.scales, self.discs):
            d.update(disc.torch_variables(f"discs.{scale.replace('.', '-')}"))
        return d

    def torch_buffers(self):
        return {}

    @classmethod
    def from_config_dict(cls, config):
        mp = config["model_params"]
        return cls(
            **mp["discriminator_params"], **mp["common_params"], name="discriminator"
        )
