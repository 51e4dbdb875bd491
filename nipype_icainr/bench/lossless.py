"""Lossless peers: gzip (what ``.nii.gz`` does) and zstd, on the stored array.

Both code the array in its *stored* dtype (int16 for scanner data), in the
NIfTI's on-disk order (Fortran, x fastest), recovered exactly from the
physical values through ``scl_slope``/``scl_inter``; the decoder applies the
scaling the way nibabel reads it, so the round trip is bit-exact. There is no
knob: each gives one row at whatever ratio it reaches.

* ``gzip``: ``gzip.compress(level 6)``, nibabel's and this package's ``.nii.gz``
  level, mtime 0.
* ``zstd``: ``imagecodecs.zstd_encode`` at level 19.
"""

import gzip

import numpy as np

from ..io import from_stored_values, to_stored_values
from .methods import Method, check_array
from .payload import pack, unpack


class _Lossless(Method):
    lossless = True
    knob_doc = "none (lossless)"

    def _compress(self, raw):
        raise NotImplementedError

    def _decompress(self, blob):
        raise NotImplementedError

    def encode(self, data, mask, knob):
        data = check_array(data)
        dtype = np.dtype(self.context.get("dtype", "<f8"))
        slope, inter = self.context.get("slope"), self.context.get("inter")
        stored = to_stored_values(data, dtype, slope, inter)
        if not np.array_equal(from_stored_values(stored, slope, inter), data):
            raise ValueError(f"{self.name}: the array is not exactly representable in its "
                             f"stored dtype {dtype} with slope {slope}, inter {inter}")
        raw = np.asfortranarray(stored).tobytes(order="F")
        header = {"m": self.name, "shape": list(data.shape), "dtype": dtype.str,
                  "slope": slope, "inter": inter}
        return pack(header, self._compress(raw))

    def decode(self, payload):
        header, (blob,) = unpack(payload)
        stored = np.frombuffer(self._decompress(blob), dtype=np.dtype(header["dtype"]))
        stored = stored.reshape(header["shape"], order="F")
        return from_stored_values(stored, header["slope"], header["inter"])


class Gzip(_Lossless):
    name = "gzip"

    def _compress(self, raw):
        return gzip.compress(raw, compresslevel=6, mtime=0)

    def _decompress(self, blob):
        return gzip.decompress(blob)


class Zstd(_Lossless):
    name = "zstd"

    def _compress(self, raw):
        import imagecodecs

        return bytes(imagecodecs.zstd_encode(raw, level=19))

    def _decompress(self, blob):
        import imagecodecs

        return bytes(imagecodecs.zstd_decode(blob))
