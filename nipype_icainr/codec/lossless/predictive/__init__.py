"""Lossless predictive coder of an integer array (X, Y, Z, T): engine ``"predictive"``.

The scheme (research prototype "ICNR2", lossless path only; the near-lossless
bound is applied before, by ``model.quantise``, as integer step codes):

* side information: the mask of voxels constant over time and their values;
  per coded voxel a log-noise index ``qv`` (half-octave steps) and a temporal
  mean ``M`` (units 1/F, on a grid that coarsens with the noise), both
  predicted from the plane x - 1; up to ``K_MAX`` temporal components ``Wq``
  (int16) of the backward-adaptive low-rank predictor; integer least-squares
  predictor weights per (phase, voxel class); per-bucket Laplace scales.
* main loop, for each volume t and each of 2 or 4 interleaved phases
  (checkerboard ``(x+y+z) % 2``, split again by ``x % 2``): an integer linear
  prediction from decoded values (lags t-1, t-2, mean of t-3..t-6, neighbour
  sums at t-1, the already-decoded face / diagonal neighbours at t, and a
  per-voxel ridge regression on the past, ``lr``); the residual is coded with
  an adaptive categorical table chosen by the voxel's running mean |residual|
  (4 buckets per octave), the fractional part of the prediction and its
  distance to the data minimum; residuals outside the table are escapes.
* entropy coding: constriction's rANS ``AnsCoder`` (a stack: the encoder
  pushes in reverse decoding order).

Cross-platform determinism: everything the decoder's state depends on is
integer arithmetic or IEEE-754 basic operations in a fixed order (the
low-rank gains by Sherman-Morrison in pure-Python doubles, the low-rank sums
as elementwise float64 multiply/add). No libm transcendental and no BLAS
product is used on the decoding side: the Laplace priors use ``det_exp``
(range reduction + Horner polynomial + ``ldexp``), probability tables are
normalised from exact integer weights (one division per entry), escapes are
coded with a fixed integer bit-length table and uniform raw-bit chunks.
The encoder-only steps (SVD, least squares, noise indices) may use anything:
their results are transmitted.

Untrusted input: ``parse_header`` checks the binary header and every section
length against the caller's (already bounded) shape before anything is
allocated; decoding garbage yields an ``ICAINRError``, never an exception of
another type; all decoded values are clipped to the header's range, so no
intermediate can overflow.

Modules: ``params`` (the scheme's constants), ``arith`` (deterministic
arithmetic), ``header`` (the binary header), ``side`` (side sections),
``geometry`` (phases and features), ``predictor`` (the closed prediction loop,
low-rank term and least-squares weights), ``tables`` (probability tables,
Laplace priors, escapes), ``entropy`` (rANS coding), ``encoder`` and
``decoder``.
"""

import numpy as np  # noqa: F401  (kept as ``predictive.np``: tests patch numpy through it)

from .arith import det_exp
from .decoder import decode
from .encoder import encode, supports
from .header import MAGIC, NSEC, pack_header, parse_header, validate_stream
from .params import (
    ALPHA, CB, F16, FIT_EVERY, FRAC_MAX_B, GSHIFT, K_MAX, LAMBDA, LCAP, LR_CLIP, MAX_ERROR,
    MAX_RANGE, N0, NBC, NBITS, NBUCKET, NCLS, NF, NG, NHIST, PRIOR_BITS, QV_MAX, QV_MIN, WMAX,
    WQ,
)
# private names that tests inspect (redundant aliases mark them as re-exports)
from .header import _HEAD as _HEAD
from .tables import _categorical as _categorical, _Tables as _Tables

__all__ = [
    "encode", "decode", "supports", "parse_header", "validate_stream", "pack_header",
    "det_exp", "MAGIC", "NSEC",
    "ALPHA", "CB", "F16", "FIT_EVERY", "FRAC_MAX_B", "GSHIFT", "K_MAX", "LAMBDA", "LCAP",
    "LR_CLIP", "MAX_ERROR", "MAX_RANGE", "N0", "NBC", "NBITS", "NBUCKET", "NCLS", "NF", "NG",
    "NHIST", "PRIOR_BITS", "QV_MAX", "QV_MIN", "WMAX", "WQ",
]
