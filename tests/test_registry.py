"""The activation table: every entry parses, evaluates and matches its torch math; the closed forms
of erf and GELU against 30-digit mpmath over q in [1e-8, 1e8]; CELU added as one entry.

Tolerances: the closed forms at 1e-14 relative (measured worst 3.4e-16, except GELU's dphi/dq near
its zero at q = 10.2, 3.3e-14: a quantity through zero has no relative accuracy there, so that
point is compared in absolute terms against the scale of phi'); float64 torch against numpy at
1e-15 (the same formulas, one rounding apart).
"""

import math

import mpmath as mp
import numpy as np
import pytest
import torch

import meanfield as mf
from cuda_kernels.torch_math import torch_pair
from meanfield.activations import registry
from meanfield.theory import fixed_points



@pytest.fixture(autouse=True)
def _mpmath_precision():
    """30 digits for this module's references, restored afterwards (mpmath's precision is global)."""
    with mp.workdps(30):
        yield
Q_GRID = [1e-8, 1e-4, 0.03, 1.0, 7.0, 10.2, 300.0, 1e5, 1e8]


def _gelu(x):
    return x * mp.ncdf(x)


def _gelu_d(x):
    return mp.ncdf(x) + x * mp.npdf(x)


def _erf_d(x):
    return 2 / mp.sqrt(mp.pi) * mp.exp(-x * x)


REFERENCE = {"erf": (mp.erf, _erf_d), "gelu": (_gelu, _gelu_d)}


def _mean(g, q):
    """E[g(√q z, z)]; the z-line split where g changes, near 0 on the scale 1/√q, and in the tails."""
    s = mp.sqrt(mp.mpf(q))
    inner = sorted({mp.mpf(v) for v in (1 / s, 4 / s, 1, 6)} - {mp.inf})
    points = [-mp.inf] + [-v for v in reversed(inner)] + [0] + inner + [mp.inf]
    return mp.quad(lambda z: g(s * z, z) * mp.npdf(z), points)


@pytest.mark.parametrize("name", sorted(REFERENCE))
@pytest.mark.parametrize("q", Q_GRID)
def test_closed_forms_against_mpmath(name, q):
    f, df = REFERENCE[name]
    act = mf.activation(name)
    qq = mp.mpf(q)
    he2 = lambda z: z * z - 1  # noqa: E731 - Stein: d/dq E[g] = E[g He2(z)] / (2q)
    ref = {
        "Q": _mean(lambda x, z: f(x) ** 2, q),
        "dQ": _mean(lambda x, z: f(x) ** 2 * he2(z), q) / (2 * qq),
        "phi": _mean(lambda x, z: df(x) ** 2, q),
        "dphi": _mean(lambda x, z: df(x) ** 2 * he2(z), q) / (2 * qq),
    }
    got = {"Q": mf.second_moment(act, q), "dQ": mf.second_moment_derivative(act, q),
           "phi": mf.jacobian_second_moment(act, q), "dphi": mf.jacobian_second_moment_derivative(act, q)}
    for key, value in ref.items():
        if name == "gelu" and key == "dphi" and abs(q - 10.2) < 0.5:  # dphi/dq crosses zero at q = 10.2
            assert abs(got[key] - value) < 1e-14 * abs(float(ref["phi"])) / q
            continue
        assert abs((got[key] - value) / value) < 1e-14, (key, float(got[key]), float(value))


@pytest.mark.parametrize("name", sorted(REFERENCE))
@pytest.mark.parametrize("m,s2", [(0.5, 1.0), (-2.0, 0.3), (3.0, 40.0)])
def test_mean_maps_against_mpmath(name, m, s2):
    f, df = REFERENCE[name]
    s = mp.sqrt(mp.mpf(s2))
    for fn, g in ((mf.mean_map, f), (mf.derivative_mean_map, df)):
        ref = mp.quad(lambda z: g(m + s * z) * mp.npdf(z), [-mp.inf, 0, mp.inf])
        assert abs((fn(name, m, s2) - ref) / ref) < 1e-14


