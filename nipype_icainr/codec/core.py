"""The codec at the array level: ``encode`` a run to bytes, ``decode`` bytes to a run.

``encode`` takes a ``Target``: a ratio, lossless, a maximum error or a PSNR.

* Lossless and maximum error: the whole-run model (``models.LOSSLESS_MODEL``)
  codes the stored array.
* A ratio: when a lossless coding fits the budget it is written (the lossless
  floor: a file is never larger than a lossless one that reaches the ratio);
  otherwise the configured series model codes the run, as for a PSNR target.
* Series models: ``encode`` chooses the voxels whose series are coded (the
  brain mask, less the voxels constant over time: zero padding is not a
  series), codes that mask and the mean frame (``frame``), hands the
  mean-removed series to the model (``models``) with the byte budget or error
  target, and frames everything in one container (``container``).

``decode`` validates the whole header (``header``), then rebuilds the mask,
the mean frame and the model's series, or the whole-run model's stored array.
Neither touches a file: ``api`` reads and writes them.
"""

import math
import time
from dataclasses import dataclass

import numpy as np

from .. import io
from ..masking import compute_mask
from ..provenance import software_versions
from . import limits, models
from .config import stored_config
from .container import NAN_SECTION, pack, unpack
from .errors import ICAINRError, OutOfReach
from .frame import (BACKGROUND_ALLOWANCE, MULTIPLE_EFFORT, background_multiple,
                    balanced_background_multiple, decode_mean_frame, encode_mean_frame,
                    frame_origin, mean_frame_step, mean_options)
from .header import header_block, image_record, round_sig, validate_header
from .reconstruction import Reconstruction, StoredReconstruction  # noqa: F401 (api uses them)
from .runs import ArrayRun, VolumeRun, zero_padding

MASK_TAG, MEAN_TAG = "MASK", "MEAN"


@dataclass
class Target:
    """What to compress to: exactly one of a ratio, lossless, a maximum error
    (physical units) or a PSNR (dB, inside the brain mask)."""

    ratio: float = None
    lossless: bool = False
    max_error: float = None
    psnr: float = None

    def describe(self):
        if self.lossless:
            return "lossless"
        if self.max_error is not None:
            return f"max error {self.max_error:g}"
        if self.psnr is not None:
            return f"PSNR {self.psnr:g} dB"
        return f"ratio {self.ratio:g}"


@dataclass
class Encoded:
    """``encode``'s result: the file's bytes and what it decodes to."""

    blob: bytes
    coded: models.Coded
    model: models.SeriesModel
    reconstruction: Reconstruction
    fit_seconds: float
    device: str

    @property
    def n_voxels(self):
        return int(self.reconstruction.mask.sum())

    def describe(self):
        return self.model.describe(self.coded.part)


def raw_bytes(shape, dtype):
    """Bytes of the voxel array in its stored dtype over the full grid: the ratio's numerator."""
    return int(np.prod(shape)) * np.dtype(dtype).itemsize


def series_mask(run, affine):
    """The voxels whose series a model codes: the brain mask less the constant voxels.

    A voxel constant over time (zero padding, an ROI-only run's background)
    is exactly its mean; when the brain mask keeps fewer than 8 varying voxels,
    every varying voxel is coded. ``run``: an array (X, Y, Z, T) or a
    ``runs.ArrayRun``/``VolumeRun``.
    """
    run = as_run(run)
    _, low, high = run.stats()
    varying = high > low
    mask = brain_mask(run, affine) & varying
    if mask.sum() < 8:
        mask = varying
    return mask


def brain_mask(run, affine):
    """``masking.compute_mask`` of a run from its mean and range over time (``stats``)."""
    mean, low, high = as_run(run).stats()
    return compute_mask(None, affine, mean=mean, spread=high - low)


def as_run(data):
    """An ``ArrayRun`` of an array; a run source as it is."""
    return data if isinstance(data, (ArrayRun, VolumeRun)) else ArrayRun(data)


def stored_array(data, image, source):
    """The stored array behind physical ``data`` (exactly: the run came from it)."""
    stored = io.to_stored_values(data, image["dtype"], image["scl_slope"], image["scl_inter"])
    back = io.from_stored_values(stored, image["scl_slope"], image["scl_inter"])
    if not np.array_equal(back, data):
        raise ICAINRError(source, "the run is not exactly its stored values through its "
                                  "scaling, so it cannot be coded losslessly")
    return stored


