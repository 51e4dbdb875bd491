"""The explicitly coded factorization: voxel maps x activation patterns.

The mean-removed masked series ``X`` (N voxels x T) is approximated by
``A P`` with ``A`` (N x K) the voxel weights and ``P`` (K x T) the activation
patterns, both quantised and entropy coded:

* Basis: the K leading principal axes of ``X`` (``P`` rows orthonormal,
  ``A = X P^T``). On the studyforrest run the principal basis coded 4 % smaller
  than an ICA rotation of the same subspace (590 vs 615 kB for K = 40 at the
  same step), so the coded basis is PCA; ICA stays the paper preset's
  initialisation.
* Quantisation with one step ``d`` for every coefficient in the energy domain
  (reverse water-filling): map entries get step ``d``; pattern row k gets step
  ``d / ||A_k||`` because an error there is spread over the map's energy.
  Components whose entries fall below ``d/2`` cost almost nothing, so K and
  ``d`` are searched together for the best error at the byte budget.
* After the maps are quantised the patterns are refitted to them by least
  squares (they are the learnable K x T matrix), then quantised in the
  temporal DCT domain (orthonormal DCT-II, so the step keeps its meaning) with
  the dead-zone quantiser: a BOLD time course's energy sits in its low
  frequencies, and the dead zone drops the near-empty high ones. On the Haxby
  slice (T = 1452, K = 100, map step 80) the section took 24,404 bytes
  instead of 34,896 for 6.7 % more squared error
  (``benchmarks/pattern_coding.py``; format 3, format 2 coded time samples).
* Entropy coding (constriction's ANS coder, quantised Laplace models): voxels
  are split in a checkerboard by ``(x + y + z) % 2``. Even voxels are coded
  first with a zero-mean Laplace of one scale per component; each odd voxel is
  coded with a Laplace centred on ``a_k`` x the mean of its (even) 6-neighbours
  and with scale ``c0_k + c1_k`` x their mean magnitude, which the decoder
  knows. Fitted per component and stored; measured 9 % smaller than one
  histogram per component on the studyforrest maps. Pattern coefficients are
  coded with a zero-mean Laplace whose scale is set per octave of frequency
  (0, 1, 2-3, 4-7, ... cycles) from one stored byte per band
  (``MIN_SCALE * 2 ** (code / 8)``).
"""

import math

import numpy as np

from .errors import ICAINRError

MAX_SYMBOL = 1 << 16  # constriction needs a bounded support
MAX_COMPONENTS = 256
#: float32 parameters stored per component, in order
PARAMS = ("pattern_step", "even_c0", "even_c2", "odd_gain", "odd_c0", "odd_c1", "odd_c2")
#: format 2 (time-domain patterns) stored one more: the patterns' Laplace scale
PARAMS_TIME = PARAMS + ("pattern_scale",)
#: how the patterns are coded: "dct" (format 3) or "time" (format 2, still read)
TRANSFORMS = ("dct", "time")
MIN_SCALE = 0.08
#: band scale codes: MIN_SCALE * 2 ** (code / SCALE_STEPS_PER_OCTAVE), code in 0..255
SCALE_STEPS_PER_OCTAVE = 8


# --- basis -----------------------------------------------------------------------------

def principal_basis(series, n_components):
    """Leading principal axes of ``series`` (N x T, mean-removed per voxel's frame).

    Returns ``(maps N x K float64, patterns K x T float64)`` with orthonormal
    pattern rows and ``maps = series @ patterns.T``, sorted by energy.
    """
    from scipy.linalg import eigh

    n, t = series.shape
    k = int(min(n_components, t, n))
    if t <= 4096:
        gram = series.T @ series
        _, vecs = eigh(gram, subset_by_index=[t - k, t - 1])
        patterns = vecs[:, ::-1].T.copy()
    else:  # long runs: randomized SVD rather than a T x T eigenproblem
        from sklearn.utils.extmath import randomized_svd
        _, _, patterns = randomized_svd(series, k, random_state=0)
    # a fixed sign per component makes the output reproducible across LAPACKs
    signs = np.sign(patterns[np.arange(k), np.abs(patterns).argmax(axis=1)])
    patterns *= np.where(signs == 0, 1.0, signs)[:, None]
    return series @ patterns.T, patterns


