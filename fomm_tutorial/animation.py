"""Animation: from a trained (or converted) model to an animated video.

Explained in chapter 10 (book/10_animation.ipynb).

At test time FOMM animates a *source* image with the motion of a *driving* video:

1. the keypoint detector runs once on the source (``kp_source``) and on every driving frame
   (``kp_driving``);
2. :func:`normalize_kp` turns the driving keypoints into keypoints *for the source*: either the
   driving keypoints themselves (**absolute** motion: the source takes the driving object's
   shape) or the source keypoints moved by the driving motion since the first driving frame
   (**relative** motion: ``kp_source + (kp_driving - kp_driving_initial)``, the recommended mode
   and the default of both :func:`make_animation` and ``fomm-tutorial animate``);
3. the generator warps the source towards the normalised keypoints.

:func:`make_animation` does this for a whole video, batched over frames, with everything that
depends only on the source computed once; with ``best_frame`` every frame's motion is measured
from that driving frame, which is what the original demo's ``--find_best_frame`` computes by
animating forwards to the end and backwards to the start (:func:`find_best_frame` picks the
frame with the model's own keypoint detector). :class:`Animator` is the same work batch by batch on a stream of driving frames
(memory does not grow with the video's length); :func:`load_models` loads an original
``.pth.tar`` or converted Keras weights; :func:`run_cli` is ``fomm-tutorial animate``, which
streams: frames are decoded, animated and encoded batch by batch. Images are normalised by
:func:`fomm_tutorial.media.to_float_rgb`, keypoints drawn by :mod:`fomm_tutorial.visualization`,
evaluation (reconstruction L1, keypoint metrics) is in :mod:`fomm_tutorial.evaluation`.
"""

from __future__ import annotations

import math
import os
import re
import warnings
import weakref
from pathlib import Path
from typing import Iterator, NamedTuple

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from fomm_tutorial import media  # noqa: E402
from fomm_tutorial.config import load_config  # noqa: E402
from fomm_tutorial.visualization import side_by_side  # noqa: E402

__all__ = [
    "normalize_kp",
    "convex_hull_area",
    "movement_scale",
    "prepare_image",
    "prepare_video",
    "find_best_frame",
    "make_animation",
    "Animator",
    "AnimatedBatch",
    "batches",
    "load_models",
    "resolve_checkpoint",
    "run_cli",
]


# --------------------------------------------------------------------------------------------
# Keypoint normalisation
# --------------------------------------------------------------------------------------------
def convex_hull_area(points) -> float:
    """Area of the convex hull of ``(K, 2)`` points (scipy's 2-D ``ConvexHull.volume``).

    Raises ValueError when the hull is degenerate (fewer than 3 points, or all collinear), where
    the original would crash inside qhull.
    """
    from scipy.spatial import ConvexHull
    from scipy.spatial import QhullError

    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[-1] != 2 or points.shape[0] < 3:
        raise ValueError(
            f"convex_hull_area needs (K, 2) points with K >= 3, got shape {points.shape}; "
            "adapt_movement_scale needs at least 3 keypoints."
        )
    try:
        return float(ConvexHull(points).volume)
    except QhullError as exc:
        raise ValueError(
            "the keypoints are degenerate (collinear or coincident): their convex hull "
            "has no area, so adapt_movement_scale cannot be used. Use adapt_scale=False."
        ) from exc


def movement_scale(kp_source, kp_driving_initial) -> float:
    """``sqrt(area(hull(kp_source))) / sqrt(area(hull(kp_driving_initial)))`` on batch element 0.

    The ratio of the objects' linear sizes: relative motion measured on the driving object is
    multiplied by it before being applied to the source (``adapt_movement_scale``).
    """
    src = np.asarray(kp_source["value"])[0]
    ini = np.asarray(kp_driving_initial["value"])[0]
    return float(np.sqrt(convex_hull_area(src)) / np.sqrt(convex_hull_area(ini)))


