"""The participant-level workflow: one ``init_icainr_wf`` per run, then the derivatives sink."""

import json
import re

from nipype.pipeline import engine as pe

from .derivatives import WriteDerivatives, run_prefix


def _node_name(prefix):
    return re.sub(r"[^0-9a-zA-Z]", "_", prefix) + "_wf"


def machine_memory_gb():
    """The machine's physical memory in GB (8 when the system does not say)."""
    import os

    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024 ** 3
    except (ValueError, OSError, AttributeError):
        return 8.0


def init_participant_wf(runs, output_dir, ratio, preset, config_file=None, device="auto",
                        seed=0, space="native", fmriprep_files=None, run_fla=True,
                        run_fca=True, save_decompressed=False, omp_nthreads=1,
                        target=None, mem_gb=None, name="icainr_participant_wf"):
    """One sub-workflow per run (``workflows.init_icainr_wf``) feeding ``WriteDerivatives``.

    ``runs`` come from ``queries.collect_runs``; ``fmriprep_files`` maps a run's
    path to its fMRIPrep MNI-space BOLD when ``--fmriprep-dir`` is used. Each
    compression node's ``mem_gb`` is estimated from its run's header
    (``api.compress_memory_gb``: the run's own grid, or the template's when it
    is registered first), at most ``mem_gb`` (``--mem-mb``; default the
    machine's memory) so that the scheduler can still run it.
    """
    from nipype_icainr.codec.api import compress_memory_gb
    from nipype_icainr.template_grid import GRID_SHAPE
    from workflows import init_icainr_wf

    limit = mem_gb or machine_memory_gb()

    wf = pe.Workflow(name=name)
    for run in runs:
        prefix = run_prefix(run["bold"])
        from_fmriprep = bool(fmriprep_files)
        register = space != "native" and not from_fmriprep
        source = fmriprep_files[run["bold"]] if from_fmriprep else run["bold"]
        need = compress_memory_gb(source, grid=GRID_SHAPE if register else None)
        run_wf = init_icainr_wf(ratio=ratio, preset=preset, config_file=config_file,
                                device=device, seed=seed, register=register,
                                from_fmriprep=from_fmriprep, run_fla=run_fla, run_fca=run_fca,
                                omp_nthreads=omp_nthreads, target=target,
                                compress_mem_gb=min(need, limit), name=_node_name(prefix))
        run_wf.inputs.inputnode.bold_file = source
        if run_fla:
            run_wf.inputs.inputnode.events_file = run["events"]
        sink = pe.Node(WriteDerivatives(
            output_dir=output_dir, source_file=run["bold"], source_relpath=run["relpath"],
            metadata=json.dumps(run["metadata"], default=str),
            space="native" if space == "native" and not from_fmriprep else "MNI152NLin2009cAsym",
            target_ratio=0.0 if target else ratio, preset=preset if not config_file else "custom"),
            name="ds_" + _node_name(prefix), run_without_submitting=True)
        if run["events"]:
            sink.inputs.events_file = run["events"]
        # always copy: a derivative deleted by hand is restored without recomputing anything
        sink.overwrite = True
        wf.connect([(run_wf, sink, [("outputnode.compressed_file", "compressed"),
                                    ("outputnode.qc_json", "qc_json"),
                                    ("outputnode.report_file", "report")])])
        if save_decompressed:
            wf.connect(run_wf, "outputnode.decompressed_file", sink, "decompressed")
            if space != "native" or from_fmriprep:
                wf.connect(run_wf, "outputnode.registered_file", sink, "registered")
    return wf
