"""Cognitive-task analysis (CTA): linear-SVM decoding of the decoded run against the original."""

import numpy as np

from ..codec.errors import ICAINRError
from .base import Column, Metric


def read_labels(path, n_volumes):
    """Labels and chunks per volume from a PyMVPA attributes file or a TSV.

    A PyMVPA ``attributes_literal.txt`` has one line ``<label> <chunk>`` per
    volume; a TSV has columns ``label`` and ``chunk``.
    """
    import pandas as pd

    try:
        with open(path) as fh:
            first = fh.readline()
        if "\t" in first and "label" in first:
            table = pd.read_csv(path, sep="\t")
        else:
            table = pd.read_csv(path, sep=r"\s+", header=None, names=["label", "chunk"])
        labels, chunks = table["label"].astype(str).values, table["chunk"].values
    except Exception as exc:
        raise ICAINRError(path, f"cannot read labels ({str(exc).splitlines()[0]})") from None
    if len(labels) != n_volumes:
        raise ICAINRError(path, f"{len(labels)} labels for {n_volumes} volumes")
    return labels, chunks


def decoding_samples(img, labels, chunks, mask_img, classes=None):
    """The CTA's samples: ``(X, y, groups)`` as ``decoding_scores`` uses them.

    Volumes whose label is in ``classes`` (default: every label except
    ``rest``); features are the voxels of ``mask_img``, z-scored within each
    chunk (run) (a voxel constant within a run keeps its centred values).
    """
    import warnings

    from nilearn.maskers import NiftiMasker

    labels = np.asarray(labels)
    chunks = np.asarray(chunks)
    if classes is None:
        classes = sorted(set(labels) - {"rest"})
    keep = np.isin(labels, classes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        X = NiftiMasker(mask_img=mask_img, standardize=False).fit_transform(img)[keep]
    y, groups = labels[keep], chunks[keep]
    for g in np.unique(groups):  # z-score within each run
        sel = groups == g
        X[sel] = (X[sel] - X[sel].mean(0)) / np.where(X[sel].std(0) > 0, X[sel].std(0), 1.0)
    return X, y, groups


def decoding_scores(img, labels, chunks, mask_img, classes=None, n_folds=10, seed=0):
    """Cognitive-task analysis (CTA): linear SVM decoding accuracy and AUC.

    Volumes whose label is in ``classes`` (default: every label except
    ``rest``) are the samples; features are the masked voxels, z-scored within
    each chunk (run) (``decoding_samples``). A ``LinearSVC`` (C = 1, squared hinge, solved in the
    dual: on the Haxby slice it reaches the objective of a tol = 1e-8 solve,
    where the primal solver at its default tolerance stopped short and scored
    up to 2 points differently, and it runs about 20x faster) is scored by
    10-fold cross-validation: ``GroupKFold`` over chunks when there are at
    least ``n_folds`` chunks (no run is split between training and test), else
    stratified ``KFold`` with a fixed seed.

    Returns
    -------
    dict
        ``accuracy`` (mean over folds of the fraction of test volumes right),
        ``auc`` (binary: ROC AUC of the decision function; multiclass: macro
        one-vs-rest ROC AUC), ``n_samples``, ``n_classes``, ``chance`` (the
        largest class's share).
    """
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import GroupKFold, StratifiedKFold
    from sklearn.preprocessing import label_binarize
    from sklearn.svm import LinearSVC

    X, y, groups = decoding_samples(img, labels, chunks, mask_img, classes)
    if len(np.unique(groups)) >= n_folds:
        splits = GroupKFold(n_splits=n_folds).split(X, y, groups)
    else:
        splits = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed).split(X, y)
    classes = sorted(set(y))
    accs, scores, truth = [], [], []
    for train, test in splits:
        clf = LinearSVC(C=1.0, dual=True, max_iter=5000, random_state=seed).fit(X[train], y[train])
        accs.append(float((clf.predict(X[test]) == y[test]).mean()))
        dec = clf.decision_function(X[test])
        if len(classes) == 2:
            dec = np.stack([-dec, dec], axis=1)
        full = np.full((len(test), len(classes)), -np.inf)
        for j, c in enumerate(clf.classes_):
            full[:, classes.index(c)] = dec[:, j]
        scores.append(full)
        truth.append(y[test])
    scores, truth = np.concatenate(scores), np.concatenate(truth)
    if len(classes) == 2:
        auc = roc_auc_score(truth == classes[1], scores[:, 1])
    else:
        finite = np.where(np.isfinite(scores), scores, np.nanmin(scores[np.isfinite(scores)]))
        auc = roc_auc_score(label_binarize(truth, classes=classes), finite, average="macro")
    _, counts = np.unique(y, return_counts=True)
    return {"accuracy": float(np.mean(accs)), "auc": float(auc), "n_samples": int(len(y)),
            "n_classes": len(classes), "chance": float(counts.max() / counts.sum())}


class CTA(Metric):
    name = "cta"
    title = "Decoding (CTA)"
    definition = ("linear SVM on the masked voxels z-scored per run, 10-fold cross-validation "
                  "over runs; accuracy and ROC AUC of the decompressed run (the original's "
                  "beside it)")
    columns = (Column("cta_accuracy", "CTA accuracy", "{:.3f}", "decompressed run"),
               Column("cta_auc", "CTA AUC", "{:.3f}", "decompressed run"))

    def missing(self, ctx):
        if ctx.labels is None or ctx.chunks is None:
            return "no labels"
        return None

    def scores(self, img, ctx):
        """Decoding scores of one image under the context's labels and options."""
        return decoding_scores(img, ctx.labels, ctx.chunks, ctx.mask_img(),
                               ctx.options.get("classes"), ctx.options.get("n_folds", 10),
                               ctx.options.get("seed", 0))

    def reference(self, ctx):
        return self.scores(ctx.original.img, ctx)

    def compare(self, ref, decoded, ctx):
        dec = self.scores(decoded.img, ctx)
        return {"values": {"cta_accuracy": dec["accuracy"], "cta_auc": dec["auc"]},
                "details": {"original": ref, "decompressed": dec,
                            "classes": ctx.options.get("classes") or "all but rest"}}

    def table(self, result):
        from ..report import fmt

        d = result["details"]
        return [["", "accuracy", "AUC"],
                ["original", fmt(d["original"]["accuracy"]), fmt(d["original"]["auc"])],
                ["decompressed", fmt(d["decompressed"]["accuracy"]),
                 fmt(d["decompressed"]["auc"])]]