def normalize_kp(
    kp_source,
    kp_driving,
    kp_driving_initial,
    adapt_movement_scale=False,
    use_relative_movement=False,
    use_relative_jacobian=False,
    scale=None,
):
    """Keypoints that drive the *source* image (the original ``animate.normalize_kp``).

    Args:
      kp_source: ``{"value": (1|B, K, 2), "jacobian": (1|B, K, 2, 2)}`` of the source image.
      kp_driving: keypoints of the driving frames, ``(B, K, 2)`` / ``(B, K, 2, 2)``.
      kp_driving_initial: keypoints of the first driving frame, ``(1|B, K, 2)`` / ``(1|B, K, 2, 2)``.
      adapt_movement_scale: multiply the relative movement by
        ``sqrt(hull_area(kp_source[0]) / hull_area(kp_driving_initial[0]))`` (batch element 0, as
        the original); no effect without ``use_relative_movement``.
      use_relative_movement: ``value = (kp_driving - kp_driving_initial) * scale + kp_source``;
        otherwise the driving keypoints are used as they are (absolute motion).
      use_relative_jacobian: with relative movement,
        ``jacobian = J_driving @ inv(J_driving_initial) @ J_source``.
      scale: a precomputed movement scale (skips the convex hulls; :func:`make_animation` computes
        it once per video).

    Returns:
      A new dict with ``value`` ``(B, K, 2)`` and (where given) ``jacobian`` ``(B, K, 2, 2)``;
      other entries of ``kp_driving`` are passed through (a shallow copy, as the original).
    """
    for name, kp in (
        ("kp_source", kp_source),
        ("kp_driving", kp_driving),
        ("kp_driving_initial", kp_driving_initial),
    ):
        if not isinstance(kp, dict) or "value" not in kp:
            raise ValueError(
                f"{name} must be a keypoint dict with a 'value' entry of shape (B, K, 2)."
            )
    if adapt_movement_scale and scale is None:
        scale = movement_scale(kp_source, kp_driving_initial)
    elif not adapt_movement_scale:
        scale = 1.0

    kp_new = dict(kp_driving)
    if use_relative_movement:
        value = tf.convert_to_tensor(kp_driving["value"])
        initial = tf.cast(kp_driving_initial["value"], value.dtype)
        source = tf.cast(kp_source["value"], value.dtype)
        kp_new["value"] = (value - initial) * tf.cast(scale, value.dtype) + source
        if use_relative_jacobian and kp_driving.get("jacobian") is not None:
            jac = tf.convert_to_tensor(kp_driving["jacobian"])
            jac_initial = tf.cast(kp_driving_initial["jacobian"], jac.dtype)
            jac_source = tf.cast(kp_source["jacobian"], jac.dtype)
            # tf.linalg.matmul broadcasts the batch dimensions (1 against B).
            jac_change = tf.linalg.matmul(jac, tf.linalg.inv(jac_initial))
            kp_new["jacobian"] = tf.linalg.matmul(jac_change, jac_source)
    return kp_new


# --------------------------------------------------------------------------------------------
# Input preparation
# --------------------------------------------------------------------------------------------
def prepare_image(image, size=None) -> np.ndarray:
    """An image ``(H, W)``, ``(H, W, 1|3|4)`` or ``(1, H, W, C)``, float in [0, 1] or uint8 ->
    ``(H, W, 3)`` float32 (:func:`fomm_tutorial.media.to_float_rgb`).

    ``size`` (an int or ``(h, w)``, e.g. the model's ``frame_shape[:2]``) resizes with
    :func:`fomm_tutorial.media.resize_frames` (refused beyond 4x enlargement, a warning
    when it stretches: :func:`fomm_tutorial.media.check_resize`).
    """
    a = np.asarray(image)
    if a.ndim == 4:
        if a.shape[0] != 1:
            raise ValueError(
                f"source image: expected one image (H, W, 3), got a batch of shape {a.shape}."
            )
        a = a[0]
    if a.ndim not in (2, 3) or min(a.shape[:2]) < 2:
        raise ValueError(
            f"source image: expected shape (H, W, 3) (or (H, W), (H, W, 4)), got {a.shape}."
        )
    return media.resize_frames(
        media.to_float_rgb(a, name="source image"), size, name="source image"
    )


def prepare_video(frames, size=None) -> np.ndarray:
    """Driving frames ``(T, H, W, 1|3|4)`` (or a grey ``(T, H, W)``), float in [0, 1] or uint8
    -> ``(T, H, W, 3)`` float32, resized to ``size`` when given.

    One frame ``(H, W, 3)`` is refused rather than read as H grey frames: give ``frame[None]``
    for a one-frame video.
    """
    a = np.asarray(frames)
    if a.ndim == 3 and a.shape[-1] in (3, 4):
        raise ValueError(
            f"driving video: got one frame of shape {a.shape}; a video is (T, H, W, 3). "
            "Give frame[None] for a one-frame video."
        )
    if a.ndim == 3:
        a = a[..., None]  # (T, H, W) greyscale video
    if a.ndim != 4 or a.shape[0] < 1 or min(a.shape[1:3]) < 2:
        raise ValueError(
            f"driving video: expected frames of shape (T, H, W, 3), got {a.shape}."
        )
    return media.resize_frames(
        media.to_float_rgb(a, name="driving video"), size, name="driving video"
    )


