"""What a decoder rebuilds: a series model's run (mean frame plus the masked series) or a
whole-run model's stored array, readable whole or volume by volume."""

from dataclasses import dataclass

import numpy as np

from .. import io


@dataclass
class Reconstruction:
    """What a decoder rebuilds: mean frame plus the model's series inside the mask.

    ``values()`` is the run in physical units, (X, Y, Z, T) float64, clipped to
    ``value_range`` (the input's, when the file records it).
    """

    mask: np.ndarray
    mean: np.ndarray
    approx: np.ndarray
    n_timepoints: int
    value_range: list = None
    #: voxels written as NaN (the input's whole NaN voxels), or None
    nan_voxels: np.ndarray = None

    def volume(self, t):
        """Volume ``t`` alone, (X, Y, Z) float64 in Fortran order (NIfTI's, so that
        writing it is one copy): for writing a run volume by volume."""
        out = np.array(self.mean, dtype=np.float64, order="F")
        if self.approx is not None and self.approx.size:
            out[self.mask] += self.approx[:, t]
        if self.value_range is not None:
            np.clip(out, self.value_range[0], self.value_range[1], out=out)
        if self.nan_voxels is not None:
            out[self.nan_voxels] = np.nan
        return out

    def values(self):
        out = np.empty(self.mean.shape + (self.n_timepoints,), dtype=np.float64)
        out[...] = self.mean[..., None]
        if self.approx is not None and self.approx.size:
            out[self.mask] += self.approx
        if self.value_range is not None:
            np.clip(out, self.value_range[0], self.value_range[1], out=out)
        if self.nan_voxels is not None:
            out[self.nan_voxels] = np.nan
        return out


@dataclass
class StoredReconstruction:
    """What a whole-run model rebuilds: the stored array itself."""

    stored: np.ndarray
    image: dict
    #: voxels written as NaN (the input's whole NaN voxels), or None
    nan_voxels: np.ndarray = None

    @property
    def mask(self):
        return np.ones(self.stored.shape[:3], dtype=bool)

    def stored_volume(self, t):
        """Volume ``t`` of the stored array (float stored dtypes get their NaN voxels)."""
        vol = self.stored[..., t]
        if self.nan_voxels is not None:
            vol = np.array(vol)
            vol[self.nan_voxels] = np.nan
        return vol

    def volume(self, t):
        return io.from_stored_values(self.stored_volume(t), self.image["scl_slope"],
                                     self.image["scl_inter"])

    def values(self):
        out = io.from_stored_values(self.stored, self.image["scl_slope"],
                                    self.image["scl_inter"])
        if self.nan_voxels is not None:
            out = np.array(out, dtype=np.float64)
            out[self.nan_voxels] = np.nan
        return out
