# %% [markdown]
# # 4. The resampler: reading an image between its pixels
#
# FOMM moves pixels by **backward warping**: for every pixel of the output it computes *where
# to look* in the input (a sampling grid in the normalised coordinates of
# [chapter 3](03_coordinate_grids.ipynb)) and reads the input there. Those positions almost
# never fall on pixel centres, so the reader has to **interpolate**, and, because the whole
# model is trained end to end, it has to be **differentiable** with respect to the image *and*
# the positions: the gradient with respect to the grid is how the keypoints learn to move.
#
# The original code ([first-order-model](https://github.com/AliaksandrSiarohin/first-order-model),
# [paper](https://arxiv.org/abs/2003.00196)) calls `torch.nn.functional.grid_sample`; the
# earlier TensorFlow ports used `tfa.image.resampler`, which died with tensorflow-addons. This
# chapter builds the replacement, the package module
# [`fomm_tutorial/resampler.py`](https://github.com/fomm-tutorial/fomm-tutorial/blob/main/fomm_tutorial/resampler.py):
#
# * 4.1-4.2: linear, then bilinear interpolation, derived with sympy and asserted against the
#   code;
# * 4.3: the implementation, line by line;
# * 4.4: forward vs backward warping on a real photograph;
# * 4.5-4.6: what `align_corners` and the padding modes change;
# * 4.7: checks against torch; 4.8: a widget.

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
import importlib.util

import matplotlib.pyplot as plt
import numpy as np
import skimage.data
import skimage.transform
import sympy as sp
from ipywidgets import FloatSlider, interact

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

    from fomm_tutorial import resampler as resampler_module
    from fomm_tutorial.grids import make_coordinate_grid
    from fomm_tutorial.resampler import grid_sample, resampler, warp_shared_source
    from fomm_tutorial.runtime import configure

    rt = configure(seed=0)
    tf.zeros(1) + 1  # the first op loads the remaining kernels
use_book_style()

# %%
# Parameters: small on a CPU (the sizes of this page), full size on a GPU.
SIZE = rt.choose(cpu=128, gpu=256)
astronaut = skimage.transform.resize(
    skimage.data.astronaut(), (SIZE, SIZE), anti_aliasing=True
)
astronaut = astronaut.astype(np.float32)  # (H, W, 3) in [0, 1]
print("device:", rt.device, "| image:", astronaut.shape)

# %% [markdown]
# ## 4.1 Linear interpolation
#
# Between two samples $f_0$ at $x = 0$ and $f_1$ at $x = 1$, the linear interpolant is the
# polynomial of degree 1 through both points. Let sympy find it from the two conditions
# $f(0) = f_0$, $f(1) = f_1$:

# %%
t, f0, f1, c0, c1 = sp.symbols("t f_0 f_1 c_0 c_1", real=True)
line = c0 + c1 * t
coeffs = sp.solve([sp.Eq(line.subs(t, 0), f0), sp.Eq(line.subs(t, 1), f1)], [c0, c1])
lerp = sp.expand(line.subs(coeffs))
assert sp.expand(lerp - ((1 - t) * f0 + t * f1)) == 0
show_equations(
    [
        ("f(t)", (1 - t) * f0 + t * f1),
        (r"\frac{df}{dt}", sp.diff(lerp, t)),
    ]
)

# %% [markdown]
# The value is a **weighted average** of the two neighbours with weights $1 - t$ and $t$,
# where $t = x - \lfloor x \rfloor$ is the fractional part; its derivative with respect to the
# position is the difference of the neighbours, $f_1 - f_0$, constant between two samples and
# discontinuous at each sample (torch and this package take the right-hand side there).
#
# ## 4.2 Bilinear interpolation
#
# In 2-D we interpolate along $x$ on the two rows around the point (fractional parts $u$
# along $x$, $v$ along $y$; $f_{rc}$ is the sample in row $r$, column $c$), then along $y$
# between the two results. sympy derives the four weights, checks that they sum to 1 and that
# the order (x first or y first) does not matter, and differentiates with respect to the
# position:

# %%
u, v = sp.symbols("u v", real=True)  # fractional parts along x and y
f00, f01, f10, f11 = sp.symbols("f_00 f_01 f_10 f_11", real=True)  # f_{row, column}


def along_x(left, right):
    return lerp.subs({f0: left, f1: right, t: u})


