# %% [markdown]
# # 5. The keypoint detector: heatmaps, soft-argmax and local Jacobians
#
# The First Order Motion Model ([paper](https://arxiv.org/abs/2003.00196), [original
# code](https://github.com/AliaksandrSiarohin/first-order-model)) never sees a label. It must
# still describe the pose of a face or a body compactly, so that a *driving* frame can be
# compared with a *source* frame. It does so with $K$ **keypoints** $p_k \in [-1, 1]^2$ and,
# around each, a $2 \times 2$ **Jacobian** $J_k$: the first-order Taylor expansion of
# [chapter 2](02_taylor_series.ipynb) needs exactly these two things per keypoint.
#
# The detector has to produce coordinates *differentiably*, since every loss of
# [chapter 8](08_losses.ipynb) flows back into it through the motion. An `argmax` over a
# heatmap has zero gradient almost everywhere; the original takes the **expectation** of the
# coordinate under a softmax distribution instead ("soft-argmax"). The Jacobian is obtained the
# same way, as an expectation of a per-pixel $2 \times 2$ prediction under the same
# distribution.
#
# The code is in the package modules
# [`fomm_tutorial/keypoints.py`](https://github.com/fomm-tutorial/fomm-tutorial/blob/main/fomm_tutorial/keypoints.py)
# (the detector) and
# [`fomm_tutorial/blocks.py`](https://github.com/fomm-tutorial/fomm-tutorial/blob/main/fomm_tutorial/blocks.py)
# (the hourglass and the anti-aliased downsampling it shares with the other networks). This
# chapter
#
# * 5.1-5.2: derives the soft-argmax and the heatmap-weighted Jacobian with sympy;
# * 5.3: derives why the heatmaps are $58 \times 58$ and not $64 \times 64$ (`pad=0`,
#   [issue #52](https://github.com/AliaksandrSiarohin/first-order-model/issues/52)), and what
#   that does to the coordinates;
# * 5.4: builds the detector from its pieces and prints every shape;
# * 5.5: runs it, with the weights of the converted reference checkpoint, on real photographs
#   and draws heatmaps, keypoints and Jacobians;
# * 5.6: runs the detector trained by this book on frames of a real talking-head clip,
#   next to its untrained twin: concentrated heatmaps, keypoints spread over the face,
#   Jacobians far from the identity;
# * 5.7: checks everything: closed forms always, and the reference outputs of the original
#   code where they are available;
# * 5.8: lets you play with the temperature and a shift of the image in a widget.

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
from matplotlib.colors import LogNorm
import numpy as np
import sympy as sp
from ipywidgets import FloatLogSlider, IntSlider, interact
from skimage import data as skdata

