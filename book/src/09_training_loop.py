# %% [markdown]
# # 9. The training loop
#
# Chapters [5](05_keypoints.ipynb) to [8](08_losses.ipynb) built the networks and the
# losses. Training glues them together exactly as the original `train.py` of the
# [original repository](https://github.com/AliaksandrSiarohin/first-order-model) does (one
# iteration; section 3 of the [paper](https://arxiv.org/abs/2003.00196)):
#
# 1. `losses, generated = generator_full(x)`: keypoints of source and driving, the
#    generator's reconstruction of the driving frame, the losses;
# 2. $L = \sum_i \text{mean}(L_i)$ is differentiated w.r.t. the generator **and** the
#    keypoint detector weights; each network is stepped by its own Adam;
# 3. only when `loss_weights.generator_gan != 0`: `discriminator_full(x, generated)` steps
#    the discriminator (the generator's prediction is detached there);
# 4. after each epoch the learning rates are multiplied by 0.1 at the `epoch_milestones`.
#
# `fomm_tutorial.training.Trainer`
# ([`training.py`](https://github.com/fomm-tutorial/fomm-tutorial/blob/main/fomm_tutorial/training.py))
# adds what a long run needs: `tf.function`/XLA steps, mixed precision, `tf.distribute`,
# atomic checkpoints with exact resume, NaN detection, TensorBoard and the original
# `log.txt`. This chapter trains a small model on the procedural sprites
# ([`data.py`](https://github.com/fomm-tutorial/fomm-tutorial/blob/main/fomm_tutorial/data.py))
# for a few CPU minutes, compares its loss curve with the model that ships with the package
# (the same code run for many more steps), and checks that the keypoints it discovers,
# **without any supervision**, track the true parts.

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
import shutil
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D
from matplotlib.ticker import LogLocator, NullFormatter
import sympy as sp
from ipywidgets import Dropdown, IntSlider, interact

from fomm_tutorial.display import (
    image_grid,
    panels,
    show_equations,
    show_source,
    static_slider,
    use_book_style,
)
from fomm_tutorial.runtime import quiet_stderr

# TensorFlow writes C++ start-up notices (oneDNN, CUDA) straight to the process's
# stderr,
# whatever TF_CPP_MIN_LOG_LEVEL says: import it and run a first op with stderr silenced.
with quiet_stderr():
    import tensorflow as tf
    import keras
    from fomm_tutorial.checkpoint import build_models
    from fomm_tutorial.data import list_videos, read_frames
    from fomm_tutorial.evaluation import keypoint_metrics
    from fomm_tutorial.pretrained import (
        load_pretrained,
        shipped_loss_curve,
        shipped_metrics,
    )
    from fomm_tutorial.runtime import configure
    from fomm_tutorial.sprites import sprite_keypoints, sprite_video, train_sprites_demo
    from fomm_tutorial.training import Trainer, make_optimizer, multistep_lr
    from fomm_tutorial.visualization import kp_colours, kp_to_pixels

    rt = configure(seed=0)
    tf.zeros(1) + 1

use_book_style()

# %%
# Parameters: small on a CPU (a few minutes), longer on a GPU.
STEPS = rt.choose(cpu=150, gpu=3000)  # training steps on 64x64 sprites
BATCH_SIZE = 8
print("device:", rt.device, "| steps:", STEPS, "| batch:", BATCH_SIZE)

# %% [markdown]
# ## 9.1 Adam and the learning-rate schedule
#
# Each network has `Adam(lr, beta_1=0.5, beta_2=0.999, epsilon=1e-8)`: $\beta_1 = 0.5$ (a
# short momentum, common for GANs) and PyTorch's $\epsilon$ (Keras' default is 1e-7). The
# update for a weight $w$ with gradient $g_t$ is
#
# $$
# \begin{aligned}
# m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, g_t, \\
# v_t &= \beta_2 v_{t-1} + (1-\beta_2)\, g_t^2, \\
# w &\leftarrow w - \text{lr}\,\frac{m_t/(1-\beta_1^t)}{\sqrt{v_t/(1-\beta_2^t)} + \epsilon}.
# \end{aligned}
# $$
#
# On the first step ($m_0 = v_0 = 0$) the bias corrections cancel the $(1-\beta)$ factors,
# so the step is $\text{lr}\cdot g/(|g| + \epsilon) \approx \text{lr}\cdot\text{sign}(g)$.
# Sympy confirms it, and we check it on a Keras optimizer.

