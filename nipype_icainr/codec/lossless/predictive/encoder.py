"""The encoder: side information, predictor fit, closed loop, entropy coding, header."""

import zlib

import numpy as np

from .arith import _rdiv
from .entropy import _entropy_encode
from .geometry import _Geom, _phases, _vdt
from .header import pack_header
from .params import F16, GSHIFT, K_MAX, MAX_ERROR, MAX_RANGE, NBUCKET, NCLS, QV_MAX, QV_MIN
from .predictor import _fit, _loop, _ridge_gains
from .side import _side_encode, _zstd


def supports(codes):
    """Whether ``codes`` (4-D integers) are in the range this engine handles."""
    if codes.ndim != 4 or codes.dtype.kind not in "iu" or codes.size == 0:
        return False
    return int(codes.max()) - int(codes.min()) < MAX_RANGE


def encode(codes, error=0, k_max=K_MAX):
    """Code an integer array losslessly (``error`` 0) or with every value within ``error``.

    Parameters
    ----------
    codes : ndarray, (X, Y, Z, T), integer dtype, ``supports(codes)``
    error : int
        0: lossless; E >= 1: every decoded value within E (closed loop, step 2E + 1).
    k_max : int
        Most temporal components of the low-rank predictor (<= 8).

    Returns
    -------
    bytes
        The stream; ``decode(stream, codes.shape, codes.dtype, ...)`` gives
        ``codes`` back bit for bit (within ``error``).
    """
    if not supports(codes):
        raise ValueError("codes outside the predictive engine's range")
    E = int(error)
    if not 0 <= E <= MAX_ERROR:
        raise ValueError("error bound out of range")
    X, Y, Z, T = codes.shape
    mn3 = codes.min(3).astype(np.int64)
    mx3 = codes.max(3).astype(np.int64)
    lo, hi = int(mn3.min()), int(mx3.max())
    R = hi - lo
    const = mn3 == mx3
    nc = ~const
    F = F16 if R < (1 << 20) else 1
    gsh = GSHIFT if F == F16 else GSHIFT - 4
    vdt = _vdt(F, R)
    # from here on values are offsets from lo, in [0, R]
    data = (codes[nc].astype(np.int64) - lo).astype(vdt)
    N = data.shape[0]
    nph = _phases(N, T)
    codes_side = []
    sections = [_zstd(np.packbits(const.ravel()).tobytes())]
    c, b = _side_encode(mn3[const] - lo)
    codes_side.append(c)
    sections.append(b)
    # per-voxel log-noise index and mean (encoder-only float maths: both are sent)
    if N:
        mean = data.mean(1, dtype=np.float64)
        sv = np.abs(data - mean[:, None]).mean(1)
        qv = np.clip(np.rint(2 * np.log2(np.maximum(sv, 1e-4))), QV_MIN, QV_MAX).astype(np.int64)
    else:
        mean = np.zeros(0)
        qv = np.zeros(0, np.int64)
    qfull = np.zeros((X, Y, Z), np.int64)
    qfull[nc] = qv
    qprev = np.concatenate([np.zeros((1, Y, Z), np.int64), qfull[:-1]], 0)[nc]
    c, b = _side_encode(qv - qprev)
    codes_side.append(c)
    sections.append(b)
    gv = np.int64(1) << np.clip(qv // 2 + gsh, 0, 12)
    M = _rdiv(np.rint(mean * F).astype(np.int64), gv) * gv
    Mfull = np.zeros((X, Y, Z), np.int64)
    Mfull[const] = (mn3[const] - lo) * F
    Mfull[nc] = M
    Mprev = np.concatenate([np.zeros((1, Y, Z), np.int64), Mfull[:-1]], 0)[nc]
    c, b = _side_encode(M // gv - _rdiv(Mprev, gv))
    codes_side.append(c)
    sections.append(b)
    # predictor classes: quartiles of qv
    edges = np.unique(np.quantile(qv, [0.25, 0.5, 0.75], method="lower")).astype(int).tolist() \
        if N else []
    cls = np.searchsorted(np.array(edges, np.int64), qv, side="right")
    # temporal components of the backward-adaptive low-rank predictor
    K = int(min(k_max, K_MAX, T // 4)) if (N >= 2000 and N * T >= 200000) else 0
    if K:
        step = max(1, N // 20000)
        sub = data[::step].astype(np.float64) - mean[::step, None]
        _, _, Vt = np.linalg.svd(sub, full_matrices=False)
        K = min(K, Vt.shape[0])
        Wq = np.clip(np.rint(Vt[:K].T * np.sqrt(T) * 256), -32767, 32767).astype(np.int64)
    else:
        Wq = np.zeros((T, 0), np.int64)
    c, b = _side_encode(Wq.ravel())
    codes_side.append(c)
    sections.append(b)
    H = _ridge_gains(Wq)
    g = _Geom((X, Y, Z), nc, cls, nph, vdt)
    Wv = _fit(g, T, M, Wq, H, data, F) if N else \
        [np.zeros((NCLS, len(f)), np.int64) for f in g.feats]
    c, b = _side_encode(np.concatenate([w.ravel() for w in Wv]))
    codes_side.append(c)
    sections.append(b)
    k0 = k1 = 0
    if N:
        out, recon = _loop(g, T, M, qv, Wv, Wq, H, R, F, E, data=data)
        del data
        cnt = np.zeros(NBUCKET, np.int64)
        mad = np.zeros(NBUCKET)
        for o in out:
            if o is not None:
                cnt += np.bincount(o[2], minlength=NBUCKET)
                mad += np.bincount(o[2], weights=np.abs(o[0].astype(np.float64)),
                                   minlength=NBUCKET)
        used = np.nonzero(cnt)[0]
        k0, k1 = int(used.min()), int(used.max()) + 1
        bsym = np.ones(NBUCKET)
        bsym[k0:k1] = np.maximum(mad[k0:k1] / np.maximum(cnt[k0:k1], 1), 0.02)
        b32 = bsym[k0:k1].astype("<f4")
        bsym[k0:k1] = b32.astype(np.float64)    # the decoder sees float32 scales
        sections.append(b32.tobytes())
        sections.append(_entropy_encode(out, bsym, nph, 2 * E + 1).astype("<u4").tobytes())
    else:
        sections += [b"", b""]
    if E and N:   # the CRC is of what the decoder must give back: the reconstruction
        rec = codes.copy()
        rec[nc] = (recon + lo).astype(codes.dtype)
    else:
        rec = codes
    crc = zlib.crc32(np.ascontiguousarray(rec).view(np.uint8)) if rec.size else 0
    head = pack_header((X, Y, Z, T), crc, lo, R, E, F, nph, K, edges, k0, k1, codes_side,
                       [len(s) for s in sections])
    return head + b"".join(sections)
