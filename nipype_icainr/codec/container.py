"""The ``.icainr`` container: reading and writing, with every length bounded.

Layout (all integers little-endian; see docs/format.md for the full specification)::

    magic          8 bytes   b"\\x89ICAINR\\n"
    version        uint16    FORMAT_VERSION
    flags          uint16    0
    header_length  uint32    <= MAX_HEADER_BYTES
    header         header_length bytes of UTF-8 JSON (an object)
    header_crc     uint32    CRC-32 of the header bytes
    n_sections     uint32    <= MAX_SECTIONS
    then n_sections times:
      tag          4 bytes   ASCII, e.g. b"MASK", b"MEAN", b"WGHT"
      length       uint64    <= bytes left in the file
      crc          uint32    CRC-32 of the payload
      payload      length bytes
    nothing after the last section

A file is parsed completely and every checksum verified before anything is
decoded; the JSON header is parsed with ``json.loads`` (no code is ever
executed from a file).
"""

import json
import os
import struct
import zlib

from .errors import ICAINRError

MAGIC = b"\x89ICAINR\n"
FORMAT_VERSION = 3  # 2: the FACT section (factor model); 3: its patterns DCT-coded
#: versions this decoder reads
READABLE_VERSIONS = (1, 2, 3)
MAX_HEADER_BYTES = 1 << 20
MAX_SECTIONS = 64
MAX_FILE_BYTES = 1 << 34

_PREAMBLE = struct.Struct("<8sHHI")
_U32 = struct.Struct("<I")
_SECTION = struct.Struct("<4sQI")


def pack(header, sections):
    """Serialise ``header`` (a JSON-able dict) and ``sections`` ({tag: bytes}) to bytes."""
    head = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    if len(head) > MAX_HEADER_BYTES:
        raise ValueError("header too large")
    parts = [_PREAMBLE.pack(MAGIC, FORMAT_VERSION, 0, len(head)), head,
             _U32.pack(zlib.crc32(head)), _U32.pack(len(sections))]
    for tag, payload in sections.items():
        tag_bytes = tag.encode("ascii")
        if len(tag_bytes) != 4:
            raise ValueError(f"section tag {tag!r} must be 4 ASCII characters")
        parts.append(_SECTION.pack(tag_bytes, len(payload), zlib.crc32(payload)))
        parts.append(bytes(payload))
    return b"".join(parts)


def unpack(blob, source):
    """Parse and verify a whole container; returns ``(header dict, {tag: bytes}, version)``."""
    start = bytes(blob[:len(MAGIC)])
    if start != MAGIC[:len(start)]:
        raise ICAINRError(source, "not an .icainr file (wrong magic bytes)")
    if len(blob) < _PREAMBLE.size:
        raise ICAINRError(source, "truncated .icainr file (shorter than its preamble)")
    _, version, _flags, head_len = _PREAMBLE.unpack_from(blob, 0)
    if version not in READABLE_VERSIONS:
        raise ICAINRError(source, f"format version {version} is not supported by this decoder "
                                  f"(it reads versions {', '.join(map(str, READABLE_VERSIONS))})")
    if head_len > MAX_HEADER_BYTES:
        raise ICAINRError(source, f"header length {head_len} exceeds the limit")
    pos = _PREAMBLE.size
    need = pos + head_len + 2 * _U32.size
    if len(blob) < need:
        raise ICAINRError(source, "truncated .icainr file (header incomplete)")
    head = bytes(blob[pos:pos + head_len])
    pos += head_len
    (crc,) = _U32.unpack_from(blob, pos)
    pos += _U32.size
    if zlib.crc32(head) != crc:
        raise ICAINRError(source, "header checksum mismatch (the file is corrupted)")
    try:
        header = json.loads(head.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ICAINRError(source, "the header is not valid JSON") from None
    if not isinstance(header, dict):
        raise ICAINRError(source, "the header is not a JSON object")
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
    return header, sections, version


def read_file(path):
    """Read and verify a container from disk (size bounded before reading)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ICAINRError(path, "no such file")
    size = os.path.getsize(path)
    if size > MAX_FILE_BYTES:
        raise ICAINRError(path, f"{size} bytes is larger than any .icainr file this decoder reads")
    with open(path, "rb") as fh:
        blob = fh.read()
    return unpack(blob, path)
