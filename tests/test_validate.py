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
LAYERS = DEFAULT.depth + 1
#: the comparisons of a whole default run, as monte_carlo_checks counts them
COMPARISONS = (len(V.SPECS) * len(DEFAULT.q0s) * 4 * LAYERS + 2 * LAYERS
               + len(V.SPECS) * len(DEFAULT.chain_q0s) * 3 * LAYERS)
K_DRAWS = V.critical_k(COMPARISONS, DEFAULT.draws - 1)
K_CHAINS = V.critical_k(COMPARISONS, DEFAULT.chains - 1)


def test_critical_k_is_bonferroni():
    # One comparison, many dof: the two-sided 1e-3 normal quantile; more comparisons, fewer dof: wider.
    assert V.critical_k(1, math.inf) == pytest.approx(3.2905, abs=1e-4)
    assert V.critical_k(1000, math.inf) == pytest.approx(4.8916, abs=1e-4)
    assert V.critical_k(1000, 15) > V.critical_k(1000, 1e6) > V.critical_k(10, 1e6)


@pytest.mark.slow
def test_correct_networks_pass_at_the_default_size():
    rows = V._full_network_checks("selu", DEFAULT, 1.0, K_DRAWS, None)
    rows += [r for spec in V.SPECS for r in V._reduced_chain_checks(spec, DEFAULT, 1.0, K_CHAINS, None)]
    assert all(r.passed for r in rows), format_table([r for r in rows if not r.passed])


@pytest.mark.slow
@pytest.mark.parametrize("network", [{"sigma_w2": 1.01}, {"lam": 1.02}])
def test_negative_controls_fail_at_the_default_size(network):
    for spec in V.SPECS:
        rows = V._reduced_chain_checks(spec, DEFAULT, 1.0, K_CHAINS, network)
        assert not all(r.passed for r in rows), spec
    rows = V._full_network_checks("selu", DEFAULT, 1.0, K_DRAWS, network)
    assert not all(r.passed for r in rows)


@pytest.mark.parametrize("scale,passes", [(1.0, True), (V.VARIANCE_CONTROL_SCALE, False), (0.8, False)])
def test_variance_row_catches_a_finite_width_coefficient_20_percent_off(scale, passes):
    """At the quick size a finite-width coefficient off by 20 % passes every mean-based row; the
    variance of q_l across inputs (the theory's Var s, 4,000 reduced chains) rejects it."""
    import meanfield as mf
    from sim.reduced import reduced_chain

    quick = V.SIZES["quick"]
    fw = mf.finite_width("selu", quick.depth, q0=1.0, widths=quick.width)
    q = reduced_chain("selu", quick.depth, width=quick.width, chains=quick.chains, q0=1.0, seed=1).q_measured.values
    k = V.critical_k(len(V.SPECS) * 3 * (quick.depth + 1), quick.chains - 1)
    assert V.variance_check("selu", q, fw, k, "", scale).passed is passes


def test_sample_variance_and_its_standard_error():
    """Gaussian q̂: the delta-method SE is σ²√(2/n) to sampling error."""
    q = np.random.default_rng(0).normal(3.0, 2.0, size=(40000, 2))
    var, sem = V.sample_variance_and_sem(q)
    np.testing.assert_allclose(var, 4.0, rtol=5 * math.sqrt(2 / 40000))
    np.testing.assert_allclose(sem, 4.0 * math.sqrt(2 / 40000), rtol=0.05)


def test_monte_carlo_checks_reject_bad_arguments():
    with pytest.raises(ValueError, match="unknown Monte-Carlo size"):
        V.monte_carlo_checks("huge")
    with pytest.raises(ValueError, match="network perturbations"):
        V.monte_carlo_checks("quick", network={"depth": 2})


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
