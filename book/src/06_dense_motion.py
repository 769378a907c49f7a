# %% [markdown]
# # 6. The dense motion network: from keypoints to a motion field
#
# Chapter 5 gave us, for the source frame $S$ and for the driving frame $D$, $K$ keypoints
# $p_k$ and $2 \times 2$ Jacobians $J_k$. The generator of chapter 7 needs something else: for
# **every pixel** $z$ of the frame it must produce, the position $\mathcal{T}_{S\leftarrow D}(z)$
# in the source where that pixel's content comes from (a *backward* warp, chapters 1 and 4).
#
# Each keypoint alone gives such a map, but only a *local* one: the first-order Taylor expansion
# of chapter 2 around keypoint $k$,
#
# $$T_k(z) = p_k^S + J_k^S \left(J_k^D\right)^{-1} \left(z - p_k^D\right),\qquad(4)$$
#
# is a good description of the motion near the $k$-th part of the object (an eye, a hand) and
# useless far from it. The **dense motion network** decides, pixel by pixel, which of the
# $K + 1$ candidate motions (the $K$ local affine ones plus the identity for the background)
# applies there. It does so with an hourglass that looks at
#
# * the **heatmap differences** (eq. 6): where the keypoints are in $D$ and where they were in $S$;
# * the **deformed sources** (eq. 7): the source image warped by each candidate motion, so the
#   network can see which candidate produces a plausible picture at each pixel;
#
# and outputs a softmax **mask** $M_k(z)$ over the candidates (eq. 8) and an **occlusion map**
# (the pixels of $D$ that cannot be found in $S$ at all). The dense motion is the mask-weighted
# sum of the candidates (eq. 9):
#
# $$\hat{\mathcal{T}}_{S\leftarrow D}(z) = \sum_{k=0}^{K} M_k(z)\, T_k(z).$$
#
# This chapter
#
# 1. derives eq. 4 from the composition through the reference frame with sympy, checks the
#    closed-form $2 \times 2$ inverse, and compares both with `create_sparse_motions` on numbers;
# 2. derives the heatmap difference of eq. 6 and compares it with `create_heatmap_representations`;
# 3. shows that the softmax mask makes eq. 9 a **convex combination** of the candidates;
# 4. runs `fomm_tutorial.dense_motion` step by step on a photograph, printing every shape;
# 5. draws the candidate warps, heatmaps, masks, occlusion map and the combined motion field;
# 6. checks everything: closed forms always, the original's outputs where the fixture is present;
# 7. lets you move a driving keypoint and turn its Jacobian in a widget.

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
import inspect

import matplotlib.pyplot as plt
import numpy as np
import sympy as sp
from ipywidgets import FloatSlider, IntSlider, interact
from matplotlib.colors import hsv_to_rgb
from skimage import data as skdata

from fomm_tutorial.runtime import quiet_stderr

# TensorFlow writes C++ start-up notices (oneDNN, CUDA) straight to the process's stderr,
# whatever TF_CPP_MIN_LOG_LEVEL says: import it and run a first op with stderr silenced.
with quiet_stderr():
    import keras
    import tensorflow as tf
    from fomm_tutorial.runtime import configure
    from fomm_tutorial.config import load_config
    from fomm_tutorial.checkpoint import build_models, load_original_checkpoint
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
    from fomm_tutorial.reference import find_reference_dir

    rt = configure(seed=0)
    tf.zeros(1) + 1  # the first op loads the remaining kernels


# %%
# Parameters. The network of this chapter is compared with a float32 reference, so it is built
# in float32 even on a GPU (where `configure` switched mixed precision on).
keras.mixed_precision.set_global_policy("float32")
SIZE = rt.choose(cpu=128, gpu=256)  # image side for the photograph
CONFIG = load_config(
    "vox-256-tiny"
)  # the reference fixture's config (5 keypoints, 128 px)
REFERENCE_DIR = (
    find_reference_dir()
)  # None where ../shared/reference/fomm-tiny is absent
NUM_KP = CONFIG["model_params"]["common_params"]["num_kp"]
DENSE_PARAMS = CONFIG["model_params"]["generator_params"]["dense_motion_params"]
MOTION_SIZE = int(
    SIZE * DENSE_PARAMS["scale_factor"]
)  # the dense motion works at 1/4 resolution
print(
    "device:",
    rt.device,
    "| image:",
    SIZE,
    "x",
    SIZE,
    "| motion:",
    MOTION_SIZE,
    "x",
    MOTION_SIZE,
    "| keypoints:",
    NUM_KP,
    "| reference fixture:",
    "present" if REFERENCE_DIR is not None else "absent",
)


def rounded(array, digits=3):
    """Nested lists of rounded strings: deterministic prints (no float32 reprs)."""
    array = np.asarray(array)
    if array.ndim == 0:
        return f"{float(array):.{digits}f}"
    return [rounded(a, digits) for a in array]


