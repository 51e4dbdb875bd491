"""``FactorModel``: the default series model, an explicitly coded factorization.

Configuration keys
------------------
max_components : int, 1..256
    Largest K the search may choose.
psnr_slack_db : float >= 0
    Among the K whose PSNR at the budget is within this many dB of the best
    K's (0 = best PSNR), the search keeps the fewest or the most, as
    ``components`` says.
components : "fewest" or "most"
    "fewest": fewer components at a finer step; "most" (the ``decoding``
    preset): more components at a coarser step, measured better linear-SVM
    decoding (Haxby slice).
"""

import numpy as np

from ..config import Choice, Float, Int
from ..errors import ICAINRError
from ..models import Coded, SeriesModel
from .basis import principal_basis
from .coding import MAX_COMPONENTS, TRANSFORMS, decode_factors, unpack
from .context import Checkerboard
from .quantise import dequantize
from .search import fit_to_budget

TAG = "FACT"


class FactorModel(SeriesModel):
    """Voxel maps x activation patterns, (K, step) searched for the byte budget."""

    name = "factor"
    sections = (TAG,)
    config_schema = {"max_components": Int(1, MAX_COMPONENTS, 256),
                     "psnr_slack_db": Float(0.0, 10.0, 0.5),
                     "components": Choice(("fewest", "most"), "fewest")}

    def fit(self, series, mask, budget, config, env):
        from threadpoolctl import threadpool_limits

        n_vox, n_t = series.shape
        k_max = int(min(config["max_components"], n_t, n_vox))
        part = {"n_components": k_max, "patterns": "dct", "step": 1.0}
        overhead = len(budget.build(Coded({TAG: b""}, part)))
        available = budget.target_bytes - overhead - 64  # the step's digits may grow the header
        floor = 64 + 2 * n_t + n_vox // 8  # one coarse component
        if available < floor:
            raise budget.out_of_reach("one coarse component", overhead + floor)
        board = Checkerboard(mask)
        maps, _ = principal_basis(series, k_max)
        # many small products: one BLAS thread measured 2x faster than two here
        with threadpool_limits(limits=1, user_api="blas"):
            fit = fit_to_budget(series, maps, available, board, config["psnr_slack_db"],
                                config["components"])
        part.update(n_components=fit["n_components"], step=fit["step"])
        coded = Coded({TAG: fit["payload"]}, part, approx=fit["maps"] @ fit["patterns"],
                      final_loss=fit["sse"] / series.size)
        size = len(budget.build(coded))
        if size > budget.target_bytes * 1.02:
            best = budget.raw_bytes / (size - len(fit["payload"]) + 8 * n_t)
            raise ICAINRError(budget.source,
                              f"ratio {budget.raw_bytes / budget.target_bytes:g} is out of "
                              f"reach: the mask, mean frame and one coarse component already "
                              f"need a ratio below {best:.1f}")
        return coded

    def validate(self, part, shape, n_voxels, source):
        out = {"n_components": part["n_components"], "patterns": part["patterns"],
               "step": part["step"], "n_timepoints": shape[3], "n_voxels": n_voxels}
        if out["patterns"] not in TRANSFORMS:
            raise ICAINRError(source, f"unknown pattern coding {str(out['patterns'])[:20]!r}")
        # formats 2-3 repeated the length and the voxel count here
        if part.get("n_timepoints", shape[3]) != shape[3]:
            raise ICAINRError(source, "the factorization's length does not match the image")
        if part.get("n_voxels", n_voxels) != n_voxels:
            raise ICAINRError(source, "the factorization does not match the mask")
        k = out["n_components"]
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_COMPONENTS:
            raise ICAINRError(source, f"implausible number of components {str(k)[:20]}")
        if isinstance(out["step"], bool) or not isinstance(out["step"], (int, float)):
            raise ICAINRError(source, "the factorization's step must be a positive number")
        out["step"] = float(out["step"])
        if not (np.isfinite(out["step"]) and out["step"] > 0):
            raise ICAINRError(source, "the factorization's step must be a positive number")
        return out

    def decode(self, sections, part, mask, device, source):
        n_t, transform = part["n_timepoints"], part["patterns"]
        words, params, ranges, bands = unpack(sections[TAG], source, n_t, transform)
        if params.shape[0] != part["n_components"]:
            raise ICAINRError(source, "the factor section does not match the header")
        board = Checkerboard(mask)
        q_maps, q_patterns = decode_factors(words, params, ranges, bands, n_t, board, source)
        maps, patterns = dequantize(q_maps, q_patterns, part["step"], params, transform)
        return maps @ patterns

    def describe(self, part):
        return (f"coded factorization, K={part['n_components']} voxel maps x activation "
                f"patterns, step {part['step']:.4g}")

    def from_legacy(self, arch, data, header):
        # format 2 files coded time-domain patterns and had no "patterns" key
        return dict({"patterns": "time"}, **arch, step=data["step"])
