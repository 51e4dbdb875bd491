"""Check a restored BIDS dataset against the original (run by tools/container_test.sh).

    python check_restored.py BIDS_DIR RESTORED_DIR DERIVATIVES_DIR

For every BOLD run of BIDS_DIR: the restored NIfTI's header block equals the
original's byte for byte, its data lie as close to the original's as the PSNR the
derivatives' sidecar records (within 0.01 dB, measured the codec's way: in the
brain mask), the restored sidecar equals the original, and the compressed run's
sidecar carries the lossy-compression fields. Prints one line per run; exits 1 on
the first failure.
"""

import glob
import json
import os
import sys

import nibabel as nib
import numpy as np

from nipype_icainr.masking import compute_mask
from nipype_icainr.metrics import psnr


def check_run(original, bids_dir, restored_dir, deriv_dir):
    rel = os.path.relpath(original, bids_dir)
    back_path = os.path.join(restored_dir, rel)
    stem = rel[:-len("_bold.nii.gz")]
    sidecar = json.load(open(os.path.join(deriv_dir, stem + "_desc-icainr_bold.json")))
    orig, back = nib.load(original), nib.load(back_path)
    if orig.header.binaryblock != back.header.binaryblock:
        diff = [k for k in orig.header if np.any(orig.header[k] != back.header[k])]
        raise SystemExit(f"{rel}: restored header differs in {diff}")
    a = np.asarray(orig.dataobj, dtype=np.float64)
    b = np.asarray(back.dataobj, dtype=np.float64)
    measured = psnr(a, b, compute_mask(a, orig.affine))
    if abs(measured - sidecar["PSNR"]) > 0.01:
        raise SystemExit(f"{rel}: PSNR {measured:.3f} dB, the sidecar records "
                         f"{sidecar['PSNR']:.3f} dB")
    for key, want in (("LossyImageCompression", "01"), ("CompressionMode", "lossy")):
        if sidecar.get(key) != want:
            raise SystemExit(f"{rel}: sidecar {key} is {sidecar.get(key)!r}, expected {want!r}")
    side = rel[:-len(".nii.gz")] + ".json"
    if json.load(open(os.path.join(restored_dir, side))) != \
            json.load(open(os.path.join(bids_dir, side))):
        raise SystemExit(f"{rel}: restored sidecar differs from the original")
    print(f"check_restored: {rel}: header identical ({len(orig.header.binaryblock)} bytes), "
          f"PSNR {measured:.2f} dB as recorded, LossyImageCompression "
          f"{sidecar['LossyImageCompression']}, ratio {sidecar['LossyImageCompressionRatio']:.1f}")


def main(argv):
    bids_dir, restored_dir, deriv_dir = argv
    runs = sorted(glob.glob(os.path.join(bids_dir, "sub-*", "**", "*_bold.nii.gz"),
                            recursive=True))
    if not runs:
        raise SystemExit(f"{bids_dir}: no BOLD runs")
    for run in runs:
        check_run(run, bids_dir, restored_dir, deriv_dir)


if __name__ == "__main__":
    main(sys.argv[1:])
