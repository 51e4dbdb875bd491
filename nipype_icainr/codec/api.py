"""The codec's path-level entry points: ``compress``, ``decompress`` and ``info``.

They read and write files (``nipype_icainr.io``), check output paths and
measure the result; the coding itself is ``core.encode``/``core.decode``.
Everything above the codec (the command line, the Nipype interfaces, the BIDS
App) calls these functions, the benchmark calls ``core`` on arrays.
"""

import math
import os
import time

import numpy as np

from .. import io
from . import core
from .config import resolve_config
from .container import read_file, unpack
from .errors import ICAINRError, NonFiniteValues, OutOfReach
from .header import validate_header


#: SSIM is measured on at most this many volumes, spread evenly over the run
SSIM_VOLUMES = 32


def compress(in_file, out_file, ratio=None, preset="default", config=None, device="auto",
             seed=0, force=False, progress=False, measure=True, lossless=False,
             max_error=None, psnr=None):
    """Compress a 4D NIfTI into one ``.icainr`` file.

    Parameters
    ----------
    in_file : path
        4D NIfTI-1/2 (``.nii`` or ``.nii.gz``), any numeric dtype; never modified.
    out_file : path
        The ``.icainr`` file, written atomically.
    ratio : float, optional
        Target compression ratio (raw array bytes in the stored dtype / file
        bytes); the preset's ``target_ratio`` when no target is given. When a
        lossless coding reaches the ratio, the file is lossless.
    preset : str
        Name of a bundled preset (``default``, ``decoding``, ``network``,
        ``paper``; see ``config.available_presets``).
    config : dict or path, optional
        Overrides (a dict, or a YAML file with an optional ``base`` preset).
    device : {'auto', 'cpu', 'cuda'}
    seed : int
        Seeds FastICA, initialisation and batch order (network models).
    force : bool
        Overwrite ``out_file`` if it exists.
    progress : bool
        Show a tqdm progress bar while fitting (network models).
    measure : bool
        Decode the result and report PSNR/SSIM against the input.
    lossless : bool
        Code the stored array exactly (integers, and the bit patterns of floats).
    max_error : float or str, optional
        Every decoded value within this many physical units of the input; a
        string ``"<x>u"`` means x stored units (the scaling slope for integers;
        for floats, the precision an int16 copy would keep: range / 65535).
    psnr : float, optional
        The smallest file whose PSNR inside the brain mask is at least this (dB).

    ``ratio``, ``lossless``, ``max_error`` and ``psnr`` are mutually exclusive.

    Returns
    -------
    dict
        ``ratio`` (raw array / file), ``ratio_disk`` (input file / file),
        ``file_bytes``, ``raw_bytes``, ``psnr``, ``ssim`` (None unless
        ``measure``), ``fit_seconds`` (the series model's fit and coding),
        ``total_seconds``, ``device``, ``sections`` (bytes per section),
        ``arch``, ``model`` (one line), ``config`` and ``warnings``.
    """
    t_start = time.perf_counter()
    io.check_output_path(out_file, force, inputs=[in_file])
    cfg = resolve_config(preset, config)
    chosen = [name for name, value in (("ratio", ratio), ("lossless", lossless or None),
                                       ("max_error", max_error), ("psnr", psnr))
              if value is not None]
    if len(chosen) > 1:
        raise ICAINRError(None, "choose one target: " + " and ".join(
            "--" + c.replace("_", "-") for c in chosen) + " were given together")
    if not chosen:
        ratio = cfg["target_ratio"]
    if ratio is not None:
        ratio = float(ratio)
        if not (math.isfinite(ratio) and ratio > 1.0):
            raise ICAINRError(None, f"--ratio must be a number above 1, got {ratio}")
    if psnr is not None and not (isinstance(psnr, (int, float)) and 0 < psnr < 400):
        raise ICAINRError(None, f"--psnr must be a number of dB in (0, 400), got {psnr!r}")
    if not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < 2 ** 32:
        raise ICAINRError(None, f"--seed must be an integer in [0, 2**32), got {seed!r}")

    # voxels NaN at every time point (as SPM writes outside the brain) are coded as 0 and
    # written back as NaN; any other NaN or Inf is refused, but by --lossless, which codes
    # such a float run's bit patterns (``_compress_exactly``)
    if lossless or max_error is not None:  # the whole-run model codes the whole array
        try:
            img, data, nan_voxels = io.load_bold_with_nan_voxels(in_file)
        except NonFiniteValues:
            if not lossless:
                raise
            # NaN at some time points, or Inf: the float bit patterns, as the file has them
            return _compress_exactly(in_file, out_file, cfg, int(seed), t_start)
        run = core.ArrayRun(data)
    else:  # read volume by volume: the run is never held whole in float64
        img, shape = io.open_bold_for_reading(in_file)
        check_memory(in_file, cfg)
        run = core.VolumeRun(img, shape, os.fspath(in_file), allow_nan_voxels=True)
        run.stats()  # the first pass over the file finds the NaN voxels
        nan_voxels = run.nan_voxels
    desc = dict(io.describe_image(img, in_file), nan_voxels=nan_voxels)
    n_raw = core.raw_bytes(run.shape, desc["dtype"])
    bound = None if max_error is None else physical_error(max_error, run, desc)
    target = core.Target(ratio=ratio, lossless=bool(lossless), max_error=bound,
                         psnr=None if psnr is None else float(psnr))
    enc = core.encode(run, desc, cfg, target, seed=int(seed), device=device,
                      progress=progress, measure=measure, source=os.fspath(in_file))
    if target.psnr is not None and enc.model.plans_mean and \
            enc.model.guarantee(enc.coded.part)[0] != "lossless":
        enc = smallest_at_psnr(run, desc, cfg, target.psnr, enc, int(seed), device,
                               os.fspath(in_file), n_raw)
    psnr = ssim = max_err = ssim_at = None
    if measure:
        psnr, ssim, max_err, ssim_at = measure_streamed(run, enc.reconstruction, desc)
    enc_shape = run.shape
    _, low, high = run.stats()
    varies = bool(np.any(high > low))
    del run, low, high

    blob = enc.blob
    io.write_atomic(out_file, blob)
    _, secs, _, _ = unpack(blob, out_file)
    achieved = n_raw / len(blob)
    notes = []
    mode, guaranteed = enc.model.guarantee(enc.coded.part)
    if ratio is None or mode == "lossless":
        pass  # a lossless file that beats the ratio is the point of the lossless floor
    elif achieved > 1.1 * ratio:
        notes.append(f"achieved ratio {achieved:.1f} is above the target {ratio:g}: the search "
                     "found no finer coding that fits the budget (on a large enough run, the "
                     "finest the configuration allows: raise max_components, or "
                     "mlp_width_max for the network)")
    elif achieved < 0.9 * ratio:
        notes.append(f"achieved ratio {achieved:.1f} is below the target {ratio:g}")
    if varies and not enc.model.keeps_dynamics(enc.coded.part):
        notes.append("no time course is kept at this target: every voxel decodes to its "
                     "mean over time (the header, mask and mean frame leave no room for "
                     "dynamics); a lower ratio keeps them")
    return _result(enc, desc, blob, secs, n_raw, cfg, target, notes, t_start,
                   (psnr, ssim, max_err, ssim_at), int(enc_shape[3]))


