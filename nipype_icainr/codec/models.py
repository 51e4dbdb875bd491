"""The registry of series models, and the interface every model implements.

A *series model* codes the mean-removed series of the masked voxels (an N x T
array) to a byte budget; the codec core codes the mask and the mean frame
around it (``frame``), frames the file (``container``) and validates the
generic part of the header (``header``). Nothing outside this module and the
models' own packages names a model: adding one is a new package and one line
in ``REGISTRY`` (or a call to ``register``).
"""

import importlib
from dataclasses import dataclass

import numpy as np

from .errors import ICAINRError

#: model name -> "module:Class" (modules are imported only when a model is used)
REGISTRY = {
    "factor": "nipype_icainr.codec.factor.model:FactorModel",
    "network": "nipype_icainr.codec.network.model:NetworkModel",
}
#: the model of files written before the header named one (format 1)
UNNAMED_MODEL = "network"
#: the model of a configuration that names none
DEFAULT_MODEL = "factor"


@dataclass
class Budget:
    """What a model may spend, and how to measure a whole file.

    Attributes
    ----------
    target_bytes : float
        The whole file's size the caller asked for (raw bytes / ratio).
    raw_bytes : int
        The input's voxel array in its stored dtype (the ratio's numerator).
    build : callable
        ``build(coded) -> bytes``: the whole file around a ``Coded`` (header,
        mask, mean frame and the model's sections), so a model can measure
        its own overhead exactly.
    source : str
        The input's name, for error messages.
    """

    target_bytes: float
    raw_bytes: int
    build: object
    source: str = None

    def out_of_reach(self, what, file_bytes):
        """The one-line error for a budget that ``what`` alone exceeds."""
        return ICAINRError(self.source, f"ratio {self.raw_bytes / self.target_bytes:g} is out "
                                        f"of reach: the mask, mean frame and {what} need a "
                                        f"ratio below {self.raw_bytes / file_bytes:.1f}")


@dataclass
class Coded:
    """A model's output: what goes into the file, and what the decoder will see.

    Attributes
    ----------
    sections : dict
        ``{tag: bytes}``: the model's sections (4 ASCII letters or digits).
    part : dict
        The model's entry of the header (JSON-able): everything its decoder
        needs besides the sections (validated by ``SeriesModel.validate`` on
        reading). The codec adds ``name``.
    approx : ndarray (N, T) or None
        The decoded series (None when not computed).
    final_loss : float
        The fit's last loss (mean squared error per value for the factor model).
    """

    sections: dict
    part: dict
    approx: np.ndarray = None
    final_loss: float = float("nan")


@dataclass
class FitEnvironment:
    """Run settings a model may use: seed, device, progress bar, whether to decode."""

    seed: int = 0
    device: str = "cpu"
    progress: bool = False
    measure: bool = True
    source: str = None


class SeriesModel:
    """Base class of the series models. Subclasses set ``name`` and the four methods."""

    #: the name in the registry and in configurations
    name = "?"
    #: section tags the model writes, all required when reading
    sections = ()
    #: configuration keys of the model: name -> ``config.Key`` (with its default)
    config_schema = {}
    #: libraries (``provenance`` keys) the model's output depends on, beyond the codec's
    packages = ()

    def resolve_device(self, device):
        """The device this model fits on for a ``--device`` value (``cpu`` by default)."""
        if device not in ("auto", "cpu", "cuda"):
            raise ICAINRError(None, f"device must be auto, cpu or cuda, got {device!r}")
        return "cpu"

    def fit(self, series, mask, budget, config, env):
        """Code ``series`` (N x T, float64) of the voxels of ``mask`` within ``budget``.

        Returns a ``Coded``.
        """
        raise NotImplementedError

    def validate(self, part, shape, n_voxels, source):
        """Check the model's header entry (types, finiteness, ranges) before decoding.

        ``shape`` (X, Y, Z, T) and ``n_voxels`` (the mask's voxel count) are
        already validated. Returns the normalised ``part``; raises
        ``ICAINRError`` naming ``source``.
        """
        raise NotImplementedError

    def decode(self, sections, part, mask, device, source):
        """The decoded series (N x T, float64) from the file's parts (all validated)."""
        raise NotImplementedError

    def describe(self, part):
        """One line for ``icainr info`` and the QC report."""
        return f"{self.name} model"

    def guarantee(self, part):
        """``(mode, bound)``: "lossless", "error-bounded" (every value within ``bound``,
        physical units) or "lossy" (``bound`` None)."""
        return "lossy", None

    def from_legacy(self, arch, data, header):
        """The model's format 4 entry from a format 1-3 header (its ``arch``, ``data``)."""
        return dict(arch)


_INSTANCES = {}


def register(name, target):
    """Add a model: ``target`` is a ``SeriesModel`` subclass or a ``"module:Class"`` string."""
    REGISTRY[name] = target
    _INSTANCES.pop(name, None)


def unregister(name):
    """Remove a model added with ``register``."""
    REGISTRY.pop(name, None)
    _INSTANCES.pop(name, None)


def names():
    """The registered model names."""
    return tuple(REGISTRY)


def get(name):
    """The model registered as ``name`` (an instance)."""
    if name not in REGISTRY:
        raise ICAINRError(None, f"unknown model {name!r}; choose from {', '.join(REGISTRY)}")
    if name not in _INSTANCES:
        target = REGISTRY[name]
        if isinstance(target, str):
            module, cls = target.split(":")
            target = getattr(importlib.import_module(module), cls)
        _INSTANCES[name] = target()
    return _INSTANCES[name]


def for_part(part, source):
    """The model that wrote a file, from its header's ``model`` entry."""
    name = part.get("name") if isinstance(part, dict) else None
    if not isinstance(name, str) or name not in REGISTRY:
        raise ICAINRError(source, f"the file uses an unknown model {name!r}")
    return get(name)
