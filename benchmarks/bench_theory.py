"""Theory benchmark: functional throughput, Table 5 solve time, vectorised recursions.

    python benchmarks/bench_theory.py

Prints a table with each figure beside a ceiling measured in the same run
(a bare vectorised numpy.exp over the same number of points, timed
alternately with each functional so that machine drift cancels) and the
issue's targets: functionals within 4× of numpy.exp, all of Table 5 in
under 2 s, 1,000 configurations × 1,000 layers forward and backward in
under 1 s.
"""

from __future__ import annotations

import numpy as np

import meanfield as mf
from meanfield import closed_forms, solvers
from meanfield.paper import TABLE5

from _common import interleaved_times, machine, median_time, table

N_POINTS = 1_000_000


def main():
    rng = np.random.default_rng(0)
    q = np.exp(rng.uniform(np.log(1e-3), np.log(1e3), N_POINTS))
    # exp(−q) over the same points: the same range of work without exp's
    # overflow fast path (exp(q) overflows for q > 709).
    def exp():
        return np.exp(-q)

    t_exp = median_time(exp, repeat=15)
    rows = [["numpy.exp (ceiling)", f"{N_POINTS / t_exp / 1e6:.1f} M/s", "1.00x", ""]]
    for spec in ["sselu:epsilon=0.03", "lselu:epsilon=0.03"]:
        act = mf.activation(spec)
        for name, fn in [("phi(q)", mf.jacobian_second_moment), ("Q(q)", mf.second_moment),
                         ("dphi/dq", mf.jacobian_second_moment_derivative)]:
            t, t_ref = interleaved_times(lambda: fn(act, q), exp)
            ratio = t / t_ref
            rows.append([f"{name} {spec}", f"{N_POINTS / t / 1e6:.1f} M/s", f"{ratio:.2f}x",
                         "PASS" if ratio <= 4 else "miss"])
        params = (act.lam, act.alpha, act.rate, act.slope)
        t, t_ref = interleaved_times(lambda: closed_forms.moments(q, *params), exp)
        ratio = t / (5 * t_ref)
        rows.append([f"Q, dQ, phi, dphi, E[f] together {spec}", f"{5 * N_POINTS / t / 1e6:.1f} M/s",
                     f"{ratio:.2f}x per functional", "PASS" if ratio <= 4 else "miss"])

    def table5():
        for row in TABLE5:
            solvers.solve(row.family, row.epsilon, central=row.central)

    t = median_time(table5, repeat=5)
    rows.append([f"solve all of Table 5 ({len(TABLE5)} rows)", f"{t * 1e3:.0f} ms", "target < 2 s",
                 "PASS" if t < 2 else "miss"])

    q0 = np.geomspace(0.01, 10.0, 1000)
    t = median_time(lambda: mf.recursion("sselu:epsilon=0.03", 1000, q0=q0), repeat=3)
    rows.append(["recursion 1,000 configs x 1,000 layers (closed form)", f"{t * 1e3:.0f} ms", "target < 1 s",
                 "PASS" if t < 1 else "miss"])
    t = median_time(lambda: mf.recursion("tanh", 100, q0=q0[:100]), repeat=3)
    rows.append(["recursion 100 configs x 100 layers (tanh, quadrature)", f"{t * 1e3:.0f} ms", "", ""])

    print(f"machine: {machine()}")
    print(table(["figure", "rate / time", "vs ceiling / target", "target"], rows))


if __name__ == "__main__":
    main()
