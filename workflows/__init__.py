"""Nipype workflow factories: registration -> compress -> decompress -> QC.

* ``init_registration_wf``: native BOLD -> the 64 x 64 x 48 MNI152 grid (ANTsPy).
* ``init_icainr_wf``: the whole per-run workflow with QC report.
"""

from .icainr import init_icainr_wf
from .registration import init_registration_wf

__all__ = ["init_icainr_wf", "init_registration_wf"]
