"""The building blocks of every FOMM network (the original ``modules/util.py``), NHWC.

Explained in chapter 5 (book/05_keypoints.ipynb).

* :class:`BatchNorm2d` -- batch normalisation that matches PyTorch *exactly*, training
  mode included (Keras updates the moving variance with the biased batch variance;
  PyTorch with the unbiased one).
* :class:`Conv2d` -- a convolution with PyTorch's ``padding=p`` semantics and default
  init.
* :class:`ResBlock2d`, :class:`UpBlock2d`, :class:`DownBlock2d`, :class:`SameBlock2d`.
* :class:`Encoder`, :class:`Decoder`, :class:`Hourglass` -- the U-Net used by the
  keypoint detector and the dense-motion network.
* :class:`AntiAliasInterpolation2d` -- Gaussian blur + strided subsampling (image
  pyramid, down-scaled inputs).
* :func:`conv2d_valid` -- the convolution the blocks use for small outputs (one matrix
  product; faster on a CPU there), :class:`BuildOnFirstCall` -- the ``build`` of every
  container layer.

Every layer can list its variables under their original PyTorch state-dict names
(:meth:`torch_variables`), which is what :mod:`fomm_tutorial.checkpoint` uses to port
weights by name.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

__all__ = [
    "BatchNorm2d",
    "Conv2d",
    "ResBlock2d",
    "UpBlock2d",
    "DownBlock2d",
    "SameBlock2d",
    "Encoder",
    "Decoder",
    "Hourglass",
    "AntiAliasInterpolation2d",
    "anti_alias_kernel",
    "conv2d_valid",
    "TorchNamed",
    "BuildOnFirstCall",
]

# Kinds of variables for the weight port (see fomm_tutorial.checkpoint):
#   "conv":  torch (out, in, kh, kw) -> Keras (kh, kw, in, out)
#   "plain": same shape in both
CONV, PLAIN = "conv", "plain"


class TorchNamed:
    """Mixin: ``torch_variables(prefix)`` ->
    ``{state-dict name: (keras variable, kind)}``."""

    def torch_variables(self, prefix: str = "") -> dict:
        raise NotImplementedError


class BuildOnFirstCall:
    """Mixin for layers that only hold sub-layers: ``build`` just marks the layer built.

    The sub-layers build on their first (eager) call. Without this Keras would trace the
    whole ``call`` symbolically once just to build, which costs seconds for the big
    networks. List it before the Keras base class (``class Encoder(BuildOnFirstCall,
    keras.layers.Layer)``) so that its ``build`` wins. It adds no attribute: tracked
    names and the weights layout are unchanged.
    """

    def build(self, input_shape):
        self.built = True


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def torch_list_variables(layers, prefix: str) -> dict:
    """Torch names of a ``ModuleList``'s variables: ``prefix.<i>.<name>`` for layer
    ``i``."""
    variables = {}
    for i, layer in enumerate(layers):
        variables.update(layer.torch_variables(f"{prefix}.{i}"))
    return variables


class BatchNorm2d(keras.layers.Layer, TorchNamed):
    """``SynchronizedBatchNorm2d(C)`` of the original on one device (=
    ``nn.BatchNorm2d``), NHWC.

    eps 1e-5, PyTorch momentum 0.1 (= Keras momentum 0.9). In training mode the output
    uses the biased batch variance and the running variance is updated with the
    **unbiased** one, exactly as PyTorch does (Keras' own ``BatchNormalization`` uses
    the biased variance for both). Statistics are computed in float32 even under mixed
    precision.

    Input/output: ``(B, H, W, C)``.
    """

    def __init__(self, momentum: float = 0.9, epsilon: float = 1e-5, **kwargs):
        # No autocast: statistics and running averages stay float32 under mixed
        # precision.
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)

    def build(self, input_shape):
        c = int(input_shape[-1])
        self.gamma = self.add_weight(name="gamma", shape=(c,), initializer="ones")
        self.beta = self.add_weight(name="beta", shape=(c,), initializer="zeros")
        self.moving_mean = self.add_weight(
            name="moving_mean", shape=(c,), initializer="zeros", trainable=False
        )
        self.moving_variance = self.add_weight(
            name="moving_variance", shape=(c,), initializer="ones", trainable=False
        )

    def call(self, x, training=False):
        dtype = x.dtype
        x32 = tf.cast(x, tf.float32)
        # A frozen layer (trainable False) normalises with its running statistics and
        # leaves them alone, as Keras' BatchNormalization does: what it computes stays
        # what it was (Trainer(freeze_keypoints=True)).
        if training and self.trainable:
            # One fused kernel (forward and gradient): normalises with the biased batch
            # variance and returns the unbiased one (Bessel's correction), what
            # PyTorch's running average uses. 5x cheaper than moments + scale/shift and
            # its autodiff at 256 x 256 x 128. Called raw: tf.nn's wrapper raises
            # epsilon to cuDNN's minimum 1.001e-5.
            empty = tf.constant([], tf.float32)
            y, mean, unbiased = tf.raw_ops.FusedBatchNormV3(
                x=x32,
                scale=tf.cast(self.gamma, tf.float32),
                offset=tf.cast(self.beta, tf.float32),
                mean=empty,
                variance=empty,
                epsilon=self.epsilon,
                data_format="NHWC",
                is_training=True,
            )[:3]
            m = self.momentum
            self.moving_mean.assign(
                self.moving_mean * m + tf.stop_gradient(mean) * (1.0 - m)
            )
            self.moving_variance.assign(
                self.moving_variance * m + tf.stop_gradient(unbiased) * (1.0 - m)
            )
            return tf.cast(y, dtype)
        mean, var = self.moving_mean, self.moving_variance
        # One fused scale/shift per channel (cheap in eval mode; XLA fuses it into the
        # conv).
        scale = tf.cast(self.gamma, tf.float32) * tf.math.rsqrt(var + self.epsilon)
        shift = tf.cast(self.beta, tf.float32) - mean * scale
        return tf.cast(x32 * scale + shift, dtype)

    def inference_scale_shift(self):
        """Eval-mode BN as ``x * scale + shift`` (float32 ``(C,)`` each), for folding
        into a conv."""
        scale = tf.cast(self.gamma, tf.float32) * tf.math.rsqrt(
            tf.cast(self.moving_variance, tf.float32) + self.epsilon
        )
        return scale, tf.cast(self.beta, tf.float32) - tf.cast(
            self.moving_mean, tf.float32
        ) * scale

    def torch_variables(self, prefix=""):
        return {
            _join(prefix, "weight"): (self.gamma, PLAIN),
            _join(prefix, "bias"): (self.beta, PLAIN),
            _join(prefix, "running_mean"): (self.moving_mean, PLAIN),
            _join(prefix, "running_var"): (self.moving_variance, PLAIN),
        }

    def get_config(self):
        return {
            **super().get_config(),
            "momentum": self.momentum,
            "epsilon": self.epsilon,
        }


class _TorchBiasInit(keras.initializers.Initializer):
    """PyTorch's default conv bias init U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""

    def __init__(self, fan_in):
        self.fan_in = int(fan_in)

    def __call__(self, shape, dtype=None):
        bound = 1.0 / math.sqrt(max(self.fan_in, 1))
        return keras.random.uniform(shape, -bound, bound, dtype=dtype)

    def get_config(self):
        return {"fan_in": self.fan_in}


