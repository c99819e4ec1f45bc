"""Activation functions with derivatives up to order three, compiled.

Every activation is evaluated by one scalar routine, :func:`derivatives_at`,
that returns ``sigma(z)`` and its first three derivatives. The formulas are
arranged so that no intermediate overflows: they are written in ``exp(-|z|)``
(never ``exp(|z|)``), and Gaussian factors are evaluated at a clipped argument
where the true factor has already underflowed (``docs/derivatives.md``,
"Activations without overflow").

For the bounds over a ball each activation also lists the critical points of
``sigma^(k)`` for ``k = 0..3`` (the zeros of ``sigma^(k+1)``). ``sup |sigma^(k)|``
over an interval is then the largest of ``|sigma^(k)|`` at the two end points and
at the critical points inside it.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir as llvm_ir
from numba import types
from numba.extending import intrinsic

from .jit import jit

#: Names of the supported activations, in the order of their integer codes.
ACTIVATIONS = ("tanh", "sigmoid", "softplus", "gelu", "silu", "quadratic", "linear")

TANH, SIGMOID, SOFTPLUS, GELU, SILU, QUADRATIC, LINEAR = range(len(ACTIVATIONS))

_ATANH_1_SQRT3 = 0.6584789484624084  # atanh(1/sqrt(3)): extremum of tanh''
_ATANH_SQRT_2_3 = 1.1462158347805889  # atanh(sqrt(2/3)): extremum of tanh'''

# Critical points of sigma^(k), k = 0..3 (zeros of sigma^(k+1)), from the closed
# forms in the module docstring; gelu and silu roots were solved to 40 digits and
# are checked again in tests/test_activations.py.
CRITICAL_POINTS = {
    "tanh": (
        (),
        (0.0,),
        (-_ATANH_1_SQRT3, _ATANH_1_SQRT3),
        (-_ATANH_SQRT_2_3, 0.0, _ATANH_SQRT_2_3),
    ),
    "sigmoid": (
        (),
        (0.0,),
        (-2 * _ATANH_1_SQRT3, 2 * _ATANH_1_SQRT3),
        (-2 * _ATANH_SQRT_2_3, 0.0, 2 * _ATANH_SQRT_2_3),
    ),
    "softplus": ((), (), (0.0,), (-2 * _ATANH_1_SQRT3, 2 * _ATANH_1_SQRT3)),
    "gelu": (
        (-0.7517915246935645,),
        (-math.sqrt(2.0), math.sqrt(2.0)),
        (-2.0, 0.0, 2.0),
        (-2.5243377989621387, -0.7922869913932613, 0.7922869913932613, 2.5243377989621387),
    ),
    "silu": (
        (-1.2784645427610737,),
        (-2.3993572805154675, 2.3993572805154675),
        (-3.435840993535111, 0.0, 3.435840993535111),
        (-4.429235100557228, -1.0319582417807491, 1.0319582417807491, 4.429235100557228),
    ),
    "quadratic": ((0.0,), (), (), ()),
    "linear": ((), (), (), ()),
}


def critical_table(name: str) -> np.ndarray:
    """Critical points as a (4, 4) array padded with +inf (never inside an interval)."""
    table = np.full((4, 4), np.inf)
    for k, points in enumerate(CRITICAL_POINTS[name]):
        table[k, : len(points)] = points
    return table


CRITICAL_TABLES = {name: critical_table(name) for name in ACTIVATIONS}


_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_GAUSS_CLIP = 40.0  # exp(-40**2 / 2) underflows to 0: the Gaussian factor is exactly 0 beyond


@intrinsic
def _int_bits_as_float(typingctx, bits):
    """Reinterpret the 64 bits of an int64 as a float64 (a vectorisable bit cast)."""
    sig = types.float64(types.int64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], llvm_ir.DoubleType())

    return sig, codegen


@intrinsic
def _float_bits_as_int(typingctx, value):
    """Reinterpret the 64 bits of a float64 as an int64 (a vectorisable bit cast)."""
    sig = types.int64(types.float64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], llvm_ir.IntType(64))

    return sig, codegen


_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # ln 2 split as in fdlibm: k * _LN2_HI is exact
_LN2_LO = 1.90821492927058770002e-10
# 1.5 * 2^52: adding it rounds a float of magnitude < 2^51 to an integer, which then
# sits in the low bits of the sum's mantissa (no float -> int64 conversion, which
# AVX2 cannot vectorise)
_SHIFTER = 6755399441055744.0
_SHIFTER_BITS = int(np.array(_SHIFTER).view(np.int64))


@jit
def exp_expm1_nonpositive(x):
    """``(exp(x), exp(x) - 1)`` for x <= 0, both to a few ulp, in straight-line code.

    ``exp(x)`` as described at :func:`exp_nonpositive`; ``exp(x) - 1`` is ``r p(r)``
    (the polynomial without its constant term, no cancellation) when ``k = 0``
    (``|x| < ln2 / 2``) and ``exp(x) - 1`` otherwise, where ``exp(x) <= 0.71``
    leaves nothing to cancel.
    """
    xc = max(x, -708.0)
    shifted = xc * _LOG2E + _SHIFTER
    k = shifted - _SHIFTER
    r = (xc - k * _LN2_HI) - k * _LN2_LO
    p = 1.0 / 6227020800.0
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    small = p * r  # exp(r) - 1
    scale = _int_bits_as_float((_float_bits_as_int(shifted) - _SHIFTER_BITS + 1023) << 52)
    e = 0.0 if x < -708.0 else (small + 1.0) * scale
    return e, small if k == 0.0 else e - 1.0


@jit
def exp_nonpositive(x):
    """exp(x) for x <= 0, within an ulp or two, in straight-line code that vectorises.

    ``x = k ln2 + r`` with ``|r| <= ln2 / 2``; ``exp(r)`` by its Taylor polynomial of
    degree 13 (truncation below 1e-17); ``2^k`` built from its exponent bits. k is
    rounded with the shifter trick, so the loop needs no float-to-integer
    conversion. Results below 2^-1021 (x < -708) are flushed to 0. (The first half
    of :func:`exp_expm1_nonpositive`; LLVM drops the unused second half.)
    """
    return exp_expm1_nonpositive(x)[0]


@jit
def logistic_pair(z):
    """(sigmoid(z), sigmoid(-z)), each to full relative accuracy, no overflow."""
    e = exp_nonpositive(-abs(z))
    p = 1.0 / (1.0 + e)
    q = e * p
    return (p, q) if z >= 0.0 else (q, p)


@jit
def derivatives_at(code, z):
    """Return (sigma, sigma', sigma'', sigma''') at the scalar z for activation ``code``."""
    if code == TANH:
        # tanh |z| = (1 - e) / (1 + e) with e = exp(-2|z|); 1 - e from expm1, which
        # keeps every digit near 0 (1 - e itself cancelled: 2e-5 relative error at 1e-12)
        e, em1 = exp_expm1_nonpositive(-2.0 * abs(z))
        inv = 1.0 / (1.0 + e)
        t = -em1 * inv
        t = -t if z < 0.0 else t
        s1 = 4.0 * e * inv * inv  # sech^2 without cancellation
        return t, s1, -2.0 * t * s1, s1 * (6.0 * t * t - 2.0)
    if code == SIGMOID or code == SOFTPLUS or code == SILU:
        # p = s(z), q = s(-z) with e = exp(-|z|); q - p = -tanh(z / 2) = +-(e - 1) / (1 + e)
        # from expm1 (q - p itself cancelled near 0)
        e, em1 = exp_expm1_nonpositive(-abs(z))
        big = 1.0 / (1.0 + e)
        small = e * big
        p, q = (big, small) if z >= 0.0 else (small, big)
        q_p = em1 * big if z >= 0.0 else -em1 * big
        d1 = p * q  # sigmoid'
        d2 = d1 * q_p  # sigmoid''
        d3 = d1 * (q_p * q_p - 2.0 * d1)  # sigmoid'''
        if code == SIGMOID:
            return p, d1, d2, d3
        if code == SOFTPLUS:
            return max(z, 0.0) + math.log1p(exp_nonpositive(-abs(z))), p, d1, d2
        # silu: z * sigmoid(z); the derivatives follow from Leibniz's rule
        return z * p, p + z * d1, 2.0 * d1 + z * d2, 3.0 * d2 + z * d3
    if code == GELU:
        cdf = 0.5 * math.erfc(-z * _INV_SQRT2)
        zc = min(max(z, -_GAUSS_CLIP), _GAUSS_CLIP)
        pdf = _INV_SQRT_2PI * exp_nonpositive(-0.5 * zc * zc)
        return z * cdf, cdf + zc * pdf, pdf * (2.0 - zc * zc), pdf * zc * (zc * zc - 4.0)
    if code == QUADRATIC:
        return z * z, 2.0 * z, 2.0, 0.0
    return z, 1.0, 0.0, 0.0  # LINEAR


@jit
def _values_and_slopes_for(code, z, s0, s1):
    """s0[r], s1[r] = sigma(z[r]), sigma'(z[r]); ``code`` is a literal at each call site."""
    for r in range(z.shape[0]):
        v0, v1, _, _ = derivatives_at(code, z[r])
        s0[r] = v0
        s1[r] = v1


