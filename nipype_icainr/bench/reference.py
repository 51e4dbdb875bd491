"""The original run's side of every QC metric, computed once and reused for every method.

The QC metrics (``nipype_icainr.qc``) split into ``reference`` (the original's
t-maps, parcels, region signals) and ``compare`` (one decoded run); over a
dozen methods and several ratios the references are most of the work, so
``Reference`` computes them once. Every metric that applies to the run is
used: FLA needs events, ``fca_power`` an MNI-space run, CTA labels (the Haxby
slice: given labels, one decoding problem per ``haxby.PROBLEMS`` entry, its columns
suffixed with the problem's name).
"""

from .. import qc

#: k-means parcels of the original
N_PARCELS = 39


def in_standard_space(img):
    """True when the run's sform or qform says aligned, Talairach or MNI (codes 2-4).

    Code 2 ("aligned to another file") is what SPM writes for a normalised run
    (nipy's and pyhrf's MNI runs carry it). nibabel also writes 2 for any image
    made from an array and an affine, so a native run saved that way reads as
    standard space: give ``in_mni`` to ``Reference`` where that matters.
    """
    hdr = img.header
    return int(hdr["sform_code"]) in (2, 3, 4) or int(hdr["qform_code"]) in (2, 3, 4)


class Reference:
    """What the original run contributes to each QC metric, computed once.

    Parameters
    ----------
    inp : BenchInput
    events : pandas.DataFrame, optional
        BIDS events; without them there is no FLA.
    n_parcels : int
        k-means parcels for FCA (capped by the mask's size, see
        ``qc.connectivity.n_parcels_for``).
    in_mni : bool, optional
        Whether the Power-2011 spheres apply (default: ``in_standard_space``).
    metrics : list of str, optional
        Metric names to use (default: every registered metric that applies).
    labels, chunks : array, optional
        Per-volume labels and runs: CTA for each problem of ``haxby.PROBLEMS``.
    """

    def __init__(self, inp, events=None, n_parcels=N_PARCELS, seed=0, in_mni=None,
                 metrics=None, labels=None, chunks=None):
        from .haxby import PROBLEMS

        if in_mni is None:
            in_mni = in_standard_space(inp.img)
        original = qc.Run(img=inp.image_of(inp.data), data=inp.data)
        self.ctx = qc.QCContext(original=original, mask=inp.mask, tr=inp.tr, events=events,
                                labels=labels, chunks=chunks,
                                options={"atlas": "kmeans", "n_parcels": n_parcels,
                                         "seed": seed, "in_mni": bool(in_mni)})
        # (metric, context, column suffix): one context per decoding problem for CTA
        self.uses = []
        self.skipped, self.refs, self.original_scores = {}, {}, {}
        for name, metric in qc.METRICS.items():
            if metrics is not None and name not in metrics:
                continue
            why = metric.missing(self.ctx)
            if why:
                self.skipped[name] = why
                continue
            if name == "cta":
                for problem, classes in PROBLEMS.items():
                    ctx = qc.QCContext(original=original, mask=inp.mask, tr=inp.tr,
                                       labels=labels, chunks=chunks,
                                       options=dict(self.ctx.options, classes=classes))
                    self._use(metric, ctx, f"_{problem}")
            else:
                self._use(metric, self.ctx, "")

    def _use(self, metric, ctx, suffix):
        key = metric.name + suffix
        self.refs[key] = metric.reference(ctx)
        self.uses.append((key, metric, ctx, suffix))
        if metric.name == "cta":  # the original's own score, for the original's row
            self.original_scores.update({f"cta_accuracy{suffix}": self.refs[key]["accuracy"],
                                         f"cta_auc{suffix}": self.refs[key]["auc"]})

    @property
    def columns(self):
        """The table columns of the metrics in use: ``(key, heading, format)``."""
        return [(c.key + suffix, c.heading + suffix.replace("_", " "), c.fmt)
                for _, metric, _, suffix in self.uses for c in metric.columns]

    @property
    def column_formats(self):
        return [(k, f) for k, _, f in self.columns]

    def compare(self, values):
        """Every metric of a decoded run (values as written, physical units).

        Returns ``(columns {key: value}, details {metric: dict}, notes [str])``;
        a metric that fails leaves its columns empty and a note.
        """
        decoded = self.ctx.decoded(values=values)
        columns, details, notes = {}, {}, []
        for key, metric, ctx, suffix in self.uses:
            try:
                res = metric.compare(self.refs[key], decoded, ctx)
            except Exception as exc:  # e.g. nilearn's AR(1) fit on voxels made constant
                notes.append(f"{key} failed: {type(exc).__name__}: {str(exc)[:120]}")
                continue
            columns.update({k + suffix: v for k, v in res["values"].items()})
            details[key] = res["details"]
            if res["details"].get("note"):
                notes.append(f"{key}: {res['details']['note']}")
        return columns, details, notes
