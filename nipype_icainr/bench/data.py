"""The benchmark's input: one 4D run in physical units, its brain mask and its stored dtype.

Every method codes the *same* float64 array returned by the codec's loader
(``nipype_icainr.io.load_bold``), and every decoded array is
compared after being put back on the grid the NIfTI would store
(``BenchInput.as_written``): rounded to the stored integer dtype through
``scl_slope``/``scl_inter`` and clipped, exactly as a ``.nii.gz`` written by
any of the methods would hold it. The ICA-INR codec's own decompressor writes
the same grid.
"""

import os
from dataclasses import dataclass, field

import numpy as np


@dataclass
class BenchInput:
    """One run as the benchmark sees it.

    Attributes
    ----------
    path : str
        The NIfTI file (the ICA-INR codec compresses the file itself).
    img : nibabel image
        The image object (header, affine).
    data : ndarray of float64, shape (X, Y, Z, T)
        Physical values.
    mask : ndarray of bool, shape (X, Y, Z)
        The brain mask (``masking.compute_mask``, the codec's own).
    dtype : numpy.dtype
        The stored dtype (``int16`` for scanner output).
    slope, inter : float or None
        The file's scaling; ``None`` when the file is unscaled.
    """

    path: str
    img: object
    data: np.ndarray
    mask: np.ndarray
    dtype: np.dtype
    slope: float = None
    inter: float = None
    extra: dict = field(default_factory=dict)

    @property
    def shape(self):
        return tuple(self.data.shape)

    @property
    def raw_bytes(self):
        """X*Y*Z*T*itemsize of the stored dtype: the numerator of every ratio."""
        return int(np.prod(self.data.shape)) * np.dtype(self.dtype).itemsize

    @property
    def tr(self):
        return float(self.img.header.get_zooms()[3])

    def context(self):
        """What a method needs besides the array (JSON-able): stored dtype, scaling, the
        image description the codec stores (``io.describe_image``), the file."""
        from ..io import describe_image

        return {"dtype": np.dtype(self.dtype).str, "slope": self.slope, "inter": self.inter,
                "source_path": os.path.abspath(self.path), "shape": list(self.shape),
                "image": describe_image(self.img, self.path)}

    def as_written(self, values):
        """``values`` put on the stored grid: what a NIfTI of the decoded run holds."""
        from ..io import as_written

        return as_written(values, self.dtype, self.slope, self.inter)

    def image_of(self, values):
        """A float32 nibabel image of ``values`` with the input's affine and header."""
        import nibabel as nib

        hdr = self.img.header.copy()
        hdr.set_data_dtype(np.float32)
        out = nib.Nifti1Image(np.asarray(values, dtype=np.float32), self.img.affine, hdr)
        out.header.set_slope_inter(1.0, 0.0)
        return out

    def mask_img(self):
        import nibabel as nib

        return nib.Nifti1Image(self.mask.astype(np.uint8), self.img.affine)


def load_input(path, mask=None):
    """Load a 4D run with the codec's loader and mask.

    Parameters
    ----------
    path : str
        4D NIfTI.
    mask : ndarray of bool, optional
        Use this brain mask instead of ``compute_mask``'s.

    Returns
    -------
    BenchInput
    """
    from ..io import file_scaling, load_bold
    from ..masking import compute_mask

    img, data = load_bold(path)
    if mask is None:
        mask = compute_mask(data, img.affine)
    slope, inter = file_scaling(img)
    return BenchInput(path=os.fspath(path), img=img, data=data, mask=np.asarray(mask, bool),
                      dtype=np.dtype(img.get_data_dtype()).newbyteorder("="), slope=slope,
                      inter=inter)
