"""The decoded maps moved towards their spatial neighbours, inside their quantisation cells.

A quantised map entry only says which cell of width ``d`` (the step) its value
lies in, and plain reconstruction puts it at the cell's centre: every entry
under ``d / 2`` comes back as zero. At a coarse step that is most entries of
the weaker components (84 % of them on the studyforrest run at 100x), and a
region's average of such a component shrinks towards zero: the decoded regions
lose part of their own variance and their correlations rise. Component maps of
fMRI are spatially smooth, so the decoder moves each entry towards the mean
``p`` of its decoded in-mask 6-neighbours, and never out of its cell::

    a' = a_hat + clip(w_k (p - a_hat), -d/2, d/2)

with one weight ``w_k`` per component, fitted by the encoder by least squares
against the exact map and stored as one byte (``w = code / WEIGHT_SCALE``). The
patterns are then refitted to the moved maps, as they are to the plain ones.

Measured on the maps the default chose at 50-200x (studyforrest, gift,
RAPIDTIDETEST, qap; the same K and step, patterns unquantised): squared error
3-14 % lower (+0.16 to +0.64 dB) and the FCA residual lower under every
parcellation, under compact parcels by half or more.
"""

import numpy as np

#: a stored weight byte ``code`` means ``w = code / WEIGHT_SCALE`` (0 to ~2)
WEIGHT_SCALE = 128.0
#: map columns moved at a time (bounds the working copies: N x this many floats each)
COLUMNS_AT_ONCE = 16


def neighbour_index(mask):
    """``(gather (N, 6), count (N,))``: each masked voxel's in-mask 6-neighbours as rows
    of ``volume[mask]`` (``N``, one past the last row, where a neighbour is outside the
    mask) and how many there are (at least 1)."""
    mask = np.asarray(mask, dtype=bool)
    index = np.full(mask.shape, -1, dtype=np.int64)
    n = int(mask.sum())
    index[mask] = np.arange(n)
    coords = np.argwhere(mask)
    gather = np.full((n, 6), n, dtype=np.int64)
    j = 0
    for axis in range(3):
        for shift in (-1, 1):
            nb = coords.copy()
            nb[:, axis] += shift
            inside = (nb[:, axis] >= 0) & (nb[:, axis] < mask.shape[axis])
            found = np.full(n, -1, dtype=np.int64)
            found[inside] = index[tuple(nb[inside].T)]
            gather[:, j] = np.where(found >= 0, found, n)
            j += 1
    count = np.maximum((gather < n).sum(axis=1), 1).astype(np.float64)
    return gather, count


def neighbour_means(columns, gather, count):
    """Mean of each voxel's in-mask neighbours in each column of ``columns`` (N x C)."""
    padded = np.zeros((columns.shape[0] + 1, columns.shape[1]))
    padded[:-1] = columns
    total = padded[gather[:, 0]]
    for j in range(1, gather.shape[1]):
        total += padded[gather[:, j]]
    total /= count[:, None]
    return total


def fit_weights(exact, decoded, step, neighbourhood, move=False):
    """One weight byte per column of ``decoded`` (N x K, plain reconstruction at ``step``):
    the least-squares ``w`` of ``exact - decoded ~ w (p - decoded)``, ``p`` the
    neighbour means, rounded to ``1 / WEIGHT_SCALE`` and kept within a byte.

    ``move=True`` also moves ``decoded`` in place by the rounded weights, as
    ``move_towards_neighbours`` would (the neighbour means computed once for both).
    """
    gather, count = neighbourhood
    codes = np.zeros(decoded.shape[1], dtype=np.uint8)
    for start in range(0, decoded.shape[1], COLUMNS_AT_ONCE):
        cols = slice(start, start + COLUMNS_AT_ONCE)
        block = decoded[:, cols]
        toward = neighbour_means(block, gather, count)
        toward -= block
        den = np.einsum("ij,ij->j", toward, toward)
        num = np.einsum("ij,ij->j", exact[:, cols] - block, toward)
        w = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
        codes[cols] = np.clip(np.rint(w * WEIGHT_SCALE), 0, 255).astype(np.uint8)
        if move:
            _shift(block, toward, codes[cols], step)
            decoded[:, cols] = block
    return codes


def _shift(block, toward, codes, step):
    """``block += clip(w (p - block), -step/2, step/2)``, with ``toward = p - block``
    (overwritten)."""
    half = 0.5 * float(step)
    toward *= codes.astype(np.float64) / WEIGHT_SCALE
    np.clip(toward, -half, half, out=toward)
    block += toward


def move_towards_neighbours(decoded, step, codes, neighbourhood):
    """``decoded`` (N x K float64, plain reconstruction) moved in place by the stored
    weights; columns whose weight is 0 are left as they are. Returns ``decoded``."""
    gather, count = neighbourhood
    used = np.flatnonzero(codes)
    for start in range(0, used.size, COLUMNS_AT_ONCE):
        cols = used[start:start + COLUMNS_AT_ONCE]
        block = decoded[:, cols]
        toward = neighbour_means(block, gather, count)
        toward -= block
        _shift(block, toward, codes[cols], step)
        decoded[:, cols] = block
    return decoded
