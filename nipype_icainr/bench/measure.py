"""Search, compress and decompress each method in a fresh child process: time and peak
memory, and a peer library's crash contained.

Each step runs in a new process from a ``forkserver`` context (a plain
``fork`` of a parent that has started torch's threads can deadlock), with
``max_workers=1`` and one task per process. The input reaches the child as a
``.npy`` file opened with ``mmap_mode='r'`` (no pickled copy, so the child
starts small; the search loads it whole), the payload and the decoded array go back
through files.

The knob search runs in a child too (``search_in_child``), untimed: the peers'
native libraries run in the searching process, and one of them aborting (libx265
corrupted its heap on pictures 33 to 48 pixels wide) took the whole benchmark with
it; now it is that cell's error.

Reported per step:

* ``seconds``: wall time of ``encode`` or ``decode`` alone (``perf_counter``
  around the call; loading the input and writing the result are excluded);
* ``peak_mb``: the child's ``resource.getrusage(RUSAGE_SELF).ru_maxrss``
  (KiB on Linux) / 1024: its peak resident memory over its whole life,
  interpreter and imports included (about 60-100 MB before any work).
"""

import os
import time

import numpy as np


def _peak_mb():
    import resource
    import sys

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024.0 * 1024.0) if sys.platform == "darwin" else rss / 1024.0


def _child_compress(name, context, data_path, mask_path, knob, out_path):
    from .methods import make_method

    data = np.load(data_path, mmap_mode="r")
    mask = np.load(mask_path)
    method = make_method(name, context)
    t0 = time.perf_counter()
    blob = method.encode(data, mask, knob)
    seconds = time.perf_counter() - t0
    with open(out_path, "wb") as fh:
        fh.write(blob)
    return {"seconds": seconds, "peak_mb": _peak_mb(), "bytes": len(blob),
            "info": _jsonable(method.last_info)}


def _child_decompress(name, context, payload_path, out_path):
    from .methods import make_method

    with open(payload_path, "rb") as fh:
        blob = fh.read()
    method = make_method(name, context)
    t0 = time.perf_counter()
    values = method.decode(blob)
    seconds = time.perf_counter() - t0
    np.save(out_path, np.asarray(values, dtype=np.float64))
    return {"seconds": seconds, "peak_mb": _peak_mb()}


def _child_search(name, context, data_path, mask_path, target, raw_bytes):
    from .. import metrics
    from ..io import as_written
    from .methods import make_method

    data = np.load(data_path)
    mask = np.load(mask_path)
    dtype = np.dtype(context["dtype"])

    def quality(decoded):  # the runner's: PSNR in the mask of the run as written
        return metrics.psnr(data, as_written(decoded, dtype, context["slope"],
                                             context["inter"]), mask)

    return make_method(name, context).search(data, mask, target, raw_bytes, quality)


def _jsonable(info):
    out = {}
    for k, v in (info or {}).items():
        if isinstance(v, (np.floating, np.integer)):
            v = v.item()
        out[k] = v
    return out


def run_in_child(fn, *args):
    """Run ``fn(*args)`` in a fresh forkserver child and return its result."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    ctx = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        return pool.submit(fn, *args).result()


def search_in_child(name, context, data_path, mask_path, target, raw_bytes):
    """``make_method(name, context).search`` in a child, with the runner's quality
    function (PSNR in the mask of the run as written); returns the ``Choice``."""
    return run_in_child(_child_search, name, context, os.fspath(data_path),
                        os.fspath(mask_path), target, raw_bytes)


def compress_in_child(name, context, data_path, mask_path, knob, out_path):
    """Encode in a child; the payload is written to ``out_path``. Returns timing dict."""
    return run_in_child(_child_compress, name, context, data_path, mask_path, knob,
                        os.fspath(out_path))


def decompress_in_child(name, context, payload_path, out_path):
    """Decode in a child; the float64 array is saved to ``out_path`` (.npy)."""
    return run_in_child(_child_decompress, name, context, os.fspath(payload_path),
                        os.fspath(out_path))
