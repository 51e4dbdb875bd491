"""Time and peak memory of `icainr compress` / `decompress` on preprocessed-size runs.

A realistic run of fMRIPrep's 2 mm MNI size (97 x 115 x 97) is made from a real one:
every volume of the source run is resampled onto the larger grid (trilinear), and the
run is extended in time by replaying its volumes with fresh noise of the run's own
temporal fluctuation. Written as float32 `.nii` (fMRIPrep's output type), then
compressed and decompressed by the command-line tool, each under `/usr/bin/time -v`.

    python benchmarks/large_runs.py SOURCE.nii.gz --volumes 156,300 [--shape 97,115,97]
        [--ratio 100] [--work /tmp/large] [--extra "--no-measure"]

Prints one row per run: raw size, compress and decompress seconds and peak RSS.
"""

import argparse
import os
import re
import subprocess
import sys

import numpy as np


def make_run(source, shape, n_volumes, out, seed=0):
    """Resample ``source`` onto ``shape`` and extend it to ``n_volumes`` (float32 .nii)."""
    import nibabel as nib
    from scipy.ndimage import zoom

    img = nib.load(source)
    data = np.asarray(img.dataobj, dtype=np.float32)
    factors = [n / s for n, s in zip(shape, data.shape[:3])]
    mean = data.mean(axis=3)
    noise = data.std(axis=3)
    rng = np.random.default_rng(seed)
    big_noise = zoom(noise, factors, order=1).astype(np.float32)
    affine = img.affine.copy()
    affine[:3, :3] = affine[:3, :3] / np.asarray(factors)
    header = nib.Nifti1Header()
    header.set_data_dtype(np.float32)
    out_img = nib.Nifti1Image(np.zeros(tuple(shape) + (1,), np.float32), affine, header)
    out_img.header.set_data_shape(tuple(shape) + (n_volumes,))
    out_img.header.set_xyzt_units("mm", "sec")
    zooms = list(out_img.header.get_zooms()[:3]) + [float(img.header.get_zooms()[3] or 2.0)]
    out_img.header.set_zooms(zooms)
    with open(out, "wb") as f:  # a plain .nii written volume by volume
        out_img.header.write_to(f)
        f.seek(int(out_img.header["vox_offset"]))
        for t in range(n_volumes):
            src = t % data.shape[3]
            vol = zoom(data[..., src], factors, order=1).astype(np.float32)
            if t >= data.shape[3]:  # a replayed volume: fresh noise of the run's own size
                vol += rng.normal(0.0, 1.0, vol.shape).astype(np.float32) * big_noise * 0.5
            vol.T.tofile(f)  # NIfTI is x fastest: Fortran order
    del mean
    return out


def timed(cmd):
    """(seconds, peak MB) of ``cmd`` under /usr/bin/time -v."""
    proc = subprocess.run(["/usr/bin/time", "-v"] + cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", proc.stderr)
    h, m, s = wall.groups()
    seconds = int(h or 0) * 3600 + int(m) * 60 + float(s)
    peak = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
    return seconds, peak / 1024.0, proc.stdout


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("source")
    p.add_argument("--volumes", default="156,300")
    p.add_argument("--shape", default="97,115,97")
    p.add_argument("--ratio", default="100")
    p.add_argument("--work", default="/tmp/icainr_large")
    p.add_argument("--extra", default="", help="more compress options, e.g. --no-measure")
    args = p.parse_args(argv)
    shape = tuple(int(s) for s in args.shape.split(","))
    os.makedirs(args.work, exist_ok=True)
    icainr = os.path.join(os.path.dirname(sys.executable), "icainr")
    print("| run (float32) | raw GB | compress s | compress peak GB | ratio | PSNR dB "
          "| decompress s | decompress peak GB |")
    print("|---|---|---|---|---|---|---|---|")
    for n in (int(v) for v in args.volumes.split(",")):
        run = os.path.join(args.work, f"run_{'x'.join(map(str, shape))}x{n}.nii")
        if not os.path.exists(run):
            make_run(args.source, shape, n, run)
        out = run.replace(".nii", ".icainr")
        back = run.replace(".nii", "_back.nii")
        for path in (out, back):
            if os.path.exists(path):
                os.remove(path)
        c_s, c_mb, text = timed([icainr, "compress", run, out, "--ratio", args.ratio,
                                 "--quiet"] + args.extra.split())
        ratio = re.search(r"ratio ([\d.]+)", text).group(1)
        psnr = re.search(r"PSNR ([\d.]+)", text)
        d_s, d_mb, _ = timed([icainr, "decompress", out, back])
        raw = np.prod(shape) * n * 4 / 1e9
        print(f"| {'x'.join(map(str, shape))}x{n} | {raw:.2f} | {c_s:.0f} | {c_mb / 1024:.1f} | "
              f"{ratio} | {psnr.group(1) if psnr else '-'} | {d_s:.0f} | {d_mb / 1024:.1f} |",
              flush=True)
        os.remove(back)


if __name__ == "__main__":
    main()
