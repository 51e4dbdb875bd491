"""Side information sections: narrowest signed integers, byte-shuffled, zstd-19."""

import numpy as np

from ...errors import ICAINRError

_SIDE_DTYPES = (np.dtype("<i1"), np.dtype("<i2"), np.dtype("<i4"), np.dtype("<i8"))


def _zstd(raw):
    import imagecodecs

    return bytes(imagecodecs.zstd_encode(raw, level=19))


def _side_encode(values):
    """(dtype code, bytes): narrowest signed ints, byte-shuffled, zstd-19."""
    a = np.asarray(values, np.int64)
    lo, hi = (int(a.min()), int(a.max())) if a.size else (0, 0)
    for code, dt in enumerate(_SIDE_DTYPES):
        info = np.iinfo(dt)
        if info.min <= lo and hi <= info.max:
            break
    a = np.ascontiguousarray(a.astype(dt))
    shuffled = a.view(np.uint8).reshape(a.size, dt.itemsize).T.tobytes()
    return code, (_zstd(shuffled) if a.size else b"")


def _side_decode(code, payload, count, source, what):
    import imagecodecs

    dt = _SIDE_DTYPES[code]
    if count == 0:
        if payload:
            raise ICAINRError(source, f"the predictive {what} section should be empty")
        return np.zeros(0, np.int64)
    try:
        raw = imagecodecs.zstd_decode(bytes(payload), out=count * dt.itemsize)
    except Exception:
        raise ICAINRError(source, f"the predictive {what} section cannot be decoded") from None
    if len(raw) != count * dt.itemsize:
        raise ICAINRError(source, f"the predictive {what} section has the wrong size")
    b = np.frombuffer(raw, np.uint8).reshape(dt.itemsize, count).T
    return np.ascontiguousarray(b).view(dt).ravel().astype(np.int64)