def encode(data, image, config, target, seed=0, device="auto", progress=False,
           measure=True, source=None):
    """Code a run into the bytes of one ``.icainr`` file.

    Parameters
    ----------
    data : ndarray (X, Y, Z, T), or a run source (``runs.ArrayRun``/``VolumeRun``)
        The run in physical units (float64); a ``VolumeRun`` is read volume by
        volume and never held whole unless a lossless coding is tried.
    image : dict
        ``nipype_icainr.io.describe_image`` of the run: header, stored dtype,
        scaling, affine.
    config : dict
        A validated configuration (``config.resolve_config``).
    target : Target or float
        What to aim at (a float is a file size in bytes).
    seed : int
    device : {'auto', 'cpu', 'cuda'}
    progress : bool
        A progress bar while fitting (network models).
    measure : bool
        Also compute the decoded series (``Encoded.reconstruction``).
    source : str, optional
        The input's name, for error messages.

    Returns
    -------
    Encoded
    """
    run = as_run(data)
    shape = run.shape
    limits.check_shape(list(shape), source)
    if not isinstance(target, Target):
        target = Target(ratio=raw_bytes(shape, image["dtype"]) / float(target))
    n_raw = raw_bytes(shape, image["dtype"])
    lossless = models.get(models.LOSSLESS_MODEL)
    if target.lossless or target.max_error is not None:
        run_target = models.RunTarget(max_error=0.0 if target.lossless else target.max_error)
        return encode_run(lossless, stored_array(run.array(), image, source), image, config,
                          run_target, seed, source)
    if target.ratio is not None:
        budget_bytes = n_raw / target.ratio
        # a quick estimate from the first volumes; the estimate over-states the lossless
        # size by 10-25 %: a lossless coding is tried when it is near the budget
        first = min(shape[3], 64)
        sample = np.empty(shape[:3] + (first,), dtype=np.dtype(image["dtype"]), order="F")
        for t in range(first):  # volume by volume: one float64 volume at a time
            sample[..., t] = io.to_stored_values(run.volume(t), image["dtype"],
                                                 image["scl_slope"], image["scl_inter"])
        estimate = lossless.estimate_bytes(sample, image)
        del sample  # up to 64 volumes: not kept through the fit
        # the predictive coder lands at about half of fast zstd on real runs
        if estimate is not None and 0.5 * estimate * shape[3] / first <= budget_bytes:
            try:
                stored = stored_array(run.array(), image, source)
            except ICAINRError:
                stored = None
            if stored is not None:
                enc = encode_run(lossless, stored, image, config, models.RunTarget(0.0), seed,
                                 source)
                if len(enc.blob) <= budget_bytes:
                    return enc
                del stored, enc
    model = models.get(config["model"])
    dev = model.resolve_device(device)
    mask = series_mask(run, image["affine"])
    masks = [mask]
    _, low, high = run.stats()
    varying = high > low
    if model.plans_mean and n_raw <= SMALL_RUN_BYTES and not np.array_equal(mask, varying):
        # a small run's brain mask can cost a fifth of its budget (an irregular mask of a
        # few hundred voxels): coding every varying voxel instead, with no mask to send,
        # is the other choice, kept when it comes back closer in the brain mask
        masks.append(varying)
    best, failure = None, None
    for coded_mask in masks:
        try:
            enc = _encode_series(run, image, config, target, coded_mask, model, dev, seed,
                                 progress, measure, source, n_raw)
        except OutOfReach as exc:
            # report the mask that came closest: the ratio the error names is then one
            # the other mask does not already beat
            if failure is None or exc.floor_bytes < failure.floor_bytes:
                failure = exc
            continue
        if len(masks) == 1:
            key = None
        elif target.ratio is None:  # both meet the error target: the smaller file
            key = len(enc.blob)
        else:
            # a coding whose dynamics are flat (few components, no regional layer) loses
            # to one that keeps them, whatever the error: the model's own rule, across masks
            key = (model.flat_dynamics(enc.coded.part), _sse_in(enc, run, mask))
        if best is None or key < best[0]:
            best = (key, enc, coded_mask)
    if best is None:
        raise failure
    _, enc, coded_mask = best
    if target.ratio is None or n_raw > SMALL_RUN_BYTES:
        return enc
    bare = model.without_connectivity_layer(config, enc.coded.part)
    if bare is None:
        return enc
    # the connectivity layer is bought with error: a small run measures the price (one
    # more fit) and keeps the layer when it costs at most LAYER_COST_DB, or when the run
    # coded without it would have flat dynamics
    try:
        other = _encode_series(run, image, bare, target, coded_mask, model, dev, seed,
                               progress, measure, source, n_raw, record=config)
    except OutOfReach:
        return enc
    if model.flat_dynamics(other.coded.part):
        return enc
    if _sse_in(enc, run, mask) > _sse_in(other, run, mask) * 10 ** (LAYER_COST_DB / 10):
        return other
    return enc


