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

    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", f"git+{REPOSITORY_URL}@main"],
        check=True,
    )

# %%
import copy
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import sympy as sp
from IPython.display import HTML, display

from fomm_tutorial.runtime import quiet_stderr

# TensorFlow writes C++ start-up notices (oneDNN, CUDA) straight to the process's stderr,
# whatever TF_CPP_MIN_LOG_LEVEL says: import it and run a first op with stderr silenced.
with quiet_stderr():
    import tensorflow as tf
    import keras
    from fomm_tutorial.runtime import configure

    rt = configure(seed=0)
    tf.zeros(1) + 1  # the first op loads the remaining kernels

print(
    "device:",
    rt.device,
    "| mixed precision:",
    rt.mixed_precision,
    "| XLA:",
    rt.jit_compile,
)


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


generator_flops = (
    conv_flops(7, 3, e, s)  # first 7x7 conv
    + conv_flops(3, e, 2 * e, s / 2)
    + conv_flops(3, 2 * e, 4 * e, s / 4)  # down
    + n_b * 2 * conv_flops(3, 4 * e, 4 * e, s / 4)  # residual bottleneck
    + conv_flops(3, 4 * e, 2 * e, s / 2)
    + conv_flops(3, 2 * e, e, s)  # up
    + conv_flops(7, e, 3, s)
)  # final 7x7 conv
generator_flops = sp.expand(generator_flops)
print("F(s, e, n_b) =", sp.factor(generator_flops))
print("F(2s) / F(s) =", sp.simplify(generator_flops.subs(s, 2 * s) / generator_flops))
vox = {s: 256, e: 64, n_b: 6}
print(
    f"vox-256: {float(generator_flops.subs(vox)) / 1e9:.1f} GFLOP per frame (generator image path)"
)

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
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

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
smallest_normal, smallest_subnormal, largest = (
    sp.Integer(2) ** -14,
    sp.Integer(2) ** -24,
    (2 - sp.Integer(2) ** -10) * 2**15,
)
print(
    "float16: smallest normal",
    smallest_normal,
    "| smallest subnormal",
    smallest_subnormal,
    "| largest",
    largest,
)
assert float(np.finfo(np.float16).tiny) == float(smallest_normal)
assert float(np.finfo(np.float16).max) == float(largest)
g, S = 1e-8, 2.0**15
assert np.float16(g) == 0  # lost without scaling
assert abs(float(np.float16(g * S)) / S - g) / g < 1e-3  # kept with scaling
print(
    f"1e-8 in float16: {float(np.float16(g))}, scaled by 2^15 and unscaled: {float(np.float16(g * S)) / S:.4e}"
)

# %% [markdown]
# The training step of chapter 9 already does this: with the `mixed_float16` policy it wraps each
# optimizer in `keras.mixed_precision.LossScaleOptimizer` and scales the losses, and the networks
# keep float32 where precision matters: batch-norm statistics, the spectral-norm sigma, keypoints,
# motion fields, masks, the occlusion map and the prediction. **XLA** (`jit_compile=True`) fuses the many small element-wise operations of the dense
# motion network and the losses into a few kernels; Keras' `"auto"` would leave it off, so
# `configure()` turns it on explicitly on a GPU.


# %% [markdown]
# ## 3. Parameters and the configuration
#
# On a GPU: the `vox-256` architecture (spec section 8: 10 keypoints, widths 32/64, five-block
# hourglasses, 256 x 256 frames) with the GAN term off as in `vox-256.yaml`, batch 40. On a CPU: the
# small sprite configuration of chapter 9 and a handful of steps, so that this notebook verifies the
# whole pipeline in CI. The training code is the same in both cases.

# %%
import copy
from fomm_tutorial import data as fomm_data, media
from fomm_tutorial.training import Trainer, sprite_config
from fomm_tutorial import animation

FRAME_SIZE = rt.choose(cpu=64, gpu=256)
TOTAL_STEPS = rt.choose(
    cpu=4, gpu=20_000
)  # stop here; run the training cell again to go on
CHECKPOINT_EVERY = rt.choose(cpu=2, gpu=1_000)
PREVIEW_EVERY = rt.choose(cpu=2, gpu=1_000)
BATCH_SIZE = rt.choose(cpu=2, gpu=40)


