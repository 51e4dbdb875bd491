"""Files in and out, shared by the codec, the benchmark, the interfaces and the BIDS App.

* Atomic writes: every output appears complete or not at all (a temporary file
  in the target folder, fsynced, then renamed over the target).
* NIfTI: reading a 4D run with its stored dtype and scaling, describing its
  header so that it can be restored exactly, writing values back through the
  original header, dtype and ``scl_slope``/``scl_inter``.
* Stored values: physical values <-> the integers (or floats) a NIfTI stores.
* Masks: bit-packed, zstd-compressed boolean volumes.
"""

import base64
import gzip
import io as _io
import json
import os
import tempfile

import numpy as np

from .codec.errors import ICAINRError

# --- atomic writes ---------------------------------------------------------------------


def write_atomic(path, data):
    """Write bytes to ``path`` through a temporary file in the same folder.

    The file appears complete or not at all: the temporary file is fsynced and
    renamed over ``path``; on any error it is removed.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix="-" + os.path.basename(path), dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return os.path.abspath(path)


def write_text_atomic(path, text):
    """``write_atomic`` of UTF-8 text, creating the folder first; returns the absolute path."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    return write_atomic(path, text.encode("utf-8"))


def write_json_atomic(path, payload):
    """``payload`` as indented, key-sorted JSON (numpy scalars as floats)."""
    return write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=True,
                                              default=float) + "\n")


def copy_atomic(src, dst):
    """Copy the file ``src`` to ``dst`` atomically, creating the folder first."""
    os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
    with open(src, "rb") as fh:
        return write_atomic(dst, fh.read())


