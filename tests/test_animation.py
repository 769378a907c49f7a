"""Animation: normalize_kp against a NumPy transcription of the original formulas, make_animation
shapes and batching (several frame sizes in one process, starting from a best frame),
find_best_frame, input preparation; the real media path with the tiny reference checkpoint;
`fomm-tutorial animate` argument checks (before any model loads) and defaults."""

from __future__ import annotations

import itertools
import os

import numpy as np
import pytest
import tensorflow as tf

from fomm_tutorial import animation


# ---------------------------------------------------------------------------------------------
# normalize_kp
# ---------------------------------------------------------------------------------------------
def _hull_area(points):
    """Convex hull (monotone chain) + shoelace: independent of scipy."""
    pts = sorted(map(tuple, np.asarray(points, np.float64)))

    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower, upper = [], []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    hull = np.array(lower[:-1] + upper[:-1])
    x, y = hull[:, 0], hull[:, 1]
    return 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def _normalize_kp_numpy(
    kp_source, kp_driving, kp_initial, adapt, relative, relative_jac
):
    """The original animate.normalize_kp, written out per keypoint."""
    scale = 1.0
    if adapt:
        scale = np.sqrt(_hull_area(kp_source["value"][0])) / np.sqrt(
            _hull_area(kp_initial["value"][0])
        )
    value = kp_driving["value"].astype(np.float64).copy()
    jac = kp_driving["jacobian"].astype(np.float64).copy()
    if relative:
        B, K = value.shape[:2]
        for b in range(B):
            for k in range(K):
                bs, bi = (
                    min(b, len(kp_source["value"]) - 1),
                    min(b, len(kp_initial["value"]) - 1),
                )
                value[b, k] = (
                    kp_driving["value"][b, k] - kp_initial["value"][bi, k]
                ) * scale + kp_source["value"][bs, k]
                if relative_jac:
                    jac[b, k] = (
                        kp_driving["jacobian"][b, k]
                        @ np.linalg.inv(kp_initial["jacobian"][bi, k])
                        @ kp_source["jacobian"][bs, k]
                    )
    return value, jac


def _random_kp(rng, batch, num_kp=10):
    return {
        "value": rng.uniform(-0.8, 0.8, (batch, num_kp, 2)).astype(np.float32),
        "jacobian": (
            np.eye(2) + 0.3 * rng.standard_normal((batch, num_kp, 2, 2))
        ).astype(np.float32),
    }


@pytest.mark.parametrize(
    "adapt,relative,relative_jac", list(itertools.product([False, True], repeat=3))
)
def test_normalize_kp_matches_numpy_transcription(adapt, relative, relative_jac):
    rng = np.random.default_rng(1)
    kp_source, kp_initial, kp_driving = (
        _random_kp(rng, 1),
        _random_kp(rng, 1),
        _random_kp(rng, 6),
    )
    got = animation.normalize_kp(
        kp_source,
        kp_driving,
        kp_initial,
        adapt_movement_scale=adapt,
        use_relative_movement=relative,
        use_relative_jacobian=relative_jac,
    )
    value, jac = _normalize_kp_numpy(
        kp_source, kp_driving, kp_initial, adapt, relative, relative_jac
    )
    np.testing.assert_allclose(np.asarray(got["value"]), value, atol=1e-5)
    np.testing.assert_allclose(np.asarray(got["jacobian"]), jac, atol=1e-4)
    if not relative:  # absolute motion: the driving keypoints as they are
        np.testing.assert_array_equal(np.asarray(got["value"]), kp_driving["value"])


def test_normalize_kp_scale_is_convex_hull_ratio_on_batch_element_zero():
    rng = np.random.default_rng(2)
    square = np.array(
        [[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5], [0.0, 0.0]], np.float32
    )
    kp_source = {
        "value": np.stack([square * 0.5, square]),
        "jacobian": np.tile(np.eye(2), (2, 5, 1, 1)),
    }
    kp_initial = {"value": square[None], "jacobian": np.tile(np.eye(2), (1, 5, 1, 1))}
    # batch element 0 of the source is half the size -> movement scaled by 0.5
    assert animation.movement_scale(kp_source, kp_initial) == pytest.approx(0.5)
    shift = {"value": square[None] + 0.2, "jacobian": kp_initial["jacobian"]}
    got = animation.normalize_kp(
        {k: v[:1] for k, v in kp_source.items()},
        shift,
        kp_initial,
        adapt_movement_scale=True,
        use_relative_movement=True,
    )
    np.testing.assert_allclose(
        np.asarray(got["value"]), square[None] * 0.5 + 0.1, atol=1e-6
    )
    pts = rng.uniform(size=(20, 2))
    assert animation.convex_hull_area(pts) == pytest.approx(_hull_area(pts), rel=1e-9)


