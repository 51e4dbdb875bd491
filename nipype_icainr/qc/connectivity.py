"""Functional connectivity analysis (FCA) fidelity: how far region-to-region correlations move.

Three ways to define the regions, each a registered metric, because a codec
that is ahead under one parcellation only is not ahead:

* ``fca``: a k-means parcellation of the original's signals (nilearn
  ``Parcellations``), or the Power et al. (2011) spheres for MNI-space runs in
  the Nipype interface, or a given atlas;
* ``fca_compact``: spatially compact parcels, k-means on the mask voxels'
  coordinates in millimetres (any space);
* ``fca_power``: the 264 Power et al. (2011) spheres of 6 mm that nilearn
  ships (MNI-space runs only; spheres with no mask voxel are dropped).

The parcel count is capped by the mask's size (a quarter of its voxels).
Regions constant in the original (outside the field of view) are dropped; a
region the decoded run leaves constant keeps its pairs, with a correlation of 0:
it carries no connectivity, and dropping it would score a method that flattens
regions on the few it kept. A decoded run with fewer than two regions that vary
has no FCA result.
"""

import warnings

import numpy as np

from .base import Column, Metric

#: parcels for the k-means parcellations (fewer on small masks, see ``n_parcels_for``)
N_PARCELS = 39
POWER_RADIUS_MM = 6.0


#: a region whose detrended signal varies by less than this fraction of its mean level
#: is constant: what is left of a constant after detrending is rounding (1e-14 of the
#: mean on a decoded run), while one quantisation step of one voxel in a parcel of a
#: few hundred moves the mean by about 1e-6 of it
FLAT_RELATIVE = 1e-10


def region_signals(img, mask_img, labels_img=None, coords=None, radius=6.0):
    """Region time series (T, R): mean over atlas labels, or over spheres at coordinates,
    linearly detrended; a region constant over time comes back as zeros.

    Exactly one of ``labels_img`` (a 3D integer atlas) or ``coords`` (MNI mm,
    (R, 3)) is used (nilearn's maskers average the voxels). The signals are not
    standardised here: nilearn's z-scoring blows the rounding left in a constant
    region up to unit variance, and the correlations of that noise were scored.
    """
    import warnings

    from nilearn.maskers import NiftiLabelsMasker, NiftiSpheresMasker

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if labels_img is not None:
            masker = NiftiLabelsMasker(labels_img, mask_img=mask_img, detrend=False,
                                       standardize=False, resampling_target="data")
        else:
            masker = NiftiSpheresMasker(coords, radius=radius, mask_img=mask_img,
                                        detrend=False, standardize=False, allow_overlap=True)
        raw = np.asarray(masker.fit_transform(img), dtype=np.float64)
    return _detrended(raw)


