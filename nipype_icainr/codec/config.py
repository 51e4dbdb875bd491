"""Codec configuration: YAML presets, user overrides, validation.

A configuration is a flat mapping: the keys every file has (``COMMON``) plus
the keys of its series model (``SeriesModel.config_schema``, documented in
each model's package). Presets live in ``presets/*.yaml``; a preset or a user
file given with ``--config`` may start from another with ``base: <preset>``
and list only what it changes; keys left out take their documented defaults.
Every value is checked here, once, so the rest of the codec can trust it; a
key the chosen model does not use is refused (it would silently do nothing).
A file stores exactly the validated configuration of its model, read back
with the same checks (it is untrusted input).

Common keys
-----------
name : str
    The preset's name (``custom`` for a user file).
description : str
    One sentence (not stored in files).
model : str
    The series model that codes the mean-removed series, by its name in
    ``codec.models.REGISTRY``.
target_ratio : float > 1
    Ratio aimed at when the caller gives none (see ``api.compress``).
mean_step : float > 0 or "auto"
    Quantisation step of the mean frame, in stored units of the input. "auto"
    (the default): part of the rate-distortion choice, ``mean_step_factor`` x the
    model's quantisation step / sqrt(T), the step at which the mean frame (a
    component whose pattern is constant) is quantised as finely as the model's
    components are (reverse water-filling); the model is fitted again around the
    recoded mean frame while the step changes much.
mean_step_factor : float
    See ``mean_step`` (2 measured best over the corpus of real runs: 1 cost
    0.4 dB, 0.5 another 0.5 dB).
background_step : float >= 1 or "auto"
    Mean-frame step outside the series' voxels, in multiples of the mean step.
    The series there is not coded (the decoder writes the mean frame), so a
    coarse background saves bytes for the brain. "auto": the largest multiple
    that keeps the background's mean within the coded voxels' RMS error
    (measured on the file's own coding, rounded again if it comes back closer),
    or within the background's median fluctuation in time where that is larger.
mean_frame_effort : int, 1..10
    JPEG XL's effort for the mean frame the file holds (lossless: the decoded run
    is the same at any effort). 7, the default: at 10 the frames of six 200x files
    took 1-12 % fewer bytes for 7-15 times the encoding time (1.25 s for a
    65x89x64 frame; ``benchmarks/frame_alternatives.py``). On large runs, where the
    longer header of a custom configuration (about 100 bytes) does not count, 10
    gives the smallest files; compression took up to 23 % longer.
"""

from importlib import resources

import yaml

from . import models
from .errors import ICAINRError


class Key:
    """One configuration key: its type, bounds and default (None: required)."""

    def __init__(self, kind, lo=None, hi=None, choices=(), default=None):
        self.kind, self.lo, self.hi, self.choices, self.default = kind, lo, hi, choices, default

    def check(self, key, value, source):
        kind = self.kind
        if kind == "int" or (kind == "int_or_auto" and value != "auto"):
            if isinstance(value, bool) or not isinstance(value, int) or \
                    not self.lo <= value <= self.hi:
                extra = "'auto' or " if kind == "int_or_auto" else ""
                raise ICAINRError(source, f"{key} must be {extra}an integer in "
                                          f"[{self.lo}, {self.hi}], got {value!r}")
            return int(value)
        if kind == "float" or (kind == "float_or_auto" and value != "auto"):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                    not self.lo <= value <= self.hi:
                extra = "'auto' or " if kind == "float_or_auto" else ""
                raise ICAINRError(source, f"{key} must be {extra}a number in "
                                          f"[{self.lo}, {self.hi}], got {value!r}")
            return float(value)
        if kind == "choice":
            if value not in self.choices:
                raise ICAINRError(source, f"{key} must be one of {self.choices}, got {value!r}")
            return value
        if kind == "bool":
            if not isinstance(value, bool):
                raise ICAINRError(source, f"{key} must be true or false, got {value!r}")
            return value
        if kind == "text":
            if not isinstance(value, str) or len(value) > 2000:
                raise ICAINRError(source, f"{key} must be a short text, got {value!r:.60}")
            return value
        return value  # "auto" of an int_or_auto key


def Int(lo, hi, default=None):
    return Key("int", lo, hi, default=default)


def Float(lo, hi, default=None):
    return Key("float", lo, hi, default=default)


def FloatOrAuto(lo, hi, default="auto"):
    return Key("float_or_auto", lo, hi, default=default)


def Choice(choices, default=None):
    return Key("choice", choices=tuple(choices), default=default)


def Bool(default=None):
    return Key("bool", default=default)


def IntOrAuto(lo, hi, default="auto"):
    return Key("int_or_auto", lo, hi, default=default)


#: keys every configuration has, whatever its model
COMMON = {
    "name": Key("text", default="custom"),
    "description": Key("text", default=""),
    "target_ratio": Float(1.0001, 1e6, 100.0),
    "mean_step": FloatOrAuto(1e-9, 1e9, "auto"),
    "mean_step_factor": Float(0.01, 100.0, 2.0),
    "background_step": FloatOrAuto(1.0, 65535.0, "auto"),
    "mean_frame_effort": Int(1, 10, 7),
}
#: keys kept out of files (long texts that say nothing about how the file was made)
NOT_STORED = ("description",)
#: keys a file records only when they differ from their default: keys added after
#: custom configurations were first recorded, so that a configuration that does not
#: use one writes the same bytes as before it existed (a longer header moved a
#: 720-byte file's choice of mask)
STORED_WHEN_SET = ("mean_frame_effort",)


