"""Other codings of a file's mean frame and mask, measured against the ones the file uses.

    python benchmarks/frame_alternatives.py RUN.nii[.gz] ... [--ratio 200]
        [--out benchmarks/results/frame_alternatives.md]

Each run is compressed with the default preset at ``--ratio`` and the file's own mean
frame (its step, origin, series mask and background multiple ``m``) is coded again
in other ways. Every row gives the bytes and the RMS error of the background's mean
(outside the series' mask) and of the brain's (inside), so that a coding is better
only if it takes fewer bytes at no more error:

* ``file``: the levels as the file codes them (JPEG XL lossless at effort 7, the
  background's levels rounded to multiples of ``m``), and the same at efforts 9
  and 10;
* the same levels laid out otherwise before JPEG XL: coronal or sagittal slices
  side by side, axial slices stacked, three axial slices as colour channels, and
  differences between consecutive slices;
* JPEG-LS near-lossless (``imagecodecs.jpegls_encode(level=k)``) of the fine levels
  with k = max(1, m // 2), the largest error of rounding to multiples of ``m`` (on
  the brain's levels too, so its brain RMS is higher);
* lossy JPEG XL (distances 0.05-0.3) and lossy JPEG 2000 (PSNR 60-75) of the
  fine levels;
* the mask as the file codes it (zstd -19 of the packed bits) and as a 1-bit image
  in JPEG XL (efforts 7 and 9).

Each row also gives the seconds of that one encode (one thread; the machine's load
counts too).
"""

import argparse
import datetime
import os
import platform
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from where_bytes_go import run_mean  # noqa: E402


def _jxl(img, effort=7, **kw):
    import imagecodecs

    from nipype_icainr.codec.frame import codestream

    return len(codestream(bytes(imagecodecs.jpegxl_encode(np.ascontiguousarray(img),
                                                          effort=effort, **kw))))


def _timed(fn, *args, **kw):
    """``(fn(*args, **kw), seconds)``."""
    import time

    t = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t


def _rms(a, b):
    return float(np.sqrt(np.mean((a - b) ** 2))) if a.size else 0.0


