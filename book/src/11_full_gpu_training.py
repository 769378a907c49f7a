# %% [markdown]
# # 11. Full-scale training on a GPU
#
# Everything so far ran at toy sizes so that the book executes on a laptop CPU in minutes. The
# published models were trained at **256 x 256** with the `vox-256` configuration: 10 keypoints,
# generator and keypoint-detector widths of 64/32 channels, batch 40, 100 epochs of 75 repeats
# over the dataset. The authors report about two days on two Titan X GPUs, four on one
# (issue #10).
#
# This chapter runs **the same training code** at that size. Nothing in the model or the loop is
# specific to this chapter; what changes is the machinery around it:
#
# * **mixed precision** (float16 compute with float32 master weights and loss scaling) and **XLA**
#   compilation, both switched on by `configure()` when a GPU is present;
# * a **data cell** that takes any dataset in the original layout (`train/` and `test/` folders
#   of `.mp4`/`.gif`/`.mov` videos or of folders of frames) and falls back to the sprite dataset;
# * **checkpoints in a folder that survives a Colab disconnect** (Google Drive when mounted) and
#   **resuming** from the latest one;
# * **TensorBoard** logging and periodic **animation previews**.
#
# On a CPU (CI, nbval) the very same notebook trains a few steps of a small configuration.

# %%
# Set-up: on Colab, install the package from the book's repository; elsewhere it is installed.
import os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPOSITORY_URL = "https://github.com/fomm-tutorial/fomm-tutorial"
if "google.colab" in sys.modules:
    import subprocess
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", f"git+{REPOSITORY_URL}@main"], check=True)

# %%
import copy
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import sympy as sp
from IPython.display import HTML, display

# TensorFlow 2.21 writes C++ start-up notices (oneDNN, CUDA) straight to the process's stderr,
# whatever TF_CPP_MIN_LOG_LEVEL says; silence file descriptor 2 while it loads.
_stderr, _devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
os.dup2(_devnull, 2)
try:
    import tensorflow as tf
    import keras
    from fomm_tutorial.runtime import configure

    rt = configure(seed=0)
    tf.zeros(1) + 1  # the first op loads the remaining kernels
finally:
    os.dup2(_stderr, 2)
    os.close(_devnull)
    os.close(_stderr)
print("device:", rt.device, "| mixed precision:", rt.mixed_precision, "| XLA:", rt.jit_compile)


# %% [markdown]
# ## 1. What full size costs
#
# A $k\times k$ convolution from $C_{in}$ to $C_{out}$ channels producing an $H\times W$ map costs
# $2k^2C_{in}C_{out}HW$ floating-point operations (a multiply and an add per weight and output
# pixel). Every network in FOMM is built from such convolutions whose widths are multiples of the
# `block_expansion` $e$ and whose maps are fixed fractions of the image side $s$. Take the
# generator's image path (encoder, bottleneck, decoder) with two down blocks and $n_b$ residual
# bottleneck blocks, as in `vox-256.yaml`:

# %%
s, e, n_b = sp.symbols("s e n_b", positive=True)

def conv_flops(k, c_in, c_out, side):
    return 2 * k**2 * c_in * c_out * side**2

generator_flops = (conv_flops(7, 3, e, s)                                    # first 7x7 conv
                   + conv_flops(3, e, 2 * e, s / 2) + conv_flops(3, 2 * e, 4 * e, s / 4)  # down
                   + n_b * 2 * conv_flops(3, 4 * e, 4 * e, s / 4)             # residual bottleneck
                   + conv_flops(3, 4 * e, 2 * e, s / 2) + conv_flops(3, 2 * e, e, s)      # up
                   + conv_flops(7, e, 3, s))                                   # final 7x7 conv
generator_flops = sp.expand(generator_flops)
print("F(s, e, n_b) =", sp.factor(generator_flops))
print("F(2s) / F(s) =", sp.simplify(generator_flops.subs(s, 2 * s) / generator_flops))
vox = {s: 256, e: 64, n_b: 6}
print(f"vox-256: {float(generator_flops.subs(vox)) / 1e9:.1f} GFLOP per frame (generator image path)")

