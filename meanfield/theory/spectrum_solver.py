"""The compiled part of the spectrum's density: S-transforms multiplied and inverted, point by point.

For J = W_L D_{L−1} ⋯ W_1 D_0 the S-transforms of the free factors multiply (docs/spectrum.md §3):
with M(x) = Σ_k m_k x^{−k} the moment generating function of a law and M⁻¹ its inverse,
S(z) = (1 + z)/(z M⁻¹(z)), S_{WWᵀ} = 1/σ_w² (orthogonal) or 1/(σ_w²(1 + z)) (Gaussian), and
S_{D_l²}(z) = (1 + z)/(z y_l(z)) with y_l = M_l⁻¹(z) the inverse of layer l's law of f'(h_l)².
So x = M_J⁻¹(z) is

    x(z) = σ_w^{2L} (1 + z)^e z^{L−1} Π_l y_l(z),   e = 1 (Gaussian), 1 − L (orthogonal),

and for a point x of the spectrum, z = M_J(x + i0) solves log x(z) = log x together with
M_l(y_l) = z for every layer: one Newton iteration updates z and every y_l at once (eliminating
δy_l = (δz − r_l)/M_l' from the linearised equations, r_l = M_l(y_l) − z).  Then
G(x) = (1 + z)/x and the density of log x is −Im z/π.

Layers with the same law (the same q_l) enter once with their multiplicity.  Everything is in
logarithms: x may be e^{−1000} (deep networks with Gaussian weights) without underflow.
"""

from __future__ import annotations

import cmath
import math

import numpy as np

from ..gauss.cauchy import moment_map
from ..gauss.jit import kernel
from ..gauss.mills import _COMPILE

#: Newton stops when the relative step in z is below this (a few hundred ulps: z carries the density)
STEP_TOL = 1e-13
#: ... and every y_l's relative step below this: y_l is known only to the absolute rounding of
#: M_l(y_l) ≈ −1 divided by |y_l M_l'| (deep in the lower tail ~1e-13), and enters z through M_l
Y_STEP_TOL = 1e-9
#: ... or when the step stops shrinking (rounding) below this
FLOOR_TOL = 1e-9
#: ... or when log x(z) − log w and every M_l(y_l) − z are below this (a few hundred ulps)
RESIDUAL_TOL = 1e-13
#: the relative rounding of M_l(y) near the support, where it is a difference of O(1) terms (16 ulps)
ROUNDING = 16 * 2.220446049250313e-16
#: Newton iterations before a step is declared failed (and halved, or η-continued)
MAX_NEWTON = 60
#: ... below a lower edge of the support, where a failure only confirms that there is no density
#: (the point is not retried): a well-posed step from a point outside the support converges
#: quadratically in a few iterations, while z → −1 to rounding there makes a bad one crawl (each
#: iteration moves 1 + z by the trust region's factor, from ~1e-16 towards 1)
OUTSIDE_NEWTON = 12
#: below a lower edge, once |1 + z| is under this the point is not solved: 1 + z = x G(x) =
#: ∫ x/(x − λ) dρ(λ) is at least of the order of the mass near and below x, so at most this much
#: (far below the grid's TAIL_MASS) is left there; and z ≈ −1 to rounding leaves Newton nothing to
#: work with
NEGLIGIBLE_MASS = 1e-12
#: a Newton step changes z and each y_l by at most this fraction of its size (a trust region that
#: keeps the iterates on their branch)
MAX_RELATIVE_STEP = 0.5
#: a density (−Im z/π) below this fraction of |z|, reached in one step from above it, is checked
#: by continuation in η (a jump of branch)
BRANCH_JUMP = 1e-12
#: Newton iterations from the polynomial guess (:func:`_predicted`) before the point is left to the
#: plain continuation: a good guess converges quadratically in 2-3
PREDICTED_NEWTON = 6
#: the lowest height, relative to x, of :func:`_detour`'s path over the axis
DETOUR_MIN = 1e-3
#: halvings of a failed continuation step before the point is given up as not converged
MAX_HALVINGS = 12
#: a Newton step goes at most this fraction of the way to the real axis: z = M_J(w) lies in the
#: lower half-plane for w in the upper one, and each y_l = M_l⁻¹(z) in the upper (M_l maps C⁺ to
#: C⁻); a step across the axis lands on the other boundary value (Plemelj) of a Cauchy transform,
#: from where Newton can cycle between the two sides without converging
TO_AXIS = 0.99
#: Newton gives up when its residual has not fallen below STALL_FACTOR times its best for
#: STALL_ITERATIONS iterations and is frozen: equal, to FROZEN_REL, to its value two iterations
#: before (a fixed point or a 2-cycle of the iteration that is not a root: below a lower edge of
#: the support, where z → −1 and y_l → 0 to rounding and the equations degenerate, or a cycle
#: across the real axis); the caller then halves its step or gives the point up, as after
#: MAX_NEWTON iterations, without spending them.  A residual that still moves (slow, linear
#: convergence next to a singular point of the density) keeps its MAX_NEWTON iterations.
STALL_ITERATIONS = 6
STALL_FACTOR = 0.99
FROZEN_REL = 1e-6


