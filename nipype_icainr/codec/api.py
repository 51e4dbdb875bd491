"""The codec's entry points: ``compress``, ``decompress`` and ``info``.

Everything above the codec (the command line, the Nipype interfaces, the
benchmarks) calls these three functions and nothing else in ``codec``.
"""

import math
import os
import platform
import time

import numpy as np

from .config import load_config_file, load_preset, validate_config
from .container import (FORMAT_VERSION, check_output_path, pack, read_file, unpack,
                        write_atomic)
from .errors import ICAINRError

MAX_AXIS = 4096
MAX_VOXELS = 1 << 31
WEIGHT_TAG, MASK_TAG, MEAN_TAG, FACTOR_TAG = "WGHT", "MASK", "MEAN", "FACT"


def software_versions():
    """Versions of Python and of every library the codec's output depends on."""
    import imagecodecs
    import nibabel
    import sklearn
    from importlib.metadata import version

    from .. import __version__
    return {"nipype_icainr": __version__, "python": platform.python_version(),
            "numpy": np.__version__, "torch": version("torch"), "scipy": version("scipy"),
            "scikit_learn": sklearn.__version__, "nibabel": nibabel.__version__,
            "imagecodecs": imagecodecs.__version__, "constriction": version("constriction")}


def _check_device(device):
    """Validate a --device value; the numpy-only factor model always runs on 'cpu'."""
    if device not in ("auto", "cpu", "cuda"):
        raise ICAINRError(None, f"device must be auto, cpu or cuda, got {device!r}")
    return "cpu"


def resolve_device(device):
    """'auto' -> 'cuda' when a CUDA device is usable, else 'cpu'."""
    import torch

    _check_device(device)
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ICAINRError(None, "--device cuda was asked for but no CUDA device is available")
    return device


def resolve_config(preset="default", config=None):
    """A validated configuration from a preset name, a YAML path or a dict."""
    if config is None:
        return load_preset(preset)
    if isinstance(config, dict):
        base = load_preset(config.get("base", preset))
        base.update({k: v for k, v in config.items() if k != "base"})
        return validate_config(base, source="configuration")
    return load_config_file(config)


def choose_mlp_width(cfg, arch, weight_bytes):
    """Largest MLP width whose parameters fit ``weight_bytes`` at the nominal bit depth."""
    from .model import count_parameters

    if cfg["mlp_width"] != "auto":
        return cfg["mlp_width"]
    best = cfg["mlp_width_min"]
    table = arch["n_voxels"] * arch["n_components"] if arch.get("voxel_table") else 0
    for width in range(cfg["mlp_width_min"], cfg["mlp_width_max"] + 1):
        n = count_parameters(dict(arch, mlp_width=width)) - table
        if n * cfg["weight_bits_target"] / 8.0 <= weight_bytes:
            best = width
    return best


