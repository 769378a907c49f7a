# %% [markdown]
# # 7. The occlusion-aware generator: warping features, not pixels
#
# [Chapter 6](06_dense_motion.ipynb) turned two sets of keypoints into a dense
# **backward** motion field: for every position $z$ of the driving frame, the
# deformation $\hat{\mathcal{T}}_{S \leftarrow D}(z)$ says where to look in the source,
# and an **occlusion map** $\hat{\mathcal{O}}_{S \leftarrow D}(z) \in [0, 1]$ says how
# much of what is found there can be trusted. The generator turns both into the output
# frame.
#
# **Why warp features, not pixels?** Warping the source *pixels* with the deformation
# (the `deformed` output, the `grid_sample` of [chapter 4](04_resampler.ipynb)) can only
# move what the source shows. Whatever the driving frame shows and the source does not
# (the cheek of a head that turns, the teeth of a mouth that opens, the background
# behind a head that moves) comes out as a smear of the nearest visible pixels, or as
# the zeros of the padding. The First Order Motion Model
# ([Siarohin et al., NeurIPS 2019](https://arxiv.org/abs/2003.00196)) warps the
# **feature maps of an encoder** instead: each feature pixel describes a whole patch of
# the source (its receptive field, section 7.2) in many channels, and a decoder
# re-synthesises the image from the warped descriptions, so it can fill gaps from their
# context and smooth small motion errors. The motion is estimated at a quarter of the
# image resolution anyway, and after two `DownBlock2d` the features have exactly that
# size, so the warp needs no interpolation of the motion.
#
# **Why occlusion?** Backward warping always finds *something* at
# $\hat{\mathcal{T}}(z)$, even where the true answer is "not in the source". The
# occlusion map multiplies the warped features (eq. 8 of the paper):
#
# $$\xi' = \hat{\mathcal{O}}_{S \leftarrow D} \odot
# f_w\big(\xi, \hat{\mathcal{T}}_{S \leftarrow D}\big),$$
#
# so where $\hat{\mathcal{O}} \approx 0$ the decoder receives (almost) nothing and has
# to **inpaint**, and where $\hat{\mathcal{O}} \approx 1$ it can copy. Nobody labels
# occlusions: the map is learned only because it lowers the reconstruction loss of
# [chapter 8](08_losses.ipynb).
#
# This chapter
#
# 1. derives the feature warp, its gradient, the occlusion product and two special
#    motions with sympy (7.1);
# 2. derives the sizes, receptive fields and parameter counts of the encoder, bottleneck
#    and decoder, and asserts them against the built layers (7.2);
# 3. runs the generator step by step, printing every shape (7.3);
# 4. shows source, `deformed`, occlusion, warped features and prediction on a photograph
#    (7.4);
# 5. shows that equal source and driving keypoints give the identity (7.5), and how one
#    encoded source serves many driving frames (7.6);
# 6. runs the **trained** sprite model shipped with the package on sprites it never saw,
#    so you can see the generator at work (7.7), and a model trained on a real
#    talking-head clip on frames it never saw (7.8);
# 7. checks it all (closed forms, the outputs of the original code) and offers a widget
#    (7.9, 7.10).
#
# The code is in
# [`fomm_tutorial/generator.py`](https://github.com/fomm-tutorial/fomm-tutorial/blob/main/fomm_tutorial/generator.py)
# (the original's
# [`modules/generator.py`](https://github.com/AliaksandrSiarohin/first-order-model/blob/master/modules/generator.py)).

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
from skimage import data as skdata

from fomm_tutorial.display import (
    image_grid,
    panels,
    show_equations,
    show_math,
    show_animation,
    show_source,
    static_slider,
    use_book_style,
)
from fomm_tutorial.runtime import quiet_stderr

# TensorFlow writes C++ start-up notices (oneDNN, CUDA) straight to the process's
# stderr, whatever TF_CPP_MIN_LOG_LEVEL says: import it and run a first op with stderr
# silenced.
with quiet_stderr():
    import keras
    import tensorflow as tf
    from fomm_tutorial.runtime import configure
    from fomm_tutorial.config import load_config
    from fomm_tutorial.checkpoint import build_models, load_original_checkpoint
    from fomm_tutorial.generator import OcclusionAwareGenerator, deform_input
    from fomm_tutorial.grids import make_coordinate_grid
    from fomm_tutorial.pretrained import heldout_clip, load_pretrained
    from fomm_tutorial.resampler import grid_sample, warp_shared_source
    from fomm_tutorial.sprites import heldout_videos
    from fomm_tutorial.visualization import kp_colours, kp_to_pixels, side_by_side
    from fomm_tutorial.reference import find_reference_dir

    rt = configure(seed=0)
    tf.zeros(1) + 1  # the first op loads the remaining kernels
use_book_style()

# %%
# Parameters. The networks of this chapter are compared with a float32 reference, so
# they are built in float32 even on a GPU (where `configure` switched mixed precision
# on).
keras.mixed_precision.set_global_policy("float32")
SIZE = rt.choose(cpu=128, gpu=256)  # image side for the photograph
# The tiny config (5 keypoints, 128 px) for which the original PyTorch code's outputs
# were recorded; REFERENCE_DIR is None where those outputs are not installed.
CONFIG = load_config("vox-256-tiny")
REFERENCE_DIR = find_reference_dir()
GEN = CONFIG["model_params"]["generator_params"]
NUM_KP = CONFIG["model_params"]["common_params"]["num_kp"]
reference = "installed" if REFERENCE_DIR is not None else "not installed"
print(f"device: {rt.device} | image: {SIZE} x {SIZE} | keypoints: {NUM_KP}")
print(f"outputs of the original code: {reference}")
print("generator_params:")
for key, value in GEN.items():
    if key != "dense_motion_params":
        print(f"  {key}: {value}")

# %% [markdown]
# ## 7.1 The feature warp, derived
#
# The encoder output $\xi$ is an $h \times w$ map with $F$ channels; the deformation
# gives, for every output position, a normalised point $(x, y) \in [-1, 1]^2$. With
# `align_corners=True` ([chapter 4](04_resampler.ipynb): the semantics the published
# checkpoints were trained with) the point is read at pixel coordinates
# $u = \frac{x + 1}{2}(w - 1)$, $v = \frac{y + 1}{2}(h - 1)$ by bilinear interpolation
# of the four neighbouring feature pixels, every channel with the **same** weights, and
# zero outside the map. First: the identity grid of
# [chapter 3](03_coordinate_grids.ipynb) lands exactly on pixel centres, so an identity
# deformation copies the features exactly (all bilinear weight on one pixel).

# %%
x, j = sp.symbols("x j", real=True)
w_ = sp.symbols("w", positive=True)
to_pixel = (x + 1) / 2 * (w_ - 1)  # grid_sample, align_corners=True
identity_x = 2 * j / (w_ - 1) - 1  # make_coordinate_grid, column j
read_at = sp.simplify(to_pixel.subs(x, identity_x))
show_equations(
    [
        ("x_j", identity_x),
        (r"u(x_j) = \frac{x_j + 1}{2}(w - 1)", read_at),
    ]
)
assert sp.simplify(read_at - j) == 0

# %% [markdown]
# Between pixels $n$ and $n+1$ the warped feature is $(1 - a) F_n + a F_{n+1}$ with
# $a = u - n$. Its derivative with respect to the *normalised* sampling coordinate is
# the finite difference of the two features times $(w - 1)/2$: this is the path by which
# the reconstruction loss reaches the deformation, the dense-motion network and, through
# them, the keypoints of [chapter 5](05_keypoints.ipynb).

# %%
n = sp.symbols("n", integer=True)
F_n, F_n1 = sp.symbols("F_n F_{n+1}", real=True)
a = to_pixel - n
warped_1d = (1 - a) * F_n + a * F_n1
d_warped = sp.diff(warped_1d, x)
show_math(
    r"\frac{\partial}{\partial x}\big[(1 - a) F_n + a F_{n+1}\big]",
    "=",
    r"\frac{w - 1}{2}\,(F_{n+1} - F_n)",
)
assert sp.simplify(d_warped - (w_ - 1) / 2 * (F_n1 - F_n)) == 0

