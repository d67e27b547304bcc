"""Every figure's quick path at a reduced size, checking the science in its data."""

import os

import numpy as np
import pytest
import torch
import xarray as xr

import figures
import meanfield as mf
from figures import sim_figures, theory_figures
from figures.data import load, load_cifar10, write_cifar10_fixture
from figures.training import TrainConfig, train
from meanfield.cli import main

TRAIN = dict(data="synthetic", depth=8, epochs=2, batch=16, quiet=True)


def _files(paths):
    return all(os.path.getsize(p) > 0 for p in paths.values())


def test_fig1_phi_passes_through_one_plus_epsilon(tmp_path):
    paths = figures.make("1", str(tmp_path), quick=True, epsilon=0.03)
    ds = xr.load_dataset(paths["nc"])
    assert _files(paths) and ds.attrs["mode"] == "quick"
    at_one = ds.phi.interp(q=1.0).values
    np.testing.assert_allclose(at_one[np.isfinite(at_one)], 1.03, rtol=1e-4)  # φ(1) = 1 + ε (eq 7)


def test_fig2_rate_is_one_plus_epsilon_at_q1(tmp_path):
    ds = theory_figures.fig2_compute(quick=True)
    np.testing.assert_allclose(ds.explosion_factor.interp(q=1.0).values,
                               1 + np.broadcast_to(ds.epsilon.values, (3, 5)), rtol=1e-6)


def test_fig3_theory_and_measurement_agree(tmp_path):
    paths = figures.make("3", str(tmp_path), quick=True, samples=50_000)
    ds = xr.load_dataset(paths["nc"])
    diff = np.abs(ds.mean_measured - ds.mean_theory)
    assert float((diff / ds.standard_error).max()) < 5  # 5 standard errors of the sample mean
    # Large variance biases the output mean upward (Section 5).
    m0 = ds.mean_theory.sel(mean=0.0, method="nearest")
    assert np.all(np.diff(m0.values, axis=1) > 0)


def test_fig5_lambda_below_one_has_a_more_negative_mean(tmp_path):
    paths = figures.make("5", str(tmp_path), quick=True, depth=16, width=64, batch=32)
    ds = xr.load_dataset(paths["nc"])
    assert list(ds.layer.values) == [1, 4, 16]
    for fam in ("sselu", "lselu"):
        low = [a for a in ds.activation.values if a.startswith(fam) and "lambda_min" in a][0]
        high = [a for a in ds.activation.values if a.startswith(fam) and "lambda_min" not in a][0]
        assert float(ds.lam.sel(activation=low)) < 1 <= float(ds.lam.sel(activation=high)) + 1e-12
        assert np.all(ds.x_mean.sel(activation=low).values < ds.x_mean.sel(activation=high).values)
    np.testing.assert_allclose(ds.density.sum("bin") * 0.05, 1.0, atol=1e-3)  # a density (bin width 0.05)


def test_fig6_peak_rate_falls_with_lambda():
    ds = theory_figures.fig6_compute(quick=True)
    for fam in ds.family.values:
        v = ds.max_explosion_factor.sel(family=fam).values
        v = v[np.isfinite(v)]
        assert v.size >= 5 and np.all(np.diff(v) < 0)  # Appendix A.4: larger λ, smaller max (1 + δ_q)


def test_table5_figure(tmp_path):
    paths = figures.make("table5", str(tmp_path))
    ds = xr.load_dataset(paths["nc"])
    assert sorted(set(ds.status.values)) == ["match", "paper not optimal"]


def test_fig4_records_every_layer_every_iteration(tmp_path):
    paths = figures.make("4", str(tmp_path), quick=True, **TRAIN)
    ds = xr.load_dataset(paths["nc"])
    assert ds.q.dims == ("activation", "iteration", "layer") and ds.sizes["layer"] == 8
    assert ds.sizes["iteration"] == 2 * 4  # 64 synthetic images, batch 16, 2 epochs
    assert np.all(np.isfinite(ds.q.values)) and np.all(ds.q.values > 0)
    assert np.all(np.isfinite(ds.grad_norm.values)) and np.all(ds.grad_norm.values > 0)
    assert ds.attrs["dataset"].startswith("synthetic")
    assert os.path.isdir(tmp_path / "checkpoints")
    # Self-normalization at initialization, the figure's point: before any update (iteration 0)
    # the SELU family keeps E[h²] of the deepest conv layer within a factor 3 of the first
    # (Prop A.1: q_l -> q* = 1); weights 2x too wide, whose q grows ~4x a layer, would reach 4^5 here.
    # (The last layer is the classifier after average pooling, outside Prop A.1.)
    conv = ds.q.isel(iteration=0, layer=slice(0, -1))
    ratio = conv.isel(layer=-1) / conv.isel(layer=0)
    assert np.all(ratio < 3) and np.all(ratio > 1 / 3), ratio.values


