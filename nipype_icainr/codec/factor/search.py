"""The rate search: the number of components K, the step d, and the mean frame's step.

1. Survey: at a few steps spanning the useful range, the size and error of every
   K at once (``survey_step``; sizes from the entropy models' probabilities,
   errors from the least-squares algebra, no N x T product).
2. Choice: for each K, interpolate (log-log in the step) where its size meets the
   bytes left, and its error there. When the caller offers mean-frame steps
   (``MeanOption``: the mean frame's bytes and the squared error its
   quantisation adds), the bytes left and the error depend on that choice too,
   and (mean step, K, d) are chosen together: one rate-distortion choice.
3. Refinement: secant search of the chosen K's step on real encodings until the
   section is within 0.6 % under the bytes left (``refine``).
"""

import math
from dataclasses import dataclass

import numpy as np

from ..models import MeanOption
from .coding import PARAMS, component_jobs, encode_factors, estimate_component_bytes, pack
from .quantise import MAX_SYMBOL, dequantize, prefix_errors, quantize_all, squared_error


#: d log size / d log step assumed where the survey gives none (refine's first secant)
GENERIC_SLOPE = -0.5


@dataclass
class Plan:
    """The survey's choice: which mean option, how many components, which step."""

    option: int
    n_components: int
    step: float
    error: float
    #: d log size / d log step there, from the surveyed sizes (``refine``'s first secant)
    slope: float = GENERIC_SLOPE
    #: the regional layer the plan leaves room for: ``(block edges, bytes reserved)``, or
    #: None (set by the model that made the plan; its refinement must reserve the same)
    regional: object = None
    #: squared error one byte fewer would add there (the survey's choice at a budget
    #: ``PRICE_SHARE`` smaller), or None: what a byte spent elsewhere in the file costs
    price: object = None


#: the budget cut the marginal price of a byte is measured over (``Plan.price``)
PRICE_SHARE = 0.02


def code_at_step(series, maps, step, board, energy=None, dead_zone=None):
    """Quantise and code the first ``maps.shape[1]`` components at ``step``.

    Returns a dict with ``payload`` (section bytes), ``maps``/``patterns``
    (decoded, float64) and ``sse`` (squared error against ``series``).
    """
    energy = float(np.sum(series ** 2)) if energy is None else energy
    q = quantize_all(series, maps, step, dead_zone=dead_zone, board=board)
    step, q_maps, q_patterns, steps, cross, gram = (q.step, q.q_maps, q.q_patterns, q.steps,
                                                    q.cross, q.gram)
    # the weights are stored even when the maps are not moved (zeros): one format
    weights = q.weights if q.weights is not None else np.zeros(maps.shape[1], np.uint8)
    # the decoded maps (N x K float64) are freed while the coder's own N x K working
    # copies exist, and made again after: the peak memory of a large run is lower by
    # their size (a 97 x 115 x 97 x 300 float32 run: 4.8 GB with them held, 4.3 without)
    del q
    words, params, ranges, bands = encode_factors(q_maps, q_patterns, steps, board)
    maps_d, patterns_d = dequantize(q_maps, q_patterns, step, params, weights=weights,
                                    board=board)
    return {"payload": pack(words, params, ranges, bands, weights), "maps": maps_d,
            "patterns": patterns_d,
            "sse": squared_error(energy, gram, cross, patterns_d), "step": float(step),
            "n_components": int(maps.shape[1])}


