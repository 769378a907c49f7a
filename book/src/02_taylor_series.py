# %% [markdown]
# # 2. Taylor series: the "first order" in First Order Motion Model
#
# FOMM ([Siarohin et al., 2019](https://arxiv.org/abs/2003.00196)) never predicts a full
# motion field directly. It predicts, for each of $K$ keypoints, a position and a $2
# \times 2$ Jacobian, and approximates the motion **near each keypoint** by its
# first-order Taylor expansion. [Chapter 1](01_optical_flow.ipynb) already linearised
# brightness constancy the same way; this chapter builds the idea up from one variable:
#
# 1. Taylor polynomials of $\cos$, $\sin$, $\exp$ with sympy, their errors and the
#    Lagrange bound;
# 2. several variables: the first-order expansion and the Jacobian matrix;
# 3. the paper's motion model (equations 3-5): $\mathcal{T}_{S\leftarrow D}(z) \approx
#    \mathcal{T}_{S\leftarrow R}(p_k) + J_k\big(z - \mathcal{T}_{D\leftarrow
#    R}(p_k)\big)$ with $J_k = \big(\tfrac{d}{dp} \mathcal{T}_{S\leftarrow
#    R}\big)\big(\tfrac{d}{dp}\mathcal{T}_{D\leftarrow R}\big)^{-1}$, derived
#    symbolically, proved exact for affine maps, and checked against TensorFlow
#    autodiff: the error shrinks **quadratically** with the distance to the keypoint;
# 4. the equivariance constraint that trains the keypoints and Jacobians, and why its
#    Jacobian term is compared with the identity matrix.
#
# The code of this chapter is in
# [`fomm_tutorial/taylor.py`](https://github.com/fomm-tutorial/fomm-tutorial/blob/main/fomm_tutorial/taylor.py).

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
# stderr, whatever TF_CPP_MIN_LOG_LEVEL says: import it and run a first op with stderr
# silenced.
with quiet_stderr():
    import tensorflow as tf
    from fomm_tutorial.runtime import configure
    from fomm_tutorial import taylor as ty

    rt = configure(seed=0)
    tf.zeros(1) + 1  # the first op loads the remaining kernels
use_book_style()

# %%
# Parameters: tiny computations; a GPU only gets a denser sampling.
NUM_POINTS = rt.choose(cpu=201, gpu=1001)  # samples of the 1-D error plots
NUM_DISTANCES = rt.choose(cpu=9, gpu=25)  # distances of the quadratic fit
print(f"device: {rt.device}, points: {NUM_POINTS}, distances: {NUM_DISTANCES}")

# %% [markdown]
# ## 2.1 One variable
#
# A smooth function is, near a point $x_0$, well described by its derivatives there:
#
# $$f(x) = \underbrace{\sum_{n=0}^{N} \frac{f^{(n)}(x_0)}{n!}(x - x_0)^n}_{P_N(x)} +
# R_N(x),$$
#
# where the remainder $R_N$ is bounded by Lagrange's form
#
# $$|R_N(x)| \le \max|f^{(N+1)}|\,\frac{|x - x_0|^{N+1}}{(N+1)!}$$
#
# (the maximum over the interval between $x_0$ and $x$).
#
# `taylor_polynomial` builds $P_N$ straight from this definition with sympy:

# %% tags=["remove-input"]
show_source(ty.taylor_polynomial)

# %%
x = sp.Symbol("x", real=True)
show_equations(
    [
        (rf"P_5^{{\{name}}}(x)", ty.taylor_polynomial(name, None, 0, 5))
        for name in ["cos", "sin", "exp"]
    ]
)

# %% [markdown]
# The derivatives follow a pattern: $\cos^{(n)}(x) = \cos(x + n\pi/2)$, $\sin^{(n)}(x) =
# \sin(x + n\pi/2)$, $\exp^{(n)} = \exp$. `taylor_closed_form` writes the polynomial
# from that pattern:

# %% tags=["remove-input"]
show_source(ty.taylor_closed_form)

# %% [markdown]
# The check cell compares both with sympy's own `series` for several orders and
# expansion points:

# %%
cases = 0
for name in ["cos", "sin", "exp"]:
    for order in [0, 1, 4, 7]:
        for x0 in [0, sp.Rational(1, 3), sp.pi / 4]:
            p = ty.taylor_polynomial(name, None, x0, order)
            series = ty.FUNCTIONS[name].series(x, x0, order + 1).removeO()
            closed_form = ty.taylor_closed_form(name, order, x0)
            assert sp.simplify(p - closed_form) == 0
            assert sp.simplify(sp.expand(p - series)) == 0
            cases += 1