#: the most PSNR (dB) a small run's connectivity layer may cost (``encode``). Measured
#: (the two codings, this bound lifted): 0.22-0.59 dB on three 26x31x22x50 MNI runs at
#: 25-100x, where their connectivity errors are a few thousandths either way, and
#: 0.36 dB on a 10x10x18x40 cut at 50x, enough to fall behind a quantised SVD there; at
#: 200x, and on runs of one or two components, it costs nothing or is kept regardless.
#: At 0.1 the 17x21x3x20 run at 25x (0.12 dB) lost its layer and with it the lead on
#: connectivity under compact parcels and Power spheres
LAYER_COST_DB = 0.15


def _sse_in(enc, run, mask):
    """Squared error of ``enc``'s decoded run in ``mask``."""
    values = enc.reconstruction.values()
    return float(np.sum((values[mask] - run.array()[mask]) ** 2))


#: fits again with a finer background, at most (``_encode_series``)
BACKGROUND_REFITS = 2


#: mean-frame steps tried below the chosen one for the background's (``_cheapest_background``)
BACKGROUND_STEPS = 16


def _cheapest_background(mean, mask, unmeasured, step, zero_level, target, multiple_at):
    """The mean frame's step, at most ``step``, and background multiple
    (``multiple_at(step)``) that code the frame in the fewest bytes (JPEG XL at
    ``MULTIPLE_EFFORT``) with the background (the voxels not in ``unmeasured``)
    within ``target`` (RMS); None when none is (a step far from the plan's left a
    gift run's series 15 dB worse: the plan's byte counts no longer held).

    The multiple is an integer: where the in-mask error falls between one and
    two steps, a multiple of 2 is over it and 1 codes the background twice as
    finely as it needs (gift-133 at 200x: 977 more bytes, 0.42 dB in the mask).
    A finer mean step (down to half, 2^(1/16) apart) with a larger multiple
    lands closer.
    """
    best = None
    for i in range(BACKGROUND_STEPS + 1):
        s = round_sig(step * 2.0 ** (-i / BACKGROUND_STEPS), 1)
        multiple = multiple_at(s)
        payload, _, decoded = encode_mean_frame(
            mean, s, mask, multiple, lo=frame_origin(mean.min(), s, zero_level),
            effort=MULTIPLE_EFFORT, zero_level=zero_level)
        key = (_background_rms(mean, unmeasured, decoded) > target, len(payload))
        if best is None or key < best[0]:
            best = (key, s, multiple)
    if best[0][0]:  # none within the target
        return None
    return best[1], best[2]


def zero_padded(run, mask):
    """Whether some voxel outside ``mask`` is 0 at every time point while the mean frame
    goes below 0: the frame is then laid so that 0 is one of its levels
    (``frame.frame_origin``). A frame whose minimum is 0 has 0 as its origin already."""
    stats = run.stats()
    if not stats[0].min() < 0:
        return False
    return bool(np.any(zero_padding(stats) & ~mask))


#: where the survey gives no price of a byte (``Plan.price``): the series' squared error
#: grows as (bytes)^-RD_EXPONENT when bytes are taken from them (``_byte_price``): 2 is
#: 6 dB per halving, the steepest the corpus shows between 100
#: and 200x (the gift runs; the larger runs lose about 2 dB), so the background is
#: priced at the most its bytes can cost the brain
RD_EXPONENT = 2.0
#: a factor file's header and framing, about (``_byte_price``)
FRAMING_BYTES = 300