def test_fig7_mean_gain_is_finite_and_per_layer(tmp_path):
    paths = figures.make("7", str(tmp_path), quick=True, k_values=(1, 2), **TRAIN)
    ds = xr.load_dataset(paths["nc"])
    assert ds.mean_gain.dims == ("k", "epoch", "layer") and ds.sizes["layer"] == 8 and ds.sizes["epoch"] == 3
    assert np.all(np.isfinite(ds.mean_gain.values))
    # Training moves the mean weights: after-epoch gains differ from the initial ones.
    assert not np.allclose(ds.mean_gain.isel(epoch=0), ds.mean_gain.isel(epoch=-1))
    # At initialization (epoch 0) μ_w N_{l−1} of the conv kernels, N(0, σ_w²/fan-in) with c_out x fan-in
    # entries, has standard deviation σ_w/√c_out (c_out >= 8·k here): within 6 of them it is ~1e-9 likely
    # to fail by chance; a kernel drawn with mean 1/fan-in (Prop 3.2's μ_w N = 1) would sit at 1.
    start = ds.mean_gain.isel(epoch=0).isel(layer=slice(0, -1))  # the conv layers; the last is the classifier
    assert float(np.max(np.abs(start))) < 6.0 / np.sqrt(8)


#: first iterations per activation for the theory-at-initialization test, and the bound: a
#: two-sided t-test with 15 degrees of freedom exceeds 5 with probability 1.6e-4, so the 4 × 13
#: comparisons raise a false alarm with probability < 1 %
INIT_RUNS, INIT_BOUND = 16, 5.0


def _init_ratio_z(activation, sigma_w2=1.0):
    """(mean − 0)/SE over INIT_RUNS seeds of q/q_theory − 1 at iteration 0, per conv layer: each seed
    trains one iteration on digits and is set beside the theory of its own first batch."""
    from sim.conv import cnn_theory

    images = load("digits", None, 16)
    ratios = []
    for seed in range(INIT_RUNS):
        rec = train(TrainConfig(activation, depth=14, epochs=1, batch=32, seed=seed, max_iterations_per_epoch=1),
                    images)
        theory = cnn_theory(activation, rec.init_inputs, 14, sigma_w2=sigma_w2)["q"]
        ratios.append(rec.q[0, :-1] / theory[:-1] - 1)
    ratios = np.array(ratios)
    return ratios.mean(0) / (ratios.std(0, ddof=1) / np.sqrt(INIT_RUNS))


@pytest.mark.parametrize("activation", ["selu", "dselu:epsilon=0.017", "sselu:epsilon=0.017",
                                        "lselu:epsilon=0.017"])
def test_fig4_iteration_zero_sits_on_the_theory(activation):
    assert np.all(np.abs(_init_ratio_z(activation)) < INIT_BOUND)


def test_fig4_theory_of_a_wrong_network_is_rejected():
    # negative control: the theory of weights with sigma_w2 = 1.15 against the networks of sigma_w2 = 1
    assert np.any(np.abs(_init_ratio_z("selu", sigma_w2=1.15)) > INIT_BOUND)


def test_fig4_and_7_datasets_carry_theory_and_settings(tmp_path):
    ds = sim_figures.fig4_compute(quick=True, activations=["selu"], **TRAIN)
    assert ds.q_theory.dims == ("activation", "layer") and np.isnan(ds.q_theory.values[0, -1])
    assert np.all(np.isfinite(ds.q_theory.values[0, :-1])) and np.all(np.isfinite(ds.grad_theory.values[0, :-1]))
    settings = figures.common.settings_of(ds)
    assert settings["train_images"] == 64 and settings["iterations"] == 8 and ds.attrs["meanfield_version"]
    assert "64 training images at 16x16" in ds.attrs["dataset"] and ds.attrs["mode"] == "quick"
    ds7 = sim_figures.fig7_compute(quick=True, k_values=(1,), **TRAIN)
    np.testing.assert_allclose(ds7.mean_contraction, ds7.mean_gain * ds7.attrs["mean_slope"], rtol=1e-15)
    # E f'(h) at the fixed point by quadrature: κ = μ_w N E f' (Prop 3.2 with eq 12 linearised)
    from scipy import integrate, stats

    act, s = mf.activation("dselu:epsilon=0.017"), np.sqrt(ds7.attrs["q_star"])
    halves = [integrate.quad(lambda z: float(act.df(s * z)) * stats.norm.pdf(z), a, b, epsabs=1e-13)[0]
              for a, b in ((-np.inf, 0.0), (0.0, np.inf))]  # f' jumps at 0
    assert ds7.attrs["mean_slope"] == pytest.approx(sum(halves), rel=1e-9)


