"""The closed prediction loop (shared by encoder and decoder) and its weights.

Integer linear prediction from decoded values and a backward-adaptive
low-rank term (ridge gains by Sherman-Morrison); the encoder fits the integer
least-squares weights per (phase, class) with ``_fit``.
"""

import numpy as np

from .arith import _bucket, _prior_scale
from .geometry import _features, _past
from .params import FIT_EVERY, LAMBDA, LR_CLIP, N0, NBC, NCLS, NF, NHIST, WMAX, WQ

# ----------------------------------------------------------------------------------------
# low-rank term
# ----------------------------------------------------------------------------------------
def _ridge_gains(wq):
    """``H[t] = (LAMBDA I + sum_{s<t} w_s w_s^T)^-1 w_t`` by Sherman-Morrison.

    Pure-Python doubles in a fixed order: the same bits on every platform
    (a BLAS product could reorder the sums).
    """
    T, K = wq.shape
    H = np.zeros((T, K))
    if K == 0:
        return H
    P = [[(1.0 / LAMBDA if i == j else 0.0) for j in range(K)] for i in range(K)]
    for t in range(T):
        w = [float(v) for v in wq[t]]
        Pw = [sum(P[i][j] * w[j] for j in range(K)) for i in range(K)]
        H[t] = Pw
        den = 1.0 + sum(w[i] * Pw[i] for i in range(K))
        for i in range(K):
            for j in range(K):
                P[i][j] -= Pw[i] * Pw[j] / den
    return H


def _lowrank(h_t, bacc):
    """``floor(sum_k h_t[k] B[k])``, elementwise, k in a fixed order."""
    K = bacc.shape[0]
    if K == 0:
        return np.zeros(bacc.shape[1], np.int64)
    s = bacc[0] * h_t[0]
    for k in range(1, K):
        s += bacc[k] * h_t[k]
    return np.clip(np.floor(s), -LR_CLIP, LR_CLIP).astype(np.int64)


