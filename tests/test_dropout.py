"""Alpha dropout for the SELU family (meanfield.theory.dropout, cuda_kernels.dropout, sim's masks).

References: torch.nn.AlphaDropout (its constants and its output for the same random state); the
layer's mean and variance by scipy.integrate.quad at the fixed point (independent of the closed
forms); networks against the theory with k standard errors (sim.validate.critical_k) and a negative
control (torch's SELU constants on dSELU) that the same bound rejects.
"""

import json
import math

import numpy as np
import pytest
from scipy import integrate

import meanfield as mf
from meanfield.cli import main

FAMILY = [("selu", "saturation"), ("dselu:epsilon=0.017", "saturation"), ("sselu:epsilon=0.017", "saturation"),
          ("lselu:epsilon=0.017", "mean"), ("sselu:epsilon=0.017", "mean"), ("selu", -1.0)]
TORCH_ALPHA = 1.7580993408473766  # torch's alpha_dropout constant, SELU's λα


@pytest.mark.parametrize("p", [0.05, 0.1, 0.2, 0.5])
def test_selu_constants_are_torchs(p):
    c = mf.dropout_constants("selu", p)
    a = 1.0 / math.sqrt((TORCH_ALPHA * TORCH_ALPHA * p + 1) * (1 - p))  # aten/src/ATen/native/Dropout.cpp
    assert abs(float(c["a"]) - a) <= 1e-15 and abs(float(c["b"]) - TORCH_ALPHA * a * p) <= 1e-15
    assert c["alpha_p"] == -TORCH_ALPHA and c["rule"] == "saturation"


@pytest.mark.parametrize("p", [0.05, 0.1, 0.3])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_layer_is_torchs_alpha_dropout_for_selu(p, dtype):
    torch = pytest.importorskip("torch")
    from cuda_kernels import AlphaDropout

    x = torch.randn(300, 40, dtype=getattr(torch, dtype))
    torch.manual_seed(11)
    ref = torch.nn.AlphaDropout(p).train()(x)
    torch.manual_seed(11)
    ours = AlphaDropout("selu", p).train()(x)
    assert torch.equal(ref, ours)
    assert torch.equal(AlphaDropout("sselu:epsilon=0.017", p).eval()(x), x)  # identity in evaluation


def _quad_moments(act, q):
    g = lambda fn: integrate.quad(lambda h: fn(h) * math.exp(-h * h / (2 * q)) / math.sqrt(2 * math.pi * q),  # noqa
                                  -40 * math.sqrt(q), 40 * math.sqrt(q), points=[0.0], limit=200, epsabs=0,
                                  epsrel=1e-13)[0]
    return g(lambda h: float(act.f(h))), g(lambda h: float(act.f(h)) ** 2)


@pytest.mark.parametrize("spec,rule", FAMILY)
@pytest.mark.parametrize("p", [0.05, 0.2])
def test_the_layer_restores_the_mean_and_variance(spec, rule, p):
    """E y and Var y of the mixture y = a(d x + (1 − d)α′) + b, from quad's E x and E x² at q*:
    the constants are chosen so that they are μ and ν (to quad's 1e-12)."""
    act = mf.activation(spec)
    c = mf.dropout_constants(act, p, rule)
    m1, m2 = _quad_moments(act, c["q_star"])
    a, b, k, ap = float(c["a"]), float(c["b"]), 1 - p, c["alpha_p"]
    ey = k * (a * m1 + b) + p * (a * ap + b)
    ey2 = k * (a * a * m2 + 2 * a * b * m1 + b * b) + p * (a * ap + b) ** 2
    assert ey == pytest.approx(m1, abs=1e-12)
    assert ey2 - ey**2 == pytest.approx(m2 - m1**2, rel=1e-11)


@pytest.mark.parametrize("spec,rule", FAMILY)
def test_the_fixed_point_survives_dropout(spec, rule):
    c = mf.dropout_constants(spec, 0.1, rule)
    ds = mf.recursion(spec, 20, q0=c["q_star"], dropout=0.1, dropped=rule)
    np.testing.assert_allclose(ds.q.values, c["q_star"], rtol=1e-12)
    np.testing.assert_allclose(ds.y_mean.values, c["mu"], atol=1e-12)


