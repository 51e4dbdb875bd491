"""The codec at the array level: ``encode`` a run to bytes, ``decode`` bytes to a run.

``encode`` codes the brain mask and the mean frame (``frame``), hands the
mean-removed series of the masked voxels to the configured series model
(``models``) with the byte budget, and frames everything in one container
(``container``). ``decode`` validates the whole header (``header``), then
rebuilds the mask, the mean frame and the model's series. Neither touches a
file: ``api`` reads and writes them.
"""

import time
from dataclasses import dataclass

import numpy as np

from .. import io
from ..masking import compute_mask
from ..provenance import software_versions
from . import models
from .container import FORMAT_VERSION, pack, unpack
from .errors import ICAINRError
from .frame import decode_mean_frame, encode_mean_frame, mean_frame_step
from .header import validate_header

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
    value_range: list = None

    def values(self):
        n_t = self.approx.shape[1]
        out = np.empty(self.mean.shape + (n_t,), dtype=np.float64)
        out[...] = self.mean[..., None]
        out[self.mask] += self.approx
        if self.value_range is not None:
            np.clip(out, self.value_range[0], self.value_range[1], out=out)
        return out


@dataclass
class Encoded:
    """``encode``'s result: the file's bytes and what it decodes to."""

    blob: bytes
    coded: models.Coded
    reconstruction: Reconstruction
    fit_seconds: float
    device: str

    @property
    def n_voxels(self):
        return int(self.reconstruction.mask.sum())


def raw_bytes(shape, dtype):
    """Bytes of the voxel array in its stored dtype over the full grid: the ratio's numerator."""
    return int(np.prod(shape)) * np.dtype(dtype).itemsize


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
    mask = compute_mask(data, image["affine"])
    mean = data.mean(axis=-1)
    # the decoder clips to the input's range: a magnitude image stays non-negative
    value_range = [float(data.min()), float(data.max())]
    slope = image["scl_slope"] if image["scl_slope"] is not None else 1.0
    step = mean_frame_step(mean, image["dtype"], slope, config["mean_step"])
    mean_payload, mean_lo, mean_decoded = encode_mean_frame(mean, step, mask,
                                                            config["background_step"])
    series = data[mask] - mean_decoded[mask][:, None]  # (N, T)
    data_info = {"n_voxels": int(series.shape[0]), "mean_lo": mean_lo, "mean_step": step,
                 "mean_layout": "axial slices side by side, (Y, Z*X)",
                 "value_range": value_range}
    frame = {MASK_TAG: io.pack_mask(mask), MEAN_TAG: mean_payload}

    def build(coded):
        header = {"format": "icainr", "format_version": FORMAT_VERSION,
                  "software": software_versions(), "seed": seed, "fit_device": dev,
                  "config": config, "arch": coded.arch, "image": image,
                  "data": dict(data_info, **coded.data), "weights": coded.manifest}
        return pack(header, dict(frame, **coded.sections))

    budget = models.Budget(target_bytes, n_raw, build, source)
    env = models.FitEnvironment(seed=seed, device=dev, progress=progress, measure=measure,
                                source=source)
    t_fit = time.perf_counter()
    coded = model.fit(series, mask, budget, config, env)
    fit_seconds = time.perf_counter() - t_fit
    return Encoded(build(coded), coded,
                   Reconstruction(mask, mean_decoded, coded.approx, value_range),
                   fit_seconds, dev)


def decode(blob, source, device="auto"):
    """Decode a whole ``.icainr`` file's bytes (untrusted: verified before decoding).

    Returns ``(Reconstruction, image description)``.
    """
    header, sections, _ = unpack(blob, source)
    return decode_parts(header, sections, source, device)


def decode_parts(header, sections, source, device="auto"):
    """``decode`` of an already unpacked container."""
    hdr = validate_header(header, sections, source)
    shape = [int(s) for s in hdr.image["shape"]]
    mask = io.unpack_mask(sections[MASK_TAG], shape[:3], source)
    if int(mask.sum()) != int(hdr.data["n_voxels"]):
        raise ICAINRError(source, "the mask does not match the header's voxel count")
    mean = decode_mean_frame(sections[MEAN_TAG], shape[:3], float(hdr.data["mean_lo"]),
                             float(hdr.data["mean_step"]), source)
    approx = hdr.model.decode(sections, header, hdr.arch, hdr.data, hdr.config, mask, device,
                              source)
    # absent before format 3
    return Reconstruction(mask, mean, approx, hdr.data.get("value_range")), hdr.image
