"""Validation of a whole ``.icainr`` header before anything is decoded.

The generic part (image description, mean frame, scaling, stored
configuration, required sections) is checked here; the model's own part
(``arch``, its ``data`` entries, a weight manifest) by the model named in the
header (``SeriesModel.validate_arch``). A file is untrusted input: every field
the decoder uses is checked for type, finiteness and range, and every size is
bounded, before a byte of payload is decoded.
"""

import math
from dataclasses import dataclass

import numpy as np

from . import models
from .config import validate_config
from .errors import ICAINRError

MAX_AXIS = 4096
MAX_VOXELS = 1 << 31
MAX_TIMEPOINTS = 100000
#: sections every file has, whatever its model
FRAME_SECTIONS = ("MASK", "MEAN")


@dataclass
class Header:
    """A validated header: the image description, the model and its settings."""

    image: dict
    arch: dict
    data: dict
    config: dict
    model: object
    raw: dict


def validate_header(header, sections, source):
    """Check every field the decoder uses and bound every size before allocating.

    Returns a ``Header``; raises ``ICAINRError`` naming ``source``.
    """
    try:
        desc, arch, data = header["image"], header["arch"], header["data"]
        cfg = validate_config(header["config"], source=f"{source}: stored configuration")
        shape = [int(s) for s in desc["shape"]]
        if len(shape) != 4 or any(not 1 <= s <= MAX_AXIS for s in shape[:3]) or \
                not 1 <= shape[3] <= MAX_TIMEPOINTS or \
                np.prod(shape, dtype=np.int64) > MAX_VOXELS:
            raise ICAINRError(source, f"implausible image shape {shape}")
        _validate_image_fields(desc, data, source)
        model = models.for_arch(arch, source)
        arch = model.validate_arch(header, shape, source)
    except ICAINRError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise ICAINRError(source, f"the header is incomplete or malformed ({exc!s:.60})") from None
    for tag in FRAME_SECTIONS + tuple(model.sections):
        if tag not in sections:
            raise ICAINRError(source, f"the file has no {tag} section")
    return Header(desc, arch, data, cfg, model, header)


def _validate_image_fields(desc, data, source):
    """Fields every model uses: stored dtype, mean-frame coding, scaling."""
    np.dtype(desc["dtype"])
    if np.dtype(desc["dtype"]).kind not in "iuf":
        raise ICAINRError(source, f"unsupported stored dtype {desc['dtype']}")
    for key in ("mean_lo", "mean_step"):
        if not math.isfinite(float(data[key])):
            raise ICAINRError(source, f"non-finite {key} in the header")
    if float(data["mean_step"]) <= 0:
        raise ICAINRError(source, "mean_step must be positive")
    if "value_range" in data:
        vr = data["value_range"]
        if not (isinstance(vr, list) and len(vr) == 2
                and all(isinstance(v, (int, float)) and math.isfinite(v) for v in vr)
                and vr[0] <= vr[1]):
            raise ICAINRError(source, "the header's value_range is not [min, max]")
    for key in ("scl_slope", "scl_inter"):
        if desc[key] is not None and not math.isfinite(float(desc[key])):
            raise ICAINRError(source, f"non-finite {key} in the header")
