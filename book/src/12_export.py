# %% [markdown]
# # 12. Export and deployment
#
# A trained model is most useful outside the Python session that trained it: in a phone
# app, in a browser, behind a server that has no TensorFlow. This chapter writes the
# keypoint detector and the generator as three standard graph formats and checks each
# against Keras:
#
# 1. why this package's resampler exports at all, where the original's `grid_sample`
#    did not (with sympy: the four gathers and weights the exported graph computes);
# 2. **SavedModel** (TensorFlow Serving, TensorFlow.js), **ONNX** (onnxruntime, on
#    servers and in browsers) and **TFLite** (LiteRT, on phones), each with its parity
#    check, its size on disk and its speed;
# 3. float16 weights: half the size, and the error that costs;
# 4. animating a sprite video with onnxruntime and NumPy alone, no TensorFlow in the loop.
#
# Everything is in
# [`export.py`](https://github.com/fomm-tutorial/fomm-tutorial/blob/main/fomm_tutorial/export.py)
# and on the command line as `fomm-tutorial export`.

# %% tags=["hide-input"]
# Set-up: on Colab, install the package from the book's repository; elsewhere it is
# installed.
import os, sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPOSITORY_URL = "https://github.com/fomm-tutorial/fomm-tutorial"
if "google.colab" in sys.modules:
    import subprocess

    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", f"git+{REPOSITORY_URL}@main"],
        check=True,
    )

# %% tags=["hide-input"]
import tempfile
import time
from pathlib import Path

import numpy as np
import sympy as sp

from fomm_tutorial.display import (
    show_animation,
    show_equations,
    show_source,
    use_book_style,
)
from fomm_tutorial.runtime import quiet_stderr

# TensorFlow writes C++ start-up notices (oneDNN, CUDA) straight to the process's
# stderr, whatever TF_CPP_MIN_LOG_LEVEL says: import it and run a first op with stderr
# silenced.
with quiet_stderr():
    import onnxruntime as ort
    import tensorflow as tf
    import tf2onnx
    from fomm_tutorial import export
    from fomm_tutorial.animation import make_animation, movement_scale
    from fomm_tutorial.pretrained import load_pretrained
    from fomm_tutorial.resampler import grid_sample
    from fomm_tutorial.runtime import configure
    from fomm_tutorial.sprites import heldout_videos

    rt = configure(seed=0)
tf.get_logger().setLevel("ERROR")  # the converters' "Assets written to ..." notes
use_book_style()

# %%
# Parameters: small on a CPU (a few seconds per format), the same on a GPU (export runs
# on the CPU anyway).
NUM_FRAMES = rt.choose(cpu=24, gpu=64)  # frames of the held-out sprite video
REPEATS = rt.choose(cpu=5, gpu=20)  # timed frames per runtime (the best one counts)
print("device:", rt.device)

# %% [markdown]
# ## 12.1 Why the resampler exports
#
# The warps of the model ([chapter 6](06_dense_motion.ipynb),
# [chapter 7](07_generator.ipynb)) sample an image at non-integer positions. The
# original PyTorch code does it with `torch.nn.functional.grid_sample`, a single fused
# operator. When the original's users tried to export the model to ONNX, that operator
# had no ONNX counterpart at the time (first-order-model issue #92), and later ports had
# to rewrite forward code to make it graph-friendly.
#
# The resampler of [chapter 4](04_resampler.ipynb) was written without a fused operator:
# floor the coordinates, **gather** the four neighbouring pixels from the flattened image,
# and add them with the bilinear weights. Gather, floor, multiply and add exist in every
# graph format (ONNX `Gather`, TFLite `GATHER`), so the whole model converts with builtin
# operators. Its forward pass, defined in chapter 4:

# %% tags=["remove-input"]
show_source(grid_sample)

# %% [markdown]
# With $f_{ij}$ the four pixels around the point and $a_x, a_y$ its fractional offsets,
# the exported graph computes the sum of four gathered values with the products of the
# per-axis weights. Sympy confirms that this sum is **the** bilinear interpolant: it is
# linear in $x$ and in $y$ separately and equals the pixels at the four corners.