def test_convex_hull_area_closed_form_and_errors():
    square = np.array([[0, 0], [2, 0], [2, 2], [0, 2], [1, 1]], float)
    assert animation.convex_hull_area(square) == pytest.approx(4.0)
    with pytest.raises(ValueError, match="collinear"):
        animation.convex_hull_area(np.array([[0, 0], [1, 1], [2, 2]], float))
    with pytest.raises(ValueError, match="K >= 3"):
        animation.convex_hull_area(np.zeros((2, 2)))


def test_normalize_kp_rejects_non_dicts():
    with pytest.raises(ValueError, match="kp_driving"):
        animation.normalize_kp(
            {"value": np.zeros((1, 3, 2))},
            np.zeros((1, 3, 2)),
            {"value": np.zeros((1, 3, 2))},
        )


# ---------------------------------------------------------------------------------------------
# make_animation with small stand-in models (batch-independent by construction)
# ---------------------------------------------------------------------------------------------
class _KP:
    """Keypoints from image statistics: deterministic, per-sample."""

    def __init__(self, num_kp=5):
        rng = np.random.default_rng(0)
        self.proj = tf.constant(rng.standard_normal((3, num_kp * 2)).astype(np.float32))
        self.num_kp = num_kp

    def __call__(self, images, training=False):
        feats = tf.reduce_mean(images, axis=[1, 2])  # (B, 3)
        value = tf.tanh(tf.reshape(feats @ self.proj, (-1, self.num_kp, 2)))
        jac = tf.eye(2, batch_shape=[1, 1]) + 0.1 * value[..., None] * tf.ones(
            (1, 1, 1, 2)
        )
        return {"value": value, "jacobian": jac}


class _Gen:
    """Shifts the source by the mean keypoint displacement (per sample)."""

    calls = 0

    def __call__(self, source, kp_source, kp_driving, training=False):
        _Gen.calls += 1
        tf.debugging.assert_equal(tf.shape(source)[0], tf.shape(kp_driving["value"])[0])
        shift = tf.reduce_mean(
            kp_driving["value"] - kp_source["value"], axis=[1, 2]
        )  # (B,)
        jac = tf.reduce_mean(kp_driving["jacobian"], axis=[1, 2, 3])
        pred = tf.clip_by_value(
            source * (0.5 + 0.25 * jac[:, None, None, None])
            + 0.2 * shift[:, None, None, None],
            0.0,
            1.0,
        )
        return {"prediction": pred}


def _inputs(num_frames=7, size=16):
    rng = np.random.default_rng(3)
    source = rng.uniform(size=(size, size, 3)).astype(np.float32)
    driving = rng.uniform(size=(num_frames, size, size, 3)).astype(np.float32)
    return source, driving


@pytest.mark.parametrize(
    "relative,adapt", [(True, True), (True, False), (False, False)]
)
def test_make_animation_shape_and_batching(relative, adapt):
    source, driving = _inputs()
    kp, gen = _KP(), _Gen()
    out1 = animation.make_animation(
        source,
        driving,
        kp,
        gen,
        relative=relative,
        adapt_scale=adapt,
        batch_size=1,
        progress=False,
    )
    out4 = animation.make_animation(
        source,
        driving,
        kp,
        gen,
        relative=relative,
        adapt_scale=adapt,
        batch_size=4,
        progress=False,
    )
    assert out1.shape == (7, 16, 16, 3) and out1.dtype == np.float32
    np.testing.assert_allclose(out1, out4, atol=1e-6)
    # frame-by-frame reference, written out
    kp_s = kp(source[None])
    kp_i = kp(driving[:1])
    for t in (0, 6):
        kp_d = kp(driving[t : t + 1])
        kp_n = animation.normalize_kp(
            kp_s,
            kp_d,
            kp_i,
            adapt_movement_scale=adapt,
            use_relative_movement=relative,
            use_relative_jacobian=relative,
        )
        ref = gen(source[None], kp_source=kp_s, kp_driving=kp_n)["prediction"][0]
        np.testing.assert_allclose(out1[t], ref.numpy(), atol=1e-5)


def test_make_animation_relative_first_frame_keeps_source_keypoints():
    source, driving = _inputs(3)
    out, kps = animation.make_animation(
        source,
        driving,
        _KP(),
        _Gen(),
        relative=True,
        adapt_scale=True,
        batch_size=2,
        progress=False,
        return_keypoints=True,
    )
    np.testing.assert_allclose(
        kps["kp_norm"]["value"][0], kps["kp_source"]["value"][0], atol=1e-6
    )
    np.testing.assert_allclose(
        kps["kp_norm"]["jacobian"][0], kps["kp_source"]["jacobian"][0], atol=1e-5
    )
    assert kps["kp_driving"]["value"].shape == (3, 5, 2)


