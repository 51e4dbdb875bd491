"""Participant level: every selected run -> workflow -> derivatives."""

import glob
import os
import sys
import time

import yaml

from nipype_icainr.codec.errors import ICAINRError

from .derivatives import container_info, write_dataset_description, write_run_record
from .queries import collect_runs, find_fmriprep_bold, load_layout, read_filter_file


def _inside(path, folder):
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder + os.sep)


def check_output_dir(output_dir, bids_dir):
    """Create and check the output folder; never inside the input dataset (but derivatives/)."""
    if _inside(output_dir, bids_dir) and not _inside(output_dir,
                                                     os.path.join(bids_dir, "derivatives")):
        raise ICAINRError(output_dir, "is inside the BIDS dataset; nothing is written there "
                                      "(use a folder outside it, or its derivatives/)")
    try:
        os.makedirs(output_dir, exist_ok=True)
    except OSError as exc:
        raise ICAINRError(output_dir, f"cannot create the output folder ({exc.strerror})") \
            from None
    if not os.access(output_dir, os.W_OK | os.X_OK):
        raise ICAINRError(output_dir, "the output folder is not writable")


def acquire_lock(folder, what):
    """An exclusive lock on ``folder`` for this process's life (``fcntl.flock``).

    A second ``icainr-bids`` on the same work or output folder is refused with one
    line instead of racing the first one's files.
    """
    import fcntl

    os.makedirs(folder, exist_ok=True)
    handle = open(os.path.join(folder, ".icainr-bids.lock"), "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise ICAINRError(folder, f"another icainr-bids is using this {what}; wait for it to "
                                  "finish or choose another") from None
    return handle


def check_run_inputs(runs, run_fla):
    """Everything the workflow will read, checked before any compression starts."""
    import nibabel as nib

    from .queries import check_events

    for run in runs:
        try:
            img = nib.load(run["bold"])
        except Exception as exc:
            raise ICAINRError(run["bold"], f"not a readable NIfTI image "
                                           f"({str(exc).splitlines()[0][:120]})") from None
        shape = img.shape
        if len(shape) < 4 or any(s != 1 for s in shape[4:]) or shape[3] < 2:
            raise ICAINRError(run["bold"], f"not a 4D run of at least 2 volumes: shape {shape}")
        tr_header = float(img.header.get_zooms()[3])
        tr_sidecar = run["metadata"].get("RepetitionTime")
        if not (tr_header > 0 or (isinstance(tr_sidecar, (int, float)) and tr_sidecar > 0)):
            raise ICAINRError(run["bold"], "has no repetition time (neither the NIfTI header "
                                           "nor RepetitionTime in its sidecar)")
        if run_fla:
            if run["events"] is None:
                raise ICAINRError(run["bold"], "has no events.tsv, which FLA needs "
                                               "(add the events or pass --no-fla)")
            check_events(run["events"])


def crash_summary(crash_file):
    """The last line of a Nipype crash file's traceback: the error itself."""
    try:
        with open(crash_file, errors="replace") as fh:
            lines = [line.strip() for line in fh if line.strip()]
    except OSError:
        return ""
    for line in reversed(lines):
        if not line.startswith(("Traceback", "File ", "^", "~")):
            return line[:240]
    return ""


def read_plugin(path, nprocs, mem_mb):
    """``--use-plugin`` YAML (``plugin``, ``plugin_args``), else MultiProc with the resources."""
    if path is None:
        # forkserver: forking after PyTorch/OpenMP threads started can deadlock the workers
        args = {"n_procs": nprocs, "raise_insufficient": False, "mp_context": "forkserver"}
        if mem_mb:
            args["memory_gb"] = mem_mb / 1024.0
        return "MultiProc", args
    try:
        with open(path) as fh:
            spec = yaml.safe_load(fh) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ICAINRError(path, f"cannot read the plugin file ({str(exc).splitlines()[0]})") \
            from None
    if not isinstance(spec, dict) or "plugin" not in spec:
        raise ICAINRError(path, "the plugin file needs a 'plugin' key (e.g. SLURM)")
    args = dict(spec.get("plugin_args") or {})
    if spec["plugin"] in ("MultiProc", "LegacyMultiProc"):
        args.setdefault("n_procs", nprocs)
        args.setdefault("mp_context", "forkserver")
        if mem_mb:
            args.setdefault("memory_gb", mem_mb / 1024.0)
    return spec["plugin"], args


