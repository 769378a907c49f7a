"""Export (``fomm_tutorial.export``, ``fomm-tutorial export``): every format equals Keras.

Two models: the shipped sprites-64 (an occlusion map) at its 64 x 64, and the tiny
reference checkpoint (Jacobians) at a non-square 64 x 96 (``--size``); a model without
Jacobians once more, untrained, in ONNX. Each
format is exported once per model (module-scoped fixtures) and run by its own runtime
(TensorFlow, onnxruntime, LiteRT); the outputs must equal the Keras networks' to 1e-5,
under the documented names. Bad input fails in one line with exit code 2 before any
conversion starts.
"""

from __future__ import annotations

import numpy as np
import pytest

from fomm_tutorial import cli, export

TOLERANCE = 1e-5
TINY_SIZE = (64, 96)


@pytest.fixture(scope="module")
def sprites():
    from fomm_tutorial.pretrained import load_pretrained

    return load_pretrained("sprites-64")


@pytest.fixture(scope="module")
def tiny(reference_dir):
    from fomm_tutorial.animation import load_models

    return load_models("vox-256-tiny", reference_dir / "vox-256-tiny-cpk.pth.tar")


def _inputs(models, size, seed=0):
    """Keras outputs for one image and a moved copy of its keypoints: (feeds, expected)."""
    import tensorflow as tf

    from fomm_tutorial.sprites import sprite_video

    h, w = size
    frames, _ = sprite_video(2, size=max(h, w), seed=seed)
    image = frames[:1, :h, :w]
    kp = models["kp_detector"](tf.constant(image), training=False)
    kp = {k: v.numpy() for k, v in kp.items() if k in ("value", "jacobian")}
    rng = np.random.default_rng(seed)
    feeds = {"source": image, "kp_source_value": kp["value"]}
    moved = {"value": kp["value"] + rng.uniform(-0.1, 0.1, kp["value"].shape)}
    if "jacobian" in kp:
        feeds["kp_source_jacobian"] = kp["jacobian"]
        moved["jacobian"] = kp["jacobian"] @ (
            np.eye(2) + rng.uniform(-0.1, 0.1, kp["jacobian"].shape)
        )
    feeds["kp_driving_value"] = moved["value"]
    if "jacobian" in moved:
        feeds["kp_driving_jacobian"] = moved["jacobian"]
    feeds = {k: np.asarray(v, np.float32) for k, v in feeds.items()}
    out = models["generator"](
        tf.constant(image),
        kp_source={k: tf.constant(feeds[f"kp_source_{k}"]) for k in kp},
        kp_driving={k: tf.constant(feeds[f"kp_driving_{k}"]) for k in kp},
        training=False,
    )
    expected = {
        "kp_detector": {"image": image, **{k: kp[k] for k in kp}},
        "generator": {k: v.numpy() for k, v in out.items()},
    }
    return feeds, expected


@pytest.fixture(scope="module")
def exported(sprites, tiny, tmp_path_factory):
    """``exported(model, format)`` -> out folder, each exported once (on first use)."""
    done = {}

    def get(model, format):
        if (model, format) not in done:
            out = tmp_path_factory.mktemp(f"{model}-{format}")
            if model == "sprites":
                models, size = sprites, None
            else:
                models, size = tiny, TINY_SIZE
            written = export.export_models(
                models, models["config"], out, format, size=size, overwrite=True
            )
            suffix = export.SUFFIXES[format]
            assert written == {n: out / f"{n}{suffix}" for n in export.NETWORKS}
            done[(model, format)] = out
        return done[(model, format)]

    return get


