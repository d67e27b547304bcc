"""The O(1/N) finite-width theory: its functionals against mpmath, its identities, and the exact
reduced chain against full networks.

Tolerances: the closed forms against 40-digit mpmath at 1e-13 (measured worst 3.4e-14, the Δ⁴R
combination at its series switch); Monte-Carlo comparisons at K_SIGMA standard errors of
the measurement, chosen so that a correct run fails less than once in 1,000 (see K_SIGMA).
"""

import math
import warnings

import mpmath as mp
import numpy as np
import pytest
import xarray as xr

import meanfield as mf
import sim
from meanfield.gauss import mills_series
from sim import reduced



@pytest.fixture(autouse=True)
def _mpmath_precision():
    """40 digits for this module's references, restored afterwards (mpmath's precision is global)."""
    with mp.workdps(40):
        yield

#: Measured worst 3.4e-14 over t in [1e-8, 1e4] (see mills_series.SERIES_BELOW), 3x for headroom.
CLOSED_VS_MPMATH = 1e-13
#: A check takes the maximum of ~2(L + 1) z-scores; for a family-wise false alarm below 1e-3,
#: Bonferroni gives a two-sided per-score p of 1e-3 / 130 -> |z| < 4.47 for L = 64.
K_SIGMA = 4.5
SPECS = ["selu", "dselu:epsilon=0.017", "sselu:epsilon=0.017", "lselu:epsilon=0.017"]


# ---------------------------------------------------------------------------
# Mills-ratio combinations and functionals against mpmath.
# ---------------------------------------------------------------------------


def _difference_reference(j, k, t):
    """Δ^j R^{(k)}(t) = (−1)^k ∫_0^∞ u^k (e^{−tu} − 1)^j e^{−u²/2} du (no cancellation: expm1)."""
    t = mp.mpf(t)
    return (-1) ** k * mp.quad(lambda u: u**k * mp.expm1(-t * u) ** j * mp.exp(-u * u / 2), [0, 1, 4, mp.inf])


@pytest.mark.parametrize("t", [1e-8, 1e-3, 0.0499, 0.1499, 0.2999, 0.4499, 0.5999, 0.6, 0.6001, 1.0, 3.999, 4.001, 30.0, 1e4])
def test_mills_combinations_against_mpmath(t):
    got = mills_series.combinations(np.array([t]))[0]
    for g, (j, k) in enumerate(mills_series.DIFFERENCES):
        ref = _difference_reference(j, k, t)
        assert abs((got[g] - ref) / ref) < CLOSED_VS_MPMATH, (j, k)


@pytest.mark.parametrize("u", [0.0, 1e-6, 1.0, 3.999, 4.0, 50.0, 1e5])
def test_mills_derivatives_against_mpmath(u):
    got = mills_series.derivatives(np.array([u]))[0]
    for k in range(4):
        ref = (-1) ** k * mp.quad(lambda s: s**k * mp.exp(-mp.mpf(u) * s - s * s / 2), [0, 1, 4, mp.inf])
        assert abs((got[k] - ref) / ref) < CLOSED_VS_MPMATH, k


def test_series_coefficients_are_exact_where_they_cancel():
    # Δ⁴R is O(t⁴): its first four Taylor coefficients are exact zeros, the fifth is 4!·r_4 = 3√(π/2).
    c = mills_series.combination_series(mills_series.difference_terms(4, 0))
    assert np.all(c[:4] == 0.0)
    assert c[4] == pytest.approx(3 * math.sqrt(math.pi / 2), rel=1e-15)
    with pytest.raises(ValueError, match="not O"):
        mills_series.combination_series(mills_series.difference_terms(1, 0), divide_by=2)


def _functionals_reference(act, q):
    """The nine functionals by 40-digit quadrature; q-derivatives by Stein's identities."""
    lam, a, b, k = (mp.mpf(float(v)) for v in (act.lam, act.alpha, act.rate, act.slope))

    def f(x):
        return lam * x if x > 0 else lam * (a * mp.expm1(b * x) + k * x)

    def df(x):
        return lam if x > 0 else lam * (a * b * mp.exp(b * x) + k)

    q = mp.mpf(q)
    s = mp.sqrt(q)

    def mean(g):
        return mp.quad(lambda z: g(s * z, z) * mp.npdf(z), [-mp.inf, -8, -1, 0, 1, 8, mp.inf])

    he2 = lambda z: z * z - 1  # noqa: E731
    he4 = lambda z: z**4 - 6 * z * z + 3  # noqa: E731
    return {
        "Q": mean(lambda x, z: f(x) ** 2),
        "Q4": mean(lambda x, z: f(x) ** 4),
        "dQ": mean(lambda x, z: f(x) ** 2 * he2(z)) / (2 * q),
        "d2Q": mean(lambda x, z: f(x) ** 2 * he4(z)) / (4 * q * q),
        "phi": mean(lambda x, z: df(x) ** 2),
        "dphi": mean(lambda x, z: df(x) ** 2 * he2(z)) / (2 * q),
        "d2phi": mean(lambda x, z: df(x) ** 2 * he4(z)) / (4 * q * q),
        "P": mean(lambda x, z: df(x) ** 2 * x * x),
        "S": mean(lambda x, z: f(x) ** 2 * df(x) ** 2),
    }