def check_output_path(path, force):
    """Refuse to overwrite without ``force`` and check the folder is writable."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ICAINRError(path, "is a directory, expected a file path")
    if os.path.lexists(path) and not force:
        raise ICAINRError(path, "already exists; use --force to overwrite")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ICAINRError(path, "the output folder does not exist")
    if not os.access(folder, os.W_OK):
        raise ICAINRError(path, "the output folder is not writable")


# --- stored values ---------------------------------------------------------------------


def file_scaling(img):
    """``(slope, inter)`` as nibabel applies them when reading; ``(None, None)`` if unscaled."""
    slope = getattr(img.dataobj, "slope", None)  # an ArrayProxy knows the file's scaling
    inter = getattr(img.dataobj, "inter", None)
    if slope is None:
        return header_scaling(img.header)
    return _scaling(slope, inter)


def header_scaling(header):
    """``(slope, inter)`` of a NIfTI header as nibabel reads it; ``(None, None)`` if unscaled."""
    return _scaling(*header.get_slope_inter())


def _scaling(slope, inter):
    slope = 1.0 if slope is None or not np.isfinite(slope) else float(slope)
    inter = 0.0 if inter is None or not np.isfinite(inter) else float(inter)
    if slope == 1.0 and inter == 0.0:
        return None, None
    return slope, inter


def to_stored_values(values, dtype, slope, inter):
    """Physical values -> the stored dtype (rounded and clipped for integer types)."""
    dtype = np.dtype(dtype)
    if slope is None:
        raw = np.array(values, dtype=np.float64)
    else:  # one temporary, then in place: these arrays are hundreds of MB
        raw = np.subtract(values, inter, dtype=np.float64)
        raw /= slope
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        np.rint(raw, out=raw)
        np.clip(raw, info.min, info.max, out=raw)
    return raw.astype(dtype)


def from_stored_values(stored, slope, inter):
    """Stored values -> float64 physical values, with the formula nibabel reads them with."""
    out = np.asarray(stored).astype(np.float64)
    if slope is not None:
        out = out * np.float64(slope) + np.float64(inter)
    return out


def as_written(values, dtype, slope, inter):
    """``values`` put on the stored grid: what a NIfTI of them holds, in physical units."""
    return from_stored_values(to_stored_values(values, dtype, slope, inter), slope, inter)


# --- NIfTI -----------------------------------------------------------------------------

#: smallest number of volumes the codec accepts
MIN_TIMEPOINTS = 2


def load_bold(path):
    """Read a 4D NIfTI with nibabel and check it.

    Parameters
    ----------
    path : str or os.PathLike
        A NIfTI-1 or NIfTI-2 file (``.nii`` or ``.nii.gz``).

    Returns
    -------
    img : nibabel image
        The image (its header is kept whole).
    data : ndarray of float64, shape (X, Y, Z, T)
        Values in physical units (``scl_slope``/``scl_inter`` applied). Trailing
        dimensions of length 1 (X, Y, Z, T, 1, ...) are dropped here and
        restored on writing (``describe_image`` records them).

    Raises
    ------
    ICAINRError
        Not a file, not NIfTI, not 4D, too few volumes, or NaN/Inf values.
    """
    import nibabel as nib

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ICAINRError(path, "no such file")
    try:
        img = nib.load(path)
    except Exception as exc:  # nibabel raises several types for non-images
        raise ICAINRError(path, f"not a readable NIfTI image ({first_line(exc)})") from None
    if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)):
        raise ICAINRError(path, f"not a NIfTI image (nibabel read it as {type(img).__name__})")
    shape = img.shape
    if len(shape) > 4 and all(s == 1 for s in shape[4:]):
        shape = shape[:4]
    if len(shape) != 4:
        raise ICAINRError(path, f"expected a 4D image (x, y, z, t), got shape {tuple(img.shape)}")
    if min(shape[:3]) < 1:
        raise ICAINRError(path, f"the image has an empty spatial axis, shape {shape[:3]}")
    if shape[3] < MIN_TIMEPOINTS:
        raise ICAINRError(path, f"needs at least {MIN_TIMEPOINTS} volumes, got {shape[3]}")
    dtype = img.get_data_dtype()
    if dtype.kind not in "iuf":
        raise ICAINRError(path, f"unsupported data type {dtype}")
    try:
        data = np.asarray(img.dataobj, dtype=np.float64).reshape(shape)
    except Exception as exc:
        raise ICAINRError(path, f"cannot read the voxel data ({first_line(exc)})") from None
    n_bad = int(data.size - np.count_nonzero(np.isfinite(data)))
    if n_bad:
        raise ICAINRError(path, f"contains {n_bad} NaN/Inf values; the codec needs finite data")
    return img, data


def describe_image(img, path=None):
    """What a decoder needs to restore ``img`` exactly (a JSON-able dict)."""
    import nibabel as nib

    hdr = img.header
    slope, inter = file_scaling(img)
    units = hdr.get_xyzt_units()
    stored = [int(s) for s in img.shape]
    return {
        "shape": stored[:4],
        "stored_shape": stored,
        "nifti_version": 2 if isinstance(img, nib.Nifti2Image) else 1,
        "header_b64": base64.b64encode(hdr.binaryblock).decode("ascii"),
        "endianness": hdr.endianness,
        "dtype": np.dtype(img.get_data_dtype()).newbyteorder("=").str,
        "scl_slope": slope,
        "scl_inter": inter,
        "affine": np.asarray(img.affine, dtype=float).tolist(),
        "sform_code": int(hdr["sform_code"]),
        "qform_code": int(hdr["qform_code"]),
        "zooms": [float(z) for z in hdr.get_zooms()],
        "xyzt_units": [units[0] or "unknown", units[1] or "unknown"],
        "tr": float(hdr.get_zooms()[3]),
        "source_name": os.path.basename(os.fspath(path)) if path else "",
        "source_bytes": int(os.path.getsize(path)) if path else 0,
    }


def header_from_description(desc, source):
    """Rebuild the nibabel header stored by ``describe_image``."""
    import nibabel as nib

    try:
        block = base64.b64decode(desc["header_b64"], validate=True)
    except Exception:
        raise ICAINRError(source, "the stored NIfTI header is not valid base64") from None
    klass = {348: nib.Nifti1Header, 540: nib.Nifti2Header}.get(len(block))
    if klass is None:
        raise ICAINRError(source, f"the stored NIfTI header has {len(block)} bytes, "
                                  "expected 348 or 540")
    try:
        hdr = klass(block, endianness=desc.get("endianness"), check=True)
    except Exception:
        raise ICAINRError(source, "the stored NIfTI header is invalid") from None
    return hdr


def write_nifti(path, values, header, dtype, slope=None, inter=None):
    """Write physical ``values`` through ``header`` with the stored ``dtype`` and scaling.

    The image is serialised in memory and ``slope``/``inter`` are written back
    as given (nibabel would otherwise choose its own scaling), then the bytes
    are gzipped when ``path`` ends with ``.gz`` and written atomically. A
    NIfTI-2 ``header`` gives a NIfTI-2 file.
    """
    import nibabel as nib

    dtype = np.dtype(dtype)
    stored = to_stored_values(values, dtype, slope, inter)
    klass = nib.Nifti2Image if isinstance(header, nib.Nifti2Header) else nib.Nifti1Image
    header.set_data_dtype(dtype)
    img = klass(stored, None, header=header)
    img.header.set_data_dtype(dtype)
    blob = bytearray(img.to_bytes())
    if slope is not None:
        out_hdr = type(img.header)(bytes(blob[:img.header.sizeof_hdr]),
                                   endianness=img.header.endianness)
        out_hdr["scl_slope"] = slope
        out_hdr["scl_inter"] = inter
        blob[:img.header.sizeof_hdr] = out_hdr.binaryblock
    data = bytes(blob)
    if os.fspath(path).endswith(".gz"):
        buf = _io.BytesIO()
        with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=1, mtime=0) as gz:
            gz.write(data)
        data = buf.getvalue()
    return write_atomic(path, data)


def write_described(path, values, desc, source):
    """``write_nifti`` with the header, dtype, scaling and dimensions of a ``describe_image``
    dict (trailing dimensions of length 1 restored)."""
    values = np.asarray(values).reshape(desc.get("stored_shape", desc["shape"]))
    return write_nifti(path, values, header_from_description(desc, source), desc["dtype"],
                       desc["scl_slope"], desc["scl_inter"])


# --- masks -----------------------------------------------------------------------------


def pack_mask(mask):
    """Bit-pack a boolean (X, Y, Z) mask in C order and zstd-compress it (level 19)."""
    import imagecodecs

    return bytes(imagecodecs.zstd_encode(np.packbits(np.asarray(mask, bool).ravel()).tobytes(),
                                         level=19))


def unpack_mask(payload, shape, source=None):
    """Inverse of ``pack_mask``; ``shape`` is trusted (validated by the caller)."""
    import imagecodecs

    n_voxels = int(np.prod(shape))
    n_bytes = (n_voxels + 7) // 8
    try:
        packed = imagecodecs.zstd_decode(payload, out=n_bytes)
    except Exception:
        raise ICAINRError(source, "the mask section cannot be decoded") from None
    if len(packed) != n_bytes:
        raise ICAINRError(source, "the mask section has the wrong size")
    bits = np.unpackbits(np.frombuffer(packed, dtype=np.uint8))[:n_voxels]
    return bits.reshape(shape).astype(bool)


def first_line(exc):
    """The first line of an exception's message (its type name when it has none)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__

