"""Solvers against the paper (Table 5, Appendix A.4), Klambauer's constants and brute force."""

import numpy as np
import pytest

import meanfield as mf
from meanfield.gauss import closed_forms
from meanfield.paper import values as paper
from meanfield.paper.table5 import TOLERANCE, table5


def test_selu_constants():
    # Klambauer et al. 2017, eq (14), to 1e-12 relative.
    sol = mf.solve("selu")
    assert abs(sol.lam / mf.SELU_LAMBDA - 1) < 1e-12
    assert abs(sol.alpha / mf.SELU_ALPHA - 1) < 1e-12
    assert abs(sol.residuals["mean"]) < 1e-14 and abs(sol.residuals["second_moment"]) < 1e-14


def test_dselu_at_selu_epsilon_is_selu():
    eps = float(mf.jacobian_second_moment("selu", 1.0)) - 1
    assert abs(eps - paper.SELU_EPSILON) < 5e-5  # "ε = 0.0716" (Section 3)
    sol = mf.solve("dselu", eps)
    assert abs(sol.lam / mf.SELU_LAMBDA - 1) < 1e-12
    assert abs(sol.alpha / mf.SELU_ALPHA - 1) < 1e-12


@pytest.mark.parametrize("i", range(len(paper.TABLE5)))
def test_table5_row(i):
    row = paper.TABLE5[i]
    sol = mf.solve(row.family, row.epsilon, central=row.central)
    if (row.family, row.epsilon) in paper.TABLE5_NOT_OPTIMAL:
        # docs/theory.md §3: the printed row is not the global optimum; ours is no worse.
        assert sol.gamma1 <= row.gamma1 + 5e-4
        return
    assert abs(sol.lam - row.lam) <= TOLERANCE
    assert abs(sol.alpha - row.alpha) <= TOLERANCE
    assert abs(sol.gamma1 - row.gamma1) <= TOLERANCE
    if row.beta is not None:
        assert abs(sol.beta - row.beta) <= TOLERANCE


def test_table5_flags_exactly_the_two_known_rows():
    ds = table5()
    flagged = {str(lbl) for lbl, st in zip(ds.label.values, ds.status.values) if st == "paper not optimal"}
    assert flagged == {"sSELU eps=0.03", "sSELU eps=0.07"}
    assert "MISMATCH" not in set(ds.status.values)
    # At ε = 0.03 our optimum is strictly better than the printed one.
    row = ds.isel(row=[str(v) for v in ds.label.values].index("sSELU eps=0.03"))
    assert float(row.gamma1) < float(row.paper_gamma1) - 1e-3


@pytest.mark.parametrize("family", ["sselu", "lselu"])
def test_central_lambda_appendix_a4(family):
    lam = mf.solve(family, 0.03, central=True, lambda_min=0.1).lam
    assert abs(lam - paper.CENTRAL_LAMBDA_EPS003[family]) < 5e-5


