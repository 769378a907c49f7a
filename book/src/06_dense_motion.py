# %% [markdown]
# # 6. The dense motion network: from keypoints to a motion field
#
# [Chapter 5](05_keypoints.ipynb) gave us, for the source frame $S$ and for the driving frame
# $D$, $K$ keypoints $p_k$ and $2 \times 2$ Jacobians $J_k$. The generator of
# [chapter 7](07_generator.ipynb) needs something else: for **every pixel** $z$ of the frame
# it must produce, the position $\mathcal{T}_{S\leftarrow D}(z)$ in the source where that
# pixel's content comes from (a *backward* warp, [chapters 1](01_optical_flow.ipynb) and
# [4](04_resampler.ipynb)).
#
# Each keypoint alone gives such a map, but only a *local* one: the first-order Taylor
# expansion of [chapter 2](02_taylor_series.ipynb) around keypoint $k$ (eq. 4 of the
# [paper](https://arxiv.org/abs/2003.00196)),
#
# $$T_k(z) = p_k^S + J_k^S \left(J_k^D\right)^{-1} \left(z - p_k^D\right),\qquad(4)$$
#
# is a good description of the motion near the $k$-th part of the object (an eye, a hand)
# and useless far from it. The **dense motion network** decides, pixel by pixel, which of
# the $K + 1$ candidate motions (the $K$ local affine ones plus the identity for the
# background) applies there. It does so with an hourglass that looks at
#
# * the **heatmap differences** (eq. 6): where the keypoints are in $D$ and where they were
#   in $S$;
# * the **deformed sources** (eq. 7): the source image warped by each candidate motion, so
#   the network can see which candidate produces a plausible picture at each pixel;
#
# and outputs a softmax **mask** $M_k(z)$ over the candidates (eq. 8) and an **occlusion
# map** (the pixels of $D$ that cannot be found in $S$ at all). The dense motion is the
# mask-weighted sum of the candidates (eq. 9):
#
# $$\hat{\mathcal{T}}_{S\leftarrow D}(z) = \sum_{k=0}^{K} M_k(z)\, T_k(z).$$
#
# The code is the package module
# [`fomm_tutorial/dense_motion.py`](https://github.com/fomm-tutorial/fomm-tutorial/blob/main/fomm_tutorial/dense_motion.py)
# (the original's `modules/dense_motion.py` in
# [first-order-model](https://github.com/AliaksandrSiarohin/first-order-model)). This chapter
#
# * 6.1: derives eq. 4 from the composition through the reference frame with sympy, checks
#   the closed-form $2 \times 2$ inverse, and compares both with `create_sparse_motions`;
# * 6.2: derives the heatmap difference of eq. 6 and compares it with
#   `create_heatmap_representations`;
# * 6.3: shows that the softmax mask makes eq. 9 a **convex combination** of the candidates;
# * 6.4: runs the network step by step on a photograph, printing every shape;
# * 6.5: draws the candidate warps, heatmaps, masks, occlusion map and the combined motion
#   field;
# * 6.6: shows the masks and occlusion map of the network trained by this book on a real
#   talking-head clip, next to its untrained twin;
# * 6.7: checks everything: closed forms always, and the reference outputs of the original
#   code where they are available;
# * 6.8: lets you move a driving keypoint and turn its Jacobian in a widget.

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
from ipywidgets import FloatSlider, IntSlider, interact
from skimage import data as skdata

from fomm_tutorial.display import (
    image_grid,
    panels,
    show_equations,
    show_math,
    show_source,
    static_slider,
    use_book_style,
)
from fomm_tutorial.runtime import quiet_stderr

# TensorFlow writes C++ start-up notices (oneDNN, CUDA) straight to the process's
# stderr,
# whatever TF_CPP_MIN_LOG_LEVEL says: import it and run a first op with stderr silenced.
with quiet_stderr():
    import keras
    import tensorflow as tf

    from fomm_tutorial.checkpoint import build_models, load_original_checkpoint
    from fomm_tutorial.config import load_config
    from fomm_tutorial.dense_motion import (
        DenseMotionNetwork,
        combine_motions,
        create_deformed_source_image,
        create_heatmap_representations,
        create_sparse_motions,
        hourglass_input,
        inverse_2x2,
    )
    from fomm_tutorial.generator import OcclusionAwareGenerator, deform_input
    from fomm_tutorial.grids import kp2gaussian, make_coordinate_grid
    from fomm_tutorial.optical_flow import flow_to_color
    from fomm_tutorial.pretrained import heldout_clip, load_pretrained
    from fomm_tutorial.reference import find_reference_dir
    from fomm_tutorial.runtime import configure
    from fomm_tutorial.visualization import kp_colours, kp_to_pixels

    rt = configure(seed=0)
    tf.zeros(1) + 1  # the first op loads the remaining kernels
use_book_style()

# %%
# Parameters. The network of this chapter is compared with a float32 reference, so it is
# built in float32 even on a GPU (where `configure` switched mixed precision on).
keras.mixed_precision.set_global_policy("float32")
SIZE = rt.choose(cpu=128, gpu=256)  # image side for the photograph
# The tiny config of the original code's reference outputs (5 keypoints, 128 px).
CONFIG = load_config("vox-256-tiny")
# None where the reference outputs are not available (e.g. on Colab).
REFERENCE_DIR = find_reference_dir()
NUM_KP = CONFIG["model_params"]["common_params"]["num_kp"]
DENSE_PARAMS = CONFIG["model_params"]["generator_params"]["dense_motion_params"]
# The dense motion works at a quarter of the resolution.
MOTION_SIZE = int(SIZE * DENSE_PARAMS["scale_factor"])
reference = "available" if REFERENCE_DIR is not None else "not available"
print(
    f"device: {rt.device} | image: {SIZE} x {SIZE} | "
    f"motion: {MOTION_SIZE} x {MOTION_SIZE}"
)
print(f"keypoints: {NUM_KP} | reference outputs of the original code: {reference}")

# %% [markdown]
# ## 6.1 The sparse motions (eq. 4), derived
#
# FOMM never sees the reference frame $R$ it talks about. The detector describes each frame
# $X$ near keypoint $k$ by an affine map from $R$:
# $\mathcal{T}_{X\leftarrow R}(r) \approx p_k^X + J_k^X (r - p_k^R)$, with $p_k^R$ the
# keypoint in $R$. The motion from the driving frame to the source goes through $R$: invert
# the driving map, then apply the source map,
# $\mathcal{T}_{S\leftarrow D} = \mathcal{T}_{S\leftarrow R}\circ\mathcal{T}_{D\leftarrow R}^{-1}$
# ([chapter 2](02_taylor_series.ipynb) obtained the same result as a Taylor expansion). sympy
# does the inversion by solving $z = p^D + J^D (r - p^R)$ for $r$ with fully generic symbols
# (the keypoint index $k$ is dropped):


# %%
def symbolic_matrix(name):
    entries = sp.symbols(f"{name}_00 {name}_01 {name}_10 {name}_11", real=True)
    return sp.Matrix(2, 2, entries)


def symbolic_point(name):
    return sp.Matrix(sp.symbols(f"{name}_x {name}_y", real=True))


J_S, J_D = symbolic_matrix("J^S"), symbolic_matrix("J^D")
p_S, p_D, p_R = symbolic_point("p^S"), symbolic_point("p^D"), symbolic_point("p^R")
z, r = symbolic_point("z"), symbolic_point("r")


def T_S_from_R(point):
    """The local affine model of the source around the keypoint."""
    return p_S + J_S * (point - p_R)


def T_D_from_R(point):
    """... and of the driving frame."""
    return p_D + J_D * (point - p_R)


