# %% [markdown]
# # 3. Coordinate grids: where is a pixel?
#
# Everything that moves in the [First Order Motion
# Model](https://arxiv.org/abs/2003.00196) is a **coordinate**: keypoints, the sparse
# motions around them, the dense deformation field, the grid handed to the resampler. An
# off-by-half-a-pixel mistake in how coordinates are defined does not crash anything:
# the model still runs, the images are just slightly shifted, slightly shrunk, with dark
# borders. This chapter pins down the conventions once, so that the rest of the book can
# rely on them:
#
# 1. pixel indices vs **pixel centres**, rows/columns vs **(x, y)**;
# 2. the normalised square $[-1, 1]^2$ and `make_coordinate_grid`;
# 3. the two normalisation maps (`align_corners=True` / `False`) derived with sympy,
#    with their inverses;
# 4. Gaussian heatmaps around keypoints, `kp2gaussian`;
# 5. a check cell and a widget.
#
# The code of this chapter is in
# [`fomm_tutorial/grids.py`](https://github.com/fomm-tutorial/fomm-tutorial/blob/main/fomm_tutorial/grids.py);
# both functions follow `make_coordinate_grid` and `kp2gaussian` in the original code's
# [`modules/util.py`](https://github.com/AliaksandrSiarohin/first-order-model/blob/master/modules/util.py).

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
from ipywidgets import FloatSlider, interact

