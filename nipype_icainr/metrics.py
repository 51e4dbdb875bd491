"""Quality metrics: one definition each, used by the tests, benchmarks and reports.

Conventions shared by every function here:

* ``original`` and ``decoded`` are 4D arrays (X, Y, Z, T) in physical units
  (``scl_slope``/``scl_inter`` applied), the decoded one exactly as written to disk.
* ``mask`` is a boolean (X, Y, Z) brain mask; voxels outside it never count.
* The data range of PSNR and SSIM is the original's ``max - min`` over the
  masked voxels and all time points, never a nominal dtype range (which would
  inflate PSNR).
"""

import numpy as np


def compression_ratio(raw_bytes, compressed_bytes):
    """Ratio = ``raw_bytes`` / ``compressed_bytes``.

    ``raw_bytes`` is the size of the input's voxel array in its *stored* dtype
    over the full grid (X*Y*Z*T*itemsize, e.g. int16 -> 2 bytes a voxel), not
    the size of a ``.nii.gz`` on disk and not float32.
    """
    if compressed_bytes <= 0:
        raise ValueError("compressed_bytes must be positive")
    return float(raw_bytes) / float(compressed_bytes)


def _masked(original, decoded, mask):
    original = np.asarray(original)
    decoded = np.asarray(decoded)
    if original.shape != decoded.shape:
        raise ValueError(f"shape mismatch: {original.shape} vs {decoded.shape}")
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != original.shape[:3]:
        raise ValueError(f"mask shape {mask.shape} does not match {original.shape[:3]}")
    if not mask.any():
        raise ValueError("empty mask")
    return original[mask].astype(np.float64), decoded[mask].astype(np.float64)


def data_range(original, mask):
    """``max - min`` of ``original`` over the masked voxels and all time points."""
    vals = np.asarray(original)[np.asarray(mask, dtype=bool)]
    return float(vals.max() - vals.min())


def psnr(original, decoded, mask):
    """Peak signal-to-noise ratio in dB over the brain mask.

    ``PSNR = 10 log10(R^2 / MSE)`` with ``MSE`` the mean squared difference over
    every masked voxel and every time point, and ``R`` the original's
    ``max - min`` over the same voxels (see ``data_range``). Returns ``inf`` for
    identical data.
    """
    o, d = _masked(original, decoded, mask)
    mse = float(np.mean((o - d) ** 2))
    rng = float(o.max() - o.min())
    if mse == 0:
        return float("inf")
    return 10.0 * np.log10(rng ** 2 / mse)


def ssim(original, decoded, mask, win_size=7):
    """Mean structural similarity, 3D per volume, averaged over time.

    For each volume, scikit-image's ``structural_similarity`` (7x7x7 uniform
    window, K1 = 0.01, K2 = 0.03) is computed on both volumes with voxels
    outside the mask set to 0 and with ``data_range`` the original's
    ``max - min`` over the mask and all time points; the SSIM map is averaged
    over the masked voxels only, then over volumes. Axes shorter than the
    window shrink it (odd size, at least 3).
    """
    from skimage.metrics import structural_similarity

    original = np.asarray(original)
    decoded = np.asarray(decoded)
    _masked(original, decoded, mask)  # validates shapes
    mask = np.asarray(mask, dtype=bool)
    rng = data_range(original, mask) or 1.0
    win = min(win_size, *original.shape[:3])
    win = win if win % 2 else win - 1
    if win < 3:
        raise ValueError("each spatial axis needs at least 3 voxels for SSIM")
    scores = []
    for t in range(original.shape[3]):
        a = np.where(mask, original[..., t], 0.0).astype(np.float64)
        b = np.where(mask, decoded[..., t], 0.0).astype(np.float64)
        _, smap = structural_similarity(a, b, win_size=win, data_range=rng, full=True)
        scores.append(float(smap[mask].mean()))
    return float(np.mean(scores))


# --- downstream tasks -------------------------------------------------------------------


