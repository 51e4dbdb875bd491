"""The codec at the array level: ``encode`` a run to bytes, ``decode`` bytes to a run.

``encode`` chooses the voxels whose series are coded (the brain mask, less the
voxels constant over time: zero padding is not a series), codes that mask and
the mean frame (``frame``), hands the mean-removed series to the configured
series model (``models``) with the byte budget, and frames everything in one
container (``container``). ``decode`` validates the whole header (``header``),
then rebuilds the mask, the mean frame and the model's series. Neither touches
a file: ``api`` reads and writes them.
"""

import time
from dataclasses import dataclass

import numpy as np

from .. import io
from ..masking import compute_mask
from ..provenance import software_versions
from . import models
from .config import stored_config
from .container import pack, unpack
from .errors import ICAINRError
from .frame import decode_mean_frame, encode_mean_frame, mean_frame_step
from .header import header_block, image_record, round_sig, validate_header

MASK_TAG, MEAN_TAG = "MASK", "MEAN"


@dataclass
class Reconstruction:
    """What a decoder rebuilds: mean frame plus the model's series inside the mask.

    ``values()`` is the run in physical units, (X, Y, Z, T) float64, clipped to
    ``value_range`` (the input's, when the file records it).
    """

    mask: np.ndarray
    mean: np.ndarray
    approx: np.ndarray
    n_timepoints: int
    value_range: list = None

    def values(self):
        out = np.empty(self.mean.shape + (self.n_timepoints,), dtype=np.float64)
        out[...] = self.mean[..., None]
        if self.approx is not None and self.approx.size:
            out[self.mask] += self.approx
        if self.value_range is not None:
            np.clip(out, self.value_range[0], self.value_range[1], out=out)
        return out


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


def series_mask(data, affine):
    """The voxels whose series a model codes: the brain mask less the constant voxels.

    A voxel constant over time (zero padding, an ROI-only run's background)
    is exactly its mean; when the brain mask keeps fewer than 8 varying voxels,
    every varying voxel is coded.
    """
    varying = np.ptp(data, axis=-1) > 0
    mask = compute_mask(data, affine) & varying
    if mask.sum() < 8:
        mask = varying
    return mask


def encode(data, image, config, target_bytes, seed=0, device="auto", progress=False,
           measure=True, source=None):
    """Code a run into the bytes of one ``.icainr`` file.

    Parameters
    ----------
    data : ndarray (X, Y, Z, T)
        The run in physical units (float64).
    image : dict
        ``nipype_icainr.io.describe_image`` of the run: header, stored dtype,
        scaling, affine.
    config : dict
        A validated configuration (``config.resolve_config``).
    target_bytes : float
        The file's size to aim at.
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
    model = models.get(config["model"])
    dev = model.resolve_device(device)
    n_raw = raw_bytes(data.shape, image["dtype"])

    # mask and mean frame are coded first: the series model is fitted to what the decoder sees
    mask = series_mask(data, image["affine"])
    mean = data.mean(axis=-1)
    # the decoder clips to the input's range: a magnitude image stays non-negative
    value_range = [round_sig(data.min(), -1), round_sig(data.max(), 1)]
    slope = image["scl_slope"] if image["scl_slope"] is not None else 1.0
    step = round_sig(mean_frame_step(mean, image["dtype"], slope, config["mean_step"]), 1)
    mean_payload, mean_lo, mean_decoded = encode_mean_frame(
        mean, step, mask, config["background_step"], lo=round_sig(mean.min(), -1))
    series = data[mask] - mean_decoded[mask][:, None]  # (N, T)
    frame_info = {"n_voxels": int(series.shape[0]), "mean_lo": mean_lo, "mean_step": step,
                  "value_range": value_range}
    frame = {MASK_TAG: io.pack_mask(mask), MEAN_TAG: mean_payload}
    head = {"software": software_versions(extra=model.packages), "seed": seed, "device": dev,
            "config": stored_config(config), "image": image_record(image), "frame": frame_info}
    block = header_block(image)

    def build(coded):
        header = dict(head, model=dict(coded.part, name=model.name))
        return pack(header, dict(frame, **coded.sections), block)

    budget = models.Budget(target_bytes, n_raw, build, source)
    env = models.FitEnvironment(seed=seed, device=dev, progress=progress, measure=measure,
                                source=source)
    t_fit = time.perf_counter()
    coded = model.fit(series, mask, budget, config, env)
    fit_seconds = time.perf_counter() - t_fit
    return Encoded(build(coded), coded, model,
                   Reconstruction(mask, mean_decoded, coded.approx, data.shape[3], value_range),
                   fit_seconds, dev)


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
    mask = io.unpack_mask(sections[MASK_TAG], shape[:3], source)
    if int(mask.sum()) != hdr.frame["n_voxels"]:
        raise ICAINRError(source, "the mask does not match the header's voxel count")
    mean = decode_mean_frame(sections[MEAN_TAG], shape[:3], hdr.frame["mean_lo"],
                             hdr.frame["mean_step"], source)
    approx = hdr.model.decode(sections, hdr.part, mask, device, source)
    return Reconstruction(mask, mean, approx, shape[3], hdr.frame.get("value_range")), hdr
