"""Export: the keypoint detector and the generator as SavedModel, ONNX and TFLite graphs.

Explained in chapter 12 (book/12_export.ipynb).

:func:`export_models` (``fomm-tutorial export``) writes ``out_dir/kp_detector.<ext>`` and
``out_dir/generator.<ext>`` (``.onnx``, ``.tflite``; SavedModel: folders) for a batch of 1
at one fixed frame size. Every graph has the same named inputs and outputs in every format
(:func:`graph_names`), which users of the files rely on:

* ``kp_detector``: ``image`` ``(1, H, W, 3)`` in [0, 1] -> ``value`` ``(1, K, 2)`` and,
  when the model has Jacobians, ``jacobian`` ``(1, K, 2, 2)``;
* ``generator``: ``source`` ``(1, H, W, 3)``, ``kp_source_value`` ``(1, K, 2)``,
  ``kp_source_jacobian`` ``(1, K, 2, 2)``, ``kp_driving_value``, ``kp_driving_jacobian``
  (the Jacobian inputs only when the model has them) -> ``prediction`` ``(1, H, W, 3)``
  and, when the model estimates one, ``occlusion_map`` ``(1, h, w, 1)``.

SavedModel keeps them as the ``serving_default`` signature, ONNX as graph inputs and
outputs (tf2onnx, opset :data:`ONNX_OPSET`), TFLite as the ``serving_default`` signature
runner. TFLite uses builtin operators only (no Flex / SELECT_TF_OPS, which mobile runtimes
lack): fixed sizes and a fixed keypoint count let every convolution and gather lower to a
builtin. Relative motion (:func:`fomm_tutorial.animation.normalize_kp`) stays outside the
graphs: it is a few lines of array arithmetic on the detector's outputs.

:func:`load_exported` runs an exported file with its own runtime (TensorFlow for a
SavedModel, onnxruntime, LiteRT's ``ai_edge_litert``), as a function of named NumPy arrays.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from fomm_tutorial import media  # noqa: E402
from fomm_tutorial.animation import resolve_checkpoint  # noqa: E402  (its one home)

__all__ = [
    "FORMATS",
    "SUFFIXES",
    "NETWORKS",
    "ONNX_OPSET",
    "graph_names",
    "export_size",
    "check_out_dir",
    "resolve_checkpoint",
    "graph_functions",
    "export_models",
    "load_exported",
    "disk_size",
    "run_cli",
]

#: The export formats, as ``--format`` spells them.
FORMATS = ("saved_model", "onnx", "tflite")
#: File name ending of each format (a SavedModel is a folder).
SUFFIXES = {"saved_model": "", "onnx": ".onnx", "tflite": ".tflite"}
#: The exported networks, in the order they are written.
NETWORKS = ("kp_detector", "generator")
#: ONNX opset: 13 or later has GatherND with batch dimensions and Resize as used here.
ONNX_OPSET = 17
_SIGNATURE = "serving_default"


def _has_jacobian(config) -> bool:
    return bool(config["model_params"]["common_params"].get("estimate_jacobian", False))


def _has_occlusion(config) -> bool:
    gen = config["model_params"]["generator_params"]
    return gen.get("dense_motion_params") is not None and bool(
        gen.get("estimate_occlusion_map", False)
    )


def graph_names(config) -> dict:
    """``{network: {"inputs": [names], "outputs": [names]}}`` of the exported graphs.

    ``config`` is a config dict (as :func:`fomm_tutorial.config.load_config` returns it);
    the Jacobian names appear when ``common_params.estimate_jacobian`` is set, the
    ``occlusion_map`` output when the generator estimates one.
    """
    jac = _has_jacobian(config)
    kp_inputs = []
    for who in ("source", "driving"):
        kp_inputs += [f"kp_{who}_value"] + ([f"kp_{who}_jacobian"] if jac else [])
    return {
        "kp_detector": {
            "inputs": ["image"],
            "outputs": ["value"] + (["jacobian"] if jac else []),
        },
        "generator": {
            "inputs": ["source", *kp_inputs],
            "outputs": ["prediction"]
            + (["occlusion_map"] if _has_occlusion(config) else []),
        },
    }


def export_size(config, size=None) -> tuple:
    """The frame size ``(H, W)`` of the graphs: ``size`` or the config's ``frame_shape``.

    A size that the networks cannot take (the hourglasses and the generator halve it a
    number of times) raises a ValueError naming the network and the sizes that work.
    """
    from fomm_tutorial.config import frame_size_problem

    if size is None:
        size = config["dataset_params"]["frame_shape"][:2]
    try:
        h, w = (int(s) for s in size)
    except (TypeError, ValueError):
        raise ValueError(f"size must be (H, W), two integers, got {size!r}") from None
    # the discriminator is not exported: leave its check out
    params = dict(config["model_params"], discriminator_params={"scales": []})
    for axis, side in (("height", h), ("width", w)):
        problem = side < 1 or frame_size_problem(params, side)
        if problem:
            fits = [s for s in range(8, 1025) if not frame_size_problem(params, s)]
            near = ", ".join(str(s) for s in fits[:4])
            raise ValueError(
                f"--size: a {axis} of {side} px does not fit the networks "
                f"({problem if problem is not True else 'not positive'}); sizes that "
                f"work: {near}, ..."
            )
    return h, w


def check_out_dir(out_dir, overwrite: bool = False) -> Path:
    """``out_dir`` as a Path, checked before any conversion starts.

    It may be missing (created later, under a writable folder), empty, or, with
    ``overwrite``, hold anything (only the exported files are replaced). A file, a
    non-empty folder without ``overwrite`` or a folder that cannot be written raises a
    one-line ValueError.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"--out {out_dir} is a file: give a folder for the graphs")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise ValueError(
            f"--out {out_dir} exists and is not empty: pass --overwrite to replace the "
            "exported graphs in it, or choose another folder"
        )
    media.check_writable_folder(out_dir, f"--out {out_dir}")
    return out_dir