print(f"{cases} cases: derivative definition = closed form = sympy series")

# %% [markdown]
# For instance $P_4$ of $\sin$ about $x_0 = \pi/4$, written in powers of $h = x - \pi/4$
# with the common factor $\sin(\pi/4) = \cos(\pi/4) = \sqrt2/2$ taken out:

# %%
h = sp.Symbol("h", real=True)
p = ty.taylor_polynomial("sin", None, sp.pi / 4, 4)
in_h = sp.expand(p.subs(x, h + sp.pi / 4) / (sp.sqrt(2) / 2))
assert sp.simplify((sp.sqrt(2) / 2 * in_h).subs(h, x - sp.pi / 4) - p) == 0
show_math(r"P_4^{\sin}(x) = \frac{\sqrt{2}}{2}\left(", in_h, r"\right)")

# %% [markdown]
# ### Errors
#
# Near $x_0$ the error of $P_N$ behaves like $|x - x_0|^{N+1}$: on a log-log plot
# against the distance it is a straight line of slope $N + 1$. Far away, a low-order
# polynomial is useless. First the polynomials about 0:

# %% tags=["hide-input"]
xs = np.linspace(-4, 4, NUM_POINTS)
fig, axes = panels(3, height=2.6)
for ax, name in zip(axes, ["cos", "sin", "exp"]):
    f = sp.lambdify(x, ty.FUNCTIONS[name], "numpy")
    ax.plot(xs, f(xs), "k", lw=2, label="$f$")
    for order in [1, 3, 5]:
        poly = sp.lambdify(x, ty.taylor_polynomial(name, None, 0, order), "numpy")
        ax.plot(xs, poly(xs) * np.ones_like(xs), label=f"$P_{order}$")
    ax.set_ylim(-2.5, 4 if name != "exp" else 12)
    ax.set_title(rf"$f = \{name}$")
    ax.set_xlabel("$x$")
axes[0].set_ylabel("$f(x)$, $P_N(x)$")
fig.legend(*axes[0].get_legend_handles_labels(), loc="outside right center")
plt.show()

# %% [markdown]
# Then the errors about $x_0 = 0.5$ on log-log axes; the Lagrange bound (dashed) holds
# everywhere:

# %% tags=["hide-input"]
dist = np.geomspace(1e-2, 2, 40)
fig, axes = panels(3, height=2.8)
for ax, name in zip(axes, ["cos", "sin", "exp"]):
    for order in [1, 2, 3, 5]:
        err = ty.taylor_error(name, order, 0.5, 0.5 + dist)
        (line,) = ax.loglog(dist, err + 1e-300, label=f"$N = {order}$")
        bound = ty.lagrange_bound(name, order, 0.5, 0.5 + dist)
        ax.loglog(dist, bound, "--", color=line.get_color(), lw=0.8)
    ax.set_xlabel("$|x - x_0|$")
    ax.set_title(rf"$\{name}$: $|f - P_N|$")
    ax.set_ylim(1e-14, 1e2)
axes[0].set_ylabel("error")
fig.legend(*axes[0].get_legend_handles_labels(), loc="outside right center")
plt.show()

# %%
# Check: the error stays below the Lagrange bound; its log-log slope near x0 is N + 1.
near = np.geomspace(1e-3, 1e-1, 9)
xs_check = np.linspace(-3, 3, NUM_POINTS)
print("log-log slopes of the error near x0 = 0.5 (expected 2, 3, 4):")
for name in ["cos", "sin", "exp"]:
    slopes = []
    for order in [1, 2, 3]:
        error = ty.taylor_error(name, order, 0.5, xs_check)
        bound = ty.lagrange_bound(name, order, 0.5, xs_check)
        assert np.all(error <= bound + 1e-12)
        error_near = ty.taylor_error(name, order, 0.5, 0.5 + near)
        slopes.append(ty.loglog_slope(near, error_near))
    print(f"{name}: N = 1, 2, 3 ->", ", ".join(f"{s:.2f}" for s in slopes))
    assert np.allclose(slopes, [2, 3, 4], atol=0.15)

