"""Monte-Carlo engine: theory agreement, reproducibility, memory paths, divergence, bad input."""

import json
import math
import time

import numpy as np
import pytest
import torch
import xarray as xr

import meanfield as mf
import sim
from sim.engine import NetworkConfig, _frobenius_of_outer, derive_seed
from sim.validate import critical_k

SPECS = ["selu", "dselu:epsilon=0.017", "sselu:epsilon=0.017", "lselu:epsilon=0.017"]
SMALL = dict(depth=16, width=256, batch=256, seeds=8, stat_layers=[], bin_edges=None)
#: The agreement tests below make 12 x 2 x 17 comparisons: k from Bonferroni over all of them
#: (a correct engine fails this file less than once in 1,000), Student t with seeds − 1 dof.
K_SMALL = critical_k(12 * 2 * 17, SMALL["seeds"] - 1)


def _worst_excess(ds, v):
    """max over layers of |error vs the finite-width theory| − (k·SE + residual); <= 0 passes."""
    error = np.abs(ds[f"{v}_rel_error_fw"].values)
    bound = K_SMALL * ds[f"{v}_rel_error_sem"].values + ds[f"{v}_theory_fw_residual"].values
    last = -1 if v == "grad" else None  # the gradient is 1 at the output by definition
    return float(np.nanmax((error - bound)[:last]))


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("q0", [0.3, 1.0, 3.0])
def test_theory_agreement_small_network(spec, q0):
    """Props A.1/A.2 against the finite-width theory within k standard errors (from the draws) plus
    the theory's residual estimate, at every layer."""
    ds = sim.simulate(spec, q0=q0, **SMALL)
    assert _worst_excess(ds, "q") <= 0
    assert _worst_excess(ds, "grad") <= 0
    np.testing.assert_allclose(ds.q_measured.values[:, 0], q0, rtol=4 * np.sqrt(2 / (256 * 256)))


def test_wrong_network_fails_the_bound():
    # Negative control: a 5% error in σ_w², applied to the network and not to the theory.
    ds = sim.simulate("selu", q0=1.0, sigma_w2=1.05, **SMALL)
    right = sim.simulate("selu", q0=1.0, **SMALL)
    fw = mf.finite_width("selu", 16, q0=1.0, widths=256)
    error = np.abs(ds.q_measured_mean.values / fw.q_mean.values - 1)
    bound = K_SMALL * right.q_rel_error_sem.values + fw.residual_q.values
    assert np.any(error > bound)


def test_same_seed_is_bit_identical_and_draws_are_independent_of_their_number():
    a = sim.simulate("sselu:epsilon=0.03", depth=6, width=64, batch=32, seeds=2, seed=7)
    b = sim.simulate("sselu:epsilon=0.03", depth=6, width=64, batch=32, seeds=3, seed=7)
    for name in ("q_measured", "grad_sq", "weight_grad_norm", "x_quantiles", "x_histogram"):
        np.testing.assert_array_equal(a[name].values, b[name].values[:2])
    c = sim.simulate("sselu:epsilon=0.03", depth=6, width=64, batch=32, seeds=2, seed=8)
    assert not np.array_equal(a.q_measured.values, c.q_measured.values)


def test_regenerated_weights_equal_kept_weights():
    kept = sim.simulate("lselu:epsilon=0.03", depth=5, width=48, batch=16, seeds=1)
    regenerated = sim.simulate("lselu:epsilon=0.03", depth=5, width=48, batch=16, seeds=1, weight_memory=0)
    for name in ("q_measured", "grad_sq", "weight_grad_norm"):
        np.testing.assert_array_equal(kept[name].values, regenerated[name].values)


def test_weight_gradient_norm_by_gram_and_direct():
    g = torch.Generator().manual_seed(0)
    delta = torch.randn(8, 300, generator=g, dtype=torch.float64)
    x = torch.randn(8, 200, generator=g, dtype=torch.float64)
    direct = float(torch.linalg.matrix_norm(delta.T @ x))
    assert abs(_frobenius_of_outer(delta, x) / direct - 1) < 1e-13  # takes the Gram path (B small)


