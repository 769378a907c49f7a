"""Tests of fomm_tutorial.evaluation.keypoint_metrics: the held-out protocol."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from fomm_tutorial.evaluation import keypoint_metrics  # noqa: E402


def _videos(rng, n_videos=3, frames=10, parts=2, kps=3):
    """Keypoints that are a fixed affine map of the parts, plus a nuisance keypoint."""
    trues, preds = [], []
    a = rng.normal(size=(2 * parts, 2 * (kps - 1)))
    for _ in range(n_videos):
        true = rng.uniform(-0.5, 0.5, (frames, parts, 2))
        pred = np.empty((frames, kps, 2))
        pred[:, : kps - 1] = (true.reshape(frames, -1) @ a).reshape(frames, kps - 1, 2)
        pred[:, kps - 1] = rng.uniform(-1, 1, (frames, 2))
        trues.append(true)
        preds.append(pred)
    return preds, trues


def test_one_map_fitted_on_first_halves_of_every_video():
    rng = np.random.default_rng(0)
    preds, trues = _videos(rng)
    m = keypoint_metrics(preds, trues, image_size=65)
    assert m["num_fit"] == 15 and m["num_scored"] == 15  # 5 + 5 + 5 frames each
    assert m["regression_error"] < 1e-6 < m["baseline_error"]
    assert m["regression_error_px"] == pytest.approx(m["regression_error"] * 32)
    assert m["coef"].shape == (2 * 3 + 1, 2 * 2)
    # the baseline is the mean of the fitted frames, scored on the second halves
    fit = np.concatenate([t[:5] for t in trues])
    scored = np.concatenate([t[5:] for t in trues])
    expected = np.linalg.norm(scored - fit.mean(0), axis=-1).mean()
    assert m["baseline_error"] == pytest.approx(expected)


def test_list_protocol_differs_from_concatenating():
    """Fitting on the first half of the concatenation would fit on whole videos only."""
    rng = np.random.default_rng(1)
    preds, trues = _videos(rng, n_videos=4, frames=8)
    noisy = [p + 0.05 * rng.normal(size=p.shape) for p in preds]
    per_video = keypoint_metrics(noisy, trues)
    concatenated = keypoint_metrics(np.concatenate(noisy), np.concatenate(trues))
    assert per_video["num_fit"] == concatenated["num_fit"] == 16
    assert per_video["baseline_error"] != pytest.approx(concatenated["baseline_error"])


def test_fit_on_other_frames():
    rng = np.random.default_rng(2)
    preds, trues = _videos(rng)
    m = keypoint_metrics(preds[2], trues[2], fit_pred=preds[:2], fit_true=trues[:2])
    assert m["num_fit"] == 20 and m["num_scored"] == 10
    assert m["regression_error"] < 1e-6
    with pytest.raises(ValueError, match="both"):
        keypoint_metrics(preds[2], trues[2], fit_pred=preds[:2])


def test_bad_inputs():
    rng = np.random.default_rng(3)
    preds, trues = _videos(rng)
    with pytest.raises(ValueError, match="video 1"):
        keypoint_metrics(preds, [trues[0], trues[1][:4], trues[2]])
    with pytest.raises(ValueError, match="kp_true has 2"):
        keypoint_metrics(preds, trues[:2])
    with pytest.raises(ValueError, match=r"\(N, K, 2\)"):
        keypoint_metrics(np.zeros((4, 3)), np.zeros((4, 2, 2)))


def test_reconstruction_reports_copy_first_frame():
    import tensorflow as tf

    from fomm_tutorial.evaluation import reconstruction

    class Detector:
        def __call__(self, frames, training=False):
            b = tf.shape(frames)[0]
            return {
                "value": tf.zeros((b, 1, 2)),
                "jacobian": tf.eye(2, batch_shape=[b, 1]),
            }

    class Copy:
        """Returns the source: reconstruction equals copying the first frame."""

        def __call__(self, source, kp_source, kp_driving, training=False):
            return {"prediction": source}

    video = np.random.default_rng(4).uniform(size=(3, 8, 8, 3)).astype(np.float32)
    res = reconstruction([video], Detector(), Copy())
    expected = np.abs(video - video[:1]).mean()
    assert res["l1_copy_first"] == pytest.approx(expected, rel=1e-6)
    assert res["l1"] == pytest.approx(expected, rel=1e-5)


def test_per_video_maps():
    """Keypoints that mean different parts in different videos: one map fails, per-video works."""
    rng = np.random.default_rng(5)
    preds, trues = _videos(rng, n_videos=4, frames=30)
    swapped = [p[:, ::-1] if i % 2 else p for i, p in enumerate(preds)]
    m = keypoint_metrics(swapped, trues, image_size=65)
    assert m["per_video_regression_error"] < 1e-6 < m["regression_error"]
    assert m["per_video_regression_error_px"] == pytest.approx(
        m["per_video_regression_error"] * 32
    )
    assert "per_video_regression_error" not in keypoint_metrics(preds[0], trues[0])
