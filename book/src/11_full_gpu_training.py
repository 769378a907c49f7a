# %% [markdown]
# # 11. Full-scale training on a GPU
#
# Everything so far ran at toy sizes so that the book executes on a laptop CPU in minutes.
# The published models of the [paper](https://arxiv.org/abs/2003.00196) were trained at
# **256 x 256** with the `vox-256` configuration: 10 keypoints, generator and
# keypoint-detector widths of 64/32 channels, batch 40, 100 epochs of 75 repeats over the
# dataset. The authors report about two days on two Titan X GPUs, four on one
# ([issue #10](https://github.com/AliaksandrSiarohin/first-order-model/issues/10) of the
# [original repository](https://github.com/AliaksandrSiarohin/first-order-model)).
#
# This chapter runs **the same training code** as [chapter 9](09_training_loop.ipynb) at
# that size. Nothing in the model or the loop is specific to this chapter; what changes is
# the machinery around it:
#
# * **mixed precision** (float16 compute with float32 master weights and loss scaling) and
#   **XLA** compilation, both switched on by `configure()` when a GPU is present
#   ([`runtime.py`](https://github.com/fomm-tutorial/fomm-tutorial/blob/main/fomm_tutorial/runtime.py));
# * the published configuration, read and validated by `load_config("vox-256")`
#   ([`config.py`](https://github.com/fomm-tutorial/fomm-tutorial/blob/main/fomm_tutorial/config.py));
# * a **data cell** that takes any dataset in the original layout (`train/` and `test/`
#   folders of `.mp4`/`.gif`/`.mov` videos or of folders of frames) and falls back to the
#   sprite dataset;
# * **checkpoints in a folder that survives a Colab disconnect** (Google Drive when mounted)
#   and **resuming** from the latest one
#   ([`checkpoint.py`](https://github.com/fomm-tutorial/fomm-tutorial/blob/main/fomm_tutorial/checkpoint.py)
#   holds the network builder and the converter of the original weights);
# * **TensorBoard** logging and periodic **animation previews**.
#
# On a CPU the very same notebook trains a few steps of a small configuration,
# and shows what the previews of a trained model look like with the sprite model that
# ships with the package (`load_pretrained("sprites-64")`, [chapter 10](10_animation.ipynb)).
# Section 11.8 then reads the record of a run that did go to the end on this CPU, the
# shipped `talking-head-128` model, and turns its hours into a GPU estimate.

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
import re
import shutil
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import sympy as sp
from IPython import get_ipython

from fomm_tutorial.display import (
    panels,
    show_equations,
    show_source,
    use_book_style,
)
from fomm_tutorial.runtime import quiet_stderr

# TensorFlow writes C++ start-up notices (oneDNN, CUDA) straight to the process's
# stderr,
# whatever TF_CPP_MIN_LOG_LEVEL says: import it and run a first op with stderr silenced.
with quiet_stderr():
    import tensorflow as tf
    import keras
    from fomm_tutorial import data as fomm_data
    from fomm_tutorial import media
    from fomm_tutorial.animation import make_animation
    from fomm_tutorial.config import load_config
    from fomm_tutorial.pretrained import (
        load_pretrained,
        pretrained_dir,
        shipped_loss_curve,
        shipped_metrics,
    )
    from fomm_tutorial.runtime import configure
    from fomm_tutorial.sprites import sprite_config, write_sprite_dataset
    from fomm_tutorial.training import Trainer, make_full_models, multistep_lr

    rt = configure(seed=0)
    tf.zeros(1) + 1  # the first op loads the remaining kernels

use_book_style()
print(f"device: {rt.device} | mixed precision: {rt.mixed_precision}", end=" | ")
print(f"XLA: {rt.jit_compile}")

# %% [markdown]
# ## 11.1 What full size costs
#
# A $k\times k$ convolution from $C_{in}$ to $C_{out}$ channels producing an $H\times W$ map
# costs $2k^2C_{in}C_{out}HW$ floating-point operations (a multiply and an add per weight and
# output pixel). Every network in FOMM is built from such convolutions whose widths are
# multiples of the `block_expansion` $e$ and whose maps are fixed fractions of the image
# side $s$. Take the generator's image path (encoder, bottleneck, decoder;
# [chapter 7](07_generator.ipynb)) with two down blocks and $n_b$ residual bottleneck
# blocks, as in `vox-256.yaml`. A down block convolves at its input's resolution and then
# halves it (2 x 2 average pooling); an up block doubles the resolution and then
# convolves:

# %%
s, e, n_b = sp.symbols("s e n_b", positive=True)


def conv_flops(k, c_in, c_out, side):
    return 2 * k**2 * c_in * c_out * side**2


generator_flops = sp.expand(
    conv_flops(7, 3, e, s)  # first 7x7 conv
    + conv_flops(3, e, 2 * e, s)  # down block 1: conv at s, then 2x2 pooling
    + conv_flops(3, 2 * e, 4 * e, s / 2)  # down block 2: conv at s/2, then pooling
    + n_b * 2 * conv_flops(3, 4 * e, 4 * e, s / 4)  # residual bottleneck
    + conv_flops(3, 4 * e, 2 * e, s / 2)  # up block 1: x2 upsampling, then conv
    + conv_flops(3, 2 * e, e, s)  # up block 2
    + conv_flops(7, e, 3, s)  # final 7x7 conv
)
doubling = sp.simplify(generator_flops.subs(s, 2 * s) / generator_flops)
vox_sizes = {s: 256, e: 64, n_b: 6}
gflop_vox = float(generator_flops.subs(vox_sizes)) / 1e9
assert doubling == 4