def compress(in_file, out_file, ratio=None, preset="default", config=None, device="auto",
             seed=0, force=False, progress=False, measure=True):
    """Compress a 4D NIfTI into one ``.icainr`` file.

    Parameters
    ----------
    in_file : path
        4D NIfTI-1/2 (``.nii`` or ``.nii.gz``), any numeric dtype; never modified.
    out_file : path
        The ``.icainr`` file, written atomically.
    ratio : float, optional
        Target compression ratio (raw array bytes in the stored dtype / file
        bytes); the preset's ``target_ratio`` when omitted.
    preset : str
        Name of a bundled preset (``default``, ``paper``).
    config : dict or path, optional
        Overrides (a dict, or a YAML file with an optional ``base`` preset).
    device : {'auto', 'cpu', 'cuda'}
    seed : int
        Seeds FastICA, initialisation and batch order.
    force : bool
        Overwrite ``out_file`` if it exists.
    progress : bool
        Show a tqdm progress bar while fitting.
    measure : bool
        Decode the quantised network and report PSNR/SSIM against the input.

    Returns
    -------
    dict
        ``ratio`` (raw array / file), ``ratio_disk`` (input file / file),
        ``file_bytes``, ``raw_bytes``, ``psnr``, ``ssim`` (None unless
        ``measure``), ``fit_seconds``, ``total_seconds``, ``device``,
        ``sections`` (bytes per section) and ``config``.
    """
    from .. import metrics
    from .images import encode_mask, encode_mean_frame, mean_frame_step
    from .nifti_io import describe_image
    from .prepare import compute_mask, load_bold

    t_start = time.perf_counter()
    check_output_path(out_file, force)
    cfg = resolve_config(preset, config)
    ratio = float(cfg["target_ratio"] if ratio is None else ratio)
    if not (math.isfinite(ratio) and ratio > 1.0):
        raise ICAINRError(None, f"--ratio must be a number above 1, got {ratio}")
    if not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < 2 ** 32:
        raise ICAINRError(None, f"--seed must be an integer in [0, 2**32), got {seed!r}")
    seed = int(seed)
    # the factorization is numpy work; only the network needs a torch device
    dev = resolve_device(device) if cfg["model"] == "network" else _check_device(device)

    img, data = load_bold(in_file)
    desc = describe_image(img, in_file)
    shape = data.shape
    raw_bytes = int(np.prod(shape)) * np.dtype(desc["dtype"]).itemsize
    target_bytes = raw_bytes / ratio

    # mask and mean frame are coded first: the series model is fitted to what the decoder sees
    mask = compute_mask(img, data)
    mask_payload = encode_mask(mask)
    mean = data.mean(axis=-1)
    # the decoder clips to the input's range: a magnitude image stays non-negative
    value_range = [float(data.min()), float(data.max())]
    slope = desc["scl_slope"] if desc["scl_slope"] is not None else 1.0
    step = mean_frame_step(mean, desc["dtype"], slope, cfg["mean_step"])
    mean_payload, mean_lo, mean_decoded = encode_mean_frame(mean, step, mask,
                                                            cfg["background_step"])
    residual = data[mask] - mean_decoded[mask][:, None]  # (N, T)
    orig = data if measure else None  # kept for PSNR/SSIM rather than read again
    del data
    n_vox, n_t = residual.shape
    data_info = {"n_voxels": int(n_vox), "mean_lo": mean_lo, "mean_step": step,
                 "mean_layout": "axial slices side by side, (Y, Z*X)",
                 "value_range": value_range}
    sections = {MASK_TAG: mask_payload, MEAN_TAG: mean_payload}

    def header_for(manifest, arch_, data_=data_info):
        return {"format": "icainr", "format_version": FORMAT_VERSION,
                "software": software_versions(), "seed": seed, "fit_device": dev,
                "config": cfg, "arch": arch_, "image": desc, "data": data_,
                "weights": manifest}

    t_fit = time.perf_counter()
    if cfg["model"] == "factor":
        blob, arch, approx, final_loss = _compress_factor(
            residual, mask, cfg, target_bytes, header_for, sections, data_info, in_file, raw_bytes)
    else:
        blob, arch, approx, final_loss = _compress_network(
            residual, mask, cfg, target_bytes, header_for, sections, data_info, in_file,
            raw_bytes, seed, dev, progress, measure)
    fit_seconds = time.perf_counter() - t_fit
    del residual

    psnr = ssim = None
    if measure:
        recon = np.repeat(mean_decoded[..., None], n_t, axis=-1)
        recon[mask] += approx
        from .nifti_io import to_stored_values
        if np.dtype(desc["dtype"]).kind in "iu":  # what decompress will write
            recon = to_stored_values(recon, desc["dtype"], desc["scl_slope"], desc["scl_inter"])
            recon = recon * slope + (desc["scl_inter"] or 0.0)
        psnr = metrics.psnr(orig, recon, mask)
        # 3D SSIM needs 3 voxels along every axis (not a single slice)
        ssim = metrics.ssim(orig, recon, mask) if min(shape[:3]) >= 3 else None
        del orig, recon

    write_atomic(out_file, blob)
    header, secs, _ = unpack(blob, out_file)
    achieved = raw_bytes / len(blob)
    notes = []
    if achieved > 1.1 * ratio:
        notes.append(f"achieved ratio {achieved:.1f} is above the target {ratio:g}: the finest "
                     "model the configuration allows needs fewer bytes than the budget "
                     "(raise max_components, or mlp_width_max for the network)")
    elif achieved < 0.9 * ratio:
        notes.append(f"achieved ratio {achieved:.1f} is below the target {ratio:g}")
    return {"ratio": achieved, "warnings": notes, "ratio_disk": desc["source_bytes"] / len(blob),
            "file_bytes": len(blob), "raw_bytes": raw_bytes, "psnr": psnr, "ssim": ssim,
            "fit_seconds": fit_seconds, "final_loss": final_loss,
            "total_seconds": time.perf_counter() - t_start, "device": dev,
            "sections": {tag: len(p) for tag, p in secs.items()}, "arch": arch,
            "config": cfg, "n_voxels": int(n_vox)}


