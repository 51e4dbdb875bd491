"""Hostile ``.icainr`` files: forged with valid checksums, so that only validation can refuse them.

Each generator yields ``(name, bytes)``. The classes follow what an attacker or
an unlucky disk would produce: every header field replaced by values of the
wrong type, out of range or absurdly large; raw JSON tricks (deep nesting,
non-standard constants, duplicate keys, invalid UTF-8); sections missing,
renamed, duplicated, truncated, emptied or filled with noise; NIfTI header
blocks with absurd dimensions, types, scaling or geometry; preamble versions and
flags that contradict the body; and decompression bombs (small files that
describe huge images, huge models or huge mean-frame images).
"""

import json
import struct
import zlib

import numpy as np

from nipype_icainr.codec import container

#: replacement values for a header field, each with a short name
VALUES = [("null", None), ("string", "abc"), ("list", [1, 2, 3]), ("dict", {"a": 1}),
          ("neg", -1), ("zero", 0), ("huge_int", 2 ** 63), ("huger_int", 2 ** 200),
          ("huge_float", 1e308), ("tiny", 5e-324), ("true", True), ("float", 0.5),
          ("long_string", "x" * 100000)]
#: raw JSON values that ``json.dumps`` would never write
RAW_VALUES = [("Infinity", "Infinity"), ("NaN", "NaN"), ("minus_Infinity", "-Infinity"),
              ("1e999", "1e999"), ("deep", "[" * 1000 + "]" * 1000),
              ("deeper", "{\"a\":" * 5000 + "1" + "}" * 5000)]


def pack_raw(text, sections, block, version=container.FORMAT_VERSION, flags=0):
    """A format 4 file from raw JSON ``text`` (bytes), with a valid checksum."""
    head = container.deflate(text + b"\n" + bytes(block))
    body = struct.pack("<8sHH", container.MAGIC, version, flags) + \
        container.frame(head, sections)
    return body + struct.pack("<I", zlib.crc32(body))


def pack_v3(header, sections, version=3, flags=0):
    """A format 1-3 file (JSON header, CRC per section), as earlier versions wrote."""
    head = json.dumps(header).encode()
    out = [struct.pack("<8sHHI", container.MAGIC, version, flags, len(head)), head,
           struct.pack("<I", zlib.crc32(head)), struct.pack("<I", len(sections))]
    for tag, payload in sections.items():
        out += [struct.pack("<4sQI", tag.encode(), len(payload), zlib.crc32(payload)), payload]
    return b"".join(out)