@pytest.mark.parametrize("spec", ["selu", "sselu:lambda=1.0,alpha=2.6,beta=0.56", "lselu:epsilon=0.03",
                                  "sselu:lambda=1.0,alpha=0.2,beta=8.0", "elu"])
@pytest.mark.parametrize("q", [1e-6, 0.3, 1.0, 40.0, 1e4])
def test_finite_width_functionals_closed_form_against_mpmath(spec, q):
    """One test per regime: tiny q (series), q near 1, large q (continued fraction), large β."""
    act = mf.activation(spec)
    got = mf.finite_width_moments(act, q)
    for name, ref in _functionals_reference(act, q).items():
        assert abs((got[name] - ref) / ref) < CLOSED_VS_MPMATH, name


@pytest.mark.parametrize("spec", ["selu", "lselu:epsilon=0.03", "elu"])
def test_finite_width_functionals_quadrature_against_closed_forms(spec):
    # Graded quadrature reaches ~1e-14 on Q and φ; the Stein forms of the derivatives lose digits as
    # q -> 0 (1/q, 1/q² amplification of rounding) and Q'' at large q (it decays like q^{-5/2});
    # 1e-11 holds on q in [1e-3, 1e2] (measured worst 2e-13).
    act = mf.activation(spec)
    q = np.geomspace(1e-3, 1e2, 11)
    closed = mf.finite_width_moments(act, q)
    quad = mf.finite_width_moments(act, q, method="quadrature")
    for name in mf.FINITE_WIDTH_QUANTITIES:
        np.testing.assert_allclose(quad[name], closed[name], rtol=1e-11, err_msg=name)


def test_finite_width_functionals_tanh_against_mpmath():
    # tanh has no closed form: the quadrature path against mpmath at moderate q.
    act = mf.activation("tanh")
    for q in (0.1, 1.0, 10.0):
        got = mf.finite_width_moments(act, q)
        s = mp.sqrt(mp.mpf(q))

        def mean(g):
            return mp.quad(lambda z: g(s * z, z) * mp.npdf(z), [-mp.inf, -4, 0, 4, mp.inf])

        ref = {"Q4": mean(lambda x, z: mp.tanh(x) ** 4),
               "S": mean(lambda x, z: mp.tanh(x) ** 2 * mp.sech(x) ** 4),
               "P": mean(lambda x, z: mp.sech(x) ** 4 * x * x),
               "d2phi": mean(lambda x, z: mp.sech(x) ** 4 * (z**4 - 6 * z * z + 3)) / (4 * mp.mpf(q) ** 2)}
        for name, value in ref.items():
            assert abs((got[name] - value) / value) < 1e-11, (q, name)


# ---------------------------------------------------------------------------
# Identities of the closure.
# ---------------------------------------------------------------------------


def test_order_zero_is_the_recursion():
    ds = mf.finite_width("sselu:epsilon=0.03", 20, q0=[0.5, 2.0], widths=128, sigma_w2=1.1, order=0)
    xr.testing.assert_identical(ds, mf.recursion("sselu:epsilon=0.03", 20, q0=[0.5, 2.0], sigma_w2=1.1,
                                                 widths=[128] * 21))