def _compress_factor(residual, mask, cfg, target_bytes, header_for, sections, data_info,
                     in_file, raw_bytes):
    """Code ``residual`` (N x T) as a factorization that fits the byte budget."""
    from . import factor

    n_vox, n_t = residual.shape
    k_max = int(min(cfg["max_components"], n_t, n_vox))
    arch = {"model": "factor", "n_components": k_max, "n_timepoints": n_t,
            "n_voxels": int(n_vox), "patterns": "dct"}
    probe = dict(data_info, step=1.0)
    overhead = len(pack(header_for([], arch, probe), dict(sections, **{FACTOR_TAG: b""})))
    budget = target_bytes - overhead - 64  # the step's digits may grow the header
    floor = 64 + 2 * n_t + n_vox // 8  # one coarse component
    if budget < floor:
        raise ICAINRError(in_file, f"ratio {raw_bytes / target_bytes:g} is out of reach: the "
                                   f"mask, mean frame and one coarse component need a ratio "
                                   f"below {raw_bytes / (overhead + floor):.1f}")
    from threadpoolctl import threadpool_limits

    board = factor.Checkerboard(mask)
    maps, _ = factor.principal_basis(residual, k_max)
    # many small products: one BLAS thread measured 2x faster than two here
    with threadpool_limits(limits=1, user_api="blas"):
        fit = factor.fit_to_budget(residual, maps, budget, board, cfg["psnr_slack_db"],
                                   cfg["components"])
    arch["n_components"] = fit["n_components"]
    info_ = dict(data_info, step=fit["step"])
    blob = pack(header_for([], arch, info_), dict(sections, **{FACTOR_TAG: fit["payload"]}))
    if len(blob) > target_bytes * 1.02:
        best = raw_bytes / (len(blob) - len(fit["payload"]) + 8 * n_t)
        raise ICAINRError(in_file, f"ratio {raw_bytes / target_bytes:g} is out of reach: the "
                                   f"mask, mean frame and one coarse component already need a "
                                   f"ratio below {best:.1f}")
    approx = fit["maps"] @ fit["patterns"]
    return blob, arch, approx, fit["sse"] / residual.size


