"""Truncated SVD of the masked voxel x time matrix, quantised and zstd-compressed.

Encoding, with ``X`` the (N voxels, T) matrix of the brain-mask voxels:

1. the mean image ``m`` (N) is stored as float16 after division by
   ``max|m|`` (a float64 in the header; float16 alone overflows above 65504),
   and ``M = X - m_decoded`` is what the factors code;
2. ``M = U S V^T`` (numpy SVD); the spatial factors ``A = U_k S_k`` (N, k) are
   quantised per column to ``b`` bits, uniformly between the column's minimum
   and maximum (both stored as float32);
3. the temporal factors are refitted by least squares to the *quantised*
   spatial factors (``V = argmin |M - A_q V^T|``), which recovers part of the
   quantisation loss at no cost in bytes, and stored as float16 (T, k);
4. sections, each zstd-compressed at level 19: the brain mask (packed bits);
   the mean and ``V`` with their float16 bytes grouped by position (the
   exponent bytes then compress: -15% on the studyforrest mean); the column
   ranges (raw float32); and the codes, one byte each, one zstd frame per
   column (each column gets its own entropy tables: 9% smaller than one frame
   over all columns on the studyforrest run, within 2% of the order-0 entropy).

Voxels outside the mask decode to 0 (no metric looks there).

Knobs: rank ``k`` and bits ``b`` in {4, 5, 6, 7, 8}. For a target ratio, for
each ``b`` the largest ``k`` that fits is found (a binary search, since the size
grows with ``k``), and the ``b`` with the best PSNR is kept.
"""

import numpy as np

from ..codec.lossless.coder import shuffle, unshuffle
from .methods import Method, check_array
from .payload import pack, unpack, unzstd, zstd
from .search import Choice, OutOfReach, budget_bytes, largest_integer

BITS = (4, 5, 6, 7, 8)


