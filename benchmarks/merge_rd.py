"""Rate-distortion curves from several ``icainr bench`` runs of the same input.

Usage::

    python benchmarks/merge_rd.py OUT_PREFIX bench_a.json bench_b.json ...

One ``icainr bench`` run covers the ratios it was given; the H.265 search alone
takes most of an hour here, so the committed results come from runs at
different ratio sets. This script joins their rows (one ``original`` row, the
first seen; every other row kept, so a method's points from every run form one
curve) and writes ``OUT_PREFIX.csv`` plus ``OUT_PREFIX_{psnr,fla,fca,cta,
cta_face_house}.png`` with the benchmark's own plotting code, and
``OUT_PREFIX.md`` naming the runs it joined. Each run's own command, machine
and date stay in its ``.md``.
"""

import json
import os
import sys

from nipype_icainr.bench import report
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
    """``(rows, sources)``: the joined rows and ``(path, tag, date, command)`` per run."""
    rows, sources, have_original = [], [], False
    for path in paths:
        with open(path, encoding="utf-8") as fh:
            record = json.load(fh)
        meta = record.get("meta", {})
        sources.append((path, meta.get("tag"), meta.get("date"), meta.get("command")))
        for row in record["rows"]:
            if row["method"] == "original":
                if have_original:
                    continue
                have_original = True
            row = {RENAMED.get(k, k): v for k, v in row.items()}
            rows.append(dict(row, source=os.path.basename(path)))
    return rows, sources


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 2:
        sys.exit("usage: python benchmarks/merge_rd.py OUT_PREFIX bench_a.json [bench_b.json ...]")
    prefix, paths = argv[0], argv[1:]
    rows, sources = merge(paths)
    write_atomic(prefix + ".csv", report.to_csv(rows).encode("utf-8"))
    pngs = report.write_plots(rows, prefix, report.PLOTS + EXTRA_PLOTS)
    lines = [f"# Rate-distortion curves joined from {len(sources)} icainr bench runs", "",
             "- joined by: `python benchmarks/merge_rd.py " + " ".join(argv) + "`", ""]
    lines += [f"- `{os.path.basename(p)}` ({tag}, {date}): `{cmd}`"
              for p, tag, date, cmd in sources]
    write_atomic(prefix + ".md", ("\n".join(lines) + "\n").encode("utf-8"))
    print(f"wrote {prefix}.csv, {prefix}.md and {len(pngs)} PNGs")


if __name__ == "__main__":
    main()