@pytest.mark.parametrize("name", sorted(REFERENCE))
@pytest.mark.parametrize("q,c", [(1.0, 0.5), (0.3, -0.9), (1.5, 0.99)])
def test_correlation_kernels_against_a_product_gauss_rule(name, q, c):
    """E f(u₁)f(u₂) and E f'(u₁)f'(u₂) against a 200 x 200 Gauss–Hermite product rule in float64:
    erf and GELU are entire, so the rule converges to rounding (~1e-15) at these q (at q = 5 it
    does not for erf: 1.7e-11, where 30-digit mpmath agreed with the closed form to 2e-16)."""
    z, w = np.polynomial.hermite_e.hermegauss(200)
    w = w / w.sum()
    z1, z2 = np.meshgrid(z, z, indexing="ij")
    u1 = np.sqrt(q) * z1
    u2 = np.sqrt(q) * (c * z1 + np.sqrt(1 - c * c) * z2)
    weights = np.outer(w, w)
    act = mf.activation(name)
    for derivative, g in ((False, act.f), (True, act.df)):
        ref = np.sum(weights * g(u1) * g(u2))
        got = fixed_points._pair_expectation(act, np.array(c), np.array(q), derivative=derivative)
        assert abs(got / ref - 1) < 1e-13, (derivative, float(got), ref)


@pytest.mark.parametrize("spec", ["relu", "leaky_relu:a=0.2", "lselu:lambda=1.1,alpha=0,beta=-0.3"])
def test_arc_cosine_kernel_equals_the_general_path(spec):
    # The ReLU family's closed form against the general route (closed inner mean map, graded outer
    # quadrature: ~1e-14 for the family, test_fixed_points).
    act = mf.activation(spec)
    general = mf.custom(act.f, act.df, kinks=(0.0,))
    c, q = np.array([-0.95, -0.3, 0.0, 0.5, 0.999]), np.full(5, 1.7)
    for derivative in (False, True):
        np.testing.assert_allclose(fixed_points._pair_expectation(act, c, q, derivative),
                                   fixed_points._pair_expectation(general, c, q, derivative), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("name", registry.NAMES)
def test_every_entry_parses_evaluates_and_matches_its_torch_math(name):
    entry = registry.entry(name)
    act = mf.activation(name) if not entry.solved else mf.activation(f"{name}:epsilon=0.03")
    assert act.name == name and mf.activation(act.spec).name == name
    x = np.linspace(-4.0, 3.0, 57)
    fd = (act.f(x + 1e-6) - act.f(x - 1e-6)) / 2e-6
    away = np.abs(x) > 1e-3  # kinks at 0
    np.testing.assert_allclose(act.df(x)[away], fd[away], rtol=1e-7, atol=1e-8)
    f, df = torch_pair(act)
    t = torch.tensor(x, dtype=torch.float64)
    np.testing.assert_allclose(f(t).numpy(), act.f(x), rtol=1e-15, atol=1e-15)
    np.testing.assert_allclose(df(t).numpy(), act.df(x), rtol=1e-15, atol=1e-15)
    assert name in registry.describe()


def test_celu_is_one_entry():
    """CELU (Barron 2017), f = x (x > 0), a(e^{x/a} − 1) (x <= 0): against torch's own, and its closed
    forms (it is exponential-linear: α = a, b = 1/a) against quadrature."""
    act = mf.activation("celu:a=0.7")
    assert isinstance(act, mf.ExpLinear) and act.params == {"a": 0.7}
    x = torch.linspace(-5, 3, 41, dtype=torch.float64)
    np.testing.assert_allclose(act.f(x.numpy()), torch.nn.functional.celu(x, alpha=0.7).numpy(), rtol=1e-15)
    q = np.geomspace(1e-3, 1e3, 9)
    for fn in (mf.second_moment, mf.jacobian_second_moment, mf.jacobian_second_moment_derivative):
        np.testing.assert_allclose(fn(act, q), fn(act, q, method="quadrature"), rtol=1e-12)
    assert mf.activation("celu").params == {"a": 1.0}
    with pytest.raises(ValueError, match="a must be > 0"):
        mf.activation("celu:a=0")


def test_figure_labels_come_from_the_table():
    assert registry.label("sselu:epsilon=0.017") == "sSELU (eps=0.017)"
    assert registry.label("gelu") == "GELU"
    assert registry.color("lselu:epsilon=0.03") == registry.entry("lselu").color