def survey_step(series, maps, step, board, energy, transform="dct", dead_zone=None):
    """Section size and error of every K <= maps.shape[1] at one ``step``.

    Components are coded one after another and each one's models depend only
    on the components before it, so the size of the first K components is a
    prefix sum of per-component sizes (each estimated from its models,
    ``coding.estimate_bytes``). The error of each K uses patterns refitted to
    the first K maps. Returns ``(sizes bytes (K,), sse (K,))`` for K = 1..K_max.
    """
    q = quantize_all(series, maps, step, transform, dead_zone, board)
    q_maps, q_patterns, steps, exact, cross, gram = (q.q_maps, q.q_patterns, q.steps, q.exact,
                                                     q.cross, q.gram)
    del q  # the decoded maps: not needed for the sizes (memory, as in ``code_at_step``)
    jobs, _, _, bands = component_jobs(q_maps, q_patterns, steps, board, transform,
                                       multipliers=False)
    n_bands = 0 if bands is None else bands.shape[1]
    per = estimate_component_bytes(jobs) + 4.0 * (len(PARAMS) + 4) + n_bands + 1
    sizes = np.cumsum(per) + 4
    # the patterns' quantisation error, component by component (cross terms
    # dropped): without it the survey favours many coarsely coded patterns
    coded = q_patterns * steps[:, None].astype(np.float64)
    pattern_err = np.cumsum(np.diag(gram) * np.sum((coded - exact) ** 2, axis=1))
    return sizes, prefix_errors(energy, gram, cross) + pattern_err


#: the survey looks at a sample of the voxels when there are more than this many
#: coefficients (voxels x components): every other or every fourth pair of slices
SURVEY_SAMPLE_ABOVE = 2_000_000


def survey(series, maps, board, budget, hint=None, n_survey=7, dead_zone=None, logs=None):
    """``(log steps (S,), sizes (S, K), errors (S, K))`` over a range of steps.

    Centred on ``hint`` (a step from an earlier fit) when given, else on the
    step that spreads ``budget`` bytes over every coefficient at ~1.5 bits;
    ``logs`` gives the log steps explicitly. Steps below the finest the
    quantiser uses (``finest_log_step``) are moved up to it: they would all
    code alike. Large runs are surveyed on slabs of their slices
    (``Checkerboard.slabs``) and the sizes and errors scaled up by the voxel
    count: the survey only chooses K and a first step, which ``refine`` then
    settles on every voxel.
    """
    scale = 1.0
    keep_every = 1
    while maps.size / keep_every > SURVEY_SAMPLE_ABOVE and keep_every < 2 and \
            board.mask.shape[2] >= 8 * keep_every:
        keep_every *= 2
    if keep_every > 1:
        sub, rows = board.slabs(keep_every)
        if rows.size >= 1000:
            scale = series.shape[0] / rows.size
            series, maps, board = series[rows], maps[rows], sub
            budget = budget / scale
    energy = float(np.sum(series ** 2))
    if logs is None:
        if hint:
            logs = math.log(hint) + np.linspace(-1.5, 1.5, 6)
        else:
            rms = math.sqrt(float(np.mean(maps ** 2))) or 1.0
            bits = 8.0 * max(budget, 1.0) / maps.size
            centre = math.log(rms) - math.log(2.0) * (bits - 1.5)
            logs = centre + np.linspace(-2.0, 2.0, n_survey)
        floor = finest_log_step(maps)
        if logs.min() < floor:  # a tiny run's budget spread over few coefficients
            logs = logs - logs.min() + floor
    table = survey_steps(series, maps, logs, board, energy, dead_zone)
    return (np.array([t[0] for t in table]), scale * np.array([t[1] for t in table]),
            scale * np.array([t[2] for t in table]))


#: the survey's steps run in two threads when each step's maps are at most this many
#: coefficients (studyforrest's sampled 3.8 million: fit 9.7 -> 8.6 s, mean of two runs);
#: above it two steps' working copies at once would raise the peak memory of large runs
THREADED_SURVEY_UP_TO = 8_000_000


def survey_steps(series, maps, logs, board, energy, dead_zone=None):
    """``[(log step, sizes, errors)]`` of ``survey_step`` at each of ``logs``.

    The steps are independent, and numpy releases the GIL in the products and
    the context gathering: on two or more cores, and for maps of at most
    ``THREADED_SURVEY_UP_TO`` coefficients, two steps run at once. Each step's
    result does not depend on the others', so the output is the same.
    """
    import os

    def one(ls):
        return (ls,) + tuple(survey_step(series, maps, math.exp(ls), board, energy,
                                         dead_zone=dead_zone))

    if (os.cpu_count() or 1) < 2 or len(logs) < 2 or maps.size > THREADED_SURVEY_UP_TO:
        return [one(ls) for ls in logs]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(one, logs))