def test_make_animation_uses_source_encoding_once():
    source, driving = _inputs(5)

    class Gen(_Gen):
        encoded = 0

        def encode_source(self, source, training=False):
            Gen.encoded += 1
            return {"feature": source * 2}

        def __call__(
            self, source, kp_source, kp_driving, training=False, source_features=None
        ):
            assert (
                source_features is not None and source.shape[0] == 1
            )  # batch-1 source, not copied
            n = tf.shape(kp_driving["value"])[0]
            return super().__call__(
                tf.repeat(source, n, 0),
                {k: tf.repeat(v, n, 0) for k, v in kp_source.items()},
                kp_driving,
            )

    out = animation.make_animation(
        source, driving, _KP(), Gen(), batch_size=2, progress=False
    )
    assert out.shape == (5, 16, 16, 3) and Gen.encoded == 1


def test_make_animation_bad_inputs():
    source, driving = _inputs()
    with pytest.raises(ValueError, match="differ in size"):
        animation.make_animation(source[:8, :8], driving, _KP(), _Gen(), progress=False)
    with pytest.raises(ValueError, match=r"\(T, H, W, 3\)"):
        animation.make_animation(source, driving[0, 0], _KP(), _Gen(), progress=False)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        animation.make_animation(source * 255, driving, _KP(), _Gen(), progress=False)
    with pytest.raises(ValueError, match="batch_size"):
        animation.make_animation(
            source, driving, _KP(), _Gen(), batch_size=0, progress=False
        )