def vox_256_config(size=256, batch_size=40):
    """vox-256.yaml's networks and training parameters (the published configuration)."""
    cfg = sprite_config(size=size, num_kp=10, batch_size=batch_size)
    mp = cfg["model_params"]
    mp["kp_detector_params"].update(
        block_expansion=32, max_features=1024, scale_factor=0.25, num_blocks=5
    )
    mp["generator_params"].update(
        block_expansion=64, max_features=512, num_bottleneck_blocks=6
    )
    mp["generator_params"]["dense_motion_params"].update(
        block_expansion=64, max_features=1024, num_blocks=5, scale_factor=0.25
    )
    mp["discriminator_params"].update(
        block_expansion=32, max_features=512, num_blocks=4, sn=True
    )
    cfg["train_params"].update(
        num_epochs=100,
        num_repeats=75,
        epoch_milestones=[60, 90],
        scales=[1, 0.5, 0.25, 0.125],
        checkpoint_freq=50,
    )
    cfg["dataset_params"]["augmentation_params"] = {
        "flip_param": {"horizontal_flip": True, "time_flip": True},
        "jitter_param": {
            "brightness": 0.1,
            "contrast": 0.1,
            "saturation": 0.1,
            "hue": 0.1,
        },
    }
    return cfg


config = (
    vox_256_config(FRAME_SIZE, BATCH_SIZE)
    if rt.gpu
    else sprite_config(
        size=FRAME_SIZE, num_kp=4, num_epochs=10**6, batch_size=BATCH_SIZE
    )
)
print(
    "frame shape:",
    config["dataset_params"]["frame_shape"],
    "| batch:",
    BATCH_SIZE,
    "| keypoints:",
    config["model_params"]["common_params"]["num_kp"],
)


# %% [markdown]
# ## 4. Data: your dataset, or sprites
#
# The loader reads the original layout (`fomm_tutorial.data`, chapter 9): a root folder with
# `train/` and `test/`, each holding one entry per video, either a video file (`.mp4`, `.gif`,
# `.mov`, ...) or a folder of frames (the preprocessed VoxCeleb/TaiChi layout, `*.mp4/0000000.png`);
# a root with the videos directly inside is split 80/20. `id_sampling` (vox) expects names
# `<identity>#<rest>`. Point `DATA_ROOT` at your dataset, e.g. a folder on Google Drive; where it
# does not exist, the notebook writes the articulated-sprite dataset instead.
#
# On Colab, copy the dataset from Drive to the local disk first (`!cp -r /content/drive/... /content/`):
# reading thousands of small PNGs through the Drive mount is far slower than the GPU (issue #363:
# "check GPU utilisation").

# %%
from fomm_tutorial import data as fomm_data

DATA_ROOT = Path(os.environ.get("FOMM_DATA_ROOT", "/content/data/vox"))


def has_original_layout(root):
    root = Path(root)
    try:
        return (
            root.is_dir()
            and len(
                fomm_data.list_videos(
                    root / "train" if (root / "train").is_dir() else root
                )
            )
            > 0
        )
    except (FileNotFoundError, ValueError):
        return False


if has_original_layout(DATA_ROOT):
    data_root = DATA_ROOT
    print("training on", data_root)
