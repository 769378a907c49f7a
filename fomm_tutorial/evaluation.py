"""Evaluation: reconstruction loss and keypoint metrics.

Explained in chapter 10 (book/10_animation.ipynb).

* :func:`reconstruction` is the original ``reconstruction.py``: for every test video the
  first frame is the source, **every** frame (frame 0 included) is reconstructed from it
  with the keypoints detected on that frame (absolute motion), and the score is the mean
  L1 over all frames of all videos (frame-weighted, pixel values in [0, 1]). It also
  reports the L1 of the trivial answer "copy the first frame to every frame", the bar a
  model has to clear.
* :func:`keypoint_metrics` compares learned keypoints with ground-truth part positions
  (the sprite dataset has them, :mod:`fomm_tutorial.sprites`): learned keypoints are
  unsupervised, so keypoint ``k`` has no fixed meaning; each part is matched to one
  keypoint (Hungarian assignment on the mean distance), and **one** linear map from all
  keypoints to the parts, fitted on some frames and scored on others, measures how much
  of the pose they encode. The one home of the keypoint regression error and of the
  mean-position baseline.
* :func:`sharpness`: the variance of the Laplacian of the luminance, the usual focus
  measure; a blurry reconstruction scores below the real frames.
* :func:`average_keypoint_distance` (AKD) between keypoints detected on two sets of
  frames, e.g. on the reconstructions and on the real frames (the paper's AKD uses an
  external detector).
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

__all__ = [
    "reconstruction",
    "keypoint_metrics",
    "average_keypoint_distance",
    "detect_keypoints",
    "sharpness",
]


def reconstruction(
    videos,
    kp_detector,
    generator,
    batch_size: int = 8,
    progress: bool = False,
    return_predictions: bool = False,
    source=None,
):
    """Reconstruction L1 of each video from its first frame (the original's protocol).

    Args:
      videos: an iterable of ``(T, H, W, 3)`` float32 videos in [0, 1] (or one such
        array, or a ``(N, T, H, W, 3)`` array).
      kp_detector, generator: the models.
      batch_size: frames per forward pass (results do not depend on it).
      progress: tqdm bar over the videos.
      return_predictions: also return the reconstructed videos.
      source: ``(H, W, 3)``: reconstruct every video from this frame instead of its
        own first frame (held-out frames of a clip from a training frame of the same
        clip); ``l1_copy_first`` is then the L1 of copying ``source``.

    Returns:
      dict: ``l1`` (mean over all frames of all videos: frame-weighted, as the
      original's printed "Reconstruction loss"), ``per_video`` ``(N,)`` mean L1 of each
      video, ``per_frame`` list of ``(T_i,)`` arrays, ``num_frames``, ``l1_copy_first``
      (the same frame-weighted mean for copying each video's first frame to every frame:
      a model must do better than that); ``predictions`` (list of ``(T_i, H, W, 3)``)
      when asked.
    """
    from fomm_tutorial.animation import make_animation, prepare_image, prepare_video

    if isinstance(videos, np.ndarray) and videos.ndim == 4:
        videos = [videos]
    videos = list(videos)
    if not videos:
        raise ValueError("reconstruction needs at least one video (T, H, W, 3).")
    iterator = videos
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(videos, desc="reconstruction", unit="video")
    per_frame, copy_first, predictions = [], [], []
    if source is not None:
        source = prepare_image(source)
    for video in iterator:
        video = prepare_video(video)
        first = video[0] if source is None else source
        pred = make_animation(
            first,
            video,
            kp_detector,
            generator,
            relative=False,
            adapt_scale=False,
            batch_size=batch_size,
            progress=False,
        )
        per_frame.append(
            np.mean(np.abs(pred.astype(np.float64) - video), axis=(1, 2, 3))
        )
        copy_first.append(
            np.mean(np.abs(video.astype(np.float64) - first[None]), axis=(1, 2, 3))
        )
        if return_predictions:
            predictions.append(pred)
    all_frames = np.concatenate(per_frame)
    result = {
        "l1": float(all_frames.mean()),
        "per_video": np.array([f.mean() for f in per_frame]),
        "per_frame": per_frame,
        "num_frames": int(all_frames.size),
        "l1_copy_first": float(np.concatenate(copy_first).mean()),
    }
    if return_predictions:
        result["predictions"] = predictions
    return result


def detect_keypoints(frames, kp_detector, batch_size: int = 16) -> np.ndarray:
    """Keypoint values ``(N, K, 2)`` of ``(N, H, W, 3)`` frames, batched."""
    import tensorflow as tf

    frames = np.asarray(frames, np.float32)
    values = [
        np.asarray(
            kp_detector(
                tf.convert_to_tensor(frames[i : i + batch_size]), training=False
            )["value"]
        )
        for i in range(0, len(frames), batch_size)
    ]
    return np.concatenate(values).astype(np.float32)


def _check_kp(name, kp):
    kp = np.asarray(kp, np.float64)
    if kp.ndim != 3 or kp.shape[-1] != 2:
        raise ValueError(
            f"{name}: expected keypoints of shape (N, K, 2) in [-1, 1], got {kp.shape}."
        )
    return kp


def average_keypoint_distance(kp_a, kp_b, image_size=None) -> float:
    """Mean Euclidean distance between corresponding keypoints ``(N, K, 2)``.

    In normalised units, or in pixels when ``image_size`` (the side length) is given
    (``1`` unit = ``(size - 1) / 2`` pixels: -1 and 1 are the centres of the border
    pixels).
    """
    a, b = _check_kp("kp_a", kp_a), _check_kp("kp_b", kp_b)
    if a.shape != b.shape:
        raise ValueError(
            f"average_keypoint_distance: shapes differ, {a.shape} vs {b.shape}."
        )
    d = float(np.linalg.norm(a - b, axis=-1).mean())
    return d * (image_size - 1) / 2 if image_size else d


def _as_videos(name, kp):
    """A list of ``(T_i, K, 2)`` arrays from one ``(N, K, 2)`` array or from a list."""
    if isinstance(kp, np.ndarray) or (
        isinstance(kp, (list, tuple)) and len(kp) and np.ndim(kp[0]) == 2
    ):
        return [_check_kp(name, kp)]
    videos = [_check_kp(f"{name}[{i}]", v) for i, v in enumerate(kp)]
    if not videos:
        raise ValueError(f"{name}: no videos (give (N, K, 2) or a list of (T, K, 2)).")
    return videos


def _split(n, fit_fraction):
    """Fit and score frame slices of one video of ``n`` frames (first / second part)."""
    if n < 4:  # too short to split: fit and score on all frames
        return slice(0, n), slice(0, n)
    n_fit = min(max(int(round(n * fit_fraction)), 2), n - 1)
    return slice(0, n_fit), slice(n_fit, n)


def _design(kp):
    """``[kp, 1]`` rows ``(N, 2K + 1)``: an affine map of all keypoint coordinates."""
    return np.concatenate([kp.reshape(len(kp), -1), np.ones((len(kp), 1))], axis=1)


def keypoint_metrics(
    kp_pred,
    kp_true,
    image_size=None,
    fit_fraction: float = 0.5,
    fit_pred=None,
    fit_true=None,
) -> dict:
    """How well learned keypoints track ground-truth parts.

    Args:
      kp_pred: learned keypoints in [-1, 1]: ``(N, K, 2)`` for the N frames of one
        video, or a list with one ``(T_i, K, 2)`` array per video.
      kp_true: ground-truth part positions in the same coordinates and layout:
        ``(N, P, 2)`` or a list of ``(T_i, P, 2)``.
      image_size: side length in pixels to also report the errors in pixels
        (``1`` unit = ``(image_size - 1) / 2`` pixels).
      fit_fraction: without ``fit_pred``: **one** linear map for all videos, fitted on
        the first ``fit_fraction`` of the frames of **every** video and scored on the
        rest of every video (a video of fewer than 4 frames is used whole for both).
      fit_pred, fit_true: instead, fit the map on these frames (e.g. a training split,
        same layouts as ``kp_pred``/``kp_true``) and score it on all frames of
        ``kp_pred``.

    Returns:
      dict with
      ``assignment`` (P,) the keypoint matched to each part (Hungarian assignment
      minimising the summed mean distance over all frames; with K < P only K parts are
      matched, the others get -1),
      ``matched_error`` the mean distance of matched keypoint/part pairs,
      ``regression_error`` the mean distance on the scored frames after the affine
      least-squares map from all 2K keypoint coordinates to the 2P part coordinates,
      ``baseline_error`` the same for predicting every part at its mean position over
      the fitted frames (what a model that ignores the pose achieves),
      ``coef`` ``(2K + 1, 2P)`` the map (``[kp, 1] @ coef``), ``num_fit`` /
      ``num_scored`` frame counts, and ``*_px`` versions of the errors when
      ``image_size`` is given.
      With a list of several videos (and no ``fit_pred``) also
      ``per_video_regression_error``: the mean over videos of the same regression with
      one map **per video** (fitted on its first part, scored on the rest), which does
      not ask the keypoints to mean the same part in every video.
    """
    from scipy.optimize import linear_sum_assignment

    preds, trues = _as_videos("kp_pred", kp_pred), _as_videos("kp_true", kp_true)
    if len(preds) != len(trues):
        raise ValueError(
            f"kp_pred has {len(preds)} videos but kp_true has {len(trues)}."
        )
    for i, (p, t) in enumerate(zip(preds, trues)):
        if len(p) != len(t):
            raise ValueError(
                f"video {i}: kp_pred has {len(p)} frames but kp_true has {len(t)}."
            )
    num_parts = trues[0].shape[1]
    if fit_pred is not None or fit_true is not None:
        if fit_pred is None or fit_true is None:
            raise ValueError("give both fit_pred and fit_true, or neither.")
        fp, ft = _as_videos("fit_pred", fit_pred), _as_videos("fit_true", fit_true)
        if [len(v) for v in fp] != [len(v) for v in ft]:
            raise ValueError("fit_pred and fit_true must have the same frames.")
        fit_x, fit_y = np.concatenate(fp), np.concatenate(ft)
        test_x, test_y = np.concatenate(preds), np.concatenate(trues)
    else:
        slices = [_split(len(p), fit_fraction) for p in preds]
        fit_x = np.concatenate([p[f] for p, (f, _) in zip(preds, slices)])
        fit_y = np.concatenate([t[f] for t, (f, _) in zip(trues, slices)])
        test_x = np.concatenate([p[s] for p, (_, s) in zip(preds, slices)])
        test_y = np.concatenate([t[s] for t, (_, s) in zip(trues, slices)])

    pred, true = np.concatenate(preds), np.concatenate(trues)
    # (P, K) mean distance between part p and keypoint k over the frames.
    cost = np.linalg.norm(true[:, :, None, :] - pred[:, None, :, :], axis=-1).mean(
        axis=0
    )
    parts, kps = linear_sum_assignment(cost)
    assignment = np.full(num_parts, -1, dtype=np.int64)
    assignment[parts] = kps
    matched_error = float(cost[parts, kps].mean())

    coef, *_ = np.linalg.lstsq(
        _design(fit_x), fit_y.reshape(len(fit_y), -1), rcond=None
    )
    y_hat = (_design(test_x) @ coef).reshape(test_y.shape)
    regression_error = float(np.linalg.norm(y_hat - test_y, axis=-1).mean())
    baseline = fit_y.mean(axis=0, keepdims=True)
    baseline_error = float(np.linalg.norm(test_y - baseline, axis=-1).mean())

    per_video = None
    if fit_pred is None and len(preds) > 1:
        errors = []
        for p, t, (f, sc) in zip(preds, trues, slices):
            c, *_ = np.linalg.lstsq(
                _design(p[f]), t[f].reshape(len(t[f]), -1), rcond=None
            )
            y = (_design(p[sc]) @ c).reshape(t[sc].shape)
            errors.append(np.linalg.norm(y - t[sc], axis=-1).mean())
        per_video = float(np.mean(errors))

    result = {
        "assignment": assignment,
        "matched_error": matched_error,
        "regression_error": regression_error,
        "baseline_error": baseline_error,
        "coef": coef,
        "num_fit": int(len(fit_x)),
        "num_scored": int(len(test_x)),
    }
    if per_video is not None:
        result["per_video_regression_error"] = per_video
    if image_size:
        px = (image_size - 1) / 2
        for key in (
            "matched_error",
            "regression_error",
            "baseline_error",
            "per_video_regression_error",
        ):
            if key in result:
                result[key + "_px"] = result[key] * px
    return result


def sharpness(frames) -> float:
    """Mean over frames of the variance of the Laplacian of the luminance.

    ``frames``: ``(T, H, W, 3)`` (or one ``(H, W, 3)``) float in [0, 1]. The 5-point
    Laplacian ``4 f(x, y) - f(x +- 1, y) - f(x, y +- 1)`` on the interior pixels; blur
    removes high frequencies, so a prediction's sharpness divided by the real frames'
    says how much detail it kept (1 = as sharp).
    """
    f = np.asarray(frames, np.float64)
    if f.ndim == 3:
        f = f[None]
    if f.ndim != 4 or f.shape[-1] != 3 or min(f.shape[1:3]) < 3:
        raise ValueError(f"sharpness: expected (T, H, W, 3) frames, got {f.shape}.")
    grey = f @ np.array([0.299, 0.587, 0.114])
    lap = (
        4 * grey[:, 1:-1, 1:-1]
        - grey[:, :-2, 1:-1]
        - grey[:, 2:, 1:-1]
        - grey[:, 1:-1, :-2]
        - grey[:, 1:-1, 2:]
    )
    return float(lap.var(axis=(1, 2)).mean())
