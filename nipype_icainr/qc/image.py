"""Image fidelity: PSNR (inside the mask and over the whole volume) and SSIM.

Conventions: ``original`` and ``decoded`` are 4D arrays (X, Y, Z, T) in
physical units (``scl_slope``/``scl_inter`` applied), the decoded one exactly
as written to disk; ``mask`` is a boolean (X, Y, Z) brain mask. The data range
of PSNR and SSIM is the original's ``max - min`` over the voxels compared and
all time points, never a nominal dtype range (which would inflate PSNR).
"""

import os

import numpy as np

from .base import Column, Metric


def compression_ratio(raw_bytes, compressed_bytes):
    """Ratio = ``raw_bytes`` / ``compressed_bytes``.

    ``raw_bytes`` is the size of the input's voxel array in its *stored* dtype
    over the full grid (X*Y*Z*T*itemsize, e.g. int16 -> 2 bytes a voxel), not
    the size of a ``.nii.gz`` on disk and not float32.
    """
    if compressed_bytes <= 0:
        raise ValueError("compressed_bytes must be positive")
    return float(raw_bytes) / float(compressed_bytes)


def data_range(original, mask):
    """``max - min`` of ``original`` over the masked voxels and all time points."""
    original, mask = np.asarray(original), np.asarray(mask, dtype=bool)
    if original.ndim != 4:
        vals = original[mask]
        return float(vals.max() - vals.min())
    lo = min(float(original[..., t][mask].min()) for t in range(original.shape[3]))
    hi = max(float(original[..., t][mask].max()) for t in range(original.shape[3]))
    return hi - lo


def _check(original, decoded, mask):
    original = np.asarray(original)
    decoded = np.asarray(decoded)
    if original.shape != decoded.shape:
        raise ValueError(f"shape mismatch: {original.shape} vs {decoded.shape}")
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != original.shape[:3]:
        raise ValueError(f"mask shape {mask.shape} does not match {original.shape[:3]}")
    if not mask.any():
        raise ValueError("empty mask")
    return original, decoded, mask


def psnr(original, decoded, mask):
    """Peak signal-to-noise ratio in dB over the brain mask (``mask`` all True: every voxel).

    ``PSNR = 10 log10(R^2 / MSE)`` with ``MSE`` the mean squared difference over
    every masked voxel and every time point, and ``R`` the original's
    ``max - min`` over the same voxels (see ``data_range``). Returns ``inf`` for
    identical data. Computed volume by volume: memory of one volume in float64,
    whatever the run's length.
    """
    original, decoded, mask = _check(original, decoded, mask)
    sse, count, lo, hi = 0.0, 0, np.inf, -np.inf
    volumes = original.shape[3] if original.ndim == 4 else None
    for t in range(volumes if volumes is not None else 1):
        o = (original[..., t] if volumes is not None else original)[mask].astype(np.float64)
        d = (decoded[..., t] if volumes is not None else decoded)[mask].astype(np.float64)
        sse += float(np.dot(o - d, o - d))
        count += o.size
        lo, hi = min(lo, float(o.min())), max(hi, float(o.max()))
    if sse == 0:
        return float("inf")
    return 10.0 * np.log10((hi - lo) ** 2 / (sse / count))


def max_abs_error(original, decoded):
    """The largest ``|original - decoded|`` over every voxel, volume by volume."""
    original, decoded = np.asarray(original), np.asarray(decoded)
    if original.ndim != 4:
        return float(np.abs(original.astype(np.float64) - decoded).max())
    return max(float(np.abs(original[..., t].astype(np.float64) - decoded[..., t]).max())
               for t in range(original.shape[3]))


def ssim_volumes(n_volumes, limit):
    """Indices of at most ``limit`` volumes spread evenly over a run (all when shorter)."""
    if limit is None or n_volumes <= limit:
        return np.arange(n_volumes)
    return np.unique(np.linspace(0, n_volumes - 1, int(limit)).round().astype(int))


def ssim(original, decoded, mask, win_size=7, volumes=None, value_range=None):
    """Mean structural similarity, 3D per volume, averaged over time.

    For each volume, scikit-image's ``structural_similarity`` (7x7x7 uniform
    window, K1 = 0.01, K2 = 0.03) is computed on both volumes with voxels
    outside the mask set to 0 and with ``data_range`` the original's
    ``max - min`` over the mask and all time points; the SSIM map is averaged
    over the masked voxels only, then over volumes. Axes shorter than the
    window shrink it (odd size, at least 3). ``volumes``: indices of the volumes
    to average over (default every volume; see ``ssim_volumes``). ``value_range``:
    the ``data_range`` to use when the arrays hold a sample of a run's volumes (the
    whole run's ``max - min`` over the mask).
    """
    from skimage.metrics import structural_similarity

    original = np.asarray(original)
    decoded = np.asarray(decoded)
    original, decoded, mask = _check(original, decoded, mask)
    rng = (data_range(original, mask) or 1.0) if value_range is None else float(value_range)
    win = min(win_size, *original.shape[:3])
    win = win if win % 2 else win - 1
    if win < 3:
        raise ValueError("each spatial axis needs at least 3 voxels for SSIM")

    def score(t):
        a = np.where(mask, original[..., t], 0.0).astype(np.float64)
        b = np.where(mask, decoded[..., t], 0.0).astype(np.float64)
        _, smap = structural_similarity(a, b, win_size=win, data_range=rng, full=True)
        return float(smap[mask].mean())

    todo = list(range(original.shape[3]) if volumes is None else volumes)
    # scipy.ndimage's filters release the GIL: two volumes at once measured 2.2x faster
    # on two cores; the scores are the same and averaged in the same order
    if len(todo) > 1 and (os.cpu_count() or 1) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=2) as pool:
            scores = list(pool.map(score, todo))
    else:
        scores = [score(t) for t in todo]
    return float(np.mean(scores))


class PSNR(Metric):
    name = "psnr"
    title = "Peak signal-to-noise ratio"
    definition = ("10 log10(R^2 / MSE): inside the brain mask with R the original's range "
                  "there, and over every voxel with R the whole run's range")
    columns = (Column("psnr_db", "PSNR dB", "{:.2f}", "inside the brain mask", group=True),
               Column("psnr_full_db", "full-volume PSNR dB", "{:.2f}", "every voxel"))
    automatic = True

    def compare(self, ref, decoded, ctx):
        o, d = ctx.original.data, decoded.data
        full = np.ones(ctx.mask.shape, dtype=bool)
        return {"values": {"psnr_db": psnr(o, d, ctx.mask), "psnr_full_db": psnr(o, d, full)},
                "details": {"mask_voxels": int(np.count_nonzero(ctx.mask))}}


class SSIM(Metric):
    name = "ssim"
    title = "Structural similarity"
    definition = "3D SSIM per volume (7x7x7 window) averaged over mask voxels and time"
    columns = (Column("ssim", "SSIM", "{:.4f}", "3D per volume, averaged over the mask"),)
    automatic = True

    def missing(self, ctx):
        if min(ctx.mask.shape) < 3:
            return "an axis under 3 voxels"
        return None

    def compare(self, ref, decoded, ctx):
        return {"values": {"ssim": ssim(ctx.original.data, decoded.data, ctx.mask)},
                "details": {}}
