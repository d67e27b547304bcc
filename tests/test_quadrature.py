"""The quadrature path: against the closed forms, against quad, across q regimes."""

import numpy as np
import pytest
import mpmath
from scipy import integrate

import meanfield as mf
from meanfield.gauss import quadrature
from conftest import TOL

FUNCTIONALS = [mf.second_moment, mf.second_moment_derivative, mf.jacobian_second_moment,
               mf.jacobian_second_moment_derivative]
CLOSED = ["selu", "dselu:epsilon=0.017", "sselu:epsilon=0.03", "lselu:epsilon=0.06,central=true", "elu",
          "leaky_relu:a=0.2"]


@pytest.mark.parametrize("spec", CLOSED)
@pytest.mark.parametrize("q", [1e-4, 0.01, 0.3, 1.0, 3.0, 100.0, 1e4])
def test_graded_quadrature_matches_closed_forms(spec, q):
    # A derivative that vanishes (φ' of leaky ReLU) is compared on the scale
    # of the functional it differentiates, divided by q.
    scales = {
        mf.second_moment_derivative: mf.second_moment(spec, q) / q,
        mf.jacobian_second_moment_derivative: mf.jacobian_second_moment(spec, q) / q,
    }
    for fn in FUNCTIONALS:
        closed = fn(spec, q)
        quad = fn(spec, q, method="quadrature")
        scale = max(abs(closed), 1e-6 * scales.get(fn, 0.0))
        assert abs(quad - closed) <= TOL["quadrature_vs_closed"] * scale, (fn.__name__, quad, closed)


@pytest.mark.parametrize("spec", CLOSED)
@pytest.mark.parametrize("m,s2", [(0.4, 1.0), (-1.0, 0.2), (3.0, 2.0), (0.2, 1e-4)])
def test_quadrature_mean_map(spec, m, s2):
    closed = mf.mean_map(spec, m, s2)
    quad = mf.mean_map(spec, m, s2, method="quadrature")
    assert abs(quad - closed) <= TOL["quadrature_vs_closed"] * abs(closed)


def _quad_reference(f, q):
    """E[f(√q z)] by quad on panels that resolve both the Gaussian and f's scale."""
    s = np.sqrt(q)
    pdf = lambda z: np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi)  # noqa: E731
    cuts = sorted({0.0, *[c / s for c in (-30, -3, -1, -0.3, 0.3, 1, 3, 30) if abs(c / s) < 40]})
    edges = [-40.0] + cuts + [40.0]
    return sum(integrate.quad(lambda z: f(s * z) * pdf(z), a, b, epsabs=0, epsrel=1e-13, limit=500)[0]
               for a, b in zip(edges[:-1], edges[1:]))


@pytest.mark.parametrize("spec", ["tanh", "erf", "gelu", "softplus", "swish", "swish:beta=2"])
@pytest.mark.parametrize("q", [1e-8, 1e-2, 1.0, 30.0, 1e4, 1e8])
def test_smooth_activations_against_quad(spec, q):
    """The graded rule stays at ~1e-15 from q = 1e-8 to 1e8 (Gauss–Hermite does not: see below)."""
    act = mf.activation(spec)
    big_q = _quad_reference(lambda x: float(act.f(x)) ** 2, q)
    phi = _quad_reference(lambda x: float(act.df(x)) ** 2, q)
    assert abs(mf.second_moment(act, q) / big_q - 1) <= TOL["closed_vs_quad"]
    assert abs(mf.jacobian_second_moment(act, q) / phi - 1) <= TOL["closed_vs_quad"]


def test_hermite_rule_is_accurate_only_at_moderate_q():
    # Documented limitation: Gauss–Hermite misses tanh's structure once √q
    # times the node spacing exceeds it, which is why "graded" is the default.
    act = mf.activation("tanh")
    ref = _quad_reference(lambda x: float(act.df(x)) ** 2, 0.01)
    assert abs(mf.jacobian_second_moment(act, 0.01, rule="hermite") / ref - 1) < 1e-13
    ref = _quad_reference(lambda x: float(act.df(x)) ** 2, 1e4)
    assert abs(mf.jacobian_second_moment(act, 1e4, rule="hermite") / ref - 1) > 0.1