# %%
g, b1, b2, lr, eps = sp.symbols("g beta_1 beta_2 lr epsilon", positive=True)
m1, v1 = (1 - b1) * g, (1 - b2) * g**2
step1 = sp.simplify(lr * (m1 / (1 - b1)) / (sp.sqrt(v1 / (1 - b2)) + eps))
assert sp.simplify(step1 - lr * g / (g + eps)) == 0

# %% tags=["remove-input"]
show_equations(
    [
        ("m_1", m1),
        ("v_1", v1),
        (
            r"\Delta w_1",
            r"\mathrm{lr}\,\frac{m_1/(1-\beta_1)}{\sqrt{v_1/(1-\beta_2)} + \epsilon}",
        ),
        ("", step1),
    ]
)

# %%
w = tf.Variable([1.0, -2.0, 3.0])
opt = make_optimizer(2e-4)
opt.apply_gradients([(tf.constant([0.5, -4.0, 1e-3]), w)])
# Keras puts epsilon on the un-corrected sqrt(v) ("epsilon hat"): tiny differences only.
expected = [1.0 - 2e-4, -2.0 + 2e-4, 3.0 - 2e-4 * 1e-3 / (1e-3 + 1e-8)]
np.testing.assert_allclose(w.numpy(), expected, rtol=0, atol=1e-6)  # float32 weights
print("Adam first step == lr * sign(g): OK")

# %% [markdown]
# `MultiStepLR(milestones, gamma=0.1)` is stepped once per epoch: the learning rate of epoch
# $e$ is $\text{lr}_0 \cdot 0.1^{\#\{m \le e\}}$. For the published configs (milestones 60,
# 90 over 100 epochs):

# %%
for e in (0, 59, 60, 89, 90, 99):
    print(f"epoch {e:3d}: lr = {multistep_lr(2e-4, e, [60, 90]):.1e}")
assert multistep_lr(2e-4, 60, [60, 90]) == 2e-4 * 0.1

# %% [markdown]
# ## 9.2 One training step
#
# The step is a `tf.function` (with `jit_compile=True` for XLA) run by a `tf.distribute`
# strategy. With $R$ replicas each computes the loss of its share of the batch; dividing by
# $R$ before the gradient makes the summed gradients those of the **global-batch mean**, so
# one replica gives exactly the no-strategy result (the tests check it on two logical CPUs).

# %% tags=["remove-input"]
show_source(Trainer._replica_step)

# %% [markdown]
# Line by line: the generator full model returns the loss dict and the generated images;
# the losses are summed (after the per-replica scaling); under mixed precision the loss is
# multiplied by the `LossScaleOptimizer`'s dynamic scale before `tape.gradient` (float16
# gradients would underflow, [chapter 11](11_full_gpu_training.ipynb)); the gradient list
# is split between the generator's and the keypoint detector's optimizers: the keypoint
# detector is trained **only** through the reconstruction and equivariance losses
# ([chapter 8](08_losses.ipynb)). The discriminator step runs only when the config has a
# GAN.
#
# **Robustness.** After each step the losses are checked: a NaN or Inf stops training with
# `NonFiniteLossError` naming the loss and the step, before any checkpoint is written, and
# weights that are not finite are never saved. A checkpoint (`tf.train.Checkpoint` of the
# networks, the optimizers, step/epoch/position in the epoch, the epoch's running loss sums
# and the random generator) is written by one `tf.train.CheckpointManager`, whose state
# file is updated only once a checkpoint is complete; a damaged checkpoint is skipped, with
# a warning, for the newest intact one. The data stream of an epoch depends only on
# `(seed, epoch)`, so resuming skips the batches already seen and continues
# **bit-for-bit** like an uninterrupted run.
#
# ## 9.3 Training on sprites
#
# The sprite dataset
# ([`sprites.py`](https://github.com/fomm-tutorial/fomm-tutorial/blob/main/fomm_tutorial/sprites.py))
# draws "creatures" with a body and three limbs, moving smoothly over a textured
# background: the identity (shapes, sizes, shades, textures, background) comes from one
# seed, the motion from another, and the true part centres are saved for every frame, so
# the keypoints found without supervision can be scored against them. All creatures share
# one body plan, as all faces have their eyes above the mouth: part $k$ sits at the same
# place and in the same hue band on every creature, so "part $k$" means the same thing on
# all of them. Two identities, a few frames each, with the true part centres (white x):

