"""Command line: ``fomm-tutorial animate|train|convert``.

The arguments are declared here (so ``fomm-tutorial --help`` does not import TensorFlow); each
sub-command runs ``run_cli(args)`` of the module it drives: :mod:`fomm_tutorial.animation`,
:mod:`fomm_tutorial.training`, :mod:`fomm_tutorial.checkpoint`.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fomm-tutorial",
        description="First Order Motion Model for Image Animation (TensorFlow / Keras 3).",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "animate", help="animate a source image with the motion of a driving video"
    )
    p.add_argument(
        "--config", required=True, help="original YAML config (e.g. vox-256.yaml)"
    )
    p.add_argument(
        "--checkpoint",
        required=True,
        help="original .pth.tar checkpoint, or a folder / .weights.h5 written by `convert`",
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
        "--relative", action="store_true", help="relative keypoint motion (recommended)"
    )
    p.add_argument(
        "--adapt-scale",
        action="store_true",
        help="adapt movement scale by the keypoints' convex-hull areas",
    )
    p.add_argument(
        "--batch-size", type=int, default=8, help="driving frames per forward pass"
    )
    p.add_argument(
        "--fps",
        type=float,
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
    p.add_argument("--config", required=True, help="original YAML config")
    p.add_argument(
        "--data",
        required=True,
        help="dataset root (train/ and test/, or one folder of videos)",
    )
    p.add_argument(
        "--out", required=True, help="log directory: checkpoints, TensorBoard, log.txt"
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="resume from the latest checkpoint in --out",
    )
    p.add_argument(
        "--epochs", type=int, default=None, help="override train_params.num_epochs"
    )
    p.add_argument(
        "--steps", type=int, default=None, help="stop after this many steps in total"
    )
    p.add_argument(
        "--batch-size", type=int, default=None, help="override train_params.batch_size"
    )
    p.add_argument(
        "--num-repeats",
        type=int,
        default=None,
        help="override train_params.num_repeats",
    )
    p.add_argument(
        "--checkpoint-every",
        type=int,
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
        action="store_true",
        help="multi-scale L1 + equivariance instead of the original losses (no VGG19, "
        "no discriminator step)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(_module="fomm_tutorial.training")

    p = sub.add_parser(
        "convert", help="convert an original .pth.tar checkpoint to Keras .weights.h5"
    )
    p.add_argument(
        "checkpoint", help="original checkpoint (.pth.tar, legacy or zip torch format)"
    )
    p.add_argument(
        "--config", required=True, help="the original YAML config it was trained with"
    )
    p.add_argument(
        "--out",
        required=True,
        help="output folder for kp_detector/generator/discriminator weights",
    )
    p.set_defaults(_module="fomm_tutorial.checkpoint")
    return parser


def main(argv=None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    args = build_parser().parse_args(argv)
    try:
        return int(importlib.import_module(args._module).run_cli(args) or 0)
    except (ValueError, FileNotFoundError, RuntimeError, KeyError) as exc:
        # Bad input gets a message that names the problem, not a traceback.
        print(f"fomm-tutorial {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