class SVD(Method):
    name = "svd"
    knob_doc = ("rank k (binary search) x bits b in {4..8} per spatial coefficient (best "
                "PSNR); temporal factors and mean float16; zstd -19")

    def __init__(self, context=None):
        super().__init__(context)
        self._cache = None

    def _factors(self, data, mask):
        """Mean, mean-removed SVD of the masked matrix (cached for the search)."""
        key = (id(data), data.shape, int(mask.sum()), hash(np.packbits(mask).tobytes()))
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        x = np.asarray(data, dtype=np.float64)[mask]  # (N, T)
        mean = x.mean(axis=1)
        mscale = float(np.abs(mean).max()) or 1.0
        mean16 = (mean / mscale).astype(np.float16)
        resid = x - mean16.astype(np.float64)[:, None] * mscale
        del x
        u, s, vt = np.linalg.svd(resid, full_matrices=False)
        out = {"mean16": mean16, "mscale": mscale, "us": u * s, "resid": resid,
               "mask_z": zstd(np.packbits(mask.ravel()).tobytes()),
               "mean_z": zstd(shuffle(mean16))}
        self._cache = (key, out)
        return out

    def max_rank(self, data, mask):
        return int(min(int(mask.sum()), data.shape[3]))

    def encode(self, data, mask, knob):
        data = check_array(data)
        mask = np.asarray(mask, bool)
        f = self._factors(data, mask)
        k, bits = int(knob["rank"]), int(knob["bits"])
        if not 1 <= k <= f["us"].shape[1]:
            raise ValueError(f"rank {k} out of range 1..{f['us'].shape[1]}")
        if bits not in BITS:
            raise ValueError(f"bits must be one of {BITS}")
        a = f["us"][:, :k]
        lo, hi = a.min(axis=0), a.max(axis=0)
        top = (1 << bits) - 1
        step = np.where(hi > lo, (hi - lo) / top, 1.0)
        lo32, step32 = lo.astype(np.float32), step.astype(np.float32)
        codes = np.clip(np.rint((a - lo32) / step32), 0, top).astype(np.uint8)
        aq = codes * step32.astype(np.float64) + lo32.astype(np.float64)
        # rcond: a direction the quantised factors barely span (a demeaned or z-scored run
        # has rank T - 1, and its last factor is noise of 1e-8) would get a temporal factor
        # beyond float16's range; it is dropped, as its singular value says
        v, *_ = np.linalg.lstsq(aq, f["resid"], rcond=1e-6)  # (k, T)
        v16 = np.ascontiguousarray(v.T.astype(np.float16))  # (T, k)
        header = {"m": self.name, "shape": [int(s) for s in data.shape], "k": k, "b": bits,
                  "ms": f["mscale"], "n": int(mask.sum())}
        frames = f.setdefault("frames", {})  # column j's frame depends on (j, bits) only
        for j in range(k):
            if (j, bits) not in frames:
                frames[(j, bits)] = zstd(codes[:, j].tobytes())
        # One section holds every column's frame (the container allows few sections;
        # high ranks on long runs need hundreds), their lengths in the header.
        columns = [frames[(j, bits)] for j in range(k)]
        header["cl"] = [len(c) for c in columns]
        return pack(header, f["mask_z"], f["mean_z"], lo32.tobytes() + step32.tobytes(),
                    zstd(shuffle(v16)), b"".join(columns))

    def decode(self, payload):
        header, sections = unpack(payload)
        shape, k, n = header["shape"], header["k"], header["n"]
        t = shape[3]
        nvox = int(np.prod(shape[:3]))
        mask = np.unpackbits(np.frombuffer(unzstd(sections[0]), np.uint8))[:nvox]
        mask = mask.astype(bool).reshape(shape[:3])
        mean = unshuffle(unzstd(sections[1]), np.float16, n).astype(np.float64) * header["ms"]
        ranges = np.frombuffer(sections[2], np.float32).astype(np.float64)
        lo, step = ranges[:k], ranges[k:]
        v = unshuffle(unzstd(sections[3]), np.float16, t * k).astype(np.float64).reshape(t, k)
        ends = np.cumsum([0] + [int(c) for c in header["cl"]])
        if len(ends) != k + 1 or ends[-1] != len(sections[4]):
            raise ValueError("svd payload column lengths do not match its header")
        codes = np.stack([np.frombuffer(unzstd(sections[4][a:b]), np.uint8)
                          for a, b in zip(ends[:-1], ends[1:])], axis=1)
        if codes.shape != (n, k) or mean.shape != (n,) or int(mask.sum()) != n:
            raise ValueError("svd payload sizes do not match its header")
        out = np.zeros(shape, dtype=np.float64)
        out[mask] = mean[:, None] + (codes * step + lo) @ v.T
        return out

    def label(self, knob):
        return f"rank={knob['rank']}, bits={knob['bits']}"

    def search(self, data, mask, target_ratio, raw_bytes, quality):
        budget = budget_bytes(raw_bytes, target_ratio)
        kmax = self.max_rank(data, mask)
        found, evaluations, reasons = [], [], []
        for bits in self.context.get("svd_bits", BITS):
            evals = []
            try:
                k, blob = largest_integer(
                    lambda r: self.encode(data, mask, {"rank": r, "bits": bits}), 1, kmax,
                    budget, evaluations=evals)
            except OutOfReach as exc:
                reasons.append(f"bits={bits}: {exc}")
                continue
            finally:
                evaluations += [dict(e, bits=bits) for e in evals]
            found.append(Choice(knob={"rank": int(k), "bits": int(bits)}, n_bytes=len(blob),
                                quality=quality(self.decode(blob)), payload=blob))
        if not found:
            raise OutOfReach("; ".join(reasons))
        best = max(found, key=lambda c: c.quality)
        best.evaluations = evaluations
        best.note = "per bits: " + "; ".join(f"{c.knob['bits']}b k={c.knob['rank']} "
                                             f"{c.quality:.2f} dB" for c in found)
        return best
