"""load_config: the eight published configs and the fixture's, schema errors, defaults, pitfalls."""

from __future__ import annotations

import copy
import warnings

import pytest
import yaml

from fomm_tutorial.config import (
    config_path,
    load_config,
    shipped_configs,
    validate_config,
)

PUBLISHED = [
    "vox-256",
    "vox-adv-256",
    "taichi-256",
    "taichi-adv-256",
    "bair-256",
    "fashion-256",
    "mgif-256",
    "nemo-256",
]


@pytest.mark.parametrize("name", PUBLISHED + ["vox-256-tiny", "sprites-64"])
def test_shipped_configs_load(name):
    assert name in shipped_configs()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # consistent as shipped: no note on load
        cfg = load_config(name)
    assert (
        cfg["dataset_params"]["frame_shape"][2]
        == cfg["model_params"]["common_params"]["num_channels"]
    )
    assert cfg["model_params"]["kp_detector_params"]["pad"] == 0
    # same result from the path and from the name with its extension
    assert load_config(config_path(name)) == cfg == load_config(f"{name}.yaml")


def test_published_values_spec_section_8():
    c = {n: load_config(n) for n in PUBLISHED}
    for cfg in c.values():
        mp = cfg["model_params"]
        assert cfg["dataset_params"]["frame_shape"] == [256, 256, 3]
        assert mp["common_params"] == {
            "num_kp": 10,
            "num_channels": 3,
            "estimate_jacobian": True,
        }
        assert mp["kp_detector_params"]["scale_factor"] == 0.25
        assert mp["generator_params"]["dense_motion_params"]["kp_variance"] == 0.01
        assert cfg["train_params"]["scales"] == [1, 0.5, 0.25, 0.125]
        assert isinstance(cfg["train_params"]["lr_generator"], float)
    gan = {n: c[n]["train_params"]["loss_weights"]["generator_gan"] for n in PUBLISHED}
    assert [n for n, g in gan.items() if g == 0] == ["vox-256", "taichi-256"]
    assert [
        n for n in PUBLISHED if c[n]["model_params"]["discriminator_params"]["use_kp"]
    ] == ["vox-adv-256", "taichi-adv-256"]
    assert [
        n for n in PUBLISHED if c[n]["model_params"]["discriminator_params"]["sn"]
    ] == ["vox-256", "bair-256", "mgif-256", "nemo-256"]
    assert [
        n
        for n in PUBLISHED
        if c[n]["model_params"]["kp_detector_params"]["single_jacobian_map"]
    ] == ["mgif-256"]
    assert c["taichi-adv-256"]["train_params"]["lr_kp_detector"] == 0
    assert c["bair-256"]["train_params"]["epoch_milestones"] == [12, 18]
    assert c["mgif-256"]["dataset_params"]["augmentation_params"]["resize_param"][
        "ratio"
    ] == [0.9, 1.1]
    assert "jitter_param" not in c["nemo-256"]["dataset_params"]["augmentation_params"]


def _tiny():
    return copy.deepcopy(load_config("vox-256-tiny"))


def test_defaults_filled():
    raw = yaml.safe_load(open(config_path("vox-256")))
    cfg = validate_config(raw)
    mp = cfg["model_params"]
    assert mp["discriminator_params"]["use_kp"] is False
    assert mp["kp_detector_params"]["single_jacobian_map"] is False
    assert mp["kp_detector_params"]["pad"] == 0
    del raw["model_params"]["generator_params"]["estimate_occlusion_map"]
    del raw["model_params"]["kp_detector_params"]["scale_factor"]
    del raw["model_params"]["discriminator_params"]["sn"]
    cfg = validate_config(raw)
    assert cfg["model_params"]["generator_params"]["estimate_occlusion_map"] is False
    assert cfg["model_params"]["kp_detector_params"]["scale_factor"] == 1
    assert cfg["model_params"]["discriminator_params"]["sn"] is False
    assert cfg["model_params"]["discriminator_params"]["kp_variance"] == 0.01
    assert (
        "kp_detector_params" in raw["model_params"]
    )  # input not modified beyond our deletions


