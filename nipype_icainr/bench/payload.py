"""Byte framing shared by the peer methods: every byte a decoder needs is counted.

A payload is ``MAGIC (4 bytes) | header length (uint32 LE) | JSON header |
sections``; the header lists each section's length, so sections are opaque byte
strings (usually zstd-compressed). The header holds what the decoder needs
(shape, scaling, knobs), is ASCII JSON without whitespace and counts toward the
compressed size like everything else.
"""

import json
import struct

import numpy as np

MAGIC = b"ICB1"


def pack(header, *sections):
    """Frame ``header`` (a JSON-able dict) and the byte ``sections`` into one payload."""
    sections = [bytes(s) for s in sections]
    head = dict(header, _sections=[len(s) for s in sections])
    text = json.dumps(head, separators=(",", ":")).encode("ascii")
    return MAGIC + struct.pack("<I", len(text)) + text + b"".join(sections)


def unpack(payload):
    """Inverse of ``pack``: ``(header, [section bytes, ...])``."""
    payload = bytes(payload)
    if payload[:4] != MAGIC:
        raise ValueError("not a benchmark payload (bad magic)")
    (n,) = struct.unpack("<I", payload[4:8])
    header = json.loads(payload[8:8 + n].decode("ascii"))
    sections, pos = [], 8 + n
    for size in header.pop("_sections"):
        sections.append(payload[pos:pos + size])
        pos += size
    if pos != len(payload):
        raise ValueError("payload length does not match its header")
    return header, sections


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
