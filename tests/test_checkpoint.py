"""build_models, the checkpoint converter (by state-dict name), its error messages, parameter counts."""

from __future__ import annotations

import copy
import sys

import numpy as np
import pytest
import tensorflow as tf

from fomm_tutorial.checkpoint import build_models, convert_checkpoint, load_state_dict
from fomm_tutorial.config import load_config


def vox_config(size=128, **disc):
    """The shipped vox-256 config at a small frame size (cheap builds), discriminator overrides."""
    cfg = load_config("vox-256")
    cfg["dataset_params"]["frame_shape"] = [size, size, 3]
    cfg["model_params"]["discriminator_params"].update(disc)
    return cfg


def _count(layer):
    return int(sum(np.prod(w.shape) for w in layer.trainable_weights))


@pytest.fixture(scope="module")
def vox_models():
    return build_models(vox_config(128))


@pytest.fixture(scope="module")
def vox_models_variant():
    """mgif-like kp detector (single_jacobian_map) and a vox-adv-like discriminator (use_kp, no sn)."""
    cfg = vox_config(128, sn=False, use_kp=True)
    cfg["model_params"]["kp_detector_params"]["single_jacobian_map"] = True
    return build_models(cfg)


def test_parameter_counts_vox256(vox_models, vox_models_variant):
    models = vox_models
    assert _count(models["kp_detector"]) == 14_215_368
    assert _count(models["generator"].dense_motion_network) == 37_730_268
    assert _count(models["generator"]) == 45_575_391
    assert _count(models["discriminator"]) == 2_758_849
    assert _count(vox_models_variant["discriminator"]) == 2_769_089


def test_state_dict_names_and_shapes_vox256(vox_models):
    """The names/shapes the converter expects are the original layout (spec 2.9)."""
    models = vox_models
    kp = models["kp_detector"].torch_variables()
    assert kp["kp.weight"][0].shape == (7, 7, 35, 10)  # torch (10, 35, 7, 7)
    assert kp["jacobian.weight"][0].shape == (7, 7, 35, 40)
    assert "predictor.encoder.down_blocks.4.norm.running_var" in kp
    assert "predictor.decoder.up_blocks.4.conv.weight" in kp
    gen = models["generator"].torch_variables()
    assert gen["dense_motion_network.mask.weight"][0].shape == (7, 7, 108, 11)
    assert gen["dense_motion_network.occlusion.weight"][0].shape == (7, 7, 108, 1)
    assert gen["first.conv.weight"][0].shape == (7, 7, 3, 64)
    assert gen["final.weight"][0].shape == (7, 7, 64, 3)
    assert "bottleneck.r5.norm2.running_mean" in gen and "up_blocks.1.conv.bias" in gen
    disc = models["discriminator"].torch_variables()
    assert disc["discs.1.down_blocks.0.conv.weight_orig"][0].shape == (4, 4, 3, 64)
    assert disc["discs.1.conv.weight_v"][0].shape == (512,)
    assert "discs.1.down_blocks.0.norm.weight" not in disc  # no norm on the first block


def test_single_jacobian_map_and_plain_discriminator(vox_models_variant):
    models = vox_models_variant
    kp = models["kp_detector"]
    assert kp.torch_variables()["jacobian.weight"][0].shape == (7, 7, 35, 4)
    out = kp(tf.random.uniform((2, 128, 128, 3)))
    # identity initialisation of the jacobian head
    np.testing.assert_allclose(
        out["jacobian"].numpy(), np.broadcast_to(np.eye(2), (2, 10, 2, 2)), atol=1e-5
    )
    disc = models["discriminator"].torch_variables()
    assert disc["discs.1.down_blocks.0.conv.weight"][0].shape == (4, 4, 13, 64)


def _torch_state(reference_dir):
    torch = pytest.importorskip("torch")
    ckpt = torch.load(
        reference_dir / "vox-256-tiny-cpk.pth.tar",
        map_location="cpu",
        weights_only=True,
    )
    return {
        name: {k: v.numpy() for k, v in ckpt[name].items()}
        for name in ("kp_detector", "generator", "discriminator")
    }


