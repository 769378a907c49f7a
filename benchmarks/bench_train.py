"""Seconds per training step (generator + keypoint-detector step with the faithful losses, then
the discriminator step when the config has a GAN) on random data, next to the float32 GEMM rate
measured in the same process and, with ``--original``, the original PyTorch code's step timed in
the same run.

    .venv/bin/python benchmarks/bench_train.py --config vox-256 --size 256 --batch 2 --original
    .venv/bin/python benchmarks/bench_train.py --profile          # the per-stage table below
    .venv/bin/python benchmarks/bench_train.py --config vox-256-tiny --size 128 --batch 4

``--original`` runs ``../shared/tools/fomm_reference_bench.py`` (needs ``$FOMM_ORIGINAL_GIT``,
see :mod:`common`) once per round, interleaved with this code's steps, so that the load of the
shared machine hits both alike; it reports the median over rounds of each and their ratio.
VGG19 has random weights (speed does not depend on them).

Measured with ``--original`` (2026-11-26 14:20-14:38, TF 2.21 / torch 2.13, 2 threads each, both
``nice -n 10`` on the shared 2-core machine, load average 6-9; 5 rounds; per round this code's
median of 3 steps and the original tool's ``train_step_s`` with ``--steps 2``, the slower of 2
steps after a warm-up):

    round                    0      1      2      3      4
    GEMM GFLOP/s           224    117    108    440    111
    this code  s/step    12.20  12.47  15.17   2.92  13.04
    original   s/step    73.05  68.11  43.75  38.23  67.34
    ratio                 0.17   0.18   0.35   0.08   0.19

    median 12.47 s/step against the original's 67.34: 0.19x the original's time (median of the
    rounds' ratios 0.18; best against best 2.92 / 38.23 = 0.08). An earlier run of 3 rounds
    (14:10-14:15, lighter load): 5.70 / 9.74 / 2.82 s against 25.82 / 4.02 / 24.70 s, medians
    0.23x. The machine's speed moves 4x within a minute (see the GEMM column): compare only
    ratios from one run.

On a quiet machine (2026-11-26 15:24, nothing else running, 3 rounds, no XLA):

    round                    0      1      2
    GEMM GFLOP/s           442    470    456
    this code  s/step     2.86   2.81   2.84
    original   s/step     3.98   3.88   3.77
    ratio                 0.72   0.72   0.75

    median 2.84 s/step against the original's 3.88: 0.73x the original's time.

Profile (``--profile``): vox-256 at 256 x 256, batch 2, each stage a separate ``tf.function``
(no XLA), forward + backward, median of 3 runs, 2026-11-26, TF 2.21, load average 8-11 from
other users: CPU seconds of the process (user + system over both cores; far less sensitive to
the load than wall time, which ran 3-17x longer) and GFLOP of the convolutions and matrix
products in the traced graph, gradients included (:func:`common.matmul_conv_flops`). A float32
GEMM runs at 215-233 GFLOP per CPU-second in the same process.

    stage                            GFLOP   CPU-s before   CPU-s after   GFLOP/CPU-s after
    kp detector (one of 3 calls)      13.8       0.51           0.12            114
    dense motion network              41.9       1.95           0.43             98
    generator (incl. dense motion)   574         5.54           3.64            158
    VGG19 pyramid, perceptual loss   503         1.73           1.68            299
    equivariance transform             0          -             0.015            -
    resampler, feature warp 64x64x256  0          -             0.023            -
    Adam (generator + kp detector)     0          -             0.13             -
    whole step                      1118          -             5.43            206

Before, the dense-motion and keypoint hourglasses ran at 10-20 GFLOP per CPU-second: at their
2x2-8x8 levels (512-2048 channels) TensorFlow's CPU convolution kernels, forward and both
gradients, take 2-7x the time of the same matrix product, and the sub-pixel up-block spent more
on building its four 2x2 kernels and their gradient (tensors of 16M floats) than on convolving;
training-mode batch norm (moments + scale/shift and their autodiff) took 230 ms per 256 x 256 x
128 forward+backward against 47 ms for the fused kernel. The resampler's scatter-add backward,
the equivariance transform and the optimizer are each below 3% of the step. Fixed in
:mod:`fomm_tutorial.blocks` (``conv2d_valid``, ``UpBlock2d.SUBPIXEL_MIN_POSITIONS``,
``BatchNorm2d``), every parity test unchanged. After: the step does 1118 GFLOP at 206 GFLOP per
CPU-second, 90% of the GEMM rate.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import gemm_flops_per_s, matmul_conv_flops, run_original  # noqa: E402

# Output channels of the 13 VGG19 convolutions up to relu5_1 (input: 3 channels).
_VGG_CHANNELS = [3, 64, 64, 128, 128, 256, 256, 256, 256, 512, 512, 512, 512, 512]


def random_vgg():
    """A :class:`fomm_tutorial.losses.Vgg19` with random weights (no download, no fixture)."""
    from fomm_tutorial.losses import Vgg19

    rng = np.random.default_rng(0)
    pairs = list(zip(_VGG_CHANNELS[:-1], _VGG_CHANNELS[1:]))
    kernels = [rng.normal(0, 0.05, (3, 3, i, o)).astype(np.float32) for i, o in pairs]
    biases = [np.zeros(o, np.float32) for _, o in pairs]
    return Vgg19(kernels, biases)


def random_batch(size, batch):
    rng = np.random.default_rng(0)
    return {
        k: tf.constant(rng.uniform(0, 1, (batch, size, size, 3)).astype(np.float32))
        for k in ("source", "driving")
    }


def make_step(config, size, batch, xla, simple):
    """The Trainer's compiled step and a batch for it (random weights and data)."""
    import keras

    from fomm_tutorial.training import Trainer

    config = dict(config)
    config["dataset_params"] = dict(
        config["dataset_params"], frame_shape=[size, size, 3]
    )
    x = random_batch(size, batch)
    keras.utils.set_random_seed(0)
    trainer = Trainer(
        config,
        tempfile.mkdtemp(),
        lambda epoch: tf.data.Dataset.from_tensors(x),
        jit_compile=xla,
        simple_losses=simple,
        vgg=None if simple else random_vgg(),
        progress=False,
        image_every=0,
    )
    return trainer._step_fn(), x