@jit
def values_and_slopes(code, z, s0, s1):
    """s0 = sigma(z), s1 = sigma'(z) elementwise (shape (m,)).

    The branch on ``code`` sits outside the loop, so that each loop is
    straight-line code that LLVM vectorises.
    """
    if code == TANH:
        _values_and_slopes_for(TANH, z, s0, s1)
    elif code == SIGMOID:
        _values_and_slopes_for(SIGMOID, z, s0, s1)
    elif code == SOFTPLUS:
        _values_and_slopes_for(SOFTPLUS, z, s0, s1)
    elif code == GELU:
        _values_and_slopes_for(GELU, z, s0, s1)
    elif code == SILU:
        _values_and_slopes_for(SILU, z, s0, s1)
    elif code == QUADRATIC:
        _values_and_slopes_for(QUADRATIC, z, s0, s1)
    else:
        _values_and_slopes_for(LINEAR, z, s0, s1)


@jit
def _all_derivatives_for(code, z, s0, s1, s2, s3):
    """sigma^(k)(z[r]) for k = 0..3; ``code`` is a literal at each call site."""
    for r in range(z.shape[0]):
        v0, v1, v2, v3 = derivatives_at(code, z[r])
        s0[r] = v0
        s1[r] = v1
        s2[r] = v2
        s3[r] = v3