@pytest.mark.parametrize("spec,sigma_w2", [("relu", 2.0), ("leaky_relu:a=0.2", 1.3), ("leaky_relu:a=1", 0.9)])
def test_positively_homogeneous_activations_have_no_correction(spec, sigma_w2):
    """ReLU at σ_w² = 2 (Hanin 2018) and any leaky ReLU: Q is linear and φ constant in q, so every
    correction vanishes exactly (not to rounding: Q'' = φ' = φ'' = P/q² − φ/q = 0)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mf.FiniteWidthWarning)  # marginal fluctuations (σ_w² Q' = 1 for ReLU)
        ds = mf.finite_width(spec, 64, q0=[0.5, 3.0], widths=64, sigma_w2=sigma_w2)
    np.testing.assert_allclose(ds.q_mean, ds.q, rtol=1e-15)
    np.testing.assert_allclose(ds.grad_mean, ds.grad, rtol=1e-13)  # sum of logs against log of products
    for name in ("grad_correction_jensen", "grad_correction_correlation", "grad_correction_reuse"):
        assert np.max(np.abs(ds[name].values)) < 1e-13, name


def test_linear_network_variance_is_exact_to_first_order():
    """f(x) = x: s_l = q0 σ_w^{2l} ∏ χ²_N/N, so Var s_l / E[s_l]² = (1 + 2/N)^l − 1 exactly; the
    closure gives 2l/N, its first order, and E[s_l] without correction."""
    n, depth = 256, 30
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mf.FiniteWidthWarning)  # σ_w² = 1.2 > 1: the fluctuations grow
        ds = mf.finite_width("leaky_relu:a=1", depth, q0=0.7, widths=n, sigma_w2=1.2)
    layers = np.arange(depth + 1)
    relative = ds.s_var.values / ds.q_mean.values**2
    np.testing.assert_allclose(relative, 2 * layers / n, rtol=1e-12, atol=1e-15)
    exact = (1 + 2 / n) ** layers - 1
    assert np.all(np.abs(relative - exact) <= (2 * layers / n) ** 2)  # the O(l²/N²) it leaves out
    np.testing.assert_allclose(ds.q_mean, 0.7 * 1.2**layers, rtol=1e-13)


def test_first_step_is_exact():
    # Layer 1 given the Gaussian input: E s_1 = σ_b² + σ_w² Q(q0), Var s_1 = σ_w⁴ (Q4 − Q²)(q0)/N_0.
    act, q0, n = mf.activation("lselu:epsilon=0.03"), 1.7, 100
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mf.FiniteWidthWarning)  # σ_w² = 1.3 is chaotic; the first step is exact anyway
        ds = mf.finite_width(act, 3, q0=q0, widths=[n, 50, 60, 70], sigma_w2=1.3, sigma_b2=0.1)
    fn = mf.finite_width_moments(act, q0)
    assert float(ds.q_mean[1]) == pytest.approx(0.1 + 1.3 * fn["Q"], rel=1e-15)
    assert float(ds.s_var[1]) == pytest.approx(1.3**2 * (fn["Q4"] - fn["Q"] ** 2) / n, rel=1e-14)


def test_corrections_decompose_exactly_and_shrink_like_one_over_width():
    ds = mf.finite_width("selu", 32, q0=1.0, widths=xr.DataArray([256, 512, 1024, 2048], dims="width"))
    product = ((1 + ds.grad_correction_jensen) * (1 + ds.grad_correction_correlation)
               * (1 + ds.grad_correction_reuse))
    np.testing.assert_allclose(product, ds.grad_mean / ds.grad, rtol=1e-12)
    rel = (ds.grad_mean / ds.grad - 1).isel(layer=0).values
    ratios = rel[:-1] / rel[1:]
    assert np.all(np.abs(ratios - 2) < 0.1)  # first order in 1/N: halves as N doubles (resummed: ~exp)


def test_broadcasting_matches_scalar_calls():
    q0 = xr.DataArray([0.5, 2.0], dims="q0")
    widths = xr.DataArray([64, 512], dims="width")
    grid = mf.finite_width("sselu:epsilon=0.03", 12, q0=q0, widths=widths, sigma_w2=0.95)
    assert grid.q_mean.dims == ("q0", "width", "layer")
    for i, a in enumerate([0.5, 2.0]):
        for j, n in enumerate([64, 512]):
            one = mf.finite_width("sselu:epsilon=0.03", 12, q0=a, widths=n, sigma_w2=0.95)
            for name in ("q_mean", "grad_mean", "s_var", "chi_mean", "saturation", "residual_grad", "valid"):
                np.testing.assert_allclose(grid[name].values[i, j], one[name].values, rtol=1e-14, err_msg=name)


def test_chunks_of_configurations_on_threads_give_the_same_bits(monkeypatch):
    """The compiled forward closure runs over chunks of configurations side by side
    (jit.run_in_column_chunks): the same bits with one thread and with three, diverging and
    vanishing configurations included."""
    from meanfield.gauss import jit

    q0 = np.geomspace(1e-3, 1e3, 150)
    sigma_w2 = xr.DataArray([1e-3, 1.0, 3.0], dims="sigma_w2")
    monkeypatch.setattr(jit, "PARALLEL_POINTS", 0)
    runs = []
    for threads in (1, 3):
        monkeypatch.setattr(jit, "kernel_threads", lambda threads=threads: threads)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", mf.FiniteWidthWarning)
            runs.append(mf.finite_width("lselu:epsilon=0.03", 40, q0=q0, widths=64, sigma_w2=sigma_w2))
    xr.testing.assert_identical(*runs)
    assert not runs[0].valid.all() and runs[0].valid.any()


def test_per_layer_widths_put_one_over_n_on_the_averaging_layer():
    # Only N_k enters the step k -> k+1: changing the output width changes nothing before it.
    a = mf.finite_width("selu", 4, q0=1.0, widths=[100, 200, 300, 400, 500])
    b = mf.finite_width("selu", 4, q0=1.0, widths=[100, 200, 300, 400, 7])
    np.testing.assert_array_equal(a.q_mean.values, b.q_mean.values)
    c = mf.finite_width("selu", 4, q0=1.0, widths=[100, 200, 300, 9, 500])
    np.testing.assert_array_equal(a.s_var.values[:4], c.s_var.values[:4])
    assert c.s_var.values[4] > 10 * a.s_var.values[4]


def test_near_criticality_is_flagged():
    # tanh at σ_w² = 1, σ_b² = 0 is critical: q -> 0 and σ_w² Q'(q) -> 1.
    with pytest.warns(mf.FiniteWidthWarning, match="validity"):
        ds = mf.finite_width("tanh", 200, q0=1.0, widths=256)
    assert not bool(ds.valid)
    assert float(ds.saturation.isel(layer=-2)) > mf.SATURATION_LIMIT
    ok = mf.finite_width("selu", 64, q0=1.0, widths=1024)
    assert bool(ok.valid)
    # L/N too large: dSELU's fluctuations at width 64 (Var s / (E s)^2 = 0.86 by layer 64).
    with pytest.warns(mf.FiniteWidthWarning, match="L/N too large"):
        wide = mf.finite_width("dselu:epsilon=0.017", 64, q0=1.0, widths=xr.DataArray([64, 1024], dims="width"))
    assert wide.valid.values.tolist() == [False, True]


def test_residual_estimates_are_second_order():
    # O(L/N²): a quarter when the width doubles, while the fluctuations saturate.
    ds = mf.finite_width("sselu:epsilon=0.017", 64, q0=1.0, widths=xr.DataArray([512, 1024], dims="width"))
    for name in ("residual_q", "residual_grad"):
        big, small = ds[name].values.max(axis=-1)
        assert 3.6 < big / small < 4.4, name


@pytest.mark.parametrize("kwargs,match", [
    (dict(widths=0), "widths must be integers >= 1"),
    (dict(widths=[64, 64]), "depth \\+ 1"),
    (dict(widths=64, q0=-1.0), "q0 must be finite and > 0"),
    (dict(widths=64, order=3), "order must be 0"),
    (dict(widths=None), "needs widths"),
    (dict(widths=64.5), "integers"),
])
def test_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        mf.finite_width("selu", 8, **kwargs)


# ---------------------------------------------------------------------------
# The exact reduced chain.
# ---------------------------------------------------------------------------


def _tangent_forward(sums_path, widths, sigma_w2, start):
    """docs/finite-width.md §5's forward form, (β, γ) from layer ``start`` (σ_b² = 0), from the raw path."""
    h, x, d = sums_path
    beta, gamma = 0.0, 1.0
    for k in range(start, len(widths) - 1):
        dh = d[k] * h[k]
        x2 = x[k] @ x[k]
        xdh = x[k] @ dh
        sx2d2 = np.sum(x[k] ** 2 * d[k] ** 2)
        beta, gamma = ((beta * xdh**2 + gamma * sx2d2) / x2**2,
                       sigma_w2 / widths[k] * (beta * (dh @ dh - xdh**2 / x2) + gamma * (np.sum(d[k] ** 2) - sx2d2 / x2)))
    hl = h[-1]
    return beta * (hl @ hl) + gamma * widths[-1]


