"""The Monte-Carlo section of ``meanfield validate``: Props A.1, A.2, 3.1, 3.2 and eq 24 against the
finite-width theory, the Jacobian's spectrum, and alpha dropout (docs/validate.md).

Registered under the ``meanfield.checks`` entry point.  Each check compares a measured mean with
the theory and passes when

    |measured / theory − 1| <= k · SE + residual

SE is the standard error measured in the same run, from independent replicas only (network
draws, or reduced chains; never the correlated samples of one batch), and the residual is the
theory's own estimate of the terms it neglects (``residual_q``, ``residual_grad``: O(L/N²)).  k
makes the whole run fail less than once in 1,000 when everything is correct: with n comparisons in
the run (:func:`comparisons`), k is the two-sided 1 − 10⁻³/n quantile (Bonferroni) of Student's t
with the replicas' degrees of freedom (the SE is itself estimated).  No tolerance is fitted.  The
infinite-width error is printed beside each row.

The reduced chains (``sim.reduced_chain``) compare q_l and the gradient norms at every layer.  Full
networks (``sim.simulate``) check every proposition, each row pooled over layers (the mean of
the layers' relative errors, a jackknife SE over draws), with draws added where the scatter is
large until k · SE + residual reaches TARGET_BOUND.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy import stats

import meanfield as mf
from meanfield.validate import Check

from .arguments import positive_int
from .compare import mean_and_sem

SPECS = ("selu", "dselu:epsilon=0.017", "sselu:epsilon=0.017", "lselu:epsilon=0.017")
#: Family-wise false-alarm rate of one validate run (the issue's "less than once in 1,000").
FALSE_ALARM = 1e-3


@dataclasses.dataclass(frozen=True)
class Size:
    width: int
    depth: int
    batch: int
    draws: int
    max_draws: int
    q0s: tuple
    chains: int
    chain_q0s: tuple


#: ``draws`` is the pilot's number of full-network draws, ``max_draws`` the most a row may be given to
#: reach TARGET_BOUND; the reduced chains give thousands of replicas and carry the per-layer checks.
SIZES = {
    "quick": Size(width=256, depth=16, batch=128, draws=8, max_draws=32, q0s=(1.0,), chains=4000,
                  chain_q0s=(1.0,)),
    "default": Size(width=512, depth=32, batch=256, draws=16, max_draws=384, q0s=(1.0,), chains=10000,
                    chain_q0s=(0.3, 1.0, 3.0)),
    "full": Size(width=1024, depth=64, batch=256, draws=16, max_draws=512, q0s=(1.0,), chains=20000,
                 chain_q0s=(0.3, 1.0, 3.0)),
}


def critical_k(comparisons: int, dof: float) -> float:
    """k such that n = ``comparisons`` |t|-scores with ``dof`` degrees of freedom all stay below k
    with probability >= 1 − FALSE_ALARM (Bonferroni; dof = inf: the normal)."""
    p = FALSE_ALARM / (2.0 * comparisons)
    return float(stats.norm.isf(p) if not np.isfinite(dof) else stats.t.isf(p, dof))


def _perturbed(act, network):
    """The activation the simulated networks use: ``network['lam']`` scales λ (a negative control)."""
    if not network or "lam" not in network:
        return act
    return dataclasses.replace(act, lam=act.lam * network["lam"], solution=None, source_spec=None)


def _check(section, name, error, sem, residual, k, infinite, label, where=None):
    """One row: pass when |error| <= k·sem + residual at every entry where they are defined;
    ``where`` names the entries (default: layer 0, 1, ...; a pooled row: the layers it averages)."""
    bound = k * sem + residual
    ok = np.isfinite(error) & np.isfinite(bound)
    if not ok.any():
        return Check(section, name, math.nan, label, "no finite layer", False, "nothing to compare")
    ratio = np.where(ok, np.abs(error) / np.where(bound > 0, bound, np.inf), -np.inf)
    worst = int(np.argmax(ratio))
    passed = bool(np.all(np.abs(error[ok]) <= bound[ok]))
    tolerance = f"<= {k:.2f} SE + residual = {bound[worst]:.3g}"
    inf_text = f"N=inf error {np.nanmax(np.abs(infinite)):.2%}" if infinite is not None else ""
    with np.errstate(all="ignore"):
        z = float(np.nanmax(np.where(ok, np.abs(error) / sem, np.nan)))
    at = where[worst] if where is not None else f"worst layer {worst}"
    note = "; ".join(filter(None, [f"{at} (SE {sem[worst]:.2g}, residual {residual[worst]:.1g})",
                                   f"max |error|/SE {z:.2f}", inf_text]))
    return Check(section, name, float(error[worst]), label, tolerance, passed, note,
                 infinite_width=float(np.nanmax(np.abs(infinite))) if infinite is not None else math.nan)


#: the bound k·SE + residual that the pooled Monte-Carlo rows aim at.  A row whose pilot draws give
#: more gets more draws (up to the size's ``max_draws``); 5 % leaves room for the SE's own scatter
#: from run to run below the 6 % every bound must reach at the default size.
TARGET_BOUND = 0.05
#: how many times a row's draws may be extended towards TARGET_BOUND
EXTENSIONS = 3


def _draws_for_target(rows, n, k_for, max_draws):
    """The fewest draws (at least n, at most ``max_draws``) at which every row's k·SE + residual
    reaches TARGET_BOUND, from its SE at n draws (SE ∝ 1/√draws; k shrinks as the degrees of
    freedom grow); ``max_draws`` where a residual alone reaches the target."""
    def bound(m):
        return max(float(np.max(k_for(m - 1) * sem[np.isfinite(sem)] * math.sqrt(n / m)
                                + np.asarray(residual)[np.isfinite(sem)], initial=0.0))
                   for _, error, sem, residual, *_ in rows)

    if bound(max_draws) > TARGET_BOUND:
        return max_draws
    low, high = n, max_draws  # bound(high) <= target; the bound falls as m grows
    while low < high:
        mid = (low + high) // 2
        low, high = (mid + 1, high) if bound(mid) > TARGET_BOUND else (low, mid)
    return low


def _in_threads(run):
    """``run(first, count)`` with its draws split between torch's threads (each draw comes from
    (seed, draw) alone, so the numbers are those of one call: a test checks it)."""
    import torch

    threads = max(1, torch.get_num_threads())

    def split(first, count):
        if threads == 1 or count < 2 * threads:
            return run(first, count)
        edges = [first + count * i // threads for i in range(threads + 1)]
        with ThreadPoolExecutor(threads) as pool:  # a pool of its own: the engine's is used inside
            parts = list(pool.map(run, edges[:-1], np.diff(edges)))
        return [np.concatenate(arrays) for arrays in zip(*parts)]

    return split


def _with_enough_draws(run, rows_of, pilot, max_draws, k_for):
    """``run(first, count)``: per-draw arrays (draws along axis 0) of draws first .. first + count − 1;
    ``rows_of(*arrays)``: rows (name, error, sem, residual, ...).  The pilot's draws, then as many more
    as :func:`_draws_for_target` asks for, split between threads, asked again with the larger run's
    SE (the pilot's SE is itself uncertain) up to EXTENSIONS times.  Returns the rows and the arrays."""
    run = _in_threads(run)
    arrays = run(0, pilot)
    rows = rows_of(*arrays)
    for _ in range(EXTENSIONS):
        n = len(arrays[0])
        more = _draws_for_target(rows, n, k_for, max_draws) - n
        if more <= 0:
            break
        arrays = [np.concatenate([a, b]) for a, b in zip(arrays, run(n, more))]
        rows = rows_of(*arrays)
    return rows, arrays


def _theory(act, size, q0, sigma_w2=1.0, order=1):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mf.FiniteWidthWarning)  # reported as its own failing row
        return mf.finite_width(act, size.depth, q0=q0, widths=size.width, sigma_w2=sigma_w2, order=order)


