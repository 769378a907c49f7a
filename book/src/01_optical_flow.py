# %% [markdown]
# # 1. Optical flow: how pixels move between two images
#
# The [First Order Motion Model](https://arxiv.org/abs/2003.00196) (FOMM, Siarohin et
# al., NeurIPS 2019) animates a source image $S$ by **moving its pixels** so that the
# result looks like the driving frame $D$. Everything it predicts (keypoints, local
# affine transformations, the dense deformation) ends up as one object: a **dense motion
# field** that says, for every pixel of the output, where to fetch its colour in $S$.
# Before the network learns such a field without supervision, this chapter estimates one
# the classical way, with **optical flow**:
#
# 1. brightness constancy and its first-order linearisation $I_x u + I_y v + I_t = 0$,
#    derived with sympy (a first-order Taylor expansion: the theme of [chapter
#    2](02_taylor_series.ipynb));
# 2. image gradients by convolution;
# 3. warping with a **backward** flow, and why FOMM predicts $\mathcal{T}_{S\leftarrow
#    D}$;
# 4. a dense **Lucas-Kanade** estimator in TensorFlow: windowed least squares,
#    Gauss-Newton iterations with warping, and a coarse-to-fine pyramid;
# 5. visualisation (colour wheel, arrows) and the **end-point error** (EPE);
# 6. evaluation on real data with ground truth: real photographs warped by known smooth
#    flows and the Middlebury *motorcycle* stereo pair.
#
# The code of this chapter is in
# [`fomm_tutorial/optical_flow.py`](https://github.com/fomm-tutorial/fomm-tutorial/blob/main/fomm_tutorial/optical_flow.py).

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
import matplotlib.pyplot as plt
import numpy as np
import sympy as sp
from ipywidgets import Dropdown, FloatSlider, IntSlider, interact
from skimage import data as skdata

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
# stderr, whatever TF_CPP_MIN_LOG_LEVEL says: import it and run a first op with stderr
# silenced.
with quiet_stderr():
    import tensorflow as tf
    from fomm_tutorial.runtime import configure
    from fomm_tutorial import optical_flow as of

    rt = configure(seed=0)
    tf.zeros(1) + 1  # the first op loads the remaining kernels
use_book_style()

# %%
# Parameters: small images on a CPU (the sizes of this page), larger ones on a GPU.
SIZE = rt.choose(cpu=96, gpu=256)  # side of the synthetic test images
STEREO_SCALE = rt.choose(cpu=4, gpu=2)  # downsampling of the 500 x 741 pair
WINDOW, LEVELS, ITERATIONS = 15, 3, 5  # Lucas-Kanade settings
print(f"device: {rt.device} | image: {SIZE} | stereo scale: 1/{STEREO_SCALE}")

# %% [markdown]
# ## 1.1 Brightness constancy, linearised
#
# Let $I(x, y, t)$ be the brightness of a video. A scene point at $(x, y)$ at time $t$
# moves with velocity $(u, v)$; **brightness constancy** assumes it keeps its
# brightness:
#
# $$I(x + u\,\delta t,\; y + v\,\delta t,\; t + \delta t) = I(x, y, t).$$
#
# One equation, two unknowns $(u, v)$, and $I$ enters non-linearly. Expanding the left
# side to **first order** in $\delta t$ (a Taylor expansion, [chapter
# 2](02_taylor_series.ipynb)) turns it into a linear equation.
# `brightness_constancy_derivation` lets sympy do the chain rule:

# %% tags=["remove-input"]
show_source(of.brightness_constancy_derivation)

# %%
d = of.brightness_constancy_derivation()
x, y, t, u, v, dt = d["symbols"]
I = d["I"](x, y, t)
I_x, I_y, I_t = (sp.diff(I, var) for var in (x, y, t))
assert sp.simplify(d["constraint"] - (I_x * u + I_y * v + I_t)) == 0
# Show sympy's partial derivatives with the shorthand I_x, I_y, I_t.
short = {I_x: sp.Symbol("I_x"), I_y: sp.Symbol("I_y"), I_t: sp.Symbol("I_t")}
moved = d["constancy"].lhs
first_order = sp.latex(d["first_order"].subs(short)) + r" + O(\delta_t^2)"
show_equations(
    [
        (moved, d["constancy"].rhs),
        (moved, first_order),
        (0, d["constraint"].subs(short)),
    ]
)