def available_presets():
    """Names of the bundled presets."""
    folder = resources.files(__package__) / "presets"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def _read_preset(name, seen=()):
    """A preset's raw mapping with its ``base`` chain applied (not yet validated)."""
    if name not in available_presets():
        raise ICAINRError(None, f"unknown preset {name!r}; choose from "
                                f"{', '.join(available_presets())}")
    if name in seen:
        raise ICAINRError(None, f"preset {name!r} is its own base")
    text = (resources.files(__package__) / "presets" / f"{name}.yaml").read_text()
    cfg = yaml.safe_load(text)
    if "base" in cfg:
        cfg = merge(_read_preset(cfg.pop("base"), seen + (name,)), cfg)
    return cfg


def merge(base, overrides):
    """``overrides`` on top of ``base``; changing the model drops the base's model keys."""
    base = dict(base)
    new_model = overrides.get("model")
    if new_model is not None and new_model != base.get("model"):
        base = {k: v for k, v in base.items() if k in COMMON}
    base.update(overrides)
    return base


def load_preset(name):
    """Return the validated configuration of a bundled preset."""
    return validate_config(_read_preset(name), source=f"preset {name}")


def resolve_config(preset="default", config=None):
    """A validated configuration from a preset name, a YAML path or a dict.

    A dict or file may name ``base: <preset>`` (default: ``preset``) and override
    any key; a file without ``name`` is called ``custom``, unless it changes nothing
    of its base (it is then that preset, and a file records only the preset's name).
    """
    if config is None:
        return load_preset(preset)
    source = "configuration"
    if not isinstance(config, dict):
        source = str(config)
        config = _read_config_file(config)
    user = dict(config)
    base_name = str(user.pop("base", preset))
    resolved = validate_config(merge(_read_preset(base_name), dict({"name": "custom"}, **user)),
                               source=source)
    if "name" not in user:
        base = load_preset(base_name)
        if resolved == dict(base, name="custom"):
            return base
    return resolved


def load_config_file(path):
    """Read a user YAML file: ``base: <preset>`` (default "default") plus overrides."""
    return resolve_config("default", path)


def _read_config_file(path):
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
    return user


def schema(model_name):
    """Every key a configuration of ``model_name`` may hold: common and the model's."""
    return dict(COMMON, **models.get(model_name).config_schema)


def validate_config(cfg, source="configuration"):
    """Check every key and value; return a clean copy with defaults filled in."""
    if not isinstance(cfg, dict):
        raise ICAINRError(source, "a configuration must be a mapping")
    model = cfg.get("model", models.DEFAULT_MODEL)
    if not isinstance(model, str) or model not in models.names():
        raise ICAINRError(source, f"model must be one of {models.names()}, got {model!r}")
    keys = schema(model)
    unknown = sorted(k for k in cfg if k != "model" and k not in keys)
    if unknown:
        others = [k for k in unknown if any(k in models.get(m).config_schema
                                           for m in models.names())]
        if others and len(others) == len(unknown):
            raise ICAINRError(source, f"the {model} model does not use: {', '.join(unknown)}")
        raise ICAINRError(source, f"unknown configuration keys: {', '.join(unknown)}")
    out = {"model": model}
    for key, spec in keys.items():
        if key in cfg:
            out[key] = spec.check(key, cfg[key], source)
        elif spec.default is not None:
            out[key] = spec.default
        else:
            raise ICAINRError(source, f"missing configuration key: {key}")
    check = getattr(models.get(model), "check_config", None)
    if check is not None:
        check(out, source)
    return out


def stored_config(cfg):
    """What a file records of ``cfg``: its name alone when it is that bundled preset (the
    file records the version that defines it), else every key but the long texts."""
    name = cfg.get("name")
    if name in available_presets():
        preset = load_preset(name)
        if {k: v for k, v in preset.items() if k not in NOT_STORED} == \
                {k: v for k, v in cfg.items() if k not in NOT_STORED}:
            return {"name": name}
    return {k: v for k, v in cfg.items() if k not in NOT_STORED
            and not (k in STORED_WHEN_SET and v == COMMON[k].default)}


def read_stored_config(cfg, model_name, source):
    """Validate the configuration a file records (untrusted): only its model's keys.

    Files of formats 1-3 recorded every model's keys; those their model does not
    use are dropped here.
    """
    if not isinstance(cfg, dict):
        raise ICAINRError(source, "the stored configuration is not a mapping")
    if set(cfg) == {"name"}:  # a bundled preset, as the version that wrote the file had it
        if not isinstance(cfg["name"], str) or len(cfg["name"]) > 200:
            raise ICAINRError(source, "the stored preset name is not a short text")
        return {"name": cfg["name"], "model": model_name}
    keys = schema(model_name)
    kept = {k: v for k, v in cfg.items() if k in keys}
    kept["model"] = model_name
    return validate_config(kept, source)