# --- neighbourhood ---------------------------------------------------------------------

class Checkerboard:
    """Even/odd split of the masked voxels and the in-mask 6-neighbours of odd voxels.

    Voxels are indexed in the order of ``volume[mask]`` (C order).
    """

    def __init__(self, mask):
        mask = np.asarray(mask, dtype=bool)
        index = np.full(mask.shape, -1, dtype=np.int64)
        index[mask] = np.arange(int(mask.sum()))
        coords = np.argwhere(mask)
        parity = coords.sum(axis=1) % 2
        self.even = np.flatnonzero(parity == 0)
        self.odd = np.flatnonzero(parity == 1)
        odd_xyz = coords[self.odd]
        neighbours = []
        for axis in range(3):
            for shift in (-1, 1):
                nb = odd_xyz.copy()
                nb[:, axis] += shift
                inside = (nb[:, axis] >= 0) & (nb[:, axis] < mask.shape[axis])
                idx = np.full(len(nb), -1, dtype=np.int64)
                idx[inside] = index[tuple(nb[inside].T)]
                neighbours.append(idx)
        self.neighbours = np.stack(neighbours, axis=1)  # (n_odd, 6), -1 outside the mask
        self.valid = self.neighbours >= 0
        self.count = np.maximum(self.valid.sum(axis=1), 1).astype(np.float64)
        self.n_voxels = int(mask.sum())

    def context(self, column):
        """``(mean, mean |.|)`` of each odd voxel's neighbours in an int column.

        Integer sums (exact), one float division: encoder and decoder agree bit for bit.
        """
        vals = np.where(self.valid, column[np.maximum(self.neighbours, 0)], 0).astype(np.int64)
        return vals.sum(axis=1) / self.count, np.abs(vals).sum(axis=1) / self.count


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


# --- quantisation ----------------------------------------------------------------------

#: rounding offset of the dead-zone quantiser (0 = plain rounding)
DEAD_ZONE = 0.2  # measured +0.15 dB at 100x, +0.1 dB at 200x over plain rounding


def pattern_bands(n_timepoints):
    """Edges of the octave bands of a length-T DCT: ``[0, 1, 2, 4, ..., T]``."""
    edges = [0, 1]
    while edges[-1] * 2 < n_timepoints:
        edges.append(edges[-1] * 2)
    if edges[-1] != n_timepoints:
        edges.append(n_timepoints)
    return np.array(edges, dtype=np.int64)


def band_codes(row, edges):
    """One byte per band: the band's mean ``|q|`` on a log grid (see ``band_scales``)."""
    codes = np.zeros(len(edges) - 1, dtype=np.uint8)
    for b, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
        mean = max(float(np.abs(row[lo:hi]).mean()), MIN_SCALE)  # bands are never empty
        code = round(SCALE_STEPS_PER_OCTAVE * math.log2(mean / MIN_SCALE))
        codes[b] = min(max(code, 0), 255)
    return codes


def band_scales(codes, edges):
    """Per-coefficient Laplace scales from the band codes (same floats on both sides)."""
    scales = MIN_SCALE * np.exp2(codes.astype(np.float64) / SCALE_STEPS_PER_OCTAVE)
    return np.repeat(scales, np.diff(edges))


def to_frequency(patterns):
    """Orthonormal DCT-II of each pattern row."""
    from scipy.fft import dct

    return dct(patterns, type=2, norm="ortho", axis=1)


def to_time(coefficients):
    from scipy.fft import idct

    return idct(coefficients, type=2, norm="ortho", axis=1)


