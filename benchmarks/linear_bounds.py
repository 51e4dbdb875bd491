"""PSNR of linear reconstructions with exact (unquantised) factors: what the maps could give.

Usage: ``python benchmarks/linear_bounds.py [BOLD.nii.gz]`` (default: the studyforrest run).
Prints the mean-frame-only PSNR, truncated SVD at several ranks, and the spatial ICA
reconstruction (the codec's own ``ica_decomposition``) at K = 16 and 24, all with
``metrics.psnr``'s definition (brain mask, original's range).
"""

import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
RUN = os.path.join(HERE, "..", "..", "shared", "data", "studyforrest", "sub-02", "func",
                   "sub-02_task-oneback_run-1_bold.nii.gz")


def main():
    from nipype_icainr.codec.network.fit import ica_decomposition
    from nipype_icainr.io import load_bold
    from nipype_icainr.masking import compute_mask

    img, data = load_bold(sys.argv[1] if len(sys.argv) > 1 else RUN)
    mask = compute_mask(data, img.affine)
    series = data[mask]
    resid = series - series.mean(axis=1, keepdims=True)
    rng = series.max() - series.min()

    def psnr(err):
        return 10 * np.log10(rng ** 2 / np.mean(err ** 2))

    print(f"mean frame only        {psnr(resid):.2f} dB")
    u, s, vt = np.linalg.svd(resid, full_matrices=False)
    for rank in (8, 16, 24, 33, 48):
        print(f"SVD rank {rank:<3}           {psnr(resid - (u[:, :rank] * s[:rank]) @ vt[:rank]):.2f} dB")
    scale = resid.std()
    for k in (16, 24):
        maps, patterns = ica_decomposition((resid / scale).astype(np.float32), k, 0, 400)
        print(f"ICA K={k:<3}             {psnr(resid - scale * (maps @ patterns)):.2f} dB")


if __name__ == "__main__":
    main()
