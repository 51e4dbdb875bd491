"""``init_icainr_wf``: registration -> compress -> decompress -> QC -> report."""

import math

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

#: what cluster plugins are given for the compression node when it is a GPU node
DEFAULT_GPU_PLUGIN_ARGS = {
    "sbatch_args": "--gres=gpu:1",  # SLURM, SLURMGraph
    "qsub_args": "-l gpus=1",       # PBS/Torque; SGE sites usually use -l gpu=1 instead
}


def batch_args(mem_gb, gpu_args=None):
    """``plugin_args`` of the compression node for batch schedulers: its memory request
    (SLURM ``--mem``, PBS ``-l mem``) from ``mem_gb``, plus ``gpu_args`` for a GPU node.

    Nipype's SLURM and PBS plugins do not turn ``mem_gb`` into a request; these are
    appended to the plugin's own ``sbatch_args``/``qsub_args`` (the later request wins).
    """
    mb = int(math.ceil(mem_gb * 1024))
    args = {"sbatch_args": f"--mem={mb}M", "qsub_args": f"-l mem={mb}mb"}
    for key, value in (gpu_args or {}).items():
        args[key] = f"{args[key]} {value}" if key in args else value
    return args


def cuda_node(device):
    """Whether the compression node should be scheduled as a GPU node.

    True for ``device="cuda"``; for ``"auto"`` only when torch sees a CUDA device
    here, so that MultiProc never asks for a GPU the machine does not have.
    """
    if device == "cuda":
        return True
    if device == "auto":
        try:
            import torch
        except ImportError:
            return False
        return bool(torch.cuda.is_available())
    return False


CITATION = ("Li et al. (2024), A Compact Implicit Neural Representation for Efficient Storage "
            "of Massive 4D Functional Magnetic Resonance Imaging")


def target_text(ratio, target=None):
    """How the compression target reads in a methods paragraph."""
    target = target or {}
    if target.get("lossless"):
        return "losslessly (the stored voxel values exactly)"
    if target.get("max_error") is not None:
        bound = str(target["max_error"])
        unit = (" stored units" if bound.endswith("u") else " (physical units)")
        return f"with every voxel value within {bound.rstrip('u')}{unit} of the original"
    if target.get("psnr") is not None:
        return (f"to the smallest file whose PSNR inside the brain mask is at least "
                f"{float(target['psnr']):g} dB")
    return (f"at a target ratio of {ratio:g} (raw voxel array in its stored data type over "
            "the compressed file)")


def methods_text(ratio, preset, config_file=None, register=False, from_fmriprep=False,
                 run_fla=True, run_fca=True, target=None):
    """The workflow's methods paragraph (``__desc__``), ready to paste into a paper."""
    from nipype_icainr.codec.config import resolve_config
    from nipype_icainr.provenance import analysis_versions

    v = analysis_versions()
    cfg = resolve_config(preset, config_file)
    steps = []
    if from_fmriprep:
        steps.append("The fMRIPrep MNI152NLin2009cAsym BOLD series was resampled onto a "
                     "64 x 64 x 48 grid of 3 x 3 x 3.3 mm voxels (nilearn "
                     f"{v.get('nilearn', '')}).")
    elif register:
        steps.append("Head motion was corrected by a rigid registration of every volume to the "
                     "middle one, the mean EPI was registered to the MNI152 template with "
                     f"SyN (ANTsPy {v.get('antspyx', '')}), and every volume was resampled once "
                     "onto a 64 x 64 x 48 grid of 3 x 3 x 3.3 mm voxels, motion and "
                     "normalisation composed.")
    desc = cfg.get("description", "").strip()
    steps.append(f"The BOLD series was compressed with nipype-icainr {v['nipype_icainr']} "
                 f"(ICA-INR, {CITATION}) {target_text(ratio, target)}, with the "
                 f"'{cfg.get('name', 'custom')}' configuration" + (f": {desc}" if desc else "")
                 + ".")
    qc_parts = ["PSNR and SSIM inside the brain mask"]
    if run_fla:
        qc_parts.append("the change of every condition's first-level GLM t-map (nilearn "
                        "FirstLevelModel)")
    if run_fca:
        qc_parts.append("the change of region-to-region correlations")
    steps.append("Fidelity of the decompressed series was measured as " + ", ".join(qc_parts)
                 + ".")
    # Only the packages installed are named: an image built without PyTorch has none.
    names = [("Nipype", "nipype"), ("nilearn", "nilearn"), ("NumPy", "numpy"),
             ("SciPy", "scipy"), ("scikit-learn", "scikit_learn"), ("nibabel", "nibabel"),
             ("PyTorch", "torch"), ("constriction", "constriction"),
             ("imagecodecs", "imagecodecs")]
    steps.append("Software: " + ", ".join(f"{label} {v[key]}" for label, key in names
                                          if v.get(key)) + ".")
    return " ".join(steps)