# A convolution with at most this many output positions per image runs as one matrix
# product over explicit patches (im2col): at the hourglasses' deepest levels (2x2 to 5x5
# positions, 512-2048 channels) TensorFlow's CPU convolution kernels, forward and
# gradients, take 2-7x the time of the same GEMM (measured; from 8x8 positions on they
# are as fast).
IM2COL_MAX_POSITIONS = 25


def conv2d_valid(x, kernel):
    """Stride-1 VALID convolution ``(B, H, W, Cin) * (kh, kw, Cin, Cout) -> (B, H-kh+1,
    W-kw+1, Cout)``.

    Small outputs (at most :data:`IM2COL_MAX_POSITIONS` positions, static sizes) are
    computed as ``patches @ kernel`` with ``patches`` ``(B*h*w, kh*kw*Cin)`` in the
    kernel's ``(i, j, c)`` order; the same sums, in another order (float rounding only).
    """
    kh, kw, cin, cout = (int(d) for d in kernel.shape)
    h_in, w_in = x.shape[1], x.shape[2]
    if (
        h_in is None
        or w_in is None
        or (h_in - kh + 1) * (w_in - kw + 1) > IM2COL_MAX_POSITIONS
    ):
        return tf.nn.conv2d(x, kernel, 1, "VALID")
    h, w = h_in - kh + 1, w_in - kw + 1
    patches = tf.concat(
        [x[:, i : i + h, j : j + w, :] for i in range(kh) for j in range(kw)], axis=-1
    )
    out = tf.matmul(
        tf.reshape(patches, [-1, kh * kw * cin]),
        tf.reshape(kernel, [kh * kw * cin, cout]),
    )
    return tf.reshape(out, tf.stack([tf.shape(x)[0], h, w, cout]))