def test_the_mean_rule_keeps_chi_and_saturation_damps_it():
    mean = mf.alpha_dropout("sselu:epsilon=0.017", [0.05, 0.1, 0.2], "mean")
    np.testing.assert_allclose(mean.chi_p, float(mean.chi_0), rtol=1e-13)
    assert math.isnan(float(mean.p_crit))
    sat = mf.alpha_dropout("sselu:epsilon=0.017", [0.05, 0.1, 0.2], "saturation")
    assert np.all(np.diff(sat.chi_p.values) < 0) and float(sat.chi_p[1]) < 0.6  # the contract's pitfall
    crit = float(sat.p_crit)  # chi_p(q*) = 1 exactly there
    assert float(mf.alpha_dropout("sselu:epsilon=0.017", crit, "saturation").chi_p[0]) == pytest.approx(1.0, rel=1e-12)


def test_p_zero_is_exactly_no_dropout():
    a = mf.recursion("dselu:epsilon=0.017", 10, q0=1.3)
    b = mf.recursion("dselu:epsilon=0.017", 10, q0=1.3, dropout=0.0)
    assert np.array_equal(a.q.values, b.q.values) and np.array_equal(a.grad.values, b.grad.values)
    sim = pytest.importorskip("sim")
    pytest.importorskip("torch")
    x = sim.simulate("selu", depth=3, width=32, batch=8, seeds=2, seed=4)
    y = sim.simulate("selu", depth=3, width=32, batch=8, seeds=2, seed=4, dropout=0.0)
    assert np.array_equal(x.q_measured.values, y.q_measured.values)
    assert np.array_equal(x.grad_sq.values, y.grad_sq.values)


def _chi_error(ds):
    chi = ds.chi_measured.values[:, 1:]
    per_draw = chi.mean(axis=1)
    return per_draw.mean(), per_draw.std(ddof=1) / math.sqrt(len(per_draw))


@pytest.mark.parametrize("spec,rule", [("selu", "saturation"), ("sselu:epsilon=0.017", "saturation"),
                                       ("lselu:epsilon=0.017", "mean")])
def test_networks_measure_the_theorys_per_layer_factor(spec, rule):
    """Width 256, depth 8, 8 draws, p = 0.1: the measured χ (the draws' own tr WWᵀ tr DDᵀ, dropout's
    a·d included) averaged over layers against χ_p(q*) (q0 = q*), within k standard errors."""
    sim = pytest.importorskip("sim")
    pytest.importorskip("torch")
    from sim.validate import critical_k

    th = mf.alpha_dropout(spec, 0.1, rule)
    ds = sim.simulate(spec, depth=8, width=256, batch=64, seeds=8, q0=float(th.q_star), dropout=0.1, dropped=rule,
                      stat_layers=[], bin_edges=None, seed=2)
    mean, sem = _chi_error(ds)
    assert abs(mean - float(th.chi_p[0])) <= critical_k(1, 7) * sem
    q_mean = ds.q_measured.values[:, 1:].mean(axis=1)
    assert abs(q_mean.mean() - float(th.q_star)) <= critical_k(1, 7) * q_mean.std(ddof=1) / math.sqrt(8)


def test_negative_control_selu_constants_on_dselu_move_the_fixed_point():
    """torch's SELU constants on dSELU (what users do today): the fixed point moves to ~1.39, and a
    network built that way is rejected by the theory's q* = 1 with the same bound."""
    sim = pytest.importorskip("sim")
    pytest.importorskip("torch")
    from cuda_kernels import selu_constants_fixed_point
    from sim.validate import critical_k

    moved = selu_constants_fixed_point("dselu:epsilon=0.017", 0.1)
    assert moved == pytest.approx(1.387, abs=2e-3)
    # a dSELU network with torch's layer: SELU's a, b and α′ in place of dSELU's own
    from meanfield.theory.dropout import torch_selu_constants

    wrong = sim.simulate("dselu:epsilon=0.017", depth=16, width=256, batch=64, seeds=8, dropout=0.1,
                         dropout_constants=torch_selu_constants(0.1), stat_layers=[], bin_edges=None, seed=2)
    q_deep = wrong.q_measured.values[:, 8:].mean(axis=1)  # layers 8..16, near the moved fixed point
    assert abs(q_deep.mean() - 1.0) > critical_k(1, 7) * q_deep.std(ddof=1) / math.sqrt(8)  # rejected
    assert q_deep.mean() == pytest.approx(moved, rel=0.05)


