"""log, exp, arctan and scaled products as branch-free compiled scalars, so that the loops around
them vectorise.

numba compiles ``math.log``, ``math.exp`` and ``math.atan`` to calls into the C library, one point
at a time: 4-8, 5 and 14 ns a point here (AMD EPYC; log is slowest near 1), most of the time of a
recursion over 1,000 configurations × 1,000 layers, whose closed forms and products over layers
need several per point (docs/performance.md).  The functions below are the classical polynomial
algorithms, written with selects instead of branches and with exponents moved through the bits
(``jit.float_bits``, ``jit.bits_float``) and the 1.5·2⁵² rounding shift instead of integer
conversions (which AVX2 lacks for 64-bit integers), so that LLVM evaluates four points per
instruction: 2.6-2.9 and 1.9 ns a point, within one unit in the last place of the exact value
(tests/test_elementary.py measures it against 40-digit mpmath).

* :func:`log`: fdlibm's ``__ieee754_log`` (Sun Microsystems, 1993) as musl's C library writes it
  without branches: x = 2^k m with m in [√2/2, √2), f = m − 1, s = f/(2 + f), and
  log(1 + f) = f − f²/2 + s (f²/2 + R(s²)), R the Remez polynomial of degree 14 in s, error below
  one ulp.  Subnormal x is scaled by 2⁵⁴ first; 0, negative x, inf and NaN give −inf, NaN, inf
  and NaN, selected.
* :func:`exp`: fdlibm's ``__ieee754_exp``: x = k ln 2 + r, |r| <= ln 2/2, e^r = 1 + 2r/(2 − c)
  with c = r − r² P(r²), P of degree 4 (error below one ulp), times 2^k as two exact powers of two
  so that gradual underflow rounds once; inf past 709.78, 0 below −745.13, NaN for NaN.
* :func:`atan_nonneg`: Cephes' ``atan`` (Moshier, 1984-2000; scipy.special's cephes keeps the same
  coefficients): reduction to |x| ≤ 0.66 by atan x = π/4 + atan((x − 1)/(x + 1)) and
  atan x = π/2 − atan(1/x), then x + x³ P(x²)/Q(x²) with P, Q of degrees 4 and 5; peak relative
  error 1.9e-16 over IEEE doubles.  For x ≥ 0 (and +inf, and NaN, which it returns).

* :func:`frexp`, :func:`ldexp`: a float64 split into mantissa in [1, 2) and exponent, and put back
  with one rounding (gradual underflow included) for an exponent of any size; with them
  :func:`scaled_product` keeps a product of many factors as mantissa and exponent, so that it over-
  or underflows only where it is read, and :func:`log_scaled` gives its log.  A recursion's
  gradient, explosion product and Prop 3.1 are such products over layers: one multiplication and a
  few bit moves per factor, where a sum of logs and its exp cost a log and an exp.

All are IEEE arithmetic only (no fused multiply-add), so compiled and interpreted they give the
same bits (``jit``).
"""

from __future__ import annotations

import math

from .jit import bits_float, float_bits, kernel

_SCALAR = {"cache": True, "nogil": True, "error_model": "numpy", "inline": "always"}

#: the smallest positive normal float64, 2⁻¹⁰²²
SMALLEST_NORMAL = 2.2250738585072014e-308
#: 2⁵⁴: a subnormal times this is normal
_TWO54 = 18014398509481984.0
#: 1.5·2⁵²: x + this rounds x to an integer (to nearest, ties to even) in the low bits of the sum
_SHIFT = 6755399441055744.0
_SHIFT_BITS = 0x4338000000000000
#: 2⁵², and its bits: an integer 0 <= k < 2⁵² as a float64 is bits_float(k | bits) − 2⁵²
_TWO52 = 4503599627370496.0
_TWO52_BITS = 0x4330000000000000
#: the exponent's offset, added so that the integer above stays >= 0 for every k of a float64
_EXPONENT_OFFSET = 2048

