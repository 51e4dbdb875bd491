"""The coded basis: the leading principal axes of the mean-removed series.

On the studyforrest run the principal basis coded 4 % smaller than an ICA
rotation of the same subspace (590 vs 615 kB for K = 40 at the same step), so
the coded basis is PCA; ICA stays the network presets' initialisation.
"""

import numpy as np


def principal_basis(series, n_components):
    """Leading principal axes of ``series`` (N x T, mean-removed per voxel's frame).

    Returns ``(maps N x K float64, patterns K x T float64)`` with orthonormal
    pattern rows and ``maps = series @ patterns.T``, sorted by energy.
    """
    from scipy.linalg import eigh

    n, t = series.shape
    k = int(min(n_components, t, n))
    if t <= 4096:
        gram = series.T @ series
        _, vecs = eigh(gram, subset_by_index=[t - k, t - 1])
        patterns = vecs[:, ::-1].T.copy()
    else:  # long runs: randomized SVD rather than a T x T eigenproblem
        from sklearn.utils.extmath import randomized_svd
        _, _, patterns = randomized_svd(series, k, random_state=0)
    # a fixed sign per component makes the output reproducible across LAPACKs
    signs = np.sign(patterns[np.arange(k), np.abs(patterns).argmax(axis=1)])
    patterns *= np.where(signs == 0, 1.0, signs)[:, None]
    return series @ patterns.T, patterns