# %% tags=["hide-input"]
sample_videos = [sprite_video(32, 64, seed=seed) for seed in (1, 2)]
times = (0, 10, 20, 30)
fig = image_grid(
    [frames[t] for frames, _ in sample_videos for t in times],
    [f"identity {i + 1}, $t={t}$" for i in range(len(sample_videos)) for t in times],
    ncols=len(times),
)
for i, (frames, parts) in enumerate(sample_videos):
    for j, t in enumerate(times):
        px = kp_to_pixels(parts[t], 64, 64)
        fig.axes[i * len(times) + j].scatter(*px.T, c="white", marker="x", s=30)
plt.show()

# %% [markdown]
# We train at 64 x 64 with 4 keypoints, narrow networks and the CPU configuration of
# the losses: a multi-scale L1 reconstruction (instead of the VGG19 perceptual loss, too
# slow for a CPU in a chapter) plus the original equivariance losses
# (`GeneratorFullModel(..., reconstruction="l1")`, [chapter 8](08_losses.ipynb), section
# 8.7). `train_sprites_demo` writes a
# dataset of 24 videos of 6 identities, builds the `Trainer` and runs it; it is
# deterministic and resumes from its checkpoint.

# %% tags=["nbval-ignore-output"]
RUN = Path("runs/sprites-training")
shutil.rmtree(RUN, ignore_errors=True)  # a fresh, reproducible run
trainer, history, config, root = train_sprites_demo(
    RUN, steps=STEPS, seed=0, batch_size=BATCH_SIZE, simple_losses=True
)
print(f"steps: {int(trainer.step.numpy())} | epochs: {int(trainer.epoch.numpy())}")
for name, values in history.items():
    first, last = np.mean(values[:20]), np.mean(values[-20:])
    print(f"{name:22s} first 20 steps: {first:.4f}   last 20: {last:.4f}")
print((RUN / "log" / "log.txt").read_text().splitlines()[0][:80])

# %%
# Losses may differ in the last digits between CPUs: assert properties only.
for name, values in history.items():
    assert np.isfinite(values).all(), name
    assert np.mean(values[-20:]) < 0.8 * np.mean(values[:20]), name
print("all losses fell by more than 20%:", ", ".join(sorted(history)))

# %% [markdown]
# The same code run for longer is the model that ships with the package,
# `load_pretrained("sprites-64")` (used in [chapter 10](10_animation.ipynb)): the same
# `Trainer` and batch size, run from the command line (section 9.5) for thousands of
# steps on thousands of sprite identities, with more keypoints than 4. It was trained
# in two stages: first without Jacobians (so without the Jacobian term of the
# equivariance loss; its warps were affine only, its model card says), then with them,
# started from the first stage's weights (`fomm-tutorial train --init-from`, section
# 9.5) with the full equivariance losses and the keypoints frozen: only their Jacobians
# and the generator learned ([chapter 10](10_animation.ipynb), section 10.8, says why).
# Its loss curve, both stages, is stored beside
# its weights (`shipped_loss_curve`), its training facts in its model card
# (`shipped_metrics`):

# %% tags=["nbval-ignore-output"]
shipped = load_pretrained("sprites-64")
shipped_curve = shipped_loss_curve("sprites-64")
shipped_training = shipped_metrics("sprites-64")["training"]
steps, batch = shipped_training["total_step"], shipped_training["batch_size"]
hours = shipped_training["total_wall_time_h"]
first_stage = shipped_training["init_from"]["step"]
shipped_kp = shipped["config"]["model_params"]["common_params"]["num_kp"]
print(f"shipped model: {shipped_kp} keypoints, {steps} steps at batch {batch}")
print(f"({first_stage} without Jacobians), {hours:.1f} h of training on a 2-core CPU")
assert steps > 10 * STEPS
compared = [name for name in history if name in shipped_curve]
assert {"reconstruction", "equivariance_value"} <= set(compared), compared

