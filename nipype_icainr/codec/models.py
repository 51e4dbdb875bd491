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

from .errors import ICAINRError, OutOfReach

#: model name -> "module:Class" (modules are imported only when a model is used)
REGISTRY = {
    "factor": "nipype_icainr.codec.factor.model:FactorModel",
    "network": "nipype_icainr.codec.network.model:NetworkModel",
    "lossless": "nipype_icainr.codec.lossless.model:LosslessModel",
}
#: the model of files written before the header named one (format 1)
UNNAMED_MODEL = "network"
#: the model of a configuration that names none
DEFAULT_MODEL = "factor"
#: the whole-run model behind --lossless and --max-error, and the lossless floor of a ratio
LOSSLESS_MODEL = "lossless"


@dataclass
class Budget:
    """What a model may spend, and how to measure a whole file.

    Attributes
    ----------
    target_bytes : float or None
        The whole file's size the caller asked for (raw bytes / ratio); None when
        the target is a quality (``max_sse``).
    raw_bytes : int
        The input's voxel array in its stored dtype (the ratio's numerator).
    build : callable
        ``build(coded) -> bytes``: the whole file around a ``Coded`` (header,
        mask, mean frame and the model's sections), so a model can measure
        its own overhead exactly.
    source : str
        The input's name, for error messages.
    max_sse : float or None
        With no ``target_bytes``: the largest squared error (sum over the series)
        allowed; the model makes the smallest file that keeps under it.
    """

    target_bytes: float
    raw_bytes: int
    build: object
    source: str = None
    max_sse: float = None
    #: an earlier fit of the same series (its ``Coded``): where to start searching
    hint: object = None
    #: mean-frame steps the model may choose from (``factor.search.MeanOption``s), for
    #: models with ``plans_mean``; it then returns a ``Coded`` with only a ``plan``
    mean_options: list = None
    #: the plan of such an earlier call: refine it on the series around the recoded mean
    plan: object = None

    def out_of_reach(self, what, file_bytes):
        """The one-line error for a budget that ``what`` alone exceeds (``file_bytes``:
        the estimated size of a file holding only that; ``OutOfReach.floor_bytes``)."""
        error = OutOfReach(self.source, f"ratio {self.raw_bytes / self.target_bytes:g} is out "
                                         f"of reach: the {what}, mask and coarsest mean frame "
                                         f"alone need a ratio below "
                                         f"{self.raw_bytes / file_bytes:.1f}")
        error.floor_bytes = file_bytes
        return error


@dataclass
class MeanOption:
    """A mean-frame step the codec offers a model: its bytes and the squared error
    (over the series) its quantisation adds."""

    step: float
    bytes: float
    sse: float


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
    #: the series' squared error (sum), when the model knows it
    sse: float = None
    #: a model's choice before coding (see ``Budget.mean_options``)
    plan: object = None


@dataclass
class FitEnvironment:
    """Run settings a model may use: seed, device, progress bar, whether to decode."""

    seed: int = 0
    device: str = "cpu"
    progress: bool = False
    measure: bool = True
    source: str = None


def torch_installed():
    """Whether PyTorch can be imported (only the network models need it)."""
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def require_torch(what):
    """Import torch, or one line saying how to install it."""
    try:
        import torch
    except ImportError:
        raise ICAINRError(None, f"{what} needs PyTorch, which is not installed: "
                                "pip install 'nipype-icainr[network]' (for the CPU build add "
                                "--extra-index-url https://download.pytorch.org/whl/cpu)") \
            from None
    return torch


def cuda_available():
    """Whether a CUDA device is usable (False without PyTorch)."""
    if not torch_installed():
        return False
    import torch

    return bool(torch.cuda.is_available())


class SeriesModel:
    """Base class of the series models. Subclasses set ``name`` and the four methods."""

    #: False: the codec codes the mask and the mean frame and the model the series;
    #: True: the model codes the whole stored array (``fit_run``/``decode_run``)
    whole_run = False

    #: the name in the registry and in configurations
    name = "?"
    #: section tags the model writes, all required when reading
    sections = ()
    #: configuration keys of the model: name -> ``config.Key`` (with its default)
    config_schema = {}
    #: libraries (``provenance`` keys) the model's output depends on, beyond the codec's
    packages = ()
    #: the model can choose the mean frame's step with its own (``Budget.mean_options``)
    plans_mean = False

    def required_sections(self, part):
        """The section tags a file with this header ``part`` must have."""
        return tuple(self.sections)

    def flat_dynamics(self, part):
        """Whether a file with this header ``part`` keeps too little of the run's dynamics
        for region-to-region correlations to mean anything (``encode`` then prefers
        another coding of the run that keeps them, whatever its error)."""
        return False

    def keeps_dynamics(self, part):
        """Whether a file with this header ``part`` decodes any voxel to more than its
        mean over time (``compress`` warns when it does not)."""
        return True

    def without_connectivity_layer(self, config, part):
        """The configuration that codes the run without the part of ``part`` kept for
        connectivity rather than for error, or None when ``part`` has no such part
        (``encode`` measures what it costs a small run)."""
        return None

    def resolve_device(self, device):
        """The device this model fits on for a ``--device`` value (``cpu`` by default).

        ``cuda`` without a usable CUDA device is refused by every model alike; a
        model that computes on the CPU only (the factor model) then still fits there.
        """
        if device not in ("auto", "cpu", "cuda"):
            raise ICAINRError(None, f"device must be auto, cpu or cuda, got {device!r}")
        if device == "cuda" and not cuda_available():
            raise ICAINRError(None, "--device cuda was asked for but no CUDA device is "
                                    "available" + ("" if torch_installed() else
                                                   " (PyTorch is not installed)"))
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

    def mean_step_hint(self, part, n_timepoints):
        """The mean frame's step (physical units) that matches the model's precision, or
        None. The codec recodes the mean frame at this step and fits again when it
        differs much from the step it used (one rate-distortion step for both)."""
        return None

    def guarantee(self, part):
        """``(mode, bound)``: "lossless", "error-bounded" (every value within ``bound``,
        physical units) or "lossy" (``bound`` None)."""
        return "lossy", None

    def from_legacy(self, arch, data, header):
        """The model's format 4 entry from a format 1-3 header (its ``arch``, ``data``)."""
        return dict(arch)

    def from_format(self, part, version):
        """The model's entry in the current format's terms, from a file of an older
        ``version`` (after ``from_legacy`` for formats 1-3): what an older format
        left implicit and the current one does otherwise."""
        return part


@dataclass
class RunTarget:
    """What a whole-run model is asked for: exact (``max_error`` 0), or every value
    within ``max_error`` (physical units), or a byte budget."""

    max_error: float = 0.0
    target_bytes: float = None


class RunModel(SeriesModel):
    """Base class of the models that code the whole stored array themselves.

    No mask and no mean frame are coded around them; ``fit_run`` gets the
    stored array (the NIfTI's own integers or floats) and ``decode_run``
    returns it.
    """

    whole_run = True

    def fit_run(self, stored, image, target, config, env):
        """Code ``stored`` (X, Y, Z, T, the stored dtype) for ``target``; a ``Coded``."""
        raise NotImplementedError

    def decode_run(self, sections, part, image, source):
        """The stored array (X, Y, Z, T) from the validated parts."""
        raise NotImplementedError

    def estimate_bytes(self, stored, image):
        """A fast, generous estimate of the lossless size of ``stored`` (a run's first
        volumes, perhaps), or None when unknown."""
        return None


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
