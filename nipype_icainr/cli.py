"""The ``icainr`` command: compress, decompress, info, bench.

Errors about inputs and outputs print one line (``icainr: error: FILE: problem``)
and exit with status 2; set ``ICAINR_DEBUG=1`` to see a traceback instead.
"""

import argparse
import json
import os
import sys

from . import __version__


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 1.0:
        raise argparse.ArgumentTypeError(f"must be above 1, got {text}")
    return value


def _ratio_list(text):
    values = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        values.append(_positive_float(part))
    if not values:
        raise argparse.ArgumentTypeError(f"no ratio in {text!r}")
    return values


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def _tag(text):
    import re

    if not re.fullmatch(r"[A-Za-z0-9._-]{1,80}", text):
        raise argparse.ArgumentTypeError(
            f"use letters, digits, '.', '_' or '-' (at most 80), got {text!r}")
    return text


def add_target_arguments(parser, ratio_default=None):
    """The compression targets, mutually exclusive: ``--ratio``, ``--lossless``,
    ``--max-error`` and ``--psnr`` (shared by ``icainr compress`` and the BIDS App)."""
    target = parser.add_mutually_exclusive_group()
    default = ("the preset's target_ratio, 100" if ratio_default is None
               else f"{ratio_default:g}")
    target.add_argument("--ratio", type=_positive_float, default=ratio_default,
                        help="target ratio: raw array bytes (stored dtype) / file bytes "
                             f"(default: {default}); a lossless file when one reaches "
                             "the ratio")
    target.add_argument("--lossless", action="store_true",
                        help="the stored array exactly (integers, and the bit patterns of "
                             "floats)")
    target.add_argument("--max-error", metavar="E",
                        help="every value within E of the input, in physical units, or "
                             "'<x>u' in stored units (for floats: the precision an int16 "
                             "copy would keep, range/65535); e.g. 0.5u")
    target.add_argument("--psnr", type=float, metavar="DB",
                        help="the smallest file whose PSNR in the brain mask is at least DB")
    return target


def build_parser():
    parser = argparse.ArgumentParser(
        prog="icainr", description="ICA-INR compression of 4D fMRI (NIfTI <-> .icainr).")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    comp = sub.add_parser("compress", help="NIfTI -> .icainr")
    comp.add_argument("in_file", metavar="IN", help="4D NIfTI (.nii or .nii.gz)")
    comp.add_argument("out_file", metavar="OUT.icainr")
    add_target_arguments(comp, ratio_default=None)
    group = comp.add_mutually_exclusive_group()
    group.add_argument("--preset", default="default",
                       help="bundled preset: default (the coded factorization, best PSNR; "
                            "fast on a CPU), glm (fewer components: GLM t-maps), decoding "
                            "(more components: MVPA), network (the ICA-INR network on a CPU "
                            "budget) or paper (the paper's settings, for a GPU)")
    group.add_argument("--config", metavar="FILE",
                       help="YAML configuration: 'base: PRESET' plus keys to override")
    comp.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    comp.add_argument("--seed", type=int, default=0)
    comp.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    comp.add_argument("--no-measure", action="store_true",
                      help="skip decoding the result to report PSNR and SSIM")
    comp.add_argument("--quiet", action="store_true", help="no progress bar")
    comp.add_argument("--json", action="store_true", help="print the summary as JSON")

    dec = sub.add_parser("decompress", help=".icainr -> NIfTI")
    dec.add_argument("in_file", metavar="IN.icainr")
    dec.add_argument("out_file", metavar="OUT.nii.gz")
    dec.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    dec.add_argument("--force", action="store_true", help="overwrite OUT if it exists")

    inf = sub.add_parser("info", help="header, ratio and section sizes of an .icainr file")
    inf.add_argument("in_file", metavar="IN.icainr")
    inf.add_argument("--json", action="store_true", help="print everything as JSON")

    ben = sub.add_parser(
        "bench", help="rate-distortion and downstream-fidelity benchmark against peer codecs",
        description="Compress each run with the codec and peer compressors at each target "
                    "ratio (knobs searched to the ratio), then report ratio, PSNR (mask and "
                    "full volume), SSIM, FLA, FCA under three region definitions, CTA, time "
                    "and peak memory, and the codec's wins and losses against the best peer, "
                    "as CSV, Markdown, JSON and PNG plots.")
    ben.add_argument("in_file", metavar="RUN", nargs="+",
                     help="4D NIfTI runs, or folders of them (a corpus)")
    ben.add_argument("--events", metavar="events.tsv",
                     help="BIDS events of a single run (first-level analysis, FLA); with "
                          "several runs each run's own *_events.tsv beside it is used")
    ben.add_argument("--ratios", type=_ratio_list, default=[100.0, 200.0], metavar="R[,R...]",
                     help="target ratios, comma separated (default: 100,200)")
    ben.add_argument("--methods", default="all", metavar="all|M[,M...]",
                     help="icainr, icainr-paper (CUDA only), gzip, zstd, sz3, zfp, jpeg2k, "
                          "h264, h265, svd, siren, nerf (default: all)")
    ben.add_argument("--out-dir", default=os.path.join("benchmarks", "results"),
                     help="where bench_<tag>.{csv,md,json,png} go (default: benchmarks/results)")
    ben.add_argument("--haxby", metavar="DIR",
                     help="Haxby slice directory (bold.nii.gz, mask.nii.gz, "
                          "attributes_literal.txt): benchmarked as one more run, with "
                          "decoding (CTA)")
    ben.add_argument("--inr-steps", type=_positive_int, default=300, metavar="N",
                     help="training steps of the SIREN and NeRF baselines (default: 300)")
    ben.add_argument("--tag", type=_tag, help="output name bench_<tag>.* "
                                             "(default: the first input's name)")
    return parser


