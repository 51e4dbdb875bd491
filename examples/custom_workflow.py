"""Using nipype-icainr's interfaces in your own Nipype workflow.

Compress every run of a list, decompress it and write a QC report, with Nipype
caching and MultiProc. Run as a script::

    python examples/custom_workflow.py BOLD.nii.gz [BOLD2.nii.gz ...] -w work --ratio 50

or import ``build_workflow`` and connect it to your own nodes.
"""

import argparse
import os

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from nipype_icainr.interfaces import ICAINRCompress, ICAINRDecompress, QCReport


def build_workflow(bold_files, ratio=100.0, config_file=None, name="my_icainr"):
    """Compress -> decompress -> QCReport for each file in ``bold_files`` (an iterable)."""
    wf = pe.Workflow(name=name)
    source = pe.Node(niu.IdentityInterface(fields=["bold_file"]), name="source")
    source.iterables = ("bold_file", list(bold_files))
    compress = pe.Node(ICAINRCompress(ratio=ratio, device="cpu"), name="compress")
    if config_file:
        compress.inputs.config_file = config_file
    decompress = pe.Node(ICAINRDecompress(device="cpu"), name="decompress")
    report = pe.Node(QCReport(), name="report")
    wf.connect([
        (source, compress, [("bold_file", "in_file")]),
        (compress, decompress, [("out_file", "in_file")]),
        (source, report, [("bold_file", "original")]),
        (compress, report, [("out_file", "compressed"), ("fit_seconds", "fit_seconds")]),
        (decompress, report, [("out_file", "decompressed"), ("seconds", "decompress_seconds")]),
    ])
    return wf


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bold_files", nargs="+")
    parser.add_argument("-w", "--work-dir", default="work")
    parser.add_argument("--ratio", type=float, default=100.0)
    parser.add_argument("--config")
    args = parser.parse_args(argv)
    wf = build_workflow([os.path.abspath(f) for f in args.bold_files], args.ratio, args.config)
    wf.base_dir = os.path.abspath(args.work_dir)
    # forkserver: forking a process that already ran PyTorch/OpenMP threads can deadlock
    return wf.run(plugin="MultiProc", plugin_args={"n_procs": 2, "mp_context": "forkserver"})


if __name__ == "__main__":
    main()
