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
               + len(V.SPECS) * len(DEFAULT.chain_q0s) * 2 * LAYERS)
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