def test_backward_sweep_equals_the_forward_tangent_form():
    """The adjoint sweep gives E‖δ_l‖² for every l at once; §5's forward (β, γ) gives one l per run."""
    act = mf.activation("sselu:epsilon=0.03")
    widths = np.array([30, 40, 35, 50, 45])
    rng = np.random.default_rng(0)
    h, x, d = [], [], []
    s, sums = 1.3, np.empty((5, 6))
    for k, n in enumerate(widths):
        hk = math.sqrt(s) * rng.standard_normal(n)
        xk, dk = act.f(hk), act.df(hk)
        h.append(hk), x.append(xk), d.append(dk)
        sums[k] = (hk @ hk, xk @ xk, np.sum(dk * hk * xk), np.sum(dk**2 * hk**2), np.sum(dk**2 * xk**2), np.sum(dk**2))
        s = 0.9 * (xk @ xk) / n
    grad = np.empty(5)
    reduced.backward_sweep(sums, widths, 0.9, 0.0, grad)
    for start in range(4):
        expected = _tangent_forward((h, x, d), widths, 0.9, start) / widths[-1]
        assert grad[start] == pytest.approx(expected, rel=1e-12)


def test_reduced_chain_is_independent_of_threads_and_chain_count():
    a = sim.reduced_chain("lselu:epsilon=0.03", 10, width=64, chains=5, seed=3, threads=1)
    b = sim.reduced_chain("lselu:epsilon=0.03", 10, width=64, chains=8, seed=3, threads=2)
    np.testing.assert_array_equal(a.q_measured.values, b.q_measured.values[:5])
    np.testing.assert_array_equal(a.grad_measured.values, b.grad_measured.values[:5])
    c = sim.reduced_chain("lselu:epsilon=0.03", 10, width=64, chains=5, seed=4)
    assert not np.array_equal(a.q_measured.values, c.q_measured.values)