def finest_log_step(maps):
    """Log of the finest step ``quantize_all`` codes at: the largest map entry at
    ``MAX_SYMBOL - 1`` steps."""
    return math.log(max(float(np.abs(maps).max(initial=0.0)) / (MAX_SYMBOL - 1), 1e-30))


def survey_and_choose(series, maps, board, budget, hint=None, options=None, psnr_slack_db=0.0,
                      components="fewest", energy=None, dead_zone=None, max_extensions=3,
                      n_survey=7):
    """``survey`` then ``choose``; while the choice sits on an edge of the surveyed
    steps, survey three more steps beyond that edge and choose again.

    An edge choice means the best point may lie outside the range: at the
    coarsest step, more components coded more coarsely (or any component at
    all, where only K = 0 fitted); at the finest, a finer step. Runs whose
    budget is far from the ~1.5 bits a coefficient the survey is centred on
    (tiny runs: few voxels, many time points) need this. Returns ``(plan,
    (steps, sizes, errs))``; the plan is ``None`` when nothing fits.
    """
    steps, sizes, errs = survey(series, maps, board, budget, hint, n_survey, dead_zone)
    floor = finest_log_step(maps)
    plan = choose(steps, sizes, errs, budget, options, psnr_slack_db, components, energy)
    for _ in range(max_extensions):
        spacing = float(np.median(np.diff(np.sort(steps)))) if steps.size > 1 else 0.67
        if plan is None or math.log(plan.step) >= steps.max() - 1e-9:
            more = steps.max() + spacing * np.arange(1, 4)
        elif math.log(plan.step) <= steps.min() + 1e-9 and steps.min() > floor + 1e-9:
            more = np.maximum(steps.min() - spacing * np.arange(1, 4), floor)
            more = np.unique(more[more < steps.min()])
        else:
            break
        extra = survey(series, maps, board, budget, dead_zone=dead_zone, logs=more)
        order = np.argsort(np.concatenate([steps, extra[0]]))
        steps, sizes, errs = (np.concatenate([a, b])[order]
                              for a, b in zip((steps, sizes, errs), extra))
        again = choose(steps, sizes, errs, budget, options, psnr_slack_db, components, energy)
        if again is None or (plan is not None and again.n_components == plan.n_components
                             and again.option == plan.option and again.step == plan.step):
            plan = again if plan is None else plan
            break
        plan = again
    if plan is not None:
        cut = max(PRICE_SHARE * budget, 8.0)
        below = choose(steps, sizes, errs, budget - cut, options, psnr_slack_db, components,
                       energy)
        if below is not None and below.error >= plan.error:
            plan.price = (below.error - plan.error) / cut
    return plan, (steps, sizes, errs)


def at_size(steps, sizes, errs, available):
    """For each K: ``(error, log step, slope)`` where its size meets ``available`` bytes;
    ``slope`` is d log size / d log step between the surveyed steps around it."""
    out = {}
    if available <= 0:
        return out
    target = math.log(available)
    for k in range(sizes.shape[1]):
        s_k = np.log(np.maximum(sizes[:, k], 1e-9))
        inside = np.flatnonzero(s_k <= target)
        outside = np.flatnonzero(s_k > target)
        if not inside.size:
            continue
        i = inside[np.argmin(steps[inside])]
        if outside.size:
            j = outside[np.argmax(steps[outside])]
            frac = (target - s_k[i]) / (s_k[j] - s_k[i])
            slope = (s_k[j] - s_k[i]) / (steps[j] - steps[i]) if steps[j] != steps[i] \
                else GENERIC_SLOPE
            out[k + 1] = (errs[i, k] + frac * (errs[j, k] - errs[i, k]),
                          steps[i] + frac * (steps[j] - steps[i]), slope)
        else:  # fits even at the finest surveyed step
            out[k + 1] = (errs[i, k], steps[i], GENERIC_SLOPE)
    return out