@pytest.fixture(scope="module")
def tiny_config(reference_dir):
    import yaml

    with open(reference_dir / "vox-256-tiny.yaml") as f:
        return yaml.safe_load(f)


def test_convert_round_trip_without_torch(
    reference_dir, tiny_config, tmp_path, reference
):
    pytest.importorskip("torch")
    from fomm_tutorial.checkpoint import run_cli

    class Args:
        checkpoint = str(reference_dir / "vox-256-tiny-cpk.pth.tar")
        config = str(reference_dir / "vox-256-tiny.yaml")
        out = str(tmp_path / "converted")
        overwrite = False

    assert run_cli(Args) == 0
    for name in ("kp_detector", "generator", "discriminator"):
        assert (tmp_path / "converted" / f"{name}.weights.h5").exists()
    models = build_models(tiny_config)
    for name, model in models.items():
        model.load_weights(str(tmp_path / "converted" / f"{name}.weights.h5"))
    kp = models["kp_detector"](tf.constant(reference["source"]))
    np.testing.assert_allclose(
        kp["value"].numpy(), reference["kp_source/value"], atol=1e-5
    )
    disc = models["discriminator"].torch_variables()
    state = _torch_state(reference_dir)["discriminator"]
    np.testing.assert_array_equal(
        disc["discs.0-5.conv.weight_u"][0].numpy(), state["discs.0-5.conv.weight_u"]
    )


def test_mismatched_config_names_key_and_shapes(reference_dir, tiny_config):
    state = _torch_state(reference_dir)
    cfg = copy.deepcopy(tiny_config)
    cfg["model_params"]["common_params"]["num_kp"] = 6
    models = build_models(cfg)
    with pytest.raises(
        ValueError, match=r"kp\.weight.*\(5, 11, 7, 7\).*\(6, 11, 7, 7\)"
    ):
        load_state_dict(models["kp_detector"], state["kp_detector"], "kp_detector")
    cfg = copy.deepcopy(tiny_config)
    cfg["model_params"]["discriminator_params"]["sn"] = False
    models = build_models(cfg)
    with pytest.raises(ValueError, match=r"discs\.1\.conv\.weight.*sn"):
        load_state_dict(
            models["discriminator"], state["discriminator"], "discriminator"
        )
    cfg = copy.deepcopy(tiny_config)
    cfg["model_params"]["kp_detector_params"]["scale_factor"] = 0.5
    models = build_models(cfg)
    with pytest.raises(
        ValueError, match=r"down\.weight.*\(3, 1, 13, 13\).*\(3, 1, 5, 5\)"
    ):
        load_state_dict(models["kp_detector"], state["kp_detector"], "kp_detector")


def test_spectral_norm_version0_state_dict(reference_dir, tiny_config):
    """Old torch stored 'weight' (normalised) instead of 'weight_v': same sigma is recovered."""
    state = _torch_state(reference_dir)["discriminator"]
    models = build_models(tiny_config)
    disc = models["discriminator"]
    load_state_dict(disc, state, "discriminator")
    sigma_new = disc.discs[0].conv.sigma().numpy()
    old = {}
    for k, v in state.items():
        if k.endswith("weight_v"):
            prefix = k[: -len("weight_v")]
            w = state[prefix + "weight_orig"]
            mat = w.reshape(w.shape[0], -1)
            sigma = state[prefix + "weight_u"] @ (mat @ v)
            old[prefix + "weight"] = w / sigma
        else:
            old[k] = v
    disc2 = build_models(tiny_config)["discriminator"]
    load_state_dict(disc2, old, "discriminator")
    np.testing.assert_allclose(
        disc2.discs[0].conv.sigma().numpy(), sigma_new, rtol=1e-5
    )


