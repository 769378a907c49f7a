"""Stage 10: animation -- from a trained (or converted) model to an animated video.

At test time FOMM animates a *source* image with the motion of a *driving* video:

1. the keypoint detector runs once on the source (``kp_source``) and on every driving frame
   (``kp_driving``);
2. :func:`normalize_kp` turns the driving keypoints into keypoints *for the source*: either the
   driving keypoints themselves (**absolute** motion: the source takes the driving object's
   shape) or the source keypoints moved by the driving motion since the first driving frame
   (**relative** motion: ``kp_source + (kp_driving - kp_driving_initial)``, the recommended mode);
3. the generator warps the source towards the normalised keypoints.

:func:`make_animation` does this for a whole video, batched over frames, with everything that
depends only on the source computed once. :func:`load_models` loads an original ``.pth.tar`` or
converted Keras weights; :func:`draw_keypoints` / :func:`side_by_side` make the visualisations;
:func:`run_cli` is ``fomm-tutorial animate``. Evaluation (reconstruction L1, keypoint metrics) is in
:mod:`fomm_tutorial.evaluation`.
"""

from __future__ import annotations

import os
import weakref
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

__all__ = [
    "normalize_kp",
    "convex_hull_area",
    "movement_scale",
    "prepare_image",
    "prepare_video",
    "make_animation",
    "load_models",
    "draw_keypoints",
    "side_by_side",
    "kp_colours",
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
def _to_float_rgb(array, what: str) -> np.ndarray:
    """``(..., H, W[, C])`` of any dtype -> float32 RGB in [0, 1] (grey repeated, alpha dropped)."""
    a = np.asarray(array)
    if a.dtype == np.uint8:
        a = a.astype(np.float32) / 255.0
    elif a.dtype == np.uint16:
        a = a.astype(np.float32) / 65535.0
    elif a.dtype == bool:
        a = a.astype(np.float32)
    elif np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float32)
    else:
        raise ValueError(
            f"{what}: unsupported dtype {a.dtype}; give float in [0, 1] or uint8."
        )
    if a.shape[-1] not in (1, 3, 4):
        raise ValueError(
            f"{what}: expected 1 (grey), 3 (RGB) or 4 (RGBA) channels in the last axis, "
            f"got shape {a.shape}."
        )
    channels = a.shape[-1]
    if channels == 1:
        a = np.repeat(a, 3, axis=-1)
    elif channels == 4:
        a = a[..., :3]  # drop alpha, as the original demo's `[..., :3]`
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{what} contains NaN or infinite values.")
    lo, hi = float(a.min(initial=0.0)), float(a.max(initial=0.0))
    if lo < -1e-3 or hi > 1 + 1e-3:
        raise ValueError(
            f"{what} has values in [{lo:.3g}, {hi:.3g}]; expected float32 in [0, 1] "
            "(divide uint8 images by 255)."
        )
    return np.clip(a, 0.0, 1.0)


def _resize(frames: np.ndarray, size) -> np.ndarray:
    """Resize ``(N, H, W, 3)`` to ``size = (h, w)`` with area-weighted bilinear (antialiased)."""
    h, w = int(size[0]), int(size[1])
    if frames.shape[1:3] == (h, w):
        return frames
    out = tf.image.resize(frames, (h, w), method="bilinear", antialias=True)
    return np.clip(out.numpy(), 0.0, 1.0).astype(np.float32)


