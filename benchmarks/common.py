"""Helpers shared by the benchmarks: the machine's float32 GEMM rate, FLOP counts of a traced
function, and the original PyTorch code's timings on this machine.

The original is timed by ``../shared/tools/fomm_reference_bench.py`` (outside the repository;
it reads the original's code from the git directory in ``$FOMM_ORIGINAL_GIT``, a fetched copy of
https://github.com/AliaksandrSiarohin/first-order-model). Nothing of the original is copied
here: :func:`run_original` runs that tool in a subprocess and parses its one-line JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

ORIGINAL_ENV = "FOMM_ORIGINAL_GIT"


def gemm_flops_per_s(n: int = 2048, repeats: int = 10) -> float:
    """Peak float32 throughput the machine reaches on a large matrix product (2 n^3 per product)."""
    a = tf.random.normal((n, n))
    b = tf.random.normal((n, n))
    mm = tf.function(tf.matmul)
    mm(a, b).numpy()
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        mm(a, b).numpy()
        best = max(best, 2 * n**3 / (time.perf_counter() - t0))
    return best


def profiler_flops(concrete_function) -> float:
    """Float operations of a forward-only concrete function (TF profiler, 2 per multiply-add).

    Freezes the variables first, so it fails on graphs that assign variables (training-mode
    batch norm): use :func:`matmul_conv_flops` there.
    """
    tf.get_logger().setLevel("ERROR")  # the v1 profiler logs deprecation warnings
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    frozen = convert_variables_to_constants_v2(concrete_function)
    opts = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    opts["output"] = "none"
    info = tf.compat.v1.profiler.profile(
        graph=frozen.graph, run_meta=tf.compat.v1.RunMetadata(), cmd="op", options=opts
    )
    return float(info.total_float_ops)


def _static(shape):
    if shape.rank is None or any(d is None for d in shape):
        return None
    return [int(d) for d in shape]


def matmul_conv_flops(concrete_function) -> float:
    """FLOPs (2 per multiply-add) of every convolution and matrix product in a traced graph,
    forward and gradient ops alike (Conv2D, its two backprops, depthwise, MatMul, BatchMatMul).

    Elementwise work (batch norm, activations, the resampler's gathers) is not counted: the
    figure is the GEMM-like work a step cannot avoid, to set against the GEMM rate.
    """
    total = 0.0
    for op in concrete_function.graph.get_operations():
        kind = op.type
        try:
            if kind == "Conv2D":
                out, k = _static(op.outputs[0].shape), _static(op.inputs[1].shape)
                total += 2.0 * np.prod(out) * k[0] * k[1] * k[2]
            elif kind == "Conv2DBackpropInput":
                grad_in, k = _static(op.outputs[0].shape), _static(op.inputs[1].shape)
                total += 2.0 * np.prod(grad_in) * k[0] * k[1] * k[3]
            elif kind == "Conv2DBackpropFilter":
                k, grad_out = _static(op.outputs[0].shape), _static(op.inputs[2].shape)
                total += 2.0 * np.prod(grad_out) * k[0] * k[1] * k[2]
            elif kind.startswith("DepthwiseConv2dNative"):
                out, k = _static(op.outputs[0].shape), _static(op.inputs[1].shape)
                total += 2.0 * np.prod(out) * k[0] * k[1]
            elif kind == "MatMul":
                a, out = _static(op.inputs[0].shape), _static(op.outputs[0].shape)
                inner = a[-2] if op.get_attr("transpose_a") else a[-1]
                total += 2.0 * np.prod(out) * inner
            elif kind.startswith("BatchMatMul"):
                a, out = _static(op.inputs[0].shape), _static(op.outputs[0].shape)
                inner = a[-2] if op.get_attr("adj_x") else a[-1]
                total += 2.0 * np.prod(out) * inner
        except (TypeError, IndexError, ValueError):  # unknown shapes: not counted
            continue
    return total


def original_tool() -> Path:
    """``../shared/tools/fomm_reference_bench.py`` beside this repository (or an ancestor)."""
    here = Path(__file__).resolve().parent
    for parent in here.parents:
        candidate = parent / "shared" / "tools" / "fomm_reference_bench.py"
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        "fomm_reference_bench.py not found in shared/tools/ beside the repository; "
        "run without --original."
    )


def run_original(config: str, size: int, batch: int, steps: int, frames: int) -> dict:
    """The original's training-step seconds and demo frames/s, timed now, in a subprocess.

    Returns the tool's JSON (``train_step_s``, ``animate_fps``, ...). Needs ``$FOMM_ORIGINAL_GIT``.
    """
    if not os.environ.get(ORIGINAL_ENV):
        raise FileNotFoundError(
            f"--original needs ${ORIGINAL_ENV}: the git directory of a fetched "
            "AliaksandrSiarohin/first-order-model (see ../shared/tools/README.md)."
        )
    cmd = [
        sys.executable,
        str(original_tool()),
        "--config",
        config,
        "--size",
        str(size),
        "--batch",
        str(batch),
        "--steps",
        str(steps),
        "--frames",
        str(frames),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])