@pytest.mark.parametrize("batch", [600, 1000])
def test_weight_gradient_norm_from_the_gram_block_triangle(batch):
    """The Gram path in 2 and 3 row blocks (the upper block triangle, off-diagonal blocks twice)
    against δᵀx formed directly, float64: the two sums differ in order only (1e-13 relative)."""
    from sim import engine

    assert engine._gram_blocks(batch) == batch // engine.GRAM_BLOCK
    assert engine._gram_flops(batch, 2000, 1800) < 2.0 * batch * 2000 * 1800  # the Gram path is taken
    g = torch.Generator().manual_seed(1)
    delta = torch.randn(batch, 2000, generator=g, dtype=torch.float64)
    x = torch.randn(batch, 1800, generator=g, dtype=torch.float64).add_(0.5)  # correlated samples
    direct = float(torch.linalg.matrix_norm(delta.T @ x))
    assert abs(_frobenius_of_outer(delta, x) / direct - 1) < 1e-13


def test_weight_gradient_norm_matches_autograd():
    # ‖∂L/∂W_l‖_F for L = Σ <g, h_L> against torch autograd on an explicit network.
    ds = sim.simulate("selu", depth=3, width=20, batch=5, seeds=1, seed=3)
    cfg = NetworkConfig(depth=3, widths=(20,) * 4, batch=5, seed=3)
    from sim.engine import gaussian_cotangent, gaussian_input, weight

    ws = [weight(cfg, 0, l).requires_grad_(True) for l in (1, 2, 3)]
    h = gaussian_input(cfg, 0)
    f = torch.nn.functional.selu
    for w in ws:
        h = f(h) @ w.T
    (h * gaussian_cotangent(cfg, 0)).sum().backward()
    norms = [float(torch.linalg.matrix_norm(w.grad)) for w in ws]
    np.testing.assert_allclose(ds.weight_grad_norm.values[0, 1:], norms, rtol=1e-12)


def test_realised_chi_is_eq24_of_the_draw():
    # χ_l = tr(W_l W_lᵀ) tr(D_{l−1} D_{l−1}ᵀ) rebuilt from the draw's own weights
    # and pre-activations (unequal widths, so the normalising N_l is checked).
    widths = [20, 30, 10, 25]
    ds = sim.simulate("lselu:epsilon=0.03", depth=3, width=widths, batch=5, seeds=1, seed=4)
    cfg = NetworkConfig(depth=3, widths=tuple(widths), batch=5, seed=4)
    from sim.engine import gaussian_input, weight

    act = mf.activation("lselu:epsilon=0.03")
    h = gaussian_input(cfg, 0).numpy()
    chi = []
    for layer in (1, 2, 3):
        w = weight(cfg, 0, layer).numpy()
        chi.append(np.sum(w**2) / widths[layer] * np.mean(act.df(h) ** 2))
        h = act.f(h) @ w.T
    np.testing.assert_allclose(ds.chi_measured.values[0, 1:], chi, rtol=1e-12)
    assert np.isnan(ds.chi_measured.values[0, 0])
    np.testing.assert_allclose(ds.grad_chi_product.values[0], [chi[0] * chi[1] * chi[2], chi[1] * chi[2], chi[2], 1.0],
                               rtol=1e-12)


def test_unequal_widths_use_summed_norms():
    widths = [128, 256, 512, 256, 128]
    ds = sim.simulate("sselu:epsilon=0.03", depth=4, width=widths, batch=256, seeds=4)
    assert list(ds.width.values) == widths
    theory = mf.recursion("sselu:epsilon=0.03", 4, q0=1.0, widths=widths)
    np.testing.assert_allclose(ds.grad_theory.values, theory.grad.values, rtol=1e-14)
    assert float(np.max(np.abs(ds.grad_rel_error))) < 0.1