def first_level_tmaps(img, events, t_r, mask_img, conditions=None, noise_model="ar1"):
    """t-maps of every condition from a nilearn ``FirstLevelModel`` GLM.

    Parameters
    ----------
    img : 4D Niimg
    events : pandas.DataFrame
        BIDS events with ``onset``, ``duration``, ``trial_type`` columns.
    t_r : float
        Repetition time in seconds.
    mask_img : 3D Niimg
        Voxels to model (the same mask must be used for both runs compared).
    conditions : list of str, optional
        Defaults to every ``trial_type``.

    Returns
    -------
    dict
        ``{condition: t-map ndarray (X, Y, Z)}``; the design is Glover HRF
        convolved boxcars plus a cosine drift model (nilearn's defaults), with
        each condition's t-statistic against the implicit baseline.
    """
    import warnings

    from nilearn.glm.first_level import FirstLevelModel

    conditions = sorted(events["trial_type"].unique()) if conditions is None else conditions
    model = FirstLevelModel(t_r=t_r, mask_img=mask_img, hrf_model="glover",
                            drift_model="cosine", noise_model=noise_model,
                            minimize_memory=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(img, events=events[["onset", "duration", "trial_type"]])
        return {c: np.asarray(model.compute_contrast(c, stat_type="t").dataobj)
                for c in conditions}


def fla_residuals(original_img, decoded_img, events, t_r, mask_img, conditions=None):
    """First-level analysis (FLA) fidelity: how far the decoded run's t-maps move.

    For each condition, ``|dt| = |t_original - t_decoded|`` at every voxel of
    ``mask_img`` (both GLMs use that mask and the same design, see
    ``first_level_tmaps``).

    Returns
    -------
    dict
        ``mean_abs_dt`` and ``std_abs_dt`` over every (condition, voxel) pair;
        ``per_condition`` with the same two figures for each condition, plus the
        original's peak ``|t|`` for scale; ``tmaps`` with both maps per condition.
    """
    mask = np.asarray(_load(mask_img).dataobj).astype(bool)
    t_orig = first_level_tmaps(original_img, events, t_r, mask_img, conditions)
    t_dec = first_level_tmaps(decoded_img, events, t_r, mask_img, list(t_orig))
    return dict(fla_from_tmaps(t_orig, t_dec, mask),
                tmaps={c: (t_orig[c], t_dec[c]) for c in t_orig})


def fla_from_tmaps(t_orig, t_dec, mask):
    """``fla_residuals``' figures from two dicts of t-maps.

    Returns
    -------
    dict
        ``mean_abs_dt``, ``std_abs_dt`` pooled over every (condition, voxel in
        ``mask``), and ``per_condition`` with both figures per condition plus
        the original's peak ``|t|``.
    """
    mask = np.asarray(mask, bool)
    per, pooled = {}, []
    for cond in t_orig:
        diff = np.abs(t_orig[cond][mask] - t_dec[cond][mask])
        pooled.append(diff)
        per[cond] = {"mean_abs_dt": float(diff.mean()), "std_abs_dt": float(diff.std()),
                     "max_abs_t_original": float(np.abs(t_orig[cond][mask]).max())}
    pooled = np.concatenate(pooled)
    return {"mean_abs_dt": float(pooled.mean()), "std_abs_dt": float(pooled.std()),
            "per_condition": per}


def region_signals(img, mask_img, labels_img=None, coords=None, radius=6.0):
    """Region time series (T, R): mean over atlas labels, or over spheres at coordinates.

    Exactly one of ``labels_img`` (a 3D integer atlas) or ``coords`` (MNI mm,
    (R, 3)) is used; signals are detrended and standardised by nilearn's maskers.
    """
    import warnings

    from nilearn.maskers import NiftiLabelsMasker, NiftiSpheresMasker

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if labels_img is not None:
            masker = NiftiLabelsMasker(labels_img, mask_img=mask_img, detrend=True,
                                       standardize="zscore_sample", resampling_target="data")
        else:
            masker = NiftiSpheresMasker(coords, radius=radius, mask_img=mask_img, detrend=True,
                                        standardize="zscore_sample", allow_overlap=True)
        return masker.fit_transform(img)


def kmeans_parcellation(img, mask_img, n_parcels=40, seed=0):
    """A k-means parcellation of ``img`` (nilearn ``Parcellations``): an atlas that needs
    no download and works in any space. Returns a 3D labels image (0 = background)."""
    import warnings

    from nilearn.regions import Parcellations

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parc = Parcellations(method="kmeans", n_parcels=n_parcels, mask=mask_img,
                             standardize="zscore_sample", random_state=seed, verbose=0)
        parc.fit(img)
    return parc.labels_img_


def fca_residuals(original_img, decoded_img, mask_img, labels_img=None, coords=None,
                  radius=6.0):
    """Functional connectivity analysis (FCA) fidelity.

    Region signals come from the same atlas for both runs (see ``region_signals``);
    ``r`` is the Pearson correlation matrix of the region signals. Regions whose
    original signal is constant (e.g. outside the field of view) are dropped from
    both. ``|dr| = |r_original - r_decoded|`` over the R(R-1)/2 region pairs above
    the diagonal.

    Returns
    -------
    dict
        ``mean_abs_dr``, ``std_abs_dr``, ``n_regions``, and the matrices
        ``r_original``, ``r_decoded``.
    """
    if labels_img is None and coords is None:
        raise ValueError("give labels_img or coords")
    s_orig = region_signals(original_img, mask_img, labels_img, coords, radius)
    s_dec = region_signals(decoded_img, mask_img, labels_img, coords, radius)
    return fca_from_signals(s_orig, s_dec)


def fca_from_signals(s_orig, s_dec):
    """``fca_residuals``' figures from two (T, R) region-signal arrays.

    Regions constant in either run are dropped from both; ``|dr|`` is taken over
    the R(R-1)/2 pairs above the diagonal of the Pearson correlation matrices.
    """
    s_orig, s_dec = np.asarray(s_orig), np.asarray(s_dec)
    keep = (s_orig.std(axis=0) > 0) & (s_dec.std(axis=0) > 0)
    if keep.sum() < 2:
        raise ValueError("fewer than two regions have signal")
    r_o = np.corrcoef(s_orig[:, keep].T)
    r_d = np.corrcoef(s_dec[:, keep].T)
    iu = np.triu_indices(r_o.shape[0], k=1)
    diff = np.abs(r_o[iu] - r_d[iu])
    return {"mean_abs_dr": float(diff.mean()), "std_abs_dr": float(diff.std()),
            "n_regions": int(keep.sum()), "r_original": r_o, "r_decoded": r_d}


def decoding_samples(img, labels, chunks, mask_img, classes=None):
    """The CTA's samples: ``(X, y, groups)`` as ``decoding_scores`` uses them.

    Volumes whose label is in ``classes`` (default: every label except
    ``rest``); features are the voxels of ``mask_img``, z-scored within each
    chunk (run) (a voxel constant within a run keeps its centred values).
    """
    import warnings

    from nilearn.maskers import NiftiMasker

    labels = np.asarray(labels)
    chunks = np.asarray(chunks)
    if classes is None:
        classes = sorted(set(labels) - {"rest"})
    keep = np.isin(labels, classes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        X = NiftiMasker(mask_img=mask_img, standardize=False).fit_transform(img)[keep]
    y, groups = labels[keep], chunks[keep]
    for g in np.unique(groups):  # z-score within each run
        sel = groups == g
        X[sel] = (X[sel] - X[sel].mean(0)) / np.where(X[sel].std(0) > 0, X[sel].std(0), 1.0)
    return X, y, groups


def decoding_scores(img, labels, chunks, mask_img, classes=None, n_folds=10, seed=0):
    """Cognitive-task analysis (CTA): linear SVM decoding accuracy and AUC.

    Volumes whose label is in ``classes`` (default: every label except
    ``rest``) are the samples; features are the masked voxels, z-scored within
    each chunk (run) (``decoding_samples``). A ``LinearSVC`` (C = 1, squared hinge, solved in the
    dual: on the Haxby slice it reaches the objective of a tol = 1e-8 solve,
    where the primal solver at its default tolerance stopped short and scored
    up to 2 points differently, and it runs about 20x faster) is scored by
    10-fold cross-validation: ``GroupKFold`` over chunks when there are at
    least ``n_folds`` chunks (no run is split between training and test), else
    stratified ``KFold`` with a fixed seed.

    Returns
    -------
    dict
        ``accuracy`` (mean over folds of the fraction of test volumes right),
        ``auc`` (binary: ROC AUC of the decision function; multiclass: macro
        one-vs-rest ROC AUC), ``n_samples``, ``n_classes``, ``chance`` (the
        largest class's share).
    """
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import GroupKFold, StratifiedKFold
    from sklearn.preprocessing import label_binarize
    from sklearn.svm import LinearSVC

    X, y, groups = decoding_samples(img, labels, chunks, mask_img, classes)
    if len(np.unique(groups)) >= n_folds:
        splits = GroupKFold(n_splits=n_folds).split(X, y, groups)
    else:
        splits = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed).split(X, y)
    classes = sorted(set(y))
    accs, scores, truth = [], [], []
    for train, test in splits:
        clf = LinearSVC(C=1.0, dual=True, max_iter=5000, random_state=seed).fit(X[train], y[train])
        accs.append(float((clf.predict(X[test]) == y[test]).mean()))
        dec = clf.decision_function(X[test])
        if len(classes) == 2:
            dec = np.stack([-dec, dec], axis=1)
        full = np.full((len(test), len(classes)), -np.inf)
        for j, c in enumerate(clf.classes_):
            full[:, classes.index(c)] = dec[:, j]
        scores.append(full)
        truth.append(y[test])
    scores, truth = np.concatenate(scores), np.concatenate(truth)
    if len(classes) == 2:
        auc = roc_auc_score(truth == classes[1], scores[:, 1])
    else:
        finite = np.where(np.isfinite(scores), scores, np.nanmin(scores[np.isfinite(scores)]))
        auc = roc_auc_score(label_binarize(truth, classes=classes), finite, average="macro")
    _, counts = np.unique(y, return_counts=True)
    return {"accuracy": float(np.mean(accs)), "auc": float(auc), "n_samples": int(len(y)),
            "n_classes": len(classes), "chance": float(counts.max() / counts.sum())}


def _load(img):
    import nibabel as nib

    return nib.load(img) if isinstance(img, str) else img
