# %% [markdown]
# # 10. Animation: from keypoints to a moving picture
#
# The model of the previous chapters was trained to **reconstruct** a frame of a video from
# another frame of the *same* video ([chapter 9](09_training_loop.ipynb)). At test time we
# use it for something it never saw in training: the source image and the driving video
# show **different objects**. A face photograph is driven by somebody else's talking-head
# video; a sprite is driven by another sprite's dance. This is the demo of the
# [paper](https://arxiv.org/abs/2003.00196) (section 3.4) and of the
# [original repository](https://github.com/AliaksandrSiarohin/first-order-model)'s `demo.py`.
#
# This chapter closes the loop:
#
# 1. **absolute vs relative motion**: which keypoints should drive the source?
# 2. `normalize_kp`, derived with sympy and checked against the derivation;
# 3. `make_animation`: the whole video, batched over frames, source work done once
#    ([`animation.py`](https://github.com/fomm-tutorial/fomm-tutorial/blob/main/fomm_tutorial/animation.py));
# 4. a trained model at work: the first-order sprite model that ships with the package
#    ([`pretrained.py`](https://github.com/fomm-tutorial/fomm-tutorial/blob/main/fomm_tutorial/pretrained.py))
#    animates one creature with the motion of another, drawn with
#    [`visualization.py`](https://github.com/fomm-tutorial/fomm-tutorial/blob/main/fomm_tutorial/visualization.py);
# 5. evaluation: the original reconstruction L1 and keypoint metrics against the sprites'
#    ground-truth part positions
#    ([`evaluation.py`](https://github.com/fomm-tutorial/fomm-tutorial/blob/main/fomm_tutorial/evaluation.py));
# 6. real faces: the published `vox-cpk` checkpoint on Colab, the media path
#    ([`media.py`](https://github.com/fomm-tutorial/fomm-tutorial/blob/main/fomm_tutorial/media.py))
#    and the command line `fomm-tutorial animate`;
# 7. a real face trained by this book: the shipped `talking-head-128` model on frames
#    of its clip it never saw, and on a person it never saw;
# 8. what each part buys: the paper's ablation (multi-scale loss, occlusion map,
#    Jacobians with and without their equivariance term) retrained on sprites and scored
#    against the renderer's ground truth, transfers included.
#
# Without Python or a kernel, the book's
# <a href="../live/index.html">live demo page</a> runs the trained sprite model of
# section 10.4 in your browser: pick a source image and a driving video (or your own
# files), switch relative motion and adapted scale on or off, and watch the result being
# computed in the page.

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
from pathlib import Path

import matplotlib.pyplot as plt
from IPython.display import Markdown, display
import numpy as np
import sympy as sp
from ipywidgets import IntSlider, interact

from fomm_tutorial.display import (
    image_grid,
    panels,
    show_animation,
    show_equations,
    show_source,
    static_slider,
    use_book_style,
)
from fomm_tutorial.runtime import quiet_stderr

# TensorFlow writes C++ start-up notices (oneDNN, CUDA) straight to the process's
# stderr, whatever TF_CPP_MIN_LOG_LEVEL says: import it and run a first op with stderr
# silenced.
with quiet_stderr():
    import tensorflow as tf
    from fomm_tutorial import animation, evaluation, media
    from fomm_tutorial.animation import make_animation, normalize_kp
    from fomm_tutorial.checkpoint import build_models
    from fomm_tutorial.pretrained import (
        ablation_table,
        headline_metrics,
        heldout_clip,
        load_pretrained,
        shipped_ablation,
        shipped_metrics,
    )
    from fomm_tutorial.runtime import configure
    from fomm_tutorial.sprites import evaluate_heldout, heldout_videos, sprite_angles
    from fomm_tutorial.visualization import (
        draw_jacobians,
        draw_keypoints,
        kp_colours,
        kp_to_pixels,
    )

    rt = configure(seed=0)
    tf.zeros(1) + 1  # the first op loads the remaining kernels

use_book_style()

# %%
# Parameters: small on a CPU (a couple of minutes), longer videos on a GPU.
NUM_FRAMES = rt.choose(cpu=32, gpu=128)  # frames of the held-out sprite videos
BATCH_SIZE = rt.choose(cpu=8, gpu=64)  # driving frames per animation step
print("device:", rt.device)

# %% [markdown]
# ## 10.1 Absolute or relative motion?
#
# The keypoint detector ([chapter 5](05_keypoints.ipynb)) gives keypoints $p_k^S$ for the
# source and $p_k^{D_t}$ for each driving frame $D_t$. The simplest choice, **absolute**
# motion, hands the driving keypoints to the generator as they are. The generator then moves
# the source's parts to where the *driving* object's parts are, so the result takes on the
# driving object's **shape**: a narrow face driven by a wide one becomes wide, a small
# sprite driven by a large one grows. That is what reconstruction in training does (source
# and driving are the same object), but for animation it leaks the driving object's
# identity into the result.
#
# **Relative** motion transfers only the *change* of the driving keypoints since the first
# driving frame:
#
# $$p_k^{\text{new}}(t) = p_k^S + s\,\bigl(p_k^{D_t} - p_k^{D_0}\bigr).$$
#
# At $t = 0$ the new keypoints are the source's own, so the first output frame is the
# source itself; from then on the source moves as the driving object moved. This needs the
# source and the first driving frame to be in a similar pose (the README's advice,
# [issue #352](https://github.com/AliaksandrSiarohin/first-order-model/issues/352)): a
# driving video that starts with the head turned left turns an upright source face
# *further* left.
#
# ### The Jacobians
#
# Each keypoint also carries a Jacobian $J_k^X$: the linear part of the map from the
# abstract reference frame $R$ to frame $X$ near keypoint $k$. The generator
# ([chapter 6](06_dense_motion.ipynb)) approximates the backward motion from the driving
# frame to the source near keypoint $k$ by
#
# $$\mathcal T_{S\leftarrow D}(z) \approx p_k^S + J_k^S \bigl(J_k^D\bigr)^{-1} (z - p_k^D).$$
#
# For relative motion we want a virtual driving frame $D'$ whose local linear motion to the
# source equals the motion from $D_t$ back to $D_0$: $J^S (J^{D'})^{-1} = J^{D_0}
# (J^{D_t})^{-1}$. Solving for $J^{D'}$ gives the original's formula
#
# $$J_k^{\text{new}} = J_k^{D_t} \bigl(J_k^{D_0}\bigr)^{-1} J_k^S.$$
#
# Let sympy confirm it with fully symbolic $2\times 2$ matrices:


# %%
def sym_matrix(name):
    return sp.Matrix(2, 2, lambda i, j: sp.Symbol(f"{name}_{i}{j}"))


J_S, J_D0, J_Dt = sym_matrix("S"), sym_matrix("D0"), sym_matrix("Dt")
J_new = J_Dt * J_D0.inv() * J_S
# The local motion the generator applies, virtual driving frame -> source ...
applied = J_S * J_new.inv()
# ... equals the driving video's own motion from frame t back to frame 0.
wanted = J_D0 * J_Dt.inv()
difference = sp.simplify(applied - wanted)
# At t = 0 (J_Dt = J_D0) the virtual frame has the source's Jacobian.
at_start = sp.simplify(J_new.subs(dict(zip(J_Dt, J_D0))) - J_S)
assert difference == sp.zeros(2, 2) and at_start == sp.zeros(2, 2)