class Conv2d(keras.layers.Layer, TorchNamed):
    """``nn.Conv2d(in, out, kernel_size, padding=p, groups)`` in NHWC (stride 1, bias).

    ``padding`` is PyTorch's symmetric zero padding. ``p = (k-1)/2`` is Keras
    ``"same"``, 0 is ``"valid"``; anything else pads explicitly. Initialisation follows
    PyTorch (kaiming-uniform a=sqrt(5) = U(+-1/sqrt(fan_in)) for weights and bias),
    which matters only when training from scratch.
    """

    def __init__(
        self, in_features, out_features, kernel_size, padding=0, groups=1, **kwargs
    ):
        super().__init__(**kwargs)
        k = int(kernel_size)
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.kernel_size, self.padding, self.groups = k, int(padding), int(groups)
        if self.padding == 0:
            mode, self._pad = "valid", 0
        elif k % 2 == 1 and self.padding == (k - 1) // 2:
            mode, self._pad = "same", 0
        else:
            mode, self._pad = "valid", self.padding
        fan_in = self.in_features // self.groups * k * k
        self.conv = keras.layers.Conv2D(
            self.out_features,
            k,
            padding=mode,
            groups=self.groups,
            kernel_initializer=keras.initializers.VarianceScaling(
                1.0 / 3.0, "fan_in", "uniform"
            ),
            bias_initializer=_TorchBiasInit(fan_in),
            name="conv",
        )

    def build(self, input_shape):
        shape = list(input_shape)
        if self._pad:
            for i in (1, 2):
                shape[i] = None if shape[i] is None else shape[i] + 2 * self._pad
        self.conv.build(tuple(shape))

    def _small(self, x):
        """True when the output is small enough for :func:`conv2d_valid`'s matrix
        product."""
        h, w = x.shape[1], x.shape[2]
        if self.groups != 1 or h is None or w is None:
            return False
        out = (h + 2 * self.padding - self.kernel_size + 1) * (
            w + 2 * self.padding - self.kernel_size + 1
        )
        return out <= IM2COL_MAX_POSITIONS

    def call(self, x):
        if self._small(x):
            if not self.conv.built:
                self.conv.build(x.shape)
            return self.folded_call(x, None, None)
        if self._pad:
            p = self._pad
            x = tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]])
        return self.conv(x)

    def folded_call(self, x, scale, shift):
        """``conv(x) * scale + shift`` as a single convolution (eval-mode batch norm
        folded in: one pass over the output instead of three, and TF fuses conv + bias +
        ReLU). ``scale=None``: the plain convolution ``conv(x)``."""
        if not self.built:
            self.build(x.shape)
        x = tf.cast(x, self.conv.compute_dtype)
        kernel = tf.cast(self.conv.kernel, tf.float32)
        bias = tf.cast(self.conv.bias, tf.float32)
        if scale is not None:
            kernel = kernel * scale
            bias = bias * scale + shift
        kernel = tf.cast(kernel, x.dtype)
        if self._small(x):
            p = self.padding
            if p:
                x = tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]])
            out = conv2d_valid(x, kernel)
        else:
            if self._pad:
                p = self._pad
                x = tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]])
            mode = "SAME" if (self.padding and not self._pad) else "VALID"
            out = tf.nn.conv2d(x, kernel, 1, mode)
        return tf.nn.bias_add(out, tf.cast(bias, x.dtype))

    def torch_variables(self, prefix=""):
        return {
            _join(prefix, "weight"): (self.conv.kernel, CONV),
            _join(prefix, "bias"): (self.conv.bias, PLAIN),
        }