def graph_functions(models, config, size=None) -> dict:
    """``{network: tf.function}`` with the exported names and fixed shapes (batch 1).

    Args:
      models: ``{"kp_detector", "generator"}`` (e.g. :func:`fomm_tutorial.animation.
        load_models` or :func:`fomm_tutorial.pretrained.load_pretrained`).
      config: the config dict the models were built from.
      size: ``(H, W)``, default the config's ``frame_shape`` (:func:`export_size`).

    Each function takes the named tensors of :func:`graph_names` as positional arguments
    (``input_signature`` of named ``tf.TensorSpec``) and returns the named outputs in a
    dict; the networks run in inference mode (``training=False``).
    """
    h, w = export_size(config, size)
    k = int(config["model_params"]["common_params"]["num_kp"])
    c = int(config["model_params"]["common_params"].get("num_channels", 3))
    names = graph_names(config)
    shapes = {
        "image": (1, h, w, c),
        "source": (1, h, w, c),
        "kp_source_value": (1, k, 2),
        "kp_source_jacobian": (1, k, 2, 2),
        "kp_driving_value": (1, k, 2),
        "kp_driving_jacobian": (1, k, 2, 2),
    }
    kp_detector, generator = models["kp_detector"], models["generator"]

    def detect(x):
        out = kp_detector(x["image"], training=False)
        return {name: out[name] for name in names["kp_detector"]["outputs"]}

    def generate(x):
        def kp(who):
            return {
                part: x[f"kp_{who}_{part}"]
                for part in ("value", "jacobian")
                if f"kp_{who}_{part}" in x
            }

        out = generator(
            x["source"],
            kp_source=kp("source"),
            kp_driving=kp("driving"),
            training=False,
        )
        return {name: out[name] for name in names["generator"]["outputs"]}

    def function(call, inputs):
        specs = [tf.TensorSpec(shapes[n], tf.float32, name=n) for n in inputs]

        @tf.function(input_signature=specs, autograph=False)
        def graph(*tensors):
            return call(dict(zip(inputs, tensors)))

        return graph

    return {
        "kp_detector": function(detect, names["kp_detector"]["inputs"]),
        "generator": function(generate, names["generator"]["inputs"]),
    }


# ---------------------------------------------------------------------------------------
# Conversion
# ---------------------------------------------------------------------------------------
# How the converters name the operator they could not convert.
_OP_PATTERNS = (
    r"'tf\.(\w+)' op",  # TFLite (MLIR): 'tf.Foo' op is neither a custom op nor a flex op
    r"Unsupported ops: Counter\(\{'(\w+)'",  # tf2onnx
    r"op type (\w+) is not supported",
    r"\b(\w+) is not supported",
)


def _failed_op(message: str) -> str:
    for pattern in _OP_PATTERNS:
        found = re.search(pattern, message)
        if found:
            return found.group(1)
    return "unknown"


