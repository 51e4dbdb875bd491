"""Score the FCA columns of committed ``icainr bench`` results again, with today's yardstick.

Usage::

    python benchmarks/rescore_fca.py PART.json [PART.json ...] [--skip METHOD@RUN ...]

The parts are given in the order ``merge_bench.py`` joins them; only the rows
that survive the join (a later part's row replaces an earlier one's) are scored.
For each such row the method encodes the run again with the knob the benchmark
chose (stored in the part's details), the payload must have the recorded size
(else the row is left as it was and listed), and the decoded run's FCA columns
(k-means parcels, compact parcels, Power spheres) replace the recorded ones.
Nothing else in the row changes: ratio, PSNR, times and memory stay as measured.

Why: the yardstick used to z-score region signals with nilearn, which blows the
rounding left in a region the decoded run holds constant up to unit variance; those
regions were scored on the correlations of that noise (or dropped, when the
rounding was exactly zero). A constant region now keeps its pairs with r = 0
(``qc.connectivity.fca_from_signals``).

Each part is rewritten in place (atomically, after each run), with
``meta["rescored"]`` naming this command, the date and the rows left alone.
"""

import argparse
import datetime
import json
import os
import sys

from nipype_icainr.bench.data import load_input
from nipype_icainr.bench.methods import make_method
from nipype_icainr.bench.reference import Reference
from nipype_icainr.bench.runner import run_name
from nipype_icainr.io import write_atomic

FCA_METRICS = ("fca", "fca_compact", "fca_power")
LOSSLESS = ("zstd", "gzip")


def surviving_rows(parts):
    """``{(run, method, target): part path}`` of the rows the join keeps."""
    keep = {}
    for path in parts:
        with open(path, encoding="utf-8") as fh:
            for row in json.load(fh)["rows"]:
                keep[(row["run"], row["method"], row.get("target_ratio"))] = path
    return keep


def load_run(run):
    """The run's ``BenchInput`` as the benchmark loaded it (the Haxby folder too)."""
    if os.path.isdir(run["path"]):
        from nipype_icainr.bench.haxby import load_haxby

        return load_haxby(run["path"])[0]
    return load_input(run["path"])


def rescore_part(path, keep, skip, log):
    with open(path, encoding="utf-8") as fh:
        record = json.load(fh)
    meta, rows, details = record["meta"], record["rows"], record.get("details", {})
    done, left = [], []
    runs = meta.get("runs")
    if runs is None and "input" in meta:  # a single-run result of an earlier version
        runs = [dict(meta["input"], run=run_name(meta["input"]["path"]))]
    for run in runs or []:
        mine = [r for r in rows if r["run"] == run["run"] and r.get("bytes")
                and r["method"] not in ("original",) + LOSSLESS
                and keep.get((r["run"], r["method"], r.get("target_ratio"))) == path]
        if not mine:
            continue
        if not os.path.exists(run["path"]):
            left += [f"{r['run']} {r['method']} {r.get('target_ratio')}: "
                     f"{run['path']} not present" for r in mine]
            continue
        inp = load_run(run)
        if int(inp.mask.sum()) != int(run["mask_voxels"]):
            left += [f"{r['run']} {r['method']} {r.get('target_ratio')}: the mask is now "
                     f"{int(inp.mask.sum())} voxels, {run['mask_voxels']} when measured"
                     for r in mine]
            continue
        ref = Reference(inp, metrics=FCA_METRICS, in_mni=run.get("in_mni"))
        context = dict(inp.context(), inr_steps=int(meta.get("inr_steps") or 0), seed=0)
        for row in mine:
            where = f"{row['run']} {row['method']} {row.get('target_ratio')}"
            if f"{row['method']}@{row['run']}" in skip:
                left.append(f"{where}: skipped (--skip)")
                continue
            key = f"{row['run']}|{row['method']}|{row.get('target_ratio')}"
            knob = details.get(key, {}).get("knob")
            if knob is None:
                left.append(f"{where}: no knob recorded")
                continue
            method = make_method(row["method"], context)
            payload = method.encode(inp.data, inp.mask, knob)
            if len(payload) != row["bytes"]:
                left.append(f"{where}: {len(payload):,} bytes now, {row['bytes']:,} measured")
                continue
            decoded = inp.as_written(method.decode(payload))
            columns, metric_details, _ = ref.compare(decoded)
            before = {k: row.get(k) for k in columns}
            for name in FCA_METRICS:
                for suffix in ("_mean_abs_dr", "_std_abs_dr", "_regions"):
                    if name + suffix in row or name + suffix in columns:
                        row[name + suffix] = columns.get(name + suffix)
                if key in details and name in metric_details:
                    details[key].setdefault("metrics", {})[name] = metric_details[name]
            changed = {k: (before[k], columns[k]) for k in columns if before[k] != columns[k]
                       and not (isinstance(before[k], float) and isinstance(columns[k], float)
                                and abs(before[k] - columns[k]) < 1e-9)}
            log(f"{where}: " + (", ".join(f"{k} {a} -> {b}" for k, (a, b) in changed.items())
                                if changed else "unchanged"))
            done.append(where)
        _save(path, record, done, left)  # after each run: a long part keeps what is done
    _save(path, record, done, left)
    return done, left


def _save(path, record, done, left):
    record["meta"]["rescored"] = {
        "command": "python benchmarks/rescore_fca.py " + " ".join(sys.argv[1:]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "what": "FCA columns scored again (a region constant in the decoded run: r = 0)",
        "rows": len(done), "left": list(left)}
    write_atomic(path, json.dumps(record, indent=1).encode("utf-8"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="+")
    parser.add_argument("--skip", nargs="*", default=[], help="METHOD@RUN rows left alone")
    args = parser.parse_args(argv)
    keep = surviving_rows(args.parts)

    def log(text):
        print(text, flush=True)

    for path in args.parts:
        done, left = rescore_part(path, keep, set(args.skip), log)
        log(f"{path}: {len(done)} rows scored again, {len(left)} left alone")
        for line in left:
            log(f"  left: {line}")


if __name__ == "__main__":
    main()
