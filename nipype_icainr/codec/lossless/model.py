"""``LosslessModel``: the stored array exactly, or every value within a bound.

Quantisation (``max_error`` E > 0, physical units): integers with scaling
slope s keep an integer tolerance e = floor(E / |s|) stored units and are coded
as ``c = floor((x + e) / (2e + 1))``, decoded ``c (2e + 1)``: every value
within e units, so within E. Floats are coded as ``c = round((x - lo) / q)``
with ``q`` just under 2E, decoded ``lo + c q`` and cast to the stored float;
the encoder verifies every value and tightens ``q`` if a rounding would pass E.
With E = 0 (``--lossless``) integers are coded as they are and floats by their
bit patterns (as unsigned integers of the same width).

The codes go to the coder of ``coder``; the header entry records how to undo
all of it.
"""

import math

import numpy as np

from ..errors import ICAINRError
from ..models import Coded, RunModel
from . import coder

TAG = "LOSS"
#: code dtypes the decoder accepts
CODE_DTYPES = ("|i1", "|u1", "<i2", "<u2", "<i4", "<u4", "<i8", "<u8")


def _narrow(codes):
    """The narrowest signed integer dtype holding ``codes``."""
    lo, hi = (int(codes.min()), int(codes.max())) if codes.size else (0, 0)
    for dtype in (np.int8, np.int16, np.int32, np.int64):
        info = np.iinfo(dtype)
        if info.min <= lo and hi <= info.max:
            return codes.astype(dtype)
    raise ValueError("codes out of the int64 range")


def quantise(stored, image, max_error):
    """``(codes, part)``: the integer codes of ``stored`` and how to decode them."""
    dtype = np.dtype(image["dtype"])
    slope = abs(image["scl_slope"]) if image["scl_slope"] is not None else 1.0
    if dtype.kind in "iu":
        e = int(math.floor(max_error / slope + 1e-9)) if max_error > 0 else 0
        if e == 0:
            return stored, {"kind": "exact", "error_units": 0}
        q = 2 * e + 1
        codes = np.floor_divide(stored.astype(np.int64) + e, q)
        return _narrow(codes), {"kind": "int-step", "q": q, "error_units": e}
    if max_error <= 0:  # the floats' bit patterns, as integers of the same width
        return stored.view(np.dtype(f"<u{dtype.itemsize}")), {"kind": "float-bits"}
    physical_bound = max_error / slope  # in stored units of the float
    values = stored.astype(np.float64)
    lo = float(values.min())
    q = 2.0 * physical_bound * (1.0 - 2.0 ** -20)
    for _ in range(60):
        codes = np.rint((values - lo) / q)
        back = (lo + codes * q).astype(dtype).astype(np.float64)
        if float(np.abs(back - values).max()) <= physical_bound:
            return _narrow(codes.astype(np.int64)), {"kind": "float-step", "q": q, "lo": lo}
        q *= 1.0 - 2.0 ** -10
    raise ICAINRError(None, "the error bound is too fine for the stored float precision")


def dequantise(codes, part, dtype):
    """Inverse of ``quantise``: the stored array."""
    dtype = np.dtype(dtype)
    kind = part["kind"]
    if kind == "exact":
        return codes.astype(dtype)
    if kind == "int-step":
        values = codes.astype(np.int64) * int(part["q"])
        info = np.iinfo(dtype)
        return np.clip(values, info.min, info.max).astype(dtype)
    if kind == "float-bits":
        return codes.view(dtype)
    return (part["lo"] + codes.astype(np.float64) * part["q"]).astype(dtype)


class LosslessModel(RunModel):
    """The stored array, exactly or within an error bound (``coder``)."""

    name = "lossless"
    sections = (TAG,)

    def fit_run(self, stored, image, target, config, env):
        codes, part = quantise(stored, image, target.max_error)
        payload = coder.zstd_encode(codes)
        part.update(engine="zstd", code_dtype=codes.dtype.str,
                    bound=float(target.max_error))
        return Coded({TAG: payload}, part, final_loss=0.0)

    def estimate_bytes(self, stored, image):
        """zstd at a fast level over-estimates the level-19 size; good enough to skip."""
        return len(coder.zstd_encode(stored, level=3))

    def decode_run(self, sections, part, image, source):
        codes = coder.zstd_decode(sections[TAG], image["shape"], part["code_dtype"], source)
        return dequantise(codes, part, image["dtype"])

    def validate(self, part, shape, n_voxels, source):
        kind = part["kind"]
        if kind not in ("exact", "int-step", "float-bits", "float-step"):
            raise ICAINRError(source, f"unknown lossless coding {str(kind)[:20]!r}")
        if part["engine"] != "zstd":
            raise ICAINRError(source, f"unknown lossless engine {str(part['engine'])[:20]!r}")
        if part["code_dtype"] not in CODE_DTYPES:
            raise ICAINRError(source, "unsupported lossless code dtype")
        out = dict(part)
        if kind == "int-step":
            q = part["q"]
            if isinstance(q, bool) or not isinstance(q, int) or not 1 <= q <= 1 << 31:
                raise ICAINRError(source, "the lossless step is not a positive integer")
        if kind == "float-step":
            for key in ("q", "lo"):
                v = part[key]
                if isinstance(v, bool) or not isinstance(v, (int, float)) or \
                        not math.isfinite(v):
                    raise ICAINRError(source, f"the lossless {key} is not a finite number")
            if not part["q"] > 0:
                raise ICAINRError(source, "the lossless step must be positive")
        exact = kind in ("exact", "float-bits")
        bound = part.get("bound", 0.0) if exact else part["bound"]
        if isinstance(bound, bool) or not isinstance(bound, (int, float)) or \
                not math.isfinite(bound) or bound < 0:
            raise ICAINRError(source, "the lossless bound is not a non-negative number")
        out["bound"] = float(bound)
        return out

    def describe(self, part):
        if part["kind"] in ("exact", "float-bits"):
            return "lossless (stored values exactly)"
        return f"error-bounded (every value within {part['bound']:g})"

    def guarantee(self, part):
        if part["kind"] in ("exact", "float-bits"):
            return "lossless", 0.0
        return "error-bounded", float(part["bound"])
