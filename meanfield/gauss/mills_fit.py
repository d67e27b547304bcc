"""The fits behind ``mills``' polynomials (its comment block says what is fitted and why).

    python -m meanfield.gauss.mills_fit        # rewrites meanfield/gauss/mills_coefficients.py

Fitting at import cost 0.27 s of every start; the coefficients are a deterministic function of
this file and of scipy's erfcx (~1 ulp), so they are made once and shipped.  tests/test_gauss.py
refits and checks that the shipped values are this fit's.
"""

from __future__ import annotations

import os

import numpy as np
from numpy.polynomial import chebyshev
from scipy import fft, special

from .mills import (_COMPILE, _D1_DIRECT_T, _D1_FIT_DEPTH, _DEGREE, _FIT, _FIT_TAYLOR_TERMS, _K, SQRT2,
                     SQRT_HALF_PI, _continued_fraction, _difference_coefficients, _taylor_coefficients)
from .jit import kernel


def _mills_by_erfcx(t):
    """R(t) through scipy.special.erfcx (the fits' source)."""
    return SQRT_HALF_PI * special.erfcx(np.asarray(t, dtype=float) / SQRT2)


@kernel(**_COMPILE)
def _d1_by_continued_fraction(t, deep_below, deep, shallow):
    """R'(t) by the fraction: ``deep`` terms below ``deep_below``, ``shallow`` above."""
    out = np.empty_like(t)
    for i in range(t.size):
        out[i] = _continued_fraction(t[i], deep if t[i] < deep_below else shallow)[1]
    return out


def _d1_values(t):
    """R'(t) to ~1 ulp: tR − 1 below _D1_DIRECT_T, the continued fraction above."""
    (deep_below, deep), (shallow,) = _D1_FIT_DEPTH
    return np.where(t < _D1_DIRECT_T, t * _mills_by_erfcx(t) - 1.0,
                    _d1_by_continued_fraction(t, deep_below, deep, shallow))


def _drop_over_t(t):
    """(R(0) − R(t))/t: its Taylor series below t = 1, the direct form above (it loses < 2ε there)."""
    series = -np.polynomial.polynomial.polyval(t, _taylor_coefficients(_FIT_TAYLOR_TERMS)[1:])
    with np.errstate(divide="ignore", invalid="ignore"):
        direct = (SQRT_HALF_PI - _mills_by_erfcx(t)) / t
    return np.where(t < 1.0, series, direct)


def _difference_over_square(t):
    """(R(2t) − 2R(t) + R(0))/t²: its Taylor series below t = 1, the direct form above."""
    series = np.polynomial.polynomial.polyval(t, _difference_coefficients(_FIT_TAYLOR_TERMS)[2:])
    with np.errstate(divide="ignore", invalid="ignore"):
        direct = (_mills_by_erfcx(2.0 * t) - 2.0 * _mills_by_erfcx(t) + SQRT_HALF_PI) / np.square(t)
    return np.where(t < 1.0, series, direct)


def _fit(values, power):
    """Monomial coefficients in u of P(u) = values(t)·(t + K)^power, t = K(1 + u)/(1 − u)."""
    u = np.cos(np.pi * (np.arange(_FIT) + 0.5) / _FIT)
    t = _K * (1.0 + u) / (1.0 - u)
    chebyshev_coefficients = fft.dct(values(t) * (t + _K) ** power, type=2)[: _DEGREE + 1] / _FIT
    chebyshev_coefficients[0] /= 2.0
    return chebyshev.cheb2poly(chebyshev_coefficients)


def coefficients() -> dict:
    """The four fitted polynomials, by the names ``mills_coefficients`` holds them under."""
    return {"R_POLY": _fit(_mills_by_erfcx, 1), "D1_POLY": _fit(_d1_values, 2),
            "DIFFERENCE_POLY": _fit(_difference_over_square, 2), "DROP_POLY": _fit(_drop_over_t, 1)}


def source(values: dict) -> str:
    """``mills_coefficients.py``'s text: each coefficient as the shortest repr that round-trips."""
    lines = ['"""Coefficients of the fitted polynomials of mills, in u, lowest degree first.',
             "", "Written by ``python -m meanfield.gauss.mills_fit``; do not edit by hand.", '"""', ""]
    for name, poly in values.items():
        lines.append(f"{name} = (")
        lines.extend(f"    {float(c)!r}," for c in poly)
        lines.append(")")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    path = os.path.join(os.path.dirname(__file__), "mills_coefficients.py")
    with open(path, "w") as fh:
        fh.write(source(coefficients()))
    print(f"wrote {path}")