# %% [markdown]
# ## 1. The sparse motions (eq. 4), derived
#
# FOMM never sees the reference frame $R$ it talks about. The detector describes each frame $X$
# near keypoint $k$ by an affine map from $R$: $\mathcal{T}_{X\leftarrow R}(r) \approx p_k^X +
# J_k^X (r - p_k)$, with $p_k$ the keypoint in $R$. The motion from the driving frame to the
# source goes through $R$: invert the driving map, then apply the source map,
# $\mathcal{T}_{S\leftarrow D} = \mathcal{T}_{S\leftarrow R}\circ\mathcal{T}_{D\leftarrow R}^{-1}$
# (chapter 2 obtained the same result as a Taylor expansion). sympy does the inversion by solving
# $z = p_k^D + J_k^D (r - p_k)$ for $r$ with fully generic symbols:


# %%
def symbolic_matrix(name):
    return sp.Matrix(
        2, 2, sp.symbols(f"{name}_00 {name}_01 {name}_10 {name}_11", real=True)
    )


def symbolic_point(name):
    return sp.Matrix(sp.symbols(f"{name}_x {name}_y", real=True))


J_S, J_D = symbolic_matrix("J^S"), symbolic_matrix("J^D")
p_S, p_D, p_R = symbolic_point("p^S"), symbolic_point("p^D"), symbolic_point("p^R")
z, r = symbolic_point("z"), symbolic_point("r")

T_S_from_R = lambda point: p_S + J_S * (point - p_R)  # local affine model of the source
T_D_from_R = lambda point: p_D + J_D * (point - p_R)  # ... and of the driving frame
r_of_z = sp.solve(list(T_D_from_R(r) - z), list(r), dict=True)[0]  # T_{R<-D}(z)
T_S_from_D = T_S_from_R(r.subs(r_of_z))  # composition through R
eq4 = p_S + J_S * J_D.inv() * (z - p_D)
print("T_{R<-D}(z), x component:", sp.factor(r.subs(r_of_z)[0]))
assert sp.simplify(T_S_from_D - eq4) == sp.zeros(2, 1)
assert not (
    sp.simplify(T_S_from_D).free_symbols & set(p_R)
)  # the reference keypoint has cancelled out
print("T_{S<-D}(z) = p^S + J^S (J^D)^-1 (z - p^D): checked; p^R cancels")
assert sp.simplify(eq4.subs(dict(zip(z, p_D))) - p_S) == sp.zeros(2, 1)
print("T_{S<-D}(p^D) = p^S: the driving keypoint reads the source keypoint")

# %% [markdown]
# Three consequences worth keeping in mind:
#
# * $T_k$ sends the driving keypoint to the source keypoint: the content around $p_k^S$ is drawn
#   around $p_k^D$.
# * Only the product $J_k^S (J_k^D)^{-1}$ matters. If both frames have the same Jacobian it is
#   the identity and $T_k$ is a **translation** by $p_k^S - p_k^D$; this is also what a model
#   without Jacobians (`estimate_jacobian: False`, the "zero-order" model) uses everywhere.
# * $J_k^D$ must be **invertible**. The package inverts it with the $2 \times 2$ closed form
#   $\begin{pmatrix} a & b \\ c & d\end{pmatrix}^{-1} = \frac{1}{ad - bc}
#   \begin{pmatrix} d & -b \\ -c & a\end{pmatrix}$ (the original calls `torch.inverse`), which
#   sympy confirms; a singular $J_k^D$ gives infinite coordinates, which is one reason the
#   equivariance loss of chapter 8 keeps the Jacobians well conditioned.

# %%
a, b, c, d = sp.symbols("a b c d", real=True)
m = sp.Matrix([[a, b], [c, d]])
closed_form = sp.Matrix([[d, -b], [-c, a]]) / (a * d - b * c)
assert sp.simplify(m.inv() - closed_form) == sp.zeros(2, 2)
print("closed form == sympy inverse (symbolic): True")
print(inspect.getsource(inverse_2x2))

# The package's inverse on numbers, against sympy's exact inverse of the same rational matrices.
rng = np.random.default_rng(0)
numbers = [
    sp.Matrix(2, 2, [sp.Rational(int(v), 8) for v in rng.integers(-12, 13, size=4)])
    for _ in range(6)
]
numbers = [mat for mat in numbers if mat.det() != 0]
ours = inverse_2x2(
    tf.constant(np.array([np.array(mat, dtype=np.float64) for mat in numbers]))
).numpy()
exact = np.array([np.array(mat.inv(), dtype=np.float64) for mat in numbers])
assert np.abs(ours - exact).max() < 1e-12
print(
    f"inverse_2x2 == sympy on {len(numbers)} rational matrices (float64, 1e-12): True"
)

# %% [markdown]
# Now the implementation. `create_sparse_motions` evaluates eq. 4 on the whole
# $h \times w$ coordinate grid of chapter 3, for every keypoint at once, and prepends the
# identity grid as motion 0 (the background, which does not move):

# %%
print(inspect.getsource(create_sparse_motions))