def test_prepare_handles_rgba_grey_uint8_and_resizes():
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (20, 30, 4), dtype=np.uint8)
    with pytest.warns(UserWarning, match="source image: resizing 30 x 20 .* stretches"):
        img = animation.prepare_image(rgba, size=(16, 16))
    assert (
        img.shape == (16, 16, 3)
        and img.dtype == np.float32
        and 0 <= img.min()
        and img.max() <= 1
    )
    grey = rng.uniform(size=(16, 16)).astype(np.float32)
    g = animation.prepare_image(grey)
    np.testing.assert_array_equal(g[..., 0], grey)
    np.testing.assert_array_equal(g[..., 2], grey)
    vid = animation.prepare_video(
        rng.uniform(size=(3, 8, 8)).astype(np.float32), size=(4, 4)
    )
    assert vid.shape == (3, 4, 4, 3)
    with pytest.raises(ValueError, match="channel"):
        animation.prepare_image(np.zeros((8, 8, 5), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        animation.prepare_image(np.full((8, 8, 3), np.nan, np.float32))


def test_prepare_video_refuses_one_frame():
    # One (H, W, 3) frame used to be read as H grey frames of shape (W, 3).
    frame = np.zeros((16, 16, 3), np.float32)
    with pytest.raises(ValueError, match=r"frame\[None\]"):
        animation.prepare_video(frame)
    with pytest.raises(ValueError, match=r"frame\[None\]"):
        animation.make_animation(frame, frame, _KP(), _Gen(), progress=False)
    assert animation.prepare_video(frame[None]).shape == (1, 16, 16, 3)


class _GridKP(_KP):
    """A stand-in that, like the real detector, needs static spatial sizes (a coordinate grid)."""

    def __call__(self, images, training=False):
        from fomm_tutorial.grids import make_coordinate_grid

        grid = make_coordinate_grid(images.shape[1], images.shape[2])
        out = super().__call__(images, training)
        out["value"] = out["value"] + 0.0 * tf.reduce_mean(grid)
        return out


def test_make_animation_at_two_frame_sizes_in_one_process():
    # The cached step used to retrace with (None, None) spatial sizes at the second size.
    kp, gen = _GridKP(), _Gen()
    for size in (16, 12, 16):
        source, driving = _inputs(3, size)
        out = animation.make_animation(
            source, driving, kp, gen, batch_size=2, progress=False
        )
        assert out.shape == (3, size, size, 3)


class _TableKP:
    """Keypoints looked up by the frame's mean value (eager only): frame t shows SHAPES[t]."""

    def __init__(self, shapes):
        self.shapes = shapes

    def __call__(self, images, training=False):
        index = np.rint(np.asarray(images).mean(axis=(1, 2, 3)) * 10).astype(int)
        value = np.stack([self.shapes[i] for i in index]).astype(np.float32)
        return {
            "value": value,
            "jacobian": np.tile(np.eye(2), value.shape[:2] + (1, 1)),
        }


def test_find_best_frame_is_the_most_similar_keypoint_shape():
    square = np.array([[-0.2, -0.2], [0.2, -0.2], [0.2, 0.2], [-0.2, 0.2]])
    skew = np.array([[-0.5, -0.1], [0.5, -0.1], [0.1, 0.1], [-0.1, 0.1]])
    shapes = {
        0: square,  # the source
        1: skew,
        2: skew * 0.5 + 0.3,
        3: square * 2.0 + [0.1, -0.3],  # same shape as the source: moved and scaled
        4: 0.5 * square + 0.5 * skew,
    }
    source = np.zeros((8, 8, 3), np.float32)
    driving = np.stack([np.full((8, 8, 3), t / 10, np.float32) for t in (1, 2, 3, 4)])
    assert animation.find_best_frame(source, driving, _TableKP(shapes), 3) == 2
    shapes[3] = np.array([[0.0, 0.0], [0.1, 0.1], [0.2, 0.2], [0.3, 0.3]])  # collinear
    assert animation.find_best_frame(source, driving, _TableKP(shapes)) == 3
    for t in (1, 2, 4):
        shapes[t] = shapes[3]
    with pytest.raises(ValueError, match="degenerate"):
        animation.find_best_frame(source, driving, _TableKP(shapes))


def test_make_animation_from_best_frame_runs_both_ways():
    source, driving = _inputs(7)
    kp, gen = _KP(), _Gen()
    options = dict(batch_size=3, progress=False)
    out, kps = animation.make_animation(
        source, driving, kp, gen, best_frame=4, return_keypoints=True, **options
    )
    forward = animation.make_animation(source, driving[4:], kp, gen, **options)
    backward = animation.make_animation(source, driving[4::-1], kp, gen, **options)
    assert out.shape == driving.shape and kps["best_frame"] == 4
    np.testing.assert_allclose(out[4:], forward, atol=1e-6)
    np.testing.assert_allclose(out[:5], backward[::-1], atol=1e-6)
    # Relative motion starts at the best frame: there the source keeps its keypoints.
    np.testing.assert_allclose(
        kps["kp_norm"]["value"][4], kps["kp_source"]["value"][0], atol=1e-6
    )
    assert kps["kp_driving"]["value"].shape == (7, 5, 2)
    np.testing.assert_allclose(
        kps["kp_driving"]["value"], kp(driving)["value"].numpy(), atol=1e-6
    )
    for bad in (7, -1, 1.5):
        with pytest.raises(ValueError, match="best_frame"):
            animation.make_animation(
                source, driving, kp, gen, best_frame=bad, **options
            )


# ---------------------------------------------------------------------------------------------
# Real models and media
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_models(reference_dir):
    return animation.load_models(
        str(reference_dir / "vox-256-tiny.yaml"),
        reference_dir / "vox-256-tiny-cpk.pth.tar",
    )


def test_real_models_batching_equivalence(tiny_models, reference):
    source = reference["source"][0]
    driving = np.concatenate(
        [reference["driving"], reference["source"], reference["driving"]]
    )  # 6 frames
    args = (source, driving, tiny_models["kp_detector"], tiny_models["generator"])
    out1 = animation.make_animation(*args, batch_size=1, progress=False)
    out4 = animation.make_animation(*args, batch_size=4, progress=False)
    assert out1.shape == (6, 128, 128, 3)
    np.testing.assert_allclose(out1, out4, atol=1e-5)


def test_real_models_absolute_matches_reference_generator(tiny_models, reference):
    # Absolute motion on the reference driving frames reproduces the original generator output.
    out = animation.make_animation(
        reference["source"][0],
        reference["driving"][:1],
        tiny_models["kp_detector"],
        tiny_models["generator"],
        relative=False,
        adapt_scale=False,
        progress=False,
    )
    np.testing.assert_allclose(out[0], reference["generator/prediction"][0], atol=1e-4)


def test_real_media_path(tiny_models, data_dir):
    from fomm_tutorial import media

    size = tuple(tiny_models["config"]["dataset_params"]["frame_shape"][:2])
    source = media.read_image(data_dir / "source.png", size=size)
    driving = media.read_video(data_dir / "driving.mp4", size=size, max_frames=16)
    assert source.shape == (128, 128, 3) and driving.shape == (16, 128, 128, 3)
    out = animation.make_animation(
        source,
        driving,
        tiny_models["kp_detector"],
        tiny_models["generator"],
        relative=True,
        adapt_scale=True,
        batch_size=8,
        progress=False,
    )
    assert out.shape == (16, 128, 128, 3) and np.isfinite(out).all()


# ---------------------------------------------------------------------------------------------
# fomm-tutorial animate
# ---------------------------------------------------------------------------------------------
def test_cli_and_library_defaults_agree(reference_dir):
    import inspect

    from fomm_tutorial import cli

    paths = ["--config", "vox-256-tiny", "--checkpoint", str(reference_dir)]
    paths += ["--source", "s.png", "--driving", "d.mp4", "--out", "o.mp4"]
    args = cli.build_parser().parse_args(["animate", *paths])
    defaults = inspect.signature(animation.make_animation).parameters
    assert args.relative is defaults["relative"].default is True
    assert args.adapt_scale is defaults["adapt_scale"].default is True
    assert args.batch_size == defaults["batch_size"].default
    assert args.best_frame is defaults["best_frame"].default is None
    absolute = cli.build_parser().parse_args(
        ["animate", *paths, "--no-relative", "--no-adapt-scale"]
    )
    assert absolute.relative is False and absolute.adapt_scale is False
    original = cli.build_parser().parse_args(  # the original demo's spelling
        ["animate", *paths, "--relative", "--adapt_scale", "--find_best_frame"]
    )
    assert original.relative and original.adapt_scale and original.find_best_frame
    assert (
        cli.build_parser()
        .parse_args(["animate", *paths, "--best_frame", "3"])
        .best_frame
        == 3
    )


@pytest.fixture
def no_models(monkeypatch):
    """Fail the test if a model is built or loaded: bad arguments must be found first."""

    def forbidden(*args, **kwargs):
        raise AssertionError("a model was loaded before the arguments were checked")

    monkeypatch.setattr(animation, "load_models", forbidden)
    from fomm_tutorial import checkpoint

    monkeypatch.setattr(checkpoint, "build_models", forbidden)


def _animate_args(reference_dir, data_dir, out, *extra):
    return [
        "animate",
        "--config",
        str(reference_dir / "vox-256-tiny.yaml"),
        "--checkpoint",
        str(reference_dir / "vox-256-tiny-cpk.pth.tar"),
        "--source",
        str(data_dir / "source.png"),
        "--driving",
        str(data_dir / "driving.mp4"),
        "--out",
        str(out),
        *extra,
    ]


def _one_line_error(capsys, *words):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    for word in words:
        assert word in err, err


def test_cli_bad_arguments_fail_before_any_model_loads(
    reference_dir, data_dir, tmp_path, capsys, no_models
):
    from fomm_tutorial import cli

    def run(out, *extra):
        return cli.main(_animate_args(reference_dir, data_dir, out, *extra))

    good = tmp_path / "result.mp4"
    assert run(good, "--fps", "0") == 2
    _one_line_error(capsys, "--fps")
    assert run(good, "--fps", "nan") == 2
    _one_line_error(capsys, "--fps")
    assert run(good, "--batch-size", "0") == 2
    _one_line_error(capsys, "batch")
    assert run(good, "--best-frame", "-1") == 2
    _one_line_error(capsys, "--best-frame")
    assert run(good, "--best-frame", "2", "--find-best-frame") == 2
    _one_line_error(capsys, "--find-best-frame")
    folder = tmp_path / "folder.mp4"
    folder.mkdir()
    assert run(folder) == 2
    _one_line_error(capsys, "is a folder")
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert run(afile / "sub" / "result.gif") == 2
    _one_line_error(capsys, "is a file")
    assert run(good, "--best-frame", "100000") == 2  # checked once the video is read
    _one_line_error(capsys, "--best-frame")
    assert not good.exists()


@pytest.mark.skipif(
    not os.path.isdir("/proc/self"), reason="needs a read-only /proc to test with"
)
def test_cli_unwritable_out_fails_before_any_model_loads(
    reference_dir, data_dir, capsys, no_models
):
    from fomm_tutorial import cli

    # os.access tells root that anything is writable; a read-only file system is not.
    assert (
        cli.main(_animate_args(reference_dir, data_dir, "/proc/fomm-result.mp4")) == 2
    )
    _one_line_error(capsys, "cannot write")


def test_damaged_weights_are_a_one_line_error(
    reference_dir, data_dir, tmp_path, capsys
):
    from fomm_tutorial import checkpoint, cli

    config = str(reference_dir / "vox-256-tiny.yaml")
    models = checkpoint.build_models(config)
    folder = tmp_path / "converted"
    folder.mkdir()
    for name in ("kp_detector", "generator"):
        models[name].save_weights(str(folder / f"{name}.weights.h5"))
    whole = (folder / "generator.weights.h5").read_bytes()
    (folder / "generator.weights.h5").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ValueError, match="damaged or incomplete"):
        animation.load_models(config, folder)
    args = _animate_args(reference_dir, data_dir, tmp_path / "o.mp4")
    args[args.index("--checkpoint") + 1] = str(folder)
    assert cli.main(args) == 2
    _one_line_error(capsys, "generator.weights.h5", "damaged")


def test_cli_find_best_frame_end_to_end(reference_dir, data_dir, tmp_path, capsys):
    from fomm_tutorial import cli, media

    frames = media.read_video(data_dir / "driving.mp4", size=64, max_frames=6)
    driving = tmp_path / "driving.gif"
    media.write_video(driving, frames, fps=10)
    out = tmp_path / "result.gif"
    args = _animate_args(reference_dir, data_dir, out, "--find-best-frame")
    args[args.index("--driving") + 1] = str(driving)
    assert cli.main(args) == 0
    printed = capsys.readouterr().out
    assert "best frame:" in printed
    assert media.count_frames(out) == 6
    assert media.video_fps(out) == pytest.approx(10)


# ---------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------
def test_reconstruction_is_frame_weighted_l1_from_frame_zero():
    from fomm_tutorial import evaluation

    rng = np.random.default_rng(4)
    videos = [
        rng.uniform(size=(2, 16, 16, 3)).astype(np.float32),
        rng.uniform(size=(6, 16, 16, 3)).astype(np.float32),
    ]
    kp, gen = _KP(), _Gen()
    res = evaluation.reconstruction(
        videos, kp, gen, batch_size=4, return_predictions=True
    )
    assert res["num_frames"] == 8 and [len(f) for f in res["per_frame"]] == [2, 6]
    expected = []
    for video in videos:
        kp_s = kp(video[:1])
        for t in range(len(video)):  # every frame, frame 0 included, absolute keypoints
            pred = gen(video[:1], kp_source=kp_s, kp_driving=kp(video[t : t + 1]))[
                "prediction"
            ][0].numpy()
            expected.append(np.abs(pred - video[t]).mean())
    np.testing.assert_allclose(np.concatenate(res["per_frame"]), expected, atol=1e-6)
    assert res["l1"] == pytest.approx(
        np.mean(expected), abs=1e-6
    )  # frame-weighted, not video-weighted
    assert res["l1"] != pytest.approx(res["per_video"].mean(), abs=1e-9)
    assert res["predictions"][1].shape == (6, 16, 16, 3)


def test_keypoint_metrics_recover_permutation_and_pose():
    from fomm_tutorial import evaluation

    rng = np.random.default_rng(5)
    true = rng.uniform(-0.7, 0.7, (40, 3, 2))
    perm = np.array([3, 0, 4])  # part p is keypoint perm[p]
    pred = rng.uniform(-0.9, 0.9, (40, 5, 2))
    pred[:, perm] = true + 0.01 * rng.standard_normal(true.shape)
    m = evaluation.keypoint_metrics(pred, true, image_size=65)
    np.testing.assert_array_equal(m["assignment"], perm)
    assert (
        m["matched_error"] < 0.03 and m["regression_error"] < 0.05 < m["baseline_error"]
    )
    assert m["matched_error_px"] == pytest.approx(m["matched_error"] * 32)
    assert evaluation.average_keypoint_distance(
        true, true + [0.3, 0.4]
    ) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="frames"):
        evaluation.keypoint_metrics(pred[:3], true)