class ResBlock2d(BuildOnFirstCall, keras.layers.Layer, TorchNamed):
    """Pre-activation residual block: BN -> ReLU -> conv -> BN -> ReLU -> conv, ``+ x``.

    ``(B, H, W, C) -> (B, H, W, C)``.
    """

    def __init__(self, in_features, kernel_size, padding, **kwargs):
        super().__init__(**kwargs)
        self.conv1 = Conv2d(
            in_features, in_features, kernel_size, padding, name="conv1"
        )
        self.conv2 = Conv2d(
            in_features, in_features, kernel_size, padding, name="conv2"
        )
        self.norm1 = BatchNorm2d(name="norm1")
        self.norm2 = BatchNorm2d(name="norm2")

    def call(self, x, training=False):
        out = tf.nn.relu(self.norm1(x, training=training))
        if training:
            out = self.norm2(self.conv1(out), training=True)
        else:
            if not self.norm2.built:
                self.norm2.build(tuple(x.shape[:-1]) + (self.conv1.out_features,))
            out = self.conv1.folded_call(out, *self.norm2.inference_scale_shift())
        out = self.conv2(tf.nn.relu(out))
        return out + x

    def torch_variables(self, prefix=""):
        d = {}
        for name in ("conv1", "conv2", "norm1", "norm2"):
            d.update(getattr(self, name).torch_variables(_join(prefix, name)))
        return d


class _ConvNormBlock(BuildOnFirstCall, keras.layers.Layer, TorchNamed):
    def __init__(
        self, in_features, out_features, kernel_size=3, padding=1, groups=1, **kwargs
    ):
        super().__init__(**kwargs)
        self.conv = Conv2d(
            in_features, out_features, kernel_size, padding, groups, name="conv"
        )
        self.norm = BatchNorm2d(name="norm")

    def _norm_scale_shift(self):
        if not self.norm.built:
            self.norm.build((None, None, None, self.conv.out_features))
        return self.norm.inference_scale_shift()

    def conv_norm(self, x, training=False):
        """``norm(conv(x))``; in eval mode the batch norm is folded into the
        convolution."""
        if training or self.conv.groups != 1:
            return self.norm(self.conv(x), training=training)
        return self.conv.folded_call(x, *self._norm_scale_shift())

    def torch_variables(self, prefix=""):
        return {
            **self.conv.torch_variables(_join(prefix, "conv")),
            **self.norm.torch_variables(_join(prefix, "norm")),
        }


class UpBlock2d(_ConvNormBlock):
    """Nearest x2 upsampling -> conv -> BN -> ReLU.
    ``(B, H, W, Cin) -> (B, 2H, 2W, Cout)``."""

    # Below this many input positions the sub-pixel kernels cost more to build (and to
    # differentiate: four 2x2 kernels from the 3x3 one, 4x its size) than the FLOPs they
    # save; the hourglasses' 2x2-8x8 levels with 512-2048 channels upsample and convolve
    # instead.
    SUBPIXEL_MIN_POSITIONS = 256

    def call(self, x, training=False):
        h, w = x.shape[1], x.shape[2]
        if (
            self.conv.kernel_size == 3
            and self.conv.padding == 1
            and self.conv.groups == 1
            and (h is None or w is None or h * w >= self.SUBPIXEL_MIN_POSITIONS)
        ):
            if training:
                out = self.norm(self._upsample_conv_subpixel(x), training=True)
            else:
                out = self._upsample_conv_subpixel(x, *self._norm_scale_shift())
        else:
            # F.interpolate(scale_factor=2) (nearest) = exact pixel repetition.
            out = self.conv_norm(
                tf.repeat(tf.repeat(x, 2, axis=1), 2, axis=2), training=training
            )
        return tf.nn.relu(out)

    def _upsample_conv_subpixel(self, x, scale=None, shift=None):
        """``conv3x3(nearest_up2(x))`` without materialising the upsampled image.

        Each output pixel ``(2i + a, 2j + b)`` only sees ``x`` at rows ``{i-1, i}`` (a =
        0) or ``{i, i+1}`` (a = 1), and likewise for columns, because neighbouring
        upsampled pixels repeat the same input pixel. So the 3x3 kernel collapses to
        four 2x2 kernels (the taps that fall on the same input pixel summed): 16 instead
        of 36 multiply-adds per input pixel and output channel, the same function (up to
        float rounding, ~1e-7).
        """
        if not self.conv.built:
            self.conv.build(x.shape)
        x = tf.cast(x, self.conv.conv.compute_dtype)
        w = tf.cast(self.conv.conv.kernel, tf.float32)  # (3, 3, Cin, Cout)
        bias = tf.cast(self.conv.conv.bias, tf.float32)
        if scale is not None:  # eval-mode batch norm folded in
            w = w * scale
            bias = bias * scale + shift
        w = tf.cast(w, x.dtype)
        cout = self.conv.out_features
        # collapse rows: a=0 -> taps on x rows (i-1, i); a=1 -> (i, i+1)
        rows = [
            tf.stack([w[0], w[1] + w[2]]),
            tf.stack([w[0] + w[1], w[2]]),
        ]  # each (2, 3, Cin, Cout)
        kernels = []
        for wa in rows:
            for b in (0, 1):
                cols = (
                    [wa[:, 0], wa[:, 1] + wa[:, 2]]
                    if b == 0
                    else [wa[:, 0] + wa[:, 1], wa[:, 2]]
                )
                kernels.append(tf.stack(cols, axis=1))  # (2, 2, Cin, Cout)
        kernel = tf.concat(
            kernels, axis=-1
        )  # (2, 2, Cin, 4 Cout), phases (0,0), (0,1), (1,0), (1,1)
        y = conv2d_valid(
            tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]]), kernel
        )  # (B, H+1, W+1, 4C)
        shape = tf.shape(x)
        b_, h, w_ = shape[0], shape[1], shape[2]
        y00 = y[:, :-1, :-1, 0 * cout : 1 * cout]
        y01 = y[:, :-1, 1:, 1 * cout : 2 * cout]
        y10 = y[:, 1:, :-1, 2 * cout : 3 * cout]
        y11 = y[:, 1:, 1:, 3 * cout : 4 * cout]
        row0 = tf.stack([y00, y01], axis=3)  # (B, H, W, 2, C): column 2j + b
        row1 = tf.stack([y10, y11], axis=3)
        out = tf.stack([row0, row1], axis=2)  # (B, H, 2, W, 2, C)
        out = tf.reshape(out, tf.stack([b_, 2 * h, 2 * w_, cout]))
        return out + tf.cast(bias, x.dtype)


