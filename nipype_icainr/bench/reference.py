"""The original run's side of every QC metric, computed once and reused for every method.

The QC metrics (``nipype_icainr.qc``) split into ``reference`` (the original's
t-maps, parcels, region signals) and ``compare`` (one decoded run); over a
dozen methods and several ratios the references are most of the work, so
``Reference`` computes them once. Every metric that applies to the run is
used: FLA needs events, ``fca_power`` an MNI-space run, CTA labels (the Haxby
slice, see ``haxby``).
"""

from .. import qc

#: k-means parcels of the original
N_PARCELS = 39


def in_standard_space(img):
    """True when the run's sform or qform says aligned, Talairach or MNI (codes 2-4)."""
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
    """

    def __init__(self, inp, events=None, n_parcels=N_PARCELS, seed=0, in_mni=None,
                 metrics=None):
        if in_mni is None:
            in_mni = in_standard_space(inp.img)
        self.ctx = qc.QCContext(original=qc.Run(img=inp.image_of(inp.data), data=inp.data),
                                mask=inp.mask, tr=inp.tr, events=events,
                                options={"atlas": "kmeans", "n_parcels": n_parcels,
                                         "seed": seed, "in_mni": bool(in_mni)})
        self.skipped, self.refs = {}, {}
        for name, metric in qc.METRICS.items():
            if metrics is not None and name not in metrics:
                continue
            why = metric.missing(self.ctx)
            if why:
                self.skipped[name] = why
                continue
            self.refs[name] = metric.reference(self.ctx)

    @property
    def columns(self):
        """The table columns of the metrics in use."""
        return qc.columns(list(self.refs))

    def compare(self, values):
        """Every metric of a decoded run (values as written, physical units).

        Returns ``(columns {key: value}, details {metric: dict}, notes [str])``;
        a metric that fails leaves its columns empty and a note.
        """
        decoded = self.ctx.decoded(values=values)
        columns, details, notes = {}, {}, []
        for name, ref in self.refs.items():
            metric = qc.get(name)
            try:
                res = metric.compare(ref, decoded, self.ctx)
            except Exception as exc:  # e.g. nilearn's AR(1) fit on voxels made constant
                notes.append(f"{name} failed: {type(exc).__name__}: {str(exc)[:120]}")
                continue
            columns.update(res["values"])
            details[name] = res["details"]
            if res["details"].get("note"):
                notes.append(f"{name}: {res['details']['note']}")
        return columns, details, notes
