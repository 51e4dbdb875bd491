"""The knob search rule, the same for every method.

For each target ratio ``r`` each method's knob is searched and the
highest-quality setting whose *achieved* ratio (raw bytes in the stored dtype /
payload bytes, every header byte included) is at least ``0.98 * r`` is kept;
the achieved ratio is what the tables report, never the target.

* Continuous knobs (an error bound, a tolerance, a JPEG 2000 PSNR layer, a
  video CRF) are bisected, on a log scale for error bounds, between a coarse
  end that must fit the budget and a fine end; the payload size is monotone in
  these knobs (up to encoder noise), so the finest setting that fits is the
  highest-quality one. Every evaluation is kept and the finest fitting one wins,
  so an encoder's small non-monotonicities cannot lose a better setting.
* Integer knobs (an SVD rank, an INR width) are scanned: the size grows with
  them, so the scan gallops up from the smallest value (1, 2, 4, 8, ... steps)
  and bisects the last bracket, returning the largest value that fits, which is
  what a full scan would return.
* Where a method has several variants (the background fill, the bits per
  coefficient of the SVD), each variant gets its own search and the variants'
  winners are compared on PSNR over the brain mask; the best one is kept.
* Lossless methods (gzip, zstd) have no knob: one row each, at the ratio they
  reach. The ICA-INR codec takes the target ratio itself and fits its own size.

A target no setting can reach is reported as such (no row is invented).
"""

import math
from dataclasses import dataclass, field

#: a setting fits the target r when its achieved ratio is at least TOLERANCE * r
TOLERANCE = 0.98


def budget_bytes(raw_bytes, target_ratio):
    """Largest payload whose ratio is at least ``TOLERANCE * target_ratio``."""
    return raw_bytes / (TOLERANCE * float(target_ratio))


@dataclass
class Choice:
    """The outcome of a knob search.

    Attributes
    ----------
    knob : dict
        The setting (JSON-able); passed back to ``Method.encode``.
    n_bytes : int or None
        Payload size at that setting (None when not known before compressing,
        e.g. the ICA-INR codec, which sizes itself).
    quality : float or None
        PSNR (dB, brain mask) when the search had to compare variants.
    evaluations : list of dict
        Every setting tried: ``{"knob": ..., "bytes": ...}``.
    note : str
    """

    knob: dict
    n_bytes: int = None
    quality: float = None
    evaluations: list = field(default_factory=list)
    note: str = ""
    payload: bytes = field(default=None, repr=False)


class OutOfReach(Exception):
    """No setting of the method reaches the target ratio."""


def bisect_continuous(encode, lo, hi, budget, size_grows=True, log=False, iters=12,
                      evaluations=None):
    """Finest value of a continuous knob whose payload fits ``budget``.

    Parameters
    ----------
    encode : callable
        ``encode(value) -> bytes``.
    lo, hi : float
        The knob's range.
    budget : float
        Largest payload size allowed (see ``budget_bytes``).
    size_grows : bool
        True when the payload (and quality) grows with the knob (a PSNR target),
        False when it falls (an error bound, a CRF).
    log : bool
        Bisect on a log scale (``lo`` and ``hi`` must be positive).
    iters : int
        Bisection steps after the two ends.
    evaluations : list, optional
        Appended with ``{"value", "bytes"}`` for every encode.

    Returns
    -------
    (value, payload)

    Raises
    ------
    OutOfReach
        When even the coarsest end does not fit.
    """
    evaluations = [] if evaluations is None else evaluations
    fwd = (lambda v: math.log(v)) if log else (lambda v: v)
    inv = (lambda u: math.exp(u)) if log else (lambda u: u)
    fine, coarse = (hi, lo) if size_grows else (lo, hi)
    fits = []  # (value, payload) that fit

    def attempt(value):
        blob = encode(value)
        evaluations.append({"value": float(value), "bytes": len(blob)})
        if len(blob) <= budget:
            fits.append((value, blob))
            return True
        return False

    if not attempt(coarse):
        raise OutOfReach(f"the coarsest setting ({coarse:g}) is "
                         f"{evaluations[-1]['bytes']:,} bytes, over the budget of {budget:,.0f}")
    if attempt(fine):
        return fits[-1]
    a, b = fwd(coarse), fwd(fine)  # a fits, b does not
    for _ in range(iters):
        mid = 0.5 * (a + b)
        if attempt(inv(mid)):
            a = mid
        else:
            b = mid
    # the finest value that fitted (encoders are not exactly monotone)
    key = (lambda vb: vb[0]) if size_grows else (lambda vb: -vb[0])
    return max(fits, key=key)


def largest_integer(encode, lo, hi, budget, evaluations=None):
    """Largest integer knob in ``[lo, hi]`` whose payload fits (size grows with the knob).

    Returns ``(value, payload)``; raises ``OutOfReach`` when ``lo`` does not fit.
    """
    evaluations = [] if evaluations is None else evaluations
    cache = {}

    def size(k):
        if k not in cache:
            blob = encode(k)
            evaluations.append({"value": int(k), "bytes": len(blob)})
            cache[k] = blob
        return len(cache[k])

    if size(lo) > budget:
        raise OutOfReach(f"the smallest setting ({lo}) is {len(cache[lo]):,} bytes, over the "
                         f"budget of {budget:,.0f}")
    # gallop up from lo (small settings are cheap to try), then bisect the bracket
    a, step = lo, 1
    while True:
        b = min(hi, a + step)
        if size(b) > budget:
            break
        if b == hi:
            return hi, cache[hi]
        a, step = b, 2 * step
    while b - a > 1:  # a fits, b does not
        mid = (a + b) // 2
        if size(mid) <= budget:
            a = mid
        else:
            b = mid
    return a, cache[a]