# %% [markdown]
# Here $I_x = \partial I/\partial x$, $I_y$ and $I_t$ are the partial derivatives at
# $(x, y, t)$ that sympy's chain rule produced. The first line is the assumption, the
# second the first-order expansion; subtracting $I(x, y, t)$, dividing by $\delta t$ and
# letting $\delta t \to 0$ gives the third, the **optical-flow constraint**
#
# $$I_x u + I_y v + I_t = 0 \quad\Longleftrightarrow\quad
# \nabla I \cdot (u, v) = -I_t .$$
#
# It only fixes the component of the motion along the gradient (the *aperture problem*):
# along an edge, any motion parallel to the edge is invisible. Lucas and Kanade add the
# missing equations by assuming the flow is **constant in a small window** around each
# pixel.
#
# A quick sanity check: a pattern that translates exactly, $I = \sin(x + 2t) + \cos(y +
# 3t)$, moves with $(u, v) = (-2, -3)$ and satisfies the constraint exactly. sympy
# substitutes the pattern into the constraint and evaluates the three derivatives:

# %%
pattern = sp.sin(x + 2 * t) + sp.cos(y + 3 * t)
residual = d["constraint"].subs(I, pattern).subs({u: -2, v: -3}).doit()
assert sp.simplify(residual) == 0
show_equations(
    [
        ("I_x", sp.diff(pattern, x)),
        ("I_y", sp.diff(pattern, y)),
        ("I_t", sp.diff(pattern, t)),
        ("u I_x + v I_y + I_t", sp.simplify(residual)),
    ]
)

# %% [markdown]
# ## 1.2 Image gradients by convolution
#
# On a pixel grid the derivatives become finite differences, i.e. convolutions.
# `image_gradients` uses the central difference $[-\tfrac12, 0, \tfrac12]$ along each
# axis (a depthwise convolution, one kernel per channel) after symmetric padding:

# %% tags=["remove-input"]
show_source(of.image_gradients)

# %% [markdown]
# The central difference of a linear function is exact, so a linear ramp $I = 0.03\,x -
# 0.05\,y$ checks both the kernels and their signs:

# %%
ramp = tf.constant(
    np.add.outer(-0.05 * np.arange(8), 0.03 * np.arange(10))[None, ..., None],
    tf.float32,
)
rx, ry = of.image_gradients(ramp)
print(f"ramp I_x = {float(rx[0, 3, 4, 0]):.4f} (expected 0.0300)")
print(f"ramp I_y = {float(ry[0, 3, 4, 0]):.4f} (expected -0.0500)")
assert np.allclose(rx.numpy()[0, :, 1:-1], 0.03, atol=1e-6)
assert np.allclose(ry.numpy()[0, 1:-1], -0.05, atol=1e-6)

# %% [markdown]
# On a photograph
# ([`skimage.data.astronaut`](https://scikit-image.org/docs/stable/api/skimage.data.html)),
# $I_x$ responds to vertical edges and $I_y$ to horizontal ones (red: brightness grows
# along the axis, blue: it falls):


# %%
def load(image, size):
    """A uint8 ``(H, W, 3)`` photograph as a ``(1, h, w, 3)`` image in [0, 1]."""
    image = image[None].astype(np.float32) / 255.0
    return tf.image.resize(image, size, method="area")


astronaut = load(skdata.astronaut(), (SIZE, SIZE))
grey = of.to_grayscale(astronaut)
ix, iy = of.image_gradients(grey)

