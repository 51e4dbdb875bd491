"""The ``.icainr`` header: what formats 4 and 5 store, and its whole validation before decoding.

A header (JSON) holds ``software``, ``seed``, ``device``, ``config`` (the
validated configuration of the file's model), ``image`` (shape, stored dtype,
endianness, scaling when the input had one, the squeezed trailing dimensions,
the source file's name and size), ``frame`` (the mask's voxel count, the mean
frame's offset and step, the input's value range) and ``model`` (the series
model's own entry, with its ``name``). The NIfTI header block travels beside
it; affine, codes, zooms, units and TR are read from that block.

The generic part is checked here; the model's entry by the model it names
(``SeriesModel.validate``). A file is untrusted input: every field the decoder
uses is checked for type, finiteness and range, and every size is bounded, before
a byte of payload is decoded.
"""

import base64
import contextlib
import math
import warnings
from dataclasses import dataclass

import numpy as np

from . import limits, models
from .config import read_stored_config
from .errors import ICAINRError

FLOAT32_MAX = float(np.finfo(np.float32).max)
#: sections every file has, whatever its model
FRAME_SECTIONS = ("MASK", "MEAN")
#: stored dtypes the decoder writes (numpy type strings, native byte order)
DTYPES = ("|i1", "|u1", "<i2", "<u2", "<i4", "<u4", "<i8", "<u8", "<f4", "<f8")


@dataclass
class Header:
    """A validated header: the image description, the frame, the model and its settings."""

    image: dict
    frame: dict
    part: dict
    model: object
    config: dict
    software: dict
    seed: int
    device: str


def image_record(desc):
    """What a file stores of ``io.describe_image``'s description, beside the block.

    Shape, stored dtype, byte order and scaling are read from the NIfTI header
    block; the record holds them only where they differ from what the block
    says (never, for a file nibabel wrote), plus the source file's name and size.
    """
    record = {"source_name": desc["source_name"], "source_bytes": desc["source_bytes"]}
    block = _block_fields(header_block(desc), None)
    for key in ("shape", "stored_shape", "dtype", "endianness", "scl_slope", "scl_inter"):
        value = desc.get(key, desc["shape"] if key == "stored_shape" else None)
        if value != block[key]:
            record[key] = value
    return record


def _block_fields(block, endianness):
    """Shape, dtype, byte order and scaling of a NIfTI header block (nibabel's reading)."""
    import io as _io

    import nibabel as nib

    from ..io import header_scaling

    klass = nib.Nifti2Header if len(block) == 540 else nib.Nifti1Header
    with quiet_nibabel():
        if endianness is None:  # nibabel recognises the byte order by sizeof_hdr
            hdr = klass.from_fileobj(_io.BytesIO(block), check=False)
        else:
            hdr = klass(block, endianness=endianness, check=False)
        stored = [int(d) for d in hdr.get_data_shape()]
        slope, inter = header_scaling(hdr)
        return {"shape": stored[:4], "stored_shape": stored,
                "dtype": np.dtype(hdr.get_data_dtype()).newbyteorder("=").str,
                "endianness": hdr.endianness, "scl_slope": slope, "scl_inter": inter}


@contextlib.contextmanager
def quiet_nibabel():
    """nibabel's warnings and log messages silenced: a bad header must end in our one
    line, not in nibabel's lines before it."""

    import nibabel as nib

    logger = nib.imageglobals.logger  # "nibabel.global", where header checks report
    disabled = logger.disabled
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logger.disabled = True
        try:
            yield
        finally:
            logger.disabled = disabled


def header_block(desc):
    """The NIfTI header block of a description."""
    return base64.b64decode(desc["header_b64"])


def round_sig(value, direction=0, digits=7):
    """``value`` to ``digits`` significant digits, down (-1), nearest (0) or up (+1).

    Numbers a header stores are rounded so (and the coder uses the rounded
    value): a short decimal costs a few bytes where a float64 costs 17.
    """
    value = float(value)
    if value == 0 or not math.isfinite(value):
        return value
    exponent = math.floor(math.log10(abs(value))) - (digits - 1)
    scaled = {-1: math.floor, 0: round, 1: math.ceil}[direction](value / 10.0 ** exponent)
    out = float(f"{scaled}e{exponent}")
    # the decimal round trip can land a hair on the wrong side of a bound
    if direction < 0 and out > value:
        out = math.nextafter(out, -math.inf)
    if direction > 0 and out < value:
        out = math.nextafter(out, math.inf)
    return out


def validate_header(header, sections, block, source):
    """Check every field the decoder uses and bound every size before allocating.

    Returns a ``Header``; raises ``ICAINRError`` naming ``source``.
    """
    try:
        image = _image(header["image"], block, source)
        shape = image["shape"]
        part = header["model"]
        model = models.for_part(part, source)
        # a whole-run model codes the stored array itself: no mask, no mean frame
        frame = None if model.whole_run else _frame(header["frame"], shape, source)
        part = dict(model.validate(part, shape, frame and frame["n_voxels"], source),
                    name=model.name)
        config = read_stored_config(header["config"], model.name,
                                    f"{source}: stored configuration")
        software = _software(header.get("software"), source)
        seed, device = header.get("seed"), header.get("device")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ICAINRError(source, "the header's seed is not an integer")
        if device is not None and device not in ("cpu", "cuda"):
            raise ICAINRError(source, "the header's device is neither cpu nor cuda")
    except ICAINRError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError,
            RecursionError) as exc:
        raise ICAINRError(source, f"the header is incomplete or malformed ({exc!s:.60})") from None
    required = (() if model.whole_run else FRAME_SECTIONS) + model.required_sections(part)
    for tag in required:
        if tag not in sections:
            raise ICAINRError(source, f"the file has no {tag} section")
    limits.check_expansion(image["shape"], sum(len(p) for p in sections.values()), source)
    return Header(image, frame, part, model, config, software, seed, device)


