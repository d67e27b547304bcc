"""Fixed points, the critical line, correlation map and Klambauer's (μ, ν) map."""

import numpy as np
import pytest

import meanfield as mf
from meanfield.paper import values as paper


@pytest.mark.parametrize("spec", ["selu", "sselu:epsilon=0.03", "tanh", "erf"])
@pytest.mark.parametrize("sigma_w2,sigma_b2", [(0.9, 0.05), (1.0, 0.01), (1.5, 0.3)])
def test_q_star_satisfies_its_equation(spec, sigma_w2, sigma_b2):
    ds = mf.fixed_point(spec, sigma_w2, sigma_b2)
    q = float(ds.q_star)
    assert abs(sigma_b2 + sigma_w2 * mf.second_moment(spec, q) - q) <= 1e-13 * q
    assert abs(float(ds.chi1) - sigma_w2 * mf.jacobian_second_moment(spec, q)) <= 1e-14


@pytest.mark.parametrize("spec", ["tanh", "erf", "selu"])
def test_chi1_is_one_on_the_critical_line(spec):
    crit = mf.critical_sigma_w2(spec, [0.0, 0.05, 0.2])
    for b, w in zip(crit.sigma_b2.values, crit.sigma_w2.values):
        assert np.isfinite(w)
        assert abs(float(mf.fixed_point(spec, w, b).chi1) - 1) < 1e-9


def test_known_critical_points():
    # tanh at σ_b² = 0: σ_w² = 1 (Poole et al. 2016); SELU: 1/φ(0⁺) where q* leaves 0.
    assert abs(float(mf.critical_sigma_w2("tanh", 0.0).sigma_w2[0]) - 1) < 1e-8
    # Above the transition χ_1 − 1 = σ_w² φ(q*) − 1 grows only like the tiny q*,
    # so the root is located to ~1e-7, not to machine precision.
    phi0 = mf.SELU_LAMBDA**2 * (0.5 + mf.SELU_ALPHA**2 / 2)
    assert abs(float(mf.critical_sigma_w2("selu", 0.0).sigma_w2[0]) * phi0 - 1) < 1e-6


def test_relu_correlation_map_is_the_arc_cosine_kernel():
    # Cho & Saul's arc-cosine kernel of degree 1 (exact for ReLU, He init σ_w² = 2).
    c = np.linspace(-0.99, 1.0, 23)
    theta = np.arccos(c)
    expected = (np.sin(theta) + (np.pi - theta) * c) / np.pi
    np.testing.assert_allclose(mf.correlation_map("relu", c, 1.0, 2.0, 0.0), expected, rtol=1e-13, atol=1e-15)


def test_correlation_map_fixes_one_and_its_slope_is_chi1():
    fp = mf.fixed_point("tanh", 1.3, 0.05)
    q = float(fp.q_star)
    assert abs(float(mf.correlation_map("tanh", 1.0, q, 1.3, 0.05)) - 1) < 1e-13
    assert abs(float(mf.correlation_slope("tanh", 1.0, q, 1.3)) - float(fp.chi1)) < 1e-12
    h = 1e-6
    fd = (mf.correlation_map("tanh", 0.5 + h, q, 1.3, 0.05) - mf.correlation_map("tanh", 0.5 - h, q, 1.3, 0.05)) / (2 * h)
    assert abs(float(fd) - float(mf.correlation_slope("tanh", 0.5, q, 1.3))) < 1e-8


def test_depth_scales_by_phase():
    ds = mf.depth_scales("tanh", [0.8, 2.5], 0.05)
    ordered, chaotic = ds.isel(config=0), ds.isel(config=1)
    assert str(ordered.phase.values) == "ordered" and float(ordered.c_star) == 1.0
    assert abs(float(ordered.xi_c) + 1 / np.log(float(ordered.chi1))) < 1e-12
    assert str(chaotic.phase.values) == "chaotic" and 0 < float(chaotic.c_star) < 1
    q = float(chaotic.q_star)
    assert abs(float(mf.correlation_map("tanh", float(chaotic.c_star), q, 2.5, 0.05)) - float(chaotic.c_star)) < 1e-12
    assert float(chaotic.chi_c) < 1


def test_klambauer_jacobian():
    # Klambauer et al. 2017: at (0, 1) with ω = 0, τ = 1 the spectral norm is 0.7877.
    ds = mf.mu_nu_fixed_point("selu")
    assert abs(float(ds.mu)) < 1e-14 and abs(float(ds.nu) - 1) < 1e-14
    assert abs(float(ds.spectral_norm) - paper.KLAMBAUER_SPECTRAL_NORM) < 5e-5
    assert bool(ds.attracting)


@pytest.mark.parametrize("spec", ["selu", "sselu:epsilon=0.06,central=true", "tanh"])
def test_mu_nu_jacobian_against_finite_differences(spec):
    mu, nu, omega, tau = 0.1, 1.2, 0.3, 1.1
    j = mf.mu_nu_jacobian(spec, mu, nu, omega, tau)
    h = 1e-6
    for col, (dm, dn) in enumerate([(h, 0.0), (0.0, h)]):
        plus = mf.mu_nu_map(spec, mu + dm, nu + dn, omega, tau)
        minus = mf.mu_nu_map(spec, mu - dm, nu - dn, omega, tau)
        for row in range(2):
            fd = (plus[row] - minus[row]) / (2 * h)
            assert abs(j[row, col] - fd) < 1e-8, (row, col, j[row, col], fd)


def test_bad_fixed_point_input():
    with pytest.raises(ValueError, match="tau must be > 0"):
        mf.mu_nu_fixed_point("selu", 0.0, -1.0)
    with pytest.raises(ValueError, match=r"correlations must lie in \[-1, 1\]"):
        mf.correlation_map("tanh", 1.5, 1.0)