# %% [markdown]
# * `identity[None, None] - value_d[:, :, None, None, :]` is $z - p_k^D$, broadcast to
#   `(B, K, h, w, 2)`;
# * `tf.matmul(kp_source["jacobian"], inverse_2x2(kp_driving["jacobian"]))` is $J_k^S (J_k^D)^{-1}$,
#   `(B, K, 2, 2)`, and the `einsum` applies it to the column vector $(x, y)$ at every pixel
#   (row-major Jacobians, `J[..., 0, :]` $= \partial x'/\partial(x, y)$);
# * adding `kp_source["value"]` gives $T_k(z)$; without a `"jacobian"` the middle step is skipped.
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
motions_small = create_sparse_motions(
    kp_d_small, kp_s_small, (5, 7)
).numpy()  # (1, K+1, 5, 7, 2)
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
    expected = np.stack(
        np.broadcast_arrays(
            *eq4_numeric(grid_small[..., 0], grid_small[..., 1], *np.concatenate(args))
        ),
        axis=-1,
    )
    err = np.abs(motions_small[0, k + 1] - expected).max()
    assert err < 1e-6, (k, err)
    print(f"  keypoint {k}: max |create_sparse_motions - sympy| < 1e-6: True")
assert np.abs(motions_small[0, 0] - grid_small).max() == 0  # motion 0: the identity
print("  motion 0 (background) is the identity grid: True")

# %% [markdown]
# ## 2. The heatmap differences (eq. 6)
#
# The hourglass must know *where* each candidate motion is meant to apply. The original gives it,
# for every keypoint, the Gaussian of chapter 3 at the driving keypoint minus the one at the
# source keypoint,
#
# $$H_k(z) = \exp\!\left(-\frac{\lVert z - p_k^D\rVert^2}{2\sigma^2}\right)
#          - \exp\!\left(-\frac{\lVert z - p_k^S\rVert^2}{2\sigma^2}\right),\qquad \sigma^2 = 0.01,$$
#
# with $H_0 = 0$ for the background. It is positive around the driving keypoint (where motion
# $k$ will draw the part), negative around the source keypoint (where the part was), and
# antisymmetric in $S \leftrightarrow D$. sympy gives its value at the driving keypoint and shows a
# less obvious property: **a keypoint that does not move gives a zero channel**, so the network
# learns nothing from $H_k$ about where that part is; it has to read the deformed sources.

# %%
xs, ys, xd, yd, zx, zy = sp.symbols("x_S y_S x_D y_D z_x z_y", real=True)
var = sp.Rational(1, 100)
gauss = lambda px, py: sp.exp(-((zx - px) ** 2 + (zy - py) ** 2) / (2 * var))
H = gauss(xd, yd) - gauss(xs, ys)
at_driving = sp.simplify(H.subs({zx: xd, zy: yd}))
print("H_k(p^D) =", at_driving)
assert (
    sp.simplify(
        at_driving - (1 - sp.exp(-((xd - xs) ** 2 + (yd - ys) ** 2) / (2 * var)))
    )
    == 0
)
assert sp.simplify(H.subs({xd: xs, yd: ys})) == 0  # no motion -> 0
assert (
    sp.simplify(H + H.subs({xs: xd, ys: yd, xd: xs, yd: ys}, simultaneous=True)) == 0
)  # antisymmetric
print("no motion -> H_k = 0; swapping S and D flips the sign: True")

# The package's implementation against the sympy expression on a 6 x 7 grid.
print(inspect.getsource(create_heatmap_representations))
H_numeric = sp.lambdify([zx, zy, xs, ys, xd, yd], H, "numpy")
heat_small = create_heatmap_representations(
    kp_d_small, kp_s_small, (6, 7)
).numpy()  # (1, 6, 7, K+1)
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
    print(f"keypoint {k}: max |create_heatmap_representations - sympy| < 1e-6: True")

# %% [markdown]
# ## 3. The mask: a convex combination of motions (eq. 8-9)
#
# The hourglass ends with a $7 \times 7$ convolution giving $K + 1$ logits $\ell_k(z)$ per pixel,
# and a softmax over $k$ turns them into the mask $M_k(z) = e^{\ell_k} / \sum_j e^{\ell_j}$. Its
# entries are positive and sum to one, so eq. 9 is a **convex combination**: at every pixel the
# dense motion lies inside the convex hull of the $K + 1$ candidate positions $T_k(z)$. Where
# the mask is one-hot the motion is exactly one local affine motion; in between it blends
# smoothly. (A community TensorFlow port computed `sparse_motion * mask` and then summed
# `sparse_motion` instead of the product: the plain sum of all $K + 1$ candidates, which is not
# a motion at all; see the specification, section 10. Check (d) below would catch it.)

