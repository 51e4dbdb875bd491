"""``ICAINRCompress`` and ``ICAINRDecompress``: thin wraps of ``nipype_icainr.codec.api``."""

import os

from nipype.interfaces.base import (BaseInterfaceInputSpec, File, SimpleInterface, TraitedSpec,
                                    isdefined, traits)


def _stem(path):
    name = os.path.basename(path)
    for ext in (".nii.gz", ".nii", ".icainr"):
        if name.endswith(ext):
            return name[: -len(ext)]
    return os.path.splitext(name)[0]


class _CompressInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="4D NIfTI to compress")
    ratio = traits.Float(desc="target compression ratio (raw array bytes in the stored "
                              "dtype / file bytes); the preset's (100) when no target is set",
                         xor=["lossless", "max_error", "psnr"])
    lossless = traits.Bool(desc="the stored array exactly (integers, and float bit patterns)",
                           xor=["ratio", "max_error", "psnr"])
    max_error = traits.Either(traits.Float, traits.Str,
                              desc="every value within this many physical units, or "
                                   "'<x>u' stored units (e.g. '0.5u')",
                              xor=["ratio", "lossless", "psnr"])
    psnr = traits.Float(desc="the smallest file whose masked PSNR is at least this (dB)",
                        xor=["ratio", "lossless", "max_error"])
    preset = traits.Str("default", usedefault=True,
                        desc="bundled preset: default, decoding, network or paper")
    config_file = File(exists=True, desc="YAML configuration (overrides preset)")
    device = traits.Enum("auto", "cpu", "cuda", usedefault=True, desc="torch device")
    seed = traits.Int(0, usedefault=True, desc="random seed")
    use_gpu = traits.Bool(False, usedefault=True,
                          desc="mirror of the node's use_gpu flag, so that MultiProc's "
                               "n_gpu_procs schedules it as a GPU node")
    codec_signature = traits.Str(desc="codec version + preset contents (set automatically): "
                                      "part of Nipype's cache key, so a new codec reruns")


def codec_signature(preset):
    """A digest of the codec version and the preset's contents."""
    import hashlib

    from .. import __version__
    from ..codec.config import load_preset

    try:
        text = repr(sorted(load_preset(preset).items()))
    except Exception:  # an unknown preset fails later, with its own message
        text = preset
    return hashlib.sha256(f"{__version__}|{text}".encode()).hexdigest()[:16]


class _CompressOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="the .icainr file")
    ratio = traits.Float(desc="achieved ratio against the raw array")
    ratio_disk = traits.Float(desc="achieved ratio against the input file on disk")
    psnr = traits.Float(desc="PSNR in dB over the brain mask (nipype_icainr.metrics.psnr)")
    fit_seconds = traits.Float(desc="seconds fitting and coding the series model")
    total_seconds = traits.Float(desc="seconds for the whole compression")
    device = traits.Str(desc="device the series model was fitted on")
    mode = traits.Str(desc="'lossy', 'lossless' or 'error-bounded'")
    bound = traits.Float(desc="guaranteed maximum absolute error (physical units; 0 for "
                              "lossless; undefined for lossy files)")


class ICAINRCompress(SimpleInterface):
    """Compress a 4D NIfTI into ``<stem>.icainr`` under the node's working directory.

    >>> from nipype_icainr.interfaces import ICAINRCompress
    >>> ICAINRCompress(ratio=50).inputs.ratio
    50.0
    """

    input_spec = _CompressInputSpec
    output_spec = _CompressOutputSpec

    def __init__(self, **inputs):
        super().__init__(**inputs)
        if not isdefined(self.inputs.codec_signature):
            self.inputs.codec_signature = codec_signature(self.inputs.preset)
        self.inputs.on_trait_change(self._update_signature, "preset")

    def _update_signature(self):
        self.inputs.codec_signature = codec_signature(self.inputs.preset)

    def _run_interface(self, runtime):
        from ..codec.api import compress

        out = os.path.join(runtime.cwd, _stem(self.inputs.in_file) + ".icainr")
        config = self.inputs.config_file if isdefined(self.inputs.config_file) else None
        def given(name):
            value = getattr(self.inputs, name)
            return value if isdefined(value) else None

        res = compress(self.inputs.in_file, out, ratio=given("ratio"),
                       lossless=bool(given("lossless")), max_error=given("max_error"),
                       psnr=given("psnr"), preset=self.inputs.preset, config=config,
                       device=self.inputs.device, seed=self.inputs.seed, force=True,
                       progress=False, measure=True)
        self._results.update(out_file=out, ratio=res["ratio"], ratio_disk=res["ratio_disk"],
                             fit_seconds=res["fit_seconds"],
                             total_seconds=res["total_seconds"], device=res["device"],
                             mode=res["mode"])
        if res["psnr"] is not None:  # None: a bit-for-bit file of a run with NaN or Inf
            self._results["psnr"] = res["psnr"]
        if res.get("bound") is not None:
            self._results["bound"] = float(res["bound"])
        return runtime


class _DecompressInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="an .icainr file")
    device = traits.Enum("auto", "cpu", "cuda", usedefault=True, desc="torch device")


class _DecompressOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="the decompressed NIfTI (.nii.gz)")
    seconds = traits.Float(desc="seconds to decompress")


class ICAINRDecompress(SimpleInterface):
    """Rebuild ``<stem>_decompressed.nii.gz`` from an ``.icainr`` file."""

    input_spec = _DecompressInputSpec
    output_spec = _DecompressOutputSpec

    def _run_interface(self, runtime):
        from ..codec.api import decompress

        out = os.path.join(runtime.cwd, _stem(self.inputs.in_file) + "_decompressed.nii.gz")
        res = decompress(self.inputs.in_file, out, device=self.inputs.device, force=True)
        self._results.update(out_file=out, seconds=res["seconds"])
        return runtime
