"""The brain mask that the codec models and that every quality measure looks inside."""

import warnings

import numpy as np


def compute_mask(data, affine=None):
    """Brain mask from nilearn's ``compute_epi_mask``; all voxels if it finds none.

    Parameters
    ----------
    data : ndarray (X, Y, Z, T)
        The run in physical units.
    affine : array (4, 4), optional
        The run's affine (the identity when omitted; the mask does not depend on it).

    Returns
    -------
    ndarray of bool, shape (X, Y, Z)

    Notes
    -----
    The mask's morphological opening (nilearn's default, 2 iterations of a 3D
    cross) erases slabs thinner than 3 voxels, e.g. a single acquired slice;
    there the mask is the intensity threshold alone (``opening=False``).
    """
    import nibabel as nib
    from nilearn.masking import compute_epi_mask

    mean = data.mean(axis=-1)
    mean_img = nib.Nifti1Image(mean.astype(np.float32),
                               np.eye(4) if affine is None else np.asarray(affine, float))
    opening = 2 if min(mean.shape) >= 3 else False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mask = np.asarray(compute_epi_mask(mean_img, opening=opening).dataobj).astype(bool)
    except Exception:  # e.g. a constant or tiny image: keep every voxel
        mask = np.ones(mean.shape, dtype=bool)
    if mask.sum() < 8:
        mask = np.ones(mean.shape, dtype=bool)
    return mask