def _prop31_product(act, q, g):
    """Prop 3.1 (eq 27): q_l ∏_{i<l}(1 + δ(q_i)) g_l / (q_0 g_0), from per-layer q and gradient norms."""
    with np.errstate(all="ignore"):
        factor = mf.explosion_factor(act, np.where(np.isfinite(q) & (q > 0), q, 1.0))
        log_product = np.concatenate([[0.0], np.cumsum(np.log(factor[:-1]))])
        return q * np.exp(log_product) * g / (q[0] * g[0])


def _prop31(act, q, grad_sq):
    """Prop 3.1 from pooled means of the draws: g_l = Σ‖δ_l‖²/Σ‖δ_L‖²."""
    return _prop31_product(act, q.mean(axis=0), grad_sq.sum(axis=0) / grad_sq[:, -1].sum())


def _prop31_theory(act, fw):
    return _prop31_product(act, fw.q_mean.values, fw.grad_mean.values)


def _jackknife(statistic, *replicas):
    """Delete-one jackknife: the statistic on all replicas and its standard error."""
    n = replicas[0].shape[0]
    full = statistic(*replicas)
    leave_out = np.stack([statistic(*(r[np.arange(n) != s] for r in replicas)) for s in range(n)])
    sem = np.sqrt((n - 1) / n * np.sum(np.square(leave_out - leave_out.mean(axis=0)), axis=0))
    return full, sem


