"""The decoder of untrusted streams: every failure is one ``ICAINRError``."""

import zlib

import numpy as np

from ...errors import ICAINRError
from .arith import _rdiv
from .entropy import _EntropyDecoder
from .geometry import _PF2, _PF4, _Geom, _vdt
from .header import parse_header
from .params import F16, GSHIFT, NBUCKET, NCLS, QV_MAX, QV_MIN, WMAX
from .predictor import _loop, _ridge_gains
from .side import _side_decode


def decode(payload, shape, dtype, source, error=0):
    """Inverse of ``encode``.

    Parameters
    ----------
    payload : bytes-like
        Untrusted stream.
    shape : tuple of 4 ints
        The array's shape (already bounded by the caller).
    dtype : numpy dtype
        The codes' dtype.
    source : str
        Named in errors.
    error : int
        The error bound the caller expects (the stream's must match).

    Returns
    -------
    ndarray of ``dtype``, ``shape``

    Raises
    ------
    ICAINRError
        For any stream that is not a valid coding of an array of this shape.
    """
    head, secs = parse_header(payload, shape, source)
    if head["E"] != error:
        raise ICAINRError(source, "the predictive error bound does not match the header")
    try:
        return _decode(head, secs, np.dtype(dtype), source)
    except ICAINRError:
        raise
    except Exception:   # a corrupt stream must end in one ICAINRError line
        raise ICAINRError(source, "the predictive stream is corrupt") from None


def _decode(head, secs, dtype, source):
    import imagecodecs

    X, Y, Z, T = head["shape"]
    lo, R, F = head["lo"], head["R"], head["F"]
    info = np.iinfo(dtype)
    if lo < info.min or lo + R > info.max:
        raise ICAINRError(source, "the predictive value range does not fit the dtype")
    gsh = GSHIFT if F == F16 else GSHIFT - 4
    nvox = X * Y * Z
    nmask = (nvox + 7) // 8
    try:
        mask = imagecodecs.zstd_decode(bytes(secs[0]), out=nmask)
    except Exception:
        raise ICAINRError(source, "the predictive mask cannot be decoded") from None
    if len(mask) != nmask:
        raise ICAINRError(source, "the predictive mask has the wrong size")
    const = np.unpackbits(np.frombuffer(mask, np.uint8))[:nvox].astype(bool).reshape(X, Y, Z)
    nc = ~const
    side = head["side"]
    cvals = _side_decode(side[0], secs[1], int(const.sum()), source, "constant values")
    if cvals.size and (cvals.min() < 0 or cvals.max() > R):
        raise ICAINRError(source, "the predictive constant values are out of range")
    N = int(nc.sum())
    out = np.empty((X, Y, Z, T), dtype)
    out[const] = (cvals + lo)[:, None]
    qres = _side_decode(side[1], secs[2], N, source, "noise index")
    mres = _side_decode(side[2], secs[3], N, source, "mean")
    K, nph = head["K"], head["nph"]
    Wq = _side_decode(side[3], secs[4], T * K, source, "component").reshape(T, K)
    feats = _PF2 if nph == 2 else _PF4
    nfs = [len(f) for f in feats]
    wv = _side_decode(side[4], secs[5], NCLS * sum(nfs), source, "weight")
    if (np.abs(Wq) > 32767).any() or (np.abs(wv) > WMAX).any():
        raise ICAINRError(source, "the predictive weights are out of range")
    if N == 0:
        if head["k1"] != head["k0"]:
            raise ICAINRError(source, "the predictive stream codes no voxel")
        return _checked(out, head, source)
    if head["k1"] == head["k0"]:
        raise ICAINRError(source, "the predictive stream lacks its coded values")
    # noise index and mean: prefix sums along x (plane x - 1 predicts plane x)
    qfull = np.zeros((X, Y, Z), np.int64)
    qr = np.zeros((X, Y, Z), np.int64)
    qr[nc] = qres
    for x in range(X):
        prev = qfull[x - 1] if x else np.zeros((Y, Z), np.int64)
        m = nc[x]
        qfull[x][m] = qr[x][m] + prev[m]
        if m.any() and (qfull[x][m].min() < QV_MIN or qfull[x][m].max() > QV_MAX):
            raise ICAINRError(source, "the predictive noise index is out of range")
    qv = qfull[nc]
    gfull = np.int64(1) << np.clip(qfull // 2 + gsh, 0, 12)
    Mfull = np.zeros((X, Y, Z), np.int64)
    Mfull[const] = cvals * F
    mr = np.zeros((X, Y, Z), np.int64)
    mr[nc] = mres
    for x in range(X):
        prev = Mfull[x - 1] if x else np.zeros((Y, Z), np.int64)
        m = nc[x]
        gg = gfull[x][m]
        Mfull[x][m] = (mr[x][m] + _rdiv(prev[m], gg)) * gg
        if m.any() and (Mfull[x][m].min() < -4096 or Mfull[x][m].max() > F * R + 4096):
            raise ICAINRError(source, "the predictive mean is out of range")
    M = Mfull[nc]
    Wv, o = [], 0
    for n in nfs:
        Wv.append(wv[o:o + NCLS * n].reshape(NCLS, n))
        o += NCLS * n
    H = _ridge_gains(Wq)
    cls = np.searchsorted(np.array(head["edges"], np.int64), qv, side="right")
    k0, k1 = head["k0"], head["k1"]
    b32 = np.frombuffer(bytes(secs[6]), "<f4").astype(np.float64)
    if not np.isfinite(b32).all() or (b32 <= 0).any() or (b32 > 2.0 ** 40).any():
        raise ICAINRError(source, "the predictive scales are invalid")
    bsym = np.ones(NBUCKET)
    bsym[k0:k1] = b32
    words = np.frombuffer(bytes(secs[7]), "<u4").astype(np.uint32)
    g = _Geom((X, Y, Z), nc, cls, nph, _vdt(F, R))
    ed = _EntropyDecoder(words, bsym, 2 * head["E"] + 1)
    rec = _loop(g, T, M, qv, Wv, Wq, H, R, F, head["E"], dec=ed)
    if not ed.coder.is_empty():
        raise ICAINRError(source, "the predictive stream has trailing data (corrupt)")
    out[nc] = (rec.astype(np.int64) + lo).astype(dtype)
    return _checked(out, head, source)


def _checked(out, head, source):
    """The decoded array if its CRC-32 is the header's (catches corrupt word streams)."""
    crc = zlib.crc32(np.ascontiguousarray(out).view(np.uint8)) if out.size else 0
    if crc != head["crc"]:
        raise ICAINRError(source, "the predictive stream is corrupt (checksum mismatch)")
    return out
