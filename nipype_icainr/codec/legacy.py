"""Reading older files: the framing of formats 1 to 3, and their headers (and format
4's) in the current format's terms.

Formats 1-3 stored a JSON header (with the NIfTI header block in base64 and
derived fields beside it, the full configuration, the model's settings split
between ``arch``, ``data`` and ``weights``) and a CRC-32 per section::

    magic 8 | version uint16 | flags uint16 | header_length uint32 | JSON header |
    header_crc uint32 | n_sections uint32 | (tag 4, length uint64, crc uint32, payload)*
"""

import base64
import struct
import zlib

from . import models
from .errors import ICAINRError

MAX_HEADER_BYTES = 1 << 20
MAX_SECTIONS = 64
_PREAMBLE = struct.Struct("<8sHHI")
_U32 = struct.Struct("<I")
_SECTION = struct.Struct("<4sQI")


def unpack_v3(blob, source, version):
    """Parse and verify a format 1-3 container; returns format 4's
    ``(header, sections, nifti block, version)``."""
    from .container import parse_json

    if len(blob) < _PREAMBLE.size:
        raise ICAINRError(source, "truncated .icainr file (shorter than its preamble)")
    _, _, flags, head_len = _PREAMBLE.unpack_from(blob, 0)
    if flags != 0:
        raise ICAINRError(source, f"unknown flags {flags:#06x} in the preamble")
    if head_len > MAX_HEADER_BYTES:
        raise ICAINRError(source, f"header length {head_len} exceeds the limit")
    pos = _PREAMBLE.size
    if len(blob) < pos + head_len + 2 * _U32.size:
        raise ICAINRError(source, "truncated .icainr file (header incomplete)")
    head = bytes(blob[pos:pos + head_len])
    pos += head_len
    (crc,) = _U32.unpack_from(blob, pos)
    pos += _U32.size
    if zlib.crc32(head) != crc:
        raise ICAINRError(source, "header checksum mismatch (the file is corrupted)")
    header = parse_json(head, source)
    if header.get("format_version", version) != version:
        raise ICAINRError(source, f"the header says format {str(header.get('format_version'))[:8]}"
                                  f" but the preamble says {version}")
    (n_sections,) = _U32.unpack_from(blob, pos)
    pos += _U32.size
    if n_sections > MAX_SECTIONS:
        raise ICAINRError(source, f"{n_sections} sections exceed the limit of {MAX_SECTIONS}")
    sections = {}
    for _ in range(n_sections):
        if len(blob) - pos < _SECTION.size:
            raise ICAINRError(source, "truncated .icainr file (section table incomplete)")
        tag, length, crc = _SECTION.unpack_from(blob, pos)
        pos += _SECTION.size
        try:
            tag = tag.decode("ascii")
        except UnicodeDecodeError:
            raise ICAINRError(source, "a section tag is not ASCII (the file is corrupted)") from None
        if length > len(blob) - pos:
            raise ICAINRError(source, f"truncated .icainr file (section {tag} incomplete)")
        payload = bytes(blob[pos:pos + length])
        pos += length
        if zlib.crc32(payload) != crc:
            raise ICAINRError(source, f"checksum mismatch in section {tag} (the file is corrupted)")
        if tag in sections:
            raise ICAINRError(source, f"section {tag} appears twice")
        sections[tag] = payload
    if pos != len(blob):
        raise ICAINRError(source, f"{len(blob) - pos} unexpected bytes after the last section")
    upgraded, block = upgrade(header, source)
    return upgraded, sections, block, version


def from_format(header, version, source):
    """A format 1-6 header (format 1-3 ones already ``upgrade``d) in the current
    format's terms: its model's ``SeriesModel.from_format``."""
    part = header.get("model") if isinstance(header, dict) else None
    if not isinstance(part, dict):
        return header  # the header's validation names what is wrong
    try:
        model = models.for_part(part, source)
    except ICAINRError:
        return header  # idem
    return dict(header, model=model.from_format(part, version))


def upgrade(header, source):
    """A format 1-3 header in format 4's terms: ``(header, NIfTI header block)``."""
    try:
        desc, arch, data = header["image"], dict(header["arch"]), header["data"]
        block = base64.b64decode(desc["header_b64"], validate=True)
        # formats 1-3 stored these beside the block; format 4 reads the block unless told
        image = {k: desc[k] for k in ("shape", "dtype", "source_name", "source_bytes",
                                      "scl_slope", "scl_inter")}
        image["endianness"] = desc.get("endianness", "<")
        frame = {k: data[k] for k in ("n_voxels", "mean_lo", "mean_step")}
        if "value_range" in data:  # absent before format 3
            frame["value_range"] = data["value_range"]
        name = arch.pop("model", models.UNNAMED_MODEL)
        model = dict(models.for_part({"name": name}, source).from_legacy(arch, data, header),
                     name=name)
        config = header["config"]
    except ICAINRError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ICAINRError(source, f"the header is incomplete or malformed ({exc!s:.60})") from None
    return {"software": header.get("software"), "seed": header.get("seed"),
            "device": header.get("fit_device"), "config": config, "image": image,
            "frame": frame, "model": model}, block
