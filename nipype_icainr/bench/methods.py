"""The ``Method`` interface and the registry of benchmarked methods.

A method is an ``encode(data, mask, knob) -> bytes`` and ``decode(bytes) ->
data`` pair on the float64 (X, Y, Z, T) array in physical units, plus a
``search`` that picks the knob for a target ratio (see ``search``). The payload
is self-contained: ``decode`` needs nothing but the bytes (shape, scaling and
mask travel inside and are counted). A method is built with a *context*
(``BenchInput.context()`` plus options such as ``inr_steps``), JSON-able, so
that a child process can rebuild it.
"""

import importlib

import numpy as np

from .search import Choice, OutOfReach, bisect_continuous, budget_bytes

#: name -> "module:Class" (modules are imported only when a method is built)
REGISTRY = {
    "icainr": "ours:ICAINR",
    "icainr-decoding": "ours:ICAINRDecoding",
    "icainr-glm": "ours:ICAINRGLM",
    "icainr-paper": "ours:ICAINRPaper",
    "gzip": "lossless:Gzip",
    "zstd": "lossless:Zstd",
    "sz3": "errorbound:SZ3",
    "zfp": "errorbound:ZFP",
    "jpeg2k": "jpeg2k:JPEG2K",
    "h264": "video:H264",
    "h265": "video:H265",
    "svd": "svd:SVD",
    "siren": "inr:SIREN",
    "nerf": "inr:NeRF",
}

#: every method, in table order
ALL_METHODS = tuple(REGISTRY)


def available_methods():
    """Methods that can run here: ``icainr-paper`` only with a CUDA device."""
    from ..codec.models import cuda_available

    return [m for m in ALL_METHODS if m != "icainr-paper" or cuda_available()]


def parse_methods(text):
    """``'all'`` or a comma list -> list of names; raises ``ValueError`` on an unknown name."""
    text = (text or "all").strip()
    if text == "all":
        return available_methods()
    names = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise ValueError(f"unknown method(s) {', '.join(unknown)}; choose from "
                         f"{', '.join(ALL_METHODS)} or 'all'")
    if not names:
        raise ValueError("no method given")
    if "icainr-paper" in names:
        from ..codec.models import cuda_available

        if not cuda_available():
            raise ValueError("icainr-paper (the paper preset) needs a CUDA device; "
                             "torch sees none")
    return list(dict.fromkeys(names))


def make_method(name, context=None):
    """Build the method ``name`` with its context (a dict)."""
    if name not in REGISTRY:
        raise ValueError(f"unknown method {name!r}")
    module, cls = REGISTRY[name].split(":")
    klass = getattr(importlib.import_module(f"{__package__}.{module}"), cls)
    return klass(context)


class Method:
    """Base class. Subclasses set ``name`` and implement ``encode``/``decode``.

    Lossy methods with one continuous knob set ``knob_name`` and implement
    ``knob_range``; their ``variants`` (e.g. background fills) are searched in
    turn and compared on PSNR. Other methods override ``search``.
    """

    name = "?"
    lossless = False
    #: what the knob is, for the report
    knob_doc = ""
    #: name of the continuous knob in the knob dict
    knob_name = None
    #: bisection steps after the two ends of the knob's range
    search_iters = 12
    #: fraction of the budget the search aims at (below 1 for encoders whose output
    #: size varies from run to run, so that the child's re-encode still fits)
    budget_margin = 1.0

    def __init__(self, context=None):
        self.context = dict(context or {})
        #: facts about the last encode worth reporting (training time, bit depth, ...)
        self.last_info = {}

    # --- to implement ---------------------------------------------------------------
    def encode(self, data, mask, knob):
        raise NotImplementedError

    def decode(self, payload):
        raise NotImplementedError

    def variants(self):
        """Knob dicts of the fixed options searched over (default: one, empty)."""
        return [{}]

    def knob_range(self, data, mask, variant):
        """``(lo, hi, size_grows, log)`` of the continuous knob."""
        raise NotImplementedError

    # --- shared ---------------------------------------------------------------------
    def label(self, knob):
        """Short text for the report."""
        return ", ".join(f"{k}={_fmt(v)}" for k, v in knob.items()) or "-"

    def search(self, data, mask, target_ratio, raw_bytes, quality):
        """Pick the knob for ``target_ratio`` (see ``search``'s module docstring).

        Parameters
        ----------
        data, mask : the input
        target_ratio : float or None
            None for lossless methods.
        raw_bytes : int
        quality : callable
            ``quality(decoded) -> PSNR`` (used to compare variants).

        Returns
        -------
        Choice
        """
        if self.lossless:  # nothing to search; the size is known once compressed
            return Choice(knob={})
        budget = budget_bytes(raw_bytes, target_ratio) * self.budget_margin
        variants = self.variants()
        found, reasons, evaluations = [], [], []
        for variant in variants:
            evals = []
            try:
                value, blob = self.search_variant(data, mask, variant, budget, evals)
            except OutOfReach as exc:
                reasons.append(f"{self.label(variant) if variant else self.name}: {exc}")
                continue
            finally:
                evaluations += [dict(e, **variant) for e in evals]
            q = quality(self.decode(blob)) if len(variants) > 1 else None
            found.append(Choice(knob=dict(variant, **{self.knob_name: float(value)}),
                                n_bytes=len(blob), quality=q, payload=blob))
        if not found:
            raise OutOfReach("; ".join(reasons))
        best = max(found, key=lambda c: c.quality if c.quality is not None else 0.0)
        best.evaluations = evaluations
        if len(found) > 1:
            best.note = "variants: " + "; ".join(
                f"{self.label(c.knob)} {c.quality:.2f} dB" for c in found)
        return best

    def search_variant(self, data, mask, variant, budget, evaluations):
        """``(value, payload)``: the finest knob value of one variant that fits ``budget``."""
        lo, hi, grows, log = self.knob_range(data, mask, variant)
        return bisect_continuous(
            lambda v: self.encode(data, mask, dict(variant, **{self.knob_name: v})),
            lo, hi, budget, size_grows=grows, log=log, iters=self.search_iters,
            evaluations=evaluations)


def _fmt(v):
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def check_array(data):
    data = np.asarray(data)
    if data.ndim != 4:
        raise ValueError(f"expected a 4D array, got shape {data.shape}")
    return data