def choose(steps, sizes, errs, budget, options=None, psnr_slack_db=0.0, components="fewest",
           energy=None):
    """The (mean option, K, step) with the least total error that fits; ``None`` if none.

    With ``energy`` (the series' squared norm), K = 0 is a choice too: no
    component, the mean frame alone (what a tiny budget can afford).

    Among the choices within ``psnr_slack_db`` of the least error, the fewest
    (or, ``components="most"``, the most) components win: past the knee, more
    components at a coarser step buy little PSNR and cost the GLM t-maps and
    connectivity (measured on the studyforrest run).
    """
    options = options or [MeanOption(step=0.0, bytes=0.0, sse=0.0)]
    candidates = []  # (total error, K, option index, log step, slope)
    for index, option in enumerate(options):
        left = budget - option.bytes
        for k, (err, log_step, slope) in at_size(steps, sizes, errs, left).items():
            candidates.append((err + option.sse, k, index, log_step, slope))
        if energy is not None and left >= 0:
            candidates.append((energy + option.sse, 0, index, float(steps.max()),
                               GENERIC_SLOPE))
    if not candidates:
        return None
    least = min(c[0] for c in candidates)
    near = [c for c in candidates if c[0] <= least * 10 ** (psnr_slack_db / 10)]
    pick = max if components == "most" else min
    k = pick(c[1] for c in near)
    total, k, index, log_step, slope = min(c for c in near if c[1] == k)
    return Plan(option=index, n_components=k, step=math.exp(log_step), error=total,
                slope=float(slope))


def fit_to_budget(series, maps, budget, board, psnr_slack_db=0.0, components="fewest",
                  n_survey=7, hint=None, dead_zone=None):
    """Best (K, step) whose section fits ``budget`` bytes (survey, choice, refinement).

    Returns the winning ``code_at_step`` dict, or the smallest attempt when
    nothing fits.
    """
    plan, (steps, _, _) = survey_and_choose(series, maps, board, budget, hint, None,
                                            psnr_slack_db, components, dead_zone=dead_zone,
                                            n_survey=n_survey)
    if plan is None:
        return code_at_step(series, maps[:, :1], math.exp(steps.max()), board,
                            dead_zone=dead_zone)
    return refine(series, maps[:, :plan.n_components], budget, board, plan.step,
                  dead_zone=dead_zone, slope=plan.slope)


def refine(series, maps, budget, board, guess, tolerance=0.006, max_evals=12, dead_zone=None,
           slope=GENERIC_SLOPE):
    """Finest step for these components whose section fits ``budget``.

    The section size falls smoothly with the step (close to a power law), so
    the step is found by secants on ``log size`` against ``log step``, kept
    inside the bracket once there is one, until the size is within
    ``tolerance`` below budget. The first secant uses ``slope`` (d log size /
    d log step), the survey's when it has one: on the studyforrest run it was
    -1.65 where the generic -0.5 took one more encoding. Returns the best fit,
    or the smallest attempt when none fits.
    """
    energy = float(np.sum(series ** 2))
    target = math.log(budget)
    below = above = None  # (log step, log size) with size <= budget / > budget
    best, smallest, last = None, None, None
    log_step = math.log(guess)
    slope = min(float(slope), -0.05)  # d log size / d log step, refined by secants
    for _ in range(max_evals):
        trial = code_at_step(series, maps, math.exp(log_step), board, energy, dead_zone)
        size = len(trial["payload"])
        if smallest is None or size < len(smallest["payload"]):
            smallest = trial
        point = (log_step, math.log(size))
        if last is not None and point[0] != last[0] and point[1] != last[1]:
            slope = min((point[1] - last[1]) / (point[0] - last[0]), -0.05)
        last = point
        if size <= budget:
            if best is None or trial["step"] < best["step"]:
                best = trial
            below = point if below is None or point[0] < below[0] else below
            if size >= budget * (1.0 - tolerance):
                break
        else:
            above = point if above is None or point[0] > above[0] else above
        log_step = point[0] + (target - point[1]) / slope
        if below is not None and above is not None:
            lo, hi = above[0], below[0]
            log_step = min(max(log_step, lo + 0.05 * (hi - lo)), hi - 0.05 * (hi - lo))
        # aim just under the budget, not at it, from either side: from above, secants
        # aimed at the budget itself crept towards it and ran out of evaluations a few
        # bytes over (an 18 MB run at 50x: 325,943, 325,847, 325,843 bytes for a budget
        # of 325,841, and the file was left 4.5 % under its target)
        log_step += 0.3 * tolerance / max(-slope, 0.05)
    return best if best is not None else smallest


