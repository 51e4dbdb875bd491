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
regional_share : float, 0..0.5
    Share of the file reserved for the regional layer (``regional``): block
    averages of the factorization's residual, which keep region averages and
    region-to-region correlations close; 0 codes no layer. The factorization
    gets the rest, and the layer whatever the factorization leaves.
regional_voxels : int, 2..16
    The layer's block edge in voxels along each axis (at most the grid's size):
    4 (64-voxel blocks) measured as good as or better than a fixed edge of 10, 14
    or 20 mm on runs of 2.4 to 5 mm voxels.
"""

import numpy as np

from ..config import Choice, Float, Int
from ..errors import ICAINRError
from ..models import Coded, SeriesModel
from .basis import principal_basis
from . import regional
from .coding import MAP_CODERS, MAX_COMPONENTS, TRANSFORMS, decode_factors, unpack
from .context import Checkerboard
from .quantise import DEAD_ZONE, dequantize
from .search import fit_to_error, refine, survey_and_choose

TAG = "FACT"

#: at most this many components, the regional layer is given the room it needs
#: (``FactorModel.fit``): measured on 10x10x18x40 crops of two real runs at 100x, one
#: component and no layer gave FCA 0.62-0.93 against the best peer's 0.23-0.31; on
#: the HAPPYTEST crop, two components and no layer gave 0.55 (compact parcels), one
#: with the layer 0.25 for 0.3 dB
FEW_COMPONENTS = 2


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
                     "map_reconstruction": Choice(("neighbours", "centre"), "neighbours"),
                     "regional_share": Float(0.0, 0.5, 0.08),
                     "regional_voxels": Int(2, 16, 4)}

    def required_sections(self, part):
        return self.sections + ((regional.TAG,) if "regional_block" in part else ())

    def fit(self, series, mask, budget, config, env):
        from threadpoolctl import threadpool_limits

        n_vox, n_t = series.shape
        if n_vox == 0:  # every voxel is constant: the mean frame is the whole run
            return self._mean_only(series)
        k_max = int(min(config["max_components"], n_t, n_vox))
        part = {"n_components": k_max, "patterns": "dct", "step": 1.0}
        if budget.plan is not None and (budget.plan.n_components > 0 or
                                        budget.plan.regional is not None):
            # refining a plan: the layer it was made with, not one planned afresh (a plan
            # made without a layer, refined with a layer's reserve held back, could be left
            # no bytes at all)
            blocks, reserve = self._planned_layer(mask, budget.plan)
        else:
            blocks, reserve = self._regional_plan(mask, n_t, budget, config, budget.plan)
        cheapest_mean = min((o.bytes for o in budget.mean_options or []), default=0)
        # the bound names a file with no regional layer: the layer is optional, and its
        # header keys would otherwise make the bound depend on the ratio asked
        bare = len(budget.build(self._probe(part, None)))
        floor = bare + 16 + cheapest_mean
        if budget.target_bytes is not None and budget.target_bytes < floor:
            raise budget.out_of_reach("header", floor)
        overhead = len(budget.build(self._probe(part, blocks)))
        board = Checkerboard(mask, move_maps=config["map_reconstruction"] == "neighbours")
        maps, _ = principal_basis(series, k_max)
        hint = budget.hint.part["step"] if budget.hint is not None else None
        dz = config["dead_zone"]
        # many small products: one BLAS thread measured 2x faster than two here
        with threadpool_limits(limits=1, user_api="blas"):
            if budget.target_bytes is None:
                fit = fit_to_error(series, maps, budget.max_sse, board, hint, dead_zone=dz)
                blocks = None
            else:
                # the factorization's share; the layer gets what it leaves (``_with_layer``)
                available = budget.target_bytes - overhead - 16 - reserve
                if budget.plan is not None and budget.plan.n_components == 0:
                    return self._mean_only(series, blocks, budget)
                if budget.plan is not None:  # the survey chose: only the step is refined
                    slope = budget.plan.slope
                    fit = refine(series, maps[:, :budget.plan.n_components], available,
                                 board, budget.plan.step, dead_zone=dz, slope=slope)
                else:
                    energy = float(np.sum(series ** 2))

                    def survey(room):
                        return survey_and_choose(
                            series, maps, board, room, hint, budget.mean_options,
                            config["psnr_slack_db"], config["components"], energy=energy,
                            dead_zone=dz)[0]

                    plan = survey(available)
                    if plan is None and blocks is not None:
                        # the layer's reserve left no mean frame room: plan without a
                        # layer (a 26x31x22x2 run at 85x was refused while the error
                        # said any ratio below 88.3 was in reach)
                        blocks, reserve = None, 0
                        available = budget.target_bytes - bare - 16
                        plan = survey(available)
                    if plan is None:
                        raise budget.out_of_reach("header", floor)
                    if plan.n_components <= FEW_COMPONENTS and blocks is None:
                        # one component makes every region-to-region correlation +-1,
                        # two put every region's series in one plane, none leaves them
                        # undefined: the regional layer (dynamics that are smooth in
                        # space) is given the room it needs, if any is left
                        layered, more = self._regional_plan(mask, n_t, budget, config, plan)
                        if layered is not None:
                            wider = len(budget.build(self._probe(part, layered)))
                            again = survey(budget.target_bytes - wider - 16 - more)
                            if again is not None and again.n_components <= FEW_COMPONENTS:
                                plan, blocks, reserve, overhead = again, layered, more, wider
                                available = budget.target_bytes - overhead - 16 - reserve
                    if plan.n_components == 0 and not budget.mean_options:
                        return self._mean_only(series, blocks, budget)
                    plan.regional = None if blocks is None else (blocks.factors, reserve)
                    if budget.mean_options:  # the codec recodes its mean frame, then refines
                        return Coded({}, dict(part, n_components=plan.n_components,
                                              step=plan.step), plan=plan)
                    slope = plan.slope
                    fit = refine(series, maps[:, :plan.n_components], available, board,
                                 plan.step, dead_zone=dz, slope=slope)
                if len(fit["payload"]) > available + reserve:
                    raise budget.out_of_reach("one coarse component",
                                              overhead + len(fit["payload"]))
        part.update(n_components=fit["n_components"], step=fit["step"])
        if blocks is not None:
            means = blocks.means(series)
            sections, layered, sse, layer = self._with_layer(means, fit, part, blocks, budget)
            if layer is not None:
                # a layer at its finest step can leave bytes (studyforrest at 100x: 2.7 %
                # of the file): the factorization takes them, starting at the step one
                # secant along its size-step power law predicts, then at most two more
                # secants until the file is within 1 % of the target; the layer is refitted
                spare = budget.target_bytes - len(budget.build(Coded(sections, layered)))
                size = len(fit["payload"])
                if spare > max(0.01 * budget.target_bytes, regional.MIN_BYTES) and size:
                    slope = min(slope, -0.05)
                    step = fit["step"] * ((size + 0.98 * spare) / size) ** (1.0 / slope)
                    more = refine(series, maps[:, :fit["n_components"]], size + spare, board,
                                  step, tolerance=0.01 * budget.target_bytes / (size + spare),
                                  max_evals=3, dead_zone=dz, slope=slope)
                    if len(more["payload"]) <= size + spare:
                        again = self._with_layer(
                            means, more, dict(part, n_components=more["n_components"],
                                              step=more["step"]), blocks, budget)
                        if again[3] is not None and again[2] < sse:
                            fit, (sections, layered, sse, layer) = more, again
                return self._coded(series, fit, sections, layered, sse, blocks, layer)
            # no layer fitted after all: the factorization takes its reserve too
            fit = refine(series, maps[:, :fit["n_components"]], available + reserve, board,
                         fit["step"], dead_zone=dz)
            part.update(n_components=fit["n_components"], step=fit["step"])
        return self._coded(series, fit, {TAG: fit["payload"]}, part, fit["sse"])

    def flat_dynamics(self, part):
        # the case ``FEW_COMPONENTS`` gives the regional layer room for, without the layer
        return part["n_components"] <= FEW_COMPONENTS and "regional_block" not in part

    def keeps_dynamics(self, part):
        return part["n_components"] > 0 or "regional_block" in part

    def without_connectivity_layer(self, config, part):
        if "regional_block" not in part:
            return None
        return dict(config, regional_share=0.0)

    def _regional_plan(self, mask, n_t, budget, config, plan=None):
        """``(Blocks, bytes reserved)`` for the regional layer, or ``(None, 0)``: none is
        coded for an error target, a zero share, blocks of about one voxel, or a
        reserve too small to hold one. When ``plan`` keeps at most ``FEW_COMPONENTS``
        components, the reserve is at least what the layer needs at its coarsest step."""
        if budget.target_bytes is None or config["regional_share"] <= 0:
            return None, 0
        reserve = config["regional_share"] * budget.target_bytes
        forced = plan is not None and plan.n_components <= FEW_COMPONENTS
        if reserve < regional.MIN_BYTES and not forced:  # no blocks built for nothing
            return None, 0
        blocks = regional.Blocks(mask, regional.block_factors(mask.shape,
                                                              config["regional_voxels"]))
        if not blocks.worth_coding():
            return None, 0
        least = regional.least_bytes(blocks, n_t)  # at least MIN_BYTES
        if forced:
            reserve = max(reserve, least)
        # the mean frame is chosen around the reserve: hold it back only when the
        # layer will fit in it even at its coarsest step
        if reserve < least:
            return None, 0
        return blocks, reserve

    @staticmethod
    def _planned_layer(mask, plan):
        """``(Blocks, bytes reserved)`` of the layer ``plan`` was made with, or ``(None, 0)``."""
        if plan.regional is None:
            return None, 0
        factors, reserve = plan.regional
        return regional.Blocks(mask, factors), reserve

    def _probe(self, part, blocks, payload=b"", step=1.234e+56):
        """A ``Coded`` the size of the file's parts (``step``: as many digits as any)."""
        if blocks is None:
            return Coded({TAG: payload}, part)
        return Coded({TAG: payload, regional.TAG: b""},
                     dict(part, regional_block=list(blocks.factors), regional_step=step))

    def _with_layer(self, series_means, fit, part, blocks, budget):
        """The regional layer in the bytes ``fit`` leaves (``fit`` without ``maps``: no
        component). ``series_means`` are the series' block means. Returns ``(sections,
        part, squared error, layer (B, T))``, the layer None when none fits."""
        residual = series_means
        if "maps" in fit:
            residual = series_means - blocks.means(fit["maps"]) @ fit["patterns"]
        # a varint's growth and the step's digits
        room = budget.target_bytes - len(budget.build(self._probe(part, blocks,
                                                                  fit["payload"]))) - 4
        found = regional.fit(blocks, residual, room)
        if found is None:
            return {TAG: fit["payload"]}, part, fit["sse"], None
        payload, layer, step = found
        return ({TAG: fit["payload"], regional.TAG: payload},
                dict(part, regional_block=list(blocks.factors), regional_step=step),
                fit["sse"] + regional.sse_change(blocks, residual, layer), layer)

    def _coded(self, series, fit, sections, part, sse, blocks=None, layer=None):
        """The ``Coded`` of ``fit`` (without ``maps``: no component) and ``layer``: the
        decoded series made once, for the fit that is kept."""
        if "maps" in fit:
            approx = fit["maps"] @ fit["patterns"]
        else:
            approx = np.zeros(series.shape)
        if layer is not None:
            blocks.add_to(approx, layer)
        return Coded(sections, part, approx=approx, final_loss=sse / series.size, sse=sse)

    def _mean_only(self, series, blocks=None, budget=None):
        """No component: the mean frame codes the run, with the regional layer when
        ``blocks`` are given and it fits the ``budget``."""
        fit = {"payload": b"", "sse": float(np.sum(series ** 2))}
        part = {"n_components": 0, "patterns": "dct", "step": 1.0}
        sections, part, sse, layer = {TAG: b""}, part, fit["sse"], None
        if blocks is not None:
            sections, part, sse, layer = self._with_layer(blocks.means(series), fit, part,
                                                          blocks, budget)
        return self._coded(series, fit, sections, part, sse, blocks, layer)

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
        if "regional_block" in part or "regional_step" in part:
            factors, step = part.get("regional_block"), part.get("regional_step")
            if not (isinstance(factors, list) and len(factors) == 3 and
                    all(isinstance(f, int) and not isinstance(f, bool) and
                        1 <= f <= regional.MAX_FACTOR for f in factors)):
                raise ICAINRError(source, "the regional layer's blocks must be three "
                                          f"integers in [1, {regional.MAX_FACTOR}]")
            if isinstance(step, bool) or not isinstance(step, (int, float)) or \
                    not (np.isfinite(step) and step > 0):
                raise ICAINRError(source, "the regional layer's step must be a positive "
                                          "number")
            out.update(regional_block=factors, regional_step=float(step))
        return out

    def decode(self, sections, part, mask, device, source):
        n_t = part["n_timepoints"]
        blocks = None
        if "regional_block" in part:
            blocks = regional.Blocks(mask, part["regional_block"])
            if blocks.n_blocks == 0:
                raise ICAINRError(source, "the regional layer has no block")
        approx = self._decode_factors(sections, part, mask, source)
        if blocks is not None:
            layer = regional.decode(sections[regional.TAG], blocks.n_blocks, n_t,
                                    part["regional_step"], source)
            blocks.add_to(approx, layer)
        return approx

    def _decode_factors(self, sections, part, mask, source):
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
        if not self.keeps_dynamics(part):
            return "coded factorization, K=0: the mean frame alone (no time course)"
        if part["n_components"]:
            text = (f"coded factorization, K={part['n_components']} voxel maps x activation "
                    f"patterns, step {part['step']:.4g}")
        else:
            text = "coded factorization, K=0: the mean frame"
        if "regional_block" in part:
            x, y, z = part["regional_block"]
            text += (f"; regional layer of {x}x{y}x{z}-voxel blocks, "
                     f"step {part['regional_step']:.4g}")
        return text

    def from_format(self, part, version):
        # formats 2-4 coded every map symbol with its own Laplace; format 5 with tables;
        # format 6 added the neighbour weights
        if version < 6:
            part = dict(part, neighbours=False)
        return dict(part, maps="laplace") if version < 5 else part

    def from_legacy(self, arch, data, header):
        # format 2 files coded time-domain patterns and had no "patterns" key
        return dict({"patterns": "time"}, **arch, step=data["step"])
