"""H.264 and H.265 through PyAV (its wheel bundles libx264 and libx265).

Each z slice is one clip of T frames, frame ``t`` being the image
``data[:, :, z, t]`` (rows x, columns y), padded by edge replication to even
sizes of at least 16 (libx265's smallest picture), and for libx265 to a width of 64
where it would be 33 to 48 (see ``picture_size``). Intensities are mapped linearly to
the encoder's full range at the
highest bit depth it takes, ``u = round((v - lo_z) / (hi_z - lo_z) * (2**b - 1))``
with ``lo_z``/``hi_z`` the slice's minimum and maximum (float64, stored per
slice in the header):

* ``h265``: libx265, ``gray12le`` (12-bit 4:0:0) when the bundled libx265 takes
  it, else ``yuv420p12le`` with the image in luma and mid-grey chroma, else
  10-bit, else 8-bit.
* ``h264``: libx264, ``gray10le`` (10-bit 4:0:0) when it takes it, else
  ``yuv420p10le``, else 8-bit.

Encoder settings: constant rate factor ``crf`` (the knob, a float), ``preset``
(context ``video_preset``, default ``veryslow``: the strongest; on the
studyforrest run it beat ``medium`` by about 0.6 dB (x265) and 0.7 dB (x264) at
equal ratio, but takes 10-15x longer), ``tune=psnr`` (no psycho-visual tuning,
which trades fidelity for perceived sharpness), one key frame per clip (GOP = T);
libx265 single-threaded (its thread pool crashed the process at random, see
``_encode_clip``). SEI NAL units (the
encoder's settings banner, never needed to decode) are dropped; the clips'
Annex B streams are concatenated with their lengths and zstd-compressed
(level 19), which only removes the repeated parameter sets.

The CRF search scouts with preset ``medium`` (bisection on [0, 51]), then
bisects the final preset within +-3 CRF of the scout's answer; see
``search_variant``.

Variants: background fill (``payload.fill_background``); ``const`` only by
default (see ``FILLS``).
"""

from fractions import Fraction

import numpy as np

from .methods import Method, check_array
from .search import OutOfReach, bisect_continuous
from .payload import fill_background, pack, unpack, unzstd, zstd

#: background fills searched by default: ``const`` beat ``none`` and ``tmean`` at equal
#: CRF for both encoders on the studyforrest run (x265 medium, CRF 12: ratio 122.6 /
#: 43.34 dB, against 88.5 / 43.73 and 118.7 / 43.32); context ``fills`` widens it
FILLS = ("const",)
#: pixel formats in order of preference, with their bit depths
PREFERRED = {
    "libx265": [("gray12le", 12), ("yuv420p12le", 12), ("gray10le", 10), ("yuv420p10le", 10),
                ("gray", 8), ("yuv420p", 8)],
    "libx264": [("gray10le", 10), ("yuv420p10le", 10), ("gray", 8), ("yuv420p", 8)],
}
DECODER = {"libx265": "hevc", "libx264": "h264"}
#: frames are padded to at least this size (libx265 rejects images under 16x16)
MIN_SIZE = 16
#: libx265 (PyAV 18.1's wheel) corrupts the heap, and the process aborts, on pictures
#: whose width is 33 to 48 pixels, whatever their height, pixel format, preset or
#: threading (widths 16 to 130 tried, on 20-frame clips); such widths are padded to 64
X265_BAD_WIDTHS = range(33, 49)
X265_SAFE_WIDTH = 64
#: the fast preset the CRF search scouts with before refining with the final preset
SCOUT_PRESET = "medium"


def picture_size(n_rows, n_columns, encoder):
    """``(height, width)`` of the frames that carry an ``n_rows`` x ``n_columns`` image:
    even, at least ``MIN_SIZE``, and for libx265 outside ``X265_BAD_WIDTHS``."""
    height = max(MIN_SIZE, n_rows + n_rows % 2)
    width = max(MIN_SIZE, n_columns + n_columns % 2)
    if encoder == "libx265" and width in X265_BAD_WIDTHS:
        width = X265_SAFE_WIDTH
    return height, width


