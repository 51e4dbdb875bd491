"""The numerical definitions of the quality measures (a stable import path).

Each is defined once in ``nipype_icainr.qc``; this module gathers the
functions for scripts and tests (``from nipype_icainr import metrics``).
"""

from .qc.connectivity import (compact_parcellation, fca_from_signals, fca_residuals,  # noqa: F401
                              kmeans_parcellation, power_coordinates, region_signals)
from .qc.decoding import decoding_samples, decoding_scores, read_labels  # noqa: F401
from .qc.glm import fla_from_tmaps, fla_residuals, first_level_tmaps  # noqa: F401
from .qc.image import (compression_ratio, data_range, max_abs_error, psnr, ssim,  # noqa: F401
                       ssim_volumes)
