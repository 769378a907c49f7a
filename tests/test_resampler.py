"""grid_sample vs torch (values and gradients), finite differences, tfa fixture, XLA, dtypes, errors."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from fomm_tutorial.resampler import grid_sample, resampler
from grid_sample_oracle import tf_grads, torch_grid_sample

torch = pytest.importorskip("torch")

MODES = list(itertools.product([True, False], ["zeros", "border", "reflection"]))
FIXTURE = Path(__file__).parent / "fixtures" / "tfa_resampler.npz"


def _case(seed, b=2, h=5, w=7, c=3, gh=4, gw=6, spread=1.4):
    rng = np.random.default_rng(seed)
    image = rng.random((b, h, w, c)).astype(np.float64)
    grid = rng.uniform(-spread, spread, (b, gh, gw, 2)).astype(np.float64)
    return image, grid


@pytest.mark.parametrize("align_corners, padding_mode", MODES)
@pytest.mark.parametrize(
    "seed, dims",
    [
        (0, dict()),
        (1, dict(b=1, h=8, w=3, c=1, gh=9, gw=2)),
        (2, dict(b=3, h=6, w=6, c=4, gh=6, gw=6, spread=3.0)),
    ],
)
def test_forward_vstorch_grid_sample(align_corners, padding_mode, seed, dims):
    image, grid = _case(seed, **dims)
    expected = torch_grid_sample(image, grid, align_corners, padding_mode)
    out = grid_sample(
        image.astype(np.float32), grid.astype(np.float32), align_corners, padding_mode
    )
    assert out.dtype == tf.float32 and out.shape == expected.shape
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-5)


@pytest.mark.parametrize("align_corners, padding_mode", MODES)
def test_gradients_vstorch_grid_sample(align_corners, padding_mode):
    image, grid = _case(3, h=6, w=5, spread=1.3)
    cot = np.random.default_rng(4).standard_normal((2, 4, 6, 3))
    g_im, g_gr = torch_grid_sample(image, grid, align_corners, padding_mode, cot)
    t_im, t_gr = tf_grads(
        lambda i, g: grid_sample(i, g, align_corners, padding_mode),
        image.astype(np.float32),
        grid.astype(np.float32),
        cot.astype(np.float32),
    )
    np.testing.assert_allclose(t_im, g_im, atol=1e-5)
    np.testing.assert_allclose(
        t_gr, g_gr, atol=1e-4
    )  # grid grads scale with W/2: float32 rounding


@pytest.mark.parametrize("align_corners, padding_mode", MODES)
def test_gradients_vs_finite_differences(align_corners, padding_mode):
    # Central differences of sum(out * cot) for every input element, all perturbations stacked
    # along the batch axis: one grid_sample call per input instead of two per element.
    image, grid = _case(5, b=1, h=4, w=5, c=2, gh=3, gw=3, spread=1.2)
    cot = np.random.default_rng(6).standard_normal((1, 3, 3, 2))
    delta = 1e-6

    def loss(i, g):
        return np.sum(grid_sample(i, g, align_corners, padding_mode) * cot, (1, 2, 3))

    def numerical(x, other, x_first):
        n = x.size
        eye = np.eye(n).reshape((n,) + x.shape[1:]) * delta
        plus, minus = x + eye, x - eye
        rep = np.repeat(other, n, axis=0)
        args = [(plus, rep), (minus, rep)] if x_first else [(rep, plus), (rep, minus)]
        return ((loss(*args[0]) - loss(*args[1])) / (2 * delta)).reshape(x.shape)

    t_im, t_gr = tf_grads(
        lambda i, g: grid_sample(i, g, align_corners, padding_mode), image, grid, cot
    )
    np.testing.assert_allclose(t_im, numerical(image, grid, True), atol=1e-6)
    np.testing.assert_allclose(t_gr, numerical(grid, image, False), atol=1e-6)


def _edge_grid(*points):
    return np.array([[list(points)]], np.float64)  # (1, 1, n, 2)


@pytest.mark.parametrize("align_corners, padding_mode", MODES)
def test_clamp_points_matchtorch_grid_sample(align_corners, padding_mode):
    # x or y exactly at -1/+1: the border pixel centres with align_corners=True. torch counts a
    # coordinate on the border as outside: after border/reflection clamping its grid gradient is
    # 0 (neither one-sided derivative).
    image, _ = _case(11, b=1, h=3, w=4, c=2)
    grid = _edge_grid(
        [-1.0, 0.3], [1.0, -0.2], [0.1, -1.0], [0.5, 1.0], [-1.0, 1.0], [0.25, 0.5]
    )
    cot = np.random.default_rng(12).standard_normal((1, 1, 6, 2))
    expected = torch_grid_sample(image, grid, align_corners, padding_mode)
    g_im, g_gr = torch_grid_sample(image, grid, align_corners, padding_mode, cot)
    out = grid_sample(image, grid, align_corners, padding_mode)
    t_im, t_gr = tf_grads(
        lambda i, g: grid_sample(i, g, align_corners, padding_mode), image, grid, cot
    )
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-12)
    np.testing.assert_allclose(t_im, g_im, atol=1e-12)
    np.testing.assert_allclose(t_gr, g_gr, atol=1e-12)


@pytest.mark.parametrize("align_corners", [True, False])
def test_non_finite_grid_stays_local_with_zeros_padding(align_corners):
    # A NaN/inf position gives NaN at its own output pixel (as torch) but must not reach the
    # image gradient of any pixel, nor the other positions' values and gradients.
    image, _ = _case(13, b=1, h=3, w=4, c=2)
    grid = _edge_grid(
        [0.3, -0.4],
        [np.nan, 0.2],
        [np.inf, 0.1],
        [-np.inf, 0.3],
        [0.2, np.nan],
        [-0.6, 0.9],
    )
    cot = np.random.default_rng(14).standard_normal((1, 1, 6, 2))
    expected = torch_grid_sample(image, grid, align_corners, "zeros")
    g_im, g_gr = torch_grid_sample(image, grid, align_corners, "zeros", cot)
    out = grid_sample(image, grid, align_corners, "zeros").numpy()
    t_im, t_gr = tf_grads(
        lambda i, g: grid_sample(i, g, align_corners, "zeros"), image, grid, cot
    )
    np.testing.assert_allclose(out, expected, atol=1e-12)  # NaN where torch has NaN
    assert np.isfinite(t_im).all()
    np.testing.assert_allclose(t_im, g_im, atol=1e-12)
    finite = [0, 5]
    np.testing.assert_allclose(t_gr[:, :, finite], g_gr[:, :, finite], atol=1e-12)


@pytest.mark.parametrize("align_corners", [True, False])
@pytest.mark.parametrize("bad", [np.inf, -np.inf, 1e30, -1e30])
def test_huge_and_infinite_positions_with_border_padding_liketorch_grid_sample(
    align_corners, bad
):
    padding_mode = "border"
    image, _ = _case(15, b=1, h=3, w=4, c=2)
    grid = _edge_grid([bad, 0.2], [0.2, bad], [bad, bad], [0.3, -0.7])
    cot = np.random.default_rng(16).standard_normal((1, 1, 4, 2))
    expected = torch_grid_sample(image, grid, align_corners, padding_mode)
    g_im, g_gr = torch_grid_sample(image, grid, align_corners, padding_mode, cot)
    out = grid_sample(image, grid, align_corners, padding_mode).numpy()
    t_im, t_gr = tf_grads(
        lambda i, g: grid_sample(i, g, align_corners, padding_mode), image, grid, cot
    )
    assert np.isfinite(expected).all()
    np.testing.assert_allclose(out, expected, atol=1e-12)
    np.testing.assert_allclose(t_im, g_im, atol=1e-12)
    np.testing.assert_allclose(t_gr, g_gr, atol=1e-12)


@pytest.mark.parametrize("padding_mode", ["border", "reflection"])
def test_nan_positions_are_finite_with_border_and_reflection(padding_mode):
    # torch 2.13 crashes (segfault) on NaN here, and on +-inf with reflection; with reflection
    # its value at +-1e30 is float rounding noise. No oracle, then: its vectorised kernel clamps
    # NaN to 0 on purpose, and so does grid_sample; values and gradients stay finite.
    image, _ = _case(17, b=1, h=3, w=4, c=2)
    bad = [np.nan, np.inf, -np.inf, 1e30]
    grid = _edge_grid(*([b, 0.2] for b in bad), *([0.2, b] for b in bad), [0.3, 0.1])
    cot = np.random.default_rng(18).standard_normal((1, 1, 9, 2))
    fn = lambda i, g: grid_sample(i, g, True, padding_mode)  # noqa: E731
    out = fn(image, grid).numpy()
    t_im, t_gr = tf_grads(fn, image, grid, cot)
    assert np.isfinite(out).all() and np.isfinite(t_im).all()
    # the grid gradient of a NaN position may be NaN (as in torch's zeros mode); only its own
    assert np.isfinite(t_gr[np.isfinite(grid)]).all()
    # NaN is clamped to pixel 0 (the first column), as torch's kernel intends.
    np.testing.assert_allclose(out[0, 0, 0], fn(image, _edge_grid([-1, 0.2]))[0, 0, 0])


@pytest.mark.parametrize("align_corners", [True, False])
def test_one_pixel_image_with_reflection(align_corners):
    # A 1-pixel axis has an empty reflection span: every position maps to the pixel, and the
    # grid gradient is zeros (torch), not None.
    image = np.full((1, 1, 1, 2), 0.7)
    grid = _edge_grid([0.3, -0.5], [1.0, 1.0], [-2.5, 0.0])
    cot = np.random.default_rng(19).standard_normal((1, 1, 3, 2))
    g_im, g_gr = torch_grid_sample(image, grid, align_corners, "reflection", cot)
    t_im, t_gr = tf_grads(
        lambda i, g: grid_sample(i, g, align_corners, "reflection"), image, grid, cot
    )
    np.testing.assert_allclose(
        grid_sample(image, grid, align_corners, "reflection").numpy(),
        torch_grid_sample(image, grid, align_corners, "reflection"),
        atol=1e-12,
    )
    np.testing.assert_allclose(t_im, g_im, atol=1e-12)
    np.testing.assert_allclose(t_gr, g_gr, atol=1e-12)
    assert not t_gr.any()


def test_identity_and_half_pixel_shift():
    image, _ = _case(6, b=1, h=5, w=8)
    yy, xx = np.meshgrid(np.linspace(-1, 1, 5), np.linspace(-1, 1, 8), indexing="ij")
    ident = np.stack([xx, yy], -1)[None].astype(np.float32)
    out = grid_sample(image.astype(np.float32), ident, align_corners=True).numpy()
    np.testing.assert_allclose(out, image, atol=1e-6)
    dark = grid_sample(
        np.ones((1, 5, 8, 1), np.float32), ident, align_corners=False
    ).numpy()[0, ..., 0]
    np.testing.assert_allclose(
        dark[0, 0], 0.25, atol=1e-6
    )  # corner: one of four taps inside
    np.testing.assert_allclose(
        dark[2, 0], 0.5, atol=1e-6
    )  # border: half the taps outside


@pytest.mark.parametrize(
    "align_corners, padding_mode", [(True, "zeros"), (False, "reflection")]
)
def test_xla_matches_eager(align_corners, padding_mode):
    image, grid = _case(7, h=6, w=9)
    image, grid = tf.constant(image, tf.float32), tf.constant(grid, tf.float32)
    cot = tf.constant(
        np.random.default_rng(8).standard_normal((2, 4, 6, 3)), tf.float32
    )

    def step(i, g):
        with tf.GradientTape() as tape:
            tape.watch([i, g])
            out = grid_sample(i, g, align_corners, padding_mode)
            loss = tf.reduce_sum(out * cot)
        return [out] + tape.gradient(loss, [i, g])

    eager = step(image, grid)
    xla = tf.function(step, jit_compile=True)(image, grid)
    for a, b in zip(eager, xla):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)


@pytest.mark.parametrize(
    "dtype, atol", [(tf.float16, 2e-3), (tf.bfloat16, 2e-2), (tf.float64, 1e-12)]
)
def test_low_precision_inputs(dtype, atol):
    image, grid = _case(9)
    expected = torch_grid_sample(image, grid, True, "zeros")
    out = grid_sample(tf.cast(image, dtype), tf.cast(grid, dtype))
    assert out.dtype == dtype
    np.testing.assert_allclose(tf.cast(out, tf.float64).numpy(), expected, atol=atol)
    out_r = resampler(tf.cast(image, dtype), tf.cast((grid + 1) * 2, dtype))
    assert out_r.dtype == dtype


def test_resampler_is_grid_sample_in_pixel_units():
    image, grid = _case(10, h=6, w=9, spread=1.5)
    pixels = np.stack([(grid[..., 0] + 1) / 2 * 8, (grid[..., 1] + 1) / 2 * 5], axis=-1)
    np.testing.assert_allclose(
        resampler(image, pixels).numpy(),
        grid_sample(image, grid, align_corners=True).numpy(),
        atol=1e-12,
    )


def _fixture():
    if not FIXTURE.exists():
        pytest.fail(f"{FIXTURE} missing: regenerate it with tools/make_tfa_fixture.py")
    data = np.load(FIXTURE)
    names = sorted({k[: -len("_out")] for k in data.files if k.endswith("_out")})
    return data, names


def test_resampler_vs_tfa_fixture():
    data, names = _fixture()
    assert len(names) >= 4
    for name in names:
        d, w, cot = data[f"{name}_data"], data[f"{name}_warp"], data[f"{name}_cot"]
        out = resampler(d, w)
        np.testing.assert_allclose(
            out.numpy(), data[f"{name}_out"], atol=1e-5, err_msg=name
        )
        g_d, g_w = tf_grads(resampler, d, w, cot)
        np.testing.assert_allclose(
            g_d, data[f"{name}_grad_data"], atol=1e-5, err_msg=name
        )
        np.testing.assert_allclose(
            g_w, data[f"{name}_grad_warp"], atol=1e-5, err_msg=name
        )


@pytest.mark.parametrize(
    "image_shape, grid_shape, match",
    [
        ((5, 7, 3), (1, 4, 4, 2), r"\(B, H, W, C\)"),  # image without batch axis
        ((1, 5, 7), (1, 4, 4, 2), r"\(B, H, W, C\)"),  # channel-less image
        ((1, 5, 7, 3), (1, 4, 4), r"\(B, h, w, 2\)"),  # channel-less grid
        ((1, 5, 7, 3), (1, 4, 4, 3), r"\(B, h, w, 2\)"),  # last axis not 2
        ((1, 5, 7, 3), (4, 4, 2), r"\(B, h, w, 2\)"),  # grid without batch axis
        ((2, 5, 7, 3), (3, 4, 4, 2), "batch"),  # batch mismatch
    ],
)
def test_bad_shapes(image_shape, grid_shape, match):
    with pytest.raises(ValueError, match=match):
        grid_sample(np.zeros(image_shape, np.float32), np.zeros(grid_shape, np.float32))


def test_bad_dtype_and_mode():
    with pytest.raises(ValueError, match="floating point"):
        grid_sample(
            np.zeros((1, 4, 4, 3), np.uint8), np.zeros((1, 2, 2, 2), np.float32)
        )
    with pytest.raises(ValueError, match="floating point"):
        grid_sample(
            np.zeros((1, 4, 4, 3), np.float32), np.zeros((1, 2, 2, 2), np.int32)
        )
    with pytest.raises(ValueError, match="padding_mode"):
        grid_sample(
            np.zeros((1, 4, 4, 3), np.float32),
            np.zeros((1, 2, 2, 2), np.float32),
            padding_mode="wrap",
        )
    with pytest.raises(ValueError, match=r"\(B, \.\.\., 2\)"):
        resampler(
            np.zeros((1, 4, 4, 3), np.float32), np.zeros((1, 2, 2, 3), np.float32)
        )
    with pytest.raises(ValueError, match="floating point"):
        resampler(np.zeros((1, 4, 4, 3), np.int32), np.zeros((1, 2, 2, 2), np.float32))
