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
@given(lam, alpha, rate, slope, st.floats(-3.0, 3.0))
def test_delta_closed_form_equals_quadrature(l, a, b, k, lq):
    # (eq 2) by two independent routes: the closed forms of Q and φ, and graded quadrature of f² and
    # f'²; they agree to ~1e-14 (tests/test_quadrature.py), 1e-11 leaves room for the hypothesis corners.
    act, q = _act(l, a, b, k), 10.0**lq
    np.testing.assert_allclose(mf.delta(act, q), mf.delta(act, q, method="quadrature"), rtol=1e-11, atol=1e-12)


@settings(max_examples=100, deadline=None)
@given(lam, alpha, rate, slope, st.sampled_from([-1.0, 1.0]))
def test_gamma_tends_to_phi_plus_its_slope_at_one(l, a, b, k, side):
    # (eq 8): with φ(1) = 1 (λ rescaled to it; φ ∝ λ²), γ_q = (1 − q φ(q))/(1 − q) is 0/0 at q = 1 and
    # tends to 1 + φ'(1), Table 5's γ_{q=1} (l'Hôpital); φ' comes from its own closed form, so γ's
    # formula is checked, not rebuilt.  At q = 1 ± h the Taylor remainder is h |(qφ)''(ξ)|/2 <=
    # h (2|φ'| + |φ''|)/2 < 1e-6 · 100 for these parameters.
    unit = _act(l, a, b, k)
    act, h = _act(l / np.sqrt(mf.jacobian_second_moment(unit, 1.0)), a, b, k), 1e-6
    limit = 1.0 + mf.jacobian_second_moment_derivative(act, 1.0)
    assert abs(mf.gamma(act, 1.0 + side * h) - limit) < 1e-4