@kernel(**_COMPILE)
def _newton(logw, z, y, iterations, mult, n_layers, e, log_gain, top, kind, par, q, dmult, npan, ends, h, wb, wg, t,
            nat, at_t, at_m):
    """Joint Newton on (z, y_0..y_{G−1}) for log x(z) = logw, at most ``iterations`` steps; y is
    updated in place.  Returns (z, converged)."""
    G = y.shape[0]
    s = np.empty(G, dtype=np.complex128)
    r = np.empty(G, dtype=np.complex128)
    mp = np.empty(G, dtype=np.complex128)
    dy = np.empty(G, dtype=np.complex128)
    last = math.inf
    best = math.inf
    since_best = 0
    residual_1 = math.inf  # the residual one and two iterations before
    residual_2 = math.inf
    frozen = False
    for it in range(iterations):
        if z == 0 or 1.0 + z == 0:
            return z, False
        F = log_gain + e * cmath.log(1.0 + z) + (n_layers - 1) * cmath.log(z) - logw
        D = e / (1.0 + z) + (n_layers - 1) / z
        acc = 0j
        for l in range(G):
            M, Mp = moment_map(y[l], l, top[l], kind, par, q, dmult, npan, ends, h, wb, wg, t, nat, at_t, at_m)
            if y[l] == 0 or Mp == 0 or not (cmath.isfinite(M) and cmath.isfinite(Mp)):
                return z, False
            F += mult[l] * cmath.log(y[l])
            r[l] = M - z
            mp[l] = Mp
            s[l] = mult[l] / (y[l] * Mp)
            D += s[l]
            acc += s[l] * r[l]
        # log x(z) = logw holds modulo 2πi: the branch of each logarithm is immaterial
        F = complex(F.real, F.imag - 2.0 * math.pi * round(F.imag / (2.0 * math.pi)))
        # the equations hold to rounding: done, however ill-conditioned z is (near an edge of the
        # support two roots meet and z is determined only to ~√ε there)
        settled = abs(F) <= RESIDUAL_TOL
        for l in range(G):
            if abs(r[l]) > RESIDUAL_TOL * (1.0 + abs(z)):
                settled = False
        if settled and it > 0:
            return z, True
        residual = abs(F)
        for l in range(G):
            residual += abs(r[l])
        if residual < STALL_FACTOR * best:
            best = residual
            since_best = 0
        else:
            since_best += 1
        frozen = abs(residual - residual_2) <= FROZEN_REL * residual
        residual_2 = residual_1
        residual_1 = residual
        if D == 0:
            return z, False
        dz = (-F + acc) / D
        if not (cmath.isfinite(dz)):
            return z, False
        scale = 1.0
        if abs(dz) > MAX_RELATIVE_STEP * abs(z):
            scale = MAX_RELATIVE_STEP * abs(z) / abs(dz)
        if abs(1.0 + z) > 0 and abs(dz) > MAX_RELATIVE_STEP * abs(1.0 + z) and e != 0:
            scale = min(scale, MAX_RELATIVE_STEP * abs(1.0 + z) / abs(dz))
        if z.imag < 0.0 and dz.imag > 0.0 and z.imag + scale * dz.imag >= 0.0:
            scale = TO_AXIS * -z.imag / dz.imag
        worst = 0.0
        for l in range(G):
            dy[l] = (dz - r[l]) / mp[l]
            rel = abs(dy[l]) / abs(y[l])
            # y_l is known to the rounding of M_l (~ε (1 + |z|)) over its slope, and no better
            floor = ROUNDING * (1.0 + abs(z)) / abs(mp[l] * y[l])
            if rel > max(Y_STEP_TOL, floor) and rel > worst:
                worst = rel
            if rel * scale > MAX_RELATIVE_STEP:
                scale = MAX_RELATIVE_STEP / rel
            if y[l].imag > 0.0 and dy[l].imag < 0.0 and y[l].imag + scale * dy[l].imag <= 0.0:
                scale = TO_AXIS * y[l].imag / -dy[l].imag
        for l in range(G):
            y[l] += scale * dy[l]
        z += scale * dz
        if scale == 1.0 and abs(dz) <= STEP_TOL * abs(z) and worst == 0.0:
            return z, True
        # stalled at the rounding floor (next to a singular point the equations' terms are large and
        # cancel): accept a step that no longer shrinks once it is below FLOOR_TOL
        if scale == 1.0 and abs(dz) <= FLOOR_TOL * abs(z) and abs(dz) >= 0.5 * last:
            return z, True
        last = abs(dz) if scale == 1.0 else math.inf
        if since_best >= STALL_ITERATIONS and frozen:
            return z, False
    return z, False


