"""The theory's subcommands: solve, moments, recursion, finite-width, criticality, fixedpoint,
table5, validate, activations.

Each handler imports the theory it needs when it runs, so ``meanfield --help`` loads none of it.
:func:`register` adds them to the parser, as the packages built on ``meanfield`` add theirs.
"""

from __future__ import annotations

import math

import numpy as np

from .common import (EXIT_FAIL, EXIT_OK, JSON_HELP, SPEC_HELP, UsageError, check_output_path, emit_json, fmt,
                     network_arguments, parse_dropped, parse_floats, parse_widths, save_result, scalar_or_list,
                     table)


def cmd_solve(args):
    from ..theory.functionals import gamma_fixed_point, jacobian_second_moment, second_moment
    from ..activations.resolve import activation

    act = activation(args.spec)
    out = {"activation": act.spec}
    params = getattr(act, "params", {}) or {}
    out.update({k: float(v) for k, v in params.items()})
    out["gamma1"] = float(gamma_fixed_point(act))
    out["phi1"] = float(jacobian_second_moment(act, 1.0))
    out["epsilon"] = out["phi1"] - 1.0
    out["Q1"] = float(second_moment(act, 1.0))
    sol = getattr(act, "solution", None)
    if sol is not None:
        out.update(gamma1=sol.gamma1, epsilon=sol.epsilon, lambda_min=sol.lambda_min, central=sol.central,
                   q_star=sol.q_star, sigma_w2=sol.sigma_w2, residuals=sol.residuals)
        if sol.q_star != 1.0 or sol.sigma_w2 != 1.0:  # the constraints hold at q*, not at q = 1
            out["phi_at_q_star"] = float(jacobian_second_moment(act, sol.q_star))
            out["Q_at_q_star"] = float(second_moment(act, sol.q_star))
    bad = [k for k in ("gamma1", "phi1", "Q1") if not math.isfinite(out[k])]
    if bad:  # a NaN the user did not ask for is an error, not a quiet exit 0
        raise ValueError(f"{act.spec}: the parameters give non-finite moments ({', '.join(f'{k} = {out[k]}' for k in bad)}); "
                         "choose parameters for which f and its Gaussian moments stay finite (|lambda|, alpha, beta "
                         "far below 1e150)")
    if args.json:
        emit_json(out)
        return EXIT_OK
    for key, value in out.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v:.3g}" for k, v in value.items())
        print(f"{key:>12}  {fmt(value)}")
    return EXIT_OK


def cmd_moments(args):
    from ..theory.functionals import moments

    ds = moments(args.spec, parse_floats(args.q, "--q"))
    names = ["Q", "dQ_dq", "phi", "dphi_dq", "explosion_factor", "delta", "gamma", "f_mean"]
    if args.json:
        out = {"activation": ds.attrs["activation"], "q": ds.q.values, "gamma1": ds.attrs["gamma1"]}
        out.update({n: ds[n].values for n in names})
        emit_json(out)
        return EXIT_OK
    print(f"{ds.attrs['activation']}   gamma1 = |phi'(1) + 1| = {ds.attrs['gamma1']:.10g}")
    rows = [[float(ds.q[i])] + [float(ds[n][i]) for n in names] for i in range(ds.sizes["q"])]
    print(table(["q"] + names, rows))
    return EXIT_OK


def _precheck_layers(what, depth, *lists):
    """Refuse a hopeless depth in a fraction of a second, before the theory (and numba) is imported."""
    from ..resources import require_layers

    if depth >= 1:
        require_layers(what, float(np.prod([np.size(v) for v in lists])), depth)


def cmd_recursion(args):
    depth = args.depth
    q0 = scalar_or_list(parse_floats(args.q0, "--q0"))
    w = scalar_or_list(parse_floats(args.sigma_w2, "--sigma-w2"))
    b = scalar_or_list(parse_floats(args.sigma_b2, "--sigma-b2"))
    widths = None if args.widths is None else [int(v) for v in parse_floats(args.widths, "--widths")]
    if args.out:
        check_output_path(args.out, ".nc")
    _precheck_layers("recursion", depth, q0, w, b)
    from ..theory.recursions import recursion

    if args.dropped is not None and args.dropout is None:
        raise UsageError("--dropped applies only with --dropout P")
    ds = recursion(args.spec, depth, q0=q0, sigma_w2=w, sigma_b2=b, widths=widths, dropout=args.dropout,
                   dropped=parse_dropped(args.dropped))
    if args.out:
        save_result(ds, args.out)
    return cmd_recursion_output(ds, args)