# %% tags=["remove-input"]
show_equations(
    [
        (r"F(s, e, n_b)", sp.factor(generator_flops)),
        (r"F(2s, e, n_b)\,/\,F(s, e, n_b)", doubling),
        (r"F(256, 64, 6)", rf"{gflop_vox:.1f}\ \text{{GFLOP per frame}}"),
    ]
)

# %% [markdown]
# The cost grows with the square of the image side and of the width: 512 x 512 costs four
# times as much per frame (and needs four times the activation memory), which is one reason
# there is no official 512 model (issues
# [#14](https://github.com/AliaksandrSiarohin/first-order-model/issues/14),
# [#20](https://github.com/AliaksandrSiarohin/first-order-model/issues/20)). A forward and
# backward pass costs about three forward passes, and training runs the generator, the
# keypoint detector twice (frame and its random TPS warp), VGG19 on five pyramid scales and
# the discriminator: on the order of a teraflop per training sample at 256 x 256.
#
# A check of the building block: TensorFlow's own FLOP count of one convolution equals the
# formula.


# %%
def profiled_flops(fn, spec):
    """FLOPs of ``fn`` on inputs of ``spec``, counted by TensorFlow's graph profiler."""
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    tf.get_logger().setLevel("ERROR")  # the v1 profiler logs deprecation notices
    frozen = convert_variables_to_constants_v2(
        tf.function(fn).get_concrete_function(spec)
    )
    opts = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    opts["output"] = "none"
    return tf.compat.v1.profiler.profile(
        graph=frozen.graph, run_meta=tf.compat.v1.RunMetadata(), cmd="op", options=opts
    ).total_float_ops


conv = keras.layers.Conv2D(16, 3, padding="same", use_bias=False, dtype="float32")
counted = profiled_flops(lambda x: conv(x), tf.TensorSpec((1, 32, 32, 8), tf.float32))
assert counted == conv_flops(3, 8, 16, 32), (counted, conv_flops(3, 8, 16, 32))
print(f"profiler: {counted} FLOPs = formula: {conv_flops(3, 8, 16, 32)}")

# %% [markdown]
# ## 11.2 Mixed precision and loss scaling
#
# On a GPU with tensor cores, float16 matrix products are several times faster than float32
# ones. Keras' `mixed_float16` policy computes in float16 but keeps the **variables in
# float32**, so tiny updates are not lost. The danger is the gradients: float16 has 10
# mantissa bits and 5 exponent bits, so its smallest normal number is $2^{-14}$ and its
# smallest subnormal $2^{-24}$; a gradient of $10^{-8}$ becomes zero. **Loss scaling**
# multiplies the loss by $S$ (so every gradient by $S$, by the chain rule), and divides the
# float32 gradients by $S$ before the update; Keras' `LossScaleOptimizer` starts at
# $S = 2^{15}$, halves it whenever a gradient overflows to inf/NaN (and skips that step) and
# doubles it after 2000 finite steps.

# %%
smallest_normal = sp.Integer(2) ** -14
smallest_subnormal = sp.Integer(2) ** -24
largest = (2 - sp.Integer(2) ** -10) * 2**15
assert float(np.finfo(np.float16).tiny) == float(smallest_normal)
assert float(np.finfo(np.float16).max) == float(largest)
g, S = 1e-8, 2.0**15
lost, kept = float(np.float16(g)), float(np.float16(g * S)) / S
assert lost == 0  # lost without scaling
assert abs(kept - g) / g < 1e-3  # kept with scaling


# %% tags=["remove-input"]
def approx(x):
    """``x`` exactly and to three digits, in LaTeX."""
    return rf"{sp.latex(x)} \approx {sp.latex(sp.N(x, 3))}"


show_equations(
    [
        (r"\text{smallest normal}", approx(smallest_normal)),
        (r"\text{smallest subnormal}", approx(smallest_subnormal)),
        (r"\text{largest}", largest),
        (r"\mathrm{fp16}(10^{-8})", lost),
        (r"\mathrm{fp16}(10^{-8}\cdot 2^{15}) / 2^{15}", sp.Float(kept, 4)),
    ]
)

# %% [markdown]
# The training step of chapter 9 already does this: with the `mixed_float16` policy it
# wraps each optimizer in `keras.mixed_precision.LossScaleOptimizer` and scales the losses,
# and the networks keep float32 where precision matters: batch-norm statistics, the
# spectral-norm sigma, keypoints, motion fields, masks, the occlusion map and the
# prediction. **XLA** (`jit_compile=True`) fuses the many small element-wise operations of
# the dense motion network and the losses into a few kernels; Keras' `"auto"` would leave it
# off, so `configure()` turns it on explicitly on a GPU:

# %% tags=["remove-input"]
show_source(configure)

# %% [markdown]
# ## 11.3 Parameters and the configuration
#
# On a GPU: the published `vox-256` configuration, loaded from the YAML file that ships with
# the package and validated (10 keypoints, widths 32/64, five-block hourglasses, 256 x 256
# frames, the GAN term off), batch 40. On a CPU: the small sprite configuration of
# chapter 9 and a handful of steps, so that the whole pipeline runs in a minute or two.
# The training code is the same in both cases.