def test_check_alpha_dropout_names_the_moved_fixed_point():
    torch = pytest.importorskip("torch")
    from cuda_kernels import check_alpha_dropout

    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.AlphaDropout(0.1))
    with pytest.warns(UserWarning, match=r"moves the fixed point from q = 1 to q = 1\.38"):
        check_alpha_dropout(model, "dselu:epsilon=0.017")
    assert check_alpha_dropout(model, "selu") == []


@pytest.mark.parametrize("kwargs,match", [
    (dict(p=-0.1), "must lie in \\[0, 1\\)"),
    (dict(p=1.0), "must lie in \\[0, 1\\)"),
    (dict(p=float("nan")), "p must be finite"),
    (dict(p=0.1, dropped="zero"), "dropped must be 'saturation', 'mean' or a number"),
    (dict(p=0.1, dropped=[1.0]), "dropped must be 'saturation', 'mean' or a number"),
    (dict(p=0.1, spec="lselu:epsilon=0.017", dropped="saturation"), "has none"),
    (dict(p=0.1, sigma_w2=3.0), "no finite, positive fixed point"),
])
def test_bad_input(kwargs, match):
    spec = kwargs.pop("spec", "selu")
    with pytest.raises(ValueError, match=match):
        mf.alpha_dropout(spec, **kwargs)