def time_steps(step, x, n):
    """Wall seconds of ``n`` steps (each waits for its losses)."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        losses, _ = step(x)
        [v.numpy() for v in losses.values()]
        times.append(time.perf_counter() - t0)
    return times


def profile(config, size, batch, repeats):
    """Print CPU seconds and GFLOP of each stage of a training step (forward + backward)."""
    import keras

    from fomm_tutorial import losses
    from fomm_tutorial.checkpoint import build_models
    from fomm_tutorial.resampler import grid_sample

    config = dict(config)
    config["dataset_params"] = dict(
        config["dataset_params"], frame_shape=[size, size, 3]
    )
    tp = config["train_params"]
    keras.utils.set_random_seed(0)
    models = build_models(config)
    kp_detector, generator = models["kp_detector"], models["generator"]
    dense_motion = generator.dense_motion_network
    x = random_batch(size, batch)
    source, driving = x["source"], x["driving"]
    kp_source, kp_driving = kp_detector(source), kp_detector(driving)
    generator(source, kp_source=kp_source, kp_driving=kp_driving)
    gen_vars = generator.trainable_variables
    kp_vars = kp_detector.trainable_variables
    vgg = random_vgg()
    pyramid = losses.ImagePyramid(tp["scales"], 3)
    full = losses.GeneratorFullModel(
        kp_detector, generator, models["discriminator"], tp, vgg=vgg
    )
    optimizers = [keras.optimizers.Adam(2e-4, 0.5, 0.999) for _ in range(2)]
    for opt, variables in zip(optimizers, (gen_vars, kp_vars)):
        opt.build(variables)
    rng = np.random.default_rng(1)
    h = size // 4
    features = tf.constant(rng.normal(size=(batch, h, h, 256)).astype(np.float32))
    grid = tf.constant(rng.uniform(-1, 1, (batch, h, h, 2)).astype(np.float32))
    seed = tf.constant([1, 2], tf.int64)

    def grads(loss_fn, variables, watched=()):
        with tf.GradientTape() as tape:
            tape.watch(list(watched))
            loss = loss_fn()
        return tape.gradient(loss, list(variables) + list(watched))

    def total(tensors):
        return tf.add_n([tf.reduce_sum(t) for t in tf.nest.flatten(tensors)])

    def kp_stage():
        return grads(lambda: total(kp_detector(source, training=True)), kp_vars)

    def dense_motion_stage():
        def loss():
            out = dense_motion(
                source, kp_driving=kp_driving, kp_source=kp_source, training=True
            )
            return total([out["deformation"], out["occlusion_map"]])

        return grads(loss, dense_motion.trainable_variables, kp_driving.values())

    def generator_stage():
        def loss():
            out = generator(
                source, kp_source=kp_source, kp_driving=kp_driving, training=True
            )
            return total(out["prediction"])

        return grads(loss, gen_vars, kp_driving.values())

    def vgg_stage():
        def loss():
            return losses.perceptual_loss(
                vgg, pyramid(source), pyramid(driving), tp["scales"], [10] * 5
            )

        return grads(loss, [], [source])

    def transform_stage():
        transform = losses.Transform(batch, **tp["transform_params"], seed=seed)
        return [transform.transform_frame(driving), transform.jacobian(grid[:, 0])]

    def resampler_stage():
        return grads(lambda: total(grid_sample(features, grid)), [], [features, grid])

    def optimizer_stage():
        for opt, variables in zip(optimizers, (gen_vars, kp_vars)):
            opt.apply_gradients([(tf.zeros_like(v), v) for v in variables])
        return [tf.constant(0.0)]

    def whole_step():
        def loss():
            values, _ = full(x, training=True, seed=seed)
            return tf.add_n([tf.reduce_mean(v) for v in values.values()])

        g = grads(loss, gen_vars + kp_vars)
        optimizers[0].apply_gradients(zip(g[: len(gen_vars)], gen_vars))
        optimizers[1].apply_gradients(zip(g[len(gen_vars) :], kp_vars))
        return [tf.constant(0.0)]

    stages = [
        ("kp detector (one of 3 calls)", kp_stage),
        ("dense motion network", dense_motion_stage),
        ("generator (incl. dense motion)", generator_stage),
        ("VGG19 pyramid, perceptual loss", vgg_stage),
        ("equivariance transform", transform_stage),
        ("resampler, feature warp", resampler_stage),
        ("Adam (generator + kp detector)", optimizer_stage),
        ("whole step", whole_step),
    ]
    peak = gemm_flops_per_s()
    print(f"GEMM {peak / 1e9:.0f} GFLOP/s (wall)")
    print(
        f"{'stage':34s} {'GFLOP':>7s} {'CPU-s':>7s} {'wall-s':>7s} {'GFLOP/CPU-s':>11s}"
    )
    for name, fn in stages:
        compiled = tf.function(fn)
        flops = matmul_conv_flops(compiled.get_concrete_function())
        [t.numpy() for t in compiled() if t is not None]  # trace and warm up
        cpu, wall = [], []
        for _ in range(repeats):
            c0, t0 = time.process_time(), time.perf_counter()
            [t.numpy() for t in compiled() if t is not None]
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - t0)
        c, w = statistics.median(cpu), statistics.median(wall)
        print(
            f"{name:34s} {flops / 1e9:7.1f} {c:7.3f} {w:7.3f} {flops / 1e9 / c:11.1f}",
            flush=True,
        )


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="vox-256")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3, help="timed steps per round")
    ap.add_argument("--rounds", type=int, default=3, help="rounds with --original")
    ap.add_argument("--xla", choices=["both", "on", "off"], default="off")
    ap.add_argument("--simple-losses", action="store_true")
    ap.add_argument("--original", action="store_true", help="time the original too")
    ap.add_argument("--profile", action="store_true", help="per-stage table")
    a = ap.parse_args()

    from fomm_tutorial.config import load_config

    config = load_config(a.config)
    print(
        f"{a.config} {a.size}x{a.size} batch {a.batch}, {os.cpu_count()} CPUs, "
        f"TF {tf.__version__}"
    )
    if a.profile:
        profile(config, a.size, a.batch, a.repeats)
        return
    modes = {"both": [False, True], "on": [True], "off": [False]}[a.xla]
    steps = {
        xla: make_step(config, a.size, a.batch, xla, a.simple_losses) for xla in modes
    }
    for step, x in steps.values():
        time_steps(step, x, a.warmup)
    ours = {xla: [] for xla in modes}
    original = []
    for r in range(a.rounds if a.original else 1):
        peak = gemm_flops_per_s()
        for xla, (step, x) in steps.items():
            ours[xla].append(statistics.median(time_steps(step, x, a.repeats)))
        line = f"round {r}: GEMM {peak / 1e9:.0f} GFLOP/s; this code " + ", ".join(
            f"{ours[xla][-1]:.2f} s/step (XLA {'on' if xla else 'off'})"
            for xla in modes
        )
        if a.original:
            name = a.config.removesuffix("-tiny")
            result = run_original(name, a.size, a.batch, steps=2, frames=1)
            original.append(result["train_step_s"])
            line += f"; original {original[-1]:.2f} s/step"
            line += f" (ratio {ours[modes[0]][-1] / original[-1]:.2f})"
        print(line, flush=True)
    for xla in modes:
        med, best = statistics.median(ours[xla]), min(ours[xla])
        line = (
            f"XLA {'on ' if xla else 'off'}: median {med:.2f} s/step, best {best:.2f}"
        )
        if original:
            orig, orig_best = statistics.median(original), min(original)
            ratios = [a / b for a, b in zip(ours[xla], original)]
            line += (
                f"; original median {orig:.2f}, best {orig_best:.2f}; time ratio "
                f"(this / original): medians {med / orig:.2f}, median of the rounds' "
                f"{statistics.median(ratios):.2f}, bests {best / orig_best:.2f}"
            )
        print(line)


if __name__ == "__main__":
    main()