# %% [markdown]
# The weights do not depend on the channel, so the warp is a linear map
# $\xi \mapsto W_{\mathcal{T}}\, \xi$ on each channel and commutes with any mixing of
# the channels (a $1 \times 1$ convolution $M$): it moves descriptions without changing
# them. For two pixels (rows of $\xi$) and two channels (columns), with bilinear weights
# $(1 - \alpha, \alpha)$:

# %%
alpha = sp.symbols("alpha", real=True)
weights_row = sp.Matrix([[1 - alpha, alpha]])  # bilinear weights of 2 pixels
# Rows: pixels, columns: channels; `mixing` is a 1x1 convolution.
features_2x2 = sp.Matrix(2, 2, sp.symbols("xi_0a xi_0b xi_1a xi_1b"))
mixing = sp.Matrix(2, 2, sp.symbols("m_aa m_ab m_ba m_bb"))
warp_then_mix = (weights_row * features_2x2) * mixing
mix_then_warp = weights_row * (features_2x2 * mixing)
difference = sp.expand(mix_then_warp - warp_then_mix)
show_equations(
    [
        (r"W_{\mathcal{T}}", weights_row),
        (r"\xi", features_2x2),
        ("M", mixing),
        (r"W_{\mathcal{T}}\,(\xi M) - (W_{\mathcal{T}}\,\xi)\, M", difference),
    ]
)
assert difference == sp.zeros(1, 2)

# %% [markdown]
# The occlusion map is a sigmoid $\hat{\mathcal{O}} = \sigma(s)$ of a logit $s$ computed
# by the dense-motion hourglass, and multiplies every channel of the warped feature
# $F_w$. Its two derivatives say what it does to learning: the gradient flowing back
# into the warped features (hence into the encoder *and the motion*) is scaled by
# $\hat{\mathcal{O}}$, so a position declared occluded stops penalising the motion
# there; and the logit receives $\sigma(1 - \sigma) F_w$ times the incoming gradient, so
# the map opens where the warped content helps the reconstruction and closes where it
# hurts.

# %%
s, F_w = sp.symbols("s F_w", real=True)
occlusion = 1 / (1 + sp.exp(-s))
masked = occlusion * F_w
d_features, d_logit = sp.diff(masked, F_w), sp.diff(masked, s)
show_equations(
    [
        (r"\frac{\partial (\hat{\mathcal{O}} F_w)}{\partial F_w}", d_features),
        (r"\frac{\partial (\hat{\mathcal{O}} F_w)}{\partial s}", d_logit),
        ("", r"\hat{\mathcal{O}}\,(1 - \hat{\mathcal{O}})\, F_w"),
    ]
)
assert sp.simplify(d_features - occlusion) == 0
assert sp.simplify(d_logit - occlusion * (1 - occlusion) * F_w) == 0

# %% [markdown]
# Two motions can be predicted without running any network. The local motion of keypoint
# $k$ ([chapter 6](06_dense_motion.ipynb), eq. 4) is
# $\mathcal{T}_k(z) = p^S_k + J^S_k (J^D_k)^{-1} (z - p^D_k)$, and the deformation is
# $\sum_k M_k(z)\, \mathcal{T}_k(z)$ with a softmax mask ($\sum_k M_k = 1$) and
# $\mathcal{T}_0(z) = z$ for the background.
#
# * **Same keypoints** ($p^D = p^S$, $J^D = J^S$): every $\mathcal{T}_k$ is the
#   identity, so the deformation is the identity *whatever the mask*: the generator must
#   then decode the unwarped source features (times the occlusion map).
# * **A global affine motion** of the keypoints, $p^D_k = A p^S_k + t$ and
#   $J^D_k = A J^S_k$: every local motion collapses to the same backward affine map
#   $A^{-1}(z - t)$, and the deformation is $M_0(z)\, z + (1 - M_0(z))\, A^{-1}(z - t)$:
#   the network only decides, per position, how much "background" (no motion) to mix in.
#   Sections 7.3-7.4 and the widget use such motions.

# %%
z = sp.Matrix(sp.symbols("z_x z_y", real=True))
p_src = sp.Matrix(sp.symbols("p_x p_y", real=True))
J_src = sp.Matrix(2, 2, sp.symbols("J_00 J_01 J_10 J_11", real=True))
A_sym = sp.Matrix(2, 2, sp.symbols("A_00 A_01 A_10 A_11", real=True))
t_sym = sp.Matrix(sp.symbols("t_x t_y", real=True))


def local_motion(p_s, J_s, p_d, J_d):
    """Eq. 4 of the paper: T_k(z) = p_s + J_s J_d^-1 (z - p_d)."""
    return p_s + J_s * J_d.inv() * (z - p_d)


same = sp.simplify(local_motion(p_src, J_src, p_src, J_src))
affine = sp.simplify(local_motion(p_src, J_src, A_sym * p_src + t_sym, A_sym * J_src))
affine_residual = sp.simplify(affine - A_sym.inv() * (z - t_sym))
show_equations(
    [
        (r"\mathcal{T}_k(z)\big|_{p^D = p^S,\ J^D = J^S}", same),
        (
            r"\mathcal{T}_k(z)\big|_{p^D = A p^S + t,\ J^D = A J^S} - A^{-1}(z - t)",
            affine_residual,
        ),
    ]
)
assert same == z
assert affine_residual == sp.zeros(2, 1)
M0 = sp.symbols("M_0", nonnegative=True)
# Two foreground motions; the masks sum to 1.
M_fg = sp.symbols("M_1:3", nonnegative=True)
mix = M0 * z + sum((Mk * same for Mk in M_fg), sp.zeros(2, 1))
assert sp.simplify(mix.subs(M0, 1 - sum(M_fg)) - z) == sp.zeros(2, 1)

# %% [markdown]
# And with the masks summing to one, $\sum_k M_k \mathcal{T}_k(z) = z$ when every
# $\mathcal{T}_k(z) = z$ (asserted above for a background and two foreground motions).
#
# ## 7.2 Sizes, receptive fields and parameters
#
# The generator (the original's `modules/generator.py`) is a Johnson-style
# encoder-decoder **without skip connections** (a skip would carry unwarped source
# features straight to the output):
#
# | block | operation |
# | --- | --- |
# | `first` | `SameBlock2d`: $7 \times 7$ conv (padding 3), BN, ReLU; $C \to$ `block_expansion` |
# | `down_blocks[i]` | `DownBlock2d`: $3 \times 3$ conv (padding 1), BN, ReLU, average pool 2 |
# | *warp, occlusion* | `deform_input`, `* occlusion_map` |
# | `bottleneck[i]` | `ResBlock2d`: BN, ReLU, conv, BN, ReLU, conv, $+\,x$ (all $3 \times 3$) |
# | `up_blocks[i]` | `UpBlock2d`: nearest $\times 2$, $3 \times 3$ conv, BN, ReLU |
# | `final` | $7 \times 7$ conv (padding 3) to $C$ channels, sigmoid |
#
# (The blocks are those of [chapter 5](05_keypoints.ipynb).) Channels double at each
# down block, capped at `max_features`. A convolution with kernel $k$ and padding $p$
# maps a side $H$ to $H + 2p - k + 1$; the pool halves it (floor). With sympy, for an
# image side $H = 2^{n_d} m$:

# %%
m_side = sp.symbols("m", positive=True, integer=True)
ND, NB, BE, MF = (
    GEN["num_down_blocks"],
    GEN["num_bottleneck_blocks"],
    GEN["block_expansion"],
    GEN["max_features"],
)


def conv_side(side, k, p):
    return side + 2 * p - k + 1


def generator_sides(side, num_down, num_bottleneck):
    """(name, side) after each block, for an input side `side` (sympy or int)."""
    rows = [("source", side)]
    side = conv_side(side, 7, 3)
    rows.append(("first", side))
    for i in range(num_down):
        side = sp.floor(conv_side(side, 3, 1) / 2)
        rows.append((f"down_blocks_{i}", side))
    rows.append(("warp x occlusion", side))
    for i in range(num_bottleneck):
        side = conv_side(conv_side(side, 3, 1), 3, 1)
        rows.append((f"bottleneck_r{i}", side))
    for i in range(num_down):
        side = conv_side(2 * side, 3, 1)
        rows.append((f"up_blocks_{i}", side))
    rows.append(("final", conv_side(side, 7, 3)))
    return rows