# ---------------------------------------------------------------------------------------------
# Issue 18: frame sizes the models cannot take, streaming, and the animate command's safety
# ---------------------------------------------------------------------------------------------
def test_make_animation_refuses_frame_sizes_the_models_cannot_take(tiny_models):
    # 63 x 63 frames: the tiny model silently returned 60 x 60 frames, sprites-64 raised
    # a Keras traceback (ConcatOp) from inside its hourglass.
    rng = np.random.default_rng(0)
    source, driving = rng.random((63, 63, 3)), rng.random((2, 63, 63, 3))
    models = (tiny_models["kp_detector"], tiny_models["generator"])
    with pytest.raises(ValueError, match=r"cannot animate 63 x 63 .*return 60 x 60"):
        animation.make_animation(source, driving, *models, progress=False)

    class Concat(_Gen):  # fails as a U-Net does on odd sizes: inside a compiled step
        def __call__(self, source, kp_source, kp_driving, training=False):
            half = source[:, : source.shape[1] // 2 + 1]
            return {"prediction": tf.concat([source, half], axis=-1)}

    with pytest.raises(
        ValueError, match=r"cannot animate 16 x 16 .*Dimension 1 in both shapes"
    ) as err:
        animation.make_animation(*_inputs(), _KP(), Concat(), progress=False)
    assert len(str(err.value).splitlines()) == 1


def test_animator_reads_one_batch_ahead_at_most():
    source, driving = _inputs(num_frames=11)
    read = []

    def frames():
        for frame in driving:
            read.append(1)
            yield frame

    animator = animation.Animator(source, driving[0], _KP(), _Gen())
    done = 0
    for part in animator.stream(animation.batches(frames(), 3)):
        assert len(read) <= done + 3  # only the batch being animated has been read
        done += len(part.prediction)
    assert done == 11 and part.driving.shape == (2, 16, 16, 3)
    whole = animation.make_animation(source, driving, _KP(), _Gen(), progress=False)
    streamed = np.concatenate(
        [p.prediction for p in animator.stream(animation.batches(driving, 4))]
    )
    np.testing.assert_allclose(streamed, whole, atol=1e-6)


@pytest.fixture
def stand_in_models(monkeypatch):
    """`animate` with the stand-in models (any frame size, no weights to load)."""
    monkeypatch.setattr(
        animation,
        "load_models",
        lambda config, checkpoint: {"kp_detector": _KP(), "generator": _Gen()},
    )


def _sprite_driving(path, num_frames=10, size=128):
    from fomm_tutorial import media
    from fomm_tutorial.sprites import sprite_video

    frames, _ = sprite_video(num_frames, size, seed=1, identity_seed=3)
    media.write_video(path, frames, fps=10)
    return path


@pytest.mark.parametrize("extra", [[], ["--best-frame", "4"], ["--side-by-side"]])
def test_cli_streams_and_equals_make_animation(
    reference_dir, data_dir, tmp_path, capsys, monkeypatch, stand_in_models, extra
):
    # The CLI held the whole driving video and the whole result (~5x the output in memory).
    from fomm_tutorial import cli, media

    driving = _sprite_driving(tmp_path / "driving.gif")
    read, written = [], []
    iter_video = media.iter_video

    def counting(*args, **kwargs):  # counts the frames read from the latest pass
        read.clear()
        for frame in iter_video(*args, **kwargs):
            read.append(1)
            yield frame

    write = media.VideoWriter.write

    def checked(self, frames):
        if self.path.name == "result.gif":
            assert len(read) - sum(written) <= 3  # one batch read ahead of the writer
            written.append(len(frames))
        return write(self, frames)

    monkeypatch.setattr(media, "iter_video", counting)
    monkeypatch.setattr(media.VideoWriter, "write", checked)
    args = _animate_args(reference_dir, data_dir, tmp_path / "result.gif", *extra)
    args[args.index("--driving") + 1] = str(driving)
    assert cli.main(args + ["--batch-size", "3"]) == 0, capsys.readouterr().err
    assert written == [3, 3, 3, 1]
    assert "wrote" in capsys.readouterr().out
    result = iter_video(tmp_path / "result.gif")
    source = media.read_image(data_dir / "source.png", size=128)
    frames = media.read_video(driving)
    best = int(extra[1]) if extra[:1] == ["--best-frame"] else None
    expected = animation.make_animation(
        source, frames, _KP(), _Gen(), best_frame=best, progress=False
    )
    if extra == ["--side-by-side"]:
        assert next(result).shape == (128, 3 * 128 + 4, 3)
    else:
        assert np.abs(np.stack(list(result)) - expected).mean() < 0.005  # GIF palette


def test_cli_full_disk_is_one_line_and_keeps_the_old_result(
    reference_dir, data_dir, tmp_path, capsys, monkeypatch, stand_in_models
):
    # On a full disk the CLI printed "wrote ... 265 frames", exited 0 and left a broken
    # mp4 in place of the good one.
    from fomm_tutorial import cli, media

    if not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full")
    driving = _sprite_driving(tmp_path / "driving.gif")

    def temporary(path):  # the temporary file of the result is /dev/full (ENOSPC)
        link = path.parent / f".{path.name}.part{path.suffix}"
        link.symlink_to("/dev/full")
        return link

    monkeypatch.setattr(media, "_temporary_beside", temporary, raising=False)
    names = ["driving.gif"]
    for name in ("result.gif", "result.mp4"):
        out = tmp_path / name
        out.write_bytes(b"good")
        args = _animate_args(reference_dir, data_dir, out)
        args[args.index("--driving") + 1] = str(driving)
        assert cli.main(args) == 2
        captured = capsys.readouterr()
        assert "wrote" not in captured.out
        _one_line_error_text(captured.err, name, "No space left", "left as it was")
        assert out.read_bytes() == b"good"
        names.append(name)  # and no temporary file is left
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)


