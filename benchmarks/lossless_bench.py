"""Lossless and error-bounded coding of real runs: the codec against its peers.

For every run (NIfTI files, or folders of them), on the array as stored on disk:

* lossless rows: gzip -6 (what ``.nii.gz`` does), zstd -19 (best of the on-disk
  x-fastest order and the time-fastest, byte-shuffled order), JPEG XL lossless
  (each volume as one 16-bit mosaic; integer runs only), and ``icainr compress
  --lossless``; every row is checked to give back the stored array exactly;
* error-bounded rows at E = 0.5, 1, 2 and 4 stored units (for a float run, a unit is
  range / 65535, the precision an int16 copy would keep): SZ3 in absolute-error mode
  and ZFP in fixed-accuracy mode (its tolerance raised by powers of two while the
  measured error stays within the bound; each peer the best of two array orders: time
  fastest and x fastest), and ``icainr compress --max-error Eu``; the measured largest error
  is printed beside each bound.

Ratio = bytes of the stored array / bytes of the compressed output (every header byte
of ours counted). Seconds are wall-clock, one process.

    python benchmarks/lossless_bench.py RUN_OR_FOLDER [...] --out benchmarks/results/lossless_corpus
"""

import argparse
import gzip
import json
import os
import platform
import sys
import tempfile
import time

import numpy as np

BOUNDS = (0.5, 1.0, 2.0, 4.0)


def timed(fn, *args, **kwargs):
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t


def zstd19_best(stored):
    import imagecodecs

    from nipype_icainr.codec.lossless.coder import shuffle

    layouts = {"x-fastest": np.asfortranarray(stored).tobytes(order="F"),
               "t-fastest shuffled": shuffle(np.ascontiguousarray(stored))}
    best = None
    for name, raw in layouts.items():
        blob, secs = timed(imagecodecs.zstd_encode, raw, level=19)
        if best is None or len(blob) < best[1]:
            best = (name, len(blob), secs)
    return best


def jxl_lossless(stored):
    import imagecodecs

    if stored.dtype.kind not in "iu" or stored.dtype.itemsize > 2:
        return None
    lo = int(stored.min())
    if int(stored.max()) - lo > 65535:
        return None
    x, y, z, t = stored.shape
    total, start = 0, time.perf_counter()
    for v in range(t):
        mosaic = (stored[..., v].astype(np.int64) - lo).astype(np.uint16)
        mosaic = np.ascontiguousarray(mosaic.transpose(1, 2, 0).reshape(y, z * x))
        total += len(imagecodecs.jpegxl_encode(mosaic, lossless=True, effort=7))
    return total + 8, time.perf_counter() - start  # + the offset


def error_bounded_peer(name, values, bound):
    """(bytes, seconds, max error) of SZ3 / ZFP at an absolute bound, best array order."""
    import imagecodecs

    best = None
    for order in ("t", "x"):
        arr = np.ascontiguousarray(values if order == "t" else values.transpose(3, 2, 1, 0))
        arr = arr.astype(np.float32)
        t0 = time.perf_counter()
        if name == "sz3":
            blob = bytes(imagecodecs.sz3_encode(arr, mode="abs", abs=bound))
            back = imagecodecs.sz3_decode(blob, shape=arr.shape, dtype=np.float32)
        else:  # ZFP's tolerance is conservative: the largest one still within the bound
            import zfpy

            blob = back = None
            for factor in (1, 2, 4, 8, 16, 32, 64):
                b = zfpy.compress_numpy(arr, tolerance=bound * factor)
                d = zfpy.decompress_numpy(b)
                if float(np.abs(d.astype(np.float64) - arr).max()) > bound:
                    break
                blob, back = b, d
        secs = time.perf_counter() - t0
        err = float(np.abs(back.astype(np.float64) - arr.astype(np.float64)).max())
        if best is None or len(blob) < best[0]:
            best = (len(blob), secs, err)
    return best


def ours(path, work, **target):
    from nipype_icainr.codec.api import compress, decompress

    out = os.path.join(work, "x.icainr")
    back = os.path.join(work, "x.nii")
    for p in (out, back):
        if os.path.exists(p):
            os.remove(p)
    res, enc_s = timed(compress, path, out, measure=False, force=True, **target)
    _, dec_s = timed(decompress, out, back)
    import nibabel as nib

    restored = np.asanyarray(nib.load(back).dataobj.get_unscaled())
    return res, enc_s, dec_s, restored


