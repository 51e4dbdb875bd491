"""``init_registration_wf``: native BOLD -> the 64 x 64 x 48 MNI152 template grid."""

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe


def init_registration_wf(from_fmriprep=False, omp_nthreads=1, mc_transform="QuickRigid",
                         norm_transform="SyN", seed=0, name="registration_wf"):
    """Build the registration workflow, fMRIPrep style, with ANTsPy.

    Native runs: head-motion correction of every volume to the middle volume
    (ANTs rigid), SyN registration of the mean motion-corrected EPI to nilearn's
    MNI152 brain, then one resampling of every volume with motion and
    normalisation composed (Lanczos) onto the grid of
    ``nipype_icainr.template_grid``. With ``from_fmriprep``, the input is
    fMRIPrep's ``space-MNI152NLin2009cAsym_desc-preproc_bold`` and is only resampled.

    Parameters
    ----------
    from_fmriprep : bool
        The input is already in MNI space (fMRIPrep derivatives).
    omp_nthreads : int
        ITK threads per node.
    mc_transform, norm_transform : str
        ANTs transform types for motion correction and normalisation.
    seed : int
        ANTs random seed.
    name : str

    Inputs
    ------
    bold_file
        4D BOLD run (native space, or fMRIPrep MNI-space derivative).

    Outputs
    -------
    bold_grid
        The run on the 64 x 64 x 48 grid, same dtype and scaling as the input.
    registration_json
        Registration quality (Dice of brain masks), absent (``None``) with ``from_fmriprep``.
    confounds_file
        Motion parameters and framewise displacement (native runs).
    """
    from nipype_icainr.interfaces.registration import (ApplyTransformsToGrid, MotionCorrect,
                                                       RegisterToTemplate, ResampleToGrid)

    wf = pe.Workflow(name=name)
    inputnode = pe.Node(niu.IdentityInterface(fields=["bold_file"]), name="inputnode")
    outputnode = pe.Node(niu.IdentityInterface(
        fields=["bold_grid", "registration_json", "confounds_file"]), name="outputnode")
    if from_fmriprep:
        resample = pe.Node(ResampleToGrid(), name="resample_to_grid", mem_gb=2.0)
        wf.connect([(inputnode, resample, [("bold_file", "in_file")]),
                    (resample, outputnode, [("out_file", "bold_grid")])])
        return wf

    mc = pe.Node(MotionCorrect(transform=mc_transform, num_threads=omp_nthreads, seed=seed),
                 name="motion_correct", n_procs=omp_nthreads, mem_gb=1.5)
    norm = pe.Node(RegisterToTemplate(transform=norm_transform, num_threads=omp_nthreads,
                                      seed=seed),
                   name="register_to_template", n_procs=omp_nthreads, mem_gb=2.0)
    apply = pe.Node(ApplyTransformsToGrid(num_threads=omp_nthreads), name="resample_to_grid",
                    n_procs=omp_nthreads, mem_gb=2.0)
    wf.connect([
        (inputnode, mc, [("bold_file", "in_file")]),
        (mc, norm, [("mean_file", "moving_file")]),
        (inputnode, apply, [("bold_file", "in_file")]),
        (mc, apply, [("transforms", "motion_transforms")]),
        (norm, apply, [("transforms", "template_transforms")]),
        (apply, outputnode, [("out_file", "bold_grid")]),
        (norm, outputnode, [("report_json", "registration_json")]),
        (mc, outputnode, [("confounds_file", "confounds_file")]),
    ])
    return wf