# %% [markdown]
# ### The order $N$
#
# How far from $x_0$ is a Taylor polynomial useful? Below, $\cos$ and $P_N$ about 0 for
# four orders; the shaded band is where the error is below 0.01. It widens with $N$, but
# only slowly: each extra order buys a little more distance.


# %% tags=["hide-input"]
def plot_taylor(ax, function, order, x0):
    """The function, its Taylor polynomial about x0, the band where the error < 0.01."""
    xs_w = np.linspace(-5, 5, 401)
    f = sp.lambdify(x, ty.FUNCTIONS[function], "numpy")
    p = ty.taylor_polynomial(function, None, sp.nsimplify(x0), order)
    poly = sp.lambdify(x, p, "numpy")
    err = ty.taylor_error(function, order, x0, xs_w)
    top = 3 if function != "exp" else 20
    ax.plot(xs_w, f(xs_w), "k", lw=2, label=rf"$\{function}$")
    ax.plot(xs_w, poly(xs_w) * np.ones_like(xs_w), "C1", label="$P_N$")
    ax.fill_between(
        xs_w, -3, top, where=err < 1e-2, color="C2", alpha=0.2, label="error < 0.01"
    )
    ax.axvline(x0, color="gray", lw=0.8)
    ax.set_ylim(-3, top)
    ax.set_xlabel("$x$")
    ax.set_title(f"$N = {order}$, $x_0 = {x0:g}$")
    return err


ORDERS = [1, 3, 5, 9]
fig, axes = panels(len(ORDERS), height=2.2)
for ax, order in zip(axes, ORDERS):
    plot_taylor(ax, "cos", order, 0.0)
axes[0].set_ylabel("$f(x)$, $P_N(x)$")
fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=3)
plt.show()

# %% [markdown]
# ### Widget: order and expansion point
#
# Choose the function, the order $N$ and the expansion point $x_0$; the right panel
# shows the error and the Lagrange bound on a log scale. Below, $\cos$ about $x_0 = 1$
# (where odd and even terms both count) for six orders: the error curve drops by orders of
# magnitude near $x_0$ with each term and always stays under its bound.


# %% tags=["hide-input"]
def taylor_figure(function="cos", order=3, x0=0.0):
    """The function and P_N (left); the error and its Lagrange bound (right)."""
    fig, axes = panels(2, height=2.8)
    err = plot_taylor(axes[0], function, order, x0)
    axes[0].legend(loc="lower center")
    xs_w = np.linspace(-5, 5, 401)
    bound = ty.lagrange_bound(function, order, x0, xs_w)
    axes[1].semilogy(xs_w, err + 1e-17, label="$|f - P_N|$")
    axes[1].semilogy(xs_w, bound + 1e-17, "--", label="Lagrange bound")
    axes[1].set_ylim(1e-16, 1e3)
    axes[1].set_xlabel("$x$")
    axes[1].set_title("error")
    axes[1].legend()
    return fig


static_slider(
    {f"N = {n}": taylor_figure("cos", n, 1.0) for n in (0, 1, 2, 3, 5, 8)},
    label="order",
    initial="N = 3",
)

# %% [markdown]
# > **Live widget.** The figure above switches between a few precomputed settings; run the
# > notebook (Colab button at the top, or Jupyter) to change every parameter freely.


# %% tags=["hide-input", "remove-output", "nbval-ignore-output"]
def show_taylor(function="cos", order=3, x0=0.0):
    taylor_figure(function, order, x0)
    plt.show()


_ = interact(
    show_taylor,
    function=Dropdown(options=["cos", "sin", "exp"], value="cos"),
    order=IntSlider(value=3, min=0, max=12),
    x0=FloatSlider(value=0.0, min=-3, max=3, step=0.25),
)

# %% [markdown]
# ## 2.2 Several variables: the Jacobian
#
# For a map $T: \mathbb{R}^2 \to \mathbb{R}^2$ the first-order expansion about $a$ is
#
# $$T(z) \approx T(a) + J_T(a)\,(z - a),\qquad
# J_T = \begin{pmatrix} \partial T_x/\partial x & \partial T_x/\partial y\\
# \partial T_y/\partial x & \partial T_y/\partial y \end{pmatrix},$$
#
# row-major as the package's keypoint `jacobian` (`J[..., 0, :]` $= \partial
# x'/\partial(x, y)$, [chapter 5](05_keypoints.ipynb)). The error is now $O(|z - a|^2)$,
# and it is **zero for affine maps**: an affine map is its own first-order expansion. An
# example, $T(u, v) = \big(u + \tfrac15 \sin v,\; v + \tfrac1{10} u^2\big)$ about $a =
# (1, 0)$:

# %% tags=["remove-input"]
show_source(ty.jacobian, ty.first_order_expansion)

# %%
u_, v_ = sp.symbols("u v", real=True)
warp = [u_ + sp.Rational(1, 5) * sp.sin(v_), v_ + sp.Rational(1, 10) * u_**2]
J = ty.jacobian(warp, [u_, v_])
expansion, J_a = ty.first_order_expansion(warp, [u_, v_], (1, 0))
assert J == sp.Matrix([[1, sp.cos(v_) / 5], [u_ / 5, 1]])
affine = [3 * u_ - v_ + 1, 2 * v_ - 5]
affine_expansion = ty.first_order_expansion(affine, [u_, v_], (7, -2))[0]
assert sp.simplify(affine_expansion - sp.Matrix(affine)) == sp.zeros(2, 1)
dz = sp.Matrix([u_ - 1, v_])
first_order = r"T(1, 0) + J_T(1, 0)" + sp.latex(dz)
show_equations(
    [
        ("J_T(u, v)", J),
        ("J_T(1, 0)", J_a),
        (r"T(u, v) \approx " + first_order, sp.expand(expansion)),
    ]
)

# %% [markdown]
# The check asserted that the affine map $(3u - v + 1,\; 2v - 5)$, expanded about $(7,
# -2)$, gives back exactly itself.
#
# ## 2.3 The motion model of the paper
#
# FOMM assumes an abstract **reference frame** $R$. The keypoint detector gives, for
# each image $X$, the points $\mathcal{T}_{X\leftarrow R}(p_k)$ and the Jacobians
# $\tfrac{d}{dp}\mathcal{T}_{X\leftarrow R}(p)\big|_{p_k}$. The generator needs the
# **backward** map from the driving frame to the source ([chapter
# 1](01_optical_flow.ipynb): one lookup per output pixel):
#
# $$\mathcal{T}_{S\leftarrow D} = \mathcal{T}_{S\leftarrow R}\circ
# \mathcal{T}_{R\leftarrow D} = \mathcal{T}_{S\leftarrow R}\circ
# \mathcal{T}_{D\leftarrow R}^{-1}.\qquad(3)$$
#
# Expand it to first order about $z_k = \mathcal{T}_{D\leftarrow R}(p_k)$, the keypoint
# seen in $D$. Its value there is $\mathcal{T}_{S\leftarrow R}(p_k)$; by the chain rule
# and the inverse function theorem ($\tfrac{d}{dz}\mathcal{T}^{-1} =
# (\tfrac{d}{dp}\mathcal{T})^{-1}$) its Jacobian is $J_k$:
#
# $$\mathcal{T}_{S\leftarrow D}(z) \approx \mathcal{T}_{S\leftarrow R}(p_k)
# + J_k\big(z - \mathcal{T}_{D\leftarrow R}(p_k)\big),\qquad(4)$$
# $$J_k = \Big(\tfrac{d}{dp}\mathcal{T}_{S\leftarrow R}(p)\big|_{p_k}\Big)
# \Big(\tfrac{d}{dp}\mathcal{T}_{D\leftarrow R}(p)\big|_{p_k}\Big)^{-1}.\qquad(5)$$
#
# The reference frame has disappeared: both factors are predicted by the detector from
# $S$ and from $D$ alone. sympy, with generic symbols for the two Jacobians $J_S$, $J_D$
# (entries $a_i$, $d_i$) and the two keypoint positions $(s_x, s_y)$ in $S$ and $(t_x,
# t_y)$ in $D$:

# %% tags=["remove-input"]
show_source(ty.motion_model_derivation)

# %%
mm = ty.motion_model_derivation()
det_D = mm["J_D"].det()
adjugate = sp.simplify(mm["J_k"] * det_D)  # J_k = adjugate / det(J_D)
offset = mm["z"] - mm["T_D_pk"]
assert sp.simplify(mm["J_k"] * mm["J_D"] - mm["J_S"]) == sp.zeros(2, 2)
assert sp.simplify(
    mm["T_S_pk"] + adjugate * offset / det_D - mm["approximation"]
) == sp.zeros(2, 1)
at_keypoint = mm["approximation"].subs(dict(zip(mm["z"], mm["T_D_pk"])))
assert sp.simplify(at_keypoint - mm["T_S_pk"]) == sp.zeros(2, 1)
inverse_D = sp.latex(mm["J_D"]) + "^{-1}"
over_det = rf"\frac{{1}}{{{sp.latex(det_D)}}}"
show_equations(
    [
        ("J_k", sp.latex(mm["J_S"]) + inverse_D),
        ("", over_det + sp.latex(adjugate)),
    ]
)

