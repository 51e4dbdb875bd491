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
* the mean to a quarter unit: ``q = rint(4 mean)``, the symbol coded is
  ``x - floor(q / 4)`` around the centre ``(q mod 4) / 4``.

Every symbol of one pass that falls in one cell is coded with one categorical
table of a two-sided geometric law ``P(r) ~ phi^|4r - f|`` (a discrete
Laplace), ``phi = theta^(1/4)`` for the cell's representative scale. A batch
decodes at about 30 ns a symbol. Symbols beyond the table's support (it holds
all but 2^-24 of the law's mass) take an escape entry and are then coded with
format 4's per-symbol Laplace, after the pass's tables, as are all symbols of
scales of 64 and more (rare: fine steps, a small share of a 25x file).

The tables are built from integers only (``PHI_Q16``, fixed-point powers), so
that the encoder on one machine and the decoder on another build the same
tables bit for bit; no libm function takes part.

Measured against format 4 (the same maps of the studyforrest run at 100x): the
passes decode in 0.33 s instead of 1.13 s. The rounding alone would cost 0.6 %
of the section; with the encoder's choice of a scale multiplier per pass
(``coding.SCALE_MULTIPLIERS``) files of the same size decode to within
+-0.05 dB PSNR of format 4's on the corpus runs at 50-200x (studyforrest 100x:
47.61 against 47.60 dB).
"""

import math

import numpy as np

#: mean offsets per unit: the centre of a table is f / MEAN_LEVELS, f in 0..3
MEAN_LEVELS = 4
#: scale cells per octave (from the top two bits of the mantissa after its leading 1)
CELLS_PER_OCTAVE = 4
#: frexp exponent of the smallest scale (``coding.MIN_SCALE`` = 0.08 = 0.64 * 2^-3)
LOWEST_EXPONENT = -3
#: scales below 64 = 2^6 are coded with tables: cells 0..39
N_CELLS = CELLS_PER_OCTAVE * (6 - LOWEST_EXPONENT + 1)
#: the key of symbols coded per symbol (scale >= 64); every key fits in a byte
WIDE = N_CELLS * MEAN_LEVELS
#: a table holds every entry whose probability is at least 2^-TAIL_BITS of the centre's
TAIL_BITS = 24
_Q = 16  # fixed-point bits of PHI_Q16
_POWER_BITS = 40  # fixed-point bits of the powers
_ONE = 1 << _POWER_BITS


def cell_bounds(cell):
    """``[low, high)``: the scales that fall in ``cell``."""
    octave, quarter = divmod(cell, CELLS_PER_OCTAVE)
    e = octave + LOWEST_EXPONENT
    return (0.5 + quarter / 8) * 2.0 ** e, (0.5 + (quarter + 1) / 8) * 2.0 ** e


def phi_q16(cell):
    """``round(2^16 theta^(1/4))`` for the cell's representative scale ``s`` (the
    geometric mean of its bounds), ``theta = exp(-1/s)``: the decay of one quarter
    unit of a Laplace of scale ``s``. Computed once to make ``PHI_Q16``; a test keeps
    the two equal."""
    low, high = cell_bounds(cell)
    s = math.sqrt(low * high)
    return round(65536 * math.exp(-0.25 / s))


#: the tables' decay per quarter unit, Q16 integers, one per scale cell
PHI_Q16 = (
    1831, 3530, 5550, 7725, 10954, 15211, 19071, 22501, 26794, 31573,
    35353, 38401, 41904, 45488, 48134, 50166, 52405, 54600, 56165, 57338,
    58604, 59818, 60670, 61300, 61973, 62612, 63056, 63383, 63730, 64057,
    64284, 64450, 64626, 64792, 64907, 64991, 65080, 65163, 65221, 65263,
)


class Table:
    """One cell's categorical model: entries ``0`` (below the support), ``r + half + 1``
    for ``r`` in ``[-half, half]``, ``2 half + 2`` (above)."""

    def __init__(self, cell, fraction):
        import constriction

        phi = PHI_Q16[cell]
        powers = [_ONE]  # powers[n] ~ 2^40 phi^n = 2^40 exp(-n / 4s)
        while powers[-1] >> (_POWER_BITS - TAIL_BITS):  # down to 2^-24 of the centre
            powers.append((powers[-1] * phi) >> _Q)
        last = len(powers) - 1
        powers += [0] * 6  # beyond the last: 0
        self.half = (last + MEAN_LEVELS) // MEAN_LEVELS
        powers = np.asarray(powers, dtype=np.int64)
        # the mass of a Laplace centred on fraction / 4 over [r - 1/2, r + 1/2], in
        # quarter units n = 4r - fraction: away from the centre (|n| >= 2)
        # (phi^(|n|-2) - phi^(|n|+2)) / 2; on it (|n| < 2) 1 - (phi^(2+n) + phi^(2-n)) / 2
        n = MEAN_LEVELS * np.arange(-self.half, self.half + 1) - fraction
        far = np.minimum(np.abs(n), last + 3)  # from last + 3 on: 0 - 0
        mass = (powers[np.maximum(far - 2, 0)] - powers[far + 2]) >> 1
        near = np.abs(n) < 2
        mass[near] = _ONE - ((powers[2 + n[near]] + powers[2 - n[near]]) >> 1)
        counts = np.ones(2 * self.half + 3, dtype=np.int64)  # every entry >= 1 (escapes: 1)
        counts[1:-1] += mass >> (_POWER_BITS - TAIL_BITS)
        # integers below 2^53 are exact floats: constriction quantises the same floats
        # on every machine
        probabilities = counts.astype(np.float64)
        self.model = constriction.stream.model.Categorical(probabilities, perfect=False)
        self.bits = -np.log2(probabilities / probabilities.sum())


_TABLES = {}


def table(key):
    """The ``Table`` of a key ``cell * MEAN_LEVELS + fraction`` (built once a process)."""
    if key not in _TABLES:
        _TABLES[key] = Table(*divmod(key, MEAN_LEVELS))
    return _TABLES[key]


def keys(means, scales):
    """Each symbol's table key (``WIDE``: coded per symbol) and integer offset.

    ``means`` may be None (zero-mean). Exact: a multiplication by 4, ``rint``,
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
        # |means| <= 2 x the largest symbol (2^16): 4 x means fits in int32
        q = np.rint(means * MEAN_LEVELS).astype(np.int32)
        offset = q >> 2  # floor(q / 4)
        key = cell * MEAN_LEVELS + (q & (MEAN_LEVELS - 1))
    # a huge scale (a forged file's) can overflow the cast: coded per symbol too
    key[(cell >= N_CELLS) | (cell < 0)] = WIDE
    return key, offset


