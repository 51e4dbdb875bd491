"""The Haxby et al. (2001) slice: a run with labels, for cognitive-task analysis (CTA).

The directory holds ``bold.nii.gz`` (40x20x1x1452 int16), ``mask.nii.gz`` (the
slice's brain mask) and ``attributes_literal.txt`` (``<label> <run>`` per
volume). ``icainr bench --haxby DIR`` benchmarks it as one more run; its
reference (``reference.Reference``) adds the QC metric ``cta`` (linear SVM,
z-scored per run, 10-fold ``GroupKFold`` over the 12 runs) for each problem of
``PROBLEMS``: accuracy and ROC AUC (macro one-vs-rest for 8 classes) of the
decoded run, the original's in its ``original`` row.

The array is read with nibabel (physical units, float64). The provided brain
mask of the slice is the methods' mask and the decoder's features; the ICA-INR
codec computes its own (nilearn's intensity threshold, which on this slice
selects the same 530 voxels). A method that fails on the slice gets its error
in the notes.
"""

import os

import numpy as np

#: the decoding problems of the Haxby data: name -> classes (None = every label but rest)
PROBLEMS = {"face_house": ["face", "house"], "all8": None}


def load_haxby(directory):
    """``(BenchInput, labels, chunks)`` of the Haxby slice in ``directory``."""
    import nibabel as nib

    from ..io import file_scaling
    from ..qc.decoding import read_labels
    from .data import BenchInput

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
    mask = (np.asarray(nib.load(mask_file).dataobj) > 0).reshape(data.shape[:3])
    labels, chunks = read_labels(attrs, data.shape[3])
    slope, inter = file_scaling(img)
    inp = BenchInput(path=bold, img=img, data=data, mask=mask,
                     dtype=np.dtype(img.get_data_dtype()).newbyteorder("="), slope=slope,
                     inter=inter)
    return inp, np.asarray(labels), np.asarray(chunks)
