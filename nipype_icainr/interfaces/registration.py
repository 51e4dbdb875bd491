"""fMRIPrep-style registration with ANTsPy (antspyx): motion correction, normalisation to
MNI152, and one resampling of every volume onto the template grid.

ANTsPy is used because it ships the ANTs registration engine (the one fMRIPrep
relies on) as a pip wheel, with SyN for the EPI -> MNI warp; no external
binaries are needed, so it runs the same in CI, in the container and on a cluster.
"""

import json
import os
import shutil

import numpy as np
from nipype.interfaces.base import (BaseInterfaceInputSpec, File, InputMultiObject,
                                    OutputMultiObject, SimpleInterface, TraitedSpec, traits)


def _threads(n):
    os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = str(max(1, int(n)))


def write_like(values, source_img, affine, out_file, tr=None, xform_code=None):
    """Write ``values`` (physical units) on ``affine`` keeping the source's dtype and scaling.

    Integer inputs stay integers with their ``scl_slope``/``scl_inter`` (resampled
    values are rounded to one stored unit, for the studyforrest run 75.5 against a
    noise level of about 420); float inputs stay float. TR and units are kept;
    ``xform_code`` (4 = MNI) sets the sform and qform codes.
    """
    import nibabel as nib

    from ..io import file_scaling, write_nifti

    hdr = nib.Nifti1Header()
    dtype = np.dtype(source_img.get_data_dtype()).newbyteorder("=")
    hdr.set_data_dtype(dtype)
    hdr.set_data_shape(values.shape)
    zooms = [float(z) for z in nib.affines.voxel_sizes(affine)]
    if values.ndim == 4:
        zooms.append(float(source_img.header.get_zooms()[3]) if tr is None else float(tr))
    hdr.set_zooms(zooms)
    hdr.set_xyzt_units(*[u or "unknown" for u in source_img.header.get_xyzt_units()])
    code = xform_code or int(source_img.header["sform_code"]) or 1
    hdr.set_sform(affine, code=code)
    hdr.set_qform(affine, code=code)
    slope, inter = file_scaling(source_img) if dtype.kind in "iu" else (None, None)
    write_nifti(out_file, values, hdr, dtype, slope, inter)
    return out_file


class _MCInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="4D BOLD in native space")
    ref_index = traits.Int(-1, usedefault=True, desc="reference volume (-1: the middle one)")
    transform = traits.Enum("QuickRigid", "Rigid", "BOLDRigid", usedefault=True,
                            desc="ANTs rigid registration flavour per volume")
    num_threads = traits.Int(1, usedefault=True, desc="ITK threads")
    seed = traits.Int(0, usedefault=True)


class _MCOutputSpec(TraitedSpec):
    ref_file = File(exists=True, desc="the reference volume")
    mean_file = File(exists=True, desc="mean of the motion-corrected volumes (native space)")
    transforms = OutputMultiObject(File(exists=True), desc="one rigid transform per volume "
                                                           "(volume -> reference)")
    confounds_file = File(exists=True, desc="TSV: 3 rotations (rad), 3 translations (mm), FD")
    mean_fd = traits.Float(desc="mean framewise displacement (Power, 50 mm radius), mm")