# %% [markdown]
# and equation (4) with it:

# %% tags=["remove-input"]
show_math(r"\mathcal{T}_{S\leftarrow D}(z) \approx", mm["T_S_pk"], "+ J_k", offset)

# %% [markdown]
# The asserts checked that $J_k J_D = J_S$ and that the approximation returns exactly
# $(s_x, s_y)$ at $z = z_k = (t_x, t_y)$.
#
# ### Exact for affine maps
#
# If $\mathcal{T}_{S\leftarrow R}(p) = Ap + a$ and $\mathcal{T}_{D\leftarrow R}(p) =
# Bp + b$, then $\mathcal{T}_{S\leftarrow D}(z) = AB^{-1}(z - b) + a$ exactly.
# `affine_exactness` builds equation (4) from the Jacobians of the two maps at a
# symbolic keypoint and subtracts:

# %% tags=["remove-input"]
show_source(ty.affine_exactness)

# %%
aff = ty.affine_exactness()
assert aff["difference"] == sp.zeros(2, 1)
show_math(
    r"AB^{-1}(z - b) + a - \text{(4)} =",
    aff["difference"],
    r"\quad\text{for all }",
    "A, B, a, b, p_k, z",
)

# %% [markdown]
# So each keypoint's local model is an affine map, and FOMM's sparse motions are exact
# whenever the true motion near a keypoint is affine: the "first order" of the title.
#
# ### Non-linear maps: autodiff and a quadratic error
#
# Now two non-linear warps, written in TensorFlow (float64). `numeric_jacobian` gets the
# Jacobians at $p_k$ from `tf.GradientTape`, `invert_map` inverts
# $\mathcal{T}_{D\leftarrow R}$ by Newton's method for the exact answer, and
# `first_order_errors` measures $|\text{exact} - (4)|$ at growing distances from $z_k$:

# %% tags=["remove-input"]
show_source(ty.motion_model_approximation, ty.first_order_errors)


# %%
def T_SR(p):
    px, py = p[..., 0], p[..., 1]
    x_s = 0.9 * px + 0.2 * tf.sin(py) + 0.1
    y_s = 0.1 * px * py + 1.1 * py - 0.2
    return tf.stack([x_s, y_s], -1)


def T_DR(p):
    px, py = p[..., 0], p[..., 1]
    x_d = px + 0.15 * tf.tanh(py) + 0.05 * px**2
    y_d = 0.8 * py - 0.1 * px + 0.3
    return tf.stack([x_d, y_d], -1)


p_k = (0.2, -0.3)
z_k = T_DR(tf.constant([p_k], tf.float64))
approx, J_k = ty.motion_model_approximation(T_SR, T_DR, p_k, z_k)
# Autodiff against the hand-written Jacobians of the two warps.
px, py = p_k
J_S_hand = np.array([[0.9, 0.2 * np.cos(py)], [0.1 * py, 0.1 * px + 1.1]])
J_D_hand = np.array([[1 + 0.1 * px, 0.15 / np.cosh(py) ** 2], [-0.1, 0.8]])
J_k_hand = J_S_hand @ np.linalg.inv(J_D_hand)
assert np.allclose(J_k.numpy(), J_k_hand, atol=1e-12)

distances = np.geomspace(1e-3, 3e-1, NUM_DISTANCES)
errors = ty.first_order_errors(T_SR, T_DR, p_k, distances)
fit = distances <= 0.1
slope = ty.loglog_slope(distances[fit], errors[fit])
print("J_k (autodiff, equal to the hand-written J_S J_D^-1):")
print(np.round(J_k.numpy(), 4))
print(f"log-log slope of the first-order error: {slope:.3f}")

# %%
# Check: the first-order error is quadratic in the distance to the keypoint.
assert abs(slope - 2.0) < 0.1, slope
print(f"|slope - 2| = {abs(slope - 2.0):.3f} < 0.1: quadratic")

# %% [markdown]
# Left, the error against the distance; right, an $11 \times 11$ grid around $z_k$
# mapped into $S$ by the exact $\mathcal{T}_{S\leftarrow D}$ and by the first-order
# model: they agree near the keypoint and drift apart away from it.