r_of_z = sp.solve(list(T_D_from_R(r) - z), list(r), dict=True)[0]  # T_{R<-D}(z)
T_S_from_D = T_S_from_R(r.subs(r_of_z))  # composition through R
eq4 = p_S + J_S * J_D.inv() * (z - p_D)
assert sp.simplify(T_S_from_D - eq4) == sp.zeros(2, 1)
# The reference keypoint cancels out, and the driving keypoint reads the source
# keypoint.
assert not (sp.simplify(T_S_from_D).free_symbols & set(p_R))
assert sp.simplify(eq4.subs(dict(zip(z, p_D))) - p_S) == sp.zeros(2, 1)

# sympy's solution for r, written with det J^D (asserted equal, row by row).
det_D = sp.Symbol(r"\det J^D")
dz = z - p_D
r_form = [
    p_R[0] + (J_D[1, 1] * dz[0] - J_D[0, 1] * dz[1]) / det_D,
    p_R[1] + (J_D[0, 0] * dz[1] - J_D[1, 0] * dz[0]) / det_D,
]
for i in range(2):
    solved = r_of_z[r[i]]
    assert sp.simplify(r_form[i].subs(det_D, J_D.det()) - solved) == 0

# %% tags=["remove-input"]
# The rows asserted above, written in the order of the prose.
show_equations(
    [
        (
            r"r_x = \mathcal{T}_{R \leftarrow D}(z)_x",
            r"p^R_x + \frac{J^D_{11}(z_x - p^D_x) - J^D_{01}(z_y - p^D_y)}{\det J^D}",
        ),
        (
            r"r_y = \mathcal{T}_{R \leftarrow D}(z)_y",
            r"p^R_y + \frac{J^D_{00}(z_y - p^D_y) - J^D_{10}(z_x - p^D_x)}{\det J^D}",
        ),
        (det_D, J_D.det()),
        (
            r"\mathcal{T}_{S \leftarrow D}(z)",
            r"p^S + J^S \left(J^D\right)^{-1} (z - p^D)",
        ),
        (r"\mathcal{T}_{S \leftarrow D}(p^D)", r"p^S"),
    ]
)

# %% [markdown]
# The last two rows are the asserts of the cell: $p^R$ has cancelled. Three consequences
# worth keeping in mind:
#
# * $T_k$ sends the driving keypoint to the source keypoint: the content around $p_k^S$ is
#   drawn around $p_k^D$.
# * Only the product $J_k^S (J_k^D)^{-1}$ matters. If both frames have the same Jacobian it
#   is the identity and $T_k$ is a **translation** by $p_k^S - p_k^D$; this is also what a
#   model without Jacobians (`estimate_jacobian: False`, the "zero-order" model) uses
#   everywhere.
# * $J_k^D$ must be **invertible**. The package inverts it with the $2 \times 2$ closed form
#   (the original calls `torch.inverse`), which sympy confirms; a singular $J_k^D$ gives
#   infinite coordinates, which is one reason the equivariance loss of
#   [chapter 8](08_losses.ipynb) keeps the Jacobians well conditioned.

# %%
a, b, c, d = sp.symbols("a b c d", real=True)
m = sp.Matrix([[a, b], [c, d]])
closed_form = sp.Matrix([[d, -b], [-c, a]]) / (a * d - b * c)
assert sp.simplify(m.inv() - closed_form) == sp.zeros(2, 2)
show_math(
    m,
    "^{-1} =",
    r"\frac{1}{ad - bc}",
    sp.Matrix([[d, -b], [-c, a]]),
)

# %% tags=["remove-input"]
show_source(inverse_2x2)

# %% [markdown]
# The package's inverse on numbers, against sympy's exact inverse of the same rational
# matrices (one of them shown):

# %%
rng = np.random.default_rng(0)
numbers = [
    sp.Matrix(2, 2, [sp.Rational(int(v), 8) for v in rng.integers(-12, 13, size=4)])
    for _ in range(6)
]
numbers = [mat for mat in numbers if mat.det() != 0]
as_float = np.array([np.array(mat, dtype=np.float64) for mat in numbers])
ours = inverse_2x2(tf.constant(as_float)).numpy()
exact = np.array([np.array(mat.inv(), dtype=np.float64) for mat in numbers])
assert np.abs(ours - exact).max() < 1e-12
show_equations([("M", numbers[0]), ("M^{-1}", numbers[0].inv())])
print("inverse_2x2(M) =", np.array2string(ours[0], precision=4, suppress_small=True))
print(f"inverse_2x2 == sympy on {len(numbers)} rational matrices (float64, 1e-12)")

# %% [markdown]
# Now the implementation. `create_sparse_motions` evaluates eq. 4 on the whole
# $h \times w$ coordinate grid of [chapter 3](03_coordinate_grids.ipynb), for every keypoint
# at once, and prepends the identity grid as motion 0 (the background, which does not move):

# %% tags=["remove-input"]
show_source(create_sparse_motions)

# %% [markdown]
# * `identity[None, None] - value_d[:, :, None, None, :]` is $z - p_k^D$, broadcast to
#   `(B, K, h, w, 2)`;
# * `tf.matmul(kp_source["jacobian"], inverse_2x2(kp_driving["jacobian"]))` is
#   $J_k^S (J_k^D)^{-1}$, `(B, K, 2, 2)`, and the `einsum` applies it to the column vector
#   $(x, y)$ at every pixel (row-major Jacobians, `J[..., 0, :]`
#   $= \partial x'/\partial(x, y)$);
# * adding `kp_source["value"]` gives $T_k(z)$; without a `"jacobian"` the middle step is
#   skipped.
#
# The sympy expression, turned into a NumPy function, must give the same numbers on a small
# non-square grid (so that $x$ and $y$ cannot be swapped unnoticed):

# %%
eq4_numeric = sp.lambdify([*z, *p_S, *p_D, *J_S, *J_D], list(eq4), "numpy")
kp_s_small = {
    "value": tf.constant([[[0.3, -0.2], [-0.5, 0.4]]]),
    "jacobian": tf.constant([[[[1.1, 0.2], [-0.1, 0.9]], [[0.8, -0.3], [0.25, 1.2]]]]),
}
kp_d_small = {
    "value": tf.constant([[[0.1, 0.05], [-0.2, 0.6]]]),
    "jacobian": tf.constant([[[[0.9, -0.15], [0.3, 1.05]], [[1.3, 0.1], [-0.2, 0.7]]]]),
}
# (1, K+1, 5, 7, 2)
motions_small = create_sparse_motions(kp_d_small, kp_s_small, (5, 7)).numpy()
grid_small = make_coordinate_grid(5, 7).numpy()
print("sparse motions on a 5 x 7 grid:", motions_small.shape)
for k in range(2):
    args = [
        v.numpy()[0, k].ravel()
        for v in (
            kp_s_small["value"],
            kp_d_small["value"],
            kp_s_small["jacobian"],
            kp_d_small["jacobian"],
        )
    ]
    values = eq4_numeric(grid_small[..., 0], grid_small[..., 1], *np.concatenate(args))
    expected = np.stack(np.broadcast_arrays(*values), axis=-1)
    err = np.abs(motions_small[0, k + 1] - expected).max()
    assert err < 1e-6, (k, err)
    print(f"  keypoint {k}: max |create_sparse_motions - sympy| < 1e-6")
    centre = motions_small[0, k + 1, 2, 3]
    print(
        f"    T at the grid centre: ({centre[0]:.4f}, {centre[1]:.4f}) = sympy "
        f"({expected[2, 3, 0]:.4f}, {expected[2, 3, 1]:.4f})"
    )
assert np.abs(motions_small[0, 0] - grid_small).max() == 0  # motion 0: the identity
print("  motion 0 (background) is the identity grid")

