"""The frame around every series model: the brain mask and the mean frame.

The mask is bit-packed and zstd-compressed (``nipype_icainr.io.pack_mask``).
The mean frame is quantised to 16-bit integers and coded losslessly with JPEG
XL (libjxl through imagecodecs). On the studyforrest run it measured
95.6 kB against 109.8 kB for lossless JPEG 2000, 99.2 kB for JPEG-LS, 143 kB for
PNG and 137 kB for zstd -19 (slices laid side by side), so JPEG XL
is the smallest maintained 16-bit lossless image codec available here. The rate
options of the mean frame's step and the background's (``mean_options``,
``background_multiple``) live here too.
"""

import math

import numpy as np

from .errors import ICAINRError
from .header import round_sig
from .models import MeanOption


def mean_frame_step(mean, stored_dtype, slope, mean_step):
    """Quantisation step of the mean frame, in physical units.

    For integer inputs the step is ``mean_step`` stored units (times
    ``scl_slope``; "auto" starts at one unit); for float inputs, and whenever
    the range would not fit in 16 bits, it is the mean frame's range / 65535.
    """
    lo, hi = float(mean.min()), float(mean.max())
    fit16 = (hi - lo) / 65535.0
    if np.dtype(stored_dtype).kind in "iu":
        step = (1.0 if mean_step == "auto" else mean_step) * abs(slope)
    else:
        step = fit16
    return max(step, fit16, np.finfo(np.float32).tiny)


def _mosaic(vol):  # (X, Y, Z) -> (Y, Z * X): axial slices side by side
    x, y, z = vol.shape
    return np.ascontiguousarray(vol.transpose(1, 2, 0).reshape(y, z * x))


def _unmosaic(img, shape):
    x, y, z = shape
    return img.reshape(y, z, x).transpose(2, 0, 1)


def encode_mean_frame(mean, step, mask=None, background_step=1, lo=None, effort=7,
                      zero_level=False):
    """Quantise the mean frame with ``step`` from ``lo`` and code it losslessly with JPEG XL.

    Outside ``mask`` the integer levels are rounded further to multiples of
    ``background_step`` (an integer >= 1), which costs the decoder nothing to
    undo; counted from the level of 0 with ``zero_level`` (``lo`` is then a whole
    number of steps below 0: see ``frame_origin``), from ``lo`` otherwise.
    ``lo`` (default: the frame's minimum) must not exceed it. Returns
    ``(payload, lo, decoded)`` where ``decoded`` is the mean frame the decoder
    will see (float64), so the caller can fit the series model to the residual
    around it.
    """
    import imagecodecs

    lo = float(mean.min()) if lo is None else float(lo)
    q = _levels(mean, step, lo)
    background_step = int(round(background_step))
    if mask is not None and background_step > 1:
        outside = ~np.asarray(mask, dtype=bool)
        # rounded once, from the values: rounding the fine levels again to multiples
        # left more error with an even multiple (on a 26x31x22 MNI run at a multiple
        # of 2: RMS 83.8, over the in-mask RMS error of 69.4 the multiple was chosen
        # under; rounded once, 66.5)
        q[outside] = _levels(mean[outside], step, lo, background_step, zero_level)
    q = q.astype(np.uint16)
    payload = imagecodecs.jpegxl_encode(_mosaic(q), lossless=True, effort=effort)
    return codestream(bytes(payload)), lo, lo + q.astype(np.float64) * step


def codestream(payload):
    """The bare JPEG XL codestream inside libjxl's ISOBMFF container.

    The container's boxes (signature, file type, level: 41-49 bytes) say
    nothing the decoder needs, and a small run's whole file is a few hundred
    bytes; libjxl decodes the bare codestream alike.
    """
    import struct

    pos = 0
    while pos + 8 <= len(payload):
        size, kind = struct.unpack(">I4s", payload[pos:pos + 8])
        if kind == b"jxlc":
            return payload[pos + 8:pos + size] if size else payload[pos + 8:]
        if size < 8:
            break
        pos += size
    return payload  # already a codestream (or partial-codestream boxes): kept as is


