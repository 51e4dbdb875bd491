"""The binary stream header: its layout, packing, parsing and validation.

A stream is the header (``_HEAD``) followed by ``NSEC`` sections: the mask of
constant voxels, their values, the noise-index and mean residuals, the
low-rank components, the predictor weights (all zstd side sections), the
per-bucket Laplace scales (float32) and the rANS words (uint32).
"""

import struct

from ...errors import ICAINRError
from .params import F16, K_MAX, MAX_ERROR, MAX_RANGE, NBUCKET, QV_MAX, QV_MIN
from .side import _SIDE_DTYPES

MAGIC = b"ICP\x01"
# magic, shape (4), CRC-32 of the decoded array, lo, range, E (error bound), F, phases, K, number of class edges, 3 edges, k0, k1,
# 5 side dtype codes, 8 section lengths
_HEAD = struct.Struct("<4s4IIqqIBBBB3bBB5B8I")
NSEC = 8


def pack_header(shape, crc, lo, R, E, F, nph, K, edges, k0, k1, side, lens):
    """The binary header of a stream (``parse_header`` reads it back).

    Parameters
    ----------
    shape : tuple of 4 ints
        (X, Y, Z, T).
    crc : int
        CRC-32 of the array the decoder must give back.
    lo, R : int
        Smallest value and value range (hi - lo).
    E : int
        Error bound.
    F : int
        Fixed-point precision of the per-voxel mean.
    nph, K : int
        Phase count and low-rank component count.
    edges : list of int
        Up to 3 class edges (quartiles of the noise index).
    k0, k1 : int
        Range of the buckets used.
    side : sequence of 5 ints
        Dtype codes of the side sections.
    lens : sequence of 8 ints
        Section lengths in bytes.

    Returns
    -------
    bytes
    """
    edges3 = (list(edges) + [0, 0, 0])[:3]
    return _HEAD.pack(MAGIC, *shape, crc, lo, R, E, F, nph, K, len(edges), *edges3, k0, k1,
                      *side, *lens)


def parse_header(payload, shape, source):
    """Check a stream's header against ``shape`` before anything is allocated.

    Returns
    -------
    (dict, list of memoryview)
        The header fields and the 8 sections.
    """
    if len(shape) != 4 or any(int(s) < 1 for s in shape):
        raise ICAINRError(source, "the predictive stream needs a 4-D shape")
    mv = memoryview(payload)
    if len(mv) < _HEAD.size:
        raise ICAINRError(source, "the predictive stream is truncated")
    f = _HEAD.unpack_from(mv, 0)
    magic, sh, crc = f[0], f[1:5], f[5]
    lo, R, E, F, nph, K, ne = f[6:13]
    edges = list(f[13:16])[:ne] if ne <= 3 else None
    k0, k1 = f[16], f[17]
    side = f[18:23]
    lens = f[23:31]
    X, Y, Z, T = (int(s) for s in shape)
    if magic != MAGIC:
        raise ICAINRError(source, "not a predictive stream (bad magic)")
    if tuple(sh) != (X, Y, Z, T):
        raise ICAINRError(source, "the predictive stream codes another shape")
    if not (0 <= R < MAX_RANGE) or lo + R > (1 << 63) - 1:
        raise ICAINRError(source, "the predictive value range is invalid")
    if E > MAX_ERROR:
        raise ICAINRError(source, "the predictive error bound is invalid")
    if F != (F16 if R < (1 << 20) else 1):
        raise ICAINRError(source, "the predictive mean precision is invalid")
    if nph not in (2, 4):
        raise ICAINRError(source, "the predictive phase count is invalid")
    if K > min(K_MAX, T // 4):
        raise ICAINRError(source, "the predictive component count is invalid")
    if edges is None or edges != sorted(set(edges)) or \
            any(not QV_MIN <= e <= QV_MAX for e in edges):
        raise ICAINRError(source, "the predictive class edges are invalid")
    if any(c >= len(_SIDE_DTYPES) for c in side):
        raise ICAINRError(source, "the predictive side dtype is invalid")
    if not (k0 <= k1 <= NBUCKET):
        raise ICAINRError(source, "the predictive bucket range is invalid")
    if lens[6] != 4 * (k1 - k0) or lens[7] % 4:
        raise ICAINRError(source, "the predictive section sizes are inconsistent")
    if _HEAD.size + sum(lens) != len(mv):
        raise ICAINRError(source, "the predictive stream length does not match its header")
    # every zstd section is later decoded into a buffer of the size the shape allows
    secs, p = [], _HEAD.size
    for n in lens:
        secs.append(mv[p:p + n])
        p += n
    head = dict(crc=crc, lo=lo, R=R, E=E, F=F, nph=nph, K=K, edges=edges, k0=k0, k1=k1, side=side,
                shape=(X, Y, Z, T))
    return head, secs


def validate_stream(payload, shape, source):
    """Header check only (``parse_header``); raises ``ICAINRError``."""
    parse_header(payload, shape, source)
