"""The Cauchy transforms behind the spectrum (meanfield/gauss/cauchy.py) and the solver's paths
(meanfield/theory/spectrum_solver.py), each against an independent computation.

Tolerances: a sum of n terms, each rounded a few times, is within (n + 8)·ε of the sum of the
terms' magnitudes (recursive summation); scipy's adaptive quadrature is asked for 1e-13 relative;
two continuation paths that converge to the same root agree to the Newton tolerances
(spectrum_solver.STEP_TOL 1e-13 on z, with room for the rounding of M_l near the support, 1e-10)."""

import math

import numpy as np
import pytest
from scipy import integrate

import meanfield as mf
from meanfield.gauss import cauchy
from meanfield.theory import spectrum as S
from meanfield.theory import spectrum_solver as SS
from meanfield.theory.functionals import resolve

EPS = np.finfo(float).eps
_RNG = np.random.default_rng(20261204)


@pytest.mark.parametrize("squared", [False, True])
def test_pole_sums_against_complex_arithmetic(squared):
    """Σ w/(c − x) and −Σ w/(c − x)² in real arithmetic against numpy's complex division, from far
    off the nodes to 1e-9 above them."""
    t = _RNG.uniform(0.2, 1.6, 176)
    w = _RNG.uniform(0.0, 0.05, 176)
    x, weights = (t * t, w * t * t) if squared else (t, w)
    for c in [2.5 + 0.3j, 0.9 + 1e-3j, 1.1 + 1e-9j, -0.7 + 0.2j, 0.5 - 0.1j, 30.0 + 5.0j]:
        K, Kp, smallest = cauchy._pole_sums.compiled(c, t, w, 0, t.size, squared)
        terms = weights / (c - x)
        termsp = -weights / (c - x) ** 2
        assert smallest == pytest.approx(np.min(np.abs(c - x) ** 2), rel=4 * EPS)
        bound = (t.size + 8) * EPS
        assert abs(K - terms.sum()) <= bound * np.abs(terms).sum()
        assert abs(Kp - termsp.sum()) <= bound * np.abs(termsp).sum()


@pytest.mark.parametrize("spec,q", [("lselu:epsilon=0.017", 3.0), ("selu", 0.5), ("dselu:epsilon=0.017", 1.0), ("tanh", 2.0)])
def test_cauchy_transform_against_adaptive_quadrature(spec, q):
    """K(c) = E[1/(c − f'(h))], K'(c) = −E[1/(c − f'(h))²], h ~ N(0, q), at points 0.02-0.3 above
    the support (where a pole's principal part is subtracted on the panels near it, and the other
    panels' sums run in real arithmetic) against scipy.integrate.quad over h, atoms added."""
    act = resolve(spec)
    law = S._law(act, q)
    packed = cauchy.pack([law])
    lo_t = min(np.min(law["t"]), *(v for v, _ in law["atoms"])) if law["atoms"] else np.min(law["t"])
    hi_t = max(np.max(law["t"]), *(v for v, _ in law["atoms"])) if law["atoms"] else np.max(law["t"])
    sd = math.sqrt(q)
    gauss = lambda h: math.exp(-h * h / (2 * q)) / math.sqrt(2 * math.pi * q)  # noqa: E731
    if law["kind"] == cauchy.EXP:
        A, B, b = law["par"]
        t_of, lo, hi, mult = (lambda h: A + B * math.exp(b * h)), -cauchy.TAIL_SIGMAS * sd, 0.0, 1.0
    else:  # tanh: sech² on h >= 0, doubled
        t_of, lo, hi, mult = (lambda h: 1.0 / math.cosh(h) ** 2), 0.0, cauchy.TAIL_SIGMAS * sd, 2.0
    for frac, height in [(0.3, 0.02), (0.7, 0.1), (0.5, 0.3), (1.3, 0.05)]:
        c = lo_t + frac * (hi_t - lo_t) + 1j * height
        K, Kp = cauchy.cauchy.compiled(c, 0, *packed)

        def integral(g):
            parts = [integrate.quad(lambda h, part=part: part(g(h)) * mult * gauss(h), lo, hi, limit=400,
                                    epsabs=0.0, epsrel=1e-13, points=None)[0] for part in (np.real, np.imag)]
            return complex(*parts)

        ref = integral(lambda h: 1.0 / (c - t_of(h))) + sum(m / (c - v) for v, m in law["atoms"])
        refp = integral(lambda h: -1.0 / (c - t_of(h)) ** 2) - sum(m / (c - v) ** 2 for v, m in law["atoms"])
        assert abs(K - ref) <= 1e-11 * abs(ref), (c, K, ref)
        assert abs(Kp - refp) <= 1e-11 * abs(refp), (c, Kp, refp)