def test_unknown_keys_named_with_path_and_nearest():
    raw = _tiny()
    raw["model_params"]["common_params"]["num_kps"] = 3
    raw["train_params"]["loss_weights"]["perceptul"] = [1]
    raw["extra_section"] = {}
    with pytest.raises(ValueError) as err:
        validate_config(raw)
    msg = str(err.value)
    assert (
        "model_params.common_params.num_kps" in msg and "did you mean 'num_kp'" in msg
    )
    assert (
        "train_params.loss_weights.perceptul" in msg
        and "did you mean 'perceptual'" in msg
    )
    assert "unknown key extra_section" in msg


@pytest.mark.parametrize(
    "path, value",
    [
        (("model_params", "common_params", "num_kp"), "ten"),
        (("model_params", "common_params", "num_kp"), 10.0),
        (("model_params", "common_params", "estimate_jacobian"), "yes please"),
        (("dataset_params", "frame_shape"), [256, 256]),
        (("train_params", "epoch_milestones"), 60),
        (("model_params", "kp_detector_params", "temperature"), [0.1]),
    ],
)
def test_wrong_types_rejected(path, value):
    raw = _tiny()
    d = raw
    for k in path[:-1]:
        d = d[k]
    d[path[-1]] = value
    with pytest.raises(ValueError, match=".".join(path).replace(".", r"\.")):
        validate_config(raw)


def test_missing_required_keys():
    raw = _tiny()
    del raw["model_params"]["common_params"]["num_kp"]
    del raw["dataset_params"]["frame_shape"]
    with pytest.raises(ValueError) as err:
        validate_config(raw)
    assert "missing key model_params.common_params.num_kp" in str(err.value)
    assert "missing key dataset_params.frame_shape" in str(err.value)


def test_scale_written_as_float_normalised():
    raw = _tiny()
    raw["train_params"]["scales"] = [1.0, 0.5]
    with pytest.warns(UserWarning, match=r"train_params\.scales\[0\].*str\(scale\)"):
        cfg = validate_config(raw)
    assert cfg["train_params"]["scales"] == [1, 0.5] and isinstance(
        cfg["train_params"]["scales"][0], int
    )
    assert "prediction_" + str(cfg["train_params"]["scales"][0]) == "prediction_1"
    raw["model_params"]["discriminator_params"]["scales"] = [0.3]
    with pytest.raises(ValueError, match=r"discriminator_params\.scales\[0\]"):
        validate_config(raw)


def test_yaml11_numeric_string_and_legacy_image_shape(tmp_path):
    text = (
        open(config_path("vox-256-tiny")).read().replace("frame_shape:", "image_shape:")
    )
    text = text.replace("lr_generator: 0.0002", "lr_generator: 2e-4")
    p = tmp_path / "old.yaml"
    p.write_text(text)
    assert (
        yaml.safe_load(text)["train_params"]["lr_generator"] == "2e-4"
    )  # the YAML 1.1 pitfall
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        cfg = load_config(p)
    assert any("image_shape" in str(x.message) for x in w)
    assert cfg["dataset_params"]["frame_shape"] == [128, 128, 3]
    assert cfg["train_params"]["lr_generator"] == pytest.approx(2e-4)


def test_consistency_and_missing_file():
    raw = _tiny()
    raw["dataset_params"]["frame_shape"] = [128, 128, 1]
    with pytest.raises(ValueError, match="num_channels"):
        validate_config(raw)
    with pytest.raises(FileNotFoundError, match="vox-256"):
        load_config("vox-265")