# %%
logits = sp.symbols("l0:4", real=True)
M = [sp.exp(l_) / sum(sp.exp(l_j) for l_j in logits) for l_ in logits]
assert sp.simplify(sum(M) - 1) == 0
assert all(M_k.is_positive for M_k in M)
print("softmax mask: every M_k > 0 and sum_k M_k = 1 (4 motions, symbolic logits)")
T_values = sp.symbols(
    "T0:4", real=True
)  # one coordinate of the four candidates at a pixel
blend = sum(M_k * T_k for M_k, T_k in zip(M, T_values))
same = sp.symbols("T", real=True)
assert sp.simplify(blend.subs({T_k: same for T_k in T_values}) - same) == 0
print("if every candidate agrees, the mask does not matter: sum_k M_k T = T")
print(inspect.getsource(combine_motions))

# %% [markdown]
# ## 4. The network, step by step
#
# `DenseMotionNetwork.call` in `fomm_tutorial/dense_motion.py`:

# %%
print(inspect.getsource(DenseMotionNetwork.call))

# %% [markdown]
# Line by line:
#
# * `self.downsample` is the anti-aliased $\times 0.25$ downsampling of chapter 4
#   (`scale_factor: 0.25`): the motion is estimated at a quarter of the resolution;
# * `create_heatmap_representations` (eq. 6) gives `(B, h, w, K+1)`;
# * `create_sparse_motions` (eq. 4) gives the `(B, K+1, h, w, 2)` candidate grids;
# * `create_deformed_source_image` (eq. 7) samples the downsampled source with each of them
#   (`grid_sample`, bilinear, zero padding, `align_corners=True`, chapter 4): `(B, K+1, h, w, C)`;
# * `hourglass_input` stacks, for each motion $k$, its heatmap channel and its $C$ colour channels
#   (k-major, as the original's `cat(dim=2).view`): `(B, h, w, (K+1)(C+1))`;
# * the hourglass (the U-Net of chapter 5) and two $7 \times 7$ heads: `mask` (softmax over the
#   $K+1$ channels) and `occlusion` (sigmoid, one channel);
# * `combine_motions` is eq. 9.
#
# Keypoints are coordinates: under mixed precision they are kept in float32 (the casts at the top).
#
# The network inside the fixture's generator is loaded from the converted checkpoint
# `vox-256-tiny-cpk.pth.tar` where the fixture is present (random but non-trivial weights saved by
# the original PyTorch code); elsewhere it is built with its initial weights.


# %%
def load_models():
    """The fixture's converted networks, or freshly built ones where the fixture is absent."""
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
# The keypoints are placed **by hand** on the photograph (the face, the shuttle model, the flag,
# the helmet and the mission badge), so that each part moves differently and the figures are
# readable (a trained detector, chapter 10, finds such points by itself; this untrained one would
# put all five near the centre, chapter 5). The
# source Jacobians are the identity; each driving keypoint is moved and its Jacobian is a rotation
# by $\theta_k$ and a scaling by $s_k$, so that around $p_k^D$ the part appears turned by $\theta_k$
# and enlarged $s_k$ times.

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
    return scale * np.array(
        [[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]], np.float32
    )


def make_keypoints(kp_source=KP_SOURCE, shift=SHIFT, angle_deg=ANGLE_DEG, scale=SCALE):
    kp_s = {
        "value": tf.constant(kp_source[None]),
        "jacobian": tf.constant(
            np.tile(np.eye(2, dtype=np.float32), (1, NUM_KP, 1, 1))
        ),
    }
    jac_d = np.stack(
        [rotation_scale(a_, s_) for a_, s_ in zip(angle_deg, scale)]
    ).astype(np.float32)
    kp_d = {
        "value": tf.constant((kp_source + shift)[None]),
        "jacobian": tf.constant(jac_d[None]),
    }
    return kp_s, kp_d


kp_source, kp_driving = make_keypoints()
print("parts:", PARTS)
print("source keypoints: ", rounded(kp_source["value"][0].numpy(), 2))
print("driving keypoints:", rounded(kp_driving["value"][0].numpy(), 2))

# %% [markdown]
# Now every step of `call`, one at a time, with its shape:

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
print(
    "hourglass input channels: (K+1)(C+1) =",
    (NUM_KP + 1),
    "x",
    4,
    "=",
    net_input.shape[-1],
)

# %% [markdown]
# The published vox-256 network has the same structure with 10 keypoints, 64 base channels and 5
# blocks: its input has $(10 + 1)(3 + 1) = 44$ channels at $64 \times 64$, the hourglass ends with
# $64 + 44 = 108$ channels, and its trainable parameter count is the one computed in the
# specification (section 2.2).

# %%
vox_dmn = OcclusionAwareGenerator.from_config_dict(
    load_config("vox-256")
).dense_motion_network
kp_zero = {"value": tf.zeros((1, 10, 2)), "jacobian": tf.eye(2, batch_shape=(1, 10))}
vox_out = vox_dmn(
    tf.zeros((1, 256, 256, 3)), kp_driving=kp_zero, kp_source=kp_zero, training=False
)
vox_trainable = int(sum(np.prod(v.shape) for v in vox_dmn.trainable_weights))
print(
    "vox-256: sparse_deformed",
    tuple(vox_out["sparse_deformed"].shape),
    "| mask",
    tuple(vox_out["mask"].shape),
    "| hourglass out",
    vox_dmn.hourglass.out_filters,
    "| trainable parameters:",
    f"{vox_trainable:,}",
)
assert vox_dmn.hourglass.out_filters == 108 and tuple(vox_out["mask"].shape) == (
    1,
    64,
    64,
    11,
)
assert vox_trainable == 37_730_268
del vox_dmn, vox_out

