"""Benchmark outputs: CSV, Markdown, JSON and rate-distortion PNGs, each written atomically.

Every file goes through ``nipype_icainr.io.write_atomic`` (a temporary file in
the output directory, fsynced and renamed into place), so a reader never sees a
half-written table and an interrupted run leaves the previous complete outputs.
"""

import csv
import io
import json
import math
import os

from ..io import write_atomic

def _columns():
    """CSV/Markdown columns, in order: ``(key, Markdown heading, format)``.

    The run's QC columns come from the metric registry (``nipype_icainr.qc``);
    CTA columns are per decoding problem of the Haxby slice (``haxby.PROBLEMS``).
    """
    from .. import qc
    from .haxby import PROBLEMS

    cta = qc.get("cta").columns
    metric_cols = [(c.key, c.heading, c.fmt) for c in qc.columns()
                   if c not in cta]
    haxby_cols = [(f"{c.key}_{p}", f"{c.heading} {p}", c.fmt) for p in PROBLEMS for c in cta]
    return ([("run", "run", "{}"), ("method", "method", "{}"),
             ("target_ratio", "target", "{:g}"),
             ("knob", "setting", "{}"), ("ratio", "ratio", "{:.1f}"), ("bytes", "bytes", "{:,}")]
            + metric_cols
            + [("compress_s", "compress s", "{:.1f}"), ("decompress_s", "decompress s", "{:.1f}"),
               ("compress_peak_mb", "compress MB", "{:.0f}"),
               ("decompress_peak_mb", "decompress MB", "{:.0f}"),
               ("search_s", "search s", "{:.1f}")]
            + haxby_cols
            + [("note", "note", "{}")])


COLUMNS = _columns()

PLOTS = [("psnr_db", "PSNR (dB, brain mask)", "psnr"),
         ("psnr_full_db", "full-volume PSNR (dB)", "psnr_full"),
         ("fla_mean_abs_dt", "FLA: mean |Δt| over conditions", "fla"),
         ("fca_mean_abs_dr", "FCA: mean |Δr|, k-means parcels", "fca"),
         ("fca_compact_mean_abs_dr", "FCA: mean |Δr|, compact parcels", "fca_compact"),
         ("fca_power_mean_abs_dr", "FCA: mean |Δr|, Power spheres", "fca_power"),
         ("cta_accuracy_all8", "CTA: 8-class decoding accuracy (Haxby)", "cta")]


def _cell(value, fmt, csv_mode=False):
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        if csv_mode:
            return repr(float(f"{value:.6g}"))
    if csv_mode:
        return str(value)
    try:
        return fmt.format(value)
    except (ValueError, TypeError):
        return str(value)


def to_csv(rows):
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([key for key, _, _ in COLUMNS])
    for row in rows:
        writer.writerow([_cell(row.get(key), fmt, csv_mode=True) for key, _, fmt in COLUMNS])
    return buf.getvalue()


def to_markdown(rows, meta, summary=None):
    """The report: the command and machine, the definitions, the wins/losses summary,
    then one table per run (only the columns that hold values)."""
    from .summary import to_markdown as summary_markdown

    lines = [f"# icainr bench: {meta['tag']}", ""]
    lines += [f"- command: `{meta['command']}`",
              f"- date: {meta['date']}",
              f"- machine: {meta.get('platform', '?')}, {meta.get('cpu_count', '?')} CPUs",
              f"- torch {meta.get('torch', '?')} on {meta.get('torch_device', '?')}",
              "- packages: " + ", ".join(f"{k} {v}"
                                         for k, v in meta.get("versions", {}).items()),
              ""]
    for run in meta.get("runs", []):
        lines.append(f"- run `{run['run']}`: `{run['path']}`, shape {tuple(run['shape'])}, "
                     f"stored {run['dtype']}, raw {run['raw_bytes']:,} bytes, "
                     f"{run['mask_voxels']:,} brain-mask voxels"
                     + (", MNI space" if run.get("in_mni") else "")
                     + (f", events `{run['events']}`" if run.get("events") else ""))
    lines += [
        "",
        "- ratio = raw array bytes in the stored dtype / compressed bytes (every header "
        "byte counted); a setting fits target r when its ratio >= 0.98 r.",
        "- knob search: continuous knobs bisected, integer knobs scanned; the "
        "highest-quality fitting setting kept (see `nipype_icainr/bench/search.py`).",
        "- PSNR/SSIM over the brain mask on the decoded run as written in the stored "
        "dtype (full-volume PSNR: every voxel, range of the whole run); FLA = |Δt| of every "
        "condition's GLM t-map (nilearn FirstLevelModel) in the mask, for runs with events; "
        "FCA = |Δr| over region pairs of k-means parcels of the original (fca; at most 39, "
        "a quarter of the mask's voxels), as many spatially compact parcels (fca_compact) "
        "and the Power-2011 spheres for MNI-space runs (fca_power); CTA = linear SVM, "
        "10-fold CV on the Haxby slice. Times and peak memory: fresh child process each.",
        ""]
    if summary:
        lines += [summary_markdown(summary)]
    for run in dict.fromkeys(r["run"] for r in rows):
        mine = [r for r in rows if r["run"] == run]
        keys = [c for c in COLUMNS if c[0] != "run"
                and any(r.get(c[0]) not in (None, "") for r in mine)]
        lines += [f"## {run}", ""]
        lines.append("| " + " | ".join(h for _, h, _ in keys) + " |")
        lines.append("|" + "|".join("---" for _ in keys) + "|")
        for row in mine:
            cells = [_cell(row.get(k), f).replace("|", "/") for k, _, f in keys]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    if meta.get("knobs"):
        lines += ["## Knobs", ""]
        lines += [f"- **{name}**: {doc}" for name, doc in meta["knobs"].items()]
    if meta.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {n}" for n in meta["notes"]]
    return "\n".join(lines) + "\n"


