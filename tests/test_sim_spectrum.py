"""Networks' Jacobian spectra (sim.spectrum) and orthogonal weights (sim.engine), beside the theory.

Bounds are k standard errors measured in the same run, k from sim.validate.critical_k (false-alarm
rate 1e-3 over the comparisons of a test, Student's t with the draws' degrees of freedom); each
theory-against-network test has a negative control that the same bound rejects.
"""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import meanfield as mf  # noqa: E402
from meanfield.cli import main  # noqa: E402
from sim.engine import NetworkConfig, weight  # noqa: E402
from sim.spectrum import jacobian_spectrum  # noqa: E402
from sim.validate import critical_k  # noqa: E402

DRAWS = 8
DEPTHS = [1, 3]


def _within(ds, theory, names, k):
    out = []
    for name in names:
        err = np.abs(ds[name].values - theory[name].values)
        out.append(bool(np.all(err <= k * ds[f"{name}_sem"].values)))
    return out


@pytest.mark.parametrize("weights", ["gaussian", "orthogonal"])
@pytest.mark.parametrize("spec", ["selu", "lselu:epsilon=0.017"])
def test_network_spectrum_matches_the_theory(spec, weights):
    """N = 256, L <= 3: the O(L/N) drift (~1 %) is below the standard error of 8 draws."""
    ds = jacobian_spectrum(spec, DEPTHS, width=256, weights=weights, draws=DRAWS, seed=3, theory=False)
    theory = mf.spectrum(spec, DEPTHS, weights=weights, points=400)
    k = critical_k(2 * len(DEPTHS), DRAWS - 1)
    assert all(_within(ds, theory, ["m1", "nvar"], k))
    # the median, with its scatter over draws
    err = np.abs(ds.quantile_x.values[:, 2] - theory.quantile_x.values[:, 2])
    assert np.all(err <= k * ds.quantile_x_sem.values[:, 2])


def test_negative_control_orthogonal_theory_rejects_gaussian_networks():
    ds = jacobian_spectrum("selu", DEPTHS, width=256, weights="gaussian", draws=DRAWS, seed=3, theory=False)
    wrong = mf.spectrum("selu", DEPTHS, weights="orthogonal", density=False)
    k = critical_k(2 * len(DEPTHS), DRAWS - 1)
    assert not all(_within(ds, wrong, ["nvar"], k))


def test_probes_estimate_the_same_moments_as_the_eigenvalues():
    """Same seed, same networks: the probe estimates of m₁ and m₂ are unbiased for each network, so
    they agree with the exact moments of the same draws within the probes' standard error."""
    eig = jacobian_spectrum("sselu:epsilon=0.017", [2, 4], width=128, draws=4, seed=5, method="eigen", theory=False)
    probe = jacobian_spectrum("sselu:epsilon=0.017", [2, 4], width=128, draws=4, seed=5, method="probe",
                              probes=64, theory=False)
    k = critical_k(4, 3)
    for name in ("m1", "m2"):
        diff = probe[f"{name}_draws"].values - eig[f"{name}_draws"].values
        sem = diff.std(axis=0, ddof=1) / 2.0
        assert np.all(np.abs(diff.mean(axis=0)) <= k * sem + 1e-12)


def test_same_seed_same_numbers():
    a = jacobian_spectrum("selu", 2, width=64, draws=2, seed=7, weights="orthogonal", theory=False)
    b = jacobian_spectrum("selu", 2, width=64, draws=2, seed=7, weights="orthogonal", theory=False)
    np.testing.assert_array_equal(a.eigenvalues.values, b.eigenvalues.values)


@pytest.mark.parametrize("shape", [(64, 64), (32, 64), (64, 32)])
def test_orthogonal_weights_have_the_gaussian_entry_variance_and_orthonormal_rows_or_columns(shape):
    n_out, n_in = shape
    cfg = NetworkConfig(depth=1, widths=(n_in, n_out), batch=1, sigma_w2=1.7, weights="orthogonal")
    w = weight(cfg, 0, 1)
    gram = w @ w.T if n_out <= n_in else w.T @ w
    scale = 1.7 * max(1.0, n_out / n_in)
    np.testing.assert_allclose(gram.numpy(), scale * np.eye(min(shape)), atol=1e-12)
    # every entry's variance σ_w²/N_in, as a Gaussian weight's: the Frobenius norm is exact
    assert float((w**2).sum()) == pytest.approx(1.7 * n_out, rel=1e-12)


def test_simulate_with_orthogonal_weights_has_the_orthogonal_finite_width_columns():
    import sim

    ds = sim.simulate("selu", depth=4, width=128, batch=32, seeds=4, weights="orthogonal")
    fw = mf.finite_width("selu", 4, widths=128, weights="orthogonal")
    assert ds.attrs["weights"] == "orthogonal"
    np.testing.assert_array_equal(ds.q_theory_fw.values, fw.q_mean.values)
    assert np.all(np.isnan(ds.grad_theory_fw.values))  # the gradient's closure is not derived
    # where the orthogonal closure is not derived (σ_b² > 0), no finite-width columns
    assert "q_theory_fw" not in sim.simulate("selu", depth=4, width=128, batch=32, seeds=2, weights="orthogonal",
                                             sigma_b2=0.1)
    # ‖O x‖ = ‖x‖: with a centred input of second moment q0, q_1 = σ_w² ‖f(h_0)‖²/N per sample exactly
    assert np.all(np.isfinite(ds.q_measured.values))


def test_eigen_refuses_a_width_it_cannot_diagonalise():
    with pytest.raises(ValueError, match="method='probe'"):
        jacobian_spectrum("selu", 1, width=2048, method="eigen")


@pytest.mark.parametrize("kwargs,match", [
    (dict(weights="unitary"), "unknown weights 'unitary'"),
    (dict(method="lanczos"), "unknown method 'lanczos'"),
    (dict(draws=0), "draws must be an integer >= 1"),
])
def test_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        jacobian_spectrum("selu", 1, width=16, **kwargs)


def test_command_line_json_and_mc(capsys):
    code = main(["spectrum", "selu", "--depth", "1,2", "--weights", "gaussian", "--mc", "64", "--draws", "2",
                 "--json", "--points", "200"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["depth"] == [1, 2] and len(out["mc"]["m1"]) == 2
    assert out["m1"][0] == pytest.approx(float(mf.jacobian_second_moment("selu", 1.0)), rel=1e-14)


@pytest.mark.parametrize("argv,message", [
    (["--depth", "0"], "--depth must list integers >= 1"),
    (["--depth", "2", "--mc", "0"], "--mc must be a width >= 1"),
    (["--depth", "2", "--weights", "haar"], "invalid choice: 'haar'"),
])
def test_command_line_bad_input(capsys, argv, message):
    assert main(["spectrum", "selu", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_nvar_is_taken_within_each_draw():
    """Two draws with the same spectrum's shape at scales 1 and 3: each draw's nvar is the shape's
    (to rounding), whatever the scales; the ratio of the draws' means would not be."""
    from sim.spectrum import per_draw_nvar

    eig = np.array([0.5, 1.0, 2.5])
    m1 = np.array([[eig.mean()], [3 * eig.mean()]])
    m2 = np.array([[np.mean(eig**2)], [9 * np.mean(eig**2)]])
    shape = np.mean(eig**2) / eig.mean() ** 2 - 1
    np.testing.assert_allclose(per_draw_nvar(m1, m2), shape, rtol=4 * np.finfo(float).eps)
    assert m2.mean() / m1.mean() ** 2 - 1 > shape * 1.1  # what the ratio of means would report