class DownBlock2d(_ConvNormBlock):
    """Conv -> BN -> ReLU -> AvgPool2d(2) (floor).
    ``(B, H, W, Cin) -> (B, H//2, W//2, Cout)``."""

    def call(self, x, training=False):
        out = tf.nn.relu(self.conv_norm(x, training=training))
        return tf.nn.avg_pool2d(out, 2, 2, "VALID")


class SameBlock2d(_ConvNormBlock):
    """Conv -> BN -> ReLU at the same resolution.
    ``(B, H, W, Cin) -> (B, H, W, Cout)``."""

    def call(self, x, training=False):
        return tf.nn.relu(self.conv_norm(x, training=training))


class Encoder(BuildOnFirstCall, keras.layers.Layer, TorchNamed):
    """Hourglass encoder: ``num_blocks`` DownBlock2d, channels
    ``min(mf, be * 2**(i+1))``.

    Returns the list ``[x, d0(x), d1(d0(x)), ...]`` (``num_blocks + 1`` tensors), as the
    original.
    """

    def __init__(
        self, block_expansion, in_features, num_blocks=3, max_features=256, **kwargs
    ):
        super().__init__(**kwargs)
        self.down_blocks = [
            DownBlock2d(
                in_features if i == 0 else min(max_features, block_expansion * (2**i)),
                min(max_features, block_expansion * (2 ** (i + 1))),
                3,
                1,
                name=f"down_blocks_{i}",
            )
            for i in range(num_blocks)
        ]

    def call(self, x, training=False):
        outs = [x]
        for block in self.down_blocks:
            outs.append(block(outs[-1], training=training))
        return outs

    def torch_variables(self, prefix=""):
        return torch_list_variables(self.down_blocks, _join(prefix, "down_blocks"))


class Decoder(BuildOnFirstCall, keras.layers.Layer, TorchNamed):
    """Hourglass decoder: UpBlock2d from the deepest level, concatenating
    ``[up, skip]``.

    The concatenation order (upsampled features first, skip second) matters for weight
    porting. Output channels: ``block_expansion + in_features`` (:attr:`out_filters`).
    """

    def __init__(
        self, block_expansion, in_features, num_blocks=3, max_features=256, **kwargs
    ):
        super().__init__(**kwargs)
        self.up_blocks = []
        for j, i in enumerate(reversed(range(num_blocks))):
            in_filters = (1 if i == num_blocks - 1 else 2) * min(
                max_features, block_expansion * (2 ** (i + 1))
            )
            out_filters = min(max_features, block_expansion * (2**i))
            self.up_blocks.append(
                UpBlock2d(in_filters, out_filters, 3, 1, name=f"up_blocks_{j}")
            )
        self.out_filters = block_expansion + in_features

    def call(self, x, training=False):
        x = list(x)
        out = x.pop()
        for block in self.up_blocks:
            out = block(out, training=training)
            skip = x.pop()
            out = tf.concat([out, skip], axis=-1)
        return out

    def torch_variables(self, prefix=""):
        return torch_list_variables(self.up_blocks, _join(prefix, "up_blocks"))


