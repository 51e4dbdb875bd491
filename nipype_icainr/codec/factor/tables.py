"""Table-driven coding of the maps' symbols (format 5).

Format 4 gave every map symbol its own quantised Laplace (constriction's
``QuantizedLaplace`` with a per-symbol mean and scale). Decoding that costs
about 150 ns a symbol, half of a studyforrest decompression, because the coder
inverts a continuous CDF for every symbol. Format 5 keeps the same context
model (``coding``: the scale and the mean each symbol is coded with) but rounds
it onto a fixed grid:

* the scale ``s`` to a quarter octave, read from its float representation
  (``s = m 2^e``, ``m`` in [1/2, 1): cell ``4 (e + 3) + floor(8 m - 4)``),
  exact on every machine;
* the mean to an eighth of a unit: ``q = rint(8 mean)``, the symbol coded is
  ``x - floor(q / 8)`` around the centre ``(q mod 8) / 8`` (an eighth rather than
  a quarter: the rounding cost 0.2-0.3 % of the section instead of 0.5-0.9 % on
  the studyforrest and gift maps).

Every symbol of one pass that falls in one cell is coded with one categorical
table: a Laplace of the cell's representative scale centred on the fraction,
integrated over unit bins, in powers of ``phi``, its decay over an eighth of a unit. A batch
decodes at about 30 ns a symbol. Symbols beyond the table's support (it holds
all but 2^-24 of the law's mass) take an escape entry and are then coded with
format 4's per-symbol Laplace, after the pass's tables, as are all symbols of
scales of 64 and more (rare: fine steps, a small share of a 25x file).

The tables are built from integers only (``PHI_Q32``, fixed-point powers), so
that the encoder on one machine and the decoder on another build the same
tables bit for bit; no libm function takes part.

Measured against format 4 (the same maps of the studyforrest run at 100x): the
passes decode in 0.37 s instead of 1.13 s. The rounding alone costs 0.2-0.3 % of
the section; with the encoder's choice of a scale multiplier per pass
(``coding.SCALE_MULTIPLIERS``) files of the same size decode to a PSNR within
-0.01/+0.08 dB of format 4's on studyforrest and five corpus runs at 50-200x
(studyforrest 100x: 47.62 against 47.60 dB), 0.1 dB lower on the 90 dB gift
files at 25x.
"""

import functools
import math

import numpy as np

#: mean offsets per unit: the centre of a table is f / MEAN_LEVELS, f in 0..7
MEAN_LEVELS = 8
#: scale cells per octave (from the top two bits of the mantissa after its leading 1)
CELLS_PER_OCTAVE = 4
#: frexp exponent of the smallest scale (``coding.MIN_SCALE`` = 0.08 = 0.64 * 2^-3)
LOWEST_EXPONENT = -3
#: scales below 64 = 2^6 are coded with tables: cells 0..39
N_CELLS = CELLS_PER_OCTAVE * (6 - LOWEST_EXPONENT + 1)
#: the key of symbols coded per symbol (scale >= 64)
WIDE = N_CELLS * MEAN_LEVELS
#: a table holds every entry whose probability is at least 2^-TAIL_BITS of the centre's
TAIL_BITS = 24
_Q = 32  # fixed-point bits of PHI_Q32
_POWER_BITS = 40  # fixed-point bits of the powers
_ONE = 1 << _POWER_BITS


def cell_bounds(cell):
    """``[low, high)``: the scales that fall in ``cell``."""
    octave, quarter = divmod(cell, CELLS_PER_OCTAVE)
    e = octave + LOWEST_EXPONENT
    return (0.5 + quarter / 8) * 2.0 ** e, (0.5 + (quarter + 1) / 8) * 2.0 ** e


def phi_q32(cell):
    """``round(2^32 exp(-1 / (8 s)))`` for the cell's representative scale ``s`` (the
    geometric mean of its bounds): the decay over an eighth of a unit of a Laplace of
    scale ``s``. Computed once to make ``PHI_Q32``, which the codec uses (no libm
    call at run time); a test keeps the two in agreement."""
    low, high = cell_bounds(cell)
    s = math.sqrt(low * high)
    return round(2.0 ** 32 * math.exp(-1.0 / (MEAN_LEVELS * s)))


#: the tables' decay per eighth of a unit, Q32 integers (Q16 was too coarse: the
#: scale of the widest cell off by 0.3 %), one per scale cell
PHI_Q32 = (
    717910449, 996855409, 1249841997, 1474618000, 1755961816, 2069169249,
    2316901056, 2516631893, 2746233525, 2981109567, 3154522827, 3287681809,
    3434382503, 3578235333, 3680838542, 3757723493, 3840645848, 3920255570,
    3976063526, 4017374704, 4061458890, 4103336382, 4132440297, 4153852786,
    4176581510, 4198058547, 4212920119, 4223820767, 4235360787, 4246236471,
    4253745894, 4259245480, 4265059913, 4270532376, 4274306903, 4277069095,
    4279987482, 4282732409, 4284624646, 4286008853,
)