# %%
FRAME_SIZE = rt.choose(cpu=64, gpu=256)
TOTAL_STEPS = rt.choose(cpu=4, gpu=20_000)  # run the training cell again to go on
CHECKPOINT_EVERY = rt.choose(cpu=2, gpu=1_000)
PREVIEW_EVERY = rt.choose(cpu=2, gpu=1_000)
BATCH_SIZE = rt.choose(cpu=2, gpu=40)

if rt.gpu:
    config = load_config("vox-256")
    config["train_params"]["batch_size"] = BATCH_SIZE
else:
    config = sprite_config(
        size=FRAME_SIZE, num_kp=4, num_epochs=10**6, batch_size=BATCH_SIZE
    )
model_params = config["model_params"]
print(
    f"frame shape: {config['dataset_params']['frame_shape']} | batch: {BATCH_SIZE} | "
    f"keypoints: {model_params['common_params']['num_kp']} | generator width: "
    f"{model_params['generator_params']['block_expansion']}"
)


# %% [markdown]
# ## 11.4 Data: your dataset, or sprites
#
# The loader reads the original layout (`fomm_tutorial.data`, [chapter 9](09_training_loop.ipynb)):
# a root folder with `train/` and `test/`, each holding one entry per video, either a video
# file (`.mp4`, `.gif`, `.mov`, ...) or a folder of frames (the preprocessed VoxCeleb/TaiChi
# layout, `*.mp4/0000000.png`); a root with the videos directly inside is split 80/20.
# `id_sampling` (vox) expects names `<identity>#<rest>`. Point `DATA_ROOT` at your dataset,
# e.g. a folder on Google Drive; where it does not exist, the notebook writes the
# articulated-sprite dataset instead.
#
# On Colab, copy the dataset from Drive to the local disk first
# (`!cp -r /content/drive/... /content/`): reading thousands of small PNGs through the Drive
# mount is far slower than the GPU
# ([issue #363](https://github.com/AliaksandrSiarohin/first-order-model/issues/363):
# "check GPU utilisation").

# %%
DATA_ROOT = Path(os.environ.get("FOMM_DATA_ROOT", "/content/data/vox"))


def has_original_layout(root):
    """True when ``root`` holds videos (in ``train/``, or directly inside)."""
    root = Path(root)
    if not root.is_dir():
        return False
    folder = root / "train" if (root / "train").is_dir() else root
    try:
        return len(fomm_data.list_videos(folder)) > 0
    except (FileNotFoundError, ValueError):
        return False


if has_original_layout(DATA_ROOT):
    data_root = DATA_ROOT
    print("training on", data_root)
else:
    data_root = Path("runs/sprite-data")
    if not has_original_layout(data_root):
        write_sprite_dataset(
            data_root,
            num_videos=rt.choose(cpu=10, gpu=400),
            num_frames=rt.choose(cpu=8, gpu=64),
            size=FRAME_SIZE,
            seed=0,
        )
    print(f"no dataset at {DATA_ROOT}: training on the sprite dataset")
config["dataset_params"]["root_dir"] = str(data_root)
print(
    "train videos:",
    len(fomm_data.list_videos(data_root / "train")),
    "| test videos:",
    len(fomm_data.list_videos(data_root / "test")),
)

# %% [markdown]
# ## 11.5 Where the checkpoints go
#
# A Colab runtime is wiped when it disconnects. Checkpoints written to **Google Drive**
# survive: mount it (the cell below does it on Colab when `MOUNT_DRIVE` is true) and the run
# folder is created there; elsewhere it is a local folder. Everything of a run lives in that
# one folder: the config, checkpoints, `log.txt`, TensorBoard event files and preview
# images. Running the training cell again **resumes** from the latest checkpoint in the
# folder.

# %%
MOUNT_DRIVE = True
if "google.colab" in sys.modules and MOUNT_DRIVE:
    from google.colab import drive

    drive.mount("/content/drive")
DRIVE = Path("/content/drive/MyDrive")
if DRIVE.is_dir():
    RUN_DIR = DRIVE / "fomm-tutorial" / "vox-256-run"
else:
    RUN_DIR = Path("runs") / "full-gpu-training"
if not rt.gpu and RUN_DIR.exists():
    # The CPU smoke run starts from scratch, so that its output is reproducible.
    shutil.rmtree(RUN_DIR)
RUN_DIR.mkdir(parents=True, exist_ok=True)
print("run folder on Drive:", DRIVE.is_dir())

# %% [markdown]
# TensorBoard reads the event files while training runs (on Colab it opens inside the
# notebook; elsewhere run `tensorboard --logdir <run folder>`).

# %%
if "google.colab" in sys.modules:
    get_ipython().run_line_magic("load_ext", "tensorboard")
    get_ipython().run_line_magic("tensorboard", f"--logdir '{RUN_DIR}'")
else:
    print("TensorBoard: tensorboard --logdir", RUN_DIR)


