"""Group level: every run's QC row -> one TSV and one HTML report of the distributions."""

import glob
import os

import numpy as np

from nipype_icainr import qc
from nipype_icainr.codec.errors import ICAINRError

#: the distributions shown: the ratio and every QC column marked for the group report
METRICS = [("ratio", "compression ratio")] + [(c.key, c.heading) for c in qc.columns() if c.group]


def collect_qc(output_dir):
    """All ``*_desc-icainr_qc.tsv`` rows of a derivatives dataset, as a DataFrame."""
    import pandas as pd

    files = sorted(glob.glob(os.path.join(output_dir, "sub-*", "**", "*_desc-icainr_qc.tsv"),
                             recursive=True))
    if not files:
        raise ICAINRError(output_dir, "no *_desc-icainr_qc.tsv found; run the participant "
                                      "level first")
    return pd.concat([pd.read_csv(f, sep="\t", na_values="n/a") for f in files],
                     ignore_index=True)


def plot_distributions(table, out_png):
    from nipype_icainr.qc.figures import pyplot

    plt = pyplot()
    fig, axes = plt.subplots(1, len(METRICS), figsize=(3.2 * len(METRICS), 3.4))
    rng = np.random.default_rng(0)
    for ax, (col, label) in zip(axes, METRICS):
        vals = table[col].dropna().to_numpy(dtype=float) if col in table else np.zeros(0)
        if len(vals):
            ax.boxplot(vals, widths=0.5, showfliers=False)
            ax.scatter(1 + rng.uniform(-0.12, 0.12, len(vals)), vals, s=14, color="tab:red",
                       zorder=3)
        ax.set_title(label, fontsize=10)
        ax.set_xticks([])
    fig.suptitle(f"{len(table)} run(s)")
    fig.tight_layout()
    fig.savefig(out_png, dpi=80)
    plt.close(fig)


def run_group(args):
    import tempfile

    from nipype_icainr import report
    from nipype_icainr.io import write_text_atomic
    from nipype_icainr.provenance import analysis_versions

    output_dir = os.path.abspath(args.output_dir)
    if not os.path.isfile(os.path.join(output_dir, "dataset_description.json")):
        raise ICAINRError(output_dir, "not a derivatives dataset of this app (no "
                                      "dataset_description.json); run the participant level")
    table = collect_qc(output_dir)
    tsv = os.path.join(output_dir, "group_desc-icainr_qc.tsv")
    write_text_atomic(tsv, table.to_csv(sep="\t", index=False, na_rep="n/a"))
    with tempfile.TemporaryDirectory() as scratch:
        png = os.path.join(scratch, "group.png")
        plot_distributions(table, png)
        summary = []
        for col, label in METRICS:
            vals = table[col].dropna() if col in table else []
            if len(vals):
                summary.append((label, f"{vals.median():.3f}",
                                f"median over {len(vals)} run(s); range {vals.min():.3f} to "
                                f"{vals.max():.3f}"))
        rows = [["run"] + [label for _, label in METRICS]] + [
            [r["source"]] + [report.fmt(r.get(c)) for c, _ in METRICS] for _, r in table.iterrows()]
        html_text = report.render_report(
            "group report", summary,
            [{"title": "Distributions across runs", "rows": [],
              "figures": [report.embed_png(png, "distributions")]},
             {"title": "Runs", "rows": rows, "figures": []}],
            analysis_versions())
    write_text_atomic(os.path.join(output_dir, "group_desc-icainr_report.html"), html_text)
    print(f"icainr-bids: group level over {len(table)} run(s): {tsv}")
    return 0