# %% tags=["hide-input"]
limit = float(np.percentile(np.abs(tf.concat([ix, iy], 0)), 99))  # contrast
fig, axes = panels(3)
axes[0].imshow(grey[0, ..., 0], cmap="gray")
axes[0].set_title("grey image $I$")
for ax, img, title in zip(axes[1:], [ix, iy], ["$I_x$", "$I_y$"]):
    ax.imshow(img[0, ..., 0], cmap="RdBu_r", vmin=-limit, vmax=limit)
    ax.set_title(title)
for ax in axes:
    ax.set_axis_off()
plt.show()

# %% [markdown]
# ## 1.3 Warping with a backward flow
#
# We write flows as `(B, H, W, 2)` tensors in **pixels**, `flow[..., 0] = u` along $x$
# (columns) and `flow[..., 1] = v` along $y$ (rows); [chapter
# 3](03_coordinate_grids.ipynb) pins these conventions down. `warp_image(image, flow)`
# computes
#
# $$\text{out}(p) = \text{image}\big(p + w(p)\big),$$
#
# one bilinear lookup per **output** pixel, with the package's `grid_sample` ([chapter
# 4](04_resampler.ipynb)). This is a *backward* warp: the flow lives on the output grid
# and points into the input.

# %% tags=["remove-input"]
show_source(of.warp_image)

# %% [markdown]
# ### Why FOMM predicts $\mathcal{T}_{S\leftarrow D}$
#
# FOMM's generator must produce an image aligned with the driving frame $D$. For every
# pixel $z$ of that output it needs to know where the same object point lies in the
# source: $\mathcal{T}_{S\leftarrow D}(z)$. Then `grid_sample(S, T_{S<-D})` fills every
# output pixel exactly once. The **forward** map $\mathcal{T}_{D\leftarrow S}$ would
# tell where each source pixel goes; splatting pixels forward leaves holes and
# collisions and is not easily differentiable. So the model predicts the backward map
# (section 3 of the [paper](https://arxiv.org/abs/2003.00196); [chapter
# 6](06_dense_motion.ipynb) builds it), the same convention as `lucas_kanade(image0,
# image1)` below: it returns $w$ with $\text{image1}(p + w(p)) \approx
# \text{image0}(p)$, so with image0 $= D$ and image1 $= S$, $p + w(p) =
# \mathcal{T}_{S\leftarrow D}(p)$ and `warp_image(S, w)` rebuilds $D$.

# %% [markdown]
# ## 1.4 Lucas-Kanade: windowed least squares
#
# Around pixel $p$, every pixel $q$ of a $W \times W$ window gives one constraint
# $I_x(q) u + I_y(q) v = -I_t(q)$. The least-squares solution solves the $2 \times 2$
# normal equations
#
# $$\begin{pmatrix}\sum I_x^2 & \sum I_x I_y\\ \sum I_x I_y & \sum I_y^2\end{pmatrix}
# \begin{pmatrix}u\\ v\end{pmatrix} = -\begin{pmatrix}\sum I_x I_t\\ \sum I_y I_t
# \end{pmatrix}.$$
#
# With $a_{11} = \sum I_x^2$, $a_{12} = \sum I_x I_y$, $a_{22} = \sum I_y^2$, the right
# side $(b_1, b_2)$ and a regulariser $\lambda$ on the diagonal, sympy confirms the
# closed-form solution that the code uses (Cramer's rule):

# %%
a11, a12, a22, b1, b2 = sp.symbols("a11 a12 a22 b1 b2", real=True)
lam = sp.Symbol("lambda", positive=True)
A = sp.Matrix([[a11 + lam, a12], [a12, a22 + lam]])
solution = A.solve(sp.Matrix([b1, b2]))
det = (a11 + lam) * (a22 + lam) - a12**2
u_code = ((a22 + lam) * b1 - a12 * b2) / det  # as in lucas_kanade_step
v_code = ((a11 + lam) * b2 - a12 * b1) / det
code_solution = sp.Matrix([u_code, v_code])
assert sp.simplify(solution - code_solution) == sp.zeros(2, 1)
show_equations([("u", u_code), ("v", v_code)])