H_general = 2**ND * m_side
sides = generator_sides(H_general, ND, NB)
m_value = SIZE // 2**ND
show_equations(
    [
        (
            r"\mathtt{" + name.replace("_", r"\_").replace(" ", r"\ ") + "}",
            rf"{sp.latex(side)} \quad ({int(side.subs(m_side, m_value))}"
            rf"\text{{ at }} H = {SIZE})",
        )
        for name, side in sides
    ]
)
assert sides[-1][1] == H_general
# The dense-motion network works at ceil(H * scale_factor) = ceil(H / 4) (chapter 6).
motion_side = sp.ceiling(H_general * sp.Rational(1, 4))
assert sp.simplify(motion_side - sides[ND + 1][1]) == 0
show_math(
    r"\text{motion side } \lceil H/4 \rceil =",
    motion_side,
    r"= \text{feature side: the warp needs no resize}",
)

# %% [markdown]
# The output has the input's size only if $H$ is divisible by $2^{n_d} = 4$; the
# dense-motion hourglass ([chapter 6](06_dense_motion.ipynb)) adds its own condition,
# $H/4$ divisible by $2^{n_b}$, with $n_b$ its `num_blocks`: 32 for the tiny config,
# 128 for vox-256.
# Where the motion and feature sizes differ, `deform_input` and the generator resize the
# deformation and the occlusion map bilinearly, as the original does.
#
# **Receptive field of a feature pixel.** A layer with kernel $k$ adds $(k - 1)$ times
# the current *jump* (distance in image pixels between neighbouring positions) to the
# receptive field; a stride-2 pool doubles the jump. The encoder is $7 \times 7$, then
# per down block a $3 \times 3$ conv and a $2 \times 2$ pool:

# %%
i_sym, nd_sym = sp.symbols("i n_d", nonnegative=True, integer=True)


def receptive_field(layers):
    """(kernel, stride, padding) per layer -> (field, jump, start) of output pixel 0.

    All three in input pixels: the field's width, the distance between neighbouring
    outputs, and the first input pixel output 0 sees.
    """
    field, jump, start = 1, 1, 0
    for kernel, stride, padding in layers:
        field += (kernel - 1) * jump
        start -= padding * jump
        jump *= stride
    return field, jump, start


encoder_layers = [(7, 1, 3)] + [(3, 1, 1), (2, 2, 0)] * ND
field, jump, start = receptive_field(encoder_layers)
closed_form = 7 + sp.summation(3 * 2**i_sym, (i_sym, 0, nd_sym - 1))
show_equations(
    [
        (r"\text{field}(n_d)", r"7 + \sum_{i=0}^{n_d - 1} 3 \cdot 2^i"),
        ("", sp.simplify(closed_form)),
        (r"\text{field}(2)", closed_form.subs(nd_sym, ND)),
    ]
)
last = start + field - 1
print(f"jump {jump}: feature pixel i covers image pixels")
print(f"  [{jump}i - {-start}, {jump}i + {last}]")
assert field == closed_form.subs(nd_sym, ND) and jump == 2**ND
# Centre of that field vs. the position the align_corners grid gives feature pixel i.
h_sym = sp.symbols("h", positive=True, integer=True)
centre = jump * i_sym + sp.Rational(2 * start + field - 1, 2)
grid_position = i_sym * (jump * h_sym - 1) / (h_sym - 1)
offset = sp.factor(sp.simplify(grid_position - centre))
show_equations(
    [
        (r"\Delta(i) = \text{grid position} - \text{field centre}", offset),
        (r"\Delta(0)", offset.subs(i_sym, 0)),
        (r"\Delta(h - 1)", sp.simplify(offset.subs(i_sym, h_sym - 1))),
    ]
)
bottleneck_field = 1 + 2 * 2 * NB
print(f"bottleneck: {NB} residual blocks of two 3x3 convs")
print(f"  receptive field {bottleneck_field} feature pixels")
print(f"  (vox-256, 6 blocks: {1 + 2 * 2 * 6})")

# %% [markdown]
# So each warped feature describes a $16 \times 16$ patch of the source, and the
# bottleneck mixes a $9 \times 9$ (vox-256: $25 \times 25$) neighbourhood of warped
# features: this context is what lets the decoder inpaint an occluded region from its
# surroundings. The grid places feature pixel $i$ at $i (H - 1)/(h - 1)$ while its
# receptive field is centred on $4i + 3/2$, up to $\pm 1.5$ image pixels apart at the
# borders: a fixed offset (both frames go through the same networks) that the weights
# absorb, like the heatmap stretch of [chapter 5](05_keypoints.ipynb). Both fields are
# checked with gradients in section 7.3.
#
# **Parameters.** A convolution has $k^2 C_{in} C_{out}$ weights and $C_{out}$ biases; a
# batch norm has $\gamma, \beta$ (trained) and the running mean and variance (not
# trained), $4 C_{out}$ in all, which Keras' `count_params()` includes.

# %%
c_in, c_out, k_sym, c_sym = sp.symbols(
    "C_{in} C_{out} k C", positive=True, integer=True
)
conv_params = k_sym**2 * c_in * c_out + c_out
norm_params, norm_trainable = 4 * c_out, 2 * c_out
conv_norm_block = conv_params + norm_params  # SameBlock2d, DownBlock2d, UpBlock2d
res_block = 2 * conv_params.subs(
    {c_in: c_sym, c_out: c_sym, k_sym: 3}
) + 2 * norm_params.subs(c_out, c_sym)
res_block_trainable = res_block - 2 * 2 * c_sym
show_equations(
    [
        (r"\text{conv + BN block}", sp.factor(conv_norm_block)),
        (r"\quad\text{trainable}", sp.factor(conv_params + norm_trainable)),
        (r"\text{residual block}", sp.expand(res_block)),
        (r"\quad\text{trainable}", sp.expand(res_block_trainable)),
    ]
)


def block_specs(
    num_channels, block_expansion, max_features, num_down_blocks, num_bottleneck_blocks
):
    """(name, kind, C_in, C_out, k) of every block, as OcclusionAwareGenerator builds
    them."""

    def ch(i):
        return min(max_features, block_expansion * 2**i)

    specs = [("first", "block", num_channels, block_expansion, 7)]
    specs += [
        (f"down_blocks_{i}", "block", ch(i), ch(i + 1), 3)
        for i in range(num_down_blocks)
    ]
    specs += [
        (f"bottleneck_r{i}", "res", ch(num_down_blocks), ch(num_down_blocks), 3)
        for i in range(num_bottleneck_blocks)
    ]
    specs += [
        (
            f"up_blocks_{i}",
            "block",
            ch(num_down_blocks - i),
            ch(num_down_blocks - i - 1),
            3,
        )
        for i in range(num_down_blocks)
    ]
    specs += [("final", "conv", block_expansion, num_channels, 7)]
    return specs


def formula(kind, cin, cout, k, trainable=False):
    if kind == "res":
        return int((res_block_trainable if trainable else res_block).subs(c_sym, cin))
    if kind == "conv":
        expr = conv_params
    else:
        expr = conv_params + norm_trainable if trainable else conv_norm_block
    return int(expr.subs({c_in: cin, c_out: cout, k_sym: k}))


# %% [markdown]
# Section 7.3 asserts these formulas block by block against the layers of the tiny
# generator. For vox-256 we build the same blocks (without the dense-motion network) on
# a tiny input, since their weights do not depend on the image size, and compare with
# the original code: its vox-256 generator
# ([`modules/generator.py`](https://github.com/AliaksandrSiarohin/first-order-model/blob/master/modules/generator.py)
# with `config/vox-256.yaml`, the shapes of the published `vox-cpk.pth.tar`) has
# 45,575,391 trainable parameters, of which the dense-motion network has 37,730,268.

# %%
VOX = load_config("vox-256")
vox_gen = OcclusionAwareGenerator.from_config_dict(VOX)
vox_p = VOX["model_params"]["generator_params"]
vox_specs = block_specs(
    3,
    vox_p["block_expansion"],
    vox_p["max_features"],
    vox_p["num_down_blocks"],
    vox_p["num_bottleneck_blocks"],
)
h_vox = vox_gen.first(tf.zeros((1, 8, 8, 3)))
for block in vox_gen.down_blocks + vox_gen.bottleneck + vox_gen.up_blocks:
    h_vox = block(h_vox, training=False)