def test_divergence_is_recorded_not_raised():
    ds = sim.simulate("selu", depth=200, width=64, batch=16, seeds=2, sigma_w2=4.0, dtype="float32",
                      stat_layers=[1, 200])
    assert np.all(ds.diverged.values)
    k = int(ds.diverged_at[0])
    assert 0 < k < 200
    q = ds.q_measured.values[0]
    assert np.all(np.isfinite(q[:k])) and not np.any(np.isfinite(q[k:]))
    # x_l itself may still be finite (float32 overflows in h² first): either
    # NaN or beyond any sane scale, never silently replaced.
    late = ds.x_quantiles.values[:, 1]
    assert np.all(np.isnan(late) | (np.abs(late) > 1) )
    assert np.all(np.isfinite(ds.x_quantiles.values[:, 0]))


def test_prop32_mean_through_weights():
    width = 256
    ds = sim.simulate("dselu:epsilon=0.017", depth=4, width=width, batch=256, seeds=2, q0=1.5, m0=0.5,
                      mean_weight=0.5 / width, stat_layers=[])
    np.testing.assert_allclose(ds.mean_gain_nominal.values[1:], 0.5, rtol=1e-15)
    predicted = ds.mean_gain.values[:, 1] * ds.x_mean.values[:, 0]
    np.testing.assert_allclose(ds.h_mean.values[:, 1], predicted, rtol=0.05)
    assert ds.h_mean_theory.values[0] == 0.5


def test_given_input_and_loss():
    g = torch.Generator().manual_seed(1)
    x = 2.0 * torch.randn(32, 40, generator=g, dtype=torch.float64) + 0.3
    labels = torch.randint(0, 40, (32,), generator=g)
    ds = sim.simulate("selu", depth=3, width=40, batch=32, input=x,
                      loss=lambda h: torch.nn.functional.cross_entropy(h, labels))
    assert abs(float(ds.q_measured[0, 0]) - float((x * x).mean())) < 1e-12
    assert ds.attrs["q0"] == pytest.approx(float((x * x).mean()))
    assert ds.attrs["cotangent"].startswith("gradient")
    assert np.all(np.isfinite(ds.grad_measured.values))


def test_histograms_and_quantiles():
    ds = sim.simulate("lselu:epsilon=0.03", depth=8, width=64, batch=32, seeds=2)
    counts = ds.x_histogram.sum("bin") + ds.x_histogram_below + ds.x_histogram_above
    np.testing.assert_array_equal(counts.values, 64 * 32)
    assert np.all(np.diff(ds.x_quantiles.values, axis=-1) >= 0)
    assert list(ds.stat_layer.values) == [1, 2, 4, 8]


def test_float32_and_netcdf_round_trip(tmp_path):
    ds = sim.simulate("sselu:epsilon=0.03", depth=4, width=32, batch=8, seeds=2, dtype="float32")
    path = tmp_path / "sim.nc"
    ds.to_netcdf(path, engine="netcdf4")
    back = xr.open_dataset(path, engine="netcdf4")
    xr.testing.assert_allclose(back.q_measured, ds.q_measured)
    assert back.attrs["dtype"] == "float32" and back.attrs["activation"] == "sselu:epsilon=0.03"


def test_derived_seeds_are_distinct():
    keys = {(d, l, s) for d in range(4) for l in range(5) for s in range(4)}
    assert len({derive_seed(0, *k) for k in keys}) == len(keys)