def decode_mean_frame(payload, shape, lo, step, source):
    """Inverse of ``encode_mean_frame``."""
    import imagecodecs

    x, y, z = shape
    # decoded into an array of the expected shape and dtype: libjxl's basic info is
    # checked against it before any pixel is allocated (a small payload may claim
    # an image of gigapixels, or many frames)
    img = np.empty((y, z * x), dtype=np.uint16)
    try:
        imagecodecs.jpegxl_decode(payload, out=img)
    except ValueError as exc:
        if "out." in str(exc):
            raise ICAINRError(source, f"the mean frame is not a {y} x {z * x} 16-bit image "
                                      f"({str(exc)[:80]})") from None
        raise ICAINRError(source, "the mean-frame section cannot be decoded") from None
    except Exception:
        raise ICAINRError(source, "the mean-frame section cannot be decoded") from None
    return lo + _unmosaic(img, shape).astype(np.float64) * step


def frame_origin(mean_min, step, zero_level=False):
    """The mean frame's lowest level ``lo``, at most ``mean_min``.

    Rounded down to a short decimal (the header stores it); with ``zero_level``
    and a frame that goes below 0, a whole number of steps below 0 instead, so
    that 0 is a level and a run's zero padding comes back exactly 0 (a z-scored
    run's had come back as -1.4e-4: a mask of the non-zero voxels no longer
    found the brain).
    """
    if zero_level and mean_min < 0:
        return -math.ceil(-mean_min / step) * step
    return round_sig(mean_min, -1)


def _levels(values, step, lo, multiple=1, zero_level=False):
    """The mean frame's integer levels of ``values`` (as float), from ``lo`` at ``step``;
    with ``multiple`` > 1 (the background), multiples of it counted from the level
    of 0 (``zero_level``: ``lo`` is then a whole number of steps below 0) or of
    ``lo``. ``encode_mean_frame`` and ``background_error`` round alike through it."""
    if multiple <= 1:
        return np.clip(np.round((values - lo) / step), 0, 65535)
    anchor = int(round(-lo / step)) if zero_level else 0
    coarse = step * multiple
    return np.clip(anchor + np.round((values - lo - anchor * step) / coarse) * multiple,
                   0, 65535)