# %% [markdown]
# ## 11.6 Training with previews
#
# `Trainer` ([chapter 9](09_training_loop.ipynb),
# [`training.py`](https://github.com/fomm-tutorial/fomm-tutorial/blob/main/fomm_tutorial/training.py))
# runs the generator + keypoint-detector step and the discriminator step as compiled
# functions, with `mixed_precision` and `jit_compile` from `configure()`. It writes
# TensorBoard scalars and image grids, `log.txt` lines as the original, and a checkpoint
# every `CHECKPOINT_EVERY` steps, atomically (a disconnect mid-save never leaves a broken
# checkpoint). A callback reconstructs a test video from its first frame with the current
# weights every `PREVIEW_EVERY` steps and saves the frames next to the checkpoints, so you
# can watch the model learn even from another machine. On a GPU the faithful losses (VGG19
# perceptual loss, downloaded by Keras on Colab) are used; the CPU smoke run uses
# chapter 9's light reconstruction losses.

# %%
preview_video = media.read_video(
    data_root / "test" / fomm_data.list_videos(data_root / "test")[0],
    size=FRAME_SIZE,
    max_frames=rt.choose(cpu=4, gpu=32),
)


def animation_preview(kp_detector, generator, video):
    """Every frame of ``video`` reconstructed from its first frame: ``(T, H, W, 3)``."""
    return make_animation(
        video[0],
        video,
        kp_detector,
        generator,
        relative=False,
        adapt_scale=False,
        batch_size=len(video),
        progress=False,
    )


def preview(trainer, step, losses):
    """Trainer callback: save a preview strip every ``PREVIEW_EVERY`` steps."""
    if step % PREVIEW_EVERY:
        return
    models = trainer.models
    frames = animation_preview(
        models["kp_detector"], models["generator"], preview_video
    )
    # Two rows: the test video, and its reconstruction with this step's weights.
    strip = np.concatenate(
        [np.concatenate(list(preview_video), 1), np.concatenate(list(frames), 1)], 0
    )
    media.write_image(RUN_DIR / "previews" / f"step-{step:08d}.png", strip)


def dataset_fn(epoch):
    return fomm_data.make_dataset(config, batch_size=BATCH_SIZE, seed=0, epoch=epoch)


def make_trainer():
    return Trainer(
        config,
        RUN_DIR,
        dataset_fn,
        mixed_precision=rt.mixed_precision,
        jit_compile=rt.jit_compile,
        seed=0,
        checkpoint_every=CHECKPOINT_EVERY,
        simple_losses=not rt.gpu,
        progress=rt.gpu,
        callbacks=[preview],
    )


