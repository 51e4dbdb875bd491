"""What the entropy coder conditions on: the checkerboard neighbourhood and per-voxel activity.

Both are computed from integer symbols already decoded, with exact integer sums
and one float division, so that encoder and decoder agree bit for bit.
"""

import numpy as np

from .neighbours import neighbour_index


class Checkerboard:
    """Even/odd split of the masked voxels and their in-mask 6-neighbours.

    Voxels are indexed in the order of ``volume[mask]`` (C order).
    """

    def __init__(self, mask, move_maps=True):
        mask = np.asarray(mask, dtype=bool)
        self.mask = mask
        #: whether the decoded maps are moved towards their neighbours (format 6's
        #: ``neighbours``; False: plain reconstruction, weights stored as zeros)
        self.move_maps = move_maps
        coords = np.argwhere(mask)
        parity = coords.sum(axis=1) % 2
        self.even = np.flatnonzero(parity == 0)
        self.odd = np.flatnonzero(parity == 1)
        #: the coding order of a map: its even voxels, then its odd ones
        self.order = np.concatenate([self.even, self.odd])
        self.n_voxels = int(mask.sum())
        # every voxel's in-mask 6-neighbours, those outside the mask pointing at one extra
        # zero appended to a row (``neighbours.neighbour_index``): the odd voxels' rows
        # are the coder's context, all of them what the decoded maps are moved towards
        self._neighbourhood = neighbour_index(mask)
        gather, count = self._neighbourhood
        self.count = count[self.odd]
        self._gather = np.asfortranarray(gather[self.odd])
        self._permuted = None  # permuted_gather(), made on first use

    def slabs(self, keep_every):
        """A checkerboard of every ``keep_every``-th pair of axial slices, and the rows of
        its voxels among this one's: a smaller sample of the same neighbourhoods (a voxel
        keeps its in-slice neighbours and one of its two z-neighbours)."""
        z = np.arange(self.mask.shape[2])
        keep_z = (z // 2) % keep_every == 0
        sub = self.mask & keep_z[None, None, :]
        rows = np.flatnonzero(keep_z[np.argwhere(self.mask)[:, 2]])
        return Checkerboard(sub, self.move_maps), rows

    def neighbourhood(self):
        """``(gather (N, 6), count (N,))`` of every voxel (``neighbours.neighbour_index``):
        what the decoded maps are moved towards."""
        return self._neighbourhood

    def permuted_gather(self):
        """The neighbour indices of ``context`` for a column stored with its even voxels
        first, then its odd ones (the order they are coded in)."""
        if self._permuted is None:
            position = np.empty(self.n_voxels + 1, dtype=np.int64)
            position[self.order] = np.arange(self.n_voxels)
            position[-1] = self.n_voxels  # outside the mask: still the appended zero
            self._permuted = np.asfortranarray(position[self._gather])
        return self._permuted

    def context(self, column, gather=None):
        """``(mean, mean |.|)`` of each odd voxel's neighbours in an int column.

        Integer sums (exact; one gather a direction from the column with a zero
        appended, which neighbours outside the mask point at), one float
        division: encoder and decoder agree bit for bit. (A sparse product was as
        fast but importing ``scipy.sparse`` cost the decoder 0.2 s.) ``gather``:
        ``permuted_gather()`` for a column in coding order.
        """
        gather = self._gather if gather is None else gather
        # int32 is exact: symbols are within +-2^16, six of them within +-2^19
        padded = np.zeros(column.size + 1, dtype=np.int32)
        padded[:-1] = column
        total = np.zeros(self.odd.size, dtype=np.int32)
        magnitude = np.zeros(self.odd.size, dtype=np.int32)
        for j in range(gather.shape[1]):
            vals = padded[gather[:, j]]
            total += vals
            magnitude += np.abs(vals)
        return total / self.count, magnitude / self.count


class Activity:
    """Per-voxel activity of the components decoded so far: ``sqrt(sum_j q_j^2 / ms_j)``.

    Voxels with large coefficients in earlier components (edges, vessels, CSF)
    have large ones in later components too, so the activity scales the Laplace
    models (measured 4 % smaller maps on the studyforrest run). ``ms_j`` is the
    column's mean square, an exact integer sum divided once; only elementwise
    float operations follow, so encoder and decoder agree bit for bit.
    """

    def __init__(self, n_voxels):
        self.acc = np.zeros(n_voxels, dtype=np.float64)
        self.n = 0

    def value(self):
        return np.sqrt(self.acc / self.n) if self.n else self.acc

    def add(self, column):
        sq = column.astype(np.int64) ** 2
        mean_sq = int(sq.sum()) / column.size
        if mean_sq > 0:
            self.acc += sq / mean_sq
        self.n += 1


def activity_rows(rows):
    """``Activity.value()`` before each component, for components given as rows
    (K x N): a (K, N) array, by ``Activity`` itself (the decoder's values, bit for bit).
    """
    out = np.empty(rows.shape)
    activity = Activity(rows.shape[1])
    for c, row in enumerate(rows):
        out[c] = activity.value()
        activity.add(row)
    return out