def _detrended(raw):
    """``raw`` (T, R) minus each column's least-squares line (``scipy.signal.detrend``);
    constant columns all zero."""
    from scipy.signal import detrend

    if raw.shape[0] < 2:
        return np.zeros_like(raw)
    out = detrend(raw, axis=0, type="linear")
    flat = out.std(axis=0) <= FLAT_RELATIVE * np.maximum(np.abs(raw.mean(axis=0)), 1e-300)
    out[:, flat] = 0.0
    return out


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

    Regions constant in the original are dropped from both. A region constant in
    the decoded run keeps its pairs with a correlation of 0 (it carries none); when
    fewer than two regions vary in the decoded run there is no result (ValueError).
    ``|dr|`` is taken over the R(R-1)/2 pairs above the diagonal of the Pearson
    correlation matrices; ``n_regions`` counts the regions with signal in both runs.
    """
    s_orig, s_dec = np.asarray(s_orig, float), np.asarray(s_dec, float)
    keep = s_orig.std(axis=0) > 0
    if keep.sum() < 2:
        raise ValueError("fewer than two regions have signal")
    n_regions = int(np.count_nonzero(s_dec[:, keep].std(axis=0) > 0))
    if n_regions < 2:  # no correlation to compare: not an FCA result (a run held constant)
        raise ValueError("fewer than two regions have signal in the decoded run")
    r_o = _correlations(s_orig[:, keep])
    r_d = _correlations(s_dec[:, keep])
    iu = np.triu_indices(r_o.shape[0], k=1)
    diff = np.abs(r_o[iu] - r_d[iu])
    return {"mean_abs_dr": float(diff.mean()), "std_abs_dr": float(diff.std()),
            "n_regions": n_regions, "r_original": r_o, "r_decoded": r_d}


def _correlations(signals):
    """Pearson correlations of the columns of ``signals`` (T, R); a constant column is
    uncorrelated with every other (0) and has 1 on the diagonal."""
    centred = signals - signals.mean(axis=0)
    norm = np.sqrt(np.sum(centred ** 2, axis=0))
    z = np.divide(centred, norm, out=np.zeros_like(centred), where=norm > 0)
    r = np.clip(z.T @ z, -1.0, 1.0)
    np.fill_diagonal(r, 1.0)
    return r


def n_parcels_for(mask, wanted=N_PARCELS):
    """``wanted`` parcels, at most a quarter of the mask's voxels, at least 2."""
    return int(max(2, min(wanted, int(np.count_nonzero(mask)) // 4)))


def compact_parcellation(mask, affine, n_parcels=N_PARCELS, seed=0):
    """Spatially compact parcels: k-means on the mask voxels' coordinates in mm.

    Returns a 3D labels image (0 = background).
    """
    import nibabel as nib
    from sklearn.cluster import KMeans

    mask = np.asarray(mask, bool)
    ijk = np.argwhere(mask)
    xyz = nib.affines.apply_affine(np.asarray(affine, float), ijk)
    k = n_parcels_for(mask, n_parcels)
    labels = KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(xyz)
    out = np.zeros(mask.shape, dtype=np.int32)
    out[tuple(ijk.T)] = labels + 1
    return nib.Nifti1Image(out, np.asarray(affine, float))


def power_coordinates(mask, affine, radius=POWER_RADIUS_MM):
    """The Power et al. (2011) seeds (MNI mm, (R, 3)) whose sphere holds a mask voxel."""
    import nibabel as nib
    from nilearn.datasets import fetch_coords_power_2011

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rois = fetch_coords_power_2011()["rois"]  # bundled with nilearn: no download
    seeds = np.stack([rois["x"], rois["y"], rois["z"]], axis=1).astype(float)
    xyz = nib.affines.apply_affine(np.asarray(affine, float), np.argwhere(mask))
    keep = [i for i, s in enumerate(seeds)
            if np.any(np.sum((xyz - s) ** 2, axis=1) <= radius ** 2)]
    return seeds[keep]


class FCA(Metric):
    """Mean |r_original - r_decompressed| over region pairs, for one way to define regions.

    ``atlas``: ``"kmeans"`` (functional parcels of the original), ``"compact"``
    (k-means on coordinates), ``"power2011"`` (MNI spheres) or ``"auto"``
    (``ctx.options["atlas"]``, else Power spheres when ``in_mni``, else
    k-means); ``ctx.options["atlas_file"]`` (a labels image) overrides it.
    """

    title = "Functional connectivity (FCA)"
    definition = ("|r_original - r_decompressed| over region pairs above the diagonal; "
                  "Pearson r of detrended region signals (0 for a region the "
                  "decompressed run leaves constant)")

    def __init__(self, name, atlas, heading, group=False):
        self.name = name
        self.atlas = atlas
        p = name
        self.columns = (Column(f"{p}_mean_abs_dr", f"{heading} mean |dr|", "{:.4f}",
                               "region pairs", group=group),
                        Column(f"{p}_std_abs_dr", f"{heading} std |dr|", "{:.4f}"),
                        Column(f"{p}_regions", f"{heading} regions", "{:d}"))
        if atlas != "auto":
            self.title = f"{self.title}, {heading}"

    def _kind(self, ctx):
        if self.atlas != "auto":
            return self.atlas
        if ctx.options.get("atlas_file"):
            return "file"
        kind = ctx.options.get("atlas", "auto")
        if kind == "auto":
            kind = "power2011" if ctx.options.get("in_mni") else "kmeans"
        return kind

    def missing(self, ctx):
        if self._kind(ctx) == "power2011" and not ctx.options.get("in_mni"):
            return "not an MNI-space run"
        if np.count_nonzero(ctx.mask) < 8:
            return "fewer than 8 mask voxels"
        return None

    def reference(self, ctx):
        kind = self._kind(ctx)
        labels, coords = None, None
        n = n_parcels_for(ctx.mask, ctx.options.get("n_parcels", N_PARCELS))
        if kind == "file":
            labels = ctx.options["atlas_file"]
            used = f"atlas {ctx.options['atlas_file']}"
        elif kind == "power2011":
            coords = power_coordinates(ctx.mask, ctx.affine)
            used = f"Power et al. 2011, {len(coords)} of 264 spheres of 6 mm in the mask"
        elif kind == "compact":
            labels = compact_parcellation(ctx.mask, ctx.affine, n, ctx.options.get("seed", 0))
            used = f"{n} spatially compact parcels (k-means on coordinates)"
        else:
            labels = kmeans_parcellation(ctx.original.img, ctx.mask_img(), n,
                                         ctx.options.get("seed", 0))
            used = f"k-means parcellation of the original ({n} parcels)"
        if coords is not None and len(coords) < 2:
            return {"atlas": used, "signals": None, "labels": None, "coords": coords}
        signals = region_signals(ctx.original.img, ctx.mask_img(), labels, coords)
        return {"atlas": used, "signals": signals, "labels": labels, "coords": coords}

    def compare(self, ref, decoded, ctx):
        p = self.name
        empty = {f"{p}_mean_abs_dr": None, f"{p}_std_abs_dr": None, f"{p}_regions": 0}
        if ref["signals"] is None:
            return {"values": empty, "details": {"atlas": ref["atlas"],
                                                 "note": "fewer than two regions"}}
        s_dec = region_signals(decoded.img, ctx.mask_img(), ref["labels"], ref["coords"])
        try:
            res = fca_from_signals(ref["signals"], s_dec)
        except ValueError as exc:
            return {"values": empty, "details": {"atlas": ref["atlas"], "note": str(exc)}}
        return {"values": {f"{p}_mean_abs_dr": res["mean_abs_dr"],
                           f"{p}_std_abs_dr": res["std_abs_dr"],
                           f"{p}_regions": res["n_regions"]},
                "details": {"atlas": ref["atlas"]},
                "arrays": {"r_original": res["r_original"], "r_decoded": res["r_decoded"]}}

    def figure(self, result, ctx, path):
        from .figures import plot_connectivity

        if "arrays" not in result:
            return False
        plot_connectivity(result["arrays"]["r_original"], result["arrays"]["r_decoded"], path)
        return True
