"""Load and check a 4D NIfTI, then derive what the network is fitted to.

Load -> brain mask (nilearn ``compute_epi_mask``) -> mean frame -> voxel
coordinates -> FastICA of the masked, mean-removed series (scikit-learn).
"""

import os
import warnings

import numpy as np

from .errors import ICAINRError

#: smallest number of volumes the codec accepts
MIN_TIMEPOINTS = 8


def load_bold(path):
    """Read a 4D NIfTI with nibabel and check it.

    Parameters
    ----------
    path : str or os.PathLike
        A NIfTI-1 or NIfTI-2 file (``.nii`` or ``.nii.gz``).

    Returns
    -------
    img : nibabel image
        The image (its header is kept whole).
    data : ndarray of float64, shape (X, Y, Z, T)
        Values in physical units (``scl_slope``/``scl_inter`` applied).

    Raises
    ------
    ICAINRError
        Not a file, not NIfTI, not 4D, too few volumes, or NaN/Inf values.
    """
    import nibabel as nib

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ICAINRError(path, "no such file")
    try:
        img = nib.load(path)
    except Exception as exc:  # nibabel raises several types for non-images
        raise ICAINRError(path, f"not a readable NIfTI image ({_first_line(exc)})") from None
    if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)):
        raise ICAINRError(path, f"not a NIfTI image (nibabel read it as {type(img).__name__})")
    shape = img.shape
    if len(shape) != 4:
        raise ICAINRError(path, f"expected a 4D image (x, y, z, t), got shape {tuple(shape)}")
    if min(shape[:3]) < 1:
        raise ICAINRError(path, f"the image has an empty spatial axis, shape {shape[:3]}")
    if shape[3] < MIN_TIMEPOINTS:
        raise ICAINRError(path, f"needs at least {MIN_TIMEPOINTS} volumes, got {shape[3]}")
    dtype = img.get_data_dtype()
    if dtype.kind not in "iuf":
        raise ICAINRError(path, f"unsupported data type {dtype}")
    try:
        data = np.asarray(img.dataobj, dtype=np.float64)
    except Exception as exc:
        raise ICAINRError(path, f"cannot read the voxel data ({_first_line(exc)})") from None
    n_bad = int(data.size - np.count_nonzero(np.isfinite(data)))
    if n_bad:
        raise ICAINRError(path, f"contains {n_bad} NaN/Inf values; the codec needs finite data")
    return img, data


def compute_mask(img, data):
    """Brain mask from nilearn's ``compute_epi_mask``; all voxels if it finds none.

    The mask's morphological opening (nilearn's default, 2 iterations of a 3D
    cross) erases slabs thinner than 3 voxels, e.g. a single acquired slice;
    there the mask is the intensity threshold alone (``opening=False``).
    Returns a boolean array of shape (X, Y, Z).
    """
    import nibabel as nib
    from nilearn.masking import compute_epi_mask

    mean = data.mean(axis=-1)
    mean_img = nib.Nifti1Image(mean.astype(np.float32), img.affine)
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


def voxel_coordinates(mask):
    """Masked voxel indices scaled to [-1, 1] per axis, as float32 (N, 3), C order."""
    idx = np.argwhere(mask).astype(np.float32)
    extent = np.maximum(np.array(mask.shape, dtype=np.float32) - 1.0, 1.0)
    return 2.0 * idx / extent - 1.0


def ica_decomposition(series, n_components, seed, max_iter):
    """Spatial ICA of the mean-removed masked series with scikit-learn's FastICA.

    Parameters
    ----------
    series : ndarray (N voxels, T)
        Mean-removed, normalised time series (voxels are the samples).
    n_components : int
        K; reduced to ``min(K, T - 1, N - 1)``.

    Returns
    -------
    maps : ndarray (N, K), float32
        Spatial maps, unit variance each.
    patterns : ndarray (K, T), float32
        Activation patterns such that ``maps @ patterns`` approximates ``series``
        (up to the per-timepoint voxel mean).
    """
    from sklearn.decomposition import FastICA
    from sklearn.exceptions import ConvergenceWarning

    k = int(min(n_components, series.shape[1] - 1, series.shape[0] - 1))
    ica = FastICA(n_components=k, whiten="unit-variance", random_state=seed,
                  max_iter=max_iter, tol=1e-4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        maps = ica.fit_transform(series)
    patterns = ica.mixing_.T
    # order by explained energy so that truncation keeps the strongest patterns
    energy = (patterns ** 2).sum(axis=1)
    order = np.argsort(-energy)
    return maps[:, order].astype(np.float32), patterns[order].astype(np.float32)


def _first_line(exc):
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
