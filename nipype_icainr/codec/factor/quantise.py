"""Quantisation of maps and patterns, and the least-squares refit between them.

One step ``d`` for every coefficient in the energy domain (reverse
water-filling): map entries get step ``d``; pattern row k gets ``d / ||A_k||``
because an error there is spread over the map's energy. After the maps are
quantised the patterns are refitted to them by least squares, then quantised
in the temporal DCT domain (orthonormal DCT-II, so the step keeps its meaning).
Both are rounded with the quantiser's ``DEAD_ZONE`` offset (0: plain rounding;
the ``dead_zone`` configuration key sets it). From format 6 the decoded maps are
moved towards their neighbours (``neighbours``) before the patterns are refitted.
"""

from typing import NamedTuple, Optional

import numpy as np

from ..header import round_sig

MAX_SYMBOL = 1 << 16  # constriction needs a bounded support

#: rounding offset of the dead-zone quantiser (0 = plain rounding). A dead zone saves rate
#: by rounding small map entries to zero, and so biases every region's average of a weak
#: component towards zero: connectivity pays for it. Measured at 50-200x on the gift,
#: qap, rapidtide and studyforrest runs (``benchmarks/config_variants.py``): 0.1 against
#: 0 moved PSNR by -0.07 to +0.25 dB and raised the FCA residual of most cells (the gift
#: runs' at 50-100x by 29-76 %); the corpus benchmark with 0 keeps every PSNR win over
#: the peers and wins more FCA cells (README).
DEAD_ZONE = 0.0


def to_frequency(patterns):
    """Orthonormal DCT-II of each pattern row (scipy's ``dct(type=2, norm="ortho")``).

    Computed with ``numpy.fft`` by Makhoul's reordering (one complex FFT of the
    even samples followed by the odd ones reversed); within 1e-15 of scipy's
    relative to the input (tested). Not scipy's: importing ``scipy.fft`` (and
    with it ``scipy.special``) cost 0.3 s of a 2.3 s decompression.
    """
    x = np.asarray(patterns, dtype=np.float64)
    n = x.shape[1]
    reordered = np.concatenate([x[:, ::2], x[:, 1::2][:, ::-1]], axis=1)
    twiddle = np.exp(-0.5j * np.pi * np.arange(n) / n)
    out = 2.0 * (np.fft.fft(reordered, axis=1) * twiddle).real
    out[:, 0] *= np.sqrt(1.0 / (4 * n))
    out[:, 1:] *= np.sqrt(1.0 / (2 * n))
    return out


def to_time(coefficients):
    """Inverse of ``to_frequency`` (scipy's ``idct(type=2, norm="ortho")``)."""
    y = np.array(coefficients, dtype=np.float64)
    n = y.shape[1]
    y[:, 0] /= np.sqrt(1.0 / (4 * n))
    y[:, 1:] /= np.sqrt(1.0 / (2 * n))
    mirrored = np.zeros_like(y)  # y[N - k], with y[N] = 0
    mirrored[:, 1:] = y[:, :0:-1]
    twiddle = np.exp(0.5j * np.pi * np.arange(n) / n)
    reordered = np.fft.ifft(0.5 * (y - 1j * mirrored) * twiddle, axis=1).real
    out = np.empty_like(reordered)
    half = (n + 1) // 2
    out[:, ::2] = reordered[:, :half]
    out[:, 1::2] = reordered[:, half:][:, ::-1]
    return out


def quantize_maps(maps, step, dead_zone=None):
    """Dead-zone uniform quantiser: ``sign(x) floor(|x| / step + 0.5 - dead_zone)``.

    Clipped to +-MAX_SYMBOL; computed in place on one working copy (the maps
    of a large run are hundreds of MB).
    """
    dz = DEAD_ZONE if dead_zone is None else dead_zone
    magnitude = np.abs(maps)
    magnitude /= step
    magnitude += 0.5
    magnitude -= dz
    np.floor(magnitude, out=magnitude)
    np.clip(magnitude, 0, MAX_SYMBOL, out=magnitude)
    q = magnitude.astype(np.int32)
    del magnitude
    np.negative(q, out=q, where=np.asarray(maps) < 0)
    return q


def pattern_steps(norms, patterns, step):
    """Step of each pattern row: ``step / ||A_k||`` (``step`` for an all-zero map).

    ``norms``: the quantised maps' column norms. Never so fine that a symbol
    would leave +-MAX_SYMBOL, nor below float32's range.
    """
    steps = np.where(norms > 0, step / np.maximum(norms, 1e-30), step)
    floor = np.abs(patterns).max(axis=1) / (MAX_SYMBOL - 1)
    return np.maximum(np.maximum(steps, floor), 1e-30).astype(np.float32)