def _one_line_error_text(err, *words):
    err = err.strip()
    assert len(err.splitlines()) == 1, err
    for word in words:
        assert word in err, err


def test_cli_refuses_bad_media_and_outputs_before_any_model_loads(
    reference_dir, data_dir, tmp_path, capsys, no_models
):
    from PIL import Image

    from fomm_tutorial import cli, media

    def run(out, *extra, source=None, driving=None):
        args = _animate_args(reference_dir, data_dir, out, *extra)
        if source is not None:
            args[args.index("--source") + 1] = str(source)
        if driving is not None:
            args[args.index("--driving") + 1] = str(driving)
        return cli.main(args)

    # --out is the driving video or the source (also by another spelling or a link).
    own = tmp_path / "mine.mp4"
    own.write_bytes((data_dir / "driving.mp4").read_bytes())
    (tmp_path / "link.mp4").symlink_to(own)
    sub = tmp_path / "sub"
    sub.mkdir()
    for out in (own, tmp_path / "link.mp4", sub / ".." / "mine.mp4"):
        assert run(out, driving=own) == 2
        _one_line_error(capsys, "--driving", "destroy")
    png_out = tmp_path / "face.gif"
    png_out.write_bytes((data_dir / "source.png").read_bytes())
    assert run(png_out, source=png_out) == 2
    _one_line_error(capsys, "--source", "destroy")
    assert own.read_bytes() == (data_dir / "driving.mp4").read_bytes()
    # An existing folder as --out, whatever its name.
    assert run(sub) == 2
    _one_line_error(capsys, "is a folder", "result.mp4")
    # Frame rates the container cannot store.
    for name, fps in (("o.gif", "1e-300"), ("o.mp4", "1e-300"), ("o.mp4", "1e9")):
        assert run(tmp_path / name, "--fps", fps) == 2
        _one_line_error(capsys, "fps", "cannot be stored")
    # Media: a decompression bomb, a 1 x 1 source, 8 x 8 frames, a PNG named .mp4.
    bomb = tmp_path / "bomb.png"
    from test_media import _png_header  # tests/ is on sys.path (no package)

    _png_header(bomb, 60000, 60000)
    assert run(tmp_path / "o.mp4", source=bomb) == 2
    _one_line_error(capsys, "bomb.png", "60000 x 60000")
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(tmp_path / "dot.png")
    assert run(tmp_path / "o.mp4", source=tmp_path / "dot.png") == 2
    _one_line_error(capsys, "dot.png", "too small")
    media.write_video(tmp_path / "tiny.gif", np.zeros((3, 8, 8, 3)), fps=10)
    assert run(tmp_path / "o.mp4", driving=tmp_path / "tiny.gif") == 2
    _one_line_error(capsys, "tiny.gif", "too small")
    (tmp_path / "still.mp4").write_bytes((data_dir / "source.png").read_bytes())
    assert run(tmp_path / "o.mp4", driving=tmp_path / "still.mp4") == 2
    _one_line_error(capsys, "still.mp4 is a PNG image")
    assert not (tmp_path / "o.mp4").exists() and not (tmp_path / "o.gif").exists()