from fomm_tutorial.display import (
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

    from fomm_tutorial.blocks import (
        AntiAliasInterpolation2d,
        Decoder,
        Encoder,
        Hourglass,
        anti_alias_kernel,
    )
    from fomm_tutorial.checkpoint import build_models, load_original_checkpoint
    from fomm_tutorial.config import load_config
    from fomm_tutorial.grids import make_coordinate_grid
    from fomm_tutorial.keypoints import (
        KeypointDetector,
        gaussian2kp,
        heatmap_jacobian,
        heatmap_softmax,
    )
    from fomm_tutorial.pretrained import heldout_clip, load_pretrained
    from fomm_tutorial.reference import find_reference_dir
    from fomm_tutorial.runtime import configure
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
# Parameters. The networks of this chapter are compared with a float32 reference, so
# they are built in float32 even on a GPU (where `configure` switched mixed precision
# on).
keras.mixed_precision.set_global_policy("float32")
SIZE = rt.choose(cpu=128, gpu=256)  # image side for the photographs
# The tiny config of the original code's reference outputs (5 keypoints, 128 px).
CONFIG = load_config("vox-256-tiny")
# None where the reference outputs are not available (e.g. on Colab).
REFERENCE_DIR = find_reference_dir()
NUM_KP = CONFIG["model_params"]["common_params"]["num_kp"]
reference = "available" if REFERENCE_DIR is not None else "not available"
print(f"device: {rt.device} | image: {SIZE} x {SIZE} | keypoints: {NUM_KP}")
print(f"reference outputs of the original code: {reference}")

# %% [markdown]
# ## 5.1 Soft-argmax: a keypoint is an expected coordinate
#
# The hourglass predicts, for keypoint $k$, a map of logits $\ell_k(z)$ on a grid of
# positions $z$. A softmax with temperature $\tau$ turns it into a probability distribution
# over the grid,
#
# $$H_k(z) = \frac{\exp(\ell_k(z)/\tau)}{\sum_{z'} \exp(\ell_k(z')/\tau)},$$
#
# and the keypoint is the mean of that distribution:
# $p_k = \sum_z H_k(z)\, z = \mathbb{E}_{H_k}[z]$. Two facts make this work. First, if the
# logits have a single bump, the expectation sits on the bump: for a Gaussian-shaped
# distribution the expectation is exactly its centre.

# %%
x, mu = sp.symbols("x mu", real=True)
s = sp.symbols("sigma", positive=True)
density = sp.exp(-((x - mu) ** 2) / (2 * s**2))
expectation = sp.simplify(
    sp.integrate(x * density, (x, -sp.oo, sp.oo))
    / sp.integrate(density, (x, -sp.oo, sp.oo))
)
assert sp.simplify(expectation - mu) == 0

# %% tags=["remove-input"]
show_math(
    r"\frac{\int x\, e^{-(x-\mu)^2/2\sigma^2}\,dx}{\int e^{-(x-\mu)^2/2\sigma^2}\,dx}",
    "=",
    expectation,
)

# %% [markdown]
# Second, unlike an argmax, the expectation has a useful gradient. With three grid positions
# $z_0, z_1, z_2$ and logits $\ell_0, \ell_1, \ell_2$, sympy checks
# $\partial p / \partial \ell_i = H_i (z_i - p)/\tau$: raising a logit pulls the keypoint
# towards that position, in proportion to its probability. That is how every loss reaches the
# detector. And as $\tau \to 0$ the soft-argmax becomes the hard argmax:

# %%
tau = sp.symbols("tau", positive=True)
l = sp.symbols("ell_0:3", real=True)
zs = sp.symbols("z_0:3", real=True)
weights = [sp.exp(li / tau) for li in l]
H = [w / sum(weights) for w in weights]
p = sum(h * z for h, z in zip(H, zs))
for i in range(3):
    assert sp.simplify(sp.diff(p, l[i]) - H[i] * (zs[i] - p) / tau) == 0
# With ell_0 > ell_1 = ell_2 the softmax concentrates on z_0.
limit = sp.limit(p.subs({l[0]: 1, l[1]: 0, l[2]: 0}), tau, 0, "+")
assert limit == zs[0]

# %% tags=["remove-input"]
# The gradient asserted above (for i = 0, 1, 2) and the limit.
show_equations(
    [
        (r"\frac{\partial p}{\partial \ell_i}", r"H_i\,\frac{z_i - p}{\tau}"),
        (r"\lim_{\tau \to 0^+} p\big|_{\ell_0 = 1,\ \ell_1 = \ell_2 = 0}", limit),
    ]
)

# %% [markdown]
# The original uses
# $\tau = 0.1$: the logits of a trained network span several units, so the distribution is
# sharp but still differentiable.
#
# ## 5.2 The Jacobian is a heatmap-weighted average
#
# A second head predicts, at every position, four numbers $[a, b, c, d](z)$: a $2 \times 2$
# matrix $M(z)$. The keypoint's Jacobian is its expectation under the *same* distribution,
# $J_k = \sum_z H_k(z)\, M_k(z)$ (the author explains it this way in issues
# [#266](https://github.com/AliaksandrSiarohin/first-order-model/issues/266) and
# [#470](https://github.com/AliaksandrSiarohin/first-order-model/issues/470)). With three
# positions and heatmap values $h_0, h_1, h_2$:

# %%
h = sp.symbols("h_0:3", nonnegative=True)
M = [
    sp.Matrix(2, 2, sp.symbols(f"a_{i} b_{i} c_{i} d_{i}", real=True)) for i in range(3)
]
J = sum((hi * Mi for hi, Mi in zip(h, M)), sp.zeros(2, 2))
J_identity = J.subs({sym: val for Mi in M for sym, val in zip(Mi, [1, 0, 0, 1])})
J_identity = sp.simplify(J_identity.subs(h[2], 1 - h[0] - h[1]))  # heatmap sums to 1
assert J_identity == sp.eye(2)
show_equations(
    [
        ("J", J),
        (r"J\big|_{M(z) = I,\ \sum_z h_z = 1}", J_identity),
    ]
)

# %% [markdown]
# It is linear in $M$, so a constant map gives back that constant: this is why initialising
# the head with zero weights and bias $[1, 0, 0, 1]$ gives **identity Jacobians at
# initialisation**, and why `single_jacobian_map` (one map for all keypoints, the mgif config)
# still gives each keypoint its own Jacobian (each averages the shared map with its own
# heatmap).
#
# ## 5.3 Why $58 \times 58$: the `pad=0` quirk (issue #52)
#
# The detector sees the image at a quarter of its size (`scale_factor: 0.25`, the anti-aliased
# downsampling of section 5.4), so a $256$ image gives $n = 64$ feature pixels. The two heads
# are $7 \times 7$ convolutions created with `padding=pad`, and no published config sets
# `pad`, so it is 0: the convolutions are *valid* and the heatmaps have $n - 6 = 58$ cells.
# Heatmap cell $j$ is computed from feature pixels $j \ldots j + 6$, i.e. it is **centred on
# feature pixel $j + 3$**, but `gaussian2kp` places it on the $58$-cell grid
# `make_coordinate_grid(58, 58)` of [chapter 3](03_coordinate_grids.ipynb), at $2j/57 - 1$. How
# does the coordinate it reports relate to the true one? sympy solves for the cell $j$ whose
# centre has true coordinate $t$ and substitutes:

# %%
n, j, t = sp.symbols("n j t", positive=True)
true_coord = 2 * (j + 3) / (n - 1) - 1  # centre of feature pixel j + 3 of n
reported = 2 * j / (n - 7) - 1  # cell j on the (n - 6)-cell heatmap grid
j_of_t = sp.solve(sp.Eq(true_coord, t), j)[0]  # the cell centred at true coordinate t
stretch = sp.simplify(reported.subs(j, j_of_t) / t)
assert sp.simplify(reported.subs(j, j_of_t) - stretch * t) == 0
show_equations(
    [
        (r"t_{\text{true}}", true_coord),
        (r"t_{\text{reported}}", reported),
        (r"\frac{t_{\text{reported}}}{t_{\text{true}}}", stretch),
    ]
)
for features in (64, 32):
    print(
        f"{features} x {features} features -> {features - 6} x {features - 6} "
        f"heatmaps, stretch {float(stretch.subs(n, features)):.4f}"
    )

# %% [markdown]
# So keypoints are reported $63/57 \approx 1.105$ times farther from the centre than the
# feature pixel they were computed on (and $31/25 = 1.24$ times for the tiny reference
# network's $32 \times 32$ features). Since the *same* detector is applied to source and driving frames,
# and the motion model only ever uses keypoints, the network learns around this; but a
# keypoint detected at the border of the heatmap is reported at $\pm 1$, i.e. on the centre
# of the border *image* pixel, although its receptive field is centred 3 feature pixels
# inside. The author kept it for compatibility
# ([issue #52](https://github.com/AliaksandrSiarohin/first-order-model/issues/52): "if you
# training from scratch you should use pad=3"). The published checkpoints need `pad=0`, and so
# does our port; `pad=3` gives $64 \times 64$ heatmaps and a stretch of exactly 1.
#
# ## 5.4 The detector, piece by piece
#
# `KeypointDetector.call`:

# %% tags=["remove-input"]
show_source(KeypointDetector.call)

# %% [markdown]
# Line by line:
#
# * `self.down` is `AntiAliasInterpolation2d(3, 0.25)`: a fixed Gaussian blur
#   ($\sigma = (1/0.25 - 1)/2 = 1.5$, $13 \times 13$ kernel) and keeping every 4th pixel, so
#   that the subsampling does not alias (shown below).
# * `self.predictor` is an `Hourglass`: an `Encoder` of `DownBlock2d` (convolution, batch
#   normalisation, ReLU, $2 \times 2$ average pooling) and a `Decoder` of `UpBlock2d`
#   (nearest-neighbour upsampling, then the same) that concatenates the encoder's output of
#   the same size after each block (skip connections). Its output has `block_expansion + 3`
#   channels at the downsampled size.
# * `self.kp` is the $7 \times 7$ head with `padding=pad`; its logits are cast to float32
#   (they become coordinates), `heatmap_softmax` is the spatial softmax at temperature 0.1 and
#   `gaussian2kp` the soft-argmax of section 5.1.
# * `self.jacobian` predicts 4 channels per keypoint, averaged by `heatmap_jacobian`
#   (section 5.2).
#
# The blocks, from `fomm_tutorial/blocks.py` (the dense motion network of
# [chapter 6](06_dense_motion.ipynb) uses the same hourglass and downsampling):

# %% tags=["remove-input"]
show_source(
    anti_alias_kernel, AntiAliasInterpolation2d.call, Hourglass.call, Encoder.call
)
show_source(Decoder.call)

# %% [markdown]
# The keypoint functions:

# %% tags=["remove-input"]
show_source(heatmap_softmax, gaussian2kp, heatmap_jacobian)

# %% [markdown]
# Now the network itself. Where the reference outputs of the original code are available we
# load their converted checkpoint `vox-256-tiny-cpk.pth.tar` (random but non-trivial
# weights, saved by the original PyTorch code); elsewhere the same network is built with
# its initial weights. Either way we run the pieces one at a time on two photographs and print
# the shapes.


# %%
def load_models():
    """The converted reference checkpoint, or freshly built networks without it."""
    if REFERENCE_DIR is not None:
        return load_original_checkpoint(
            REFERENCE_DIR / "vox-256-tiny-cpk.pth.tar", CONFIG
        )
    return build_models(CONFIG)


def photograph(image):
    """uint8 (H, W, 3) -> (1, SIZE, SIZE, 3) float32 in [0, 1], area-downsampled."""
    return tf.image.resize(image[None] / 255.0, (SIZE, SIZE), method="area")


models = load_models()
kp_detector = models["kp_detector"]
astronaut = photograph(skdata.astronaut())
chelsea = photograph(skdata.chelsea())
images = tf.concat([astronaut, chelsea], axis=0)

x_down = kp_detector.down(images)
feature_map = kp_detector.predictor(x_down, training=False)
logits = kp_detector.kp(feature_map)
heatmap = heatmap_softmax(logits, kp_detector.temperature)
value = gaussian2kp(heatmap)
jacobian_map = kp_detector.jacobian(feature_map)
jacobian = heatmap_jacobian(heatmap, jacobian_map)
for name, tensor in [
    ("images", images),
    ("down (x 0.25)", x_down),
    ("feature_map", feature_map),
    ("kp logits (7x7 valid)", logits),
    ("heatmap", heatmap),
    ("value", value),
    ("jacobian_map", jacobian_map),
    ("jacobian", jacobian),
]:
    print(f"{name:>22}: {tuple(tensor.shape)}")

kp = kp_detector(images, training=False)
assert np.allclose(kp["value"].numpy(), value.numpy(), atol=1e-6)
assert np.allclose(kp["jacobian"].numpy(), jacobian.numpy(), atol=1e-6)
assert np.allclose(heatmap.numpy().sum(axis=(1, 2)), 1, atol=1e-5)
print("piecewise == kp_detector(images): True")
print("every heatmap sums to 1: True")

# %% [markdown]
# The anti-aliasing is worth one picture: keeping every 4th pixel of the raw photograph
# picks single pixels (jagged edges, speckle in fine texture, and a pattern that changes when
# the image moves by one pixel); blurring first averages each $4 \times 4$ neighbourhood
# smoothly. The $13 \times 13$ kernel of `anti_alias_kernel(0.25)` is on the left.

# %%
kernel = anti_alias_kernel(0.25)
assert kernel.shape == (13, 13) and abs(float(kernel.sum()) - 1) < 1e-6
fig, axes = panels(3)
axes[0].imshow(kernel, cmap="magma")
axes[0].set_title(r"kernel, $\sigma = 1.5$")
axes[1].imshow(images[0, ::4, ::4].numpy())
axes[1].set_title("every 4th pixel")
axes[2].imshow(np.clip(x_down[0].numpy(), 0, 1))
axes[2].set_title("blurred, then every 4th")
for ax in axes:
    ax.set_xticks([]), ax.set_yticks([])
plt.show()

# %% [markdown]
# The vox-256 detector has the same structure, 32 base channels and 5 hourglass blocks.
# Building it (without loading weights) shows the $58 \times 58$ heatmaps of section 5.3 and
# its size; the trainable parameter count is that of the original `KPDetector`
# ([modules/keypoint_detector.py](https://github.com/AliaksandrSiarohin/first-order-model/blob/master/modules/keypoint_detector.py))
# with the vox-256 config, counted layer by layer.

# %%
vox_detector = KeypointDetector.from_config_dict(load_config("vox-256"))
vox_out = vox_detector(tf.zeros((1, 256, 256, 3)), training=False, return_heatmap=True)
vox_trainable = int(sum(np.prod(v.shape) for v in vox_detector.trainable_weights))
assert tuple(vox_out["heatmap"].shape) == (1, 58, 58, 10)
assert vox_trainable == 14_215_368
print(f"vox-256 heatmap: {tuple(vox_out['heatmap'].shape)}")
print(f"trainable parameters: {vox_trainable:,}")
del vox_detector, vox_out

# %% [markdown]
# ## 5.5 Heatmaps and keypoints on a photograph
#
# For each photograph: the image with its keypoints (discs, in the colours
# `fomm_tutorial.visualization` uses everywhere) and Jacobians (the two arrows are the
# columns of $J_k$, i.e. where the local $x$ and $y$ axes go), then the $K$ heatmaps $H_k$
# with their soft-argmax (cyan cross). The reference network is *untrained*: its heatmaps are
# spread out, so every soft-argmax lands near the centroid of the grid, and its Jacobians are
# close to the identity of section 5.2. A trained network concentrates each heatmap on a
# part of the object: section 5.6 shows the trained detector of this book on a real face,
# next to its untrained twin. The $7 \times 7$ valid head is visible as the heatmaps covering a slightly smaller square than
# the image (section 5.3).

# %%
HEAT_EXTENT = [-1, 1, 1, -1]  # heatmaps drawn in normalised coordinates


def show_keypoints(ax, image, kp_value, kp_jacobian=None, arrow=0.12):
    """Image (H, W, 3) with keypoint discs and the two columns of each Jacobian.

    kp_value (K, 2), kp_jacobian (K, 2, 2); column j of J_k is drawn as an arrow of
    length arrow * |J_k[:, j]| (in normalised units) from the keypoint
    (fomm_tutorial.visualization.draw_jacobians).
    """
    ax.imshow(draw_keypoints(image, kp_value, kp_size=3))
    if kp_jacobian is not None:
        draw_jacobians(ax, kp_value, kp_jacobian, *image.shape[:2], arrow=arrow)
    ax.set_xticks([]), ax.set_yticks([])


def show_heatmap(ax, heat, kp_xy, title, norm=None):
    """One heatmap (h, w) on [-1, 1]^2 with its soft-argmax (norm: a colour scale)."""
    ax.imshow(heat, cmap="magma", extent=HEAT_EXTENT, norm=norm)
    ax.plot(*kp_xy, "c+", ms=10, mew=2)
    ax.set_title(title)
    ax.set_xticks([]), ax.set_yticks([])


hm = heatmap.numpy()
for b, name in enumerate(["astronaut", "chelsea"]):
    fig, axes = panels(NUM_KP + 1, ncols=3)
    show_keypoints(
        axes[0], images[b].numpy(), kp["value"][b].numpy(), kp["jacobian"][b].numpy()
    )
    axes[0].set_title(name)
    for k in range(NUM_KP):
        title = rf"$H_{k}$, max {hm[b, :, :, k].max():.4f}"
        show_heatmap(axes[k + 1], hm[b, :, :, k], kp["value"][b, k].numpy(), title)
    plt.show()

# %%
print("astronaut     x       y    |  J_00    J_01    J_10    J_11")
for k in range(NUM_KP):
    (px, py), jac = kp["value"][0, k].numpy(), kp["jacobian"][0, k].numpy().ravel()
    print(f"p_{k}      {px:6.3f}  {py:6.3f}  | " + "  ".join(f"{v:6.3f}" for v in jac))

# %% [markdown]
# To see what a *confident* heatmap does, give the soft-argmax logits with a clear structure:
# below, the logits are the brightness of the (downsampled) astronaut and the temperature
# varies. At a high temperature the distribution is almost uniform and the keypoint sits at
# the centre of mass of the whole grid; as $\tau$ falls the mass concentrates on the
# brightest region and the keypoint moves there, continuously (section 5.1's limit is the
# argmax).

# %%
brightness = tf.reduce_mean(kp_detector.down(astronaut), axis=-1, keepdims=True)
temperatures = [1.0, 0.1, 0.03, 0.01]
fig, axes = panels(len(temperatures), height=2.2)
for ax, temp in zip(axes, temperatures):
    heat_t = heatmap_softmax(brightness, temp)
    kp_t = gaussian2kp(heat_t).numpy()[0, 0]
    title = rf"$\tau = {temp}$" + f"\np = ({kp_t[0]:.2f}, {kp_t[1]:.2f})"
    show_heatmap(ax, heat_t.numpy()[0, :, :, 0], kp_t, title)
    ax.set_xticks([-1, 0, 1])
    ax.set_xlabel("$x$")
axes[0].set_yticks([-1, 0, 1])
axes[0].set_ylabel("$y$")
plt.show()

# %% [markdown]
# ## 5.6 A trained detector on a real face
#
# Everything so far ran an *untrained* network. The package also ships a detector that
# has been trained: `load_pretrained("talking-head-128")`, the full model of the paper
# (10 keypoints with Jacobians) trained by this book on the first frames of a real
# talking-head clip at $128 \times 128$, with nothing but the losses of
# [chapter 8](08_losses.ipynb) (no labels). `heldout_clip` splits the clip as it was
# trained; the model never saw the frames after the training range. Below, frame 0
# and two held-out frames (the same as in [chapter 7](07_generator.ipynb)), each run
# through the trained detector and through an **untrained twin**: the same
# architecture and config with its initial weights (`keras.utils.set_random_seed(0)`,
# then `KeypointDetector.from_config_dict`). The config downsamples by $0.5$, so a
# $128$ image gives $64$ feature pixels and, with `pad=0`, $58 \times 58$ heatmaps
# (section 5.3).

# %%
face_model = load_pretrained("talking-head-128")
face_config = face_model["config"]
clip = heldout_clip("talking-head-128")
FACE_HELDOUT = [24, 48]  # indices into the held-out frames (as in chapter 7)
face_images = np.stack([clip["source"], *clip["heldout"][FACE_HELDOUT]])
face_names = ["frame 0"] + [f"frame {clip['first'] + i}" for i in FACE_HELDOUT]
keras.utils.set_random_seed(0)
face_detectors = {
    "trained": face_model["kp_detector"],
    "untrained": KeypointDetector.from_config_dict(face_config),
}
face_kp = {
    name: {
        key: tensor.numpy()
        for key, tensor in detector(
            tf.constant(face_images), training=False, return_heatmap=True
        ).items()
    }
    for name, detector in face_detectors.items()
}
FACE_KP = face_config["model_params"]["common_params"]["num_kp"]
print(f"frames: {', '.join(face_names)} (held out: frames >= {clip['first']})")
for key, array in face_kp["trained"].items():
    print(f"{key:>9}: {array.shape}")

# %% [markdown]
# The keypoints, trained above and untrained below, on the three frames:

# %% tags=["hide-input"]
fig, axes = panels(2 * len(face_names), ncols=len(face_names))
for row, name in enumerate(face_kp):
    for i, frame in enumerate(face_names):
        ax = axes[row * len(face_names) + i]
        show_keypoints(ax, face_images[i], face_kp[name]["value"][i])
        ax.set_title(f"{name}: {frame}")
plt.show()

# %% [markdown]
# And their Jacobians on frame 0, enlarged to the face (the two arrows of each keypoint
# are the columns of $J_k$, drawn at the same scale in both panels):

# %% tags=["hide-input"]
# The enlarged view: a square around the trained keypoints with a 16-pixel margin.
corners = kp_to_pixels(face_kp["trained"]["value"][0], *face_images.shape[1:3])
centre, half = corners.mean(axis=0), np.ptp(corners, axis=0).max() / 2 + 16
fig, axes = panels(2)
for ax, name in zip(axes, face_kp):
    out = face_kp[name]
    show_keypoints(ax, face_images[0], out["value"][0], out["jacobian"][0], arrow=0.05)
    ax.set_xlim(centre[0] - half, centre[0] + half)
    ax.set_ylim(centre[1] + half, centre[1] - half)
    ax.set_title(f"{name}: $p_k$ and the columns of $J_k$")
plt.show()

# %% [markdown]
# The untrained detector puts all ten keypoints in a small cluster at the centre of the
# image, with identity Jacobians (section 5.2), on every frame: it has not yet learnt to
# look at anything. The trained one spreads them over the face, from the forehead over
# the eyes and the nose to the cheeks, and finds most of them on the same parts in the
# held-out frames it never saw. Its Jacobians are far from the identity: longer, turned
# and sheared arrows. Only the products $J_k^S (J_k^D)^{-1}$ ever enter the motion
# ([chapter 6](06_dense_motion.ipynb)), so the detector is free to choose the scale of
# its (unseen) reference frame; what matters is that each $J_k$ stays invertible and
# changes consistently with the part from frame to frame.
#
# The heatmaps of frame 0 explain the difference. Left, all ten heatmaps $H_k$ over
# the image, each in its keypoint's colour and scaled to its own maximum; then four of
# them with their soft-argmax (cyan cross), on one logarithmic colour scale for both
# rows (from $10^{-4}$, black, to the largest value shown, white):

# %% tags=["hide-input"]
SHOWN_KP = [0, 3, 6, 9]


def heatmap_composite(heat):
    """(h, w, K) heatmaps -> (h, w, 3): each in its keypoint colour, own maximum."""
    scaled = heat / heat.max(axis=(0, 1), keepdims=True)
    return np.clip(scaled @ kp_colours(heat.shape[-1]), 0, 1)


shown_max = max(face_kp[name]["heatmap"][0][..., SHOWN_KP].max() for name in face_kp)
log_scale = LogNorm(vmin=1e-4, vmax=shown_max, clip=True)
fig, axes = panels(2 * (len(SHOWN_KP) + 1), ncols=len(SHOWN_KP) + 1)
for row, name in enumerate(face_kp):
    heat = face_kp[name]["heatmap"][0]
    value = face_kp[name]["value"][0]
    ax = axes[row * (len(SHOWN_KP) + 1)]
    ax.imshow(face_images[0], extent=HEAT_EXTENT)
    ax.imshow(heatmap_composite(heat), extent=HEAT_EXTENT, alpha=0.7)
    ax.set_title(f"{name}: all $H_k$")
    ax.set_xticks([]), ax.set_yticks([])
    for j, k in enumerate(SHOWN_KP, start=1):
        title = f"$H_{k}$, max {heat[..., k].max():.2g}"
        ax = axes[row * (len(SHOWN_KP) + 1) + j]
        show_heatmap(ax, heat[..., k], value[k], title, norm=log_scale)
plt.show()

# %% [markdown]
# Most trained heatmaps are one compact blob of a few cells on one part of the face, so
# the expectation sits on that part (a few have two or three blobs, and the soft-argmax
# then lands between them: an expectation, not an argmax); the untrained ones are
# faint copies of the image's edges spread over the whole grid (their maximum is a few
# times $1/3364$, the value of a uniform heatmap, so each scaled to its own maximum is
# close to 1 everywhere and their composite a pale wash), and the expectation of an
# almost uniform distribution is the centre of the grid (section 5.1). Training did not change the soft-argmax or the
# temperature, only the logits the hourglass produces.
#
# The check, in numbers, on the three frames: the **effective number of cells** of each
# heatmap, $e^{\mathcal{H}(H_k)}$ with $\mathcal{H}$ its entropy (all
# $58 \times 58 = 3364$ cells for a uniform heatmap, 1 for a one-hot one) and its peak
# mass; how far the keypoints spread (mean distance to their centroid, in normalised
# units); and the Jacobians: every trained $\det J_k > 0$ (invertible and
# orientation-preserving, as the motion model needs) and far from the identity, every
# untrained one the identity.

# %% tags=["nbval-ignore-output"]
face_stats = {}
for name, out in face_kp.items():
    heat = out["heatmap"]  # (B, h, w, K)
    entropy = -(heat * np.log(np.maximum(heat, 1e-30))).sum(axis=(1, 2))
    centroid = out["value"].mean(axis=1, keepdims=True)
    face_stats[name] = {
        "cells": float(np.exp(entropy).mean()),
        "peak": float(heat.max(axis=(1, 2)).mean()),
        "spread": float(np.linalg.norm(out["value"] - centroid, axis=-1).mean()),
        "det": np.linalg.det(out["jacobian"]),
        "from_identity": float(np.abs(out["jacobian"] - np.eye(2)).max()),
    }
    stats = face_stats[name]
    print(
        f"{name:>9}: effective cells {stats['cells']:7.1f} of {heat.shape[1] ** 2}, "
        f"peak {stats['peak']:.4f}, spread {stats['spread']:.3f}, "
        f"det J in [{stats['det'].min():.2f}, {stats['det'].max():.2f}]"
    )
trained, untrained = face_stats["trained"], face_stats["untrained"]
assert trained["cells"] < 0.1 * untrained["cells"]  # concentrated heatmaps
assert trained["peak"] > 10 * untrained["peak"]
assert trained["spread"] > 3 * untrained["spread"]  # keypoints over the face
assert trained["det"].min() > 0 and trained["from_identity"] > 0.5
assert untrained["from_identity"] < 1e-5  # identity at initialisation
print(
    "trained / untrained: effective cells x "
    f"{trained['cells'] / untrained['cells']:.3f}, "
    f"spread x {trained['spread'] / untrained['spread']:.1f}"
)

# %% [markdown]
# ## 5.7 Checks
#
# Closed forms that always run:
#
# * (a) a freshly built detector has **identity Jacobians** (zero weights, bias
#   $[1,0,0,1]$, heatmaps summing to 1), for `single_jacobian_map` too;
# * (b) `gaussian2kp` is the NumPy expectation $\sum_z H(z)\, z$ and `heatmap_jacobian` the
#   NumPy weighted average;
# * (c) a one-hot heatmap at cell $j$ reports $2j/(m - 1) - 1$ on the $m$-cell grid, i.e.
#   the stretch of section 5.3 relative to the feature pixel it is centred on;
#
# and, where the reference outputs are available, (d) the keypoints of the converted
# checkpoint against those the original PyTorch code computed (`kp_source/*`,
# `kp_driving/*`, within $10^{-4}$).

# %%
# (a) identity Jacobians at initialisation
for single in (False, True):
    cfg = load_config("vox-256-tiny")
    cfg["model_params"]["kp_detector_params"]["single_jacobian_map"] = single
    fresh = KeypointDetector.from_config_dict(cfg)
    jac0 = fresh(images, training=False)["jacobian"].numpy()
    assert np.abs(jac0 - np.eye(2)).max() < 1e-5, single
    print(f"(a) single_jacobian_map={single}: every J = I at init (1e-5)")

# (b) soft-argmax and Jacobian average vs NumPy
grid = make_coordinate_grid(hm.shape[1], hm.shape[2]).numpy()
value_np = np.einsum("bhwk,hwc->bkc", hm, grid)
jm = jacobian_map.numpy().reshape(*jacobian_map.shape[:3], NUM_KP, 2, 2)
jac_np = np.einsum("bhwk,bhwkij->bkij", hm, jm)
assert np.abs(value_np - kp["value"].numpy()).max() < 1e-5
assert np.abs(jac_np - kp["jacobian"].numpy()).max() < 1e-5
print("(b) soft-argmax and Jacobian average == NumPy (1e-5)")

# (c) the 58-cell grid and the stretch of section 5.3 (64 features)
m_cells, feat = 58, 64
print("(c) cell   reported x   (63/57) x true x")
for cell in (0, 10, 29, 57):
    one_hot = np.zeros((1, m_cells, m_cells, 1), np.float32)
    one_hot[0, cell, cell, 0] = 1
    reported_x = float(gaussian2kp(tf.constant(one_hot)).numpy()[0, 0, 0])
    true_x = 2 * (cell + 3) / (feat - 1) - 1
    predicted = float(stretch.subs(n, feat)) * true_x
    assert abs(reported_x - predicted) < 1e-5
    print(f"    {cell:4d}   {reported_x:10.4f}   {predicted:16.4f}")

# %% [markdown]
# (d) The reference outputs of the original code. The largest differences are printed (their
# last digits depend on the CPU; the asserts hold everywhere):

# %% tags=["nbval-ignore-output"]
if REFERENCE_DIR is not None:
    ref = dict(np.load(REFERENCE_DIR / "vox-256-tiny-reference.npz"))
    for frame in ("source", "driving"):
        out = kp_detector(tf.constant(ref[frame]), training=False)
        for key in ("value", "jacobian"):
            err = np.abs(out[key].numpy() - ref[f"kp_{frame}/{key}"]).max()
            assert err < 1e-4, (frame, key, err)
            print(f"kp_{frame}/{key:8}: max |TF - PyTorch| = {err:.1e} < 1e-4")
else:
    print("reference outputs of the original code not available: parity check skipped")

# %% [markdown]
# ## 5.8 Widget: temperature and a shifted image
#
# Choose a keypoint, the softmax temperature and a horizontal/vertical shift of the
# photograph (in pixels, with zero padding). Lowering the temperature sharpens the heatmap
# and moves the keypoint to the strongest logit. Shifting the image by $s$ pixels moves its
# content by $2s/(W - 1)$ in normalised coordinates; a *trained* detector's keypoint follows
# the content (section 5.6: the trained detector finds the same parts of the face as the
# head moves), which is what the equivariance loss of [chapter 8](08_losses.ipynb)
# enforces for all transformations. The reference checkpoint's *untrained* detector shows
# how far from that a network starts, before any training: below, three horizontal shifts of the astronaut by a quarter
# of the image (content moved by about $\mp 0.5$), and keypoint 0 moves by about 0.1, the
# *other* way (the black band of padding changes its heatmap more than the content does).


# %%
def detect_shifted(shift_x=0, shift_y=0, temperature=0.1):
    """Shift the astronaut (zero padding) and run the detector's pieces on it."""
    shifted = tf.roll(astronaut, shift=(shift_y, shift_x), axis=(1, 2)).numpy()
    # tf.roll wraps around: blank what came in from the other side.
    if shift_y > 0:
        shifted[:, :shift_y] = 0
    if shift_y < 0:
        shifted[:, shift_y:] = 0
    if shift_x > 0:
        shifted[:, :, :shift_x] = 0
    if shift_x < 0:
        shifted[:, :, shift_x:] = 0
    feats = kp_detector.predictor(
        kp_detector.down(tf.constant(shifted)), training=False
    )
    heat = heatmap_softmax(kp_detector.kp(feats), temperature)
    val = gaussian2kp(heat).numpy()[0]
    jac = heatmap_jacobian(heat, kp_detector.jacobian(feats)).numpy()[0]
    return shifted[0], heat.numpy()[0], val, jac


shifts = [-SIZE // 4, 0, SIZE // 4]
fig, axes = panels(2 * len(shifts), ncols=len(shifts), height=2.0)
for i, shift in enumerate(shifts):
    shifted, heat, val, jac = detect_shifted(shift_x=shift)
    show_keypoints(axes[i], shifted, val, jac)
    axes[i].set_title(f"shift {shift:+d} px ({2 * shift / (SIZE - 1):+.2f})")
    show_heatmap(
        axes[i + len(shifts)], heat[..., 0], val[0], f"$H_0$, $x = {val[0, 0]:.3f}$"
    )
plt.show()

# %% [markdown]
# The widget's figure for six temperatures (keypoint 0, no shift): at $\tau = 1$ the
# untrained logits give an almost flat heatmap and every keypoint sits near the centre; as
# $\tau$ falls the heatmap contracts onto the strongest logits and the keypoint moves there.


# %% tags=["hide-input"]
def keypoint_figure(k=0, temperature=0.1, shift_x=0, shift_y=0):
    """The shifted photograph with its keypoints, and heatmap k with its soft-argmax."""
    shifted, heat, val, jac = detect_shifted(shift_x, shift_y, temperature)
    fig, axes = panels(2, height=3.0)
    show_keypoints(axes[0], shifted, val, jac)
    axes[0].set_title(f"τ = {temperature:g}, shift ({shift_x}, {shift_y}) px")
    show_heatmap(
        axes[1], heat[..., k], val[k], f"$H_{k}$: ({val[k, 0]:.3f}, {val[k, 1]:.3f})"
    )
    return fig


static_slider(
    {f"{t:g}": keypoint_figure(0, t) for t in (0.001, 0.01, 0.03, 0.1, 0.3, 1.0)},
    label="temperature τ",
    initial="0.1",
)

# %% [markdown]
# > **Live widget.** The figure above switches between a few precomputed settings; run the
# > notebook (Colab button at the top, or Jupyter) to change every parameter freely.


# %% tags=["hide-input", "remove-output", "nbval-ignore-output"]
def show_keypoint(k=0, temperature=0.1, shift_x=0, shift_y=0):
    keypoint_figure(k, temperature, shift_x, shift_y)
    plt.show()


_ = interact(
    show_keypoint,
    k=IntSlider(value=0, min=0, max=NUM_KP - 1),
    temperature=FloatLogSlider(value=0.1, base=10, min=-3, max=1, step=0.1),
    shift_x=IntSlider(value=0, min=-SIZE // 4, max=SIZE // 4, step=4),
    shift_y=IntSlider(value=0, min=-SIZE // 4, max=SIZE // 4, step=4),
)

# %% [markdown]
# ## Summary
#
# * A keypoint is the **expectation** of the coordinate under a spatial softmax of the logits
#   (temperature 0.1): differentiable, with $\partial p/\partial \ell_i = H_i (z_i - p)/\tau$.
# * Its Jacobian is the **heatmap-weighted average** of a per-pixel $2 \times 2$ prediction;
#   the head starts at the identity.
# * The detector is an anti-aliased $\times 0.25$ downsampling, an hourglass (U-Net) and two
#   $7 \times 7$ heads. With `pad=0` (all published checkpoints) the heads are valid
#   convolutions: $64 \to 58$ cells, and keypoints are reported $63/57$ times farther from
#   the centre than the feature pixel they come from (issue #52).
# * Untrained, every heatmap is almost uniform and every keypoint sits near the centre
#   with $J_k = I$. Trained on a real clip without labels, the same network concentrates
#   each heatmap on a few cells of one part of the face, spreads the keypoints over the
#   face (also on frames it never saw) and predicts invertible Jacobians far from the
#   identity (section 5.6).
# * The port reproduces the keypoints of the original code on its reference outputs within
#   $10^{-4}$.
#
# Next, [chapter 6](06_dense_motion.ipynb) turns two sets of keypoints (source and driving)
# into a dense motion field.
#
# ## Exercises
#
# 1. **Soft-argmax is not argmax.** With sympy, compute the soft-argmax of two grid positions
#    $z_0 = -1$, $z_1 = 1$ with logits $\ell$ and $0$ as a function of $\ell$ and $\tau$. How
#    large must $\ell/\tau$ be for the keypoint to be within 0.01 of $z_0$?
# 2. **A biased keypoint.** Put a single Gaussian bump of logits near the border of a
#    $58 \times 58$ grid and compute `gaussian2kp` of its softmax at $\tau = 1$ and
#    $\tau = 0.1$. Why is the keypoint pulled towards the centre, and which temperature
#    suffers more?
# 3. **`pad=3`.** Build the tiny detector with `kp_detector_params.pad = 3`, check that its
#    heatmaps are $32 \times 32$, and repeat check (c) of section 5.7 with the stretch of
#    section 5.3 for this case.
# 4. **Which part is which?** Run the trained detector of section 5.6 on every tenth
#    held-out frame of `heldout_clip("talking-head-128")` and plot, for each keypoint,
#    its $x$ and $y$ against time. Which keypoints follow the mouth, which the head as a
#    whole? Compare how $\det J_k$ changes over the same frames, and repeat the shift of
#    section 5.8 on frame 0 with the trained detector: does keypoint 0 follow the
#    content now?
