"""The codec's brain mask reproduces nilearn's ``compute_epi_mask`` voxel for voxel.

``masking.epi_mask`` is a transcription of nilearn's heuristic (it saves the
1.6 s import of nilearn and scikit-learn on every compress); these tests hold it
to nilearn on every real run available and on synthetic edge cases.
"""

import glob
import os
import warnings

import numpy as np
import pytest

from nipype_icainr.masking import compute_mask, epi_mask

from .conftest import derivatives

HERE = os.path.dirname(__file__)
SHARED = os.path.join(HERE, "..", "..", "shared", "data")
REAL_RUNS = sorted(glob.glob(os.path.join(SHARED, "corpus", "*.nii*"))
                   + glob.glob(os.path.join(SHARED, "studyforrest", "**", "*_bold.nii.gz"),
                               recursive=True)
                   + glob.glob(os.path.join(HERE, "..", "nipype_icainr", "data", "sample", "**",
                                            "*_bold.nii.gz"), recursive=True))


def _nilearn(mean, opening):
    import nibabel as nib
    from nilearn.masking import compute_epi_mask

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        img = compute_epi_mask(nib.Nifti1Image(mean, np.eye(4)), opening=opening)
    return np.asarray(img.dataobj).astype(bool)


def _run_mean(path):
    import nibabel as nib

    data = np.asanyarray(nib.load(path).dataobj)
    return data.reshape(data.shape[:3] + (-1,)).mean(axis=-1).astype(np.float32)


@pytest.mark.parametrize("path", REAL_RUNS, ids=os.path.basename)
def test_epi_mask_matches_nilearn_on_real_runs(path):
    mean = _run_mean(path)
    for opening in (0, 1, 2):
        assert np.array_equal(epi_mask(mean, opening=opening), _nilearn(mean, opening))


@pytest.mark.parametrize("seed", range(4))
def test_epi_mask_matches_nilearn_on_synthetic_heads(seed):
    rng = np.random.default_rng(seed)
    shape = tuple(rng.integers(6, 24, size=3))
    grid = np.indices(shape).astype(np.float32)
    centre = np.array(shape, np.float32)[:, None, None, None] / 2
    radius = np.sqrt(((grid - centre) ** 2).sum(axis=0))
    mean = (1000 * (radius < min(shape) / 3) + rng.normal(0, 50, shape)).astype(np.float32)
    mean[rng.random(shape) < 0.02] *= 3  # a few bright vessels outside the head
    for opening in (0, 1, 2):
        assert np.array_equal(epi_mask(mean, opening=opening), _nilearn(mean, opening))


def test_an_image_without_contrast_keeps_every_voxel():
    assert compute_mask(None, mean=np.full((3, 3, 3), 7.0)).all()
    assert compute_mask(None, mean=np.zeros((1, 1, 2))).all()


@pytest.mark.parametrize("path", REAL_RUNS, ids=os.path.basename)
def test_a_derivative_with_no_baseline_is_masked_by_what_varies(path):
    """A real run has a baseline and keeps nilearn's mask of its mean; the same run
    demeaned, z-scored or in percent signal change has none, and its brain is every
    voxel that varies (the mask from its near-zero mean was a scatter of voxels)."""
    import nibabel as nib

    from nipype_icainr.masking import has_baseline

    data = np.asarray(nib.load(path).dataobj, dtype=np.float64)
    data = data.reshape(data.shape[:3] + (-1,))
    spread = np.ptp(data, axis=-1)
    assert has_baseline(data.mean(axis=-1), spread)
    assert np.array_equal(compute_mask(data), compute_mask(None, mean=data.mean(axis=-1)))
    for name, derived in derivatives(data).items():
        assert not has_baseline(derived.mean(axis=-1), np.ptp(derived, axis=-1)), name
        assert np.array_equal(compute_mask(derived), np.ptp(derived, axis=-1) > 0), name