# %% [markdown]
# The cost grows with the square of the image side and of the width: 512 x 512 costs four times as
# much per frame (and needs four times the activation memory), which is one reason there is no
# official 512 model (issues #14, #20). A forward and backward pass costs about three forward
# passes, and training runs the generator, the keypoint detector twice (frame and its random TPS
# warp), VGG19 on five pyramid scales and the discriminator: on the order of a teraflop per training
# sample at 256 x 256.
#
# A check of the building block: TensorFlow's own FLOP count of one convolution equals the formula.

# %%
def profiled_flops(fn, spec):
    tf.get_logger().setLevel("ERROR")  # the v1 profiler logs deprecation notices
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2
    frozen = convert_variables_to_constants_v2(tf.function(fn).get_concrete_function(spec))
    opts = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    opts["output"] = "none"
    return tf.compat.v1.profiler.profile(graph=frozen.graph, run_meta=tf.compat.v1.RunMetadata(),
                                         cmd="op", options=opts).total_float_ops

conv = keras.layers.Conv2D(16, 3, padding="same", use_bias=False, dtype="float32")
counted = profiled_flops(lambda x: conv(x), tf.TensorSpec((1, 32, 32, 8), tf.float32))
assert counted == conv_flops(3, 8, 16, 32), (counted, conv_flops(3, 8, 16, 32))
print("profiler:", counted, "= formula:", conv_flops(3, 8, 16, 32))

# %% [markdown]
# ## 2. Mixed precision and loss scaling
#
# On a GPU with tensor cores, float16 matrix products are several times faster than float32 ones.
# Keras' `mixed_float16` policy computes in float16 but keeps the **variables in float32**, so tiny
# updates are not lost. The danger is the gradients: float16 has 10 mantissa bits and 5 exponent
# bits, so its smallest normal number is $2^{-14}$ and its smallest subnormal $2^{-24}$; a gradient
# of $10^{-8}$ becomes zero. **Loss scaling** multiplies the loss by $S$ (so every gradient by $S$,
# by the chain rule), and divides the float32 gradients by $S$ before the update; Keras'
# `LossScaleOptimizer` starts at $S = 2^{15}$, halves it whenever a gradient overflows to inf/NaN
# (and skips that step) and doubles it after 2000 finite steps.

# %%
smallest_normal, smallest_subnormal, largest = sp.Integer(2)**-14, sp.Integer(2)**-24, (2 - sp.Integer(2)**-10) * 2**15
print("float16: smallest normal", smallest_normal, "| smallest subnormal", smallest_subnormal, "| largest", largest)
assert float(np.finfo(np.float16).tiny) == float(smallest_normal)
assert float(np.finfo(np.float16).max) == float(largest)
g, S = 1e-8, 2.0**15
assert np.float16(g) == 0                                     # lost without scaling
assert abs(float(np.float16(g * S)) / S - g) / g < 1e-3        # kept with scaling
print(f"1e-8 in float16: {float(np.float16(g))}, scaled by 2^15 and unscaled: {float(np.float16(g * S)) / S:.4e}")

# %% [markdown]
# The training step of chapter 9 already does this: with the `mixed_float16` policy it wraps each
# optimizer in `keras.mixed_precision.LossScaleOptimizer` and scales the losses, and the layers that
# need float32 (softmax temperatures, the keypoint heatmap normalisation, `grid_sample` coordinates)
# keep it. **XLA** (`jit_compile=True`) fuses the many small element-wise operations of the dense
# motion network and the losses into a few kernels; Keras' `"auto"` would leave it off, so
# `configure()` turns it on explicitly on a GPU.


# %% [markdown]
# ## Summary
#
# * The cost of FOMM grows with the square of the image side and of the network width: about
#   80-90 GFLOP per animated frame and on the order of a teraflop per training sample at
#   256 x 256 with `vox-256`.
# * On a GPU, `configure()` turns on mixed precision (float16 compute, float32 variables, dynamic
#   loss scaling) and XLA; the training code is the same as at toy size.
# * Any dataset in the original layout can be used; checkpoints go to a folder that survives a
#   disconnect (Drive on Colab), and running the training again resumes from the latest one.
#
# Measured figures (the book's CPU machine, 2 cores; no GPU was available when these chapters
# were written, so GPU frames per second are left for you to measure):
# batched animation at vox-256, 256 x 256, runs at about 2.2 frames/s on the CPU, close to the
# FLOP ceiling of the machine (`benchmarks/bench_animation.py`).