(RUN_DIR / "previews").mkdir(exist_ok=True)
trainer = make_trainer()
# First session: train half-way (on Colab: until the runtime disconnects) ...
history = trainer.train(max_steps=TOTAL_STEPS // 2, resume=True)
assert all(np.isfinite(v).all() for v in history.values())
print("step", int(trainer.step.numpy()), "| losses:", sorted(history))

# %% tags=["nbval-ignore-output"]
# Loss values differ in their last digits between CPUs (oneDNN kernels differ).
print({k: round(v[-1], 3) for k, v in history.items()})

# %% [markdown]
# ### Resume
#
# A new session (a fresh `Trainer`, as after a disconnect) restores the latest checkpoint in
# the run folder, including the optimizer states, the step, the position in the epoch and
# the random generator, and continues exactly where the last one stopped.

# %%
trainer = make_trainer()
print("resuming from", Path(trainer.latest_checkpoint()).name)
history = trainer.train(max_steps=TOTAL_STEPS, resume=True)
assert int(trainer.step.numpy()) == TOTAL_STEPS
assert all(np.isfinite(v).all() for v in history.values())
print("step", int(trainer.step.numpy()), "| losses:", sorted(history))
print("checkpoints, newest first:", [Path(p).name for p in trainer.checkpoints()])
print("previews:", sorted(p.name for p in (RUN_DIR / "previews").glob("*.png")))
event_files = list((RUN_DIR / "tensorboard").glob("events.*"))
print("TensorBoard event files:", len(event_files) > 0)

# %% tags=["nbval-ignore-output"]
print({k: round(v[-1], 3) for k, v in history.items()})

# %% [markdown]
# ### What the previews show
#
# Each preview strip is the test video (top) and its reconstruction from the first frame
# with the weights of that step (bottom). After a handful of CPU steps the networks have
# learned nothing yet: the reconstruction is a flat grey image. For
# comparison, the last row shows the same preview made by the sprite model that ships with
# the package (`load_pretrained("sprites-64")`: the same `Trainer` run for thousands of
# steps on the same kind of data, see [chapter 10](10_animation.ipynb)): this is what the
# previews of a run look like once the model works. On a GPU run the previews come from
# your own model.

# %% tags=["hide-input"]
latest_preview = sorted((RUN_DIR / "previews").glob("*.png"))[-1]
preview_step = int(latest_preview.stem.split("-")[1])
run_row = media.read_image(latest_preview)[FRAME_SIZE:]
rows = [
    ("test video", preview_video),
    (f"this run after {preview_step} steps", run_row),
]
if not rt.gpu:
    shipped = load_pretrained("sprites-64")
    shipped_frames = animation_preview(
        shipped["kp_detector"], shipped["generator"], preview_video
    )
    rows.append(("the shipped sprites-64 model", shipped_frames))
n_frames = len(preview_video)
fig, axes = panels(len(rows), ncols=1, height=7.0 / n_frames * 1.15)
for ax, (title, frames) in zip(axes, rows):
    strip = frames if frames.ndim == 3 else np.concatenate(list(frames), axis=1)
    ax.imshow(np.clip(strip, 0, 1))
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
plt.show()

# %% [markdown]
# ## 11.7 Throughput
#
# Frames per second of training and of batched animation at this configuration on this
# machine (timings vary, so this cell's output is not compared).

# %% tags=["nbval-ignore-output"]
frames = np.repeat(preview_video[:1], rt.choose(cpu=4, gpu=64), axis=0)
models = trainer.models
animation_preview(models["kp_detector"], models["generator"], frames)  # traces
t0 = time.perf_counter()
animation_preview(models["kp_detector"], models["generator"], frames)
anim_fps = len(frames) / (time.perf_counter() - t0)
t0 = time.perf_counter()
trainer.train(max_steps=TOTAL_STEPS + 2, resume=False)
train_fps = 2 * BATCH_SIZE / (time.perf_counter() - t0)
print(
    f"{rt.device}: animation {anim_fps:.1f} frames/s, training {train_fps:.2f} "
    f"samples/s at {FRAME_SIZE}x{FRAME_SIZE}"
)
assert anim_fps > 0 and train_fps > 0


# %% [markdown]
# ## 11.8 A real run: the talking-head model
#
# The CPU run above stops after a handful of steps. The package also ships a model that
# was trained to the end on this book's CPU with the same `Trainer`: `talking-head-128`,
# the full model of the paper (10 keypoints with Jacobians, occlusion map) at
# $128 \times 128$, trained on the first frames of one real talking-head clip with
# chapter 9's light losses (pixels instead of VGG19 features, no discriminator), and
# animated in [chapter 10](10_animation.ipynb) (section 10.7). Its folder,
# `pretrained_dir("talking-head-128")`, holds the record of that run: the model card
# (`MODEL_CARD.md`, with the command that reproduces it), `metrics.json`, the loss curve
# and the previews saved along the way. This section reads them, and then counts what
# the same run costs, so that the CPU's hours can be turned into a GPU estimate.
#
# The learning rate follows the original's `MultiStepLR`: constant, then divided by 10
# at each of the config's `epoch_milestones`. One epoch is `num_repeats` passes over the
# training videos (here a single clip), cut into batches.

# %%
TALKING_HEAD = "talking-head-128"
face_card = shipped_metrics(TALKING_HEAD)
face_config = load_config(pretrained_dir(TALKING_HEAD) / "config.yaml")
face_curve = shipped_loss_curve(TALKING_HEAD)
face_train = face_config["train_params"]
run_steps = int(face_card["training"]["step"])
run_batch = int(face_card["training"]["batch_size"])
run_seconds = face_card["training"]["wall_time_h"] * 3600
face_size = int(face_card["image_size"])
num_train_videos = 1  # the training frames of one clip
steps_per_epoch = face_train["num_repeats"] * num_train_videos // run_batch
milestone_steps = [m * steps_per_epoch for m in face_train["epoch_milestones"]]
lr_phases = [
    multistep_lr(face_train["lr_generator"], epoch, face_train["epoch_milestones"])
    for epoch in [0, *face_train["epoch_milestones"]]
]
print(
    f"{run_steps} steps at batch {run_batch} ({face_train['num_epochs']} epochs of "
    f"{steps_per_epoch} steps), {face_size} x {face_size} pixels"
)
print(
    "learning rate",
    " -> ".join(f"{lr:.0e}" for lr in lr_phases),
    "from steps",
    ", ".join(str(m) for m in [0, *milestone_steps]),
)
print(f"training time on the 2-core CPU: {run_seconds / 3600:.2f} h", end=" ")
print(f"({run_seconds / run_steps:.2f} s per step)")

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(7.0, 3.6))
for name in sorted(k for k in face_curve if k not in ("step", "total")):
    ax.plot(face_curve["step"], face_curve[name], lw=1.0, label=name.replace("_", " "))
ax.plot(face_curve["step"], face_curve["total"], lw=1.8, color="k", label="total")
for step, lr in zip(milestone_steps, lr_phases[1:]):
    ax.axvline(step, color="0.4", ls="--", lw=0.9)
    ax.annotate(
        f"lr {lr:.0e}",
        (step, 0.97),
        xycoords=("data", "axes fraction"),
        rotation=90,
        ha="right",
        va="top",
        fontsize=9,
    )
ax.set_yscale("log")
ax.set_xlabel("training step")
window = int(face_curve["step"][1] - face_curve["step"][0])
ax.set_ylabel(f"loss (mean over {window} steps)")
ax.set_title(f"{TALKING_HEAD}: the shipped training run")
ax.grid(alpha=0.3)
ax.legend(loc="upper center", ncols=2)
plt.show()

# %% [markdown]
# The reconstruction term (the L1 pyramid of [chapter 8](08_losses.ipynb)) carries most
# of the total; the two equivariance terms fall by more than an order of magnitude from
# the first window of steps to the last, as the keypoints become consistent under the
# random warps. Most of the progress happens in the first thousand or so steps;
# afterwards the losses creep down slowly and noisily at the constant learning rate,
# and the first division by 10 (dashed lines) gives a visible step down and a quieter
# curve: the original's schedule, for the same reason.
#
# ### The previews along the way
#
# When the run was exported (`python -m fomm_tutorial.pretrained`, the card's command),
# six held-out frames (frames the model never saw) were reconstructed from frame 0 with
# the weights of a few of the run's checkpoints, as the preview callback of section 11.6
# does during training; the last row is the shipped, final model. The steps are read
# from the model card.