@pytest.mark.parametrize("argv,match", [
    (["figure", "4", "--mode", "paper"], "--mode paper trains on CIFAR-10: give --data-root"),
    (["figure", "2", "--mode", "cpu"], "--mode applies to the training figures"),
    (["figure", "7", "--quick", "--mode", "cpu"], "contradict"),
    (["figure", "5", "--weights", "delta-orthogonal"], "--weights applies to the training figures"),
])
def test_training_modes_bad_input(capsys, tmp_path, argv, match):
    code = main(argv + ["--out", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and match in err[0]


def test_fig4_with_delta_orthogonal_kernels_draws_their_theory():
    ds = sim_figures.fig4_compute(quick=True, activations=["selu"], weights="delta-orthogonal", **TRAIN)
    gaussian = sim_figures.fig4_compute(quick=True, activations=["selu"], **TRAIN)
    assert figures.common.settings_of(ds)["weights"] == "delta-orthogonal"
    # the same first batch (same seed): through the centre tap alone, no tap falls in the padding,
    # so the second moment stays above the Gaussian kernels' at every conv layer (Q increasing)
    assert np.all(ds.q_theory.values[0, :-1] > gaussian.q_theory.values[0, :-1])


def test_paper_mode_runs_on_a_cifar10_folder(tmp_path):
    write_cifar10_fixture(str(tmp_path / "cifar"), n_per_batch=8)
    ds = sim_figures.fig4_compute(mode="paper", data_root=str(tmp_path / "cifar"), activations=["selu"], depth=8,
                                  epochs=1, quiet=True)
    assert ds.attrs["mode"] == "paper" and ds.attrs["dataset"].startswith("CIFAR-10, 40 training images at 32x32")
    assert figures.common.settings_of(ds)["batch"] == 157


def test_redraw_from_netcdf_without_recomputing(tmp_path, capsys):
    paths = figures.make("2", str(tmp_path / "a"), quick=True)
    out = tmp_path / "b"
    assert main(["figure", "2", "--from", paths["nc"], "--out", str(out)]) == 0
    assert (out / "fig2.png").exists() and not (out / "fig2.nc").exists()


def test_training_resumes_where_it_stopped(tmp_path):
    """Killed after epoch 1, the run resumes from its checkpoint and matches an uninterrupted one."""
    data = load("synthetic", None, 8)
    cfg = TrainConfig("sselu:epsilon=0.03", depth=8, epochs=3, batch=16, seed=3, mixup=0.7, trainable_lambda=True)
    full = train(cfg, data)
    ck = str(tmp_path / "ck")
    assert _train_epochs(cfg, data, ck, stop_after=1) == 1
    resumed = train(cfg, data, checkpoint_dir=ck)
    np.testing.assert_array_equal(resumed.loss, full.loss)
    np.testing.assert_array_equal(resumed.mean_gain, full.mean_gain)
    np.testing.assert_array_equal(resumed.lam, full.lam)


def _train_epochs(cfg, data, ck, stop_after):
    """Run ``cfg`` but stop (as if killed) after ``stop_after`` epochs."""
    class Stop(Exception):
        pass

    per_epoch = -(-len(data.train_y) // cfg.batch)

    def progress(done, total):
        if done == stop_after * per_epoch + 1:
            raise Stop

    try:
        train(cfg, data, checkpoint_dir=ck, progress=progress)
    except Stop:
        pass
    return torch.load(os.path.join(ck, os.listdir(ck)[0]), weights_only=False)["epoch"] + 1


def test_cifar10_loader_reads_the_real_format(tmp_path):
    write_cifar10_fixture(str(tmp_path), n_per_batch=12)
    data = load_cifar10(str(tmp_path), size=16)
    assert data.train_x.shape == (60, 3, 16, 16) and data.test_x.shape == (12, 3, 16, 16)
    assert abs(float(data.train_x.mean())) < 1e-5 and abs(float(data.train_x.pow(2).mean()) - 1) < 0.05
    assert data.name == "CIFAR-10"


@pytest.mark.parametrize("setup,match", [
    (lambda p: None, "is not a folder"),
    (lambda p: os.makedirs(p), "is missing data_batch_1"),
    (lambda p: (write_cifar10_fixture(p), open(os.path.join(p, "cifar-10-batches-py", "test_batch"), "wb").write(b"x")),
     "malformed"),
])
def test_cifar10_loader_errors(tmp_path, setup, match):
    root = str(tmp_path / "cifar")
    setup(root)
    with pytest.raises(ValueError, match=match):
        load_cifar10(root)


def test_digits_default_ships_with_the_package():
    data = load("digits", None, 16)
    assert data.name == "sklearn digits" and data.train_x.shape[1:] == (1, 16, 16)
    assert len(data.train_y) + len(data.test_y) == 1797


@pytest.mark.parametrize("argv,match", [
    (["figure", "9"], "unknown figure '9'"),
    (["figure", "4", "--data-root", "/nonexistent/cifar"], "is not a folder"),
    (["figure", "2", "--from", "/nonexistent.nc"], "no such file"),
    (["figure", "1", "--out", "/nonexistent/dir/out"], "does not exist"),
])
def test_figure_command_bad_input(capsys, argv, match):
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and match in err[0]


def test_train_config_validation():
    with pytest.raises(ValueError, match="depth must be"):
        TrainConfig("selu", depth=0)
    with pytest.raises(ValueError, match="lr must be"):
        TrainConfig("selu", lr=-1.0)
    with pytest.raises(ValueError, match="serial CNN depth must be 6n \\+ 2"):
        sim_figures.fig4_compute(quick=True, data="synthetic", depth=10, epochs=1, quiet=True)


def test_finite_width_figure_shows_the_correction_working(tmp_path):
    """Depth 32, 3,000 chains: at width 64 the infinite-width gradient error (+~35%) is far outside
    the corrected one's error bars, and it falls ~16x from width 64 to 1024: more than 1/√N would
    (4x), far less than 1/N² would (256x)."""
    import figures
    from figures import finite_width_figure as F

    ds = F.compute(quick=True, depth=32, chains=3000, quiet=True)
    for spec in ("selu", "sselu:epsilon=0.017", "lselu:epsilon=0.017"):
        sub = ds.sel(activation=spec)
        inf, fw, sem = (sub[k].values for k in ("grad_error", "grad_error_fw", "grad_sem"))
        assert inf[0] > abs(fw[0]) + 6 * sem[0], spec
        assert 8 < inf[0] / inf[-1] < 64, spec
    paths = figures.common.render("finite-width", ds, F.plot, str(tmp_path))
    assert all(os.path.getsize(p) > 0 for p in paths.values())


def test_spectrum_figure_networks_sit_on_the_theory(tmp_path):
    """Width 96, 4 draws: every activation's measured normalized variance lies within k of its
    standard errors of the theory (k: sim.validate.critical_k, a false alarm below 1e-3 over the 16
    comparisons with the draws' 3 degrees of freedom), and the orthogonal-weight theory is rejected for
    Gaussian networks by the same bound (the negative control); the known cases keep their signature
    (ReLU's atom of ½ at 0)."""
    import figures
    from figures import spectrum_figure as F
    from sim.validate import critical_k

    ds = F.compute(quick=True, depths=(2, 4), width=96, draws=4, quiet=True)
    k = critical_k(16, 3)
    theory = ds.nvar_theory.sel(curve_depth=ds.depth.values).values
    assert np.all(np.abs(ds.nvar_mc.values - theory) <= k * ds.nvar_mc_sem.values)
    wrong = theory[:, ::-1]  # each weight kind's networks against the other kind's theory
    assert not np.all(np.abs(ds.nvar_mc.values - wrong) <= k * ds.nvar_mc_sem.values)
    assert np.all(ds.nvar_theory.sel(weights="gaussian") > ds.nvar_theory.sel(weights="orthogonal"))
    assert float(ds.known_atom_zero[1]) == 0.5 and float(ds.known_atom_zero[0]) == 0.0
    paths = figures.common.render("spectrum", ds, F.plot, str(tmp_path))
    assert all(os.path.getsize(p) > 0 for p in paths.values())


def test_dropout_figure_networks_sit_on_the_theory(tmp_path):
    """Width 128, depth 6, 4 draws: every case's measured per-layer factor within k standard errors
    of χ_p (k: sim.validate.critical_k over the 21 comparisons, 3 degrees of freedom); the negative
    control, each network against another rule's line of the same activation, fails somewhere."""
    import figures
    from figures import dropout_figure as F
    from sim.validate import critical_k

    ds = F.compute(quick=True, width=128, depth=6, draws=4, quiet=True)
    k = critical_k(21, 3)
    theory = ds.chi_theory.interp(p_line=ds.p).values
    assert np.all(np.abs(ds.chi_measured.values - theory) <= k * ds.chi_sem.values)
    swapped = theory[[1, 0, 3, 2, 5, 4, 6]]  # saturation <-> mean for SELU, dSELU, sSELU
    assert not np.all(np.abs(ds.chi_measured.values - swapped) <= k * ds.chi_sem.values)
    paths = figures.common.render("dropout", ds, F.plot, str(tmp_path))
    assert all(os.path.getsize(p) > 0 for p in paths.values())


def test_cifar_shaped_has_cifar10s_shape_and_correlated_pixels():
    data = load("cifar-shaped", None, 16)
    assert data.train_x.shape == (5000, 3, 16, 16) and data.num_classes == 10 and len(data.test_y) == 1000
    x = data.train_x.double()
    np.testing.assert_allclose(x.mean((0, 2, 3)), 0.0, atol=1e-6)
    np.testing.assert_allclose(x.var((0, 2, 3)), 1.0, rtol=1e-3)
    # neighbouring pixels correlate as in natural images (white noise: 0; CIFAR-10 about 0.9)
    assert float((x[..., 1:] * x[..., :-1]).mean()) > 0.5


def test_ablation_summaries():
    from figures.ablation import fig4_summary, fig7_summary

    q = np.ones((2, 5, 4))
    q[1] = 10.0
    grad = np.ones((2, 5, 4))
    grad[1, :, :2] = 100.0  # activation 1: two layers 100x the others, constant over iterations
    ds = xr.Dataset({"q": (("activation", "iteration", "layer"), q),
                     "grad_norm": (("activation", "iteration", "layer"), grad),
                     "loss": (("activation", "iteration"), np.array([[1.0] * 5, [1.0, 1.0, np.nan, np.inf, 1.0]]))})
    s = fig4_summary(ds)  # conv layers: the first 3
    np.testing.assert_allclose(s["q_dist"], [0.0, 1.0])
    np.testing.assert_allclose(s["grad_flat"], [0.0, np.std([2.0, 2.0, 0.0])])
    np.testing.assert_allclose(s["grad_conc"], [0.0, 0.0])
    assert s["diverged_at"] == [-1, 2]
    gains = np.zeros((2, 3, 4))
    gains[:, -1, :3] = [[0.1, 0.2, 0.3], [1.0, 1.0, 1.0]]
    s7 = fig7_summary(xr.Dataset({"mean_gain": (("k", "epoch", "layer"), gains)}))
    np.testing.assert_allclose(s7["gain"], [0.2, 1.0])


def test_trainer_equals_a_plain_torch_loop():
    """The ablation's 'code defects' row: train() against the loop a user writes from Appendix C
    (SGD momentum 0.9, weight decay 5e-4, gradients clipped to [-2, 2], cross-entropy), same
    initial weights and batches: the same losses, bit for bit."""
    from sim.conv import SerialCNN

    images = load("digits", None, 8)
    cfg = TrainConfig("sselu:epsilon=0.017", depth=8, epochs=1, batch=32, lr=0.05, seed=3, max_iterations_per_epoch=5)
    rec = train(cfg, images)
    gen = torch.Generator().manual_seed(cfg.seed)
    model = SerialCNN(cfg.activation, 8, in_channels=1, num_classes=10)
    model.reset_parameters(gen)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    perm = torch.randperm(len(images.train_y), generator=gen)
    losses = []
    for it in range(5):
        idx = perm[it * 32:(it + 1) * 32]
        loss = torch.nn.functional.cross_entropy(model(images.train_x[idx]), images.train_y[idx])
        opt.zero_grad()
        loss.backward()
        for p in model.parameters():
            p.grad.clamp_(-2.0, 2.0)
        opt.step()
        losses.append(float(loss.detach()))
    np.testing.assert_array_equal(rec.loss, losses)  # the same operations in the same order
    assert rec.loss[0] != rec.loss[-1]