def _save_saved_model(function, path: Path, model) -> None:
    module = tf.Module()
    # the variables the function reads, tracked so that they are saved (the Keras model
    # itself would add its own traced signatures)
    module.network_variables = list(model.variables)
    tf.saved_model.save(
        module, str(path), signatures={_SIGNATURE: function.get_concrete_function()}
    )


def _save_onnx(function, path: Path) -> None:
    import tf2onnx

    proto, _ = tf2onnx.convert.from_function(
        function, input_signature=function.input_signature, opset=ONNX_OPSET
    )
    path.write_bytes(proto.SerializeToString())


def _save_tflite(function, path: Path, model, float16: bool = False) -> None:
    # Through a SavedModel's signature: it keeps the input and output names for the
    # signature runner (the function itself would give numbered ones). From its concrete
    # function, so that the weights are frozen into constants (from_saved_model keeps
    # them as resource variables that the signature runner never initialises).
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        _save_saved_model(function, Path(tmp) / "saved_model", model)
        loaded = tf.saved_model.load(str(Path(tmp) / "saved_model"))
        converter = tf.lite.TFLiteConverter.from_concrete_functions(
            [loaded.signatures[_SIGNATURE]], loaded
        )
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if float16:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]
        path.write_bytes(converter.convert())


def _convert(format: str, function, path: Path, network: str, model, float16=False):
    """Write one graph to ``path``; a converter failure names the op and the network."""
    from fomm_tutorial.runtime import quiet_stderr

    try:
        with quiet_stderr():  # the converters' progress notices go to fd 2
            if format == "saved_model":
                _save_saved_model(function, path, model)
            elif format == "onnx":
                _save_onnx(function, path)
            else:
                _save_tflite(function, path, model, float16=float16)
    except ImportError:
        raise ImportError(
            f"--format {format} needs the export extra: pip install "
            "'fomm-tutorial[export]'"
        ) from None
    except Exception as exc:  # the converters raise their own types
        message = " ".join(str(exc).split())
        raise ValueError(
            f"{format} conversion of the {network} failed at op "
            f"{_failed_op(message)}: {message[:300]}"
        ) from None