def test_command_line(capsys):
    assert main(["dropout", "dselu:epsilon=0.017", "--p", "0.05,0.1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rule"] == "saturation" and len(out["a"]) == 2 and out["q_star"] == pytest.approx(1.0, abs=1e-9)
    assert main(["dropout", "selu", "--p", "1.5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "[0, 1)" in err[0]
    assert main(["recursion", "selu", "--depth", "3", "--dropped", "mean"]) == 2


def test_the_reduced_chain_carries_dropout():
    """The exact single-input chain with masks: p = 0 is the chain without dropout, number for number;
    at p = 0.1 (χ_p < 1, where the contract expects no drift beyond O(L/N)) q_l and the gradient norms
    sit on the recursion with dropout within k standard errors plus the O(L/N) drift that the
    chains without dropout show at this size (measured beside it); the theory without dropout, the
    negative control, is rejected by the same bound."""
    sim = pytest.importorskip("sim")
    from sim.validate import critical_k

    plain = sim.reduced_chain("sselu:epsilon=0.017", 8, width=128, chains=400, seed=3)
    same = sim.reduced_chain("sselu:epsilon=0.017", 8, width=128, chains=400, seed=3, dropout=0.0)
    assert np.array_equal(plain.grad_measured.values, same.grad_measured.values)
    th = mf.alpha_dropout("sselu:epsilon=0.017", 0.1)
    ds = sim.reduced_chain("sselu:epsilon=0.017", 8, width=256, chains=3000, q0=float(th.q_star), dropout=0.1, seed=1)
    drift = sim.reduced_chain("sselu:epsilon=0.017", 8, width=256, chains=3000, seed=1)
    k = critical_k(2 * 9, 2999)
    for v in ("q", "grad"):
        err, sem = ds[f"{v}_rel_error"].values[:-1], ds[f"{v}_rel_error_sem"].values[:-1]
        allowance = np.abs(drift[f"{v}_rel_error"].values[:-1]) + k * drift[f"{v}_rel_error_sem"].values[:-1]
        assert np.all(np.abs(err) <= k * sem + allowance), v
    # negative control: the same chains against the theory without dropout are rejected by the same bound
    g_wrong = ds.grad_measured_mean.values[:-1] / drift.grad_theory.values[:-1] - 1.0
    allowance = np.abs(drift.grad_rel_error.values[:-1]) + k * drift.grad_rel_error_sem.values[:-1]
    assert not np.all(np.abs(g_wrong) <= k * ds.grad_rel_error_sem.values[:-1] + allowance)
    assert "dropout" in ds.attrs and "q_theory_fw" in ds and "grad_theory_fw" not in ds  # q's closure only


# ---------------------------------------------------------------------------
# The O(1/N) theory with dropout (meanfield.finite_width_dropout)
# ---------------------------------------------------------------------------

def test_finite_width_dropout_at_p_zero_is_the_closure_without_dropout():
    ds = mf.finite_width_dropout("sselu:epsilon=0.03", 16, 256, 0.0, q0=1.3)
    fw = mf.finite_width("sselu:epsilon=0.03", 16, q0=1.3, widths=256)
    # central differences at relative step 1e-3: truncation ~1e-6 of the O(1/N) terms they enter
    np.testing.assert_allclose(ds.q_mean.values, fw.q_mean.values, rtol=1e-8)
    np.testing.assert_allclose(ds.s_var.values[1:], fw.s_var.values[1:], rtol=1e-6)
    np.testing.assert_allclose(ds.chi_mean.values[1:], fw.chi_mean.values[1:], rtol=1e-8)
    np.testing.assert_allclose(ds.q.values, fw.q.values, rtol=1e-14)


#: a two-sided t-test with 63 degrees of freedom over the 2 × 2 comparisons below at the run's
#: false-alarm rate 1e-3 (sim.validate.critical_k)
CHI_DRAWS = 64


@pytest.mark.parametrize("spec,rule", [("selu", "mean"), ("sselu:epsilon=0.017", "mean")])
def test_networks_measure_the_finite_width_factor_with_dropout(spec, rule):
    """Width 64, depth 8, 64 draws, p = 0.1: the draws' layer-averaged per-layer factor sits on the
    O(1/N) theory; the infinite-width χ_p (the mean rule leaves it above 1, where the O(1/N) drift is
    ~0.7 % here) is rejected by the same bound: the negative control."""
    import sim
    from sim.validate import critical_k

    k = critical_k(4, CHI_DRAWS - 1)
    theory = mf.alpha_dropout(spec, 0.1, rule)
    fw = mf.finite_width_dropout(spec, 8, 64, 0.1, rule)
    ds = sim.simulate(spec, depth=8, width=64, batch=64, seeds=CHI_DRAWS, q0=float(theory.q_star), dropout=0.1,
                      dropped=rule, stat_layers=[], bin_edges=None, seed=3, dtype="float64")
    per_draw = ds.chi_measured.values[:, 1:].mean(axis=1)
    mean, sem = per_draw.mean(), per_draw.std(ddof=1) / np.sqrt(CHI_DRAWS)
    assert abs(mean - fw.chi_mean.values[1:].mean()) <= k * sem
    assert abs(mean - float(theory.chi_p[0])) > k * sem
    np.testing.assert_allclose(ds.chi_theory_fw.values[1:], fw.chi_mean.values[1:], rtol=1e-14)


def test_reduced_chains_with_dropout_measure_the_finite_width_q():
    import sim

    spec, rule = "lselu:epsilon=0.017", "mean"
    q_star = float(mf.alpha_dropout(spec, 0.1, rule).q_star)
    chain = sim.reduced_chain(spec, 8, width=64, chains=20000, q0=q_star, dropout=0.1, dropped=rule, seed=3)
    z_fw = np.abs(chain.q_measured_mean - chain.q_theory_fw) / chain.q_measured_sem
    z_inf = np.abs(chain.q_measured_mean - chain.q_theory) / chain.q_measured_sem
    assert float(z_fw[1:].max()) < 4.5 and float(z_inf[1:].max()) > 4.5  # K_SIGMA of test_finite_width.py


def test_finite_width_dropout_bad_input():
    with pytest.raises(ValueError, match="width must be an integer >= 1"):
        mf.finite_width_dropout("selu", 4, 0, 0.1)
    with pytest.raises(ValueError, match="one drop rate"):
        mf.finite_width_dropout("selu", 4, 64, [0.1, 0.2])
    with pytest.raises(ValueError, match="p is the drop rate and must lie in"):
        mf.finite_width_dropout("selu", 4, 64, 1.5)