# %%
ax, ay = sp.symbols("a_x a_y", real=True)
f00, f01, f10, f11 = sp.symbols("f_00 f_01 f_10 f_11", real=True)
w = {"00": (1 - ay) * (1 - ax), "01": (1 - ay) * ax, "10": ay * (1 - ax), "11": ay * ax}
gathers = w["00"] * f00 + w["01"] * f01 + w["10"] * f10 + w["11"] * f11
c0, c1, c2, c3 = sp.symbols("c_0:4")
bilinear = c0 + c1 * ax + c2 * ay + c3 * ax * ay  # the general bilinear function
corners = {(0, 0): f00, (1, 0): f01, (0, 1): f10, (1, 1): f11}  # (a_x, a_y): pixel
coefficients = sp.solve(
    [bilinear.subs({ax: x, ay: y}) - f for (x, y), f in corners.items()],
    [c0, c1, c2, c3],
)
assert sp.expand(bilinear.subs(coefficients) - gathers) == 0
assert sp.simplify(sum(w.values())) == 1  # the weights are a partition of unity
assert sp.diff(gathers, ax, 2) == 0 and sp.diff(gathers, ay, 2) == 0

# %% tags=["remove-input"]
show_equations(
    [
        (sp.Symbol("I(x, y)"), gathers),
        (sp.Symbol(r"\sum w"), sp.factor(sum(w.values()))),
    ]
)

# %% [markdown]
# The check below converts `grid_sample` alone to ONNX with tf2onnx, runs it with
# onnxruntime, and compares it with the sympy expression evaluated on the four pixels
# that NumPy gathers at each sampling point (points inside the image, so every corner
# exists).

# %%
rng = np.random.default_rng(0)
image = rng.random((1, 8, 8, 3), dtype=np.float32)
grid = rng.uniform(-0.9, 0.9, (1, 5, 5, 2)).astype(np.float32)
spec = [
    tf.TensorSpec(image.shape, tf.float32, name="image"),
    tf.TensorSpec(grid.shape, tf.float32, name="grid"),
]
with quiet_stderr():
    proto, _ = tf2onnx.convert.from_function(
        tf.function(lambda i, g: grid_sample(i, g)), input_signature=spec, opset=17
    )
    session = ort.InferenceSession(
        proto.SerializeToString(), providers=["CPUExecutionProvider"]
    )
(onnx_out,) = session.run(None, {"image": image, "grid": grid})

interpolate = sp.lambdify((ax, ay, f00, f01, f10, f11), gathers, "numpy")
px = (grid[0, ..., 0] + 1) / 2 * 7  # align_corners=True: -1 -> 0, 1 -> w - 1
py = (grid[0, ..., 1] + 1) / 2 * 7
x0, y0 = np.floor(px).astype(int), np.floor(py).astype(int)
pixel = image[0]
by_sympy = interpolate(
    (px - x0)[..., None],
    (py - y0)[..., None],
    pixel[y0, x0],
    pixel[y0, x0 + 1],
    pixel[y0 + 1, x0],
    pixel[y0 + 1, x0 + 1],
)
ops = sorted({node.op_type for node in proto.graph.node})
diff = np.abs(onnx_out[0] - by_sympy).max()
assert diff < 1e-5
print("ONNX operators:", ", ".join(ops))
print(f"max |ONNX - sympy gathers| = {diff:.1e} (< 1e-5)")

# %% [markdown]
# No `GridSample` in the list: gathers, arithmetic and reshapes only.
#
# ## 12.2 Three formats, one set of names
#
# `export_models` writes `kp_detector.<ext>` and `generator.<ext>` for a batch of one at
# a fixed frame size. The inputs and outputs carry the same names in every format, so
# the code that feeds them does not depend on the runtime:

# %% tags=["remove-input"]
show_source(export.export_models)

# %% [markdown]
# We export the shipped `sprites-64` model ([chapter 10](10_animation.ipynb)) in the
# three formats (the command line does the same:
# `fomm-tutorial export --config sprites-64 --checkpoint sprites-64 --format onnx --out
# sprites-onnx`).

# %%
models = load_pretrained("sprites-64")
config = models["config"]
names = export.graph_names(config)
for network, io in names.items():
    print(f"{network}: {', '.join(io['inputs'])} -> {', '.join(io['outputs'])}")

workdir = Path(tempfile.mkdtemp(prefix="fomm-export-"))
written = {}
with quiet_stderr():
    for format in export.FORMATS:
        written[format] = export.export_models(models, config, workdir / format, format)
print("formats:", ", ".join(written))

# %% [markdown]
# `load_exported` runs each file with its own runtime: TensorFlow for the SavedModel,
# onnxruntime for ONNX, LiteRT (`ai_edge_litert`) for TFLite. The check: on a held-out
# sprite frame, each format's outputs equal Keras's to float32 round-off.

