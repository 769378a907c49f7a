"""Optical flow (chapter 1): sympy constraint, gradients, warping, Lucas-Kanade, EPE, colours."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import sympy as sp  # noqa: E402
import tensorflow as tf  # noqa: E402
from skimage import data as skdata  # noqa: E402

from fomm_tutorial import optical_flow as of  # noqa: E402


@pytest.fixture(scope="module")
def astronaut():
    img = skdata.astronaut()[None].astype(np.float32) / 255.0
    return tf.image.resize(img, (96, 96), method="area")


@pytest.fixture(scope="module")
def stereo():
    left, right, disp = skdata.stereo_motorcycle()
    s = 4
    size = (left.shape[0] // s, left.shape[1] // s)

    def to(im):
        return tf.image.resize(im[None].astype(np.float32) / 255.0, size, method="area")

    gt, mask = of.stereo_flow(disp, s)
    return to(left), to(right), gt, mask


def test_brightness_constancy_constraint():
    d = of.brightness_constancy_derivation()
    x, y, t, u, v, dt = d["symbols"]
    I = d["I"](x, y, t)
    expected = u * sp.diff(I, x) + v * sp.diff(I, y) + sp.diff(I, t)
    assert sp.simplify(d["constraint"] - expected) == 0
    assert d["gradient"] == (sp.diff(I, x), sp.diff(I, y), sp.diff(I, t))
    # For a concrete translating pattern the constraint holds exactly.
    pattern = sp.sin(x - 2 * t) * sp.cos(y + 3 * t)
    concrete = d["constraint"].subs(d["I"](x, y, t), pattern).subs({u: 2, v: -3}).doit()
    assert sp.simplify(concrete) == 0


def test_image_gradients_of_a_ramp():
    ys, xs = np.mgrid[0:8, 0:10].astype(np.float32)
    img = (0.03 * xs - 0.05 * ys)[None, ..., None]
    ix, iy = of.image_gradients(img)
    np.testing.assert_allclose(ix.numpy()[0, :, 1:-1, 0], 0.03, atol=1e-6)
    np.testing.assert_allclose(iy.numpy()[0, 1:-1, :, 0], -0.05, atol=1e-6)
    np.testing.assert_allclose(
        ix.numpy()[0, :, 0, 0], 0.015, atol=1e-6
    )  # one-sided at the border


def test_grayscale_and_bad_inputs():
    rgb = np.ones((1, 4, 4, 3), np.float32) * np.array([1.0, 0.0, 0.0], np.float32)
    np.testing.assert_allclose(of.to_grayscale(rgb).numpy(), 0.299, atol=1e-6)
    with pytest.raises(ValueError, match="4-D NHWC"):
        of.image_gradients(np.zeros((4, 4, 1), np.float32))
    with pytest.raises(ValueError, match="floating point"):
        of.to_grayscale(np.zeros((1, 4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="1 or 3 channels"):
        of.to_grayscale(np.zeros((1, 4, 4, 2), np.float32))
    a = np.zeros((1, 32, 32, 1), np.float32)
    with pytest.raises(ValueError, match="same shape"):
        of.lucas_kanade(a, np.zeros((1, 32, 30, 1), np.float32))
    with pytest.raises(ValueError, match="odd integer"):
        of.lucas_kanade(a, a, window=4)
    with pytest.raises(ValueError, match="too small"):
        of.lucas_kanade(a, a, levels=5)
    with pytest.raises(ValueError, match=r"\(B, H, W, 2\)"):
        of.warp_image(a, np.zeros((1, 32, 32, 3), np.float32))
    with pytest.raises(ValueError, match="kind"):
        of.synthetic_flow("shear", 8, 8, 1.0)


def test_warp_image_integer_translation(astronaut):
    flow = np.zeros((1, 96, 96, 2), np.float32)
    flow[..., 0], flow[..., 1] = 2.0, -1.0
    out = of.warp_image(astronaut, flow).numpy()
    # out[y, x] = image[y - 1, x + 2]
    np.testing.assert_allclose(
        out[0, 1:, :-2], astronaut.numpy()[0, :-1, 2:], atol=1e-5
    )


@pytest.mark.parametrize("shift", [(0.6, -0.3), (2.0, 1.0), (-4.5, 3.0)])
def test_lucas_kanade_exact_translation(astronaut, shift):
    flow = np.zeros((1, 96, 96, 2), np.float32)
    flow[..., 0], flow[..., 1] = shift
    image0 = of.warp_image(astronaut, flow)
    est = of.lucas_kanade(image0, astronaut, window=15, levels=3, iterations=5)
    assert est.shape == (1, 96, 96, 2)
    # Interior: the translation is recovered to a few hundredths of a pixel.
    assert of.endpoint_error(est, flow, border=8) < 0.05
    np.testing.assert_allclose(
        np.median(est.numpy()[0, 8:-8, 8:-8], axis=(0, 1)), shift, atol=0.02
    )


@pytest.mark.parametrize(
    "kind,amount", [("rotation", 4.0), ("zoom", 0.06), ("smooth", 2.5)]
)
def test_lucas_kanade_smooth_synthetic_flows(astronaut, kind, amount):
    gt = of.synthetic_flow(kind, 96, 96, amount)
    image0 = of.warp_image(astronaut, gt)
    est = of.lucas_kanade(image0, astronaut)
    zero = of.endpoint_error(tf.zeros_like(gt), gt, border=8)
    epe = of.endpoint_error(est, gt, border=8)
    assert epe < 0.15 and epe < 0.1 * zero, (epe, zero)


def test_synthetic_flow_definitions():
    t = of.synthetic_flow("translation", 5, 7, 2.0).numpy()
    np.testing.assert_allclose(t[0, ..., 0], 2.0)
    np.testing.assert_allclose(t[0, ..., 1], 1.0)
    z = of.synthetic_flow("zoom", 5, 5, 1.0).numpy()
    np.testing.assert_allclose(z[0, 2, 2], 0.0, atol=1e-6)  # the centre stays
    np.testing.assert_allclose(
        z[0, 2, 4], [-1.0, 0.0], atol=1e-6
    )  # (x=4) samples x=3: x2 zoom
    r = of.synthetic_flow("rotation", 5, 5, 90.0).numpy()
    np.testing.assert_allclose(
        r[0, 2, 4], [-2.0, 2.0], atol=1e-5
    )  # d=(2,0) -> R d=(0,2)


def test_stereo_flow_sign_mask_and_scale():
    disp = np.array([[2.0, 2.0, np.inf, 4.0], [2.0, 2.0, 4.0, 4.0]], np.float32)
    flow, mask = of.stereo_flow(disp)
    assert flow.shape == (1, 2, 4, 2) and mask.shape == (1, 2, 4)
    assert not mask[0, 0, 2] and mask.sum() == 7
    np.testing.assert_allclose(flow[0, 1, :, 0], [-2, -2, -4, -4])
    assert np.all(flow[..., 1] == 0) and np.all(np.isfinite(flow))
    f2, m2 = of.stereo_flow(disp, scale=2)
    np.testing.assert_allclose(f2[0, 0, 0], [-1.0, 0.0])
    assert m2.tolist() == [[[True, False]]]
    with pytest.raises(ValueError, match="2-D"):
        of.stereo_flow(np.zeros((1, 2, 2)))


def test_stereo_ground_truth_sign_and_epe(stereo):
    left, right, gt, mask = stereo
    # The sign: warping the right image by the ground truth rebuilds the left one.
    good = np.abs(of.warp_image(right, gt).numpy() - left.numpy())[mask].mean()
    bad = np.abs(of.warp_image(right, -gt).numpy() - left.numpy())[mask].mean()
    assert good < 0.5 * bad
    est = of.lucas_kanade(left, right)
    epe = of.endpoint_error(est, gt, mask)
    # Measured 1.16 px at 1/4 resolution (zero flow: 8.88 px); the bound leaves some margin.
    assert epe < 1.4, epe
    assert of.endpoint_error(tf.zeros_like(gt), gt, mask) > 8.0


def test_endpoint_error():
    a = np.zeros((1, 2, 2, 2), np.float32)
    b = a.copy()
    b[0, 0, 0] = [3.0, 4.0]
    assert of.endpoint_error(a, b) == pytest.approx(5.0 / 4)
    mask = np.array([[[True, False], [False, False]]])
    assert of.endpoint_error(a, b, mask) == pytest.approx(5.0)
    np.testing.assert_allclose(of.endpoint_error_map(a, b).numpy()[0], [[5, 0], [0, 0]])
    with pytest.raises(ValueError, match="no valid pixel"):
        of.endpoint_error(a, b, np.zeros((1, 2, 2), bool))
    with pytest.raises(ValueError, match="same shape"):
        of.endpoint_error_map(a, np.zeros((1, 2, 3, 2), np.float32))


def test_flow_colours_and_arrows():
    f = np.zeros((1, 2, 2, 2), np.float32)
    f[0, 0, 0] = [1.0, 0.0]  # right: red
    f[0, 0, 1] = [-1.0, 0.0]  # left: cyan
    rgb = of.flow_to_color(f)
    assert rgb.shape == (2, 2, 3)
    np.testing.assert_allclose(rgb[0, 0], [1, 0, 0], atol=1e-9)
    np.testing.assert_allclose(rgb[0, 1], [0, 1, 1], atol=1e-9)
    np.testing.assert_allclose(rgb[1, 1], [1, 1, 1])  # no motion: white
    wheel = of.color_wheel(21)
    assert wheel.shape == (21, 21, 3) and wheel.min() >= 0 and wheel.max() <= 1
    np.testing.assert_allclose(wheel[10, 20], [1, 0, 0], atol=1e-9)
    fig, ax = plt.subplots()
    q = of.plot_flow_arrows(ax, np.ones((16, 16, 2)), step=4)
    assert q.N == 16
    plt.close(fig)
    with pytest.raises(ValueError, match=r"\(H, W, 2\)"):
        of.flow_to_color(np.zeros((4, 4, 3)))