class Hourglass(BuildOnFirstCall, keras.layers.Layer, TorchNamed):
    """U-Net ``Encoder`` + ``Decoder``. ``(B, H, W, in_features) -> (B, H, W,
    out_filters)``.

    H and W must be divisible by ``2**num_blocks``.
    """

    def __init__(
        self, block_expansion, in_features, num_blocks=3, max_features=256, **kwargs
    ):
        super().__init__(**kwargs)
        self.encoder = Encoder(
            block_expansion, in_features, num_blocks, max_features, name="encoder"
        )
        self.decoder = Decoder(
            block_expansion, in_features, num_blocks, max_features, name="decoder"
        )
        self.out_filters = self.decoder.out_filters

    def call(self, x, training=False):
        return self.decoder(self.encoder(x, training=training), training=training)

    def torch_variables(self, prefix=""):
        return {
            **self.encoder.torch_variables(_join(prefix, "encoder")),
            **self.decoder.torch_variables(_join(prefix, "decoder")),
        }


def anti_alias_kernel(scale: float) -> np.ndarray:
    """The normalised 2-D Gaussian of ``AntiAliasInterpolation2d`` for ``scale``
    (``(k, k)`` float32).

    ``sigma = (1/scale - 1)/2``, ``k = 2 round(4 sigma) + 1`` (Python's banker's
    rounding, as the original).
    """
    sigma = (1.0 / scale - 1.0) / 2.0
    k = 2 * round(sigma * 4) + 1
    grid = np.arange(k, dtype=np.float32)
    g = np.exp(-((grid - (k - 1) / 2.0) ** 2) / (2.0 * sigma**2)).astype(np.float32)
    kernel = g[:, None] * g[None, :]
    return (kernel / kernel.sum()).astype(np.float32)


class AntiAliasInterpolation2d(BuildOnFirstCall, keras.layers.Layer):
    """Gaussian blur (fixed kernel, zero padding) then keep pixels ``0, s, 2s, ...`` (s
    = 1/scale).

    ``(B, H, W, C) -> (B, ceil(H/s), ceil(W/s), C)``; identity for ``scale == 1``. The
    kernel is a constant (not a weight): it is fully determined by ``scale``. The
    original stores it as a buffer ``down.weight`` of shape ``(C, 1, k, k)``; the
    checkpoint converter checks it against :attr:`kernel` (a different ``scale_factor``
    in the config gives a different ``k``).

    The strided slicing ``out[:, ::s, ::s]`` of the original is done by the
    convolution's stride: the same values (a VALID depthwise conv with stride s on the
    padded input evaluates exactly the pixels 0, s, 2s, ...), without computing the s*s
    - 1 discarded outputs.
    """

    def __init__(self, channels, scale, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.scale = float(scale)
        if self.scale == 1.0:
            self.kernel = None
            return
        inv = 1.0 / self.scale
        if abs(inv - round(inv)) > 1e-6:
            raise ValueError(
                f"AntiAliasInterpolation2d: 1/scale must be an integer (the original "
                f"slices with step int(1/scale)), got scale={scale}."
            )
        self.stride = int(inv)
        self.kernel = anti_alias_kernel(self.scale)
        k = self.kernel.shape[0]
        self.ka = k // 2
        self.kb = self.ka - 1 if k % 2 == 0 else self.ka
        # depthwise filter (k, k, C, 1): the same kernel for every channel (groups=C in
        # torch).
        self._filter = np.tile(self.kernel[:, :, None, None], (1, 1, self.channels, 1))

    def call(self, x):
        if self.kernel is None:
            return x
        x = tf.pad(x, [[0, 0], [self.ka, self.kb], [self.ka, self.kb], [0, 0]])
        f = tf.constant(self._filter, dtype=x.dtype)
        s = self.stride
        return tf.nn.depthwise_conv2d(x, f, strides=[1, s, s, 1], padding="VALID")

    def torch_buffer_shape(self):
        """Shape of the original ``down.weight`` buffer, ``(C, 1, k, k)``."""
        k = self.kernel.shape[0]
        return (self.channels, 1, k, k)

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "scale": self.scale}