bilinear = sp.expand(lerp.subs({f0: along_x(f00, f01), f1: along_x(f10, f11), t: v}))
order_swapped = sp.expand(
    lerp.subs(
        {
            f0: lerp.subs({f0: f00, f1: f10, t: v}),
            f1: lerp.subs({f0: f01, f1: f11, t: v}),
            t: u,
        }
    )
)
assert sp.expand(bilinear - order_swapped) == 0  # x first == y first
weights = {f: bilinear.coeff(f) for f in (f00, f01, f10, f11)}
products = {f00: (1 - u) * (1 - v), f01: u * (1 - v), f10: (1 - u) * v, f11: u * v}
assert all(sp.expand(weights[f] - products[f]) == 0 for f in weights)
assert sp.simplify(sum(weights.values())) == 1
d_du, d_dv = sp.diff(bilinear, u), sp.diff(bilinear, v)
assert sp.expand(d_du - ((1 - v) * (f01 - f00) + v * (f11 - f10))) == 0
assert sp.expand(d_dv - ((1 - u) * (f10 - f00) + u * (f11 - f01))) == 0

# %% tags=["remove-input"]
# The results asserted above, written in the order of the prose.
show_equations(
    [
        ("f(u, v)", sum(products[f] * f for f in products)),
        (
            r"\frac{\partial f}{\partial u}",
            r"(1 - v)(f_{01} - f_{00}) + v\,(f_{11} - f_{10})",
        ),
        (
            r"\frac{\partial f}{\partial v}",
            r"(1 - u)(f_{10} - f_{00}) + u\,(f_{11} - f_{01})",
        ),
        (r"\sum \text{weights}", sp.simplify(sum(weights.values()))),
    ]
)

# %% [markdown]
# Four weights, products of the 1-D weights, summing to 1. The derivative with respect to the
# $x$ position is the $x$-difference of the neighbours averaged over the two rows with weights
# $1 - v$, $v$. Both formulas are checked against the code next: sample a random 2 x 2 image
# with `resampler` (pixel coordinates) at random points in the unit square and compare value
# and position gradient with the sympy expressions.

# %%
rng = np.random.default_rng(0)
patch = rng.random((1, 2, 2, 1)).astype(np.float64)  # patch[0, row, col, 0]
points = rng.random((1, 6, 2))  # (x, y) = (u, v) in [0, 1)
subs_img = {
    f00: patch[0, 0, 0, 0],
    f01: patch[0, 0, 1, 0],
    f10: patch[0, 1, 0, 0],
    f11: patch[0, 1, 1, 0],
}
value_fn = sp.lambdify((u, v), bilinear.subs(subs_img))
du_fn = sp.lambdify((u, v), d_du.subs(subs_img))
dv_fn = sp.lambdify((u, v), d_dv.subs(subs_img))
warp = tf.constant(points)
with tf.GradientTape() as tape:
    tape.watch(warp)
    values = resampler(patch, warp)[0, :, 0]
    total = tf.reduce_sum(values)
grad = tape.gradient(total, warp).numpy()[0]
expected = np.array([value_fn(x, y) for x, y in points[0]])
expected_du = np.array([du_fn(x, y) for x, y in points[0]])
expected_dv = np.array([dv_fn(x, y) for x, y in points[0]])
assert np.allclose(values.numpy(), expected, atol=1e-12)
assert np.allclose(grad[:, 0], expected_du, atol=1e-12)
assert np.allclose(grad[:, 1], expected_dv, atol=1e-12)
print("  u     v   |      value      |      df/du      |      df/dv")
print("            |   code   sympy  |   code   sympy  |   code   sympy")
rows = zip(points[0], values.numpy(), expected, grad, expected_du, expected_dv)
for (x, y), val, ref, (gx, gy), rx, ry in rows:
    print(
        f"{x:.2f}  {y:.2f}  | {val:7.4f} {ref:7.4f} | {gx:7.4f} {rx:7.4f} "
        f"| {gy:7.4f} {ry:7.4f}"
    )
print("all equal to 1e-12 (float64)")

# %% [markdown]
# ## 4.3 The implementation
#
# The kernel works in **pixel** coordinates. Per axis, `_axis_taps` finds the two neighbours
# of each position and their 1-D weights, and zeroes the weight of a neighbour that lies
# outside the image (with zero padding an outside pixel contributes nothing); `_bilinear`
# combines the two axes:

# %% tags=["remove-input"]
show_source(resampler_module._axis_taps, resampler_module._bilinear)

