"""Where the encoder reads a run from: an array in memory, or a NIfTI file volume by volume.

``core.encode`` needs a few things of a run: its per-voxel mean, minimum and
maximum over time, the series of the coded voxels, the temporal spread of the
others, a few first volumes, and for a lossless coding the whole array. An
``ArrayRun`` answers from an array; a ``VolumeRun`` from the file, one volume
at a time (NIfTI stores volumes one after another), so that a run larger than
memory in float64 is never held whole: peak memory follows the coded voxels'
series, not the grid.

Both give bit-identical answers where the encoder's output depends on them:
the mean is the volume-by-volume float64 sum divided by T (what numpy's
``mean`` over the last axis of a NIfTI's Fortran-ordered array computes), and
each volume is nibabel's own scaled read of it.
"""

import numpy as np


class ArrayRun:
    """A run held in memory: ``data`` (X, Y, Z, T) in physical units (float64)."""

    def __init__(self, data):
        self.data = data
        self.shape = tuple(int(s) for s in data.shape)
        self._stats = None

    def array(self):
        return self.data

    def volume(self, t):
        return self.data[..., t]

    def stats(self):
        """``(mean, minimum, maximum)`` over time, each (X, Y, Z) float64."""
        if self._stats is None:
            self._stats = (self.data.mean(axis=-1), self.data.min(axis=-1),
                           self.data.max(axis=-1))
        return self._stats

    def series(self, mask):
        """The coded voxels' series, (N, T) float64 (a copy)."""
        return self.data[mask]

    def background_noise(self, outside, chunk=65536):
        """Median temporal standard deviation of the voxels in ``outside`` that are not
        zero padding (0 when none).

        A block of voxels at a time: the background is most of a preprocessed
        run's grid, and a copy of it all would be the largest array of the encoder.
        """
        where = np.nonzero(outside)
        if not where[0].size:
            return 0.0
        deviations = np.concatenate([
            self.data[tuple(w[i:i + chunk] for w in where)].std(axis=-1)
            for i in range(0, where[0].size, chunk)])
        return _median_noise(deviations, self.stats(), outside)  # in ``outside``'s order


def zero_padding(stats):
    """Voxels 0 at every time point, from a run's ``stats()`` (mean, low, high)."""
    _, low, high = stats
    return (low == 0) & (high == 0)


def _median_noise(deviations, stats, outside):
    """The median of ``deviations`` (one per voxel of ``outside``, in its order) over the
    voxels that are not zero padding: a skull-stripped run's background is mostly
    padding, whose median deviation (0) says nothing of the rest (0 when none)."""
    keep = ~zero_padding(stats)[outside]
    return float(np.median(deviations[keep])) if keep.any() else 0.0