@pytest.mark.parametrize("kwargs,match", [
    (dict(depth=0), "depth must be an integer >= 1"),
    (dict(depth=3, width=0), "widths must be integers >= 1"),
    (dict(depth=3, width=[4, 4]), "depth \\+ 1 = 4"),
    (dict(depth=3, q0=-1.0), "q0 must be > 0"),
    (dict(depth=3, q0=0.1, m0=1.0), "q0 must exceed m0"),
    (dict(depth=3, batch=0), "batch must be an integer >= 1"),
    (dict(depth=3, seeds=0), "seeds must be an integer >= 1"),
    (dict(depth=3, dtype="float16"), "dtype must be one of"),
    (dict(depth=3, device="tpu"), "device must be"),
    (dict(depth=3, sigma_w2=float("nan")), "sigma_w2 must be a finite number"),
    (dict(depth=3, quantiles=(0.5, 1.5)), "quantiles must lie in"),
    (dict(depth=3, stat_layers=[9]), "stat_layers must lie in"),
    (dict(depth=3, width=8, batch=4, input=np.zeros((3, 8))), "input must have shape"),
    (dict(depth=100, width=4096, batch=10**7), "GiB"),
])
def test_bad_input_fails_before_any_work(kwargs, match):
    started = time.perf_counter()
    with pytest.raises(ValueError, match=match):
        sim.simulate("selu", **kwargs)
    assert time.perf_counter() - started < 1.0


def test_cuda_request_without_gpu_is_clear():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ValueError, match="no CUDA GPU"):
        sim.simulate("selu", depth=2, device="cuda")


def test_simulate_command(tmp_path, capsys):
    from meanfield.cli import main

    out = tmp_path / "s.nc"
    code = main(["simulate", "--activation", "selu", "--depth", "4", "--width", "32", "--batch", "16", "--seeds",
                 "2", "--quiet", "--out", str(out)])
    assert code == 0 and out.exists()
    assert "vs width N" in capsys.readouterr().out
    code = main(["simulate", "--activation", "selu", "--depth", "4", "--width", "32", "--batch", "16", "--json"])
    assert code == 0 and len(json.loads(capsys.readouterr().out)["grad_chi_rel_error"]) == 5
    code = main(["simulate", "--activation", "selu", "--depth", "0", "--width", "32"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "depth" in err[0]


@pytest.mark.gpu
@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_theory_agreement_on_cuda(spec, dtype, monkeypatch):
    """The same agreement on a GPU, the SELU family through the numba kernels at every size."""
    from cuda_kernels import torch_math

    monkeypatch.setattr(torch_math, "KERNEL_MIN_ELEMENTS", 0)
    ds = sim.simulate(spec, q0=1.0, device="cuda", dtype=dtype, **SMALL)
    assert _worst_excess(ds, "q") <= 0
    assert _worst_excess(ds, "grad") <= 0


@pytest.mark.gpu
def test_cuda_runs_are_reproducible():
    a = sim.simulate("lselu:epsilon=0.03", depth=6, width=128, batch=64, seeds=2, seed=5, device="cuda")
    b = sim.simulate("lselu:epsilon=0.03", depth=6, width=128, batch=64, seeds=2, seed=5, device="cuda")
    np.testing.assert_array_equal(a.q_measured.values, b.q_measured.values)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_weights_drawn_in_blocks_do_not_depend_on_the_thread_count(dtype):
    from sim import engine

    cfg = NetworkConfig(depth=1, widths=(1500, 1400), batch=2, dtype=dtype, seed=5, sigma_w2=2.0, mean_weight=0.01)
    assert len(engine.weight_blocks(1400, 1500)) == 3  # 2.1M numbers: three row blocks
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        serial = engine.weight(cfg, 0, 1)
        torch.set_num_threads(max(2, threads))
        parallel = engine.weight(cfg, 0, 1)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(serial, parallel)
    # each block its own stream: N(μ_w, σ_w²/N_in) in every block
    for lo, hi in engine.weight_blocks(1400, 1500):
        block = parallel[lo:hi].double()
        n = block.numel()
        assert abs(float(block.mean()) - 0.01) < 5 * math.sqrt(2.0 / 1500 / n)
        assert abs(float(block.var()) / (2.0 / 1500) - 1) < 5 * math.sqrt(2.0 / n)
