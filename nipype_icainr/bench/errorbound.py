"""Error-bounded scientific float compressors: SZ3 and ZFP on the whole 4D array.

Both code the run as one float32 array (X, Y, Z, T) in physical units minus
the midpoint of its range (a float64 in the header: ZFP's blocks then code
small means), C order (time fastest); axes of length 1 are dropped first (a
4D ZFP block of a 1-voxel axis would code it four times). Float32 holds the stored grid of
scanner data exactly enough (relative precision 6e-8) and halves the work.

* ``sz3``: ``imagecodecs.sz3_encode(mode='abs')``; knob: the absolute error
  bound ``eb`` in physical units (log bisection).
* ``zfp``: ``zfpy.compress_numpy(tolerance=...)``, fixed-accuracy mode; knob:
  the tolerance ``tol`` in physical units (log bisection). ZFP keeps the bit
  planes above ``floor(log2(tolerance))``, so a plain tolerance changes the
  size only at powers of two (on the studyforrest run: 851 kB, then 447 kB,
  nothing between); the array is therefore coded as ``data / tol`` with
  tolerance 1, which bounds the error by ``tol`` alike while each block's own
  exponent makes the size a fine-grained function of ``tol``.

Variants (each searched, the best PSNR kept): the background outside the brain
mask coded as it is (``fill=none``) or set to the in-mask minimum (``const``);
``tmean`` (each voxel's temporal mean) is available through the context's
``fills``. See ``payload.fill_background``.
The mask is not stored: the background fill is part of the coded array, and
the metrics only look inside the mask.
"""

import numpy as np

from .methods import Method, check_array
from .payload import fill_background, pack, unpack

#: background fills searched (each encode takes 1-2 s on the studyforrest run); ``tmean``
#: lost to ``const`` at every error bound tried there, so it is left out by default
FILLS = ("none", "const")


class _ErrorBound(Method):
    knob_name = "eb"

    def variants(self):
        return [{"fill": f} for f in self.context.get("fills", FILLS)]

    def knob_range(self, data, mask, variant):
        vals = np.asarray(data)[np.asarray(mask, bool)]
        rng = float(vals.max() - vals.min()) or 1.0
        # ZFP's tolerance bounds transform coefficients, which grow with the block's
        # dimension: its coarse end lies far above the data's range
        return rng * 1e-6, rng * 1e3, False, True

    def encode(self, data, mask, knob):
        data = check_array(data)
        shape = [int(s) for s in data.shape]
        arr = fill_background(data, mask, knob.get("fill", "none"))
        offset = float(0.5 * (float(arr.min()) + float(arr.max())))
        arr -= np.float32(offset)
        squeezed = np.ascontiguousarray(arr.reshape([s for s in shape if s > 1] or [1]))
        value = float(knob[self.knob_name])
        return pack({"m": self.name, "shape": shape, "sq": list(squeezed.shape), "off": offset,
                     "k": value}, self._code(squeezed, value))

    def decode(self, payload):
        header, (blob,) = unpack(payload)
        out = self._uncode(blob, tuple(header["sq"]), header["k"])
        out = np.asarray(out, dtype=np.float64) + np.float64(np.float32(header["off"]))
        return out.reshape(header["shape"])


class SZ3(_ErrorBound):
    name = "sz3"
    knob_doc = "absolute error bound eb (physical units), log bisection; float32 4D"

    def _code(self, arr, eb):
        import imagecodecs

        return bytes(imagecodecs.sz3_encode(arr, mode="abs", abs=eb))

    def _uncode(self, blob, shape, eb):
        import imagecodecs

        return imagecodecs.sz3_decode(blob, shape=shape, dtype=np.float32)


class ZFP(_ErrorBound):
    name = "zfp"
    knob_name = "tol"
    knob_doc = "fixed-accuracy tolerance tol (physical units), log bisection; float32 4D"

    def _code(self, arr, tol):
        import zfpy

        return bytes(zfpy.compress_numpy(arr * np.float32(1.0 / tol), tolerance=1.0))

    def _uncode(self, blob, shape, tol):
        import zfpy

        out = zfpy.decompress_numpy(blob)
        if tuple(out.shape) != tuple(shape):
            raise ValueError(f"zfp decoded shape {out.shape}, expected {shape}")
        return out.astype(np.float64) / np.float64(np.float32(1.0 / tol))