def cmd_recursion_output(ds, args):
    """Print a recursion Dataset (a table per configuration, or JSON)."""
    depth = ds.sizes["layer"] - 1
    if args.json:
        out = {"activation": ds.attrs["activation"], "layer": ds.layer.values}
        for name in ("q", "chi", "explosion_factor", "grad", "log_grad", "prop31", "diverged_at", "vanished_at"):
            out[name] = ds[name].values
        for name in ("q0", "sigma_w2", "sigma_b2"):
            out[name] = ds[name].values
        emit_json(out)
        return EXIT_OK
    flat = ds.stack(point=[d for d in ds.q.dims if d != "layer"]) if ds.q.ndim > 1 else ds.expand_dims(point=[0])
    step = max(1, depth // 10)
    layers = sorted(set(range(0, depth + 1, step)) | {depth})
    for p in range(flat.sizes["point"]):
        sub = flat.isel(point=p)
        print(f"{ds.attrs['activation']}  q0={float(sub.q0):g} sigma_w2={float(sub.sigma_w2):g} "
              f"sigma_b2={float(sub.sigma_b2):g}"
              + (f"  diverged at layer {int(sub.diverged_at)}" if int(sub.diverged_at) >= 0 else "")
              + (f"  vanished (q underflowed to 0) at layer {int(sub.vanished_at)}" if int(sub.vanished_at) >= 0 else ""))
        rows = [[l, float(sub.q[l]), float(sub.chi[l]), float(sub.explosion_factor[l]), float(sub.grad[l]),
                 float(sub.prop31[l])] for l in layers]
        print(table(["layer", "q", "chi", "1+delta", "grad (1 at L)", "Prop 3.1"], rows))
    if args.out:
        print(f"wrote {args.out}")
    return EXIT_OK


def cmd_dropout(args):
    from ..theory.dropout import alpha_dropout

    ps = parse_floats(args.p, "--p")
    ds = alpha_dropout(args.spec, ps, parse_dropped(args.dropped), args.sigma_w2, args.sigma_b2)
    names = ("a", "b", "dropped_output", "chi_p", "forward_slope")
    if args.json:
        out = {"activation": ds.attrs["activation"], "rule": ds.attrs["rule"], "p": ds.p.values}
        out.update({n: ds[n].values for n in names})
        out.update({n: float(ds[n]) for n in ("q_star", "mu", "nu", "alpha_prime", "chi_0", "p_crit")})
        emit_json(out)
        return EXIT_OK
    print(f"{ds.attrs['activation']}: alpha dropout, dropped value {ds.attrs['rule']} alpha' = "
          f"{float(ds.alpha_prime):.10g}; at q* = {float(ds.q_star):.10g}: mu = {float(ds.mu):.6g}, "
          f"nu = {float(ds.nu):.6g}, chi without dropout {float(ds.chi_0):.6g}")
    rows = [[float(ds.p[i])] + [float(ds[n][i]) for n in names] for i in range(ds.sizes["p"])]
    print(table(["p", "a", "b", "a alpha' + b", "chi_p(q*)", "dq'/dq at q*"], rows))
    crit = float(ds.p_crit)
    print("p_crit (chi_p = 1): " + (f"{crit:.6g}" if math.isfinite(crit) else
                                     "none in [0, 1) (the mean rule keeps chi; or chi <= 1 already)"))
    return EXIT_OK


def cmd_finite_width(args):
    import warnings

    widths = parse_widths(args.width)
    if args.out:
        check_output_path(args.out, ".nc")
    _precheck_layers("finite_width", args.depth)
    from ..theory.finite_width import FiniteWidthWarning, finite_width

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FiniteWidthWarning)
        ds = finite_width(args.spec, args.depth, q0=args.q0, widths=widths, sigma_w2=args.sigma_w2,
                          sigma_b2=args.sigma_b2, order=args.order)
    if args.order >= 1:
        finite = np.isfinite(ds.q_mean.values) & np.isfinite(ds.grad_mean.values)
        if not finite.all():
            first = int(np.argmax(~finite))
            raise ValueError(f"finite-width: the O(1/N) theory is not finite from layer {first} on (q0 = {args.q0:g}, "
                             f"q_l = {float(ds.q[first]):.3g} there: its functionals overflow); use a smaller --q0 or "
                             "--order 0 for the infinite-width recursion")
    if args.order >= 1 and not bool(ds.valid) and not args.force:
        sat_limit, exp_limit = float(ds.attrs["saturation_limit"]), float(ds.attrs["expansion_limit"])
        measures = [("max sigma_w2 Q'", float(ds.saturation.max()), sat_limit),
                    ("max sigma_w2 Q'^2/phi", float(ds.reuse_saturation.max()), sat_limit),
                    ("max Var s/(E s)^2", float(ds.expansion.max()), exp_limit)]
        failed = [f"{name} = {value:.3f} >= {limit:g}" for name, value, limit in measures if not value < limit]
        raise UsageError(
            f"finite-width: outside the O(1/N) theory's validity range ({'; '.join(failed) or 'a non-finite q_l'}): "
            "use a larger width or a smaller depth, or --force to report it anyway")
    if args.out:
        save_result(ds, args.out)
    if args.order == 0:
        return cmd_recursion_output(ds, args)
    names = ("q", "q_mean", "grad", "grad_mean", "chi_mean", "s_var", "q_sample_var", "grad_correction_jensen",
             "grad_correction_correlation", "grad_correction_reuse", "saturation", "residual_q", "residual_grad",
             "residual_var")
    if args.json:
        out = {"activation": ds.attrs["activation"], "layer": ds.layer.values, "valid": bool(ds.valid)}
        out.update({name: ds[name].values for name in names})
        emit_json(out)
        return EXIT_OK
    step = max(1, args.depth // 16)
    layers = sorted(set(range(0, args.depth + 1, step)) | {args.depth})
    rows = [[l, float(ds.q[l]), float(ds.q_mean[l]), f"{float(ds.q_mean[l] / ds.q[l] - 1):+.3%}",
             float(ds.grad[l]), float(ds.grad_mean[l]), f"{float(ds.grad_mean[l] / ds.grad[l] - 1):+.3%}",
             f"{float(ds.residual_grad[l]):.2g}", f"{math.sqrt(float(ds.q_sample_var[l])) / float(ds.q_mean[l]):.4f}"]
            for l in layers]
    print(f"{ds.attrs['activation']}  width {args.width}  q0={args.q0:g} sigma_w2={args.sigma_w2:g} "
          f"sigma_b2={args.sigma_b2:g}" + ("" if bool(ds.valid) else "  (OUTSIDE the validity range: --force)"))
    print(table(["layer", "q (N=inf)", "E q (N)", "shift", "grad (N=inf)", "E grad (N)", "shift", "residual",
                 f"sd q / E q (O(1/N{'^2' if args.order == 2 else ''}))"], rows))
    g0 = {k: float(ds[f"grad_correction_{k}"][0]) for k in ("jensen", "correlation", "reuse")}
    print(f"gradient correction at layer 0: Jensen {g0['jensen']:+.2%}, forward-backward correlation "
          f"{g0['correlation']:+.2%}, weight reuse {g0['reuse']:+.2%}; max sigma_w2 Q' = "
          f"{float(ds.saturation.max()):.3f}")
    if args.out:
        print(f"wrote {args.out}")
    return EXIT_OK


def cmd_criticality(args):
    from ..theory.fixed_points import critical_sigma_w2

    crit = critical_sigma_w2(args.spec, parse_floats(args.sigma_b2, "--sigma-b2"))
    rows, out = [], {"activation": crit.attrs["activation"], "sigma_b2": [], "sigma_w2": [], "q_star": []}
    for i in range(crit.sizes["sigma_b2"]):
        b, w, q = float(crit.sigma_b2[i]), float(crit.sigma_w2[i]), float(crit.q_star[i])
        rows.append([b, w, q])
        out["sigma_b2"].append(b)
        out["sigma_w2"].append(w)
        out["q_star"].append(q)
    if args.json:
        emit_json(out)
        return EXIT_OK
    print(f"{crit.attrs['activation']}: order-to-chaos boundary chi_1 = sigma_w2 phi(q*) = 1")
    print(table(["sigma_b2", "critical sigma_w2", "q*"], rows))
    for b, w, _ in rows:
        if math.isnan(w):
            print(f"sigma_b2 = {b:g}: no critical sigma_w2: chi_1 - 1 does not change sign for sigma_w2 in "
                  f"[{crit.attrs['bracket_low']:g}, {crit.attrs['bracket_high']:g}] (the order-to-chaos boundary "
                  "does not cross this sigma_b2 there)")
    return EXIT_OK


def cmd_fixedpoint(args):
    from ..theory.fixed_points import mu_nu_fixed_point

    ds = mu_nu_fixed_point(args.spec, args.omega, args.tau, start=(args.mu0, args.nu0))
    out = {
        "activation": ds.attrs["activation"],
        "omega": args.omega,
        "tau": args.tau,
        "mu": float(ds.mu),
        "nu": float(ds.nu),
        "jacobian": ds.jacobian.values,
        "spectral_norm": float(ds.spectral_norm),
        "attracting": bool(ds.attracting),
        "verdict": str(ds.verdict.values),
    }
    if args.json:
        emit_json(out)
        return EXIT_OK
    j = ds.jacobian.values
    print(f"{out['activation']}  omega={args.omega:g} tau={args.tau:g}")
    print(f"fixed point   mu* = {out['mu']:.12g}   nu* = {out['nu']:.12g}")
    print(f"Jacobian      [[{j[0, 0]:.6g}, {j[0, 1]:.6g}], [{j[1, 0]:.6g}, {j[1, 1]:.6g}]]")
    print(f"spectral norm {out['spectral_norm']:.16g}  ({out['verdict']}"
          + (", within rounding of 1" if out["verdict"] == "marginal" else "") + ")")
    return EXIT_OK


def cmd_table5(args):
    from ..paper.table5 import table5

    ds = table5()
    keys = ["label", "section", "epsilon", "paper_lambda", "lambda", "paper_alpha", "alpha", "paper_beta", "beta",
            "paper_gamma1", "gamma1", "paper_gamma_eval", "status"]
    if args.json:
        emit_json({"rows": [{k: ds[k].values[i] for k in keys} for i in range(ds.sizes["row"])]})
        return EXIT_OK
    rows = []
    for i in range(ds.sizes["row"]):
        r = {k: ds[k].values[i] for k in keys}

        def two(v):
            return "" if np.isnan(v) else f"{v:.2f}"

        rows.append([r["label"], r["section"], f"{two(r['paper_lambda'])} / {two(r['lambda'])}",
                     f"{two(r['paper_alpha'])} / {two(r['alpha'])}", f"{two(r['paper_beta'])} / {two(r['beta'])}",
                     f"{r['paper_gamma1']:.3f} / {r['gamma1']:.4f}", r["status"]])
    print("Table 5: paper / ours (gamma_{q=1} = |phi'(1) + 1|)")
    print(table(["activation", "setting", "lambda", "alpha", "beta", "gamma1", "status"], rows))
    flagged = [i for i in range(ds.sizes["row"]) if ds.status.values[i] == "paper not optimal"]
    for i in flagged:
        print(f"note: {ds.label.values[i]}: the printed parameters are not the global optimum of eq 11; "
              f"ours reach gamma = {ds.gamma1.values[i]:.4f}, the paper's gamma = {ds.paper_gamma1.values[i]:.3f} "
              f"(its rounded parameters evaluate to {ds.paper_gamma_eval.values[i]:.4f})")
    return EXIT_OK if "MISMATCH" not in set(ds.status.values) else EXIT_FAIL


def cmd_validate(args):
    from ..validate import format_table, run

    import sys
    import time

    started = time.perf_counter()

    def progress(message):  # a line per part on stderr, so that a long run shows it is alive
        print(f"validate: {message} ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)

    checks = run(monte_carlo=not args.theory_only, mc_size=args.size, progress=progress, seed=args.seed)
    if args.json:
        emit_json({"checks": [c.__dict__ for c in checks], "passed": all(c.passed for c in checks)})
    else:
        print(format_table(checks))
    return EXIT_OK if all(c.passed for c in checks) else EXIT_FAIL


def cmd_activations(args):
    from ..activations.resolve import describe

    print(describe())
    return EXIT_OK


def register(command):
    """Add the theory's subcommands through ``command(name, handler, help) -> parser``."""
    c = command("solve", cmd_solve, "solve or report an activation's parameters, epsilon and gamma_{q=1}")
    c.add_argument("spec", help=SPEC_HELP)
    c.add_argument("--json", action="store_true", help=JSON_HELP)

    c = command("moments", cmd_moments, "Q, phi, dphi/dq, 1+delta_q, gamma_q at the given q")
    c.add_argument("spec", help=SPEC_HELP)
    c.add_argument("--q", required=True, help="comma-separated list of q values (second moments, > 0)")
    c.add_argument("--json", action="store_true", help=JSON_HELP)

    c = command("recursion", cmd_recursion, "forward q_l (Prop A.1), gradient norms (Prop A.2), Prop 3.1")
    c.add_argument("spec", help=SPEC_HELP)
    c.add_argument("--depth", type=int, required=True, help="number of layers L")
    c.add_argument("--q0", default="1", help="input second moment(s), comma-separated (default 1)")
    c.add_argument("--sigma-w2", default="1", help="weight variance gain(s) sigma_w^2, comma-separated (default 1)")
    c.add_argument("--sigma-b2", default="0", help="bias variance(s) sigma_b^2, comma-separated (default 0)")
    c.add_argument("--widths", default=None, help="N_0..N_L, comma-separated, for per-unit gradient norms")
    c.add_argument("--dropout", type=float, default=None, metavar="P",
                   help="alpha dropout after every activation, drop rate P (docs/dropout.md)")
    c.add_argument("--dropped", default=None, help="dropped value: saturation, mean or a number (default: the "
                                                   "activation's; saturation where f saturates, else mean)")
    c.add_argument("--out", default=None, help="write the Dataset to this .nc file")
    c.add_argument("--json", action="store_true", help=JSON_HELP)

    c = command("dropout", cmd_dropout, "alpha dropout's constants a, b and its theory (chi_p, p_crit) for an "
                                         "activation")
    c.add_argument("spec", help=SPEC_HELP)
    c.add_argument("--p", required=True, help="drop rate(s) in [0, 1), comma-separated")
    c.add_argument("--dropped", default=None, help="saturation, mean or a number (default: the activation's)")
    c.add_argument("--sigma-w2", type=float, default=1.0, help="weight variance gain sigma_w^2 (default 1)")
    c.add_argument("--sigma-b2", type=float, default=0.0, help="bias variance sigma_b^2 (default 0)")
    c.add_argument("--json", action="store_true", help=JSON_HELP)

    c = command("finite-width", cmd_finite_width,
                "what a network of width N measures: the O(1/N) corrections to Props A.1 and A.2")
    c.add_argument("spec", help=SPEC_HELP)
    network_arguments(c)
    c.add_argument("--order", type=int, default=1,
                   help="1: O(1/N) theory (default); 2: the forward closure (q, Var s) to O(1/N^2), the gradients "
                        "O(1/N); 0: infinite width")
    c.add_argument("--force", action="store_true",
                   help="report even outside the theory's validity range (near criticality, L/N too large)")
    c.add_argument("--out", default=None, help="write the Dataset to this .nc file")
    c.add_argument("--json", action="store_true", help=JSON_HELP)

    c = command("criticality", cmd_criticality, "critical sigma_w2 (chi_1 = 1) for given sigma_b2")
    c.add_argument("spec", help=SPEC_HELP)
    c.add_argument("--sigma-b2", required=True, help="comma-separated list of sigma_b2 values")
    c.add_argument("--json", action="store_true", help=JSON_HELP)

    c = command("fixedpoint", cmd_fixedpoint, "fixed point of Klambauer's (mu, nu) map, Jacobian, spectral norm")
    c.add_argument("spec", help=SPEC_HELP)
    c.add_argument("--omega", type=float, default=0.0, help="sum of a unit's incoming weights (default 0)")
    c.add_argument("--tau", type=float, default=1.0, help="sum of their squares (default 1)")
    c.add_argument("--mu0", type=float, default=0.0, help="starting mean (default 0)")
    c.add_argument("--nu0", type=float, default=1.0, help="starting variance (default 1)")
    c.add_argument("--json", action="store_true", help=JSON_HELP)

    c = command("table5", cmd_table5, "Table 5 beside the paper's values")
    c.add_argument("--json", action="store_true", help=JSON_HELP)

    c = command("validate", cmd_validate, "check the theory against itself, the paper and Monte-Carlo")
    c.add_argument("--theory-only", action="store_true", help="skip the Monte-Carlo section")
    c.add_argument("--size", choices=("quick", "default", "full"), default="default",
                   help="Monte-Carlo size: quick (under a minute), default (about two minutes on 2 cores), full "
                        "(the reference size, minutes)")
    c.add_argument("--seed", type=int, default=1, help="root seed of every Monte-Carlo draw (default 1); another "
                                                       "seed reruns the same checks on independent draws")
    c.add_argument("--json", action="store_true", help=JSON_HELP)

    command("activations", cmd_activations, "list activation names and their spec keys")