def _result(enc, desc, blob, secs, n_raw, cfg, target, notes, t_start, measured, n_volumes):
    """``compress``'s summary of the file it wrote (see its Returns)."""
    psnr, ssim, max_err, ssim_at = measured
    mode, guaranteed = enc.model.guarantee(enc.coded.part)
    return {"ratio": n_raw / len(blob), "warnings": notes,
            "ratio_disk": desc["source_bytes"] / len(blob),
            "file_bytes": len(blob), "raw_bytes": n_raw, "psnr": psnr, "ssim": ssim,
            "ssim_volumes": None if ssim is None else len(ssim_at),
            "n_volumes": n_volumes,
            "fit_seconds": enc.fit_seconds, "final_loss": enc.coded.final_loss,
            "total_seconds": time.perf_counter() - t_start, "device": enc.device,
            "sections": {tag: len(p) for tag, p in secs.items()},
            "header_bytes": len(blob) - sum(len(p) for p in secs.values()),
            "arch": dict(enc.coded.part, name=enc.model.name), "model": enc.describe(),
            "config": cfg, "n_voxels": enc.n_voxels, "mode": mode, "bound": guaranteed,
            "max_error": max_err, "target": target.describe()}


def _compress_exactly(in_file, out_file, cfg, seed, t_start):
    """``compress(..., lossless=True)`` of a float run with NaN or Inf values that the
    other codings refuse (NaN at some time points only, Inf): the stored array's bit
    patterns, as the file holds them, coded by the whole-run model; checked bit for bit
    against what decompress will write before the file is written."""
    from . import limits, models

    img, stored = io.load_stored_exactly(in_file)
    limits.check_shape(list(stored.shape), os.fspath(in_file))
    desc = dict(io.describe_image(img, in_file), nan_voxels=None)
    target = core.Target(lossless=True)
    enc = core.encode_run(models.get(models.LOSSLESS_MODEL), stored, desc, cfg,
                          models.RunTarget(0.0), seed, os.fspath(in_file))
    bits = np.dtype(f"u{stored.dtype.itemsize}")
    if not np.array_equal(enc.reconstruction.stored.view(bits), stored.view(bits)):
        raise ICAINRError(in_file, "the bit-for-bit coding did not decode to the stored "
                                   "array; nothing was written")
    blob = enc.blob
    io.write_atomic(out_file, blob)
    _, secs, _, _ = unpack(blob, out_file)
    n_raw = core.raw_bytes(stored.shape, desc["dtype"])
    # checked bit for bit above; no PSNR or SSIM: they are not defined over NaN and Inf
    return dict(_result(enc, desc, blob, secs, n_raw, cfg, target, [], t_start,
                        (None, None, 0.0, []), int(stored.shape[3])), bit_exact=True)