def _compress_network(residual, mask, cfg, target_bytes, header_for, sections, data_info,
                      in_file, raw_bytes, seed, dev, progress, measure):
    """Fit the ICA-INR network to ``residual`` (N x T) and code it to the budget."""
    import torch

    from .fit import evaluate_network, n_steps, pretrain_coordinate_mlps, train_network
    from .model import ICAINRNet, count_parameters
    from .prepare import ica_decomposition, voxel_coordinates

    scale = float(residual.std()) or 1.0
    targets_np = (residual / scale).astype(np.float32)
    n_vox, n_t = targets_np.shape
    data_info = dict(data_info, scale=scale)
    arch = {"n_components": int(min(cfg["n_components"], n_t - 1, n_vox - 1)),
            "n_timepoints": n_t, "pattern_channels": cfg["pattern_channels"],
            "pe_frequencies": cfg["pe_frequencies"], "mlp_layers": cfg["mlp_layers"],
            "mlp_width": 0, "attention_hidden": cfg["attention_hidden"],
            "fusion_channels": cfg["fusion_channels"], "fusion_depth": cfg["fusion_depth"],
            "voxel_table": int(cfg["voxel_table"]),
            "n_voxels": int(n_vox) if cfg["voxel_table"] else 0}
    overhead = len(pack(header_for([], arch, data_info), dict(sections, **{WEIGHT_TAG: b""})))
    weight_budget = target_bytes - overhead - 60 * 12 * 3  # room for the manifest
    min_model = dict(arch, mlp_width=cfg["mlp_width_min"], voxel_table=0)
    if weight_budget < count_parameters(min_model) * 1.0 / 8.0:
        best = raw_bytes / (overhead + count_parameters(min_model) / 8.0)
        raise ICAINRError(in_file, f"ratio {raw_bytes / target_bytes:g} is out of reach: the "
                                   f"mask, mean frame and smallest network alone need a ratio "
                                   f"below {best:.1f}")
    table_bytes = (arch["n_voxels"] * arch["n_components"] * cfg["table_bits_target"] / 8.0
                   if cfg["voxel_table"] else 0.0)
    arch["mlp_width"] = choose_mlp_width(cfg, arch, weight_budget - table_bytes)

    # seeded, reproducible fit
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    maps, patterns = ica_decomposition(targets_np, arch["n_components"], seed,
                                       cfg["ica_max_iter"])
    arch["n_components"] = patterns.shape[0]
    net = ICAINRNet(arch, patterns).to(dev)
    coords = torch.from_numpy(voxel_coordinates(mask)).to(dev)
    targets = torch.from_numpy(targets_np).to(dev)
    maps_t = torch.from_numpy(maps).to(dev)
    data_range = float(targets_np.max() - targets_np.min()) or 1.0

    bar = None
    total_steps = (n_steps(n_vox, cfg["batch_voxels"], cfg["pretrain_epochs"], cfg["pretrain_steps"])
                   + n_steps(n_vox, cfg["batch_voxels"], cfg["epochs"], cfg["steps"]))
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=total_steps,
                   desc=f"fitting {os.path.basename(os.fspath(in_file))}", unit="step",
                   dynamic_ncols=True, disable=None, mininterval=1.0)
    try:
        pretrain_coordinate_mlps(net, coords, maps_t, cfg, generator, bar)
        final_loss = train_network(net, coords, targets, cfg, generator, data_range, bar)
    finally:
        if bar is not None:
            bar.close()
    del maps_t, targets

    state = {name: p.detach().cpu().numpy() for name, p in net.state_dict().items()}
    blob, manifest, decoded_state = _fit_quantization(
        state, target_bytes, lambda man, wts: pack(header_for(man, arch, data_info),
                                                   dict(sections, **{WEIGHT_TAG: wts})))
    approx = None
    if measure:
        net.load_state_dict({k: torch.from_numpy(v) for k, v in decoded_state.items()})
        approx = scale * evaluate_network(net, coords, cfg["eval_batch_voxels"]).numpy().astype(
            np.float64)
    return blob, arch, approx, final_loss


def _fit_quantization(state, target_bytes, build):
    """Find the finest quantisation whose file fits ``target_bytes``.

    ``build(manifest, payload)`` returns the whole file's bytes. The step
    multiplier alpha is bisected on a log scale; the file size falls as alpha
    grows. If even the finest step is under budget, the finest is used.
    """
    from .entropy import encode_state

    def attempt(alpha):
        payload, manifest, decoded = encode_state(state, alpha)
        return build(manifest, payload), manifest, decoded

    lo, hi = math.log(1e-3), math.log(64.0)
    best = attempt(math.exp(lo))
    if len(best[0]) <= target_bytes:
        return best
    best = attempt(math.exp(hi))
    if len(best[0]) > target_bytes:
        return best  # cannot shrink further; the caller reports the achieved ratio
    for _ in range(24):
        mid = 0.5 * (lo + hi)
        trial = attempt(math.exp(mid))
        if len(trial[0]) <= target_bytes:
            hi, best = mid, trial
        else:
            lo = mid
    return best