vox_gen.final(h_vox)
vox_layers = [
    vox_gen.first,
    *vox_gen.down_blocks,
    *vox_gen.bottleneck,
    *vox_gen.up_blocks,
    vox_gen.final,
]
vox_trainable = sum(
    int(sum(np.prod(v.shape) for v in layer.trainable_weights)) for layer in vox_layers
)
vox_formula = sum(
    formula(kind, cin, cout, k, trainable=True) for _, kind, cin, cout, k in vox_specs
)
vox_res = sum(
    formula(kind, cin, cout, k, trainable=True)
    for _, kind, cin, cout, k in vox_specs
    if kind == "res"
)
print("vox-256 encoder + bottleneck + decoder, trainable parameters:")
print(f"  formula {vox_formula:,} | built {vox_trainable:,}")
print(f"  original 45,575,391 - 37,730,268 = {45_575_391 - 37_730_268:,}")
print(f"  of which the 6 residual blocks: {vox_res:,}")
assert vox_formula == vox_trainable == 45_575_391 - 37_730_268
del vox_gen, h_vox, vox_layers

# %% [markdown]
# 90 % of the vox-256 generator's own parameters sit in the bottleneck, at the lowest
# resolution, where they are cheap to run and see the widest context.
#
# ## 7.3 The generator, step by step
#
# `OcclusionAwareGenerator.encode_source`, `OcclusionAwareGenerator.call` and
# `deform_input`, from
# [`fomm_tutorial/generator.py`](https://github.com/fomm-tutorial/fomm-tutorial/blob/main/fomm_tutorial/generator.py):

# %% tags=["remove-input"]
show_source(
    OcclusionAwareGenerator.encode_source, OcclusionAwareGenerator.call, deform_input
)

# %% [markdown]
# Line by line:
#
# * `encode_source` runs `first` and the down blocks (the features $\xi$ of the paper)
#   and keeps the source at the motion resolution for the dense-motion network; both
#   depend on the source only (section 7.6 reuses them).
# * `dense_motion_network` ([chapter 6](06_dense_motion.ipynb)) returns the mask, the
#   sparse deformed sources, the `deformation` $(B, h, w, 2)$ and the `occlusion_map`
#   $(B, h, w, 1)$.
# * `deform_input(out, deformation)` is `grid_sample` (bilinear, zeros,
#   `align_corners=True`): the feature warp of section 7.1. It resizes the deformation
#   first only if the sizes differ.
# * `out * occlusion_map` is eq. 8 (resized first only if the sizes differ).
# * `deformed`, the *pixels* warped by the same deformation (upsampled to the image
#   size), is returned for visualisation only: no loss uses it.
# * bottleneck, up blocks, `final` and a sigmoid give the `prediction` in $[0, 1]$, in
#   float32 for the losses even under mixed precision.
#
# Now the network. Where the reference outputs of the original code are installed we
# load the converted checkpoint `vox-256-tiny-cpk.pth.tar` that came with them (random
# but non-trivial weights saved by the original PyTorch code); elsewhere the same networks are built with their initial
# weights. The source is the astronaut; the driving keypoints are the source's, moved by
# a global affine motion (a rotation by 20 degrees, scale 1.1 and a shift), so section
# 7.1 tells us what the deformation must be.


# %%
def load_models():
    """The original code's tiny checkpoint, converted, or fresh networks without it."""
    if REFERENCE_DIR is not None:
        return load_original_checkpoint(
            REFERENCE_DIR / "vox-256-tiny-cpk.pth.tar", CONFIG
        )
    return build_models(CONFIG)


models = load_models()
kp_detector, generator = models["kp_detector"], models["generator"]
source = tf.image.resize(
    skdata.astronaut()[None].astype(np.float32) / 255.0, (SIZE, SIZE), method="area"
)
kp_source = kp_detector(source, training=False)


def affine_driving(kp, angle=20.0, scale=1.1, shift=(0.15, 0.05)):
    """Driving keypoints p_D = A p_S + t, J_D = A J_S: a global affine motion of p_S.

    Returns the keypoint dict, A (2, 2) and t (2,).
    """
    rad = np.deg2rad(angle)
    rotation = np.array([[np.cos(rad), -np.sin(rad)], [np.sin(rad), np.cos(rad)]])
    A = (scale * rotation).astype(np.float32)
    t = np.asarray(shift, np.float32)
    value = tf.einsum("ij,bkj->bki", A, kp["value"]) + t
    jacobian = tf.einsum("ij,bkjl->bkil", A, kp["jacobian"])
    return {"value": value, "jacobian": jacobian}, A, t


kp_driving, A, t = affine_driving(kp_source)

# The forward pass, one piece at a time.
first = generator.first(source, training=False)
down = [first]
for block in generator.down_blocks:
    down.append(block(down[-1], training=False))
features = down[-1]
source_down = generator.dense_motion_network.downsample(source)
dense = generator.dense_motion_network(
    source,
    kp_driving=kp_driving,
    kp_source=kp_source,
    training=False,
    source_down=source_down,
)
deformation, occlusion_map = dense["deformation"], dense["occlusion_map"]
warped = deform_input(features, deformation)
occluded = warped * occlusion_map
bottleneck = [occluded]
for block in generator.bottleneck:
    bottleneck.append(block(bottleneck[-1], training=False))
up = [bottleneck[-1]]
for block in generator.up_blocks:
    up.append(block(up[-1], training=False))
logits = generator.final(up[-1])
prediction = tf.sigmoid(logits)
deformed = deform_input(source, deformation)

steps = (
    [("source", source), ("first", first)]
    + [(f"down_blocks_{i}", d) for i, d in enumerate(down[1:])]
    + [
        ("source_down (motion)", source_down),
        ("mask", dense["mask"]),
        ("sparse_deformed", dense["sparse_deformed"]),
        ("deformation", deformation),
        ("occlusion_map", occlusion_map),
        ("warped features", warped),
        ("x occlusion_map", occluded),
    ]
    + [(f"bottleneck_r{i}", b) for i, b in enumerate(bottleneck[1:])]
    + [(f"up_blocks_{i}", u) for i, u in enumerate(up[1:])]
    + [
        ("final (logits)", logits),
        ("prediction", prediction),
        ("deformed (pixels)", deformed),
    ]
)
for name, tensor in steps:
    print(f"{name:>22}: {tuple(tensor.shape)}")

# The sides match the sympy table of section 7.2.
table = dict((name, int(side.subs(m_side, m_value))) for name, side in sides)
for name, tensor in steps:
    if name in table:
        assert tensor.shape[1] == table[name], name
assert occluded.shape[1] == table["warp x occlusion"]
assert prediction.shape[1] == table["final"]

output = generator(source, kp_source=kp_source, kp_driving=kp_driving, training=False)
for key, mine in [
    ("deformation", deformation),
    ("occlusion_map", occlusion_map),
    ("deformed", deformed),
    ("prediction", prediction),
]:
    assert np.abs(output[key].numpy() - mine.numpy()).max() < 1e-5, key
print("piecewise == generator(source, kp_source=..., kp_driving=...): True")
print("outputs:", ", ".join(sorted(output)))

# %% [markdown]
# Every block of the tiny generator against the parameter formulas of section 7.2
# (`count_params()` counts the batch-norm statistics too):

# %%
tiny_specs = block_specs(3, BE, MF, ND, NB)
tiny_layers = [
    generator.first,
    *generator.down_blocks,
    *generator.bottleneck,
    *generator.up_blocks,
    generator.final,
]
print(f"{'block':>14} {'C_in':>5} {'C_out':>5} {'k':>2} {'formula':>8} {'built':>8}")
for (name, kind, cin, cout, k), layer in zip(tiny_specs, tiny_layers):
    expected = formula(kind, cin, cout, k)
    print(
        f"{name:>14} {cin:>5} {cout:>5} {k:>2} {expected:>8} {layer.count_params():>8}"
    )
    assert expected == layer.count_params(), name
total_tiny = sum(layer.count_params() for layer in tiny_layers)
dense_params = generator.dense_motion_network.count_params()
print(f"encoder + bottleneck + decoder: {total_tiny:,}")
print(f"dense-motion network: {dense_params:,}")
print(f"generator: {generator.count_params():,}")
assert total_tiny + dense_params == generator.count_params()

# %% [markdown]
# And the receptive fields of section 7.2, measured: the gradient of one feature pixel
# (all channels) with respect to the image is non-zero exactly on a $16 \times 16$
# square starting at $4i - 6$; the gradient of one bottleneck output with respect to its
# input is non-zero on a $9 \times 9$ square of feature pixels.


