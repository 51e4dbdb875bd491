"""Entropy coding of the quantised factorization (constriction's ANS coder).

Voxels are split in a checkerboard by ``(x + y + z) % 2`` (``context``). Even
voxels are coded first with a zero-mean Laplace of one scale per component;
each odd voxel is coded with a Laplace centred on ``a_k`` x the mean of its
(even) 6-neighbours and with scale ``c0_k + c1_k`` x their mean magnitude,
which the decoder knows. Fitted per component and stored; measured 9 % smaller
than one histogram per component on the studyforrest maps. From format 5 the
maps' symbols are coded with tables on a grid of these models (``tables``:
about three times faster to decode); the encoder scales each pass's fitted model by
the one of ``SCALE_MULTIPLIERS`` that codes it smallest (stored in the same
parameters, so the decoder needs nothing more). Pattern
coefficients are coded with a zero-mean Laplace whose scale is set per octave
of frequency (0, 1, 2-3, 4-7, ... cycles) from one stored byte per band
(``MIN_SCALE * 2 ** (code / 8)``).
"""

import math

import numpy as np

from ..errors import ICAINRError
from . import tables
from .context import Activity, activity_rows
from .quantise import MAX_SYMBOL

MAX_COMPONENTS = 256
#: float32 parameters stored per component, in order
PARAMS = ("pattern_step", "even_c0", "even_c2", "odd_gain", "odd_c0", "odd_c1", "odd_c2")
#: format 2 (time-domain patterns) stored one more: the patterns' Laplace scale
PARAMS_TIME = PARAMS + ("pattern_scale",)
#: how the patterns are coded: "dct" (format 3) or "time" (format 2, still read)
TRANSFORMS = ("dct", "time")
MIN_SCALE = 0.08
#: how the maps' symbols are coded: "table" (format 5) or "laplace" (formats 2-4)
MAP_CODERS = ("table", "laplace")
#: candidate factors on a pass's fitted scales (format 5): the fit is a least-squares
#: line through |x - mean|, and the tables code some passes smaller with a narrower
#: or wider law (studyforrest 100x: 0.9 for most, 0.7-1.1 for the rest)
SCALE_MULTIPLIERS = (0.7, 0.8, 0.9, 1.0, 1.1)
#: the multiplier is chosen on at most this many of a pass's symbols (every n-th)
MULTIPLIER_SAMPLE = 4096
#: band scale codes: MIN_SCALE * 2 ** (code / SCALE_STEPS_PER_OCTAVE), code in 0..255
SCALE_STEPS_PER_OCTAVE = 8


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



def _laplace(lo, hi):
    import constriction

    return constriction.stream.model.QuantizedLaplace(int(lo), int(hi))


def _line(target, features):
    """Least-squares ``target ~ c0 + sum c_i features_i`` with c_i >= 0 (then refitted).

    Solved through the normal equations of the one to three columns (one small
    product of the stacked columns; no N x 3 design copied around).
    """
    cols = np.empty((len(features) + 1, target.size))
    cols[0] = 1.0
    for row, f in zip(cols[1:], features):
        row[:] = f
    gram = cols @ cols.T
    rhs = cols @ target
    keep = list(range(len(cols)))
    coef = np.zeros(len(cols))
    while True:  # drop negative slopes and refit the rest until none is left
        g = gram[np.ix_(keep, keep)]
        sub = np.linalg.lstsq(g, rhs[keep], rcond=None)[0]
        coef[:] = 0.0
        coef[keep] = sub
        negative = [i for i in keep[1:] if coef[i] < 0]
        if not negative:
            break
        keep = [i for i in keep if i not in negative]
    coef[0] = max(coef[0], MIN_SCALE)
    return [float(np.float32(c)) for c in coef]


def _scales(c0, slopes, features):
    out = np.full(features[0].shape, np.float64(c0))
    for c, f in zip(slopes, features):
        if c:
            out += np.float64(c) * f
    return np.maximum(out, MIN_SCALE, out=out)