def quantize_maps(maps, step, dead_zone=None):
    """Dead-zone uniform quantiser: ``sign(x) floor(|x| / step + 0.5 - dead_zone)``."""
    dz = DEAD_ZONE if dead_zone is None else dead_zone
    magnitude = np.maximum(np.floor(np.abs(maps) / step + 0.5 - dz), 0)
    return np.clip(np.sign(maps) * magnitude, -MAX_SYMBOL, MAX_SYMBOL).astype(np.int32)


def pattern_steps(maps_hat, patterns, step):
    """Step of each pattern row: ``step / ||A_k||`` (``step`` for an all-zero map).

    Never so fine that a symbol would leave +-MAX_SYMBOL, nor below float32's range.
    """
    norms = np.linalg.norm(maps_hat, axis=0)
    steps = np.where(norms > 0, step / np.maximum(norms, 1e-30), step)
    floor = np.abs(patterns).max(axis=1) / (MAX_SYMBOL - 1)
    return np.maximum(np.maximum(steps, floor), 1e-30).astype(np.float32)


# --- entropy coding --------------------------------------------------------------------

def _laplace(lo, hi):
    import constriction

    return constriction.stream.model.QuantizedLaplace(int(lo), int(hi))


def _line(target, features):
    """Least-squares ``target ~ c0 + sum c_i features_i`` with c_i >= 0 (then refitted)."""
    design = np.column_stack([np.ones(target.size)] + list(features))
    keep = list(range(design.shape[1]))
    coef = np.zeros(design.shape[1])
    while True:  # drop negative slopes and refit the rest until none is left
        sub, *_ = np.linalg.lstsq(design[:, keep], target, rcond=None)
        coef[:] = 0.0
        coef[keep] = sub
        negative = [i for i in keep[1:] if coef[i] < 0]
        if not negative:
            break
        keep = [i for i in keep if i not in negative]
    coef[0] = max(coef[0], MIN_SCALE)
    return [float(np.float32(c)) for c in coef]


def _scales(c0, slopes, features):
    out = np.float64(c0)
    for c, f in zip(slopes, features):
        out = out + np.float64(c) * f
    return np.maximum(out, MIN_SCALE)


def component_jobs(q_maps, q_patterns, steps, board, transform="dct"):
    """Entropy models of every component, fitted on its symbols.

    Returns ``(jobs, params, ranges, bands)``: ``jobs[c]`` lists the
    component's ``(symbols, lo, hi, means, scales)`` in decoding order;
    ``bands`` (K x n_bands uint8) holds the patterns' band scale codes
    (``transform="dct"``; None for "time").
    """
    k = q_maps.shape[1]
    dct = transform == "dct"
    params = np.zeros((k, len(PARAMS) if dct else len(PARAMS_TIME)), dtype=np.float32)
    ranges = np.zeros((k, 4), dtype=np.int32)
    edges = pattern_bands(q_patterns.shape[1])
    bands = np.zeros((k, len(edges) - 1), dtype=np.uint8) if dct else None
    activity = Activity(q_maps.shape[0])
    jobs = []
    for c in range(k):
        col = q_maps[:, c]
        even, odd = col[board.even], col[board.odd]
        act = activity.value()
        lo, hi = int(col.min()), int(col.max())
        e0, e2 = _line(np.abs(even).astype(np.float64), [act[board.even]]) if even.size \
            else (1.0, 0.0)
        pred, ctx = board.context(col)
        if odd.size:
            denom = float(pred @ pred)
            gain = float(pred @ odd) / denom if denom > 0 else 0.0
            gain = float(np.float32(min(max(gain, 0.0), 2.0)))
            o0, o1, o2 = _line(np.abs(odd - gain * pred), [ctx, act[board.odd]])
        else:
            gain, o0, o1, o2 = 0.0, 1.0, 0.0, 0.0
        row = q_patterns[c]
        plo, phi = int(row.min()), int(row.max())
        if dct:
            params[c] = (steps[c], e0, e2, gain, o0, o1, o2)
            bands[c] = band_codes(row, edges)
            pscales = band_scales(bands[c], edges)
        else:
            pscale = float(np.float32(max(float(np.abs(row).mean()), MIN_SCALE)))
            params[c] = (steps[c], e0, e2, gain, o0, o1, o2, pscale)
            pscales = np.full(row.size, pscale)
        ranges[c] = (lo, hi, plo, phi)
        mine = []
        if lo != hi:
            mine.append((even, lo, hi, np.zeros(even.size),
                         _scales(e0, [e2], [act[board.even]])))
            mine.append((odd, lo, hi, np.float64(gain) * pred,
                         _scales(o0, [o1, o2], [ctx, act[board.odd]])))
        if plo != phi:
            mine.append((row, plo, phi, np.zeros(row.size), pscales))
        jobs.append(mine)
        activity.add(col)
    return jobs, params, ranges, bands


