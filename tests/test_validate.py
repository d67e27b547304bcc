"""``meanfield validate``'s Monte-Carlo section: correct networks pass, wrong ones fail.

The negative controls perturb the simulated networks only (never the theory): 1% more weight
variance, and λ 2% too large.  Both must fail the checks at the default size.
"""

import math

import numpy as np
import pytest

from meanfield.validate import Check, format_table
from sim import validate as V

DEFAULT = V.SIZES["default"]
COMPARISONS = V.comparisons("default")


def k_for(dof):
    return V.critical_k(COMPARISONS, dof)


def test_critical_k_is_bonferroni():
    # One comparison, many dof: the two-sided 1e-3 normal quantile; more comparisons, fewer dof: wider.
    assert V.critical_k(1, math.inf) == pytest.approx(3.2905, abs=1e-4)
    assert V.critical_k(1000, math.inf) == pytest.approx(4.8916, abs=1e-4)
    assert V.critical_k(1000, 15) > V.critical_k(1000, 1e6) > V.critical_k(10, 1e6)


@pytest.mark.slow
def test_correct_networks_pass_at_the_default_size():
    rows = V._full_network_checks("selu", DEFAULT, 1.0, k_for, None)
    rows += [r for spec in V.SPECS for r in V._reduced_chain_checks(spec, DEFAULT, 1.0, k_for, None)]
    assert all(r.passed for r in rows), format_table([r for r in rows if not r.passed])


@pytest.mark.slow
@pytest.mark.parametrize("network", [{"sigma_w2": 1.01}, {"lam": 1.02}])
def test_negative_controls_fail_at_the_default_size(network):
    for spec in V.SPECS:
        rows = V._reduced_chain_checks(spec, DEFAULT, 1.0, k_for, network)
        assert not all(r.passed for r in rows), spec
    rows = V._full_network_checks("selu", DEFAULT, 1.0, k_for, network)
    assert not all(r.passed for r in rows)


@pytest.mark.parametrize("scale,passes", [(1.0, True), (V.VARIANCE_CONTROL_SCALE, False), (0.8, False)])
def test_variance_row_catches_a_finite_width_coefficient_20_percent_off(scale, passes):
    """At the quick size a finite-width coefficient off by 20 % passes every mean-based row; the
    variance of q_l across inputs (the theory's Var s, 4,000 reduced chains) rejects it."""
    import meanfield as mf
    from sim.reduced import reduced_chain

    quick = V.SIZES["quick"]
    fw = mf.finite_width("selu", quick.depth, q0=1.0, widths=quick.width, order=2)
    q = reduced_chain("selu", quick.depth, width=quick.width, chains=quick.chains, q0=1.0, seed=1).q_measured.values
    k = V.critical_k(V.comparisons("quick"), quick.chains - 1)
    assert V.variance_check("selu", q, fw, k, "", scale).passed is passes


@pytest.mark.parametrize("rho", [0.0, 0.9])
def test_pooled_variance_error_and_its_standard_error(rho):
    """Gaussian q̂ in two layers of correlation ρ (layer 0 left out, as the input): the mean of the
    two layers' s²/σ² − 1 has SE √2 √((1 + ρ²)/2)/√n (each s²/σ² has variance 2/n, their
    correlation is ρ²); met to the SE's own sampling error (5 %)."""
    n = 40000
    z = np.random.default_rng(0).normal(size=(n, 3))
    q = 3.0 + 2.0 * np.stack([z[:, 0], z[:, 1], rho * z[:, 1] + math.sqrt(1 - rho**2) * z[:, 2]], axis=1)
    error, sem = V.pooled_variance_error(q, np.full(3, 4.0))
    expected = math.sqrt(2 / n) * math.sqrt((1 + rho**2) / 2)
    assert abs(error[0]) < 5 * expected
    np.testing.assert_allclose(sem, expected, rtol=0.05)


def test_draws_for_target_is_the_fewest_that_reach_it():
    """k·SE√(n/m) + residual <= TARGET_BOUND at the returned m and not at m − 1; the maximum where the
    residual alone reaches the target, the pilot where it already meets it."""
    n, sem, res = 16, np.array([0.02]), np.array([0.01])
    rows = [("r", None, sem, res)]
    m = V._draws_for_target(rows, n, k_for, 10_000)

    def bound(m):
        return k_for(m - 1) * sem[0] * math.sqrt(n / m) + res[0]

    assert bound(m) <= V.TARGET_BOUND < bound(m - 1)
    assert V._draws_for_target([("r", None, sem, np.array([V.TARGET_BOUND]))], n, k_for, 500) == 500
    assert V._draws_for_target([("r", None, sem / 100, res)], n, k_for, 500) == n


def test_split_draws_are_the_draws_of_one_call():
    """The draws split between threads are, bit for bit, those of one call; first_draw extends a run."""
    from sim.simulation import simulate

    def run(first, count):
        ds = simulate("selu", depth=3, width=32, batch=4, seeds=count, first_draw=first, stat_layers=[],
                      bin_edges=None, seed=3)
        return ds.q_measured.values, ds.grad_sq.values

    whole = run(0, 8)
    split = V._in_threads(run)(0, 8)
    extended = [np.concatenate(pair) for pair in zip(run(0, 3), run(3, 5))]
    for a, b, c in zip(whole, split, extended):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    assert list(simulate("selu", depth=2, width=8, batch=2, seeds=2, first_draw=5, stat_layers=[],
                         bin_edges=None).seed.values) == [5, 6]
    with pytest.raises(ValueError, match="first_draw must be an integer >= 0, got -1"):
        simulate("selu", depth=2, width=8, first_draw=-1)


def test_spectrum_first_draw_extends_a_run():
    from sim.spectrum import jacobian_spectrum

    whole = jacobian_spectrum("selu", [1, 2], width=16, draws=4, seed=2, theory=False)
    tail = jacobian_spectrum("selu", [1, 2], width=16, draws=2, first_draw=2, seed=2, theory=False)
    np.testing.assert_array_equal(whole.eigenvalues.values[2:], tail.eigenvalues.values)
    assert list(tail.draw.values) == [2, 3]
    with pytest.raises(ValueError, match="first_draw must be an integer >= 0, got 1.5"):
        jacobian_spectrum("selu", 2, width=8, first_draw=1.5)


def test_monte_carlo_checks_reject_bad_arguments():
    with pytest.raises(ValueError, match="unknown Monte-Carlo size"):
        V.monte_carlo_checks("huge")
    with pytest.raises(ValueError, match="network perturbations"):
        V.monte_carlo_checks("quick", network={"depth": 2})
    with pytest.raises(ValueError, match="seed must be an integer >= 0, got -1"):
        V.monte_carlo_checks("quick", seed=-1)


def test_check_fails_where_any_layer_exceeds_its_bound():
    error = np.array([0.01, -0.05, 0.0])
    sem = np.array([0.01, 0.01, 0.01])
    ok = V._check("s", "n", error, sem, np.zeros(3), 5.0, None, "ref")
    assert ok.passed and ok.value == pytest.approx(-0.05)
    bad = V._check("s", "n", error, sem, np.zeros(3), 4.0, None, "ref")
    assert not bad.passed
    empty = V._check("s", "n", np.full(3, np.nan), sem, np.zeros(3), 4.0, None, "ref")
    assert not empty.passed


def test_table_shows_the_infinite_width_error_beside():
    text = format_table([Check("s", "a", 0.001, "r", "t", True, "", infinite_width=0.042)])
    assert "N=inf" in text and "4.20%" in text
