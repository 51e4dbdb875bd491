"""Byte framing shared by the peer methods: every byte a decoder needs is counted.

A payload is ``MAGIC (4 bytes)`` then the ``.icainr`` container's own framing
(``codec.container.frame``): the JSON header deflated with the same preset
dictionary, a section count, and each section's tag and length. So every
method, the codec included, pays the same for framing. The header holds what
the decoder needs (shape, scaling, knobs); sections are opaque byte strings
(usually zstd-compressed).
"""

import json

import numpy as np

from ..codec import container

MAGIC = b"ICB2"


def pack(header, *sections):
    """Frame ``header`` (a JSON-able dict) and the byte ``sections`` into one payload."""
    text = json.dumps(header, separators=(",", ":"), allow_nan=False).encode("utf-8")
    return MAGIC + container.frame(container.deflate(text),
                                   {f"{i:04d}": bytes(s) for i, s in enumerate(sections)})


def unpack(payload):
    """Inverse of ``pack``: ``(header, [section bytes, ...])``."""
    payload = bytes(payload)
    if payload[:4] != MAGIC:
        raise ValueError("not a benchmark payload (bad magic)")
    head, sections = container.unframe(payload, 4, "payload")
    header = container.parse_json(container.inflate(head, 1 << 24, "payload"), "payload")
    return header, [sections[f"{i:04d}"] for i in range(len(sections))]


def zstd(data, level=19):
    """zstd-compress bytes (imagecodecs)."""
    import imagecodecs

    return bytes(imagecodecs.zstd_encode(bytes(data), level=level))


def unzstd(data):
    import imagecodecs

    return bytes(imagecodecs.zstd_decode(bytes(data)))


def fill_background(data, mask, how):
    """Replace the voxels outside ``mask`` before coding (the metrics never look there).

    Parameters
    ----------
    data : ndarray (X, Y, Z, T)
    mask : ndarray of bool (X, Y, Z)
    how : {'none', 'const', 'tmean'}
        ``none`` codes the whole array as it is; ``const`` sets the background
        to the in-mask minimum (flat, nearly free to code, but a step at the
        brain edge); ``tmean`` sets each background voxel to its own temporal
        mean (static in time, smooth in space).

    Returns
    -------
    ndarray of float32 (a new array; ``data`` is not modified)
    """
    out = np.asarray(data, dtype=np.float32).copy()
    if how == "none":
        return out
    bg = ~np.asarray(mask, bool)
    if not bg.any():
        return out
    if how == "const":
        out[bg] = float(np.asarray(data)[np.asarray(mask, bool)].min())
    elif how == "tmean":
        out[bg] = out[bg].mean(axis=-1, keepdims=True)
    else:
        raise ValueError(f"unknown background fill {how!r}")
    return out
