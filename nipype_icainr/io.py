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


#: temporary files of ours: ``.tmp-icainr-<pid>-<random>-<target name>``
TEMP_PREFIX = ".tmp-icainr-"


def _temp_pid(name):
    """The writer's pid of one of our temporary files' names (None for other names)."""
    if not name.startswith(TEMP_PREFIX):
        return None
    pid = name[len(TEMP_PREFIX):].split("-", 1)[0]
    return int(pid) if pid.isdigit() else None


def remove_stale_temps(folder):
    """Delete our temporary files in ``folder`` whose writing process is gone.

    A process killed with SIGKILL (or a machine that lost power) leaves its
    temporary file behind; the next write into the folder removes it. Files of
    a process still alive are kept (it may still be writing them).
    """
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        pid = _temp_pid(name)
        if pid is None or pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
            continue  # alive
        except ProcessLookupError:
            pass
        except PermissionError:
            continue  # alive, another user's
        try:
            os.unlink(os.path.join(folder, name))
        except OSError:
            pass


class atomic_output:
    """A context manager: a temporary file in the target's folder, renamed onto the
    target when the block succeeds, removed when it fails (or on SIGTERM/SIGINT,
    which the command-line tools turn into exceptions).

    >>> with atomic_output("out.nii.gz") as fh:  # doctest: +SKIP
    ...     fh.write(data)
    """

    def __init__(self, path, mode=0o644):
        self.path = os.fspath(path)
        self.mode = mode
        self.tmp = None

    def __enter__(self):
        folder = os.path.dirname(os.path.abspath(self.path))
        remove_stale_temps(folder)
        fd, self.tmp = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-",
                                        suffix="-" + os.path.basename(self.path), dir=folder)
        self.fh = os.fdopen(fd, "wb")
        return self.fh

    def __exit__(self, kind, value, tb):
        try:
            if kind is None:
                self.fh.flush()
                os.fsync(self.fh.fileno())
            self.fh.close()
            if kind is None:
                os.chmod(self.tmp, self.mode)
                os.replace(self.tmp, self.path)
                self.tmp = None
        except OSError as exc:
            raise ICAINRError(self.path, f"cannot write ({exc.strerror or exc})") from None
        finally:
            if self.tmp is not None and os.path.exists(self.tmp):
                os.unlink(self.tmp)
        return False


def write_atomic(path, data):
    """Write bytes to ``path`` through a temporary file in the same folder.

    The file appears complete or not at all: the temporary file is fsynced and
    renamed over ``path``; on any error (or an interrupt) it is removed.
    Returns the absolute path.
    """
    try:
        with atomic_output(path) as fh:
            fh.write(data)
    except OSError as exc:
        raise ICAINRError(path, f"cannot write ({exc.strerror or exc})") from None
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


def same_file(a, b):
    """Whether paths ``a`` and ``b`` name the same file (symlinks, hard links, spellings)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def check_output_path(path, force, inputs=()):
    """Refuse to overwrite without ``force``, ever to overwrite an input, and an unwritable
    folder.

    Parameters
    ----------
    path : path
        The output.
    force : bool
        Overwrite an existing output.
    inputs : sequence of path
        Files the command reads: an output that is one of them (through a
        symlink, a hard link or another spelling) is refused, ``force`` or not.
    """
    path = os.fspath(path)
    for src in inputs:
        if os.path.lexists(path) and same_file(path, src) or \
                os.path.realpath(path) == os.path.realpath(src):
            raise ICAINRError(path, "is the input file; an input is never overwritten "
                                    "(choose another output)")
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
    elif dtype.itemsize < 8:  # a float32 file never holds an infinity the run did not have
        info = np.finfo(dtype)
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
    img, data = _read_bold(path)
    check_finite(os.fspath(path), data)
    return img, data


def _read_bold(path):
    """``(img, data)`` of ``open_bold``'s image, every value as read (float64)."""
    img, shape = open_bold(path)
    return img, _read_voxels(
        path, lambda: np.asarray(img.dataobj, dtype=np.float64).reshape(shape))