def alternatives(run, ratio, tmp):
    """Rows ``(coding, bytes, background RMS, brain RMS)`` for one run at ``ratio``."""
    import imagecodecs

    from nipype_icainr import io
    from nipype_icainr.codec import core, frame
    from nipype_icainr.codec.api import compress
    from nipype_icainr.codec.container import unpack

    out = os.path.join(tmp, "run.icainr")
    compress(run, out, ratio=ratio, force=True, measure=False)
    with open(out, "rb") as fh:
        header, sections, _, _ = unpack(fh.read(), out)
    mean = run_mean(run)
    mask = io.unpack_mask(sections[core.MASK_TAG], mean.shape)
    step, lo = header["frame"]["mean_step"], header["frame"]["mean_lo"]
    decoded = frame.decode_mean_frame(sections[core.MEAN_TAG], mean.shape, lo, step, out)
    levels = np.round((decoded - lo) / step).astype(np.int64)
    fine = frame._levels(mean, step, lo).astype(np.int64)
    # the file's background multiple: the largest (at most 4096, the codec's) whose
    # multiples hold the decoded levels, the gcd of their differences
    outside = ~mask
    m = 1
    if outside.any():
        gcd = int(np.gcd.reduce(levels[outside] - levels[outside].min()))
        m = min(gcd, 4096) if gcd else 4096
    rows = []

    def row(name, timed, values):
        n_bytes, seconds = timed
        rows.append((name, n_bytes, seconds, _rms(values[outside], mean[outside]),
                     _rms(values[mask], mean[mask])))

    q = levels.astype(np.uint16)
    back = lo + levels * step
    for effort in (7, 9, 10):
        row(f"file's levels, JPEG XL effort {effort}" + (" (the file)" if effort == 7 else ""),
            _timed(_jxl, frame._mosaic(q), effort, lossless=True), back)
    x, y, z = q.shape
    layouts = {
        "coronal slices side by side": q.transpose(2, 1, 0).reshape(z, y * x),
        "sagittal slices side by side": q.transpose(2, 0, 1).reshape(z, x * y),
        "axial slices stacked": q.transpose(2, 1, 0).reshape(z * y, x),
    }
    zp = -(-z // 3) * 3
    padded = np.concatenate([q, np.repeat(q[:, :, -1:], zp - z, axis=2)], axis=2)
    layouts["three axial slices as colour channels"] = padded.reshape(
        x, y, zp // 3, 3).transpose(1, 2, 0, 3).reshape(y, (zp // 3) * x, 3)
    diff = q.astype(np.int32)
    diff[:, :, 1:] -= q[:, :, :-1].astype(np.int32)
    layouts["differences between slices"] = frame._mosaic((diff + 32768).astype(np.uint16))
    for name, image in layouts.items():
        row(name, _timed(_jxl, image, 7, lossless=True), back)
    near = max(1, m // 2)
    payload, seconds = _timed(imagecodecs.jpegls_encode, frame._mosaic(fine.astype(np.uint16)),
                              level=near)
    dec = frame._unmosaic(imagecodecs.jpegls_decode(payload).astype(np.float64), mean.shape)
    row(f"JPEG-LS near-lossless, bound {near} levels", (len(payload), seconds),
        lo + dec * step)
    for distance in (0.05, 0.1, 0.3):
        payload, seconds = _timed(imagecodecs.jpegxl_encode,
                                  frame._mosaic(fine.astype(np.uint16)), lossless=False,
                                  distance=distance, effort=7)
        dec = frame._unmosaic(imagecodecs.jpegxl_decode(payload).astype(np.float64),
                              mean.shape)
        row(f"lossy JPEG XL, distance {distance:g}",
            (len(frame.codestream(bytes(payload))), seconds), lo + dec * step)
    for level in (60, 70, 75):
        payload, seconds = _timed(imagecodecs.jpeg2k_encode,
                                  frame._mosaic(fine.astype(np.uint16)), level=level,
                                  codecformat="J2K")
        dec = frame._unmosaic(imagecodecs.jpeg2k_decode(payload).astype(np.float64),
                              mean.shape)
        row(f"lossy JPEG 2000, PSNR {level}", (len(payload), seconds), lo + dec * step)
    mask_rows = [("mask: zstd -19 of the packed bits (the file)",
                  _timed(io.pack_mask, mask)[1], len(sections[core.MASK_TAG]))]
    for effort in (7, 9):
        n_bytes, seconds = _timed(_jxl, frame._mosaic(mask.astype(np.uint8)), effort,
                                  lossless=True)
        mask_rows.append((f"mask: 1-bit image, JPEG XL effort {effort}", seconds, n_bytes))
    return m, rows, mask_rows


def main(argv=None):
    from nipype_icainr.bench.runner import collect_runs, run_name
    from nipype_icainr.provenance import software_versions

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+")
    p.add_argument("--ratio", type=float, default=200.0)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    lines = ["# Other codings of the mean frame and the mask", "",
             "- command: `python benchmarks/frame_alternatives.py "
             + " ".join(argv if argv is not None else sys.argv[1:]) + "`",
             f"- date: {now}", f"- machine: {platform.platform()}, {os.cpu_count()} CPUs",
             "- packages: " + ", ".join(f"{k} {v}" for k, v in software_versions().items()),
             ""]
    with tempfile.TemporaryDirectory(prefix="icainr-frame-") as tmp:
        for run, _ in collect_runs(args.runs):
            m, rows, mask_rows = alternatives(run, args.ratio, tmp)
            lines += [f"## {run_name(run)} at {args.ratio:g}x (background multiple {m})", "",
                      "| coding | bytes | encode s | background RMS | brain RMS |",
                      "|---|---|---|---|---|"]
            lines += [f"| {name} | {b:,} | {sec:.2f} | {bg:.1f} | {br:.1f} |"
                      for name, b, sec, bg, br in rows]
            lines += [f"| {name} | {b:,} | {sec:.2f} | | |" for name, sec, b in mask_rows]
            lines += [""]
            print("\n".join(lines[-len(rows) - len(mask_rows) - 4:]), flush=True)
    if args.out:
        from nipype_icainr.io import write_atomic

        write_atomic(args.out, ("\n".join(lines) + "\n").encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
