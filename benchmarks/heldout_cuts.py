"""Runs made from the shared data in ways the codec was never tuned on.

    python benchmarks/heldout_cuts.py DATA_DIR OUT_DIR
    icainr bench OUT_DIR --ratios 25,50,100,200 --methods icainr,svd,sz3,zfp,jpeg2k,h265,zstd

``DATA_DIR`` holds ``corpus/`` and ``studyforrest/``. Every figure of the codec's
defaults was measured on the corpus runs whole and on three small cuts
(``small_cuts.py``); these five are new shapes of the same acquisitions, to check
that the lead holds off the runs it was measured on:

* ``gift112_tail30``: the last 30 of the 50 volumes of an MNI float32 run (a shorter
  run of the same study: fewer bytes per voxel at a given ratio);
* ``qap_down_f32``: the first 40 volumes of the qap run, averaged over 2x2 voxels in
  plane and stored as float32 (a coarser, smoother native run);
* ``happy_block_int16``: a central 40x40x30 block of the whole-head HAPPYTEST run,
  every other volume (a cut through the head: a large, textured background);
* ``rt_tail_int16``: the last 80 volumes of twelve slices of RAPIDTIDETEST
  (skull-stripped: mostly zeros);
* ``sf_6mm_f32``: the studyforrest run resampled to 6 mm voxels (trilinear, nilearn),
  its first 80 volumes, float32 (smooth, MNI-like grid size).

Deterministic: the same files from the same inputs.
"""

import glob
import os
import sys

import numpy as np


def _save(values, source, path, dtype, spatial=None, tr=None, affine=None):
    """Write ``values`` with ``source``'s header: its qform/sform codes (native runs stay
    native, so the benchmark gives them no Power-2011 spheres), an affine that follows
    the ``spatial`` cut (nibabel's slicer) and the source's voxel sizes, or ``affine``
    and the voxel sizes read off it; the given stored dtype and TR (default the
    source's)."""
    import nibabel as nib

    if affine is None:
        affine = source.slicer[spatial].affine if spatial is not None else source.affine
        voxels = tuple(source.header.get_zooms()[:3])
    else:
        voxels = tuple(nib.affines.voxel_sizes(affine))
    header = source.header.copy()
    img = nib.Nifti1Image(values, affine, header)
    img.set_sform(affine, code=int(header["sform_code"]))
    img.set_qform(affine, code=int(header["qform_code"]))
    img.header.set_data_dtype(dtype)
    img.header.set_slope_inter(1.0, 0.0)
    tr = float(source.header.get_zooms()[3]) if tr is None else tr
    img.header.set_zooms(voxels + (tr,))
    img.header.set_xyzt_units("mm", "sec")
    img.to_filename(path)
    print(f"wrote {path}: {values.shape} {np.dtype(dtype).name}")


def main(argv=None):
    import nibabel as nib

    data, out = (argv or sys.argv[1:])[:2]
    corpus = os.path.join(data, "corpus")
    os.makedirs(out, exist_ok=True)

    def path(name):
        return os.path.join(out, name + ".nii.gz")

    gift = nib.load(os.path.join(corpus, "gift__sub-112_lowres.nii"))
    _save(np.asarray(gift.dataobj[..., 20:], dtype=np.float32), gift, path("gift112_tail30"),
          np.float32)

    qap = nib.load(os.path.join(corpus, "qap__functional_scan.nii.gz"))
    block = np.asarray(qap.dataobj[:50, :50, :, :40], dtype=np.float32)
    down = block.reshape(25, 2, 25, 2, 28, 40).mean(axis=(1, 3)).astype(np.float32)
    affine = qap.affine @ np.diag([2.0, 2.0, 1.0, 1.0])
    _save(down, qap, path("qap_down_f32"), np.float32, affine=affine)

    happy = nib.load(os.path.join(corpus, "rapidtide__sub-HAPPYTEST.nii.gz"))
    block = np.s_[12:52, 25:65, 17:47]
    cut = np.asarray(happy.dataobj.get_unscaled()[block + (slice(None, None, 2),)])
    _save(cut.astype(np.int16), happy, path("happy_block_int16"), np.int16, spatial=block,
          tr=2 * float(happy.header.get_zooms()[3]))

    rt = nib.load(os.path.join(corpus, "rapidtide__sub-RAPIDTIDETEST.nii.gz"))
    block = np.s_[:, :, 8:20]
    cut = np.asarray(rt.dataobj.get_unscaled()[block + (slice(180, None),)])
    _save(cut.astype(np.int16), rt, path("rt_tail_int16"), np.int16, spatial=block)

    from nilearn.image import resample_img

    source = sorted(glob.glob(os.path.join(data, "studyforrest", "sub-*", "func",
                                           "*_bold.nii.gz")))[0]
    sf = nib.load(source)
    scale = 6.0 / float(np.abs(np.diag(sf.affine)[:3]).max())
    target = sf.affine[:3, :3] * scale
    resampled = resample_img(sf, target_affine=target, interpolation="linear",
                             force_resample=True, copy_header=True)
    # still the scanner's space: the source's codes, not the "aligned" nilearn sets
    resampled.set_sform(resampled.affine, code=int(sf.header["sform_code"]))
    resampled.set_qform(resampled.affine, code=int(sf.header["qform_code"]))
    values = np.asarray(resampled.dataobj, dtype=np.float32)[..., :80]
    _save(values, resampled, path("sf_6mm_f32"), np.float32, affine=resampled.affine,
          tr=float(sf.header.get_zooms()[3]))


if __name__ == "__main__":
    main()
