"""Property tests (hypothesis): monotonicity and limits of φ and Q."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import meanfield as mf

lam = st.floats(0.5, 2.0)
alpha = st.floats(0.0, 5.0)
rate = st.floats(0.05, 10.0)
slope = st.floats(0.0, 1.0)
logq = st.floats(-8.0, 8.0)


def _act(l, a, b, k):
    return mf.ExpLinear(name="sselu", lam=l, alpha=a, rate=b, slope=k)


@settings(max_examples=200, deadline=None)
@given(lam, alpha, rate, slope, logq, st.floats(1e-3, 1.0))
def test_phi_falls_and_q_grows(l, a, b, k, lq, step):
    # α, β, κ >= 0: f' is increasing on x < 0 and constant on x > 0, so φ(q)
    # is non-increasing; f² grows away from 0, so Q(q) is increasing.
    act = _act(l, a, b, k)
    q1, q2 = 10.0**lq, 10.0 ** (lq + step)
    assert mf.jacobian_second_moment(act, q2) <= mf.jacobian_second_moment(act, q1) * (1 + 1e-14)
    assert mf.second_moment(act, q2) > mf.second_moment(act, q1)
    assert mf.jacobian_second_moment_derivative(act, q1) <= 1e-15


@settings(max_examples=100, deadline=None)
@given(lam, alpha, rate, slope)
def test_limits_of_phi_and_q(l, a, b, k):
    act = _act(l, a, b, k)
    # q -> 0: f'(0⁻) = λ(αb + κ), so φ -> λ²(1 + (αb + κ)²)/2 and Q/q -> the same
    # value; both approach it like √q·b, hence q = 1e-24.
    small = l**2 * (1 + (a * b + k) ** 2) / 2
    np.testing.assert_allclose(mf.jacobian_second_moment(act, 1e-24), small, rtol=1e-9)
    np.testing.assert_allclose(mf.second_moment(act, 1e-24) / 1e-24, small, rtol=1e-9)
    # q -> inf: the exponential dies out, φ -> λ²(1 + κ²)/2 and Q/q -> the same.
    large = l**2 * (1 + k**2) / 2
    np.testing.assert_allclose(mf.jacobian_second_moment(act, 1e16), large, rtol=1e-6)
    np.testing.assert_allclose(mf.second_moment(act, 1e16) / 1e16, large, rtol=1e-6)


@settings(max_examples=100, deadline=None)
@given(lam, alpha, rate, slope, logq)
def test_delta_matches_its_definition(l, a, b, k, lq):
    # (eq 2): (1 + δ_q) E[f²] = E[f'²] E[x²].
    act, q = _act(l, a, b, k), 10.0**lq
    lhs = (1 + mf.delta(act, q)) * mf.second_moment(act, q)
    rhs = mf.jacobian_second_moment(act, q) * q
    np.testing.assert_allclose(lhs, rhs, rtol=1e-13)


@settings(max_examples=100, deadline=None)
@given(lam, alpha, rate, slope, st.floats(-3, 3), st.floats(-4, 2))
def test_gamma_interpolates_phi(l, a, b, k, lq, _):
    # (eq 8) rebuilt from γ gives back φ on both sides of q = 1.
    act, q = _act(l, a, b, k), 10.0**lq
    if abs(q - 1) < 1e-6:
        return
    g = mf.gamma(act, q)
    phi = mf.jacobian_second_moment(act, q)
    rebuilt = 1 + (1 - g) * (1 / q - 1) if q < 1 else 1 / q + g * (1 - 1 / q)
    np.testing.assert_allclose(rebuilt, phi, rtol=1e-9)
