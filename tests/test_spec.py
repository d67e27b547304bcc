"""Spec strings: parsing, resolution and every kind of bad input."""

import numpy as np
import pytest

import meanfield as mf


@pytest.mark.parametrize("spec,params", [
    ("selu", {"lambda": mf.SELU_LAMBDA, "alpha": mf.SELU_ALPHA}),
    ("leaky_relu:a=0.1", {"a": 0.1}),
    ("leaky_relu", {"a": 0.01}),
    ("elu:a=0.5", {"a": 0.5}),
    ("sselu:lambda=1,alpha=2.46,beta=0.58", {"lambda": 1.0, "alpha": 2.46, "beta": 0.58}),
    ("lselu:lambda=1, alpha=1.14, beta=0.39", {"lambda": 1.0, "alpha": 1.14, "beta": 0.39}),
    ("dselu:lambda=1.34,alpha=0.64", {"lambda": 1.34, "alpha": 0.64}),
])
def test_explicit_parameters(spec, params):
    act = mf.activation(spec)
    for key, value in params.items():
        assert act.params[key] == value


@pytest.mark.parametrize("spec", ["sselu:epsilon=0.03", "lselu:epsilon=0.06,central=true", "dselu:epsilon=0.017",
                                  "sselu:epsilon=0.03,lambda_min=0.5", "dselu:epsilon=0.03,q_star=2,sigma_w2=1.5",
                                  "lselu:epsilon=0.03,central=yes,lambda_min=0.5"])
def test_solved_parameters_meet_their_constraints(spec):
    act = mf.activation(spec)
    sol = act.solution
    assert sol is not None
    q_star, w = sol.q_star, sol.sigma_w2
    # σ_w² φ(q*) = 1 + ε and σ_w² Q(q*) = q* (eq 11 generalised), to 1e-13.
    assert abs(w * mf.jacobian_second_moment(act, q_star) - (1 + sol.epsilon)) < 1e-13
    assert abs(w * mf.second_moment(act, q_star) - q_star) < 1e-13
    if sol.central:
        assert abs(mf.mean_map(act, 0.0, q_star)) < 1e-13
    if sol.lambda_min is not None:
        assert sol.lam >= sol.lambda_min * (1 - 1e-13)


def test_spec_string_round_trip():
    act = mf.activation("sselu:epsilon=0.03")
    again = mf.activation(mf.activations.explicit_spec(act))
    for key in ("lambda", "alpha", "beta"):
        assert again.params[key] == act.params[key]
    assert act.spec == "sselu:epsilon=0.03"


def test_activation_functions_evaluate():
    x = np.linspace(-3, 3, 13)
    act = mf.activation("lselu:lambda=1.1,alpha=0.8,beta=0.3")
    expected = 1.1 * np.where(x > 0, x, 0.8 * (np.exp(x) - 1) + 0.3 * x)
    np.testing.assert_allclose(act(x), expected, rtol=1e-15, atol=1e-15)
    for spec in ["tanh", "erf", "gelu", "softplus", "swish", "relu", "elu"]:
        a = mf.activation(spec)
        fd = (a.f(x + 1e-6) - a.f(x - 1e-6)) / 2e-6
        mask = np.abs(x) > 1e-3  # kinks at 0
        np.testing.assert_allclose(a.df(x)[mask], fd[mask], rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("spec,match", [
    ("foo", r"unknown activation 'foo'.*valid names: relu, leaky_relu"),
    ("", "empty activation name"),
    ("sselu:", "nothing after ':'"),
    ("sselu:epsilon", "is not key=value"),
    ("sselu:epsilon=0.03,epsilon=0.04", "twice"),
    ("sselu:gamma=1", r"unknown parameter 'gamma'.*valid parameters: lambda, alpha, beta, epsilon"),
    ("selu:alpha=1", "valid parameters: none"),
    ("sselu:epsilon=-0.1", "epsilon must be > 0"),
    ("sselu:epsilon=0", "epsilon must be > 0"),
    ("sselu:epsilon=nan", "epsilon must be a finite number"),
    ("sselu:epsilon=inf", "epsilon must be a finite number"),
    ("sselu:epsilon=abc", "epsilon must be a number"),
    ("sselu:lambda=1,alpha=2", "missing beta"),
    ("sselu", "needs epsilon"),
    ("sselu:epsilon=0.03,lambda=1", "both epsilon and lambda"),
    ("sselu:lambda_min=0.5,lambda=1,alpha=2,beta=1", "only apply together with epsilon"),
    ("sselu:lambda=-1,alpha=2,beta=0.5", "lambda must be > 0"),
    ("sselu:lambda=1,alpha=2,beta=0", "beta must be > 0"),
    ("sselu:epsilon=0.03,lambda_min=0", "lambda_min must be > 0"),
    ("sselu:epsilon=0.03,central=maybe", "central must be true or false"),
    ("dselu:epsilon=0.03,central=true", "unknown parameter 'central'"),
    ("swish:beta=-1", "beta must be > 0"),
    ("elu:a=-1", "a must be >= 0"),
])
def test_bad_specs(spec, match):
    with pytest.raises(ValueError, match=match):
        mf.activation(spec)


def test_infeasible_requests_raise_clear_errors():
    with pytest.raises(mf.InfeasibleError, match="largest feasible lambda"):
        mf.activation("sselu:epsilon=0.03,lambda_min=5")
    with pytest.raises(mf.InfeasibleError, match="reaches at most epsilon"):
        mf.activation("dselu:epsilon=0.5")
    with pytest.raises(ValueError, match="spec string, a callable or an Activation"):
        mf.activation(3.0)
