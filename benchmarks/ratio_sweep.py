"""Small real runs at many ratios through the command-line tool: no ratio may break a rule.

    python benchmarks/ratio_sweep.py CORPUS_DIR [--work /tmp/icainr_sweep]
        [--out benchmarks/results/ratio_sweep.md]

A user asks for any ratio, not 25, 50, 100 or 200. On small runs the rate search works
with a few hundred bytes, where every header byte and every section's framing moves
its choices; a ratio that lands between two of them is where a bug hides (one such
ratio, 220x on a 10x10x18x40 run, ended in a traceback). Each run here is compressed
at 16 ratios from 8x to 400x (2^(1/2) apart, then 150, 175, 220 and 300) with
``icainr compress RUN OUT --ratio R``, then decompressed. A call keeps the rules when
it writes a file of at least 0.98 R that decodes to the input's shape and stored
dtype with finite values, or refuses with one line and exit status 2 (a ratio out of
reach). The runs: the corpus's tiny runs (nipy, pymvpa), the first 2, 3 and 7 volumes
of an MNI run, the run itself, and the three cuts of ``small_cuts.py``.
"""

import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from small_cuts import CUTS  # noqa: E402
from user_variants import arguments, check, finish, preamble  # noqa: E402

RATIOS = (8, 11.3, 16, 22.6, 32, 45.3, 64, 90.5, 128, 150, 175, 181, 220, 256, 300, 362)


def runs(corpus, work):
    """``{name: path}``: the runs, the cut ones written under ``work``."""
    import nibabel as nib

    out = {"nipy": os.path.join(corpus, "nipy__functional.nii.gz"),
           "pymvpa": os.path.join(corpus, "pymvpa__haxby2001_run001_bold_25mm.nii.gz"),
           "gift-107": os.path.join(corpus, "gift__sub-107_lowres.nii")}
    mni = nib.load(out["gift-107"])
    for t in (2, 3, 7):
        path = os.path.join(work, f"gift-107_T{t}.nii.gz")
        nib.Nifti1Image(np.asarray(mni.dataobj)[..., :t], mni.affine, mni.header).to_filename(
            path)
        out[f"gift-107 T={t}"] = path
    for name, (source, block) in CUTS.items():
        img = nib.load(os.path.join(corpus, source))
        path = os.path.join(work, name + ".nii.gz")
        nib.Nifti1Image(np.asarray(img.dataobj.get_unscaled())[block], img.affine,
                        img.header).to_filename(path)
        out[name] = path
    return out


def main(argv=None):
    args, tool = arguments(argv, __doc__, "/tmp/icainr_sweep")
    lines = preamble("Small real runs at many ratios",
                     f"python benchmarks/ratio_sweep.py {args.corpus}")
    lines += ["Each cell: the ratio reached and the masked PSNR the tool printed, or `out` (a "
             "one-line refusal, exit 2: the ratio is out of reach).", "",
             "| run | " + " | ".join(f"{r:g}x" for r in RATIOS) + " | broken |",
             "|---" * (len(RATIOS) + 2) + "|"]
    n_broken = 0
    for name, path in runs(args.corpus, args.work).items():
        cells, broken = [], []
        for ratio in RATIOS:
            rc, cell, bad = check(tool, name.replace(" ", "_").replace("=", ""), path,
                                  ["--ratio", f"{ratio:g}"], args.work)
            reached = re.match(r"([0-9.]+)x", cell)
            if rc == 0 and not bad and not (reached and float(reached.group(1)) >= 0.98 * ratio):
                bad = f"ratio {cell.split(',')[0]} short of {ratio:g}x"
            cells.append(cell.replace("x, ", "x ") if rc == 0 else
                         ("out" if rc == 2 and not bad else f"exit {rc}"))
            if bad:
                broken.append(f"{ratio:g}x: {bad}")
        n_broken += len(broken)
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {'; '.join(broken) or 'none'} |")
        print(lines[-1], flush=True)
    lines += ["", f"{n_broken} call(s) broke a rule."]
    return finish(lines, args.out, n_broken, "call(s)")


if __name__ == "__main__":
    sys.exit(main())