def _cmd_compress(args):
    from .codec.api import compress

    res = compress(args.in_file, args.out_file, ratio=args.ratio, preset=args.preset,
                   config=args.config, device=args.device, seed=args.seed, force=args.force,
                   progress=not args.quiet, measure=not args.no_measure,
                   lossless=args.lossless, max_error=args.max_error, psnr=args.psnr)
    for note in res["warnings"]:
        print(f"icainr: warning: {note}", file=sys.stderr)
    if args.json:
        print(json.dumps(res, indent=2, default=str))
        return
    print(f"wrote {args.out_file}: {res['file_bytes']:,} bytes, {_mode(res)}")
    print(f"  ratio {res['ratio']:.1f} (raw {res['raw_bytes']:,}-byte array in its stored dtype)"
          f"; {res['ratio_disk']:.1f} against the input file on disk")
    if res.get("bit_exact"):
        print("  decoded bit for bit, NaN and Inf included (checked before writing)")
    if res["psnr"] is not None:
        ssim = "n/a (an axis under 3 voxels)" if res["ssim"] is None else f"{res['ssim']:.4f}"
        if res["ssim"] is not None and res["ssim_volumes"] < res["n_volumes"]:
            ssim += f" on {res['ssim_volumes']} of {res['n_volumes']} volumes"
        print(f"  PSNR {res['psnr']:.2f} dB (every volume), SSIM {ssim} (brain mask), "
              f"largest error {res['max_error']:.4g}")
    print(f"  fit {res['fit_seconds']:.1f} s on {res['device']}, total {res['total_seconds']:.1f} s;"
          f" {res['model']}")


def _mode(res):
    if res["mode"] == "lossless":
        return "lossless"
    if res["mode"] == "error-bounded":
        return f"every value within {res['bound']:g}"
    return "lossy"


def _cmd_decompress(args):
    from .codec.api import decompress

    res = decompress(args.in_file, args.out_file, device=args.device, force=args.force)
    print(f"wrote {args.out_file}: shape {tuple(res['shape'])}, {res['dtype']}, "
          f"{res['seconds']:.1f} s")


