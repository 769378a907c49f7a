"""Frames per second of animation inference (keypoint detection + generation) at vox-256, 256 x 256.

    .venv/bin/python benchmarks/bench_models.py [--batch-size 4] [--repeats 2] [--modes eager,function,xla]
                                                [--no-shared-source] [--threads N]

Animation inference as :func:`fomm_tutorial.animation.make_animation` runs it: the source's
keypoints, encoder features and down-scaled copy are computed once
(``generator.encode_source``); each step detects keypoints on a batch of driving frames and
generates them. Three execution modes of the same step: eager, ``tf.function``, and
``tf.function(jit_compile=True)`` (XLA). ``--no-shared-source`` re-encodes the (repeated) source
every step, as the original generator does, to show what the caching saves.

Weights are random (speed does not depend on them). The FLOP ceiling is the measured GEMM
FLOP/s divided by the profiled FLOPs of one frame (helpers in ``benchmarks/common.py``). The machine is shared: the figures are the
best of ``--repeats`` timed steps after one warm-up.

Figures on the 2-core development machine (2026-11-24, batch 4, load average ~1.3 from other
users; GEMM peak measured 210 GFLOP/s): 76.2 GFLOP per frame with the shared source features
(96.8 without; the original's ~110 GFLOP/frame is cut by the sub-pixel up-blocks, see
``blocks.UpBlock2d``); eager 1.90, ``tf.function`` 2.24, XLA 2.17 frames/s; without the shared
source ``tf.function`` 1.88 frames/s. The original PyTorch code runs ~1.5 frames/s there.
Re-measured 2026-11-25 (GEMM peak 134 GFLOP/s at the time, ceiling 1.76 frames/s): eager 1.47,
``tf.function`` 1.67 (95% of the ceiling), XLA 1.74 frames/s (99%); bench_animation.py, batch 8:
1.54 frames/s, 98% of its ceiling.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import gemm_flops_per_s, profiler_flops  # noqa: E402


def make_step(kp_detector, generator, source, shared_source=True):
    """One animation step: driving frames ``(B, 256, 256, 3)`` -> predictions ``(B, 256, 256, 3)``."""
    kp_source = kp_detector(source, training=False)
    features = (
        generator.encode_source(source, training=False) if shared_source else None
    )

    def step(frames):
        n = tf.shape(frames)[0]
        kp_driving = kp_detector(frames, training=False)
        kp_src = {k: tf.repeat(v, n, axis=0) for k, v in kp_source.items()}
        src = tf.repeat(source, n, axis=0)
        out = generator(
            src,
            kp_source=kp_src,
            kp_driving=kp_driving,
            training=False,
            source_features=features,
        )
        return out["prediction"]

    return step


def time_step(fn, frames, repeats):
    fn(frames).numpy()  # warm-up (tracing / XLA compilation)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(frames).numpy()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--modes", default="eager,function,xla")
    parser.add_argument("--no-shared-source", action="store_true")
    parser.add_argument(
        "--threads", type=int, default=0, help="intra-op threads (0: TF default)"
    )
    args = parser.parse_args(argv)
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)

    from fomm_tutorial.checkpoint import build_models
    from fomm_tutorial.config import load_config

    models = build_models(load_config("vox-256"))
    kp_detector, generator = models["kp_detector"], models["generator"]
    rng = np.random.default_rng(0)
    source = tf.constant(rng.random((1, 256, 256, 3), dtype=np.float32))
    frames = tf.constant(rng.random((args.batch_size, 256, 256, 3), dtype=np.float32))
    step = make_step(
        kp_detector, generator, source, shared_source=not args.no_shared_source
    )

    print(
        f"vox-256, 256x256, batch {args.batch_size}, CPU threads visible: {os.cpu_count()}, "
        f"shared source features: {not args.no_shared_source}"
    )
    concrete = tf.function(step).get_concrete_function(
        tf.TensorSpec(frames.shape, tf.float32)
    )
    flops = profiler_flops(concrete) / args.batch_size
    peak = gemm_flops_per_s()
    ceiling = peak / flops
    print(
        f"FLOPs per frame: {flops / 1e9:.1f} G; GEMM peak {peak / 1e9:.1f} GFLOP/s; "
        f"ceiling {ceiling:.2f} frames/s"
    )

    fns = {
        "eager": step,
        "function": tf.function(step),
        "xla": tf.function(step, jit_compile=True),
    }
    for mode in args.modes.split(","):
        seconds = time_step(fns[mode], frames, args.repeats)
        fps = args.batch_size / seconds
        print(
            f"{mode:9s}: {seconds:7.2f} s / batch, {fps:.2f} frames/s "
            f"({fps / ceiling:.0%} of ceiling)"
        )


if __name__ == "__main__":
    main()