# %% [markdown]
# ## 5. Pictures
#
# ### The candidate motions
#
# The first panel is the source with its keypoints (crosses) and the driving keypoints (circles);
# the others show the source warped by each candidate $T_k$ at full resolution
# (`create_deformed_source_image` works at any size). Motion 0 is the identity. In panel $k$ the
# whole image moves like part $k$: the content around the source keypoint $p_k^S$ (cross) appears
# around the driving keypoint $p_k^D$ (circle), turned and scaled by $J_k^S (J_k^D)^{-1}$; areas
# read from outside the source are black (zero padding).

# %%
COLOURS = plt.cm.gist_rainbow(np.linspace(0, 1, NUM_KP, endpoint=False))


def to_pixels(coords, size):
    """Normalised [-1, 1] coordinates -> pixel coordinates (align_corners=True convention)."""
    return (np.asarray(coords) + 1) / 2 * (size - 1)


def draw_points(ax, kp_s, kp_d, size, only=None):
    for k in range(NUM_KP) if only is None else [only]:
        ax.plot(*to_pixels(kp_s[k], size), "+", color=COLOURS[k], ms=11, mew=2)
        ax.plot(
            *to_pixels(kp_d[k], size), "o", mfc="none", color=COLOURS[k], ms=9, mew=2
        )


kp_s_np, kp_d_np = kp_source["value"][0].numpy(), kp_driving["value"][0].numpy()
full_motion = create_sparse_motions(
    kp_driving, kp_source, (SIZE, SIZE)
)  # (1, K+1, SIZE, SIZE, 2)
full_deformed = create_deformed_source_image(
    astronaut, full_motion
).numpy()  # (1, K+1, SIZE, SIZE, 3)
fig, axes = plt.subplots(1, NUM_KP + 2, figsize=(2.3 * (NUM_KP + 2), 2.8), dpi=72)
axes[0].imshow(astronaut[0].numpy())
draw_points(axes[0], kp_s_np, kp_d_np, SIZE)
axes[0].set_title("source, + p^S, o p^D", fontsize=9)
for k in range(NUM_KP + 1):
    axes[k + 1].imshow(np.clip(full_deformed[0, k], 0, 1))
    if k > 0:
        draw_points(axes[k + 1], kp_s_np, kp_d_np, SIZE, only=k - 1)
    axes[k + 1].set_title(
        "T_0: background"
        if k == 0
        else f"T_{k} {PARTS[k - 1]}: {ANGLE_DEG[k - 1]:+.0f} deg, x{SCALE[k - 1]:.1f}",
        fontsize=9,
    )
for ax in axes:
    ax.set_xticks([]), ax.set_yticks([])
plt.tight_layout()
plt.show()

# %% [markdown]
# ### The network's inputs and outputs
#
# Top row: the heatmap differences $H_k$ (red positive around $p_k^D$, blue negative around
# $p_k^S$; $H_0 = 0$) at the motion resolution. Middle row: the deformed sources the hourglass
# sees, at the same resolution. Bottom row: the masks $M_k$ and the occlusion map, as computed by
# the fixture's **untrained** network: they are smooth and roughly uniform, not yet tied to the
# parts. Training (chapters 8-10) makes each $M_k$ cover the region that moves with keypoint $k$
# and the occlusion map dark where $D$ shows something $S$ hides.

# %%
heat_np, deformed_np, mask_np = (
    heatmap[0].numpy(),
    deformed_source[0].numpy(),
    mask[0].numpy(),
)
extent = [-1, 1, 1, -1]
fig, axes = plt.subplots(3, NUM_KP + 2, figsize=(2.1 * (NUM_KP + 2), 6.6))
for k in range(NUM_KP + 1):
    axes[0, k].imshow(heat_np[..., k], cmap="bwr", vmin=-1, vmax=1, extent=extent)
    axes[0, k].set_title(f"H_{k}", fontsize=9)
    axes[1, k].imshow(np.clip(deformed_np[k], 0, 1), extent=extent)
    axes[1, k].set_title(f"deformed source {k}", fontsize=9)
    axes[2, k].imshow(mask_np[..., k], cmap="viridis", vmin=0, vmax=1, extent=extent)
    axes[2, k].set_title(f"M_{k}: mean {mask_np[..., k].mean():.2f}", fontsize=9)
    if k > 0:
        axes[0, k].plot(*kp_d_np[k - 1], "ko", mfc="none", ms=8)
        axes[0, k].plot(*kp_s_np[k - 1], "k+", ms=9)
