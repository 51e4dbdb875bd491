"""Run ``init_icainr_wf`` end to end with MultiProc and print what each node took.

Usage (from the repository root)::

    python benchmarks/run_workflow.py [BOLD.nii.gz] [--events EVENTS.tsv] [-w WORKDIR]
                                      [--ratio 100] [--nprocs 2] [--out OUTDIR]

Defaults to the studyforrest run in ../shared/data. Prints the node times (from
a MultiProc status callback), the registration quality and the QC figures, and copies
the report to OUTDIR.
"""

import argparse
import json
import os
import shutil
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RUN = os.path.join(HERE, "..", "..", "shared", "data", "studyforrest", "sub-02", "func",
                   "sub-02_task-oneback_run-1_bold.nii.gz")


class NodeTimer:
    """A MultiProc ``status_callback`` recording each node's start and end."""

    def __init__(self):
        self.start, self.seconds = {}, {}

    def __call__(self, node, status):
        key = node.fullname
        if status == "start":
            self.start[key] = time.perf_counter()
        elif status in ("end", "exception") and key in self.start:
            self.seconds[key] = time.perf_counter() - self.start[key]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bold", nargs="?", default=RUN)
    parser.add_argument("--events")
    parser.add_argument("-w", "--work-dir", default="work/workflow")
    parser.add_argument("--out", default="out/workflow")
    parser.add_argument("--ratio", type=float, default=100.0)
    parser.add_argument("--nprocs", type=int, default=2)
    args = parser.parse_args()
    events = args.events or args.bold.replace("_bold.nii.gz", "_events.tsv")

    from workflows import init_icainr_wf

    wf = init_icainr_wf(ratio=args.ratio, omp_nthreads=args.nprocs)
    wf.base_dir = os.path.abspath(args.work_dir)
    wf.inputs.inputnode.bold_file = os.path.abspath(args.bold)
    wf.inputs.inputnode.events_file = os.path.abspath(events)
    t0 = time.perf_counter()
    timer = NodeTimer()
    graph = wf.run(plugin="MultiProc", plugin_args={"n_procs": args.nprocs,
                                                     "raise_insufficient": False,
                                                     "mp_context": "forkserver",
                                                     "status_callback": timer})
    total = time.perf_counter() - t0
    outputs = {n.name: n for n in graph.nodes()}
    report = outputs["qc_report"].result.outputs.out_report
    qc = json.load(open(outputs["qc_report"].result.outputs.out_json))
    os.makedirs(args.out, exist_ok=True)
    shutil.copyfile(report, os.path.join(args.out, "report.html"))
    print(f"workflow wall time {total:.1f} s (MultiProc, n_procs={args.nprocs})")
    for node, secs in sorted(timer.seconds.items(), key=lambda kv: -kv[1]):
        print(f"  {secs:8.1f} s  {node}")
    print(json.dumps({k: qc[k] for k in ("ratio", "psnr_db", "ssim", "shape")}, indent=1))
    print("FLA", {k: round(v, 4) for k, v in qc["fla"].items() if k.endswith("dt")})
    print("FCA", {k: qc["fca"][k] for k in ("mean_abs_dr", "std_abs_dr", "n_regions", "atlas")})
    print("registration", qc.get("registration"))
    print("report:", os.path.join(args.out, "report.html"))


if __name__ == "__main__":
    main()