# %% [markdown]
# ## 6.2 The heatmap differences (eq. 6)
#
# The hourglass must know *where* each candidate motion is meant to apply. The original gives
# it, for every keypoint, the Gaussian of [chapter 3](03_coordinate_grids.ipynb) at the
# driving keypoint minus the one at the source keypoint,
#
# $$H_k(z) = \exp\!\left(-\frac{\lVert z - p_k^D\rVert^2}{2\sigma^2}\right)
#          - \exp\!\left(-\frac{\lVert z - p_k^S\rVert^2}{2\sigma^2}\right),\qquad
#          \sigma^2 = 0.01,$$
#
# with $H_0 = 0$ for the background. It is positive around the driving keypoint (where
# motion $k$ will draw the part), negative around the source keypoint (where the part was),
# and antisymmetric in $S \leftrightarrow D$. sympy gives its value at the driving keypoint
# and shows a less obvious property: **a keypoint that does not move gives a zero channel**,
# so the network learns nothing from $H_k$ about where that part is; it has to read the
# deformed sources.

# %%
xs, ys, xd, yd, zx, zy = sp.symbols("x_S y_S x_D y_D z_x z_y", real=True)
var = sp.Rational(1, 100)


def gauss(px, py):
    return sp.exp(-((zx - px) ** 2 + (zy - py) ** 2) / (2 * var))


H = gauss(xd, yd) - gauss(xs, ys)
at_driving = sp.simplify(H.subs({zx: xd, zy: yd}))
distance2 = (xd - xs) ** 2 + (yd - ys) ** 2
assert sp.simplify(at_driving - (1 - sp.exp(-distance2 / (2 * var)))) == 0
no_motion = sp.simplify(H.subs({xd: xs, yd: ys}))
swapped = H.subs({xs: xd, ys: yd, xd: xs, yd: ys}, simultaneous=True)
assert no_motion == 0
assert sp.simplify(H + swapped) == 0  # antisymmetric
show_equations(
    [
        (r"H_k(p^D)", at_driving),
        (r"H_k\big|_{p^D = p^S}", no_motion),
        (r"H_k + H_k\big|_{S \leftrightarrow D}", sp.simplify(H + swapped)),
    ]
)

# %% tags=["remove-input"]
show_source(create_heatmap_representations)

# %% [markdown]
# The package's implementation against the sympy expression on a $6 \times 7$ grid:

# %%
H_numeric = sp.lambdify([zx, zy, xs, ys, xd, yd], H, "numpy")
# (1, 6, 7, K+1)
heat_small = create_heatmap_representations(kp_d_small, kp_s_small, (6, 7)).numpy()
grid_67 = make_coordinate_grid(6, 7).numpy()
assert np.all(heat_small[..., 0] == 0)
for k in range(2):
    expected = H_numeric(
        grid_67[..., 0],
        grid_67[..., 1],
        *kp_s_small["value"].numpy()[0, k],
        *kp_d_small["value"].numpy()[0, k],
    )
    err = np.abs(heat_small[0, :, :, k + 1] - expected).max()
    assert err < 1e-6, (k, err)
    low, high = heat_small[0, :, :, k + 1].min(), heat_small[0, :, :, k + 1].max()
    print(
        f"keypoint {k}: max |create_heatmap_representations - sympy| < 1e-6, "
        f"range [{low:.3f}, {high:.3f}]"
    )
print("background channel H_0 = 0")

# %% [markdown]
# ## 6.3 The mask: a convex combination of motions (eq. 8-9)
#
# The hourglass ends with a $7 \times 7$ convolution giving $K + 1$ logits $\ell_k(z)$ per
# pixel, and a softmax over $k$ turns them into the mask
# $M_k(z) = e^{\ell_k} / \sum_j e^{\ell_j}$. Its entries are positive and sum to one, so eq. 9
# is a **convex combination**: at every pixel the dense motion lies inside the convex hull of
# the $K + 1$ candidate positions $T_k(z)$. Where the mask is one-hot the motion is exactly
# one local affine motion; in between it blends smoothly. (A community TensorFlow port
# computed `sparse_motion * mask` and then summed `sparse_motion` instead of the product: the
# plain sum of all $K + 1$ candidates, which is not a motion at all; section 3.1 of the
# [paper](https://arxiv.org/abs/2003.00196) and the original [modules/dense_motion.py](https://github.com/AliaksandrSiarohin/first-order-model/blob/master/modules/dense_motion.py) weight each candidate by its mask.
# Check (d) below would catch it.) With four motions and symbolic logits:

# %%
logits = sp.symbols("ell_0:4", real=True)
M = [sp.exp(l_) / sum(sp.exp(l_j) for l_j in logits) for l_ in logits]
assert sp.simplify(sum(M) - 1) == 0
assert all(M_k.is_positive for M_k in M)
# One coordinate of the four candidates at a pixel.
T_values = sp.symbols("T_0:4", real=True)
blend = sum(M_k * T_k for M_k, T_k in zip(M, T_values))
same = sp.symbols("T", real=True)
agreed = sp.simplify(blend.subs({T_k: same for T_k in T_values}))
assert agreed == same
show_equations(
    [
        ("M_0", M[0]),
        (r"\sum_k M_k", sp.simplify(sum(M))),
        (r"\sum_k M_k T\ \text{(all candidates equal)}", agreed),
    ]
)

# %% tags=["remove-input"]
show_source(combine_motions)

# %% [markdown]
# Every $M_k$ is positive (sympy knows an exponential over a sum of exponentials is), and if
# every candidate agrees the mask does not matter.
#
# ## 6.4 The network, step by step
#
# `DenseMotionNetwork.call`:

# %% tags=["remove-input"]
show_source(DenseMotionNetwork.call)

# %% [markdown]
# Line by line:
#
# * `self.downsample` is the anti-aliased $\times 0.25$ downsampling of
#   [chapter 5](05_keypoints.ipynb) (`scale_factor: 0.25`): the motion is estimated at a
#   quarter of the resolution;
# * `create_heatmap_representations` (eq. 6) gives `(B, h, w, K+1)`;
# * `create_sparse_motions` (eq. 4) gives the `(B, K+1, h, w, 2)` candidate grids;
# * `create_deformed_source_image` (eq. 7) samples the downsampled source with each of them
#   (`grid_sample`, bilinear, zero padding, `align_corners=True`,
#   [chapter 4](04_resampler.ipynb)): `(B, K+1, h, w, C)`;
# * `hourglass_input` stacks, for each motion $k$, its heatmap channel and its $C$ colour
#   channels (k-major, as the original's `cat(dim=2).view`): `(B, h, w, (K+1)(C+1))`;
# * the hourglass (the U-Net of [chapter 5](05_keypoints.ipynb)) and two $7 \times 7$ heads:
#   `mask` (softmax over the $K+1$ channels) and `occlusion` (sigmoid, one channel);
# * `combine_motions` is eq. 9.
#
# Keypoints are coordinates: under mixed precision they are kept in float32 (the casts at
# the top). The two helpers:

# %% tags=["remove-input"]
show_source(create_deformed_source_image, hourglass_input)

# %% [markdown]
# The network inside the reference generator is loaded from the converted checkpoint
# `vox-256-tiny-cpk.pth.tar` where the reference outputs of the original code are available
# (random but non-trivial weights saved by the original PyTorch code); elsewhere it is built
# with its initial weights.


# %%
def load_models():
    """The converted reference checkpoint, or freshly built networks without it."""
    if REFERENCE_DIR is not None:
        return load_original_checkpoint(
            REFERENCE_DIR / "vox-256-tiny-cpk.pth.tar", CONFIG
        )
    return build_models(CONFIG)


