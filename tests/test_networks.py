"""Closed-form checks of the network stages (no reference fixture needed)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from fomm_tutorial import dense_motion as dm
from fomm_tutorial.grids import make_coordinate_grid
from fomm_tutorial.keypoints import gaussian2kp, heatmap_jacobian, heatmap_softmax


def _kp(rng, b=2, k=3, jac=True):
    kp = {"value": tf.constant(rng.uniform(-0.8, 0.8, (b, k, 2)).astype(np.float32))}
    if jac:
        kp["jacobian"] = tf.constant(
            (np.eye(2) + 0.2 * rng.normal(size=(b, k, 2, 2))).astype(np.float32)
        )
    return kp


def test_sparse_motions_eq4():
    rng = np.random.default_rng(0)
    kp_s, kp_d = _kp(rng), _kp(rng)
    motions = dm.create_sparse_motions(kp_d, kp_s, (5, 6)).numpy()
    assert motions.shape == (2, 4, 5, 6, 2)
    grid = make_coordinate_grid(5, 6).numpy()
    np.testing.assert_allclose(
        motions[:, 0], np.broadcast_to(grid, (2, 5, 6, 2)), atol=1e-6
    )  # background
    js, jd = kp_s["jacobian"].numpy(), kp_d["jacobian"].numpy()
    for b in range(2):
        for k in range(3):
            a = js[b, k] @ np.linalg.inv(jd[b, k])
            expected = (grid - kp_d["value"].numpy()[b, k]) @ a.T + kp_s[
                "value"
            ].numpy()[b, k]
            np.testing.assert_allclose(motions[b, k + 1], expected, atol=1e-5)
            # T_k maps the driving keypoint onto the source keypoint
    no_jac = dm.create_sparse_motions(
        {"value": kp_d["value"]}, {"value": kp_s["value"]}, (5, 6)
    ).numpy()
    np.testing.assert_allclose(
        no_jac[:, 1:],
        grid[None, None]
        - kp_d["value"].numpy()[:, :, None, None]
        + kp_s["value"].numpy()[:, :, None, None],
        atol=1e-6,
    )


def test_heatmaps_driving_minus_source_and_interleaving():
    rng = np.random.default_rng(1)
    kp_s, kp_d = _kp(rng, jac=False), _kp(rng, jac=False)
    heat = dm.create_heatmap_representations(kp_d, kp_s, (8, 8)).numpy()
    assert heat.shape == (2, 8, 8, 4) and np.all(heat[..., 0] == 0)
    deformed = tf.constant(rng.random((2, 4, 8, 8, 3), dtype=np.float32))
    x = dm.hourglass_input(tf.constant(heat), deformed).numpy()
    assert x.shape == (2, 8, 8, 16)
    for k in range(4):  # channel 4k = heatmap_k, 4k+1..4k+3 = RGB of deformed_k
        np.testing.assert_array_equal(x[..., 4 * k], heat[..., k])
        np.testing.assert_array_equal(
            x[..., 4 * k + 1 : 4 * k + 4], deformed.numpy()[:, k]
        )


def test_identity_motion_reproduces_source():
    rng = np.random.default_rng(2)
    kp = _kp(rng)
    src = tf.constant(rng.random((2, 9, 9, 3), dtype=np.float32))
    motions = dm.create_sparse_motions(kp, kp, (9, 9))
    deformed = dm.create_deformed_source_image(src, motions).numpy()
    for k in range(4):  # same keypoints on both sides: every motion is the identity
        np.testing.assert_allclose(deformed[:, k], src.numpy(), atol=1e-5)
    shared = dm.create_deformed_source_image(
        src[:1], motions
    ).numpy()  # one source, batch of motions
    np.testing.assert_allclose(
        shared[1],
        dm.create_deformed_source_image(src[:1], motions[1:]).numpy()[0],
        atol=1e-6,
    )


def test_soft_argmax_and_jacobian_average():
    h = w = 7
    logits = np.full((1, h, w, 2), -1e4, np.float32)
    logits[0, 2, 5, 0] = 0.0  # keypoint 0 at row 2, column 5
    logits[0, 6, 0, 1] = 0.0
    heat = heatmap_softmax(tf.constant(logits), 0.1)
    value = gaussian2kp(heat).numpy()
    np.testing.assert_allclose(
        value[0, 0], [2 * 5 / 6 - 1, 2 * 2 / 6 - 1], atol=1e-6
    )  # (x, y)
    np.testing.assert_allclose(value[0, 1], [-1, 1], atol=1e-6)
    jmap = np.zeros((1, h, w, 4), np.float32)
    jmap[0, 2, 5] = [1, 2, 3, 4]
    jac = heatmap_jacobian(
        heat, tf.constant(jmap)
    ).numpy()  # single map shared by both keypoints
    np.testing.assert_allclose(jac[0, 0], [[1, 2], [3, 4]], atol=1e-6)
    np.testing.assert_allclose(jac[0, 1], 0, atol=1e-6)


def test_mask_and_deformation():
    rng = np.random.default_rng(3)
    mask = tf.nn.softmax(
        tf.constant(rng.normal(size=(1, 4, 4, 3)).astype(np.float32)), axis=-1
    )
    motions = tf.constant(rng.normal(size=(1, 3, 4, 4, 2)).astype(np.float32))
    out = dm.combine_motions(mask, motions).numpy()
    expected = np.einsum("bhwk,bkhwc->bhwc", mask.numpy(), motions.numpy())
    np.testing.assert_allclose(out, expected, atol=1e-6)
    m = rng.normal(size=(5, 2, 2)).astype(np.float32) + 2 * np.eye(2, dtype=np.float32)
    np.testing.assert_allclose(
        dm.inverse_2x2(tf.constant(m)).numpy(), np.linalg.inv(m), rtol=1e-4, atol=1e-5
    )


def test_keypoint_detector_options():
    from fomm_tutorial.generator import OcclusionAwareGenerator
    from fomm_tutorial.keypoints import KeypointDetector

    x = tf.random.uniform((2, 32, 32, 3))
    kp = KeypointDetector(
        4, 3, 3, 16, 2, 0.1, estimate_jacobian=True, scale_factor=0.5, pad=3
    )
    out = kp(x, return_heatmap=True)
    assert out["heatmap"].shape == (
        2,
        16,
        16,
        3,
    )  # pad=3: 'same' heads, no 58-of-64 shrink
    np.testing.assert_allclose(
        out["jacobian"].numpy(), np.broadcast_to(np.eye(2), (2, 3, 2, 2)), atol=1e-5
    )
    kp0 = KeypointDetector(
        4, 3, 3, 16, 2, 0.1, estimate_jacobian=False, scale_factor=0.5
    )
    out0 = kp0(x, return_heatmap=True)
    assert "jacobian" not in out0 and out0["heatmap"].shape == (
        2,
        10,
        10,
        3,
    )  # pad=0: 16 - 6
    gen = OcclusionAwareGenerator(
        3,
        3,
        4,
        16,
        2,
        1,
        estimate_occlusion_map=False,
        dense_motion_params={
            "block_expansion": 4,
            "max_features": 16,
            "num_blocks": 2,
            "scale_factor": 0.5,
        },
    )
    res = gen(x, kp_source=out0, kp_driving=out0)  # zero-order model: translations only
    assert "occlusion_map" not in res and res["prediction"].shape == (2, 32, 32, 3)
    assert res["mask"].shape == (2, 16, 16, 4) and res["sparse_deformed"].shape == (
        2,
        4,
        16,
        16,
        3,
    )
