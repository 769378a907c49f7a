# %% [markdown]
# # 2. Taylor series: the "first order" in First Order Motion Model
#
# FOMM never predicts a full motion field directly. It predicts, for each of $K$ keypoints, a
# position and a $2 \times 2$ Jacobian, and approximates the motion **near each keypoint** by its
# first-order Taylor expansion. This chapter builds that idea up from one variable:
#
# 1. Taylor polynomials of $\cos$, $\sin$, $\exp$ with sympy, their errors and the Lagrange bound;
# 2. several variables: the first-order expansion and the Jacobian matrix;
# 3. the paper's motion model (equations 3-5):
#    $\mathcal{T}_{S\leftarrow D}(z) \approx \mathcal{T}_{S\leftarrow R}(p_k) + J_k\big(z -
#    \mathcal{T}_{D\leftarrow R}(p_k)\big)$ with $J_k = \big(\tfrac{d}{dp}\mathcal{T}_{S\leftarrow
#    R}\big)\big(\tfrac{d}{dp}\mathcal{T}_{D\leftarrow R}\big)^{-1}$, derived symbolically, proved
#    exact for affine maps, and checked against TensorFlow autodiff: the error shrinks
#    **quadratically** with the distance to the keypoint;
# 4. the equivariance constraint that trains the keypoints and Jacobians, and why its Jacobian
#    term is compared with the identity matrix.

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
from ipywidgets import Dropdown, FloatSlider, IntSlider, interact

from fomm_tutorial.runtime import quiet_stderr

# TensorFlow writes C++ start-up notices (oneDNN, CUDA) straight to the process's stderr,
# whatever TF_CPP_MIN_LOG_LEVEL says: import it and run a first op with stderr silenced.
with quiet_stderr():
    import tensorflow as tf
    from fomm_tutorial.runtime import configure
    from fomm_tutorial import taylor as ty

    rt = configure(seed=0)
    tf.zeros(1) + 1  # the first op loads the remaining kernels


# %%
# Parameters: the computations here are tiny; a GPU only gets a denser sampling.
NUM_POINTS = rt.choose(cpu=201, gpu=1001)  # samples of the 1-D error plots
NUM_DISTANCES = rt.choose(cpu=9, gpu=25)  # distances of the quadratic-error fit
print("device:", rt.device, "| points:", NUM_POINTS, "| distances:", NUM_DISTANCES)

# %% [markdown]
# ## 1. One variable
#
# A smooth function is, near a point $x_0$, well described by its derivatives there:
#
# $$f(x) = \underbrace{\sum_{n=0}^{N} \frac{f^{(n)}(x_0)}{n!}(x - x_0)^n}_{P_N(x)} + R_N(x),\qquad
# |R_N(x)| \le \max|f^{(N+1)}|\,\frac{|x - x_0|^{N+1}}{(N+1)!}.$$
#
# `taylor_polynomial` builds $P_N$ straight from this definition with sympy:

# %%
print(inspect.getsource(ty.taylor_polynomial))
x = sp.Symbol("x", real=True)
for name in ["cos", "sin", "exp"]:
    print(f"{name}: P_5 about 0 =", ty.taylor_polynomial(name, None, 0, 5))

# %% [markdown]
# The derivatives follow a pattern: $\cos^{(n)}(x) = \cos(x + n\pi/2)$,
# $\sin^{(n)}(x) = \sin(x + n\pi/2)$, $\exp^{(n)} = \exp$. `taylor_closed_form` writes the
# polynomial from that pattern; the check cell compares both with sympy's own `series` for several
# orders and expansion points.

# %%
for name in ["cos", "sin", "exp"]:
    for order in [0, 1, 4, 7]:
        for x0 in [0, sp.Rational(1, 3), sp.pi / 4]:
            p = ty.taylor_polynomial(name, None, x0, order)
            assert sp.simplify(p - ty.taylor_closed_form(name, order, x0)) == 0
            assert (
                sp.simplify(
                    sp.expand(p - ty.FUNCTIONS[name].series(x, x0, order + 1).removeO())
                )
                == 0
            )
print("derivative definition = closed form = sympy series for cos, sin, exp")

# %% [markdown]
# ### Errors
#
# Near $x_0$ the error of $P_N$ behaves like $|x - x_0|^{N+1}$: on a log-log plot against the
# distance it is a straight line of slope $N + 1$. Far away, a low-order polynomial is useless.
# The Lagrange bound (dashed) holds everywhere.