# %% tags=["remove-input"]
show_equations(
    [
        (
            r"J^S \bigl(J^{\text{new}}\bigr)^{-1} - J^{D_0}\bigl(J^{D_t}\bigr)^{-1}",
            difference,
        ),
        (r"J^{\text{new}}\big|_{J^{D_t} = J^{D_0}} - J^S", at_start),
    ]
)

# %% [markdown]
# ### Adapting the movement scale
#
# Keypoints live in normalised image coordinates. If the driving face fills the frame and
# the source face is half as large, a 0.2 head shift in the driving video should be a 0.1
# shift of the source. The original estimates the objects' relative **linear** size from the
# areas of the convex hulls of the keypoints (of batch element 0):
#
# $$s = \sqrt{\operatorname{area}(\operatorname{hull}(p^S))} \,/\,
# \sqrt{\operatorname{area}(\operatorname{hull}(p^{D_0}))}.$$
#
# Scaling a point set by $c$ scales its hull's area by $c^2$, so $s = c$ exactly when the
# source is a scaled copy of the first driving frame. With the shoelace formula on a
# symbolic triangle, the source a copy scaled by $c$ and moved by $(t_x, t_y)$:

# %%
c, tx, ty = sp.symbols("c t_x t_y", positive=True)
xs, ys = sp.symbols("x0:3"), sp.symbols("y0:3")


def shoelace(px, py):
    """Signed area of the triangle with corners ``(px[i], py[i])``."""
    return sp.Rational(1, 2) * sum(
        px[i] * py[(i + 1) % 3] - px[(i + 1) % 3] * py[i] for i in range(3)
    )


area_driving = shoelace(xs, ys)
area_source = shoelace([c * x + tx for x in xs], [c * y + ty for y in ys])
area_ratio = sp.simplify(area_source / area_driving)
assert area_ratio == c**2

# %% tags=["remove-input"]
show_equations(
    [
        (r"\operatorname{area}(p^{D_0})", sp.factor(area_driving)),
        (r"\operatorname{area}(p^S) / \operatorname{area}(p^{D_0})", area_ratio),
        ("s", sp.sqrt(area_ratio)),
    ]
)

# %% [markdown]
# (`adapt_movement_scale` has no effect in absolute mode. Every published config uses
# relative movement and relative Jacobians without scale adaptation; the demo turns
# adaptation on with `--adapt_scale`, and its `make_animation` defaults to it.)
#
# ## 10.2 `normalize_kp`
#
# The implementation in `fomm_tutorial.animation`:

# %% tags=["remove-input"]
show_source(normalize_kp)

# %% [markdown]
# Line by line:
#
# * the movement scale is computed with scipy's `ConvexHull` (`volume` is the area in 2-D)
#   on **batch element 0**, as the original; `make_animation` computes it once per video and
#   passes `scale=` so that the hull is not recomputed for every batch;
# * `kp_new` starts as a shallow copy of the driving keypoints: **absolute** motion;
# * relative movement replaces the values by
#   `(kp_driving - kp_driving_initial) * scale + kp_source`; the source and initial
#   keypoints have batch size 1 and broadcast against the T driving frames;
# * relative Jacobians: `J_driving @ inv(J_driving_initial) @ J_source`, the formula
#   derived above (`tf.linalg.matmul` broadcasts the batch dimensions).
#
# The check: the numbers agree with the sympy expressions evaluated on random keypoints, and
# the limiting cases hold.

# %%
rng = np.random.default_rng(0)
K = 10


def random_kp(batch):
    jacobian = np.eye(2) + 0.3 * rng.standard_normal((batch, K, 2, 2))
    return {
        "value": rng.uniform(-0.6, 0.6, (batch, K, 2)).astype(np.float32),
        "jacobian": jacobian.astype(np.float32),
    }


kp_s, kp_d0, kp_dt = random_kp(1), random_kp(1), random_kp(5)
rel = normalize_kp(
    kp_s, kp_dt, kp_d0, use_relative_movement=True, use_relative_jacobian=True
)
absolute = normalize_kp(kp_s, kp_dt, kp_d0)

# Jacobians against the sympy formula, keypoint by keypoint.
j_new = sp.lambdify([J_S, J_D0, J_Dt], J_new, "numpy")
for b in range(5):
    for k in range(K):
        expected = np.array(
            j_new(
                sp.Matrix(kp_s["jacobian"][0, k]),
                sp.Matrix(kp_d0["jacobian"][0, k]),
                sp.Matrix(kp_dt["jacobian"][b, k]),
            ),
            dtype=np.float64,
        )
        assert np.allclose(rel["jacobian"][b, k], expected, atol=1e-4)
# Values: source + driving change; absolute = driving as it is.
change = kp_dt["value"] - kp_d0["value"]
assert np.allclose(rel["value"], kp_s["value"] + change, atol=1e-6)
assert np.array_equal(np.asarray(absolute["value"]), kp_dt["value"])
# t = 0: relative keypoints are the source's own.
first = normalize_kp(
    kp_s,
    kp_d0,
    kp_d0,
    adapt_movement_scale=True,
    use_relative_movement=True,
    use_relative_jacobian=True,
)
assert np.allclose(first["value"], kp_s["value"], atol=1e-6)
assert np.allclose(first["jacobian"], kp_s["jacobian"], atol=1e-5)
# Scale: a source that is a 0.5x copy of the first driving frame halves the movement.
half = {"value": 0.5 * kp_d0["value"] + 0.1, "jacobian": kp_d0["jacobian"]}
assert abs(animation.movement_scale(half, kp_d0) - 0.5) < 1e-6
scaled = normalize_kp(
    half, kp_dt, kp_d0, adapt_movement_scale=True, use_relative_movement=True
)
assert np.allclose(scaled["value"], half["value"] + 0.5 * change, atol=1e-6)
print("normalize_kp agrees with the derivation")

# %% [markdown]
# What the three choices do to a small source object driven by a large one that moves right
# and rotates: absolute motion copies the driving shape; relative motion keeps the source's
# shape but moves it by the *driving* distance (too far for a small object); adapting the
# scale moves it by a proportionally smaller amount.


# %% tags=["hide-input"]
def toy_keypoints(scale, angle, shift):
    """Five keypoints of a square with a nose, scaled, rotated and moved."""
    base = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1], [0, 0.4]], np.float64) * 0.25
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return {
        "value": (scale * base @ rot.T + shift)[None].astype(np.float32),
        "jacobian": np.tile(rot, (1, 5, 1, 1)).astype(np.float32),
    }


toy_source = toy_keypoints(0.5, 0.0, [-0.5, 0.0])
toy_d0 = toy_keypoints(1.2, 0.0, [0.0, 0.0])
toy_dt = toy_keypoints(1.2, 0.4, [0.4, 0.0])
relative_kwargs = dict(use_relative_movement=True, use_relative_jacobian=True)
toy_modes = {
    "absolute": normalize_kp(toy_source, toy_dt, toy_d0),
    "relative": normalize_kp(toy_source, toy_dt, toy_d0, **relative_kwargs),
    "relative + adapt scale": normalize_kp(
        toy_source, toy_dt, toy_d0, adapt_movement_scale=True, **relative_kwargs
    ),
}
fig, axes = panels(3, height=2.9)
for ax, (name, kp) in zip(axes, toy_modes.items()):
    for pts, style, label in (
        (toy_d0["value"][0], "o--", "driving $D_0$"),
        (toy_dt["value"][0], "o-", "driving $D_t$"),
        (toy_source["value"][0], "s--", "source $S$"),
        (np.asarray(kp["value"])[0], "s-", "new"),
    ):
        closed = np.vstack([pts[:4], pts[:1]])
        ax.plot(closed[:, 0], closed[:, 1], style, label=label, ms=4)
    ax.set_title(name)
    ax.set_xlim(-1, 1.2)
    ax.set_ylim(1, -1)
    ax.set_aspect("equal")
    ax.set_xlabel("$x$")