def _prepare_pair(source_image, driving_frames):
    source = prepare_image(source_image)
    driving = prepare_video(driving_frames)
    if driving.shape[1:3] != source.shape[:2]:
        raise ValueError(
            f"source image {source.shape[:2]} and driving frames {driving.shape[1:3]} "
            "differ in size; resize both to the model's frame_shape (prepare_image/"
            "prepare_video with size=..., or media.read_* with size=...)."
        )
    return source, driving


def _check_batch_size(batch_size) -> int:
    if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}.")
    return int(batch_size)


# --------------------------------------------------------------------------------------------
# Best frame
# --------------------------------------------------------------------------------------------
def _shape_of(kp_value) -> np.ndarray:
    """``(K, 2)`` keypoints centred and divided by the square root of their hull area."""
    centred = kp_value - kp_value.mean(axis=0, keepdims=True)
    return centred / np.sqrt(convex_hull_area(kp_value))


def find_best_frame(source_image, driving_frames, kp_detector, batch_size=8) -> int:
    """Index of the driving frame whose keypoint *shape* is closest to the source's.

    As the original demo's ``find_best_frame``, but with the model's own keypoint detector
    instead of a face-landmark detector (so it works for any object): each keypoint set
    ``(K, 2)`` is centred and divided by ``sqrt(convex hull area)`` (position and size removed),
    and the frame with the smallest sum of squared differences to the source's wins. Relative
    motion from that frame starts from the pose most like the source's.

    Args:
      source_image: ``(H, W, 3)``; driving_frames: ``(T, H, W, 3)`` of the same size, or
        an iterable of ``(B, H, W, 3)`` batches (:func:`batches`; read one at a time).
      kp_detector: ``kp_detector(images, training=False)["value"]`` -> ``(B, K, 2)``.
      batch_size: driving frames per detector call (for an array).

    Returns:
      the frame index in ``[0, T)``. Frames with degenerate keypoints (no hull area) are
      skipped; a ValueError is raised when the source's or every frame's are degenerate.
    """
    batch_size = _check_batch_size(batch_size)
    if isinstance(driving_frames, np.ndarray):
        source, driving = _prepare_pair(source_image, driving_frames)
        driving_batches = batches(driving, batch_size)
    else:
        source, driving_batches = prepare_image(source_image), driving_frames
    kp_source = np.asarray(kp_detector(source[None], training=False)["value"])[0]
    try:
        source_shape = _shape_of(kp_source.astype(np.float64))
    except ValueError as exc:
        raise ValueError(
            f"find_best_frame: the source keypoints are degenerate ({exc}); animate "
            "from the first frame instead."
        ) from None
    distances = []
    for batch in driving_batches:
        batch = prepare_video(batch)
        if batch.shape[1:3] != source.shape[:2]:
            _prepare_pair(source, batch)  # the one message for different sizes
        values = np.asarray(
            kp_detector(tf.convert_to_tensor(batch), training=False)["value"],
            np.float64,
        )
        for value in values:
            try:
                distances.append(float(np.sum((_shape_of(value) - source_shape) ** 2)))
            except ValueError:  # degenerate keypoints: this frame cannot be compared
                distances.append(math.inf)
    if not np.isfinite(distances).any():
        raise ValueError(
            "find_best_frame: every driving frame has degenerate keypoints; animate "
            "from the first frame instead."
        )
    return int(np.argmin(distances))


# --------------------------------------------------------------------------------------------
# Animation
# --------------------------------------------------------------------------------------------
def _tile(kp, n):
    return {k: tf.repeat(v, n, axis=0) for k, v in kp.items() if v is not None}


def _kp_to_tensors(kp):
    return {
        k: tf.convert_to_tensor(v)
        for k, v in kp.items()
        if k in ("value", "jacobian") and v is not None
    }