class VolumeRun:
    """A run read from its NIfTI file one volume at a time.

    Parameters
    ----------
    img : nibabel image
        Opened with ``keep_file_open=True`` (``io.open_bold``) so that reading
        the volumes of a ``.nii.gz`` in order decompresses the file once, not
        once a volume.
    shape : tuple (X, Y, Z, T)
        The run's shape (trailing singleton dimensions dropped).
    source : str
        The file, for error messages.

    Passes over the file: one for ``stats`` (and the NaN/Inf check), one for
    ``background_noise`` that also keeps the coded voxels' series (in float32
    when that holds them exactly, e.g. a float32 or int16 run), which
    ``series`` then hands out; ``array`` and ``volume`` read again.
    """

    def __init__(self, img, shape, source, allow_nan_voxels=False):
        self.img = img
        self.shape = tuple(int(s) for s in shape)
        self.source = source
        self.allow_nan_voxels = allow_nan_voxels
        #: voxels NaN at every time point (``allow_nan_voxels``), read as 0; set by ``stats``
        self.nan_voxels = None
        self._stats = None
        self._series = None  # (mask, values) kept by background_noise

    def volume(self, t):
        """Volume ``t`` in physical units, (X, Y, Z) float64: nibabel's scaled read."""
        from .. import io
        from ..codec.errors import ICAINRError

        index = (slice(None),) * 3 + (t,) + (0,) * (len(self.img.shape) - 4)
        try:
            vol = np.asarray(self.img.dataobj[index], dtype=np.float64)
        except MemoryError:
            raise
        except Exception as exc:  # a truncated or corrupt stream
            raise ICAINRError(self.source, f"cannot read volume {t} "
                                           f"({io.first_line(exc)})") from None
        vol = vol.reshape(self.shape[:3])
        if self.nan_voxels is not None:
            # a new array: a float64 .nii is read through nibabel's read-only memory map
            vol = np.where(self.nan_voxels, 0.0, vol)
        return vol

    def volumes(self):
        for t in range(self.shape[3]):
            yield t, self.volume(t)

    def array(self):
        """The whole run (X, Y, Z, T) float64 (lossless coding needs it)."""
        out = np.empty(self.shape, dtype=np.float64, order="F")
        for t, vol in self.volumes():
            out[..., t] = vol
        return out

    def stats(self):
        """``(mean, minimum, maximum)`` over time, each (X, Y, Z) float64: one pass,
        which also refuses NaN/Inf values (with ``allow_nan_voxels``, NaN in voxels
        NaN at every time point is kept apart as ``nan_voxels`` and read as 0)."""
        from .. import io

        if self._stats is None:
            total = np.zeros(self.shape[:3])
            low = np.full(self.shape[:3], np.inf)
            high = np.full(self.shape[:3], -np.inf)
            n_bad = n_inf = 0
            nan_counts = np.zeros(self.shape[:3], dtype=np.int64)
            for _, vol in self.volumes():
                n_bad += int(vol.size - np.count_nonzero(np.isfinite(vol)))
                if n_bad and self.allow_nan_voxels:
                    nan = np.isnan(vol)
                    nan_counts += nan
                    n_inf += int(np.count_nonzero(np.isinf(vol)))
                    vol = np.where(nan, 0.0, vol)  # not in place: see ``volume``
                total += vol
                np.minimum(low, vol, out=low)
                np.maximum(high, vol, out=high)
            if n_bad and self.allow_nan_voxels:
                self.nan_voxels = io.whole_nan_voxels(self.source, nan_counts,
                                                      self.shape[3], n_inf)
            elif n_bad:  # io.check_finite's error, counted over the whole run
                raise io.non_finite(self.source, n_bad)
            self._stats = (total / self.shape[3], low, high)
        return self._stats

    def background_noise(self, outside):
        """Median temporal standard deviation of the voxels in ``outside`` that are not
        zero padding (0 when none):
        two-pass, as ``numpy.std``, around the mean of ``stats``. The same pass keeps
        the series of the other voxels for ``series``."""
        mask = ~outside
        mean = self.stats()[0][outside]
        total = np.zeros(mean.shape)
        values = None
        for t, vol in self.volumes():
            if outside.any():
                total += (vol[outside] - mean) ** 2
            inside = vol[mask]
            if values is None:  # float32 when it holds the values exactly
                exact32 = np.array_equal(inside.astype(np.float32), inside)
                values = np.empty((inside.size, self.shape[3]),
                                  dtype=np.float32 if exact32 else np.float64)
            if values.dtype == np.float32 and not np.array_equal(
                    inside.astype(np.float32), inside):
                values = values.astype(np.float64)
            values[:, t] = inside
        self._series = (mask, values)
        if not outside.any():
            return 0.0
        return _median_noise(np.sqrt(total / self.shape[3]), self.stats(), outside)

    def series(self, mask):
        """The coded voxels' series, (N, T) float64 (a new array)."""
        if self._series is None or not np.array_equal(self._series[0], mask):
            self.background_noise(~mask)
        return self._series[1].astype(np.float64)