from fomm_tutorial.display import (
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
    from fomm_tutorial.grids import kp2gaussian, make_coordinate_grid

    rt = configure(seed=0)
    tf.zeros(1) + 1  # the first op loads the remaining kernels
use_book_style()

# %%
# Parameters: small on a CPU (the sizes of this page); on a GPU the model's
# 64 x 64 motion size.
HEIGHT, WIDTH = rt.choose(cpu=(24, 32), gpu=(64, 64))
NUM_KP = 3
print(f"device: {rt.device} | grid: {HEIGHT} x {WIDTH}")

# %% [markdown]
# ## 3.1 Indices, centres, rows and columns
#
# An image of height $H$ and width $W$ is an array indexed `image[row, column]`: the
# **row** $i$ runs down the height, the **column** $j$ across the width. We think of
# pixel $(i, j)$ as a unit square whose **centre** sits at the integer position $(j, i)$
# and whose edges are at $j \pm \tfrac12$ and $i \pm \tfrac12$. The whole image
# therefore covers $[-\tfrac12, W - \tfrac12] \times [-\tfrac12, H - \tfrac12]$ in pixel
# units.
#
# Geometry, however, is written in **(x, y)** order: $x$ is the horizontal coordinate
# (it follows the column $j$), $y$ the vertical one (it follows the row $i$). So the
# point $(x, y)$ lives in `image[y, x]`: the order flips between the two worlds. FOMM,
# like `torch.grid_sample` and `tfa.image.resampler`, always stores coordinates as
# `[..., 0] = x`, `[..., 1] = y` ([chapter 1](01_optical_flow.ipynb) does the same with
# flows in pixels).
#
# Pixel units depend on the resolution: keypoints found at 64 x 64 would have to be
# rescaled for 256 x 256. FOMM avoids that by working in the **normalised square** $[-1,
# 1]^2$, where $-1$ and $+1$ are the centres of the first and last pixel along each
# axis:

# %% tags=["remove-input"]
show_source(make_coordinate_grid)

# %% [markdown]
# Line by line: the two `linspace` calls place $W$ equally spaced x values and $H$ y
# values from $-1$ to $1$ (both ends included, so the step is $2/(W-1)$, which is why
# sizes below 2 are rejected); `tile` repeats x down the rows and y across the columns;
# `stack(..., axis=-1)` puts x first. The result has shape `(H, W, 2)` and `grid[i, j] =
# (x_j, y_i)`:

# %%
grid = make_coordinate_grid(4, 5).numpy()
print("shape:", grid.shape)
print("x = grid[..., 0] (varies along the width):")
print(np.round(grid[..., 0], 4))
print("y = grid[..., 1] (varies along the height):")
print(np.round(grid[..., 1], 4))

# %% [markdown]
# The same at the chapter's grid size: the two channels as images, and the pixel centres
# as points in the square.

# %% tags=["hide-input"]
grid = make_coordinate_grid(HEIGHT, WIDTH).numpy()
fig, axes = panels(3, height=2.6)
for ax, k, name in zip(axes[:2], (0, 1), ("$x$ = grid[..., 0]", "$y$ = grid[..., 1]")):
    im = ax.imshow(grid[..., k], cmap="coolwarm", vmin=-1, vmax=1)
    ax.set_title(name)
    ax.set_xlabel("column $j$")
    ax.set_ylabel("row $i$")
fig.colorbar(im, ax=axes[:2], shrink=0.7)
axes[2].scatter(grid[..., 0].ravel(), grid[..., 1].ravel(), s=3)
axes[2].set_xlim(-1.15, 1.15)
axes[2].set_ylim(1.15, -1.15)  # y grows downwards, as the rows do
axes[2].add_patch(plt.Rectangle((-1, -1), 2, 2, fill=False, color="C3"))
axes[2].set_title("pixel centres")
axes[2].set_xlabel("$x$")
axes[2].set_ylabel("$y$")
axes[2].set_aspect("equal")
plt.show()

# %% [markdown]
# Note that the square is **not** the image's aspect ratio: a non-square image is
# squeezed into $[-1, 1]^2$, so a step of 0.1 in x and 0.1 in y are different numbers of
# pixels when $H \neq W$.
#
# ## 3.2 The normalisation map, derived
#
# A resampler has to turn a normalised coordinate $g$ back into a pixel coordinate $p$.
# Both are related by an affine map $p = a g + b$ fixed by two conditions, and there are
# two common choices of conditions (the `align_corners` flag of
# `torch.nn.functional.grid_sample`):
#
# * `align_corners=True`: $g = \pm 1$ are the **centres** of the first and last pixels,
#   $p(-1) = 0$, $p(1) = W - 1$. This is `make_coordinate_grid`'s convention, and what
#   torch 1.0 (which trained the published checkpoints) did.
# * `align_corners=False`: $g = \pm 1$ are the outer **edges** of the image, $p(-1) =
#   -\tfrac12$, $p(1) = W - \tfrac12$ (torch's default since 1.3).
#
# sympy solves for $a$ and $b$ and inverts each map (subscripts: the value of
# `align_corners`):

# %%
g, p, W, a, b, i = sp.symbols("g p W a b i", real=True)
maps, inverses = {}, {}
ends = {True: (0, W - 1), False: (-sp.Rational(1, 2), W - sp.Rational(1, 2))}
for align, (left, right) in ends.items():
    sol = sp.solve([sp.Eq(a * -1 + b, left), sp.Eq(a * 1 + b, right)], [a, b])
    maps[align] = sp.simplify(sol[a] * g + sol[b])  # p(g); inverses: g(p)
    inverses[align] = sp.simplify(sp.solve(sp.Eq(p, maps[align]), g)[0])
rows = []
for align in (True, False):
    sub = rf"_{{\text{{{align}}}}}"
    rows.append((f"p{sub}(g)", sp.factor(maps[align])))
    rows.append((f"g{sub}(p)", sp.factor(inverses[align])))
show_equations(rows)

# %% [markdown]
# With `align_corners=True`, pixel $i$ has $g = 2i/(W-1) - 1$: exactly
# `make_coordinate_grid`. With `align_corners=False` the pixel centre $i$ sits at $g =
# (2i + 1)/W - 1$, a different grid. What happens if we build a grid with
# `make_coordinate_grid` (corners aligned) and then sample with `align_corners=False`,
# which is what the [original
# code](https://github.com/AliaksandrSiarohin/first-order-model) does when run with a
# modern torch? Compose the two maps:

# %%
fomm_grid_value = 2 * i / (W - 1) - 1  # make_coordinate_grid, pixel i
sampled_at = sp.factor(maps[False].subs(g, fomm_grid_value))
offset = sp.factor(sp.simplify(sampled_at - i))
offset_first = sp.simplify(offset.subs(i, 0))
offset_last = sp.simplify(offset.subs(i, W - 1))
assert offset_first == -sp.Rational(1, 2) and offset_last == sp.Rational(1, 2)
show_equations(
    [
        (r"p_{\text{False}}\big(\tfrac{2i}{W - 1} - 1\big)", sampled_at),
        (r"p_{\text{False}} - i", offset),
        (r"(p_{\text{False}} - i)\big|_{i = 0}", offset_first),
        (r"(p_{\text{False}} - i)\big|_{i = W - 1}", offset_last),
    ]
)

# %% [markdown]
# The "identity" grid is stretched by $W/(W-1)$ about the centre: half a pixel too far
# out at both ends, whatever the size. At the model's 64 x 64 motion resolution that is
# half a feature pixel, two pixels of the 256 x 256 image; [chapter
# 4](04_resampler.ipynb) shows the dark border it produces. The package always uses
# `align_corners=True`, which matches both `make_coordinate_grid` and the released
# weights.
#
# ## 3.3 Check: code against derivation
#
# The cell asserts that `make_coordinate_grid` is the inverse map $g(p)$ of
# `align_corners=True` evaluated on integer pixel centres, that the forward map takes it
# back to the integers, and that the composed `align_corners=False` offset is
# $\mp\tfrac12$ at the ends.

# %%
for h, w in [(4, 5), (HEIGHT, WIDTH), (7, 2)]:
    grid = make_coordinate_grid(h, w).numpy().astype(np.float64)
    gx = sp.lambdify(p, inverses[True].subs(W, w))(np.arange(w))
    gy = sp.lambdify(p, inverses[True].subs(W, h))(np.arange(h))
    assert np.allclose(grid[0, :, 0], gx, atol=1e-6)
    assert np.allclose(grid[:, 0, 1], gy, atol=1e-6)
    assert np.allclose(grid[..., 0], grid[:1, :, 0])  # x constant down columns
    assert np.allclose(grid[..., 1], grid[:, :1, 1])  # y constant along rows
    back = sp.lambdify(g, maps[True].subs(W, w))(grid[0, :, 0])
    assert np.allclose(back, np.arange(w), atol=1e-5)
    off = sp.lambdify(i, (sampled_at - i).subs(W, w))(np.arange(w))
    assert np.isclose(off[0], -0.5) and np.isclose(off[-1], 0.5)
    print(f"{h} x {w}: grid = g_True(i), p_True(grid) = i, offsets -0.5, +0.5")

# %% [markdown]
# ## 3.4 Keypoint heatmaps: `kp2gaussian`
#
# The dense-motion network ([chapter 6](06_dense_motion.ipynb)) and the discriminator do
# not see keypoints as numbers but as images: one **unnormalised Gaussian** per keypoint
# $p_k$,
#
# $$ H_k(z) = \exp\left(-\frac{\lVert z - p_k \rVert^2}{2 \sigma^2}\right), \qquad
# \sigma^2 = 0.01, $$
#
# evaluated at every point $z$ of `make_coordinate_grid`. The peak is exactly 1 at the
# keypoint (not a probability density: it does not sum to 1). $\sigma = 0.1$ normalised
# units is $0.1 \cdot (W - 1)/2$ pixels: about 3.15 px at 64 x 64.

# %% tags=["remove-input"]
show_source(kp2gaussian)

# %% [markdown]
# The broadcasting does all the work: the grid gets shape `(1, H, W, 1, 2)`, the
# keypoints `(B, 1, 1, K, 2)`, their difference `(B, H, W, K, 2)`; the squared norm sums
# the last axis and the result `(B, H, W, K)` keeps keypoints as channels (NHWC), where
# the original had `(B, K, H, W)`. Three random keypoints:

# %%
rng = np.random.default_rng(0)
kp_value = tf.constant(rng.uniform(-0.7, 0.7, (1, NUM_KP, 2)), tf.float32)
heatmaps = kp2gaussian(kp_value, (HEIGHT, WIDTH)).numpy()
print("heatmaps:", heatmaps.shape)
print("max per keypoint:", np.round(heatmaps.max(axis=(0, 1, 2)), 4))
print(f"sigma in pixels along x: {0.1 * (WIDTH - 1) / 2:.4f}")

# %% tags=["hide-input"]
# imshow extent in normalised units: pixel centres at -1 .. 1, edges half a step beyond.
extent = (
    -1 - 1 / (WIDTH - 1),
    1 + 1 / (WIDTH - 1),
    1 + 1 / (HEIGHT - 1),
    -1 - 1 / (HEIGHT - 1),
)
fig, axes = panels(NUM_KP + 1)
for k in range(NUM_KP):
    axes[k].imshow(heatmaps[0, :, :, k], extent=extent, vmin=0, vmax=1, cmap="magma")
    axes[k].plot(*kp_value[0, k].numpy(), "c+", ms=12)
    kx, ky = kp_value[0, k].numpy()
    axes[k].set_title(f"$H_{k}$: $p_{k}$ = ({kx:.2f}, {ky:.2f})")
axes[-1].imshow(heatmaps[0].max(axis=-1), extent=extent, vmin=0, vmax=1, cmap="magma")
axes[-1].set_title("max over $k$")
for ax in axes:
    ax.set_xlabel("$x$")
axes[0].set_ylabel("$y$")
plt.show()

# %% [markdown]
# Checks on the heatmaps: a keypoint placed on a pixel centre gives exactly 1 there, the
# profile through the peak is the closed-form Gaussian, and the map is symmetric about
# the keypoint.

# %%
grid = make_coordinate_grid(HEIGHT, WIDTH).numpy()
row, col = HEIGHT // 3, 2 * WIDTH // 3
kp_on_centre = grid[row, col][None, None]  # (1, 1, 2)
hm = kp2gaussian(kp_on_centre, (HEIGHT, WIDTH)).numpy()[0, :, :, 0]
assert np.unravel_index(hm.argmax(), hm.shape) == (row, col)
assert np.isclose(hm[row, col], 1.0)
profile = np.exp(-0.5 * (grid[row, :, 0] - grid[row, col, 0]) ** 2 / 0.01)
assert np.allclose(hm[row], profile, atol=1e-6)
d = min(col, WIDTH - 1 - col)
left, right = hm[row, col - d : col], hm[row, col + d : col : -1]
assert np.allclose(left, right, atol=1e-6)  # symmetric about the keypoint
print(f"peak {hm[row, col]:.4f} at row {row}, column {col}")
print("profile through the peak = closed-form Gaussian (within 1e-6)")

# %% [markdown]
# ## 3.5 The variance, and keypoints near the border
#
# The heatmap's width in pixels is $\sigma\,(W-1)/2$. Below, one keypoint near the right
# border at four variances: the Gaussian grows, and past the border it is simply cut off
# (nothing is renormalised, so a keypoint at the edge has less total "mass").


# %% tags=["hide-input"]
def plot_heatmap(ax, x, y, variance):
    """The heatmap of one keypoint (x, y) in normalised units, with its variance."""
    kp = np.array([[[x, y]]], np.float32)
    hm = kp2gaussian(kp, (HEIGHT, WIDTH), kp_variance=variance).numpy()[0, :, :, 0]
    im = ax.imshow(hm, extent=extent, vmin=0, vmax=1, cmap="magma")
    ax.plot(x, y, "c+", ms=12)
    sigma_px = np.sqrt(variance) * (WIDTH - 1) / 2
    ax.set_title(rf"$\sigma^2 = {variance:g}$: $\sigma$ = {sigma_px:.1f} px")
    ax.set_xlabel("$x$")
    return im, hm.sum()


VARIANCES = [0.003, 0.01, 0.03, 0.1]
fig, axes = panels(len(VARIANCES))
for ax, variance in zip(axes, VARIANCES):
    im, _ = plot_heatmap(ax, 0.8, -0.2, variance)
axes[0].set_ylabel("$y$")
fig.colorbar(im, ax=axes, shrink=0.6)
plt.show()

# %% [markdown]
# ### Widget: move a keypoint
#
# Drag the keypoint around the normalised square (and beyond it) and change the
# variance. Below, the keypoint moved along $x$ at $\sigma^2 = 0.01$, with the row of the
# heatmap through its peak on the right: past $x = 1$ (the centre of the last column) the
# Gaussian is cut off and the heatmap's sum (the figure's heading) shrinks.


# %% tags=["hide-input"]
def heatmap_figure(x=0.3, y=-0.2, variance=0.01):
    """One keypoint's heatmap and its sum over the grid; the row through the peak."""
    fig, axes = panels(2, height=3.0)
    im, total = plot_heatmap(axes[0], x, y, variance)
    axes[0].set_ylabel("$y$")
    fig.colorbar(im, ax=axes[0], shrink=0.8)
    kp = np.array([[[x, y]]], np.float32)
    hm = kp2gaussian(kp, (HEIGHT, WIDTH), kp_variance=variance).numpy()[0, :, :, 0]
    grid = make_coordinate_grid(HEIGHT, WIDTH).numpy()
    row = int(np.abs(grid[:, 0, 1] - y).argmin())
    axes[1].plot(grid[row, :, 0], hm[row], "o-", ms=3)
    axes[1].axvline(1.0, color="gray", lw=0.8)
    axes[1].set_xlim(-1.3, 1.3), axes[1].set_ylim(0, 1.05)
    axes[1].set_xlabel("$x$"), axes[1].set_ylabel("heatmap")
    axes[1].set_title(f"row {row} ($y = {grid[row, 0, 1]:.2f}$)")
    fig.suptitle(f"keypoint at ({x:.2f}, {y:.2f}): heatmap sum {total:.1f}")
    return fig


static_slider(
    {f"{x:+.1f}": heatmap_figure(x) for x in (-1.1, -0.5, 0.0, 0.5, 0.9, 1.1)},
    label="x",
    initial="+0.5",
)

# %% [markdown]
# > **Live widget.** The figure above switches between a few precomputed settings; run the
# > notebook (Colab button at the top, or Jupyter) to change every parameter freely.


# %% tags=["hide-input", "remove-output", "nbval-ignore-output"]
def show_heatmap(x=0.3, y=-0.2, variance=0.01):
    heatmap_figure(x, y, variance)
    plt.show()


_ = interact(
    show_heatmap,
    x=FloatSlider(value=0.3, min=-1.2, max=1.2, step=0.05),
    y=FloatSlider(value=-0.2, min=-1.2, max=1.2, step=0.05),
    variance=FloatSlider(
        value=0.01, min=0.001, max=0.1, step=0.001, readout_format=".3f"
    ),
)

# %% [markdown]
# ## Summary
#
# * Coordinates are **(x, y)** = (column, row), stored in the last axis; arrays are
#   indexed `[row, column]`.
# * `make_coordinate_grid(H, W)` returns `(H, W, 2)` pixel **centres** in $[-1, 1]$,
#   with $\pm 1$ on the centres of the border pixels: the `align_corners=True` map $p =
#   (g + 1)(W - 1)/2$.
# * `align_corners=False` maps $\pm 1$ to the image **edges**, $p = ((g + 1) W - 1)/2$;
#   used with FOMM's grids it stretches the identity by $W/(W-1)$ (half a pixel at each
#   border).
# * `kp2gaussian` turns `(B, K, 2)` keypoints into `(B, H, W, K)` Gaussian heatmaps with
#   peak 1 and $\sigma = 0.1$ normalised units.
#
# Next, [chapter 4](04_resampler.ipynb) uses these grids to **sample** an image at
# arbitrary positions, and [chapter 5](05_keypoints.ipynb) turns heatmaps the other way
# round, into keypoints.
#
# ## Exercises
#
# 1. **Half a pixel.** With the maps of section 3.2, compute where `align_corners=False`
#    puts the grid point $g = 0$ for an even and for an odd $W$. Is it a pixel centre?
#    What about `align_corners=True`?
# 2. **Aspect ratio.** For a $64 \times 128$ image, how many pixels is $\sigma = 0.1$
#    along $x$ and along $y$? Plot one heatmap and describe its shape; how could
#    `kp2gaussian` be changed to give round heatmaps in pixels?
# 3. **Mass at the border.** Using `plot_heatmap`'s second return value, plot the sum of
#    a heatmap against the keypoint's $x$ from $-1.2$ to $1.2$. Where does it fall to
#    half of its value at the centre?