@pytest.mark.parametrize(
    "path, value, message",
    [
        (("train_params", "lr_generator"), -1, "must be a finite number >= 0, got -1"),
        (("train_params", "lr_kp_detector"), float("nan"), "finite number >= 0"),
        (("train_params", "lr_discriminator"), "nan", "finite number >= 0"),
        (("model_params", "kp_detector_params", "temperature"), 0, "> 0, got 0"),
        (("model_params", "kp_detector_params", "max_features"), 0, "(>= 1), got 0"),
        (("train_params", "num_repeats"), -3, "a positive integer (>= 1), got -3"),
        (("train_params", "batch_size"), 0, "a positive integer"),
        (("model_params", "common_params", "num_kp"), 0, "a positive integer"),
        (("model_params", "kp_detector_params", "pad"), -1, "an integer >= 0"),
        (("model_params", "discriminator_params", "kp_variance"), 0, "> 0"),
        (("train_params", "transform_params", "sigma_affine"), -0.1, ">= 0"),
        (("train_params", "loss_weights", "equivariance_value"), float("inf"), ">= 0"),
    ],
)
def test_out_of_range_values_name_the_key(path, value, message):
    raw = _tiny()
    d = raw
    for k in path[:-1]:
        d = d[k]
    d[path[-1]] = value
    with pytest.raises(ValueError) as err:
        validate_config(raw)
    msg = str(err.value)
    assert ".".join(path) + ": must be " in msg and message in msg


def test_out_of_range_list_element_is_named():
    raw = _tiny()
    raw["train_params"]["loss_weights"]["perceptual"] = [10, -1, 10, 10, 10]
    with pytest.raises(ValueError, match=r"loss_weights\.perceptual\[1\]: must be"):
        validate_config(raw)


def test_zeroth_order_model_drops_the_jacobian_weight():
    """estimate_jacobian false with equivariance_jacobian 10 (sprites-64 as it shipped)
    failed with KeyError 'jacobian' in training: the weight is set to 0 with a note."""
    raw = _tiny()
    raw["model_params"]["common_params"]["estimate_jacobian"] = False
    with pytest.warns(UserWarning, match="equivariance_jacobian 10 ignored"):
        cfg = validate_config(raw)
    assert cfg["train_params"]["loss_weights"]["equivariance_jacobian"] == 0


def test_frame_size_too_small_names_the_network_and_the_smallest_size():
    raw = _tiny()
    raw["dataset_params"]["frame_shape"] = [64, 64, 3]
    with pytest.raises(ValueError) as err:
        validate_config(raw)
    msg = str(err.value)
    assert "1 problem" in msg and "at scale 0.5" in msg
    assert "a height and width of 64 px does not fit: the discriminator" in msg
    assert "the smallest size that works is 128" in msg
    raw["dataset_params"]["frame_shape"] = [128, 128, 3]
    validate_config(raw)
    raw = _tiny()
    raw["model_params"]["kp_detector_params"]["num_blocks"] = 30
    with pytest.raises(ValueError) as err:
        validate_config(raw)
    msg = str(err.value)
    assert "keypoint detector's hourglass" in msg and "num_blocks 30" in msg
    assert "needs a multiple of 1073741824 px" in msg and "lower that num_blocks" in msg
    raw = _tiny()
    raw["dataset_params"]["frame_shape"] = [130, 128, 3]
    with pytest.raises(ValueError, match="the next above 130 is 160"):
        validate_config(raw)


def test_smallest_frame_size_builds():
    """The size the message reports is one the networks take (a forward pass checks it)."""
    import tensorflow as tf

    from fomm_tutorial.checkpoint import build_models

    cfg = _tiny()
    cfg["dataset_params"]["frame_shape"] = [160, 160, 3]
    models = build_models(validate_config(cfg))
    x = tf.zeros((1, 160, 160, 3))
    kp = models["kp_detector"](x)
    out = models["generator"](x, kp_source=kp, kp_driving=kp)
    assert out["prediction"].shape == (1, 160, 160, 3)


def test_shipped_config_name_finds_the_config_a_model_was_trained_from():
    """A run's config.json (its data elsewhere) names the shipped config it is."""
    from fomm_tutorial.config import shipped_config_name

    cfg = load_config("sprites-64-pyramid")
    cfg["dataset_params"]["root_dir"] = "/somewhere/else"
    assert shipped_config_name(cfg) == "sprites-64-pyramid"
    assert shipped_config_name(load_config("vox-256")) == "vox-256"
    cfg["train_params"]["lr_generator"] = 1e-3
    assert shipped_config_name(cfg) is None
