"""The brain mask that the codec models and that every quality measure looks inside."""

import warnings

import numpy as np


def compute_mask(data, affine=None, mean=None):
    """Brain mask from nilearn's ``compute_epi_mask``; all voxels if it finds none.

    Parameters
    ----------
    data : ndarray (X, Y, Z, T) or None
        The run in physical units (``None`` when ``mean`` is given).
    affine : array (4, 4), optional
        The run's affine (the identity when omitted; the mask does not depend on it).
    mean : ndarray (X, Y, Z), optional
        The run's mean over time, when it is known (a run read volume by volume).

    Returns
    -------
    ndarray of bool, shape (X, Y, Z)

    Notes
    -----
    The mask's morphological opening (nilearn's default, 2 iterations of a 3D
    cross) is meant for voxels of a few millimetres. It erases slabs thinner
    than 3 voxels (a single acquired slice) and most of a brain sampled on a
    coarse grid, so it is applied only where it keeps at least half of the
    intensity-thresholded voxels: 2 iterations, else 1, else none.
    """
    import nibabel as nib
    from nilearn.masking import compute_epi_mask

    mean = data.mean(axis=-1) if mean is None else mean
    mean_img = nib.Nifti1Image(mean.astype(np.float32),
                               np.eye(4) if affine is None else np.asarray(affine, float))
    mask = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            threshold = _epi_mask(compute_epi_mask, mean_img, False)
            for opening in (2, 1):
                if min(mean.shape) < 3:
                    break
                opened = _epi_mask(compute_epi_mask, mean_img, opening)
                # an opening removes thin bridges to the skull; when it removes most of the
                # brain the voxels are coarse (a 25 mm grid lost 66 of its 84 voxels to the
                # default 2 iterations), so the next milder opening is used
                if opened.sum() >= 0.5 * threshold.sum():
                    mask = opened
                    break
            if mask is None:
                mask = threshold
    except Exception:  # e.g. a constant or tiny image: keep every voxel
        mask = np.ones(mean.shape, dtype=bool)
    if mask.sum() < 8:
        mask = np.ones(mean.shape, dtype=bool)
    return mask


def _epi_mask(compute_epi_mask, mean_img, opening):
    return np.asarray(compute_epi_mask(mean_img, opening=opening).dataobj).astype(bool)
