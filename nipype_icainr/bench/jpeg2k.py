"""JPEG 2000, slice by slice: every (x, y) image of every z and t as 16-bit grey.

Each image ``data[:, :, z, t]`` (rows x, columns y) is mapped to uint16 with one
offset and scale for the whole run, ``u = round((v - lo) / (hi - lo) * 65535)``
(``lo``/``hi`` the array's minimum and maximum after the background fill;
both stored as float64 in the header), and coded by OpenJPEG
(``imagecodecs.jpeg2k_encode``, raw J2K codestream, irreversible 9/7 wavelet)
in fixed-quality mode: the knob ``level`` is the PSNR (dB, against the 16-bit
peak) each image is coded to, bisected. One offset/scale for all images makes
equal PSNR per image equal squared error per image in physical units.

The Z*T codestreams are concatenated with their lengths and the container is
zstd-compressed (level 19), which removes the repeated main headers (SIZ, COD,
QCD: the same bytes in every image) at no cost to the images themselves.

Variants: background fill (``payload.fill_background``); ``const`` only by
default (see ``FILLS``).
"""

import numpy as np

from .methods import Method, check_array
from .payload import fill_background, pack, unpack, unzstd, zstd

#: background fills searched by default: ``const`` was the smallest at equal PSNR on the
#: studyforrest run (level 60: 8.7 MB against 11.5 MB for ``none`` and 11.0 MB for
#: ``tmean``) and one encode of the run takes ~15 s; context ``fills`` widens it
FILLS = ("const",)
PEAK = 65535.0


class JPEG2K(Method):
    name = "jpeg2k"
    knob_name = "level"
    search_iters = 9
    knob_doc = ("OpenJPEG fixed-quality PSNR layer per slice image (dB vs the 16-bit peak), "
                "bisected; 16-bit grey, one global offset/scale")

    def variants(self):
        return [{"fill": f} for f in self.context.get("fills", FILLS)]

    def knob_range(self, data, mask, variant):
        return 10.0, 110.0, True, False

    def encode(self, data, mask, knob):
        import imagecodecs

        data = check_array(data)
        arr = fill_background(data, mask, knob.get("fill", "none")).astype(np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        scale = (hi - lo) / PEAK if hi > lo else 1.0
        level = float(knob["level"])
        nx, ny, nz, nt = arr.shape
        streams = []
        for z in range(nz):
            for t in range(nt):
                img = np.rint((arr[:, :, z, t] - lo) / scale)
                img = np.ascontiguousarray(np.clip(img, 0, PEAK).astype(np.uint16))
                streams.append(bytes(imagecodecs.jpeg2k_encode(img, level=level,
                                                               codecformat="J2K")))
        lengths = np.array([len(s) for s in streams], dtype="<u4").tobytes()
        header = {"m": self.name, "shape": [nx, ny, nz, nt], "lo": lo, "scale": scale}
        return pack(header, zstd(lengths + b"".join(streams)))

    def decode(self, payload):
        import imagecodecs

        header, (blob,) = unpack(payload)
        nx, ny, nz, nt = header["shape"]
        raw = unzstd(blob)
        lengths = np.frombuffer(raw[:4 * nz * nt], dtype="<u4")
        out = np.empty((nx, ny, nz, nt), dtype=np.float64)
        pos, i = 4 * nz * nt, 0
        for z in range(nz):
            for t in range(nt):
                n = int(lengths[i])
                img = imagecodecs.jpeg2k_decode(raw[pos:pos + n])
                out[:, :, z, t] = img.astype(np.float64) * header["scale"] + header["lo"]
                pos, i = pos + n, i + 1
        return out
