"""Activation patterns coded as time samples (format 2) or temporal DCT coefficients (3).

Usage: ``python benchmarks/pattern_coding.py [BOLD.nii.gz] [K] [step]``
(default: the Haxby slice in ../shared/data, K = 100, step = 80).

Both codings go through the codec's own functions (``quantise.quantize_all``,
``encode_factors``, ``dequantize``) on the same quantised maps: the principal
maps of the mean-removed masked series, K components, map step ``step``
(physical units). Prints the FACT section's bytes (maps + patterns; the maps
cost the same in both) and the squared error of ``maps @ patterns`` against the
series, relative to the time-domain coding.
"""

import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
HAXBY = os.path.join(HERE, "..", "..", "shared", "data", "haxby2001-1slice", "bold.nii.gz")


def main():
    from nipype_icainr.codec import factor
    from nipype_icainr.codec.factor.quantise import quantize_all, squared_error
    from nipype_icainr.io import load_bold
    from nipype_icainr.masking import compute_mask

    path = sys.argv[1] if len(sys.argv) > 1 else HAXBY
    k = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    step = float(sys.argv[3]) if len(sys.argv) > 3 else 80.0
    img, data = load_bold(path)
    mask = compute_mask(data, img.affine)
    series = data[mask]
    series = series - series.mean(axis=1, keepdims=True)
    maps, _ = factor.principal_basis(series, k)
    board = factor.Checkerboard(mask)
    energy = float(np.sum(series ** 2))
    print(f"{path}: {int(mask.sum())} voxels x {series.shape[1]} time points, K = "
          f"{maps.shape[1]}, map step {step:g}")
    results = {}
    for transform in ("time", "dct"):
        # plain reconstruction of the maps (no board): the maps cost the same in both
        q = quantize_all(series, maps, step, transform)
        words, params, ranges, bands = factor.encode_factors(q.q_maps, q.q_patterns, q.steps,
                                                             board, transform)
        size = len(factor.pack(words, params, ranges, bands))
        _, patterns = factor.dequantize(q.q_maps, q.q_patterns, q.step, params, transform)
        results[transform] = (size, squared_error(energy, q.gram, q.cross, patterns))
    base_size, base_sse = results["time"]
    for transform, (size, sse) in results.items():
        print(f"  {transform:4s}: FACT section {size:,} bytes ({size / base_size:.3f} x time), "
              f"squared error {sse / base_sse:.4f} x time")


if __name__ == "__main__":
    main()
