"""Does ``metrics.decoding_scores``' LinearSVC reach its optimum? Dual vs primal solver.

Usage: ``python benchmarks/svm_solver_check.py`` (the Haxby slice in ../shared/data).

Face vs house on the original slice and on its decoding-preset 100x
reconstruction, the samples of ``metrics.decoding_samples`` and the folds of
``decoding_scores`` (10-fold GroupKFold over the 12 runs). For each LinearSVC setting it prints the CV accuracy and the
summed training objective ``0.5 (|w|^2 + b^2) + C sum max(0, 1 - y f(x))^2``
(liblinear regularises the intercept): the lowest objective is the optimum every
setting should reach.
"""

import os
import tempfile
import warnings

import numpy as np

HAXBY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data",
                     "haxby2001-1slice")
SETTINGS = [dict(dual=True, max_iter=100000, tol=1e-8), dict(dual=False, max_iter=100000, tol=1e-8),
            dict(dual=True, max_iter=5000), dict(dual=False, max_iter=5000)]


def main():
    import nibabel as nib
    from sklearn.model_selection import GroupKFold
    from sklearn.svm import LinearSVC

    from nipype_icainr.codec.api import compress, decode_array
    from nipype_icainr.metrics import decoding_samples

    attrs = np.loadtxt(os.path.join(HAXBY, "attributes_literal.txt"), dtype=str)
    labels, chunks = attrs[:, 0], attrs[:, 1].astype(int)
    bold = os.path.join(HAXBY, "bold.nii.gz")
    img = nib.load(bold)
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "haxby.icainr")
        compress(bold, out, ratio=100, preset="decoding", measure=False)
        values, _ = decode_array(out)
    decoded = nib.Nifti1Image(np.rint(values).astype(np.float32), img.affine)
    for tag, image in (("original", img), ("decoding preset, 100x", decoded)):
        X, y, groups = decoding_samples(image, labels, chunks,
                                        os.path.join(HAXBY, "mask.nii.gz"), ["face", "house"])
        sign = np.where(y == "house", 1.0, -1.0)
        for kw in SETTINGS:
            accs, objective = [], 0.0
            for train, test in GroupKFold(n_splits=10).split(X, y, groups):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    clf = LinearSVC(C=1.0, random_state=0, **kw).fit(X[train], y[train])
                accs.append(float((clf.predict(X[test]) == y[test]).mean()))
                w, b = clf.coef_.ravel(), float(clf.intercept_[0])
                hinge = np.maximum(0.0, 1.0 - sign[train] * (X[train] @ w + b))
                objective += 0.5 * (w @ w + b * b) + float((hinge ** 2).sum())
            print(f"{tag}: {kw}: accuracy {np.mean(accs):.4f}, objective {objective:.6f}",
                  flush=True)


if __name__ == "__main__":
    main()
