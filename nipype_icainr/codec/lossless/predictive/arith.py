"""Deterministic arithmetic: the same bits on every platform (no libm, no BLAS).

``det_exp`` replaces ``np.exp`` on the decoding side; the bucket index and the
per-voxel scale prior are exact integer / IEEE basic-operation functions.
"""

import math

import numpy as np

from .params import NBUCKET, QV_MAX, QV_MIN

# 2**-0.75, 2**-0.5, 2**-0.25 as exact literals (``**`` would call libm's pow)
_Q1 = float.fromhex("0x1.306fe0a31b715p-1")
_Q2 = float.fromhex("0x1.6a09e667f3bcdp-1")
_Q3 = float.fromhex("0x1.ae89f995ad3adp-1")
_LN2_HI = float.fromhex("0x1.62e42fee00000p-1")   # fdlibm split of ln 2: k * _LN2_HI is exact
_LN2_LO = float.fromhex("0x1.a39ef35793c76p-33")
_INV_LN2 = float.fromhex("0x1.71547652b82fep+0")
_EXP_COEF = tuple(1.0 / math.factorial(n) for n in range(14))   # Taylor, |r| <= ln2 / 2


def det_exp(z):
    """``exp(z)`` elementwise from IEEE basic operations and ``ldexp`` only.

    ``np.exp`` may differ in the last bit between libm builds; this one gives
    the same bits everywhere (relative error below 1e-15 for z in [-700, 700]).

    Parameters
    ----------
    z : array_like of float64

    Returns
    -------
    ndarray of float64
    """
    z = np.clip(np.asarray(z, np.float64), -745.0, 709.0)
    k = np.rint(z * _INV_LN2)
    r = (z - k * _LN2_HI) - k * _LN2_LO
    p = np.full_like(r, _EXP_COEF[-1])
    for c in _EXP_COEF[-2::-1]:
        p = p * r + c
    return np.ldexp(p, k.astype(np.int64))


def _bucket(hbq):
    """4 buckets per octave of the non-negative integer ``hbq`` (exact: frexp)."""
    m, e = np.frexp(hbq.astype(np.float64))
    k = 4 * e.astype(np.int64) + (m >= _Q1) + (m >= _Q2) + (m >= _Q3) + 8
    return np.clip(k, 0, NBUCKET - 1)


def _prior_scale(qv):
    """Prior of the running 16 |residual| sum: round(11.2 * 2**(qv / 2)) (sqrt is exact IEEE)."""
    tab = np.array([round(math.ldexp(11.2 * (math.sqrt(2.0) if q % 2 else 1.0), q // 2))
                    for q in range(QV_MIN, QV_MAX + 1)], np.int64)
    return tab[np.clip(qv, QV_MIN, QV_MAX) - QV_MIN]


def _rdiv(a, g):
    return (a + (g >> 1)) // g