# %%
videos, _, _ = heldout_videos(num_videos=2, num_frames=NUM_FRAMES)
source = videos[0][:1]  # identity 0, first frame
driving = videos[1]  # another identity's motion
keras = export.graph_functions(models, config)  # the same tf.functions, in Keras


def run_keras(network, **x):
    inputs = names[network]["inputs"]
    return {k: v.numpy() for k, v in keras[network](*[x[n] for n in inputs]).items()}


kp_s = run_keras("kp_detector", image=source)
kp_d = run_keras("kp_detector", image=driving[5:6])
gen_inputs = {"source": source}
gen_inputs.update({f"kp_source_{k}": v for k, v in kp_s.items()})
gen_inputs.update({f"kp_driving_{k}": v for k, v in kp_d.items()})
reference = {
    "kp_detector": kp_d,
    "generator": run_keras("generator", **gen_inputs),
}
runners = {}
parity = {}
with quiet_stderr():
    for format, paths in written.items():
        runners[format] = {n: export.load_exported(p) for n, p in paths.items()}
for format, graphs in runners.items():
    outputs = {
        "kp_detector": graphs["kp_detector"](image=driving[5:6]),
        "generator": graphs["generator"](**gen_inputs),
    }
    parity[format] = max(
        float(np.abs(outputs[n][k] - reference[n][k]).max())
        for n in export.NETWORKS
        for k in names[n]["outputs"]
    )
    assert parity[format] < 1e-5, (format, parity[format])
    print(f"{format:12s} max |diff| vs Keras < 1e-5: {parity[format] < 1e-5}")

# %% [markdown]
# (The exact differences, of order $10^{-7}$, vary with the machine's vector
# instructions; the check asserts the bound.)
#
# ## 12.3 Sizes on disk
#
# All three hold the same float32 weights; they differ in what they store beside them
# (a SavedModel also keeps the TensorFlow function graph and variable index).

# %%
sizes = {
    format: sum(export.disk_size(p) for p in paths.values())
    for format, paths in written.items()
}
weights = sum(models[n].count_params() for n in export.NETWORKS) * 4
print(f"float32 weights: {weights / 1e6:.1f} MB")
for format, size in sizes.items():
    print(f"{format:12s} {size / 1e6:.1f} MB")

# %% [markdown]
# ## 12.4 Speed per runtime
#
# One animated frame is a detector call on the driving frame and a generator call. We
# time it in each runtime as the best of a few frames after a warm-up, and report it as
# a ratio to Keras in the same cell (absolute times depend on the machine, so the output
# of this cell changes from run to run; the assertions do not).


# %% tags=["nbval-ignore-output"]
def frame_time(detect, generate):
    def frame():
        kp = detect(image=driving[5:6])
        x = dict(gen_inputs)
        x.update({f"kp_driving_{k}": v for k, v in kp.items()})
        return generate(**x)

    frame()  # warm-up
    best = float("inf")
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        frame()
        best = min(best, time.perf_counter() - t0)
    return best


keras_time = frame_time(
    lambda **x: run_keras("kp_detector", **x), lambda **x: run_keras("generator", **x)
)
ratios = {
    format: keras_time / frame_time(g["kp_detector"], g["generator"])
    for format, g in runners.items()
}
assert all(np.isfinite(r) and r > 0 for r in ratios.values())
print(f"Keras: {1 / keras_time:.1f} frames/s")
for format, ratio in ratios.items():
    print(f"{format:12s} {ratio:.2f} x Keras")

# %% [markdown]
# At 64 px the graphs are small and the runtimes' per-call overhead weighs as much as the
# arithmetic; on the development machine the SavedModel ran at Keras's speed and LiteRT
# close to it. `benchmarks/bench_export.py` in the repository measures the same at
# 256 px.
#
# ## 12.5 Float16 weights
#
# TFLite can store the weights as float16: half the bytes, dequantised to float32 when
# the graph loads, so the arithmetic stays float32 and only the weights are rounded.

# %%
with quiet_stderr():
    half = export.export_models(
        models, config, workdir / "tflite-fp16", "tflite", float16=True
    )
    half_runners = {n: export.load_exported(p) for n, p in half.items()}