def _read_voxels(path, read):
    """``read()`` of a run's voxel array, nibabel kept quiet; a failed read is one line."""
    from .codec.header import quiet_nibabel

    with quiet_nibabel():
        try:
            return read()
        except MemoryError:
            raise
        except Exception as exc:
            raise ICAINRError(os.fspath(path), f"cannot read the voxel data "
                                               f"({first_line(exc)})") from None


def load_bold_with_nan_voxels(path):
    """``load_bold`` for a run whose voxels may be NaN at every time point.

    SPM, and tools after it, write NaN outside the brain in float images. Those
    voxels are set to 0 here and returned as a mask (None when there are none), for
    the codec to restore; any other NaN or Inf value is refused as ``load_bold``
    refuses it. Returns ``(img, data, nan_voxels)``.
    """
    img, data = _read_bold(path)
    voxels = whole_nan_voxels(path, np.isnan(data).sum(axis=-1), data.shape[-1],
                              int(np.count_nonzero(np.isinf(data))))
    if voxels is None:
        return img, data, None
    if not data.flags.writeable:  # an array nibabel hands out read-only is never written
        data = data.copy()
    data[voxels] = 0.0
    return img, data, voxels


def whole_nan_voxels(path, nan_counts, n_timepoints, n_inf):
    """The voxels NaN at every time point (None when there are none), from each voxel's
    count of NaN values; refuses Inf values, and NaN in a voxel that is not NaN at every
    time point (the codec restores whole NaN voxels only)."""
    from .codec.errors import NonFiniteValues

    if n_inf:
        raise NonFiniteValues(os.fspath(path), f"contains {n_inf} Inf values; the lossy "
                                               "codings need finite data (or NaN in whole "
                                               f"voxels); {EXACT_HINT}")
    whole = nan_counts == n_timepoints
    n_partial = int(np.count_nonzero((nan_counts > 0) & ~whole))
    if n_partial:
        raise NonFiniteValues(os.fspath(path), f"{n_partial} voxels are NaN at some time "
                                               "points only; the lossy codings restore NaN "
                                               "only in voxels NaN at every time point; "
                                               f"{EXACT_HINT}")
    return whole if whole.any() else None


def open_bold(path, keep_file_open=False):
    """Open a 4D NIfTI and check its header, without reading the voxels.

    Returns ``(img, shape)``, the shape (X, Y, Z, T) without trailing singleton
    dimensions. ``keep_file_open``: nibabel keeps the file open between reads,
    so that reading the volumes of a ``.nii.gz`` in order decompresses it once
    (``codec.runs.VolumeRun``). Raises ``ICAINRError`` as ``load_bold`` does,
    except for NaN/Inf values (``check_finite``, once the voxels are read).
    """
    import nibabel as nib

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ICAINRError(path, "no such file")
    from .codec.header import quiet_nibabel

    with quiet_nibabel():  # nibabel's warnings and logs would print before our one line
        try:
            img = nib.load(path, keep_file_open=keep_file_open)
        except Exception as exc:  # nibabel raises several types for non-images
            raise ICAINRError(path, f"not a readable NIfTI image ({first_line(exc)})") from None
        if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)):
            raise ICAINRError(path, f"not a NIfTI image (nibabel read it as "
                                    f"{type(img).__name__})")
        shape = img.shape
        if len(shape) > 4 and all(s == 1 for s in shape[4:]):
            shape = shape[:4]
        if len(shape) != 4:
            raise ICAINRError(path, f"expected a 4D image (x, y, z, t), got shape "
                                    f"{tuple(img.shape)}")
        if min(shape[:3]) < 1:
            raise ICAINRError(path, f"the image has an empty spatial axis, shape {shape[:3]}")
        if shape[3] < MIN_TIMEPOINTS:
            raise ICAINRError(path, f"needs at least {MIN_TIMEPOINTS} volumes, got {shape[3]}")
        from .codec.limits import check_shape

        check_shape([int(s) for s in shape], path)  # the decoder's limits, checked up front
        dtype = img.get_data_dtype()
        if dtype.kind not in "iuf" or dtype.itemsize > 8:
            raise ICAINRError(path, f"unsupported data type {dtype}")
        check_data_size(path, img)
    return img, tuple(int(s) for s in shape)