_STEP_CACHE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _animation_step(kp_detector, generator, relative, jit_compile, frame_size):
    """The compiled per-batch step for a pair of models and one frame size (cached, so that
    animating many videos with the same models traces the graph once per batch shape).

    One step per ``frame_size = (H, W)``: the networks build coordinate grids and kernels from
    static spatial sizes, and a single ``reduce_retracing`` function called at two frame sizes
    would retrace with unknown ``(None, None)`` sizes. Only the batch size may vary in a step.

    ``step(frames, source, kp_source, kp_driving_initial, scale, source_features)`` ->
    ``(prediction (B, H, W, 3), kp_driving, kp_norm)``.
    """
    try:
        per_generator = _STEP_CACHE.setdefault(generator, {})
    except TypeError:  # not weak-referenceable: no caching
        per_generator = {}
    key = (id(kp_detector), relative, jit_compile, tuple(frame_size))
    if key in per_generator:
        return per_generator[key]

    def step(frames, source, kp_source, kp_driving_initial, scale, source_features):
        kp_driving = _kp_to_tensors(kp_detector(frames, training=False))
        kp_norm = normalize_kp(
            kp_source,
            kp_driving,
            kp_driving_initial,
            adapt_movement_scale=relative,
            use_relative_movement=relative,
            use_relative_jacobian=relative,
            scale=scale,
        )
        if source_features is not None:
            # The generator's source-side work is done; a batch-1 source (and its keypoints) serves
            # the whole batch of driving keypoints without being copied.
            out = generator(
                source,
                kp_source=kp_source,
                kp_driving=kp_norm,
                training=False,
                source_features=source_features,
            )
        else:
            n = tf.shape(frames)[0]
            out = generator(
                tf.repeat(source, n, axis=0),
                kp_source=_tile(kp_source, n),
                kp_driving=kp_norm,
                training=False,
            )
        return out["prediction"], kp_driving, kp_norm

    fn = tf.function(step, jit_compile=jit_compile, reduce_retracing=True)
    per_generator[key] = fn
    return fn


class AnimatedBatch(NamedTuple):
    """One batch of an animation (:meth:`Animator.stream`); NumPy arrays, B frames."""

    driving: np.ndarray  # (B, H, W, 3) the driving frames, float32 in [0, 1]
    prediction: np.ndarray  # (B, H, W, 3) the animated source, float32 in [0, 1]
    kp_driving: dict  # {"value": (B, K, 2), "jacobian": (B, K, 2, 2)}
    kp_norm: dict  # the keypoints that drove the generator, same shapes


def _size_error(cause, hw) -> ValueError:
    """A frame size the networks cannot take, as one line (``cause``: an error or text)."""
    if isinstance(cause, Exception):
        # Keras and tf.function wrap the op's message ("ConcatOp : Dimension 1 in both
        # shapes must be equal ...") in lines of context and terminal colours.
        text = getattr(cause, "message", None) or str(cause)
        text = re.sub(r"\x1b\[[0-9;]*m", "", text)
        found = re.search(r"ValueError: ([^\n]+?)(?: for '|\n|$)", text) or re.search(
            r"\}\}\s*([^\n\[]+)", text
        )
        cause = found.group(1) if found else text.strip().splitlines()[0]
        cause = cause.strip().rstrip(".")
    return ValueError(
        f"the models cannot animate {hw[1]} x {hw[0]} frames ({cause}): this size does "
        "not fit their down-samplings; resize the source and driving frames to the "
        "model's frame_shape (media.read_image / read_video or prepare_image / "
        "prepare_video with size=config['dataset_params']['frame_shape'])."
    )