axes[0, -1].axis("off"), axes[1, -1].axis("off")
axes[2, -1].imshow(
    occlusion_map[0, ..., 0].numpy(), cmap="gray", vmin=0, vmax=1, extent=extent
)
axes[2, -1].set_title("occlusion map", fontsize=9)
for ax in axes.ravel():
    ax.set_xticks([]), ax.set_yticks([])
plt.tight_layout()
plt.show()
print("mask means per motion:", rounded(mask_np.mean(axis=(0, 1)), 3))
print(
    "occlusion map range:",
    rounded([occlusion_map.numpy().min(), occlusion_map.numpy().max()], 3),
)

# %% [markdown]
# ### The combined motion field
#
# To see what eq. 9 does with a *meaningful* mask, we also build one by hand: logit
# $\beta\, G_k^D(z)$ for keypoint $k$ (a Gaussian around its driving position, variance 0.04, so
# twice as wide as the heatmaps' $\sigma$; $\beta = 12$) and a constant $c = 4$ for the background,
# so that each part's motion wins near its driving keypoint and the background elsewhere. This is
# roughly what a trained network learns (plus the boundaries of the parts, which Gaussians do not
# know). Each row shows the mask as colours (the colour of the winning keypoint, grey for the
# background), the displacement $\hat{\mathcal{T}}(z) - z$ as arrows and as a colour wheel image
# (hue = direction, brightness = length), and the source warped with the dense motion (the
# deformation is upsampled to full resolution, as the generator does with `deform_input`,
# chapter 7). The arrows point from a pixel of the driving frame to where it reads the source.


# %%
def hand_mask(kp_d, size, beta=12.0, background=4.0, variance=0.04):
    """Softmax of [background, beta * Gaussian around each driving keypoint]: (1, h, w, K+1)."""
    gauss = kp2gaussian(kp_d["value"], (size, size), variance)  # (1, h, w, K)
    logit = tf.concat(
        [tf.fill(tf.shape(gauss[..., :1]), background), beta * gauss], axis=-1
    )
    return tf.nn.softmax(logit, axis=-1)


def flow_colours(displacement):
    """Displacement (h, w, 2) -> RGB: hue = direction, value = length / max length."""
    angle = (np.arctan2(displacement[..., 1], displacement[..., 0]) + np.pi) / (
        2 * np.pi
    )
    length = np.linalg.norm(displacement, axis=-1)
    hsv = np.stack(
        [angle, np.ones_like(angle), length / max(length.max(), 1e-6)], axis=-1
    )
    return hsv_to_rgb(hsv)


def mask_colours(mask_hw):
    """(h, w, K+1) mask -> RGB mixture of the keypoint colours (grey = background)."""
    palette = np.concatenate([[[0.5, 0.5, 0.5]], COLOURS[:, :3]], axis=0)
    return np.clip(mask_hw @ palette, 0, 1)


