"""``FactorModel``: the default series model, an explicitly coded factorization.

Configuration keys
------------------
dead_zone : float, 0..0.5
    Rounding offset of the dead-zone quantiser of maps and patterns (0: plain
    rounding; see ``quantise.DEAD_ZONE``).
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
map_reconstruction : "neighbours" or "centre"
    "neighbours": the decoder moves each map entry towards its neighbours'
    mean inside its quantisation cell, by a weight fitted per component
    (``neighbours``); "centre": plain reconstruction (the weights are stored as
    zeros), for comparison.
"""

import numpy as np

from ..config import Choice, Float, Int
from ..errors import ICAINRError
from ..models import Coded, SeriesModel
from .basis import principal_basis
from .coding import MAP_CODERS, MAX_COMPONENTS, TRANSFORMS, decode_factors, unpack
from .context import Checkerboard
from .quantise import DEAD_ZONE, dequantize
from .search import fit_to_error, refine, survey_and_choose

TAG = "FACT"


class FactorModel(SeriesModel):
    """Voxel maps x activation patterns, (K, step) searched for the byte budget."""

    name = "factor"
    sections = (TAG,)
    #: the survey chooses the mean frame's step with K and d (``MeanOption``s)
    plans_mean = True
    config_schema = {"dead_zone": Float(0.0, 0.5, DEAD_ZONE),
                     "max_components": Int(1, MAX_COMPONENTS, 256),
                     "psnr_slack_db": Float(0.0, 10.0, 0.0),
                     "components": Choice(("fewest", "most"), "fewest"),
                     "map_reconstruction": Choice(("neighbours", "centre"), "neighbours")}

    def fit(self, series, mask, budget, config, env):
        from threadpoolctl import threadpool_limits

        n_vox, n_t = series.shape
        if n_vox == 0:  # every voxel is constant: the mean frame is the whole run
            return self._mean_only(n_t, series)
        k_max = int(min(config["max_components"], n_t, n_vox))
        part = {"n_components": k_max, "patterns": "dct", "step": 1.0}
        overhead = len(budget.build(Coded({TAG: b""}, part)))
        cheapest_mean = min((o.bytes for o in budget.mean_options or []), default=0)
        if budget.target_bytes is not None and \
                budget.target_bytes - overhead - 16 - cheapest_mean < 0:
            raise budget.out_of_reach("header", overhead + 16 + cheapest_mean)
        board = Checkerboard(mask, move_maps=config["map_reconstruction"] == "neighbours")
        maps, _ = principal_basis(series, k_max)
        hint = budget.hint.part["step"] if budget.hint is not None else None
        dz = config["dead_zone"]
        # many small products: one BLAS thread measured 2x faster than two here
        with threadpool_limits(limits=1, user_api="blas"):
            if budget.target_bytes is None:
                fit = fit_to_error(series, maps, budget.max_sse, board, hint, dead_zone=dz)
            else:
                available = budget.target_bytes - overhead - 16  # the step's digits
                if budget.plan is not None and budget.plan.n_components == 0:
                    return self._mean_only(n_t, series)
                if budget.plan is not None:  # the survey chose: only the step is refined
                    fit = refine(series, maps[:, :budget.plan.n_components], available,
                                 board, budget.plan.step, dead_zone=dz,
                                 slope=budget.plan.slope)
                else:
                    plan, _ = survey_and_choose(
                        series, maps, board, available, hint, budget.mean_options,
                        config["psnr_slack_db"], config["components"],
                        energy=float(np.sum(series ** 2)), dead_zone=dz)
                    if plan is None:
                        raise budget.out_of_reach("header", overhead + 16 + cheapest_mean)
                    if plan.n_components == 0 and not budget.mean_options:
                        return self._mean_only(n_t, series)
                    if budget.mean_options:  # the codec recodes its mean frame, then refines
                        return Coded({}, dict(part, n_components=plan.n_components,
                                              step=plan.step), plan=plan)
                    fit = refine(series, maps[:, :plan.n_components], available, board,
                                 plan.step, dead_zone=dz, slope=plan.slope)
                if len(fit["payload"]) > available:
                    raise budget.out_of_reach("one coarse component",
                                              overhead + len(fit["payload"]))
        part.update(n_components=fit["n_components"], step=fit["step"])
        return Coded({TAG: fit["payload"]}, part, approx=fit["maps"] @ fit["patterns"],
                     final_loss=fit["sse"] / series.size, sse=fit["sse"])

    def _mean_only(self, n_t, series):
        """No component: the mean frame alone codes the run."""
        return Coded({TAG: b""}, {"n_components": 0, "patterns": "dct", "step": 1.0},
                     approx=np.zeros((series.shape[0], n_t)),
                     final_loss=float(np.mean(series ** 2)), sse=float(np.sum(series ** 2)))

    def mean_step_hint(self, part, n_timepoints):
        # the mean frame is a component whose unit-norm pattern is constant, 1/sqrt(T):
        # its values are quantised as finely as the maps when their step is step/sqrt(T)
        if not part.get("n_components"):
            return None
        return part["step"] / np.sqrt(n_timepoints)

    def validate(self, part, shape, n_voxels, source):
        out = {"n_components": part["n_components"], "patterns": part["patterns"],
               "step": part["step"], "n_timepoints": shape[3], "n_voxels": n_voxels,
               "maps": part.get("maps", "table"),  # absent from format 5 and 6 files
               # absent from format 6 files: their maps carry neighbour weights
               "neighbours": part.get("neighbours", True)}
        if out["patterns"] not in TRANSFORMS:
            raise ICAINRError(source, f"unknown pattern coding {str(out['patterns'])[:20]!r}")
        if out["maps"] not in MAP_CODERS:
            raise ICAINRError(source, f"unknown map coding {str(out['maps'])[:20]!r}")
        if not isinstance(out["neighbours"], bool):
            raise ICAINRError(source, "the factorization's neighbour flag must be true or false")
        # formats 2-3 repeated the length and the voxel count here
        if part.get("n_timepoints", shape[3]) != shape[3]:
            raise ICAINRError(source, "the factorization's length does not match the image")
        if part.get("n_voxels", n_voxels) != n_voxels:
            raise ICAINRError(source, "the factorization does not match the mask")
        k = out["n_components"]
        # the encoder keeps K <= min(T, voxels): the maps and patterns a file can ask the
        # decoder for are never larger than the run itself
        top = min(MAX_COMPONENTS, shape[3], n_voxels)
        if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= top:
            raise ICAINRError(source, f"implausible number of components {str(k)[:20]}")
        if isinstance(out["step"], bool) or not isinstance(out["step"], (int, float)):
            raise ICAINRError(source, "the factorization's step must be a positive number")
        out["step"] = float(out["step"])
        if not (np.isfinite(out["step"]) and out["step"] > 0):
            raise ICAINRError(source, "the factorization's step must be a positive number")
        return out

    def decode(self, sections, part, mask, device, source):
        n_t, transform = part["n_timepoints"], part["patterns"]
        if part["n_components"] == 0:  # the mean frame alone
            if sections[TAG]:
                raise ICAINRError(source, "the factor section should be empty")
            return np.zeros((int(mask.sum()), n_t))
        words, params, ranges, bands, weights = unpack(sections[TAG], source, n_t, transform,
                                                       part["neighbours"])
        if params.shape[0] != part["n_components"]:
            raise ICAINRError(source, "the factor section does not match the header")
        board = Checkerboard(mask)
        q_maps, q_patterns = decode_factors(words, params, ranges, bands, n_t, board, source,
                                            part["maps"])
        maps, patterns = dequantize(q_maps, q_patterns, part["step"], params, transform,
                                    weights, board)
        return maps @ patterns

    def describe(self, part):
        return (f"coded factorization, K={part['n_components']} voxel maps x activation "
                f"patterns, step {part['step']:.4g}")

    def from_format(self, part, version):
        # formats 2-4 coded every map symbol with its own Laplace; format 5 with tables;
        # format 6 added the neighbour weights
        if version < 6:
            part = dict(part, neighbours=False)
        return dict(part, maps="laplace") if version < 5 else part

    def from_legacy(self, arch, data, header):
        # format 2 files coded time-domain patterns and had no "patterns" key
        return dict({"patterns": "time"}, **arch, step=data["step"])
