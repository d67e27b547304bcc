"""``meanfield validate``: the theory checked against itself and the paper.

Each check measures a number, sets it beside a reference with a stated
tolerance, and passes or fails.  Packages built on ``meanfield`` add their
sections through the ``meanfield.checks`` entry-point group: each entry is a
callable ``checks(size) -> list[Check]`` (``sim`` registers the Monte-Carlo
section); this module never imports them by name.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import numpy as np

from .activations.registry import SELU_ALPHA, SELU_LAMBDA
from .activations.solvers import solve
from .paper import values as paper
from .paper.table5 import table5
from .theory import fixed_points
from .theory.definition import self_normalization
from .theory.functionals import (
    jacobian_second_moment,
    jacobian_second_moment_derivative,
    mean_map,
    second_moment,
    second_moment_derivative,
)
from .theory.recursions import recursion


@dataclasses.dataclass(frozen=True)
class Check:
    section: str
    name: str
    value: float
    reference: str
    tolerance: str
    passed: bool
    note: str = ""
    #: the same comparison against the infinite-width theory, where one is made (NaN otherwise)
    infinite_width: float = math.nan


def _rel(a, b):
    return abs(a - b) / abs(b)


def selu_constants():
    sol = solve("selu")
    err = max(_rel(sol.lam, SELU_LAMBDA), _rel(sol.alpha, SELU_ALPHA))
    yield Check("solvers", "SELU constants from eq 4", err, "Klambauer et al. 2017 eq 14", "rel <= 1e-12", err <= 1e-12,
                f"lambda={sol.lam:.16g} alpha={sol.alpha:.16g}")
    eps = float(jacobian_second_moment("selu", 1.0)) - 1.0
    yield Check("solvers", "SELU epsilon = phi(1) - 1", eps, f"{paper.SELU_EPSILON} (Section 3)", "abs <= 5e-5",
                abs(eps - paper.SELU_EPSILON) <= 5e-5)
    back = solve("dselu", eps)
    err = max(_rel(back.lam, SELU_LAMBDA), _rel(back.alpha, SELU_ALPHA))
    yield Check("solvers", "dSELU at SELU's epsilon is SELU", err, "SELU constants", "rel <= 1e-12", err <= 1e-12)


def table5_rows():
    ds = table5()
    for i in range(ds.sizes["row"]):
        r = ds.isel(row=i)
        status = str(r.status.values)
        beta = "" if np.isnan(r.beta) else f" beta={float(r.beta):.2f}/{float(r.paper_beta):.2f}"
        note = (f"lambda={float(r['lambda']):.2f}/{float(r.paper_lambda):.2f} alpha={float(r.alpha):.2f}/"
                f"{float(r.paper_alpha):.2f}{beta} gamma={float(r.gamma1):.4f}/{float(r.paper_gamma1):.3f}")
        if status == "paper not optimal":
            note = f"paper not optimal; ours gamma={float(r.gamma1):.4f} <= paper gamma={float(r.paper_gamma1):.3f}"
        yield Check("table 5", f"{r.label.values} ({r.section.values})", float(r.max_abs_diff),
                    "Table 5 (Appendix D)", "two decimals", status != "MISMATCH", note)


def central_lambda():
    for family, lam in paper.CENTRAL_LAMBDA_EPS003.items():
        ours = solve(family, 0.03, central=True, lambda_min=0.1).lam
        yield Check("solvers", f"{family} central lambda at eps=0.03 (eq 37)", ours, f"{lam} (Appendix A.4)",
                    "abs <= 5e-5", abs(ours - lam) <= 5e-5)


def definition2():
    for spec, expected in [("selu", True), ("dselu:epsilon=0.017", True), ("sselu:epsilon=0.017", True),
                           ("lselu:epsilon=0.017", True), ("sselu:epsilon=0.06,central=true", True),
                           ("relu", False), ("leaky_relu:a=0.1", False), ("tanh", False)]:
        ds = self_normalization(spec)
        ok = bool(ds.satisfied) == expected
        band = (f"fails only on [{float(ds.band_low):.4f}, {float(ds.band_high):.4f}]"
                if bool(ds.satisfied) else f"condition 3 holds on {float(ds.condition3.mean()) * 100:.0f}% of q")
        yield Check("definition 2", f"{spec} {'passes' if expected else 'fails'}", float(ds.epsilon),
                    "epsilon = phi(1) - 1", "verdict", ok, band)


def closed_vs_quadrature():
    q = np.geomspace(1e-3, 1e3, 13)
    funcs = [second_moment, second_moment_derivative, jacobian_second_moment, jacobian_second_moment_derivative]
    for spec in ["selu", "sselu:epsilon=0.03", "lselu:epsilon=0.03", "elu"]:
        worst = 0.0
        for fn in funcs:
            worst = max(worst, float(np.max(np.abs(fn(spec, q, method="quadrature") / fn(spec, q) - 1))))
        m = mean_map(spec, 0.4, q)
        worst = max(worst, float(np.max(np.abs(mean_map(spec, 0.4, q, method="quadrature") / m - 1))))
        yield Check("functionals", f"{spec}: closed form vs quadrature", worst, "graded quadrature",
                    "rel <= 1e-10", worst <= 1e-10, "Q, dQ/dq, phi, dphi/dq, M over q in [1e-3, 1e3]")


def klambauer():
    ds = fixed_points.mu_nu_fixed_point("selu", 0.0, 1.0)
    norm = float(ds.spectral_norm)
    yield Check("fixed points", "SELU (mu, nu) Jacobian spectral norm at (0, 1)", norm,
                f"{paper.KLAMBAUER_SPECTRAL_NORM} (Klambauer et al. 2017)", "abs <= 5e-5",
                abs(norm - paper.KLAMBAUER_SPECTRAL_NORM) <= 5e-5)


def prop31_identity():
    for spec in ["selu", "sselu:epsilon=0.017", "lselu:epsilon=0.017"]:
        ds = recursion(spec, 200, q0=[0.3, 1.0, 3.0])
        err = float(np.max(np.abs(ds.prop31.values - 1)))
        yield Check("recursions", f"{spec}: Prop 3.1 identity over 200 layers", err, "eq 27", "abs <= 1e-10",
                    err <= 1e-10)


def linear_recursion():
    """A linear f gives q' = σ_w² q + σ_b² exactly (leaky_relu with a = 1)."""
    ds = recursion("leaky_relu:a=1", 50, q0=0.7, sigma_w2=1.1, sigma_b2=0.05)
    layers = np.arange(51)
    w = 1.1
    expected = w**layers * 0.7 + 0.05 * (1 - w**layers) / (1 - w)
    err = float(np.max(np.abs(ds.q.values / expected - 1)))
    yield Check("recursions", "linear f: q' = sigma_w2 q + sigma_b2", err, "geometric series", "rel <= 1e-13",
                err <= 1e-13)


