"""The rate search: the number of components K and the step d for a byte budget."""

import math

import numpy as np

from .coding import PARAMS, component_jobs, encode_factors, encode_jobs, pack
from .quantise import dequantize, quantize_all, refit, squared_error


def code_at_step(series, maps, step, board, energy=None):
    """Quantise and code the first ``maps.shape[1]`` components at ``step``.

    Returns a dict with ``payload`` (section bytes), ``maps``/``patterns``
    (decoded, float64) and ``sse`` (squared error against ``series``).
    """
    energy = float(np.sum(series ** 2)) if energy is None else energy
    step, q_maps, q_patterns, steps, _, cross, gram = quantize_all(series, maps, step)
    words, params, ranges, bands = encode_factors(q_maps, q_patterns, steps, board)
    maps_d, patterns_d = dequantize(q_maps, q_patterns, step, params)
    return {"payload": pack(words, params, ranges, bands), "maps": maps_d,
            "patterns": patterns_d,
            "sse": squared_error(energy, gram, cross, patterns_d), "step": float(step),
            "n_components": int(maps.shape[1])}


def survey_step(series, maps, step, board, energy, transform="dct"):
    """Section size and error of every K <= maps.shape[1] at one ``step``.

    Components are coded one after another and each one's models depend only
    on the components before it, so the size of the first K components is a
    prefix sum of per-component sizes (each measured with its own coder). The
    error of each K uses patterns refitted to the first K maps.
    Returns ``(sizes bytes (K,), sse (K,))`` for K = 1..maps.shape[1].
    """
    _, q_maps, q_patterns, steps, exact, cross, gram = quantize_all(series, maps, step,
                                                                     transform)
    jobs, _, _, bands = component_jobs(q_maps, q_patterns, steps, board, transform)
    n_bands = 0 if bands is None else bands.shape[1]
    per = np.array([4.0 * encode_jobs(mine).size + 4.0 * (len(PARAMS) + 4) + n_bands
                    for mine in jobs])
    sizes = np.cumsum(per) + 4
    # the patterns' quantisation error, component by component (cross terms
    # dropped): without it the survey favours many coarsely coded patterns
    coded = q_patterns * steps[:, None].astype(np.float64)
    pattern_err = np.cumsum(np.diag(gram) * np.sum((coded - exact) ** 2, axis=1))
    sse = np.empty(len(per))
    for k in range(1, len(per) + 1):
        p_k = refit(gram[:k, :k], cross[:k])
        sse[k - 1] = squared_error(energy, gram[:k, :k], cross[:k], p_k) + pattern_err[k - 1]
    return sizes, sse


def fit_to_budget(series, maps, budget, board, psnr_slack_db=0.0, components="fewest",
                  n_survey=7):
    """Best (K, step) whose section fits ``budget`` bytes.

    The least squared error wins when ``psnr_slack_db`` is 0; otherwise the
    fewest (or, ``components="most"``, the most) components whose error is
    within that many dB of the least.

    1. Survey: at a few steps spanning the useful range, the size and error of
       every K at once (``survey_step``).
    2. For each K, interpolate (log-log in the step) the step at which its size
       meets the budget and the error there; keep the K chosen as above.
    3. Secant search of that K's step on real encodings until the section is
       within 0.6 % under budget.
    Returns the winning ``code_at_step`` dict, or the smallest attempt when
    nothing fits.
    """
    energy = float(np.sum(series ** 2))
    k_max = maps.shape[1]
    # a first step: the budget spread over all coefficients at ~1.5 bits each
    rms = math.sqrt(float(np.mean(maps ** 2))) or 1.0
    bits = 8.0 * budget / maps.size
    centre = math.log(rms) - math.log(2.0) * (bits - 1.5)
    logs = centre + np.linspace(-2.0, 2.0, n_survey)
    table = []
    for ls in logs:
        sizes, sse = survey_step(series, maps, math.exp(ls), board, energy)
        table.append((ls, sizes, sse))
        if sizes[0] > budget and ls == logs[-1]:
            break
    steps = np.array([t[0] for t in table])
    sizes = np.array([t[1] for t in table])  # (n_steps, K)
    errs = np.array([t[2] for t in table])
    at_budget = {}  # K -> (interpolated error, log step) where its size meets the budget
    for k in range(k_max):
        s_k = np.log(sizes[:, k])
        inside = np.flatnonzero(s_k <= math.log(budget))
        outside = np.flatnonzero(s_k > math.log(budget))
        if not inside.size:
            continue
        i = inside[np.argmin(steps[inside])]
        if outside.size:
            j = outside[np.argmax(steps[outside])]
            frac = (math.log(budget) - s_k[i]) / (s_k[j] - s_k[i])
            at_budget[k + 1] = (errs[i, k] + frac * (errs[j, k] - errs[i, k]),
                                steps[i] + frac * (steps[j] - steps[i]))
        else:  # fits even at the finest surveyed step
            at_budget[k + 1] = (errs[i, k], steps[i])
    if not at_budget:
        return code_at_step(series, maps[:, :1], math.exp(steps.max()), board, energy)
    # the fewest components within psnr_slack_db of the least error: past the
    # knee, more components at a coarser step buy little PSNR and cost the
    # GLM t-maps and connectivity (measured on the studyforrest run)
    least = min(err for err, _ in at_budget.values())
    near = [k for k, (err, _) in at_budget.items() if err <= least * 10 ** (psnr_slack_db / 10)]
    best_k = max(near) if components == "most" else min(near)
    best_step = at_budget[best_k][1]
    fit, smallest = _fit_step(series, maps[:, :best_k], budget, board, math.exp(best_step),
                              energy)
    return fit if fit is not None else smallest


def _fit_step(series, maps, budget, board, guess, energy, tolerance=0.006, max_evals=12):
    """Finest step for these components whose section fits ``budget``.

    The section size falls smoothly with the step (close to a power law), so
    the step is found by secants on ``log size`` against ``log step``, kept
    inside the bracket once there is one, until the size is within
    ``tolerance`` below budget. Returns ``(best fit or None, smallest attempt)``.
    """
    target = math.log(budget)
    below = above = None  # (log step, log size) with size <= budget / > budget
    best, smallest, last = None, None, None
    log_step = math.log(guess)
    slope = -0.5  # d log size / d log step, a first guess refined by secants
    for _ in range(max_evals):
        trial = code_at_step(series, maps, math.exp(log_step), board, energy)
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
        if size <= budget:  # aim just under the budget, not at it
            log_step += 0.3 * tolerance / max(-slope, 0.05)
    return best, smallest