class Table:
    """One cell's categorical model: entries ``0`` (below the support), ``r + half + 1``
    for ``r`` in ``[-half, half]``, ``2 half + 2`` (above)."""

    def __init__(self, cell, fraction):
        import constriction

        powers = _powers(cell)
        h = MEAN_LEVELS // 2  # half a unit
        last = powers.size - (2 * h + 3)
        self.half = (last + MEAN_LEVELS) // MEAN_LEVELS
        # the mass of a Laplace centred on fraction / 8 over [r - 1/2, r + 1/2], in eighths
        # n = 8r - fraction: away from the centre (|n| >= 4) (phi^(|n|-4) - phi^(|n|+4)) / 2;
        # on it (|n| < 4) 1 - (phi^(4+n) + phi^(4-n)) / 2
        n = MEAN_LEVELS * np.arange(-self.half, self.half + 1) - fraction
        far = np.minimum(np.abs(n), last + h + 1)  # from last + h + 1 on: 0 - 0
        mass = (powers[np.maximum(far - h, 0)] - powers[far + h]) >> 1
        near = np.abs(n) < h
        mass[near] = _ONE - ((powers[h + n[near]] + powers[h - n[near]]) >> 1)
        counts = np.ones(2 * self.half + 3, dtype=np.int64)  # every entry >= 1 (escapes: 1)
        counts[1:-1] += mass >> (_POWER_BITS - TAIL_BITS)
        # integers below 2^53 are exact floats: constriction quantises the same floats
        # on every machine
        probabilities = counts.astype(np.float64)
        self.model = constriction.stream.model.Categorical(probabilities, perfect=False)
        self.bits = -np.log2(probabilities / probabilities.sum())


_TABLES = {}


@functools.lru_cache(maxsize=None)
def _powers(cell):
    """``P_n ~ 2^40 phi^n = 2^40 exp(-n / 8s)`` (int64) down to the first under 2^16
    (2^-24 of the centre), then ``MEAN_LEVELS + 2`` zeros; shared by the cell's
    eight tables (a Python loop of up to 8,000 integer products for the widest)."""
    phi = PHI_Q32[cell]
    powers = [_ONE]
    while powers[-1] >> (_POWER_BITS - TAIL_BITS):
        powers.append((powers[-1] * phi) >> _Q)
    powers += [0] * (MEAN_LEVELS + 2)  # beyond the last: 0
    out = np.asarray(powers, dtype=np.int64)
    out.flags.writeable = False
    return out


def table(key):
    """The ``Table`` of a key ``cell * MEAN_LEVELS + fraction`` (built once a process)."""
    if key not in _TABLES:
        _TABLES[key] = Table(*divmod(key, MEAN_LEVELS))
    return _TABLES[key]


def keys(means, scales):
    """Each symbol's table key (``WIDE``: coded per symbol) and integer offset.

    ``means`` may be None (zero-mean). Exact: a multiplication by 8, ``rint``,
    ``frexp`` and integer arithmetic.
    """
    mantissa, exponent = np.frexp(scales)
    with np.errstate(invalid="ignore"):  # inf (a forged file's): caught just below
        cell = (mantissa * 8).astype(np.int32)
    cell += CELLS_PER_OCTAVE * exponent - (CELLS_PER_OCTAVE * LOWEST_EXPONENT + 4)
    if means is None:
        offset = np.zeros(cell.shape, dtype=np.int32)
        key = cell * MEAN_LEVELS
    else:
        # |means| <= 2 x the largest symbol (2^16): 8 x means fits in int32
        q = np.rint(means * MEAN_LEVELS).astype(np.int32)
        offset = q >> 3  # floor(q / 8)
        key = cell * MEAN_LEVELS + (q & (MEAN_LEVELS - 1))
    # a huge scale (a forged file's) can overflow the cast: coded per symbol too
    key[(cell >= N_CELLS) | (cell < 0)] = WIDE
    return key, offset


def groups(key):
    """How a pass is coded: ``(order, tables)``. ``order`` lists the symbols by
    increasing key (stable: voxel order within a key); ``tables`` is ``[(key,
    count)]`` of the tables used, in that order, and the symbols of key ``WIDE``
    (coded per symbol) come last in ``order``."""
    # keys fit in 16 bits: numpy sorts them stably by radix, in linear time
    order = np.argsort(key.astype(np.uint16), kind="stable")
    counts = np.bincount(key, minlength=WIDE + 1)
    used = np.flatnonzero(counts[:WIDE])
    return order, [(int(k), int(counts[k])) for k in used]


@functools.lru_cache(maxsize=None)
def _flat():
    """Every table's bits in one array, for the encoder's size estimates:
    ``(half, start, bits)``, the first two indexed by key (``WIDE``: three zero-bit
    entries)."""
    all_tables = [table(k) for k in range(WIDE)]
    half = np.array([t.half for t in all_tables] + [0], dtype=np.int64)
    sizes = [t.bits.size for t in all_tables] + [3]
    start = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    return half, start, np.concatenate([t.bits for t in all_tables] + [np.zeros(3)])


def symbol_bits(symbols, means, scales):
    """``(bits, escaped)`` of each symbol: its table entry's bits, and whether it goes
    on to be coded per symbol (an escape, or ``WIDE``: bits 0 here). ``means`` and
    ``scales`` have the symbols' shape or broadcast theirs to one row per candidate
    model."""
    half_of, start, flat_bits = _flat()
    key, offset = keys(means, scales)
    half = half_of[key]
    entry = np.clip(symbols - offset + half + 1, 0, 2 * half + 2)
    escaped = (entry == 0) | (entry == 2 * half + 2) | (key == WIDE)
    return flat_bits[start[key] + entry], escaped


def bits(symbols, means, scales, escape_bits):
    """The bits of coding ``symbols`` under each row of ``scales`` (``(M, n)``, one row
    per candidate model; ``means`` None or ``(n,)``), each escaped symbol counted at
    ``escape_bits`` on top of its table entry: ``(M,)``."""
    means = None if means is None else np.broadcast_to(means, scales.shape)
    table_bits, escaped = symbol_bits(symbols, means, scales)
    return table_bits.sum(axis=-1) + escape_bits * escaped.sum(axis=-1)
