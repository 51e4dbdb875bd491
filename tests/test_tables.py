"""The table coder of the maps' symbols (format 5): exact keys, identical tables on
every machine, and exact round trips through escapes and per-symbol scales."""

import numpy as np
import pytest

from nipype_icainr.codec.factor import coding, tables


def test_table_constants_are_the_formula_rounded():
    """``PHI_Q32`` (the integers the codec uses: no libm call at run time) is
    ``phi_q32`` of every cell, the formula it documents, rounded."""
    import math

    for cell in range(tables.N_CELLS):
        low, high = tables.cell_bounds(cell)
        exact = 2.0 ** 32 * math.exp(-1.0 / (8 * math.sqrt(low * high)))
        assert abs(tables.PHI_Q32[cell] - exact) <= 0.5 + 1e-3
    assert 0 < min(tables.PHI_Q32) and max(tables.PHI_Q32) < 2 ** 32
    assert list(tables.PHI_Q32) == sorted(tables.PHI_Q32)  # wider cells decay slower


def test_keys_follow_the_scale_cells_and_mean_eighths():
    levels = tables.MEAN_LEVELS
    low, high = tables.cell_bounds(9)
    scales = np.array([low, np.nextafter(high, 0), high, 63.99, 64.0, 1e300, np.inf])
    key, offset = tables.keys(None, scales)
    assert key.tolist()[:3] == [9 * levels, 9 * levels, 10 * levels]
    assert key[3] == (tables.N_CELLS - 1) * levels
    assert (key[4:] == tables.WIDE).all()  # per symbol; an overflowing cast included
    assert (offset == 0).all()
    means = np.array([-1.2, -0.0625, 0.0, 0.062, 0.063, 0.9, 2.5])
    key, offset = tables.keys(means, np.full(means.size, 0.3))
    # q = rint(8 m) (half to even): -10, 0, 0, 0, 1, 7, 20 -> offset floor(q/8), fraction q mod 8
    assert offset.tolist() == [-2, 0, 0, 0, 0, 0, 2]
    assert (key % levels).tolist() == [6, 0, 0, 0, 1, 7, 4]


@pytest.mark.parametrize("cell", [1, 12, 39])
@pytest.mark.parametrize("fraction", [0, 1, 3, 4, 7])
def test_tables_are_a_quantised_laplace(cell, fraction):
    """Each table's probabilities match a Laplace of the cell's scale centred on the
    fraction, integrated over unit bins (within the fixed-point rounding), and every
    entry, escapes included, can be coded."""
    import math

    t = tables.table(cell * tables.MEAN_LEVELS + fraction)
    p = 2.0 ** -t.bits
    low, high = tables.cell_bounds(cell)
    s = math.sqrt(low * high)
    centre = fraction / tables.MEAN_LEVELS
    r = np.arange(-t.half, t.half + 1)

    def cdf(x):
        return np.where(x < 0, 0.5 * np.exp(x / s), 1 - 0.5 * np.exp(-x / s))

    expected = cdf(r - centre + 0.5) - cdf(r - centre - 0.5)
    big = expected > 1e-4
    np.testing.assert_allclose(p[1:-1][big], expected[big], rtol=2e-3)
    assert np.isfinite(t.bits).all() and p[0] > 0 and p[-1] > 0
    # the support holds all but ~2^-24 of the mass
    assert 1 - expected.sum() < 1e-6


def _pass_round_trip(symbols, means, scales, lo, hi):
    import constriction

    job = (symbols, lo, hi, means, scales, True)
    words = coding.encode_jobs([job])
    ans = constriction.stream.stack.AnsCoder(words)
    out = coding._decode_tabled(ans, symbols.size, lo, hi, means, scales)
    assert ans.is_empty()
    return out, words


def test_a_pass_round_trips_through_tables_escapes_and_wide_scales():
    rng = np.random.default_rng(3)
    n = 5000
    scales = np.exp(rng.uniform(np.log(0.08), np.log(200.0), n))  # some >= 64: per symbol
    means = rng.normal(scale=3.0, size=n)
    symbols = np.rint(means + rng.laplace(scale=scales)).astype(np.int32)
    # outliers far outside their tables' support: escapes
    symbols[::97] += rng.choice([-1, 1], size=symbols[::97].size) * 5000
    lo, hi = int(symbols.min()), int(symbols.max())
    out, words = _pass_round_trip(symbols, means, scales, lo, hi)
    np.testing.assert_array_equal(out, symbols)
    # the estimate the rate search uses is close to the coded size
    estimate = coding.estimate_bytes([(symbols, lo, hi, means, scales, True)])
    assert abs(estimate - 4 * words.size) < 0.02 * 4 * words.size + 8


def test_tables_cost_about_what_the_per_symbol_laplace_costs():
    """On Laplace data the rounding of scales and means costs little (< 1.5 %)."""
    rng = np.random.default_rng(4)
    n = 200_000
    scales = np.exp(rng.uniform(np.log(0.1), np.log(20.0), n))
    means = rng.normal(scale=2.0, size=n)
    symbols = np.rint(means + rng.laplace(scale=scales)).astype(np.int32)
    lo, hi = int(symbols.min()), int(symbols.max())
    table = coding.estimate_bytes([(symbols, lo, hi, means, scales, True)])
    laplace = coding.estimate_bytes([(symbols, lo, hi, means, scales, False)])
    assert table < 1.015 * laplace


def test_batched_estimates_equal_the_per_component_ones(monkeypatch):
    """The rate survey prices every component's symbols in batches; the result is each
    component's ``estimate_bytes``, escapes and per-symbol patterns included, however
    the components fall into batches."""
    rng = np.random.default_rng(5)
    jobs = []
    for c in range(7):
        n = int(rng.integers(1, 400))
        scales = np.exp(rng.uniform(np.log(0.08), np.log(100.0), n))
        means = None if c % 2 else rng.normal(scale=2.0, size=n)
        x = np.rint((0 if means is None else means) + rng.laplace(scale=scales))
        x[::13] += 3000  # escapes
        x = x.astype(np.int32)
        pattern = np.rint(rng.laplace(scale=5.0, size=30)).astype(np.int32)
        jobs.append([(x, int(x.min()), int(x.max()), means, scales, True),
                     (pattern, int(pattern.min()), int(pattern.max()), None,
                      np.full(30, 5.0), False)])
    jobs.append([])  # a component with nothing to code
    expected = np.array([coding.estimate_bytes(mine) for mine in jobs])
    np.testing.assert_allclose(coding.estimate_component_bytes(jobs), expected, rtol=1e-12)
    monkeypatch.setattr(coding, "ESTIMATE_BATCH", 300)
    np.testing.assert_allclose(coding.estimate_component_bytes(jobs), expected, rtol=1e-12)
