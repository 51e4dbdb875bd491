"""The original run's side of FLA and FCA, computed once and reused for every method.

``nipype_icainr.metrics.fla_residuals`` and ``fca_residuals`` fit the
original's GLM and extract its region signals on every call; over a dozen
methods and several ratios that is most of the benchmark's time. ``Reference``
keeps the original's t-maps, its k-means parcellation and its region signals,
and ``fla``/``fca`` compare a decoded run with them using the same metric
functions (``first_level_tmaps``, ``region_signals``) and the same definitions
as ``fla_residuals``/``fca_residuals`` (``metrics.fla_from_tmaps``,
``metrics.fca_from_signals``; the tests check that both routes agree).
"""

from .. import metrics

#: k-means parcels of the original (the runs are in native space: no coordinate atlas)
N_PARCELS = 39


class Reference:
    """What the original run contributes to FLA and FCA, computed once.

    Parameters
    ----------
    inp : BenchInput
    events : pandas.DataFrame, optional
        BIDS events; without them there is no FLA.
    n_parcels : int
        k-means parcels for FCA (``kmeans_parcellation(..., seed=0)``), reduced
        to a quarter of the mask's voxel count on tiny inputs.
    """

    def __init__(self, inp, events=None, n_parcels=N_PARCELS, seed=0):
        self.inp = inp
        self.events = events
        self.mask_img = inp.mask_img()
        orig_img = inp.image_of(inp.data)
        self.n_parcels = int(max(2, min(n_parcels, int(inp.mask.sum()) // 4)))
        self.labels_img = metrics.kmeans_parcellation(orig_img, self.mask_img,
                                                      n_parcels=self.n_parcels, seed=seed)
        self.signals = metrics.region_signals(orig_img, self.mask_img, self.labels_img)
        self.tmaps = None
        if events is not None:
            self.tmaps = metrics.first_level_tmaps(orig_img, events, inp.tr, self.mask_img)

    def fla(self, decoded_img):
        """FLA figures of a decoded run (None without events)."""
        if self.tmaps is None:
            return None
        t_dec = metrics.first_level_tmaps(decoded_img, self.events, self.inp.tr,
                                          self.mask_img, list(self.tmaps))
        return metrics.fla_from_tmaps(self.tmaps, t_dec, self.inp.mask)

    def fca(self, decoded_img):
        """FCA figures of a decoded run over the original's parcels."""
        s_dec = metrics.region_signals(decoded_img, self.mask_img, self.labels_img)
        return metrics.fca_from_signals(self.signals, s_dec)