def init_icainr_wf(ratio=100.0, preset="default", config_file=None, device="auto", seed=0,
                   register=True, from_fmriprep=False, run_fla=True, run_fca=True,
                   atlas="auto", atlas_file=None, omp_nthreads=1, compress_mem_gb=4.0, gpu_plugin_args=None,
                   target=None, name="icainr_wf"):
    """Build the whole per-run workflow.

    Parameters
    ----------
    ratio : float
        Target compression ratio (raw array bytes in the stored dtype / file bytes).
    target : dict, optional
        Another target instead of ``ratio``: ``{"lossless": True}``,
        ``{"max_error": E}`` (physical units, or ``"<x>u"`` stored units) or
        ``{"psnr": P}`` (dB); see ``ICAINRCompress``.
    preset, config_file : str
        Codec preset name, or a YAML configuration.
    device : {"auto", "cpu", "cuda"}
        Where the network is fitted. The compression node is flagged as a GPU node
        (``use_gpu``) only when it will use CUDA (see ``cuda_node``).
    seed : int
    register : bool
        Run ``init_registration_wf`` first (else compress the input as it is).
    from_fmriprep : bool
        The input is an fMRIPrep MNI-space derivative: resample only.
    run_fla, run_fca : bool
        Add the FirstLevelQC (needs ``events_file``) and ConnectivityQC nodes.
    atlas : {"auto", "power2011", "kmeans"}
        ConnectivityQC's atlas when ``atlas_file`` is not given (``auto``: Power 2011
        spheres on the MNI grid, k-means parcels otherwise; both work offline).
    atlas_file : str, optional
        A 3D integer atlas for ConnectivityQC.
    omp_nthreads : int
        Threads per node.
    compress_mem_gb : float
        The compression node's ``mem_gb`` for the scheduler (MultiProc, SLURM);
        ``nipype_icainr.codec.api.compress_memory_gb`` estimates it from a run's
        header (the BIDS App does, per run).
    gpu_plugin_args : dict, optional
        ``plugin_args`` of the compression node when it is a GPU node (default
        ``DEFAULT_GPU_PLUGIN_ARGS``: a GPU request for SLURM and PBS).
    name : str

    Inputs
    ------
    bold_file
        4D BOLD run.
    events_file
        BIDS events.tsv of the run (FLA).

    Outputs
    -------
    registered_file
        The run on the template grid (or the input when ``register`` is False).
    compressed_file
        The ``.icainr`` file.
    decompressed_file
        The decompressed NIfTI.
    report_file
        The HTML QC report.
    qc_json
        Every QC figure as JSON.
    ratio, psnr
        Achieved ratio and PSNR.
    registration_json
        Registration quality (native inputs).
    """
    from nipype_icainr.interfaces import (ConnectivityQC, FirstLevelQC, ICAINRCompress,
                                          ICAINRDecompress, QCReport)

    from .registration import init_registration_wf

    wf = pe.Workflow(name=name)
    wf.__desc__ = methods_text(ratio, preset, config_file, register, from_fmriprep, run_fla,
                               run_fca, target=target)
    inputnode = pe.Node(niu.IdentityInterface(fields=["bold_file", "events_file"]),
                        name="inputnode")
    outputnode = pe.Node(niu.IdentityInterface(fields=[
        "registered_file", "compressed_file", "decompressed_file", "report_file", "qc_json",
        "ratio", "psnr", "registration_json"]), name="outputnode")

    use_gpu = cuda_node(device)
    targets = {k: v for k, v in (target or {}).items() if v not in (None, False)}
    compress = pe.Node(ICAINRCompress(preset=preset, device=device, seed=seed,
                                      use_gpu=use_gpu, **(targets or {"ratio": ratio})),
                       name="compress", n_procs=omp_nthreads, mem_gb=compress_mem_gb)
    if config_file:
        compress.inputs.config_file = config_file
    compress.plugin_args = batch_args(compress_mem_gb,
                                      (gpu_plugin_args or DEFAULT_GPU_PLUGIN_ARGS)
                                      if use_gpu else None)
    decompress = pe.Node(ICAINRDecompress(device=device), name="decompress",
                         n_procs=omp_nthreads, mem_gb=2.0)
    report = pe.Node(QCReport(methods=wf.__desc__), name="qc_report", mem_gb=2.0)
    qc_files = pe.Node(niu.Merge(2, ravel_inputs=True), name="qc_files",
                       run_without_submitting=True)

    if register or from_fmriprep:
        reg_wf = init_registration_wf(from_fmriprep=from_fmriprep, omp_nthreads=omp_nthreads,
                                      seed=seed)
        wf.connect([(inputnode, reg_wf, [("bold_file", "inputnode.bold_file")])])
        source, field = reg_wf, "outputnode.bold_grid"
        if not from_fmriprep:
            wf.connect([(reg_wf, report, [("outputnode.registration_json", "registration_json")]),
                        (reg_wf, outputnode, [("outputnode.registration_json",
                                               "registration_json")])])
    else:
        source, field = inputnode, "bold_file"

    wf.connect([
        (source, compress, [(field, "in_file")]),
        (source, outputnode, [(field, "registered_file")]),
        (compress, decompress, [("out_file", "in_file")]),
        (source, report, [(field, "original")]),
        (decompress, report, [("out_file", "decompressed"), ("seconds", "decompress_seconds")]),
        (compress, report, [("out_file", "compressed"), ("fit_seconds", "fit_seconds"),
                            ("total_seconds", "compress_seconds")]),
        (compress, outputnode, [("out_file", "compressed_file"), ("ratio", "ratio")]),
        (decompress, outputnode, [("out_file", "decompressed_file")]),
        (report, outputnode, [("out_report", "report_file"), ("out_json", "qc_json"),
                              ("psnr", "psnr")]),
        (qc_files, report, [("out", "qc_files")]),
    ])
    if run_fla:
        fla = pe.Node(FirstLevelQC(), name="fla_qc", mem_gb=2.0)
        wf.connect([(source, fla, [(field, "original")]),
                    (decompress, fla, [("out_file", "decompressed")]),
                    (inputnode, fla, [("events_file", "events_file")]),
                    (fla, qc_files, [("out_json", "in1")])])
    else:
        qc_files.inputs.in1 = []
    if run_fca:
        in_mni = bool(register or from_fmriprep)
        fca = pe.Node(ConnectivityQC(in_mni=in_mni, atlas=atlas), name="fca_qc", mem_gb=2.0)
        if atlas_file:
            fca.inputs.atlas_file = atlas_file
        wf.connect([(source, fca, [(field, "original")]),
                    (decompress, fca, [("out_file", "decompressed")]),
                    (fca, qc_files, [("out_json", "in2")])])
    else:
        qc_files.inputs.in2 = []
    return wf
