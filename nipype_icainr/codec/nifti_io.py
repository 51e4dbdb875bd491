"""Rebuilding the NIfTI: original header, shape, dtype and scaling, written atomically."""

import base64
import gzip
import io
import os

import numpy as np

from .container import write_atomic
from .errors import ICAINRError


def describe_image(img, path=None):
    """What the decoder needs to restore ``img`` exactly (a JSON-able dict)."""
    import nibabel as nib

    hdr = img.header
    slope = getattr(img.dataobj, "slope", None)  # an ArrayProxy knows the file's scaling
    inter = getattr(img.dataobj, "inter", None)
    if slope is None:
        slope, inter = hdr.get_slope_inter()
    slope = 1.0 if slope is None or not np.isfinite(slope) else float(slope)
    inter = 0.0 if inter is None or not np.isfinite(inter) else float(inter)
    scaled = not (slope == 1.0 and inter == 0.0)
    units = hdr.get_xyzt_units()
    return {
        "shape": [int(s) for s in img.shape],
        "nifti_version": 2 if isinstance(img, nib.Nifti2Image) else 1,
        "header_b64": base64.b64encode(hdr.binaryblock).decode("ascii"),
        "endianness": hdr.endianness,
        "dtype": np.dtype(img.get_data_dtype()).newbyteorder("=").str,
        "scl_slope": float(slope) if scaled else None,
        "scl_inter": float(inter) if scaled else None,
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
        raise ICAINRError(source, f"the stored NIfTI header has {len(block)} bytes, expected 348 or 540")
    try:
        hdr = klass(block, endianness=desc.get("endianness"), check=True)
    except Exception:
        raise ICAINRError(source, "the stored NIfTI header is invalid") from None
    return hdr


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


def write_nifti(path, values, desc, source):
    """Write physical ``values`` with the original header, dtype and scaling.

    The image is serialised in memory and the ``scl_slope``/``scl_inter`` of the
    original are written back (nibabel would otherwise choose its own scaling),
    then the bytes are gzipped when ``path`` ends with ``.gz`` and written
    atomically.
    """
    import nibabel as nib

    hdr = header_from_description(desc, source)
    dtype = np.dtype(desc["dtype"])
    slope, inter = desc["scl_slope"], desc["scl_inter"]
    stored = to_stored_values(values, dtype, slope, inter)
    klass = nib.Nifti2Image if desc["nifti_version"] == 2 else nib.Nifti1Image
    hdr.set_data_dtype(dtype)
    img = klass(stored, None, header=hdr)
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
        buf = io.BytesIO()
        with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=1, mtime=0) as gz:
            gz.write(data)
        data = buf.getvalue()
    write_atomic(path, data)
