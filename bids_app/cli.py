"""``icainr-bids bids_dir output_dir {participant,group}``: the BIDS App."""

import argparse
import os
import sys

from nipype_icainr import __version__
from nipype_icainr.cli import add_target_arguments


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
    add_target_arguments(c, ratio_default=100.0)
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


class Terminated(BaseException):
    """SIGTERM, turned into an exception so that the app can take its workers down."""


def _terminate(signum, frame):
    raise Terminated()


def stop_children():
    """Terminate every process this one started (Nipype's forkserver and its workers).

    multiprocessing's resource tracker is killed last, with SIGKILL: asked to stop,
    it would print a traceback or a warning about the semaphores it was tracking.
    """
    import psutil

    def tracker(proc):
        try:
            return "resource_tracker" in " ".join(proc.cmdline())
        except psutil.Error:
            return False

    everything = psutil.Process().children(recursive=True)
    trackers = [c for c in everything if tracker(c)]
    children = [c for c in everything if c not in trackers]
    for child in children:
        try:
            child.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(children, timeout=5)
    for child in alive + trackers:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass


def main(argv=None):
    import signal

    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    from nipype_icainr.codec.errors import ICAINRError

    previous = signal.signal(signal.SIGTERM, _terminate)
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
    except (KeyboardInterrupt, Terminated) as exc:
        import logging

        # the worker pool's threads would log the workers' deaths as tracebacks
        logging.disable(logging.CRITICAL)
        stop_children()
        what = "interrupted" if isinstance(exc, KeyboardInterrupt) else "terminated"
        print(f"icainr-bids: {what}; workers stopped, completed derivatives kept, a rerun "
              "with the same -w resumes", file=sys.stderr, flush=True)
        sys.stdout.flush()
        # leave now: the pool's management threads must not print after this line
        os._exit(130 if isinstance(exc, KeyboardInterrupt) else 143)
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