# %% tags=["hide-input"]
face_dir = pretrained_dir(TALKING_HEAD)
card_text = (face_dir / "MODEL_CARD.md").read_text()
preview_steps = [
    int(n) for n in re.search(r"after ([\d, ]+) steps", card_text).group(1).split(",")
]


def image_rows(path, size):
    """The rows of ``size``-pixel frames in a shipped grid:
    ``(rows, cols, H, W, 3)``."""
    grid = media.read_image(path)
    rows, cols = grid.shape[0] // size, grid.shape[1] // size
    return grid.reshape(rows, size, cols, size, 3).transpose(0, 2, 1, 3, 4)


preview_grid = image_rows(face_dir / "previews.png", face_size)
final_grid = image_rows(face_dir / "heldout.png", face_size)
truth = preview_grid[0].copy()
truth[0] = preview_grid[1, 0]  # the source frame in place of the blank corner
preview_rows = [("source (frame 0) | six held-out frames", truth)]
preview_rows += [
    (f"reconstructed after {step} steps", row)
    for step, row in zip(preview_steps, preview_grid[1:])
]
preview_rows.append((f"after {run_steps} steps: the shipped model", final_grid[1]))
n_cols = preview_grid.shape[1]
fig, axes = panels(len(preview_rows), ncols=1, height=7.0 / n_cols * 1.2)
for ax, (title, row) in zip(axes, preview_rows):
    ax.imshow(np.concatenate(list(row), axis=1))
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
plt.show()

# %% [markdown]
# After the first preview the model already puts a blurred face in roughly the right
# pose; a little later the head turns and the mouth opens with the driving frames; the
# later checkpoints sharpen eyes, mouth and the outline of the head, and the last two
# rows differ only in small details, as the flat end of the curve suggests. The
# reconstructions stay softer than the real frames (no perceptual or adversarial loss).
# The card's held-out scores (section 10.7 of [chapter 10](10_animation.ipynb)
# recomputes them live and animates the whole held-out clip):

# %%
print(
    f"held-out L1 {face_card['reconstruction_l1']:.4f} = "
    f"{face_card['reconstruction_ratio']:.2f} x copying the source "
    f"({face_card['copy_first_frame_l1']:.4f}); untrained networks: "
    f"{face_card['untrained_reconstruction_l1']:.4f}"
)
print(
    f"sharpness of the reconstructions: {face_card['sharpness_ratio']:.2f} x that "
    "of the real frames"
)

# %% [markdown]
# ### What one training step costs
#
# A step runs the keypoint detector three times (source, driving frame, and the driving
# frame under the random equivariance warp, [chapter 8](08_losses.ipynb)), the generator
# once (dense motion network and image path), the image pyramids and the losses, on a
# batch of 8 pairs; then the backward pass, and the optimizer. `profiled_flops` of
# section 11.1 counts the forward pass of exactly this computation: chapter 9's
# `GeneratorFullModel` built by `make_full_models(..., simple=True)` as the run used it,
# on a batch of the run's size. (The profiler has FLOP rules for convolutions and bias
# additions, not for element-wise work such as the warps and the softmax; convolutions
# are nearly all the arithmetic.)
#
# The backward pass of a convolution is two convolutions of the same size: the gradient
# with respect to its input (a transposed convolution of the output gradient) and with
# respect to its kernel (a correlation of the input with the output gradient), each with
# as many multiply-adds as the forward one. So a training step costs about **three**
# forward passes. That is an assumption the profiler cannot check (it has no rule for
# the gradient ops), so `conv_flops_in_graph` below counts the convolutions of a graph,
# gradients included, from their shapes.


# %%
def conv_flops_in_graph(graph):
    """FLOPs of the 2-D convolutions in ``graph`` and of their gradients, by op type.

    Each op does one multiply-add per kernel weight and output position: ``2 * k_h *
    k_w * C_in * C_out * B * H_out * W_out`` (the gradients have the forward's output
    shape as their ``out_backprop``).
    """
    totals = {}
    for op in graph.get_operations():
        if op.type == "Conv2D":
            kernel, out = op.inputs[1].shape, op.outputs[0].shape
        elif op.type == "Conv2DBackpropInput":
            kernel, out = op.inputs[1].shape, op.inputs[2].shape
        elif op.type == "Conv2DBackpropFilter":
            kernel, out = op.outputs[0].shape, op.inputs[2].shape
        else:
            continue
        flops = 2 * kernel.num_elements() * out[:-1].num_elements()
        totals[op.type] = totals.get(op.type, 0) + flops
    return totals


face = load_pretrained(TALKING_HEAD)  # (the FLOPs do not depend on the weights)
face_full, _ = make_full_models(face, face_config, simple=True)
face_variables = (
    face["generator"].trainable_variables + face["kp_detector"].trainable_variables
)


def training_loss(pair):
    """The run's summed loss on ``pair = stack([source, driving])``."""
    losses, _ = face_full(
        {"source": pair[0], "driving": pair[1]},
        training=False,  # inference batch norm, so that the variables can be frozen
        seed=tf.constant([0, 0], tf.int64),
    )
    return tf.add_n([tf.reduce_mean(v) for v in losses.values()])