@pytest.mark.parametrize("format", export.FORMATS)
@pytest.mark.parametrize("model", ["sprites", "tiny"])
def test_exported_graphs_equal_keras(model, format, exported, sprites, tiny):
    models = sprites if model == "sprites" else tiny
    size = (64, 64) if model == "sprites" else TINY_SIZE
    out = exported(model, format)
    feeds, expected = _inputs(models, size)
    names = export.graph_names(models["config"])
    jac = bool(models["config"]["model_params"]["common_params"]["estimate_jacobian"])
    assert names["kp_detector"]["outputs"] == ["value"] + ["jacobian"] * jac
    assert ("kp_source_jacobian" in names["generator"]["inputs"]) == jac
    assert names["generator"]["outputs"] == ["prediction", "occlusion_map"]
    k = models["config"]["model_params"]["common_params"]["num_kp"]
    for network in export.NETWORKS:
        run = export.load_exported(out / f"{network}{export.SUFFIXES[format]}")
        assert run.format == format
        assert run.inputs == names[network]["inputs"]
        assert run.outputs == names[network]["outputs"]
        if network == "kp_detector":
            got = run(image=feeds["source"])
            want = {n: expected[network][n] for n in run.outputs}
            assert got["value"].shape == (1, k, 2)
        else:
            got = run(**feeds)
            want = {n: expected[network][n] for n in run.outputs}
            assert got["prediction"].shape == (1, *size, 3)
        assert sorted(got) == sorted(want)
        for name in want:
            assert got[name].shape == want[name].shape, (network, name)
            error = float(np.abs(got[name] - want[name]).max())
            assert error <= TOLERANCE, (network, name, error)


def test_zeroth_order_model_exports_without_jacobians(tmp_path):
    """A model without Jacobians (the ablation's occlusion row, random weights) has no
    Jacobian inputs or outputs, and its ONNX graphs equal Keras."""
    import keras

    from fomm_tutorial.checkpoint import build_models
    from fomm_tutorial.config import load_config

    config = load_config("sprites-64-occlusion")
    keras.utils.set_random_seed(0)
    models = {**build_models(config), "config": config}
    names = export.graph_names(config)
    assert names["kp_detector"]["outputs"] == ["value"]
    assert not any("jacobian" in n for n in names["generator"]["inputs"])
    export.export_models(models, config, tmp_path, "onnx")
    feeds, expected = _inputs(models, (64, 64))
    run = export.load_exported(tmp_path / "generator.onnx")
    got = run(**{n: feeds[n] for n in run.inputs})
    for name in run.outputs:
        error = float(np.abs(got[name] - expected["generator"][name]).max())
        assert error <= TOLERANCE, (name, error)


def test_tflite_graphs_use_builtin_ops_only(exported):
    """No Flex (SELECT_TF_OPS) delegate ops: mobile runtimes have only the builtins."""
    for model in ("sprites", "tiny"):
        out = exported(model, "tflite")
        for network in export.NETWORKS:
            data = (out / f"{network}.tflite").read_bytes()
            assert b"Flex" not in data, (model, network)


def test_onnx_opset_and_no_grid_sample(exported):
    import onnx

    proto = onnx.load(str(exported("sprites", "onnx") / "generator.onnx"))
    opsets = {o.domain: o.version for o in proto.opset_import}
    assert opsets[""] >= 13
    ops = {node.op_type for node in proto.graph.node}
    assert "GridSample" not in ops and ops & {"Gather", "GatherND", "GatherElements"}


# ---------------------------------------------------------------------------------------
# The command line
# ---------------------------------------------------------------------------------------
def _args(out, *extra, config="sprites-64", checkpoint="sprites-64", format="onnx"):
    return [
        "export",
        "--config",
        config,
        "--checkpoint",
        str(checkpoint),
        "--format",
        format,
        "--out",
        str(out),
        *extra,
    ]


@pytest.fixture
def no_conversion(monkeypatch):
    """Fails the test if a conversion starts."""

    def convert(*args, **kwargs):
        raise AssertionError("a conversion started")

    monkeypatch.setattr(export, "_convert", convert)


def _one_line_error(capsys, *words):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    # argparse's own refusals (a --format choice) say "fomm-tutorial: error:"
    assert err.startswith("fomm-tutorial") and " error: " in err, err
    for word in words:
        assert word in err, (word, err)
    return err