# %% [markdown]
# Against it, on the losses both runs have, the live run is the first stretch of a long
# descent: this is where the same code gets with more steps (both axes logarithmic; the
# shipped curve is averaged over windows of steps, the live one over 10 steps). At the
# same step the shipped run's reconstruction loss is higher: it sees thousands of different creatures instead of
# six, so it cannot memorise them, and that is what lets it animate creatures it never
# saw. Its keypoints settle early (the equivariance loss flattens after a few hundred
# steps); the reconstruction keeps improving. At the second stage (dotted line) the
# Jacobian term starts, and the equivariance loss of the values steps up: from then on
# its random warps include the thin-plate splines, which are harder to follow than the
# first stage's affine warps.


# %% tags=["hide-input"]
def smooth(values, n=10):
    """Running mean over ``n`` steps."""
    values = np.asarray(values, dtype=np.float64)
    n = min(n, len(values))
    return np.convolve(values, np.ones(n) / n, mode="valid")


fig, axes = panels(len(compared), height=2.8)
for ax, name in zip(axes, compared):
    ax.plot(
        shipped_curve["step"], shipped_curve[name], color="C1", label="shipped model"
    )
    live = smooth(history[name])
    live_steps = np.arange(len(live)) + (len(history[name]) - len(live)) + 1
    ax.plot(live_steps, live, color="C0", label=f"this run ({STEPS} steps)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
    ax.yaxis.set_major_formatter("{x:g}")
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.axvline(first_stage, color="k", ls=":", lw=1)
    ax.set_title(name.replace("_", " "))
    ax.set_xlabel("step")
axes[0].set_ylabel("loss")
axes[0].legend()
plt.show()

# %% [markdown]
# On a logarithmic axis the second stage is a sliver at the right edge. Here it is alone,
# on a linear axis counted from the warm start. The Jacobian term, new in this stage,
# halves in its first few hundred steps as the Jacobians learn, then creeps down. The
# reconstruction creeps down at the constant learning rate, then drops at the first decay
# (dashed): within a few hundred steps, by more than half of what all the thousands of
# steps before it gave. A tenfold smaller step stops the weights jumping around the
# valley that noisy single-batch gradients keep them in. The second decay adds little.
# The equivariance of the values only wobbles: the keypoints are frozen.

# %% tags=["hide-input"]
second = shipped_curve["step"] > first_stage
decays = shipped_training["lr_decay_steps"]  # read off the run's learning-rate log
fig, axes = panels(len(compared), height=2.4)
for ax, name in zip(axes, compared):
    ax.plot(
        shipped_curve["step"][second] - first_stage,
        shipped_curve[name][second],
        color="C1",
    )
    for step in decays:
        ax.axvline(step, color="k", ls="--", lw=1)
    ax.set_title(name.replace("_", " "))
    ax.set_xlabel("steps after the warm start")
axes[0].set_ylabel("loss")
plt.show()
milestones = shipped["config"]["train_params"]["epoch_milestones"]
assert len(decays) == len(milestones)  # every decay of the config happened


def stretch(name, start, stop):
    """The mean of a shipped loss over steps ``(start, stop]`` after the warm start."""
    after = shipped_curve["step"] - first_stage
    return shipped_curve[name][(after > start) & (after <= stop)].mean()


# the claims above: the Jacobian term halves early, the reconstruction drops at the
# first decay by more than half the constant rate's gain, the second decay adds little
assert stretch("equivariance_jacobian", 500, 1000) < 0.6 * stretch(
    "equivariance_jacobian", 0, 50
)
start, before, between, last = (
    stretch("reconstruction", *steps_)
    for steps_ in (
        (0, 1000),
        (decays[0] - 1000, decays[0]),
        (decays[0] + 250, decays[1]),
        (decays[1] + 250, shipped_training["step"]),
    )
)
assert before - between > 0.5 * (start - before)
assert between - last < 0.25 * (before - between)

# %% [markdown]
# ## 9.4 Do the keypoints track the parts?
#
# The standard measure for unsupervised landmarks: fit a linear map from the $K$ learned
# keypoints to the $P$ true part centres, $\hat y = [\,\text{kp}, 1\,]\,W$, by least
# squares on the **training** frames, and report the mean distance on held-out **test**
# frames (new motions): `evaluation.keypoint_metrics`
# ([`evaluation.py`](https://github.com/fomm-tutorial/fomm-tutorial/blob/main/fomm_tutorial/evaluation.py)).
# Baselines: the same regression on the keypoints of an **untrained** detector (random
# weights: its soft-argmax still averages the image, so it is not a weak baseline), and
# predicting each part at its mean position. The test videos show new motions of the
# identities this run trained on; the shipped model is scored on the same
# frames although it never saw these identities ([chapter 10](10_animation.ipynb) scores
# it on identities and motions never trained on).

# %%
detectors = {
    f"this run ({STEPS} steps)": trainer.models["kp_detector"],
    "shipped model": shipped["kp_detector"],
}
keras.utils.set_random_seed(0)
detectors["untrained detector"] = build_models(config)["kp_detector"]
size = config["dataset_params"]["frame_shape"][:2]
metrics = {}
for name, detector in detectors.items():
    kp_train, gt_train = sprite_keypoints(detector, root, "train")
    kp_test, gt_test = sprite_keypoints(detector, root, "test")
    metrics[name] = keypoint_metrics(
        kp_test, gt_test, image_size=size[0], fit_pred=kp_train, fit_true=gt_train
    )
    metrics[name]["kp_test"] = np.concatenate(kp_test)
errors = {name: m["regression_error_px"] for name, m in metrics.items()}
errors["mean position"] = metrics["shipped model"]["baseline_error_px"]
gt_test = np.concatenate(gt_test)

# %% tags=["nbval-ignore-output"]
num_train = sum(len(k) for k in kp_train)
print(f"fitted on {num_train} training frames, scored on {len(gt_test)} test frames")
for name, e in errors.items():
    print(f"{name:22s}: {e:5.1f} px")

# %%
# Check: the learned keypoints explain the part positions better than the baselines.
# Bounds leave a margin for other CPUs.
err_live = errors[f"this run ({STEPS} steps)"]
assert err_live < 0.8 * errors["untrained detector"], errors
assert err_live < 0.6 * errors["mean position"], errors
assert errors["shipped model"] < 0.6 * errors["mean position"], errors
print("keypoint regression error of both models well below the baselines: OK")

# %% [markdown]
# Predicted part positions (regressed from the learned keypoints) on a few held-out test
# frames, for this run and for the shipped model: white circles are the true part
# centres, red crosses the regressed ones, coloured dots the keypoints themselves.

# %% tags=["hide-input"]
test_frames = np.concatenate(
    [read_frames(root / "test" / n, (*size, 3)) for n in list_videos(root / "test")]
)


def predicted_parts(name):
    """Keypoints and the part positions regressed from them, on the test frames."""
    kp = metrics[name]["kp_test"]
    design = np.concatenate([kp.reshape(len(kp), -1), np.ones((len(kp), 1))], 1)
    return kp, (design @ metrics[name]["coef"]).reshape(gt_test.shape)


legend_handles = [
    Line2D([], [], ls="", marker="o", mfc="none", mec="0.4", ms=9, label="true parts"),
    Line2D([], [], ls="", marker="x", color="r", ms=7, label="regressed parts"),
    Line2D([], [], ls="", marker="o", color="C4", ms=5, label="keypoints"),
]


def draw_frame(ax, i, name):
    kp, pred = predicted_parts(name)
    ax.imshow(test_frames[i])
    true_px = kp_to_pixels(gt_test[i], *size)
    pred_px = kp_to_pixels(pred[i], *size)
    kp_px = kp_to_pixels(kp[i], *size)
    ax.scatter(*true_px.T, facecolors="none", edgecolors="w", s=90, lw=1.5)
    ax.scatter(*pred_px.T, c="r", marker="x", s=50)
    ax.scatter(*kp_px.T, c=kp_colours(kp.shape[1]), s=20)
    ax.set_xticks([])
    ax.set_yticks([])


examples = np.linspace(0, len(test_frames) - 1, 4).astype(int)
shown = [f"this run ({STEPS} steps)", "shipped model"]
fig, axes = panels(2 * len(examples), ncols=len(examples))
for row, name in enumerate(shown):
    for col, i in enumerate(examples):
        ax = axes[row * len(examples) + col]
        draw_frame(ax, i, name)
        ax.set_title(f"{'this run' if row == 0 else 'shipped'}, frame {i}")
fig.legend(handles=legend_handles, loc="outside lower center", ncols=3)
plt.show()

# %% [markdown]
# The slider walks through held-out test frames, the two models side by side:


# %% tags=["hide-input"]
def frame_figure(i, models=shown):
    """Test frame ``i``: true, regressed and detected positions, one panel a model."""
    fig, axes = panels(len(models), height=3.5)
    for ax, model in zip(axes, models):
        draw_frame(ax, i, model)
        ax.set_title(f"{model}, test frame {i}")
    fig.legend(handles=legend_handles, loc="outside lower center", ncols=3)
    return fig


static_slider(
    {
        int(i): frame_figure(int(i))
        for i in np.linspace(0, len(test_frames) - 1, 8).astype(int)
    },
    label="test frame",
)

# %% [markdown]
# > **Live widget.** The figure above switches between a few precomputed settings; run the
# > notebook (Colab button at the top, or Jupyter) to change every parameter freely.


# %% tags=["hide-input", "remove-output", "nbval-ignore-output"]
def show(i=0, model=shown[0]):
    frame_figure(i, [model])
    plt.show()


_ = interact(
    show,
    i=IntSlider(min=0, max=len(test_frames) - 1, step=1, value=0),
    model=Dropdown(options=shown, value=shown[0]),
)

# %% [markdown]
# ## 9.5 The command line and long runs
#
# `fomm-tutorial train --config C --data DIR --out LOGDIR [--resume]` runs the same
# `Trainer` on a dataset in the original layout, with `--steps`, `--checkpoint-every`,
# `--xla/--no-xla`, `--mixed-precision` and, with several GPUs, `MirroredStrategy`.
# `LOGDIR` gets `log.txt` (`00000000) perceptual - 144.00000; ...` as the original),
# `checkpoints/` and `tensorboard/` (losses, learning rates and image grids: source and
# driving with keypoints, prediction). `--init-from RUN|MODEL` starts a new run from the
# network weights of another run or of a shipped model (matched by name, fresh optimizers,
# step 0; a Jacobian head the other model lacks keeps its identity initialisation), the
# run's `run.json` records it; with `--freeze-keypoints` the keypoint detector's hourglass
# and heatmap head stop learning (batch norm included), so only its Jacobian head learns.
# The shipped sprite model was trained that way, in two commands; its model card gives
# them, the data seeds and the wall time. This run's folder:

# %%
print("latest checkpoint:", Path(trainer.latest_checkpoint()).relative_to(RUN))
print("run folder:", sorted(p.name for p in (RUN / "log").iterdir()))

# %% [markdown]
# ## Summary
#
# * One iteration = generator + keypoint-detector step, then (GAN configs only) a
#   discriminator step; Adam($\beta_1 = 0.5$) per network; learning rate $\times 0.1$ at
#   the epoch milestones.
# * Checkpoints are atomic and resume exactly; NaNs stop training without overwriting
#   anything.
# * Trained for a few CPU minutes on sprites, the unsupervised keypoints already predict
#   the true part positions better than an untrained detector or the mean pose; the same
#   code run for longer (the shipped `sprites-64` model) gets much further, and
#   [chapter 10](10_animation.ipynb) uses it to animate one creature with another's motion.
#
# ## Exercises
#
# 1. Double `STEPS` and re-run: how much do the losses and the keypoint regression error
#    improve, and where does the live curve sit against the shipped one?
# 2. Train with `num_kp=2` and `num_kp=8` (`train_sprites_demo(..., num_kp=...)`): how does
#    the regression error depend on the number of keypoints for 4 true parts?
# 3. Interrupt training (run 50 steps, then call `train_sprites_demo` again with
#    `steps=100` and the same folder): check that the loss history of steps 51-100 equals
#    that of an uninterrupted 100-step run.
# 4. Show that with $\beta_1 = 0.5$ the first *two* Adam steps for a constant gradient $g$
#    are both $\approx \text{lr}\cdot\text{sign}(g)$ (extend the sympy cell).