def _byte_price(sse, target_bytes, mean_bytes, mask):
    """Squared error in the mask that one more byte of the mean frame costs the series:
    ``RD_EXPONENT`` * SSE / (the bytes the series have)."""
    series_bytes = target_bytes - mean_bytes - len(io.pack_mask(mask)) - FRAMING_BYTES
    return RD_EXPONENT * sse / max(series_bytes, 0.1 * target_bytes, 1.0)


def _in_mask_rms(sse, mask, n_timepoints):
    """RMS error in the mask from its squared error ``sse`` (a plan's, a coding's
    ``Coded.sse``, the mean frame's included, or an error target's)."""
    return math.sqrt(sse / max(int(mask.sum()) * n_timepoints, 1))


def _background_rms(mean, mask, decoded):
    """RMS difference of the decoded mean frame from ``mean`` outside ``mask`` (0 if none):
    ``mask`` holds the coded voxels and the zero padding (which comes back exact: a
    skull-stripped run's background is mostly padding, and an RMS over it all let
    the rest come back 2.6 times further off than the in-mask error: RAPIDTIDETEST
    at 200x)."""
    outside = ~mask
    if not outside.any():
        return 0.0
    return float(np.sqrt(np.mean((decoded[outside] - mean[outside]) ** 2)))


#: runs up to this many raw bytes also try coding every varying voxel (``encode``)
SMALL_RUN_BYTES = 4_000_000


