"""Adaptive probability tables (integer weights, Laplace priors) and the escape model.

Probability tables are normalised from exact integer weights (one division
per entry); the Laplace priors use ``det_exp``; escapes are coded with a
fixed integer bit-length table and uniform raw-bit chunks.
"""

import numpy as np

from .arith import det_exp
from .params import ALPHA, CB, FRAC_MAX_B, LCAP, NBITS, NF, NG, PRIOR_BITS


def _model_mod():
    import constriction

    return constriction.stream.model


def _categorical(weights):
    """constriction Categorical from non-negative integer weights.

    The weights are summed exactly (int64, < 2**53) and divided once each;
    constriction's own quantisation of the floats is basic IEEE arithmetic.
    """
    w = np.asarray(weights, np.int64)
    total = int(w.sum())
    while total >= 1 << 52:        # keep every weight and the sum exact in float64
        w = (w >> 1) + 1
        total = int(w.sum())
    return _model_mod().Categorical(w.astype(np.float64) / float(total), perfect=False)


class _Tables:
    """Adaptive categorical tables, one per group = (bucket, fraction bin, distance class).

    Alphabet of a group: q in [-L, L] -> q + L, and the escape 2L + 1. Counts
    are kept on coarse bins of width w = max(1, floor(b / CB)) and spread
    uniformly over the fine bins (integer division); table weights =
    spread counts * 2**PRIOR_BITS + ALPHA * integer Laplace prior.
    """

    def __init__(self, bsym, s):
        self.s = s
        self.b = np.maximum(bsym, 0.02)
        self.L = np.minimum(np.ceil(12.0 * self.b + 3.0), LCAP).astype(np.int64)
        self.w = np.maximum(1.0, np.floor(self.b / CB)).astype(np.int64)
        # buckets with a large scale do not split by fraction (fewer, fuller tables)
        self.fmask = np.where(self.b < FRAC_MAX_B, NG - 1, NG - NF).astype(np.int64)
        self.Lg = np.repeat(self.L, NG)
        self.wg = np.repeat(self.w, NG)
        self.nbin = (2 * self.Lg + 1 + self.wg - 1) // self.wg + 1        # + escape bin
        self.off = np.concatenate([[0], np.cumsum(self.nbin)])
        self.counts = np.zeros(int(self.off[-1]), np.int64)
        self.frozen = self.counts.copy()   # the counts of the epoch's start
        self.priors = {}
        self.models = {}
        # escape bit lengths: a fixed integer table centred on the bucket's scale
        self.ecentre = np.array([int(b).bit_length() for b in self.b], np.int64)
        self.emodels = {}

    def gid(self, bk, fbin):
        bk = bk.astype(np.int64)
        return bk * NG + (fbin.astype(np.int64) & self.fmask[bk])

    def prior(self, gid):
        p = self.priors.get(gid)
        if p is None:
            k, f = divmod(gid, NG)
            f = f % NF
            L = int(self.L[k])
            b = float(self.b[k])
            c = ((f + 0.5) / NF - 0.5) / self.s
            x = np.arange(-L, L + 1, dtype=np.float64)
            hi, lo = x + 0.5 - c, x - 0.5 - c

            def cdf(z):
                return np.where(z < 0, 0.5 * det_exp(np.minimum(z, 0.0) / b),
                                1.0 - 0.5 * det_exp(-np.maximum(z, 0.0) / b))

            scaled = np.floor((cdf(hi) - cdf(lo)) * float(1 << PRIOR_BITS)).astype(np.int64)
            tail = max((1 << PRIOR_BITS) - int(scaled.sum()), 0) + 2
            p = self.priors[gid] = np.append(scaled + 1, tail)
        return p

    def model(self, gid):
        m = self.models.get(gid)
        if m is None:
            c = self.frozen[self.off[gid]:self.off[gid + 1]]
            # keep spread counts below 2**52 (huge runs): a deterministic integer rescale
            c = c >> max(0, int(c.max()).bit_length() - 28)
            L, w = int(self.Lg[gid]), int(self.wg[gid])
            if w == 1:
                spread = c << PRIOR_BITS
            else:
                binid = np.arange(2 * L + 1) // w
                size = np.bincount(binid)
                spread = np.append(((c[:-1] << PRIOR_BITS) // size)[binid], c[-1] << PRIOR_BITS)
            m = self.models[gid] = _categorical(spread + ALPHA * self.prior(gid))
        return m

    def emodel(self, centre):
        m = self.emodels.get(centre)
        if m is None:
            d = np.abs(np.arange(NBITS) - centre)
            m = self.emodels[centre] = _categorical(np.int64(1) << np.maximum(20 - 2 * d, 0))
        return m

    def update(self, q, gid):
        L = self.Lg[gid]
        cb = np.where(np.abs(q) <= L, (q + L) // self.wg[gid], self.nbin[gid] - 1)
        np.add.at(self.counts, self.off[gid] + cb, 1) if q.size < 64 else \
            self._bulk(self.off[gid] + cb)

    def _bulk(self, idx):
        i0 = int(idx.min())
        bc = np.bincount(idx - i0)
        self.counts[i0:i0 + bc.size] += bc

    def rebuild(self):
        """Tables are rebuilt from the counts at a rebuild volume and frozen until the next."""
        self.frozen = self.counts.copy()
        self.models = {}


def _escape_parts(q, L):
    """Escaped residual -> (sign bit, bit length nb of u = |q| - L - 1, u)."""
    u = np.abs(q).astype(np.int64) - L - 1
    nb = np.zeros(u.size, np.int64)
    v = u.copy()
    while v.any():            # bit length, exact integer arithmetic
        nz = v > 0
        nb += nz
        v >>= 1
    return (q < 0).astype(np.int32), nb, u


def _chunks(nbits):
    """Raw-bit chunks (shift, width) of the nbits low bits: widths of at most 16."""
    out, s = [], 0
    while s < nbits:
        c = min(16, nbits - s)
        out.append((s, c))
        s += c
    return out


def _escape_ops(tabs, q, L, centre):
    """The escape coding calls of one (t, phase), in decoding order."""
    M = _model_mod()
    sign, nb, u = _escape_parts(q, L)
    ops = []
    order = np.argsort(centre, kind="stable")
    cs = centre[order]
    for c in np.unique(cs):
        sel = order[cs == c]
        ops.append((nb[sel].astype(np.int32), tabs.emodel(int(c))))
    ops.append((sign, M.Uniform(2)))
    for n in np.unique(nb):
        if n < 2:
            continue
        sel = np.nonzero(nb == n)[0]
        for s, c in _chunks(int(n) - 1):    # the top bit of u is implied by nb
            ops.append((((u[sel] >> s) & ((1 << c) - 1)).astype(np.int32), M.Uniform(1 << c)))
    return ops
