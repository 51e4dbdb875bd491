"""The whole benchmark, as ``icainr bench`` runs it, over one run or a corpus of runs.

For each run, each method and each target ratio (one row for a lossless method):

1. search the knob in this process (``Method.search``; see ``search``);
2. compress, then decompress, each in a fresh child process (``measure``);
3. put the decoded run on the stored dtype's grid (``BenchInput.as_written``)
   and score it with every QC metric that applies to the run
   (``nipype_icainr.qc``: PSNR in the mask and over the whole volume, SSIM,
   FLA where the run has events, FCA under three region definitions, CTA on
   the Haxby slice), against the original's side computed once (``reference``).

Then ``summary`` counts, per metric and ratio, the runs where the codec's
default preset is at least as good as the best peer. The outputs are
rewritten after every row, so a long run can be watched and an interrupted one
keeps what it finished. A method that fails at a ratio (out of reach, an
encoder error) gets a row with the reason in ``note``.
"""

import datetime
import glob
import math
import os
import platform
import shlex
import sys
import tempfile
import time

import numpy as np

from .. import metrics
from ..codec.errors import OutOfReach as CodecOutOfReach
from .methods import make_method, parse_methods
from .search import OutOfReach, TOLERANCE


def log(message):
    stamp = datetime.datetime.now().strftime("%H:%M:%S")
    print(f"icainr bench [{stamp}] {message}", file=sys.stderr, flush=True)


def environment():
    """Machine and package versions for the report header."""
    from ..codec.models import cuda_available, torch_installed
    from ..provenance import analysis_versions

    torch_version, device = "not installed", "cpu"
    if torch_installed():
        import torch

        torch_version = torch.__version__
        if cuda_available():
            device = "cuda (" + torch.cuda.get_device_name(0) + ")"
    return {"platform": platform.platform(), "python": platform.python_version(),
            "cpu_count": os.cpu_count(), "torch": torch_version, "torch_device": device,
            "versions": analysis_versions()}


def run_name(path):
    """A run's name in the tables: its file name without the NIfTI extension."""
    name = os.path.basename(os.fspath(path).rstrip(os.sep))
    for ext in (".nii.gz", ".nii"):
        if name.endswith(ext):
            return name[:-len(ext)]
    return name


def collect_runs(inputs, events=None):
    """``[(path, events or None)]`` from NIfTI files and folders of them.

    A folder stands for every ``*.nii``/``*.nii.gz`` in it (sorted). ``events``
    applies to a single input file; otherwise a run's BIDS events file
    (``<prefix>_events.tsv`` beside ``<prefix>_bold.nii[.gz]``) is used when present.
    """
    inputs = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    runs = []
    for item in inputs:
        item = os.fspath(item)
        if os.path.isdir(item):
            found = sorted(glob.glob(os.path.join(item, "*.nii")) +
                           glob.glob(os.path.join(item, "*.nii.gz")))
            if not found:
                raise ValueError(f"{item}: no .nii or .nii.gz files in this folder")
            runs += found
        elif os.path.isfile(item):
            runs.append(item)
        else:
            raise FileNotFoundError(2, "no such file or folder", item)
    if events is not None and len(runs) != 1:
        raise ValueError("--events goes with a single run (a corpus uses each run's "
                         "BIDS events file)")
    out = []
    for path in runs:
        ev = events
        if ev is None and "_bold.nii" in os.path.basename(path):
            sibling = path[:path.rindex("_bold.nii")] + "_events.tsv"
            ev = sibling if os.path.isfile(sibling) else None
        out.append((path, ev))
    return out


def _row(run, method, target, **kw):
    row = {"run": run, "method": method, "target_ratio": target}
    row.update(kw)
    return row


