"""Cognitive-task analysis (CTA) on the Haxby et al. (2001) slice.

The directory holds ``bold.nii.gz`` (40x20x1x1452 int16), ``mask.nii.gz`` (the
slice's brain mask) and ``attributes_literal.txt`` (``<label> <run>`` per
volume). Each method compresses the whole 4D array at each target ratio and
``metrics.decoding_scores`` (linear SVM, z-scored per run, 10-fold
``GroupKFold`` over the 12 runs) scores the decoded run for face vs house and
for all 8 categories (``rest`` excluded), accuracy and ROC AUC (macro
one-vs-rest for 8 classes), next to the original's scores.

The array is read with nibabel (physical units, float64). The provided brain
mask of the slice is the methods' mask and the decoder's features; the ICA-INR
codec computes its own (nilearn's intensity threshold, which on this slice
selects the same 530 voxels). A method that fails on the slice gets its error
in the notes.
"""

import os

import numpy as np

#: the two decoding problems: name -> classes (None = every label but rest)
PROBLEMS = {"face_house": ["face", "house"], "all8": None}


def load_haxby(directory):
    """``(BenchInput, labels, chunks)`` of the Haxby slice in ``directory``."""
    import nibabel as nib

    from .data import BenchInput, file_scaling

    bold = os.path.join(directory, "bold.nii.gz")
    attrs = os.path.join(directory, "attributes_literal.txt")
    mask_file = os.path.join(directory, "mask.nii.gz")
    for path in (bold, attrs, mask_file):
        if not os.path.isfile(path):
            raise FileNotFoundError(2, "no such file", path)
    img = nib.load(bold)
    data = np.asarray(img.dataobj, dtype=np.float64)
    if data.ndim != 4:
        raise ValueError(f"{bold}: expected a 4D image, got shape {data.shape}")
    mask = np.asarray(nib.load(mask_file).dataobj) > 0
    mask = mask.reshape(data.shape[:3])
    labels, chunks = [], []
    with open(attrs) as fh:
        for line in fh:
            parts = line.split()
            if len(parts) >= 2:
                labels.append(parts[0])
                chunks.append(int(parts[1]))
    if len(labels) != data.shape[3]:
        raise ValueError(f"{attrs}: {len(labels)} labels for {data.shape[3]} volumes")
    slope, inter = file_scaling(img)
    inp = BenchInput(path=bold, img=img, data=data, mask=mask,
                     dtype=np.dtype(img.get_data_dtype()).newbyteorder("="), slope=slope,
                     inter=inter)
    return inp, np.array(labels), np.array(chunks)


def cta_scores(inp, values, labels, chunks):
    """Decoding scores of ``values`` (the run as written) for every problem in ``PROBLEMS``.

    Returns ``{problem: {"accuracy", "auc", "n_samples", "n_classes", "chance"}}``.
    """
    from .. import metrics

    img = inp.image_of(values)
    return {name: metrics.decoding_scores(img, labels, chunks, inp.mask_img(), classes=classes)
            for name, classes in PROBLEMS.items()}
