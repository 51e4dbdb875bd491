"""First-level analysis (FLA) fidelity: how far the decoded run's GLM t-maps move."""

import numpy as np

from .base import Column, Metric


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


def _load(img):
    import nibabel as nib

    return nib.load(img) if isinstance(img, str) else img


class FLA(Metric):
    name = "fla"
    title = "First-level analysis (FLA)"
    definition = ("|t_original - t_decompressed| over the mask and every condition's t-map; "
                  "nilearn FirstLevelModel, Glover HRF, cosine drift, AR(1)")
    columns = (Column("fla_mean_abs_dt", "FLA mean |dt|", "{:.3f}",
                      "t-maps of every condition", group=True),
               Column("fla_std_abs_dt", "FLA std |dt|", "{:.3f}"))

    def missing(self, ctx):
        if ctx.events is None:
            return "no events"
        if not ctx.tr:
            return "no repetition time"
        return None

    def reference(self, ctx):
        return first_level_tmaps(ctx.original.img, ctx.events, ctx.tr, ctx.mask_img())

    def compare(self, ref, decoded, ctx):
        t_dec = first_level_tmaps(decoded.img, ctx.events, ctx.tr, ctx.mask_img(), list(ref))
        res = fla_from_tmaps(ref, t_dec, ctx.mask)
        return {"values": {"fla_mean_abs_dt": res["mean_abs_dt"],
                           "fla_std_abs_dt": res["std_abs_dt"]},
                "details": {"per_condition": res["per_condition"], "tr": ctx.tr},
                "arrays": {"tmaps": {c: (ref[c], t_dec[c]) for c in ref}}}

    def figure(self, result, ctx, path):
        from nilearn.image import mean_img

        from .figures import plot_tmaps

        plot_tmaps(result["arrays"]["tmaps"], ctx.affine, ctx.mask_img(), path,
                   bg_img=mean_img(ctx.original.img, copy_header=True))
        return True

    def table(self, result):
        from ..report import fmt

        per = result["details"]["per_condition"]
        return [["condition", "mean |dt|", "std |dt|", "peak |t| original"]] + [
            [c, fmt(v["mean_abs_dt"]), fmt(v["std_abs_dt"]), fmt(v["max_abs_t_original"], 2)]
            for c, v in per.items()]