def training_gradients(pair):
    with tf.GradientTape() as tape:
        loss = training_loss(pair)
    return tape.gradient(loss, face_variables)


pair_spec = tf.TensorSpec((2, run_batch, face_size, face_size, 3), tf.float32)
forward_flops = profiled_flops(training_loss, pair_spec)
step_graph = tf.function(training_gradients).get_concrete_function(pair_spec).graph
step_convs = conv_flops_in_graph(step_graph)
backward_ratio = (
    step_convs["Conv2DBackpropInput"] + step_convs["Conv2DBackpropFilter"]
) / step_convs["Conv2D"]
step_flops = 3 * forward_flops  # forward + backward = 3 forward passes
run_flops = step_flops * run_steps
cpu_rate = run_flops / run_seconds
print(f"forward pass of one step (batch {run_batch}): {forward_flops / 1e9:.1f} GFLOP")
print(f"backward / forward convolution FLOPs in the step's graph: {backward_ratio:.3f}")
print(f"one training step: {step_flops / 1e9:.0f} GFLOP", end=" ")
print(f"({step_flops / run_batch / 1e9:.1f} GFLOP per sample)")
print(f"the whole run: {run_steps} steps = {run_flops / 1e15:.2f} PFLOP")
print(f"the CPU's rate over the run: {cpu_rate / 1e9:.0f} GFLOP/s")

# %% [markdown]
# ### The same run on a GPU
#
# Divide the run's FLOPs by a GPU's sustained rate. The rates are **assumptions**: the
# peaks are the datasheets' float16 tensor-core figures (NVIDIA T4: 65 TFLOP/s, the GPU
# of a free Colab session; A100: 312 TFLOP/s), which mixed precision (section 11.2) can
# use, and a training loop sustains only a fraction of the peak: with large
# convolutions often 30-40 %; networks as narrow as these (32-256 channels) at batch 8
# and $128 \times 128$ do worse, because many kernels are too small to fill the GPU and
# the element-wise work is memory-bound, so the table gives a pessimistic and an
# optimistic utilisation. Either way the estimate is a lower bound on the time: per-step overheads
# (kernel launches, the input pipeline, TensorBoard, checkpoints) come on top.

# %%
GPU_PEAK_FLOPS = {"T4": 65e12, "A100": 312e12}  # float16 tensor cores (assumed)
UTILISATION = (0.10, 0.35)  # sustained fraction of the peak (assumed)
print(f"CPU (measured): {run_seconds / 3600:.2f} h at {cpu_rate / 1e9:.0f} GFLOP/s")
print(f"{'':20s}" + "".join(f"{f'at {u:.0%} of peak':>22s}" for u in UTILISATION))
for gpu, peak in GPU_PEAK_FLOPS.items():
    cells = []
    for u in UTILISATION:
        seconds = run_flops / (u * peak)
        cells.append(f"{seconds / 60:.1f} min, {run_seconds / seconds:.0f}x faster")
    label = f"{gpu} ({peak / 1e12:.0f} TFLOP/s)"
    print(f"{label:20s}" + "".join(f"{c:>22s}" for c in cells))

# %% [markdown]
# The CPU sustained its rate with float32 on two cores shared with other jobs; the same
# arithmetic on a GPU is a matter of minutes, not hours. This is why the published
# `vox-256` model is a GPU job (at $256 \times 256$ and widths 64/32 each sample costs
# far more, see 11.1, and the dataset has thousands of videos instead of one clip), and
# why this book's CPU runs use narrow networks and a single clip.
#
# A check of the numbers above: the curve and the card agree on the run, the curve
# falls, each learning-rate drop lowers it, the convolution count of this config's
# generator image path equals the closed form of 11.1 (with the package's cheaper up
# blocks, below), and the backward pass costs two forward passes.
#
# The package's up blocks
# ([`blocks.py`](https://github.com/fomm-tutorial/fomm-tutorial/blob/main/fomm_tutorial/blocks.py),
# `UpBlock2d`) compute "nearest x2 upsampling, then a $3 \times 3$ convolution" without
# making the upsampled image: each of the four output pixels of an input pixel sees only
# a $2 \times 2$ neighbourhood of the input, so the $3 \times 3$ kernel collapses into
# four $2 \times 2$ kernels, one $2 \times 2$ convolution with $4 C_{out}$ output
# channels at the input's resolution (padded by one). Its cost in units of the original:

# %%
up_original = conv_flops(3, 4 * e, 2 * e, s / 2) + conv_flops(3, 2 * e, e, s)
up_subpixel = conv_flops(2, 4 * e, 4 * 2 * e, s / 4 + 1) + conv_flops(
    2, 2 * e, 4 * e, s / 2 + 1
)
subpixel_saving = sp.limit(up_subpixel / up_original, s, sp.oo)
package_generator_flops = generator_flops - up_original + up_subpixel
assert subpixel_saving == sp.Rational(4, 9)  # 16 multiply-adds instead of 36


def image_path(image):
    """The generator's image path (no motion): first, down, bottleneck, up, final."""
    generator = face["generator"]
    out = generator.first(image)
    for block in [*generator.down_blocks, *generator.bottleneck, *generator.up_blocks]:
        out = block(out)
    return generator.final(out)