def _cmd_info(args):
    from .codec.api import info

    res = info(args.in_file)
    if args.json:
        print(json.dumps(res, indent=2, default=str))
        return
    img = res["image"]
    print(f"{res['file']}: .icainr format version {res['format_version']}, "
          f"{res['file_bytes']:,} bytes")
    print(f"  image     {tuple(img['shape'])} {img['dtype']}"
          + (f" (scl_slope {img['scl_slope']:g}, scl_inter {img['scl_inter']:g})"
             if img["scl_slope"] is not None else "")
          + f", zooms {tuple(img['zooms'])}, units {tuple(img['xyzt_units'])}, TR {img['tr']:g}")
    print(f"  source    {img['source_name']} ({img['source_bytes']:,} bytes)")
    print(f"  ratio     {res['ratio']:.2f} against the raw array ({res['raw_bytes']:,} bytes), "
          f"{res['ratio_disk']:.2f} against the source file")
    print("  sections  " + ", ".join(f"{t} {n:,} B" for t, n in res["sections"].items())
          + f", header and framing {res['header_bytes']:,} B")
    print(f"  mode      {_mode(res)}")
    print(f"  model     {res['model']}")
    voxels = f"{res['n_voxels']:,} in the mask; " if res["n_voxels"] is not None else ""
    print(f"  voxels    {voxels}preset {res['config'].get('name')}, "
          f"seed {res['seed']}, fitted on {res['fit_device']}")
    print("  software  " + ", ".join(f"{k} {v}" for k, v in (res["software"] or {}).items()))


def _cmd_bench(args):
    import shlex

    from .bench.methods import parse_methods
    from .bench.runner import run_bench
    from .codec.errors import ICAINRError

    try:
        methods = parse_methods(args.methods)
    except ValueError as exc:
        raise ICAINRError(None, f"--methods: {exc}") from None
    for path, what in ((args.events, "events"), (args.haxby, "haxby")):
        if path is not None and not (os.path.isdir(path) if what == "haxby"
                                     else os.path.isfile(path)):
            raise ICAINRError(path, f"no such {'directory' if what == 'haxby' else 'file'}")
    command = "icainr " + " ".join(shlex.quote(a) for a in args.argv)
    try:
        res = run_bench(args.in_file, events=args.events, ratios=args.ratios, methods=methods,
                        out_dir=args.out_dir, haxby=args.haxby, inr_steps=args.inr_steps,
                        tag=args.tag, command=command)
    except FileNotFoundError as exc:
        raise ICAINRError(exc.filename, "no such file or folder") from None
    except ValueError as exc:
        raise ICAINRError(None, str(exc).splitlines()[0] if str(exc) else "invalid input") \
            from None
    for path in res["paths"].values():
        print(f"wrote {path}")


class Terminated(BaseException):
    """SIGTERM, turned into an exception so that temporary files are removed on the way out."""


def _terminate(signum, frame):
    raise Terminated()


def main(argv=None):
    import signal

    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    from .codec.errors import ICAINRError

    handlers = {"compress": _cmd_compress, "decompress": _cmd_decompress, "info": _cmd_info,
                "bench": _cmd_bench}
    previous = signal.signal(signal.SIGTERM, _terminate) \
        if threading_main() else None
    try:
        handlers[args.command](args)
    except ICAINRError as exc:
        if os.environ.get("ICAINR_DEBUG"):
            raise
        print(f"icainr: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("icainr: interrupted; no output was written", file=sys.stderr)
        return 130
    except Terminated:
        print("icainr: terminated; no output was written", file=sys.stderr)
        return 143
    except MemoryError:
        if os.environ.get("ICAINR_DEBUG"):
            raise
        print(f"icainr: error: {args.in_file}: not enough memory for this run", file=sys.stderr)
        return 2
    except OSError as exc:
        if os.environ.get("ICAINR_DEBUG"):
            raise
        where = exc.filename or getattr(args, "out_file", None) or args.in_file
        print(f"icainr: error: {where}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0


def threading_main():
    """Signal handlers can only be set from the main thread."""
    import threading

    return threading.current_thread() is threading.main_thread()


if __name__ == "__main__":
    sys.exit(main())
