"""Building the networks from a config, and porting original PyTorch checkpoints.

Explained in chapter 11 (book/11_full_gpu_training.ipynb).

* :func:`build_models` -- ``{"kp_detector", "generator", "discriminator"}`` from an original
  config (a dict, a YAML path or a shipped config's name, through
  :func:`fomm_tutorial.config.load_config`), built (weights created) at the config's ``frame_shape``.
* :func:`load_original_checkpoint` -- an original ``.pth.tar`` (legacy or zip ``torch.save``
  format; needs ``torch``) loaded into those models.
* :func:`convert_checkpoint` / ``fomm-tutorial convert`` -- writes ``kp_detector.weights.h5``,
  ``generator.weights.h5``, ``discriminator.weights.h5`` that :func:`build_models` +
  ``model.load_weights`` read back without torch.

The port is done **by state-dict name**: every layer lists its variables under their original
names (``torch_variables``); conv weights ``(out, in, kh, kw)`` become Keras kernels
``(kh, kw, in, out)``. A missing, unexpected or mis-shaped entry raises a ``ValueError`` naming
the key, both shapes and the config key that most likely differs.
"""

from __future__ import annotations

import os
import pickle
import warnings
from pathlib import Path

import numpy as np

from fomm_tutorial.config import load_config

__all__ = [
    "build_models",
    "load_original_checkpoint",
    "convert_checkpoint",
    "load_state_dict",
    "read_torch_checkpoint",
    "run_cli",
    "WEIGHT_FILES",
]

MODEL_NAMES = ("kp_detector", "generator", "discriminator")
WEIGHT_FILES = {name: f"{name}.weights.h5" for name in MODEL_NAMES}

# Which config section builds which network (for error messages).
_SECTIONS = {
    "kp_detector": "model_params.kp_detector_params / common_params",
    "generator": "model_params.generator_params (dense_motion_params) / common_params",
    "discriminator": "model_params.discriminator_params (scales, sn, use_kp) / common_params",
}


def _frame_shape(cfg):
    shape = cfg.get("dataset_params", {}).get("frame_shape", [256, 256, 3])
    return int(shape[0]), int(shape[1])


def build_models(config) -> dict:
    """Keypoint detector, generator and discriminator of an original config, with weights created.

    Args:
      config: dict in the original YAML schema (as ``load_config`` returns it), a path to
        the YAML file, or the name of a shipped config (``"vox-256"``).
    Returns:
      ``{"kp_detector": KeypointDetector, "generator": OcclusionAwareGenerator,
      "discriminator": MultiScaleDiscriminator}``, built by one forward pass on zeros at
      ``dataset_params.frame_shape`` (default 256 x 256).
    """
    import tensorflow as tf

    from fomm_tutorial.discriminator import MultiScaleDiscriminator
    from fomm_tutorial.generator import OcclusionAwareGenerator
    from fomm_tutorial.keypoints import KeypointDetector

    # a dict is used as given (it may hold model_params alone); names and paths are read
    # and validated by load_config
    cfg = config if isinstance(config, dict) else load_config(config)
    if "model_params" not in cfg:
        raise ValueError(
            "config has no 'model_params' section: expected the original FOMM schema "
            "(model_params.common_params, kp_detector_params, generator_params, "
            "discriminator_params)."
        )
    kp_detector = KeypointDetector.from_config_dict(cfg)
    generator = OcclusionAwareGenerator.from_config_dict(cfg)
    discriminator = MultiScaleDiscriminator.from_config_dict(cfg)

    h, w = _frame_shape(cfg)
    c = int(cfg["model_params"]["common_params"].get("num_channels", 3))
    image = tf.zeros((1, h, w, c))
    kp = kp_detector(image, training=False)
    generator(image, kp_source=kp, kp_driving=kp, training=False)
    pyramid = {}
    for scale in discriminator.scales:
        s = float(scale)
        pyramid["prediction_" + scale] = tf.zeros(
            (1, int(np.ceil(h * s)), int(np.ceil(w * s)), c)
        )
    discriminator(pyramid, kp=kp, training=False)
    return {
        "kp_detector": kp_detector,
        "generator": generator,
        "discriminator": discriminator,
    }