def _validate_header(header, sections, source):
    """Check every field the decoder uses and bound every size before allocating."""
    from .config import validate_config

    try:
        desc, arch, data = header["image"], header["arch"], header["data"]
        cfg = validate_config(header["config"], source=f"{source}: stored configuration")
        shape = [int(s) for s in desc["shape"]]
        if len(shape) != 4 or any(not 1 <= s <= MAX_AXIS for s in shape[:3]) or \
                not 1 <= shape[3] <= 100000 or np.prod(shape, dtype=np.int64) > MAX_VOXELS:
            raise ICAINRError(source, f"implausible image shape {shape}")
        _validate_image_fields(desc, data, source)
        if arch.get("model", "network") == "factor":
            return desc, _validate_factor_arch(arch, data, shape, source), data, cfg
        from .model import ARCH_DEFAULTS, ARCH_KEYS, count_parameters
        arch = {k: int(arch.get(k, ARCH_DEFAULTS.get(k, 0)) if k in ARCH_DEFAULTS else arch[k])
                for k in ARCH_KEYS}
        if arch["n_timepoints"] != shape[3]:
            raise ICAINRError(source, "the network's length does not match the image")
        limits = {"n_components": 64, "pattern_channels": 64, "pe_frequencies": 16,
                  "mlp_layers": 10, "mlp_width": 2048, "attention_hidden": 1024,
                  "fusion_channels": 256, "fusion_depth": 4}
        for key, top in limits.items():
            if not 1 <= arch[key] <= top and not (key == "pe_frequencies" and arch[key] == 0):
                raise ICAINRError(source, f"implausible network setting {key}={arch[key]}")
        if arch["voxel_table"] not in (0, 1) or (arch["voxel_table"] and
                                                 arch["n_voxels"] != int(data["n_voxels"])):
            raise ICAINRError(source, "the voxel table does not match the mask")
        if count_parameters(arch) > 1 << 28:
            raise ICAINRError(source, "the network described is implausibly large")
        if not math.isfinite(float(data["scale"])):
            raise ICAINRError(source, "non-finite scale in the header")
        if not isinstance(header["weights"], list) or len(header["weights"]) > 256:
            raise ICAINRError(source, "the weight manifest is malformed")
    except ICAINRError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise ICAINRError(source, f"the header is incomplete or malformed ({exc!s:.60})") from None
    for tag in (MASK_TAG, MEAN_TAG, WEIGHT_TAG):
        if tag not in sections:
            raise ICAINRError(source, f"the file has no {tag} section")
    return desc, arch, data, cfg


def _validate_image_fields(desc, data, source):
    """Fields both models use: stored dtype, mean-frame coding, scaling."""
    np.dtype(desc["dtype"])
    if np.dtype(desc["dtype"]).kind not in "iuf":
        raise ICAINRError(source, f"unsupported stored dtype {desc['dtype']}")
    for key in ("mean_lo", "mean_step"):
        if not math.isfinite(float(data[key])):
            raise ICAINRError(source, f"non-finite {key} in the header")
    if float(data["mean_step"]) <= 0:
        raise ICAINRError(source, "mean_step must be positive")
    if "value_range" in data:
        vr = data["value_range"]
        if not (isinstance(vr, list) and len(vr) == 2
                and all(isinstance(v, (int, float)) and math.isfinite(v) for v in vr)
                and vr[0] <= vr[1]):
            raise ICAINRError(source, "the header's value_range is not [min, max]")
    for key in ("scl_slope", "scl_inter"):
        if desc[key] is not None and not math.isfinite(float(desc[key])):
            raise ICAINRError(source, f"non-finite {key} in the header")


def _validate_factor_arch(arch, data, shape, source):
    from .factor import MAX_COMPONENTS, TRANSFORMS

    out = {"model": "factor", "n_components": int(arch["n_components"]),
           "n_timepoints": int(arch["n_timepoints"]), "n_voxels": int(arch["n_voxels"]),
           # format 2 files coded time-domain patterns and had no such key
           "patterns": str(arch.get("patterns", "time"))}
    if out["patterns"] not in TRANSFORMS:
        raise ICAINRError(source, f"unknown pattern coding {out['patterns']!r}")
    if out["n_timepoints"] != shape[3]:
        raise ICAINRError(source, "the factorization's length does not match the image")
    if not 1 <= out["n_components"] <= MAX_COMPONENTS:
        raise ICAINRError(source, f"implausible number of components {out['n_components']}")
    if out["n_voxels"] != int(data["n_voxels"]) or \
            not 1 <= out["n_voxels"] <= int(np.prod(shape[:3])):
        raise ICAINRError(source, "the factorization does not match the mask")
    step = float(data["step"])
    if not (math.isfinite(step) and step > 0):
        raise ICAINRError(source, "the factorization's step must be a positive number")
    return out


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
    check_output_path(out, force)
    values, desc = decode_array(in_file, device)
    from .nifti_io import write_nifti
    write_nifti(out, values, desc, in_file)
    return {"seconds": time.perf_counter() - t0, "shape": list(values.shape),
            "dtype": desc["dtype"]}