class MotionCorrect(SimpleInterface):
    """Head-motion correction: a rigid ANTs registration of every volume to a reference."""

    input_spec = _MCInputSpec
    output_spec = _MCOutputSpec

    def _run_interface(self, runtime):
        _threads(self.inputs.num_threads)  # before ITK starts its thread pool
        import ants
        from scipy.spatial.transform import Rotation

        bold = ants.image_read(self.inputs.in_file)
        n = bold.shape[3]
        ref_idx = n // 2 if self.inputs.ref_index < 0 else self.inputs.ref_index
        ref = ants.slice_image(bold, axis=3, idx=ref_idx)
        ref_file = os.path.join(runtime.cwd, "ref_bold.nii.gz")
        ants.image_write(ref, ref_file)
        transforms, params, acc = [], [], None
        for i in range(n):
            vol = ants.slice_image(bold, axis=3, idx=i)
            reg = ants.registration(fixed=ref, moving=vol, type_of_transform=self.inputs.transform,
                                    random_seed=self.inputs.seed)
            dst = os.path.join(runtime.cwd, f"vol-{i:04d}_to_ref.mat")
            shutil.copyfile(reg["fwdtransforms"][0], dst)
            transforms.append(dst)
            warped = reg["warpedmovout"].numpy()
            acc = warped if acc is None else acc + warped
            tx = ants.read_transform(dst)
            p = np.asarray(tx.parameters)
            rot = Rotation.from_matrix(p[:9].reshape(3, 3)).as_euler("xyz")
            params.append(np.concatenate([rot, p[9:12]]))
        mean = ants.from_numpy(acc / n, origin=ref.origin, spacing=ref.spacing,
                               direction=ref.direction)
        mean_file = os.path.join(runtime.cwd, "mean_bold_mc.nii.gz")
        ants.image_write(mean, mean_file)
        params = np.array(params)
        delta = np.abs(np.diff(params, axis=0))
        fd = np.concatenate([[0.0], 50.0 * delta[:, :3].sum(1) + delta[:, 3:].sum(1)])
        conf = os.path.join(runtime.cwd, "motion_confounds.tsv")
        with open(conf, "w") as fh:
            fh.write("rot_x\trot_y\trot_z\ttrans_x\ttrans_y\ttrans_z\tframewise_displacement\n")
            for row, f in zip(params, fd):
                fh.write("\t".join(f"{v:.6f}" for v in list(row) + [f]) + "\n")
        self._results.update(ref_file=ref_file, mean_file=mean_file, transforms=transforms,
                             confounds_file=conf, mean_fd=float(fd[1:].mean()) if n > 1 else 0.0)
        return runtime


class _NormInputSpec(BaseInterfaceInputSpec):
    moving_file = File(exists=True, mandatory=True, desc="mean EPI (native space)")
    transform = traits.Enum("SyN", "Affine", "antsRegistrationSyNQuick[s]", usedefault=True,
                            desc="ANTs transform type for EPI -> MNI152")
    num_threads = traits.Int(1, usedefault=True)
    seed = traits.Int(0, usedefault=True)


class _NormOutputSpec(TraitedSpec):
    transforms = OutputMultiObject(File(exists=True),
                                   desc="EPI -> MNI transforms, in ANTs application order")
    warped_file = File(exists=True, desc="the mean EPI resampled on the template grid")
    report_json = File(exists=True, desc="registration quality: Dice of brain masks")
    dice = traits.Float(desc="Dice overlap of the registered mean EPI's brain mask "
                             "(nilearn compute_epi_mask) with the MNI152 brain mask, on the grid")


class RegisterToTemplate(SimpleInterface):
    """Register the (skull-stripped) mean EPI to nilearn's MNI152 brain with ANTs SyN."""

    input_spec = _NormInputSpec
    output_spec = _NormOutputSpec

    def _run_interface(self, runtime):
        _threads(self.inputs.num_threads)  # before ITK starts its thread pool
        import ants
        from nilearn.masking import compute_epi_mask

        from ..template_grid import template_2mm, template_on_grid

        fixed_file = os.path.join(runtime.cwd, "tpl-MNI152_res-2_desc-brain_T1w.nii.gz")
        template_2mm("brain").to_filename(fixed_file)
        grid_file = os.path.join(runtime.cwd, "tpl-MNI152_grid_desc-brain_T1w.nii.gz")
        template_on_grid("brain").to_filename(grid_file)
        epi_mask = compute_epi_mask(self.inputs.moving_file)
        mask_file = os.path.join(runtime.cwd, "mean_bold_brainmask.nii.gz")
        epi_mask.to_filename(mask_file)
        moving = ants.image_read(self.inputs.moving_file) * ants.image_read(mask_file)
        fixed = ants.image_read(fixed_file)
        reg = ants.registration(fixed=fixed, moving=moving, type_of_transform=self.inputs.transform,
                                random_seed=self.inputs.seed)
        transforms = []
        for i, src in enumerate(reg["fwdtransforms"]):
            ext = ".nii.gz" if src.endswith(".nii.gz") else os.path.splitext(src)[1]
            dst = os.path.join(runtime.cwd, f"bold_to_MNI152_{i}{ext}")
            shutil.copyfile(src, dst)
            transforms.append(dst)
        grid = ants.image_read(grid_file)
        warped = ants.apply_transforms(fixed=grid, moving=ants.image_read(self.inputs.moving_file),
                                       transformlist=transforms, interpolator="linear")
        warped_file = os.path.join(runtime.cwd, "mean_bold_space-MNI152_grid.nii.gz")
        ants.image_write(warped, warped_file)
        reg_mask = np.asarray(compute_epi_mask(warped_file).dataobj) > 0
        tpl_mask = np.asarray(template_on_grid("mask").dataobj) > 0
        dice = 2.0 * (reg_mask & tpl_mask).sum() / (reg_mask.sum() + tpl_mask.sum())
        report = os.path.join(runtime.cwd, "registration.json")
        with open(report, "w") as fh:
            json.dump({"transform": self.inputs.transform, "dice_brain_mask": float(dice),
                       "template": "MNI152 (nilearn, 2 mm) brain",
                       "grid": "64x64x48, 3x3x3.3 mm (nipype_icainr.template_grid)"}, fh,
                      indent=2)
        self._results.update(transforms=transforms, warped_file=warped_file, report_json=report,
                             dice=float(dice))
        return runtime