def _pooled_row(name, estimate, theory, infinite, layers, residual, replicas):
    """A row pooled over ``layers`` (a slice): the mean over them of estimate/theory − 1, where
    ``estimate(*replicas)`` gives the per-layer measured values from the draws; its SE by the
    delete-one jackknife over draws, the residual the same mean of the per-layer residuals."""
    def pooled(*r):
        return np.mean(estimate(*r)[layers] / theory[layers] - 1.0, keepdims=True)

    with np.errstate(all="ignore"):
        error, sem = _jackknife(pooled, *replicas)
        infinite_error = np.mean(estimate(*replicas)[layers] / infinite[layers] - 1.0, keepdims=True)
    span = range(len(theory))[layers]
    return (name, error, sem, np.mean(residual[layers], keepdims=True), infinite_error,
            [f"mean over layers {span[0]}-{span[-1]}"])


def _full_network_rows(act, fw, q, grad_sq, chi):
    """Props A.1, A.2, eq 24 and Prop 3.1 from the draws' per-layer q̂_l, ‖δ_l‖² and χ_l, each pooled
    over the layers where it is not exact by construction."""
    depth = q.shape[1] - 1
    r_q, r_g = fw.residual_q.values, fw.residual_grad.values
    replicas = (q, grad_sq, chi)
    return [
        _pooled_row("Prop A.1 q_l", lambda q, g, c: q.mean(axis=0), fw.q_mean.values, fw.q.values,
                    slice(1, depth + 1), r_q, replicas),
        _pooled_row("Prop A.2 gradient norms", lambda q, g, c: g.sum(axis=0) / g[:, -1].sum(), fw.grad_mean.values,
                    fw.grad.values, slice(0, depth), r_g, replicas),
        # χ_l depends on q_{l−1}: its residual is q's one layer down
        _pooled_row("eq 24 chi_l = tr(WW^T) tr(DD^T)", lambda q, g, c: c.mean(axis=0), fw.chi_mean.values,
                    fw.chi.values, slice(1, depth + 1), np.concatenate([[0.0], r_q[:-1]]), replicas),
        _pooled_row("Prop 3.1 (eq 27)", lambda q, g, c: _prop31(act, q, g), _prop31_theory(act, fw),
                    np.ones(depth + 1), slice(1, depth), r_q + r_g + r_g[0], replicas),
    ]


#: the measurements of ``sim.simulate`` that no row here reads (switched off: less work a draw)
UNUSED = ("weight_grad_norm", "mean_gain", "x_batch_correlation")

#: dSELU's outputs have a mean near 0.33 (it is not centred), so a batch's inputs become nearly
#: collinear (batch correlation measured 0.38 at layer 4 and 0.8 at layer 32, N = 512): a draw's
#: batch carries about one input's information, and only draws lower its SE.  A small batch makes
#: each draw 3x cheaper for the same SE.
BATCH_FOR = {"dselu:epsilon=0.017": 16}