axes[0].set_ylabel("$y$")
fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=4)
plt.show()


# %% [markdown]
# ## 10.3 `make_animation`: a whole video, batched
#
# The original demo loops over the driving frames one at a time and runs the whole
# generator for each. Two things depend only on the source and can be done once per video:
#
# * the source keypoints `kp_source` (and the first driving frame's `kp_driving_initial`,
#   and the movement scale from their convex hulls);
# * the generator's **encoder features** of the source and its down-scaled copy for the
#   dense motion network (`generator.encode_source`, [chapter 7](07_generator.ipynb)): the
#   generator accepts them as `source_features=` and warps a single source for a whole
#   batch of driving keypoints without copying it.
#
# Everything else runs on batches of `batch_size` driving frames inside one compiled
# `tf.function` (cached per pair of models, so a second video does not re-trace it):

# %% tags=["remove-input"]
show_source(animation._animation_step)

# %% [markdown]
# Batching does not change the result: each frame's prediction depends only on that frame
# (all batch norms are in inference mode), so the output for `batch_size=1` and
# `batch_size=4` agrees to float32 round-off. The unit tests check exactly this, and
# against the frame-by-frame formula.
#
# ## 10.4 A trained model at work
#
# The package ships a model trained on the articulated sprites of
# [chapter 9](09_training_loop.ipynb): "creatures" with a body and three limbs whose
# appearance comes from an identity seed and whose motion from a motion seed, with the true
# part centres recorded for every frame. It was trained with the same `Trainer` as
# chapter 9 (`fomm-tutorial train --simple-losses`), for many more steps and on thousands
# of identities, in two stages: keypoints first, then their Jacobians (section 10.8 says
# why); `load_pretrained` builds the networks from its config and loads the
# weights (Keras `.weights.h5` files installed with the package). Its
# [model card](https://github.com/fomm-tutorial/fomm-tutorial/blob/main/fomm_tutorial/weights/sprites-64/MODEL_CARD.md)
# gives the commands that reproduce it (`make sprites-model`), the seeds, the wall time and
# the held-out metrics of section 10.5.

# %%
shipped = load_pretrained("sprites-64")
kp_detector, generator = shipped["kp_detector"], shipped["generator"]
sprite_config = shipped["config"]
SPRITE_SIZE = sprite_config["dataset_params"]["frame_shape"][0]
num_kp = sprite_config["model_params"]["common_params"]["num_kp"]
print(f"sprites-64: {num_kp} keypoints, {SPRITE_SIZE} x {SPRITE_SIZE} frames")

# %% [markdown]
# We animate one creature (identity A) with the motion of **another** one (identity B):
# neither identity nor either motion was used in training, and source and driving are
# different objects, the situation the model never saw in training (it only ever
# reconstructed a frame from another frame of the same video).

# %% tags=["nbval-ignore-output"]
# Held-out videos (sprites.HELDOUT_SEEDS): identities and motions never trained on.
videos, positions, seeds = heldout_videos(4, NUM_FRAMES, SPRITE_SIZE)
A, B = 0, 1
source_image = videos[A][0]  # identity A
driving_frames, driving_parts = videos[B], positions[B]  # identity B
print("identity A:", seeds[A], "| identity B:", seeds[B])

results = {}
for name, relative in (("relative", True), ("absolute", False)):
    results[name] = make_animation(
        source_image,
        driving_frames,
        kp_detector,
        generator,
        relative=relative,
        adapt_scale=relative,
        batch_size=BATCH_SIZE,
        progress=False,
        return_keypoints=True,
    )
video, kps = results["relative"]
# Relative motion starts from the source's own keypoints: frame 0 reconstructs the
# source.
assert np.allclose(kps["kp_norm"]["value"][0], kps["kp_source"]["value"][0], atol=1e-5)
assert video.shape == driving_frames.shape and np.isfinite(video).all()
first_frame_l1 = np.abs(video[0] - source_image).mean()
assert first_frame_l1 < 0.05, first_frame_l1
print(f"relative mode, L1(output frame 0, source) = {first_frame_l1:.2f}")

# %% [markdown]
# Source A, driving video B and the two results at a few times, each with the keypoints that
# produced it (colours identify keypoints across panels, `gist_rainbow` as the original
# `Visualizer`): on the source its detected keypoints, on the driving frame the detected
# ones, on a result the normalised keypoints that drove the generator. Each keypoint also
# carries its Jacobian, drawn as two arrows (what they show: below, "What the Jacobians
# learned"). **Relative** motion starts from A as it is and moves it as B moves;
# **absolute** motion puts A's keypoints where B's are, so A jumps to B's position at once
# (and, where keypoints sit on the limbs, takes on B's limb layout).

# %% tags=["hide-input"]
JACOBIAN_ARROW = 0.3  # arrow length per unit column, in normalised units
colours = kp_colours(num_kp)


def draw_cell(ax, title, image, kp_value, kp_jacobian):
    """One panel: ``image`` with keypoints ``(K, 2)`` and their Jacobians
    ``(K, 2, 2)``."""
    ax.imshow(np.clip(image, 0, 1))
    draw_jacobians(
        ax, kp_value, kp_jacobian, SPRITE_SIZE, SPRITE_SIZE, arrow=JACOBIAN_ARROW
    )
    px = kp_to_pixels(kp_value, SPRITE_SIZE, SPRITE_SIZE)
    ax.scatter(px[:, 0], px[:, 1], c=colours, s=25, edgecolors="white", lw=0.8)
    # a keypoint may leave the frame: keep every panel the frame's size
    ax.set_xlim(-0.5, SPRITE_SIZE - 0.5)
    ax.set_ylim(SPRITE_SIZE - 0.5, -0.5)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])


times = np.linspace(0, NUM_FRAMES - 1, 3).astype(int)
fig, axes = panels(4 * len(times), ncols=4)
for row, t in enumerate(times):
    cells = [  # (title, image, keypoints, their frame)
        ("source A", source_image, kps["kp_source"], 0),
        (f"driving B, $t={t}$", driving_frames[t], kps["kp_driving"], t),
        ("relative", results["relative"][0][t], kps["kp_norm"], t),
        ("absolute", results["absolute"][0][t], results["absolute"][1]["kp_norm"], t),
    ]
    for ax, (title, image, kp, i) in zip(axes[4 * row : 4 * row + 4], cells):
        if row and title == "source A":  # the same image in every row: shown once
            ax.set_visible(False)
            continue
        draw_cell(ax, title, image, kp["value"][i], kp["jacobian"][i])
plt.show()

# %% [markdown]
# The whole videos (an embedded GIF of every second frame, each pixel shown as a
# $2 \times 2$ block; it loops):

# %% tags=["hide-input", "nbval-ignore-output"]
UPSCALE = 2  # nearest-neighbour, so that the 64-pixel sprites are visible


def with_keypoints(frames, kp_value):
    """Every second frame with the keypoints drawn (the browser enlarges the GIF)."""
    frames = np.broadcast_to(frames, (NUM_FRAMES, *source_image.shape))[::2]
    return draw_keypoints(frames, kp_value[::2], kp_size=2)