def background_multiple(mean, mask, step, lo, target, config, zero_level=False):
    """The background's step in multiples of the mean step (``background_step``).

    "auto": the largest multiple (at most 4096) whose rounding leaves the
    background's mean frame within ``target`` (RMS over the voxels outside
    ``mask``), measured on its values as ``encode_mean_frame`` rounds them from
    ``lo``. The uniform-error estimate (the coarse step / sqrt(12)) ran 5-50 %
    over it on the corpus where the background spans few coarse steps.
    """
    if config["background_step"] != "auto":
        return config["background_step"]
    values = np.asarray(mean, dtype=np.float64)[~np.asarray(mask, dtype=bool)]
    if not values.size:
        return 1.0
    sample = values
    if values.size > BACKGROUND_SAMPLE:  # searched on a regular subsample, checked on all
        sample = values[::-(-values.size // BACKGROUND_SAMPLE)]
    for multiple in _MULTIPLES:  # largest first: the error is not monotone in the multiple
        if (background_error(sample, step, lo, multiple, zero_level) <= target
                and (sample is values
                     or background_error(values, step, lo, multiple, zero_level) <= target)):
            return float(multiple)
    return 1.0


def balanced_background_multiple(mean, mask, measured, step, lo, largest, price,
                                 n_timepoints, zero_level=False, allowance=math.inf):
    """The background's multiple, at most ``largest``, of least squared error in all.

    The background's error counts at every time point (its mean's error, over the
    voxels in ``measured``), weighted by ``BACKGROUND_WEIGHT``, and each byte the
    frame takes costs the series ``price`` (squared error per byte), at most
    ``allowance`` in all. ``largest`` is what the background rule allows; within it
    a finer background is worth its bytes where the background is a small share of
    the file (RAPIDTIDETEST, a long skull-stripped run, at 25x: the largest
    multiple left the full volume 1.6 dB worse for 0.03 dB in the mask). The bytes
    are JPEG XL's at ``MULTIPLE_EFFORT``.
    """
    values = np.asarray(mean, dtype=np.float64)[np.asarray(measured, dtype=bool)]
    if largest <= 1 or not values.size:
        return float(largest)
    best, least_bytes = None, None
    for multiple in sorted({int(largest), *(max(1, int(largest / 1.6 ** k))
                                            for k in range(1, 20))}, reverse=True):
        payload, _, _ = encode_mean_frame(mean, step, mask, multiple, lo=lo,
                                          effort=MULTIPLE_EFFORT, zero_level=zero_level)
        least_bytes = len(payload) if least_bytes is None else least_bytes
        if price * (len(payload) - least_bytes) > allowance:
            break  # finer multiples take more bytes still
        error = background_error(values, step, lo, multiple, zero_level)
        cost = (BACKGROUND_WEIGHT * error ** 2 * values.size * n_timepoints
                + price * len(payload))
        if best is None or cost < best[0]:
            best = (cost, multiple)
    return float(best[1])


#: a squared error outside the mask counts this much of one inside it
#: (``balanced_background_multiple``): the brain is what a run is kept for. At 0.1,
#: gift-133 at 200x gave 0.3 dB in the mask to its background; at 0.02 the masked
#: error of RAPIDTIDETEST, gift-133, a 30-volume gift cut and studyforrest moved by
#: at most 0.01 dB, and RAPIDTIDETEST's full volume gained 1.6 dB at 25x
BACKGROUND_WEIGHT = 0.02
#: the share of the series' squared error the background's bytes may add, at most: at
#: 25x the gift runs' in-mask error is so small (RMS 0.7 on values of 10^4) that any
#: weight let their background take 1.2 dB in the mask for 0.3 dB over the volume
BACKGROUND_ALLOWANCE = 0.01
#: JPEG XL's effort where background multiples are priced: at effort 3 a coarser
#: multiple saves nothing (HAPPYTEST's frame, 416 kB at multiples of 1 and of 8; at
#: effort 5, 417 and 372 kB, as at the file's effort 7, in a third of its time)
MULTIPLE_EFFORT = 5
#: background voxels the multiple is searched on (``background_multiple``)
BACKGROUND_SAMPLE = 65536
#: the multiples tried, largest first: every one up to 64, then 5 % apart up to 4096
_MULTIPLES = sorted({*range(1, 65), *(int(64 * 1.05 ** k) for k in range(86)), 4096},
                    reverse=True)


def background_error(values, step, lo, multiple, zero_level=False):
    """RMS error of ``values`` rounded as ``encode_mean_frame`` rounds the background."""
    q = _levels(values, step, lo, multiple, zero_level)
    return float(np.sqrt(np.mean((lo + q * step - values) ** 2)))


def mean_options(mean, mask, floor, slope, image, noise, n_timepoints):
    """Mean-frame steps from ``floor`` up by sqrt(2) to 1/4 of the frame's range, each with
    its bytes and the squared error it adds to the series.

    The bytes are JPEG XL's at effort 3, a few per cent above what the file's
    effort 7 gives (measured 1-10 % on the corpus), for a tenth of the time.
    """
    rng = float(mean.max() - mean.min()) or abs(slope)
    lo = round_sig(mean.min(), -1)
    options = []
    step = floor
    while True:
        s = round_sig(step, 1)
        payload, _, decoded = encode_mean_frame(
            mean, s, mask, max(1.0, math.floor(math.sqrt(12.0) * noise / s)), lo=lo, effort=3)
        err = float(np.sum((mean[mask] - decoded[mask]) ** 2)) * n_timepoints
        options.append(MeanOption(step=s, bytes=len(payload), sse=err))
        if step > rng / 4:
            break
        step *= math.sqrt(2.0)
    return options