# fdlibm e_log.c: ln 2 split so that k·LN2_HI is exact for |k| < 2¹¹, and the coefficients of R(z)
LN2_HI = 6.93147180369123816490e-01
LN2_LO = 1.90821492927058770002e-10
LG1 = 6.666666666666735130e-01
LG2 = 3.999999999940941908e-01
LG3 = 2.857142874366239149e-01
LG4 = 2.222219843214978396e-01
LG5 = 1.818357216161805012e-01
LG6 = 1.531383769920937332e-01
LG7 = 1.479819860511658591e-01
#: high word of √2/2 (0x3fe6a09e): m is scaled into [√2/2, √2) by adding 1 − this to the high word
_HALF_ROOT2_HIGH = 0x3FE6A09E
_ONE_HIGH = 0x3FF00000


@kernel(**_SCALAR)
def log(x):
    """log x for every float64 x, to within one ulp (fdlibm; module docstring)."""
    subnormal = x < SMALLEST_NORMAL
    scaled = x * _TWO54 if subnormal else x
    bits = float_bits(scaled) & 0x7FFFFFFFFFFFFFFF  # >= 0, so that the shifts below are logical
    high = (bits >> 32) + (_ONE_HIGH - _HALF_ROOT2_HIGH)
    k = (high >> 20) + (_EXPONENT_OFFSET - 0x3FF)  # the exponent plus the offset
    high = (high & 0x000FFFFF) + _HALF_ROOT2_HIGH
    f = bits_float((high << 32) | (bits & 0xFFFFFFFF)) - 1.0
    dk = (bits_float(k | _TWO52_BITS) - _TWO52) - _EXPONENT_OFFSET - (54.0 if subnormal else 0.0)
    half_f2 = 0.5 * f * f
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    r = z * (LG1 + w * (LG3 + w * (LG5 + w * LG7))) + w * (LG2 + w * (LG4 + w * LG6))
    value = s * (half_f2 + r) + dk * LN2_LO - half_f2 + f + dk * LN2_HI
    special = -math.inf if x == 0.0 else (math.inf if x == math.inf else math.nan)
    return value if (x > 0.0 and x < math.inf) else special


# fdlibm e_exp.c: 1/ln 2, P's coefficients, and the arguments past which e^x over- and underflows
INV_LN2 = 1.44269504088896338700e+00
EP1 = 1.66666666666666019037e-01
EP2 = -2.77777777770155933842e-03
EP3 = 6.61375632143793436117e-05
EP4 = -1.65339022054652515390e-06
EP5 = 4.13813679705723846039e-08
EXP_OVERFLOW = 7.09782712893383973096e+02
EXP_UNDERFLOW = -7.45133219101941108420e+02
#: x is clamped into [−746, 710] before the reduction (the thresholds above decide outside)
_EXP_CLAMP = 746.0
#: :func:`ldexp` applies 2^k as 2^k₁ 2^(k − k₁) with |k₁| <= 1000 and k clamped into ±2000, so that
#: each factor is a normal power of two and, for |m| in [1/8, 8), m 2^k₁ is normal and exact
_SPLIT = 1000.0
_LDEXP_CLAMP = 2000.0
#: a float64's bits less its exponent field, and the exponent field of 1.0
_EXPONENT_CLEAR = ~0x7FF0000000000000
_ONE_EXPONENT = 0x3FF0000000000000


@kernel(**_SCALAR)
def ldexp(m, k):
    """m·2^k rounded once, for a float64 k holding an integer of any size (inf past the largest
    double, gradual underflow to 0); exact 2^k₁ 2^(k − k₁) (see _SPLIT) through the rounding shift,
    so that it vectorises.  Meant for |m| in [1/8, 8) and m = 0, ±inf, NaN (which it returns)."""
    k = min(max(k, -_LDEXP_CLAMP), _LDEXP_CLAMP)
    k1 = min(max(k, -_SPLIT), _SPLIT)
    b1 = float_bits(k1 + _SHIFT) - _SHIFT_BITS
    b2 = float_bits((k - k1) + _SHIFT) - _SHIFT_BITS
    return m * bits_float((b1 + 0x3FF) << 52) * bits_float((b2 + 0x3FF) << 52)


@kernel(**_SCALAR)
def frexp(x):
    """(m, k) with x = m·2^k, 1 <= |m| < 2 and k a float64 holding an integer, for finite x ≠ 0,
    subnormals included; (x, 0) for ±0, ±inf and NaN.  The inverse of :func:`ldexp`."""
    subnormal = abs(x) < SMALLEST_NORMAL
    scaled = x * _TWO54 if subnormal else x
    bits = float_bits(scaled)
    biased = (bits >> 52) & 0x7FF
    k = (bits_float(biased | _TWO52_BITS) - _TWO52) - 0x3FF - (54.0 if subnormal else 0.0)
    m = bits_float((bits & _EXPONENT_CLEAR) | _ONE_EXPONENT)
    special = (x == 0.0) | (biased == 0x7FF)
    return (x if special else m), (0.0 if special else k)