def _encode_series(run, image, config, target, mask, model, dev, seed, progress, measure,
                   source, n_raw, record=None):
    """``encode`` with a series model, coding the series of the voxels in ``mask``;
    the file records ``record`` as its configuration (default ``config``)."""
    target_bytes = None if target.ratio is None else n_raw / target.ratio
    n_t = run.shape[3]
    # mask and mean frame are coded first: the series model is fitted to what the decoder sees
    mean, low, high = run.stats()
    # the decoder clips to the input's range: a magnitude image stays non-negative
    value_range = [round_sig(low.min(), -1), round_sig(high.max(), 1)]
    slope = image["scl_slope"] if image["scl_slope"] is not None else 1.0
    head = {"software": software_versions(extra=model.packages), "seed": seed, "device": dev,
            "config": stored_config(record or config), "image": image_record(image)}
    block = header_block(image)
    extra = nan_sections(image)
    env = models.FitEnvironment(seed=seed, device=dev, progress=progress, measure=measure,
                                source=source)
    step = mean_frame_step(mean, image["dtype"], slope, config["mean_step"])
    outside = ~mask
    # the background's median temporal deviation, zero padding left out (0 when none)
    noise = run.background_noise(outside)
    zero_level = zero_padded(run, mask)
    unmeasured = mask | zero_padding(run.stats())

    def background_for(mean_step, rms, price=None, sse=None):
        # the background's mean comes back within the in-mask RMS error, or within its
        # own fluctuation in time where that is larger (the rule); within it, as finely
        # as its bytes are worth at ``price`` (squared error per byte of the series).
        # Rounded as ``_fit_with_mean`` will round it
        s = round_sig(mean_step, 1)
        lo = frame_origin(mean.min(), s, zero_level)
        largest = background_multiple(mean, unmeasured, s, lo, max(rms, noise), config,
                                      zero_level)
        if price is None or config["background_step"] != "auto":
            return largest
        return balanced_background_multiple(
            mean, mask, ~unmeasured, s, lo, largest, price, n_t, zero_level,
            allowance=BACKGROUND_ALLOWANCE * sse)

    def within_rule(rms, decoded_mean):
        # the rule ``background_for`` rounds to, checked on a coding's decoded mean frame
        return (_background_rms(mean, unmeasured, decoded_mean)
                <= max(rms, noise) * (1 + 1e-9))
    t_fit = time.perf_counter()
    plan = None
    sse_cap = max_sse(run, image, target.psnr)
    if config["mean_step"] == "auto" and model.plans_mean and target_bytes is not None:
        # the mean frame's precision is part of the same rate-distortion choice as the
        # model's: offer the model a ladder of mean-frame steps, each with its bytes and
        # the squared error its quantisation adds, and let it choose (step, K, d) together
        options = mean_options(mean, mask, step, slope, image, noise, n_t)
        while True:
            # the series around the exact mean: planned on, then dropped before the fit
            # makes its own around the coded mean (one copy of the series at a time)
            exact = run.series(mask)
            exact -= mean[mask][:, None]
            planned = _fit_with_mean(run, mean, mask, None, None, value_range, head, block,
                                     model, target_bytes, n_raw, target, config, env, source,
                                     options=options, series=exact, sse_cap=sse_cap, extra=extra)
            del exact
            plan = planned.plan
            step = options[plan.option].step
            rms = _in_mask_rms(plan.error, mask, n_t)
            price = None  # K = 0: the bytes go to a finer mean frame, not to the series
            if plan.n_components > 0 and config["background_step"] == "auto":
                price = plan.price if plan.price is not None else _byte_price(
                    plan.error, target_bytes, options[plan.option].bytes, mask)
            background = background_for(step, rms, price, plan.error)
            try:
                coded, build, mean_decoded = _fit_with_mean(
                    run, mean, mask, step, background, value_range, head, block, model,
                    target_bytes, n_raw, target, config, env, source, plan=plan,
                    sse_cap=sse_cap, extra=extra)
                break
            except OutOfReach:
                # the survey's estimate was a little short: plan again with coarser means
                if plan.option + 1 >= len(options):
                    raise
                options = options[plan.option + 1:]
        size = len(build(coded))
        unspent = target_bytes - size > UNSPENT_SHARE * target_bytes
        if plan.n_components == 0 or (unspent and n_raw <= SMALL_RUN_BYTES):
            def at_step(finer, background_rms=rms):
                result = _fit_with_mean(
                    run, mean, mask, finer,
                    background_for(finer, background_rms, price, plan.error),
                    value_range, head, block, model, target_bytes, n_raw, target, config,
                    env, source, plan=plan, sse_cap=sse_cap, extra=extra)
                closer = _in_mask_rms(result[0].sse, mask, n_t)
                if background_rms == rms and closer < rms and not within_rule(closer, result[2]):
                    # the finer frame came back closer in the mask than the plan: its
                    # background is rounded against that (a tiny budget may not hold it)
                    return at_step(finer, closer)
                return result

            finer = _finer_mean_frame(at_step, step, coded, size, target_bytes)
            if finer is not None:
                coded, build, mean_decoded, step = finer
        # the background's multiple was chosen against the plan's error; the coding came
        # back closer in the mask (a regional layer, a finer frame): the background is
        # rounded again, finer, until its mean is within the file's own in-mask error
        # (gift-107 at 200x: 54.1 against 50.1 before this)
        for _ in range(BACKGROUND_REFITS):
            rms = _in_mask_rms(coded.sse, mask, n_t)
            if within_rule(rms, mean_decoded):
                break
            cheaper = _cheapest_background(mean, mask, unmeasured, step, zero_level,
                                           max(rms, noise), lambda s: background_for(s, rms))
            if cheaper is None:
                break
            step, background = cheaper
            try:
                coded, build, mean_decoded = _fit_with_mean(
                    run, mean, mask, step, background, value_range, head, block, model,
                    target_bytes, n_raw, target, config, env, source, plan=plan,
                    sse_cap=sse_cap, extra=extra)
            except OutOfReach:  # the finer background leaves the model no room: kept
                break
    else:
        background = config["background_step"]
        if background == "auto":
            # at an error target the in-mask RMS error is known before the fit
            background = 4.0 if sse_cap is None else background_for(
                step, _in_mask_rms(sse_cap, mask, n_t))
        coded, build, mean_decoded = _fit_with_mean(
            run, mean, mask, step, background, value_range, head, block, model, target_bytes,
            n_raw, target, config, env, source, plan=plan, sse_cap=sse_cap, extra=extra)
    fit_seconds = time.perf_counter() - t_fit
    return Encoded(padded(build(coded), run.shape), coded, model,
                   Reconstruction(mask, mean_decoded, coded.approx, n_t, value_range),
                   fit_seconds, dev)


#: encodings of the mean frame tried when the file is the mean frame alone, or a small
#: run's file leaves more than ``UNSPENT_SHARE`` of its budget unspent
MEAN_FILL_EVALS = 24
#: on the first 3 volumes of a 26x31x22 run at 128x, one component's section jumped from
#: 660 to 76 bytes between two steps 8 % apart, and 18 % of the budget was left
UNSPENT_SHARE = 0.1


