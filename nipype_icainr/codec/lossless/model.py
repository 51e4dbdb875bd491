"""``LosslessModel``: the stored array exactly, or every value within a bound.

Quantisation (``max_error`` E > 0, physical units): integers with scaling
slope s keep an integer tolerance e = floor(E / |s|) stored units and are coded
as ``c = floor((x + e) / (2e + 1))``, decoded ``c (2e + 1)``: every value
within e units, so within E. Floats are coded as ``c = round((x - lo) / q)``
with ``q`` just under 2E, decoded ``lo + c q`` and cast to the stored float;
the encoder verifies every value and tightens ``q`` if a rounding would pass E.
With E = 0 (``--lossless``) integers are coded as they are and floats by their
bit patterns (as unsigned integers of the same width).

Engines: ``"predictive"`` (``predictive``: a closed-loop integer predictive
coder; integer inputs with E > 0 are coded there directly, kind ``"int-near"``,
so that residuals rather than pre-quantised values are quantised) for integer
codes, ``"zstd"`` (``coder``) for float bit patterns, for codes outside the
predictive range, for incompressible runs and for tiny runs where it is smaller.
The header entry records how to undo all of it; files written with engine
``"zstd"`` and kind ``"int-step"`` still decode.
"""

import math

import numpy as np

from ..errors import ICAINRError
from ..models import Coded, RunModel
from . import coder, predictive

TAG = "LOSS"
#: code dtypes the decoder accepts
CODE_DTYPES = ("|i1", "|u1", "<i2", "<u2", "<i4", "<u4", "<i8", "<u8")
ENGINES = ("zstd", "predictive")
#: runs up to this many values try both engines and keep the smaller
SMALL_RUN = 1 << 16


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
        payload, part, codes = self._predictive(stored, image, target.max_error)
        if payload is None or codes.size <= SMALL_RUN:
            zcodes, zpart = quantise(stored, image, target.max_error)
            zpayload = coder.zstd_encode(zcodes)
            if payload is None or len(zpayload) < len(payload):
                payload, part, codes = zpayload, dict(zpart, engine="zstd"), zcodes
        part.update(code_dtype=codes.dtype.str, bound=float(target.max_error))
        return Coded({TAG: payload}, part, final_loss=0.0)

    @staticmethod
    def _predictive(stored, image, max_error):
        """``(payload, part, codes)`` of the predictive engine, payload None where it
        does not apply (float bit patterns, codes too wide) or does not pay
        (incompressible: larger than the raw codes)."""
        dtype = np.dtype(image["dtype"])
        if dtype.kind in "iu":
            e = 0
            if max_error > 0:
                slope = abs(image["scl_slope"]) if image["scl_slope"] is not None else 1.0
                e = int(math.floor(max_error / slope + 1e-9))
            codes = stored
            part = {"kind": "exact", "error_units": 0} if e == 0 else \
                {"kind": "int-near", "error_units": e}
        else:
            codes, part = quantise(stored, image, max_error)
            e = 0
        if part["kind"] == "float-bits" or e > predictive.MAX_ERROR or \
                not predictive.supports(codes):
            return None, None, codes
        payload = predictive.encode(codes, e)
        if len(payload) >= codes.nbytes:
            return None, None, codes
        return payload, dict(part, engine="predictive"), codes

    def estimate_bytes(self, stored, image):
        """zstd at a fast level over-estimates the level-19 size; good enough to skip."""
        return len(coder.zstd_encode(stored, level=3))

    def decode_run(self, sections, part, image, source):
        if part["engine"] == "predictive":
            error = part["error_units"] if part["kind"] == "int-near" else 0
            codes = predictive.decode(sections[TAG], tuple(image["shape"]), part["code_dtype"],
                                      source, error)
            if part["kind"] == "int-near":   # the codes are the stored values, within e
                return codes.astype(np.dtype(image["dtype"]))
        else:
            codes = coder.zstd_decode(sections[TAG], image["shape"], part["code_dtype"],
                                      source)
        return dequantise(codes, part, image["dtype"])

    def validate(self, part, shape, n_voxels, source):
        kind = part["kind"]
        if kind not in ("exact", "int-step", "int-near", "float-bits", "float-step"):
            raise ICAINRError(source, f"unknown lossless coding {str(kind)[:20]!r}")
        engine = part["engine"]
        if engine not in ENGINES:
            raise ICAINRError(source, f"unknown lossless engine {str(engine)[:20]!r}")
        if part["code_dtype"] not in CODE_DTYPES:
            raise ICAINRError(source, "unsupported lossless code dtype")
        if engine == "predictive" and kind in ("int-step", "float-bits"):
            raise ICAINRError(source, "the predictive engine does not code this kind")
        if kind == "int-near":
            e = part["error_units"]
            if engine != "predictive":
                raise ICAINRError(source, "int-near coding needs the predictive engine")
            if isinstance(e, bool) or not isinstance(e, int) or \
                    not 1 <= e <= predictive.MAX_ERROR:
                raise ICAINRError(source, "the lossless error bound is not a positive integer")
        if engine == "predictive" and (len(shape) != 4 or any(
                isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in shape)):
            raise ICAINRError(source, "the predictive engine needs a 4-D shape")
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
