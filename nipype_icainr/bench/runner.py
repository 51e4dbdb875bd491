"""The whole benchmark, as ``icainr bench`` runs it.

For each method and target ratio (one row for a lossless method):

1. search the knob in this process (``Method.search``; see ``search``);
2. compress, then decompress, each in a fresh child process (``measure``);
3. put the decoded run on the stored dtype's grid (``BenchInput.as_written``)
   and score it with every QC metric that applies (``nipype_icainr.qc``),
   against the original's side computed once (``reference``);
4. with ``haxby``: search, compress and decode the Haxby slice at the same
   target ratio (in this process) and score decoding (``haxby``).

The outputs are rewritten after every row, so a long run can be watched and
an interrupted one keeps what it finished. A method that fails at a ratio
(out of reach, an encoder error) gets a row with the reason in ``note``.
"""

import datetime
import math
import os
import platform
import shlex
import sys
import tempfile
import time

import numpy as np

from .. import metrics
from .methods import make_method, parse_methods
from .search import OutOfReach, TOLERANCE


def log(message):
    stamp = datetime.datetime.now().strftime("%H:%M:%S")
    print(f"icainr bench [{stamp}] {message}", file=sys.stderr, flush=True)


def environment():
    """Machine and package versions for the report header."""
    import torch

    from ..provenance import analysis_versions

    return {"platform": platform.platform(), "python": platform.python_version(),
            "cpu_count": os.cpu_count(), "torch": torch.__version__,
            "torch_device": "cuda (" + torch.cuda.get_device_name(0) + ")"
            if torch.cuda.is_available() else "cpu", "versions": analysis_versions()}


def _row(method, target, **kw):
    row = {"method": method, "target_ratio": target}
    row.update(kw)
    return row


def run_bench(bold, events=None, ratios=(100.0, 200.0), methods="all",
              out_dir="benchmarks/results", haxby=None, inr_steps=300, tag=None,
              command=None, extra_context=None, plots=True):
    """Run the benchmark and write its outputs.

    Parameters
    ----------
    bold : str
        4D NIfTI.
    events : str, optional
        BIDS events TSV (FLA needs it).
    ratios : sequence of float
        Target ratios (above 1).
    methods : str or list of str
        ``'all'``, a comma list, or a list of names.
    out_dir : str
    haxby : str, optional
        Directory of the Haxby slice (CTA).
    inr_steps : int
        Training steps of the SIREN and NeRF baselines.
    tag : str, optional
        Output names ``bench_<tag>.*``; default: the input's name.
    command : str, optional
        The command line, for the report.
    extra_context : dict, optional
        Extra method context (e.g. ``icainr_config`` or ``video_preset``).
    plots : bool
        Write the PNGs.

    Returns
    -------
    dict
        ``rows``, ``paths`` (output files), ``meta``.
    """
    import pandas as pd

    from .data import load_input
    from .measure import compress_in_child, decompress_in_child
    from .reference import Reference
    from .report import write_outputs

    names = parse_methods(methods) if isinstance(methods, str) else list(methods)
    ratios = [float(r) for r in ratios]
    if not ratios or any(not (math.isfinite(r) and r > 1.0) for r in ratios):
        raise ValueError(f"ratios must be numbers above 1, got {ratios}")
    tag = tag or os.path.basename(os.fspath(bold)).split(".")[0]
    t_start = time.perf_counter()

    log(f"loading {bold}")
    inp = load_input(bold)
    ev = None
    if events:
        ev = pd.read_csv(events, sep="\t")
        missing = {"onset", "duration", "trial_type"} - set(ev.columns)
        if missing:
            raise ValueError(f"{events}: missing column(s) {', '.join(sorted(missing))}")
    log(f"{tuple(inp.shape)} {inp.dtype}, raw {inp.raw_bytes:,} bytes, "
        f"{int(inp.mask.sum()):,} mask voxels; original's parcellation"
        + (", t-maps" if ev is not None else "") + " and region signals")
    ref = Reference(inp, ev)

    meta = dict(environment(), tag=tag,
                command=command or " ".join(shlex.quote(a) for a in sys.argv),
                date=datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                input={"path": os.fspath(bold), "shape": list(inp.shape),
                       "dtype": str(inp.dtype), "raw_bytes": inp.raw_bytes,
                       "mask_voxels": int(inp.mask.sum()), "tr": inp.tr,
                       "events": os.fspath(events) if events else None},
                ratios=ratios, methods=names, inr_steps=int(inr_steps),
                tolerance=TOLERANCE, n_parcels=ref.ctx.options["n_parcels"],
                metrics_skipped=ref.skipped, knobs={}, notes=[])
    context = dict(inp.context(), inr_steps=int(inr_steps), seed=0, **(extra_context or {}))

    hax = None
    rows = [_row("original", None, knob="-", ratio=1.0, bytes=inp.raw_bytes,
                 note="uncompressed reference")]
    if haxby:
        from .haxby import cta_columns, cta_scores, load_haxby

        log(f"loading the Haxby slice from {haxby}; original's decoding scores")
        h_inp, labels, chunks = load_haxby(haxby)
        h_ref = cta_scores(h_inp, h_inp.data, labels, chunks)
        hax = {"inp": h_inp, "labels": labels, "chunks": chunks, "ref": h_ref,
               "context": dict(h_inp.context(), inr_steps=int(inr_steps), seed=0,
                               **(extra_context or {}))}
        meta["haxby"] = {"path": os.fspath(haxby), "shape": list(h_inp.shape),
                         "raw_bytes": h_inp.raw_bytes, "mask_voxels": int(h_inp.mask.sum()),
                         "original": h_ref}
        rows[0].update(cta_columns(h_ref), haxby_ratio=1.0)

    details = {}
    with tempfile.TemporaryDirectory(prefix="icainr-bench-") as tmp:
        data_path, mask_path = os.path.join(tmp, "data.npy"), os.path.join(tmp, "mask.npy")
        np.save(data_path, inp.data)
        np.save(mask_path, inp.mask)

        def quality(decoded):
            return metrics.psnr(inp.data, inp.as_written(decoded), inp.mask)

        for name in names:
            method = make_method(name, context)
            meta["knobs"][name] = method.knob_doc
            targets = [None] if method.lossless else ratios
            for target in targets:
                where = f"{name}" + (f" @ {target:g}" if target else " (lossless)")
                row = _row(name, target)
                try:
                    _evaluate(method, name, target, inp, ref, context, quality, data_path,
                              mask_path, tmp, row, details, where,
                              compress_in_child, decompress_in_child)
                except OutOfReach as exc:
                    row["note"] = f"target out of reach: {exc}"
                    log(f"{where}: {row['note']}")
                except Exception as exc:  # a method's failure must not end the run
                    row["note"] = f"error: {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
                    log(f"{where}: {row['note']}")
                if hax is not None:
                    _evaluate_haxby(name, target, hax, row, details)
                rows.append(row)
                meta["elapsed_s"] = time.perf_counter() - t_start
                paths = write_outputs(out_dir, tag, rows, meta, details, plots=False)
    if not any(r.get("ratio") for r in rows[1:]):
        meta["notes"].append("no method produced a result")
    meta["elapsed_s"] = time.perf_counter() - t_start
    paths = write_outputs(out_dir, tag, rows, meta, details, plots=plots)
    log(f"done in {meta['elapsed_s']:.0f} s: " + ", ".join(paths.values()))
    return {"rows": rows, "paths": paths, "meta": meta}


