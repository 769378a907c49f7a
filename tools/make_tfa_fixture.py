"""Regenerate ``tests/fixtures/tfa_resampler.npz``: outputs and gradients of ``tfa.image.resampler``.

tensorflow-addons is end-of-life (0.23.0 is the last release: Python <= 3.11, TF 2.13-2.15, no
Keras 3), so it cannot live in the project's ``.venv``. Run this script in a separate virtual
environment **outside** the repository:

    python3.11 -m venv /tmp/tfa-venv
    /tmp/tfa-venv/bin/pip install tensorflow==2.15.1 tensorflow-addons==0.23.0 "numpy<2"
    TF_CPP_MIN_LOG_LEVEL=3 /tmp/tfa-venv/bin/python tools/make_tfa_fixture.py

(``tensorflow-cpu`` does not work: tfa's custom-op library needs the CUDA stubs of the full
``tensorflow`` wheel, "undefined symbol: __cudaUnregisterFatBinary".)

It writes ``tests/fixtures/tfa_resampler.npz`` (a few KB) with, for each case ``<name>``:
``<name>_data`` (B, H, W, C), ``<name>_warp`` (B, ..., 2) pixel (x, y) coordinates (inside, on
the border, and outside the image), ``<name>_out`` = ``tfa.image.resampler(data, warp)``, and
``<name>_grad_data`` / ``<name>_grad_warp`` = gradients of ``sum(out * cot)`` with the stored
cotangent ``<name>_cot``; plus ``versions`` (the TF / tfa versions that produced it).
``tests/test_resampler.py`` compares ``fomm_tutorial.resampler.resampler`` against it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

OUT = (
    Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "tfa_resampler.npz"
)


def cases(rng):
    """(name, data, warp): random shapes, non-square, warp ranks 3 and 4, coordinates out of range."""
    yield "square", rng.random((2, 6, 6, 3)), rng.uniform(-1.5, 6.5, (2, 5, 5, 2))
    yield (
        "nonsquare",
        rng.random((3, 5, 8, 2)),
        np.stack(
            [rng.uniform(-2.0, 9.0, (3, 4, 7)), rng.uniform(-2.0, 6.0, (3, 4, 7))],
            axis=-1,
        ),
    )
    yield (
        "points",
        rng.random((2, 7, 4, 4)),
        np.stack(
            [rng.uniform(-1.2, 4.2, (2, 9)), rng.uniform(-1.2, 7.2, (2, 9))], axis=-1
        ),
    )
    # exact integers and half-integers, incl. the borders -1, 0, W-1, W
    xs = np.array([-1.0, -0.5, 0.0, 0.5, 2.0, 3.5, 4.0, 4.5, 5.0])
    ys = np.array([-1.0, 0.0, 1.25, 3.0, 3.5, 4.0])
    gx, gy = np.meshgrid(xs, ys)
    yield "lattice", rng.random((1, 4, 5, 2)), np.stack([gx, gy], axis=-1)[None]


def main():
    import tensorflow as tf
    import tensorflow_addons as tfa

    rng = np.random.default_rng(2024)
    arrays = {
        "versions": np.array(
            f"tensorflow {tf.__version__}, tensorflow-addons {tfa.__version__}"
        )
    }
    for name, data, warp in cases(rng):
        data = tf.constant(data, tf.float32)
        warp = tf.constant(warp, tf.float32)
        with tf.GradientTape() as tape:
            tape.watch([data, warp])
            out = tfa.image.resampler(data, warp)
            cot = tf.constant(rng.standard_normal(out.shape), tf.float32)
            loss = tf.reduce_sum(out * cot)
        grad_data, grad_warp = tape.gradient(loss, [data, warp])
        for key, value in (
            ("data", data),
            ("warp", warp),
            ("out", out),
            ("cot", cot),
            ("grad_data", grad_data),
            ("grad_warp", grad_warp),
        ):
            arrays[f"{name}_{key}"] = value.numpy().astype(np.float32)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, **arrays)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes) with {arrays['versions']}")


if __name__ == "__main__":
    main()