def _problem(spec, depth, weights, q0=3.0):
    act = resolve(spec)
    qs = mf.recursion(act, depth - 1, q0=q0).q.values
    return S._Problem(act, qs, 1.0, weights)


def _from_scratch(problem, u, u_top):
    y = np.empty(len(problem.mult), dtype=complex)
    mult, L, e, log_gain = problem.args()
    z, ok = SS._eta_path(u, u_top, *problem.start_guess(), y, mult, L, e, log_gain,
                         u + math.log(S.ETA_REL), problem.top, *problem.packed)
    assert ok
    return z, y


def test_the_detour_finds_the_branch_the_eta_path_finds():
    """Deep in a Gaussian-weights tail (far below the upper edge, where the η-path from above is
    hundreds of steps long), the detour through the upper half-plane from the neighbouring point
    ends on the same root, in the density's bulk and in its tail."""
    problem = _problem("dselu:epsilon=0.017", 8, "gaussian")
    u_top, _ = S._upper_edge(problem)
    mult, L, e, log_gain = problem.args()
    for below in (5.0, 60.0):
        u_from, u_to = u_top - below, u_top - below - 0.4
        z_from, y_from = _from_scratch(problem, u_from, u_top)
        z_ref, y_ref = _from_scratch(problem, u_to, u_top)
        y = y_from.copy()
        z, ok = SS._detour(u_from, u_to, z_from, y, math.log(S.ETA_REL), mult, L, e, log_gain, problem.top,
                           *problem.packed)
        assert ok and abs(z - z_ref) <= 1e-10 * abs(z_ref), (below, z, z_ref)
        assert np.all(np.abs(y - y_ref) <= 1e-8 * np.abs(y_ref))


@pytest.mark.parametrize("order", [1, 2])
def test_the_predictor_converges_to_the_continuations_root(order):
    """The polynomial guess through the points before converges (within PREDICTED_NEWTON
    iterations) to the root that continuation from the last point finds."""
    problem = _problem("sselu:epsilon=0.017", 8, "orthogonal")
    u_top, _ = S._upper_edge(problem)
    mult, L, e, log_gain = problem.args()
    us = u_top - np.array([1.0, 1.01, 1.02, 1.03])
    sols = [_from_scratch(problem, u, u_top) for u in us[:3]]
    (z2, y2), (z1, y1), (z0, y0) = sols
    log_rel = math.log(S.ETA_REL)
    y = y0.copy()
    z_pred, ok = SS._predicted(order, us[2], us[1], us[0], us[3], z0, z1, z2, y, y1, y2, log_rel, mult, L, e, log_gain,
                               problem.top, *problem.packed)
    y_cont = y0.copy()
    z_cont, ok_cont = SS._continue(us[2], us[3], z0, y_cont, log_rel, SS.MAX_HALVINGS, SS.MAX_NEWTON, mult, L, e,
                                   log_gain, problem.top, *problem.packed)
    assert ok and ok_cont
    assert abs(z_pred - z_cont) <= 1e-10 * abs(z_cont)
    assert np.all(np.abs(y - y_cont) <= 1e-8 * np.abs(y_cont))
