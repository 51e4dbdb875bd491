"""Join several ``icainr bench`` runs into one table, one summary and one set of curves.

Usage::

    python benchmarks/merge_bench.py OUT_PREFIX bench_a.json bench_b.json ...

A corpus benchmark is long (H.265's knob search alone takes most of an hour on a
large run), so methods and ratios can run separately and be joined here: rows
are keyed by (run, method, target ratio), a later file's row replacing an
earlier one's, and each run's ``original`` row kept once. Writes
``OUT_PREFIX.csv``, ``OUT_PREFIX.md`` (the wins/losses summary of the default
preset against the best peer, recomputed over the joined rows, then one table
per run) and the benchmark's rate-distortion PNGs. Each run's own command,
machine and date stay in its ``.md``; the joined ``.md`` lists them.
"""

import json
import os
import sys

from nipype_icainr.bench import report
from nipype_icainr.bench.runner import run_name
from nipype_icainr.bench.summary import summarize
from nipype_icainr.io import write_atomic

EXTRA_PLOTS = [("cta_accuracy_face_house", "CTA: face vs house decoding accuracy (Haxby)",
                "cta_face_house")]
#: column names of bench results written before the QC metric registry -> today's
RENAMED = {"psnr": "psnr_db", "fla_mean": "fla_mean_abs_dt", "fla_std": "fla_std_abs_dt",
           "fca_mean": "fca_mean_abs_dr", "fca_std": "fca_std_abs_dr",
           "cta_face_house_acc": "cta_accuracy_face_house",
           "cta_face_house_auc": "cta_auc_face_house", "cta_all8_acc": "cta_accuracy_all8",
           "cta_all8_auc": "cta_auc_all8"}


def merge(paths):
    """``(rows, sources, runs)``: the joined rows, ``(path, tag, date, command, rescored)``
    per file (``rescored``: what ``rescore_fca.py`` recorded, or None),
    and the runs' descriptions."""
    rows, sources, runs, masks = {}, [], {}, {}
    for path in paths:
        with open(path, encoding="utf-8") as fh:
            record = json.load(fh)
        meta = record.get("meta", {})
        sources.append((path, meta.get("tag"), meta.get("date"), meta.get("command"),
                        meta.get("rescored")))
        for run in meta.get("runs", []):
            # the latest description, as the latest rows replace earlier ones: the brain
            # mask of a run changed between benchmark runs (pymvpa: 18 voxels, then 70
            # once the mask's opening was kept only where it keeps half the brain), and
            # the first file's description named a mask no metric row used
            if run.get("mask_voxels") is not None or run["run"] not in runs:
                runs[run["run"]] = run
            masks[(os.path.basename(path), run["run"])] = run.get("mask_voxels")
        for row in record["rows"]:
            row = {RENAMED.get(k, k): v for k, v in row.items()}
            # single-run results of earlier versions named the input in meta only
            row.setdefault("run", run_name(meta["input"]["path"]) if "input" in meta else "")
            key = (row["run"], row["method"], row.get("target_ratio"))
            if row["method"] == "original" and key in rows:
                continue
            rows[key] = dict(row, source=os.path.basename(path))
    _check_masks(rows.values(), masks)
    ordered = sorted(rows.values(), key=lambda r: (
        list(dict.fromkeys(k[0] for k in rows)).index(r["run"]), r["method"] != "original",
        r["method"], r.get("target_ratio") or 0))
    return ordered, sources, list(runs.values())


def _check_masks(rows, masks):
    """Refuse to join rows of one run measured in different brain masks (a figure in
    one mask is not comparable with another's); files that do not record the mask
    are not checked."""
    seen = {}
    for row in rows:
        if row["method"] == "original":
            continue
        voxels = masks.get((row["source"], row["run"]))
        if voxels is not None:
            seen.setdefault(row["run"], {})[voxels] = row["source"]
    for run, by_mask in seen.items():
        if len(by_mask) > 1:
            sys.exit(f"merge_bench: {run}: rows measured in different brain masks "
                     + ", ".join(f"{n} voxels ({src})" for n, src in sorted(by_mask.items())))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 2:
        sys.exit("usage: python benchmarks/merge_bench.py OUT_PREFIX bench_a.json "
                 "[bench_b.json ...]")
    prefix, paths = argv[0], argv[1:]
    rows, sources, runs = merge(paths)
    summary = summarize(rows)
    write_atomic(prefix + ".csv", report.to_csv(rows).encode("utf-8"))
    pngs = report.write_plots(rows, prefix, report.PLOTS + EXTRA_PLOTS)
    first = json.load(open(paths[0]))["meta"]
    meta = dict(first, tag=os.path.basename(prefix), runs=runs,
                command="python benchmarks/merge_bench.py " + " ".join(argv))
    text = report.to_markdown(rows, meta, summary)
    lines = [f"Joined from {len(sources)} icainr bench runs:", ""]
    for p, tag, date, cmd, rescored in sources:
        lines.append(f"- `{os.path.basename(p)}` ({tag}, {date}): `{cmd}`")
        if rescored:
            lines.append(f"  - FCA columns of {rescored['rows']} rows scored again "
                         f"({rescored.get('date', '')}): `{rescored['command']}`"
                         + (f"; left as measured: {'; '.join(rescored['left'])}"
                            if rescored.get("left") else ""))
    write_atomic(prefix + ".md", (text + "\n" + "\n".join(lines) + "\n").encode("utf-8"))
    write_atomic(prefix + ".json", json.dumps(report._sanitize(
        {"meta": meta, "summary": summary, "rows": rows}), indent=1).encode("utf-8"))
    print(f"wrote {prefix}.csv, .md, .json and {len(pngs)} PNGs")


if __name__ == "__main__":
    main()
