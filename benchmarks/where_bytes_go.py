"""Where a file's bytes go: header, mask, the mean frame (brain and background), the series.

    python benchmarks/where_bytes_go.py RUN_OR_DIR ... [--ratios 100,200]
        [--out benchmarks/results/where_bytes_go.md]

Each run is compressed as a user would (``nipype_icainr.codec.api.compress``, the
default preset, at each ratio) and its sections are read back from the file. The mean
frame's section (MEAN) is split in two: the brain part is the same frame coded again
at the file's step with every voxel outside the series' mask set to one level (JPEG
XL then spends almost nothing there), and the background part is the rest. The
background part is what the background rule costs: outside the mask the decoder
writes the mean frame, and the default codes it so that its error is within the
in-mask RMS error (or the background's own fluctuation in time, where larger). The
table also gives the masked and full-volume PSNR of the file as ``icainr compress``
measures them. A directory argument stands for every NIfTI in it.
"""

import argparse
import datetime
import os
import platform
import sys
import tempfile

import numpy as np


def run_mean(path):
    """A 4D run's mean over time (float64), read volume by volume: a large run's array
    is GBs."""
    import nibabel as nib

    img = nib.load(path)
    mean = np.zeros(img.shape[:3])
    for t in range(img.shape[3]):
        mean += np.asarray(img.dataobj[..., t], dtype=np.float64)
    return mean / img.shape[3]


def split_mean(path, blob):
    """``(brain bytes, background bytes)`` of the MEAN section of ``blob``, the file
    made from ``path``; None when the file has no mean frame (a lossless file)."""
    from nipype_icainr import io
    from nipype_icainr.codec import core, frame
    from nipype_icainr.codec.container import unpack

    header, sections, _, _ = unpack(blob, path)
    mean_payload = sections.get(core.MEAN_TAG)
    if not mean_payload or "frame" not in header:
        return None
    mean = run_mean(path)
    mask = io.unpack_mask(sections[core.MASK_TAG], mean.shape)
    info = header["frame"]
    # every background voxel at one level: a coarse multiple larger than the frame's range
    brain, _, _ = frame.encode_mean_frame(mean, info["mean_step"], mask, 65535,
                                          lo=min(info["mean_lo"], float(mean.min())))
    return len(brain), max(len(mean_payload) - len(brain), 0)


def main(argv=None):
    from nipype_icainr.bench.runner import collect_runs, run_name
    from nipype_icainr.codec.api import compress
    from nipype_icainr.provenance import software_versions

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+")
    p.add_argument("--ratios", default="100,200")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    ratios = [float(r) for r in args.ratios.split(",")]
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    lines = ["# Where the bytes go", "",
             "- command: `python benchmarks/where_bytes_go.py " + " ".join(argv or sys.argv[1:])
             + "`",
             f"- date: {now}",
             f"- machine: {platform.platform()}, {os.cpu_count()} CPUs",
             "- packages: " + ", ".join(f"{k} {v}" for k, v in software_versions().items()),
             "",
             "Bytes of each part of a default-preset file (MEAN split into the brain's part "
             "and the background's: see the script's docstring); PSNR as `icainr compress` "
             "reports it (brain mask), full-volume PSNR over every voxel.", "",
             "| run | target | ratio | file B | header and framing B | MASK B | MEAN brain B | "
             "MEAN background B | series B | background share | PSNR dB | full-volume PSNR dB |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    print("\n".join(lines[-2:]), flush=True)
    with tempfile.TemporaryDirectory(prefix="icainr-bytes-") as tmp:
        out = os.path.join(tmp, "run.icainr")
        for run, _ in collect_runs(args.runs):
            for ratio in ratios:
                try:
                    res = compress(run, out, ratio=ratio, force=True)
                except Exception as exc:  # out of reach: said in the row
                    row = (f"| {run_name(run)} | {ratio:g} | "
                           f"{str(exc).splitlines()[0].split(': ', 1)[-1][:90]} |")
                    lines.append(row)
                    print(row, flush=True)
                    continue
                with open(out, "rb") as fh:
                    blob = fh.read()
                secs = dict(res["sections"])
                split = split_mean(run, blob)
                mask_b = secs.pop("MASK", 0)
                mean_b = secs.pop("MEAN", 0)
                series = sum(secs.values())
                brain, background = split if split else (mean_b, 0)
                full = _full_psnr(run, out, tmp)
                mode = "" if res["mode"] == "lossy" else f" ({res['mode']})"
                row = (f"| {run_name(run)} | {ratio:g} | {res['ratio']:.1f}{mode} | "
                       f"{res['file_bytes']:,} | {res['header_bytes']:,} | {mask_b:,} | "
                       f"{brain:,} | {background:,} | "
                       f"{series:,} | {100.0 * background / res['file_bytes']:.0f} % | "
                       f"{res['psnr']:.2f} | {full:.2f} |")
                lines.append(row)
                print(row, flush=True)
    if args.out:
        from nipype_icainr.io import write_atomic

        write_atomic(args.out, ("\n".join(lines) + "\n").encode())
    return 0


def _full_psnr(run, compressed, tmp):
    """Full-volume PSNR of the decoded file (``qc.image.psnr`` over every voxel, as the
    benchmark's full-volume column)."""
    import nibabel as nib

    from nipype_icainr.codec.api import decompress
    from nipype_icainr.qc.image import psnr

    back = os.path.join(tmp, "back.nii.gz")
    decompress(compressed, back, force=True)
    original, decoded = nib.load(run).dataobj, nib.load(back).dataobj
    return psnr(original, decoded, np.ones(original.shape[:3], dtype=bool))


if __name__ == "__main__":
    sys.exit(main())
