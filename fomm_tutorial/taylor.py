"""Taylor series and the first-order motion model (paper equations 3-5).

Explained in chapter 2 (book/02_taylor_series.ipynb).

Notation of the paper: ``R`` is an abstract reference frame, ``S`` the source, ``D`` the
driving frame; ``T_{S<-R}`` maps reference coordinates to source coordinates, and so on.
FOMM needs the backward map ``T_{S<-D} = T_{S<-R} o T_{D<-R}^{-1}``; near the image
``z_k = T_{D<-R}(p_k)`` of a keypoint ``p_k`` it uses the first-order approximation::

    T_{S<-D}(z) ~ T_{S<-R}(p_k) + J_k (z - T_{D<-R}(p_k)),
    J_k = (d T_{S<-R} / dp)(p_k) (d T_{D<-R} / dp)(p_k)^{-1}.

Points are ``(2,)`` vectors ``(x, y)``; Jacobians are ``(2, 2)`` row-major
(``J[0, :] = d x' / d(x, y)``), as the package's keypoint ``jacobian``.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import sympy as sp
import tensorflow as tf

__all__ = [
    "FUNCTIONS",
    "taylor_polynomial",
    "taylor_closed_form",
    "taylor_error",
    "lagrange_bound",
    "jacobian",
    "first_order_expansion",
    "motion_model_derivation",
    "affine_exactness",
    "numeric_jacobian",
    "invert_map",
    "motion_model_approximation",
    "first_order_errors",
    "loglog_slope",
    "equivariance_derivation",
    "equivariance_jacobian_losses",
]

_x = sp.Symbol("x", real=True)
FUNCTIONS = {"cos": sp.cos(_x), "sin": sp.sin(_x), "exp": sp.exp(_x)}


def _function(name):
    if name not in FUNCTIONS:
        raise ValueError(f"function must be one of {sorted(FUNCTIONS)}, got {name!r}.")
    return FUNCTIONS[name], _x


def _check_order(order):
    if not (isinstance(order, (int, np.integer)) and order >= 0):
        raise ValueError(f"order must be a non-negative integer, got {order!r}.")


# --------------------------------------------------------------------------------------
# One variable
# --------------------------------------------------------------------------------------
def taylor_polynomial(expr, x, x0, order: int):
    """Taylor polynomial of ``expr`` in ``x`` about ``x0`` up to ``(x - x0)^order``
    (sympy).

    ``expr`` may be a sympy expression or one of the names ``"cos"``, ``"sin"``,
    ``"exp"`` (then ``x`` may be None and the module's symbol ``x`` is used). Returns a
    sympy expression.
    """
    _check_order(order)
    if isinstance(expr, str):
        expr, x = _function(expr)
    x0 = sp.sympify(x0)
    return sp.Add(
        *[
            sp.diff(expr, x, n).subs(x, x0) / sp.factorial(n) * (x - x0) ** n
            for n in range(order + 1)
        ]
    )


def taylor_closed_form(name: str, order: int, x0=0):
    """Textbook closed form of the Taylor polynomial, from the n-th derivative's
    pattern.

    ``d^n cos = cos(x + n pi / 2)``, ``d^n sin = sin(x + n pi / 2)``, ``d^n exp = exp``.
    Returns a sympy expression in the module's symbol ``x``
    (``FUNCTIONS[name].free_symbols``).
    """
    _check_order(order)
    _, x = _function(name)
    x0 = sp.sympify(x0)
    nth = {
        "cos": lambda n: sp.cos(x0 + n * sp.pi / 2),
        "sin": lambda n: sp.sin(x0 + n * sp.pi / 2),
        "exp": lambda n: sp.exp(x0),
    }[name]
    return sp.Add(*[nth(n) / sp.factorial(n) * (x - x0) ** n for n in range(order + 1)])


def taylor_error(name: str, order: int, x0: float, xs):
    """Absolute error ``|f(x) - P_order(x)|`` on the points ``xs`` (NumPy array, same
    shape)."""
    expr, x = _function(name)
    poly = sp.lambdify(x, taylor_polynomial(expr, x, sp.nsimplify(x0), order), "numpy")
    f = sp.lambdify(x, expr, "numpy")
    xs = np.asarray(xs, np.float64)
    return np.abs(f(xs) - poly(xs) * np.ones_like(xs))


def lagrange_bound(name: str, order: int, x0: float, xs):
    """Lagrange remainder bound ``max |f^(n+1)| |x - x0|^(n+1) / (n+1)!`` on the points
    ``xs``.

    ``max |f^(n+1)|`` over the interval between ``x0`` and ``x``: 1 for cos and sin,
    ``exp(max(x, x0))`` for exp.
    """
    _check_order(order)
    _function(name)
    xs = np.asarray(xs, np.float64)
    m = np.exp(np.maximum(xs, x0)) if name == "exp" else np.ones_like(xs)
    return m * np.abs(xs - x0) ** (order + 1) / float(sp.factorial(order + 1))


# --------------------------------------------------------------------------------------
# Several variables
# --------------------------------------------------------------------------------------
def jacobian(exprs, variables):
    """Jacobian matrix ``J[i, j] = d exprs[i] / d variables[j]`` (sympy Matrix, m x
    n)."""
    return sp.Matrix(list(exprs)).jacobian(sp.Matrix(list(variables)))


def first_order_expansion(exprs, variables, point):
    """First-order Taylor expansion ``f(a) + J(a) (z - a)`` of a vector function about
    ``a``.

    Returns ``(expansion, J_at_a)``: an m x 1 sympy Matrix in ``variables`` and the m x
    n Jacobian evaluated at ``point``.
    """
    variables = list(variables)
    if len(point) != len(variables):
        raise ValueError(
            f"point has {len(point)} coordinates for {len(variables)} variables."
        )
    at = dict(zip(variables, point))
    f = sp.Matrix(list(exprs))
    j = jacobian(exprs, variables).subs(at)
    dz = sp.Matrix([v - a for v, a in zip(variables, point)])
    return f.subs(at) + j * dz, j


def motion_model_derivation() -> dict:
    """Symbolic derivation of equations 3-5 with generic maps ``T_{S<-R}`` and
    ``T_{D<-R}``.

    ``T_{S<-D}(z) = T_{S<-R}(T_{D<-R}^{-1}(z))``. With ``z_k = T_{D<-R}(p_k)`` the chain
    rule and the inverse function theorem give
    ``d T_{S<-D}/dz (z_k) = J_S(p_k) J_D(p_k)^{-1}``.

    Returns:
      dict with ``z`` and ``p`` (2x1 symbol matrices), ``J_S`` and ``J_D`` (2x2 symbols
      for the two Jacobians at ``p_k``), ``T_S_pk``, ``T_D_pk`` (2x1 symbols for the map
      values), ``J_k`` (= ``J_S J_D^{-1}``) and ``approximation`` (right side of
      equation 4).
    """
    z = sp.Matrix(sp.symbols("z_x z_y", real=True))
    p = sp.Matrix(sp.symbols("p_x p_y", real=True))
    J_S = sp.Matrix(2, 2, sp.symbols("a:4", real=True))
    J_D = sp.Matrix(2, 2, sp.symbols("d:4", real=True))
    T_S_pk = sp.Matrix(sp.symbols("s_x s_y", real=True))
    T_D_pk = sp.Matrix(sp.symbols("t_x t_y", real=True))
    J_k = J_S * J_D.inv()
    approximation = T_S_pk + J_k * (z - T_D_pk)
    return {
        "z": z,
        "p": p,
        "J_S": J_S,
        "J_D": J_D,
        "T_S_pk": T_S_pk,
        "T_D_pk": T_D_pk,
        "J_k": J_k,
        "approximation": approximation,
    }


def affine_exactness() -> dict:
    """Prove that equation 4 is exact when ``T_{S<-R}`` and ``T_{D<-R}`` are affine.

    ``T_{S<-R}(p) = A p + a``, ``T_{D<-R}(p) = B p + b`` (symbolic, B invertible),
    keypoint ``p_k`` symbolic. Returns dict with ``exact`` (``A B^{-1} (z - b) + a``),
    ``approximation`` (equation 4 built from the Jacobians of the two maps at ``p_k``)
    and ``difference`` (``simplify(exact - approximation)``, the 2x1 zero matrix).
    """
    p = sp.Matrix(sp.symbols("p_x p_y", real=True))
    pk = sp.Matrix(sp.symbols("p_kx p_ky", real=True))
    z = sp.Matrix(sp.symbols("z_x z_y", real=True))
    A = sp.Matrix(2, 2, sp.symbols("A:4", real=True))
    B = sp.Matrix(2, 2, sp.symbols("B:4", real=True))
    a = sp.Matrix(sp.symbols("a_x a_y", real=True))
    b = sp.Matrix(sp.symbols("b_x b_y", real=True))
    T_S, T_D = A * p + a, B * p + b
    at = dict(zip(p, pk))
    J_S, J_D = T_S.jacobian(p).subs(at), T_D.jacobian(p).subs(at)
    approximation = T_S.subs(at) + J_S * J_D.inv() * (z - T_D.subs(at))
    exact = A * B.inv() * (z - b) + a
    difference = sp.simplify(exact - approximation)
    return {
        "exact": exact,
        "approximation": approximation,
        "difference": difference,
        "J_k": sp.simplify(J_S * J_D.inv()),
    }


# --------------------------------------------------------------------------------------
# Numerical check with TensorFlow autodiff
# --------------------------------------------------------------------------------------
Map = Callable[[tf.Tensor], tf.Tensor]


def _points(p, name):
    p = tf.convert_to_tensor(p, tf.float64)
    if p.shape.rank is None or p.shape.rank < 1 or p.shape[-1] != 2:
        raise ValueError(
            f"{name} must have shape (..., 2) with (x, y) in the last axis, "
            f"got {p.shape}."
        )
    return p


def numeric_jacobian(fn: Map, p):
    """Jacobian of a map ``(N, 2) -> (N, 2)`` at ``N`` points by TF autodiff:
    ``(N, 2, 2)``.

    ``fn`` must act pointwise (row ``i`` of the output depends only on row ``i`` of the
    input).
    """
    p = _points(p, "p")
    return _value_and_jacobian(fn, p)[1]


def _value_and_jacobian(fn, p):
    # Pointwise map: the gradient of the sum of output column i is row i of every
    # Jacobian (two reverse passes; cheaper and quieter than batch_jacobian's vectorised
    # tracing).
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(p)
        out = fn(p)
        cols = [out[..., 0], out[..., 1]]
    rows = [tape.gradient(c, p) for c in cols]
    del tape
    return out, tf.stack(rows, axis=-2)


def invert_map(fn: Map, z, initial=None, iterations: int = 30):
    """Solve ``fn(p) = z`` for ``p`` by Newton's method (autodiff Jacobians):
    ``(N, 2)``."""
    z = _points(z, "z")
    p = tf.identity(z) if initial is None else _points(initial, "initial")
    for _ in range(iterations):
        out, j = _value_and_jacobian(fn, p)
        p = p - tf.linalg.solve(j, (out - z)[..., None])[..., 0]
    return p


def motion_model_approximation(T_SR: Map, T_DR: Map, p_k, z):
    """Equation 4 evaluated numerically: ``T_{S<-R}(p_k) + J_k (z - T_{D<-R}(p_k))``.

    Args:
      T_SR, T_DR: maps ``(N, 2) -> (N, 2)`` (TensorFlow, float64, pointwise).
      p_k: ``(2,)`` keypoint in reference coordinates.
      z: ``(N, 2)`` driving-frame points.
    Returns:
      ``(approximation (N, 2), J_k (2, 2))``.
    """
    pk = _points(p_k, "p_k")[None]
    z = _points(z, "z")
    J_S, J_D = numeric_jacobian(T_SR, pk)[0], numeric_jacobian(T_DR, pk)[0]
    J_k = J_S @ tf.linalg.inv(J_D)
    approx = T_SR(pk) + (z - T_DR(pk)) @ tf.transpose(J_k)
    return approx, J_k


def first_order_errors(T_SR: Map, T_DR: Map, p_k, distances, direction=(0.6, 0.8)):
    """Error of equation 4 against the exact ``T_{S<-R}(T_{D<-R}^{-1}(z))`` at growing
    distances.

    ``z = T_{D<-R}(p_k) + r * direction`` for each ``r`` in ``distances``.

    Returns:
      ``(N,)`` NumPy array of Euclidean errors.
    """
    pk = _points(p_k, "p_k")[None]
    d = np.asarray(direction, np.float64)
    d = d / np.linalg.norm(d)
    r = np.asarray(distances, np.float64)[:, None]
    z = T_DR(pk) + tf.constant(r * d[None])
    exact = T_SR(invert_map(T_DR, z, initial=tf.repeat(pk, len(r), axis=0)))
    approx, _ = motion_model_approximation(T_SR, T_DR, p_k, z)
    return tf.norm(exact - approx, axis=-1).numpy()


def loglog_slope(distances, errors) -> float:
    """Least-squares slope of ``log(errors)`` against ``log(distances)``."""
    return float(np.polyfit(np.log(distances), np.log(errors), 1)[0])


# --------------------------------------------------------------------------------------
# Equivariance
# --------------------------------------------------------------------------------------
def equivariance_derivation() -> dict:
    """Jacobian form of the equivariance constraint, and why it is compared to the
    identity.

    For an image ``Y`` made from ``X`` by a known warp,
    ``T_{X<-R} = T_{X<-Y} o T_{Y<-R}``; by the chain rule ``J_X = J_w J_Y`` where
    ``J_w = d T_{X<-Y}/dp`` at ``T_{Y<-R}(p_k)``. The raw residual ``J_X - J_w J_Y`` is
    linear in the predicted Jacobians: scaling both by ``s`` scales it by ``s``, so
    ``s -> 0`` (all Jacobians collapse to zero) satisfies it trivially. FOMM uses
    ``1 - J_X^{-1} J_w J_Y`` instead, which is invariant to that scale.

    Returns:
      dict with symbolic ``J_X``, ``J_Y``, ``J_w`` (2x2), scale ``s``, ``raw`` and
      ``identity`` residuals, and their versions with ``J_X, J_Y -> s J_X, s J_Y``
      (``raw_scaled``, ``identity_scaled``).
    """
    J_X = sp.Matrix(2, 2, sp.symbols("x:4", real=True))
    J_Y = sp.Matrix(2, 2, sp.symbols("y:4", real=True))
    J_w = sp.Matrix(2, 2, sp.symbols("w:4", real=True))
    s = sp.Symbol("s", positive=True)

    def raw(jx, jy):
        return jx - J_w * jy

    def ident(jx, jy):
        return sp.eye(2) - jx.inv() * J_w * jy

    return {
        "J_X": J_X,
        "J_Y": J_Y,
        "J_w": J_w,
        "s": s,
        "raw": raw(J_X, J_Y),
        "raw_scaled": raw(s * J_X, s * J_Y),
        "identity": ident(J_X, J_Y),
        "identity_scaled": ident(s * J_X, s * J_Y),
    }


def equivariance_jacobian_losses(jac_x, jac_y, jac_warp):
    """Raw and identity-form L1 equivariance losses for Jacobians.

    Args:
      jac_x: ``(B, K, 2, 2)`` Jacobians predicted on image X.
      jac_y: ``(B, K, 2, 2)`` Jacobians predicted on the warped image Y.
      jac_warp: ``(B, K, 2, 2)`` Jacobian of the known warp ``T_{X<-Y}`` at Y's
        keypoints.
    Returns:
      ``(raw, identity)`` scalars: ``mean |J_X - J_w J_Y|`` and
      ``mean |I - J_X^{-1} J_w J_Y|``.
    """
    jx, jy, jw = (tf.convert_to_tensor(j, tf.float32) for j in (jac_x, jac_y, jac_warp))
    for name, j in (("jac_x", jx), ("jac_y", jy), ("jac_warp", jw)):
        if j.shape.rank != 4 or tuple(j.shape[-2:]) != (2, 2):
            raise ValueError(f"{name} must have shape (B, K, 2, 2), got {j.shape}.")
    chained = jw @ jy
    raw = tf.reduce_mean(tf.abs(jx - chained))
    identity = tf.reduce_mean(tf.abs(tf.eye(2) - tf.linalg.inv(jx) @ chained))
    return raw, identity