half_size = sum(export.disk_size(p) for p in half.values())
half_out = half_runners["generator"](**gen_inputs)["prediction"]
half_error = float(np.abs(half_out - reference["generator"]["prediction"]).max())
assert half_size < 0.6 * sizes["tflite"]
assert 1e-6 < half_error < 0.05  # rounded weights: a visible but small change
print(f"size: {half_size / sizes['tflite']:.2f} x the float32 TFLite file")
print(f"max |prediction - Keras| < 0.05: {half_error < 0.05}")

# %% [markdown]
# Float16's 11-bit mantissa rounds each weight by up to $2^{-11} \approx 5\cdot 10^{-4}$
# of its size; through the networks' layers the prediction moves by a few times that
# (about $2\cdot 10^{-3}$ for this model), less than half an 8-bit grey level
# ($1/255 \approx 4\cdot 10^{-3}$): invisible in the image, for half the download.
#
# ## 12.6 Animation with onnxruntime alone
#
# Relative motion ([chapter 10](10_animation.ipynb), `normalize_kp`) stays outside the
# graphs: it is a few lines of NumPy on the detector's outputs. Below, a video is
# animated with the two ONNX files and NumPy only (the movement scale is the package's
# `movement_scale`, itself NumPy and SciPy); no TensorFlow runs inside the loop.

# %%
options = ort.SessionOptions()
options.log_severity_level = 3
sessions = {
    n: ort.InferenceSession(str(p), options, providers=["CPUExecutionProvider"])
    for n, p in written["onnx"].items()
}


def onnx_run(network, **x):
    session = sessions[network]
    outputs = [o.name for o in session.get_outputs()]
    return dict(zip(outputs, session.run(outputs, x)))


def animate_onnx(source, driving):
    """Relative motion with adapted scale, as make_animation's defaults."""
    kp_source = onnx_run("kp_detector", image=source)
    kp_initial = onnx_run("kp_detector", image=driving[:1])
    scale = movement_scale(kp_source, kp_initial)
    frames = []
    for frame in driving:
        kp = onnx_run("kp_detector", image=frame[None])
        value = (kp["value"] - kp_initial["value"]) * scale + kp_source["value"]
        x = {"source": source, "kp_source_value": kp_source["value"]}
        x["kp_driving_value"] = value.astype(np.float32)
        if "jacobian" in kp:  # J_D (J_D0)^-1 J_S
            change = kp["jacobian"] @ np.linalg.inv(kp_initial["jacobian"])
            x["kp_source_jacobian"] = kp_source["jacobian"]
            x["kp_driving_jacobian"] = (change @ kp_source["jacobian"]).astype(
                np.float32
            )
        frames.append(onnx_run("generator", **x)["prediction"][0])
    return np.stack(frames)


by_onnx = animate_onnx(source, driving)
by_keras = make_animation(
    source[0], driving, models["kp_detector"], models["generator"], progress=False
)
diff = float(np.abs(by_onnx - by_keras).max())
assert diff < 1e-4
print(
    f"{len(by_onnx)} frames, max |onnxruntime - make_animation| < 1e-4: {diff < 1e-4}"
)

# %% tags=["hide-input"]
strip = np.concatenate([driving, np.repeat(source, len(driving), 0), by_onnx], axis=2)
show_animation(strip, fps=8, scale=3)

# %% [markdown]
# Left: the driving video; middle: the source; right: the source animated by
# onnxruntime. These two `.onnx` files and the few lines above are all a deployment
# needs; the book's live demo page runs the same files in a browser.
#
# ## Summary
#
# * The resampler of chapter 4 is four gathers and their bilinear weights, so every
#   network exports with builtin operators; the fused `grid_sample` of the original
#   had no ONNX counterpart.
# * `export_models` (`fomm-tutorial export`) writes the detector and the generator as
#   SavedModel, ONNX or TFLite with the same named inputs and outputs; each agrees with
#   Keras to float32 round-off.
# * The three formats are about the same size (the float32 weights); float16 TFLite
#   weights halve it for an error of order $10^{-3}$, under one 8-bit grey level.
# * Relative motion is a few lines of NumPy outside the graphs: onnxruntime alone
#   animates a video exactly as `make_animation` does.
#
# ## Exercises
#
# 1. Export at another size (`size=(128, 128)`): which inputs' shapes change, and does
#    parity still hold with the 64 px weights?
# 2. Time the ONNX generator with `ort.SessionOptions().intra_op_num_threads` set to 1
#    and 2: how much of the frame time is the detector?
# 3. Animate with absolute motion in `animate_onnx` (drop the relative terms) and compare
#    with `make_animation(..., relative=False)`.
# 4. Compute the float16 error per output pixel: where in the image is it largest?