#: a ``.nii.gz`` whose uncompressed file is at most this many bytes is decompressed once
#: into memory by ``open_bold_for_reading``; larger ones are streamed from the file
IN_MEMORY_UP_TO = 256 * 2 ** 20


def inflated_in_memory(path, n_bytes):
    """Whether ``open_bold_for_reading`` holds this file inflated in memory: a ``.nii.gz``
    of at most ``IN_MEMORY_UP_TO`` bytes uncompressed (``n_bytes``)."""
    return os.fspath(path).endswith(".gz") and n_bytes <= IN_MEMORY_UP_TO


def open_bold_for_reading(path):
    """``open_bold`` for a reader that passes over the volumes several times.

    The encoder reads a run three or four times (statistics, series, lossless
    check, measurement), and each pass over a ``.nii.gz`` decompresses it again
    with Python's zlib (0.3 s a pass for the 70 MB studyforrest run). A gzipped
    file of at most ``IN_MEMORY_UP_TO`` bytes uncompressed is decompressed once,
    with python-isal (Intel's ISA-L inflate, about 3x faster than zlib), and
    nibabel reads the volumes from memory: the same array proxy, the same
    values. Larger files are streamed from disk (``keep_file_open``), so that
    memory follows the coded voxels and not the file.
    """
    img, shape = open_bold(path, keep_file_open=True)
    path = os.fspath(path)
    offset = int(img.header.get_data_offset())
    size = offset + int(np.prod(img.shape)) * img.get_data_dtype().itemsize
    if not inflated_in_memory(path, size):
        return img, shape
    try:
        from isal import igzip as gz
    except ImportError:  # pragma: no cover - isal is a dependency; kept for odd installs
        gz = gzip
    from .codec.header import quiet_nibabel

    try:
        with open(path, "rb") as fh:
            raw = gz.decompress(fh.read())
    except MemoryError:
        raise
    except Exception as exc:  # a truncated or corrupt stream
        raise ICAINRError(path, f"cannot decompress the file ({first_line(exc)})") from None
    if len(raw) < size:
        raise ICAINRError(path, f"the file holds {len(raw):,} bytes once decompressed; its "
                                f"header needs {size:,}")
    with quiet_nibabel():
        return type(img).from_bytes(raw), shape


def check_finite(path, data):
    """Refuse NaN and Inf values (in the whole run or in one volume of it)."""
    n_bad = int(data.size - np.count_nonzero(np.isfinite(data)))
    if n_bad:
        raise non_finite(path, n_bad)


def non_finite(path, n_bad):
    """The error for ``n_bad`` NaN/Inf values (``check_finite``, ``VolumeRun.stats``)."""
    from .codec.errors import NonFiniteValues

    return NonFiniteValues(path, f"contains {n_bad} NaN/Inf values; the lossy codings need "
                                 f"finite data; {EXACT_HINT}")


#: what a run with NaN or Inf values the lossy codings refuse can still be given
EXACT_HINT = "--lossless keeps a float run's values bit for bit, NaN and Inf included"


def load_stored_exactly(path):
    """The stored array of a float run as the file holds it, NaN and Inf included:
    ``(img, stored)`` (X, Y, Z, T), for a bit-for-bit coding (the decoder writes the
    stored array back under the same scaling). An integer run's values are finite:
    refused in one line should one reach here."""
    img, shape = open_bold(path)
    dtype = np.dtype(img.get_data_dtype())
    if dtype.kind != "f":
        raise ICAINRError(os.fspath(path), f"holds non-finite values in a {dtype} array; "
                                           "it cannot be coded")
    stored = _read_voxels(path, lambda: np.asanyarray(img.dataobj.get_unscaled()).reshape(shape))
    # in native byte order, as ``describe_image`` records the dtype and the decoder
    # rebuilds it (the bit patterns of the values, not of the bytes on disk)
    return img, np.ascontiguousarray(stored, dtype=dtype.newbyteorder("="))