def fit_to_error(series, maps, max_sse, board, hint=None, n_survey=7, dead_zone=None):
    """The smallest section whose squared error against ``series`` is at most ``max_sse``.

    The same survey as ``fit_to_budget``; for each K the step at which its
    error meets ``max_sse`` and its size there are interpolated (log-log), the
    K with the smallest size is kept and its step refined on real encodings.
    """
    energy = float(np.sum(series ** 2))
    k_max = maps.shape[1]
    if energy <= max_sse:  # the mean frame alone is good enough: one coarse component
        return code_at_step(series, maps[:, :1], float(np.abs(maps).max()) * 4 + 1e-30, board,
                            energy, dead_zone)
    mse = max_sse / series.size
    centre = math.log(hint) if hint else math.log(math.sqrt(12.0 * mse) * 2.0)
    logs = centre + np.linspace(-2.0, 2.0, n_survey)
    table = survey_steps(series, maps, logs, board, energy, dead_zone)
    steps = np.array([t[0] for t in table])
    sizes = np.array([t[1] for t in table])
    errs = np.array([t[2] for t in table])
    best = None  # (log size, K, log step)
    for k in range(k_max):
        ok = np.flatnonzero(errs[:, k] <= max_sse)
        if not ok.size:
            continue
        i = ok[np.argmax(steps[ok])]  # the coarsest surveyed step within the error
        bad = np.flatnonzero((errs[:, k] > max_sse) & (steps > steps[i]))
        if bad.size:
            j = bad[np.argmin(steps[bad])]
            frac = (math.log(max_sse) - math.log(max(errs[i, k], 1e-300))) / \
                (math.log(errs[j, k]) - math.log(max(errs[i, k], 1e-300)))
            frac = min(max(frac, 0.0), 1.0)
            ls = steps[i] + frac * (steps[j] - steps[i])
            lsize = math.log(sizes[i, k]) + frac * (math.log(sizes[j, k]) - math.log(sizes[i, k]))
        else:
            ls, lsize = steps[i], math.log(sizes[i, k])
        if best is None or lsize < best[0]:
            best = (lsize, k + 1, ls)
    if best is None:  # not even every component at the finest surveyed step: go finer
        return _fit_error_step(series, maps, max_sse, board, math.exp(steps.min() - 2.0),
                               energy, dead_zone=dead_zone)
    return _fit_error_step(series, maps[:, :best[1]], max_sse, board, math.exp(best[2]), energy,
                           dead_zone=dead_zone)


def _fit_error_step(series, maps, max_sse, board, guess, energy, max_evals=10, dead_zone=None):
    """The coarsest step for these components whose error is at most ``max_sse`` (bisection
    on the log step, bracketed first)."""
    good = bad = None  # (log step, fit)
    log_step = math.log(guess)
    for _ in range(max_evals):
        trial = code_at_step(series, maps, math.exp(log_step), board, energy, dead_zone)
        if trial["sse"] <= max_sse:
            if good is None or log_step > good[0]:
                good = (log_step, trial)
            if trial["sse"] >= 0.97 * max_sse:
                break
        elif bad is None or log_step < bad[0]:
            bad = (log_step, trial)
        if good is not None and bad is not None:
            log_step = 0.5 * (good[0] + bad[0])
        elif good is not None:
            log_step += 0.5
        else:
            log_step -= 1.0
    if good is None:
        return bad[1]
    return good[1]