class _ApplyInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="4D BOLD in native space")
    motion_transforms = InputMultiObject(File(exists=True), mandatory=True,
                                         desc="one volume -> reference transform per volume")
    template_transforms = InputMultiObject(File(exists=True), mandatory=True,
                                           desc="reference -> MNI transforms (ANTs order)")
    interpolation = traits.Enum("lanczosWindowedSinc", "linear", usedefault=True)
    num_threads = traits.Int(1, usedefault=True)


class _ApplyOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="4D BOLD on the 64x64x48 template grid")


class ApplyTransformsToGrid(SimpleInterface):
    """One resampling per volume: motion and normalisation composed, onto the template grid."""

    input_spec = _ApplyInputSpec
    output_spec = _ApplyOutputSpec

    def _run_interface(self, runtime):
        _threads(self.inputs.num_threads)  # before ITK starts its thread pool
        import ants
        import nibabel as nib

        from ..codec.errors import ICAINRError
        from ..template_grid import grid_affine, template_on_grid

        src = nib.load(self.inputs.in_file)
        n = src.shape[3]
        if len(self.inputs.motion_transforms) != n:
            raise ICAINRError(self.inputs.in_file, f"{len(self.inputs.motion_transforms)} motion "
                                                   f"transforms for {n} volumes")
        grid_file = os.path.join(runtime.cwd, "grid.nii.gz")
        template_on_grid("brain").to_filename(grid_file)
        grid = ants.image_read(grid_file)
        bold = ants.image_read(self.inputs.in_file)
        out = np.zeros(grid.shape + (n,), np.float32)
        for i in range(n):
            vol = ants.slice_image(bold, axis=3, idx=i)
            tlist = list(self.inputs.template_transforms) + [self.inputs.motion_transforms[i]]
            out[..., i] = ants.apply_transforms(fixed=grid, moving=vol, transformlist=tlist,
                                                interpolator=self.inputs.interpolation).numpy()
        out_file = os.path.join(runtime.cwd, "bold_space-MNI152_grid.nii.gz")
        write_like(out, src, grid_affine(), out_file, xform_code=4)
        self._results.update(out_file=out_file)
        return runtime


class _ResampleInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True,
                   desc="fMRIPrep space-MNI152NLin2009cAsym desc-preproc BOLD")


class _ResampleOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="4D BOLD on the 64x64x48 template grid")


class ResampleToGrid(SimpleInterface):
    """Existing fMRIPrep derivatives: resampling only (nilearn, continuous interpolation)."""

    input_spec = _ResampleInputSpec
    output_spec = _ResampleOutputSpec

    def _run_interface(self, runtime):
        import warnings

        import nibabel as nib
        from nilearn import image

        from ..codec.errors import ICAINRError
        from ..template_grid import GRID_SHAPE, grid_affine

        src = nib.load(self.inputs.in_file)
        if len(src.shape) != 4:
            raise ICAINRError(self.inputs.in_file, f"expected a 4D BOLD, got shape {src.shape}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = image.resample_img(src, target_affine=grid_affine(), target_shape=GRID_SHAPE,
                                     interpolation="continuous", force_resample=True,
                                     copy_header=True)
        out_file = os.path.join(runtime.cwd, "bold_space-MNI152_grid.nii.gz")
        write_like(np.asarray(res.dataobj, dtype=np.float32), src, grid_affine(), out_file,
                   xform_code=4)
        self._results.update(out_file=out_file)
        return runtime