def _evaluate(method, name, target, inp, ref, context, quality, data_path, mask_path, tmp,
              row, details, where, compress_in_child, decompress_in_child):
    log(f"{where}: searching the knob")
    t0 = time.perf_counter()
    choice = method.search(inp.data, inp.mask, target, inp.raw_bytes, quality)
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
    row.update(ratio=ratio, bytes=n_bytes, compress_s=comp["seconds"],
               decompress_s=dec["seconds"], compress_peak_mb=comp["peak_mb"],
               decompress_peak_mb=dec["peak_mb"])
    log(f"{where}: ratio {ratio:.1f}; metrics")
    if np.array_equal(decoded, inp.data):
        notes.append("decoded run identical to the original")
    columns, metric_details, metric_notes = ref.compare(decoded)
    row.update(columns)
    notes += metric_notes
    details.setdefault(name, {})[str(target)] = {"metrics": metric_details}
    details[name][str(target)].update(knob=choice.knob, evaluations=choice.evaluations,
                                      info=info)
    row["note"] = "; ".join(n for n in notes if n)
    shown = [(c.key, c.fmt) for c in ref.columns if row.get(c.key) is not None]
    log(f"{where}: " + ", ".join(f"{k} {f.format(row[k])}" for k, f in shown[:6]))


def _evaluate_haxby(name, target, hax, row, details):
    from .haxby import cta_columns, cta_scores

    h_inp = hax["inp"]
    where = f"{name}" + (f" @ {target:g}" if target else "") + " on Haxby"
    try:
        method = make_method(name, hax["context"])

        def quality(decoded):
            return metrics.psnr(h_inp.data, h_inp.as_written(decoded), h_inp.mask)

        choice = method.search(h_inp.data, h_inp.mask, target, h_inp.raw_bytes, quality)
        blob = choice.payload if choice.payload is not None else \
            method.encode(h_inp.data, h_inp.mask, choice.knob)
        decoded = h_inp.as_written(method.decode(blob))
        scores = cta_scores(h_inp, decoded, hax["labels"], hax["chunks"])
        row.update(cta_columns(scores), haxby_ratio=h_inp.raw_bytes / len(blob),
                   haxby_knob=method.label(choice.knob))
        details.setdefault(name, {}).setdefault(str(target), {})["haxby"] = {
            "knob": choice.knob, "scores": scores, "bytes": len(blob)}
        log(f"{where}: ratio {row['haxby_ratio']:.1f}, " + ", ".join(
            f"{p} accuracy {scores[p]['accuracy']:.3f} (original "
            f"{hax['ref'][p]['accuracy']:.3f})" for p in scores))
    except Exception as exc:
        text = str(exc).splitlines()[0][:200] if str(exc) else ""
        reason = ("target out of reach: " if isinstance(exc, OutOfReach)
                  else f"error: {type(exc).__name__}: ") + text
        row["note"] = "; ".join(n for n in (row.get("note"), f"Haxby: {reason}") if n)
        log(f"{where}: {reason}")