dense_motion_network = load_models()["generator"].dense_motion_network
astronaut = tf.image.resize(
    skdata.astronaut()[None].astype(np.float32) / 255.0, (SIZE, SIZE), method="area"
)  # (1, SIZE, SIZE, 3)

# %% [markdown]
# The keypoints are placed **by hand** on the photograph (the face, the shuttle model, the
# flag, the helmet and the mission badge), so that each part moves differently and the
# figures are readable (a trained detector finds such points by itself, and an untrained
# one puts them all near the centre: [chapter 5](05_keypoints.ipynb), section 5.6). The source Jacobians are the identity; each driving
# keypoint is moved and its Jacobian is a rotation by $\theta_k$ and a scaling by $s_k$, so
# that around $p_k^D$ the part appears turned by $\theta_k$ and enlarged $s_k$ times.

# %%
PARTS = ["face", "shuttle", "flag", "helmet", "badge"]
KP_SOURCE = np.array(
    [[-0.15, -0.60], [0.65, -0.35], [-0.85, -0.60], [0.60, 0.65], [-0.30, 0.50]],
    np.float32,
)
SHIFT = np.array(
    [[0.10, 0.08], [-0.10, 0.12], [0.15, 0.10], [-0.15, -0.10], [0.10, -0.15]],
    np.float32,
)
ANGLE_DEG = np.array([20.0, -30.0, 0.0, 45.0, -15.0])
SCALE = np.array([1.0, 1.2, 0.8, 1.0, 1.1])


def rotation_scale(angle_deg, scale):
    t = np.deg2rad(angle_deg)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]], np.float32)
    return scale * rot


def make_keypoints(kp_source=KP_SOURCE, shift=SHIFT, angle_deg=ANGLE_DEG, scale=SCALE):
    identities = np.tile(np.eye(2, dtype=np.float32), (1, NUM_KP, 1, 1))
    kp_s = {"value": tf.constant(kp_source[None]), "jacobian": tf.constant(identities)}
    jac_d = np.stack([rotation_scale(a_, s_) for a_, s_ in zip(angle_deg, scale)])
    kp_d = {
        "value": tf.constant((kp_source + shift)[None]),
        "jacobian": tf.constant(jac_d.astype(np.float32)[None]),
    }
    return kp_s, kp_d


kp_source, kp_driving = make_keypoints()
print("k  part       p^S              p^D              theta    s")
for k, part in enumerate(PARTS):
    (sx, sy), (dx, dy) = (
        kp_source["value"][0, k].numpy(),
        kp_driving["value"][0, k].numpy(),
    )
    print(
        f"{k + 1}  {part:8} ({sx:5.2f}, {sy:5.2f})   ({dx:5.2f}, {dy:5.2f})   "
        f"{ANGLE_DEG[k]:+4.0f} deg  {SCALE[k]:.1f}"
    )

# %% [markdown]
# (Keypoint $k$ drives motion $T_k$; motion $T_0$ is the background.) Now every step of
# `call`, one at a time, with its shape:

# %%
dmn = dense_motion_network
h = w = MOTION_SIZE
source_down = dmn.downsample(astronaut)
heatmap = create_heatmap_representations(kp_driving, kp_source, (h, w), dmn.kp_variance)
sparse_motion = create_sparse_motions(kp_driving, kp_source, (h, w))
deformed_source = create_deformed_source_image(source_down, sparse_motion)
net_input = hourglass_input(heatmap, deformed_source)
prediction = dmn.hourglass(net_input, training=False)
mask_logits = dmn.mask(prediction)
mask = tf.nn.softmax(mask_logits, axis=-1)
deformation = combine_motions(mask, sparse_motion)
occlusion_map = tf.sigmoid(dmn.occlusion(prediction))
for name, tensor in [
    ("source", astronaut),
    ("source_down (x 0.25)", source_down),
    ("heatmap (eq. 6)", heatmap),
    ("sparse_motion (eq. 4)", sparse_motion),
    ("deformed_source (eq. 7)", deformed_source),
    ("hourglass input", net_input),
    ("hourglass output", prediction),
    ("mask logits", mask_logits),
    ("mask (eq. 8)", mask),
    ("deformation (eq. 9)", deformation),
    ("occlusion_map", occlusion_map),
]:
    print(f"{name:>24}: {tuple(tensor.shape)}")

dense = dmn(astronaut, kp_driving=kp_driving, kp_source=kp_source, training=False)
for key, tensor in [
    ("sparse_deformed", deformed_source),
    ("mask", mask),
    ("deformation", deformation),
    ("occlusion_map", occlusion_map),
]:
    assert np.abs(dense[key].numpy() - tensor.numpy()).max() < 1e-6, key
print("piecewise == dense_motion_network(...): True")
channels = net_input.shape[-1]
print(f"hourglass input channels: (K+1)(C+1) = {NUM_KP + 1} x 4 = {channels}")

# %% [markdown]
# The published vox-256 network has the same structure with 10 keypoints, 64 base channels
# and 5 blocks: its input has $(10 + 1)(3 + 1) = 44$ channels at $64 \times 64$, the
# hourglass ends with $64 + 44 = 108$ channels, and its trainable parameter count is that
# of the original `DenseMotionNetwork`
# ([modules/dense_motion.py](https://github.com/AliaksandrSiarohin/first-order-model/blob/master/modules/dense_motion.py)) with the
# vox-256 config, counted layer by layer.

# %%
vox_dmn = OcclusionAwareGenerator.from_config_dict(
    load_config("vox-256")
).dense_motion_network
kp_zero = {"value": tf.zeros((1, 10, 2)), "jacobian": tf.eye(2, batch_shape=(1, 10))}
vox_out = vox_dmn(
    tf.zeros((1, 256, 256, 3)), kp_driving=kp_zero, kp_source=kp_zero, training=False
)
vox_trainable = int(sum(np.prod(v.shape) for v in vox_dmn.trainable_weights))
assert vox_dmn.hourglass.out_filters == 108
assert tuple(vox_out["mask"].shape) == (1, 64, 64, 11)
assert vox_trainable == 37_730_268
print("vox-256 sparse_deformed:", tuple(vox_out["sparse_deformed"].shape))
print("        mask:           ", tuple(vox_out["mask"].shape))
print("        hourglass out:  ", vox_dmn.hourglass.out_filters, "channels")
print(f"        trainable parameters: {vox_trainable:,}")
del vox_dmn, vox_out

# %% [markdown]
# ## 6.5 Pictures
#
# ### The candidate motions
#
# The first panel is the source with its keypoints (crosses $+$) and the driving keypoints
# (circles $\circ$), in the keypoint colours of `fomm_tutorial.visualization`; the others
# show the source warped by each candidate $T_k$ at full resolution
# (`create_deformed_source_image` works at any size). Motion 0 is the identity. In panel $k$
# the whole image moves like part $k$: the content around the source keypoint $p_k^S$
# (cross) appears around the driving keypoint $p_k^D$ (circle), turned and scaled by
# $J_k^S (J_k^D)^{-1}$; areas read from outside the source are black (zero padding).


# %%
def draw_points(ax, kp_s, kp_d, size, only=None):
    """Source keypoints (K, 2) as +, driving keypoints as o, in the keypoint colours.

    only: one keypoint index, or "source" / "driving" to draw one set only.
    """
    pix_s, pix_d = kp_to_pixels(kp_s, size, size), kp_to_pixels(kp_d, size, size)
    colours = kp_colours(len(kp_s))
    indices = [only] if isinstance(only, int) else range(len(kp_s))
    for k in indices:
        if only != "driving":
            ax.plot(*pix_s[k], "+", color=colours[k], ms=11, mew=2)
        if only != "source":
            ax.plot(*pix_d[k], "o", mfc="none", color=colours[k], ms=9, mew=2)