# %%
def support(gradient):
    """Bounding box (first row, last row, first column, last column) of a gradient's
    non-zero entries."""
    rows = np.nonzero(np.abs(gradient).sum(axis=(1, 2)))[0]
    cols = np.nonzero(np.abs(gradient).sum(axis=(0, 2)))[0]
    return int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])


centre_px = features.shape[1] // 2
image_in = tf.Variable(source)
with tf.GradientTape() as tape:
    feat = generator.encode_source(image_in)["features"]
    picked = tf.reduce_sum(feat[0, centre_px, centre_px])
box = support(tape.gradient(picked, image_in).numpy()[0])
expected_box = (jump * centre_px + start, jump * centre_px + start + field - 1) * 2
print(f"feature pixel ({centre_px}, {centre_px}) sees image pixels")
print(f"  rows {box[0]}-{box[1]}, columns {box[2]}-{box[3]}")
print(f"  predicted: {expected_box[0]}-{expected_box[1]}")
assert box == expected_box

warped_in = tf.Variable(occluded)
with tf.GradientTape() as tape:
    out = warped_in
    for block in generator.bottleneck:
        out = block(out, training=False)
    picked = tf.reduce_sum(out[0, centre_px, centre_px])
box = support(tape.gradient(picked, warped_in).numpy()[0])
print(f"bottleneck output ({centre_px}, {centre_px}) sees warped features")
print(
    f"  {box[0]}-{box[1]} x {box[2]}-{box[3]}: "
    f"{box[1] - box[0] + 1} x {box[3] - box[2] + 1}"
)
assert box[1] - box[0] + 1 == bottleneck_field
assert box[3] - box[2] + 1 == bottleneck_field

# %% [markdown]
# Section 7.1 predicted the deformation of a global affine motion:
# $M_0(z)\,z + (1 - M_0(z))\, A^{-1}(z - t)$ with the background mask $M_0$. The network
# only chose $M_0$:

# %%
grid = make_coordinate_grid(deformation.shape[1], deformation.shape[2]).numpy()
m0 = dense["mask"].numpy()[0, :, :, :1]
predicted = m0 * grid + (1 - m0) * ((grid - t) @ np.linalg.inv(A).T)
err = np.abs(deformation.numpy()[0] - predicted).max()
print(f"max |deformation - closed form| < 1e-5: {err < 1e-5}")
print(
    f"background weight M_0: mean {m0.mean():.4f}, min {m0.min():.4f}, "
    f"max {m0.max():.4f}"
)
assert err < 1e-5

# %% [markdown]
# ## 7.4 On a photograph
#
# From left to right: the source $S$ with its keypoints $p^S$ (+) and the driving
# keypoints $p^D$ (x); the source *pixels* warped by the deformation (`deformed`); the
# background weight $M_0$; the occlusion map $\hat{\mathcal{O}}$; the prediction
# $\hat{D}$. The networks here are *untrained* (random weights saved by the original
# code), so the mask, the occlusion map and above all the prediction carry no meaning
# yet; what is meaningful is the geometry: `deformed` is the astronaut rotated, enlarged
# and shifted like the keypoints, slightly pulled back towards the identity where $M_0$
# is large, and black where the deformation reads outside the source (zero padding).
# Sections 7.7 (sprites) and 7.8 (a real face) show trained generators.

# %% tags=["hide-input"]
OUTPUT_TITLES = [
    r"$S$, $p^S$ (+), $p^D$ (x)",
    r"deformed $S$",
    r"mask $M_0$",
    r"occlusion $\hat{\mathcal{O}}$",
    r"prediction $\hat{D}$",
]


def show_outputs(out, kp_s, kp_d, image=None):
    """One row: source with keypoints, deformed, M_0, occlusion map, prediction."""
    image = source if image is None else image
    fig, axes = panels(5)
    axes[0].imshow(np.asarray(image[0]))
    side = image.shape[1]
    for kp, marker in ((kp_s, "+"), (kp_d, "x")):
        columns, rows = kp_to_pixels(kp["value"][0].numpy(), side, side).T
        colours = kp_colours(len(columns))
        axes[0].scatter(columns, rows, c=colours, marker=marker, s=60, linewidths=2)
    axes[1].imshow(np.clip(out["deformed"][0].numpy(), 0, 1))
    axes[2].imshow(out["mask"][0, :, :, 0].numpy(), cmap="viridis", vmin=0, vmax=1)
    axes[3].imshow(out["occlusion_map"][0, :, :, 0], cmap="gray", vmin=0, vmax=1)
    axes[4].imshow(out["prediction"][0].numpy())
    for ax, title in zip(axes, OUTPUT_TITLES):
        ax.set_title(title)
        ax.set_xticks([])
        ax.set_yticks([])
    return fig


show_outputs(output, kp_source, kp_driving)
plt.show()
occ = output["occlusion_map"].numpy()
print(f"occlusion_map: min {occ.min():.4f}, mean {occ.mean():.4f}, max {occ.max():.4f}")

# %% [markdown]
# The generator never warps these pixels: it warps the encoder's features. Below, the
# three feature channels with the largest spread (one per column), before the warp
# ($\xi$), after it ($f_w(\xi)$), and after the multiplication by the occlusion map
# ($\hat{\mathcal{O}} \odot f_w(\xi)$), one colour scale per channel, from 0 to the
# channel's maximum. The warped channels follow the same rotation, scale and shift as
# `deformed`, at a quarter of the resolution; the zero padding outside the source is
# visible as the flat border.

# %% tags=["hide-input"]
feat_np, warped_np, occluded_np = (
    features.numpy()[0],
    warped.numpy()[0],
    occluded.numpy()[0],
)
channels = np.argsort(-feat_np.std(axis=(0, 1)))[:3]
stages = [
    (feat_np, r"$\xi$"),
    (warped_np, r"$f_w(\xi)$"),
    (occluded_np, r"$\hat{\mathcal{O}} \odot f_w(\xi)$"),
]
fig, axes = panels(9, ncols=3, height=2.0)
for row, (array, label) in enumerate(stages):
    for col, c in enumerate(channels):
        # Features are >= 0 (ReLU, then average pooling).
        hi = feat_np[..., c].max()
        ax = axes[3 * row + col]
        ax.imshow(array[..., c], cmap="magma", vmin=0, vmax=hi)
        ax.set_title(f"{label}, channel {c}")
        ax.set_xticks([])
        ax.set_yticks([])
plt.show()

# %% [markdown]
# ## 7.5 Same keypoints: the identity
#
# With `kp_driving = kp_source`, section 7.1 says the deformation is the identity grid
# whatever the mask, so the warped features are the source features (exactly: section
# 7.1's identity grid reads pixel centres). The `deformed` image is *almost* the source:
# `deform_input` first upsamples the $h \times w$ deformation to $H \times W$ with
# `F.interpolate(bilinear)` (`align_corners=False`, `tf.image.resize`), as the original
# does, and that upsampling does not preserve a grid built with corners aligned. Output
# pixel $i$ reads the upsampled grid at source index
# $\mathrm{clip}\big((i + \tfrac12) \tfrac{h}{H} - \tfrac12, 0, h - 1\big)$, which
# `grid_sample` turns into the image position $u(i)$; away from the clipped borders:

# %%
i_px = sp.symbols("i", nonnegative=True)
H_img, h_mot = sp.symbols("H h", positive=True)
index = (i_px + sp.Rational(1, 2)) * h_mot / H_img - sp.Rational(1, 2)  # unclipped
u_of_i = index * (H_img - 1) / (h_mot - 1)  # grid value -> image pixel
shift_px = sp.simplify(u_of_i - i_px)
shift_readable = r"-\frac{(H - h)(H - 2i - 1)}{2H(h - 1)}"
show_math("u(i) - i", "=", shift_readable)
assert (
    sp.simplify(
        shift_px + (H_img - h_mot) * (H_img - 2 * i_px - 1) / (2 * H_img * (h_mot - 1))
    )
    == 0
)
h_m = deformation.shape[1]
u_fn = sp.lambdify(
    i_px,
    sp.Min(sp.Max(index, 0), h_m - 1).subs({h_mot: h_m, H_img: SIZE})
    * (SIZE - 1)
    / (h_m - 1),
)
positions = np.array([float(u_fn(i)) for i in range(SIZE)])
max_shift = np.abs(positions - np.arange(SIZE)).max()
print(f"H = {SIZE}, h = {h_m}: |u(i) - i| up to {max_shift:.4f} pixels")