def _full_network_checks(spec, size, q0, k_for, network, seed=1):
    from .simulation import simulate

    act = mf.activation(spec)
    fw = _theory(act, size, q0)
    batch = BATCH_FOR.get(spec, size.batch)

    def run(first, count):
        ds = simulate(_perturbed(act, network), depth=size.depth, width=size.width, batch=batch, seeds=count,
                      q0=q0, sigma_w2=(network or {}).get("sigma_w2", 1.0), dtype="float64", stat_layers=[],
                      bin_edges=None, seed=seed, first_draw=first, skip=UNUSED)
        return ds.q_measured.values, ds.grad_sq.values, ds.chi_measured.values

    rows, arrays = _with_enough_draws(run, lambda *r: _full_network_rows(act, fw, *r), size.draws, size.max_draws,
                                      k_for)
    draws = len(arrays[0])
    k = k_for(draws - 1)
    label = f"finite_width, N={size.width} L={size.depth} B={batch} S={draws} q0={q0:g}"
    checks = [_check("monte carlo", f"{name}, {spec}", err, sem, res, k, inf, label, where)
              for name, err, sem, res, inf, where in rows]
    if not bool(fw.valid):
        checks.append(Check("monte carlo", f"finite-width theory valid, {spec}", float(fw.expansion.max()), label,
                            "inside the validity range", False, "the O(1/N) theory does not apply at this size"))
    return checks


#: the negative control of the variance row: the theory's Var q̂_l scaled by this (a finite-width
#: coefficient 20 % off, which every mean-based row passes at the quick size)
VARIANCE_CONTROL_SCALE = 1.2


def pooled_variance_error(q, theory):
    """The mean over layers 1..L of s²_l/theory_l − 1, s²_l the unbiased variance of the chains' q̂_l
    (axis 0), and its standard error by the delta method: each chain's influence
    ((q̂_l − q̄_l)² − s²_l)/theory_l, averaged over the layers, has the statistic's variance times n
    (no Gaussian assumption; the layers' correlation is in it)."""
    n = q.shape[0]
    centred = q[:, 1:] - q[:, 1:].mean(axis=0)
    var = np.sum(centred**2, axis=0) / (n - 1)
    influence = np.mean((centred**2 - var) / theory[1:], axis=1)
    return np.mean(var / theory[1:] - 1.0, keepdims=True), np.atleast_1d(influence.std(ddof=1) / math.sqrt(n))


def variance_check(spec, q, fw, k, label, scale=1.0):
    """The draw-to-draw variance of q̂_l (one input's mean of h_l² over the N units) against the
    theory's ``q_sample_var`` (times ``scale``: the negative control), pooled over layers 1..L
    (layer 0 is the input's own variance).  The bound: k standard errors plus the mean over the
    layers of the theory's ``residual_var``.  ``fw`` is the closure to O(1/N²) (``order=2``): the
    first order gets v_l only to relative O(x_l), 5–7 % for dSELU at the default size, which would
    be most of the bound."""
    theory = scale * fw.q_sample_var.values
    with np.errstate(all="ignore"):
        error, sem = pooled_variance_error(q, theory)
        residual = np.mean(np.broadcast_to(fw.residual_var.values, theory.shape)[1:], keepdims=True)
    return _check("reduced chain", f"Var of q_l across inputs (finite-width Var s), {spec}", error, sem, residual,
                  k, None, label, [f"mean over layers 1-{q.shape[1] - 1}"])


#: dSELU's q̂_l has a heavier tail across chains (its q does not settle: Var s/(E s)² reaches 8 % at
#: layer 32, N = 512), so its variance row's SE is 1.6x SELU's; twice the chains bring its bound
#: from 5.5 % to about 4 % at the default size (a chain costs 0.1 ms there).
CHAINS_FOR = {"dselu:epsilon=0.017": 2}


