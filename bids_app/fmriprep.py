"""``--run-fmriprep``: preprocess with fMRIPrep in Docker through the ``fmriprep-docker`` wrapper."""

import contextlib
import os
import sys


def fmriprep_docker_args(bids_dir, fmriprep_dir, work_dir, participant_labels=None, nprocs=None,
                         mem_mb=None, fs_license_file=None):
    """The ``fmriprep-docker`` arguments that produce the MNI-space BOLD this app reads."""
    argv = [os.path.abspath(bids_dir), os.path.abspath(fmriprep_dir), "participant",
            "--output-spaces", "MNI152NLin2009cAsym", "--fs-no-reconall", "--no-tty",
            "-w", os.path.abspath(work_dir)]
    if participant_labels:
        argv += ["--participant-label"] + [p[4:] if p.startswith("sub-") else p
                                           for p in participant_labels]
    if nprocs:
        argv += ["--nprocs", str(nprocs)]
    if mem_mb:
        argv += ["--mem-mb", str(mem_mb)]
    if fs_license_file:
        argv += ["--fs-license-file", os.path.abspath(fs_license_file)]
    return argv


def run_fmriprep_docker(argv):
    """Run ``fmriprep-docker`` with ``argv`` (it builds and runs the ``docker run`` command)."""
    from fmriprep_docker.__main__ import main as fmriprep_docker_main

    saved = sys.argv
    sys.argv = ["fmriprep-docker"] + list(argv)
    try:
        with contextlib.suppress(SystemExit):
            return fmriprep_docker_main()
    finally:
        sys.argv = saved
    return 1