# %%
kp_same = {key: tf.identity(value) for key, value in kp_source.items()}
same_out = generator(source, kp_source=kp_source, kp_driving=kp_same, training=False)
identity_err = np.abs(same_out["deformation"].numpy()[0] - grid).max()
feature_err = np.abs(
    deform_input(features, same_out["deformation"]).numpy() - features.numpy()
).max()
resampled_axis = 2 * positions / (SIZE - 1) - 1
resampled_grid = np.stack(np.meshgrid(resampled_axis, resampled_axis), axis=-1)
expected_deformed = grid_sample(source, resampled_grid[None].astype(np.float32))
deformed_err = np.abs(same_out["deformed"].numpy() - expected_deformed.numpy()).max()
mean_change = np.abs(same_out["deformed"].numpy() - source.numpy()).mean()
print(f"max |deformation - identity grid| < 1e-5: {identity_err < 1e-5}")
print(f"max |warped features - features| < 1e-5: {feature_err < 1e-5}")
print(f"deformed == source sampled at u(i) (1e-4): {deformed_err < 1e-4}")
print(f"mean |deformed - source| = {mean_change:.4f}")
assert identity_err < 1e-5 and feature_err < 1e-5 and deformed_err < 1e-4

show_outputs(same_out, kp_source, kp_same)
plt.show()

# %% [markdown]
# The offset is at most about one and a half image pixels, largest near the borders:
# invisible in `deformed`, and harmless since no loss uses it. The prediction is *not*
# the source: an untrained decoder has learned nothing; reconstructing the source from
# its own features is exactly what training ([chapters 8](08_losses.ipynb) and
# [9](09_training_loop.ipynb)) teaches it; section 7.8 shows a trained generator on a
# real face.
#
# ## 7.6 One source, many driving frames
#
# To animate, the same source is warped for every frame of a driving video. Its features
# and its downsampled copy do not depend on the driving keypoints, so `encode_source`
# computes them once and `source_features=` reuses them. When the source has batch 1 and
# the motions batch $B$, `warp_shared_source` stacks the $B$ grids along the height into
# one $(1, B h, w, 2)$ grid and samples the single source once, instead of copying it
# $B$ times:

# %% tags=["remove-input"]
show_source(warp_shared_source)

# %%
angles = [-20.0, 0.0, 20.0]
kp_batch = [
    affine_driving(kp_source, angle=ang, scale=1.0, shift=(0.0, 0.0))[0]
    for ang in angles
]
kp_driving_b = {
    key: tf.concat([kp[key] for kp in kp_batch], axis=0) for key in kp_source
}
kp_source_b = {
    key: tf.repeat(value, len(angles), axis=0) for key, value in kp_source.items()
}
encoded = generator.encode_source(source)
shared = generator(
    source, kp_source=kp_source_b, kp_driving=kp_driving_b, source_features=encoded
)
copied = generator(
    tf.repeat(source, len(angles), axis=0),
    kp_source=kp_source_b,
    kp_driving=kp_driving_b,
)
for key, value in encoded.items():
    print(f"encoded source {key}: {tuple(value.shape)}")
print("max |shared - copied| < 1e-6:")
for key in ("deformation", "occlusion_map", "deformed", "prediction"):
    diff = np.abs(shared[key].numpy() - copied[key].numpy()).max()
    print(f"  {key:>14} {str(tuple(shared[key].shape)):>18}: {diff < 1e-6}")
    assert diff < 1e-6, key
stacked = warp_shared_source(encoded["features"], shared["deformation"])
repeated = grid_sample(
    tf.repeat(encoded["features"], len(angles), axis=0), shared["deformation"]
)
assert np.abs(stacked.numpy() - repeated.numpy()).max() < 1e-6
print("warp_shared_source == grid_sample of repeated features: True")

image_grid(
    shared["deformed"].numpy(),
    [f"deformed, $p^D$ rotated {ang:+.0f}°" for ang in angles],
)
plt.show()

# %% [markdown]
# ## 7.7 A trained generator on sprites
#
# Everything above ran networks with random weights: the geometry was right, the
# prediction grey. The package ships a small model trained on the articulated sprites of
# [chapter 9](09_training_loop.ipynb) at $64 \times 64$: `load_pretrained("sprites-64")`
# returns its config, keypoint detector and generator (10 keypoints with Jacobians, the
# generator of this chapter with `block_expansion` 16, trained on the CPU with the
# stand-in losses of [chapter 8](08_losses.ipynb), section 8.7). Its model card,
# `fomm_tutorial/weights/sprites-64/MODEL_CARD.md`, gives the commands that reproduce
# it, the steps and the held-out metrics; [chapter 10](10_animation.ipynb) animates with
# it.
#
# Below, the model reconstructs frames of a **held-out** sprite video: its motion *and*
# its identity (shapes, colours, textures) were never seen in training
# (`sprites.heldout_videos`). The source $S$ is frame 0; each row is one driving frame
# $D$: the source with its keypoints $p^S$, the driving frame with $p^D$ (the detector
# ran on each frame independently), the source pixels warped by the deformation
# (`deformed`), the occlusion map $\hat{\mathcal{O}}$ and the prediction $\hat{D}$,
# which the generator made from $S$ and the two sets of keypoints alone.

# %%
pretrained = load_pretrained("sprites-64")
sprite_detector = pretrained["kp_detector"]
sprite_generator = pretrained["generator"]
videos, _, video_seeds = heldout_videos(num_videos=1, num_frames=32)
video = videos[0]
print(f"held-out video: seed {video_seeds[0]['seed']}, ", end="")
print(f"identity_seed {video_seeds[0]['identity_seed']}, frames {video.shape}")

DRIVING_FRAMES = [6, 14, 22, 30]
sprite_source = tf.constant(video[:1])
sprite_driving = tf.constant(video[DRIVING_FRAMES])
sprite_kp_source = sprite_detector(sprite_source, training=False)
sprite_kp_driving = sprite_detector(sprite_driving, training=False)


def generate_pairs(generator, source, kp_source, kp_driving):
    """The generator on N pairs (S, D_n): one source and its keypoints, repeated N
    times.

    source (1, H, W, 3) with kp_source values (1, K, ...); kp_driving values
    (N, K, ...).
    Returns the generator's outputs for the N pairs (batch N).
    """
    num_pairs = kp_driving["value"].shape[0]
    return generator(
        tf.repeat(source, num_pairs, axis=0),
        kp_source={
            key: tf.repeat(value, num_pairs, axis=0) for key, value in kp_source.items()
        },
        kp_driving=kp_driving,
        training=False,
    )


sprite_out = generate_pairs(
    sprite_generator, sprite_source, sprite_kp_source, sprite_kp_driving
)
for key in ("deformation", "occlusion_map", "deformed", "prediction"):
    print(f"{key:>14}: {tuple(sprite_out[key].shape)}")

# %% tags=["hide-input"]
SPRITE_TITLES = [
    r"source $S$, $p^S$",
    r"driving $D$, $p^D$",
    r"deformed $S$",
    r"occlusion $\hat{\mathcal{O}}$",
    r"prediction $\hat{D}$",
]


def keypoint_scatter(ax, kp_value, size):
    """Keypoints (K, 2) in [-1, 1] as coloured dots on an image of side `size`."""
    columns, rows = kp_to_pixels(np.asarray(kp_value), size, size).T
    ax.scatter(columns, rows, c=kp_colours(len(columns)), s=14, edgecolors="white")