@pytest.mark.parametrize("family", ["sselu", "lselu"])
@pytest.mark.parametrize("epsilon,lambda_min", [(0.01, 1.0), (0.03, 1.0), (0.07, 1.0), (0.03, 0.5), (0.15, 1.0)])
def test_global_optimum_beats_an_independent_brute_force(family, epsilon, lambda_min):
    """A brute force that shares nothing with the solver (no _curve, another parametrisation and
    range): on a 1,500 x 1,500 grid of the shape (β for sSELU, α for lSELU, over [1e-4, 100] and
    [-3, 3]) and the amplitude α, the public functionals give φ(1)/Q(1), which the constraints fix at
    1 + ε (λ cancels; then λ = Q(1)^{-1/2}).  Where the ratio crosses 1 + ε along α the root is
    interpolated linearly and γ = |φ'(1) + 1| evaluated there.  The solver's γ must be no larger
    than the best of them (1e-6 covers the linear interpolation of the root).  The grid's best sits
    4e-4 to 6e-4 above the solver's optimum (measured at ε = 0.03): a solver caught in another
    local minimum, or off the λ >= λ_min boundary by more than that, fails."""
    sol = mf.solve(family, epsilon, lambda_min=lambda_min)
    shapes = np.geomspace(1e-4, 100.0, 1500) if family == "sselu" else np.linspace(-3.0, 3.0, 1500)
    amplitudes = np.geomspace(1e-3, 30.0, 1500)
    a, shape = np.meshgrid(amplitudes, shapes)
    act = (mf.ExpLinear(name="sselu", alpha=a, rate=shape) if family == "sselu"
           else mf.ExpLinear(name="lselu", alpha=a, slope=shape))
    excess = mf.jacobian_second_moment(act, 1.0) / mf.second_moment(act, 1.0) - (1.0 + epsilon)
    i, j = np.nonzero(np.sign(excess[:, :-1]) != np.sign(excess[:, 1:]))
    w = excess[i, j] / (excess[i, j] - excess[i, j + 1])
    root = a[i, j] + w * (a[i, j + 1] - a[i, j])
    params = dict(alpha=root, rate=shape[i, j]) if family == "sselu" else dict(alpha=root, slope=shape[i, j])
    unit = mf.ExpLinear(name=family, **params)
    lam = 1.0 / np.sqrt(mf.second_moment(unit, 1.0))
    found = mf.ExpLinear(name=family, lam=lam, **params)
    gamma = np.abs(mf.jacobian_second_moment_derivative(found, 1.0) + 1.0)
    ok = lam >= lambda_min
    assert ok.any()
    assert sol.gamma1 <= float(np.min(gamma[ok])) + 1e-6
    assert abs(sol.residuals["phi"]) < 1e-13 and abs(sol.residuals["second_moment"]) < 1e-13


@pytest.mark.parametrize("family", ["dselu", "sselu", "lselu"])
@pytest.mark.parametrize("q_star,sigma_w2", [(2.0, 1.0), (0.5, 1.3), (1.0, 0.8)])
def test_target_fixed_point_and_gain(family, q_star, sigma_w2):
    """Chen et al. 2020b's generalisation: σ_w² φ(q*) = 1 + ε, σ_w² Q(q*) = q*."""
    sol = mf.solve(family, 0.03, q_star=q_star, sigma_w2=sigma_w2)
    act = sol.activation()
    assert abs(sigma_w2 * mf.jacobian_second_moment(act, q_star) - 1.03) < 1e-12
    assert abs(sigma_w2 * mf.second_moment(act, q_star) / q_star - 1) < 1e-12
    # q* is then a fixed point of the forward recursion.
    ds = mf.recursion(act, 10, q0=q_star, sigma_w2=sigma_w2)
    np.testing.assert_allclose(ds.q.values, q_star, rtol=1e-12, atol=0)


def test_gamma_is_the_slope_of_phi():
    # γ* = |σ_w² q* φ'(q*) + 1| against a central difference of φ (O(h²) ~ 1e-9).
    sol = mf.solve("sselu", 0.03)
    act = sol.activation()
    h = 1e-5
    slope = (mf.jacobian_second_moment(act, 1 + h) - mf.jacobian_second_moment(act, 1 - h)) / (2 * h)
    assert abs(abs(slope + 1) - sol.gamma1) < 1e-8


def test_bad_solver_arguments():
    with pytest.raises(ValueError, match="solvable families"):
        mf.solve("tanh", 0.03)
    with pytest.raises(ValueError, match="selu takes no epsilon"):
        mf.solve("selu", 0.03)
    with pytest.raises(ValueError, match="epsilon must be a number"):
        mf.solve("sselu", None)
    with pytest.raises(ValueError, match="q_star must be"):
        mf.solve("sselu", 0.03, q_star=-1)
    with pytest.raises(ValueError, match="cannot also meet"):
        mf.solve("dselu", 0.03, central=True)


def test_negative_branch_parts_add_up():
    # The split used by the solver reproduces the full functionals.
    q = np.array([0.3, 1.0, 4.0])
    pos, neg = closed_forms.second_moment_parts(q, 2.0, 0.5, 0.1)
    np.testing.assert_allclose(1.2**2 * (pos + neg), closed_forms.second_moment(q, 1.2, 2.0, 0.5, 0.1), rtol=1e-15)