def test_cli_prints_no_tensorflow_start_up_lines(tmp_path):
    # Abseil's banner, oneDNN's notice and WARNING:tensorflow lines on every run.
    import subprocess
    import sys

    from fomm_tutorial.pretrained import pretrained_dir

    driving = _sprite_driving(tmp_path / "driving.gif", num_frames=4, size=64)
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    argv = [sys.executable, "-m", "fomm_tutorial", "animate", "--config", "sprites-64"]
    argv += [
        "--checkpoint",
        str(pretrained_dir("sprites-64")),
        "--source",
        str(driving),
    ]
    argv += ["--driving", str(driving), "--out", str(tmp_path / "out.mp4")]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "", done.stderr
    assert "wrote" in done.stdout


def test_readme_sprites_snippet_runs_and_lists_shipped_configs():
    # The snippet used make_animation without importing it; sprites-64 was not listed.
    from pathlib import Path

    from fomm_tutorial.config import shipped_configs

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    snippet = readme.split("A model trained by this package ships", 1)[1]
    snippet = snippet.split("```python", 1)[1].split("```", 1)[0]
    scope = {}
    exec(compile(snippet, "README.md", "exec"), scope)
    assert scope["frames"].shape == (32, 64, 64, 3)
    listed = readme.split("the name of a shipped one (", 1)[1].split(")", 1)[0]
    listed = {name.strip(" `\n") for name in listed.split(",")}
    assert "sprites-64" in listed and listed <= set(shipped_configs())