#: DEFLATE cannot compress by more than about 1032:1, so a .nii.gz this much smaller
#: than its header's data size is not what its header says
MAX_DEFLATE_RATIO = 1100


def check_data_size(path, img):
    """Refuse a file whose size cannot hold, or holds more than, the data its header declares.

    An uncompressed ``.nii`` must be exactly the header's data size after
    ``vox_offset`` (a longer file would be cut silently); a ``.nii.gz`` cannot
    inflate to more than ``MAX_DEFLATE_RATIO`` times its size (checked before
    reading, so a small file claiming gigabytes costs nothing).
    """
    hdr = img.header
    declared = int(np.prod(img.shape, dtype=np.int64)) * img.get_data_dtype().itemsize
    offset = int(getattr(img.dataobj, "offset", hdr.get_data_offset()))
    size = os.path.getsize(path)
    if path.endswith(".gz"):
        if offset + declared > MAX_DEFLATE_RATIO * size + 4096:
            raise ICAINRError(path, f"its header declares {offset + declared:,} bytes, more "
                                    f"than {size:,} compressed bytes can hold")
    elif size != offset + declared:
        what = "more" if size > offset + declared else "less"
        raise ICAINRError(path, f"holds {what} data than its header declares "
                                f"({size - offset:,} bytes after the header, "
                                f"{declared:,} declared)")