def parse_max_error(max_error):
    """``(x, stored_units)`` of a ``--max-error`` value: a number, or ``"<x>u"`` (x stored
    units); refused in one line unless x is a finite non-negative number."""
    text = str(max_error).strip()
    stored_units = text.endswith("u")
    try:
        value = float(text[:-1] if stored_units else text)
    except ValueError:
        raise ICAINRError(None, f"--max-error must be a non-negative number or "
                                f"'<number>u', got {max_error!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise ICAINRError(None, f"--max-error must be a non-negative number, got {max_error!r}")
    return value, stored_units


def physical_error(max_error, run, desc):
    """A ``--max-error`` value in physical units: a number, or ``"<x>u"`` stored units.

    ``run``: the run (an array or a ``core.ArrayRun``/``VolumeRun``)."""
    value, stored_units = parse_max_error(max_error)
    if not stored_units:
        return value
    if np.dtype(desc["dtype"]).kind in "iu":
        unit = abs(desc["scl_slope"]) if desc["scl_slope"] is not None else 1.0
    else:  # the precision an int16 copy of the run would keep
        _, low, high = core.as_run(run).stats()
        unit = float(high.max() - low.min()) / 65535.0 or 1.0
    return value * unit


def decompress(in_file, out_file, device="auto", force=False):
    """Rebuild the NIfTI from an ``.icainr`` file.

    Parameters
    ----------
    in_file : path
        An ``.icainr`` file (untrusted: fully verified before decoding).
    out_file : path
        ``.nii`` or ``.nii.gz``; written atomically with the original shape,
        affine, qform/sform codes, zooms, TR, units, dtype and scaling.
    device : {'auto', 'cpu', 'cuda'}
    force : bool
        Overwrite ``out_file`` if it exists.

    Returns
    -------
    dict
        ``seconds``, ``shape``, ``dtype``.
    """
    t0 = time.perf_counter()
    out = os.fspath(out_file)
    if not (out.endswith(".nii") or out.endswith(".nii.gz")):
        raise ICAINRError(out, "the output must end with .nii or .nii.gz")
    io.check_output_path(out, force, inputs=[in_file])
    header, sections, block, _ = read_file(in_file)
    rec, hdr = core.decode_parts(header, sections, block, os.fspath(in_file), device)
    # volume by volume: the decoded 4D array in float64 is never held
    if isinstance(rec, core.StoredReconstruction):  # the stored array itself, bit for bit
        io.write_volumes(out, rec.stored_volume, hdr.image, in_file, stored=True)
    else:
        io.write_volumes(out, rec.volume, hdr.image, in_file)
    return {"seconds": time.perf_counter() - t0, "shape": list(hdr.image["shape"]),
            "dtype": hdr.image["dtype"]}


#: ratio searches a PSNR target may try beyond the file fitted to its error
PSNR_SEARCH_EVALS = 8
#: the search stops when the largest passing and smallest failing ratios are this close
PSNR_SEARCH_TOLERANCE = 1.03


def smallest_at_psnr(run, desc, cfg, psnr, first, seed, device, source, n_raw):
    """The smallest file whose masked PSNR, as written, is at least ``psnr``: ``first``
    (the series model fitted to the error the target allows) or one of the ratio search.

    Fitting to an error codes the mean frame at its finest step and leaves the mean
    frame's and the background's precision out of the rate-distortion choice: on small
    real runs that file came out 1.3 to 5 times larger than the ratio search's at the
    same PSNR. So the ratio search is run at ``first``'s ratio; when it comes back
    below the target, ``first`` is kept (one encoding spent). Otherwise the ratio is
    doubled until a file misses the target, then the bracket is narrowed by
    interpolating PSNR linearly in log ratio (clamped to the middle 80 % of the bracket),
    to ``PSNR_SEARCH_TOLERANCE``, at most ``PSNR_SEARCH_EVALS`` encodings. PSNR is not
    monotone in the ratio at a few hundred bytes: every file that meets the target is a
    candidate, and the smallest is kept.
    """
    def attempt(ratio):
        """``(file, PSNR)``, or ``(None, -inf)`` out of reach."""
        try:
            enc = core.encode(run, desc, cfg, core.Target(ratio=ratio), seed=seed,
                              device=device, measure=True, source=source)
        except OutOfReach:
            return None, -math.inf
        return enc, measure_streamed(run, enc.reconstruction, desc, ssim=False)[0]

    best = first
    lo = n_raw / len(first.blob)
    enc, q_lo = attempt(lo)
    if enc is None or q_lo < psnr:  # the ratio search is no better at this size
        return first
    if len(enc.blob) < len(best.blob):
        best = enc
    del enc
    hi = q_hi = None
    for _ in range(PSNR_SEARCH_EVALS - 1):
        if hi is None:
            ratio = 2.0 * lo
        elif hi / lo < PSNR_SEARCH_TOLERANCE:
            break
        else:
            fall = q_lo - q_hi  # positive unless PSNR rose with the ratio
            share = (q_lo - psnr) / fall if math.isfinite(fall) and fall > 0 else 0.5
            ratio = lo * (hi / lo) ** min(max(share, 0.1), 0.9)
        enc, q = attempt(ratio)
        if q >= psnr:
            lo, q_lo = max(ratio, n_raw / len(enc.blob)), q
            if len(enc.blob) < len(best.blob):
                best = enc
        else:
            hi, q_hi = ratio, q
        del enc  # a large run's decoded series: at most the first and the best are held
    return best


def measure_streamed(run, reconstruction, desc, ssim=True):
    """PSNR in the brain mask, SSIM and the largest error of what decompress will write.

    Volume by volume: each decoded volume is made (``reconstruction.volume``),
    put on the stored grid as a NIfTI of it would hold it, compared and
    dropped, so the decoded run is never held whole. 3D SSIM needs 3 voxels
    along every axis (not a single slice) and costs ~10x PSNR a volume: it is
    computed on at most ``SSIM_VOLUMES`` volumes spread over the run, whose
    decoded volumes are the only ones kept. Returns ``(psnr, ssim or None,
    max error, indices of the SSIM volumes)``; the same figures as
    ``metrics.psnr``/``ssim``/``max_abs_error`` on the whole decoded run
    (``ssim=False``: no SSIM, None in its place).
    """
    from .. import metrics

    run = core.as_run(run)
    mask = core.brain_mask(run, desc["affine"])
    n_t = run.shape[3]
    ssim_at = metrics.ssim_volumes(n_t, SSIM_VOLUMES)
    with_ssim = ssim and min(run.shape[:3]) >= 3
    kept, originals = {}, {}
    sse, count, lo, hi, max_err = 0.0, 0, np.inf, -np.inf, 0.0
    for t in range(n_t):
        decoded = io.as_written(reconstruction.volume(t), desc["dtype"], desc["scl_slope"],
                                desc["scl_inter"])
        original = run.volume(t)
        inside = original[mask]
        diff = inside - decoded[mask]
        sse += float(np.dot(diff, diff))
        count += diff.size
        lo, hi = min(lo, float(inside.min())), max(hi, float(inside.max()))
        max_err = max(max_err, float(np.abs(original - decoded).max()))
        if with_ssim and t in ssim_at:
            kept[t], originals[t] = decoded, original
    psnr = float("inf") if sse == 0 else 10.0 * np.log10((hi - lo) ** 2 / (sse / count))
    ssim = None
    if with_ssim:
        ssim = metrics.ssim(np.stack([originals[t] for t in ssim_at], axis=-1),
                            np.stack([kept[t] for t in ssim_at], axis=-1), mask,
                            value_range=(hi - lo) or 1.0)
    return psnr, ssim, max_err, ssim_at


#: GB of an idle interpreter with the codec's libraries imported
BASE_GB = 0.45
#: bytes per coded voxel x time point, and per coded voxel x component, at the fit's peak:
#: fitted to the streamed compressions of benchmarks/large_runs.py (97x115x97x300: 4.5 GB,
#: 245,626 coded voxels; 91x109x91x1200: 6.6 GB, 205,785 coded voxels)
PER_SAMPLE, PER_COEFFICIENT = 15.0, 47.0


def compress_memory_gb(in_file, grid=None, max_components=256, margin=1.25):
    """Peak memory (GB) that ``compress`` at a ratio or PSNR target may need for a run.

    Reads the header and the first volume only. The coded voxels are guessed
    from the brain mask of the first volume (``grid``: the spatial shape the run
    will be compressed on instead, after a registration to the template, with
    the same share of it in the brain). The phases of a streamed compression,
    the largest wins: the lossless estimate (64 volumes in the stored dtype,
    three copies for zstd, and float64 volumes on the way), the fit
    (``PER_SAMPLE`` and ``PER_COEFFICIENT`` bytes), the measurement (32 volumes
    in float64, original and decoded, and the decoded series); plus the
    inflated file of a ``.nii.gz`` read from memory (``io.open_bold_for_reading``);
    times ``margin``. Nipype's scheduler (``mem_gb``) and SLURM requests use it.
    """
    return _memory_gb(_run_size(in_file, grid), max_components, margin)


def _run_size(in_file, grid=None):
    """``(voxels, time points, stored bytes a value, coded voxels, bytes held in memory)``
    guessed from the header and the brain mask of the first two volumes (two: a
    derivative with no baseline is masked by what varies)."""
    from ..masking import compute_mask

    img, shape = io.open_bold(in_file)
    trailing = (0,) * (len(img.shape) - 4)  # singleton axes past time
    first = np.stack([np.asarray(img.dataobj[(slice(None),) * 3 + (t,) + trailing],
                                 dtype=np.float64).reshape(shape[:3])
                      for t in range(min(2, shape[3]))], axis=-1)
    share = float(compute_mask(first, img.affine).mean())
    voxels = float(np.prod(grid if grid is not None else shape[:3]))
    item = img.get_data_dtype().itemsize
    held = voxels * shape[3] * item  # a small .nii.gz is inflated into memory once
    held = held if io.inflated_in_memory(in_file, held) else 0.0
    return voxels, shape[3], item, share * voxels, held


def _memory_gb(size, max_components, margin):
    from .factor.search import SURVEY_SAMPLE_ABOVE, THREADED_SURVEY_UP_TO

    voxels, n_t, item, coded, held = size
    estimate = voxels * min(n_t, 64) * (item * 3 + 8)
    coefficients = coded * min(max_components, n_t)
    fit = coded * n_t * PER_SAMPLE + coefficients * PER_COEFFICIENT
    surveyed = coefficients / 2 if coefficients > SURVEY_SAMPLE_ABOVE else coefficients
    if surveyed <= THREADED_SURVEY_UP_TO:  # two survey steps' working copies at once
        fit += surveyed * PER_COEFFICIENT
    measure = voxels * 32 * 8 * 2 + coded * n_t * (4 + 8)
    return round(BASE_GB + margin * (max(estimate, fit, measure) + held) / 1e9, 2)


def available_memory_gb():
    """MemAvailable of /proc/meminfo in GB; ``None`` where the system does not say."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024 ** 2
    except (OSError, ValueError, IndexError):
        return None
    return None


def check_memory(in_file, config):
    """Refuse up front a run whose compression would not fit in the memory available
    (``compress_memory_gb`` without its safety margin): one line naming both figures and
    the largest ``max_components`` that would fit, rather than running out of memory
    after minutes of work."""
    available = available_memory_gb()
    if available is None or config.get("model") != "factor":
        return
    size = _run_size(in_file)
    k_max = config.get("max_components", 256)
    need = _memory_gb(size, k_max, 1.0)
    if need <= available:
        return
    fits = [k for k in (128, 96, 64, 48, 32, 16, 8) if k < k_max and
            _memory_gb(size, k, 1.0) <= available]
    advice = (f"a --config file with 'max_components: {fits[0]}'" if fits else
              "a machine with more memory")
    raise ICAINRError(in_file, f"compressing this run needs about {need:.1f} GB of memory and "
                               f"{available:.1f} GB is available; use {advice}")


def decode_array(in_file, device="auto"):
    """Decode an ``.icainr`` file to ``(values float64 (X, Y, Z, T), image description)``."""
    header, sections, block, _ = read_file(in_file)
    rec, hdr = core.decode_parts(header, sections, block, os.fspath(in_file), device)
    return rec.values(), hdr.image


def info(in_file):
    """Header, ratio and section sizes of an ``.icainr`` file (a dict)."""
    header, sections, block, version = read_file(in_file)
    hdr = validate_header(header, sections, block, in_file)
    desc = hdr.image
    size = os.path.getsize(in_file)
    raw = core.raw_bytes(desc["shape"], desc["dtype"])
    return {"file": os.fspath(in_file), "format_version": version, "file_bytes": size,
            "raw_bytes": raw, "ratio": raw / size,
            "ratio_disk": desc["source_bytes"] / size,
            "sections": {tag: len(p) for tag, p in sections.items()},
            "header_bytes": size - sum(len(p) for p in sections.values()),
            "image": {k: v for k, v in desc.items() if k != "header_b64"},
            "arch": hdr.part, "model": hdr.model.describe(hdr.part), "config": hdr.config,
            "mode": hdr.model.guarantee(hdr.part)[0], "bound": hdr.model.guarantee(hdr.part)[1],
            "seed": hdr.seed, "software": hdr.software, "fit_device": hdr.device,
            "n_voxels": hdr.frame["n_voxels"] if hdr.frame else None}
