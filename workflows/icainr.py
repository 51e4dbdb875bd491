"""``init_icainr_wf``: registration -> compress -> decompress -> QC -> report."""

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

#: what cluster plugins are given for the compression node when it is a GPU node
DEFAULT_GPU_PLUGIN_ARGS = {
    "sbatch_args": "--gres=gpu:1",  # SLURM, SLURMGraph
    "qsub_args": "-l gpus=1",       # PBS/Torque; SGE sites usually use -l gpu=1 instead
}


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


def init_icainr_wf(ratio=100.0, preset="default", config_file=None, device="auto", seed=0,
                   register=True, from_fmriprep=False, run_fla=True, run_fca=True,
                   atlas="auto", atlas_file=None, omp_nthreads=1, compress_mem_gb=4.0, gpu_plugin_args=None,
                   name="icainr_wf"):
    """Build the whole per-run workflow.

    Parameters
    ----------
    ratio : float
        Target compression ratio (raw array bytes in the stored dtype / file bytes).
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
    inputnode = pe.Node(niu.IdentityInterface(fields=["bold_file", "events_file"]),
                        name="inputnode")
    outputnode = pe.Node(niu.IdentityInterface(fields=[
        "registered_file", "compressed_file", "decompressed_file", "report_file", "qc_json",
        "ratio", "psnr", "registration_json"]), name="outputnode")

    use_gpu = cuda_node(device)
    compress = pe.Node(ICAINRCompress(ratio=ratio, preset=preset, device=device, seed=seed,
                                      use_gpu=use_gpu),
                       name="compress", n_procs=omp_nthreads, mem_gb=compress_mem_gb)
    if config_file:
        compress.inputs.config_file = config_file
    if use_gpu:
        compress.plugin_args = dict(gpu_plugin_args or DEFAULT_GPU_PLUGIN_ARGS)
    decompress = pe.Node(ICAINRDecompress(device=device), name="decompress",
                         n_procs=omp_nthreads, mem_gb=2.0)
    report = pe.Node(QCReport(), name="qc_report", mem_gb=2.0)

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
    ])
    if run_fla:
        fla = pe.Node(FirstLevelQC(), name="fla_qc", mem_gb=2.0)
        wf.connect([(source, fla, [(field, "original")]),
                    (decompress, fla, [("out_file", "decompressed")]),
                    (inputnode, fla, [("events_file", "events_file")]),
                    (fla, report, [("out_json", "fla_json"), ("out_figure", "fla_figure")])])
    if run_fca:
        in_mni = bool(register or from_fmriprep)
        fca = pe.Node(ConnectivityQC(in_mni=in_mni, atlas=atlas), name="fca_qc", mem_gb=2.0)
        if atlas_file:
            fca.inputs.atlas_file = atlas_file
        wf.connect([(source, fca, [(field, "original")]),
                    (decompress, fca, [("out_file", "decompressed")]),
                    (fca, report, [("out_json", "fca_json"), ("out_figure", "fca_figure")])])
    return wf