kp_absolute = results["absolute"][1]["kp_norm"]["value"]
columns = [
    with_keypoints(source_image, np.repeat(kps["kp_source"]["value"], NUM_FRAMES, 0)),
    with_keypoints(driving_frames, kps["kp_driving"]["value"]),
    with_keypoints(results["relative"][0], kps["kp_norm"]["value"]),
    with_keypoints(results["absolute"][0], kp_absolute),
]
separator = np.ones((*columns[0].shape[:2], 2, 3), np.float32)
movie = np.concatenate(
    [part for column in columns for part in (column, separator)][:-1], axis=2
)
show_animation(
    movie,
    fps=6,
    scale=UPSCALE,
    titles=["source A", "driving B", "relative", "absolute"],
)

# %% [markdown]
# To animate other sprites (or your own image and video) with this model without a
# kernel, open the <a href="../live/index.html">live demo page</a>. Here, browse the
# frames, keypoints and Jacobians, and compare the modes frame by frame:


# %% tags=["hide-input"]
def frame_figure(t=0, modes=("relative", "absolute")):
    """Source A, driving frame ``t`` of B, the result of each mode, with keypoints and
    their Jacobians (as in the figure above)."""
    kps_any = results[modes[0]][1]
    cells = [
        ("source A", source_image, kps_any["kp_source"], 0),
        (f"driving B, $t={t}$", driving_frames[t], kps_any["kp_driving"], t),
    ]
    for mode in modes:
        result, kps_mode = results[mode]
        cells.append((f"{mode} result", result[t], kps_mode["kp_norm"], t))
    fig, axes = panels(len(cells))
    for ax, (title, image, kp, i) in zip(axes, cells):
        draw_cell(ax, title, image, kp["value"][i], kp["jacobian"][i])
    return fig


static_slider(
    {
        f"t = {t}": frame_figure(int(t))
        for t in np.linspace(0, NUM_FRAMES - 1, 8).astype(int)
    },
    label="driving frame",
    colors=64,  # flat sprite colours and thin arrows: a small palette keeps them
)

# %% [markdown]
# > **Live widget.** The figure above switches between a few precomputed settings; run the
# > notebook (Colab button at the top, or Jupyter) to change every parameter freely.


# %% tags=["hide-input", "remove-output", "nbval-ignore-output"]
def show_frame(t=0, mode="relative"):
    frame_figure(t, [mode])
    plt.show()


_ = interact(
    show_frame,
    t=IntSlider(min=0, max=NUM_FRAMES - 1, step=1, value=0),
    mode=list(results),
)

# %% [markdown]
# ### What the Jacobians learned
#
# The shipped model is **first order**: every keypoint carries a Jacobian $J_k$, the
# linear part of the motion from the abstract reference frame $R$ to the frame near
# keypoint $k$ ([chapter 2](02_taylor_series.ipynb), [chapter 5](05_keypoints.ipynb)).
# The arrows of the first figure of this section are the columns of $J_k$: where the
# local linear map sends a unit step along $x$ and along $y$
# (`visualization.draw_jacobians`; the identity would draw two equal, perpendicular
# arrows). No label ever said what a Jacobian is; only the equivariance losses (eqs. 11
# and 12, [chapter 8](08_losses.ipynb)) shaped them.

# %% [markdown]
# Do they turn with the parts? The renderer knows every part's angle in every frame
# (`sprites.sprite_angles`), so this can be measured rather than eyeballed. The local
# motion from driving frame 0 to frame $t$ near keypoint $k$ is
# $M_k(t) = J_k^{D_t} (J_k^{D_0})^{-1}$, the very matrix relative motion applies to the
# source (section 10.1). If $M$ is a rotation by $\theta$ scaled by $s$, its angle is
# read off its entries:

# %%
theta, s_ = sp.symbols("theta s", positive=True)
M = s_ * sp.Matrix([[sp.cos(theta), -sp.sin(theta)], [sp.sin(theta), sp.cos(theta)]])
# atan2(M_10 - M_01, M_00 + M_11) = atan2(2 s sin(theta), 2 s cos(theta)) = theta
numerator, denominator = M[1, 0] - M[0, 1], M[0, 0] + M[1, 1]
assert sp.simplify(numerator - 2 * s_ * sp.sin(theta)) == 0
assert sp.simplify(denominator - 2 * s_ * sp.cos(theta)) == 0


def rotation_angle(m):
    """The rotation in 2 x 2 matrices ``(..., 2, 2)`` (exact for scaled rotations)."""
    return np.arctan2(m[..., 1, 0] - m[..., 0, 1], m[..., 0, 0] + m[..., 1, 1])


# %% tags=["remove-input"]
show_equations(
    [
        (r"M_{10} - M_{01}", sp.simplify(numerator)),
        (r"M_{00} + M_{11}", sp.simplify(denominator)),
    ]
)

# %% [markdown]
# For each part of each held-out video of this section, take the keypoint that stays
# nearest to it and compare the rotation in its $M_k(t)$ with the part's true turn since
# frame 0. The yardstick is a Jacobian that never turns (the identity, or a zeroth-order
# model), whose error is the turn itself:


# %%
def wrapped(angle):
    """Angles folded into (-pi, pi]."""
    return np.angle(np.exp(1j * angle))


turn_errors = {part: [] for part in range(driving_parts.shape[1])}
no_turn = {part: [] for part in turn_errors}
for clip, parts, seed in zip(videos, positions, seeds):
    kp_clip = {k: v.numpy() for k, v in kp_detector(clip, training=False).items()}
    jacobian = kp_clip["jacobian"].astype(np.float64)
    local = jacobian @ np.linalg.inv(jacobian[:1])  # M_k(t), (T, K, 2, 2)
    true_turn = sprite_angles(len(clip), **seed)
    true_turn = true_turn - true_turn[:1]
    distance = np.linalg.norm(kp_clip["value"][:, :, None] - parts[:, None], axis=-1)
    for part in turn_errors:
        k = int(np.argmin(np.median(distance[:, :, part], axis=0)))
        error = wrapped(rotation_angle(local[:, k]) - true_turn[:, part])
        turn_errors[part].append(np.degrees(np.abs(error)))
        no_turn[part].append(np.degrees(np.abs(wrapped(true_turn[:, part]))))
print("median error of the turn, degrees   learned Jacobian   one that never turns")
summary = {}  # part -> learned / never-turning error
for part in turn_errors:
    learned, still = (
        np.median(np.concatenate(e[part])) for e in (turn_errors, no_turn)
    )
    name = "body" if part == 0 else f"limb {part}"
    print(f"{name:36s} {learned:16.0f} {still:20.0f}")
    summary[name] = learned / still
# the claims below: the limbs' Jacobians follow their turn, the body's hardly
assert all(summary[f"limb {part}"] < 0.9 for part in range(1, len(summary)))
assert np.mean([summary[f"limb {part}"] for part in range(1, len(summary))]) < 0.75
assert summary["body"] > 0.8

# %% [markdown]
# On the limbs the Jacobians follow the turn part of the way. The body's hardly turns in
# these clips: its keypoint sits inside a body of one colour, where the features of the
# first stage, which only had to find keypoints, see little orientation, and the second
# stage froze them (section 10.8 says why). It is the last Jacobian to learn (the model
# card's notes follow it through the second stage). When the whole detector learns, the
# body's Jacobian turns with the body too, but the keypoints slide along the parts.