def _encode_jobs(jobs):
    import constriction

    coder = constriction.stream.stack.AnsCoder()
    for symbols, lo, hi, means, scales in reversed(jobs):  # ANS is a stack
        if symbols.size:
            coder.encode_reverse(np.ascontiguousarray(symbols, np.int32), _laplace(lo, hi),
                                 means, scales)
    return coder.get_compressed()


def encode_factors(q_maps, q_patterns, steps, board, transform="dct"):
    """ANS-code quantised maps (N x K) and patterns (K x T).

    ``steps`` is the per-component pattern step. Returns ``(payload bytes,
    params float32 (K, len(PARAMS)), ranges int32 (K, 4), bands uint8 or
    None)``, stored in the section before the words (see ``pack``).
    """
    jobs, params, ranges, bands = component_jobs(q_maps, q_patterns, steps, board, transform)
    words = _encode_jobs([job for mine in jobs for job in mine])
    return words.astype("<u4").tobytes(), params, ranges, bands


def decode_factors(words, params, ranges, bands, n_timepoints, board, source):
    """Inverse of ``encode_factors``; all sizes come from the validated header.

    ``bands`` None means format 2's time-domain patterns (``PARAMS_TIME``).
    """
    import constriction

    k = params.shape[0]
    edges = pattern_bands(n_timepoints)
    n = board.n_voxels
    q_maps = np.zeros((n, k), dtype=np.int32)
    q_patterns = np.zeros((k, n_timepoints), dtype=np.int32)
    scale_cols = [PARAMS.index(name) for name in ("even_c0", "odd_c0")]
    if bands is None:
        scale_cols.append(PARAMS_TIME.index("pattern_scale"))
    slope_cols = [PARAMS.index(name) for name in ("even_c2", "odd_c1", "odd_c2")]
    if not (np.isfinite(params).all() and (params[:, scale_cols] > 0).all()
            and (params[:, slope_cols] >= 0).all() and (params[:, 0] > 0).all()):
        raise ICAINRError(source, "the factor section has invalid model parameters")
    if np.abs(ranges).max(initial=0) > MAX_SYMBOL or (ranges[:, 0] > ranges[:, 1]).any() or \
            (ranges[:, 2] > ranges[:, 3]).any():
        raise ICAINRError(source, "the factor section has invalid symbol ranges")
    activity = Activity(n)
    try:
        coder = constriction.stream.stack.AnsCoder(np.ascontiguousarray(words, np.uint32))
        for c in range(k):
            _, e0, e2, gain, o0, o1, o2 = (float(v) for v in params[c, :len(PARAMS)])
            lo, hi, plo, phi = (int(v) for v in ranges[c])
            act = activity.value()
            if lo == hi:
                q_maps[:, c] = lo
            else:
                fam = _laplace(lo, hi)
                if board.even.size:
                    q_maps[board.even, c] = coder.decode(
                        fam, np.zeros(board.even.size), _scales(e0, [e2], [act[board.even]]))
                if board.odd.size:
                    pred, ctx = board.context(q_maps[:, c])
                    q_maps[board.odd, c] = coder.decode(
                        fam, np.float64(gain) * pred,
                        _scales(o0, [o1, o2], [ctx, act[board.odd]]))
            if plo == phi:
                q_patterns[c] = plo
            else:
                pscales = band_scales(bands[c], edges) if bands is not None else \
                    np.full(n_timepoints, float(params[c, len(PARAMS)]))
                q_patterns[c] = coder.decode(_laplace(plo, phi), np.zeros(n_timepoints),
                                             pscales)
            activity.add(q_maps[:, c])
        exact = coder.is_empty()  # every word consumed, the coder back at its start
    except ICAINRError:
        raise
    except Exception:
        raise ICAINRError(source, "the factor section cannot be decoded") from None
    if not exact:
        raise ICAINRError(source, "the factor section does not decode exactly (forged or cut)")
    if (q_maps.min(axis=0, initial=0) < ranges[:, 0]).any() or \
            (q_maps.max(axis=0, initial=0) > ranges[:, 1]).any():
        raise ICAINRError(source, "the factor section decodes outside its ranges")
    return q_maps, q_patterns