def pick_format(encoder):
    """``(pix_fmt, bits)``: the highest bit depth ``encoder`` accepts (gray preferred)."""
    import av

    names = {f.name for f in (av.codec.Codec(encoder, "w").video_formats or [])}
    for fmt, bits in PREFERRED[encoder]:
        if fmt in names:
            return fmt, bits
    raise RuntimeError(f"{encoder} takes none of {[f for f, _ in PREFERRED[encoder]]}")


def _nal_units(stream):
    """Split an Annex B byte stream into NAL units (without start codes)."""
    data = bytes(stream)
    starts, i = [], 0
    while True:
        j = data.find(b"\x00\x00\x01", i)
        if j < 0:
            break
        starts.append(j + 3)
        i = j + 3
    units = []
    for k, s in enumerate(starts):
        end = starts[k + 1] - 3 if k + 1 < len(starts) else len(data)
        # trailing zeros: the first byte of a 4-byte start code, or cabac_zero_words
        # (padding); a NAL unit itself ends with its non-zero stop bit
        units.append(data[s:end].rstrip(b"\x00"))
    return units


def strip_sei(stream, encoder):
    """Drop SEI NAL units from an Annex B stream (types 6 in H.264, 39/40 in H.265)."""
    out = []
    for unit in _nal_units(stream):
        if not unit:
            continue
        if encoder == "libx264":
            sei = (unit[0] & 0x1F) == 6
        else:
            sei = ((unit[0] >> 1) & 0x3F) in (39, 40)
        if not sei:
            out.append(b"\x00\x00\x00\x01" + unit)
    return b"".join(out)


