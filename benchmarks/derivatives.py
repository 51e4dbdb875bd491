"""Write real runs as the derivatives archives hold: demeaned, z-scored, percent signal change.

    python benchmarks/derivatives.py CORPUS_DIR OUT_DIR
    icainr bench OUT_DIR --ratios 25,50,100,200 --methods icainr,svd,sz3,zfp,jpeg2k,zstd

Writes four float32 runs, each with its source's affine: a 26x31x22x50 MNI run
(gift sub-107) minus its mean, z-scored and in percent signal change in its brain,
and the first 60 volumes of the native qap run z-scored in its brighter 40 % of
voxels. Outside the brain each is 0, as a masked derivative is. Such runs have no
baseline: their mean image is near zero everywhere, so a brain mask cannot be read
off it, and the benchmark checks that the codec's lead holds when the brain is
every voxel that varies (``masking.has_baseline``).
"""

import os
import sys

import numpy as np


def main(argv=None):
    import nibabel as nib

    corpus, out = (argv or sys.argv[1:])[:2]
    os.makedirs(out, exist_ok=True)

    def save(name, values, img):
        new = nib.Nifti1Image(values.astype(np.float32), img.affine)
        new.header.set_zooms(img.header.get_zooms()[:3] + (2.0,))
        path = os.path.join(out, name + ".nii.gz")
        new.to_filename(path)
        print(f"wrote {path}: {values.shape} float32")

    mni = nib.load(os.path.join(corpus, "gift__sub-107_lowres.nii"))
    g = np.asarray(mni.dataobj, dtype=np.float32)
    mean, std = g.mean(-1, keepdims=True), g.std(-1, keepdims=True)
    brain = (mean > 100) & (std > 0)
    safe = np.where(std > 0, std, 1)
    save("gift_demeaned", g - mean, mni)
    save("gift_psc", np.where(mean > 100, 100 * (g - mean) / np.maximum(mean, 1), 0), mni)
    save("gift_zscore", np.where(brain, (g - mean) / safe, 0), mni)

    native = nib.load(os.path.join(corpus, "qap__functional_scan.nii.gz"))
    q = np.asarray(native.dataobj, dtype=np.float32)[..., :60]
    mean, std = q.mean(-1, keepdims=True), q.std(-1, keepdims=True)
    brain = (mean > np.percentile(mean, 60)) & (std > 0)
    save("qap_zscore", np.where(brain, (q - mean) / np.where(std > 0, std, 1), 0), native)


if __name__ == "__main__":
    main()