def _reduced_chain_checks(spec, size, q0, k_for, network, seed=1):
    from .reduced import reduced_chain

    act = mf.activation(spec)
    fw = _theory(act, size, q0)
    chains = size.chains * CHAINS_FOR.get(spec, 1)
    k = k_for(chains - 1)
    ds = reduced_chain(_perturbed(act, network), size.depth, width=size.width, chains=chains, q0=q0,
                       sigma_w2=(network or {}).get("sigma_w2", 1.0), seed=seed)
    label = f"finite_width, N={size.width} L={size.depth}, {chains} chains, q0={q0:g}"
    q = ds.q_measured.values
    second = _theory(act, size, q0, order=2)
    rows = [variance_check(f"{spec}, q0={q0:g}", q, second, k, label + ", order 2")]
    if spec == SPECS[0] and q0 == size.chain_q0s[0] and not network:
        control = variance_check(f"{spec}, q0={q0:g}", q, second, k, label, VARIANCE_CONTROL_SCALE)
        rows.append(Check("reduced chain", f"negative control: Var q_l theory x{VARIANCE_CONTROL_SCALE} is rejected, "
                          f"{spec}", control.value, label, "must fail", not control.passed,
                          f"the scaled theory {'fails' if not control.passed else 'PASSES'} ({control.note})"))
    with np.errstate(all="ignore"):
        return rows + [
            _check("reduced chain", f"Prop A.1 q_l, {spec}, q0={q0:g}", ds.q_measured_mean.values / fw.q_mean.values - 1,
                   ds.q_measured_sem.values / fw.q_mean.values, fw.residual_q.values, k,
                   ds.q_measured_mean.values / fw.q.values - 1, label),
            _check("reduced chain", f"Prop A.2 gradient norms, {spec}, q0={q0:g}",
                   (ds.grad_measured_mean.values / fw.grad_mean.values - 1)[:-1],
                   (ds.grad_measured_sem.values / fw.grad_mean.values)[:-1], fw.residual_grad.values[:-1], k,
                   (ds.grad_measured_mean.values / fw.grad.values - 1)[:-1], label),
        ]


#: Prop 3.2's networks: depth, width as the size's, q0 and m0 of the input, μ_w N_0, batch (a draw's
#: scatter is its realised mean weights', which a batch does not average away)
PROP32 = dict(depth=8, q0=1.5, m0=0.5, mean_gain=0.5, batch=64)


def _prop32_rows(mean_gain, x_mean, h_mean, theory):
    """Eq 36 through the first layer with each draw's realised μ_w N_0, and the mean recursion (eq 36
    with eq 12) at the nominal μ_w, pooled over layers 1..L (``theory``: its E[h_l], one row a draw)."""
    theory = theory[0]
    relative = h_mean[:, 1] / (mean_gain[:, 1] * x_mean[:, 0]) - 1
    rel_mean, rel_sem = mean_and_sem(relative[:, None])
    depth = h_mean.shape[1] - 1
    recursion = _pooled_row("Prop 3.2 with eq 12 recursion (nominal mu_w)", lambda h: h.mean(axis=0), theory, theory,
                            slice(1, depth + 1), np.zeros(depth + 1), (h_mean,))
    return [("Prop 3.2 E[h_1] = mu_w N_0 E[x_0]", rel_mean, rel_sem, np.zeros(1), None, ["layer 1"]), recursion]


def _prop32_checks(size, k_for, seed=1):
    """Prop 3.2 (eq 36) through one weight matrix, with the draws' realised mean weight, and the
    mean recursion (eq 36 with eq 12) at the nominal one; both against the SE of their draws."""
    from .simulation import simulate

    p = PROP32

    def run(first, count):
        ds = simulate("dselu:epsilon=0.017", depth=p["depth"], width=size.width, batch=p["batch"], seeds=count,
                      q0=p["q0"], m0=p["m0"], mean_weight=p["mean_gain"] / size.width, stat_layers=[],
                      bin_edges=None, seed=seed, first_draw=first, skip=("weight_grad_norm", "x_batch_correlation"))
        h = ds.h_mean.values
        return ds.mean_gain.values, ds.x_mean.values, h, np.broadcast_to(ds.h_mean_theory.values, h.shape)

    rows, arrays = _with_enough_draws(run, _prop32_rows, size.draws, size.max_draws, k_for)
    draws = len(arrays[0])
    k = k_for(draws - 1)
    label = f"N={size.width} B={p['batch']} S={draws}"
    references = ("eq 36 (realised mu_w N)", "mean_recursion")
    return [_check("monte carlo", f"{name}, dselu", err, sem, res, k, inf, f"{ref}, {label}", where)
            for (name, err, sem, res, inf, where), ref in zip(rows, references)]