def prepare_image(image, size=None) -> np.ndarray:
    """An image (H, W), (H, W, 1|3|4) or (1, H, W, C), any of float [0, 1] / uint8 -> (H, W, 3) float32.

    ``size = (h, w)`` resizes (the model's ``frame_shape[:2]``).
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
    if a.ndim == 2:
        a = a[..., None]  # greyscale
    a = _to_float_rgb(a, "source image")
    if size is not None:
        a = _resize(a[None], size)[0]
    return a


def prepare_video(frames, size=None) -> np.ndarray:
    """Driving frames (T, H, W[, C]) of float [0, 1] / uint8 -> (T, H, W, 3) float32, resized to ``size``."""
    a = np.asarray(frames)
    if a.ndim == 3:
        a = a[..., None]  # (T, H, W) greyscale video
    if a.ndim != 4 or a.shape[0] < 1 or min(a.shape[1:3]) < 2:
        raise ValueError(
            f"driving video: expected frames of shape (T, H, W, 3), got {a.shape}."
        )
    a = _to_float_rgb(a, "driving video")
    if size is not None:
        a = _resize(a, size)
    return a


# --------------------------------------------------------------------------------------------
# Animation
# --------------------------------------------------------------------------------------------
def _model_size(kp_detector, generator, fallback):
    for model in (generator, kp_detector):
        shape = getattr(model, "frame_shape", None)
        if shape is not None:
            return tuple(int(s) for s in shape[:2])
    return fallback


def _tile(kp, n):
    return {k: tf.repeat(v, n, axis=0) for k, v in kp.items() if v is not None}


def _kp_to_tensors(kp):
    return {
        k: tf.convert_to_tensor(v)
        for k, v in kp.items()
        if k in ("value", "jacobian") and v is not None
    }


_STEP_CACHE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _animation_step(kp_detector, generator, relative: bool, jit_compile: bool):
    """The compiled per-batch step for a pair of models (cached, so that animating many videos
    with the same models traces the graph once per batch shape).

    ``step(frames, source, kp_source, kp_driving_initial, scale, source_features)`` ->
    ``(prediction (B, H, W, 3), kp_driving, kp_norm)``.
    """
    try:
        per_generator = _STEP_CACHE.setdefault(generator, {})
    except TypeError:  # not weak-referenceable: no caching
        per_generator = {}
    key = (id(kp_detector), relative, jit_compile)
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
):
    """Animate ``source_image`` with the motion of ``driving_frames`` (the original ``demo.make_animation``).

    Args:
      source_image: ``(H, W, 3)`` (or ``(1, H, W, 3)``) float32 in [0, 1] (uint8, grey and RGBA
        are converted).
      driving_frames: ``(T, H, W, 3)`` float32 in [0, 1], same size as the source.
      kp_detector, generator: the models (``kp_detector(images, training=False)``,
        ``generator(source, kp_source=..., kp_driving=..., training=False)``).
      relative: relative keypoint movement and relative Jacobians (``use_relative_movement`` and
        ``use_relative_jacobian``); ``False`` = absolute keypoints.
      adapt_scale: scale the relative movement by the convex-hull size ratio (``adapt_movement_scale``).
      batch_size: driving frames per forward pass. The source keypoints, the movement scale and
        (where the generator exposes ``encode_source``) the source's encoder features are
        computed once.
      progress: show a tqdm progress bar (turn off in notebooks compared by nbval).
      return_keypoints: also return ``{"kp_source", "kp_driving", "kp_norm"}`` (NumPy arrays,
        ``kp_driving``/``kp_norm`` with T rows).
      jit_compile: compile the per-batch step with XLA (default: on a GPU only; on a CPU XLA is
        slower than TensorFlow's oneDNN kernels for these convolutions).

    Returns:
      ``(T, H, W, 3)`` float32 predictions in [0, 1] (and the keypoints dict when asked).
    """
    source = prepare_image(source_image)
    driving = prepare_video(driving_frames)
    if driving.shape[1:3] != source.shape[:2]:
        raise ValueError(
            f"source image {source.shape[:2]} and driving frames {driving.shape[1:3]} "
            "differ in size; resize both to the model's frame_shape (prepare_image/"
            "prepare_video with size=..., or media.read_* with size=...)."
        )
    batch_size = int(batch_size)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    num_frames = driving.shape[0]

    source_t = tf.convert_to_tensor(source[None])
    kp_source = _kp_to_tensors(kp_detector(source_t, training=False))
    kp_driving_initial = _kp_to_tensors(
        kp_detector(tf.convert_to_tensor(driving[:1]), training=False)
    )
    scale = (
        movement_scale(kp_source, kp_driving_initial)
        if (relative and adapt_scale)
        else 1.0
    )

    encode = getattr(generator, "encode_source", None)
    source_features = encode(source_t, training=False) if callable(encode) else None
    if jit_compile is None:
        jit_compile = bool(tf.config.list_physical_devices("GPU"))
    step_fn = _animation_step(kp_detector, generator, bool(relative), bool(jit_compile))
    scale_t = tf.constant(scale, tf.float32)

    predictions, kps_driving, kps_norm = [], [], []
    starts = range(0, num_frames, batch_size)
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=num_frames, desc="animate", unit="frame")
    for start in starts:
        frames = tf.convert_to_tensor(driving[start : start + batch_size])
        pred, kp_d, kp_n = step_fn(
            frames, source_t, kp_source, kp_driving_initial, scale_t, source_features
        )
        predictions.append(np.asarray(pred, dtype=np.float32))
        if return_keypoints:
            kps_driving.append({k: v.numpy() for k, v in kp_d.items()})
            kps_norm.append(
                {k: v.numpy() for k, v in kp_n.items() if k in ("value", "jacobian")}
            )
        if progress:
            bar.update(int(frames.shape[0]))
    if progress:
        bar.close()
    result = np.clip(np.concatenate(predictions, axis=0), 0.0, 1.0)
    if not return_keypoints:
        return result

    def cat(parts):
        return {k: np.concatenate([p[k] for p in parts], axis=0) for k in parts[0]}

    keypoints = {
        "kp_source": {k: v.numpy() for k, v in kp_source.items()},
        "kp_driving": cat(kps_driving),
        "kp_norm": cat(kps_norm),
        "scale": scale,
    }
    return result, keypoints


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------
def _resolve_config(config):
    if isinstance(config, dict):
        return config
    try:
        from fomm_tutorial.config import load_config
    except ImportError:  # pragma: no cover - the config module ships with the package
        from fomm_tutorial.checkpoint import _as_config as load_config
    return load_config(config)


def load_models(config, checkpoint):
    """The keypoint detector and generator of ``config`` with the weights of ``checkpoint``.

    Args:
      config: a config dict, a YAML path, or the name of a shipped config (``"vox-256"``).
      checkpoint: an original ``.pth.tar`` (read with :func:`fomm_tutorial.checkpoint.load_original_checkpoint`),
        a folder written by ``fomm-tutorial convert`` (``kp_detector.weights.h5``,
        ``generator.weights.h5``), or one of those ``.weights.h5`` files (its sibling is used).

    Returns:
      ``{"kp_detector", "generator", "discriminator", "config"}`` (models in inference use:
      call them with ``training=False``).
    """
    from fomm_tutorial import checkpoint as ckpt

    config = _resolve_config(config)
    path = Path(checkpoint)
    if not path.exists():
        raise FileNotFoundError(
            f"checkpoint {path} does not exist: give an original .pth.tar or the "
            "folder written by `fomm-tutorial convert`."
        )
    name = path.name
    if path.is_dir() or name.endswith(".weights.h5"):
        folder = path if path.is_dir() else path.parent
        missing = [
            f
            for f in ("kp_detector.weights.h5", "generator.weights.h5")
            if not (folder / f).exists()
        ]
        if missing:
            raise FileNotFoundError(
                f"{folder} lacks {', '.join(missing)}: converted weights are a folder "
                "with kp_detector.weights.h5 and generator.weights.h5 "
                "(`fomm-tutorial convert CKPT --config C --out FOLDER`)."
            )
        models = dict(ckpt.build_models(config))
        for key in ("kp_detector", "generator"):
            try:
                models[key].load_weights(str(folder / f"{key}.weights.h5"))
            except ValueError as exc:
                raise ValueError(
                    f"{folder / (key + '.weights.h5')} does not fit the config's {key} "
                    f"(was it converted with another config?): {exc}"
                ) from exc
        disc = folder / "discriminator.weights.h5"
        if disc.exists() and "discriminator" in models:
            try:
                models["discriminator"].load_weights(str(disc))
            except ValueError:
                pass  # as the original load_cpk: a discriminator that doesn't fit is re-initialised
    elif name.endswith((".pth.tar", ".pth", ".pt", ".tar", ".ckpt")):
        models = dict(ckpt.load_original_checkpoint(str(path), config))
    else:
        raise ValueError(
            f"checkpoint {path}: expected an original .pth.tar, a converted folder, or a "
            ".weights.h5 file from `fomm-tutorial convert`."
        )
    models["config"] = config
    return models


# --------------------------------------------------------------------------------------------
# Visualisation
# --------------------------------------------------------------------------------------------
def kp_colours(num_kp: int, colormap: str = "gist_rainbow") -> np.ndarray:
    """``(K, 3)`` RGB colours ``colormap(k / K)``, as the original Visualizer."""
    import matplotlib

    cmap = matplotlib.colormaps[colormap]
    return np.array([cmap(k / num_kp)[:3] for k in range(num_kp)], dtype=np.float32)


def draw_keypoints(
    image, kp_value, kp_size: int = 5, colormap: str = "gist_rainbow"
) -> np.ndarray:
    """Draw keypoints on a copy of ``(H, W, 3)`` ``image`` as filled disks (``skimage.draw.disk``).

    ``kp_value`` is ``(K, 2)`` in [-1, 1], (x, y); the disk centre is pixel ``size * (kp + 1) / 2``
    (row from y, column from x) as the original Visualizer.
    """
    from skimage.draw import disk

    image = np.array(image, dtype=np.float32, copy=True)
    kp = np.asarray(kp_value, dtype=np.float64).reshape(-1, 2)
    h, w = image.shape[:2]
    colours = kp_colours(len(kp), colormap)
    for k, (x, y) in enumerate(kp):
        col, row = w * (x + 1) / 2, h * (y + 1) / 2
        rr, cc = disk((row, col), kp_size, shape=(h, w))
        image[rr, cc] = colours[k]
    return image


def side_by_side(
    source,
    driving,
    prediction,
    kp_source=None,
    kp_driving=None,
    kp_norm=None,
    kp_size: int = 5,
    colormap: str = "gist_rainbow",
    border: int = 2,
) -> np.ndarray:
    """Frames ``source | driving | prediction`` with keypoints drawn where given.

    Args:
      source: ``(H, W, 3)``; driving, prediction: ``(T, H, W, 3)``.
      kp_source: ``(1|K, ..)`` source keypoint values ``(K, 2)`` or ``(1, K, 2)``.
      kp_driving, kp_norm: ``(T, K, 2)`` keypoint values drawn on driving / prediction.

    Returns:
      ``(T, H, 3 W + 2 border, 3)`` float32.
    """
    source = prepare_image(source)
    driving = prepare_video(driving)
    prediction = prepare_video(prediction)
    if not (len(driving) == len(prediction)):
        raise ValueError(
            f"driving ({len(driving)}) and prediction ({len(prediction)}) frame counts differ."
        )
    h, w = source.shape[:2]
    if driving.shape[1:3] != (h, w) or prediction.shape[1:3] != (h, w):
        raise ValueError(
            "source, driving and prediction must have the same frame size."
        )
    if kp_source is not None:
        source = draw_keypoints(
            source, np.asarray(kp_source).reshape(-1, 2), kp_size, colormap
        )
    sep = np.ones((h, border, 3), np.float32)
    frames = []
    for t in range(len(driving)):
        d, p = driving[t], prediction[t]
        if kp_driving is not None:
            d = draw_keypoints(d, np.asarray(kp_driving)[t], kp_size, colormap)
        if kp_norm is not None:
            p = draw_keypoints(p, np.asarray(kp_norm)[t], kp_size, colormap)
        frames.append(np.concatenate([source, sep, d, sep, p], axis=1))
    return np.stack(frames)


def animation_figure(videos, titles=None, fps: float = 10, scale: float = 2.5):
    """A matplotlib ``FuncAnimation`` showing equally long ``(T, H, W, 3)`` videos side by side.

    Use ``HTML(anim.to_jshtml())`` in a notebook (mark that cell ``# NBVAL_IGNORE_OUTPUT``: the
    HTML embeds random ids). The figure is closed so it is not shown a second time.
    """
    import matplotlib.pyplot as plt
    from matplotlib import animation as mpl_animation

    videos = [np.asarray(v) for v in videos]
    num = len(videos[0])
    if any(len(v) != num for v in videos):
        raise ValueError("all videos must have the same number of frames.")
    fig, axes = plt.subplots(
        1, len(videos), figsize=(scale * len(videos), scale), squeeze=False
    )
    images = []
    for i, (ax, v) in enumerate(zip(axes[0], videos)):
        images.append(ax.imshow(np.clip(v[0], 0, 1)))
        ax.set_axis_off()
        if titles:
            ax.set_title(titles[i])
    fig.tight_layout()

    def update(t):
        for im, v in zip(images, videos):
            im.set_data(np.clip(v[t], 0, 1))
        return images

    anim = mpl_animation.FuncAnimation(
        fig, update, frames=num, interval=1000 / fps, blit=True
    )
    plt.close(fig)
    return anim


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------
def run_cli(args) -> int:
    """``fomm-tutorial animate``: source image + driving video -> animated video."""
    from fomm_tutorial import media

    for what, p in (("--source", args.source), ("--driving", args.driving)):
        if not Path(p).exists():
            raise FileNotFoundError(f"{what} {p} does not exist.")
    out = Path(args.out)
    if out.suffix.lower() not in (".mp4", ".gif"):
        raise ValueError(f"--out {out}: the output must end in .mp4 or .gif.")
    models = load_models(args.config, args.checkpoint)
    size = tuple(int(s) for s in models["config"]["dataset_params"]["frame_shape"][:2])
    source = prepare_image(media.read_image(args.source, size=size), size)
    driving = prepare_video(media.read_video(args.driving, size=size), size)
    fps = args.fps
    if fps is None:
        try:
            fps = media.video_fps(args.driving)
        except Exception:  # folders of frames / formats without a frame rate
            fps = None
        fps = fps or 25
    batch_size = getattr(args, "batch_size", 8) or 8
    prediction, kps = make_animation(
        source,
        driving,
        models["kp_detector"],
        models["generator"],
        relative=args.relative,
        adapt_scale=args.adapt_scale,
        batch_size=batch_size,
        progress=True,
        return_keypoints=True,
    )
    if getattr(args, "side_by_side", False):
        prediction = side_by_side(
            source,
            driving,
            prediction,
            kp_source=kps["kp_source"]["value"][0],
            kp_driving=kps["kp_driving"]["value"],
            kp_norm=kps["kp_norm"]["value"],
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    media.write_video(str(out), prediction, fps=fps)
    print(
        f"wrote {out} ({len(prediction)} frames, {prediction.shape[2]}x{prediction.shape[1]}, {fps:g} fps)"
    )
    return 0
