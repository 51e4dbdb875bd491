"""``FactorModel``: the default series model, an explicitly coded factorization."""

import numpy as np

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

    def fit(self, series, mask, budget, config, env):
        from threadpoolctl import threadpool_limits

        n_vox, n_t = series.shape
        k_max = int(min(config["max_components"], n_t, n_vox))
        arch = {"model": self.name, "n_components": k_max, "n_timepoints": n_t,
                "n_voxels": int(n_vox), "patterns": "dct"}
        overhead = len(budget.build(Coded({TAG: b""}, arch, {"step": 1.0})))
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
        arch["n_components"] = fit["n_components"]
        coded = Coded({TAG: fit["payload"]}, arch, {"step": fit["step"]},
                      approx=fit["maps"] @ fit["patterns"], final_loss=fit["sse"] / series.size)
        size = len(budget.build(coded))
        if size > budget.target_bytes * 1.02:
            best = budget.raw_bytes / (size - len(fit["payload"]) + 8 * n_t)
            raise ICAINRError(budget.source,
                              f"ratio {budget.raw_bytes / budget.target_bytes:g} is out of "
                              f"reach: the mask, mean frame and one coarse component already "
                              f"need a ratio below {best:.1f}")
        return coded

    def validate_arch(self, header, shape, source):
        arch, data = header["arch"], header["data"]
        out = {"model": self.name, "n_components": int(arch["n_components"]),
               "n_timepoints": int(arch["n_timepoints"]), "n_voxels": int(arch["n_voxels"]),
               # format 2 files coded time-domain patterns and had no such key
               "patterns": str(arch.get("patterns", "time"))}
        if out["patterns"] not in TRANSFORMS:
            raise ICAINRError(source, f"unknown pattern coding {out['patterns']!r}")
        if out["n_timepoints"] != shape[3]:
            raise ICAINRError(source, "the factorization's length does not match the image")
        if not 1 <= out["n_components"] <= MAX_COMPONENTS:
            raise ICAINRError(source, f"implausible number of components {out['n_components']}")
        if out["n_voxels"] != int(data["n_voxels"]) or \
                not 1 <= out["n_voxels"] <= int(np.prod(shape[:3])):
            raise ICAINRError(source, "the factorization does not match the mask")
        step = float(data["step"])
        if not (np.isfinite(step) and step > 0):
            raise ICAINRError(source, "the factorization's step must be a positive number")
        return out

    def decode(self, sections, header, arch, data, config, mask, device, source):
        n_t, transform = arch["n_timepoints"], arch["patterns"]
        words, params, ranges, bands = unpack(sections[TAG], source, n_t, transform)
        if params.shape[0] != arch["n_components"]:
            raise ICAINRError(source, "the factor section does not match the header")
        board = Checkerboard(mask)
        q_maps, q_patterns = decode_factors(words, params, ranges, bands, n_t, board, source)
        maps, patterns = dequantize(q_maps, q_patterns, float(data["step"]), params, transform)
        return maps @ patterns

    def describe(self, arch):
        return (f"coded factorization, K={arch['n_components']} voxel maps x activation "
                f"patterns of T={arch['n_timepoints']}")
