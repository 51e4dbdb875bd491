"""Codec configuration: YAML presets, user overrides, validation.

A configuration is a flat mapping. Presets live in ``presets/*.yaml``; a user file
given with ``--config`` may name ``base: <preset>`` and override any key. Every
value is checked here, once, so the rest of the codec can trust it. The same
checks run on the configuration read back from a compressed file, which is
untrusted input.

Keys
----
target_ratio : float > 1
    Ratio aimed at when the caller gives none (see ``api.compress``).
n_components : int, 1..64
    K, the number of ICA activation patterns (rows of the learnable ``C_train``).
ica_max_iter : int
    FastICA iterations.
pattern_channels : int, 1..64
    Conv1d channels computed from each pattern (the raw pattern is kept as one more).
pe_frequencies : int, 0..16
    NeRF positional-encoding frequencies (the paper: 10).
mlp_layers : int, 2..10
    Linear layers per coordinate MLP (the paper: 5).
mlp_width : int or "auto"
    Hidden width of each coordinate MLP; "auto" sizes it from the byte budget.
mlp_width_min, mlp_width_max : int
    Bounds for "auto".
attention_hidden : int
    Hidden size of the channel-attention MLP.
fusion_channels : int
    Channels of the first Down block of the feature-fusion U-Net (doubled per level).
fusion_depth : int, 1..4
    Number of Down blocks (and as many Up blocks).
sigma_ssim : float >= 0
    Weight of ``1 - SSIM`` in the loss.
optimizer : "adamax" or "adam"
lr, pretrain_lr : float > 0
lr_schedule : "constant" or "cosine"
pretrain_epochs, epochs : int >= 0
    Passes over all masked voxels (the paper's schedule).
pretrain_steps, steps : int >= 0
    When above 0, the number of optimiser steps instead, each on a batch of
    voxels drawn without replacement (reshuffled after every pass). A CPU budget
    of work that does not grow with the number of voxels.
batch_voxels, eval_batch_voxels : int
mean_step : float > 0
    Quantisation step of the mean frame, in stored units of the input.
weight_bits_target : float
    Nominal entropy-coded bits per parameter used to size the model.
voxel_table : bool
    Add an explicitly coded per-voxel correction to the MLPs' weights (beyond the
    paper; see ``model.py``). false in ``paper``.
table_bits_target : float
    Nominal bits per table entry, reserved before sizing the MLPs.
model : str
    The series model that codes the mean-removed series, by its name in
    ``codec.models.REGISTRY``: factor (an explicitly coded factorization, voxel
    maps x activation patterns with (K, step) chosen by rate-distortion search,
    see ``codec/factor``; only ``max_components``, ``psnr_slack_db``,
    ``components`` and the mean-frame keys apply) or network (the ICA-INR
    network of the paper; the keys above).
max_components : int, 1..256
    Largest K the factorization search may choose.
psnr_slack_db : float >= 0
    Among the K whose PSNR at the budget is within this many dB of the best
    K's (0 = best PSNR), the factorization keeps the fewest or the most, as
    ``components`` says.
components : "fewest" or "most"
    "fewest" (default): fewer components at a finer step measured better GLM
    t-maps and connectivity for a little PSNR (studyforrest run). "most" (the
    ``decoding`` preset): more components at a coarser step measured better
    linear-SVM decoding (Haxby slice).
background_step : float >= 1
    Mean-frame step outside the brain mask, in multiples of ``mean_step``. The
    series outside the mask is not coded (the decoder writes the mean frame
    there), so a coarse background saves bytes for the brain.
"""

from importlib import resources

import yaml

from . import models
from .errors import ICAINRError

_INT_BOUNDS = {
    "n_components": (1, 64),
    "ica_max_iter": (1, 100000),
    "pattern_channels": (1, 64),
    "pe_frequencies": (0, 16),
    "mlp_layers": (2, 10),
    "mlp_width_min": (1, 2048),
    "mlp_width_max": (1, 2048),
    "attention_hidden": (1, 1024),
    "fusion_channels": (1, 256),
    "fusion_depth": (1, 4),
    "pretrain_epochs": (0, 100000),
    "epochs": (0, 100000),
    "pretrain_steps": (0, 10000000),
    "steps": (0, 10000000),
    "batch_voxels": (1, 1 << 20),
    "eval_batch_voxels": (1, 1 << 22),
    "max_components": (1, 256),
}
_FLOAT_BOUNDS = {
    "target_ratio": (1.0001, 1e6),
    "sigma_ssim": (0.0, 100.0),
    "lr": (1e-8, 1.0),
    "pretrain_lr": (1e-8, 1.0),
    "mean_step": (1e-9, 1e9),
    "weight_bits_target": (1.0, 32.0),
    "table_bits_target": (0.5, 32.0),
    "background_step": (1.0, 65535.0),
    "psnr_slack_db": (0.0, 10.0),
}
_BOOLS = ("voxel_table",)
_CHOICES = {
    "optimizer": ("adamax", "adam"),
    "lr_schedule": ("constant", "cosine"),
    "components": ("fewest", "most"),
}
_TEXT = ("name", "description")
KEYS = frozenset(_INT_BOUNDS) | frozenset(_FLOAT_BOUNDS) | frozenset(_CHOICES) | {
    "model", "mlp_width", *_TEXT, *_BOOLS}