def test_custom_callable_with_and_without_derivative():
    """A user's SELU as a plain callable (kink declared) matches the closed form."""
    lam, alpha = mf.SELU_LAMBDA, mf.SELU_ALPHA

    def selu(x):
        return lam * np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))

    def dselu(x):
        return lam * np.where(x > 0, 1.0, alpha * np.exp(np.minimum(x, 0)))

    exact = mf.custom(selu, dselu, name="my_selu", kinks=(0.0,))
    finite_diff = mf.activation(selu, kinks=(0.0,))
    q = np.array([0.1, 1.0, 7.0])
    np.testing.assert_allclose(mf.jacobian_second_moment(exact, q), mf.jacobian_second_moment("selu", q),
                               rtol=1e-12, atol=0)
    # Finite-difference f': five-point stencil, ~1e-11 relative.
    np.testing.assert_allclose(mf.jacobian_second_moment(finite_diff, q), mf.jacobian_second_moment("selu", q),
                               rtol=1e-9, atol=0)
    np.testing.assert_allclose(mf.second_moment(finite_diff, q), mf.second_moment("selu", q), rtol=1e-12, atol=0)


def test_custom_rejects_bad_callables():
    with pytest.raises(ValueError, match="must be callable"):
        mf.custom(3.0)
    with pytest.raises(ValueError, match="elementwise"):
        mf.custom(lambda x: np.sum(x))
    with pytest.raises(ValueError, match="failed on a float array"):
        mf.custom(lambda x: x.nonexistent)


def test_quadrature_order_and_rule_are_validated():
    with pytest.raises(ValueError, match="unknown quadrature rule"):
        mf.second_moment("tanh", 1.0, rule="simpson")
    with pytest.raises(ValueError, match="order"):
        mf.second_moment("tanh", 1.0, order=1)
    with pytest.raises(ValueError, match="no closed form"):
        mf.second_moment("tanh", 1.0, method="closed")


# ---------------------------------------------------------------------------
# The "auto" rule: trapezoid where the activation's strip of analyticity allows, graded elsewhere.
# ---------------------------------------------------------------------------

#: mpmath's f and f' of the table's activations that declare a strip.
_MP_FUNCTIONS = {
    "tanh": (lambda x, b: mpmath.tanh(x), lambda x, b: mpmath.sech(x) ** 2),
    "softplus": (lambda x, b: mpmath.log1p(mpmath.exp(x)), lambda x, b: 1 / (1 + mpmath.exp(-x))),
    "swish": (lambda x, b: x / (1 + mpmath.exp(-b * x)),
              lambda x, b: (1 + mpmath.exp(-b * x) + b * x * mpmath.exp(-b * x)) / (1 + mpmath.exp(-b * x)) ** 2),
}


def _mp_expectation(g, q):
    """E[g(x)], x ~ N(0, q), by mpmath at 30 digits, split where g and the density have structure."""
    with mpmath.workdps(30):
        s = mpmath.sqrt(mpmath.mpf(q))
        cuts = sorted({mpmath.mpf(0), *[sign * c for c in (0.1, 1, 5, s, 5 * s, 20 * s) for sign in (-1, 1)]})
        density = lambda x: mpmath.exp(-x * x / (2 * s * s)) / (s * mpmath.sqrt(2 * mpmath.pi))  # noqa: E731
        return float(mpmath.quad(lambda x: g(x) * density(x), [-mpmath.inf, *cuts, mpmath.inf]))


def _boundaries(act):
    """The q at which "auto" moves from one trapezoid node count to the next (the largest q at
    which each count is still exact, ``trapezoid_min_distance``)."""
    return [(act.analytic_strip / quadrature.trapezoid_min_distance(n)) ** 2 for n in quadrature.TRAPEZOID_ORDERS]


def _strip_cases():
    for spec in ["tanh", "softplus", "swish", "swish:beta=0.2", "swish:beta=4"]:
        act = mf.activation(spec)
        for q in (1e-8, 1e-2, *[b * f for b in _boundaries(act) for f in (1.0, 1.001)], 30.0, 1e8):
            yield spec, q


@pytest.mark.parametrize("spec,q", list(_strip_cases()))
def test_auto_rule_against_mpmath(spec, q):
    """Q and φ at 1e-13 against mpmath at 30 digits, on both sides of every regime boundary
    (the issue's target for the quadrature path)."""
    act = mf.activation(spec)
    name, beta = spec.split(":")[0], float(act.params.get("beta", 1.0))
    f, df = _MP_FUNCTIONS[name]
    big_q, phi = quadrature.expectation(act, ("f2", "df2"), 0.0, q)
    assert abs(big_q / _mp_expectation(lambda x: f(x, beta) ** 2, q) - 1) <= 1e-13
    assert abs(phi / _mp_expectation(lambda x: df(x, beta) ** 2, q) - 1) <= 1e-13


def _distance_for_error(order, error):
    """The distance from the real axis (in z) at which the bound behind ``trapezoid_min_distance``
    predicts ``error`` for the trapezoid rule with ``order`` nodes."""
    k = 2.0 * np.pi * (order - 1) / (2.0 * quadrature.TRAPEZOID_Z)
    return k - np.sqrt(k * k + 2.0 * (np.log(error) - quadrature.TRAPEZOID_LOG_PREFACTOR))