# %% tags=["hide-input"]
fig, axes = panels(2, height=4.2)
axes[0].loglog(distances, errors, "o-", label="|exact - (4)|")
slope_2 = errors[0] * (distances / distances[0]) ** 2
axes[0].loglog(distances, slope_2, "k--", lw=0.8, label="slope 2")
axes[0].set_xlabel("distance $|z - z_k|$")
axes[0].set_ylabel("error")
axes[0].set_title(f"first-order error, slope {slope:.2f}")
axes[0].legend()
# The exact backward map and the local affine model on a small grid around z_k.
offsets = np.linspace(-0.5, 0.5, 11)
g = np.stack(np.meshgrid(offsets, offsets), -1).reshape(-1, 2) + z_k.numpy()[0]
exact = T_SR(ty.invert_map(T_DR, tf.constant(g), initial=tf.constant(g))).numpy()
local, _ = ty.motion_model_approximation(T_SR, T_DR, p_k, tf.constant(g))
axes[1].scatter(*exact.T, s=14, label=r"exact $\mathcal{T}_{S\leftarrow D}(z)$")
axes[1].scatter(*local.numpy().T, s=18, marker="x", label="first order about $z_k$")
T_S_pk = T_SR(tf.constant([p_k], tf.float64)).numpy()
axes[1].scatter(*T_S_pk.T, c="r", s=40, label=r"$\mathcal{T}_{S\leftarrow R}(p_k)$")
axes[1].set_xlabel("$x$ in $S$")
axes[1].set_ylabel("$y$ in $S$")
axes[1].set_title("grid around $z_k$ mapped into $S$")
axes[1].legend(loc="upper center", bbox_to_anchor=(0.5, -0.22))
plt.show()

# %% [markdown]
# ## 2.4 Equivariance: training keypoints and Jacobians without labels
#
# Nothing tells the detector where the keypoints are. FOMM warps an image $X$ by a known
# random thin-plate spline into $Y$, so $\mathcal{T}_{X\leftarrow Y}$ is known, and asks
# the detector to be consistent: $\mathcal{T}_{X\leftarrow R} = \mathcal{T}_{X\leftarrow
# Y} \circ\mathcal{T}_{Y\leftarrow R}$. Its values give the keypoint loss, and
# differentiating (first order again) gives the Jacobian constraint
#
# $$\tfrac{d}{dp}\mathcal{T}_{X\leftarrow R}\big|_{p_k} =
# \tfrac{d}{dp}\mathcal{T}_{X\leftarrow Y}\big|_{\mathcal{T}_{Y\leftarrow R}(p_k)}\;
# \tfrac{d}{dp}\mathcal{T}_{Y\leftarrow R}\big|_{p_k}, \qquad J_X = J_w J_Y.$$
#
# An L1 loss on $J_X - J_w J_Y$ has a cheap way out: it is **linear** in the predicted
# Jacobians, so scaling them all by $s \to 0$ scales the loss by $s$, and the detector
# can collapse every Jacobian to zero (then $J_k = J_S J_D^{-1}$ is undefined). The
# paper multiplies by $J_X^{-1}$ and compares with the identity:
#
# $$\mathbb{1} \equiv J_X^{-1} J_w J_Y, \qquad L = \big|\mathbb{1} - J_X^{-1} J_w
# J_Y\big|_1,$$
#
# which is invariant to that scale (and penalises a singular $J_X$). [Chapter
# 8](08_losses.ipynb) implements both terms of the equivariance loss. sympy confirms
# both statements with symbolic Jacobians (entries $x_i$, $y_i$, $w_i$); the top-left
# entries show it:

# %%
eq = ty.equivariance_derivation()
s = eq["s"]
assert sp.simplify(eq["raw_scaled"] - s * eq["raw"]) == sp.zeros(2, 2)
assert sp.simplify(eq["identity_scaled"] - eq["identity"]) == sp.zeros(2, 2)
show_equations(
    [
        (r"\big[J_X - J_w J_Y\big]_{11}", eq["raw"][0, 0]),
        (r"\big[sJ_X - J_w\,sJ_Y\big]_{11}", sp.factor(eq["raw_scaled"][0, 0])),
        (
            r"\big[\mathbb{1} - (sJ_X)^{-1} J_w\,sJ_Y\big]_{11}",
            sp.latex(1)
            + " - "
            + sp.latex(sp.simplify(1 - eq["identity_scaled"][0, 0])),
        ),
    ]
)

