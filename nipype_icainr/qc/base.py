"""What every quality metric is: a name, its table columns, a reference and a comparison.

A metric compares an original run with its decompressed version in two steps,
so that callers comparing many decoded runs with one original (the benchmark)
compute the original's side once:

1. ``reference(ctx)``: what the original contributes (its t-maps, its region
   signals, its decoding scores, ...);
2. ``compare(ref, decoded, ctx)``: the figures of one decoded run, as
   ``{"values": {column key: number}, "details": {...}}`` (JSON-able), plus
   in-memory arrays under ``"arrays"`` for the figure.

Metrics are registered once (``nipype_icainr.qc``); the Nipype interfaces, the
HTML report, the BIDS derivatives' TSV, the group report and the benchmark
iterate the registry.
"""

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Column:
    """One number a metric reports: its key in tables and JSON, heading and format."""

    key: str
    heading: str
    fmt: str = "{:.4f}"
    doc: str = ""
    #: shown in the group report's distributions
    group: bool = False


class Run:
    """A run as a metric sees it: a nibabel image and/or its array in physical units.

    Either is built from the other when first asked for (the array as float64,
    the image as float32 on ``like``'s affine and header).
    """

    def __init__(self, img=None, data=None, like=None):
        if img is None and data is None:
            raise ValueError("give img or data")
        self._img, self._data, self._like = img, data, like

    @property
    def data(self):
        if self._data is None:
            self._data = np.asarray(self._img.dataobj, dtype=np.float64)
        return self._data

    @property
    def img(self):
        if self._img is None:
            import nibabel as nib

            like = self._like
            hdr = like.header.copy() if like is not None else None
            if hdr is not None:
                hdr.set_data_dtype(np.float32)
            affine = like.affine if like is not None else np.eye(4)
            self._img = nib.Nifti1Image(np.asarray(self._data, dtype=np.float32), affine, hdr)
            self._img.header.set_slope_inter(1.0, 0.0)
        return self._img


@dataclass
class QCContext:
    """The original run and everything a metric may need besides the decoded run.

    Attributes
    ----------
    original : Run
    mask : ndarray of bool (X, Y, Z)
        Voxels the metrics look at.
    tr : float
        Repetition time (s).
    events : pandas.DataFrame, optional
        BIDS events (FLA).
    labels, chunks : array, optional
        Per-volume labels and runs (CTA).
    options : dict
        Metric options (``atlas``, ``atlas_file``, ``n_parcels``, ``in_mni``,
        ``classes``, ``n_folds``, ``seed``).
    """

    original: Run
    mask: np.ndarray
    tr: float = None
    events: object = None
    labels: object = None
    chunks: object = None
    options: dict = field(default_factory=dict)

    @property
    def affine(self):
        return self.original.img.affine

    def mask_img(self):
        import nibabel as nib

        return nib.Nifti1Image(np.asarray(self.mask, np.uint8), self.affine)

    def decoded(self, values=None, img=None):
        """A ``Run`` of decoded values on the original's grid."""
        return Run(img=img, data=values, like=self.original.img)


class Metric:
    """Base class; subclasses set the class attributes and ``compare``."""

    name = "?"
    title = "?"
    #: one sentence for reports and JSON: how the figure is defined
    definition = ""
    columns = ()
    #: computed from the pair of runs alone (no events, labels or atlas needed)
    automatic = False

    def missing(self, ctx):
        """Why the metric cannot run on ``ctx`` (None when it can)."""
        return None

    def reference(self, ctx):
        """The original's side, computed once per original (default: nothing)."""
        return None

    def compare(self, ref, decoded, ctx):
        raise NotImplementedError

    def figure(self, result, ctx, path):
        """Write a PNG of ``result`` to ``path``; False when the metric has none."""
        return False

    def summary(self, result):
        """Rows ``(label, value, note)`` for a report's summary table."""
        return [(c.heading, _fmt(c.fmt, result["values"].get(c.key)), c.doc)
                for c in self.columns]

    def table(self, result):
        """Extra rows (lists of cells) for the metric's section of a report."""
        return []

    def evaluate(self, decoded, ctx, ref=None):
        """``compare`` with a fresh reference when none is given."""
        return self.compare(self.reference(ctx) if ref is None else ref, decoded, ctx)


def _fmt(fmt, value):
    if value is None:
        return "n/a"
    try:
        return fmt.format(value)
    except (TypeError, ValueError):
        return str(value)
