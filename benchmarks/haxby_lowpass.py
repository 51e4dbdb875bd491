"""How CTA (decoding) on the Haxby slice reacts to losing temporal detail.

Usage: ``python benchmarks/haxby_lowpass.py``, with the slice in
../shared/data/haxby2001-1slice.

Why it exists: the benchmark asks a codec to keep Haxby decoding accuracy
within a point of the original's. This script checks whether that accuracy
measures fidelity at all, with exact (unquantised) edits of the data and no
codec involved:

* ``lowpass f``: each masked voxel's mean-removed series is kept up to the
  first ``f * T`` coefficients of its orthonormal DCT-II over the whole run
  (T = 1452 volumes at TR 2.5 s, so f = 0.1 keeps periods longer than 50 s),
  the rest set to zero;
* ``pca K``: the mean-removed masked array truncated to its K leading
  principal components (as ``haxby_truncation.py``);
* ``pca K + lowpass f``: the K components plus the low-passed residual.

Each is scored with ``metrics.decoding_scores`` (linear SVM, per-run
z-scoring, 10-fold GroupKFold over the 12 runs, the slice's 530-voxel mask),
face vs house and all 8 categories, beside the PSNR over the mask (range of the
original's masked values) and the number of real coefficients the edit keeps
(K x (N + T) for PCA, N x fT for the low-pass; N = 530).
"""

import numpy as np

# the slice's loading and scoring, shared with the truncation script beside this one
from haxby_truncation import accuracies, load_slice


def main():
    from scipy.fft import dct, idct

    img, mask_img, data, labels, chunks = load_slice()
    flat = data.reshape(-1, data.shape[-1])
    mask = np.asarray(mask_img.dataobj).reshape(-1) > 0
    series = flat[mask]
    mean = series.mean(axis=1, keepdims=True)
    x = series - mean
    n, t = x.shape
    peak = float(series.max() - series.min())
    u, s, vt = np.linalg.svd(x, full_matrices=False)

    def lowpass(values, f):
        c = dct(values, type=2, norm="ortho", axis=1)
        c[:, int(round(f * t)):] = 0.0
        return idct(c, type=2, norm="ortho", axis=1)

    def report(name, approx, n_coef):
        out = flat.copy()
        out[mask] = approx + mean
        face_house, all8 = accuracies(out, img, mask_img, labels, chunks)
        mse = float(np.mean((approx - x) ** 2))
        psnr = 10 * np.log10(peak ** 2 / mse) if mse > 0 else float("inf")
        print(f"{name:24s} coefficients {n_coef:7d}  PSNR {psnr:6.2f} dB  "
              f"face/house {face_house:.3f}  8-class {all8:.3f}", flush=True)

    report("original", x, n * t)
    for f in (0.05, 0.1, 0.2, 0.3):
        report(f"lowpass {f}", lowpass(x, f), n * int(round(f * t)))
    pcs = {k: (u[:, :k] * s[:k]) @ vt[:k] for k in (10, 30, 100)}
    for k, low in pcs.items():
        report(f"pca {k}", low, k * (n + t))
    for k in (10, 30):
        report(f"pca {k} + lowpass 0.1", pcs[k] + lowpass(x - pcs[k], 0.1),
               k * (n + t) + n * int(round(0.1 * t)))


if __name__ == "__main__":
    main()