# %% [markdown]
# The raw residual carries the factor $s$; the identity form does not depend on $s$ at
# all. Numerically, with `equivariance_jacobian_losses` on nearly consistent random
# Jacobians, shrunk by growing factors:

# %%
rng = np.random.default_rng(0)
jw = np.eye(2) + 0.2 * rng.standard_normal((1, 5, 2, 2))
jy = np.eye(2) + 0.2 * rng.standard_normal((1, 5, 2, 2))
jx = jw @ jy + 0.05 * rng.standard_normal((1, 5, 2, 2))
scales = [1.0, 0.1, 0.01, 0.001]
losses = [  # (raw, identity) for each scale
    ty.equivariance_jacobian_losses(sc * jx, sc * jy, jw) for sc in scales
]
print("scale s   raw L1     identity L1")
for sc, (raw, ident) in zip(scales, losses):
    print(f"{sc:7.3f}   {float(raw):.5f}    {float(ident):.5f}")
raw_first, identity_first = (float(v) for v in losses[0])
raw_last, identity_last = (float(v) for v in losses[-1])
assert raw_last < 0.01 * raw_first
assert abs(identity_last - identity_first) < 1e-3 * identity_first

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(5, 3))
raw_losses = [float(r) for r, _ in losses]
identity_losses = [float(i) for _, i in losses]
ax.loglog(scales, raw_losses, "o-", label=r"raw $|J_X - J_w J_Y|$")
ax.loglog(scales, identity_losses, "s-", label=r"identity $|1 - J_X^{-1} J_w J_Y|$")
ax.set_xlabel("scale $s$ of the predicted Jacobians")
ax.set_ylabel("L1 loss")
ax.legend()
plt.show()

# %% [markdown]
# ## Summary
#
# * A Taylor polynomial of order $N$ has an error $O(|x - x_0|^{N+1})$, bounded by
#   Lagrange's remainder; checked for $\cos$, $\sin$, $\exp$ against closed forms and
#   sympy's `series`.
# * In several variables the first-order expansion uses the Jacobian, and is exact for
#   affine maps.
# * FOMM's motion model (equations 3-5 of the [paper](https://arxiv.org/abs/2003.00196))
#   is the first-order expansion of $\mathcal{T}_{S\leftarrow D} =
#   \mathcal{T}_{S\leftarrow R} \circ\mathcal{T}_{D\leftarrow R}^{-1}$ about each
#   keypoint, with $J_k = J_S J_D^{-1}$: symbolically exact for affine maps, and for
#   non-linear ones its error shrinks quadratically (fitted slope 2.00).
# * The equivariance constraint trains keypoints and Jacobians; its Jacobian term is
#   written as $\mathbb{1} \equiv J_X^{-1} J_w J_Y$ because an L1 on the raw product
#   lets all Jacobians collapse to zero.
#
# [Chapters 3](03_coordinate_grids.ipynb) and [4](04_resampler.ipynb) turn these maps
# into tensors: coordinate grids and the resampler. [Chapter 6](06_dense_motion.ipynb)
# evaluates equation (4) for every keypoint on a whole grid, as the original code's
# [`dense_motion.py`](https://github.com/AliaksandrSiarohin/first-order-model/blob/master/modules/dense_motion.py)
# does.
#
# ## Exercises
#
# 1. **Where the polynomial fails.** For $\exp$ about $x_0 = 0$, find with
#    `taylor_error` the largest $|x|$ at which $P_5$ is within 0.01, for $x > 0$ and for
#    $x < 0$. Why is the band not symmetric, when it is for $\cos$?
# 2. **Second order.** Extend `first_order_expansion` to a second-order expansion (with
#    the Hessian of each component) and check on the non-linear maps of section 2.3 that
#    the error of the motion model now shrinks with slope 3.
# 3. **Singular Jacobians.** In `motion_model_derivation`, set $J_D$ to a singular
#    matrix (e.g. $d_3 = d_1 d_2 / d_0$). What happens to $J_k$, and what does it mean
#    for the motion near a keypoint whose driving Jacobian collapses?
# 4. **Scale invariance numerically.** Repeat the loss table of section 2.4 with scales
#    greater than 1 (10, 100). Which loss changes, and what would the detector gain by
#    inflating its Jacobians under the raw loss?