class Animator:
    """The source-side work of an animation, done once; then one call per driving batch.

    ::

        animator = Animator(source, driving_frame_0, kp_detector, generator)
        for batch in animator.stream(batches_of_driving_frames):  # (B, H, W, 3) each
            writer.write(batch.prediction)

    Args:
      source_image: ``(H, W, 3)`` float in [0, 1] or uint8 (:func:`prepare_image`).
      initial_frame: ``(H, W, 3)``, the driving frame that relative motion is measured
        from (the first frame, or the best one); its keypoints are ``kp_driving_initial``.
      kp_detector, generator, relative, adapt_scale, jit_compile: as :func:`make_animation`.

    Attributes ``kp_source`` (NumPy dict, batch 1) and ``scale`` (the movement scale).
    Only the batch being animated is held: memory does not grow with the video's length.
    """

    def __init__(
        self,
        source_image,
        initial_frame,
        kp_detector,
        generator,
        relative=True,
        adapt_scale=True,
        jit_compile=None,
    ):
        self.source = prepare_image(source_image)
        initial = prepare_video(np.asarray(initial_frame)[None])
        self.frame_hw = tuple(self.source.shape[:2])
        self._check_size(initial)
        if jit_compile is None:
            jit_compile = bool(tf.config.list_physical_devices("GPU"))
        relative = bool(relative)
        self._source_t = tf.convert_to_tensor(self.source[None])
        try:
            self._kp_source = _kp_to_tensors(
                kp_detector(self._source_t, training=False)
            )
            self._kp_initial = _kp_to_tensors(
                kp_detector(tf.convert_to_tensor(initial), training=False)
            )
        except tf.errors.InvalidArgumentError as exc:
            raise _size_error(exc, self.frame_hw) from None
        self.scale = (
            movement_scale(self._kp_source, self._kp_initial)
            if (relative and adapt_scale)
            else 1.0
        )
        self.kp_source = {k: v.numpy() for k, v in self._kp_source.items()}
        encode = getattr(generator, "encode_source", None)
        self._source_features = (
            encode(self._source_t, training=False) if callable(encode) else None
        )
        self._step = _animation_step(
            kp_detector, generator, relative, bool(jit_compile), self.frame_hw
        )
        self._scale_t = tf.constant(self.scale, tf.float32)

    def _check_size(self, frames):
        if frames.shape[1:3] != self.frame_hw:
            raise ValueError(
                f"source image {self.frame_hw} and driving frames {frames.shape[1:3]} "
                "differ in size; resize both to the model's frame_shape (prepare_image/"
                "prepare_video with size=..., or media.read_* with size=...)."
            )

    def __call__(self, frames) -> AnimatedBatch:
        """Animate ``(B, H, W, 3)`` driving frames -> :class:`AnimatedBatch`."""
        frames = prepare_video(frames)
        self._check_size(frames)
        try:
            pred, kp_d, kp_n = self._step(
                tf.convert_to_tensor(frames),
                self._source_t,
                self._kp_source,
                self._kp_initial,
                self._scale_t,
                self._source_features,
            )
        except (tf.errors.InvalidArgumentError, ValueError) as exc:
            # In the compiled step a shape error is found while tracing (a ValueError).
            raise _size_error(exc, self.frame_hw) from None
        prediction = np.clip(np.asarray(pred, dtype=np.float32), 0.0, 1.0)
        if prediction.shape[1:3] != self.frame_hw:
            h, w = prediction.shape[1:3]
            raise _size_error(f"they return {w} x {h} frames", self.frame_hw)
        return AnimatedBatch(
            frames,
            prediction,
            {k: v.numpy() for k, v in kp_d.items()},
            {k: v.numpy() for k, v in kp_n.items() if k in ("value", "jacobian")},
        )

    def stream(self, driving_batches) -> Iterator[AnimatedBatch]:
        """Animate an iterable of ``(B, H, W, 3)`` batches lazily: one batch is read,
        animated and handed on before the next is read."""
        for frames in driving_batches:
            yield self(frames)


def batches(frames, batch_size) -> Iterator[np.ndarray]:
    """Group an iterable of ``(H, W, 3)`` frames (e.g. :func:`media.iter_video`) or an array
    ``(T, H, W, 3)`` into ``(B, H, W, 3)`` arrays of ``batch_size`` frames (the last one
    shorter), reading no further ahead than one batch."""
    batch_size = _check_batch_size(batch_size)
    if isinstance(frames, np.ndarray):
        for start in range(0, len(frames), batch_size):
            yield frames[start : start + batch_size]
        return
    batch = []
    for frame in frames:
        batch.append(frame)
        if len(batch) == batch_size:
            yield np.stack(batch)
            batch = []
    if batch:
        yield np.stack(batch)