def _place(partial: Path, target: Path) -> None:
    """Rename ``partial`` to ``target``, replacing a file or a folder already there."""
    if target.is_dir() and not target.is_symlink():
        old = target.with_name(f".{target.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
        os.replace(partial, target)
        shutil.rmtree(old)
    else:
        if target.exists() and partial.is_dir():
            target.unlink()
        os.replace(partial, target)


def export_models(
    models,
    config,
    out_dir,
    format: str,
    size=None,
    overwrite: bool = False,
    float16: bool = False,
) -> dict:
    """Export the keypoint detector and the generator; ``{network: written path}``.

    Args:
      models: ``{"kp_detector", "generator", ...}`` built from ``config`` with weights.
      config: the config (dict, shipped name or YAML path) the models were built from.
      out_dir: folder for ``kp_detector.<ext>`` and ``generator.<ext>``
        (:data:`SUFFIXES`); created if missing.
      format: one of :data:`FORMATS`.
      size: ``(H, W)`` of the graphs, default the config's ``frame_shape``.
      overwrite: replace the graphs in a folder that is not empty (other files stay).
      float16: TFLite only: store the weights as float16 (half the size; the graph
        dequantises them and computes in float32).

    Every argument is checked before a conversion starts (one-line ValueError). Each
    graph is written under a temporary name in ``out_dir`` and renamed when complete.
    """
    from fomm_tutorial.config import load_config

    if format not in FORMATS:
        raise ValueError(
            f"unknown export format {format!r}: choose one of {', '.join(FORMATS)}"
        )
    if float16 and format != "tflite":
        raise ValueError("float16 weights are a TFLite option: use format='tflite'")
    config = load_config(config)
    functions = graph_functions(models, config, size)
    out_dir = check_out_dir(out_dir, overwrite)
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    try:
        # both graphs first, then both renamed: a failure leaves no half-export
        with tempfile.TemporaryDirectory(dir=out_dir, prefix=".export.") as tmp:
            for network in NETWORKS:
                name = f"{network}{SUFFIXES[format]}"
                _convert(
                    format,
                    functions[network],
                    Path(tmp) / name,
                    network,
                    models[network],
                    float16=float16,
                )
            for network in NETWORKS:
                name = f"{network}{SUFFIXES[format]}"
                _place(Path(tmp) / name, out_dir / name)
                written[network] = out_dir / name
    except BaseException:
        if created:
            shutil.rmtree(out_dir, ignore_errors=True)
        raise
    return written


# ---------------------------------------------------------------------------------------
# Running the exported graphs
# ---------------------------------------------------------------------------------------
def disk_size(path) -> int:
    """Bytes on disk of an exported graph (a file, or every file of a SavedModel)."""
    path = Path(path)
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def _format_of(path: Path) -> str:
    if path.is_dir():
        return "saved_model"
    for format, suffix in SUFFIXES.items():
        if suffix and path.name.endswith(suffix):
            return format
    raise ValueError(
        f"{path}: not an exported graph (a SavedModel folder, .onnx or .tflite)"
    )


# The order of graph_names (the runtimes list names in their own orders).
_ORDER = (
    "image",
    "value",
    "jacobian",
    "source",
    "kp_source_value",
    "kp_source_jacobian",
    "kp_driving_value",
    "kp_driving_jacobian",
    "prediction",
    "occlusion_map",
)


def _in_order(names) -> list:
    return sorted(names, key=lambda n: _ORDER.index(n) if n in _ORDER else len(_ORDER))


def load_exported(path, threads=None):
    """A function ``run(**inputs) -> {output name: np.ndarray}`` for an exported graph.

    The runtime follows the file: a SavedModel folder runs in TensorFlow, ``.onnx`` in
    onnxruntime (CPU), ``.tflite`` in LiteRT (``ai_edge_litert``, the ``serving_default``
    signature runner). Inputs are float32 arrays named as :func:`graph_names`; the
    function's ``inputs`` attribute lists the names, ``outputs`` the output names.
    ``threads``: the runtime's intra-op threads (default: its own choice).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: export it first")
    format = _format_of(path)
    if format == "saved_model":
        signature = tf.saved_model.load(str(path)).signatures[_SIGNATURE]
        inputs = [s.name for s in signature.structured_input_signature[1].values()]
        outputs = list(signature.structured_outputs)

        def run(**x):
            out = signature(**{k: tf.constant(v, tf.float32) for k, v in x.items()})
            return {k: v.numpy() for k, v in out.items()}

    elif format == "onnx":
        import onnxruntime

        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
        session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
        inputs = [i.name for i in session.get_inputs()]
        outputs = [o.name for o in session.get_outputs()]

        def run(**x):
            feeds = {k: np.asarray(v, np.float32) for k, v in x.items()}
            return dict(zip(outputs, session.run(outputs, feeds)))

    else:
        from ai_edge_litert.interpreter import Interpreter

        from fomm_tutorial.runtime import quiet_stderr

        # LiteRT announces its XNNPACK delegate on fd 2 when the tensors are allocated
        with quiet_stderr():
            interpreter = Interpreter(model_path=str(path), num_threads=threads)
            interpreter.allocate_tensors()
            runner = interpreter.get_signature_runner(_SIGNATURE)
        details = interpreter.get_signature_list()[_SIGNATURE]
        inputs, outputs = list(details["inputs"]), list(details["outputs"])

        def run(**x):
            out = runner(**{k: np.asarray(v, np.float32) for k, v in x.items()})
            return {k: np.array(v) for k, v in out.items()}

    run.inputs, run.outputs = _in_order(inputs), _in_order(outputs)
    run.format = format
    return run


# ---------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------
def run_cli(args) -> int:
    """``fomm-tutorial export --config C --checkpoint P --format F --out D [--size H W]``.

    The output folder, the format, the size and the checkpoint are checked (and the
    weights loaded, which finds a checkpoint that does not fit the config) before any
    conversion starts.
    """
    from fomm_tutorial.animation import load_models
    from fomm_tutorial.config import load_config

    if args.format not in FORMATS:
        raise ValueError(
            f"unknown export format {args.format!r}: choose one of {', '.join(FORMATS)}"
        )
    check_out_dir(args.out, args.overwrite)
    config = load_config(args.config)
    size = export_size(config, args.size)
    models = load_models(config, args.checkpoint)
    written = export_models(
        models, config, args.out, args.format, size=size, overwrite=args.overwrite
    )
    names = graph_names(config)
    for network, path in written.items():
        io = names[network]
        print(
            f"{network}: {path} ({disk_size(path) / 1e6:.1f} MB; inputs "
            f"{', '.join(io['inputs'])} -> outputs {', '.join(io['outputs'])})"
        )
    return 0