def pack(words, params, ranges, bands=None):
    """Section layout: uint32 K, float32 params (K x len(PARAMS)), int32 ranges (K x 4),
    uint8 band codes (K x n_bands; "dct" only), ANS words (uint32)."""
    k = params.shape[0]
    return (np.uint32(k).astype("<u4").tobytes() + params.astype("<f4").tobytes()
            + ranges.astype("<i4").tobytes()
            + (b"" if bands is None else bands.astype(np.uint8).tobytes()) + words)


def unpack(payload, source, n_timepoints, transform="dct"):
    """Inverse of ``pack`` with every length bounded before allocating.

    Returns ``(words, params, ranges, bands)`` (``bands`` None for "time").
    """
    if len(payload) < 4:
        raise ICAINRError(source, "the factor section is truncated")
    k = int(np.frombuffer(payload[:4], dtype="<u4")[0])
    if not 1 <= k <= MAX_COMPONENTS:
        raise ICAINRError(source, f"the factor section claims {k} components")
    n_cols = len(PARAMS) if transform == "dct" else len(PARAMS_TIME)
    n_bands = len(pattern_bands(n_timepoints)) - 1 if transform == "dct" else 0
    n_params = k * n_cols * 4
    head = 4 + n_params + k * 16
    end = head + k * n_bands
    if len(payload) < end or (len(payload) - end) % 4:
        raise ICAINRError(source, "the factor section has the wrong size")
    params = np.frombuffer(payload[4:4 + n_params], dtype="<f4").reshape(k, n_cols)
    ranges = np.frombuffer(payload[4 + n_params:head], dtype="<i4").reshape(k, 4)
    bands = np.frombuffer(payload[head:end], dtype=np.uint8).reshape(k, n_bands).copy() \
        if transform == "dct" else None
    words = np.frombuffer(payload[end:], dtype="<u4")
    return words, params.astype(np.float32), ranges.astype(np.int32), bands


# --- the whole stage -------------------------------------------------------------------

def dequantize(q_maps, q_patterns, step, params, transform="dct"):
    """Maps and time-domain patterns from their symbols."""
    maps = q_maps.astype(np.float64) * step
    patterns = q_patterns.astype(np.float64) * params[:, 0].astype(np.float64)[:, None]
    return maps, (to_time(patterns) if transform == "dct" else patterns)