# %% [markdown]
# * `tf.floor` gives the left/top neighbour; `p - f0` is the fractional part ($u$ or $v$
#   above).
# * The weights are multiplied by the 0/1 masks `m0`, `m1` of the neighbours that lie inside
#   the image; the indices are then clamped only to make the gather legal: the zero weight
#   removes the value read there.
# * `_bilinear` forms the flat index `row * W + column` of each of the four corners and
#   fetches them with `tf.gather(..., batch_dims=1)` from the image flattened to
#   `(B, H*W, C)`.
# * The four weights are the products of the per-axis weights, exactly the sympy weights of
#   section 4.2, and the output is the weighted sum of the four corners.
# * The gradient is written by hand (`tf.custom_gradient`): the image receives `g` times each
#   corner's weight through **one** scatter-add (`unsorted_segment_sum` over the four corners
#   of every image in the batch), and the positions get the sympy derivatives
#   $\partial f/\partial u$, $\partial f/\partial v$ derived above, where an outside
#   neighbour's weight derivative is 0 (the masks). Same numbers as automatic
#   differentiation, fewer intermediate tensors. (Measured alternative: a single gather of the
#   four corners is no faster eagerly and five times slower under XLA.)
#
# `grid_sample` adds the normalised-to-pixel map of [chapter 3](03_coordinate_grids.ipynb)
# and the padding modes:

# %% tags=["remove-input"]
show_source(grid_sample)

# %% [markdown]
# * `align_corners=True`: $p = (g + 1)(W - 1)/2$; `False`: $p = ((g + 1)W - 1)/2$
#   ([chapter 3](03_coordinate_grids.ipynb)).
# * `border` clamps the pixel coordinate into $[0, W - 1]$: outside positions repeat the
#   border pixel. `reflection` folds the coordinate back into the image, about the border
#   pixel centres (`align_corners=True`) or about the image edges (`False`), then clamps.
# * Half-precision inputs are computed in float32 and cast back: float16 cannot even
#   represent pixel indices above 2048 exactly, and the weights need the precision.
#
# `resampler(data, warp)` is the same kernel called directly with pixel coordinates, the
# semantics of `tfa.image.resampler` (the package's unit tests compare it with outputs of
# the real tensorflow-addons 0.23).
#
# One more entry point serves the dense motion network of
# [chapter 6](06_dense_motion.ipynb), which warps *one* source image with $K + 1$ grids at
# once: instead of copying the image $K + 1$ times, `warp_shared_source` stacks the grids
# along the height into one tall grid and samples the single image with it:

# %% tags=["remove-input"]
show_source(warp_shared_source)

# %% [markdown]
#
# ## 4.4 Forward vs backward warping
#
# Suppose we want to rotate the astronaut by 20 degrees about the image centre. **Forward
# warping** pushes every source pixel to where the rotation sends it, rounding to the nearest
# output pixel. **Backward warping** asks, for every output pixel, where it comes from (the
# inverse rotation) and samples the source there with `grid_sample`.


# %%
def rotation(angle_deg, scale=1.0, shear=0.0):
    """2 x 2 matrix acting on normalised (x, y): rotation, then scale, then x-shear."""
    a = np.deg2rad(angle_deg)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return np.array([[1.0, shear], [0.0, 1.0]]) @ (scale * rot)


def backward_warp(image, matrix, align_corners=True, padding_mode="zeros"):
    """Output pixel at z shows the input at matrix^-1 z: a backward warp."""
    h, w = image.shape[:2]
    identity = make_coordinate_grid(h, w).numpy()  # (h, w, 2)
    # Row vectors: each (x, y) -> A^-1 (x, y) is (x, y) @ A^-T.
    grid = identity @ np.linalg.inv(matrix).T.astype(np.float32)
    return grid_sample(image[None], grid[None], align_corners, padding_mode)[0].numpy()


def forward_warp(image, matrix):
    """Splat every input pixel to round(matrix z): holes and collisions."""
    h, w = image.shape[:2]
    identity = make_coordinate_grid(h, w).numpy().reshape(-1, 2)
    target = identity @ matrix.T
    col = np.rint((target[:, 0] + 1) / 2 * (w - 1)).astype(int)
    row = np.rint((target[:, 1] + 1) / 2 * (h - 1)).astype(int)
    ok = (col >= 0) & (col < w) & (row >= 0) & (row < h)
    out = np.zeros_like(image)
    hit = np.zeros(image.shape[:2], bool)
    out[row[ok], col[ok]] = image.reshape(-1, image.shape[-1])[ok]
    hit[row[ok], col[ok]] = True
    return out, hit