def test_cli_replaces_graphs_with_overwrite_and_keeps_other_files(
    tmp_path, sprites, capsys
):
    out = tmp_path / "graphs"
    (out / "generator").mkdir(parents=True)
    (out / "generator" / "stale.pb").write_text("old")
    (out / "notes.txt").write_text("mine")
    rc = cli.main(_args(out, "--overwrite", format="saved_model"))
    assert rc == 0
    printed = capsys.readouterr().out
    assert "inputs image -> outputs value, jacobian" in printed  # first order
    inputs = "source, kp_source_value, kp_source_jacobian, kp_driving_value, "
    assert inputs + "kp_driving_jacobian -> outputs prediction" in printed
    assert (out / "notes.txt").read_text() == "mine"
    assert not (out / "generator" / "stale.pb").exists()
    assert sorted(p.name for p in out.iterdir()) == [
        "generator",
        "kp_detector",
        "notes.txt",
    ]
    run = export.load_exported(out / "kp_detector")
    image = np.random.default_rng(1).uniform(size=(1, 64, 64, 3)).astype(np.float32)
    want = sprites["kp_detector"](image, training=False)["value"].numpy()
    assert np.abs(run(image=image)["value"] - want).max() <= TOLERANCE


def test_cli_refuses_an_unknown_format(tmp_path, capsys, no_conversion):
    assert cli.main(_args(tmp_path / "o", format="torchscript")) == 2
    _one_line_error(capsys, "--format", "torchscript", "onnx", "tflite")
    with pytest.raises(ValueError, match="unknown export format 'pt'"):
        export.export_models({}, "sprites-64", tmp_path / "o", "pt")
    assert not (tmp_path / "o").exists()


def test_cli_refuses_a_checkpoint_that_does_not_fit_the_config(
    tmp_path, capsys, no_conversion
):
    out = tmp_path / "o"
    assert cli.main(_args(out, config="vox-256-tiny")) == 2
    _one_line_error(capsys, "does not fit")
    assert not out.exists()


def test_cli_refuses_a_missing_checkpoint(tmp_path, capsys, no_conversion):
    assert cli.main(_args(tmp_path / "o", checkpoint=tmp_path / "nope.pth.tar")) == 2
    _one_line_error(capsys, "nope.pth.tar", "does not exist", "sprites-64")


def test_cli_refuses_a_non_empty_out_without_overwrite(tmp_path, capsys, no_conversion):
    out = tmp_path / "o"
    out.mkdir()
    (out / "kp_detector.onnx").write_bytes(b"keep me")
    assert cli.main(_args(out)) == 2
    _one_line_error(capsys, "not empty", "--overwrite")
    assert (out / "kp_detector.onnx").read_bytes() == b"keep me"


def test_cli_refuses_an_out_that_cannot_be_created(tmp_path, capsys, no_conversion):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert cli.main(_args(blocker / "graphs")) == 2
    _one_line_error(capsys, "a-file", "is a file")
    assert cli.main(_args(blocker)) == 2
    _one_line_error(capsys, "is a file")


def test_cli_refuses_a_size_the_networks_cannot_take(tmp_path, capsys, no_conversion):
    assert cli.main(_args(tmp_path / "o", "--size", "60", "64")) == 2
    _one_line_error(capsys, "height of 60 px", "hourglass", "sizes that work")
    assert cli.main(_args(tmp_path / "o", "--size", "0", "64")) == 2
    _one_line_error(capsys, "--size")


def test_a_conversion_failure_names_the_op_and_the_network(tmp_path):
    """An op without a TFLite builtin (a general matrix inverse) is reported by name."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec((1, 3, 3), tf.float32, name="x")])
    def graph(x):
        return {"y": tf.linalg.inv(x)}

    with pytest.raises(ValueError) as failure:
        export._convert(
            "tflite", graph, tmp_path / "g.tflite", "generator", tf.Module()
        )
    message = str(failure.value)
    assert message.startswith(
        "tflite conversion of the generator failed at op MatrixInverse"
    )
    assert "\n" not in message
    assert not (tmp_path / "g.tflite").exists()


def test_float16_is_a_tflite_option(sprites, tmp_path):
    with pytest.raises(ValueError, match="TFLite option"):
        export.export_models(sprites, sprites["config"], tmp_path, "onnx", float16=True)