gen_params = face_config["model_params"]["generator_params"]
face_sizes = {
    s: face_size,
    e: gen_params["block_expansion"],
    n_b: gen_params["num_bottleneck_blocks"],
}
frame_spec = tf.TensorSpec((1, face_size, face_size, 3), tf.float32)
path_graph = tf.function(image_path).get_concrete_function(frame_spec).graph
path_convs = conv_flops_in_graph(path_graph)["Conv2D"]
path_closed_form = int(package_generator_flops.subs(face_sizes))
path_profiled = profiled_flops(image_path, frame_spec)

# the run: the curve, the card and the config agree
assert face_curve["step"][-1] == run_steps == face_train["num_epochs"] * steps_per_epoch
assert run_batch == face_train["batch_size"]
assert np.all(np.diff(face_curve["step"]) == window)
# the curve falls, and each learning-rate drop lowers it
total, steps = face_curve["total"], face_curve["step"]
tenth = len(total) // 10
assert total[-tenth:].mean() < 0.5 * total[:tenth].mean()
before = total[(steps > milestone_steps[0] - 1000) & (steps <= milestone_steps[0])]
assert total[steps > milestone_steps[-1]].mean() < before.mean()
for name in ("equivariance_value", "equivariance_jacobian"):  # first window / end
    assert face_curve[name][-tenth:].mean() < 0.1 * face_curve[name][0]
# the previews: one row per step named in the card, then the final model
assert len(preview_steps) == len(preview_grid) - 1
assert preview_steps == sorted(preview_steps) and preview_steps[-1] < run_steps
# FLOPs: closed form = the graph's convolutions; the profiler adds the bias additions
assert path_convs == path_closed_form, (path_convs, path_closed_form)
assert path_convs <= path_profiled < 1.01 * path_convs
assert abs(backward_ratio - 2) < 0.01
assert step_convs["Conv2D"] <= forward_flops < 1.02 * step_convs["Conv2D"]
# the held-out score
ratio = face_card["reconstruction_l1"] / face_card["copy_first_frame_l1"]
assert abs(ratio - face_card["reconstruction_ratio"]) < 1e-9 and ratio < 1
print(
    f"image path at {face_size} px: {path_convs / 1e9:.3f} GFLOP in convolutions "
    f"= closed form {path_closed_form / 1e9:.3f}; profiler (with bias additions) "
    f"{path_profiled / 1e9:.3f}"
)

# %% tags=["remove-input"]
show_equations(
    [
        (
            r"\lim_{s\to\infty} F_{\mathrm{up}}^{2\times 2} / F_{\mathrm{up}}",
            subpixel_saving,
        ),
        (r"F_{\mathrm{package}}(s, e, n_b)", sp.factor(package_generator_flops)),
        (
            rf"F_{{\mathrm{{package}}}}({face_size}, "
            rf"{face_sizes[e]}, {face_sizes[n_b]})",
            rf"{path_closed_form / 1e9:.3f}\ \text{{GFLOP per frame}}",
        ),
    ]
)

# %% [markdown]
# ## Summary
#
# * The cost of FOMM grows with the square of the image side and of the network width:
#   about 80-90 GFLOP per animated frame and on the order of a teraflop per training sample
#   at 256 x 256 with `vox-256`.
# * On a GPU, `configure()` turns on mixed precision (float16 compute, float32 variables,
#   dynamic loss scaling) and XLA; the training code is the same as at toy size, and the
#   configuration is the published YAML file, loaded with `load_config("vox-256")`.
# * Any dataset in the original layout can be used; checkpoints go to a folder that
#   survives a disconnect (Drive on Colab), and running the training again resumes from
#   the latest one; previews show the model learning while it trains.
# * A real run, `talking-head-128` (section 11.8): trained to the end on this book's
#   2-core CPU in hours, its curve falls fastest in the first thousand steps and steps
#   down at each learning-rate drop, and its previews go from a blurred face to the
#   shipped model. Counted with the profiler (a training step = 3 forward passes, which
#   the graph's convolutions confirm), the same run is a few petaflops: minutes on a T4
#   or an A100 at an assumed 10-35 % of their float16 peaks, before per-step overheads.
#
# Measured figures (the book's CPU machine, 2 cores; no GPU was available when these
# chapters were written, so GPU frames per second are left for you to measure with the cell
# above): batched animation at vox-256, 256 x 256, runs at about 2.2 frames/s on the CPU,
# close to the FLOP ceiling of the machine (`benchmarks/bench_animation.py`).
#
# ## Exercises
#
# 1. Extend `package_generator_flops` (section 11.8) with the dense motion network's
#    hourglass ([chapter 6](06_dense_motion.ipynb)) and compare the total with
#    `conv_flops_in_graph` of the whole generator at 64 x 64 (a built generator called on
#    a source image and two keypoint dicts).
# 2. Find the largest gradient that float16 loses without scaling and the largest loss
#    scale $S$ for which a gradient of 1 still fits: how many powers of two lie between?
# 3. Set `TOTAL_STEPS` on the CPU to 40 and `PREVIEW_EVERY` to 10: at which step does the
#    reconstruction in the preview stop being flat grey?
# 4. On Colab with a GPU, measure the training samples per second with and without
#    `jit_compile` (pass `configure(jit_compile=False)`), and with batch 20 and 40. Then
#    train the `talking-head-128` config for a few hundred steps at batch 8 and divide
#    `step_flops` of section 11.8 by your seconds per step: which fraction of the GPU's
#    peak does it sustain, and how long would the whole run take?