@kernel(**_COMPILE)
def _log_w(u, log_eta):
    """log(x + iη) for x = e^u, η = e^{log_eta}, without forming x or η (either may underflow)."""
    if log_eta < u - 40.0:
        return complex(u, math.exp(log_eta - u))
    return log_eta + cmath.log(complex(math.exp(u - log_eta), 1.0))


@kernel(**_COMPILE)
def _eta_path(u, u_top, log_m1, log_pole, log_second, log_shift, y, mult, n_layers, e, log_gain, log_eta_final, top,
              kind, par, q, dmult, npan, ends, h, wb, wg, t, nat, at_t, at_m):
    """z at x = e^u by continuation in η from w = x + 4i·x_max down to x + iη_final.  y is
    overwritten.  Returns (z, converged).

    The start is z ≈ m₁/w, y_l ≈ E t_l²/z (t_l = f'(h_l)²), the moment series to first order in
    1/w.  Where Newton does not converge from there, it starts again from the one-pole (Padé)
    form M(w) ≈ m₁/(w − m₂/m₁): z = m₁/(w − m₂/m₁), y_l = E t_l⁴/E t_l² + E t_l²/z (``log_pole``
    = log m₂/m₁, ``log_shift`` = log E t_l⁴/E t_l²), exact to second order and for a point mass.
    The first-order start is 25 % off at |w| = 4 x_max where the spectrum is a narrow lump far
    from 0 (tanh with orthogonal weights near q* = 0: z ≈ m₁/(w − m₁)), and Newton did not
    converge from it at depth 32 and beyond; elsewhere it is kept, being the cheaper path on
    lSELU's deep orthogonal spectra (0.16 s against 0.45 s for a 1,000-point grid)."""
    log_eta = max(u, u_top) + math.log(4.0)
    logw = _log_w(u, log_eta)
    z = cmath.exp(log_m1 - logw)
    for l in range(y.shape[0]):
        y[l] = cmath.exp(log_second[l]) / z
    pade = False  # the one-pole start tried
    solved = False  # some height solved
    ok = False
    step = math.log(3.0)
    while True:
        z_try = z
        y_try = y.copy()
        z_try, ok = _newton(logw, z_try, y_try, MAX_NEWTON, mult, n_layers, e, log_gain, top, kind, par, q, dmult, npan,
                            ends, h, wb, wg, t, nat, at_t, at_m)
        if ok:
            solved = True
            z = z_try
            y[:] = y_try
            if log_eta <= log_eta_final:
                return z, True
            step = min(2.0 * step, math.log(3.0))
            log_eta = max(log_eta - step, log_eta_final)
        elif not solved and not pade:
            pade = True
            log_z = log_m1 - logw - cmath.log(1.0 - cmath.exp(log_pole - logw))
            z = cmath.exp(log_z)
            for l in range(y.shape[0]):
                y[l] = cmath.exp(log_second[l] - log_z) + math.exp(log_shift[l])
            continue
        else:
            step *= 0.5
            if step < 1e-4:
                return z, False
            log_eta = log_eta + step  # back off half the last step
        logw = _log_w(u, log_eta)


