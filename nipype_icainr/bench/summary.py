"""Wins and losses: the codec's default preset against the best peer, run by run.

For each metric of ``SUMMARY_METRICS``, each target ratio and each run, the
codec's row (method ``icainr``) is compared with the best value any peer
reached at that target (a peer's row at the target, or a lossless peer whose
ratio is at least ``TOLERANCE`` x the target). A cell is a *win* when the codec
is at least as good, a *loss* otherwise (including when the codec could not
reach the target and a peer could, or reached it with no figure where a peer has
one: the connectivity of a file flat in time); cells no method reached, or where
no peer has the metric, are not counted.
Every loss is listed with the numbers.
"""

import math

from .search import TOLERANCE

OURS = "icainr"
#: column -> (heading, True when higher is better)
SUMMARY_METRICS = {
    "psnr_db": ("PSNR in the mask", True),
    "psnr_full_db": ("full-volume PSNR", True),
    "fla_mean_abs_dt": ("FLA mean |dt|", False),
    "fca_mean_abs_dr": ("FCA, k-means parcels", False),
    "fca_compact_mean_abs_dr": ("FCA, compact parcels", False),
    "fca_power_mean_abs_dr": ("FCA, Power spheres", False),
}


def _number(value):
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if math.isnan(value):
            return None
        return float(value)
    if value == "inf":
        return math.inf
    return None


def summarize(rows, ours=OURS):
    """``{"cells": [...], "totals": {metric: {target: [wins, losses]}}, "losses": [...]}``."""
    targets = sorted({r["target_ratio"] for r in rows if r.get("target_ratio") is not None})
    runs = list(dict.fromkeys(r["run"] for r in rows))
    peers = sorted({r["method"] for r in rows} - {ours, "original"}
                   - {m for m in {r["method"] for r in rows} if m.startswith(ours + "-")})
    cells, losses = [], []
    totals = {m: {str(t): [0, 0] for t in targets} for m in SUMMARY_METRICS}
    for run in runs:
        mine = {r["target_ratio"]: r for r in rows if r["run"] == run and r["method"] == ours}
        for target in targets:
            best = None  # (value, method)
            for r in rows:
                if r["run"] != run or r["method"] not in peers or not r.get("ratio"):
                    continue
                if r.get("target_ratio") not in (target, None):
                    continue
                if r["ratio"] < TOLERANCE * target:
                    continue
                best = best or {}
                for metric, (_, higher) in SUMMARY_METRICS.items():
                    v = _number(r.get(metric))
                    if v is None:
                        continue
                    cur = best.get(metric)
                    if cur is None or (v > cur[0] if higher else v < cur[0]):
                        best[metric] = (v, r["method"], r)
            if not best:
                continue
            row = mine.get(target)
            reached = row is not None and row.get("ratio") and \
                row["ratio"] >= TOLERANCE * target
            for metric, (heading, higher) in SUMMARY_METRICS.items():
                if metric not in best:
                    continue
                peer_value, peer, peer_row = best[metric]
                value = _number(row.get(metric)) if reached else None
                # a peer has the metric, so it applies to the run: a file of ours that
                # reached the ratio without a figure (connectivity of a run flat in
                # time) loses the cell, as one that did not reach it
                win = value is not None and (value >= peer_value if higher
                                             else value <= peer_value)
                cell = {"run": run, "target": target, "metric": metric, "ours": value,
                        "reached": bool(reached), "best_peer": peer,
                        "peer_value": peer_value, "win": win}
                counted = metric.replace("_mean_abs_dr", "_regions")
                if counted != metric:  # FCA: how many regions vary in each decoded run
                    cell["peer_regions"] = _number(peer_row.get(counted))
                    cell["ours_regions"] = _number(row.get(counted)) if reached else None
                cells.append(cell)
                totals[metric][str(target)][0 if win else 1] += 1
                if not win:
                    losses.append(cell)
    return {"peers": peers, "cells": cells, "totals": totals, "losses": losses}


def to_markdown(summary):
    """The summary as Markdown: a wins/losses table and the list of losses."""
    totals = summary["totals"]
    targets = sorted({t for per in totals.values() for t in per}, key=float)
    if not summary["cells"]:
        return ""
    lines = ["## Wins and losses of the default preset", "",
             f"Against the best of {', '.join(summary['peers'])} at each target ratio, run "
             "by run (wins / cells; a cell counts when some method reached the target).", "",
             "| metric | " + " | ".join(f"{float(t):g}x" for t in targets) + " |",
             "|---|" + "---|" * len(targets)]
    for metric, (heading, _) in SUMMARY_METRICS.items():
        cells = [totals[metric].get(t, [0, 0]) for t in targets]
        if not any(w + lo for w, lo in cells):
            continue
        lines.append(f"| {heading} | " + " | ".join(f"{w}/{w + lo}" for w, lo in cells) + " |")
    if summary["losses"]:
        lines += ["", "Losses:", ""]
        for c in summary["losses"]:
            ours = (f"{c['ours']:.4g}" if c["ours"] is not None else
                    "no figure" if c.get("reached") else "out of reach")
            regions = ""
            if c.get("peer_regions") is not None and c.get("ours_regions") is not None \
                    and c["peer_regions"] != c["ours_regions"]:
                regions = (f" (regions that vary: ours {c['ours_regions']:g}, "
                           f"{c['best_peer']} {c['peer_regions']:g})")
            lines.append(f"- {c['run']} at {c['target']:g}x, {SUMMARY_METRICS[c['metric']][0]}: "
                         f"ours {ours}, {c['best_peer']} {c['peer_value']:.4g}{regions}")
    return "\n".join(lines) + "\n"