# %% [markdown]
# ## 10.5 Evaluation
#
# ### Reconstruction
#
# The original `reconstruction.py` measures how well the model **reconstructs** test
# videos: the first frame is the source, every frame (frame 0 included) is generated from it
# with the keypoints detected on that frame (absolute motion: source and driving are the
# same object), and the score is the mean L1 distance over all frames of all videos (pixel
# values in [0, 1]; frame-weighted, so long videos count more). `evaluation.reconstruction`
# does the same, batched. Two references: the same networks untrained, and copying the
# first frame to every frame. The sprites move over a static background, so copying the
# first frame is already a strong baseline in L1: a model has to get the moving parts right
# to beat it.
#
# ### Keypoints against the ground truth
#
# The keypoints are learned without supervision, so keypoint $k$ has no prescribed meaning.
# The question to ask of them against the true part centres is whether they *encode* the
# pose: fit one affine map from all keypoint coordinates to the part coordinates on the
# first half of every video's frames, and measure its error on the second halves
# (`keypoint_metrics(...)["regression_error_px"]`). Compared with the same regression on the
# keypoints of the untrained detector, and with predicting each part at its mean position.
# The paper's AKD/AED metrics need external detectors (pose-evaluation,
# [issue #148](https://github.com/AliaksandrSiarohin/first-order-model/issues/148)); on
# sprites the ground truth is free.
#
# One map serves all creatures because they share one body plan: limb $k$ is attached at
# the same angle on every creature (`sprites.sprite_identity`), so "limb $k$" means the same
# thing everywhere. A third yardstick comes from the true positions themselves: keypoints
# that sit exactly on the body centre know where the creature is, but not how its body
# turns or its limbs swing (`sprites.reference_keypoints`). Learned keypoints beat it only
# by tracking more than the body.
#
# The model card holds these numbers for the held-out sprite videos of its evaluation
# (identities and motions never trained on):

# %% tags=["nbval-ignore-output"]
card = shipped_metrics("sprites-64")
held = card["heldout_videos"]
rows = [
    ("keypoint regression error, this model", card["regression_error_px"], "px"),
    ("  the same detector untrained", card["untrained_regression_error_px"], "px"),
    ("  every part at its mean position", card["baseline_error_px"], "px"),
    ("  keypoints on the body centre", card["body_only_regression_error_px"], "px"),
    ("reconstruction L1, this model", card["reconstruction_l1"], ""),
    ("  copying the first frame", card["copy_first_frame_l1"], ""),
]
print(f"{held['num_videos']} held-out videos of {held['num_frames']} frames:")
for label, value, unit in rows:
    print(f"{label:40s} {value:7.3f} {unit}")
# Properties that hold for the shipped model (the exact numbers are in the card).
assert card["regression_error_px"] < card["body_only_regression_error_px"]
assert card["reconstruction_l1"] < 0.6 * card["copy_first_frame_l1"]

# %% [markdown]
# A cheap live check of the same numbers on the four held-out videos of section 10.4
# (`sprites.evaluate_heldout`, the model card's protocol on fewer and shorter videos):

# %% tags=["nbval-ignore-output"]
untrained = build_models(sprite_config)
live = {
    "trained": evaluate_heldout(kp_detector, generator, videos, positions),
    "untrained": evaluate_heldout(
        untrained["kp_detector"], untrained["generator"], videos, positions
    ),
}
print(f"{len(videos)} held-out videos  reconstruction L1   keypoint regression error")
for name, m in live.items():
    l1, error = m["reconstruction"]["l1"], m["keypoints"]["regression_error_px"]
    print(f"{name + ' model':20s} {l1:18.3f}   {error:20.1f} px")
copy_first = live["trained"]["reconstruction"]["l1_copy_first"]
baseline = live["trained"]["keypoints"]["baseline_error_px"]
print(f"{'copy first frame':20s} {copy_first:18.3f}")
print(f"{'mean part position':20s} {'':18s}   {baseline:20.1f} px")
trained_l1, untrained_l1 = (live[n]["reconstruction"]["l1"] for n in live)
assert trained_l1 < copy_first < untrained_l1
error = live["trained"]["keypoints"]["regression_error_px"]
assert error < 0.8 * baseline

# %% [markdown]
# Where the learned keypoints sit on a frame of video B, next to the true part centres
# (x): they need not sit on the parts. What matters is that the pose can be read off
# them: the part positions regressed from the keypoints (with the linear map fitted
# above) against the true ones, over the frames of video B:

# %% tags=["hide-input"]
kp_frames = evaluation.detect_keypoints(driving_frames, kp_detector)
coef = live["trained"]["keypoints"]["coef"]
design = np.concatenate(
    [kp_frames.reshape(NUM_FRAMES, -1), np.ones((NUM_FRAMES, 1))], 1
)
regressed = (design @ coef).reshape(driving_parts.shape)
fig, axes = panels(2, height=3.2)
frame_px = kp_to_pixels(kp_frames[0], SPRITE_SIZE, SPRITE_SIZE)
parts_px = kp_to_pixels(driving_parts[0], SPRITE_SIZE, SPRITE_SIZE)
axes[0].imshow(driving_frames[0])
axes[0].scatter(*frame_px.T, c=colours, s=40, edgecolors="white")
axes[0].scatter(*parts_px.T, c="white", marker="x", s=50)
axes[0].set_title("keypoints (discs), true parts (x)")
axes[0].set_xticks([])
axes[0].set_yticks([])
for p in range(driving_parts.shape[1]):
    for axis, marker in ((0, "o"), (1, "s")):
        axes[1].plot(
            driving_parts[:, p, axis],
            regressed[:, p, axis],
            marker,
            ms=3,
            color=f"C{p}",
            label=f"part {p}" if axis == 0 else None,
        )
axes[1].plot([-1, 1], [-1, 1], "k:", lw=1)
axes[1].set_xlabel("true part coordinate ($x$: dots, $y$: squares)")
axes[1].set_ylabel("regressed from keypoints")
axes[1].legend(loc="upper left")
plt.show()

# %% [markdown]
# ## 10.6 Real faces with the published checkpoint
#
# The authors released `vox-cpk.pth.tar`: `vox-256.yaml` trained for 100 epochs on
# VoxCeleb at 256 x 256 (without the GAN term; `vox-adv-cpk` is the same model fine-tuned
# with a discriminator). The original download links have suffered from quotas and dead
# links for years (issues
# [#23](https://github.com/AliaksandrSiarohin/first-order-model/issues/23),
# [#222](https://github.com/AliaksandrSiarohin/first-order-model/issues/222),
# [#603](https://github.com/AliaksandrSiarohin/first-order-model/issues/603),
# [#611](https://github.com/AliaksandrSiarohin/first-order-model/issues/611)); the
# authors' Colab demo fetches the files from the `graphemecluster/first-order-model-demo`
# releases. The file is several hundred megabytes, so this book never downloads it on its
# own: on **Colab** set `DOWNLOAD_VOX = True` below, or put the file next to this notebook
# (or point `FOMM_VOX_CHECKPOINT` at it). The convert and animate cells run only when the
# file is present.
#
# The converter ([chapter 11](11_full_gpu_training.ipynb) uses it too) reads the original
# PyTorch pickle (legacy or zip format), maps every weight to its Keras layer (transposing
# conv kernels from `out, in, kh, kw` to `kh, kw, in, out`) and writes
# `kp_detector.weights.h5`, `generator.weights.h5` and `discriminator.weights.h5`; the
# command line does the same with
# `fomm-tutorial convert vox-cpk.pth.tar --config vox-256 --out vox-keras`.

