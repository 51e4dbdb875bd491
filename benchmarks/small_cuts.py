"""Cut small runs out of real corpus runs, in the shapes of small studies' runs.

    python benchmarks/small_cuts.py CORPUS_DIR OUT_DIR
    icainr bench OUT_DIR --ratios 25,50,100,200 --methods icainr,svd,sz3,zfp,jpeg2k,h265,zstd

Writes three int16 runs, each a block of a real run with its header and affine:
a 10x10x18x40 block from the middle of the qap run and one from HAPPYTEST (the
shape of a small ROI acquisition), and six 64x64 slices by 30 volumes of
RAPIDTIDETEST (a thin slab, as a spinal-cord or partial-coverage run). The
corpus runs themselves are larger; these check that the default's lead holds
where the budget is a few hundred bytes to a few kilobytes.
"""

import os
import sys

import numpy as np

CUTS = {  # name: (corpus file, the block's slices)
    "qapcrop_10x10x18x40": ("qap__functional_scan.nii.gz",
                            np.s_[20:30, 20:30, 5:23, :40]),
    "happycrop_10x10x18x40": ("rapidtide__sub-HAPPYTEST.nii.gz",
                              np.s_[27:37, 40:50, 20:38, :40]),
    "rtslab_64x64x6x30": ("rapidtide__sub-RAPIDTIDETEST.nii.gz",
                          np.s_[:, :, 12:18, :30]),
}


def main(argv=None):
    import nibabel as nib

    corpus, out = (argv or sys.argv[1:])[:2]
    os.makedirs(out, exist_ok=True)
    for name, (source, block) in CUTS.items():
        img = nib.load(os.path.join(corpus, source))
        # the stored integers: the cut keeps the source's scaling in its header
        values = np.asarray(img.dataobj.get_unscaled())[block]
        path = os.path.join(out, name + ".nii.gz")
        nib.Nifti1Image(values, img.affine, img.header.copy()).to_filename(path)
        print(f"wrote {path}: {values.shape} {values.dtype}")


if __name__ == "__main__":
    main()