# %% tags=["hide-input"]
kp_s_np, kp_d_np = kp_source["value"][0].numpy(), kp_driving["value"][0].numpy()
# (1, K+1, SIZE, SIZE, 2) and the source warped by each: (1, K+1, SIZE, SIZE, 3)
full_motion = create_sparse_motions(kp_driving, kp_source, (SIZE, SIZE))
full_deformed = create_deformed_source_image(astronaut, full_motion).numpy()
titles = ["source: $+ p^S$, $\\circ p^D$", "$T_0$: background"] + [
    f"$T_{k + 1}$ {PARTS[k]}: {ANGLE_DEG[k]:+.0f}°, ×{SCALE[k]:.1f}"
    for k in range(NUM_KP)
]
fig = image_grid([astronaut[0].numpy(), *full_deformed[0]], titles, ncols=4)
draw_points(fig.axes[0], kp_s_np, kp_d_np, SIZE)
for k in range(NUM_KP):
    draw_points(fig.axes[k + 2], kp_s_np, kp_d_np, SIZE, only=k)
plt.show()

# %% [markdown]
# ### The network's inputs and outputs
#
# First the heatmap differences $H_k$ at the motion resolution (red positive around
# $p_k^D$, blue negative around $p_k^S$; $H_0 = 0$ is not shown), then the deformed sources
# the hourglass sees, at the same resolution (deformed source 0 is the downsampled source
# itself, not shown).

# %% tags=["hide-input"]
heat_np, deformed_np = heatmap[0].numpy(), deformed_source[0].numpy()
mask_np = mask[0].numpy()
extent = [-1, 1, 1, -1]  # images drawn in normalised coordinates
fig, axes = panels(NUM_KP)
for k, ax in enumerate(axes, start=1):
    ax.imshow(heat_np[..., k], cmap="bwr", vmin=-1, vmax=1, extent=extent)
    ax.plot(*kp_d_np[k - 1], "ko", mfc="none", ms=8)
    ax.plot(*kp_s_np[k - 1], "k+", ms=9)
    ax.set_title(f"$H_{k}$ ({PARTS[k - 1]})")
    ax.set_xticks([]), ax.set_yticks([])
    ax.spines[["top", "right"]].set_visible(True)  # frame the mostly white maps
plt.show()

# %% tags=["hide-input"]
titles = [f"deformed {k}" for k in range(1, NUM_KP + 1)]
image_grid(deformed_np[1:], titles)
plt.show()

# %% [markdown]
# Then the masks $M_k$ and the occlusion map, as computed by the reference checkpoint's
# **untrained** network: they are smooth and roughly uniform, not yet tied to the parts.
# Training ([chapters 8](08_losses.ipynb)-[9](09_training_loop.ipynb)) makes each $M_k$
# cover the region that moves with keypoint $k$ and the occlusion map dark where $D$
# shows something $S$ hides: section 6.6 shows both for a network trained on a real
# face.

# %% tags=["hide-input"]
occlusion_np = occlusion_map[0, ..., 0].numpy()
fig, axes = panels(NUM_KP + 2, ncols=4)
for k in range(NUM_KP + 1):
    axes[k].imshow(mask_np[..., k], cmap="viridis", vmin=0, vmax=1, extent=extent)
    axes[k].set_title(f"$M_{k}$: mean {mask_np[..., k].mean():.2f}")
axes[-1].imshow(occlusion_np, cmap="gray", vmin=0, vmax=1, extent=extent)
axes[-1].set_title("occlusion map")
for ax in axes:
    ax.set_xticks([]), ax.set_yticks([])
plt.show()
print("mask mean per motion:", "  ".join(f"{v:.3f}" for v in mask_np.mean(axis=(0, 1))))
print(f"occlusion map range: [{occlusion_np.min():.3f}, {occlusion_np.max():.3f}]")

# %% [markdown]
# ### The combined motion field
#
# To see what eq. 9 does with a *meaningful* mask, we also build one by hand: logit
# $\beta\, G_k^D(z)$ for keypoint $k$ (a Gaussian around its driving position, variance
# 0.04, so twice as wide as the heatmaps' $\sigma$; $\beta = 12$) and a constant $c = 4$ for
# the background, so that each part's motion wins near its driving keypoint and the
# background elsewhere. This is roughly what a trained network learns (plus the boundaries
# of the parts, which Gaussians do not know; compare the trained masks of section 6.6).
# Each row shows
#
# 1. the mask as colours (the colour of the winning keypoint, grey for the background);
# 2. the displacement $\hat{\mathcal{T}}(z) - z$ as arrows, from a pixel of the driving frame
#    to where it reads the source;
# 3. the same displacement in the colour code of [chapter 1](01_optical_flow.ipynb)
#    (`flow_to_color`: hue = direction, saturation = length, white = still);
# 4. the source warped with the dense motion (the deformation is upsampled to full
#    resolution, as the generator does with `deform_input`, [chapter 7](07_generator.ipynb)).


# %%
def hand_mask(kp_d, size, beta=12.0, background=4.0, variance=0.04):
    """Softmax of [background, beta * Gaussian around each driving keypoint].

    Returns (1, h, w, K+1).
    """
    gauss = kp2gaussian(kp_d["value"], (size, size), variance)  # (1, h, w, K)
    constant = tf.fill(tf.shape(gauss[..., :1]), background)
    return tf.nn.softmax(tf.concat([constant, beta * gauss], axis=-1), axis=-1)


def mask_colours(mask_hw):
    """(h, w, K+1) mask -> RGB mixture of the keypoint colours (grey = background)."""
    palette = np.concatenate([[[0.5, 0.5, 0.5]], kp_colours(mask_hw.shape[-1] - 1)])
    return np.clip(mask_hw @ palette, 0, 1)


mask_by_hand = hand_mask(kp_driving, MOTION_SIZE)

