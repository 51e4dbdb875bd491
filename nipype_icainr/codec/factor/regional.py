"""The regional layer: block averages of the factorization's residual, coded coarsely.

A truncated factorization drops whatever lies outside its K components, and
that error is spatially coherent: it moves the averages of regions (parcels,
ROIs, spheres) and with them the region-to-region correlations a connectivity
study computes. On a skull-stripped 64 x 64 x 29 x 260 run at 100x (the corpus
benchmark, with and without the layer), about 8 % of the file spent on the
residual's block averages cut the connectivity error on spatially compact parcels
fivefold (0.026 -> 0.0053) for 0.09 dB of PSNR.

The layer splits the grid into blocks of ``regional_voxels`` voxels per axis
(4: 64-voxel blocks; ``block_factors``), takes for every block holding coded voxels the mean
of the residual at every time point, quantises those means with one step and
codes the (T, B) array of levels losslessly with JPEG XL (imagecodecs, as the
mean frame: on that run's levels its context modelling landed within 2 % of their
zeroth-order entropy, effort 9 alike). The decoder adds each block's value to every coded voxel in it.

Payload: ``uvarint zigzag(lowest level) | JPEG XL codestream`` of the levels
minus the lowest, a (T, B) 16-bit greyscale image; blocks in raster (C) order of
the block grid, as ``Blocks`` numbers them from the mask.
"""

import numpy as np

from ..container import read_uvarint, uvarint
from ..errors import ICAINRError

TAG = "REGN"
#: largest block edge in voxels along one axis
MAX_FACTOR = 32
#: the finest step: half the RMS of the residual's block means (finer only spends
#: bytes on the block means' noise) ...
FINEST_STEP_RMS = 0.5
#: ... and the coarsest worth coding: beyond it nearly every level is zero
COARSEST_STEP_RMS = 4.0
#: the layer is not coded in fewer bytes than this (JPEG XL's own framing is ~20)
MIN_BYTES = 64
#: JPEG XL effort (as the mean frame)
EFFORT = 7
_LEVELS = 65536


def block_factors(grid, edge):
    """Voxels per block along x, y, z: ``edge``, at most the grid's size on that axis."""
    return tuple(int(max(1, min(edge, n))) for n in list(grid)[:3])


