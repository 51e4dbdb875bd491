"""``icainr-bids bids_dir output_dir {participant,group}``: the BIDS App."""

import argparse
import os
import sys

from nipype_icainr import __version__


def build_parser():
    p = argparse.ArgumentParser(
        prog="icainr-bids",
        description="nipype-icainr BIDS App: ICA-INR compression of every BOLD run, with QC.")
    p.add_argument("bids_dir", help="the BIDS dataset (never written to)")
    p.add_argument("output_dir", help="the derivatives dataset to write")
    p.add_argument("analysis_level", choices=["participant", "group"])
    p.add_argument("--version", action="version", version=f"icainr-bids {__version__}")
    g = p.add_argument_group("selecting runs")
    g.add_argument("--participant-label", "--participant_label", nargs="+", metavar="LABEL",
                   help="participants to process, with or without 'sub-' (default: all)")
    g.add_argument("--session-label", nargs="+", metavar="LABEL")
    g.add_argument("--task", help="only runs of this task")
    g.add_argument("--bids-filter-file", metavar="FILE",
                   help='JSON {"bold": {entity: value}} applied to the BOLD query')
    g.add_argument("--skip-bids-validation", action="store_true",
                   help="do not validate the input with pybids")
    g.add_argument("--fmriprep-dir", metavar="DIR",
                   help="use these fMRIPrep derivatives (space-MNI152NLin2009cAsym "
                        "desc-preproc BOLD) instead of registering")
    g.add_argument("--run-fmriprep", action="store_true",
                   help="first preprocess the participants with fMRIPrep (runs the "
                        "fmriprep-docker wrapper, which needs Docker and a FreeSurfer "
                        "license), then compress its MNI-space BOLD")
    g.add_argument("--fs-license-file", metavar="FILE", help="for --run-fmriprep")
    c = p.add_argument_group("codec and QC")
    c.add_argument("--ratio", type=float, default=100.0, help="target ratio (default 100)")
    c.add_argument("--preset", default="default",
                   help="codec preset: default, decoding (for MVPA), network or paper")
    c.add_argument("--config", metavar="FILE", help="codec YAML configuration")
    c.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--space", choices=["native", "MNI"], default="native",
                   help="native: compress the run as acquired (restorable to the original "
                        "file); MNI: register to the 64x64x48 template grid first")
    c.add_argument("--no-fla", action="store_true", help="skip the first-level QC")
    c.add_argument("--no-fca", action="store_true", help="skip the connectivity QC")
    c.add_argument("--save-decompressed", action="store_true",
                   help="also write the decompressed (and registered) NIfTI")
    r = p.add_argument_group("resources")
    r.add_argument("-w", "--work-dir", default=None,
                   help="Nipype working directory (default: ./work); reruns resume from it")
    r.add_argument("--nprocs", "--n-cpus", type=int, default=os.cpu_count() or 1)
    r.add_argument("--omp-nthreads", type=int, default=None)
    r.add_argument("--mem-mb", "--mem_mb", type=int, default=None)
    r.add_argument("--use-plugin", metavar="FILE",
                   help="YAML with 'plugin' and 'plugin_args' (e.g. SLURM)")
    return p


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    from nipype_icainr.codec.errors import ICAINRError

    try:
        if args.analysis_level == "participant":
            from .participant import run_participant
            return run_participant(args)
        from .group import run_group
        return run_group(args)
    except ICAINRError as exc:
        if os.environ.get("ICAINR_DEBUG"):
            raise
        print(f"icainr-bids: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