def bench_run(path, work):
    import nibabel as nib

    img = nib.load(path)
    stored = np.asanyarray(img.dataobj.get_unscaled())
    stored = stored.reshape(stored.shape[:4])
    slope, inter = img.dataobj.slope, img.dataobj.inter
    values = stored.astype(np.float64) * slope + inter
    raw = stored.nbytes
    is_int = stored.dtype.kind in "iu"
    unit = abs(slope) if is_int else float(values.max() - values.min()) / 65535.0
    name = os.path.basename(path).split(".nii")[0]
    rows = []

    def row(method, kind, bound, nbytes, enc_s, dec_s=None, max_err=None, note=""):
        rows.append({"run": name, "method": method, "mode": kind, "bound_units": bound,
                     "ratio": raw / nbytes, "bytes": int(nbytes), "compress_s": enc_s,
                     "decompress_s": dec_s, "max_error_units": max_err, "note": note})

    blob, secs = timed(gzip.compress, np.asfortranarray(stored).tobytes(order="F"), 6, mtime=0)
    row("gzip -6", "lossless", 0, len(blob), secs)
    layout, nbytes, secs = zstd19_best(stored)
    row("zstd -19", "lossless", 0, nbytes, secs, note=layout)
    jxl = jxl_lossless(stored)
    if jxl is not None:
        row("JPEG XL lossless", "lossless", 0, jxl[0], jxl[1], note="16-bit mosaic per volume")
    res, enc_s, dec_s, back = ours(path, work, lossless=True)
    if back.dtype != stored.dtype or not np.array_equal(
            np.ascontiguousarray(back.reshape(stored.shape)).view(np.uint8),
            np.ascontiguousarray(stored).view(np.uint8)):
        raise SystemExit(f"{name}: the lossless round trip is not exact")
    row("icainr --lossless", "lossless", 0, res["file_bytes"], enc_s, dec_s, 0.0,
        note=res["arch"].get("engine", ""))
    for e in BOUNDS:
        bound = e * unit
        for peer in ("sz3", "zfp"):
            nbytes, secs, err = error_bounded_peer(peer, values, bound)
            row(peer.upper() + (" abs" if peer == "sz3" else " accuracy"), "bounded", e,
                nbytes, secs, None, err / unit)
        res, enc_s, dec_s, back = ours(path, work, max_error=f"{e}u")
        got = back.reshape(stored.shape).astype(np.float64) * slope + inter
        err = float(np.abs(got - values).max()) / unit
        row("icainr --max-error", "bounded", e, res["file_bytes"], enc_s, dec_s, err,
            note=res["arch"].get("engine", ""))
        print(f"  {name}: E={e}u done", file=sys.stderr, flush=True)
    return {"run": name, "shape": list(stored.shape), "dtype": stored.dtype.str,
            "raw_bytes": int(raw), "unit": unit}, rows


def to_markdown(meta, runs, rows):
    lines = ["# Lossless and error-bounded coding", "",
             f"- command: `{meta['command']}`", f"- date: {meta['date']}",
             f"- machine: {meta['machine']}", f"- software: {meta['software']}", "",
             "Ratio = stored array bytes / compressed bytes. Error in stored units (float "
             "runs: range / 65535). zstd: best of x-fastest and t-fastest byte-shuffled; "
             "SZ3/ZFP: best of two array orders. Ours / best peer: our ratio over the best "
             "peer's at the same bound.", ""]
    for r in runs:
        sub = [x for x in rows if x["run"] == r["run"]]
        lines += [f"## {r['run']}", "",
                  f"shape {tuple(r['shape'])}, {r['dtype']}, raw {r['raw_bytes']:,} bytes", "",
                  "| method | bound (units) | ratio | measured max error | compress s | "
                  "decompress s | ours / best peer | note |", "|---|---|---|---|---|---|---|---|"]
        for x in sub:
            peers = [y["ratio"] for y in sub if y["bound_units"] == x["bound_units"]
                     and not y["method"].startswith("icainr")]
            rel = f"{x['ratio'] / max(peers):.2f}" if x["method"].startswith("icainr") \
                and peers else ""
            err = "" if x["max_error_units"] is None else f"{x['max_error_units']:.4g}"
            dec = "" if x["decompress_s"] is None else f"{x['decompress_s']:.1f}"
            lines.append(f"| {x['method']} | {x['bound_units']:g} | {x['ratio']:.3f} | {err} | "
                         f"{x['compress_s']:.1f} | {dec} | {rel} | {x['note']} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+")
    p.add_argument("--out", default="benchmarks/results/lossless_corpus")
    args = p.parse_args(argv)
    from nipype_icainr.bench.runner import collect_runs
    from nipype_icainr.provenance import software_versions

    meta = {"command": "python benchmarks/lossless_bench.py " + " ".join(sys.argv[1:]),
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": f"{platform.platform()}, {os.cpu_count()} CPUs",
            "software": ", ".join(f"{k} {v}" for k, v in software_versions().items())}
    runs, rows = [], []
    with tempfile.TemporaryDirectory() as work:
        for path, _ in collect_runs(args.runs):
            print(f"lossless_bench: {path}", file=sys.stderr, flush=True)
            r, rr = bench_run(path, work)
            runs.append(r)
            rows += rr
            with open(args.out + ".json", "w") as f:
                json.dump({"meta": meta, "runs": runs, "rows": rows}, f, indent=1)
            with open(args.out + ".md", "w") as f:
                f.write(to_markdown(meta, runs, rows))
    print(to_markdown(meta, runs, rows))


if __name__ == "__main__":
    main()