def show_generator_rows(source, kp_source, driving, kp_driving, out, frames):
    """One row per driving frame: S with p^S, D with p^D, deformed, occlusion,
    prediction.

    source (H, W, 3); kp_source value (1, K, 2); driving (N, H, W, 3) with kp_driving
    value (N, K, 2); out: the generator's outputs for the N pairs; frames: N labels.
    """
    axes = panels(5 * len(frames), ncols=5)[1]
    side = source.shape[1]
    for row, frame in enumerate(frames):
        ax_s, ax_d, ax_w, ax_o, ax_p = axes[5 * row : 5 * row + 5]
        ax_s.imshow(source)
        keypoint_scatter(ax_s, kp_source["value"][0], side)
        ax_d.imshow(driving[row])
        keypoint_scatter(ax_d, kp_driving["value"][row], side)
        ax_w.imshow(np.clip(out["deformed"][row].numpy(), 0, 1))
        occlusion_image = out["occlusion_map"][row, :, :, 0].numpy()
        ax_o.imshow(occlusion_image, cmap="gray", vmin=0, vmax=1)
        ax_p.imshow(np.clip(out["prediction"][row].numpy(), 0, 1))
        for col, ax in enumerate(axes[5 * row : 5 * row + 5]):
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(SPRITE_TITLES[col])
        ax_s.set_ylabel(f"frame {frame}")
    plt.show()


show_generator_rows(
    video[0],
    sprite_kp_source,
    video[DRIVING_FRAMES],
    sprite_kp_driving,
    sprite_out,
    DRIVING_FRAMES,
)

# %% [markdown]
# Read each row from left to right. The detector runs on $S$ and on $D$ separately; the
# dense-motion network of [chapter 6](06_dense_motion.ipynb) turns the two sets of
# keypoints into a deformation, and `deformed` shows it applied to the source *pixels*:
# the parts are pulled towards where the driving frame has them, and where the backward
# warp finds nothing that fits it smears or duplicates source content. The occlusion map
# is dark where the generator should not trust the warped features and bright where it
# copies them: the decoder paints the dark regions from their context. The prediction is
# made from $S$ and the keypoints alone; the generator never sees $D$.
#
# Over all 32 frames of the video, the prediction's mean absolute error against the
# driving frame, compared with the simplest baseline, copying the source to every frame
# (the numbers change slightly with each release of the weights, so the cell checks
# properties):

# %% tags=["nbval-ignore-output"]
all_frames = tf.constant(video)
num_frames = len(video)
kp_all = sprite_detector(all_frames, training=False)
encoded_sprite = sprite_generator.encode_source(sprite_source)
reconstruction = sprite_generator(
    sprite_source,
    kp_source={
        key: tf.repeat(value, num_frames, axis=0)
        for key, value in sprite_kp_source.items()
    },
    kp_driving=kp_all,
    source_features=encoded_sprite,
    training=False,
)["prediction"].numpy()
l1_model = np.abs(reconstruction - video).mean()
l1_copy = np.abs(video[:1] - video).mean()
print(f"mean |prediction - driving|   = {l1_model:.3f}")
print(f"mean |source - driving|       = {l1_copy:.3f} (copy the first frame)")
print(f"ratio                         = {l1_model / l1_copy:.2f}")
assert l1_model < l1_copy

# %% [markdown]
# And as a video (each pixel shown as a $3 \times 3$ block): the source, the driving
# video, and the prediction, each frame reconstructed from the source and the two sets
# of keypoints (an embedded GIF; it loops).

# %% tags=["remove-input", "nbval-ignore-output"]
show_animation(
    side_by_side(video[0], video, np.clip(reconstruction, 0, 1)),
    fps=8,
    scale=3,
    titles=["source", "driving", "prediction"],
)


# %% [markdown]
# ## 7.8 A trained generator on a real face
#
# Sprites are easy: flat colours, a static background, parts that move rigidly. The
# package also ships a model trained on a **real talking-head clip** (the sample clip of
# [chapter 10](10_animation.ipynb), at $128 \times 128$):
# `load_pretrained("talking-head-128")`, the full model of the paper (10 keypoints with
# Jacobians, occlusion map) with this chapter's generator, trained on the CPU on the
# first frames of the clip only. `heldout_clip` splits the clip as it was trained:
# frame 0 is the source, and the frames after the training range were never seen in
# training. Its model card (`MODEL_CARD.md` in the folder
# `pretrained_dir("talking-head-128")`) gives the command that reproduces it and its
# held-out metrics; [chapter 10](10_animation.ipynb) animates the whole held-out part.
#
# Below, the source $S$ (frame 0) and two held-out driving frames $D$ with a clearly
# different pose and mouth; the keypoints are **absolute**: the detector runs on $S$
# and on $D$, and the generator moves the source's keypoints to the driving ones.

# %%
face_model = load_pretrained("talking-head-128")
face_detector = face_model["kp_detector"]
face_generator = face_model["generator"]
clip = heldout_clip("talking-head-128")
first_heldout = clip["first"]
FACE_DRIVING = [24, 48]  # indices into the held-out frames
face_source = tf.constant(clip["source"][None])
face_driving = tf.constant(clip["heldout"][FACE_DRIVING])
face_kp_source = face_detector(face_source, training=False)
face_kp_driving = face_detector(face_driving, training=False)
face_out = generate_pairs(face_generator, face_source, face_kp_source, face_kp_driving)
face_frames = [first_heldout + i for i in FACE_DRIVING]
print(f"source: clip frame 0 | driving: held-out clip frames {face_frames}")
for key in ("deformation", "occlusion_map", "deformed", "prediction"):
    print(f"{key:>14}: {tuple(face_out[key].shape)}")

# %% tags=["hide-input"]
show_generator_rows(
    clip["source"],
    face_kp_source,
    face_driving.numpy(),
    face_kp_driving,
    face_out,
    face_frames,
)

# %% [markdown]
# Compare with section 7.4, where the same code with random weights gave a flat grey
# prediction. Here `deformed` shows the source pixels moved by the learned motion: the
# head shifts and turns towards the driving pose, and where the backward warp reads
# outside the source or across the collar it leaves black strips and torn edges. A
# warp can only move what the source shows: the source's nearly closed mouth is
# stretched, it cannot show the teeth of a mouth that opens. The occlusion map is no
# longer uniform: bright over the background, darker over the head, darkest along its
# outline, the eyes, the mouth and the collar, where the motion covers or uncovers
# something and the decoder should paint rather than copy. The prediction takes the
# driving frame's position, pose and opening mouth from $S$ and the two sets of
# keypoints alone; it is softer than the real frame (a narrow network trained on
# pixels, without the perceptual and adversarial losses of
# [chapter 8](08_losses.ipynb)).
#
# The check: the prediction is closer to the driving frame it never saw than the source
# is (the L1 ratio is below 1), and the occlusion map spreads over a wide range instead
# of a constant.

# %% tags=["nbval-ignore-output"]
face_pred = face_out["prediction"].numpy()
face_truth = face_driving.numpy()
face_occ = face_out["occlusion_map"].numpy()
for row, frame in enumerate(face_frames):
    l1_pred = np.abs(face_pred[row] - face_truth[row]).mean()
    l1_source = np.abs(clip["source"] - face_truth[row]).mean()
    occ_row = face_occ[row]
    print(
        f"frame {frame}: L1(prediction, D) / L1(S, D) = {l1_pred / l1_source:.2f}; "
        f"occlusion from {occ_row.min():.2f} to {occ_row.max():.2f}"
    )
    assert l1_pred < l1_source, frame
    assert occ_row.max() - occ_row.min() > 0.3 and occ_row.std() > 0.05, frame


# %% [markdown]
# ## 7.9 Checks
#
# Closed forms that always run (sections 7.1-7.6 asserted the derivations already):
#
# * `deform_input` is the NumPy bilinear backward warp of section 7.1
#   (`align_corners=True`, zero outside), on the features and a random smooth
#   deformation that also reads outside the map;
# * the occlusion product is eq. 8 and the rest of the generator is a function of it
#   alone: the same decoder applied to `warped * occlusion_map` gives the prediction;
#
# and, where the reference outputs are installed, the generator's outputs against those
# the original PyTorch code computed for the same source and keypoints, to about
# $10^{-5}$ for images: `mask`, `occlusion_map` and `prediction` agree within $10^{-5}$;
# `sparse_deformed` and `deformed` sample an image at positions computed in float32,
# whose rounding ($\sim 10^{-7}$) is multiplied by the image gradient (the recorded
# source is noise, up to $\sim 64$ per unit of position), so they get
# $5 \times 10^{-5}$.