@jit
def all_derivatives(code, z, s0, s1, s2, s3):
    """sigma, sigma', sigma'', sigma''' at every z[r] (branch outside the loop)."""
    if code == TANH:
        _all_derivatives_for(TANH, z, s0, s1, s2, s3)
    elif code == SIGMOID:
        _all_derivatives_for(SIGMOID, z, s0, s1, s2, s3)
    elif code == SOFTPLUS:
        _all_derivatives_for(SOFTPLUS, z, s0, s1, s2, s3)
    elif code == GELU:
        _all_derivatives_for(GELU, z, s0, s1, s2, s3)
    elif code == SILU:
        _all_derivatives_for(SILU, z, s0, s1, s2, s3)
    elif code == QUADRATIC:
        _all_derivatives_for(QUADRATIC, z, s0, s1, s2, s3)
    else:
        _all_derivatives_for(LINEAR, z, s0, s1, s2, s3)


@jit
def activation_table(code, z):
    """Kernel: derivatives of order 0..3 at every entry of the 1-D array z, shape (4, k)."""
    out = np.empty((4, z.shape[0]))
    all_derivatives(code, z, out[0], out[1], out[2], out[3])
    return out


@jit
def sup_abs_intervals(code, critical, lo, hi, out):
    """Write sup over [lo[i], hi[i]] of |sigma^(k)| into out[k, i], k = 0..3.

    The sup of |sigma^(k)| over an interval is attained at an end or at a critical
    point of sigma^(k) inside it (``critical[k]``, padded with inf). The ends are
    evaluated in two vectorised loops, and |sigma^(k)| at each critical point once.
    When ``out`` has six rows, rows 4 and 5 receive the smallest and the largest
    value of sigma^(3) over the interval (from the same points: its extrema are at
    an end or at a critical point of sigma^(3)).
    """
    n = lo.shape[0]
    at_lo = np.empty((4, n))
    at_hi = np.empty((4, n))
    all_derivatives(code, lo, at_lo[0], at_lo[1], at_lo[2], at_lo[3])
    all_derivatives(code, hi, at_hi[0], at_hi[1], at_hi[2], at_hi[3])
    peak = np.zeros(critical.shape)
    for k in range(4):
        for j in range(critical.shape[1]):
            if math.isfinite(critical[k, j]):
                peak[k, j] = abs(derivatives_at(code, critical[k, j])[k])
        for i in range(n):
            out[k, i] = max(abs(at_lo[k, i]), abs(at_hi[k, i]))
        for j in range(critical.shape[1]):
            c = critical[k, j]
            for i in range(n):
                if lo[i] < c and c < hi[i]:
                    out[k, i] = max(out[k, i], peak[k, j])
    if out.shape[0] < 6:
        return
    for i in range(n):
        out[4, i] = min(at_lo[3, i], at_hi[3, i])
        out[5, i] = max(at_lo[3, i], at_hi[3, i])
    for j in range(critical.shape[1]):
        c = critical[3, j]
        if not math.isfinite(c):
            continue
        value = derivatives_at(code, c)[3]
        for i in range(n):
            if lo[i] < c and c < hi[i]:
                out[4, i] = min(out[4, i], value)
                out[5, i] = max(out[5, i], value)


@jit
def sup_abs_table(code, critical, lo, hi):
    """Kernel: sup |sigma^(k)| over [lo[i], hi[i]] for every i, shape (4, k)."""
    out = np.empty((4, lo.shape[0]))
    sup_abs_intervals(code, critical, lo, hi, out)
    return out