def ok_count(matrix, size):
    """How many source pixels land inside the output under the forward warp."""
    z = make_coordinate_grid(size, size).numpy().reshape(-1, 2) @ matrix.T
    p = np.rint((z + 1) / 2 * (size - 1))
    return int(((p >= 0) & (p < size)).all(-1).sum())


A = rotation(20.0, scale=1.1)
forward, hit = forward_warp(astronaut, A)
backward = backward_warp(astronaut, A)
# Output pixels whose backward position lies fully inside the source.
inside = backward_warp(np.ones_like(astronaut[..., :1]), A)[..., 0] > 0.999
holes = 100 * (1 - hit[inside].mean())
collided = 100 * (1 - hit.sum() / ok_count(A, SIZE))
print(f"forward warp:  {holes:.2f} % of the output pixels inside the image are holes,")
print(f"               {collided:.2f} % of the splatted source pixels collided")
print(
    f"backward warp: {100 * inside.mean():.2f} % of the output pixels read the source,"
)
print("               0 holes by construction")

# %%
titles = ["source", "forward warp (splatting)", "backward warp (grid_sample)"]
image_grid([astronaut, forward, backward], titles)
plt.show()

# %% [markdown]
# Forward warping leaves a moiré of **holes** (output pixels no source pixel landed on; with a
# magnification there are necessarily more outputs than inputs) and, when the warp shrinks
# the image, **collisions** (several sources on one output, the last one wins; none here, at
# scale 1.1). Backward warping has neither: every output pixel is computed exactly once, from
# a well-defined position, by a differentiable function. That is why FOMM predicts the
# *backward* motion $\mathcal{T}_{S \leftarrow D}$ (source position for each driving
# position) rather than the forward one ([chapter 1](01_optical_flow.ipynb) met the same
# choice for optical flow).
#
# ## 4.5 What `align_corners` changes
#
# FOMM builds its grids with `make_coordinate_grid` (corners aligned). Sampled with
# `align_corners=True`, the identity grid reproduces the image exactly. Sampled with
# `align_corners=False` (torch's default since 1.3, so the original code run today),
# [chapter 3](03_coordinate_grids.ipynb) showed that pixel $i$ is read at
# $i\,W/(W-1) - \tfrac12$: the content shrinks slightly and, at the border, half of each
# bilinear tap falls outside the image and reads zero.

# %%
small = skimage.transform.resize(astronaut, (16, 16), anti_aliasing=True)
small = small.astype(np.float32)
ident = make_coordinate_grid(16, 16).numpy()[None]
same = grid_sample(small[None], ident, align_corners=True)[0].numpy()
shifted = grid_sample(small[None], ident, align_corners=False)[0].numpy()
all_ones = np.ones((1, 16, 16, 1), np.float32)
ones = grid_sample(all_ones, ident, align_corners=False)[0, ..., 0].numpy()
err_true, err_false = np.abs(same - small).max(), np.abs(shifted - small).max()
print(f"align_corners=True : max |identity warp - image| = {err_true:.6f}")
print(f"align_corners=False: max |identity warp - image| = {err_false:.4f}")
print("identity warp of an all-ones image, align_corners=False:")
print(f"  corner {ones[0, 0]:.4f}, edge {ones[0, 8]:.4f}, interior {ones[8, 8]:.4f}")

# %%
image_grid(
    [small, same, shifted, ones],
    [
        "16 x 16 image",
        "identity,\nalign_corners=True",
        "identity,\nalign_corners=False",
        "all-ones,\nalign_corners=False",
    ],
    cmap="gray",
    vmin=0,
    vmax=1,
)
plt.show()

# %% [markdown]
# The all-ones image shows the dark frame: 0.5 on the edges, 0.25 in the corners. At FOMM's
# 64 x 64 motion resolution this is a one-pixel dark frame around every warped feature map
# and a content shift of up to half a feature pixel (two pixels of a 256 x 256 image). The
# package therefore uses `align_corners=True` everywhere, the convention the released weights
# were trained with.
#
# ## 4.6 Padding modes
#
# When the grid leaves $[-1, 1]^2$ (zooming out, large motions) the padding mode decides what
# is read: `zeros` (FOMM's dense motion, [chapter 6](06_dense_motion.ipynb), and generator,
# [chapter 7](07_generator.ipynb)), `border` (repeat the edge) or `reflection` (mirror, used
# by FOMM's equivariance transform, [chapter 8](08_losses.ipynb)).