def decode_array(in_file, device="auto"):
    """Decode an ``.icainr`` file to ``(values float64 (X, Y, Z, T), image description)``."""
    from .images import decode_mask, decode_mean_frame

    header, sections, _ = read_file(in_file)
    desc, arch, data, cfg = _validate_header(header, sections, in_file)
    shape = desc["shape"]
    mask = decode_mask(sections[MASK_TAG], shape[:3], in_file)
    if int(mask.sum()) != int(data["n_voxels"]):
        raise ICAINRError(in_file, "the mask does not match the header's voxel count")
    mean = decode_mean_frame(sections[MEAN_TAG], shape[:3], float(data["mean_lo"]),
                             float(data["mean_step"]), in_file)
    if arch.get("model") == "factor":
        approx = _decode_factor(sections, arch, data, mask, in_file)
    else:
        approx = _decode_network(sections, header, arch, data, cfg, mask, device, in_file)
    values = np.empty(tuple(shape), dtype=np.float64)
    values[...] = mean[..., None]
    values[mask] += approx
    if "value_range" in data:  # absent before format 3
        np.clip(values, data["value_range"][0], data["value_range"][1], out=values)
    return values, desc


def _decode_factor(sections, arch, data, mask, source):
    from . import factor

    if FACTOR_TAG not in sections:
        raise ICAINRError(source, "the file has no FACT section")
    n_t, transform = arch["n_timepoints"], arch["patterns"]
    words, params, ranges, bands = factor.unpack(sections[FACTOR_TAG], source, n_t, transform)
    if params.shape[0] != arch["n_components"]:
        raise ICAINRError(source, "the factor section does not match the header")
    board = factor.Checkerboard(mask)
    q_maps, q_patterns = factor.decode_factors(words, params, ranges, bands, n_t, board, source)
    maps, patterns = factor.dequantize(q_maps, q_patterns, float(data["step"]), params,
                                       transform)
    return maps @ patterns


def _decode_network(sections, header, arch, data, cfg, mask, device, source):
    import torch

    from .entropy import decode_state
    from .fit import evaluate_network
    from .model import ICAINRNet
    from .prepare import voxel_coordinates

    dev = resolve_device(device)
    net = ICAINRNet(arch)
    expected = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    state = decode_state(sections[WEIGHT_TAG], header["weights"], expected, source)
    net.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    net.to(dev)
    coords = torch.from_numpy(voxel_coordinates(mask)).to(dev)
    with torch.no_grad():
        approx = evaluate_network(net, coords, cfg["eval_batch_voxels"]).numpy()
    return float(data["scale"]) * approx.astype(np.float64)


def info(in_file):
    """Header, ratio and section sizes of an ``.icainr`` file (a dict)."""
    header, sections, version = read_file(in_file)
    desc, arch, data, cfg = _validate_header(header, sections, in_file)
    size = os.path.getsize(in_file)
    raw = int(np.prod(desc["shape"])) * np.dtype(desc["dtype"]).itemsize
    return {"file": os.fspath(in_file), "format_version": version, "file_bytes": size,
            "raw_bytes": raw, "ratio": raw / size,
            "ratio_disk": desc["source_bytes"] / size,
            "sections": {tag: len(p) for tag, p in sections.items()},
            "header_bytes": size - sum(len(p) for p in sections.values()),
            "image": {k: v for k, v in desc.items() if k != "header_b64"},
            "arch": arch, "config": cfg, "seed": header.get("seed"),
            "software": header.get("software"), "fit_device": header.get("fit_device"),
            "n_voxels": data["n_voxels"]}
