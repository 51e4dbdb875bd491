"""``icainr bench``: rate-distortion and downstream-fidelity benchmark of the codec.

The ICA-INR codec is compared with peer compressors on the same float64 array
in physical units (``scl_slope``/``scl_inter`` applied), at target ratios
counted against the raw array in its stored dtype (X*Y*Z*T*itemsize, see
``nipype_icainr.metrics.compression_ratio``).

Modules (one concern each; heavy libraries are imported inside functions):

``data``
    The input run, its brain mask, stored dtype and scaling; "as written" values.
``payload``
    Self-describing byte framing shared by the peers (JSON header + sections).
``methods``
    The ``Method`` interface and the registry of method names.
``search``
    The knob search rule (see its docstring).
``lossless``, ``errorbound``, ``jpeg2k``, ``video``, ``svd``, ``inr``, ``ours``
    The methods: gzip/zstd, SZ3/ZFP, slice-wise JPEG 2000, H.264/H.265 via PyAV,
    truncated SVD, SIREN/NeRF baselines, and the ICA-INR codec itself.
``measure``
    Compress and decompress in a fresh child process (time, peak memory).
``metrics_cache``
    The original run's parcellation, t-maps and region signals, computed once.
``haxby``
    Cognitive-task analysis (decoding) on the Haxby slice.
``report``
    CSV, Markdown, JSON and PNG outputs, written atomically.
``runner``
    The whole benchmark, as run by ``icainr bench``.
"""

from .methods import ALL_METHODS, available_methods, make_method  # noqa: F401

__all__ = ["ALL_METHODS", "available_methods", "make_method"]