def dequantize(q_maps, q_patterns, step, params, transform="dct", weights=None, board=None):
    """Maps and time-domain patterns from their symbols; with ``weights`` (format 6) the
    maps are moved towards their neighbours on ``board`` (``neighbours``)."""
    maps = q_maps.astype(np.float64) * step
    if weights is not None:
        from .neighbours import move_towards_neighbours

        move_towards_neighbours(maps, step, weights, board.neighbourhood())
    return maps, dequantize_patterns(q_patterns, params, transform)


def dequantize_patterns(q_patterns, params, transform="dct"):
    """Time-domain patterns from their symbols (``params[:, 0]``: each row's step)."""
    patterns = q_patterns.astype(np.float64) * params[:, 0].astype(np.float64)[:, None]
    return to_time(patterns) if transform == "dct" else patterns


class Quantised(NamedTuple):
    """What ``quantize_all`` returns."""

    step: float
    q_maps: np.ndarray
    q_patterns: np.ndarray
    #: each pattern row's step
    steps: np.ndarray
    #: the refitted patterns before quantisation, in the coded domain
    exact: np.ndarray
    #: A^T X and A^T A of the decoded maps: the squared error without an N x T product
    cross: np.ndarray
    gram: np.ndarray
    #: the neighbour weight bytes (``neighbours``), None when the maps are not moved
    weights: Optional[np.ndarray] = None
    #: the decoded maps (moved with ``weights``), float64: what the decoder computes
    maps: Optional[np.ndarray] = None


def quantize_all(series, maps, step, transform="dct", dead_zone=None, board=None):
    """Quantise the maps at ``step``, refit the patterns to them and quantise those.

    With ``board`` (a ``Checkerboard`` whose ``move_maps`` is set; format 6) the
    decoded maps are moved towards their neighbours (``neighbours``) before the
    patterns are refitted to them, with weights fitted here. Returns a ``Quantised``.
    """
    step = round_sig(max(float(step), float(np.abs(maps).max(initial=0.0)) / (MAX_SYMBOL - 1),
                         1e-30), direction=1)
    q_maps = quantize_maps(maps, step, dead_zone)
    maps_hat = q_maps.astype(np.float64) * step
    weights = None
    if board is not None and board.move_maps:
        from .neighbours import fit_weights

        weights = fit_weights(maps, maps_hat, step, board.neighbourhood(), move=True)
    # (X^T A)^T rather than A^T X: OpenBLAS runs A^T X up to 30x slower on busy cores
    cross = (series.T @ maps_hat).T
    gram = maps_hat.T @ maps_hat
    exact = refit(gram, cross)
    if transform == "dct":
        exact = to_frequency(exact)
    # the column norms from the Gram matrix's diagonal (no second pass over the maps)
    steps = pattern_steps(np.sqrt(np.diag(gram)), exact, step)
    scaled = exact / steps[:, None].astype(np.float64)
    if transform == "dct":
        q_patterns = quantize_maps(scaled, 1.0, dead_zone)
    else:  # format 2: plain rounding
        q_patterns = np.clip(np.rint(scaled), -MAX_SYMBOL, MAX_SYMBOL).astype(np.int32)
    return Quantised(step, q_maps, q_patterns, steps, exact, cross, gram, weights, maps_hat)


def refit(gram, cross):
    g = gram.copy()
    g[np.diag_indices_from(g)] += 1e-9 * max(float(np.trace(g)), 1.0)
    return np.linalg.solve(g, cross)


def squared_error(energy, gram, cross, patterns):
    """``||X - A P||^2`` from ``||X||^2``, ``A^T A`` and ``A^T X``: no N x T product."""
    return float(energy - 2.0 * np.sum(cross * patterns)
                 + np.sum(patterns * (gram @ patterns)))


def prefix_errors(energy, gram, cross):
    """``||X - A_k P_k||^2`` for every prefix k = 1..K of the maps, with ``P_k`` refitted
    to the first k maps: one Cholesky factorisation for all of them.

    With ``G = L L^T``, the refitted error is ``||X||^2 - ||L_k^-1 C_k||^2``, and the
    first k rows of ``L^-1 C`` depend only on the first k maps: a running sum of their
    squared norms. The same ridge as ``refit`` (scaled to the whole trace, so at most
    1e-9 of the energy apart from refitting each prefix alone); O(K^2 T) instead of
    O(K^3 T) for refitting and measuring each prefix (a 1,452-volume run surveys 256
    components).
    """
    from scipy.linalg import LinAlgError, cho_factor, solve_triangular

    g = gram.copy()
    g[np.diag_indices_from(g)] += 1e-9 * max(float(np.trace(g)), 1.0)
    try:
        lower = cho_factor(g, lower=True, check_finite=False)[0]
    except LinAlgError:  # not numerically positive definite: refit each prefix alone
        return np.array([squared_error(energy, gram[:k, :k], cross[:k],
                                       refit(gram[:k, :k], cross[:k]))
                         for k in range(1, gram.shape[0] + 1)])
    z = solve_triangular(np.tril(lower), cross, lower=True, check_finite=False)
    return energy - np.cumsum(np.einsum("ij,ij->i", z, z))
