"""The brain mask that the codec models and that every quality measure looks inside."""

import warnings

import numpy as np


def compute_mask(data, affine=None, mean=None, spread=None):
    """Brain mask by nilearn's ``compute_epi_mask`` heuristic; all voxels if it finds none;
    every voxel that varies over time for a run with no baseline (``has_baseline``).

    Parameters
    ----------
    data : ndarray (X, Y, Z, T) or None
        The run in physical units (``None`` when ``mean`` is given).
    affine : array (4, 4), optional
        The run's affine (unused: the mask does not depend on it; kept so that
        callers state which grid the mask belongs to).
    mean : ndarray (X, Y, Z), optional
        The run's mean over time, when it is known (a run read volume by volume).
    spread : ndarray (X, Y, Z), optional
        The run's range over time (largest minus smallest value) per voxel, when
        it is known; computed from ``data`` when that is given. Without either,
        the run is taken to have a baseline.

    Returns
    -------
    ndarray of bool, shape (X, Y, Z)

    Notes
    -----
    ``epi_mask`` reproduces nilearn's ``compute_epi_mask`` (0.10 to 0.14) voxel
    for voxel, a test checks it against nilearn on every real run we have. It is
    written out here because importing ``nilearn.masking`` (and with it
    scikit-learn) took 1.6 s, a sixth of the time to compress a typical run.

    The mask's morphological opening (nilearn's default, 2 iterations of a 3D
    cross) is meant for voxels of a few millimetres. It erases slabs thinner
    than 3 voxels (a single acquired slice) and most of a brain sampled on a
    coarse grid, so it is applied only where it keeps at least half of the
    intensity-thresholded voxels: 2 iterations, else 1, else none.

    The heuristic reads the brain off the mean image, which a derivative with no
    baseline does not show: a run demeaned, z-scored or in percent signal change
    has a mean near zero everywhere. Its mask from the mean was a scatter of voxels
    (2,012 of the 7,558 brain voxels of a z-scored 26 x 31 x 22 x 50 MNI run),
    and every quality figure and the codec's series were confined to it; such a
    run's brain is every voxel that varies.
    """
    del affine
    if spread is None and data is not None:
        spread = np.ptp(data, axis=-1)
    mean = data.mean(axis=-1) if mean is None else mean
    if spread is not None and not has_baseline(mean, spread):
        varying = np.asarray(spread) > 0
        if varying.sum() >= 8:
            return varying
    mean = np.asarray(mean).astype(np.float32)
    mask = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            threshold = epi_mask(mean, opening=0)
            for opening in (2, 1):
                if min(mean.shape) < 3:
                    break
                opened = epi_mask(mean, opening=opening)
                # an opening removes thin bridges to the skull; when it removes most of
                # the brain the voxels are coarse (a 25 mm grid lost 66 of its 84 voxels
                # to the default 2 iterations), so the next milder opening is used
                if opened.sum() >= 0.5 * threshold.sum():
                    mask = opened
                    break
            if mask is None:
                mask = threshold
    except ValueError:  # too few voxels for the histogram's cut-offs
        mask = np.ones(mean.shape, dtype=bool)
    if mask.sum() < 8:  # e.g. a constant or tiny image: keep every voxel
        mask = np.ones(mean.shape, dtype=bool)
    return mask


#: a run has a baseline when the 90th percentile of its voxels' absolute means is at
#: least this multiple of the 90th percentile of their ranges over time. Every raw run
#: we have measured 4.8-34 (ten real runs, three cuts of them, a Haxby slice); the
#: same runs demeaned, z-scored or in percent signal change, below 1e-5
BASELINE_RATIO = 0.5


def has_baseline(mean, spread):
    """Whether the brain shows in a run's mean image: its voxels' values sit on a
    baseline large against how much they vary (``BASELINE_RATIO``).

    Parameters
    ----------
    mean, spread : ndarray (X, Y, Z)
        Each voxel's mean and range (largest minus smallest value) over time.

    Returns
    -------
    bool; True for a run with no varying voxel
    """
    mean, spread = np.asarray(mean, np.float64), np.asarray(spread, np.float64)
    varying = np.isfinite(mean) & np.isfinite(spread) & (spread > 0)
    if not varying.any():
        return True
    level = np.percentile(np.abs(mean[varying]), 90)
    return bool(level >= BASELINE_RATIO * np.percentile(spread[varying], 90))


def epi_mask(mean, opening=2, lower_cutoff=0.2, upper_cutoff=0.85):
    """nilearn's ``compute_epi_mask`` on a mean image given as an array.

    T. Nichols' heuristic: threshold at the least dense point of the intensity
    histogram between the ``lower_cutoff`` and ``upper_cutoff`` quantiles (of
    the mean image smoothed by a 1-voxel FWHM Gaussian when ``opening``), keep
    the largest 6-connected component, then open it with ``opening`` iterations
    of a 3D cross (erode, dilate twice as much, erode).

    Parameters
    ----------
    mean : ndarray (X, Y, Z)
        The run's mean image.
    opening : int
        Iterations of the opening; 0 for none (and no smoothing).

    Returns
    -------
    ndarray of bool, shape (X, Y, Z); all False when nothing passes
    """
    from scipy import ndimage

    arr = np.array(mean, dtype=np.float32 if mean.dtype.kind in "iub" else mean.dtype)
    arr[~np.isfinite(arr)] = 0
    if opening:
        sigma = 1.0 / np.sqrt(8 * np.log(2))  # FWHM of one voxel
        for axis in range(3):
            ndimage.gaussian_filter1d(arr, sigma, output=arr, axis=axis)
    values = np.sort(arr.ravel())
    lower = int(np.floor(lower_cutoff * len(values)))
    upper = min(int(np.floor(upper_cutoff * len(values))), len(values) - 1)
    gap = values[lower + 1:upper + 1] - values[lower:upper]
    at = int(gap.argmax())
    mask = arr >= 0.5 * (values[at + lower] + values[at + lower + 1])
    if opening:
        mask = ndimage.binary_erosion(mask, iterations=opening)
    if mask.any():
        labels, n_labels = ndimage.label(mask)
        if n_labels > 1:
            count = np.bincount(labels.ravel())
            count[0] = 0
            mask = labels == count.argmax()
    if opening:
        mask = ndimage.binary_dilation(mask, iterations=2 * opening)
        mask = ndimage.binary_erosion(mask, iterations=opening)
    return mask