@kernel(**_COMPILE)
def _eta_steps(u, log_eta, log_eta_to, z, y, mult, n_layers, e, log_gain, top, kind, par, q, dmult, npan, ends, h, wb,
               wg, t, nat, at_t, at_m):
    """From the solution (z, y) at x + iη, x = e^u, η = e^{log_eta}, to η = e^{log_eta_to} (up or
    down) by steps in log η of at most log 3, a failed step halved (given up below 1e-4), the next
    after a success doubled.  y is updated in place.  Returns (z, converged)."""
    step = math.log(3.0)
    while log_eta != log_eta_to:
        to = min(log_eta + step, log_eta_to) if log_eta_to > log_eta else max(log_eta - step, log_eta_to)
        y_try = y.copy()
        z_try, ok = _newton(_log_w(u, to), z, y_try, MAX_NEWTON, mult, n_layers, e, log_gain, top, kind, par, q, dmult,
                            npan, ends, h, wb, wg, t, nat, at_t, at_m)
        if ok:
            z = z_try
            y[:] = y_try
            log_eta = to
            step = min(2.0 * step, math.log(3.0))
        else:
            step *= 0.5
            if step < 1e-4:
                return z, False
    return z, True


@kernel(**_COMPILE)
def _detour(u_from, u_to, z, y, log_rel, mult, n_layers, e, log_gain, top, kind, par, q, dmult, npan, ends, h, wb, wg,
            t, nat, at_t, at_m):
    """z at u_to from the solution (z, y) at u_from (η = e^{log_rel} x both) along a path in the upper
    half-plane: η raised to |u_to − u_from|·x (at least DETOUR_MIN·x), along x at that height, and
    lowered again.  z = M_J(w) is analytic in the upper half-plane, so the path stays on the branch
    of the point it starts from, as the path in η from far above (:func:`_eta_path`) does, while
    passing over whatever singular point lies between the two points on the axis; it is a few
    steps long where that one crosses every scale from x_max down to η.  y is updated on success.
    Returns (z, converged)."""
    log_high = math.log(max(abs(u_to - u_from), DETOUR_MIN))
    y_work = y.copy()
    z_work, ok = _eta_steps(u_from, u_from + log_rel, u_from + log_high, z, y_work, mult, n_layers, e, log_gain, top,
                            kind, par, q, dmult, npan, ends, h, wb, wg, t, nat, at_t, at_m)
    if ok:
        z_work, ok = _continue(u_from, u_to, z_work, y_work, log_high, MAX_HALVINGS, MAX_NEWTON, mult, n_layers, e,
                               log_gain, top, kind, par, q, dmult, npan, ends, h, wb, wg, t, nat, at_t, at_m)
    if ok:
        z_work, ok = _eta_steps(u_to, u_to + log_high, u_to + log_rel, z_work, y_work, mult, n_layers, e, log_gain,
                                top, kind, par, q, dmult, npan, ends, h, wb, wg, t, nat, at_t, at_m)
    if not ok:
        return z, False
    y[:] = y_work
    return z_work, True


@kernel(**_COMPILE)
def _continue(u_from, u_to, z, y, log_rel, halvings, iterations, mult, n_layers, e, log_gain, top, kind, par, q, dmult,
              npan, ends, h, wb, wg, t, nat, at_t, at_m):
    """From the solution (z, y) at u_from to u_to by steps of at most ``iterations`` Newton
    iterations each: a step that fails is halved (down to (u_to − u_from)/2^``halvings``, then the
    continuation gives up), one that succeeds is kept and the next one doubled.  y is updated only
    on success.  Returns (z, converged)."""
    total = u_to - u_from
    smallest = abs(total) / 2.0 ** halvings
    at = u_from
    step = total
    z_at = z
    y_at = y.copy()
    while True:
        last = abs(step) >= abs(u_to - at)
        uk = u_to if last else at + step
        y_try = y_at.copy()
        z_try, good = _newton(_log_w(uk, uk + log_rel), z_at, y_try, iterations, mult, n_layers, e, log_gain,
                              top, kind, par, q, dmult, npan, ends, h, wb, wg, t, nat, at_t, at_m)
        if good:
            if last:
                y[:] = y_try
                return z_try, True
            z_at = z_try
            y_at = y_try
            at = uk
            step *= 2.0
        else:
            if last:
                step = u_to - at
            step *= 0.5
            if abs(step) < smallest * (1.0 - 1e-12):
                return z, False