def target_of(args):
    """The compression target other than ``--ratio``, checked before anything runs
    (``None`` for a ratio target)."""
    if getattr(args, "lossless", False):
        return {"lossless": True}
    if getattr(args, "max_error", None) is not None:
        from nipype_icainr.codec.api import parse_max_error

        parse_max_error(args.max_error)  # refused now, in one line, if it is not a bound
        return {"max_error": str(args.max_error).strip()}
    if getattr(args, "psnr", None) is not None:
        if not 0 < args.psnr < 200:
            raise ICAINRError(None, f"--psnr must be between 0 and 200 dB, got {args.psnr}")
        return {"psnr": float(args.psnr)}
    return None


def run_participant(args):
    target = target_of(args)
    bids_dir = os.path.abspath(args.bids_dir)
    output_dir = os.path.abspath(args.output_dir)
    work_dir = os.path.abspath(args.work_dir or "work")
    if _inside(work_dir, bids_dir):
        raise ICAINRError(work_dir, "the work directory is inside the BIDS dataset")
    layout = load_layout(bids_dir, validate=not args.skip_bids_validation)
    check_output_dir(output_dir, bids_dir)
    filters = read_filter_file(args.bids_filter_file)
    runs = collect_runs(layout, args.participant_label, args.session_label, args.task, filters)
    run_fla = not args.no_fla
    check_run_inputs(runs, run_fla)
    if args.config and not os.path.isfile(args.config):
        raise ICAINRError(args.config, "no such configuration file")
    from nipype_icainr.codec.config import resolve_config

    config = resolve_config(args.preset, args.config)  # a bad one is refused now
    locks = [acquire_lock(work_dir, "work directory"),
             acquire_lock(output_dir, "output folder")]

    fmriprep_dir = args.fmriprep_dir
    if args.run_fmriprep:
        from .fmriprep import fmriprep_docker_args, run_fmriprep_docker

        fmriprep_dir = fmriprep_dir or os.path.join(os.path.dirname(output_dir), "fmriprep")
        argv = fmriprep_docker_args(bids_dir, fmriprep_dir, os.path.join(work_dir, "fmriprep"),
                                    args.participant_label, args.nprocs, args.mem_mb,
                                    args.fs_license_file)
        print("icainr-bids: preprocessing with fMRIPrep: fmriprep-docker " + " ".join(argv))
        if run_fmriprep_docker(argv):
            raise ICAINRError(fmriprep_dir, "fMRIPrep (fmriprep-docker) failed")
    fmriprep_files = None
    if fmriprep_dir:
        fmriprep_files = {r["bold"]: find_fmriprep_bold(fmriprep_dir, r["entities"]) for r in runs}

    from .workflow import init_participant_wf

    omp = args.omp_nthreads or max(1, min(args.nprocs, 8))
    wf = init_participant_wf(runs, output_dir, ratio=args.ratio, preset=args.preset,
                             config_file=os.path.abspath(args.config) if args.config else None,
                             device=args.device, seed=args.seed,
                             space="MNI" if args.space == "MNI" else "native",
                             fmriprep_files=fmriprep_files, run_fla=run_fla,
                             run_fca=not args.no_fca, save_decompressed=args.save_decompressed,
                             omp_nthreads=omp, target=target,
                             mem_gb=args.mem_mb / 1024.0 if args.mem_mb else None)
    wf.base_dir = work_dir
    crash_dir = os.path.join(output_dir, "logs")
    wf.config["execution"].update({"crashdump_dir": crash_dir, "crashfile_format": "txt",
                                   "remove_unnecessary_outputs": False})
    plugin, plugin_args = read_plugin(args.use_plugin, args.nprocs, args.mem_mb)
    if "LOGNAME" not in os.environ:  # Nipype's batch plugins name jobs after it
        import getpass

        os.environ["LOGNAME"] = getpass.getuser()
    write_dataset_description(output_dir, bids_dir, container_info())
    options = {k: v for k, v in sorted(vars(args).items()) if k != "argv"}
    write_run_record(output_dir, getattr(args, "argv", []), options, runs, config)
    before = set(glob.glob(os.path.join(crash_dir, "crash-*")))
    t0 = time.perf_counter()
    try:
        wf.run(plugin=plugin, plugin_args=plugin_args)
    except RuntimeError as exc:
        crashes = sorted(set(glob.glob(os.path.join(crash_dir, "crash-*"))) - before)
        cause = crash_summary(crashes[0]) if crashes else str(exc).splitlines()[0][:200]
        where = f" (crash files in {crash_dir}, first {os.path.basename(crashes[0])})" \
            if crashes else ""
        print(f"icainr-bids: error: {len(crashes) or 'some'} node(s) failed{where}: {cause}",
              file=sys.stderr)
        return 1
    finally:
        for lock in locks:
            lock.close()
    print(f"icainr-bids: {len(runs)} run(s) done in {time.perf_counter() - t0:.1f} s; "
          f"derivatives in {output_dir}")
    return 0