# %% [markdown]
# The window sums are box filters (`avg_pool2d` with stride 1: means rather than sums,
# which only rescales $\lambda$). A small $\lambda$ on the diagonal keeps flat regions
# (no gradient, no information) at zero update instead of dividing by zero. Because the
# constraint is a linearisation, one solve is only accurate for motions below about a
# pixel, so the estimator
#
# * **iterates** (Gauss-Newton): warp image1 by the current flow, recompute $I_t$ and
#   the gradients, solve for a correction; each correction is capped at `max_step` pixel
#   and the flow is lightly smoothed, which keeps the per-pixel iteration convergent;
# * works **coarse to fine**: at half resolution a motion of 8 pixels is 4 pixels, at a
#   quarter 2; the coarse estimate, upsampled and doubled, initialises the next finer
#   level.
#
# One Gauss-Newton step, then the pyramid around it:

# %% tags=["remove-input"]
show_source(of.lucas_kanade_step, of.lucas_kanade)

# %% [markdown]
# ## 1.5 Exact translations
#
# First a motion with a known answer: warp the astronaut by a constant flow, estimate it
# back. The median is taken away from an 8-pixel border, where content leaves the frame.

# %%
print("true flow (px)    median estimate (px)   EPE (px)")
for shift in [(0.6, -0.3), (2.0, 1.0), (-4.5, 3.0)]:
    flow = tf.ones((1, SIZE, SIZE, 2)) * tf.constant(shift)
    image0 = of.warp_image(astronaut, flow)
    est = of.lucas_kanade(image0, astronaut, WINDOW, LEVELS, ITERATIONS)
    med = np.median(est.numpy()[0, 8:-8, 8:-8], axis=(0, 1))
    epe = of.endpoint_error(est, flow, border=8)
    print(
        f"({shift[0]:+.2f}, {shift[1]:+.2f})    "
        f"({med[0]:+.3f}, {med[1]:+.3f})       {epe:.3f}"
    )
    assert epe < 0.05 and np.allclose(med, shift, atol=0.02)

# %% [markdown]
# ## 1.6 Visualising a flow
#
# Two standard pictures: **arrows** on a sparse grid, and a **colour code** with hue =
# direction and saturation = magnitude (white = no motion). The colour wheel is the key:
# rightward motion is red, downward ($+y$) yellow-green, leftward cyan, upward violet.

