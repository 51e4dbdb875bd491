"""Time and peak memory of `icainr compress` / `decompress` on real runs, as a user runs them.

    python benchmarks/cli_speed.py RUN.nii[.gz] ... [--ratio 100] [--repeat 3]
        [--work /tmp/icainr_speed]

Each run is compressed with the default preset and measurement (`icainr compress RUN
OUT.icainr --ratio R`) and decompressed to `.nii.gz` (`icainr decompress OUT.icainr
BACK.nii.gz`), each under `/usr/bin/time -v`, ``--repeat`` times; the table gives the
fastest and the median wall-clock seconds (shared machines vary from run to run) and
the largest peak resident memory. A directory argument stands for every NIfTI in it.
"""

import argparse
import os
import re
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from large_runs import timed  # noqa: E402

from nipype_icainr.bench.runner import collect_runs, run_name  # noqa: E402


def label(run):
    """The file's name, after its dataset's folder for a BIDS path (sub-*/func/...)."""
    name = run_name(run)
    parts = os.path.normpath(os.path.abspath(run)).split(os.sep)
    subject = [i for i, part in enumerate(parts) if part.startswith("sub-")]
    return f"{parts[subject[0] - 1]}/{name}" if subject and subject[0] > 0 else name


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+")
    p.add_argument("--ratio", default="100")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--work", default="/tmp/icainr_speed")
    args = p.parse_args(argv)
    os.makedirs(args.work, exist_ok=True)
    icainr = os.path.join(os.path.dirname(sys.executable), "icainr")
    print(f"| run | compress s (fastest / median of {args.repeat}) | compress peak MB | ratio "
          f"| PSNR dB | decompress s (fastest / median) | decompress peak MB |")
    print("|---|---|---|---|---|---|---|")
    for run, _ in collect_runs(args.runs):
        name = label(run)
        out = os.path.join(args.work, name.replace("/", "_") + ".icainr")
        back = os.path.join(args.work, name.replace("/", "_") + "_back.nii.gz")
        c_times, c_peak, d_times, d_peak = [], 0.0, [], 0.0
        for _ in range(args.repeat):
            seconds, mb, text = timed([icainr, "compress", run, out, "--ratio", args.ratio,
                                       "--force"])
            c_times.append(seconds)
            c_peak = max(c_peak, mb)
            seconds, mb, _ = timed([icainr, "decompress", out, back, "--force"])
            d_times.append(seconds)
            d_peak = max(d_peak, mb)
        ratio = re.search(r"ratio ([\d.]+)", text).group(1)
        psnr = re.search(r"PSNR ([\d.]+)", text)
        print(f"| {name} | {min(c_times):.1f} / {statistics.median(c_times):.1f} | "
              f"{c_peak:.0f} | {ratio} | {psnr.group(1) if psnr else '-'} | "
              f"{min(d_times):.1f} / {statistics.median(d_times):.1f} | {d_peak:.0f} |",
              flush=True)
        for path in (out, back):
            os.remove(path)


if __name__ == "__main__":
    main()