@pytest.mark.parametrize("order", quadrature.TRAPEZOID_ORDERS)
@pytest.mark.parametrize("spec", ["tanh", "swish:beta=4"])
def test_trapezoid_fails_inside_the_boundary(spec, order):
    """The negative control for ``trapezoid_min_distance``: where its bound predicts an error of
    1e-11, the trapezoid rule with that node count does err by more than 1e-13, so "auto" must
    (and does) take more nodes or the graded rule there."""
    act = mf.activation(spec)
    q = (act.analytic_strip / _distance_for_error(order, 1e-11)) ** 2
    graded = quadrature.expectation(act, "df2", 0.0, q, rule="graded", order=32)
    trapezoid = quadrature.expectation(act, "df2", 0.0, q, rule="trapezoid", order=order)
    auto = quadrature.expectation(act, "df2", 0.0, q)
    assert abs(trapezoid / graded - 1) > 1e-13
    assert abs(auto / graded - 1) <= 1e-13
    assert quadrature.trapezoid_orders(act, np.sqrt([q]))[0] in (0, *[n for n in quadrature.TRAPEZOID_ORDERS if n > order])


def test_auto_rule_splits_an_array_by_regime():
    """Points in every regime in one call land where they belong, for every output of the three
    entry points that use the split.  (From q = 0.1: below it the second derivatives by Stein,
    E[g He₄]/(4q²), amplify rounding by ~1/q in either rule.)"""
    act = mf.activation("tanh")
    q = np.geomspace(0.1, 1e4, 23).reshape(23, 1) * np.ones((1, 2))
    orders = quadrature.trapezoid_orders(act, np.sqrt(q))
    assert set(np.unique(orders)) == {0, 65, 129}  # 33 nodes hold only below q = 0.042
    for fn in (lambda r: quadrature.expectation(act, ("f2", "df2"), 0.3, q, rule=r),
               lambda r: quadrature.expectation_and_gradient(act, "f", 0.3, q, rule=r),
               lambda r: tuple(quadrature.finite_width_moments(act, q, rule=r).values())):
        for auto, graded in zip(fn("auto"), fn("graded")):
            assert auto.shape == q.shape
            np.testing.assert_allclose(auto, graded, rtol=1e-12, atol=1e-14)


def test_node_counts_are_ordered_by_distance():
    """More nodes hold closer to the real axis: the classes' minimum distances decrease."""
    distances = [quadrature.trapezoid_min_distance(n) for n in quadrature.TRAPEZOID_ORDERS]
    assert all(a > b for a, b in zip(distances, distances[1:]))
    assert quadrature.trapezoid_min_distance(5) == np.inf


def test_activations_without_a_strip_never_use_the_trapezoid_rule():
    assert quadrature.trapezoid_orders(mf.activation("selu"), np.array([1e-6])) is None
    assert quadrature.trapezoid_orders(mf.activation(np.sin), np.array([1e-6])) is None
    assert quadrature.trapezoid_orders(mf.activation(np.sin, strip=5.0), np.array([1.0]))[0] == 65  # d = 5 lies in [2.53, 7.69)


@pytest.mark.parametrize("strip", [0.0, -1.0, float("nan"), float("inf"), "wide"])
def test_custom_strip_is_checked(strip):
    with pytest.raises(ValueError, match="strip must be a positive number"):
        mf.activation(np.tanh, strip=strip)


def test_custom_strip_with_kinks_is_refused():
    with pytest.raises(ValueError, match="analytic in no strip"):
        mf.activation(lambda x: np.abs(x), kinks=(0.0,), strip=1.0)


def test_folded_rules_equal_the_full_rules_to_summation_rounding():
    """tanh declares itself odd: at m = 0 its even integrands take half of a symmetric rule's nodes.
    The folded sum differs from the full one only in the order of the additions of positive terms,
    at most n·ε relative for n nodes (here n <= 129); at m != 0 nothing is folded."""
    import dataclasses

    act = mf.activation("tanh")
    plain = dataclasses.replace(act, parity=None)
    q = np.geomspace(1e-6, 1e6, 41)
    for rule in ("auto", "trapezoid", "hermite"):
        folded = quadrature.expectation(act, ("f2", "df2", "df4"), 0.0, q, rule=rule)
        full = quadrature.expectation(plain, ("f2", "df2", "df4"), 0.0, q, rule=rule)
        for a, b in zip(folded, full):
            np.testing.assert_allclose(a, b, rtol=129 * np.finfo(float).eps, atol=0.0)
    shifted = quadrature.expectation(act, "f2", 0.5, q)
    np.testing.assert_array_equal(shifted, quadrature.expectation(plain, "f2", 0.5, q))
    with pytest.raises(ValueError, match="parity"):
        dataclasses.replace(act, parity="sometimes")