def describe_image(img, path=None):
    """What a decoder needs to restore ``img`` exactly (a JSON-able dict)."""
    import nibabel as nib

    hdr = img.header
    slope, inter = file_scaling(img)
    units = hdr.get_xyzt_units()
    stored = [int(s) for s in img.shape]
    # nibabel moves the file's scaling into the array proxy and blanks it in the header:
    # put it back in the block, which then says everything about the stored values
    block = hdr.copy()
    if slope is not None:
        block["scl_slope"], block["scl_inter"] = slope, inter
    return {
        "shape": stored[:4],
        "stored_shape": stored,
        "nifti_version": 2 if isinstance(img, nib.Nifti2Image) else 1,
        "header_b64": base64.b64encode(block.binaryblock).decode("ascii"),
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


def write_nifti(path, values, header, dtype, slope=None, inter=None, stored=False):
    """Write physical ``values`` through ``header`` with the stored ``dtype`` and scaling.

    The image is serialised in memory and ``slope``/``inter`` are written back
    as given (nibabel would otherwise choose its own scaling), then the bytes
    are gzipped when ``path`` ends with ``.gz`` and written atomically. A
    NIfTI-2 ``header`` gives a NIfTI-2 file. With ``stored=True`` the values
    are already the stored array (written as they are, bit for bit).
    """
    import nibabel as nib

    dtype = np.dtype(dtype)
    stored = np.asarray(values).astype(dtype, copy=False) if stored else \
        to_stored_values(values, dtype, slope, inter)
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
        with gzip_writer(buf) as gz:
            gz.write(data)
        data = buf.getvalue()
    return write_atomic(path, data)


def gzip_writer(fileobj):
    """A gzip stream for writing ``.nii.gz`` output.

    python-isal (Intel's ISA-L DEFLATE) at level 1: a standard gzip stream,
    3-5x faster than zlib's level 1 and slightly smaller on decoded runs (the
    studyforrest run decoded, 70 MB: 0.24 s against 0.84-1.19 s on two cores,
    ``benchmarks/gzip_writers.py``). On two or more cores the compression runs
    in one background thread (``isal.igzip_threaded``), beside the decoder
    that makes the next volumes: alone it is no faster, but behind a volume-by-
    volume writer it took 0.54 -> 0.28 s for 156 volumes of 80x80x35 int16.
    The output is deterministic (mtime 0). The standard library's ``gzip``
    when isal is missing.
    """
    try:
        from isal import igzip, igzip_threaded
    except ImportError:  # pragma: no cover - isal is a dependency; kept for odd installs
        return gzip.GzipFile(fileobj=fileobj, mode="wb", compresslevel=1, mtime=0)
    if (os.cpu_count() or 1) > 1:
        return igzip_threaded.open(fileobj, "wb", compresslevel=1, threads=1)
    return igzip.IGzipFile(fileobj=fileobj, mode="wb", compresslevel=1, mtime=0)


def nifti_prefix(header, shape, dtype, slope=None, inter=None):
    """The bytes of a NIfTI file before its voxel data: the header block with ``shape``,
    ``dtype`` and the scaling, its extensions and the padding up to ``vox_offset``.

    nibabel serialises the header as ``write_nifti`` would (same block, extensions and
    offset) for a one-voxel image; the block's dimensions are then set to ``shape``.
    """
    import nibabel as nib

    dtype = np.dtype(dtype)
    klass = nib.Nifti2Image if isinstance(header, nib.Nifti2Header) else nib.Nifti1Image
    header = header.copy()
    header.set_data_dtype(dtype)
    img = klass(np.zeros((1,) * len(shape), dtype=dtype), None, header=header)
    img.header.set_data_dtype(dtype)
    blob = bytearray(img.to_bytes())
    size = img.header.sizeof_hdr
    out_hdr = type(img.header)(bytes(blob[:size]), endianness=img.header.endianness)
    out_hdr.set_data_shape(tuple(int(n) for n in shape))
    # the dimensions and pixdim as nibabel sets them for an image of the whole shape (the
    # one-voxel image reset pixdim beyond its dimensions)
    reference = header.copy()
    if tuple(reference.get_data_shape()) != tuple(int(n) for n in shape):
        reference.set_data_shape(tuple(int(n) for n in shape))  # as nibabel's image does
    pixdim = out_hdr["pixdim"].copy()  # pixdim[0] (qfac) as nibabel wrote it
    pixdim[1:] = reference["pixdim"][1:]
    out_hdr["dim"] = reference["dim"]
    out_hdr["pixdim"] = pixdim
    if slope is not None:
        out_hdr["scl_slope"] = slope
        out_hdr["scl_inter"] = inter
    blob[:size] = out_hdr.binaryblock
    offset = int(out_hdr["vox_offset"])
    return bytes(blob[:offset])


def write_volumes(path, volumes, desc, source, stored=False):
    """Write a run volume by volume: ``volumes(t)`` gives volume t (X, Y, Z), physical
    values (or stored values with ``stored=True``); the 4D array is never held.

    Same bytes as ``write_described`` of the whole run: NIfTI keeps each volume
    contiguous (x fastest), so the file is the header prefix then the volumes in
    order, gzipped on the fly for ``.nii.gz`` and written atomically.
    """
    shape = desc.get("stored_shape", desc["shape"])
    dtype = np.dtype(desc["dtype"])
    slope, inter = desc["scl_slope"], desc["scl_inter"]
    header = header_from_description(desc, source)
    prefix = nifti_prefix(header, shape, dtype, slope, inter)
    data_dtype = dtype.newbyteorder(header.endianness)
    try:
        with atomic_output(path) as fh:
            gz = gzip_writer(fh) if os.fspath(path).endswith(".gz") else None
            sink = gz or fh
            try:
                sink.write(prefix)
                for t in range(int(desc["shape"][3])):
                    vol = volumes(t)
                    vol = np.asarray(vol).astype(dtype, copy=False) if stored else \
                        to_stored_values(vol, dtype, slope, inter)
                    sink.write(np.asarray(vol, dtype=data_dtype).tobytes(order="F"))
            finally:  # also on an error: the gzip writer's thread must end
                if gz is not None:
                    gz.close()
    except OSError as exc:
        raise ICAINRError(path, f"cannot write ({exc.strerror or exc})") from None
    return os.path.abspath(path)


def write_described(path, values, desc, source, stored=False):
    """``write_nifti`` with the header, dtype, scaling and dimensions of a ``describe_image``
    dict (trailing dimensions of length 1 restored)."""
    values = np.asarray(values).reshape(desc.get("stored_shape", desc["shape"]))
    return write_nifti(path, values, header_from_description(desc, source), desc["dtype"],
                       desc["scl_slope"], desc["scl_inter"], stored=stored)


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