@kernel(**_COMPILE)
def density_path(us, start, u_top, log_m1, log_pole, log_second, log_shift, mult, n_layers, e, log_gain, eta_rel, top,
                 kind, par, q, dmult, npan, ends, h, wb, wg, t, nat, at_t, at_m, z_out, ok_out):
    """z = M_J(x + iη) at x = e^{u} for each u of ``us`` (descending from the upper edge), η = eta_rel·x.
    The point ``start`` (a little inside the edge) by η-continuation; from it, down the grid and up
    towards the edge by continuation in u (a failed step halved up to MAX_HALVINGS times, then
    η-continuation).  Results in z_out, ok_out."""
    G = mult.shape[0]
    log_rel = math.log(eta_rel)
    y0 = np.empty(G, dtype=np.complex128)
    z0, ok0 = _eta_path(us[start], u_top, log_m1, log_pole, log_second, log_shift, y0, mult, n_layers, e, log_gain,
                        us[start] + log_rel, top, kind, par, q, dmult, npan, ends, h, wb, wg, t, nat, at_t, at_m)
    z_out[start] = z0
    ok_out[start] = ok0
    for direction in (1, -1):
        y = y0.copy()
        z = z0
        have = ok0
        # the solutions one and two points before the last, for the predictor: ``known`` counts
        # the solved points in a row, the last included
        y_back = y0.copy()
        z_back = z0
        y_back2 = y0.copy()
        z_back2 = z0
        known = 1 if ok0 else 0
        i = start + direction
        while 0 <= i < us.shape[0]:
            u = us[i]
            done = False
            outside = have and z.imag > -BRANCH_JUMP * abs(z)  # the last point had no density
            if outside and abs(1.0 + z) < NEGLIGIBLE_MASS:
                z_out[i] = z
                ok_out[i] = True
                known = 0
                i += direction
                continue
            y_last = y.copy()
            z_last = z
            if have and not outside and known >= 2:
                order = 2 if known >= 3 else 1
                u_back2 = us[i - 3 * direction] if order == 2 else 0.0
                z_new, done = _predicted(order, us[i - direction], us[i - 2 * direction], u_back2, u, z, z_back,
                                         z_back2, y, y_back, y_back2, log_rel, mult, n_layers, e, log_gain, top, kind,
                                         par, q, dmult, npan, ends, h, wb, wg, t, nat, at_t, at_m)
            if have and not done:
                z_new, done = _continue(us[i - direction], u, z, y, log_rel, 0 if outside else MAX_HALVINGS,
                                        OUTSIDE_NEWTON if outside else MAX_NEWTON, mult, n_layers, e, log_gain, top,
                                        kind, par, q, dmult, npan, ends, h, wb, wg, t, nat, at_t, at_m)
            if have:
                if done:
                    prev = z_out[i - direction]
                    if z_new.imag > -BRANCH_JUMP * abs(z_new) and prev.imag < -BRANCH_JUMP * abs(prev):
                        # the density fell to zero in one step: continuation along the real axis may
                        # have crossed a singular point of the density onto another branch (a cusp
                        # where atoms of the layers' laws meet); a path through the upper half-plane
                        # decides: the path in η from far above, or where that one is the longer
                        # (far below the upper edge: Gaussian weights' tails) the detour from the
                        # last point
                        good = False
                        height = math.log(max(abs(u - us[i - direction]), DETOUR_MIN))
                        if u_top - u > 2.0 * (height - log_rel):
                            y_eta = y_last.copy()
                            z_eta, good = _detour(us[i - direction], u, z_last, y_eta, log_rel, mult, n_layers, e,
                                                  log_gain, top, kind, par, q, dmult, npan, ends, h, wb, wg, t, nat,
                                                  at_t, at_m)
                        if not good:
                            y_eta = y.copy()
                            z_eta, good = _eta_path(u, u_top, log_m1, log_pole, log_second, log_shift, y_eta, mult,
                                                    n_layers, e, log_gain, u + log_rel, top, kind, par, q, dmult,
                                                    npan, ends, h, wb, wg, t, nat, at_t, at_m)
                        if good:
                            z_new = z_eta
                            y[:] = y_eta
                    z = z_new
            if not done and outside:
                # below a lower edge of the support (the last point had no density): nothing to find
                done = True
            elif not done:
                z, done = _eta_path(u, u_top, log_m1, log_pole, log_second, log_shift, y, mult, n_layers, e, log_gain,
                                    u + log_rel, top, kind, par, q, dmult, npan, ends, h, wb, wg, t, nat, at_t, at_m)
            z_out[i] = z
            ok_out[i] = done
            have = done
            known = min(known + 1, 3) if done else 0
            y_back2[:] = y_back
            z_back2 = z_back
            y_back[:] = y_last
            z_back = z_last
            i += direction
    return 0