identity_hw = make_coordinate_grid(h, w).numpy()
mask_by_hand = hand_mask(kp_driving, h)
rows = [("hand-made mask", mask_by_hand), ("network mask", mask)]
fig, axes = plt.subplots(2, 4, figsize=(13, 6.6), dpi=72)
step = max(1, h // 16)
for row, (name, mask_used) in enumerate(rows):
    field = combine_motions(mask_used, sparse_motion)  # (1, h, w, 2)
    displacement = field[0].numpy() - identity_hw
    warped = deform_input(astronaut, field)[0].numpy()
    axes[row, 0].imshow(mask_colours(mask_used[0].numpy()), extent=extent)
    axes[row, 0].set_title(f"{name}", fontsize=10)
    axes[row, 1].imshow(astronaut[0].numpy(), extent=extent, alpha=0.5)
    axes[row, 1].quiver(
        identity_hw[::step, ::step, 0],
        identity_hw[::step, ::step, 1],
        displacement[::step, ::step, 0],
        displacement[::step, ::step, 1],
        angles="xy",
        scale_units="xy",
        scale=1,
        color="k",
        width=0.004,
    )
    axes[row, 1].set_xlim(-1, 1), axes[row, 1].set_ylim(1, -1)
    axes[row, 1].set_title("displacement T(z) - z", fontsize=10)
    axes[row, 2].imshow(flow_colours(displacement), extent=extent)
    axes[row, 2].set_title(
        f"colour wheel, max length {np.linalg.norm(displacement, axis=-1).max():.2f}",
        fontsize=10,
    )
    axes[row, 3].imshow(np.clip(warped, 0, 1))
    draw_points(axes[row, 3], kp_s_np, kp_d_np, SIZE)
    axes[row, 3].set_title("source warped by the dense motion", fontsize=10)
for ax in axes.ravel():
    ax.set_xticks([]), ax.set_yticks([])
plt.tight_layout()
plt.show()

# %% [markdown]
# With the hand-made mask every part is moved by its own affine motion and the rest of the image
# stays put; the seams between parts are where the mask changes quickly. The untrained network's
# mask mixes all candidates almost evenly, so its dense motion is close to their average, a
# blurry compromise: the generator of chapter 7 has to undo this until training has shaped the
# mask.
#
# ## 6. Checks
#
# Closed forms that always run (on the photograph's keypoints and on random ones):
#
# * `create_sparse_motions` is eq. 4 evaluated with NumPy (`np.linalg.inv`), sends $p_k^D$ to
#   $p_k^S$, is the identity for a keypoint that does not move with equal Jacobians, and is a pure
#   translation without Jacobians;
# * `create_heatmap_representations` is eq. 6 with NumPy;
# * `hourglass_input` puts the heatmap of motion $k$ in channel $(C+1)k$ followed by its colours;
# * every mask sums to one, and the dense motion is the NumPy $\sum_k M_k T_k$ and lies, per pixel
#   and coordinate, between the smallest and largest candidate (convex combination);
#
# and, where the fixture is present, the network against the arrays the original PyTorch code
# computed from the fixture's source and keypoints (`generator/mask`, `generator/occlusion_map`
# within the README's $10^{-5}$; `generator/sparse_deformed` and `generator/deformed`, images
# *sampled* at positions computed from keypoints, within $5 \cdot 10^{-5}$ like the parity tests,
# since float32 rounding of a position is multiplied by the image gradient). The fixture does not
# store the deformation itself; `generator/deformed` is the source warped by it, so it checks the
# deformation too.

# %%
rng = np.random.default_rng(1)
B, K, hh, ww = 2, NUM_KP, 9, 11
kp_s_rand = {
    "value": tf.constant(rng.uniform(-1, 1, (B, K, 2)), tf.float32),
    "jacobian": tf.constant(
        np.eye(2) + 0.3 * rng.standard_normal((B, K, 2, 2)), tf.float32
    ),
}
kp_d_rand = {
    "value": tf.constant(rng.uniform(-1, 1, (B, K, 2)), tf.float32),
    "jacobian": tf.constant(
        np.eye(2) + 0.3 * rng.standard_normal((B, K, 2, 2)), tf.float32
    ),
}
grid_np = make_coordinate_grid(hh, ww).numpy()

# (a) eq. 4 with NumPy, T_k(p^D) = p^S, no motion -> identity, no Jacobian -> translation
motions = create_sparse_motions(kp_d_rand, kp_s_rand, (hh, ww)).numpy()
A = kp_s_rand["jacobian"].numpy() @ np.linalg.inv(kp_d_rand["jacobian"].numpy())
expected = (
    np.einsum(
        "bkij,bkhwj->bkhwi",
        A,
        grid_np[None, None] - kp_d_rand["value"].numpy()[:, :, None, None],
    )
    + kp_s_rand["value"].numpy()[:, :, None, None]
)
assert np.abs(motions[:, 1:] - expected).max() < 1e-5
kp_on_grid = {
    "value": tf.constant(grid_np[[2, 6], [3, 8]][None].repeat(B, 0)),
    "jacobian": kp_d_rand["jacobian"][:, :2],
}
at_kp = create_sparse_motions(
    kp_on_grid,
    {"value": kp_s_rand["value"][:, :2], "jacobian": kp_s_rand["jacobian"][:, :2]},
    (hh, ww),
).numpy()
assert np.abs(at_kp[:, 1, 2, 3] - kp_s_rand["value"].numpy()[:, 0]).max() < 1e-5
assert np.abs(at_kp[:, 2, 6, 8] - kp_s_rand["value"].numpy()[:, 1]).max() < 1e-5
still = create_sparse_motions(kp_s_rand, kp_s_rand, (hh, ww)).numpy()
assert np.abs(still - grid_np).max() < 1e-5
no_jac = create_sparse_motions(
    {"value": kp_d_rand["value"]}, {"value": kp_s_rand["value"]}, (hh, ww)
).numpy()
shift = (kp_s_rand["value"].numpy() - kp_d_rand["value"].numpy())[:, :, None, None]
assert np.abs(no_jac[:, 1:] - (grid_np + shift)).max() < 1e-6
print(
    "(a) sparse motions: eq. 4 (NumPy), T_k(p^D) = p^S, no motion -> identity, zero order -> translation: True"
)

# (b) eq. 6 with NumPy
heat = create_heatmap_representations(kp_d_rand, kp_s_rand, (hh, ww)).numpy()
g = lambda kp: np.exp(
    -0.5 * ((grid_np[None, :, :, None] - kp[:, None, None]) ** 2).sum(-1) / 0.01
)
assert (
    np.abs(
        heat[..., 1:] - (g(kp_d_rand["value"].numpy()) - g(kp_s_rand["value"].numpy()))
    ).max()
    < 1e-6
)
assert np.all(heat[..., 0] == 0)
print("(b) heatmap differences: eq. 6 (NumPy), background channel zero: True")

# (c) hourglass_input channel order: k-major, heatmap first
images_rand = tf.constant(rng.uniform(0, 1, (B, hh, ww, 3)), tf.float32)
deformed_rand = create_deformed_source_image(
    images_rand, create_sparse_motions(kp_d_rand, kp_s_rand, (hh, ww))
)
stacked = hourglass_input(heat, deformed_rand).numpy()
for k in range(K + 1):
    assert np.array_equal(stacked[..., 4 * k], heat[..., k])
    assert np.array_equal(
        stacked[..., 4 * k + 1 : 4 * k + 4], deformed_rand.numpy()[:, k]
    )
print("(c) hourglass input: channel 4k = H_k, 4k+1..4k+3 = deformed source k: True")

# (d) the mask is a partition of unity and the deformation a convex combination
for name, mask_used in [("network", mask), ("hand-made", mask_by_hand)]:
    assert np.abs(mask_used.numpy().sum(-1) - 1).max() < 1e-5
    assert np.all(mask_used.numpy() >= 0)
    field = combine_motions(mask_used, sparse_motion).numpy()
    numpy_field = np.einsum(
        "bhwk,bkhwc->bhwc", mask_used.numpy(), sparse_motion.numpy()
    )
    assert np.abs(field - numpy_field).max() < 1e-5
    lower, upper = sparse_motion.numpy().min(axis=1), sparse_motion.numpy().max(axis=1)
    assert np.all(field >= lower - 1e-5) and np.all(field <= upper + 1e-5)
    print(
        f"(d) {name} mask: sums to 1, deformation = sum_k M_k T_k inside the candidates' range: True"
    )

# (e) the reference fixture: the original's dense motion outputs on its own inputs
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
        print(
            f"(e) generator/{key} {tuple(out[key].shape)}: max |TF - PyTorch| < {atol:.0e}: True"
        )
else:
    print("(e) reference fixture absent: parity check skipped")

# %% [markdown]
# ## 7. Widget: move a driving keypoint, turn its Jacobian
#
# Pick a keypoint, move its driving position and change the rotation and scale of its driving
# Jacobian. The panels show ($+$ source keypoint, $\circ$ driving keypoint) the source
# warped by that keypoint's candidate motion $T_k$ alone, by the dense motion with the hand-made
# mask (only the neighbourhood of $p_k^D$ follows), and by the dense motion of the fixture's
# network with its mask. Turning the driving Jacobian by $\theta$ turns the part by $\theta$
# around $p_k^D$, since $T_k$ applies the inverse rotation to the driving coordinates.


# %%
# NBVAL_IGNORE_OUTPUT
def show_motion(k=0, dx=0.1, dy=0.08, angle=20.0, scale=1.0):
    shift, angles, scales = SHIFT.copy(), ANGLE_DEG.copy(), SCALE.copy()
    shift[k], angles[k], scales[k] = (dx, dy), angle, scale
    kp_s, kp_d = make_keypoints(shift=shift, angle_deg=angles, scale=scales)
    single = create_deformed_source_image(
        astronaut, create_sparse_motions(kp_d, kp_s, (SIZE, SIZE))[:, k + 1 : k + 2]
    ).numpy()[0, 0]
    motion = create_sparse_motions(kp_d, kp_s, (h, w))
    by_hand = deform_input(astronaut, combine_motions(hand_mask(kp_d, h), motion))[
        0
    ].numpy()
    network = dmn(astronaut, kp_driving=kp_d, kp_source=kp_s, training=False)
    by_network = deform_input(astronaut, network["deformation"])[0].numpy()
    s_np, d_np = kp_s["value"][0].numpy(), kp_d["value"][0].numpy()
    # Small (72 dpi, about 110 px per panel): the widget's first output is stored in the
    # notebook, and large widget outputs stall nbclient while the notebook is built.
    fig, axes = plt.subplots(1, 3, figsize=(6.0, 2.3), dpi=72)
    panels = [
        (single, f"T_{k + 1} ({PARTS[k]}) alone"),
        (by_hand, "dense, hand-made mask"),
        (by_network, "dense, network mask"),
    ]
    for ax, (image, title) in zip(axes, panels):
        ax.imshow(np.clip(image, 0, 1))
        draw_points(ax, s_np, d_np, SIZE, only=k)
        ax.set_title(title, fontsize=9)
        ax.set_xticks([]), ax.set_yticks([])
    plt.tight_layout()
    plt.show()


interact(
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
# * Each keypoint gives a candidate **backward** motion $T_k(z) = p_k^S + J_k^S (J_k^D)^{-1}(z -
#   p_k^D)$ (eq. 4): the composition of two local affine maps through the reference frame, which
#   cancels. Motion 0 is the identity (background).
# * The dense motion network sees the **heatmap differences** (eq. 6, zero for a keypoint that does
#   not move) and the source **warped by every candidate** (eq. 7), interleaved per motion, at a
#   quarter of the resolution.
# * Its **softmax mask** makes the dense motion a **convex combination** of the candidates (eq.
#   8-9); a sigmoid head predicts the **occlusion map** that chapter 7 multiplies the warped
#   features by.
# * The port reproduces the original's masks and occlusion maps within $10^{-5}$ and its warped
#   images within $5 \cdot 10^{-5}$ on the reference fixture.
#
# Next, chapter 7 uses the deformation and the occlusion map inside the generator.