THEORY_CHECKS: tuple[Callable, ...] = (
    selu_constants,
    central_lambda,
    table5_rows,
    definition2,
    closed_vs_quadrature,
    klambauer,
    prop31_identity,
    linear_recursion,
)


CHECK_GROUP = "meanfield.checks"
SIZES = ("quick", "default", "full")


def run(monte_carlo: bool = True, mc_size: str = "default", progress=None, seed: int = 1) -> list[Check]:
    """The theory's checks, then those registered under ``meanfield.checks`` (the Monte-Carlo
    section of ``sim``), run at ``mc_size`` with every random draw from ``seed``; a section whose
    dependencies are missing is reported as skipped, with what to install.  ``progress(message)``,
    if given, is called as each part finishes (a section that accepts ``progress`` reports its own
    parts)."""
    import inspect
    from importlib.metadata import entry_points

    if mc_size not in SIZES:
        raise ValueError(f"unknown Monte-Carlo size {mc_size!r}; valid sizes: {', '.join(SIZES)}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    report = progress or (lambda message: None)
    checks = []
    for group in THEORY_CHECKS:
        checks.extend(group())
    report(f"theory: {len(checks)} checks")
    if not monte_carlo:
        return checks
    for entry in sorted(entry_points(group=CHECK_GROUP), key=lambda e: e.name):
        try:
            section = entry.load()
        except ImportError as exc:
            checks.append(Check(entry.name, f"skipped: {exc}", math.nan, "", "", True,
                                "pip install 'meanfield[sim]' to run it"))
            continue
        accepted = inspect.signature(section).parameters
        options = {"progress": report, "seed": seed}
        checks.extend(section(mc_size, **{name: value for name, value in options.items() if name in accepted}))
        report(f"{entry.name}: done")
    return checks


def format_table(checks: list[Check]) -> str:
    """The checks as a table; a column 'N=inf' gives the infinite-width error beside finite-width rows."""
    def number(x, fmt):
        return "" if isinstance(x, float) and math.isnan(x) else format(x, fmt)

    rows = [("section", "check", "value", "N=inf", "reference", "tolerance", "result", "note")]
    for c in checks:
        rows.append((c.section, c.name, number(c.value, ".3g"), number(c.infinite_width, ".2%"), c.reference,
                     c.tolerance, "PASS" if c.passed else "FAIL", c.note))
    cols = len(rows[0]) - 1
    widths = [max(len(r[i]) for r in rows) for i in range(cols)]
    lines = []
    for j, r in enumerate(rows):
        lines.append("  ".join(r[i].ljust(widths[i]) for i in range(cols)) + ("  " + r[cols] if r[cols] else ""))
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    passed = sum(c.passed for c in checks)
    lines.append(f"\n{passed}/{len(checks)} checks passed")
    return "\n".join(lines)