#: keys added after the first files were written, with the value older files imply
LATER_KEYS = {"voxel_table": False, "table_bits_target": 5.0, "model": "network",
              "max_components": 64, "background_step": 1.0,
              "psnr_slack_db": 0.0, "components": "fewest"}


def available_presets():
    """Names of the bundled presets."""
    folder = resources.files(__package__) / "presets"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_preset(name, _seen=()):
    """Return the validated configuration of a bundled preset.

    A preset file may start from another with ``base: <preset>`` and list only
    the keys it changes.
    """
    if name not in available_presets():
        raise ICAINRError(None, f"unknown preset {name!r}; choose from "
                                f"{', '.join(available_presets())}")
    if name in _seen:
        raise ICAINRError(None, f"preset {name!r} is its own base")
    text = (resources.files(__package__) / "presets" / f"{name}.yaml").read_text()
    cfg = yaml.safe_load(text)
    if "base" in cfg:
        cfg = dict(load_preset(cfg.pop("base"), _seen + (name,)), **cfg)
    return validate_config(cfg, source=f"preset {name}")


def resolve_config(preset="default", config=None):
    """A validated configuration from a preset name, a YAML path or a dict."""
    if config is None:
        return load_preset(preset)
    if isinstance(config, dict):
        base = load_preset(config.get("base", preset))
        base.update({k: v for k, v in config.items() if k != "base"})
        return validate_config(base, source="configuration")
    return load_config_file(config)


def load_config_file(path):
    """Read a user YAML file: ``base: <preset>`` (default "default") plus overrides."""
    try:
        with open(path, encoding="utf-8") as fh:
            user = yaml.safe_load(fh)
    except OSError as exc:
        raise ICAINRError(path, f"cannot read configuration ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        problem = str(exc).splitlines()[0]
        raise ICAINRError(path, f"not valid YAML ({problem})") from None
    if not isinstance(user, dict):
        raise ICAINRError(path, "a configuration must be a YAML mapping")
    user = dict(user)
    base = load_preset(str(user.pop("base", "default")))
    base.update(user)
    base.setdefault("name", "custom")
    return validate_config(base, source=str(path))


def validate_config(cfg, source="configuration"):
    """Check every key and value; return a clean copy (ints as int, floats as float)."""
    if not isinstance(cfg, dict):
        raise ICAINRError(source, "a configuration must be a mapping")
    cfg = dict(LATER_KEYS, **cfg)
    unknown = sorted(set(cfg) - KEYS)
    if unknown:
        raise ICAINRError(source, f"unknown configuration keys: {', '.join(unknown)}")
    missing = sorted(KEYS - set(cfg) - set(_TEXT))
    if missing:
        raise ICAINRError(source, f"missing configuration keys: {', '.join(missing)}")
    out = {}
    for key, (lo, hi) in _INT_BOUNDS.items():
        val = cfg[key]
        if isinstance(val, bool) or not isinstance(val, int) or not lo <= val <= hi:
            raise ICAINRError(source, f"{key} must be an integer in [{lo}, {hi}], got {val!r}")
        out[key] = int(val)
    for key, (lo, hi) in _FLOAT_BOUNDS.items():
        val = cfg[key]
        if isinstance(val, bool) or not isinstance(val, (int, float)) or not lo <= val <= hi:
            raise ICAINRError(source, f"{key} must be a number in [{lo}, {hi}], got {val!r}")
        out[key] = float(val)
    for key, choices in _CHOICES.items():
        if cfg[key] not in choices:
            raise ICAINRError(source, f"{key} must be one of {choices}, got {cfg[key]!r}")
        out[key] = cfg[key]
    if cfg["model"] not in models.names():
        raise ICAINRError(source, f"model must be one of {models.names()}, got {cfg['model']!r}")
    out["model"] = cfg["model"]
    for key in _BOOLS:
        if not isinstance(cfg[key], bool):
            raise ICAINRError(source, f"{key} must be true or false, got {cfg[key]!r}")
        out[key] = cfg[key]
    width = cfg["mlp_width"]
    if width != "auto" and (isinstance(width, bool) or not isinstance(width, int)
                            or not 1 <= width <= 2048):
        raise ICAINRError(source, f"mlp_width must be 'auto' or an integer in [1, 2048], "
                                  f"got {width!r}")
    out["mlp_width"] = width
    if out["mlp_width_min"] > out["mlp_width_max"]:
        raise ICAINRError(source, "mlp_width_min must not exceed mlp_width_max")
    for key in _TEXT:
        if key in cfg:
            out[key] = str(cfg[key])
    return out