# %%
xs = np.linspace(-4, 4, NUM_POINTS)
fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
for ax, name in zip(axes, ["cos", "sin", "exp"]):
    f = sp.lambdify(x, ty.FUNCTIONS[name], "numpy")
    ax.plot(xs, f(xs), "k", lw=2, label=name)
    for order in [1, 3, 5]:
        poly = sp.lambdify(x, ty.taylor_polynomial(name, None, 0, order), "numpy")
        ax.plot(xs, poly(xs) * np.ones_like(xs), label=f"$P_{order}$")
    ax.set_ylim(-2.5, 4 if name != "exp" else 12)
    ax.set_title(f"{name} and its Taylor polynomials about 0")
    ax.legend(fontsize=8)
plt.tight_layout()
plt.show()

dist = np.geomspace(1e-2, 2, 40)
fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
for ax, name in zip(axes, ["cos", "sin", "exp"]):
    for order in [1, 2, 3, 5]:
        err = ty.taylor_error(name, order, 0.5, 0.5 + dist)
        (line,) = ax.loglog(dist, err + 1e-300, label=f"N={order}")
        ax.loglog(
            dist,
            ty.lagrange_bound(name, order, 0.5, 0.5 + dist),
            "--",
            color=line.get_color(),
            lw=0.8,
        )
    ax.set_xlabel("$|x - x_0|$ ($x_0 = 0.5$)")
    ax.set_title(f"{name}: error (solid), Lagrange bound (dashed)")
    ax.set_ylim(1e-14, 1e2)
    ax.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %%
# Check: the error never exceeds the Lagrange bound, and its log-log slope near x0 is N + 1.
near = np.geomspace(1e-3, 1e-1, 9)
for name in ["cos", "sin", "exp"]:
    slopes = []
    for order in [1, 2, 3]:
        xs_check = np.linspace(-3, 3, NUM_POINTS)
        assert np.all(
            ty.taylor_error(name, order, 0.5, xs_check)
            <= ty.lagrange_bound(name, order, 0.5, xs_check) + 1e-12
        )
        slopes.append(
            ty.loglog_slope(near, ty.taylor_error(name, order, 0.5, 0.5 + near))
        )
    print(name, "slopes for N = 1, 2, 3:", [f"{s:.2f}" for s in slopes])
    assert np.allclose(slopes, [2, 3, 4], atol=0.15)

# %% [markdown]
# ### Widget: order and expansion point
#
# Move the expansion point $x_0$ and the order $N$; the shaded band is where the error is below
# 0.01.


# %%
# NBVAL_IGNORE_OUTPUT
def show_taylor(function="cos", order=3, x0=0.0):
    xs_w = np.linspace(-5, 5, 401)
    f = sp.lambdify(x, ty.FUNCTIONS[function], "numpy")
    poly = sp.lambdify(
        x, ty.taylor_polynomial(function, None, sp.nsimplify(x0), order), "numpy"
    )
    err = ty.taylor_error(function, order, x0, xs_w)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    axes[0].plot(xs_w, f(xs_w), "k", lw=2, label=function)
    axes[0].plot(
        xs_w,
        poly(xs_w) * np.ones_like(xs_w),
        "C1",
        label=f"$P_{{{order}}}$ about {x0:.2f}",
    )
    axes[0].fill_between(
        xs_w, -3, 3, where=err < 1e-2, color="C2", alpha=0.15, label="error < 0.01"
    )
    axes[0].axvline(x0, color="gray", lw=0.8)
    axes[0].set_ylim(-3, 3 if function != "exp" else 20)
    axes[0].legend(fontsize=8)
    axes[1].semilogy(xs_w, err + 1e-17)
    axes[1].semilogy(xs_w, ty.lagrange_bound(function, order, x0, xs_w) + 1e-17, "--")
    axes[1].set_ylim(1e-16, 1e3)
    axes[1].set_title("error and Lagrange bound")
    plt.show()