def _with_multiplier(coef, features, symbols, means):
    """``coef`` times the ``SCALE_MULTIPLIERS`` entry whose tables code ``symbols``
    smallest, as float32 values: the coefficients the decoder reads back.

    Judged on a sample of at most ``MULTIPLIER_SAMPLE`` of the symbols, all
    multipliers at once, with escapes counted at a flat 32 bits: only the choice
    depends on it, the coded scales are ``_scales``' of the returned values.
    """
    stride = max(1, -(-symbols.size // MULTIPLIER_SAMPLE))
    base = np.full(symbols[::stride].shape, np.float64(coef[0]))
    for c, f in zip(coef[1:], features):
        if c:
            base += np.float64(c) * f[::stride]
    scales = np.maximum(np.multiply.outer(_MULTIPLIERS, base), MIN_SCALE)
    bits = tables.bits(symbols[::stride], None if means is None else means[::stride],
                       scales, escape_bits=32.0)
    m = SCALE_MULTIPLIERS[int(np.argmin(bits))]
    return [float(np.float32(v * m)) for v in coef]


_MULTIPLIERS = np.array(SCALE_MULTIPLIERS)


def component_jobs(q_maps, q_patterns, steps, board, transform="dct", coder="table",
                   multipliers=True):
    """Entropy models of every component, fitted on its symbols.

    Returns ``(jobs, params, ranges, bands)``: ``jobs[c]`` lists the
    component's ``(symbols, lo, hi, means, scales, tabled)`` in decoding order
    (``means`` None: zero; ``tabled``: coded with ``tables``, else per symbol);
    ``bands`` (K x n_bands uint8) holds the patterns' band scale codes
    (``transform="dct"``; None for "time"). ``coder``: how the maps are coded
    (``MAP_CODERS``); ``multipliers`` False leaves the fitted scales as they are
    (the rate survey: choosing a multiplier is many small numpy calls, which two
    survey threads were measured to serialise on, 30 % slower on studyforrest).
    """
    tabled = coder == "table"
    choose = tabled and multipliers
    k = q_maps.shape[1]
    dct = transform == "dct"
    params = np.zeros((k, len(PARAMS) if dct else len(PARAMS_TIME)), dtype=np.float32)
    ranges = np.zeros((k, 4), dtype=np.int32)
    edges = pattern_bands(q_patterns.shape[1])
    bands = np.zeros((k, len(edges) - 1), dtype=np.uint8) if dct else None
    # one row per component in coding order, its even voxels first then its odd ones
    # (contiguous slices rather than a gather per component), as the decoder fills
    # them; the activity is per voxel, so it is computed on these rows as they are
    n_even = board.even.size
    symbols = np.ascontiguousarray(q_maps[board.order].T)
    acts = activity_rows(symbols)
    gather = board.permuted_gather()
    lows, highs = (symbols.min(axis=1), symbols.max(axis=1)) if symbols.shape[1] else \
        (np.zeros(k, np.int32), np.zeros(k, np.int32))
    jobs = []
    for c in range(k):
        even, odd = symbols[c, :n_even], symbols[c, n_even:]
        act_even, act_odd = acts[c, :n_even], acts[c, n_even:]
        lo, hi = int(lows[c]), int(highs[c])
        pred, ctx = board.context(symbols[c], gather)  # as the decoder computes it
        if lo == hi:  # nothing to code: the models are never used
            e0, e2, gain, o0, o1, o2 = 1.0, 0.0, 0.0, 1.0, 0.0, 0.0
        elif odd.size:
            e0, e2 = _line(np.abs(even).astype(np.float64), [act_even]) if even.size \
                else (1.0, 0.0)
            denom = float(pred @ pred)
            gain = float(pred @ odd) / denom if denom > 0 else 0.0
            gain = float(np.float32(min(max(gain, 0.0), 2.0)))
            o0, o1, o2 = _line(np.abs(odd - gain * pred), [ctx, act_odd])
        else:
            e0, e2 = _line(np.abs(even).astype(np.float64), [act_even])
            gain, o0, o1, o2 = 0.0, 1.0, 0.0, 0.0
        if choose and lo != hi:
            if even.size:
                e0, e2 = _with_multiplier((e0, e2), [act_even], even, None)
            if odd.size:
                o0, o1, o2 = _with_multiplier((o0, o1, o2), [ctx, act_odd], odd,
                                              np.float64(gain) * pred)
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
            mine.append((even, lo, hi, None, _scales(e0, [e2], [act_even]), tabled))
            mine.append((odd, lo, hi, np.float64(gain) * pred,
                         _scales(o0, [o1, o2], [ctx, act_odd]), tabled))
        if plo != phi:
            mine.append((row, plo, phi, None, pscales, False))
        jobs.append(mine)
    return jobs, params, ranges, bands


def _laplace_symbol_bits(symbols, means, scales):
    """Bits of each symbol under its quantised Laplace model (floored at the coder's
    resolution, 2^-24; the renormalisation over the symbol range is left out)."""
    u = np.abs(symbols if means is None else symbols - means)
    inv = np.broadcast_to(1.0 / scales, u.shape)
    near = u <= 0.5
    logp = np.empty(u.shape)
    # |x - mean| <= 1/2: P = 1 - exp(-1/(2b)) cosh((x - mean) / b)
    i = inv[near]
    logp[near] = np.log1p(-np.exp(-0.5 * i) * np.cosh(u[near] * i))
    # |x - mean| > 1/2: P = sinh(1/(2b)) exp(-|x - mean| / b)
    far = ~near
    i = inv[far]
    logp[far] = np.log(np.sinh(0.5 * i)) - u[far] * i
    return np.maximum(logp, -24.0 * math.log(2.0)) * (-1.0 / math.log(2.0))


def _table_symbol_bits(symbols, means, scales):
    """Bits of each symbol coded with ``tables``: its entry's, plus, for an escaped
    one, its own under ``_laplace_symbol_bits``."""
    scales = np.broadcast_to(scales, symbols.shape)
    bits, escaped = tables.symbol_bits(symbols, means, scales)
    if escaped.any():
        bits[escaped] += _laplace_symbol_bits(symbols[escaped],
                                              None if means is None else means[escaped],
                                              scales[escaped])
    return bits


def estimate_bytes(jobs):
    """What ``encode_jobs`` would take, from the models' own probabilities (no coding).

    Each symbol costs -log2 of its probability (table entries exactly, quantised
    Laplace floored at the coder's resolution), plus a 32-bit word; the survey of
    the rate search sizes components with it. Within 1 % of the coded size on the
    studyforrest run.
    """
    bits = 32.0
    for symbols, lo, hi, means, scales, tabled in jobs:
        if symbols.size:
            pricing = _table_symbol_bits if tabled else _laplace_symbol_bits
            bits += float(pricing(symbols, means, scales).sum())
    return bits / 8.0


#: symbols gathered at a time by ``estimate_component_bytes`` (bounds its extra memory)
ESTIMATE_BATCH = 1 << 18


def estimate_component_bytes(jobs):
    """``estimate_bytes`` of every component's jobs (``component_jobs``' ``jobs``), as
    an array: the symbols of many components are priced in one pass of numpy calls
    (on a tiny run the per-call overhead of one call per pass made the rate survey
    30 % slower, its two threads waiting on each other's many small calls)."""
    out = np.full(len(jobs), 32.0)
    start = 0
    while start < len(jobs):
        stop, count = start, 0
        while stop < len(jobs) and (stop == start or count < ESTIMATE_BATCH):
            count += sum(job[0].size for job in jobs[stop])
            stop += 1
        for tabled in (True, False):
            batch = [(c, job) for c in range(start, stop) for job in jobs[c]
                     if job[5] == tabled and job[0].size]
            if not batch:
                continue
            owner = np.repeat([c for c, _ in batch], [job[0].size for _, job in batch])
            symbols = np.concatenate([job[0] for _, job in batch])
            means = np.concatenate([np.zeros(job[0].size) if job[3] is None else job[3]
                                    for _, job in batch])
            scales = np.concatenate([np.broadcast_to(job[4], job[0].shape)
                                     for _, job in batch])
            bits = (_table_symbol_bits if tabled else _laplace_symbol_bits)(symbols, means,
                                                                             scales)
            out += np.bincount(owner, weights=bits, minlength=len(jobs))[:len(jobs)]
        start = stop
    return out / 8.0


def encode_jobs(jobs):
    import constriction

    coder = constriction.stream.stack.AnsCoder()
    for symbols, lo, hi, means, scales, tabled in reversed(jobs):  # ANS is a stack
        if not symbols.size:
            continue
        symbols = np.ascontiguousarray(symbols, np.int32)
        if tabled:
            _encode_tabled(coder, symbols, lo, hi, means, scales)
        else:
            coder.encode_reverse(symbols, _laplace(lo, hi), _means(means, symbols.size),
                                 scales)
    return coder.get_compressed()


def _means(means, n):
    return np.zeros(n) if means is None else means


def _tabled_order(means, scales):
    """``(order, tables, n_tabled, residual offsets in order, table halves in order)``
    of one pass (``tables.groups``)."""
    key, offset = tables.keys(means, scales)
    order, used = tables.groups(key)
    n_tabled = sum(count for _, count in used)
    half = np.repeat([tables.table(k).half for k, _ in used], [c for _, c in used]) \
        if used else np.zeros(0, dtype=np.int64)
    return order, used, n_tabled, offset[order[:n_tabled]] - (half + 1), half


def _escaped(order, entries, half, n_tabled):
    """The voxels coded per symbol after the tables, in voxel order: escapes and
    ``WIDE``."""
    out = order[:n_tabled][(entries == 0) | (entries == 2 * half + 2)]
    return np.sort(np.concatenate([out, order[n_tabled:]]))


def _encode_tabled(coder, symbols, lo, hi, means, scales):
    """Push one pass: its table groups in increasing key, then its escaped symbols
    (per-symbol Laplace, in voxel order); pushed in reverse, as ANS decodes last in
    first out."""
    order, used, n_tabled, shift, half = _tabled_order(means, scales)
    entries = np.clip(symbols[order[:n_tabled]] - shift, 0, 2 * half + 2).astype(np.int32)
    escaped = _escaped(order, entries, half, n_tabled)
    if escaped.size:
        coder.encode_reverse(symbols[escaped], _laplace(lo, hi),
                             _means(means, symbols.size)[escaped], scales[escaped])
    end = n_tabled
    for k, count in reversed(used):
        coder.encode_reverse(entries[end - count:end], tables.table(k).model)
        end -= count


def _decode_tabled(coder, n, lo, hi, means, scales):
    """Inverse of ``_encode_tabled``: the pass's ``n`` symbols (int64)."""
    order, used, n_tabled, shift, half = _tabled_order(means, scales)
    entries = np.concatenate([coder.decode(tables.table(k).model, count)
                              for k, count in used] + [np.zeros(0, dtype=np.int32)])
    out = np.empty(n, dtype=np.int64)
    out[order[:n_tabled]] = entries + shift
    escaped = _escaped(order, entries, half, n_tabled)
    if escaped.size:
        out[escaped] = coder.decode(_laplace(lo, hi), _means(means, n)[escaped],
                                    scales[escaped])
    return out


def encode_factors(q_maps, q_patterns, steps, board, transform="dct", coder="table"):
    """ANS-code quantised maps (N x K) and patterns (K x T).

    ``steps`` is the per-component pattern step. Returns ``(payload bytes,
    params float32 (K, len(PARAMS)), ranges int32 (K, 4), bands uint8 or
    None)``, stored in the section before the words (see ``pack``).
    """
    jobs, params, ranges, bands = component_jobs(q_maps, q_patterns, steps, board, transform,
                                                   coder)
    words = encode_jobs([job for mine in jobs for job in mine])
    return words.astype("<u4").tobytes(), params, ranges, bands


def decode_factors(words, params, ranges, bands, n_timepoints, board, source, coder="table"):
    """Inverse of ``encode_factors``; all sizes come from the validated header.

    ``bands`` None means format 2's time-domain patterns (``PARAMS_TIME``);
    ``coder`` how the maps were coded (``MAP_CODERS``: "laplace" before format 5).
    """
    import constriction

    decode_pass = _decode_tabled if coder == "table" else _decode_laplace
    k = params.shape[0]
    edges = pattern_bands(n_timepoints)
    n = board.n_voxels
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
    # each component is decoded into one contiguous row, its even voxels first then its
    # odd ones (the coding order), and put back in mask order at the end
    n_even = board.even.size
    gather = board.permuted_gather()
    rows = np.zeros((k, n), dtype=np.int32)
    activity = Activity(n)  # per voxel, so the order of the voxels does not matter
    try:
        ans = constriction.stream.stack.AnsCoder(np.ascontiguousarray(words, np.uint32))
        for c in range(k):
            _, e0, e2, gain, o0, o1, o2 = (float(v) for v in params[c, :len(PARAMS)])
            lo, hi, plo, phi = (int(v) for v in ranges[c])
            act = activity.value()
            row = rows[c]
            if lo == hi:
                row[:] = lo
            else:
                if n_even:
                    row[:n_even] = decode_pass(ans, n_even, lo, hi, None,
                                               _scales(e0, [e2], [act[:n_even]]))
                if n_even < n:
                    pred, ctx = board.context(row, gather)
                    row[n_even:] = decode_pass(ans, n - n_even, lo, hi,
                                               np.float64(gain) * pred,
                                               _scales(o0, [o1, o2], [ctx, act[n_even:]]))
            if plo == phi:
                q_patterns[c] = plo
            else:
                pscales = band_scales(bands[c], edges) if bands is not None else \
                    np.full(n_timepoints, float(params[c, len(PARAMS)]))
                q_patterns[c] = ans.decode(_laplace(plo, phi), np.zeros(n_timepoints),
                                           pscales)
            activity.add(row)
        exact = ans.is_empty()  # every word consumed, the coder back at its start
    except ICAINRError:
        raise
    except Exception:
        raise ICAINRError(source, "the factor section cannot be decoded") from None
    if not exact:
        raise ICAINRError(source, "the factor section does not decode exactly (forged or cut)")
    if n and ((rows.min(axis=1) < ranges[:, 0]).any() or (rows.max(axis=1) > ranges[:, 1]).any()):
        raise ICAINRError(source, "the factor section decodes outside its ranges")
    q_maps = np.empty((n, k), dtype=np.int32)
    q_maps[board.order] = rows.T
    return q_maps, q_patterns


def _decode_laplace(ans, n, lo, hi, means, scales):
    """A pass coded per symbol (formats 2-4)."""
    return ans.decode(_laplace(lo, hi), _means(means, n), scales)


def pack(words, params, ranges, bands=None, weights=None):
    """Section layout: uint32 K, float32 params (K x len(PARAMS)), int32 ranges (K x 4),
    uint8 band codes (K x n_bands; "dct" only), uint8 neighbour weights (K; format 6),
    ANS words (uint32)."""
    k = params.shape[0]
    return (np.uint32(k).astype("<u4").tobytes() + params.astype("<f4").tobytes()
            + ranges.astype("<i4").tobytes()
            + (b"" if bands is None else bands.astype(np.uint8).tobytes())
            + (b"" if weights is None else np.asarray(weights, np.uint8).tobytes()) + words)


def unpack(payload, source, n_timepoints, transform="dct", weights=False):
    """Inverse of ``pack`` with every length bounded before allocating.

    Returns ``(words, params, ranges, bands, weights)`` (``bands`` None for
    "time"; ``weights`` None unless asked for: files before format 6 have none).
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
    stop = end + (k if weights else 0)
    if len(payload) < stop or (len(payload) - stop) % 4:
        raise ICAINRError(source, "the factor section has the wrong size")
    params = np.frombuffer(payload[4:4 + n_params], dtype="<f4").reshape(k, n_cols)
    ranges = np.frombuffer(payload[4 + n_params:head], dtype="<i4").reshape(k, 4)
    bands = np.frombuffer(payload[head:end], dtype=np.uint8).reshape(k, n_bands).copy() \
        if transform == "dct" else None
    moved = np.frombuffer(payload[end:stop], dtype=np.uint8).copy() if weights else None
    words = np.frombuffer(payload[stop:], dtype="<u4")
    return words, params.astype(np.float32), ranges.astype(np.int32), bands, moved
