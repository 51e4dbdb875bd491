"""The QC metrics, registered once and iterated everywhere.

Each metric (``base.Metric``) knows its name, its table columns, how to
compute the original's side once (``reference``), how to compare a decoded
run with it (``compare``) and its figure. The Nipype interfaces
(``interfaces.qc``), the HTML report (``interfaces.report``), the BIDS
derivatives' TSV and the group report (``bids_app``) and the benchmark
(``bench``) all iterate ``METRICS``: adding a metric is one entry here.

Metrics: ``psnr`` (inside the mask and full volume), ``ssim``, ``fla``
(first-level GLM t-maps), ``fca``, ``fca_compact`` and ``fca_power``
(connectivity under three region definitions), ``cta`` (decoding).
"""

from .base import Column, Metric, QCContext, Run
from .connectivity import FCA
from .decoding import CTA
from .glm import FLA
from .image import PSNR, SSIM

#: name -> metric, in report and table order
METRICS = {}


def register(metric):
    """Add ``metric`` (a ``Metric`` instance) to the registry under its name."""
    METRICS[metric.name] = metric
    return metric


for _metric in (PSNR(), SSIM(), FLA(), FCA("fca", "auto", "FCA", group=True),
                FCA("fca_compact", "compact", "FCA compact"),
                FCA("fca_power", "power2011", "FCA Power"), CTA()):
    register(_metric)


def get(name):
    """The metric registered as ``name``."""
    if name not in METRICS:
        raise KeyError(f"unknown QC metric {name!r}; choose from {', '.join(METRICS)}")
    return METRICS[name]


def columns(names=None):
    """Every column of the metrics ``names`` (default: all), in registry order."""
    return [c for m in METRICS.values() if names is None or m.name in names for c in m.columns]


__all__ = ["Column", "METRICS", "Metric", "QCContext", "Run", "columns", "get", "register"]
