"""Voxel geometry: phases, padded-volume indexing and the predictor's features.

The coded voxels of each volume are split into 2 or 4 interleaved phases
(checkerboard ``(x+y+z) % 2``, split again by ``x % 2``); a phase's features
may use the already-decoded phases of the same volume.
"""

import numpy as np

from .params import NCLS

# features per phase (names: see ``_features``)
_PF2 = (
    ("t1", "t2", "tl", "sxy1", "sz1", "lr"),                              # (x+y+z) even
    ("t1", "t2", "tl", "sxy0", "sz0", "sxy1", "sz1", "lr", "lrnb0"),      # odd: 6 decoded faces
)
_PF4 = (
    ("t1", "t2", "tl", "sxy1", "sz1", "lr"),                                       # even, x even
    ("t1", "t2", "tl", "sxy1", "sz1", "lr", "dxy0", "dxz0", "lrd"),                # 8 diagonals
    ("t1", "t2", "tl", "sxy0", "sz0", "sxy1", "sz1", "lr", "lrnb0"),               # 6 faces
    ("t1", "t2", "tl", "sxy0", "sz0", "sxy1", "sz1", "lr", "lrnb0", "dxy0", "dxz0", "lrd"),
)


class _Geom:
    """Padded volume indexing, phases and per-phase neighbour indices."""

    def __init__(self, shape, nc, cls, nph, vdt):
        X, Y, Z = shape
        self.vdt = vdt
        self.nph = nph
        self.feats = _PF2 if nph == 2 else _PF4
        Yp, Zp = Y + 2, Z + 2
        self.psize = (X + 2) * Yp * Zp
        sx, sy = Yp * Zp, Zp
        self.sx, self.sy = sx, sy
        oxy = (sx, -sx, sy, -sy)
        odxy = (sx + sy, sx - sy, -sx + sy, -sx - sy)
        odxz = (sx + 1, sx - 1, -sx + 1, -sx - 1)
        xx, yy, zz = np.meshgrid(np.arange(X), np.arange(Y), np.arange(Z), indexing="ij")
        pflat = ((xx + 1) * Yp + (yy + 1)) * Zp + (zz + 1)
        par = (xx + yy + zz) % 2
        if nph == 4:
            par = 2 * par + xx % 2
        self.pid = pflat[nc].astype(np.int64)
        self.N = self.pid.size
        parn = par[nc]
        # the voxels of a phase ordered by class: each class is one contiguous slice
        self.rows, self.pids, self.cls = [], [], []
        self.nxy, self.nz, self.ndxy, self.ndxz = [], [], [], []
        for ph in range(nph):
            r = np.nonzero(parn == ph)[0]
            r = r[np.argsort(cls[r], kind="stable")]
            p = self.pid[r]
            self.rows.append(r)
            self.pids.append(p)
            self.cls.append(cls[r])
            self.nxy.append([p + o for o in oxy])
            self.nz.append([p + 1, p - 1])
            self.ndxy.append([p + o for o in odxy] if "dxy0" in self.feats[ph] else None)
            self.ndxz.append([p + o for o in odxz] if "dxz0" in self.feats[ph] else None)
        self.cslice = [np.searchsorted(c, np.arange(NCLS + 1)) for c in self.cls]

    def newvol(self):
        return np.zeros(self.psize, self.vdt)


def _past(g, hist):
    """Whole-volume composites of the past (once per t; gathered per phase)."""
    h0 = hist[0]
    sx, sy = g.sx, g.sy
    n = h0.size
    lo, hi = sx, n - sx           # the padding planes stay 0
    sxy = np.zeros(n, h0.dtype)
    sxy[lo:hi] = h0[lo + sx:hi + sx] + h0[lo - sx:hi - sx] + h0[lo + sy:hi + sy] \
        + h0[lo - sy:hi - sy]
    sz = np.zeros(n, h0.dtype)
    sz[1:-1] = h0[2:] + h0[:-2]
    tl = (hist[2] + hist[3] + hist[4] + hist[5]) >> 2
    return {"t1": h0, "t2": hist[1], "tl": tl, "sxy1": sxy, "sz1": sz}


def _sum4(vol, idx):
    tk = np.take
    return tk(vol, idx[0]) + tk(vol, idx[1]) + tk(vol, idx[2]) + tk(vol, idx[3])


def _features(g, ph, past, cur, lrvol, lr_t):
    p = g.pids[ph]
    out = []
    for k in g.feats[ph]:
        if k in past:
            v = np.take(past[k], p)
        elif k == "lr":
            v = np.take(lr_t, g.rows[ph])
        elif k == "sxy0":
            v = _sum4(cur, g.nxy[ph])
        elif k == "sz0":
            v = np.take(cur, g.nz[ph][0]) + np.take(cur, g.nz[ph][1])
        elif k == "lrnb0":
            v = _sum4(lrvol, g.nxy[ph]) + np.take(lrvol, g.nz[ph][0]) \
                + np.take(lrvol, g.nz[ph][1])
        elif k == "dxy0":
            v = _sum4(cur, g.ndxy[ph])
        elif k == "dxz0":
            v = _sum4(cur, g.ndxz[ph])
        else:  # "lrd"
            v = _sum4(lrvol, g.ndxy[ph]) + _sum4(lrvol, g.ndxz[ph])
        out.append(v)
    return out


def _phases(n_coded, T):
    return 4 if n_coded * T >= 1_000_000 else 2


def _vdt(F, R):
    """Volume buffer dtype: int32 when neighbour sums cannot overflow it (faster gathers)."""
    return np.int32 if F * R < (1 << 23) else np.int64