# %%
def numpy_backward_warp(feature_map, sampling_grid):
    """Bilinear backward warp, align_corners=True, zeros outside.

    (h, w, C) features, (h', w', 2) grid -> (h', w', C).
    """
    h, w, _ = feature_map.shape
    px = (sampling_grid[..., 0] + 1) / 2 * (w - 1)
    py = (sampling_grid[..., 1] + 1) / 2 * (h - 1)
    x0, y0 = np.floor(px).astype(int), np.floor(py).astype(int)
    result = np.zeros(sampling_grid.shape[:2] + feature_map.shape[2:])
    for dy in (0, 1):
        for dx in (0, 1):
            xi, yi = x0 + dx, y0 + dy
            weight = (1 - np.abs(px - xi)) * (1 - np.abs(py - yi))
            inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
            result += (weight * inside)[..., None] * feature_map[
                np.clip(yi, 0, h - 1), np.clip(xi, 0, w - 1)
            ]
    return result


# (a) the feature warp against NumPy, on a random smooth deformation reaching outside
# [-1, 1]
rng = np.random.default_rng(0)
coarse = rng.normal(scale=0.3, size=(1, 4, 4, 2)).astype(np.float32)
random_deformation = grid[None] * 1.1 + tf.image.resize(coarse, grid.shape[:2]).numpy()
ours = deform_input(features, tf.constant(random_deformation)).numpy()[0]
reference_warp = numpy_backward_warp(
    features.numpy()[0].astype(np.float64), random_deformation[0].astype(np.float64)
)
outside = 100 * (np.abs(random_deformation) > 1).any(-1).mean()
warp_ok = np.abs(ours - reference_warp).max() < 1e-5
print(f"positions outside the map: {outside:.2f} %")
print(f"max |deform_input - NumPy| < 1e-5: {warp_ok}")
assert warp_ok

# (b) eq. 8: the prediction is the decoder applied to warped features times the
# occlusion map
decoded = occluded
for block in generator.bottleneck + generator.up_blocks:
    decoded = block(decoded, training=False)
decoded = tf.sigmoid(generator.final(decoded))
assert np.abs(decoded.numpy() - output["prediction"].numpy()).max() < 1e-5
assert np.abs(occluded.numpy() - warped.numpy() * occlusion_map.numpy()).max() == 0
print("prediction == sigmoid(final(decoder(warped * occlusion_map))): True")

# (c) the generator outputs computed by the original PyTorch code
if REFERENCE_DIR is not None:
    ref = dict(np.load(REFERENCE_DIR / "vox-256-tiny-reference.npz"))
    ref_kp = {
        prefix: {
            key: tf.constant(ref[f"{prefix}/{key}"]) for key in ("value", "jacobian")
        }
        for prefix in ("kp_source", "kp_driving")
    }
    reference_out = generator(
        tf.constant(ref["source"]),
        kp_source=ref_kp["kp_source"],
        kp_driving=ref_kp["kp_driving"],
        training=False,
    )
    print("generator outputs, max |TF - PyTorch|:")
    tolerance = {
        "mask": 1e-5,
        "occlusion_map": 1e-5,
        "prediction": 1e-5,
        "sparse_deformed": 5e-5,
        "deformed": 5e-5,
    }
    for key, atol in tolerance.items():
        assert reference_out[key].shape == ref[f"generator/{key}"].shape, key
        err = np.abs(reference_out[key].numpy() - ref[f"generator/{key}"]).max()
        assert err < atol, (key, err)
        shape = str(tuple(reference_out[key].shape))
        print(f"  {key:>15} {shape:>18}: < {atol:.0e}")
else:
    print("outputs of the original code not installed: comparison skipped")

# %% [markdown]
# ## 7.10 Widget: move the driving keypoints
#
# Rotate, scale and shift the driving keypoints (a global affine motion of the source
# keypoints, section 7.1) and watch the deformed source, the background mask, the
# occlusion map and the prediction of the untrained network of sections 7.3-7.6. With
# angle 0, scale 1 and no shift you get section 7.5's identity. Large motions read
# outside the source: `deformed` turns black there, and a trained occlusion map would
# turn dark to tell the decoder to inpaint (section 7.8 shows a trained one on a real
# face). Move the slider for the main parameter, the
# angle, at seven settings (scale 1.1, shift (0.15, 0.05)).


# %% tags=["hide-input"]
def generator_figure(angle=20.0, scale=1.1, shift_x=0.15, shift_y=0.05):
    """The outputs of section 7.4 for driving keypoints moved by an affine motion."""
    kp_d, _, _ = affine_driving(
        kp_source, angle=angle, scale=scale, shift=(shift_x, shift_y)
    )
    out = generator(source, kp_source=kp_source, kp_driving=kp_d, training=False)
    return show_outputs(out, kp_source, kp_d)


static_slider(
    {f"{a:+.0f}°": generator_figure(angle=a) for a in (-60, -40, -20, 0, 20, 40, 60)},
    label="angle",
    initial="+20°",
)

# %% [markdown]
# > **Live widget.** The figure above switches between a few precomputed settings; run the
# > notebook (Colab button at the top, or Jupyter) to change every parameter freely.


# %% tags=["hide-input", "remove-output", "nbval-ignore-output"]
def show_generator(angle=20.0, scale=1.1, shift_x=0.15, shift_y=0.05):
    generator_figure(angle, scale, shift_x, shift_y)
    plt.show()


_ = interact(
    show_generator,
    angle=FloatSlider(value=20.0, min=-60.0, max=60.0, step=5.0),
    scale=FloatSlider(value=1.1, min=0.6, max=1.6, step=0.05),
    shift_x=FloatSlider(value=0.15, min=-0.6, max=0.6, step=0.05),
    shift_y=FloatSlider(value=0.05, min=-0.6, max=0.6, step=0.05),
)

# %% [markdown]
# ## Summary
#
# * The generator encodes the source ($7 \times 7$ `SameBlock2d`, two `DownBlock2d`: a
#   quarter of the resolution, $16 \times 16$-pixel receptive fields), **warps the
#   features** with the dense deformation (bilinear `grid_sample`, `align_corners=True`,
#   zeros outside), multiplies them by the **occlusion map** (eq. 8), and decodes them
#   (residual bottleneck, two `UpBlock2d`, $7 \times 7$ conv, sigmoid) without skip
#   connections.
# * The warp is linear in the features, the same for every channel, and differentiable
#   in the sampling positions ($\frac{w-1}{2}(F_{n+1} - F_n)$): the route by which the
#   losses train the motion and the keypoints. The occlusion map scales that route and
#   tells the decoder where to inpaint.
# * Equal keypoints give the identity deformation, a global affine motion of the
#   keypoints gives $M_0 z + (1 - M_0) A^{-1}(z - t)$; both are asserted. `deformed`
#   (pixels, visualisation only) is off by up to 1.5 pixels even for the identity,
#   because the original upsamples a corner-aligned grid with `align_corners=False`.
# * Sizes, receptive fields and parameter counts follow closed forms (vox-256: 7,845,123
#   trainable parameters outside the dense-motion network, 90 % in the bottleneck); the
#   port reproduces the original code's outputs within $10^{-5}$
#   ($5 \times 10^{-5}$ for sampled images).
# * Trained (the package's `sprites-64` model, section 7.7), the same code rebuilds the
#   frames of a sprite it never saw from one source frame and two sets of keypoints,
#   closer to the driving frames than a copy of the source. Trained on the first frames
#   of a real talking-head clip (`talking-head-128`, section 7.8), it follows the pose
#   and the mouth of frames it never saw, with an occlusion map that marks where it
#   paints instead of copying.
#
# Next, [chapter 8](08_losses.ipynb) defines the losses that train the keypoint detector
# and the generator together.
#
# ## Exercises
#
# 1. Use `receptive_field` to compute the receptive field of a feature pixel for
#    `num_down_blocks = 3`, and check the closed form $3 \cdot 2^{n_d} + 4$. Then
#    measure it with the gradient of section 7.3 on a generator built with that setting.
# 2. Count, with `formula` and `block_specs`, the trainable parameters of the vox-256
#    generator's own blocks if `max_features` were 1024 instead of 512. Which blocks
#    change?
# 3. In sections 7.7 and 7.8, replace the occlusion map by ones (run the bottleneck,
#    up blocks and `final` on the warped features directly, as check (b) of section
#    7.9 does). Where does the prediction get worse, and why there? On the face, look
#    at the mouth.
# 4. Warp pixels instead of features: encode the `deformed` image and decode its
#    features without a warp. Compare with the feature warp where `deformed` is black
#    (outside the source): what can each version put there, given the receptive fields
#    of section 7.2?
