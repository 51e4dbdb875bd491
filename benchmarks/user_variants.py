"""Real runs as users bring them: other dtypes, scalings, signs, lengths and shapes.

    python benchmarks/user_variants.py CORPUS_DIR [--work /tmp/icainr_variants]
        [--out benchmarks/results/user_variants.md]

Each variant is made from a real corpus run (an MNI-space float32 run and a native
int16 run), written as NIfTI and passed through the command-line tool as a user
would: ``icainr compress VARIANT OUT --ratio R`` at 25, 100 and 200x and with
``--lossless``, then ``icainr decompress``. For every call the table gives the exit
status, the ratio and the masked PSNR the tool printed, and whether the decoded
file has the input's shape and stored dtype, has NaN and Inf exactly where the input
has them, and (``--lossless``) is bit-exact; an error must be one line with exit status 2. The last column flags
any call that broke one of these rules (none should).
"""

import argparse
import datetime
import os
import re
import subprocess
import sys

import numpy as np


def variants(corpus, work):
    """``{name: (path, what it is)}``: the variants, written under ``work``."""
    import nibabel as nib

    mni = nib.load(os.path.join(corpus, "gift__sub-107_lowres.nii"))
    g = np.asarray(mni.dataobj, dtype=np.float32)
    native = nib.load(os.path.join(corpus, "qap__functional_scan.nii.gz"))
    q = np.asarray(native.dataobj)[..., :40]
    out = {}

    def save(name, what, arr, img, dtype=None, slope=None):
        new = nib.Nifti1Image(arr, img.affine)
        new.header.set_zooms(img.header.get_zooms()[:3] + (2.0,) * (arr.ndim - 3))
        if dtype is not None:
            new.set_data_dtype(dtype)
        if slope is not None:
            new.header.set_slope_inter(*slope)
        path = os.path.join(work, name + ".nii.gz")
        new.to_filename(path)
        out[name] = (path, what)

    mean = g.mean(-1, keepdims=True)
    save("float64", "the MNI run as float64", g.astype(np.float64), mni)
    save("demeaned", "the MNI run minus its mean (negative values)", g - mean, mni)
    save("psc", "percent signal change in the brain, 0 elsewhere",
         np.where(mean > 100, 100 * (g - mean) / np.maximum(mean, 1), 0).astype(np.float32), mni)
    save("nan", "the MNI run with NaN outside the brain (as SPM writes it)", np.where(
        mean > 0.2 * mean.mean(), g, np.float32(np.nan)), mni)
    with_nan = g.copy()
    with_nan[13, 15, 11, 5], with_nan[12, 15, 11, 9] = np.nan, -np.inf
    save("nan-inf", "the MNI run with a NaN at one time point and a -Inf in the brain",
         with_nan, mni)
    save("spike", "the MNI run with one value of 1e6", np.where(
        np.arange(g.size).reshape(g.shape) == g.size // 2, np.float32(1e6), g), mni)
    for t in (2, 3, 7, 9):
        save(f"T{t}", f"the MNI run's first {t} volumes", g[..., :t], mni)
    save("5d", "the MNI run with a trailing fifth axis of 1", g[..., None], mni)
    save("column", "one 26-voxel line of the MNI run", g[:, 15:16, 11:12, :], mni)
    save("constant", "a constant run", np.full_like(g, 7.0), mni)
    save("uint8", "the native run rescaled to uint8",
         np.clip(q / q.max() * 255, 0, 255).astype(np.uint8), native)
    save("uint16", "the native run as uint16", q.astype(np.uint16), native)
    save("int32", "the native run as int32", q.astype(np.int32), native)
    save("scaled", "the native run as int16 with scl_slope 2.5, scl_inter -100",
         q.astype(np.int16), native, slope=(2.5, -100))
    save("negative", "the native run minus 3000 (int16)",
         (q.astype(np.int32) - 3000).astype(np.int16), native)
    pad = np.zeros((40, 40, 30, 30), np.int16)
    pad[10:30, 10:30, 5:25] = q[10:30, 10:30, 5:25, :30]
    save("padded", "a cut of the native run in zero padding", pad, native)
    return out


def call(args):
    p = subprocess.run(args, capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


def check(tool, name, path, flag, work):
    """One compress/decompress: the table's cells, and the broken rules ('' if none)."""
    import nibabel as nib

    packed = os.path.join(work, f"{name}_{flag[-1]}.icainr")
    back = packed[:-len(".icainr")] + "_back.nii.gz"
    rc, text = call([tool, "compress", path, packed, *flag, "--force"])
    if rc != 0:
        lines = text.strip().splitlines()
        ok = rc == 2 and len(lines) == 1 and "Traceback" not in text
        # the message without the tool's and the file's names, which the row gives
        message = lines[-1].replace(f"icainr: error: {path}: ", "") if lines else ""
        return rc, message[:160], "" if ok else "not a one-line exit 2"
    ratio = re.search(r"ratio ([0-9.]+)", text)
    psnr = re.search(r"PSNR (\S+) dB", text)
    rc2, text2 = call([tool, "decompress", packed, back, "--force"])
    if rc2 != 0:
        return rc, text2.strip()[-110:], "decompress failed"
    a, b = nib.load(path), nib.load(back)
    x = np.asarray(a.dataobj, dtype=np.float64)
    y = np.asarray(b.dataobj, dtype=np.float64)
    broken = []
    if a.shape != b.shape or a.get_data_dtype() != b.get_data_dtype():
        broken.append("shape or dtype changed")
    elif not (np.array_equal(np.isinf(x), np.isinf(y))
              and np.array_equal(np.isnan(x), np.isnan(y))):
        broken.append("non-finite values where the input has none")
    elif flag[0] == "--lossless" and not np.array_equal(x, y, equal_nan=True):
        broken.append("lossless not exact")
    quality = f"{psnr.group(1)} dB" if psnr else "bit for bit" if "bit for bit" in text else "?"
    cell = f"{ratio.group(1) if ratio else '?'}x, {quality}"
    return rc, cell, ", ".join(broken)


def preamble(title, command):
    """A results file's first lines: title, command, date, machine and package versions
    (those ``icainr bench`` records)."""
    from nipype_icainr.bench.runner import environment

    env = environment()
    return [f"# {title}", "", f"- command: `{command}`",
            f"- date: {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}",
            f"- machine: {env['platform']}, {env['cpu_count']} CPUs",
            "- packages: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items()), ""]


def finish(lines, out, n_broken, what):
    """Write ``lines`` to ``out`` (atomically, if given), print the count of ``what``
    that broke a rule; the exit status (1 if any did)."""
    if out:
        from nipype_icainr.io import write_atomic

        write_atomic(out, ("\n".join(lines) + "\n").encode())
    print(f"{n_broken} {what} broke a rule")
    return 1 if n_broken else 0


def arguments(argv, doc, work):
    """``(args, tool)``: CORPUS_DIR, ``--work`` (default ``work``, made) and ``--out``;
    the ``icainr`` command beside this interpreter."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("corpus")
    p.add_argument("--work", default=work)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    os.makedirs(args.work, exist_ok=True)
    return args, os.path.join(os.path.dirname(sys.executable), "icainr")


def main(argv=None):
    args, tool = arguments(argv, __doc__, "/tmp/icainr_variants")
    flags = [["--ratio", "25"], ["--ratio", "100"], ["--ratio", "200"], ["--lossless"]]
    lines = preamble("Real runs as users bring them",
                     f"python benchmarks/user_variants.py {args.corpus}")
    lines += ["| variant | what | " + " | ".join(" ".join(f) for f in flags) + " | broken |",
              "|---" * (len(flags) + 3) + "|"]
    n_broken = 0
    for name, (path, what) in variants(args.corpus, args.work).items():
        cells, broken = [], []
        for flag in flags:
            rc, cell, bad = check(tool, name, path, flag, args.work)
            cells.append(cell if rc == 0 else f"exit {rc}: {cell}")
            if bad:
                broken.append(f"{' '.join(flag)}: {bad}")
        n_broken += bool(broken)
        lines.append(f"| {name} | {what} | " + " | ".join(c.replace("|", "/") for c in cells)
                     + f" | {'; '.join(broken) or 'none'} |")
        print(lines[-1], flush=True)
    return finish(lines, args.out, n_broken, "variant(s)")


if __name__ == "__main__":
    sys.exit(main())