def make_animation(
    source_image,
    driving_frames,
    kp_detector,
    generator,
    relative=True,
    adapt_scale=True,
    batch_size=8,
    progress=True,
    return_keypoints=False,
    jit_compile=None,
    best_frame=None,
):
    """Animate ``source_image`` with the motion of ``driving_frames`` (the original ``demo.make_animation``).

    Args:
      source_image: ``(H, W, 3)`` (or ``(1, H, W, 3)``) float32 in [0, 1] (uint8, grey and RGBA
        are converted).
      driving_frames: ``(T, H, W, 3)`` float32 in [0, 1], same size as the source.
      kp_detector, generator: the models (``kp_detector(images, training=False)``,
        ``generator(source, kp_source=..., kp_driving=..., training=False)``).
      relative: relative keypoint movement and relative Jacobians (``use_relative_movement`` and
        ``use_relative_jacobian``); ``False`` = absolute keypoints. Default ``True``, as
        ``fomm-tutorial animate`` (``--no-relative`` turns it off).
      adapt_scale: scale the relative movement by the convex-hull size ratio
        (``adapt_movement_scale``). Default ``True``, as ``fomm-tutorial animate``.
      batch_size: driving frames per forward pass. The source keypoints, the movement scale and
        (where the generator exposes ``encode_source``) the source's encoder features are
        computed once.
      progress: show a tqdm progress bar (turn off in notebooks compared by nbval).
      return_keypoints: also return ``{"kp_source", "kp_driving", "kp_norm", "scale"}`` (NumPy
        arrays, ``kp_driving``/``kp_norm`` with T rows; ``"best_frame"`` when given).
      jit_compile: compile the per-batch step with XLA (default: on a GPU only; on a CPU XLA is
        slower than TensorFlow's oneDNN kernels for these convolutions).
      best_frame: ``None`` (motion relative to frame 0) or a frame index ``i`` (e.g. from
        :func:`find_best_frame`): every frame's motion is measured from frame ``i``, which is
        the original demo's forwards pass from ``i`` to the end joined to its backwards
        pass from ``i`` to the start (each frame depends only on itself and frame ``i``).

    Returns:
      ``(T, H, W, 3)`` float32 predictions in [0, 1] (and the keypoints dict when asked).
      The whole video is held in memory; :class:`Animator` streams batches instead (as
      ``fomm-tutorial animate`` does).
    """
    source, driving = _prepare_pair(source_image, driving_frames)
    batch_size = _check_batch_size(batch_size)
    num_frames = len(driving)
    if best_frame is not None:
        if isinstance(best_frame, bool) or int(best_frame) != best_frame:
            raise ValueError(f"best_frame must be a frame index, got {best_frame!r}.")
        best_frame = int(best_frame)
        if not 0 <= best_frame < num_frames:
            raise ValueError(
                f"best_frame {best_frame} is outside the driving video's frames "
                f"0..{num_frames - 1}."
            )
    animator = Animator(
        source,
        driving[best_frame or 0],
        kp_detector,
        generator,
        relative=relative,
        adapt_scale=adapt_scale,
        jit_compile=jit_compile,
    )
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=num_frames, desc="animate", unit="frame")
    parts = []
    try:
        for part in animator.stream(batches(driving, batch_size)):
            parts.append(part)
            if bar is not None:
                bar.update(len(part.prediction))
    finally:
        if bar is not None:
            bar.close()
    result = np.concatenate([part.prediction for part in parts], axis=0)
    if not return_keypoints:
        return result

    def cat(name):
        return {
            k: np.concatenate([getattr(part, name)[k] for part in parts], axis=0)
            for k in getattr(parts[0], name)
        }

    keypoints = {
        "kp_source": animator.kp_source,
        "kp_driving": cat("kp_driving"),
        "kp_norm": cat("kp_norm"),
        "scale": animator.scale,
    }
    if best_frame is not None:
        keypoints["best_frame"] = best_frame
    return result, keypoints


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------
_KERAS_WEIGHTS = ("kp_detector.weights.h5", "generator.weights.h5")
_TORCH_SUFFIXES = (".pth.tar", ".pth", ".pt", ".tar", ".ckpt")


def resolve_checkpoint(checkpoint) -> Path:
    """A checkpoint as ``--checkpoint`` takes it: a path, or a shipped model's name.

    An existing path (an original ``.pth.tar``, a folder or ``.weights.h5`` written by
    ``fomm-tutorial convert``) is returned as it is; ``"sprites-64"`` and the other names
    of :func:`fomm_tutorial.pretrained.list_pretrained` become their package folder.
    Anything else raises a one-line FileNotFoundError naming the shipped models.
    """
    from fomm_tutorial.pretrained import list_pretrained, pretrained_dir

    path = Path(checkpoint)
    if path.exists():
        return path
    if str(checkpoint) in list_pretrained():
        return pretrained_dir(str(checkpoint))
    shipped = ", ".join(list_pretrained()) or "none"
    raise FileNotFoundError(
        f"checkpoint {checkpoint} does not exist: give an original .pth.tar, a folder "
        f"written by `fomm-tutorial convert`, or a shipped model ({shipped})."
    )