def groups(key):
    """How a pass is coded: ``(order, tables)``. ``order`` lists the symbols by
    increasing key (stable: voxel order within a key); ``tables`` is ``[(key,
    count)]`` of the tables used, in that order, and the symbols of key ``WIDE``
    (coded per symbol) come last in ``order``."""
    # keys fit in a byte: numpy sorts them stably by radix, in linear time
    order = np.argsort(key.astype(np.uint8), kind="stable")
    counts = np.bincount(key, minlength=WIDE + 1)
    used = np.flatnonzero(counts[:WIDE])
    return order, [(int(k), int(counts[k])) for k in used]


def entries(residuals, half):
    """Table entries of ``x - offset``: escapes at 0 and ``2 half + 2``."""
    return np.clip(residuals + (half + 1), 0, 2 * half + 2)


class _Flat:
    """Every table's bits in one array, for the encoder's size estimates."""

    def __init__(self):
        all_tables = [table(k) for k in range(WIDE)]
        self.half = np.array([t.half for t in all_tables] + [0], dtype=np.int64)
        sizes = [t.bits.size for t in all_tables] + [3]  # WIDE: three zero-bit entries
        self.start = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        self.bits = np.concatenate([t.bits for t in all_tables] + [np.zeros(3)])


_FLAT = []


def bits(symbols, means, scales, escape_bits=None):
    """The table bits of coding ``symbols`` as ``keys`` sorts them.

    ``escape_bits`` None: returns ``(bits, escaped)``, ``escaped`` the symbols
    that go on to be coded per symbol (escapes and ``WIDE``). Else a number: what
    each of those costs on top, and ``scales`` may hold one row per candidate
    model (``(M, n)``): returns the bits of each row (``(M,)``).
    """
    if not _FLAT:
        _FLAT.append(_Flat())
    flat = _FLAT[0]
    scales = np.broadcast_to(scales, np.shape(scales)[:-1] + np.shape(symbols))
    key, offset = keys(None if means is None else np.broadcast_to(means, scales.shape),
                       scales)
    half = flat.half[key]
    entry = np.clip(symbols - offset + half + 1, 0, 2 * half + 2)
    escaped = (entry == 0) | (entry == 2 * half + 2) | (key == WIDE)
    table_bits = flat.bits[flat.start[key] + entry].sum(axis=-1)
    if escape_bits is None:
        return float(table_bits), escaped
    return table_bits + escape_bits * escaped.sum(axis=-1)