def paths(node, prefix=()):
    """Every key path of a JSON tree (dicts and lists), leaves and inner nodes."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield prefix + (key,)
            yield from paths(value, prefix + (key,))
    elif isinstance(node, list):  # the first and the last item stand for the others
        for i in sorted({0, len(node) - 1}) if node else ():
            yield prefix + (i,)
            yield from paths(node[i], prefix + (i,))


def replaced(tree, path, value, delete=False):
    """A deep copy of ``tree`` with ``path`` set to ``value`` (or removed)."""
    tree = json.loads(json.dumps(tree))
    node = tree
    for key in path[:-1]:
        node = node[key]
    if delete:
        if isinstance(node, dict):
            del node[path[-1]]
        else:
            node.pop(path[-1])
    else:
        node[path[-1]] = value
    return tree


def header_cases(header, sections, block):
    """Every header field: deleted, and replaced by each of ``VALUES`` and ``RAW_VALUES``."""
    marker = "\u0000MARK\u0000"
    for path in paths(header):
        if path[0] in ("software", "config") and len(path) > 1:
            continue  # free-form version strings and settings: the node itself is enough
        name = "/".join(map(str, path))
        yield f"{name}:deleted", container.pack(replaced(header, path, None, True), sections,
                                                block)
        for label, value in VALUES:
            yield f"{name}:{label}", container.pack(replaced(header, path, value), sections,
                                                    block)
        text = json.dumps(replaced(header, path, marker), sort_keys=True)
        for label, raw in RAW_VALUES:
            yield f"{name}:{label}", pack_raw(text.replace(json.dumps(marker), raw).encode(),
                                              sections, block)


def json_cases(header, sections, block):
    """The header's JSON text itself malformed."""
    text = json.dumps(header, sort_keys=True).encode()
    yield "json:deep_list", pack_raw(b"[" * 100000 + b"]" * 100000, sections, block)
    yield "json:deep_object", pack_raw(b'{"a":' * 100000 + b"1" + b"}" * 100000, sections,
                                       block)
    yield "json:top_level_list", pack_raw(b"[" + text + b"]", sections, block)
    yield "json:top_level_string", pack_raw(b'"abc"', sections, block)
    yield "json:invalid_utf8", pack_raw(text[:-1] + b',"\xff\xfe":1}', sections, block)
    yield "json:truncated", pack_raw(text[:len(text) // 2], sections, block)
    yield "json:duplicate_keys", pack_raw(text[:-1] + b',"model":{"name":"factor"}}',
                                          sections, block)
    yield "json:empty", pack_raw(b"", sections, block)
    yield "json:no_block", container.pack(header, sections, b"")
    yield "json:short_block", container.pack(header, sections, block[:100])


def section_cases(header, sections, block):
    """Sections missing, renamed, duplicated by a near name, truncated, empty or noise."""
    rng = np.random.default_rng(0)
    for tag, payload in sections.items():
        rest = {t: p for t, p in sections.items() if t != tag}
        yield f"{tag}:missing", container.pack(header, rest, block)
        yield f"{tag}:renamed", container.pack(header, dict(rest, **{tag[::-1]: payload}),
                                               block)
        yield f"{tag}:empty", container.pack(header, dict(sections, **{tag: b""}), block)
        for frac in (0.01, 0.5, 0.99):
            cut = payload[:int(len(payload) * frac)]
            yield f"{tag}:truncated{frac}", container.pack(header, dict(sections, **{tag: cut}),
                                                           block)
        noise = rng.integers(0, 256, max(len(payload), 64), dtype=np.uint8).tobytes()
        yield f"{tag}:noise", container.pack(header, dict(sections, **{tag: noise}), block)
        flipped = bytearray(payload or b"\x00")
        for pos in (0, len(flipped) // 2, len(flipped) - 1):
            f = bytearray(flipped)
            f[pos] ^= 0xFF
            yield f"{tag}:flip{pos}", container.pack(header, dict(sections, **{tag: bytes(f)}),
                                                     block)
    yield "sections:none", container.pack(header, {}, block)
    yield "sections:extra64", container.pack(
        header, dict(sections, **{f"X{i:03d}": b"" for i in range(64 - len(sections))}),
        block)


def _block_with(block, **fields):
    import nibabel as nib

    hdr = nib.Nifti1Header.from_fileobj(__import__("io").BytesIO(bytes(block)), check=False)
    for key, value in fields.items():
        hdr[key] = value
    return hdr.binaryblock


def nifti_cases(header, sections, block):
    """The NIfTI header block: absurd shapes, types, scaling and geometry."""
    dim = [4, 10, 10, 10, 20, 1, 1, 1]
    cases = {
        "dim:huge": {"dim": [4, 4096, 4096, 4096, 100000, 1, 1, 1]},
        "dim:2^31": {"dim": [4, 2048, 2048, 512, 1, 1, 1, 1]},
        "dim:zero": {"dim": [4, 0, 10, 10, 20, 1, 1, 1]},
        "dim:negative": {"dim": [4, -5, 10, 10, 20, 1, 1, 1]},
        "dim:seven": {"dim": [7, 10, 10, 10, 20, 2, 3, 4]},
        "dim:three": {"dim": [3, 10, 10, 10, 1, 1, 1, 1]},
        "datatype:float128": {"datatype": 1536, "bitpix": 128},
        "datatype:complex": {"datatype": 32, "bitpix": 64},
        "datatype:rgb": {"datatype": 128, "bitpix": 24},
        "datatype:bogus": {"datatype": 9999},
        "scl_slope:zero": {"scl_slope": 0.0, "scl_inter": 1.0},
        "scl_slope:nan": {"scl_slope": np.nan, "scl_inter": 1.0},
        "scl_slope:inf": {"scl_slope": np.inf, "scl_inter": 0.0},
        "scl_inter:inf": {"scl_slope": 1.0, "scl_inter": -np.inf},
        "pixdim:nan": {"pixdim": [1, np.nan, 1, 1, 2, 1, 1, 1]},
        "pixdim:inf": {"pixdim": [1, 1, np.inf, 1, 2, 1, 1, 1]},
        "srow:nan": {"srow_x": [np.nan, 0, 0, 0], "sform_code": 1},
        "qoffset:inf": {"qoffset_x": np.inf, "qform_code": 1},
        "sizeof_hdr:wrong": {"sizeof_hdr": 1234},
        "vox_offset:huge": {"vox_offset": 1e30},
        "magic:bad": {"magic": b"xyz"},
    }
    del dim
    for name, fields in cases.items():
        try:
            forged = _block_with(block, **fields)
        except Exception:  # nibabel refuses to even set the field: nothing to forge
            continue
        yield f"nifti:{name}", container.pack(header, sections, forged)
    yield "nifti:garbage", container.pack(header, sections, bytes(range(256)) + bytes(92))


def preamble_cases(blob):
    """Preamble version and flags that contradict the body (checksum recomputed)."""
    def with_preamble(version, flags):
        body = bytearray(blob[:-4])
        struct.pack_into("<HH", body, 8, version, flags)
        return bytes(body) + struct.pack("<I", zlib.crc32(bytes(body)))
    # 7 and 8: a NaN section in a format 7 file, or a format 8 file without one
    for version in (0, 1, 2, 3, 5, 7, 8, 65535):
        yield f"preamble:version{version}", with_preamble(version, 0)
    for flags in (1, 0x8000):
        yield f"preamble:flags{flags}", with_preamble(container.FORMAT_VERSION, flags)


def bomb_cases(header, sections, block):
    """Small files that describe huge work: images, mean frames, models."""
    import imagecodecs

    big = replaced(header, ("image", "shape"), [1024, 1024, 1024, 1000])
    yield "bomb:shape", container.pack(big, sections, block)
    shape = header.get("image", {}).get("shape")
    if "MEAN" in sections:
        jxl = imagecodecs.jpegxl_encode(np.zeros((4096, 8192), np.uint16), lossless=True,
                                        effort=1)
        yield "bomb:mean_gigapixel", container.pack(header, dict(sections, MEAN=bytes(jxl)),
                                                    block)
        frames = imagecodecs.jpegxl_encode(np.zeros((64, 64, 64), np.uint16), lossless=True,
                                           effort=1)
        yield "bomb:mean_frames", container.pack(header, dict(sections, MEAN=bytes(frames)),
                                                 block)
    if "MASK" in sections:
        import nibabel as nib

        hdr = nib.Nifti1Header.from_fileobj(__import__("io").BytesIO(bytes(block)), check=False)
        dims = [int(d) for d in hdr.get_data_shape()[:3]]
        full = np.ones(int(np.prod(dims)), bool)
        mask = bytes(imagecodecs.zstd_encode(np.packbits(full).tobytes(), level=19))
        yield "bomb:mask_all", container.pack(header, dict(sections, MASK=mask), block)
        huge = bytes(imagecodecs.zstd_encode(bytes(1 << 26), level=19))
        yield "bomb:mask_long", container.pack(header, dict(sections, MASK=huge), block)
    model = header.get("model", {})
    if model.get("name") == "factor":
        yield "bomb:factor_k", container.pack(
            replaced(header, ("model", "n_components"), 256), sections, block)
        payload = sections.get("FACT", b"")
        claim = struct.pack("<I", 256) + payload[4:]
        yield "bomb:factor_claim", container.pack(header, dict(sections, FACT=claim), block)
    if model.get("name") == "network":
        for key, top in (("mlp_width", 2048), ("mlp_layers", 10), ("fusion_channels", 256),
                         ("n_components", 64), ("pattern_channels", 64)):
            yield f"bomb:network_{key}", container.pack(replaced(header, ("model", key), top),
                                                        sections, block)
    if model.get("name") == "lossless" and shape is None:
        yield "bomb:lossless_shape", container.pack(
            replaced(header, ("image", "shape"), [512, 512, 512, 100]), sections, block)


def all_cases(blob):
    """Every structured case for one valid file's bytes."""
    header, sections, block, version = container.unpack(blob, "base")
    yield from header_cases(header, sections, block)
    yield from json_cases(header, sections, block)
    yield from section_cases(header, sections, block)
    yield from nifti_cases(header, sections, block)
    yield from preamble_cases(blob)
    yield from bomb_cases(header, sections, block)


def legacy_cases(blob):
    """A format 1-3 file's own JSON header forged field by field (CRCs recomputed)."""
    from nipype_icainr.codec.legacy import _PREAMBLE, unpack_v3

    _, version, _, head_len = _PREAMBLE.unpack_from(blob, 0)
    header = json.loads(blob[_PREAMBLE.size:_PREAMBLE.size + head_len])
    _, sections, _, _ = unpack_v3(blob, "base", version)
    for path in paths(header):
        if path[0] in ("software", "config") and len(path) > 1:
            continue
        name = "v%d:%s" % (version, "/".join(map(str, path)))
        yield f"{name}:deleted", pack_v3(replaced(header, path, None, True), sections, version)
        for label, value in VALUES:
            yield f"{name}:{label}", pack_v3(replaced(header, path, value), sections, version)
    yield f"v{version}:flags", pack_v3(header, sections, version, flags=1)
    yield f"v{version}:version_mismatch", pack_v3(header, sections, 2 if version == 3 else 3)