def test_compiled_chain_equals_the_numpy_chain():
    # The same draws through the compiled loop (its own exp, reassociated sums) and through numpy.
    act = mf.activation("sselu:epsilon=0.03")
    fast = sim.reduced_chain(act, 12, width=[50, 60] * 6 + [70], chains=3, seed=9, sigma_b2=0.2)
    slow = sim.reduced_chain(mf.custom(act.f, act.df), 12, width=[50, 60] * 6 + [70], chains=3, seed=9,
                             sigma_b2=0.2)
    np.testing.assert_allclose(fast.q_measured, slow.q_measured, rtol=1e-13)
    np.testing.assert_allclose(fast.grad_measured, slow.grad_measured, rtol=1e-12)


def _z_max(a, sa, b, sb):
    """max |a − b| / √(sa² + sb²) over the layers but the output one (the gradient is 1 there by definition)."""
    z = (a - b) / np.sqrt(sa**2 + sb**2)
    return float(np.nanmax(np.abs(z[:-1])))


@pytest.mark.slow
@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("sigma_b2,widths", [(0.0, 96), (0.15, [64, 96, 128, 80, 96, 112, 64, 96, 128, 80, 96])])
def test_reduced_chain_agrees_with_full_networks(spec, sigma_b2, widths):
    """Full networks (batch 64, 24 draws) and reduced chains (6,000) measure the same means, within
    K_SIGMA of their combined standard error at every layer: σ_b² = 0 and σ_b² ≠ 0 with unequal widths."""
    depth = 10
    full = sim.simulate(spec, depth, width=widths, batch=64, seeds=24, q0=1.2, sigma_b2=sigma_b2, seed=5,
                        stat_layers=[], bin_edges=None)
    chain = sim.reduced_chain(spec, depth, width=widths, chains=6000, q0=1.2, sigma_b2=sigma_b2, seed=5)
    for v in ("q", "grad"):
        z = _z_max(full[f"{v}_measured_mean"], full[f"{v}_measured_sem"],
                   chain[f"{v}_measured_mean"], chain[f"{v}_measured_sem"])
        assert z < K_SIGMA, (v, z)


def test_reduced_chain_negative_control_fails():
    """A 3% error in σ_w², applied to the chain and not to the theory, is resolved by 3,000 chains."""
    fw = mf.finite_width("selu", 16, q0=1.0, widths=256)
    wrong = sim.reduced_chain("selu", 16, width=256, chains=3000, q0=1.0, sigma_w2=1.03)
    z = np.abs(wrong.q_measured_mean / fw.q_mean - 1) / (wrong.q_measured_sem / fw.q_mean)
    assert float(z.max()) > K_SIGMA


def test_reduced_chain_bad_input():
    for kwargs, match in [(dict(width=0), "widths must be integers"), (dict(chains=0), "chains must be"),
                          (dict(q0=-1.0), "q0 must be > 0"), (dict(sigma_w2=0.0), "sigma_w2 must be > 0"),
                          (dict(threads=0), "threads must be"), (dict(progress=3), "progress must be")]:
        with pytest.raises(ValueError, match=match):
            sim.reduced_chain("selu", 4, **{"width": 8, "chains": 2, **kwargs})
    with pytest.raises(ValueError, match="fewer chains"):
        sim.reduced_chain("selu", 10**6, width=8, chains=10**7)


