"""Stage 10 (evaluation): reconstruction loss and keypoint metrics.

* :func:`reconstruction` is the original ``reconstruction.py``: for every test video the first
  frame is the source, **every** frame (frame 0 included) is reconstructed from it with the
  keypoints detected on that frame (absolute motion), and the score is the mean L1 over all frames
  of all videos (frame-weighted, pixel values in [0, 1]).
* :func:`keypoint_metrics` compares learned keypoints with ground-truth part positions (the
  sprite dataset has them): learned keypoints are unsupervised, so keypoint ``k`` has no fixed
  meaning; each part is matched to one keypoint (Hungarian assignment on the mean distance), and a
  linear regression from all keypoints to the parts measures how much of the pose they encode.
* :func:`average_keypoint_distance` (AKD) between keypoints detected on two sets of frames, e.g.
  on the reconstructions and on the real frames (the paper's AKD uses an external detector).
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
]


def reconstruction(
    videos,
    kp_detector,
    generator,
    batch_size: int = 8,
    progress: bool = False,
    return_predictions: bool = False,
):
    """Reconstruction L1 of each video from its first frame (the original ``reconstruction``).

    Args:
      videos: an iterable of ``(T, H, W, 3)`` float32 videos in [0, 1] (or one such array, or a
        ``(N, T, H, W, 3)`` array).
      kp_detector, generator: the models.
      batch_size: frames per forward pass (results do not depend on it).
      progress: tqdm bar over the videos.
      return_predictions: also return the reconstructed videos.

    Returns:
      dict: ``l1`` (mean over all frames of all videos: frame-weighted, as the original's printed
      "Reconstruction loss"), ``per_video`` ``(N,)`` mean L1 of each video, ``per_frame`` list of
      ``(T_i,)`` arrays, ``num_frames``; ``predictions`` (list of ``(T_i, H, W, 3)``) when asked.
    """
    from fomm_tutorial.animation import make_animation, prepare_video

    if isinstance(videos, np.ndarray) and videos.ndim == 4:
        videos = [videos]
    videos = list(videos)
    if not videos:
        raise ValueError("reconstruction needs at least one video (T, H, W, 3).")
    iterator = videos
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(videos, desc="reconstruction", unit="video")
    per_frame, predictions = [], []
    for video in iterator:
        video = prepare_video(video)
        pred = make_animation(
            video[0],
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
        if return_predictions:
            predictions.append(pred)
    all_frames = np.concatenate(per_frame)
    result = {
        "l1": float(all_frames.mean()),
        "per_video": np.array([f.mean() for f in per_frame]),
        "per_frame": per_frame,
        "num_frames": int(all_frames.size),
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
    (``1`` unit = ``(size - 1) / 2`` pixels: -1 and 1 are the centres of the border pixels).
    """
    a, b = _check_kp("kp_a", kp_a), _check_kp("kp_b", kp_b)
    if a.shape != b.shape:
        raise ValueError(
            f"average_keypoint_distance: shapes differ, {a.shape} vs {b.shape}."
        )
    d = float(np.linalg.norm(a - b, axis=-1).mean())
    return d * (image_size - 1) / 2 if image_size else d


def keypoint_metrics(
    kp_pred, kp_true, image_size=None, fit_fraction: float = 0.5
) -> dict:
    """How well learned keypoints track ground-truth parts.

    Args:
      kp_pred: ``(N, K, 2)`` learned keypoints in [-1, 1] for N frames.
      kp_true: ``(N, P, 2)`` ground-truth part positions in the same coordinates.
      image_size: side length in pixels to also report the errors in pixels.
      fit_fraction: the regression is fitted on the first ``fit_fraction`` of the frames and
        evaluated on the rest (all frames when there are fewer than 4).

    Returns:
      dict with
      ``assignment`` (P,) the keypoint matched to each part (Hungarian assignment minimising the
      summed mean distance; with K < P only K parts are matched, the others get -1),
      ``matched_error`` the mean distance of matched keypoint/part pairs,
      ``regression_error`` the mean distance after an affine least-squares map from all 2K
      keypoint coordinates to the 2P part coordinates (held-out frames),
      ``baseline_error`` the same for predicting every part at its mean position (what a model
      that ignores the pose achieves), and ``*_px`` versions when ``image_size`` is given.
    """
    from scipy.optimize import linear_sum_assignment

    pred, true = _check_kp("kp_pred", kp_pred), _check_kp("kp_true", kp_true)
    if len(pred) != len(true):
        raise ValueError(f"kp_pred has {len(pred)} frames but kp_true has {len(true)}.")
    n = len(pred)
    # (P, K) mean distance between part p and keypoint k over the frames.
    cost = np.linalg.norm(true[:, :, None, :] - pred[:, None, :, :], axis=-1).mean(
        axis=0
    )
    parts, kps = linear_sum_assignment(cost)
    assignment = np.full(true.shape[1], -1, dtype=np.int64)
    assignment[parts] = kps
    matched_error = float(cost[parts, kps].mean())

    if n >= 4:
        n_fit = min(max(int(round(n * fit_fraction)), 2), n - 1)
        fit, test = slice(0, n_fit), slice(n_fit, n)
    else:
        fit = test = slice(0, n)
    x = np.concatenate([pred.reshape(n, -1), np.ones((n, 1))], axis=1)
    y = true.reshape(n, -1)
    coef, *_ = np.linalg.lstsq(x[fit], y[fit], rcond=None)
    y_hat = (x[test] @ coef).reshape(-1, true.shape[1], 2)
    regression_error = float(np.linalg.norm(y_hat - true[test], axis=-1).mean())
    baseline = true[fit].mean(axis=0, keepdims=True)
    baseline_error = float(np.linalg.norm(true[test] - baseline, axis=-1).mean())

    result = {
        "assignment": assignment,
        "matched_error": matched_error,
        "regression_error": regression_error,
        "baseline_error": baseline_error,
    }
    if image_size:
        px = (image_size - 1) / 2
        for key in ("matched_error", "regression_error", "baseline_error"):
            result[key + "_px"] = result[key] * px
    return result
