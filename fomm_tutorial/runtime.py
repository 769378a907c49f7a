"""Run-time set-up shared by the chapters, tests and CLI: seeds, determinism, CPU/GPU choice.

The same code runs the small configuration on a CPU (CI, nbval) and the full configuration on a
GPU: :func:`configure` looks for a GPU and, where there is one, switches on mixed precision and
XLA; :meth:`Runtime.choose` lets a parameters cell pick a size for each case.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import random

os.environ.setdefault(
    "TF_CPP_MIN_LOG_LEVEL", "3"
)  # keep TF's C++ logs out of notebook stderr

import numpy as np  # noqa: E402


@dataclasses.dataclass(frozen=True)
class Runtime:
    """What :func:`configure` found and switched on."""

    gpu: bool
    mixed_precision: bool
    jit_compile: bool
    deterministic: bool
    seed: int

    @property
    def device(self) -> str:
        return "GPU" if self.gpu else "CPU"

    def choose(self, cpu, gpu):
        """Return ``gpu`` on a GPU machine and ``cpu`` elsewhere (parameters cells use this)."""
        return gpu if self.gpu else cpu


@contextlib.contextmanager
def quiet_stderr():
    """Silence the process's file descriptor 2 inside the block (Python and C++ writes alike).

    TensorFlow's C++ start-up notices (oneDNN, CUDA, XLA) go straight to file descriptor 2,
    whatever ``TF_CPP_MIN_LOG_LEVEL`` says; in a notebook they would become stderr outputs that
    nbval compares. Chapters import TensorFlow and run their first op inside this block.
    """
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(devnull)
        os.close(saved)


def set_seed(seed: int = 0) -> None:
    """Seed Python, NumPy and TensorFlow (and Keras) random generators."""
    import keras

    random.seed(seed)
    np.random.seed(seed)
    keras.utils.set_random_seed(seed)


def configure(
    seed: int = 0,
    deterministic: bool | None = None,
    mixed_precision: bool | None = None,
    jit_compile: bool | None = None,
) -> Runtime:
    """Seed everything and pick precision/compilation for the machine at hand.

    Args:
      seed: seed for Python, NumPy, TensorFlow and Keras.
      deterministic: enable TensorFlow op determinism (default: on a CPU only, where it is free
        and makes notebook outputs reproducible for nbval).
      mixed_precision: use the ``mixed_float16`` Keras policy (default: on a GPU only).
      jit_compile: compile training/inference steps with XLA (default: on a GPU only; Keras'
        ``"auto"`` turns XLA off on a CPU, so the choice is made explicitly here).
    """
    import tensorflow as tf
    import keras

    gpu = bool(tf.config.list_physical_devices("GPU"))
    deterministic = (not gpu) if deterministic is None else deterministic
    mixed_precision = gpu if mixed_precision is None else mixed_precision
    jit_compile = gpu if jit_compile is None else jit_compile
    set_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.mixed_precision.set_global_policy(
        "mixed_float16" if mixed_precision else "float32"
    )
    return Runtime(
        gpu=gpu,
        mixed_precision=mixed_precision,
        jit_compile=jit_compile,
        deterministic=deterministic,
        seed=seed,
    )