@kernel(**_SCALAR)
def scaled_product(m, k, x):
    """(m', k') = (m, k)·x normalised as :func:`frexp` gives it: a product over many factors kept as
    mantissa and exponent, so that it over- or underflows only where it is read (:func:`ldexp`),
    and exactly rounded at each step.  Once m is 0, inf or NaN, it stays so (k is then arbitrary)."""
    mx, kx = frexp(x)
    p = m * mx
    big = abs(p) >= 2.0
    return (0.5 * p if big else p), k + kx + (1.0 if big else 0.0)


@kernel(**_SCALAR)
def log_scaled(m, k):
    """log(m·2^k) for the (m, k) of :func:`frexp` (m > 0), with k ln 2 as fdlibm splits it (exact
    k·LN2_HI for |k| < 2²¹)."""
    return (k * LN2_HI + log(m)) + k * LN2_LO


@kernel(**_SCALAR)
def exp(x):
    """e^x for every float64 x, to within one ulp (fdlibm; module docstring)."""
    clamped = min(max(x, -_EXP_CLAMP), _EXP_CLAMP)
    k = (clamped * INV_LN2 + _SHIFT) - _SHIFT
    hi = clamped - k * LN2_HI
    lo = k * LN2_LO
    r = hi - lo
    t = r * r
    c = r - t * (EP1 + t * (EP2 + t * (EP3 + t * (EP4 + t * EP5))))
    y = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi)
    y = ldexp(y, k)
    y = math.inf if x > EXP_OVERFLOW else y
    y = 0.0 if x < EXP_UNDERFLOW else y
    return x if x != x else y


# Cephes atan.c: P, Q (Q monic), tan(3π/8), and the low part of π/2 (π/2 = PIO2 + MOREBITS)
ATAN_P = (-8.750608600031904122785e-1, -1.615753718733365076637e1, -7.500855792314704667340e1,
          -1.228866684490136173410e2, -6.485021904942025371773e1)
ATAN_Q = (2.485846490142306297962e1, 1.650270098316988542046e2, 4.328810604912902668951e2,
          4.853903996359136964868e2, 1.945506571482613964425e2)
T3P8 = 2.41421356237309504880
MOREBITS = 6.123233995736765886130e-17
PIO2 = 1.57079632679489661923
PIO4 = 0.78539816339744830962
#: Cephes' switch from the plain series to the reduction about 1
_ATAN_MIDDLE = 0.66
_P0, _P1, _P2, _P3, _P4 = ATAN_P
_Q0, _Q1, _Q2, _Q3, _Q4 = ATAN_Q


@kernel(**_SCALAR)
def atan_nonneg(x):
    """arctan x for x >= 0, +inf included, to within one ulp (Cephes; module docstring)."""
    return atan_ratio(x, 1.0)


@kernel(**_SCALAR)
def atan_ratio(y, x):
    """arctan(y/x) for y >= 0 and finite x > 0, without forming y/x: Cephes' reductions become
    −x/y, (y − x)/(y + x) and y/x, each one division, so that the ratio costs no division of its
    own (and is not rounded first); x = 1 is :func:`atan_nonneg`, bit for bit."""
    big = y > T3P8 * x
    middle = y > _ATAN_MIDDLE * x
    # the reductions' numerators and denominators are selected and divided once, so that the loop
    # around has no branch
    reduced = (-x if big else (y - x if middle else y)) / (y if big else (y + x if middle else x))
    base = PIO2 if big else (PIO4 if middle else 0.0)
    low = MOREBITS if big else (0.5 * MOREBITS if middle else 0.0)
    z = reduced * reduced
    p = (((_P0 * z + _P1) * z + _P2) * z + _P3) * z + _P4
    q = ((((z + _Q0) * z + _Q1) * z + _Q2) * z + _Q3) * z + _Q4
    return base + ((reduced * (z * p / q) + reduced) + low)
