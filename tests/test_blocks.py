"""Building blocks: anti-alias kernels and downsampling, PyTorch-exact batch norm, hourglass shapes."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from fomm_tutorial.blocks import (
    AntiAliasInterpolation2d,
    BatchNorm2d,
    Conv2d,
    DownBlock2d,
    Hourglass,
    ResBlock2d,
    UpBlock2d,
    anti_alias_kernel,
)


@pytest.mark.parametrize(
    "scale,k,taps",
    [
        (0.5, 5, [0.000264, 0.106451, 0.786571, 0.106451, 0.000264]),
        (
            0.25,
            13,
            [
                8.9e-05,
                0.001028,
                0.007597,
                0.035994,
                0.109341,
                0.212968,
                0.265964,
                0.212968,
                0.109341,
                0.035994,
                0.007597,
                0.001028,
                8.9e-05,
            ],
        ),
    ],
)
def test_anti_alias_kernel_values(scale, k, taps):
    kernel = anti_alias_kernel(scale)
    assert kernel.shape == (k, k)
    np.testing.assert_allclose(kernel.sum(), 1.0, rtol=1e-6)
    # separable: the 2-D kernel is the outer product of the 1-D normalised taps
    np.testing.assert_allclose(kernel, np.outer(taps, taps), atol=2e-6)


def test_anti_alias_centre_values():
    assert abs(anti_alias_kernel(0.25)[6, 6] - 0.070737) < 1e-6
    assert anti_alias_kernel(0.125).shape == (29, 29)
    assert abs(anti_alias_kernel(0.125)[14, 14] - 0.012993) < 1e-6


def _torch_anti_alias(x, scale):
    """The original forward, written out in torch (zero pad, depthwise conv, slice)."""
    torch = pytest.importorskip("torch")
    kernel = anti_alias_kernel(scale)
    k = kernel.shape[0]
    ka = k // 2
    c = x.shape[-1]
    t = torch.from_numpy(x).permute(0, 3, 1, 2)
    w = torch.from_numpy(np.tile(kernel[None, None], (c, 1, 1, 1)))
    out = torch.nn.functional.conv2d(
        torch.nn.functional.pad(t, (ka, ka, ka, ka)), w, groups=c
    )
    s = int(1 / scale)
    return out[:, :, ::s, ::s].permute(0, 2, 3, 1).numpy()


@pytest.mark.parametrize("scale,size", [(0.5, 16), (0.25, 32), (0.25, 30), (0.125, 35)])
def test_anti_alias_matches_original_forward(scale, size):
    rng = np.random.default_rng(0)
    x = rng.random((2, size, size + 3, 3), dtype=np.float32)
    out = AntiAliasInterpolation2d(3, scale)(tf.constant(x)).numpy()
    ref = _torch_anti_alias(x, scale)
    assert out.shape == ref.shape
    np.testing.assert_allclose(out, ref, atol=1e-6)


def test_anti_alias_identity_and_pyramid_sizes():
    x = tf.random.uniform((1, 256, 256, 3))
    assert AntiAliasInterpolation2d(3, 1)(x) is x
    sizes = [AntiAliasInterpolation2d(3, s)(x).shape[1] for s in (0.5, 0.25, 0.125)]
    assert sizes == [128, 64, 32]
    assert not AntiAliasInterpolation2d(3, 0.25).trainable_weights  # fixed kernel
    with pytest.raises(ValueError, match="1/scale"):
        AntiAliasInterpolation2d(3, 0.3)


def test_batch_norm_matches_torch_training_and_eval():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 5, 4, 6)).astype(np.float32) * 2 + 1
    bn = BatchNorm2d()
    bn.build(x.shape)
    gamma, beta = (
        rng.normal(size=6).astype(np.float32),
        rng.normal(size=6).astype(np.float32),
    )
    bn.gamma.assign(gamma)
    bn.beta.assign(beta)
    tbn = torch.nn.BatchNorm2d(6)
    with torch.no_grad():
        tbn.weight.copy_(torch.from_numpy(gamma))
        tbn.bias.copy_(torch.from_numpy(beta))
    tx = torch.from_numpy(x).permute(0, 3, 1, 2)
    for _ in range(2):
        out = bn(tf.constant(x), training=True).numpy()
        ref = tbn.train()(tx).detach().permute(0, 2, 3, 1).numpy()
        np.testing.assert_allclose(out, ref, atol=1e-5)
    np.testing.assert_allclose(
        bn.moving_mean.numpy(), tbn.running_mean.numpy(), atol=1e-6
    )
    np.testing.assert_allclose(
        bn.moving_variance.numpy(), tbn.running_var.numpy(), atol=1e-6
    )
    out = bn(tf.constant(x), training=False).numpy()
    ref = tbn.eval()(tx).detach().permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(out, ref, atol=1e-5)


def test_conv_padding_modes():
    x = tf.random.uniform((1, 10, 10, 2))
    assert Conv2d(2, 4, 7, 3)(x).shape == (1, 10, 10, 4)
    assert Conv2d(2, 4, 7, 0)(x).shape == (1, 4, 4, 4)
    assert Conv2d(2, 4, 4, 0)(x).shape == (1, 7, 7, 4)
    assert Conv2d(2, 4, 7, 1)(x).shape == (1, 6, 6, 4)


def test_blocks_shapes_and_nearest_upsampling():
    x = tf.random.uniform((2, 8, 8, 4))
    assert DownBlock2d(4, 6)(x).shape == (2, 4, 4, 6)
    assert ResBlock2d(4, 3, 1)(x).shape == (2, 8, 8, 4)
    up = UpBlock2d(4, 6)
    assert up(x).shape == (2, 16, 16, 6)


def test_hourglass_channel_tables():
    # vox-256 kp detector: be=32, in=3, nb=5, mf=1024 -> 35 channels (spec 2.1)
    hg = Hourglass(32, 3, 5, 1024)
    assert hg.out_filters == 35
    assert [b.conv.out_features for b in hg.encoder.down_blocks] == [
        64,
        128,
        256,
        512,
        1024,
    ]
    assert [
        (b.conv.in_features, b.conv.out_features) for b in hg.decoder.up_blocks
    ] == [(1024, 512), (1024, 256), (512, 128), (256, 64), (128, 32)]
    # dense motion: be=64, in=44 -> 108
    hg = Hourglass(64, 44, 5, 1024)
    assert hg.out_filters == 108
    assert [
        (b.conv.in_features, b.conv.out_features) for b in hg.decoder.up_blocks
    ] == [(1024, 1024), (2048, 512), (1024, 256), (512, 128), (256, 64)]
    small = Hourglass(4, 3, 2, 16)
    assert small(tf.random.uniform((1, 8, 8, 3))).shape == (1, 8, 8, 7)


def test_up_block_subpixel_equals_upsample_then_conv():
    rng = np.random.default_rng(3)
    x = tf.constant(rng.normal(size=(2, 5, 7, 4)).astype(np.float32))
    up = UpBlock2d(4, 6)
    up(x)
    up.conv.conv.kernel.assign(rng.normal(size=(3, 3, 4, 6)).astype(np.float32))
    up.conv.conv.bias.assign(rng.normal(size=6).astype(np.float32))
    fast = up.conv.conv.kernel  # noqa: F841
    ref = up.conv(tf.repeat(tf.repeat(x, 2, axis=1), 2, axis=2))
    np.testing.assert_allclose(
        up._upsample_conv_subpixel(x).numpy(), ref.numpy(), atol=1e-5
    )