interact(
    show_taylor,
    function=Dropdown(options=["cos", "sin", "exp"], value="cos"),
    order=IntSlider(value=3, min=0, max=12),
    x0=FloatSlider(value=0.0, min=-3, max=3, step=0.25),
)
# %% [markdown]
# ## 2. Several variables: the Jacobian
#
# For a map $T: \mathbb{R}^2 \to \mathbb{R}^2$ the first-order expansion about $a$ is
#
# $$T(z) \approx T(a) + J_T(a)\,(z - a),\qquad J_T = \begin{pmatrix} \partial T_x/\partial x &
# \partial T_x/\partial y\\ \partial T_y/\partial x & \partial T_y/\partial y\end{pmatrix},$$
#
# row-major as the package's keypoint `jacobian` (`J[..., 0, :]` $= \partial x'/\partial(x, y)$).
# The error is now $O(|z - a|^2)$, and it is **zero for affine maps**: an affine map is its own
# first-order expansion.

# %%
u_, v_ = sp.symbols("u v", real=True)
warp = [u_ + sp.Rational(1, 5) * sp.sin(v_), v_ + sp.Rational(1, 10) * u_**2]
J = ty.jacobian(warp, [u_, v_])
expansion, J_a = ty.first_order_expansion(warp, [u_, v_], (1, 0))
print("J(u, v) =", J.tolist())
print("J(1, 0) =", J_a.tolist())
print("expansion about (1, 0):", [sp.expand(e) for e in expansion])
assert J == sp.Matrix([[1, sp.cos(v_) / 5], [u_ / 5, 1]])
affine = [3 * u_ - v_ + 1, 2 * v_ - 5]
assert sp.simplify(
    ty.first_order_expansion(affine, [u_, v_], (7, -2))[0] - sp.Matrix(affine)
) == sp.zeros(2, 1)

# %% [markdown]
# ## 3. The motion model of the paper
#
# FOMM assumes an abstract **reference frame** $R$. The keypoint detector gives, for each image
# $X$, the points $\mathcal{T}_{X\leftarrow R}(p_k)$ and the Jacobians
# $\tfrac{d}{dp}\mathcal{T}_{X\leftarrow R}(p)\big|_{p_k}$. The generator needs the **backward** map
# from the driving frame to the source (chapter 1: one lookup per output pixel):
#
# $$\mathcal{T}_{S\leftarrow D} = \mathcal{T}_{S\leftarrow R}\circ\mathcal{T}_{R\leftarrow D} =
# \mathcal{T}_{S\leftarrow R}\circ\mathcal{T}_{D\leftarrow R}^{-1}.\qquad(3)$$
#
# Expand it to first order about $z_k = \mathcal{T}_{D\leftarrow R}(p_k)$, the keypoint seen in $D$.
# Its value there is $\mathcal{T}_{S\leftarrow R}(p_k)$; by the chain rule and the inverse
# function theorem ($\tfrac{d}{dz}\mathcal{T}^{-1} = (\tfrac{d}{dp}\mathcal{T})^{-1}$) its
# Jacobian is $J_k$:
#
# $$\mathcal{T}_{S\leftarrow D}(z) \approx \mathcal{T}_{S\leftarrow R}(p_k) + J_k\big(z -
# \mathcal{T}_{D\leftarrow R}(p_k)\big),\qquad(4)$$
# $$J_k = \Big(\tfrac{d}{dp}\mathcal{T}_{S\leftarrow R}(p)\big|_{p_k}\Big)
# \Big(\tfrac{d}{dp}\mathcal{T}_{D\leftarrow R}(p)\big|_{p_k}\Big)^{-1}.\qquad(5)$$
#
# The reference frame has disappeared: both factors are predicted by the detector from $S$ and
# from $D$ alone. sympy with generic symbols for the values and Jacobians at $p_k$:

# %%
mm = ty.motion_model_derivation()
print("J_k =", sp.simplify(mm["J_k"]).tolist())
print("approximation (4), x component:", sp.simplify(mm["approximation"][0]))
assert sp.simplify(mm["J_k"] * mm["J_D"] - mm["J_S"]) == sp.zeros(2, 2)
assert sp.simplify(
    mm["approximation"].subs(dict(zip(mm["z"], mm["T_D_pk"]))) - mm["T_S_pk"]
) == sp.zeros(2, 1)

# %% [markdown]
# ### Exact for affine maps
#
# If $\mathcal{T}_{S\leftarrow R}(p) = Ap + a$ and $\mathcal{T}_{D\leftarrow R}(p) = Bp + b$, then
# $\mathcal{T}_{S\leftarrow D}(z) = AB^{-1}(z - b) + a$ exactly. `affine_exactness` builds equation
# (4) from the Jacobians of the two maps at a symbolic keypoint and subtracts:

# %%
print(inspect.getsource(ty.affine_exactness).split('"""')[-1])
aff = ty.affine_exactness()
print("exact - approximation =", aff["difference"].tolist())
assert aff["difference"] == sp.zeros(2, 1)

# %% [markdown]
# So each keypoint's local model is an affine map, and FOMM's sparse motions are exact whenever
# the true motion near a keypoint is affine: the "first order" of the title.
#
# ### Non-linear maps: autodiff and a quadratic error
#
# Now two non-linear warps, written in TensorFlow (float64). `numeric_jacobian` gets the
# Jacobians at $p_k$ from `tf.GradientTape.batch_jacobian`, `invert_map` inverts
# $\mathcal{T}_{D\leftarrow R}$ by Newton's method for the exact answer, and
# `first_order_errors` measures $|\text{exact} - (4)|$ at growing distances from $z_k$.


# %%
def T_SR(p):
    px, py = p[..., 0], p[..., 1]
    return tf.stack(
        [0.9 * px + 0.2 * tf.sin(py) + 0.1, 0.1 * px * py + 1.1 * py - 0.2], -1
    )


def T_DR(p):
    px, py = p[..., 0], p[..., 1]
    return tf.stack(
        [px + 0.15 * tf.tanh(py) + 0.05 * px**2, 0.8 * py - 0.1 * px + 0.3], -1
    )


p_k = (0.2, -0.3)
approx, J_k = ty.motion_model_approximation(
    T_SR, T_DR, p_k, T_DR(tf.constant([p_k], tf.float64))
)
print("J_k =", np.round(J_k.numpy(), 4).tolist())
# Autodiff against the hand-written Jacobians of the two warps.
px, py = p_k
J_S_hand = np.array([[0.9, 0.2 * np.cos(py)], [0.1 * py, 0.1 * px + 1.1]])
J_D_hand = np.array([[1 + 0.1 * px, 0.15 / np.cosh(py) ** 2], [-0.1, 0.8]])
assert np.allclose(J_k.numpy(), J_S_hand @ np.linalg.inv(J_D_hand), atol=1e-12)

distances = np.geomspace(1e-3, 3e-1, NUM_DISTANCES)
errors = ty.first_order_errors(T_SR, T_DR, p_k, distances)
slope = ty.loglog_slope(distances[distances <= 0.1], errors[distances <= 0.1])
print(f"log-log slope of the first-order error: {slope:.3f}")

# %%
# Check: the first-order error is quadratic in the distance to the keypoint.
assert abs(slope - 2.0) < 0.1, slope
print("quadratic: checked")

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
axes[0].loglog(distances, errors, "o-", label="|exact - eq. (4)|")
axes[0].loglog(
    distances,
    errors[0] * (distances / distances[0]) ** 2,
    "k--",
    lw=0.8,
    label="slope 2",
)
axes[0].set_xlabel("distance $|z - z_k|$")
axes[0].set_title(f"first-order error, fitted slope {slope:.2f}")
axes[0].legend()
# The exact backward map and the local affine model on a small grid around z_k.
z_k = T_DR(tf.constant([p_k], tf.float64)).numpy()[0]
g = (
    np.stack(
        np.meshgrid(np.linspace(-0.5, 0.5, 11), np.linspace(-0.5, 0.5, 11)), -1
    ).reshape(-1, 2)
    + z_k
)
exact = T_SR(ty.invert_map(T_DR, tf.constant(g), initial=tf.constant(g))).numpy()
local, _ = ty.motion_model_approximation(T_SR, T_DR, p_k, tf.constant(g))
axes[1].scatter(*exact.T, s=10, label="exact $T_{S<-D}(z)$")
axes[1].scatter(*local.numpy().T, s=10, marker="x", label="first order about $z_k$")
axes[1].scatter(
    *T_SR(tf.constant([p_k], tf.float64)).numpy().T,
    c="r",
    s=40,
    label="$T_{S<-R}(p_k)$",
)
axes[1].set_title("11 x 11 grid around $z_k$ mapped into S")
axes[1].legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 4. Equivariance: training keypoints and Jacobians without labels
#
# Nothing tells the detector where the keypoints are. FOMM warps an image $X$ by a known random
# thin-plate spline into $Y$, so $\mathcal{T}_{X\leftarrow Y}$ is known, and asks the detector to be
# consistent: $\mathcal{T}_{X\leftarrow R} = \mathcal{T}_{X\leftarrow Y}\circ\mathcal{T}_{Y\leftarrow R}$.
# Its values give the keypoint loss, and differentiating (first order again) gives the Jacobian
# constraint
#
# $$\tfrac{d}{dp}\mathcal{T}_{X\leftarrow R}\big|_{p_k} =
# \tfrac{d}{dp}\mathcal{T}_{X\leftarrow Y}\big|_{\mathcal{T}_{Y\leftarrow R}(p_k)}\;
# \tfrac{d}{dp}\mathcal{T}_{Y\leftarrow R}\big|_{p_k}, \qquad J_X = J_w J_Y.$$
#
# An L1 loss on $J_X - J_w J_Y$ has a cheap way out: it is **linear** in the predicted Jacobians,
# so scaling them all by $s \to 0$ scales the loss by $s$, and the detector can collapse every
# Jacobian to zero (then $J_k = J_S J_D^{-1}$ is undefined). The paper multiplies by $J_X^{-1}$ and
# compares with the identity:
#
# $$\mathbb{1} \equiv J_X^{-1} J_w J_Y, \qquad L = \big|\mathbb{1} - J_X^{-1} J_w J_Y\big|_1,$$
#
# which is invariant to that scale (and penalises a singular $J_X$). sympy confirms both
# statements with symbolic Jacobians:

# %%
eq = ty.equivariance_derivation()
s = eq["s"]
assert sp.simplify(eq["raw_scaled"] - s * eq["raw"]) == sp.zeros(2, 2)
assert sp.simplify(eq["identity_scaled"] - eq["identity"]) == sp.zeros(2, 2)
print("raw residual scales with s; identity form does not depend on s")

# %% [markdown]
# And numerically with `equivariance_jacobian_losses` on nearly consistent random Jacobians,
# shrunk by growing factors:

# %%
rng = np.random.default_rng(0)
jw = np.eye(2) + 0.2 * rng.standard_normal((1, 5, 2, 2))
jy = np.eye(2) + 0.2 * rng.standard_normal((1, 5, 2, 2))
jx = jw @ jy + 0.05 * rng.standard_normal((1, 5, 2, 2))
scales = [1.0, 0.1, 0.01, 0.001]
losses = [ty.equivariance_jacobian_losses(sc * jx, sc * jy, jw) for sc in scales]
for sc, (raw, ident) in zip(scales, losses):
    print(f"scale {sc:6.3f}: raw L1 {float(raw):.5f}   identity L1 {float(ident):.5f}")
assert float(losses[-1][0]) < 0.01 * float(losses[0][0])
assert abs(float(losses[-1][1]) - float(losses[0][1])) < 1e-3 * float(losses[0][1])

fig, ax = plt.subplots(figsize=(5, 3.4))
ax.loglog(scales, [float(r) for r, _ in losses], "o-", label="raw $|J_X - J_w J_Y|$")
ax.loglog(
    scales,
    [float(i) for _, i in losses],
    "s-",
    label="identity $|1 - J_X^{-1} J_w J_Y|$",
)
ax.set_xlabel("scale s of the predicted Jacobians")
ax.set_ylabel("L1 loss")
ax.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Summary
#
# * A Taylor polynomial of order $N$ has an error $O(|x - x_0|^{N+1})$, bounded by Lagrange's
#   remainder; checked for $\cos$, $\sin$, $\exp$ against closed forms and sympy's `series`.
# * In several variables the first-order expansion uses the Jacobian, and is exact for affine
#   maps.
# * FOMM's motion model (equations 3-5) is the first-order expansion of
#   $\mathcal{T}_{S\leftarrow D} = \mathcal{T}_{S\leftarrow R}\circ\mathcal{T}_{D\leftarrow R}^{-1}$
#   about each keypoint, with $J_k = J_S J_D^{-1}$: symbolically exact for affine maps, and for
#   non-linear ones its error shrinks quadratically (fitted slope 2.00).
# * The equivariance constraint trains keypoints and Jacobians; its Jacobian term is written as
#   $\mathbb{1} \equiv J_X^{-1} J_w J_Y$ because an L1 on the raw product lets all Jacobians
#   collapse to zero.
#
# Chapters 3 and 4 turn these maps into tensors: coordinate grids and the resampler.