# %% tags=["hide-input"]
gt_rot = of.synthetic_flow("rotation", SIZE, SIZE, 8.0)
fig, axes = panels(3)
axes[0].imshow(of.color_wheel(101), extent=(-1, 1, 1, -1))
axes[0].set_title("colour key")
axes[0].set_xlabel("$u$")
axes[0].set_ylabel("$v$ (down)")
axes[1].imshow(of.flow_to_color(gt_rot))
axes[1].set_title("rotation by 8°: colours")
axes[2].imshow(np.clip(astronaut[0], 0, 1))
of.plot_flow_arrows(axes[2], gt_rot, step=SIZE // 12, color="yellow", width=0.006)
axes[2].set_title("... and arrows")
for ax in axes[1:]:
    ax.set_axis_off()
plt.show()

# %% [markdown]
# ## 1.7 Real images, known smooth flows
#
# Real photographs (astronaut, Chelsea the cat) warped by known flows: a translation, a
# rotation, a zoom and a sinusoidal field (`synthetic_flow`, shown below in the colour
# code). `image0 = warp_image(image, flow)` moves the content, and `lucas_kanade(image0,
# image)` must return `flow`.

# %% tags=["hide-input"]
MOTIONS = [("translation", 3.0), ("rotation", 5.0), ("zoom", 0.08), ("smooth", 3.0)]
fig = image_grid(
    [of.flow_to_color(of.synthetic_flow(k, SIZE, SIZE, a)) for k, a in MOTIONS],
    [f"{k} ({a:g})" for k, a in MOTIONS],
)
plt.show()

# %% [markdown]
# The **end-point error** is the mean Euclidean distance between estimated and true
# vectors, $\mathrm{EPE} = \operatorname{mean}_p \lVert w(p) -
# w_{\mathrm{true}}(p)\rVert$, here ignoring an 8-pixel border. The last column is the
# EPE of predicting no motion.

# %%
chelsea = load(skdata.chelsea(), (SIZE, SIZE))
synthetic_epe = {}
print("image      motion       EPE (px)   zero flow (px)")
for img_name, img in [("astronaut", astronaut), ("chelsea", chelsea)]:
    for kind, amount in MOTIONS:
        gt = of.synthetic_flow(kind, SIZE, SIZE, amount)
        image0 = of.warp_image(img, gt)
        est = of.lucas_kanade(image0, img, WINDOW, LEVELS, ITERATIONS)
        synthetic_epe[img_name, kind] = of.endpoint_error(est, gt, border=8)
        zero = of.endpoint_error(tf.zeros_like(gt), gt, border=8)
        epe = synthetic_epe[img_name, kind]
        print(f"{img_name:10s} {kind:12s} {epe:8.3f}   {zero:8.3f}")

# %% [markdown]
# ## 1.8 A real stereo pair with ground truth
#
# `skimage.data.stereo_motorcycle()` is the Middlebury 2014 *motorcycle* pair
# (rectified) with its **disparity** map $d$: the point at column $x$ of the left image
# is at column $x - d$ of the right one. With image0 = left and image1 = right the
# backward flow is therefore $u = -d$, $v = 0$. The disparity is `inf` where no match
# exists (occlusions); `stereo_flow` masks those pixels (and any block containing one
# when downsampling) and divides the disparity by the scale. We verify the sign before
# using it: warping the right image with the ground truth must rebuild the left one, and
# the opposite sign must not.

# %%
left, right, disparity = skdata.stereo_motorcycle()
size = (left.shape[0] // STEREO_SCALE, left.shape[1] // STEREO_SCALE)
left, right = load(left, size), load(right, size)
gt_stereo, mask = of.stereo_flow(disparity, STEREO_SCALE)
valid_u = gt_stereo[..., 0][mask]
print(f"pair {size[0]} x {size[1]}, valid pixels {mask.mean():.3f}")
print(f"disparity {-valid_u.max():.2f} .. {-valid_u.min():.2f} px")
err_good = tf.abs(of.warp_image(right, gt_stereo) - left).numpy()[mask].mean()
err_bad = tf.abs(of.warp_image(right, -gt_stereo) - left).numpy()[mask].mean()
print("mean |warp(right, u) - left|:")
print(f"u = -d: {err_good:.4f}, u = +d: {err_bad:.4f}")
assert err_good < 0.5 * err_bad

# %%
est_stereo = of.lucas_kanade(left, right, WINDOW, LEVELS, ITERATIONS)
epe_stereo = of.endpoint_error(est_stereo, gt_stereo, mask)
epe_zero = of.endpoint_error(tf.zeros_like(gt_stereo), gt_stereo, mask)
print(f"EPE: Lucas-Kanade {epe_stereo:.2f} px, zero flow {epe_zero:.2f} px")

# %% tags=["hide-input"]
vmax = float(np.abs(valid_u).max())
row_height = 3.5 * size[0] / size[1] + 0.3  # half the width, image aspect, title
fig, axes = panels(4, ncols=2, height=row_height)
axes[0].imshow(np.clip(left[0], 0, 1))
axes[0].set_title("left (image0)")
error_map = of.endpoint_error_map(est_stereo, gt_stereo)[0] * mask[0]
im = axes[1].imshow(error_map, cmap="magma", vmax=5)
axes[1].set_title("end-point error (px, clipped at 5)")
fig.colorbar(im, ax=axes[1], shrink=0.8)
u_true = np.where(mask[0], gt_stereo[0, ..., 0], np.nan)
axes[2].imshow(u_true, cmap="viridis", vmin=-vmax, vmax=0)
axes[2].set_title("true $u = -d$ (white: invalid)")
im = axes[3].imshow(est_stereo[0, ..., 0], cmap="viridis", vmin=-vmax, vmax=0)
axes[3].set_title("Lucas-Kanade $u$")
fig.colorbar(im, ax=axes[3], shrink=0.8)
for ax in axes:
    ax.set_axis_off()
plt.show()

# %% [markdown]
# ### Check cell
#
# The bounds below were **measured** on the CPU sizes (stereo pair at 1/4 resolution:
# 1.16 px against 8.88 px for zero flow; synthetic warps of 96 x 96 images: 0.02-0.05
# px) with some margin. Lucas-Kanade's remaining stereo error sits at depth
# discontinuities, where a window straddles two motions, and in weakly textured regions.

# %%
worst = max(synthetic_epe.values())
print(f"stereo EPE {epe_stereo:.2f} px < 1.4 px")
print(f"stereo EPE {epe_stereo:.2f} px < 0.2 x zero-flow EPE {epe_zero:.2f} px")
print(f"worst synthetic EPE {worst:.3f} px < 0.15 px")
assert epe_stereo < 1.4 and epe_stereo < 0.2 * epe_zero, epe_stereo
assert worst < 0.15, synthetic_epe

# %% [markdown]
# ## 1.9 The window size
#
# The window is Lucas-Kanade's one modelling choice: the flow is assumed constant inside
# it. Below, the astronaut rotated by 10° and the error maps of four windows on one
# colour scale (without the 8-pixel border that the EPE leaves out). A $3 \times 3$
# window has too few equations where the image is flat or has a single edge (aperture
# problem); a $31 \times 31$ window averages a rotation whose flow changes across it, so
# the error grows away from the centre.


# %% tags=["hide-input"]
def estimate(motion, amount, window):
    """True and estimated flow of the astronaut under a synthetic motion; EPE."""
    gt = of.synthetic_flow(motion, SIZE, SIZE, amount)
    image0 = of.warp_image(astronaut, gt)
    est = of.lucas_kanade(image0, astronaut, window, LEVELS, ITERATIONS)
    return gt, est, of.endpoint_error(est, gt, border=8)


WINDOWS = [3, 7, 15, 31]
fig, axes = panels(len(WINDOWS))
for ax, window in zip(axes, WINDOWS):
    gt, est, epe = estimate("rotation", 10.0, window)
    error_map = of.endpoint_error_map(est, gt)[0, 8:-8, 8:-8]  # as the EPE
    im = ax.imshow(error_map, cmap="magma", vmin=0, vmax=0.3)
    ax.set_title(f"$W = {window}$: EPE {epe:.3f}")
    ax.set_axis_off()
fig.colorbar(im, ax=axes, shrink=0.8, label="error (px)")
plt.show()

# %% [markdown]
# ### Widget: choose a motion and a window
#
# Pick a synthetic motion of the astronaut, its strength (pixels, degrees, or percent of
# zoom) and the window: the panels show the true flow, the estimate (arrows and colours
# share one scale) and the error map. Below, two strengths of each motion with the
# $15 \times 15$ window: a translation's flow is the same everywhere, a rotation's circles
# the centre, and a zoom's (the backward flow of a magnification) points towards it.
# Lucas-Kanade's error grows with the strength, most of all for the $15°$ rotation near
# the border, where the flow changes most across a window.


# %% tags=["hide-input"]
UNITS = {"translation": " px", "rotation": "°", "zoom": "%"}


def flow_figure(motion="rotation", amount=10.0, window=15):
    """True flow, Lucas-Kanade's estimate and its error map for one motion."""
    gt, est, epe = estimate(
        motion, amount if motion != "zoom" else amount / 100, window
    )
    scale = float(tf.reduce_max(tf.norm(gt, axis=-1))) + 1e-6
    fig, axes = panels(3)
    for ax, f, title in [(axes[0], gt, "true flow"), (axes[1], est, "Lucas-Kanade")]:
        ax.imshow(of.flow_to_color(f, max_flow=scale))
        of.plot_flow_arrows(ax, f, step=SIZE // 12, width=0.006)
        ax.set_title(f"{title}: {motion} {amount:g}{UNITS[motion]}")
    error_map = of.endpoint_error_map(est, gt)[0, 8:-8, 8:-8]
    axes[2].imshow(error_map, cmap="magma", vmin=0, vmax=0.3)
    axes[2].set_title(f"error: EPE {epe:.3f} px")
    for ax in axes:
        ax.set_axis_off()
    return fig


SETTINGS = [("translation", 2), ("translation", 5), ("rotation", 5), ("rotation", 15)]
SETTINGS += [("zoom", 5), ("zoom", 15)]
static_slider(
    {
        f"{motion} {amount}{UNITS[motion]}": flow_figure(motion, amount)
        for motion, amount in SETTINGS
    },
    label="motion",
    control="buttons",
    initial="rotation 15°",
)

# %% [markdown]
# > **Live widget.** The figure above switches between a few precomputed settings; run the
# > notebook (Colab button at the top, or Jupyter) to change every parameter freely.


# %% tags=["hide-input", "remove-output", "nbval-ignore-output"]
def show_flow(motion="rotation", amount=10.0, window=15):
    flow_figure(motion, amount, window)
    plt.show()


_ = interact(
    show_flow,
    motion=Dropdown(options=["translation", "rotation", "zoom"], value="rotation"),
    amount=FloatSlider(value=10.0, min=-20.0, max=20.0, step=0.5),
    window=IntSlider(value=15, min=3, max=31, step=2),
)

# %% [markdown]
# ## Summary
#
# * Brightness constancy, expanded to first order, gives the optical-flow constraint
#   $I_x u + I_y v + I_t = 0$: one equation per pixel for two unknowns.
# * Lucas-Kanade assumes a constant flow in a window and solves $2 \times 2$ least
#   squares per pixel; Gauss-Newton iterations with warping and a coarse-to-fine pyramid
#   handle motions of several pixels.
# * We measure accuracy with the end-point error: a few hundredths of a pixel on real
#   images under known smooth flows, about 1.16 px on the motorcycle stereo pair at 1/4
#   resolution (zero flow: 8.88 px), where depth edges and untextured areas break the
#   window assumption.
# * Flows here, like FOMM's $\mathcal{T}_{S\leftarrow D}$, are **backward**: defined on
#   the output grid and pointing into the image to sample, so a warp is one bilinear
#   lookup per output pixel.
#
# FOMM replaces the window assumption with a learned one: the motion near each keypoint
# is approximated to first order by a Taylor expansion, the subject of [chapter
# 2](02_taylor_series.ipynb). The original implementation is
# [AliaksandrSiarohin/first-order-model](https://github.com/AliaksandrSiarohin/first-order-model);
# it never computes optical flow, but its dense motion is used exactly like the flows
# here.
#
# ## Exercises
#
# 1. **Aperture problem.** Make an image of vertical stripes (`np.sin(0.5 * x)` tiled
#    down the rows), translate it by $(2, 1)$ pixels with `warp_image` and run
#    `lucas_kanade`. Which component of the flow is recovered, and which stays near 0?
#    Compute the eigenvalues of the $2 \times 2$ matrix of section 1.4 to explain why.
# 2. **Why a pyramid?** Repeat section 1.5 with `levels=1` and growing shifts. At which
#    shift does the estimate break down, and how does that relate to the first-order
#    expansion of section 1.1?
# 3. **Backward is not minus forward.** For the rotation of section 1.6, warp the
#    astronaut with `gt_rot`, then try to undo it with `-gt_rot`. Measure the error
#    against the original and explain why the inverse of a backward flow is not its
#    negation (hint: the two flows live on different grids).
# 4. **Gradient filters.** Replace the central difference by a Sobel filter (smoothed
#    across the other axis) in a copy of `image_gradients` and compare the EPEs of
#    section 1.7.
