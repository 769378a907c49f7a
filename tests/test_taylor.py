"""Taylor series and the first-order motion model (chapter 2)."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
import tensorflow as tf

from fomm_tutorial import taylor as ty

x = sp.Symbol("x", real=True)


def warps():
    """A smooth non-linear T_{S<-R} and an invertible non-linear T_{D<-R} (float64 TF)."""

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

    return T_SR, T_DR


@pytest.mark.parametrize("name", ["cos", "sin", "exp"])
@pytest.mark.parametrize("order", [0, 3, 6])
@pytest.mark.parametrize("x0", [0, sp.Rational(1, 2)])
def test_taylor_polynomial_matches_closed_form_and_series(name, order, x0):
    p = ty.taylor_polynomial(name, None, x0, order)
    assert sp.simplify(p - ty.taylor_closed_form(name, order, x0)) == 0
    series = ty.FUNCTIONS[name].series(x, x0, order + 1).removeO()
    assert sp.simplify(sp.expand(p - series)) == 0


def test_known_polynomials():
    assert (
        sp.expand(ty.taylor_polynomial("cos", None, 0, 4) - (1 - x**2 / 2 + x**4 / 24))
        == 0
    )
    assert (
        sp.expand(ty.taylor_polynomial("sin", None, 0, 5) - (x - x**3 / 6 + x**5 / 120))
        == 0
    )
    assert (
        sp.expand(ty.taylor_polynomial(sp.exp(2 * x), x, 0, 2) - (1 + 2 * x + 2 * x**2))
        == 0
    )


@pytest.mark.parametrize("name", ["cos", "sin", "exp"])
def test_taylor_error_within_lagrange_bound(name):
    xs = np.linspace(-2, 2, 41)
    for order in (1, 2, 5):
        err = ty.taylor_error(name, order, 0.5, xs)
        assert err.shape == xs.shape
        assert np.all(err <= ty.lagrange_bound(name, order, 0.5, xs) + 1e-12)
        assert err[np.argmin(np.abs(xs - 0.5))] < 1e-12
    # Higher order: smaller error near the expansion point.
    near = np.linspace(0.3, 0.7, 5)
    assert (
        ty.taylor_error(name, 4, 0.5, near).max()
        < ty.taylor_error(name, 2, 0.5, near).max()
    )


def test_bad_arguments():
    with pytest.raises(ValueError, match="must be one of"):
        ty.taylor_polynomial("tan", None, 0, 2)
    with pytest.raises(ValueError, match="non-negative integer"):
        ty.taylor_polynomial("cos", None, 0, -1)
    with pytest.raises(ValueError, match="coordinates"):
        ty.first_order_expansion([x], [x], (0, 1))
    with pytest.raises(ValueError, match=r"\(B, K, 2, 2\)"):
        ty.equivariance_jacobian_losses(np.eye(2), np.eye(2), np.eye(2))
    with pytest.raises(ValueError, match=r"\(\.\.\., 2\)"):
        ty.numeric_jacobian(lambda p: p, np.zeros((3, 3)))


def test_jacobian_and_first_order_expansion():
    u, v = sp.symbols("u v", real=True)
    f = [u**2 * v, sp.sin(u) + v]
    J = ty.jacobian(f, [u, v])
    assert J == sp.Matrix([[2 * u * v, u**2], [sp.cos(u), 1]])
    exp, Ja = ty.first_order_expansion(f, [u, v], (1, 2))
    assert Ja == sp.Matrix([[4, 1], [sp.cos(1), 1]])
    expected = sp.Matrix(
        [2 + 4 * (u - 1) + (v - 2), sp.sin(1) + 2 + sp.cos(1) * (u - 1) + (v - 2)]
    )
    assert sp.simplify(exp - expected) == sp.zeros(2, 1)
    # An affine map equals its own first-order expansion.
    g = [3 * u - v + 1, 2 * v]
    e, _ = ty.first_order_expansion(g, [u, v], (5, -7))
    assert sp.simplify(e - sp.Matrix(g)) == sp.zeros(2, 1)


def test_motion_model_derivation_and_affine_exactness():
    d = ty.motion_model_derivation()
    # J_k J_D = J_S, and at z = T_{D<-R}(p_k) the approximation returns T_{S<-R}(p_k).
    assert sp.simplify(d["J_k"] * d["J_D"] - d["J_S"]) == sp.zeros(2, 2)
    assert sp.simplify(
        d["approximation"].subs(dict(zip(d["z"], d["T_D_pk"]))) - d["T_S_pk"]
    ) == sp.zeros(2, 1)
    a = ty.affine_exactness()
    assert a["difference"] == sp.zeros(2, 1)
    A = sp.Matrix(2, 2, sp.symbols("A:4", real=True))
    B = sp.Matrix(2, 2, sp.symbols("B:4", real=True))
    assert sp.simplify(a["J_k"] - A * B.inv()) == sp.zeros(2, 2)


def test_numeric_jacobian_and_inverse():
    T_SR, T_DR = warps()
    p = tf.constant([[0.3, -0.2], [0.1, 0.5]], tf.float64)
    J = ty.numeric_jacobian(T_DR, p).numpy()
    px, py = p.numpy().T
    expected = np.stack(
        [
            np.stack([1 + 0.1 * px, 0.15 / np.cosh(py) ** 2], -1),
            np.stack([-0.1 * np.ones_like(px), 0.8 * np.ones_like(px)], -1),
        ],
        1,
    )
    np.testing.assert_allclose(J, expected, atol=1e-12)
    q = ty.invert_map(T_DR, T_DR(p))
    np.testing.assert_allclose(q.numpy(), p.numpy(), atol=1e-10)


def test_motion_model_first_order_error_is_quadratic():
    T_SR, T_DR = warps()
    pk = (0.2, -0.3)
    approx, J_k = ty.motion_model_approximation(
        T_SR, T_DR, pk, T_DR(tf.constant([pk], tf.float64))
    )
    np.testing.assert_allclose(
        approx.numpy()[0], T_SR(tf.constant([pk], tf.float64)).numpy()[0]
    )
    dist = np.geomspace(1e-3, 1e-1, 9)
    errors = ty.first_order_errors(T_SR, T_DR, pk, dist)
    slope = ty.loglog_slope(dist, errors)
    assert abs(slope - 2.0) < 0.1, slope

    # Affine maps: the approximation is exact at any distance.
    def A(p):
        return p @ tf.constant([[1.2, 0.1], [-0.3, 0.9]], tf.float64) + 0.4

    def B(p):
        return p @ tf.constant([[0.8, 0.2], [0.0, 1.1]], tf.float64) - 0.1

    assert ty.first_order_errors(A, B, pk, [0.5, 2.0]).max() < 1e-12


def test_equivariance_identity_form_is_scale_invariant():
    d = ty.equivariance_derivation()
    s = d["s"]
    assert sp.simplify(d["raw_scaled"] - s * d["raw"]) == sp.zeros(2, 2)
    assert sp.simplify(d["identity_scaled"] - d["identity"]) == sp.zeros(2, 2)
    # Numerically: shrinking all predicted Jacobians drives the raw loss to zero, not the other.
    rng = np.random.default_rng(0)
    jw = np.eye(2) + 0.2 * rng.standard_normal((1, 3, 2, 2))
    jy = np.eye(2) + 0.2 * rng.standard_normal((1, 3, 2, 2))
    jx = jw @ jy + 0.05 * rng.standard_normal((1, 3, 2, 2))
    raw1, id1 = ty.equivariance_jacobian_losses(jx, jy, jw)
    raw2, id2 = ty.equivariance_jacobian_losses(1e-3 * jx, 1e-3 * jy, jw)
    assert float(raw2) < 1e-2 * float(raw1)
    assert float(id2) == pytest.approx(float(id1), rel=1e-3)
    raw0, id0 = ty.equivariance_jacobian_losses(jw @ jy, jy, jw)
    assert float(raw0) < 1e-6 and float(id0) < 1e-6
