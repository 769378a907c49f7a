"""Run-time set-up for the chapters, tests and CLI: seeds, determinism, CPU/GPU choice.

Explained in chapter 11 (book/11_full_gpu_training.ipynb).

The same code runs the small configuration on a CPU (CI, nbval) and the full
configuration on a GPU: :func:`configure` looks for a GPU and, where there is one,
switches on mixed precision and XLA; :meth:`Runtime.choose` lets a parameters cell pick
a size for each case.

TensorFlow's C++ code logs through Abseil, and Abseil writes *every* message to stderr
until ``absl::InitializeLog()`` is called, which TensorFlow does not do:
``TF_CPP_MIN_LOG_LEVEL`` does not reach those lines (TensorFlow 2.21 prints them at
import, 2.20 at the first XLA compilation). :func:`filtered_stderr` drops them and
passes everything else through; :func:`start_xla` (called by :func:`configure`)
initialises XLA once inside it, so a later ``jit_compile=True`` prints nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import random
import re
import sys
import tempfile

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
        """``gpu`` on a GPU machine and ``cpu`` elsewhere (for parameters cells)."""
        return gpu if self.gpu else cpu


@contextlib.contextmanager
def quiet_stderr():
    """Silence the process's file descriptor 2 inside the block (Python and C++ alike).

    TensorFlow's C++ start-up notices (oneDNN, CUDA, XLA) go straight to file descriptor
    2, whatever ``TF_CPP_MIN_LOG_LEVEL`` says; in a notebook they would become stderr
    outputs that nbval compares. Chapters import TensorFlow and run their first op
    inside this block.
    """
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(devnull)
        os.close(saved)


# Abseil's banner and its log lines "I0000 00:00:1795.. 123 file.cc:153] message"; the
# letter is the severity (Info, Warning, Error, Fatal).
_ABSL_BANNER = "WARNING: All log messages before absl::InitializeLog() is called"
_ABSL_LINE = re.compile(r"^([IWEF])\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [^\]]+\] ")


def _is_absl_noise(line: str, min_level: int) -> bool:
    """An Abseil line below ``TF_CPP_MIN_LOG_LEVEL`` (errors and fatal lines pass)."""
    if line.startswith(_ABSL_BANNER):
        return True
    match = _ABSL_LINE.match(line)
    if match is None:
        return False
    severity = "IWEF".index(match.group(1))
    return severity < min(min_level, 2)


@contextlib.contextmanager
def filtered_stderr():
    """Inside the block, drop Abseil's start-up banner and its log lines below
    ``TF_CPP_MIN_LOG_LEVEL`` (default 3: info and warnings) from file descriptor 2.

    Everything else written to stderr in the block (Python or C++), including Abseil
    error lines, is written out unchanged when the block ends. Unlike
    :func:`quiet_stderr`, a real error stays visible.
    """
    try:
        min_level = int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))
    except ValueError:
        min_level = 0
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode("utf-8", errors="replace")
            kept = [
                line
                for line in text.splitlines(keepends=True)
                if not _is_absl_noise(line, min_level)
            ]
            if kept:
                os.write(2, "".join(kept).encode("utf-8"))


_XLA_STARTED = False


def start_xla() -> None:
    """Compile one tiny function with XLA, with its start-up log lines filtered (once).

    XLA logs its service start (platform, devices) when it compiles for the first time;
    :func:`configure` calls this so that no chapter or command prints those lines later.
    """
    global _XLA_STARTED
    if _XLA_STARTED:
        return
    with filtered_stderr():
        import tensorflow as tf

        tf.function(lambda x: x + 1.0, jit_compile=True)(tf.zeros(()))
    _XLA_STARTED = True


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
      deterministic: enable TensorFlow op determinism (default: on a CPU only, where it
        is free and makes the notebooks' outputs reproducible).
      mixed_precision: use the ``mixed_float16`` Keras policy (default: on a GPU only).
      jit_compile: compile training/inference steps with XLA (default: on a GPU only;
        Keras' ``"auto"`` turns XLA off on a CPU, so the choice is made explicitly
        here).
    """
    with filtered_stderr():  # TensorFlow's import-time Abseil lines
        import tensorflow as tf
        import keras

    start_xla()
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