# %%
VOX_URL = (
    "https://github.com/graphemecluster/first-order-model-demo/releases/download/"
    "checkpoints/vox-cpk.pth.tar"
)
VOX_CHECKPOINT = Path(os.environ.get("FOMM_VOX_CHECKPOINT", "vox-cpk.pth.tar"))
VOX_KERAS = Path("vox-keras")
DOWNLOAD_VOX = False  # set True on Colab to fetch the published checkpoint

if DOWNLOAD_VOX and not VOX_CHECKPOINT.exists():
    import urllib.request

    urllib.request.urlretrieve(VOX_URL, VOX_CHECKPOINT)
print("published checkpoint present:", VOX_CHECKPOINT.exists())

# %% [markdown]
# ### The media path
#
# `fomm_tutorial.media` reads the inputs as float32 RGB in [0, 1] at the model's
# `frame_shape`: the photograph is RGBA (the alpha channel is dropped), the video is H.264.
# Your own files work the same way: set `SOURCE_IMAGE` and `DRIVING_VIDEO` (or the
# environment variables `FOMM_SOURCE_IMAGE`, `FOMM_DRIVING_VIDEO`); without them the
# book's sample media are used, a face photograph and a talking-head clip
# (`reference.sample_media`: a local copy, else downloaded once). For good results crop
# both to the face, as the VoxCeleb training data were, with the face roughly in the same
# pose in the source and in the first driving frame (relative motion assumes it).

# %%
from fomm_tutorial.reference import sample_media


def media_file(variable, name):
    """Your file (environment variable ``variable``), else the book's sample media."""
    if os.environ.get(variable):
        return os.environ[variable]
    try:
        return str(sample_media(name))  # a local copy, else downloaded once
    except FileNotFoundError as error:
        print(error)
        return ""


FACE_SIZE = (256, 256)  # vox-256's frame_shape
SOURCE_IMAGE = media_file("FOMM_SOURCE_IMAGE", "source.png")
DRIVING_VIDEO = media_file("FOMM_DRIVING_VIDEO", "driving.mp4")
have_media = (
    bool(SOURCE_IMAGE) and Path(SOURCE_IMAGE).exists() and Path(DRIVING_VIDEO).exists()
)
if have_media:
    face_source = media.read_image(SOURCE_IMAGE, size=FACE_SIZE)
    face_driving = media.read_video(DRIVING_VIDEO, size=FACE_SIZE)
    assert face_driving.shape[1:] == face_source.shape == (*FACE_SIZE, 3)
    print(
        f"source {face_source.shape}, driving {face_driving.shape}, float32 in [0, 1]"
    )
else:
    print("No sample media here: set SOURCE_IMAGE and DRIVING_VIDEO to your own files.")

# %% [markdown]
# The inputs: the source photograph and a few frames of the driving video.

# %% tags=["hide-input"]
if have_media:
    picks = np.linspace(0, len(face_driving) - 1, 3).astype(int)
    image_grid(
        [face_source, *face_driving[picks]],
        ["source"] + [f"driving, frame {t}" for t in picks],
    )
    plt.show()

# %% [markdown]
# With the published checkpoint the next cell animates the photograph with the driving
# video (relative motion, adapted scale). Without it, nothing is shown: the small
# random checkpoint cannot animate a face (its output is a flat grey image), and the
# published weights cannot be fetched in this book's offline build; section 10.7
# animates a real face with a model trained by this book.

# %%
if VOX_CHECKPOINT.exists() and have_media:
    from fomm_tutorial.checkpoint import convert_checkpoint
    from fomm_tutorial.config import load_config

    vox_config = load_config("vox-256")
    if not (VOX_KERAS / "generator.weights.h5").exists():
        convert_checkpoint(str(VOX_CHECKPOINT), vox_config, str(VOX_KERAS))
    vox = animation.load_models(vox_config, VOX_KERAS)
    face_result, face_kps = make_animation(
        face_source,
        face_driving,
        vox["kp_detector"],
        vox["generator"],
        relative=True,
        adapt_scale=True,
        batch_size=BATCH_SIZE,
        progress=False,
        return_keypoints=True,
    )
    # driving | result, every second frame (a lighter GIF)
    face_movie = np.concatenate([face_driving, face_result], axis=2)[::2]
    show_animation(face_movie, fps=12, width=512)
else:
    print("Not animated here (no vox-cpk.pth.tar): on Colab set DOWNLOAD_VOX = True.")
    print("Section 10.7 animates a real face with the model trained by this book.")

# %% [markdown]
# The same in one command (it writes an mp4 at the driving video's frame rate;
# `--side-by-side` writes source | driving | result):
#
# ```
# fomm-tutorial convert vox-cpk.pth.tar --config vox-256 --out vox-keras
# fomm-tutorial animate --config vox-256 --checkpoint vox-keras \
#     --source source.png --driving driving.mp4 --out result.mp4 --relative --adapt-scale
# ```
#
# `--checkpoint` also accepts the original `.pth.tar` directly (it is converted in memory).
#
# ## 10.7 A real face, trained by this book
#
# Without the published checkpoint, the book still has a real face to animate: the
# package ships `talking-head-128`, the full model of the paper (10 keypoints with
# Jacobians, occlusion map) trained with the `Trainer` of
# [chapter 9](09_training_loop.ipynb) on **one** real clip, the sample talking-head
# video of section 10.6 at $128 \times 128$, on its first frames only.
# [Chapter 7](07_generator.ipynb) (section 7.8) traced two of its frames through the
# generator. `heldout_clip` splits the clip as the model was trained: frame 0 is the
# source, the frames after the training range were never seen in training. The model
# card, `MODEL_CARD.md` in `pretrained_dir("talking-head-128")`, gives the command that
# reproduces it, the training time and the held-out numbers below.
#
# ### Held-out self-reenactment
#
# The card's protocol is section 10.5's reconstruction on frames the model never saw:
# the source is frame 0, every held-out frame drives it with **absolute** keypoints
# (source and driving show the same person), and the score is the mean L1 against the
# real frame, next to copying the source to every frame. `evaluation.reconstruction`
# runs it (one `make_animation(..., relative=False)` pass over the held-out frames) and
# returns the predictions too, which the animation below reuses:

# %% tags=["nbval-ignore-output"]
face_model = load_pretrained("talking-head-128")
clip = heldout_clip("talking-head-128")
heldout = clip["heldout"]
face_card = shipped_metrics("talking-head-128")
live_face = evaluation.reconstruction(
    [heldout],
    face_model["kp_detector"],
    face_model["generator"],
    batch_size=BATCH_SIZE,
    source=clip["source"],
    return_predictions=True,
)
self_reenactment = np.clip(live_face["predictions"][0], 0, 1)
last = clip["first"] + len(heldout) - 1
print(f"held-out frames {clip['first']}-{last} ({len(heldout)} frames), source frame 0")
print(f"{'mean L1':30s} {'computed here':>14s} {'model card':>11s}")
face_rows = [
    ("this model", live_face["l1"], face_card["reconstruction_l1"]),
    (
        "copying the source",
        live_face["l1_copy_first"],
        face_card["copy_first_frame_l1"],
    ),
]
for label, here, card_value in face_rows:
    print(f"{label:30s} {here:14.4f} {card_value:11.4f}")
    assert abs(here - card_value) < 2e-3, (label, here, card_value)
face_ratio = live_face["l1"] / live_face["l1_copy_first"]
print(f"{'ratio to copying':30s} {face_ratio:14.3f} ", end="")
print(f"{face_card['reconstruction_ratio']:11.3f}")
assert abs(face_ratio - face_card["reconstruction_ratio"]) < 0.01
assert live_face["l1"] < live_face["l1_copy_first"]