def run_bench(bold, events=None, ratios=(100.0, 200.0), methods="all",
              out_dir="benchmarks/results", haxby=None, inr_steps=300, tag=None,
              command=None, extra_context=None, plots=True):
    """Run the benchmark over one run or a corpus and write its outputs.

    Parameters
    ----------
    bold : str or list of str
        4D NIfTI files, or folders of them.
    events : str, optional
        BIDS events TSV of a single run (FLA needs it); with several runs each
        run's own ``*_events.tsv`` is used.
    ratios : sequence of float
        Target ratios (above 1).
    methods : str or list of str
        ``'all'``, a comma list, or a list of names.
    out_dir : str
    haxby : str, optional
        Directory of the Haxby slice: benchmarked as one more run, with CTA.
    inr_steps : int
        Training steps of the SIREN and NeRF baselines.
    tag : str, optional
        Output names ``bench_<tag>.*``; default: the (first) input's name.
    command : str, optional
        The command line, for the report.
    extra_context : dict, optional
        Extra method context (e.g. ``icainr_config`` or ``video_preset``).
    plots : bool
        Write the PNGs.

    Returns
    -------
    dict
        ``rows``, ``paths`` (output files), ``meta``, ``summary``.
    """
    from .report import write_outputs
    from .summary import summarize

    names = parse_methods(methods) if isinstance(methods, str) else list(methods)
    ratios = [float(r) for r in ratios]
    if not ratios or any(not (math.isfinite(r) and r > 1.0) for r in ratios):
        raise ValueError(f"ratios must be numbers above 1, got {ratios}")
    runs = collect_runs(bold, events)
    if haxby:
        runs.append((haxby, None))
    tag = tag or run_name(runs[0][0])
    t_start = time.perf_counter()
    meta = dict(environment(), tag=tag,
                command=command or " ".join(shlex.quote(a) for a in sys.argv),
                date=datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                runs=[], ratios=ratios, methods=names, inr_steps=int(inr_steps),
                tolerance=TOLERANCE, knobs={}, notes=[])
    rows, details = [], {}

    def save(plots_too=False):
        meta["elapsed_s"] = time.perf_counter() - t_start
        summary = summarize(rows)
        return write_outputs(out_dir, tag, rows, meta, details, summary, plots=plots_too), \
            summary

    for path, run_events in runs:
        is_haxby = haxby is not None and path == haxby
        _bench_run(path, run_events, is_haxby, names, ratios, inr_steps, extra_context,
                   rows, details, meta, save)
    if not any(r.get("ratio") for r in rows if r["method"] != "original"):
        meta["notes"].append("no method produced a result")
    paths, summary = save(plots_too=plots)
    log(f"done in {meta['elapsed_s']:.0f} s: " + ", ".join(paths.values()))
    return {"rows": rows, "paths": paths, "meta": meta, "summary": summary}


def _bench_run(path, events, is_haxby, names, ratios, inr_steps, extra_context, rows,
               details, meta, save):
    """Every method and ratio on one run; rows appended to ``rows``."""
    import pandas as pd

    from .data import load_input
    from .measure import compress_in_child, decompress_in_child, search_in_child
    from .reference import Reference

    name = run_name(path)
    log(f"{name}: loading {path}")
    labels = chunks = None
    if is_haxby:
        from .haxby import load_haxby

        inp, labels, chunks = load_haxby(path)
    else:
        inp = load_input(path)
    ev = None
    if events:
        ev = pd.read_csv(events, sep="\t")
        missing = {"onset", "duration", "trial_type"} - set(ev.columns)
        if missing:
            raise ValueError(f"{events}: missing column(s) {', '.join(sorted(missing))}")
    log(f"{name}: {tuple(inp.shape)} {inp.dtype}, raw {inp.raw_bytes:,} bytes, "
        f"{int(inp.mask.sum()):,} mask voxels; the original's side of every QC metric")
    ref = Reference(inp, ev, labels=labels, chunks=chunks)
    meta["runs"].append({"run": name, "path": os.fspath(path), "shape": list(inp.shape),
                         "dtype": str(inp.dtype), "raw_bytes": inp.raw_bytes,
                         "mask_voxels": int(inp.mask.sum()), "tr": inp.tr,
                         "events": os.fspath(events) if events else None,
                         "in_mni": ref.ctx.options["in_mni"], "skipped": ref.skipped,
                         "reference": ref.original_scores})
    rows.append(_row(name, "original", None, knob="-", ratio=1.0, bytes=inp.raw_bytes,
                     note="uncompressed reference", **ref.original_scores))
    context = dict(inp.context(), inr_steps=int(inr_steps), seed=0, **(extra_context or {}))
    with tempfile.TemporaryDirectory(prefix="icainr-bench-") as tmp:
        data_path, mask_path = os.path.join(tmp, "data.npy"), os.path.join(tmp, "mask.npy")
        np.save(data_path, inp.data)
        np.save(mask_path, inp.mask)

        for method_name in names:
            method = make_method(method_name, context)
            meta["knobs"][method_name] = method.knob_doc
            targets = [None] if method.lossless else ratios
            for target in targets:
                where = f"{name}: {method_name}" + (f" @ {target:g}" if target else
                                                    " (lossless)")
                row = _row(name, method_name, target)
                try:
                    _evaluate(method, method_name, target, inp, ref, context,
                              data_path, mask_path, tmp, row, details, where,
                              search_in_child, compress_in_child, decompress_in_child)
                except (OutOfReach, CodecOutOfReach) as exc:  # a peer's, or the codec's
                    row["note"] = f"target out of reach: {exc}"
                    log(f"{where}: {row['note']}")
                except Exception as exc:  # a method's failure must not end the run
                    text = str(exc).splitlines()[0][:200] if str(exc) else ""
                    row["note"] = f"error: {type(exc).__name__}: {text}"
                    log(f"{where}: {row['note']}")
                rows.append(row)
                save()