#: the Jacobian's spectrum against networks: (width, depths, pilot draws) by size.  The theory is the
#: N → ∞ limit; a network's moments differ from it by O(L/N) (docs/spectrum.md), which no
#: finite-width theory of the spectrum here predicts.  Its residual is taken as L/N, the order with
#: unit coefficient: through one Gaussian layer with the D's fixed, E m₂ = σ⁴((τD²)² + (1 + 1/N) τD⁴)
#: exactly (Wick; checked by sampling), so nvar is (1 + 1/N) times its limit, 1/N relative a layer.
#: Measured, SELU with Gaussian weights, N = 512, 96 draws: the draws' own nvar +0.24 % ± 0.18 % at
#: L = 4 and +0.97 % ± 0.29 % at L = 8 (L/N = 0.78 % and 1.56 %)
SPECTRUM_SIZES = {"quick": (256, (1, 3), 8), "default": (512, (1, 4), 16), "full": (512, (1, 4, 8), 16)}
SPECTRUM_SPECS = ("selu", "sselu:epsilon=0.017")
SPECTRUM_LEVELS = (0.25, 0.5, 0.75)
#: rows per (activation, weights) and depth: m₁, the normalized variance, the quartiles over m₁
SPECTRUM_ROWS = 2 + len(SPECTRUM_LEVELS)


def _spectrum_run(spec, weights, size, network, seed):
    """``run(first, count)``: the draws' eigenvalues of J Jᵀ (draw, depth, eigenvalue)."""
    from .spectrum import jacobian_spectrum

    width, depths, _ = SPECTRUM_SIZES[size]
    act = _perturbed(mf.activation(spec), network)

    def run(first, count):
        ds = jacobian_spectrum(act, list(depths), width=width, weights=weights, draws=count, first_draw=first,
                               sigma_w2=(network or {}).get("sigma_w2", 1.0), seed=seed, theory=False)
        return (ds.eigenvalues.values,)

    return run


def _spectrum_rows(eig, theory, width):
    """m₁ and the normalized variance of the squared singular values at each depth, and the
    quartiles in units of m₁, each draw's own quartiles over its own m₁ (a draw's scale moves with
    its input's q_l, which the quartiles share: the ratio carries the spectrum's shape, m₁ its
    scale), and nvar within each draw for the same reason (``sim.spectrum.per_draw_nvar``); each a
    mean and SE over draws."""
    from .spectrum import per_draw_nvar

    m1, m2 = eig.mean(axis=2), np.mean(eig * eig, axis=2)
    t_m1 = theory.m1.values
    drift = theory.depth.values / width  # the O(L/N) residual
    with np.errstate(all="ignore"):
        mean, sem = mean_and_sem(m1 / t_m1)
        rows = [("m1", mean - 1, sem, drift)]
        mean, sem = mean_and_sem(per_draw_nvar(m1, m2) / theory.nvar.values)
        rows.append(("nvar", mean - 1, sem, drift))
        per_draw = np.quantile(eig, SPECTRUM_LEVELS, axis=2) / m1  # level, draw, depth
        for j, level in enumerate(SPECTRUM_LEVELS):
            t = theory.quantile_x.sel(quantile=level).values / t_m1
            mean, sem = mean_and_sem(per_draw[j] / t)
            rows.append((f"q{int(100 * level)}/m1", mean - 1, sem, drift))
    return rows


def _spectrum_checks(size, network, k_for, seed=1):
    width, depths, pilot = SPECTRUM_SIZES[size]
    theories = {w: {spec: mf.spectrum(spec, list(depths), weights=w, points=400) for spec in SPECTRUM_SPECS}
                for w in ("gaussian", "orthogonal")}
    checks = []
    control = None
    for spec in SPECTRUM_SPECS:
        for weights in ("gaussian", "orthogonal"):
            rows, (eig,) = _with_enough_draws(_spectrum_run(spec, weights, size, network, seed),
                                              lambda eig: _spectrum_rows(eig, theories[weights][spec], width), pilot,
                                              SIZES[size].max_draws, k_for)
            draws = len(eig)
            label = f"spectrum, N={width} L={','.join(map(str, depths))} S={draws}, {weights} networks"
            k = k_for(draws - 1)
            at = [f"depth {d}" for d in depths]
            checks += [_check("spectrum", f"Jacobian spectrum {name}, {spec}, {weights} theory", err, sem, res, k,
                              None, label, at) for name, err, sem, res in rows]
            if spec == "selu" and weights == "gaussian":  # the same networks against the other theory
                control = [_check("spectrum", name, err, sem, res, k, None, label, at)
                           for name, err, sem, res in _spectrum_rows(eig, theories["orthogonal"][spec], width)]
    rejected = [not c.passed for c in control]
    checks.append(Check("spectrum", "negative control: orthogonal-weight theory against Gaussian networks is "
                        "rejected", float(sum(rejected)), control[0].reference,
                        f"some of its {len(control)} rows must fail", any(rejected),
                        f"{sum(rejected)} of {len(control)} rows fail, as they must"))
    return checks