def test_missing_torch_gives_clear_error(
    reference_dir, tiny_config, monkeypatch, tmp_path
):
    from fomm_tutorial import cli

    monkeypatch.setitem(sys.modules, "torch", None)
    checkpoint = reference_dir / "vox-256-tiny-cpk.pth.tar"
    with pytest.raises(ModuleNotFoundError, match="pip install torch"):
        convert_checkpoint(checkpoint, tiny_config, tmp_path)
    # the command line says the same in one line
    argv = ["convert", str(checkpoint), "--config", "vox-256-tiny"]
    assert cli.main(argv + ["--out", str(tmp_path)]) == 2


def test_spectral_conv_training_power_iteration_matches_torch():
    torch = pytest.importorskip("torch")
    from fomm_tutorial.discriminator import SpectralConv2d

    conv = torch.nn.utils.spectral_norm(torch.nn.Conv2d(3, 5, 4))
    ours = SpectralConv2d(3, 5, 4)
    x = np.random.default_rng(0).random((2, 9, 9, 3), dtype=np.float32)
    ours.build(x.shape)
    state = {k: v.detach().numpy() for k, v in conv.state_dict().items()}
    ours.kernel.assign(state["weight_orig"].transpose(2, 3, 1, 0))
    ours.bias.assign(state["bias"])
    ours.u.assign(state["weight_u"])
    ours.v.assign(state["weight_v"])
    conv.train()
    ref = (
        conv(torch.from_numpy(x).permute(0, 3, 1, 2))
        .detach()
        .permute(0, 2, 3, 1)
        .numpy()
    )
    out = ours(tf.constant(x), training=True).numpy()
    np.testing.assert_allclose(out, ref, atol=1e-5)
    np.testing.assert_allclose(ours.u.numpy(), conv.weight_u.numpy(), atol=1e-6)
    np.testing.assert_allclose(ours.v.numpy(), conv.weight_v.numpy(), atol=1e-6)


def test_zip_format_and_module_prefix(reference_dir, tmp_path):
    """torch >= 1.6 zip serialisation, and a DataParallel 'module.' prefix, read the same."""
    torch = pytest.importorskip("torch")
    from fomm_tutorial.checkpoint import read_torch_checkpoint

    ckpt = torch.load(
        reference_dir / "vox-256-tiny-cpk.pth.tar",
        map_location="cpu",
        weights_only=True,
    )
    ckpt["kp_detector"] = {"module." + k: v for k, v in ckpt["kp_detector"].items()}
    path = tmp_path / "zip.pth.tar"
    torch.save(ckpt, path)  # zip format (the default since torch 1.6)
    state = read_torch_checkpoint(path)
    legacy = read_torch_checkpoint(reference_dir / "vox-256-tiny-cpk.pth.tar")
    np.testing.assert_array_equal(
        state["generator"]["final.weight"], legacy["generator"]["final.weight"]
    )
    from fomm_tutorial.checkpoint import _strip_module

    assert set(_strip_module(state["kp_detector"])) == set(legacy["kp_detector"])


def test_unfitting_discriminator_is_skipped_like_load_cpk(
    reference_dir, tiny_config, tmp_path
):
    pytest.importorskip("torch")
    from fomm_tutorial.checkpoint import load_original_checkpoint

    cfg = copy.deepcopy(tiny_config)
    cfg["model_params"]["discriminator_params"]["use_kp"] = (
        False  # vox-cpk with a vox-adv-like mismatch
    )
    path = reference_dir / "vox-256-tiny-cpk.pth.tar"
    with pytest.warns(
        UserWarning, match=r"down_blocks\.0\.conv\.weight_orig.*randomly initialised"
    ):
        written = convert_checkpoint(path, cfg, tmp_path)
    assert sorted(written) == ["generator", "kp_detector"]
    with pytest.raises(
        ValueError,
        match=r"discs\.1\.down_blocks\.0\.conv\.weight_orig.*\(16, 8, 4, 4\)",
    ):
        load_original_checkpoint(path, cfg, strict_discriminator=True)