def _evaluate(method, name, target, inp, ref, context, data_path, mask_path, tmp,
              row, details, where, search_in_child, compress_in_child,
              decompress_in_child):
    log(f"{where}: searching the knob")
    t0 = time.perf_counter()
    choice = search_in_child(name, context, data_path, mask_path, target, inp.raw_bytes)
    row["search_s"] = time.perf_counter() - t0
    row["knob"] = method.label(choice.knob)
    notes = [choice.note] if choice.note else []
    log(f"{where}: {row['knob']}; compressing in a child process")
    payload = os.path.join(tmp, "payload.bin")
    decoded_path = os.path.join(tmp, "decoded.npy")
    comp = compress_in_child(name, context, data_path, mask_path, choice.knob, payload)
    n_bytes = int(comp["bytes"])
    if choice.n_bytes is not None and n_bytes != choice.n_bytes:
        notes.append(f"the child's payload is {n_bytes:,} bytes, the search's "
                     f"{choice.n_bytes:,} (encoder not deterministic)")
    log(f"{where}: {n_bytes:,} bytes in {comp['seconds']:.1f} s; decompressing")
    dec = decompress_in_child(name, context, payload, decoded_path)
    decoded = inp.as_written(np.load(decoded_path))
    os.unlink(decoded_path)
    ratio = metrics.compression_ratio(inp.raw_bytes, n_bytes)
    if target is not None and ratio < TOLERANCE * target:
        notes.append(f"achieved ratio {ratio:.1f} is below {TOLERANCE} x target")
    info = comp.get("info") or {}
    if "seconds_per_step" in info:
        notes.append(f"{info['steps']} steps, {info['seconds_per_step']:.2f} s/step "
                     f"({info['n_params']:,} parameters)")
    if "pix_fmt" in info:
        notes.append(f"{info['pix_fmt']} ({info['bits']}-bit), preset {info['preset']}")
    if "model" in info:
        notes.append(info["model"])
    row.update(ratio=ratio, bytes=n_bytes, compress_s=comp["seconds"],
               decompress_s=dec["seconds"], compress_peak_mb=comp["peak_mb"],
               decompress_peak_mb=dec["peak_mb"])
    log(f"{where}: ratio {ratio:.1f}; metrics")
    if np.array_equal(decoded, inp.data):
        notes.append("decoded run identical to the original")
    columns, metric_details, metric_notes = ref.compare(decoded)
    row.update(columns)
    notes += metric_notes
    key = f"{row['run']}|{name}|{target}"
    details[key] = {"metrics": metric_details, "knob": choice.knob,
                    "evaluations": choice.evaluations, "info": info}
    row["note"] = "; ".join(n for n in notes if n)
    shown = [(k, f) for k, f in ref.column_formats if row.get(k) is not None]
    log(f"{where}: " + ", ".join(f"{k} {f.format(row[k])}" for k, f in shown[:6]))