#: alpha dropout against networks: (width, depth, draws) by size (full: the issue's reference size)
#: alpha dropout against networks: (width, depth, pilot draws) by size (full: the issue's reference size)
DROPOUT_SIZES = {"quick": (256, 8, 8), "default": (512, 16, 8), "full": (1024, 32, 24)}
DROPOUT_CASES = (("selu", "saturation"), ("dselu:epsilon=0.017", "saturation"), ("sselu:epsilon=0.017", "saturation"),
                 ("lselu:epsilon=0.017", "mean"))
DROPOUT_P = 0.1


def _dropout_run(spec, rule, size, seed, q_star, torch_constants=False):
    """``run(first, count)`` for :func:`_with_enough_draws`: the draws' χ (layer-averaged, the masks'
    a·d included) and q (layers L/2..L), started at the fixed point ``q_star``; with
    ``torch_constants``, the layer of torch.nn.AlphaDropout (SELU's constants: the negative control)."""
    from meanfield.theory.dropout import torch_selu_constants

    from .simulation import simulate

    width, depth, _ = DROPOUT_SIZES[size]

    def run(first, count):
        ds = simulate(spec, depth=depth, width=width, batch=64, seeds=count, q0=q_star, dropout=DROPOUT_P,
                      dropped=rule, dropout_constants=torch_selu_constants(DROPOUT_P) if torch_constants else None,
                      stat_layers=[], bin_edges=None, seed=seed, first_draw=first,
                      skip=UNUSED)
        return ds.chi_measured.values[:, 1:].mean(axis=1), ds.q_measured.values[:, depth // 2:].mean(axis=1)

    return run


def _dropout_rows(chi, q, targets, infinite):
    """χ_p per layer and q at the fixed point against the O(1/N) theory ``targets`` (and the
    infinite-width ``infinite`` beside): relative errors of the draws' means and their SE."""
    rows = []
    for name, values, target, inf, where in zip(("chi_p per layer", "q at the fixed point"), (chi, q), targets,
                                                infinite, ("mean over layers 1-L", "mean over layers L/2-L")):
        mean, sem = mean_and_sem(values[:, None] / target)
        rows.append((name, mean - 1, sem, np.zeros(1), values.mean() / inf - 1, [where]))
    return rows


def _dropout_checks(size, k_for, seed=1):
    import torch

    from cuda_kernels import AlphaDropout

    x = torch.randn(512, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(5)
    reference = torch.nn.AlphaDropout(DROPOUT_P).train()(x)
    torch.manual_seed(5)
    ours = AlphaDropout("selu", DROPOUT_P).train()(x)
    gap = float((reference - ours).abs().max())
    checks = [Check("dropout", "SELU alpha dropout equals torch.nn.AlphaDropout (same random state)", gap,
                    "torch.nn.AlphaDropout", "0 (bit for bit)", gap == 0.0, "float64, 512 x 64")]
    width, depth, pilot = DROPOUT_SIZES[size]
    q_stars = {}
    for spec, rule in DROPOUT_CASES:
        theory = mf.alpha_dropout(spec, DROPOUT_P, rule)
        q_stars[spec, rule] = float(theory.q_star)
        # the O(1/N) theory of the networks' size, averaged over the same layers (docs/dropout.md)
        fw = mf.finite_width_dropout(spec, depth, width, DROPOUT_P, rule)
        targets = (float(fw.chi_mean.values[1:].mean()), float(fw.q_mean.values[depth // 2:].mean()))
        infinite = (float(theory.chi_p[0]), float(theory.q_star))
        rows, (chi, _) = _with_enough_draws(_dropout_run(spec, rule, size, seed, infinite[1]),
                                            lambda chi, q: _dropout_rows(chi, q, targets, infinite), pilot,
                                            SIZES[size].max_draws, k_for)
        draws = len(chi)
        label = f"finite_width_dropout, N={width} L={depth} S={draws}, p={DROPOUT_P}"
        checks += [_check("dropout", f"alpha dropout {name}, {spec} ({rule})", err, sem, res, k_for(draws - 1),
                          np.atleast_1d(inf), label, where) for name, err, sem, res, inf, where in rows]
    q_star = q_stars["dselu:epsilon=0.017", "saturation"]
    _, q = _dropout_run("dselu:epsilon=0.017", "saturation", size, seed, q_star, torch_constants=True)(0, pilot)
    mean, sem = mean_and_sem(q[:, None] / q_star)
    k = k_for(pilot - 1)
    rejected = bool(abs(mean[0] - 1) > k * sem[0])
    checks.append(Check("dropout", "negative control: torch's SELU constants on dSELU are rejected (q* moves)",
                        float(mean[0] * q_star), f"N={width} L={depth} S={pilot}, p={DROPOUT_P}",
                        f"|q / q* - 1| > {k:.2f} SE", rejected,
                        f"measured q {mean[0] * q_star:.4g} ± {sem[0] * q_star:.2g} against q* = {q_star:.4g}"))
    return checks


def comparisons(size: str) -> int:
    """The |t|-scores one run at ``size`` compares with k (the Bonferroni count, every section):
    per layer for the reduced chains' q_l and gradient norms, one each for the pooled rows."""
    s = SIZES[size]
    chains = len(SPECS) * len(s.chain_q0s) * ((s.depth + 1) + s.depth + 1)  # q_l, gradient norms, pooled Var
    full = len(SPECS) * len(s.q0s) * 4 + 2  # Props A.1, A.2, eq 24, Prop 3.1; Prop 3.2's two
    spectrum = len(SPECTRUM_SPECS) * 2 * SPECTRUM_ROWS * len(SPECTRUM_SIZES[size][1])
    return chains + full + spectrum + 2 * len(DROPOUT_CASES)


def monte_carlo_checks(size: str = "default", network: dict | None = None, progress=None,
                       seed: int = 1) -> list[Check]:
    """The Monte-Carlo checks at ``size`` ('quick', 'default' or 'full'), every random draw from
    ``seed``; ``progress(message)`` is called as each part finishes.

    ``network`` perturbs the simulated networks, never the theory (negative controls):
    ``{"sigma_w2": 1.01}`` draws the weights with 1% more variance, ``{"lam": 1.02}`` scales λ.
    One k serves the whole run (Bonferroni over :func:`comparisons`, each row at its own degrees
    of freedom), so that a correct theory fails a run less than once in 1/FALSE_ALARM.
    """
    if size not in SIZES:
        raise ValueError(f"unknown Monte-Carlo size {size!r}; valid sizes: {', '.join(SIZES)}")
    unknown = set(network or {}) - {"sigma_w2", "lam"}
    if unknown:
        raise ValueError(f"network perturbations are 'sigma_w2' and 'lam', got {sorted(unknown)}")
    seed = positive_int("seed", seed, minimum=0)
    s = SIZES[size]
    n = comparisons(size)

    def k_for(dof):
        return critical_k(n, dof)

    try:
        import torch  # noqa: F401 - full networks need it; the reduced chains do not
        have_torch = True
    except ImportError:
        have_torch = False
    report = progress or (lambda message: None)
    checks = []
    for spec in SPECS:
        for q0 in s.chain_q0s:
            checks.extend(_reduced_chain_checks(spec, s, q0, k_for, network, seed))
        if have_torch:
            for q0 in s.q0s:
                checks.extend(_full_network_checks(spec, s, q0, k_for, network, seed))
        report(f"monte carlo: {spec}")
    if have_torch:
        checks.extend(_prop32_checks(s, k_for, seed))
        report("monte carlo: Prop 3.2")
        checks.extend(_spectrum_checks(size, network, k_for, seed))
        report("monte carlo: spectrum")
        if not network:  # the dropout rows test the layer, not a perturbed network
            checks.extend(_dropout_checks(size, k_for, seed))
            report("monte carlo: dropout")
    else:
        checks.append(Check("monte carlo", "skipped: full networks need torch", math.nan, "", "", True,
                            "pip install 'meanfield[sim]' to run them"))
    return checks
