"""grid_sample vs torch (values and gradients), finite differences, tfa fixture, XLA, dtypes, errors."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from fomm_tutorial.resampler import grid_sample, resampler

torch = pytest.importorskip("torch")
F = torch.nn.functional

MODES = list(itertools.product([True, False], ["zeros", "border", "reflection"]))
FIXTURE = Path(__file__).parent / "fixtures" / "tfa_resampler.npz"


def _case(seed, b=2, h=5, w=7, c=3, gh=4, gw=6, spread=1.4):
    rng = np.random.default_rng(seed)
    image = rng.random((b, h, w, c)).astype(np.float64)
    grid = rng.uniform(-spread, spread, (b, gh, gw, 2)).astype(np.float64)
    return image, grid


def _torch(image, grid, align_corners, padding_mode, cot=None):
    im = torch.tensor(image).permute(0, 3, 1, 2).requires_grad_(True)
    gr = torch.tensor(grid).requires_grad_(True)
    out = F.grid_sample(
        im, gr, mode="bilinear", padding_mode=padding_mode, align_corners=align_corners
    )
    if cot is None:
        return out.permute(0, 2, 3, 1).detach().numpy()
    (out * torch.tensor(cot).permute(0, 3, 1, 2)).sum().backward()
    return im.grad.permute(0, 2, 3, 1).numpy(), gr.grad.numpy()


def _tf_grads(fn, image, grid, cot):
    image, grid = tf.constant(image), tf.constant(grid)
    with tf.GradientTape() as tape:
        tape.watch([image, grid])
        loss = tf.reduce_sum(fn(image, grid) * cot)
    return [g.numpy() for g in tape.gradient(loss, [image, grid])]


@pytest.mark.parametrize("align_corners, padding_mode", MODES)
@pytest.mark.parametrize(
    "seed, dims",
    [
        (0, dict()),
        (1, dict(b=1, h=8, w=3, c=1, gh=9, gw=2)),
        (2, dict(b=3, h=6, w=6, c=4, gh=6, gw=6, spread=3.0)),
    ],
)
def test_forward_vs_torch(align_corners, padding_mode, seed, dims):
    image, grid = _case(seed, **dims)
    expected = _torch(image, grid, align_corners, padding_mode)
    out = grid_sample(
        image.astype(np.float32), grid.astype(np.float32), align_corners, padding_mode
    )
    assert out.dtype == tf.float32 and out.shape == expected.shape
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-5)


@pytest.mark.parametrize("align_corners, padding_mode", MODES)
def test_gradients_vs_torch(align_corners, padding_mode):
    image, grid = _case(3, h=6, w=5, spread=1.3)
    cot = np.random.default_rng(4).standard_normal((2, 4, 6, 3))
    g_im, g_gr = _torch(image, grid, align_corners, padding_mode, cot)
    t_im, t_gr = _tf_grads(
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
    image, grid = _case(5, b=1, h=4, w=5, c=2, gh=3, gw=3, spread=1.2)
    fn = lambda i, g: grid_sample(i, g, align_corners, padding_mode)  # noqa: E731
    theoretical, numerical = tf.test.compute_gradient(
        fn, [tf.constant(image), tf.constant(grid)], delta=1e-6
    )
    for t, n in zip(theoretical, numerical):
        np.testing.assert_allclose(t, n, atol=1e-5)


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
    expected = _torch(image, grid, True, "zeros")
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
        g_d, g_w = _tf_grads(resampler, d, w, cot)
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