def read_torch_checkpoint(path) -> dict:
    """The dict saved by the original ``Logger.save_cpk`` (``torch.load`` on the CPU), tensors as NumPy.

    Needs ``torch`` (legacy and zip serialisation both work). Only the model state dicts
    (``kp_detector``, ``generator``, ``discriminator``) are returned.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist.")
    try:
        import torch
    except ImportError as exc:
        raise ModuleNotFoundError(
            f"reading the original PyTorch checkpoint {path} needs torch: `pip install torch` "
            "(the CPU build is enough), or use Keras weights converted elsewhere with "
            "`fomm-tutorial convert` (build_models + load_weights need no torch)."
        ) from exc
    try:
        # weights_only=True: tensors, dicts, lists and numbers only -- all an original checkpoint holds.
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except TypeError:  # torch < 1.13 has no weights_only
        state = torch.load(str(path), map_location="cpu")
    except Exception as exc:  # noqa: BLE001
        # torch's unpickling text is about its weights_only option, not about this file
        first = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else ""
        detail = (
            "" if isinstance(exc, pickle.UnpicklingError) or not first else f": {first}"
        )
        raise ValueError(
            f"{path} is not a readable PyTorch checkpoint ({type(exc).__name__}{detail}); "
            "expected an original .pth.tar written by torch.save"
        ) from None
    if not isinstance(state, dict) or not any(k in state for k in MODEL_NAMES):
        keys = sorted(state) if isinstance(state, dict) else type(state).__name__
        raise ValueError(
            f"{path}: expected an original FOMM checkpoint (a dict with 'kp_detector', "
            f"'generator', 'discriminator'), found {keys}."
        )
    out = {}
    for name in MODEL_NAMES:
        if name in state:
            sd = state[name]
            out[name] = {
                k: (v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v))
                for k, v in sd.items()
            }
    return out


def _strip_module(sd: dict) -> dict:
    # Checkpoints saved from a DataParallel model carry a 'module.' prefix.
    if sd and all(k.startswith("module.") for k in sd):
        return {k[len("module.") :]: v for k, v in sd.items()}
    return sd


def _spectral_v(sd, prefix):
    """``weight_v`` for a spectral-norm state dict of torch's version 0 (no ``v`` stored).

    Chooses v with ``u . (W v)`` equal to the sigma implied by the stored normalised ``weight``
    (``weight = weight_orig / sigma``, so ``sigma = <wo, wo> / <wo, weight>``, sign included), or,
    without it, one power iteration from ``u``.
    """
    w = (
        sd[prefix + "weight_orig"]
        .reshape(sd[prefix + "weight_orig"].shape[0], -1)
        .astype(np.float64)
    )
    u = sd[prefix + "weight_u"].astype(np.float64)
    wtu = w.T @ u
    if prefix + "weight" in sd:
        wn = sd[prefix + "weight"].reshape(w.shape).astype(np.float64)
        sigma = np.sum(w * w) / np.sum(w * wn)
        return (wtu * sigma / max(wtu @ wtu, 1e-12)).astype(np.float32)
    return (wtu / max(np.linalg.norm(wtu), 1e-12)).astype(np.float32)


def load_state_dict(model, state_dict: dict, model_name: str = "model") -> None:
    """Assign an original PyTorch state dict (NumPy arrays) to one of our models, by name.

    Raises ``ValueError`` naming every missing / unexpected key, and the first shape mismatch with
    both shapes and the config section to check.
    """
    sd = _strip_module(dict(state_dict))
    expected = model.torch_variables()
    buffers = model.torch_buffers() if hasattr(model, "torch_buffers") else {}
    section = _SECTIONS.get(model_name, "model_params")

    # Spectral-norm state dicts saved before torch stored 'weight_v' (version 0).
    for name in expected:
        if name.endswith("weight_v") and name not in sd:
            prefix = name[: -len("weight_v")]
            if prefix + "weight_orig" in sd and prefix + "weight_u" in sd:
                sd[name] = _spectral_v(sd, prefix)

    missing = [k for k in expected if k not in sd]
    ignorable = {k for k in sd if k.endswith("num_batches_tracked")}
    # version-0 spectral norm also stores the normalised 'weight' beside 'weight_orig'
    ignorable |= {
        k
        for k in sd
        if k.endswith(".weight") and k[: -len("weight")] + "weight_orig" in sd
    }
    unexpected = [
        k for k in sd if k not in expected and k not in buffers and k not in ignorable
    ]
    if missing or unexpected:
        parts = [f"{model_name}: the checkpoint does not match the config ({section})."]
        if missing:
            parts.append(
                f"Missing from the checkpoint: {missing[:8]}{' ...' if len(missing) > 8 else ''}."
            )
        if unexpected:
            shown = [f"{k} {tuple(sd[k].shape)}" for k in unexpected[:8]]
            parts.append(
                f"Not in the model built from the config: {shown}{' ...' if len(unexpected) > 8 else ''}."
            )
        hint = ""
        if any("weight_orig" in k for k in unexpected) or any(
            "weight_orig" in k for k in missing
        ):
            hint = " Check discriminator_params.sn."
        elif any(k.startswith("discs.") for k in missing + unexpected):
            hint = " Check discriminator_params.scales / num_blocks."
        elif any(k.startswith("jacobian") for k in missing + unexpected):
            hint = " Check common_params.estimate_jacobian."
        elif any("occlusion" in k for k in missing + unexpected):
            hint = " Check generator_params.estimate_occlusion_map."
        raise ValueError(" ".join(parts) + hint)

    for name, layer in buffers.items():
        if name in sd:
            want = layer.torch_buffer_shape()
            if tuple(sd[name].shape) != tuple(want):
                raise ValueError(
                    f"{model_name}: buffer {name!r} has shape {tuple(sd[name].shape)} in the checkpoint but "
                    f"{tuple(want)} for scale_factor={layer.scale} in the config ({section}): the "
                    "anti-aliasing kernel is fixed by scale_factor, use the config the checkpoint was trained with."
                )

    from fomm_tutorial.blocks import CONV

    assignments = []
    for name, (var, kind) in expected.items():
        value = np.asarray(sd[name], dtype=np.float32)
        torch_shape = tuple(value.shape)
        if kind == CONV:
            if value.ndim != 4:
                raise ValueError(
                    f"{model_name}: {name!r} should be a 4-D conv weight, got shape {torch_shape}."
                )
            value = value.transpose(2, 3, 1, 0)
        if tuple(value.shape) != tuple(var.shape):
            want = tuple(var.shape)
            if kind == CONV:
                want = (want[3], want[2], want[0], want[1])
            raise ValueError(
                f"{model_name}: {name!r} has shape {torch_shape} in the checkpoint but the "
                f"model built from the config expects {want} (torch layout); check {section} "
                "(num_kp, block_expansion, max_features, num_blocks, single_jacobian_map, use_kp)."
            )
        assignments.append((var, value))
    for var, value in assignments:  # assign only once everything matched
        var.assign(value)


def load_original_checkpoint(path, config, strict_discriminator: bool = False) -> dict:
    """``build_models(config)`` with the weights of an original ``.pth.tar`` (needs torch).

    ``kp_detector`` and ``generator`` must match the config exactly (``ValueError`` naming the key
    and shapes otherwise). The discriminator is treated as the original ``Logger.load_cpk`` does:
    a checkpoint without one, or with one that does not fit the config (e.g. ``vox-cpk`` with
    ``vox-adv-256.yaml``: the adversarial fine-tuning started a new discriminator), leaves it
    randomly initialised, with a warning that names the mismatch; ``strict_discriminator=True``
    raises instead.
    """
    return _load(path, config, strict_discriminator)[0]


def _load(path, config, strict_discriminator=False):
    cfg = config if isinstance(config, dict) else load_config(config)
    state = read_torch_checkpoint(path)
    models = build_models(cfg)
    loaded = []
    for name in MODEL_NAMES:
        if name not in state:
            if name == "discriminator" and not strict_discriminator:
                warnings.warn(
                    f"{path} has no discriminator; it stays randomly initialised.",
                    stacklevel=3,
                )
                continue
            raise ValueError(
                f"{path} has no {name!r} state dict (keys: {sorted(state)})."
            )
        try:
            load_state_dict(models[name], state[name], name)
        except ValueError as exc:
            if name != "discriminator" or strict_discriminator:
                raise
            warnings.warn(
                f"{exc} The discriminator stays randomly initialised (as the original load_cpk).",
                stacklevel=3,
            )
            continue
        loaded.append(name)
    return models, loaded


# Files of a weights folder that describe its weights (a shipped model's folder has them):
# after other weights are written there, they would describe the wrong ones.
_DESCRIBING_FILES = ("config.yaml", "MODEL_CARD.md")


def convert_checkpoint(path, config, out_dir, overwrite: bool = False) -> dict:
    """Convert an original checkpoint to Keras weights.

    Writes ``out_dir/kp_detector.weights.h5``, ``generator.weights.h5`` and (if the
    checkpoint has one that fits the config) ``discriminator.weights.h5``; read them back
    with ``build_models(config)[name].load_weights``. Returns ``{model name: written path}``.

    A folder that already holds weights (or a ``config.yaml`` / ``MODEL_CARD.md``
    describing them) is refused with ``FileExistsError`` unless ``overwrite``; then the
    old files that the new weights do not replace are removed, so that nothing stale
    stays beside them. Each file is written to a temporary name and renamed.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(
            f"{out_dir} is a file: give a folder for the converted weights."
        )
    present = [
        name
        for name in (*WEIGHT_FILES.values(), *_DESCRIBING_FILES)
        if (out_dir / name).exists()
    ]
    if present and not overwrite:
        raise FileExistsError(
            f"{out_dir} already holds {', '.join(present)}: pass --overwrite to "
            "replace them, or choose another --out"
        )
    models, loaded = _load(path, config)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for name in loaded:
        target = out_dir / WEIGHT_FILES[name]
        partial = out_dir / f".{name}.partial.weights.h5"  # Keras needs the suffix
        try:
            models[name].save_weights(str(partial))
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
        written[name] = str(target)
    for name in present:
        if name not in (WEIGHT_FILES[n] for n in written):
            (out_dir / name).unlink()
            print(f"removed {out_dir / name} (it described the replaced weights)")
    return written


def run_cli(args) -> int:
    """``fomm-tutorial convert CHECKPOINT --config C --out DIR [--overwrite]``."""
    from fomm_tutorial.runtime import filtered_stderr

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with filtered_stderr():  # TensorFlow's start-up notices (errors still shown)
        import tensorflow  # noqa: F401
    written = convert_checkpoint(
        args.checkpoint, args.config, args.out, overwrite=args.overwrite
    )
    for name, target in written.items():
        print(f"{name}: {target}")
    if "discriminator" not in written:
        print(
            "discriminator: not converted (missing from the checkpoint or not fitting the config; "
            "see the warning above). Inference needs only kp_detector and generator."
        )
    return 0