def test_cli_brings_the_driving_frame_rate_into_the_outputs_range(
    reference_dir, data_dir, tmp_path, capsys, stand_in_models
):
    # A 60-fps driving video into a GIF (at most 50 fps): written at 50, with one warning.
    from fomm_tutorial import cli, media
    from fomm_tutorial.sprites import sprite_video

    frames, _ = sprite_video(4, 128, seed=1, identity_seed=3)
    media.write_video(tmp_path / "fast.mp4", frames, fps=60)
    args = _animate_args(reference_dir, data_dir, tmp_path / "result.gif")
    args[args.index("--driving") + 1] = str(tmp_path / "fast.mp4")
    with pytest.warns(UserWarning, match="plays at 60 fps.*writing 50 fps.*--fps"):
        assert cli.main(args) == 0
    assert "50 fps" in capsys.readouterr().out
    assert media.video_fps(tmp_path / "result.gif") == pytest.approx(50)


def test_resolve_checkpoint_takes_paths_and_shipped_names(tmp_path):
    from fomm_tutorial.animation import resolve_checkpoint
    from fomm_tutorial.pretrained import pretrained_dir

    assert resolve_checkpoint(tmp_path) == tmp_path
    assert resolve_checkpoint("sprites-64") == pretrained_dir("sprites-64")
    with pytest.raises(FileNotFoundError, match="does not exist.*sprites-64"):
        resolve_checkpoint(tmp_path / "nope.pth.tar")