def test_reduced_chain_divergence_is_data():
    ds = sim.reduced_chain("selu", 400, width=16, chains=3, sigma_w2=30.0)
    assert np.all(ds.diverged_at.values > 0)
    assert not np.all(np.isfinite(ds.q_measured.values))


# ---------------------------------------------------------------------------
# Orthogonal weights (docs/finite-width.md §6)
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("spec", ["selu", "sselu:epsilon=0.017"])
def test_orthogonal_reduced_chain_agrees_with_full_networks(spec):
    """Full networks with Haar orthogonal weights (batch 256, 40 draws) and orthogonal reduced chains
    (20,000) measure the same q and gradient means, within K_SIGMA combined standard errors."""
    full = sim.simulate(spec, 8, width=32, batch=256, seeds=40, weights="orthogonal", dtype="float64", seed=2,
                        stat_layers=[], bin_edges=None)
    chain = sim.reduced_chain(spec, 8, width=32, chains=20000, weights="orthogonal", seed=2)
    for v in ("q", "grad"):
        z = _z_max(full[f"{v}_measured_mean"], full[f"{v}_measured_sem"],
                   chain[f"{v}_measured_mean"], chain[f"{v}_measured_sem"])
        assert z < K_SIGMA, (v, z)


def test_orthogonal_chain_norms_are_exact():
    # ‖h_{k+1}‖² = σ_w² ‖x_k‖² exactly (h on the sphere of radius σ_w‖x‖): with f the identity,
    # q̂_{l+1} = σ_w² q̂_l to rounding from layer 1 on (the input layer is Gaussian)
    ds = sim.reduced_chain("leaky_relu:a=1", 6, width=16, chains=4, sigma_w2=1.3, weights="orthogonal")
    q = ds.q_measured.values
    np.testing.assert_allclose(q[:, 2:] / q[:, 1:-1], 1.3, rtol=1e-13)


@pytest.mark.parametrize("spec", ["selu", "sselu:epsilon=0.017"])
def test_orthogonal_finite_width_theory_against_orthogonal_chains(spec):
    """E q_l of width-32 orthogonal networks (40,000 chains, depth 24): the orthogonal O(1/N) closure
    within K_SIGMA at every layer, where the infinite-width theory is off by tens of SE and the
    Gaussian weights' closure (the negative control) by more than K_SIGMA."""
    chain = sim.reduced_chain(spec, 24, width=32, chains=40000, weights="orthogonal", seed=4)
    gaussian = mf.finite_width(spec, 24, widths=32)
    sem = chain.q_measured_sem.values[1:]
    for theory, should_pass in ((chain.q_theory_fw.values, True), (chain.q_theory.values, False),
                                (gaussian.q_mean.values, False)):
        z = np.abs(chain.q_measured_mean.values[1:] - theory[1:]) / sem
        assert (z.max() < K_SIGMA) == should_pass, z.max()


def test_orthogonal_finite_width_first_steps_and_gradients():
    act, n = mf.activation("lselu:epsilon=0.03"), 50
    ds = mf.finite_width(act, 3, q0=1.0, widths=n, weights="orthogonal")
    fn = mf.finite_width_moments(act, 1.0)
    # the input layer's step is the Gaussian one (h_0 is iid)
    assert float(ds.q_mean[1]) == pytest.approx(fn["Q"], rel=1e-15)
    assert float(ds.s_var[1]) == pytest.approx((fn["Q4"] - fn["Q"] ** 2) / n, rel=1e-14)
    assert float(ds.q_sample_var[0]) == pytest.approx(2.0 / n, rel=1e-15)
    # the next on the sphere: the mean loses m² Q''(m)/N
    m, v = float(ds.q_mean[1]), float(ds.s_var[1])
    fm = mf.finite_width_moments(act, m)
    assert float(ds.q_mean[2]) == pytest.approx(fm["Q"] + 0.5 * fm["d2Q"] * v - m * m * fm["d2Q"] / n, rel=1e-14)
    assert np.all(np.isnan(ds.grad_mean.values)) and ds.attrs["weights"] == "orthogonal"


@pytest.mark.parametrize("kwargs,match", [
    (dict(sigma_b2=0.1), "derived for sigma_b2 = 0"),
    (dict(widths=[32, 64, 32, 32]), "one width >= 2 at every layer"),
    (dict(weights="haar"), "weights must be one of gaussian, orthogonal"),
])
def test_orthogonal_finite_width_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        mf.finite_width("selu", 3, **{"widths": 32, "weights": "orthogonal", **kwargs})


