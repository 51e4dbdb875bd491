"""Size limits shared by the encoder and the decoder.

The decoder refuses a file whose image exceeds these limits before decoding a
byte of it; the encoder checks the same limits before it starts, so it never
writes a file its own decoder would refuse.

Two kinds of limit:

* fixed ceilings on the image's shape, generous enough for a 1 mm grid
  (182 x 218 x 182) of 1,200 volumes;
* an expansion bound: a file may decode to ``FREE_SAMPLES`` samples (voxels x
  time points) plus ``SAMPLES_PER_BYTE`` per byte of its sections. A file of a
  few kilobytes therefore cannot ask for gigabytes of output or hours of work.
  Real runs sit far below it (a 100x float32 file holds 25 samples per byte, a
  lossless 99 %-zero run a few thousand); a run so constant that it would exceed
  it (e.g. all zeros) is padded by the encoder with a ``PADS`` section, which the
  decoder ignores.
"""

import math

from .errors import ICAINRError

MAX_AXIS = 4096
MAX_TIMEPOINTS = 100000
#: voxels x time points (a 1 mm run of 1,200 volumes has 8.7e9)
MAX_SAMPLES = 1 << 34
FREE_SAMPLES = 1 << 26
SAMPLES_PER_BYTE = 1 << 16
PAD_TAG = "PADS"


def check_shape(shape, source):
    """Refuse a 4D ``shape`` beyond the fixed ceilings (one line naming the limit)."""
    if not (isinstance(shape, (list, tuple)) and len(shape) == 4
            and all(isinstance(s, int) and not isinstance(s, bool) for s in shape)):
        raise ICAINRError(source, f"implausible image shape {str(shape)[:60]}")
    if not all(1 <= s <= MAX_AXIS for s in shape[:3]):
        raise ICAINRError(source, f"image shape {tuple(shape)}: each spatial axis must be "
                                  f"between 1 and {MAX_AXIS}")
    if not 1 <= shape[3] <= MAX_TIMEPOINTS:
        raise ICAINRError(source, f"image shape {tuple(shape)}: at most {MAX_TIMEPOINTS} "
                                  "volumes")
    if math.prod(shape) > MAX_SAMPLES:
        raise ICAINRError(source, f"image shape {tuple(shape)}: {math.prod(shape):,} voxels x "
                                  f"volumes exceed the limit of {MAX_SAMPLES:,}")


def allowance(payload_bytes):
    """Samples a file whose sections hold ``payload_bytes`` may decode to."""
    return FREE_SAMPLES + SAMPLES_PER_BYTE * payload_bytes


def check_expansion(shape, payload_bytes, source):
    """Refuse a file that would decode to more samples than its size justifies."""
    samples = math.prod(shape)
    if samples > allowance(payload_bytes):
        raise ICAINRError(source, f"{samples:,} samples from {payload_bytes:,} bytes of payload "
                                  f"exceed the decoder's bound of {SAMPLES_PER_BYTE:,} per byte "
                                  "(a decompression bomb, or a corrupted shape)")


def padding(shape, payload_bytes):
    """Bytes of ``PADS`` the encoder adds so that its file passes ``check_expansion``."""
    samples = math.prod(shape)
    if samples <= allowance(payload_bytes):
        return 0
    return -(-(samples - FREE_SAMPLES) // SAMPLES_PER_BYTE) - payload_bytes