def _nonempty(sections):
    return {tag for tag, payload in sections.items() if payload}


def _finer_mean_frame(at_step, step, coded, size, target_bytes):
    """A file of the mean frame alone (K = 0) at a step finer than ``step`` that still
    fits ``target_bytes`` and keeps every section ``coded`` (``size`` bytes) has, with
    less error in the mask than ``coded``: ``at_step(step)``'s ``(coded, build,
    decoded mean)`` and that step, or None.

    The survey's ladder of mean-frame steps has sqrt(2) rungs, and its byte counts
    are estimates: coarse where the mean frame is the whole file (on a 17x21x3x20
    run at 100x the chosen rung left 28 of 428 bytes unused; on the first 3 volumes
    of a 26x31x22 run, steps half the chosen one still fitted). Steps 2^(1/8) apart
    are tried downwards, at most ``MEAN_FILL_EVALS`` encodings of the frame (a few
    milliseconds each: K = 0 happens only when the budget is tiny), until two in a
    row do not fit (JPEG XL's size is not monotone in the step at a few hundred
    bytes). The returned tuple ends with the chosen step.
    """
    if target_bytes - size < 8:
        return None
    best, least, misses = None, coded.sse, 0
    # a finer frame must not crowd out a section the model chose to code (the regional
    # layer: dynamics that the mean frame's error measure does not weigh)
    coded_sections = _nonempty(coded.sections)
    for i in range(1, MEAN_FILL_EVALS + 1):
        # three digits: the header stores the step, and each digit costs a byte
        finer = round_sig(step * 2.0 ** (-i / 8.0), 1, digits=3)
        try:
            candidate, build, decoded = at_step(finer)
            fits = (len(build(candidate)) <= target_bytes and
                    coded_sections <= _nonempty(candidate.sections))
        except OutOfReach:
            fits = False
        misses = 0 if fits else misses + 1
        # the error in the mask, the mean frame's included (the series are around it):
        # a finer frame can leave a regional layer fewer bytes
        if fits and candidate.sse < least:
            best, least = (candidate, build, decoded, finer), candidate.sse
        if misses == 2:
            break
    return best


def _fit_with_mean(run, mean, mask, step, background, value_range, head, block, model,
                   target_bytes, n_raw, target, config, env, source, options=None,
                   series=None, plan=None, sse_cap=None, extra=None):
    """Code the mean frame at ``step`` (``background`` times coarser outside the mask) and
    fit the model to the series around it: ``(coded, build, decoded mean)``.

    ``extra``: sections every file of the run holds (``nan_sections``).

    With ``options`` (and the ``series`` around the exact mean), the model only
    plans: the frame it is measured with has an empty MEAN section, whose bytes
    the options account for; returns the plan's ``Coded``.
    """
    if options is not None:
        frame_info = {"n_voxels": int(mask.sum()), "mean_lo": 0.0, "mean_step": 1.0,
                      "value_range": value_range}
        frame = {MASK_TAG: io.pack_mask(mask), MEAN_TAG: b"", **(extra or {})}
    else:
        step = round_sig(step, 1)
        zero_level = zero_padded(run, mask)
        mean_payload, mean_lo, mean_decoded = encode_mean_frame(
            mean, step, mask, background, lo=frame_origin(mean.min(), step, zero_level),
            effort=config["mean_frame_effort"], zero_level=zero_level)
        series = run.series(mask)  # (N, T), a copy: the series around the decoded mean
        series -= mean_decoded[mask][:, None]
        frame_info = {"n_voxels": int(series.shape[0]), "mean_lo": mean_lo, "mean_step": step,
                      "value_range": value_range}
        frame = {MASK_TAG: io.pack_mask(mask), MEAN_TAG: mean_payload, **(extra or {})}

    def build(coded):
        header = dict(head, frame=frame_info, model=dict(coded.part, name=model.name))
        return pack(header, dict(frame, **coded.sections), block)

    budget = models.Budget(target_bytes, n_raw, build, source,
                           max_sse=sse_cap, mean_options=options,
                           plan=plan)
    coded = model.fit(series, mask, budget, config, env)
    if options is not None:
        return coded
    return coded, build, mean_decoded


