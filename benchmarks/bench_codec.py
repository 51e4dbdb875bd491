"""Benchmark the codec on one run: ratio, PSNR, SSIM, wall time and peak memory.

Usage (from the repository root)::

    python benchmarks/bench_codec.py [BOLD.nii.gz] [--ratio 100] [--preset default]
                                     [--device auto] [--out benchmarks/results/codec.json]

Compression and decompression each run in a fresh Python process, so the peak
resident memory reported (``ru_maxrss``) is that step's own. PSNR and SSIM come
from ``nipype_icainr.metrics`` on the decompressed file as written to disk.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_RUN = os.path.join(HERE, "..", "..", "shared", "data", "studyforrest", "sub-02",
                           "func", "sub-02_task-oneback_run-1_bold.nii.gz")

CHILD = r"""
import json, resource, sys, time
from nipype_icainr import compress, decompress
args = json.loads(sys.argv[1])
t0 = time.perf_counter()
if args["step"] == "compress":
    res = compress(args["in"], args["out"], ratio=args["ratio"], preset=args["preset"],
                   device=args["device"], seed=0, force=True, measure=False)
else:
    res = decompress(args["in"], args["out"], device=args["device"], force=True)
res["wall_seconds"] = time.perf_counter() - t0
res["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
print("RESULT " + json.dumps(res, default=str))
"""


def run_step(**args):
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(args)], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        sys.exit(f"{args['step']} failed:\n{proc.stderr[-2000:]}")
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    res = json.loads(line[7:])
    res["process_seconds"] = time.perf_counter() - t0  # includes Python and torch start-up
    return res


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bold", nargs="?", default=DEFAULT_RUN)
    parser.add_argument("--ratio", type=float, default=100.0)
    parser.add_argument("--preset", default="default")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", help="write the figures as JSON here too")
    args = parser.parse_args()

    import nibabel as nib

    from nipype_icainr import metrics
    from nipype_icainr.io import load_bold
    from nipype_icainr.masking import compute_mask

    with tempfile.TemporaryDirectory() as tmp:
        packed = os.path.join(tmp, "run.icainr")
        restored = os.path.join(tmp, "run.nii.gz")
        comp = run_step(step="compress", **{"in": args.bold, "out": packed}, ratio=args.ratio,
                        preset=args.preset, device=args.device)
        dec = run_step(step="decompress", **{"in": packed, "out": restored},
                       device=args.device)
        img, orig = load_bold(args.bold)
        decoded = np.asarray(nib.load(restored).dataobj, dtype=np.float64)
        mask = compute_mask(orig, img.affine)
        mean_only = np.repeat(orig.mean(-1, keepdims=True), orig.shape[-1], axis=-1)
        figures = {
            "input": os.path.relpath(args.bold), "shape": list(orig.shape),
            "preset": args.preset, "target_ratio": args.ratio,
            "ratio": comp["ratio"], "ratio_disk": comp["ratio_disk"],
            "file_bytes": comp["file_bytes"],
            "psnr_db": metrics.psnr(orig, decoded, mask),
            "ssim": metrics.ssim(orig, decoded, mask),
            "psnr_mean_frame_only_db": metrics.psnr(orig, mean_only, mask),
            "compress_seconds": comp["wall_seconds"],
            "compress_process_seconds": comp["process_seconds"],
            "compress_peak_mb": comp["peak_rss_mb"],
            "decompress_seconds": dec["wall_seconds"],
            "decompress_process_seconds": dec["process_seconds"],
            "decompress_peak_mb": dec["peak_rss_mb"],
            "device": comp["device"], "arch": comp["arch"],
            "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cores",
        }
    print(f"input            {figures['input']} {tuple(figures['shape'])}")
    print(f"preset           {args.preset} on {figures['device']}, target ratio {args.ratio:g}")
    print(f"ratio            {figures['ratio']:.1f} (raw array); {figures['ratio_disk']:.1f} "
          f"(input file on disk); {figures['file_bytes']:,} bytes")
    print(f"PSNR             {figures['psnr_db']:.2f} dB (mean frame alone: "
          f"{figures['psnr_mean_frame_only_db']:.2f} dB)")
    print(f"SSIM             {figures['ssim']:.4f}")
    print(f"compress         {figures['compress_seconds']:.1f} s, peak "
          f"{figures['compress_peak_mb']:.0f} MB")
    print(f"decompress       {figures['decompress_seconds']:.1f} s, peak "
          f"{figures['decompress_peak_mb']:.0f} MB")
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as fh:
            json.dump(figures, fh, indent=2)
            fh.write("\n")


if __name__ == "__main__":
    main()