def _quantize_all(series, maps, step, transform="dct"):
    """Quantise the maps at ``step``, refit the patterns to them and quantise those.

    Returns ``(step, q_maps, q_patterns, pattern steps, exact, A^T X, A^T A)``:
    ``exact`` holds the refitted patterns before quantisation, in the coded
    domain (DCT coefficients for "dct"); the last two give the squared error
    without an N x T product (``_sse``).
    """
    step = max(float(step), float(np.abs(maps).max(initial=0.0)) / (MAX_SYMBOL - 1), 1e-30)
    q_maps = quantize_maps(maps, step)
    maps_hat = q_maps.astype(np.float64) * step
    # (X^T A)^T rather than A^T X: OpenBLAS runs A^T X up to 30x slower on busy cores
    cross = (series.T @ maps_hat).T
    gram = maps_hat.T @ maps_hat
    exact = _refit(gram, cross)
    if transform == "dct":
        exact = to_frequency(exact)
    steps = pattern_steps(maps_hat, exact, step)
    scaled = exact / steps[:, None].astype(np.float64)
    if transform == "dct":
        q_patterns = quantize_maps(scaled, 1.0)
    else:  # format 2: plain rounding
        q_patterns = np.clip(np.rint(scaled), -MAX_SYMBOL, MAX_SYMBOL).astype(np.int32)
    return step, q_maps, q_patterns, steps, exact, cross, gram


def _refit(gram, cross):
    g = gram.copy()
    g[np.diag_indices_from(g)] += 1e-9 * max(float(np.trace(g)), 1.0)
    return np.linalg.solve(g, cross)


def _sse(energy, gram, cross, patterns):
    """``||X - A P||^2`` from ``||X||^2``, ``A^T A`` and ``A^T X``: no N x T product."""
    return float(energy - 2.0 * np.sum(cross * patterns)
                 + np.sum(patterns * (gram @ patterns)))


def code_at_step(series, maps, step, board, energy=None):
    """Quantise and code the first ``maps.shape[1]`` components at ``step``.

    Returns a dict with ``payload`` (section bytes), ``maps``/``patterns``
    (decoded, float64) and ``sse`` (squared error against ``series``).
    """
    energy = float(np.sum(series ** 2)) if energy is None else energy
    step, q_maps, q_patterns, steps, _, cross, gram = _quantize_all(series, maps, step)
    words, params, ranges, bands = encode_factors(q_maps, q_patterns, steps, board)
    maps_d, patterns_d = dequantize(q_maps, q_patterns, step, params)
    return {"payload": pack(words, params, ranges, bands), "maps": maps_d,
            "patterns": patterns_d,
            "sse": _sse(energy, gram, cross, patterns_d), "step": float(step),
            "n_components": int(maps.shape[1])}


def survey_step(series, maps, step, board, energy, transform="dct"):
    """Section size and error of every K <= maps.shape[1] at one ``step``.

    Components are coded one after another and each one's models depend only
    on the components before it, so the size of the first K components is a
    prefix sum of per-component sizes (each measured with its own coder). The
    error of each K uses patterns refitted to the first K maps.
    Returns ``(sizes bytes (K,), sse (K,))`` for K = 1..maps.shape[1].
    """
    _, q_maps, q_patterns, steps, exact, cross, gram = _quantize_all(series, maps, step,
                                                                     transform)
    jobs, _, _, bands = component_jobs(q_maps, q_patterns, steps, board, transform)
    n_bands = 0 if bands is None else bands.shape[1]
    per = np.array([4.0 * _encode_jobs(mine).size + 4.0 * (len(PARAMS) + 4) + n_bands
                    for mine in jobs])
    sizes = np.cumsum(per) + 4
    # the patterns' quantisation error, component by component (cross terms
    # dropped): without it the survey favours many coarsely coded patterns
    coded = q_patterns * steps[:, None].astype(np.float64)
    pattern_err = np.cumsum(np.diag(gram) * np.sum((coded - exact) ** 2, axis=1))
    sse = np.empty(len(per))
    for k in range(1, len(per) + 1):
        p_k = _refit(gram[:k, :k], cross[:k])
        sse[k - 1] = _sse(energy, gram[:k, :k], cross[:k], p_k) + pattern_err[k - 1]
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