def _checkpoint_kind(checkpoint):
    """``("keras", folder)`` or ``("torch", file)`` for a checkpoint (path or shipped name)."""
    path = resolve_checkpoint(checkpoint)
    if path.is_dir() or path.name.endswith(".weights.h5"):
        folder = path if path.is_dir() else path.parent
        missing = [f for f in _KERAS_WEIGHTS if not (folder / f).is_file()]
        if missing:
            raise FileNotFoundError(
                f"{folder} lacks {', '.join(missing)}: converted weights are a folder "
                "with kp_detector.weights.h5 and generator.weights.h5 "
                "(`fomm-tutorial convert CKPT --config C --out FOLDER`)."
            )
        return "keras", folder
    if path.name.endswith(_TORCH_SUFFIXES):
        return "torch", path
    raise ValueError(
        f"checkpoint {path}: expected an original .pth.tar, a converted folder, or a "
        ".weights.h5 file from `fomm-tutorial convert`."
    )


def _load_keras_weights(model, path: Path, name: str) -> None:
    try:
        model.load_weights(str(path))
    except OSError as exc:  # h5py: truncated file, not an HDF5 file, unreadable
        raise ValueError(
            f"{path} cannot be read ({str(exc).splitlines()[0]}): the file is damaged "
            "or incomplete; convert the checkpoint again (`fomm-tutorial convert`)."
        ) from None
    except ValueError as exc:
        raise ValueError(
            f"{path} does not fit the config's {name} (was it converted with another "
            f"config?): {str(exc).splitlines()[0] if str(exc) else exc!r}"
        ) from None


def load_models(config, checkpoint):
    """The keypoint detector and generator of ``config`` with the weights of ``checkpoint``.

    Args:
      config: a config dict, a YAML path, or the name of a shipped config (``"vox-256"``),
        resolved by :func:`fomm_tutorial.config.load_config`.
      checkpoint: an original ``.pth.tar`` (read with :func:`fomm_tutorial.checkpoint.load_original_checkpoint`),
        a folder written by ``fomm-tutorial convert`` (``kp_detector.weights.h5``,
        ``generator.weights.h5``), or one of those ``.weights.h5`` files (its sibling is used).

    Returns:
      ``{"kp_detector", "generator", "discriminator", "config"}`` (models in inference use:
      call them with ``training=False``). A missing, damaged or mismatching weights file raises
      a one-line FileNotFoundError / ValueError.
    """
    from fomm_tutorial.checkpoint import build_models, load_original_checkpoint

    config = load_config(config)
    kind, path = _checkpoint_kind(checkpoint)
    if kind == "keras":
        models = dict(build_models(config))
        for name in ("kp_detector", "generator"):
            _load_keras_weights(models[name], path / f"{name}.weights.h5", name)
        disc = path / "discriminator.weights.h5"
        if disc.exists() and "discriminator" in models:
            try:
                models["discriminator"].load_weights(str(disc))
            except (ValueError, OSError):
                pass  # as the original load_cpk: a discriminator that doesn't fit is re-initialised
    else:
        models = dict(load_original_checkpoint(str(path), config))
    models["config"] = config
    return models


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------
def _check_output(out) -> Path:
    """``--out`` names a new or writable ``.mp4``/``.gif`` file whose folder can be written."""
    out = Path(out)
    if out.is_dir():
        raise ValueError(
            f"--out {out} is a folder; give a file name inside it, e.g. {out / 'result.mp4'}."
        )
    if out.suffix.lower() not in (".mp4", ".gif"):
        raise ValueError(f"--out {out}: the output must end in .mp4 or .gif.")
    media.check_writable_folder(out.parent, f"--out {out}")
    if out.exists() and not os.access(out, os.W_OK):
        raise ValueError(f"--out {out} exists and is read-only; choose another name.")
    return out


def _check_cli_arguments(args):
    """Every ``animate`` argument that can be checked without reading files or models."""
    out = _check_output(args.out)
    fps = args.fps
    if fps is not None:
        try:
            media.check_fps(out, fps)
        except ValueError as exc:
            raise ValueError(f"--fps: {exc}") from None
    _check_batch_size(args.batch_size)
    if args.best_frame is not None and args.best_frame < 0:
        raise ValueError(f"--best-frame must be >= 0, got {args.best_frame}.")
    if args.best_frame is not None and args.find_best_frame:
        raise ValueError("give either --best-frame N or --find-best-frame, not both.")
    for what, path in (("--source", args.source), ("--driving", args.driving)):
        if not Path(path).exists():
            raise FileNotFoundError(f"{what} {path} does not exist.")
        # Also through another spelling of the path, a symbolic or a hard link.
        if out.exists() and os.path.samefile(out, path):
            raise ValueError(
                f"--out {args.out} is the {what} file {path}: writing the result would "
                "destroy it; choose another output name."
            )
    if Path(args.source).is_dir():
        raise ValueError(f"--source {args.source} is a folder; give an image file.")
    return out