# %%
zoom_out = rotation(10.0, scale=0.6)
modes = ("zeros", "border", "reflection")
image_grid(
    [backward_warp(astronaut, zoom_out, padding_mode=mode) for mode in modes],
    [f"padding_mode={mode!r}" for mode in modes],
)
plt.show()

# %% [markdown]
# ## 4.7 Checks against torch
#
# `torch.nn.functional.grid_sample` is the reference. Where torch is installed (as in the
# package's development environment) this cell compares values and gradients with respect
# to image and grid for every mode, on a non-square image with positions outside the image,
# and prints the largest differences (their last digits depend on the CPU; the asserts hold
# everywhere). Elsewhere (e.g. a bare Colab runtime without torch) it checks
# the closed form instead: a grid on integer pixel positions must read the pixels exactly, and
# bilinear samples of a linear ramp are the ramp at the sample position.

# %% tags=["nbval-ignore-output"]
rng = np.random.default_rng(1)
img = rng.random((2, 5, 7, 3))
grd = rng.uniform(-1.4, 1.4, (2, 4, 6, 2))
cot = rng.standard_normal((2, 4, 6, 3))
modes = [(ac, pm) for ac in (True, False) for pm in ("zeros", "border", "reflection")]
results = {}
for ac, pm in modes:
    im_tf, gr_tf = tf.constant(img, tf.float32), tf.constant(grd, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch([im_tf, gr_tf])
        out = grid_sample(im_tf, gr_tf, align_corners=ac, padding_mode=pm)
        loss = tf.reduce_sum(out * cot)
    g_im, g_gr = tape.gradient(loss, [im_tf, gr_tf])
    results[(ac, pm)] = (out.numpy(), g_im.numpy(), g_gr.numpy())

if importlib.util.find_spec("torch") is not None:
    import torch

    print("max |TF - torch|        value    d/dimage  d/dgrid")
    for (ac, pm), (out, g_im, g_gr) in results.items():
        im_t = torch.tensor(img).permute(0, 3, 1, 2).requires_grad_(True)
        gr_t = torch.tensor(grd).requires_grad_(True)
        ref = torch.nn.functional.grid_sample(
            im_t, gr_t, mode="bilinear", padding_mode=pm, align_corners=ac
        )
        (ref * torch.tensor(cot).permute(0, 3, 1, 2)).sum().backward()
        e = (
            np.abs(out - ref.detach().permute(0, 2, 3, 1).numpy()).max(),
            np.abs(g_im - im_t.grad.permute(0, 2, 3, 1).numpy()).max(),
            np.abs(g_gr - gr_t.grad.numpy()).max(),
        )
        assert e[0] < 1e-5 and e[1] < 1e-5 and e[2] < 1e-4, (ac, pm, e)
        print(f"align_corners={ac!s:5} {pm:10}  {e[0]:.1e}  {e[1]:.1e}  {e[2]:.1e}")
    print(f"all {len(modes)} modes within 1e-5 (values, d/dimage) and 1e-4 (d/dgrid)")
else:
    cols, rows = np.meshgrid(np.arange(7), np.arange(5))
    on_pixels = np.stack([2 * cols / 6 - 1, 2 * rows / 4 - 1], -1)[None].repeat(2, 0)
    assert np.allclose(grid_sample(img, on_pixels).numpy(), img, atol=1e-12)
    ramp = np.broadcast_to(np.arange(7.0)[None, None, :, None], (1, 5, 7, 1))
    inside = rng.uniform(-1, 1, (1, 4, 6, 2))
    assert np.allclose(
        grid_sample(ramp, inside).numpy()[..., 0], (inside[..., 0] + 1) * 3, atol=1e-12
    )
    print(
        f"torch is not installed: checked the closed form instead ({len(modes)} modes)"
    )

# %% [markdown]
# The same float32 computation also runs inside `tf.function(jit_compile=True)` (XLA), which
# is how the models call it on a GPU:

# %%
xla_sample = tf.function(lambda i, g: grid_sample(i, g), jit_compile=True)
xla_out = xla_sample(tf.constant(img, tf.float32), tf.constant(grd, tf.float32))
err = np.abs(xla_out.numpy() - results[(True, "zeros")][0]).max()
assert err < 1e-5
print("XLA == eager within 1e-5:", err < 1e-5)

# %% [markdown]
# ## 4.8 Widget: an affine backward warp
#
# Rotate, scale and shear the astronaut. The widget builds the 2 x 2 matrix $A$, maps every
# output position $z$ to $A^{-1} z$ and samples there: a backward warp, shown with each
# padding mode. Four rotation angles, at scale 0.8 so that the zero padding shows:

# %%
angles = [-60, -20, 20, 60]
image_grid(
    [backward_warp(astronaut, rotation(a, scale=0.8)) for a in angles],
    [rf"$\theta = {a}^\circ$" for a in angles],
)
plt.show()

# %% [markdown]
# The widget's figure, precomputed for seven angles at scale 0.8, with the three padding
# modes side by side: what lies outside the source is black (`zeros`), the border pixels
# stretched outwards (`border`) or the image mirrored (`reflection`).


# %% tags=["hide-input"]
def warp_figure(angle=20.0, scale=1.0, shear=0.0, align_corners=True):
    """The astronaut warped by one affine map, once per padding mode."""
    matrix = rotation(angle, scale, shear)
    modes = ["zeros", "border", "reflection"]
    fig, axes = panels(len(modes))
    for ax, mode in zip(axes, modes):
        ax.imshow(np.clip(backward_warp(astronaut, matrix, align_corners, mode), 0, 1))
        ax.set_title(f"padding {mode}")
        ax.set_axis_off()
    fig.suptitle(rf"$\theta = {angle:.0f}^\circ$, $s = {scale:.2f}$, shear {shear:.2f}")
    return fig


static_slider(
    {f"{a}°": warp_figure(a, scale=0.8) for a in (-90, -45, -20, 0, 20, 45, 90)},
    label="angle θ",
    initial="20°",
)

# %% [markdown]
# > **Live widget.** The figure above switches between a few precomputed settings; run the
# > notebook (Colab button at the top, or Jupyter) to change every parameter freely.


# %% tags=["hide-input", "remove-output", "nbval-ignore-output"]
def show_warp(angle=20.0, scale=1.0, shear=0.0, align_corners=True):
    warp_figure(angle, scale, shear, align_corners)
    plt.show()


_ = interact(
    show_warp,
    angle=FloatSlider(value=20.0, min=-180.0, max=180.0, step=5.0),
    scale=FloatSlider(value=1.0, min=0.3, max=2.5, step=0.05),
    shear=FloatSlider(value=0.0, min=-1.0, max=1.0, step=0.05),
    align_corners=True,
)

# %% [markdown]
# ## Summary
#
# * Bilinear interpolation is a weighted average of the four neighbours with weights
#   $(1-u)(1-v)$, $u(1-v)$, $(1-u)v$, $uv$; its position gradient is a weighted neighbour
#   difference. Both were derived with sympy and asserted against the code.
# * `grid_sample(image, grid, align_corners=True, padding_mode="zeros")`: NHWC images,
#   `(B, h, w, 2)` normalised (x, y) grids, torch semantics for every `align_corners` and
#   padding mode, values and gradients within $10^{-5}$ of torch; `resampler(data, warp)` is
#   the tfa drop-in in pixel units.
# * Four gathers fetch the corners and a hand-written gradient reuses them; it runs eagerly,
#   in `tf.function` and under XLA, and accepts float16/bfloat16 inputs.
# * **Backward** warping is what a network can learn: no holes, no collisions,
#   differentiable in the positions. FOMM predicts backward motion for this reason.
# * `align_corners=False` with FOMM's corner-aligned grids shrinks the image by $(W-1)/W$ and
#   darkens its border; the package uses `align_corners=True`, as the released weights were
#   trained.
#
# Next, [chapter 5](05_keypoints.ipynb) turns heatmaps into keypoints and local affine
# motions, and [chapter 6](06_dense_motion.ipynb) warps the source with `grid_sample` once per
# keypoint.
#
# ## Exercises
#
# 1. **Nearest neighbour.** Write a nearest-neighbour sampler (`tf.round` and `tf.gather`)
#    and compute its gradient with respect to the grid with `tf.GradientTape`. What do you
#    get, and why could FOMM's keypoints not learn through it?
# 2. **What bilinear reproduces.** Show with sympy that bilinear interpolation reproduces
#    every function $a + bx + cy + dxy$ exactly, but not $x^2$. Check both with `grid_sample`
#    on a sampled ramp and a sampled parabola.
# 3. **Holes vs scale.** Using `forward_warp`, plot the percentage of holes (and of
#    collisions) against the scale of the warp for scales from 0.5 to 2. Where do collisions
#    start, and why at that scale?
# 4. **An exact identity with `align_corners=False`.** Using the pixel map of section 4.3,
#    build a grid that `grid_sample(..., align_corners=False)` turns into an exact copy of
#    the image, and assert it.