@kernel(**_COMPILE)
def _predicted(order, u_last, u_back, u_back2, u, z_last, z_back, z_back2, y_last, y_back, y_back2, log_rel, mult,
               n_layers, e, log_gain, top, kind, par, q, dmult, npan, ends, h, wb, wg, t, nat, at_t, at_m):
    """Newton at u from the polynomial of degree ``order`` (1 or 2) through the solutions at the
    points before (the last, the one before, and for order 2 the one before that), for at most
    PREDICTED_NEWTON iterations.  Starting from the last point's solution is zeroth order in the
    grid step; each order gained squares the guess's error, about one Newton iteration fewer a
    point.  The guess is used only where it keeps z in the lower and every y_l in the upper
    half-plane, as the solutions lie (a step across the axis lands on the other boundary value);
    y_last is updated on success.  Returns (z, converged); not converged leaves the point to the
    plain continuation."""
    # Lagrange's weights at u
    if order == 2:
        a = (u - u_back) * (u - u_back2) / ((u_last - u_back) * (u_last - u_back2))
        b = (u - u_last) * (u - u_back2) / ((u_back - u_last) * (u_back - u_back2))
        c = (u - u_last) * (u - u_back) / ((u_back2 - u_last) * (u_back2 - u_back))
    else:
        a = (u - u_back) / (u_last - u_back)
        b = 1.0 - a
        c = 0.0
    z = a * z_last + b * z_back + c * z_back2
    if not (z.imag < 0.0 and cmath.isfinite(z)):
        return z_last, False
    y = a * y_last + b * y_back + c * y_back2
    for l in range(y.shape[0]):
        if not (y[l].imag > 0.0 and cmath.isfinite(y[l])):
            return z_last, False
    z, good = _newton(_log_w(u, u + log_rel), z, y, PREDICTED_NEWTON, mult, n_layers, e, log_gain, top, kind, par, q,
                      dmult, npan, ends, h, wb, wg, t, nat, at_t, at_m)
    if good:
        y_last[:] = y
    return z, good


@kernel(**_COMPILE)
def _real_inverse(z, y, l, top, kind, par, q, dmult, npan, ends, h, wb, wg, t, nat, at_t, at_m):
    """y > top with M_l(y) = z for real z > 0 (Newton from ``y``, kept above the support)."""
    lo = top
    for it in range(200):
        M, Mp = moment_map(complex(y, 0.0), l, top, kind, par, q, dmult, npan, ends, h, wb, wg, t, nat, at_t, at_m)
        step = (M.real - z) / Mp.real
        new = y - step
        if not (new > lo) or not math.isfinite(new):
            new = 0.5 * (y + lo)
        if abs(new - y) <= 1e-15 * abs(y):
            return new
        y = new
    return y


@kernel(**_COMPILE)
def edge_slope(z, y, mult, n_layers, e, top, kind, par, q, dmult, npan, ends, h, wb, wg, t, nat, at_t, at_m):
    """d log x/dz on the real branch at real z > 0 (y updated in place to y_l(z)); and log Π y_l^mult."""
    slope = e / (1.0 + z) + (n_layers - 1) / z
    log_prod = 0.0
    for l in range(y.shape[0]):
        y[l] = _real_inverse(z, y[l], l, top[l], kind, par, q, dmult, npan, ends, h, wb, wg, t, nat, at_t, at_m)
        M, Mp = moment_map(complex(y[l], 0.0), l, top[l], kind, par, q, dmult, npan, ends, h, wb, wg, t, nat,
                           at_t, at_m)
        slope += mult[l] / (y[l] * Mp.real)
        log_prod += mult[l] * math.log(y[l])
    return slope, log_prod
