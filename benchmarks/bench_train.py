"""Seconds per training step (generator + kp detector step, then the discriminator step when the
config has a GAN), with and without XLA, on random data.

    .venv/bin/python benchmarks/bench_train.py --config vox-256-tiny --size 128 --batch 4
    .venv/bin/python benchmarks/bench_train.py --config vox-256 --size 256 --batch 2

Reference (original PyTorch on the 2-core CPU of these machines): vox-256-tiny 128x128 batch 4
~1.5 s/step; vox-256 256x256 batch 2 ~9.2 s/step. Best of ``--repeats`` timed steps after
``--warmup`` steps (robust to a shared machine). ``--simple-losses`` uses the stand-in L1 +
equivariance model instead of :mod:`fomm_tutorial.losses`.

Recorded (2-core shared CPU, TF 2.21, faithful losses incl. VGG19 perceptual, best of 3/2):
  vox-256-tiny 128x128 batch 4 (with GAN + discriminator step): 1.08 s/step without XLA,
    2.54 s/step with XLA (XLA does not pay on this CPU) -- PyTorch ~1.5 s/step.
  vox-256 256x256 batch 2 (no GAN): 7.53 s/step without XLA -- PyTorch ~9.2 s/step.
Re-measured 2026-11-25 on a slower moment of the shared host (GEMM peak 120-134 GFLOP/s instead
of 210): vox-256-tiny 1.99 s/step (XLA 3.33); vox-256 13.46 s/step (XLA 11.63). Compare step
times only with a GEMM peak measured at the same time (benchmarks/bench_animation.py prints one).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def vox256_from_tiny(tiny: dict) -> dict:
    """vox-256 (spec section 8) from the tiny config, for when no shipped vox-256.yaml exists."""
    import copy

    cfg = copy.deepcopy(tiny)
    mp = cfg["model_params"]
    mp["common_params"].update(num_kp=10, num_channels=3, estimate_jacobian=True)
    mp["kp_detector_params"] = dict(
        temperature=0.1,
        block_expansion=32,
        max_features=1024,
        scale_factor=0.25,
        num_blocks=5,
    )
    mp["generator_params"] = dict(
        block_expansion=64,
        max_features=512,
        num_down_blocks=2,
        num_bottleneck_blocks=6,
        estimate_occlusion_map=True,
        dense_motion_params=dict(
            block_expansion=64, max_features=1024, num_blocks=5, scale_factor=0.25
        ),
    )
    mp["discriminator_params"] = dict(
        scales=[1], block_expansion=32, max_features=512, num_blocks=4, sn=True
    )
    cfg["train_params"]["loss_weights"]["generator_gan"] = 0
    cfg["dataset_params"]["frame_shape"] = [256, 256, 3]
    return cfg


def load(name):
    if name == "vox-256":
        shipped = (
            Path(__file__).resolve().parents[1]
            / "fomm_tutorial"
            / "configs"
            / "vox-256.yaml"
        )
        if not shipped.exists():
            return vox256_from_tiny(load("vox-256-tiny"))
    from fomm_tutorial.reference import find_reference_dir

    try:
        from fomm_tutorial.config import load_config
    except ImportError:
        load_config = None
    p = Path(name)
    if not p.exists():
        shipped = (
            Path(__file__).resolve().parents[1]
            / "fomm_tutorial"
            / "configs"
            / f"{name}.yaml"
        )
        ref = find_reference_dir()
        for cand in [shipped] + ([ref / f"{name}.yaml"] if ref else []):
            if cand.exists():
                p = cand
                break
    if load_config is not None:
        try:
            return load_config(name if not p.exists() else p)
        except Exception:  # noqa: BLE001
            pass
    import yaml

    if not p.exists():
        raise FileNotFoundError(
            f"config {name} not found (shipped configs or a YAML path)"
        )
    return yaml.safe_load(p.read_text())


def bench(cfg, size, batch, xla, warmup, repeats, simple):
    import keras
    from fomm_tutorial.training import Trainer

    cfg = dict(cfg)
    cfg["dataset_params"] = dict(cfg["dataset_params"], frame_shape=[size, size, 3])
    rng = np.random.default_rng(0)
    data = {
        k: rng.uniform(0, 1, (batch, size, size, 3)).astype(np.float32)
        for k in ("source", "driving")
    }

    def dataset_fn(epoch):
        return tf.data.Dataset.from_tensors(data).repeat(warmup + repeats + 1)

    keras.utils.set_random_seed(0)
    t = Trainer(
        cfg,
        tempfile.mkdtemp(),
        dataset_fn,
        jit_compile=xla,
        simple_losses=simple,
        progress=False,
        image_every=0,
    )
    step = t._step_fn()
    x = {k: tf.constant(v) for k, v in data.items()}
    for _ in range(warmup):
        losses, _ = step(x)
        {k: v.numpy() for k, v in losses.items()}
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        losses, _ = step(x)
        {k: v.numpy() for k, v in losses.items()}
        times.append(time.perf_counter() - t0)
    return min(times), float(np.median(times)), sorted(losses)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="vox-256-tiny")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--xla", choices=["both", "on", "off"], default="both")
    ap.add_argument("--simple-losses", action="store_true")
    a = ap.parse_args()
    cfg = load(a.config)
    modes = {"both": [False, True], "on": [True], "off": [False]}[a.xla]
    print(
        f"{a.config} {a.size}x{a.size} batch {a.batch}, {os.cpu_count()} CPUs, "
        f"devices {[d.device_type for d in tf.config.list_physical_devices()]}"
    )
    for xla in modes:
        best, med, names = bench(
            cfg, a.size, a.batch, xla, a.warmup, a.repeats, a.simple_losses
        )
        print(
            f"  XLA {'on ' if xla else 'off'}: {best:.3f} s/step best, {med:.3f} median  "
            f"(losses: {', '.join(names)})"
        )


if __name__ == "__main__":
    main()
