"""Frames per second of batched animation at the vox-256 configuration (256 x 256), against the
machine's FLOP ceiling.

    .venv/bin/python benchmarks/bench_animation.py [--config vox-256] [--frames 16] [--batch-size 8]
                                                   [--checkpoint PATH] [--xla]

The ceiling is (measured float32 GEMM FLOP/s) / (FLOPs of one animated frame). The FLOPs per frame
are counted by TensorFlow's profiler on the graph of one batch step (kp detector on the driving
frames + generator; the source-side work is done once per video and excluded), divided by the
batch size. Weights are random unless --checkpoint is given (speed does not depend on them).

``--original`` times the original's demo loop (one generator call per driving frame, source
re-encoded every frame) with ``../shared/tools/fomm_reference_bench.py`` (needs
``$FOMM_ORIGINAL_GIT``, see ``benchmarks/common.py``) once per round, interleaved with this
code's ``make_animation`` (best of ``--repeats``), and prints the medians and their ratio.

Measured 2026-11-26 14:38-14:48 (vox-256, 256 x 256, 8 frames, batch 8, TF 2.21 / torch 2.13,
2 threads each, ``nice -n 10``, load average 6-9 from other users; 77.3 GFLOP per frame):

    round                      0      1      2      3      4
    this code  frames/s    1.131  0.864  0.967  0.780  2.195
    original   frames/s    0.197  0.264  0.364  0.371  0.409
    ratio                   5.74   3.27   2.66   2.10   5.37

    medians 0.967 against 0.364 frames/s: 2.66x the original's frames/s (median of the
    rounds' ratios 3.27, best against best 5.37). An earlier 3-round run at a lighter load
    (14:15-14:18): 1.18 / 3.88 / 2.49 against 2.83 / 0.36 / 2.71 frames/s, medians 0.92x, bests
    1.37x: the host's speed moves 4x within a minute (GEMM 108-467 GFLOP/s that hour), more than
    the difference measured, so only many interleaved rounds say something.

On a quiet machine (2026-11-26 15:26, nothing else running, 16 frames, 3 rounds, GEMM 471
GFLOP/s, ceiling 6.10 frames/s):

    round                      0      1      2
    this code  frames/s    5.196  5.190  5.033
    original   frames/s    2.967  2.816  3.186
    ratio                   1.75   1.84   1.58

    median 5.19 frames/s (85% of the FLOP ceiling) against 2.97: 1.75x the original's frames/s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import gemm_flops_per_s, profiler_flops, run_original  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="vox-256")
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument(
        "--size", type=int, default=256, help="frame side (the config's is 256)"
    )
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--xla", action="store_true", help="jit_compile the batch step")
    parser.add_argument(
        "--original",
        action="store_true",
        help="time the original's demo loop too, interleaved (needs $FOMM_ORIGINAL_GIT)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds with --original")
    args = parser.parse_args(argv)

    from fomm_tutorial import animation
    from fomm_tutorial.checkpoint import build_models

    from fomm_tutorial.config import load_config

    config = load_config(args.config)
    config.setdefault("dataset_params", {})["frame_shape"] = [args.size, args.size, 3]
    if args.checkpoint:
        models = animation.load_models(config, args.checkpoint)
    else:
        models = build_models(config)
    kp_detector, generator = models["kp_detector"], models["generator"]
    h, w = config["dataset_params"]["frame_shape"][:2]
    rng = np.random.default_rng(0)
    source = rng.uniform(size=(h, w, 3)).astype(np.float32)
    driving = rng.uniform(size=(args.frames, h, w, 3)).astype(np.float32)
    bs = args.batch_size

    # FLOPs of one batch step, as make_animation runs it (relative motion).
    kp_source = kp_detector(tf.constant(source[None]), training=False)
    kp_source = {k: kp_source[k] for k in ("value", "jacobian") if k in kp_source}

    source_t = tf.constant(source[None])
    source_features = generator.encode_source(
        source_t, training=False
    )  # once per video

    def step(frames):
        kp_driving = kp_detector(frames, training=False)
        kp_driving = {
            k: kp_driving[k] for k in ("value", "jacobian") if k in kp_driving
        }
        kp_norm = animation.normalize_kp(
            kp_source,
            kp_driving,
            kp_source,
            use_relative_movement=True,
            use_relative_jacobian=True,
        )
        return generator(
            source_t,
            kp_source=kp_source,
            kp_driving=kp_norm,
            training=False,
            source_features=source_features,
        )["prediction"]

    concrete = tf.function(step).get_concrete_function(
        tf.TensorSpec((bs, h, w, 3), tf.float32)
    )
    flops_per_frame = profiler_flops(concrete) / bs
    peak = gemm_flops_per_s()
    ceiling = peak / flops_per_frame

    # Warm-up (tracing) then timed runs of the whole make_animation call; the machine is shared,
    # so the best of --repeats runs is reported.
    animation.make_animation(
        source,
        driving[:bs],
        kp_detector,
        generator,
        batch_size=bs,
        progress=False,
        jit_compile=args.xla,
    )

    def animate_fps():
        best = 0.0
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            animation.make_animation(
                source,
                driving,
                kp_detector,
                generator,
                batch_size=bs,
                progress=False,
                jit_compile=args.xla,
            )
            best = max(best, args.frames / (time.perf_counter() - t0))
        return best

    rounds, original = [], []
    for r in range(args.rounds if args.original else 1):
        rounds.append(animate_fps())
        line = f"round {r}: {rounds[-1]:.3f} frames/s"
        if args.original:
            name = args.config.removesuffix("-tiny")
            result = run_original(name, h, 1, steps=1, frames=args.frames)
            original.append(result["animate_fps"])
            line += f", original {original[-1]:.3f} frames/s"
            line += f" (ratio {rounds[-1] / original[-1]:.2f})"
        print(line, flush=True)
    fps = statistics.median(rounds)
    peak = max(peak, gemm_flops_per_s())  # the machine's speed varies: best of both
    ceiling = peak / flops_per_frame
    print(
        f"config {args.config} {h}x{w}, batch {bs}, {args.frames} frames, threads "
        f"{tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count()}, xla {args.xla}"
    )
    print(f"GFLOP per frame        {flops_per_frame / 1e9:8.2f}")
    print(f"GEMM peak GFLOP/s      {peak / 1e9:8.2f}")
    print(f"FLOP ceiling frames/s  {ceiling:8.3f}")
    print(
        f"measured frames/s      {fps:8.3f}   ({100 * fps / ceiling:.0f}% of the ceiling)"
    )
    if original:
        orig = statistics.median(original)
        ratios = [a / b for a, b in zip(rounds, original)]
        print(
            f"original frames/s      {orig:8.3f}   (median over rounds; best "
            f"{max(original):.3f})\n"
            f"frames/s ratio (this / original): medians {fps / orig:.2f}, median of the "
            f"rounds' {statistics.median(ratios):.2f}, bests "
            f"{max(rounds) / max(original):.2f}"
        )
    return fps, ceiling


if __name__ == "__main__":
    main()