def test_orthogonal_reduced_chain_bad_input():
    with pytest.raises(ValueError, match="sigma_b2 = 0 and one width >= 2"):
        sim.reduced_chain("selu", 3, width=32, chains=2, sigma_b2=0.1, weights="orthogonal")
    with pytest.raises(ValueError, match="weights must be gaussian or orthogonal"):
        sim.reduced_chain("selu", 3, width=32, chains=2, weights="delta")


# ---------------------------------------------------------------------------
# The forward closure to O(1/N²) (order=2, docs/finite-width.md §3b).
# ---------------------------------------------------------------------------


def _q_function(act, power):
    """q -> E[f(√q z)^power] in mpmath (40 digits), split at the kink."""
    def value(q):
        s = mp.sqrt(q)
        f = lambda x: act.lam * (x if x > 0 else act.alpha * mp.expm1(act.rate * x) + act.slope * x)
        return mp.quad(lambda z: f(s * z) ** power * mp.npdf(z), [-mp.inf, -4, 0, 4, mp.inf])
    return value


@pytest.mark.parametrize("spec", ["selu", "dselu:epsilon=0.017"])
@pytest.mark.parametrize("q", [0.2, 5.0])
def test_second_order_functionals_against_mpmath_derivatives(spec, q):
    """Q‴, Q⁗ (Stein with He₆, He₈), Q4′, Q4″ and Q6 against central differences of 40-digit
    mpmath quadratures, an independent route (step h = 1e-7 q: truncation ~h²/q² = 1e-14, rounding
    1e-40/h⁴).  1e-10: the graded rule's ~1e-14 on the integrand's scale times the Hermite weights'
    cancellation (E|g He₈| / |E g He₈| < 1e3 at these q)."""
    from meanfield.gauss.quadrature import second_order_moments

    act = mf.activation(spec)
    got = second_order_moments(act, q)
    h = mp.mpf(q) * mp.mpf("1e-7")
    f2 = [_q_function(act, 2)(q + j * h) for j in range(-2, 3)]
    f4 = [_q_function(act, 4)(q + j * h) for j in (-1, 0, 1)]
    ref = {"d3Q": (f2[4] - 2 * f2[3] + 2 * f2[1] - f2[0]) / (2 * h**3),
           "d4Q": (f2[4] - 4 * f2[3] + 6 * f2[2] - 4 * f2[1] + f2[0]) / h**4,
           "dQ4": (f4[2] - f4[0]) / (2 * h), "d2Q4": (f4[2] - 2 * f4[1] + f4[0]) / h**2,
           "Q6": _q_function(act, 6)(q)}
    for name, value in ref.items():
        assert abs(float(got[name]) / float(value) - 1) < 1e-10, name


def test_second_order_closure_of_a_linear_network_is_exact():
    """f(x) = x: s_l = q0 σ_w^{2l} ∏ Y_k, Y_k = χ²_N/N iid, so E s_l = q0 σ_w^{2l},
    Var s_l/(E s_l)² = (1 + 2/N)^l − 1 and
    E(s_l − E s_l)³/(E s_l)³ = ((1 + 2/N)(1 + 4/N))^l − 3(1 + 2/N)^l + 2.
    The second-order step is exact for the first two (Q linear, V quadratic), and the third moment's
    closure drops (6μ3 + 24 m v/N)/N: its error falls as N⁻³, 8× per doubling of N to O(1/N)."""
    depth, sigma_w2 = 12, 1.2
    errors = []
    for n in (1000, 2000):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", mf.FiniteWidthWarning)  # σ_w² > 1: the fluctuations grow
            ds = mf.finite_width("leaky_relu:a=1", depth, q0=0.7, widths=n, sigma_w2=sigma_w2, order=2)
        layers = np.arange(depth + 1)
        mean = 0.7 * sigma_w2**layers
        np.testing.assert_allclose(ds.q_mean, mean, rtol=1e-13)
        np.testing.assert_allclose(ds.s_var / mean**2, (1 + 2 / n) ** layers - 1, rtol=1e-12, atol=1e-16)
        third = ((1 + 2 / n) * (1 + 4 / n)) ** layers - 3 * (1 + 2 / n) ** layers + 2
        errors.append(np.abs(ds.s_third.values[1:] / mean[1:] ** 3 - third[1:]).max())
    assert 8 * (1 - 0.1) < errors[0] / errors[1] < 8 * (1 + 0.1)  # 0.1: the O(L/N) next-order share, 6L/N < 0.08