# ----------------------------------------------------------------------------------------
# the prediction loop (shared by encoder and decoder)
# ----------------------------------------------------------------------------------------
def _loop(g, T, M, qv, Wv, Wq, H, R, F, E, data=None, dec=None):
    """Closed prediction loop over all volumes.

    Encoder (``data`` (N, T)): returns ``(out, rec)``: per (t, phase) ``(q int32,
    fbin uint8, bucket uint8)`` or None for an empty phase, and the
    reconstruction (N, T) when E > 0 (None otherwise). Decoder (``dec`` with
    ``begin(t)``, ``__call__(bucket, fbin) -> q``, ``end(t)``): returns the
    values (N, T). Values are clipped to [0, R] on both sides: a no-op for a
    valid stream, a bound on every intermediate for a corrupt one.

    With ``E > 0`` the residual is quantised with step ``s = 2E + 1`` and every
    prediction and context uses the reconstruction (closed loop): each value
    within E. Measured against coding pre-quantised quotients losslessly, the
    closed loop is 0.5-4 % smaller on studyforrest and 23-71 % on qap at E = 1, 2
    (low-noise voxels: a quotient flips between levels, a residual stays 0).
    """
    s = 2 * E + 1
    den = F << WQ
    dsh = den.bit_length() - 1            # den is a power of two
    half = den >> 1
    nfsh = NF.bit_length() - 1
    K = Wq.shape[1]
    nph = g.nph
    hist = [g.newvol() for _ in range(NHIST)]
    Pq = _prior_scale(qv) * N0
    Sp = [np.zeros(g.rows[ph].size, np.int64) for ph in range(nph)]   # 16 |residual| sums
    Pp = [Pq[g.rows[ph]] for ph in range(nph)]
    bacc = np.zeros((K, g.N))
    # the reconstruction: the decoder's output; the encoder's too when E > 0 (checksum)
    rec = None if (dec is None and s == 1) else np.zeros((g.N, T), g.vdt)
    datp = None if data is None else [np.ascontiguousarray(data[g.rows[ph]].T)
                                      for ph in range(nph)]
    Wcls = [[np.ascontiguousarray(Wv[ph][g.cls[ph], i]) for i in range(Wv[ph].shape[1])]
            for ph in range(nph)]
    Mrow = [M[g.rows[ph]] for ph in range(nph)]
    MrowQ = [m << WQ for m in Mrow]
    out = []
    zvol = g.newvol()
    for t in range(T):
        if dec is not None:
            dec.begin(t)
        cur = g.newvol()
        lr_t = _lowrank(H[t], bacc)
        if K:
            lrvol = g.newvol()
            lrvol[g.pid] = lr_t
        else:
            lrvol = zvol
        past = _past(g, hist)
        for ph in range(nph):
            r = g.rows[ph]
            if r.size == 0:
                out.append(None)
                continue
            bk = _bucket((Sp[ph] + Pp[ph]) // (t + N0))
            feats = _features(g, ph, past, cur, lrvol, lr_t)
            W = Wcls[ph]
            predq = W[0] * feats[0]
            for i in range(1, len(feats)):
                predq += W[i] * feats[i]
            num = MrowQ[ph] + predq
            base = (num + half) >> dsh
            rem = num - (base << dsh)                     # in [-den/2, den/2)
            fbin = (rem + half) >> (dsh - nfsh)           # 0..NF-1
            bd = np.maximum(base, 0)
            if s > 1:
                bd //= s
            fbin += NF * np.minimum(bd, NBC - 1)
            if dec is None:
                e = datp[ph][t] - base
                q = e if s == 1 else np.where(e >= 0, (e + E) // s, -((E - e) // s))
                out.append((q.astype(np.int32), fbin.astype(np.uint8), bk.astype(np.uint8)))
            else:
                q = dec(bk, fbin)
            xr = np.clip(base + q * s if s > 1 else base + q, 0, R)
            if rec is not None:
                rec[r, t] = xr
            Sp[ph] += np.abs(xr - base) << 4
            cur[g.pids[ph]] = xr * F - Mrow[ph]
        if K:
            dt = cur[g.pid].astype(np.float64)
            for k in range(K):
                bacc[k] += dt * float(Wq[t, k])
        hist = [cur] + hist[:-1]
        if dec is not None:
            dec.end(t)
    return (out, rec) if dec is None else rec


def _fit(g, T, M, Wq, H, data, F):
    """Least-squares predictor weights per (phase, class), on the original data (encoder)."""
    nf = [len(x) for x in g.feats]
    AtA = [np.zeros((NCLS, n, n)) for n in nf]
    Aty = [np.zeros((NCLS, n)) for n in nf]
    K = Wq.shape[1]
    hist = [g.newvol() for _ in range(NHIST)]
    bacc = np.zeros((K, g.N))
    for t in range(T):
        dcol = data[:, t].astype(np.int64) * F - M
        cur = g.newvol()
        cur[g.pid] = dcol
        lr_t = _lowrank(H[t], bacc)
        lrvol = g.newvol()
        lrvol[g.pid] = lr_t
        past = _past(g, hist)
        if t % FIT_EVERY == FIT_EVERY - 1 or T < 40:
            for ph in range(g.nph):
                r = g.rows[ph]
                if r.size == 0:
                    continue
                A = np.stack(_features(g, ph, past, cur, lrvol, lr_t), 1).astype(np.float64)
                y = dcol[r].astype(np.float64)
                cs = g.cslice[ph]
                for ci in range(NCLS):
                    a, b = cs[ci], cs[ci + 1]
                    if b > a:
                        AtA[ph][ci] += A[a:b].T @ A[a:b]
                        Aty[ph][ci] += A[a:b].T @ y[a:b]
        if K:
            for k in range(K):
                bacc[k] += dcol.astype(np.float64) * float(Wq[t, k])
        hist = [cur] + hist[:-1]
    Wv = []
    for ph in range(g.nph):
        n = nf[ph]
        w = np.zeros((NCLS, n))
        for ci in range(NCLS):
            A = AtA[ph][ci]
            tr = np.trace(A)
            if tr > 0 and np.isfinite(tr):
                try:
                    w[ci] = np.linalg.solve(A + (1e-6 * tr / n + 1e-9) * np.eye(n), Aty[ph][ci])
                except np.linalg.LinAlgError:
                    pass
        if K == 0:
            w[:, [j for j, k in enumerate(g.feats[ph]) if k.startswith("lr")]] = 0
        w = np.nan_to_num(w)
        Wv.append(np.clip(np.rint(w * (1 << WQ)), -WMAX, WMAX).astype(np.int64))
    return Wv
