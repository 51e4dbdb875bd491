"""Decoding accuracy of exact (unquantised) PCA truncations of the Haxby slice.

Usage: ``python benchmarks/haxby_truncation.py [K ...]`` (default K = 25 50 100 200 400),
with the slice in ../shared/data/haxby2001-1slice.

How many principal components a decoder needs before any quantisation: the
mean-removed 800-voxel x 1452 array is truncated to its K leading components
(numpy SVD) and scored with ``metrics.decoding_scores`` (linear SVM, per-run
z-scoring, 10-fold GroupKFold, the slice's 530-voxel mask), face vs house and
8 categories, beside the share of the variance kept.
"""

import os
import sys
import warnings

import numpy as np

HAXBY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data",
                     "haxby2001-1slice")


def load_slice():
    """``(img, mask_img, data (X, Y, Z, T) float64, labels, chunks)`` of the Haxby slice."""
    import nibabel as nib

    from nipype_icainr.metrics import read_labels

    img = nib.load(os.path.join(HAXBY, "bold.nii.gz"))
    mask_img = nib.load(os.path.join(HAXBY, "mask.nii.gz"))
    data = np.asarray(img.dataobj, dtype=np.float64)
    labels, chunks = read_labels(os.path.join(HAXBY, "attributes_literal.txt"), data.shape[3])
    return img, mask_img, data, np.asarray(labels), np.asarray(chunks).astype(int)


def accuracies(values, img, mask_img, labels, chunks):
    """Face/house and 8-class accuracy (``metrics.decoding_scores``) of ``values``,
    any array of the slice's voxel count x T, laid out on ``img``'s grid."""
    import nibabel as nib

    from nipype_icainr import metrics

    im = nib.Nifti1Image(values.reshape(img.shape).astype(np.float32), img.affine)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fh = metrics.decoding_scores(im, labels, chunks, mask_img, classes=["face", "house"])
        a8 = metrics.decoding_scores(im, labels, chunks, mask_img)
    return fh["accuracy"], a8["accuracy"]


def main():
    ks = [int(k) for k in sys.argv[1:]] or [25, 50, 100, 200, 400]
    img, mask, data, labels, chunks = load_slice()
    flat = data.reshape(-1, data.shape[-1])
    mean = flat.mean(axis=1, keepdims=True)
    u, s, vt = np.linalg.svd(flat - mean, full_matrices=False)

    def scores(values):
        return accuracies(values, img, mask, labels, chunks)

    print("original: face/house %.3f, 8-class %.3f" % scores(flat))
    for k in ks:
        approx = mean + (u[:, :k] * s[:k]) @ vt[:k]
        kept = float((s[:k] ** 2).sum() / (s ** 2).sum())
        print(f"K = {k:4d}: face/house %.3f, 8-class %.3f, variance kept {kept:.3f}"
              % scores(approx), flush=True)


if __name__ == "__main__":
    main()
