"""torch's ``grid_sample`` as the oracle for :mod:`fomm_tutorial.resampler`, NHWC in and out.

Shared by ``tests/test_resampler.py`` and ``benchmarks/bench_resampler.py`` (which puts this
folder on ``sys.path``); imports neither pytest nor the tests.
"""

from __future__ import annotations

import tensorflow as tf


def torch_grid_sample(image, grid, align_corners, padding_mode, cot=None):
    """torch ``grid_sample`` (bilinear) of NHWC ``image`` at ``grid`` ``(B, h, w, 2)``.

    Returns the NHWC output, or with a cotangent ``cot`` (shaped like the output) the gradients
    of ``sum(out * cot)``: ``(d image NHWC, d grid)``.
    """
    import torch

    im = torch.tensor(image).permute(0, 3, 1, 2).requires_grad_(True)
    gr = torch.tensor(grid).requires_grad_(True)
    out = torch.nn.functional.grid_sample(
        im, gr, mode="bilinear", padding_mode=padding_mode, align_corners=align_corners
    )
    if cot is None:
        return out.permute(0, 2, 3, 1).detach().numpy()
    (out * torch.tensor(cot).permute(0, 3, 1, 2)).sum().backward()
    return im.grad.permute(0, 2, 3, 1).numpy(), gr.grad.numpy()


def tf_grads(fn, image, grid, cot):
    """Gradients ``[d image, d grid]`` of ``sum(fn(image, grid) * cot)`` (NumPy arrays)."""
    image, grid = tf.constant(image), tf.constant(grid)
    with tf.GradientTape() as tape:
        tape.watch([image, grid])
        loss = tf.reduce_sum(fn(image, grid) * cot)
    return [g.numpy() for g in tape.gradient(loss, [image, grid])]