# %% [markdown]
# The numbers computed here agree with the card's: the model reconstructs frames it
# never saw with a fraction of the error of copying the source (the ratio printed
# above; the exact values change with each release of the weights).
#
# ### A person the model never saw
#
# Now the demo's situation: the source is the sample photograph of section 10.6, a
# different person, driven by the same held-out frames with **relative** motion and
# adapted scale (section 10.1), as `demo.py` would do it.

# %% tags=["nbval-ignore-output"]
stranger = media.read_image(sample_media("source.png"), size=heldout.shape[1:3])
new_identity = make_animation(
    stranger,
    heldout,
    face_model["kp_detector"],
    face_model["generator"],
    relative=True,
    adapt_scale=True,
    batch_size=BATCH_SIZE,
    progress=False,
)
new_identity = np.clip(new_identity, 0, 1)
# Detail kept: sharpness of the results divided by that of the real images.
kept_self = evaluation.sharpness(self_reenactment) / evaluation.sharpness(heldout)
kept_new = evaluation.sharpness(new_identity) / evaluation.sharpness(stranger)
kept_first = evaluation.sharpness(new_identity[0]) / evaluation.sharpness(stranger)
print(f"detail kept, the trained person: {kept_self:.2f}")
print(f"detail kept, the new person:     {kept_new:.2f}")
print(f"detail kept, the new person's first frame (no motion): {kept_first:.2f}")
assert new_identity.shape == heldout.shape and np.isfinite(new_identity).all()
assert kept_new < kept_self

# %% [markdown]
# Both results, every sixth held-out frame (an embedded GIF at the model's 128
# pixels; it loops): the driving frames, the trained person's frame 0 driven by them,
# and the new person's photograph driven by them.

# %% tags=["remove-input", "nbval-ignore-output"]
GIF_STEP = 6  # every sixth frame: a light GIF
gap = np.ones((*heldout.shape[:2], 2, 3), np.float32)
face_movie = np.concatenate(
    [heldout, gap, self_reenactment, gap, new_identity], axis=2
)[::GIF_STEP]
show_animation(
    face_movie,
    fps=media.video_fps(sample_media("driving.mp4")) / GIF_STEP,
    titles=["held-out driving", "frame 0, absolute", "new person, relative"],
)

# %% [markdown]
# The new person's photograph next to its results at a few times:

# %% tags=["hide-input"]
face_times = np.linspace(0, len(heldout) - 1, 4).round().astype(int)
image_grid(
    [stranger, *new_identity[face_times[1:]]],
    ["new person $S$"]
    + [f"driven by frame {clip['first'] + t}" for t in face_times[1:]],
)
plt.show()

# %% [markdown]
# What a one-person model does with a new identity: the **layout** survives (hair,
# background, the suit, their colours, the head's position), and the head moves a
# little with the driving frames, but the **face** dissolves into a blur, even in the
# first frame, where relative motion asks for no motion at all.
# The motion part of the model transfers (the keypoints and the dense motion only need
# to find a head), the appearance part does not: the encoder and decoder have only ever
# had to re-draw one face, so they cannot re-draw another and keep less of its detail
# than of the face they were trained on (the two "detail kept" ratios). Re-drawing any
# face is what the published model buys with the thousands of identities of VoxCeleb.

# %% [markdown]
# ## 10.8 What each part buys: the ablation on sprites
#
# The paper takes its model apart on Tai-Chi-HD (its Table 1): a **baseline** (single-scale
# L1 reconstruction, no occlusion map, keypoints without Jacobians), the multi-scale
# **pyramid** loss, the **occlusion** map, **Jacobians without the Jacobian equivariance
# term** (eq. 12) and the **full** model. Full is best on every measure, and Jacobians
# without eq. (12) do worse than no Jacobians at all: without the constraint nothing tells
# a Jacobian to describe the motion around its keypoint.
#
# The sprites can ask the same question with a better ruler: their renderer draws the
# truth of a *transfer* too. Creature A moving with creature B's motion is
# `sprite_video(seed=<B's motion>, identity_seed=<A>)`, an image no real dataset can give.
# Each variant below is the sprites-64 model with one switch changed (its config ships:
# `sprites-64-baseline`, `sprites-64-pyramid`, `sprites-64-occlusion`,
# `sprites-64-jacobian-no-eq12`, `sprites-64-full`), trained on the same data with the
# same seed for the same number of steps, and scored on held-out creatures
# (`pretrained.sprite_ablation`, reproduced by `make sprites-ablation`). The sprite model
# of this chapter began as the occlusion row's configuration, trained longer, and ended
# as the full model (the end of this section).
#
# * **keypoints**: the regression error of section 10.5 (one map for all videos, px);
# * **reconstruction**: every frame from the first one, as a multiple of copying it;
# * **transfer, absolute**: A in its own first pose driven by B with absolute keypoints;
# * **transfer, relative**: A in B's first pose driven by B's relative motion (the demo's
#   mode); both as a multiple of copying the source to every frame, scored against the
#   truth.
#
# Lower is better everywhere:

# %%
ablation = shipped_ablation("sprites-64")
protocol = ablation["protocol"]
print(
    f"{ablation['step']} steps at batch 8, seed 0; held-out: {protocol['num_videos']} "
    f"videos of {protocol['num_frames']} frames, {protocol['num_pairs']} transfer pairs"
)
print(
    f"(the shipped sprites-64 of sections 10.4-10.5: {card['training']['step']} steps)"
)
display(Markdown(ablation_table(ablation)))

# %% tags=["hide-input"]
measures = {
    "keypoints (px)": lambda r: r["regression_error_px"],
    "reconstruction": lambda r: r["reconstruction"]["ratio"],
    "transfer, absolute": lambda r: r["absolute"]["ratio"],
    "transfer, relative": lambda r: r["relative"]["ratio"],
}
variants = list(ablation["rows"])
fig, axes = panels(len(measures), ncols=len(measures), height=3.0)
for i, (ax, (title, value)) in enumerate(zip(axes, measures.items())):
    values = [value(ablation["rows"][v]) for v in variants]
    ax.bar(range(len(variants)), values, color=[f"C{j}" for j in range(len(variants))])
    ax.set_xticks(range(len(variants)), variants, rotation=60, ha="right")
    ax.set_title(title)
    if i:  # the ratios: 1 = no better than copying the source
        ax.axhline(1.0, color="k", ls=":", lw=1)
        ax.set_ylim(0, 1.1)
axes[1].set_ylabel("x copying the source (dotted: 1)")
plt.show()

# %% [markdown]
# One held-out transfer, every variant side by side (relative motion, every fourth frame;
# the truth is what the renderer draws for A with B's motion):

# %% tags=["hide-input"]
clips = ablation["videos"]
gap = np.ones_like(clips["driving"][:, :, :2])
panels_t = [clips["driving"], clips["truth"]] + [clips[v] for v in variants]
strip = np.concatenate(sum(([p, gap] for p in panels_t), [])[:-1], axis=2)
# every fourth frame: seven panels of 32 frames would weigh most of a page
show_animation(strip[::4], fps=2, scale=2, titles=["driving B", "truth"] + variants)