def _sanitize(obj):
    if isinstance(obj, float) and (math.isnan(obj) or math.isinf(obj)):
        return None if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, dict):
        return {str(k): _sanitize(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_sanitize(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):
        try:
            return _sanitize(obj.item())
        except (ValueError, TypeError):
            return str(obj)
    return obj


def _draw(ax, rows, key, reference):
    """One line per method of ``key`` against the achieved ratio (log x) on ``ax``."""
    from matplotlib.ticker import FuncFormatter

    methods = list(dict.fromkeys(r["method"] for r in rows if r["method"] != "original"))
    drawn = 0
    for i, m in enumerate(methods):
        pts = [(r.get("ratio"), r.get(key)) for r in rows if r["method"] == m]
        pts = sorted((x, y) for x, y in pts
                     if isinstance(x, (int, float)) and isinstance(y, (int, float))
                     and math.isfinite(x) and math.isfinite(y) and x > 0)
        if not pts:
            continue
        xs, ys = zip(*pts)
        # matplotlib has ten cycle colours: past ten methods the line style tells them apart
        cycle = (i // 10) % 3
        ax.plot(xs, ys, marker=("o", "^", "D")[cycle] if len(pts) > 1 else "s", label=m,
                linestyle=("-", "--", "-.")[cycle] if len(pts) > 1 else "none",
                color=f"C{i % 10}")
        drawn += 1
    if reference is not None and isinstance(reference, (int, float)) and math.isfinite(reference):
        ax.axhline(reference, color="k", linestyle=":", label="original")
    ax.set_xscale("log")
    plain = FuncFormatter(lambda v, _: f"{v:g}")
    # minor labels at 2, 3 and 5 x 10^n only: all nine overlap on a wide range
    sparse = FuncFormatter(lambda v, _: f"{v:g}" if v > 0 and round(
        v / 10 ** math.floor(math.log10(v))) in (2, 3, 5) else "")
    ax.xaxis.set_major_formatter(plain)
    ax.xaxis.set_minor_formatter(sparse)
    ax.tick_params(axis="x", which="minor", labelsize=7)
    ax.grid(True, which="both", alpha=0.3)
    return drawn


def plot(rows, key, ylabel, path):
    """``key`` against the achieved ratio, one panel per run that has values; returns
    False (and writes nothing) when no run has one."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [run for run in dict.fromkeys(r.get("run", "") for r in rows)
            if any(isinstance(r.get(key), (int, float)) and math.isfinite(r[key])
                   for r in rows if r.get("run", "") == run and r["method"] != "original")]
    if not runs:
        return False
    n_cols = min(3, len(runs))
    n_rows = math.ceil(len(runs) / n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(5.2 * n_cols, 3.8 * n_rows), dpi=100,
                             squeeze=False)
    for ax, run in zip(axes.ravel(), runs):
        mine = [r for r in rows if r.get("run", "") == run]
        original = next((r for r in mine if r["method"] == "original"), {})
        _draw(ax, mine, key, original.get(key) if key.startswith("cta") else None)
        ax.set_title(run or key, fontsize=9)
        ax.set_xlabel("ratio (raw stored array / compressed bytes)", fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.legend(fontsize=7)
    for ax in axes.ravel()[len(runs):]:
        ax.axis("off")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    write_atomic(path, buf.getvalue())
    return True


def write_outputs(out_dir, tag, rows, meta, details=None, summary=None, plots=True):
    """Write ``bench_<tag>.csv``, ``.md``, ``.json`` and the PNGs; returns their paths."""
    os.makedirs(out_dir, exist_ok=True)
    base = os.path.join(out_dir, f"bench_{tag}")
    paths = {"csv": base + ".csv", "md": base + ".md", "json": base + ".json"}
    write_atomic(paths["csv"], to_csv(rows).encode("utf-8"))
    write_atomic(paths["md"], to_markdown(rows, meta, summary).encode("utf-8"))
    record = {"meta": meta, "summary": summary or {}, "rows": rows, "details": details or {}}
    write_atomic(paths["json"],
                 json.dumps(_sanitize(record), indent=1).encode("utf-8"))
    if plots:
        paths.update(write_plots(rows, base))
    return paths


def write_plots(rows, base, plots=PLOTS):
    """``<base>_<suffix>.png`` for each ``(key, label, suffix)`` of ``plots`` that has
    values; CTA plots carry the original's accuracy as a reference line.
    Returns {suffix: path}."""
    paths = {}
    for key, label, suffix in plots:
        path = f"{base}_{suffix}.png"
        if plot(rows, key, label, path):
            paths[suffix] = path
    return paths