def max_sse(run, image, psnr):
    """The squared error over the series (sum) that a PSNR target in the brain mask allows.

    The mask and range are those the measurement uses. Writing to an integer dtype
    rounds every value to the stored grid, which adds about ``slope^2 / 12`` per value
    on top of the coding error: that share is kept out of the coder's allowance.
    """
    if psnr is None:
        return None
    run = as_run(run)
    _, low, high = run.stats()
    brain = brain_mask(run, image["affine"])
    rng = float(high[brain].max() - low[brain].min()) or 1.0
    n_values = int(brain.sum()) * run.shape[3]
    allowed = (rng ** 2 / 10 ** (psnr / 10)) * n_values
    if np.dtype(image["dtype"]).kind in "iu":
        slope = abs(image["scl_slope"]) if image["scl_slope"] is not None else 1.0
        allowed -= min(0.5 * allowed, n_values * slope ** 2 / 12.0)
    return allowed


def encode_run(model, stored, image, config, target, seed=0, source=None):
    """Code the stored array with a whole-run model (no mask, no mean frame)."""
    from .config import schema

    keys = schema(model.name)
    record = stored_config(config)
    if set(record) != {"name"}:
        record = dict({k: v for k, v in record.items() if k in keys}, model=model.name)
    head = {"software": software_versions(extra=model.packages), "seed": seed,
            "device": "cpu", "config": record,
            "image": image_record(image)}
    t_fit = time.perf_counter()
    coded = model.fit_run(stored, image, target, config, None)
    fit_seconds = time.perf_counter() - t_fit
    blob = pack(dict(head, model=dict(coded.part, name=model.name)),
                dict(coded.sections, **nan_sections(image)), header_block(image))
    rec = StoredReconstruction(model.decode_run(coded.sections, coded.part, image, source),
                               image)
    return Encoded(padded(blob, image["shape"]), coded, model, rec, fit_seconds, "cpu")


def nan_sections(image):
    """``{NAN_SECTION: packed mask}`` of the voxels the decoder writes as NaN
    (``image["nan_voxels"]``, from ``io.load_bold_with_nan_voxels`` or a
    ``VolumeRun``'s ``stats``), or ``{}``. A file holding it is format 8."""
    voxels = image.get("nan_voxels")
    if voxels is None or not np.any(voxels):
        return {}
    return {NAN_SECTION: io.pack_mask(voxels)}


def padded(blob, shape):
    """``blob`` with a ``PADS`` section when the decoder's expansion bound needs one
    (a run almost wholly constant; ``limits``)."""
    header, sections, block, _ = unpack(blob, None)
    need = limits.padding(list(shape), sum(len(p) for p in sections.values()))
    if not need:
        return blob
    return pack(header, dict(sections, **{limits.PAD_TAG: bytes(need)}), block)


def decode(blob, source, device="auto"):
    """Decode a whole ``.icainr`` file's bytes (untrusted: verified before decoding).

    Returns ``(Reconstruction, Header)``.
    """
    header, sections, block, _ = unpack(blob, source)
    return decode_parts(header, sections, block, source, device)


def decode_parts(header, sections, block, source, device="auto"):
    """``decode`` of an already unpacked container."""
    hdr = validate_header(header, sections, block, source)
    shape = hdr.image["shape"]
    nan = None
    if NAN_SECTION in sections:
        if np.dtype(hdr.image["dtype"]).kind != "f":
            raise ICAINRError(source, "the file has NaN voxels but an integer stored dtype")
        nan = io.unpack_mask(sections[NAN_SECTION], shape[:3], source)
    if hdr.model.whole_run:
        return StoredReconstruction(hdr.model.decode_run(sections, hdr.part, hdr.image, source),
                                    hdr.image, nan), hdr
    mask = io.unpack_mask(sections[MASK_TAG], shape[:3], source)
    if int(mask.sum()) != hdr.frame["n_voxels"]:
        raise ICAINRError(source, "the mask does not match the header's voxel count")
    mean = decode_mean_frame(sections[MEAN_TAG], shape[:3], hdr.frame["mean_lo"],
                             hdr.frame["mean_step"], source)
    approx = hdr.model.decode(sections, hdr.part, mask, device, source)
    return Reconstruction(mask, mean, approx, shape[3], hdr.frame.get("value_range"),
                          nan), hdr