def test_second_order_first_step_is_exact():
    """Layer 1 given the Gaussian input is one mean of N iid f²: E s_1 = σ_b² + σ_w² Q,
    Var s_1 = σ_w⁴ V/N and E(s_1 − E s_1)³ = σ_w⁶ K3/N², K3 = Q6 − 3 Q4 Q + 2Q³ (mpmath)."""
    act, q0, n, w2 = mf.activation("lselu:epsilon=0.03"), 1.7, 100, 1.3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mf.FiniteWidthWarning)
        ds = mf.finite_width(act, 3, q0=q0, widths=[n, 50, 60, 70], sigma_w2=w2, sigma_b2=0.1, order=2)
    big_q, q4, q6 = (_q_function(act, p)(q0) for p in (2, 4, 6))
    assert float(ds.q_mean[1]) == pytest.approx(float(0.1 + w2 * big_q), rel=1e-14)
    assert float(ds.s_var[1]) == pytest.approx(float(w2**2 * (q4 - big_q**2) / n), rel=1e-13)
    assert float(ds.s_third[1]) == pytest.approx(float(w2**3 * (q6 - 3 * q4 * big_q + 2 * big_q**3) / n**2), rel=1e-12)


def test_second_order_broadcasting_matches_scalar_calls():
    act = mf.activation("selu")
    sweep = mf.ExpLinear(name="selu", lam=np.array([act.lam, 1.03 * act.lam]), alpha=act.alpha)
    ds = mf.finite_width(sweep, 6, q0=xr.DataArray([0.5, 2.0], dims="q0"), widths=96, order=2)
    for i, lam in enumerate(sweep.lam):
        for j, q0 in enumerate((0.5, 2.0)):
            one = mf.finite_width(mf.ExpLinear(name="selu", lam=lam, alpha=act.alpha), 6, q0=q0, widths=96, order=2)
            for name in ("q_mean", "s_var", "s_third"):
                np.testing.assert_allclose(ds[name].values[j, i], one[name].values, rtol=1e-14, err_msg=name)
            # |order 2 / order 1 − 1| ~ 1e-3: rounding divided by it
            np.testing.assert_allclose(ds.residual_var.values[j, i], one.residual_var.values, rtol=1e-14 / 1e-3)


def test_second_order_residuals_are_third_order():
    """order 2 leaves O(1/N³) absolute terms: relative to q_mean (O(1)) its residual falls 8x per
    doubling of N, relative to q_sample_var (itself O(1/N)) 4x; order 1's variance residual 2x."""
    widths = xr.DataArray([512, 1024], dims="width")
    second = mf.finite_width("sselu:epsilon=0.017", 32, q0=1.0, widths=widths, order=2)
    first = mf.finite_width("sselu:epsilon=0.017", 32, q0=1.0, widths=widths)
    for ds, name, factor in ((second, "residual_q", 8), (second, "residual_var", 4), (first, "residual_var", 2)):
        big, small = ds[name].values.max(axis=-1)
        assert 0.9 * factor < big / small < 1.1 * factor, name  # 10 %: the O(L/N) share of the next order


def test_second_order_variance_against_reduced_chains():
    """dSELU at N = 256, L = 32 (x_l up to 0.16, inside the validity range): across 40,000 exact
    chains the variance of q̂_l, pooled over layers, matches the order-2 closure within k SE + its
    residual, and the same bound rejects the order-1 closure (6 % low there) and chains with
    λ × 1.02 (the negative control).  k: Bonferroni over the 3 comparisons at the suite's
    false-alarm rate 1e-3."""
    from sim.validate import critical_k, pooled_variance_error

    spec, depth, width, chains = "dselu:epsilon=0.017", 32, 256, 40000
    k = critical_k(3, chains - 1)
    second = mf.finite_width(spec, depth, widths=width, order=2)
    first = mf.finite_width(spec, depth, widths=width)
    assert bool(second.valid) and bool(first.valid)
    residual = float(second.residual_var.values[1:].mean())
    act = mf.activation(spec)
    wrong = mf.ExpLinear(name="dselu", lam=1.02 * act.lam, alpha=act.alpha, rate=act.rate, slope=act.slope)
    q = {name: sim.reduced_chain(network, depth, width=width, chains=chains, seed=11).q_measured.values
         for name, network in (("right", act), ("wrong", wrong))}
    for network, theory, should_pass in (("right", second, True), ("right", first, False), ("wrong", second, False)):
        error, sem = pooled_variance_error(q[network], theory.q_sample_var.values)
        assert (abs(error[0]) <= k * sem[0] + residual) == should_pass, (network, error, sem, residual)


def test_second_order_bad_input():
    with pytest.raises(ValueError, match="order=2 .* derived for Gaussian weights"):
        mf.finite_width("selu", 3, widths=32, weights="orthogonal", order=2)
