"""``nipype_icainr.metrics`` against values computed by hand."""

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from nipype_icainr import metrics
from nipype_icainr.metrics import fca_from_signals


def test_psnr_of_a_constant_error():
    # original: a ramp 0..10 over 2x2x2 voxels x 3 volumes -> range over the mask R = 10;
    # decoded = original + 2 everywhere -> MSE = 4; PSNR = 10 log10(R^2 / MSE)
    # = 10 log10(100 / 4) = 10 log10(25) = 13.9794 dB
    orig = np.linspace(0.0, 10.0, 24).reshape(2, 2, 2, 3)
    dec = orig + 2.0
    mask = np.ones((2, 2, 2), bool)
    assert metrics.psnr(orig, dec, mask) == pytest.approx(13.979400086720377, abs=1e-9)
    # the sign of the error does not matter, and the range is the original's, not the decoded's
    assert metrics.psnr(orig, orig - 2.0, mask) == pytest.approx(13.979400086720377, abs=1e-9)
    # half the voxels masked out: range and MSE only over the 4 kept voxels x 3 volumes;
    # kept values are orig[0] = 0..10*11/23 (first 12 of the ramp): R = 10 * 11 / 23
    half = np.zeros((2, 2, 2), bool)
    half[0] = True
    r = 10.0 * 11 / 23
    assert metrics.psnr(orig, dec, half) == pytest.approx(10 * np.log10(r ** 2 / 4.0))
    assert metrics.psnr(orig, orig, mask) == float("inf")


def test_compression_ratio():
    # 80 x 80 x 35 x 156 int16 = 69,888,000 bytes; in 698,880 bytes -> exactly 100
    assert metrics.compression_ratio(80 * 80 * 35 * 156 * 2, 698_880) == 100.0
    assert metrics.compression_ratio(1000, 8) == 125.0
    with pytest.raises(ValueError):
        metrics.compression_ratio(1000, 0)


def _orthonormal_signals(n_t, n, seed=0):
    """``n`` unit-variance signals orthogonal to each other and to a constant and a linear
    trend: detrending (as the maskers do) leaves them alone, so their Pearson correlations
    are exactly 0 with each other and 1 with themselves."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_t, dtype=float)
    basis = np.column_stack([np.ones(n_t), t, rng.normal(size=(n_t, n))])
    q, _ = np.linalg.qr(basis)
    return q[:, 2:] * np.sqrt(n_t)


def test_region_pair_correlation_residual_by_hand():
    a, b = _orthonormal_signals(60, 2).T
    # original regions (A, B, A): r12 = 0, r13 = 1, r23 = 0
    # decoded regions  (A, B, B): r12 = 0, r13 = 0, r23 = 1
    # |dr| over the 3 pairs = (0, 1, 1): mean 2/3, std sqrt(2/3 - 4/9) = sqrt(2)/3
    res = fca_from_signals(np.column_stack([a, b, a]), np.column_stack([a, b, b]))
    assert res["mean_abs_dr"] == pytest.approx(2 / 3, abs=1e-12)
    assert res["std_abs_dr"] == pytest.approx(np.sqrt(2) / 3, abs=1e-12)
    assert res["n_regions"] == 3
    # a region constant in the decoded run keeps its pairs, uncorrelated (r = 0):
    # |dr| over the 3 pairs = (0, 1, 0)
    res = fca_from_signals(np.column_stack([a, b, a]), np.column_stack([a, b, np.zeros(60)]))
    assert res["n_regions"] == 2 and res["mean_abs_dr"] == pytest.approx(1 / 3, abs=1e-12)
    # with fewer than two regions varying in the decoded run there is nothing to compare
    with pytest.raises(ValueError, match="decoded run"):
        fca_from_signals(np.column_stack([a, b, a]),
                         np.column_stack([a, np.zeros(60), np.zeros(60)]))
    # a region constant in the original (outside the field of view) is dropped
    res = fca_from_signals(np.column_stack([a, b, np.zeros(60)]),
                           np.column_stack([a, b, a]))
    assert res["n_regions"] == 2 and res["mean_abs_dr"] == pytest.approx(0.0, abs=1e-12)


def test_fca_residuals_on_images_by_hand():
    # three regions of 2x2x2 voxels in a 6x2x2 grid; every voxel of a region carries the
    # region's signal on its own baseline (which detrending removes), so the region means
    # are the signals above and the residual is the same (0, 1, 1) -> mean 2/3
    n_t = 60
    a, b = _orthonormal_signals(n_t, 2, seed=1).T
    labels = np.repeat(np.arange(1, 4), 2)[:, None, None] * np.ones((6, 2, 2), int)
    base = 1000.0 + 10.0 * np.arange(24).reshape(6, 2, 2)

    def run(sig3):
        sigs = {1: a, 2: b, 3: sig3}
        data = base[..., None] + np.stack([[[50.0 * sigs[labels[i, j, k]]
                                             for k in range(2)] for j in range(2)]
                                           for i in range(6)])
        return nib.Nifti1Image(data.astype(np.float64), np.eye(4))

    mask_img = nib.Nifti1Image(np.ones((6, 2, 2), np.uint8), np.eye(4))
    labels_img = nib.Nifti1Image(labels.astype(np.int32), np.eye(4))
    res = metrics.fca_residuals(run(a), run(b), mask_img, labels_img=labels_img)
    assert res["n_regions"] == 3
    assert res["mean_abs_dr"] == pytest.approx(2 / 3, abs=1e-6)
    assert res["std_abs_dr"] == pytest.approx(np.sqrt(2) / 3, abs=1e-6)
    same = metrics.fca_residuals(run(a), run(a), mask_img, labels_img=labels_img)
    assert same["mean_abs_dr"] == 0.0
    # a decoded run that leaves region 3 at its baseline, constant in time: its pairs
    # count with r = 0, (0, 1, 0) -> 1/3 (z-scoring the rounding left by detrending a
    # constant made up a signal for it, and its correlations were scored)
    flat = metrics.fca_residuals(run(a), run(np.zeros(n_t) + 0.1234567), mask_img,
                                 labels_img=labels_img)
    assert flat["n_regions"] == 2
    assert flat["mean_abs_dr"] == pytest.approx(1 / 3, abs=1e-6)


def test_fla_residual_is_zero_for_identical_runs():
    from .conftest import synthetic_bold

    img, _ = synthetic_bold()
    data = np.asarray(img.dataobj, dtype=np.float32)
    run = nib.Nifti1Image(data, img.affine)
    copy = nib.Nifti1Image(data.copy(), img.affine)
    mask_img = nib.Nifti1Image((data.mean(-1) > 500).astype(np.uint8), img.affine)
    events = pd.DataFrame({"onset": [8.0, 40.0, 24.0, 56.0], "duration": [10.0] * 4,
                           "trial_type": ["body", "body", "face", "face"]})
    res = metrics.fla_residuals(run, copy, events, 2.0, mask_img)
    assert res["mean_abs_dt"] == 0.0 and res["std_abs_dt"] == 0.0
    assert set(res["per_condition"]) == {"body", "face"}
    for cond in ("body", "face"):
        assert res["per_condition"][cond]["mean_abs_dt"] == 0.0
        assert res["per_condition"][cond]["max_abs_t_original"] > 0
    # and it is not zero when the run changes
    noisy = nib.Nifti1Image(data + np.random.default_rng(0).normal(0, 30, data.shape)
                            .astype(np.float32), img.affine)
    assert metrics.fla_residuals(run, noisy, events, 2.0, mask_img)["mean_abs_dt"] > 0.1
