"""The quadrature path: against the closed forms, against quad, across q regimes."""

import numpy as np
import pytest
from scipy import integrate

import meanfield as mf
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