def _number(value, what, source):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            not math.isfinite(value):
        raise ICAINRError(source, f"the header's {what} is not a finite number")
    return float(value)


def _count(value, lo, hi, what, source):
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ICAINRError(source, f"the header's {what} is not an integer in [{lo}, {hi}]")
    return value


def _image(record, block, source):
    """The full image description (``io.describe_image``'s keys) from the stored record."""
    import nibabel as nib

    if not isinstance(record, dict):
        raise ICAINRError(source, "the header's image entry is not a mapping")
    klass = {348: nib.Nifti1Header, 540: nib.Nifti2Header}.get(len(block))
    if klass is None:
        raise ICAINRError(source, f"the stored NIfTI header has {len(block)} bytes, "
                                  "expected 348 or 540")
    try:
        fields = _block_fields(block, record.get("endianness"))
    except Exception:
        raise ICAINRError(source, "the stored NIfTI header is invalid") from None
    fields.update({k: v for k, v in record.items() if k in fields})
    shape, stored = fields["shape"], fields["stored_shape"]
    if not isinstance(shape, list):
        raise ICAINRError(source, f"implausible image shape {str(shape)[:60]}")
    limits.check_shape(shape, source)
    if not (isinstance(stored, list) and 4 <= len(stored) <= 7 and stored[:4] == shape
            and all(s == 1 for s in stored[4:])):
        raise ICAINRError(source, "the image's stored shape does not extend its shape with 1s")
    dtype, endianness = fields["dtype"], fields["endianness"]
    if dtype not in DTYPES:
        raise ICAINRError(source, f"unsupported stored dtype {str(dtype)[:20]}")
    if endianness not in ("<", ">"):
        raise ICAINRError(source, "the header's endianness is neither < nor >")
    name, size = record["source_name"], record["source_bytes"]
    if not isinstance(name, str) or len(name) > 4096:
        raise ICAINRError(source, "the header's source_name is not a short text")
    _count(size, 0, 1 << 50, "source_bytes", source)
    slope, inter = fields["scl_slope"], fields["scl_inter"]
    if (slope is None) != (inter is None):
        raise ICAINRError(source, "the header gives only one of scl_slope and scl_inter")
    if slope is not None:
        slope = _number(slope, "scl_slope", source)
        inter = _number(inter, "scl_inter", source)
        if slope == 0:
            raise ICAINRError(source, "the header's scl_slope is 0")
        if klass is nib.Nifti1Header and max(abs(slope), abs(inter)) > FLOAT32_MAX:
            raise ICAINRError(source, "the header's scaling does not fit NIfTI-1's float32")
    try:
        with quiet_nibabel():
            hdr = klass(block, endianness=endianness, check=True)
            affine = hdr.get_best_affine()
            zooms = [float(z) for z in hdr.get_zooms()]
            units = hdr.get_xyzt_units()
    except Exception:
        raise ICAINRError(source, "the stored NIfTI header is invalid") from None
    if not np.isfinite(affine).all() or not all(math.isfinite(z) for z in zooms):
        raise ICAINRError(source, "the stored NIfTI header has non-finite geometry")
    return {"shape": shape, "stored_shape": stored, "dtype": dtype, "endianness": endianness,
            "scl_slope": slope, "scl_inter": inter, "source_name": name, "source_bytes": size,
            "nifti_version": 2 if klass is nib.Nifti2Header else 1,
            "header_b64": base64.b64encode(block).decode("ascii"),
            "affine": np.asarray(affine, dtype=float).tolist(),
            "sform_code": int(hdr["sform_code"]), "qform_code": int(hdr["qform_code"]),
            "zooms": zooms, "xyzt_units": [units[0] or "unknown", units[1] or "unknown"],
            "tr": zooms[3] if len(zooms) > 3 else 0.0}


def _frame(frame, shape, source):
    if not isinstance(frame, dict):
        raise ICAINRError(source, "the header's frame entry is not a mapping")
    out = {"n_voxels": _count(frame["n_voxels"], 0, math.prod(shape[:3]), "n_voxels", source),
           "mean_lo": _number(frame["mean_lo"], "mean_lo", source),
           "mean_step": _number(frame["mean_step"], "mean_step", source)}
    if out["mean_step"] <= 0:
        raise ICAINRError(source, "mean_step must be positive")
    # the mean frame (lo + 65535 steps at most) and the range stay far from overflow
    if abs(out["mean_lo"]) > 1e300 or out["mean_step"] > 1e295:
        raise ICAINRError(source, "the header's mean frame offset or step is implausibly large")
    if "value_range" in frame:  # absent before format 3
        vr = frame["value_range"]
        if not (isinstance(vr, list) and len(vr) == 2):
            raise ICAINRError(source, "the header's value_range is not [min, max]")
        lo, hi = (_number(v, "value_range", source) for v in vr)
        if lo > hi or max(abs(lo), abs(hi)) > 1e300:
            raise ICAINRError(source, "the header's value_range is not [min, max]")
        out["value_range"] = [lo, hi]
    return out


def _software(software, source):
    if software is None:
        return {}
    if not (isinstance(software, dict) and len(software) <= 64
            and all(isinstance(k, str) and isinstance(v, str) and len(k) <= 64 and len(v) <= 64
                    for k, v in software.items())):
        raise ICAINRError(source, "the header's software entry is not a mapping of versions")
    return software