def _output_fps(out: Path, args) -> float:
    """``--fps``, else the driving video's rate, brought into the output's range."""
    if args.fps is not None:
        return media.check_fps(out, args.fps)
    fps = media.video_fps(args.driving)
    kind = "gif" if out.suffix.lower() == ".gif" else "ffmpeg"
    lo, hi = media.FPS_RANGES[kind]
    if not lo <= fps <= hi:
        kept = min(max(fps, lo), hi)
        warnings.warn(
            f"--driving {args.driving} plays at {fps:g} fps, which {out} cannot store; "
            f"writing {kept:g} fps (give --fps to choose).",
            UserWarning,
            stacklevel=2,
        )
        fps = kept
    return fps


def _driving_frame(path, index, size):
    """Frame ``index`` of the driving video (decoding up to it), or a one-line error."""
    frame = None
    count = 0
    for count, frame in enumerate(
        media.iter_video(path, size=size, max_frames=index + 1), start=1
    ):
        pass
    if count <= index:
        raise ValueError(f"--best-frame {index}: the driving video has {count} frames.")
    return frame


def run_cli(args) -> int:
    """``fomm-tutorial animate``: source image + driving video -> animated video.

    Every argument (paths, output, numbers, config, checkpoint form, media) is checked before
    a model is built or a weight loaded. The driving video is decoded, animated and encoded
    batch by batch (:class:`Animator`, :class:`fomm_tutorial.media.VideoWriter`), so memory
    does not grow with its length; the result replaces ``--out`` only when it is complete.
    """
    from tqdm.auto import tqdm

    out = _check_cli_arguments(args)
    config = load_config(args.config)
    _checkpoint_kind(args.checkpoint)
    size = tuple(int(s) for s in config["dataset_params"]["frame_shape"][:2])
    fps = _output_fps(out, args)

    def driving_batches():
        return batches(media.iter_video(args.driving, size=size), args.batch_size)

    # The bar shows on a terminal only (not in logs), from the start, and is erased if
    # anything fails.
    bar = tqdm(desc="reading --source", unit="frame", disable=None)
    try:
        source = media.read_image(args.source, size=size)
        # Decoding the first frame (or the chosen one), then counting the frames, finds
        # unreadable media before any model is built. (While the total is unknown, tqdm
        # adds the ": " itself.)
        bar.set_description_str("reading --driving")
        initial = _driving_frame(args.driving, args.best_frame or 0, size)
        bar.total = media.count_frames(args.driving)
        bar.set_description("loading the model")
        models = load_models(config, args.checkpoint)
        kp_detector, generator = models["kp_detector"], models["generator"]
        best_frame = args.best_frame
        if args.find_best_frame:
            bar.set_description("finding the best frame")
            best_frame = find_best_frame(source, driving_batches(), kp_detector)
            initial = _driving_frame(args.driving, best_frame, size)
            tqdm.write(f"best frame: {best_frame}")
        animator = Animator(
            source,
            initial,
            kp_detector,
            generator,
            relative=args.relative,
            adapt_scale=args.adapt_scale,
        )
        bar.set_description("animate")
        shape = None
        with media.VideoWriter(out, fps=fps) as writer:
            for part in animator.stream(driving_batches()):
                frames = part.prediction
                if args.side_by_side:
                    frames = side_by_side(
                        source,
                        part.driving,
                        part.prediction,
                        kp_source=animator.kp_source["value"][0],
                        kp_driving=part.kp_driving["value"],
                        kp_norm=part.kp_norm["value"],
                    )
                writer.write(frames)
                shape = frames.shape
                bar.update(len(frames))
    except BaseException:
        bar.leave = False
        raise
    finally:
        bar.close()
    print(
        f"wrote {out} ({writer.frames_written} frames, {shape[2]}x{shape[1]}, "
        f"{fps:g} fps)"
    )
    return 0
