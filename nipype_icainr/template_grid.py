"""The 64 x 64 x 48 template grid that registered runs are resampled onto (defined once, here).

Voxels are 3 x 3 x 3.3 mm (the studyforrest EPI's own size), so the grid spans
192 x 192 x 158.4 mm in MNI152 space, RAS+ axes. It is centred on the brain of
nilearn's bundled MNI152 brain mask, whose bounding box runs x -72..72,
y -106..72, z -72..82 mm (144 x 178 x 154 mm; centre (0, -17, 5) mm). The grid
runs x -94.5..94.5, y -111.5..77.5, z -72.55..82.55 (voxel centres), so the whole
brain fits, with 22 mm to spare on each side in x, 5.5 mm in y, and half a
millimetre in z (48 slices of 3.3 mm leave little room).
"""

import numpy as np

GRID_SHAPE = (64, 64, 48)
GRID_ZOOMS = (3.0, 3.0, 3.3)
GRID_CENTER_MM = (0.0, -17.0, 5.0)


def grid_affine():
    """Voxel -> MNI mm affine of the template grid."""
    affine = np.diag(list(GRID_ZOOMS) + [1.0])
    half = (np.array(GRID_SHAPE) - 1) / 2.0
    affine[:3, 3] = np.array(GRID_CENTER_MM) - half * np.array(GRID_ZOOMS)
    return affine


def template_on_grid(kind="brain"):
    """nilearn's bundled MNI152 template resampled to the grid (works offline).

    ``kind``: ``"t1"`` (the template), ``"brain"`` (template x brain mask) or
    ``"mask"`` (the brain mask, nearest-neighbour).
    """
    import warnings

    from nilearn import datasets, image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "mask":
            img = datasets.load_mni152_brain_mask(resolution=2)
            interp = "nearest"
        else:
            img = datasets.load_mni152_template(resolution=2)
            if kind == "brain":
                img = image.math_img("t * (m > 0)", t=img,
                                     m=datasets.load_mni152_brain_mask(resolution=2))
            interp = "continuous"
        return image.resample_img(img, target_affine=grid_affine(), target_shape=GRID_SHAPE,
                                  interpolation=interp, force_resample=True, copy_header=True)


def template_2mm(kind="brain"):
    """The 2 mm MNI152 template (registration target), as a nibabel image."""
    import warnings

    from nilearn import datasets, image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t1 = datasets.load_mni152_template(resolution=2)
        mask = datasets.load_mni152_brain_mask(resolution=2)
        if kind == "mask":
            return mask
        if kind == "brain":
            return image.math_img("t * (m > 0)", t=t1, m=mask)
        return t1