class Blocks:
    """The blocks of ``factors`` voxels that hold voxels of ``mask``.

    ``index`` (N,) is each coded voxel's block (mask voxels in C order, the
    series' row order); ``counts`` (B,) the coded voxels per block.
    """

    def __init__(self, mask, factors):
        from scipy import sparse

        mask = np.asarray(mask, bool)
        self.factors = tuple(int(f) for f in factors)
        where = np.nonzero(mask)
        grid = tuple(-(-s // f) for s, f in zip(mask.shape, self.factors))
        key = np.ravel_multi_index(tuple(i // f for i, f in zip(where, self.factors)), grid)
        _, self.index = np.unique(key, return_inverse=True)
        self.index = self.index.ravel()
        self.n_blocks = int(self.index.max()) + 1 if self.index.size else 0
        self.counts = np.bincount(self.index, minlength=self.n_blocks).astype(np.float64)
        n = self.index.size
        # block sums as one sparse product: no (N, T) temporary
        self._sum = sparse.csr_array((np.ones(n), (self.index, np.arange(n))),
                                     shape=(self.n_blocks, n))

    def means(self, rows):
        """Block means of ``rows`` (N, ...) -> (B, ...)."""
        sums = self._sum @ np.asarray(rows, dtype=np.float64)
        return sums / self.counts.reshape((-1,) + (1,) * (sums.ndim - 1))

    def add_to(self, series, layer, chunk=65536):
        """``series[i] += layer[block of i]`` in place, a chunk of rows at a time."""
        for start in range(0, series.shape[0], chunk):
            stop = min(start + chunk, series.shape[0])
            series[start:stop] += layer[self.index[start:stop]]
        return series

    def worth_coding(self):
        """At least two blocks, and on average at least eight voxels in each: a layer
        of near single-voxel blocks repeats what the factorization codes."""
        return self.n_blocks >= 2 and self.index.size >= 8 * self.n_blocks


def least_bytes(blocks, n_timepoints):
    """What a layer of ``blocks`` is sure to fit in at its coarsest step: JPEG XL's
    framing and half a bit per level (at 4 RMS about 5 % of Gaussian levels are not
    zero: 0.3 bits of entropy)."""
    return MIN_BYTES + blocks.n_blocks * n_timepoints / 16


def _zigzag(v):
    return 2 * v if v >= 0 else -2 * v - 1


def _unzigzag(u):
    return u // 2 if u % 2 == 0 else -(u + 1) // 2


def encode(values, step):
    """Levels of ``values`` (B, T) at ``step``: ``(payload, decoded (B, T))``.

    Levels are reconstructed at their centres. Moving non-zero levels towards zero
    by a fitted fraction of a step (their centroid) was measured: +0.03 dB, but
    connectivity under compact parcels twice worse on RAPIDTIDETEST at 200x (0.026
    against 0.012): the full levels restore more of the regions' own variance.
    """
    import imagecodecs

    from ..frame import codestream

    levels = np.round(values / step).astype(np.int64)
    lo = int(levels.min())
    levels = np.clip(levels - lo, 0, _LEVELS - 1)
    image = np.ascontiguousarray(levels.T.astype(np.uint16))  # (T, B): time down
    payload = uvarint(_zigzag(lo)) + codestream(bytes(
        imagecodecs.jpegxl_encode(image, lossless=True, effort=EFFORT)))
    return payload, (levels + lo) * float(step)


def decode(payload, n_blocks, n_timepoints, step, source):
    """Inverse of ``encode``: the layer (B, T) float64."""
    import imagecodecs

    if not payload:
        raise ICAINRError(source, "the regional section is empty")
    zz, pos = read_uvarint(payload, 0, source, "regional offset")
    if zz >= 2 * _LEVELS * _LEVELS:
        raise ICAINRError(source, "the regional offset is implausible")
    # decoded into an array of the expected shape: libjxl's basic info is checked
    # against it before any pixel is allocated
    image = np.empty((n_timepoints, n_blocks), dtype=np.uint16)
    try:
        imagecodecs.jpegxl_decode(bytes(payload[pos:]), out=image)
    except Exception:
        raise ICAINRError(source, f"the regional section is not a {n_timepoints} x "
                                  f"{n_blocks} 16-bit image") from None
    return (image.T.astype(np.float64) + _unzigzag(zz)) * step


def fit(blocks, residual_means, room):
    """The finest step whose layer fits ``room`` bytes: ``(payload, layer, step)``.

    ``residual_means`` (B, T) are the block means of the series minus what the
    factorization decodes. Steps from ``FINEST_STEP_RMS`` to ``COARSEST_STEP_RMS``
    times their RMS; ``None`` when even the coarsest does not fit, or the means
    are zero.
    """
    rms = float(np.sqrt(np.mean(residual_means ** 2))) if residual_means.size else 0.0
    if room < MIN_BYTES or not rms > 0:
        return None

    def at(log_step):
        step = float(f"{np.exp(log_step):.4g}")  # 4 digits: the header stores it
        payload, layer = encode(residual_means, step)
        return (payload, layer, step) if len(payload) <= room else None

    lo, hi = np.log(FINEST_STEP_RMS * rms), np.log(COARSEST_STEP_RMS * rms)
    best = at(hi)
    if best is None:
        return None
    finest = at(lo)
    if finest is not None:
        return finest
    for _ in range(8):  # bisection on the log step: within 1 % of the step
        mid = 0.5 * (lo + hi)
        found = at(mid)
        if found is not None:
            hi, best = mid, found
        else:
            lo = mid
    return best


def sse_change(blocks, residual_means, layer):
    """How the series' squared error changes when the layer is added: with R the
    residual and L the layer expanded to voxels, ``|R - L|^2 - |R|^2``, from block
    sums alone (no N x T product)."""
    counts = blocks.counts[:, None]
    return float(np.sum(counts * (layer ** 2 - 2.0 * residual_means * layer)))