# %% tags=["hide-input"]
identity_hw = make_coordinate_grid(h, w).numpy()
rows = [("hand-made mask", mask_by_hand), ("network mask", mask)]
fig, axes = panels(8, ncols=4)
step = max(1, h // 8)
grid_x, grid_y = identity_hw[::step, ::step, 0], identity_hw[::step, ::step, 1]
for row, (name, mask_used) in enumerate(rows):
    ax_mask, ax_arrows, ax_colour, ax_warped = axes[4 * row : 4 * row + 4]
    field = combine_motions(mask_used, sparse_motion)  # (1, h, w, 2)
    displacement = field[0].numpy() - identity_hw
    warped = deform_input(astronaut, field)[0].numpy()
    length = np.linalg.norm(displacement, axis=-1).max()
    ax_mask.imshow(mask_colours(mask_used[0].numpy()), extent=extent)
    ax_mask.set_title(name)
    ax_arrows.imshow(astronaut[0].numpy(), extent=extent, alpha=0.5)
    arrows = displacement[::step, ::step]
    ax_arrows.quiver(
        grid_x,
        grid_y,
        arrows[..., 0],
        arrows[..., 1],
        angles="xy",
        scale_units="xy",
        scale=1,
        color="k",
        width=0.006,
    )
    ax_arrows.set_xlim(-1, 1), ax_arrows.set_ylim(1, -1)
    ax_arrows.set_title(r"$\hat{\mathcal{T}}(z) - z$")
    ax_colour.imshow(flow_to_color(displacement), extent=extent)
    ax_colour.set_title(f"colour code, max {length:.2f}")
    ax_warped.imshow(np.clip(warped, 0, 1))
    draw_points(ax_warped, kp_s_np, kp_d_np, SIZE)
    ax_warped.set_title("warped source")
for ax in axes:
    ax.set_xticks([]), ax.set_yticks([])
plt.show()

# %% [markdown]
# With the hand-made mask every part is moved by its own affine motion and the rest of the
# image stays put; the seams between parts are where the mask changes quickly. The untrained
# network's mask mixes all candidates almost evenly, so its dense motion is close to their
# average, a blurry compromise: the generator of [chapter 7](07_generator.ipynb) has to undo
# this until training has shaped the mask (section 6.6 shows a trained one).

# %% [markdown]
# ## 6.6 Trained masks and occlusion on a real face
#
# The masks and occlusion maps above came from a network that has never been trained. The
# package ships one that has: the dense motion network inside the generator of
# `load_pretrained("talking-head-128")`, trained by this book together with its keypoint
# detector on the first frames of a real talking-head clip at $128 \times 128$ (10
# keypoints with Jacobians; [chapter 5](05_keypoints.ipynb), section 5.6, shows its
# keypoints). `heldout_clip` splits the clip as it was trained. The source $S$ is frame
# 0, the driving frame $D$ a held-out frame the model never saw (the first one of
# [chapter 7](07_generator.ipynb), section 7.8). The trained detector gives the keypoints
# of both frames, and the *same* keypoints go to the trained network and to an
# **untrained twin** (the same config, initial weights after
# `keras.utils.set_random_seed(0)`), so that only the weights differ. The config
# estimates the motion at half the resolution: $64 \times 64$.

# %%
face_model = load_pretrained("talking-head-128")
face_config = face_model["config"]
clip = heldout_clip("talking-head-128")
FACE_DRIVING = 24  # index into the held-out frames (as in chapter 7)
face_source = tf.constant(clip["source"][None])  # (1, 128, 128, 3)
face_driving = tf.constant(clip["heldout"][FACE_DRIVING][None])
face_kp_source = face_model["kp_detector"](face_source, training=False)
face_kp_driving = face_model["kp_detector"](face_driving, training=False)
keras.utils.set_random_seed(0)
face_networks = {
    "trained": face_model["generator"].dense_motion_network,
    "untrained": OcclusionAwareGenerator.from_config_dict(
        face_config
    ).dense_motion_network,
}
face_dense = {
    name: {
        key: tensor.numpy()[0]
        for key, tensor in network(
            face_source,
            kp_driving=face_kp_driving,
            kp_source=face_kp_source,
            training=False,
        ).items()
    }
    for name, network in face_networks.items()
}
face_frame = clip["first"] + FACE_DRIVING
print(f"source: clip frame 0 | driving: held-out clip frame {face_frame}")
for key, array in face_dense["trained"].items():
    print(f"{key:>16}: {array.shape}")

# %% [markdown]
# Top row: $S$ with its keypoints ($+$), $D$ with its keypoints ($\circ$), the trained
# mask as colours (each pixel the mixture of its motions' keypoint colours, grey for the
# background motion $M_0$, as in section 6.5) and the trained occlusion map. Bottom row:
# the source warped by each network's dense motion $\hat{\mathcal{T}}_{S\leftarrow D}$
# (upsampled to $128 \times 128$ with `deform_input`, as the generator does), then the
# untrained twin's mask and occlusion map for the same keypoints.

# %% tags=["hide-input"]
face_s_np = face_kp_source["value"][0].numpy()
face_d_np = face_kp_driving["value"][0].numpy()
face_size = face_source.shape[1]
face_warped = {
    name: deform_input(face_source, dense["deformation"][None])[0].numpy()
    for name, dense in face_dense.items()
}
fig, axes = panels(8, ncols=4)
axes[0].imshow(clip["source"])
draw_points(axes[0], face_s_np, face_d_np, face_size, only="source")
axes[0].set_title("$S$: $+ p^S$")
axes[1].imshow(face_driving[0].numpy())
draw_points(axes[1], face_s_np, face_d_np, face_size, only="driving")
axes[1].set_title(f"$D$ (frame {face_frame}): $\\circ p^D$")
for name, (ax_warp, ax_mask, ax_occ) in zip(
    face_dense, [(axes[4], axes[2], axes[3]), (axes[5], axes[6], axes[7])]
):
    ax_warp.imshow(np.clip(face_warped[name], 0, 1))
    ax_warp.set_title(f"{name}: $S$ warped")
    ax_mask.imshow(mask_colours(face_dense[name]["mask"]), extent=extent)
    ax_mask.set_title(f"{name}: mask")
    occlusion = face_dense[name]["occlusion_map"][..., 0]
    ax_occ.imshow(occlusion, cmap="gray", vmin=0, vmax=1, extent=extent)
    ax_occ.set_title(f"{name}: occlusion")
for ax in axes:
    ax.set_xticks([]), ax.set_yticks([])
plt.show()

# %% [markdown]
# The untrained twin's mask is one flat blend of all eleven colours and its occlusion
# map a flat mid-grey: every candidate motion gets about $1/11$ at every pixel. Its
# dense motion is then close to the average of the eleven candidates, and an average
# of affine maps is one affine map: the whole image moves as one piece (shifted and turned, with
# black strips where it reads outside the source), the head no differently from the
# wall. The trained mask has shapes: the background motion $M_0$ (grey) holds the wall
# around the head, and the head is split into a few regions (hair and forehead, eyes,
# cheek, mouth and chin, the outline and the shoulders), each following one
# keypoint's motion. Inside a region the colour is nearly pure, so the dense motion
# there *is* one local affine motion of eq. 4. The trained occlusion map is bright
# over most of the image and dark along the outline of the head, the eyes, the mouth
# and the collar: where the driving frame shows something the warped source cannot
# (what [chapter 7](07_generator.ipynb) leaves to the decoder to paint). Each trained
# $M_k$ separately (from 0, dark purple, to 1, yellow), with $p_k^D$ ($\circ$):

# %% tags=["hide-input"]
face_mask = face_dense["trained"]["mask"]
fig, axes = panels(face_mask.shape[-1], ncols=4)
for k, ax in enumerate(axes):
    ax.imshow(face_mask[..., k], cmap="viridis", vmin=0, vmax=1, extent=extent)
    if k > 0:
        ax.plot(*face_d_np[k - 1], "o", mfc="none", color="w", ms=8, mew=1.5)
    ax.set_title(f"$M_{{{k}}}$" + (" (background)" if k == 0 else ""))
    ax.set_xticks([]), ax.set_yticks([])
plt.show()

# %% [markdown]
# Some motions win a large region, others (whose keypoints sit close to a stronger one)
# almost nowhere: the network is free to ignore a candidate, and nothing forces a
# keypoint's region to be centred on it; the losses only ask that the motion chosen at
# each pixel reconstructs the driving frame ([chapter 8](08_losses.ipynb)).
#
# The check, in numbers: the **effective number of motions** mixed at a pixel,
# $e^{\mathcal{H}(M(z))}$ with $\mathcal{H}$ the entropy of the mask at $z$ (11 for a
# uniform mask, 1 for a one-hot one), averaged over the pixels; the mean weight of the
# winning motion; and the spread of the occlusion map. Trained masks must be far from
# uniform and the trained occlusion map far from constant.

# %% tags=["nbval-ignore-output"]
face_stats = {}
for name, dense in face_dense.items():
    mask_k = dense["mask"]  # (h, w, K+1)
    occlusion = dense["occlusion_map"][..., 0]
    assert np.abs(mask_k.sum(axis=-1) - 1).max() < 1e-5
    entropy = -(mask_k * np.log(np.maximum(mask_k, 1e-30))).sum(axis=-1)
    face_stats[name] = {
        "motions": float(np.exp(entropy).mean()),
        "winner": float(mask_k.max(axis=-1).mean()),
        "occ_std": float(occlusion.std()),
        "occ_range": (float(occlusion.min()), float(occlusion.max())),
    }
    stats = face_stats[name]
    print(
        f"{name:>9}: effective motions {stats['motions']:5.2f} of {mask_k.shape[-1]}, "
        f"winner weight {stats['winner']:.2f}, occlusion std {stats['occ_std']:.3f} "
        f"in [{stats['occ_range'][0]:.2f}, {stats['occ_range'][1]:.2f}]"
    )
trained, untrained = face_stats["trained"], face_stats["untrained"]
assert trained["motions"] < 0.5 * untrained["motions"]  # masks far from uniform
assert trained["winner"] > 2 * untrained["winner"]
assert trained["occ_std"] > 0.1 and trained["occ_std"] > 3 * untrained["occ_std"]
assert trained["occ_range"][1] - trained["occ_range"][0] > 0.5

# %% [markdown]
# ## 6.7 Checks
#
# Closed forms that always run (on random keypoints):
#
# * (a) `create_sparse_motions` is eq. 4 evaluated with NumPy (`np.linalg.inv`), sends
#   $p_k^D$ to $p_k^S$, is the identity for a keypoint that does not move with equal
#   Jacobians, and is a pure translation without Jacobians;
# * (b) `create_heatmap_representations` is eq. 6 with NumPy;
# * (c) `hourglass_input` puts the heatmap of motion $k$ in channel $(C+1)k$ followed by its
#   colours;
# * (d) every mask sums to one, and the dense motion is the NumPy $\sum_k M_k T_k$ and lies,
#   per pixel and coordinate, between the smallest and largest candidate (convex
#   combination);
#
# and, where the reference outputs are available, (e) the network against the arrays the
# original PyTorch code computed from their source and keypoints (`generator/mask`,
# `generator/occlusion_map` within $10^{-5}$; `generator/sparse_deformed` and
# `generator/deformed`, images *sampled* at positions computed from keypoints, within
# $5 \cdot 10^{-5}$ like the parity tests, since float32 rounding of a position is
# multiplied by the image gradient). The reference outputs do not store the deformation;
# `generator/deformed` is the source warped by it, so it checks the deformation too.

# %%
rng = np.random.default_rng(1)
B, K, hh, ww = 2, NUM_KP, 9, 11


def random_keypoints():
    jacobian = np.eye(2) + 0.3 * rng.standard_normal((B, K, 2, 2))
    return {
        "value": tf.constant(rng.uniform(-1, 1, (B, K, 2)), tf.float32),
        "jacobian": tf.constant(jacobian, tf.float32),
    }


kp_s_rand, kp_d_rand = random_keypoints(), random_keypoints()
value_s, value_d = kp_s_rand["value"].numpy(), kp_d_rand["value"].numpy()
grid_np = make_coordinate_grid(hh, ww).numpy()

# (a) eq. 4 with NumPy, T_k(p^D) = p^S, no motion -> identity, no Jacobian ->
# translation
motions = create_sparse_motions(kp_d_rand, kp_s_rand, (hh, ww)).numpy()
A = kp_s_rand["jacobian"].numpy() @ np.linalg.inv(kp_d_rand["jacobian"].numpy())
offsets = grid_np[None, None] - value_d[:, :, None, None]
expected = np.einsum("bkij,bkhwj->bkhwi", A, offsets) + value_s[:, :, None, None]
assert np.abs(motions[:, 1:] - expected).max() < 1e-5
kp_on_grid = {
    "value": tf.constant(grid_np[[2, 6], [3, 8]][None].repeat(B, 0)),
    "jacobian": kp_d_rand["jacobian"][:, :2],
}
first_two = {
    "value": kp_s_rand["value"][:, :2],
    "jacobian": kp_s_rand["jacobian"][:, :2],
}
at_kp = create_sparse_motions(kp_on_grid, first_two, (hh, ww)).numpy()
assert np.abs(at_kp[:, 1, 2, 3] - value_s[:, 0]).max() < 1e-5
assert np.abs(at_kp[:, 2, 6, 8] - value_s[:, 1]).max() < 1e-5
still = create_sparse_motions(kp_s_rand, kp_s_rand, (hh, ww)).numpy()
assert np.abs(still - grid_np).max() < 1e-5
no_jac = create_sparse_motions(
    {"value": kp_d_rand["value"]}, {"value": kp_s_rand["value"]}, (hh, ww)
).numpy()
shift = (value_s - value_d)[:, :, None, None]
assert np.abs(no_jac[:, 1:] - (grid_np + shift)).max() < 1e-6
print("(a) sparse motions: eq. 4 (NumPy), T_k(p^D) = p^S, no motion -> identity,")
print("    zero order -> translation")


# (b) eq. 6 with NumPy
def gaussian_np(kp_value):
    d2 = ((grid_np[None, :, :, None] - kp_value[:, None, None]) ** 2).sum(-1)
    return np.exp(-0.5 * d2 / 0.01)


heat = create_heatmap_representations(kp_d_rand, kp_s_rand, (hh, ww)).numpy()
heat_np_expected = gaussian_np(value_d) - gaussian_np(value_s)
assert np.abs(heat[..., 1:] - heat_np_expected).max() < 1e-6
assert np.all(heat[..., 0] == 0)
print("(b) heatmap differences: eq. 6 (NumPy), background channel zero")

# (c) hourglass_input channel order: k-major, heatmap first
images_rand = tf.constant(rng.uniform(0, 1, (B, hh, ww, 3)), tf.float32)
deformed_rand = create_deformed_source_image(
    images_rand, create_sparse_motions(kp_d_rand, kp_s_rand, (hh, ww))
).numpy()
stacked = hourglass_input(heat, deformed_rand).numpy()
for k in range(K + 1):
    assert np.array_equal(stacked[..., 4 * k], heat[..., k])
    assert np.array_equal(stacked[..., 4 * k + 1 : 4 * k + 4], deformed_rand[:, k])
print("(c) hourglass input: channel 4k = H_k, 4k+1..4k+3 = deformed source k")

# (d) the mask is a partition of unity and the deformation a convex combination
candidates = sparse_motion.numpy()
for name, mask_used in [("network", mask), ("hand-made", mask_by_hand)]:
    mask_used = mask_used.numpy()
    assert np.abs(mask_used.sum(-1) - 1).max() < 1e-5
    assert np.all(mask_used >= 0)
    field = combine_motions(mask_used, sparse_motion).numpy()
    numpy_field = np.einsum("bhwk,bkhwc->bhwc", mask_used, candidates)
    assert np.abs(field - numpy_field).max() < 1e-5
    lower, upper = candidates.min(axis=1), candidates.max(axis=1)
    assert np.all(field >= lower - 1e-5) and np.all(field <= upper + 1e-5)
    print(f"(d) {name} mask: sums to 1, deformation = sum_k M_k T_k,")
    print("    inside the candidates' range")

# %% [markdown]
# (e) The reference outputs of the original code. The largest differences are printed
# (their last digits depend on the CPU; the asserts hold everywhere):

# %% tags=["nbval-ignore-output"]
if REFERENCE_DIR is not None:
    ref = dict(np.load(REFERENCE_DIR / "vox-256-tiny-reference.npz"))
    source_ref = tf.constant(ref["source"])
    kp_ref = {
        frame: {
            key: tf.constant(ref[f"kp_{frame}/{key}"]) for key in ("value", "jacobian")
        }
        for frame in ("source", "driving")
    }
    out = dense_motion_network(
        source_ref,
        kp_driving=kp_ref["driving"],
        kp_source=kp_ref["source"],
        training=False,
    )
    out["deformed"] = deform_input(source_ref, out["deformation"])
    for key, atol in [
        ("mask", 1e-5),
        ("occlusion_map", 1e-5),
        ("sparse_deformed", 5e-5),
        ("deformed", 5e-5),
    ]:
        err = np.abs(out[key].numpy() - ref["generator/" + key]).max()
        assert out[key].shape == ref["generator/" + key].shape, key
        assert err < atol, (key, err)
        shape = str(tuple(out[key].shape))
        print(
            f"generator/{key:15} {shape:18} max |TF - PyTorch| = {err:.1e} < {atol:.0e}"
        )
else:
    print("reference outputs of the original code not available: parity check skipped")

# %% [markdown]
# ## 6.8 Widget: move a driving keypoint, turn its Jacobian
#
# Pick a keypoint, move its driving position and change the rotation and scale of its
# driving Jacobian. The panels show ($+$ source keypoint, $\circ$ driving keypoint) the
# source warped by that keypoint's candidate motion $T_k$ alone, by the dense motion with the
# hand-made mask (only the neighbourhood of $p_k^D$ follows), and by the dense motion of the
# reference checkpoint's network with its mask. Turning the driving Jacobian by $\theta$ turns the part by
# $\theta$ around $p_k^D$, since $T_k$ applies the inverse rotation to the driving
# coordinates. Four angles for the face (keypoint 1): its candidate motion $T_1$ alone (top)
# and the dense motion with the hand-made mask (bottom), where only the face turns:


# %%
def warp_with(k, dx, dy, angle, scale):
    """Move and turn keypoint k: the warps by T_k alone, hand-made and network masks."""
    shift, angles, scales = SHIFT.copy(), ANGLE_DEG.copy(), SCALE.copy()
    shift[k], angles[k], scales[k] = (dx, dy), angle, scale
    kp_s, kp_d = make_keypoints(shift=shift, angle_deg=angles, scale=scales)
    motion_k = create_sparse_motions(kp_d, kp_s, (SIZE, SIZE))[:, k + 1 : k + 2]
    single = create_deformed_source_image(astronaut, motion_k).numpy()[0, 0]
    motion = create_sparse_motions(kp_d, kp_s, (h, w))
    by_hand = combine_motions(hand_mask(kp_d, h), motion)
    network = dmn(astronaut, kp_driving=kp_d, kp_source=kp_s, training=False)
    warps = [single] + [
        deform_input(astronaut, field)[0].numpy()
        for field in (by_hand, network["deformation"])
    ]
    return warps, kp_s["value"][0].numpy(), kp_d["value"][0].numpy()


angles = [-60, -20, 20, 60]
warped = [warp_with(0, 0.1, 0.08, angle, 1.0) for angle in angles]
images = [wp[0][0] for wp in warped] + [wp[0][1] for wp in warped]
titles = [rf"$T_1$ alone: ${a}^\circ$" for a in angles] + [
    rf"dense: ${a}^\circ$" for a in angles
]
fig = image_grid(images, titles, ncols=4)
for i, (_, s_np, d_np) in enumerate(warped * 2):
    draw_points(fig.axes[i], s_np, d_np, SIZE, only=0)
plt.show()

# %% [markdown]
# The widget's figure for the face's driving Jacobian turned by seven angles: keypoint 1
# alone turns the whole image about $p_1^D$, the hand-made mask confines the turn to the
# face, and the untrained network's mask, not yet tied to any part (before training;
# section 6.6 shows trained masks), blends all candidates everywhere, so the face does
# not turn.


# %% tags=["hide-input"]
def motion_figure(k=0, dx=0.1, dy=0.08, angle=20.0, scale=1.0):
    """Keypoint k moved and turned: warps by T_k alone, hand-made and network masks."""
    warps, s_np, d_np = warp_with(k, dx, dy, angle, scale)
    fig, axes = panels(3)
    titles = [f"$T_{k + 1}$ ({PARTS[k]}) alone", "hand-made mask", "network mask"]
    for ax, image, title in zip(axes, warps, titles):
        ax.imshow(np.clip(image, 0, 1))
        draw_points(ax, s_np, d_np, SIZE, only=k)
        ax.set_title(title)
        ax.set_xticks([]), ax.set_yticks([])
    fig.suptitle(rf"keypoint {k + 1}: $\theta = {angle:.0f}^\circ$, scale {scale:.2f}")
    return fig


static_slider(
    {f"{a}°": motion_figure(angle=a) for a in (-90, -60, -30, 0, 30, 60, 90)},
    label="angle θ of the driving Jacobian",
    initial="30°",
)

# %% [markdown]
# > **Live widget.** The figure above switches between a few precomputed settings; run the
# > notebook (Colab button at the top, or Jupyter) to change every parameter freely.


# %% tags=["hide-input", "remove-output", "nbval-ignore-output"]
def show_motion(k=0, dx=0.1, dy=0.08, angle=20.0, scale=1.0):
    motion_figure(k, dx, dy, angle, scale)
    plt.show()


_ = interact(
    show_motion,
    k=IntSlider(value=0, min=0, max=NUM_KP - 1),
    dx=FloatSlider(value=0.1, min=-0.5, max=0.5, step=0.02),
    dy=FloatSlider(value=0.08, min=-0.5, max=0.5, step=0.02),
    angle=FloatSlider(value=20.0, min=-180.0, max=180.0, step=5.0),
    scale=FloatSlider(value=1.0, min=0.5, max=2.0, step=0.05),
)

# %% [markdown]
# ## Summary
#
# * Each keypoint gives a candidate **backward** motion
#   $T_k(z) = p_k^S + J_k^S (J_k^D)^{-1}(z - p_k^D)$ (eq. 4): the composition of two local
#   affine maps through the reference frame, which cancels. Motion 0 is the identity
#   (background).
# * The dense motion network sees the **heatmap differences** (eq. 6, zero for a keypoint
#   that does not move) and the source **warped by every candidate** (eq. 7), interleaved per
#   motion, at a quarter of the resolution.
# * Its **softmax mask** makes the dense motion a **convex combination** of the candidates
#   (eq. 8-9); a sigmoid head predicts the **occlusion map** that
#   [chapter 7](07_generator.ipynb) multiplies the warped features by.
# * Untrained, the mask gives every candidate about $1/(K+1)$ everywhere (the dense motion
#   is close to their average, a single affine map) and the occlusion map is flat. Trained on a real
#   face, the mask splits the frame into a background and a few head regions, each
#   moving with one keypoint, and the occlusion map darkens along the outline, the eyes
#   and the mouth (section 6.6).
# * The port reproduces the original's masks and occlusion maps within $10^{-5}$ and its
#   warped images within $5 \cdot 10^{-5}$ on the reference outputs of the original code.
#
# Next, [chapter 7](07_generator.ipynb) uses the deformation and the occlusion map inside the
# generator.
#
# ## Exercises
#
# 1. **Zero order.** Repeat the candidate-motion figure of section 6.5 without Jacobians
#    (`{"value": ...}` only). Which parts still look right, and why does the face look worse
#    than the flag?
# 2. **A singular Jacobian.** Give one driving keypoint the Jacobian
#    $\begin{pmatrix} 1 & 1 \\ 1 & 1 \end{pmatrix}$. What do `inverse_2x2` and
#    `create_sparse_motions` return, and what would a single such keypoint do to the dense
#    motion and to the loss?
# 3. **A sharper hand-made mask, and a trained one.** Vary $\beta$ and the background
#    logit $c$ of `hand_mask`. Plot, for a row of pixels through the face, the $x$
#    component of the dense motion: how does the seam between the face and the background
#    change? Then drive the trained network of section 6.6 with frame 0 itself
#    (`kp_driving=face_kp_source`): every candidate is then the identity, so what is the
#    dense motion, does the mask still have regions, and is the occlusion map all ones?
# 4. **The bug of section 6.3.** Implement the community port's `sum(sparse_motion)` and show
#    which of the checks of section 6.7 fails, and by how much.