class _Video(Method):
    encoder = None
    knob_name = "crf"
    search_iters = 8

    def variants(self):
        return [{"fill": f} for f in self.context.get("fills", FILLS)]

    def knob_range(self, data, mask, variant):
        return 0.0, 51.0, False, False

    def search_variant(self, data, mask, variant, budget, evaluations):
        """Two-stage CRF search: scout with a fast preset, then bisect the final preset
        in a bracket of +-3 around the scout's answer (a full-range bisection if that
        bracket's coarse end does not fit)."""
        if self.preset == SCOUT_PRESET:
            return super().search_variant(data, mask, variant, budget, evaluations)
        scout = type(self)(dict(self.context, video_preset=SCOUT_PRESET))
        scouted = []
        try:
            crf, _ = bisect_continuous(
                lambda c: scout.encode(data, mask, dict(variant, crf=c)), 0.0, 51.0, budget,
                size_grows=False, iters=7, evaluations=scouted)
        except OutOfReach:
            crf = 51.0
        evaluations += [dict(e, preset=SCOUT_PRESET) for e in scouted]

        def final(c):
            return self.encode(data, mask, dict(variant, crf=c))
        try:
            return bisect_continuous(final, max(0.0, crf - 3.0), min(51.0, crf + 3.0), budget,
                                     size_grows=False, iters=4, evaluations=evaluations)
        except OutOfReach:
            return bisect_continuous(final, 0.0, 51.0, budget, size_grows=False,
                                     iters=self.search_iters, evaluations=evaluations)

    @property
    def preset(self):
        return self.context.get("video_preset", "veryslow")

    def _encode_clip(self, frames, fmt, bits, crf):
        import av

        n_t, h, w = frames.shape
        ctx = av.CodecContext.create(self.encoder, "w")
        ctx.width, ctx.height, ctx.pix_fmt = w, h, fmt
        ctx.time_base, ctx.framerate = Fraction(1, 25), Fraction(25, 1)
        ctx.gop_size = n_t
        opts = {"crf": f"{crf:.3f}", "preset": self.preset, "tune": "psnr"}
        if self.encoder == "libx265":
            # single-threaded: with its thread pool, libx265 crashed the process at random
            # (2 of 18 runs of 120 clips at preset medium, a segmentation fault or heap
            # corruption; none in 30 runs single-threaded). At veryslow it already ran on
            # one core here, and wrote the same bytes in the same time either way
            opts["x265-params"] = (f"log-level=none:info=0:keyint={n_t}:min-keyint={n_t}"
                                   ":pools=none:frame-threads=1:lookahead-threads=0")
        else:
            opts["x264-params"] = f"keyint={n_t}:min-keyint={n_t}"
        ctx.options = opts
        dtype = np.uint16 if bits > 8 else np.uint8
        packets = []
        for t in range(n_t):
            frame = av.VideoFrame(w, h, fmt)
            _fill_plane(frame.planes[0], frames[t].astype(dtype))
            for plane in frame.planes[1:]:  # yuv fallback: neutral chroma
                mid = np.full(plane.buffer_size // np.dtype(dtype).itemsize, 1 << (bits - 1),
                              dtype)
                plane.update(mid.tobytes())
            frame.pts = t
            packets += [bytes(p) for p in ctx.encode(frame)]
        packets += [bytes(p) for p in ctx.encode(None)]
        return strip_sei(b"".join(packets), self.encoder)

    def encode(self, data, mask, knob):
        data = check_array(data)
        arr = fill_background(data, mask, knob.get("fill", "none")).astype(np.float64)
        fmt, bits = pick_format(self.encoder)
        top = float((1 << bits) - 1)
        nx, ny, nz, nt = arr.shape
        px, py = picture_size(nx, ny, self.encoder)
        los, scales, clips = [], [], []
        for z in range(nz):
            sl = arr[:, :, z, :]
            lo, hi = float(sl.min()), float(sl.max())
            scale = (hi - lo) / top if hi > lo else 1.0
            q = np.clip(np.rint((sl - lo) / scale), 0, top)
            q = np.pad(q, ((0, px - nx), (0, py - ny), (0, 0)), mode="edge")
            clips.append(self._encode_clip(np.moveaxis(q, -1, 0), fmt, bits,
                                           float(knob["crf"])))
            los.append(lo)
            scales.append(scale)
        self.last_info = {"pix_fmt": fmt, "bits": bits, "preset": self.preset}
        lengths = np.array([len(c) for c in clips], dtype="<u4").tobytes()
        header = {"m": self.name, "shape": [nx, ny, nz, nt], "fmt": fmt, "bits": bits,
                  "lo": los, "scale": scales}
        return pack(header, zstd(lengths + b"".join(clips)))

    def decode(self, payload):
        import av

        header, (blob,) = unpack(payload)
        nx, ny, nz, nt = header["shape"]
        bits = header["bits"]
        dtype = np.uint16 if bits > 8 else np.uint8
        raw = unzstd(blob)
        lengths = np.frombuffer(raw[:4 * nz], dtype="<u4")
        pos = 4 * nz
        out = np.empty((nx, ny, nz, nt), dtype=np.float64)
        for z in range(nz):
            stream = raw[pos:pos + int(lengths[z])]
            pos += int(lengths[z])
            ctx = av.CodecContext.create(DECODER[self.encoder], "r")
            frames = []
            for chunk in (stream, b""):
                for packet in ctx.parse(chunk):
                    frames += ctx.decode(packet)
            frames += ctx.decode(None)
            if len(frames) != nt:
                raise ValueError(f"slice {z}: decoded {len(frames)} frames, expected {nt}")
            for t, frame in enumerate(frames):
                img = _read_plane(frame.planes[0], dtype)[:nx, :ny]
                out[:, :, z, t] = img * header["scale"][z] + header["lo"][z]
        return out


def _fill_plane(plane, img):
    """Copy a (H, W) image into a frame plane, honouring its line stride."""
    h, w = img.shape
    per_line = plane.line_size // img.itemsize
    buf = np.zeros((h, per_line), dtype=img.dtype)
    buf[:, :w] = img
    plane.update(buf.tobytes())


def _read_plane(plane, dtype):
    per_line = plane.line_size // np.dtype(dtype).itemsize
    arr = np.frombuffer(plane, dtype=dtype)
    return arr.reshape(-1, per_line)[:, :plane.width].astype(np.float64)


class H264(_Video):
    name = "h264"
    encoder = "libx264"
    knob_doc = ("x264 CRF (float; scouted with preset medium, then bisected within +-3 with "
                "the final preset); gray10le, preset veryslow, tune psnr, one GOP per slice")


class H265(_Video):
    name = "h265"
    encoder = "libx265"
    # libx265's output size varies by a few bytes from run to run (+-0.2% seen, even
    # single-threaded): aim 1% under the budget so that the timed re-encode fits too
    budget_margin = 0.99
    knob_doc = ("x265 CRF (float; scouted with preset medium, then bisected within +-3 with "
                "the final preset); gray12le, preset veryslow, tune psnr, one GOP per slice")