# %% [markdown]
# Reading the table against the paper. The **multi-scale loss** improves the keypoints,
# the reconstruction and the relative transfer (absolute transfer stays level), and the
# **occlusion map** then improves every measure, as in the paper: the pyramid gives the
# keypoints a signal from coarse, large displacements, and the occlusion map lets the
# generator paint what the warp cannot bring. **Jacobians without eq. (12)** reconstruct
# and transfer best of all here, although nothing makes their Jacobians local motions
# (the model card lists their determinants, of both signs); the paper found this row
# *worse* than no Jacobians. The **full** model, with eq. (12), is worse than that row on
# every measure, and on the keypoints and absolute transfer worse than no Jacobians: on
# the sprites the Jacobian equivariance term pulls the keypoints onto the body, the one
# part large enough for a local affine map to be measured reliably, and leaves limbs
# without a keypoint (counted in the model card). The sprites' limbs are three pixels
# wide; the paper's Tai-Chi bodies are not.

# %%
rows_ = ablation["rows"]
ratios = {
    v: [rows_[v][m]["ratio"] for m in ("reconstruction", "absolute", "relative")]
    for v in variants
}
kp_error = {v: rows_[v]["regression_error_px"] for v in variants}
# the claims of the text above
assert kp_error["pyramid"] < kp_error["baseline"]
assert ratios["pyramid"][0] < ratios["baseline"][0]
assert ratios["pyramid"][2] < ratios["baseline"][2]
assert abs(ratios["pyramid"][1] - ratios["baseline"][1]) < 0.02  # level
assert kp_error["occlusion"] < kp_error["pyramid"]
assert all(a < b for a, b in zip(ratios["occlusion"], ratios["pyramid"]))
best = {m: min(variants, key=lambda v: ratios[v][m]) for m in range(3)}
assert set(best.values()) == {"jacobian-no-eq12"}
assert kp_error["full"] > kp_error["jacobian-no-eq12"]
assert all(a < b for a, b in zip(ratios["jacobian-no-eq12"], ratios["full"]))
assert kp_error["full"] > kp_error["occlusion"]
assert ratios["full"][1] > ratios["occlusion"][1]
print("the text's reading of the table holds")

# %% [markdown]
# The trouble is the order of things. Trained from scratch, eq. (12) acts while the
# keypoints are still looking for the parts. The sprite model of this chapter therefore
# learns in two stages: first the keypoints, without Jacobians (the occlusion row's
# configuration, trained longer); then their Jacobians, started from the first stage's
# weights (`fomm-tutorial train --init-from`, the Jacobian head at the identity) with
# eq. (12) switched on and the keypoints frozen (`--freeze-keypoints`): only the Jacobian
# head and the generator learn. Frozen, because when everything learns, a keypoint with a
# Jacobian can move its part from anywhere on it, nothing pins where it sits, and the
# keypoints slide along the parts (the model card's notes: their regression error grows
# by half). Its model card compares it with the model it started from, on the held-out
# protocol of the table:

# %%
stages = {
    f"first stage ({card['training']['init_from']['step']} steps, no Jacobians)": card[
        "init_metrics"
    ],
    f"shipped (+ {card['training']['step']} steps with Jacobians)": headline_metrics(
        card
    ),
}
print(f"{'':44s} keypoints  reconstr.  absolute  relative")
for name, m in stages.items():
    print(
        f"{name:44s} {m['keypoints']:6.2f} px {m['reconstruction']:9.2f} x "
        f"{m['absolute']:7.2f} x {m['relative']:7.2f} x"
    )
before, after = stages.values()
assert sprite_config["model_params"]["common_params"]["estimate_jacobian"]
assert all(after[m] < before[m] for m in ("reconstruction", "absolute", "relative"))
assert abs(after["keypoints"] - before["keypoints"]) < 0.01  # the same keypoints

# %% [markdown]
# The keypoints are the first stage's, and so is their error; reconstruction and both
# transfers improve. Not all of that is the Jacobians': the first stage kept its
# learning rate constant, and the second one divides it by ten twice. In the model
# card's notes a shorter second stage without Jacobians improves about as much as the
# same one with them (more on absolute transfer): on these sprites, ten keypoints for
# four parts already describe most of the motion without Jacobians (exercise 6 takes
# keypoints away).

# %% [markdown]
# ## Summary
#
# * **Absolute** motion hands the driving keypoints to the generator and copies the driving
#   object's shape; **relative** motion adds the driving keypoints' change since the first
#   frame to the source keypoints, and composes the Jacobians as
#   $J^{D_t}(J^{D_0})^{-1}J^S$ so that the local motion applied to the source is the
#   driving video's own; **adapting the scale** multiplies the movement by the ratio of the
#   keypoints' convex-hull sizes.
# * `make_animation` detects the source keypoints and encodes the source once, then runs
#   batches of driving frames through one compiled step; the result does not depend on the
#   batch size.
# * The shipped `sprites-64` model animates a creature it never saw with the motion of
#   another: relative motion keeps the source's build, absolute motion copies the driver's.
#   Its learned Jacobians turn with the limbs they sit on, part of the way, measured
#   against the renderer's part angles.
# * `evaluation.reconstruction` is the original frame-weighted L1 of reconstructing each
#   test video from its first frame; on sprites the learned keypoints can also be scored
#   against the true part positions, with an untrained detector and the mean position as
#   baselines.
# * `fomm-tutorial convert` and `fomm-tutorial animate` do the same from the command line
#   with the published checkpoints, whose weights reproduce the original PyTorch outputs.
# * The shipped `talking-head-128` model, trained on the first frames of one real clip,
#   reconstructs the held-out frames from frame 0 with less error than copying it (the
#   model card's numbers, recomputed live); driving a person it never saw, it moves the
#   photograph's layout but blurs the face: one identity teaches motion, not faces.
# * The paper's ablation retrained on sprites (section 10.8), with transfers scored against
#   the renderer's truth: the multi-scale loss and the occlusion map help as in the paper;
#   unlike the paper, the Jacobian equivariance term pulls the sprites' keypoints onto the
#   body when it acts from the start, and Jacobians without it do best at equal steps.
#   Switched on once the keypoints cover the parts, with the keypoints frozen, it gives
#   the shipped first-order model, which keeps the first stage's keypoints and
#   reconstructs and transfers better than the zeroth-order model it started from.
#
# The [last chapter](11_full_gpu_training.ipynb) trains the same model at full size on a
# GPU.
#
# ## Exercises
#
# 1. Animate identity A with `relative=True, adapt_scale=False` and with
#    `adapt_scale=True`: print `kps["scale"]` for a few pairs of identities. When does the
#    scale adaptation matter for sprites, whose bodies all have about the same size?
# 2. Start the driving video in the middle (`driving_frames[16:]`): how does the relative
#    result change, and why (the assumption of a similar initial pose)?
# 3. Compute the reconstruction L1 of section 10.5 on the *moving pixels only* (where the
#    frame differs from the first frame by more than 0.05). How do the trained model and
#    the copy-the-first-frame baseline compare there?
# 4. In section 10.7, drive frame 0 with the held-out frames with **relative** motion
#    instead of absolute, and compute the L1 against the real frames: better or worse
#    than the card's absolute protocol, and why (the first driving frame is not
#    frame 0)?
# 5. Train the full row of section 10.8 with a smaller Jacobian equivariance weight
#    (`train_params.loss_weights.equivariance_jacobian` 1 instead of 10, in a copy of
#    `sprites-64-full`) and score it with `pretrained.sprite_ablation`: do the keypoints
#    stay spread over the limbs, and do the Jacobians stay local motions?
# 6. Repeat the two stages of section 10.8 with four keypoints
#    (`model_params.common_params.num_kp: 4` in copies of `sprites-64-occlusion` and
#    `sprites-64`), and the second stage once more without Jacobians. With one keypoint
#    per part, does the first-order model transfer better than the zeroth-order one?