else:
    data_root = Path("runs/sprite-data")
    if not has_original_layout(data_root):
        fomm_data.write_sprite_dataset(
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
# ## 5. Where the checkpoints go
#
# A Colab runtime is wiped when it disconnects. Checkpoints written to **Google Drive** survive:
# mount it (the cell below does it on Colab when `MOUNT_DRIVE` is true) and the run folder is
# created there; elsewhere it is a local folder. Everything of a run lives in that one folder:
# the config, checkpoints, `log.txt`, TensorBoard event files and preview images. Running the
# training cell again **resumes** from the latest checkpoint in the folder.

# %%
MOUNT_DRIVE = True
if "google.colab" in sys.modules and MOUNT_DRIVE:
    from google.colab import drive

    drive.mount("/content/drive")
DRIVE = Path("/content/drive/MyDrive")
RUN_DIR = (
    DRIVE / "fomm-tutorial" / "vox-256-run"
    if DRIVE.is_dir()
    else Path("runs") / "full-gpu-training"
)
if not rt.gpu and RUN_DIR.exists():
    import shutil

    shutil.rmtree(
        RUN_DIR
    )  # the CPU smoke run starts from scratch, so that its output is reproducible
RUN_DIR.mkdir(parents=True, exist_ok=True)
print("run folder on Drive:", DRIVE.is_dir())

# %% [markdown]
# TensorBoard reads the event files while training runs (on Colab it opens inside the notebook;
# elsewhere run `tensorboard --logdir <run folder>`).

# %%
if "google.colab" in sys.modules:
    get_ipython().run_line_magic("load_ext", "tensorboard")
    get_ipython().run_line_magic("tensorboard", f"--logdir '{RUN_DIR}'")
else:
    print(
        "TensorBoard: tensorboard --logdir",
        RUN_DIR.name if not DRIVE.is_dir() else RUN_DIR,
    )


# %% [markdown]
# ## 6. Training with previews
#
# `Trainer` (chapter 9) runs the generator + keypoint-detector step and the discriminator step as
# compiled functions, with `mixed_precision` and `jit_compile` from `configure()`. It writes
# TensorBoard scalars and image grids, `log.txt` lines as the original, and a checkpoint every
# `CHECKPOINT_EVERY` steps, atomically (a disconnect mid-save never leaves a broken checkpoint).
# A callback animates a test video with the current weights every `PREVIEW_EVERY` steps and saves
# the frames next to the checkpoints, so you can watch the model learn even from another machine.
# On a GPU the faithful losses (VGG19 perceptual loss, downloaded by Keras on Colab) are used; the
# CPU smoke run uses chapter 9's light reconstruction losses.

# %%
preview_video = media.read_video(
    data_root / "test" / fomm_data.list_videos(data_root / "test")[0],
    size=FRAME_SIZE,
    max_frames=rt.choose(cpu=4, gpu=32),
)


def preview(trainer, step, losses):
    if step % PREVIEW_EVERY:
        return
    frames = make_animation_preview(trainer)
    media.write_image(
        RUN_DIR / "previews" / f"step-{step:08d}.png",
        np.concatenate(list(frames), axis=1),
    )


def make_animation_preview(trainer):
    return animation.make_animation(
        preview_video[0],
        preview_video,
        trainer.models["kp_detector"],
        trainer.models["generator"],
        relative=False,
        adapt_scale=False,
        batch_size=len(preview_video),
        progress=False,
    )


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

# %%
# NBVAL_IGNORE_OUTPUT
# Loss values differ in their last digits between CPUs (oneDNN kernels differ): not compared.
print({k: round(v[-1], 3) for k, v in history.items()})

# %% [markdown]
# ### Resume
#
# A new session (a fresh `Trainer`, as after a disconnect) restores the latest checkpoint in the run
# folder, including the optimizer states, the step, the position in the epoch and the random
# generator, and continues exactly where the last one stopped.

# %%
trainer = make_trainer()
print("resuming from", Path(trainer.latest_checkpoint()).parent.name)
history = trainer.train(max_steps=TOTAL_STEPS, resume=True)
assert int(trainer.step.numpy()) == TOTAL_STEPS
assert all(np.isfinite(v).all() for v in history.values())
print("step", int(trainer.step.numpy()), "| losses:", sorted(history))
print("checkpoints:", sorted(p.name for p in (RUN_DIR / "checkpoints").glob("step-*")))
print("previews:", sorted(p.name for p in (RUN_DIR / "previews").glob("*.png")))
print(
    "TensorBoard event files:",
    len(list((RUN_DIR / "tensorboard").glob("events.*"))) > 0,
)

# %%
# NBVAL_IGNORE_OUTPUT
print({k: round(v[-1], 3) for k, v in history.items()})

# %%
previews = sorted((RUN_DIR / "previews").glob("*.png"))
fig, axes = plt.subplots(
    len(previews), 1, figsize=(8, 2 * len(previews)), squeeze=False
)
for ax, path in zip(axes[:, 0], previews):
    ax.imshow(media.read_image(path))
    ax.set_title(path.stem, fontsize=8)
    ax.axis("off")
plt.show()

# %% [markdown]
# ## 7. Throughput
#
# Frames per second of training and of batched animation at this configuration on this machine
# (timings vary, so this cell's output is not compared).

# %%
# NBVAL_IGNORE_OUTPUT
import time

frames = np.repeat(preview_video[:1], rt.choose(cpu=4, gpu=64), axis=0)
animation.make_animation(
    frames[0],
    frames,
    trainer.models["kp_detector"],
    trainer.models["generator"],
    batch_size=len(frames),
    progress=False,
)
t0 = time.perf_counter()
animation.make_animation(
    frames[0],
    frames,
    trainer.models["kp_detector"],
    trainer.models["generator"],
    batch_size=len(frames),
    progress=False,
)
anim_fps = len(frames) / (time.perf_counter() - t0)
t0 = time.perf_counter()
trainer.train(max_steps=TOTAL_STEPS + 2, resume=False)
train_fps = 2 * BATCH_SIZE / (time.perf_counter() - t0)
print(
    f"{rt.device}: animation {anim_fps:.1f} frames/s, training {train_fps:.2f} samples/s "
    f"at {FRAME_SIZE}x{FRAME_SIZE}"
)
assert anim_fps > 0 and train_fps > 0


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
# were written, so GPU frames per second are left for you to measure with the cell above):
# batched animation at vox-256, 256 x 256, runs at about 2.2 frames/s on the CPU, close to the
# FLOP ceiling of the machine (`benchmarks/bench_animation.py`).
