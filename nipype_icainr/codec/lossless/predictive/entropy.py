"""Entropy coding of the residuals: constriction's rANS ``AnsCoder``.

The coder is a stack: the encoder pushes in reverse decoding order, with the
tables of each epoch (counts frozen at the rebuild volumes) recomputed by a
forward pass.
"""

import math

import numpy as np

from .tables import _chunks, _escape_ops, _model_mod, _Tables

# tables are rebuilt before these volumes: round(2**(i/2)), in exact integer arithmetic
_REBUILD = frozenset((1 << (i // 2)) if i % 2 == 0 else (math.isqrt(4 << i) + 1) // 2
                     for i in range(40))


def _entropy_encode(out, bsym, nph, s):
    """Per (t, phase) ``(q, fbin, bucket)`` -> rANS words (uint32)."""
    import constriction

    tabs = _Tables(bsym, s)
    # forward pass: the counts each table epoch starts from
    T = len(out) // nph
    snaps = {}
    for t in range(T):
        if t in _REBUILD or t == 0:
            snaps[t] = tabs.counts.copy()
        oo = [o for o in out[t * nph:(t + 1) * nph] if o is not None]
        if oo:
            tabs.update(np.concatenate([o[0] for o in oo]).astype(np.int64),
                        np.concatenate([tabs.gid(o[2], o[1]) for o in oo]))
    coder = constriction.stream.stack.AnsCoder()
    epoch = None
    for t in range(T - 1, -1, -1):
        e = max(k for k in snaps if k <= t)
        if e != epoch:
            if epoch is not None:
                del snaps[epoch]          # later epochs are done: free their counts
            epoch = e
            tabs.frozen = snaps[e]
            tabs.models = {}
        for ph in range(nph - 1, -1, -1):
            o = out[t * nph + ph]
            if o is None:
                continue
            q, fbin, bk = o
            gid = tabs.gid(bk, fbin)
            L = tabs.Lg[gid]
            esc = np.abs(q) > L
            if esc.any():
                for sy, m in reversed(_escape_ops(tabs, q[esc].astype(np.int64), L[esc],
                                                  tabs.ecentre[bk[esc].astype(np.int64)])):
                    coder.encode_reverse(sy, m)
            order = np.argsort(gid, kind="stable")
            gs = gid[order]
            ids = np.where(esc, 2 * L + 1, q + L)[order].astype(np.int32)
            cuts = np.flatnonzero(np.diff(gs)) + 1
            starts = np.concatenate([[0], cuts])
            ends = np.concatenate([cuts, [gs.size]])
            for a, b in zip(starts[::-1], ends[::-1]):
                coder.encode_reverse(ids[a:b], tabs.model(int(gs[a])))
    return coder.get_compressed()


class _EntropyDecoder:
    def __init__(self, words, bsym, s):
        import constriction

        self.coder = constriction.stream.stack.AnsCoder(words)
        self.tabs = _Tables(bsym, s)
        self.pending = []

    def __call__(self, bk, fbin):
        tabs = self.tabs
        gid = tabs.gid(bk, fbin)
        order = np.argsort(gid, kind="stable")
        gs = gid[order]
        cuts = np.flatnonzero(np.diff(gs)) + 1
        starts = np.concatenate([[0], cuts])
        ends = np.concatenate([cuts, [gs.size]])
        ids = np.empty(gs.size, np.int64)
        for a, b in zip(starts, ends):
            ids[a:b] = self.coder.decode(tabs.model(int(gs[a])), int(b - a))
        idx = np.empty_like(ids)
        idx[order] = ids
        L = tabs.Lg[gid]
        q = idx - L
        esc = idx == 2 * L + 1
        if esc.any():
            q[esc] = self._escapes(L[esc], tabs.ecentre[bk[esc].astype(np.int64)])
        self.pending.append((q, gid))
        return q

    def _escapes(self, L, centre):
        M = _model_mod()
        n = L.size
        nb = np.zeros(n, np.int64)
        order = np.argsort(centre, kind="stable")
        cs = centre[order]
        for c in np.unique(cs):
            sel = order[cs == c]
            nb[sel] = self.coder.decode(self.tabs.emodel(int(c)), sel.size)
        sign = self.coder.decode(M.Uniform(2), n).astype(np.int64)
        u = np.where(nb > 0, np.int64(1) << np.maximum(nb - 1, 0), 0)
        for k in np.unique(nb):
            if k < 2:
                continue
            sel = np.nonzero(nb == k)[0]
            for s, c in _chunks(int(k) - 1):
                u[sel] |= self.coder.decode(M.Uniform(1 << c), sel.size).astype(np.int64) << s
        mag = u + L + 1
        return np.where(sign == 1, -mag, mag)

    def begin(self, t):
        if t in _REBUILD:
            self.tabs.rebuild()

    def end(self, t):
        if self.pending:
            self.tabs.update(np.concatenate([x[0] for x in self.pending]),
                             np.concatenate([x[1] for x in self.pending]))
        self.pending = []
