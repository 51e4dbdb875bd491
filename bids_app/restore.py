"""``icainr-restore DERIVATIVES_DIR OUTPUT_DIR``: decompress a derivatives dataset back to BIDS.

Every ``*_desc-icainr_bold.icainr`` of a run compressed in native space is
decompressed to its original path (``SourceFile`` in its sidecar) with the
original sidecar (``SourceSidecar``) and events beside it, giving back a raw BIDS
dataset with the original NIfTI headers. MNI-space runs are restored under
their derivative names. Each ``.icainr`` is checked against the SHA-256 its
sidecar records before it is decoded, and each run's NIfTI and sidecar are
written as one unit (both or neither).
"""

import argparse
import glob
import hashlib
import json
import os
import sys

from nipype_icainr.codec.errors import ICAINRError


def file_sha256(path):
    """SHA-256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_sidecar(path):
    """The sidecar of a compressed run, checked for every field restore uses."""
    try:
        with open(path) as fh:
            sidecar = json.load(fh)
    except (OSError, ValueError, RecursionError):
        raise ICAINRError(path, "missing or unreadable sidecar") from None
    if not isinstance(sidecar, dict):
        raise ICAINRError(path, "the sidecar is not a JSON object")
    if sidecar.get("Space") not in ("native", "MNI152NLin2009cAsym"):
        raise ICAINRError(path, "the sidecar's Space is neither native nor MNI152NLin2009cAsym")
    for key, kind in (("SourceFile", str), ("SourceSidecar", dict), ("IcainrSHA256", str)):
        if key in sidecar and not isinstance(sidecar[key], kind):
            raise ICAINRError(path, f"the sidecar's {key} is not a {kind.__name__}")
    return sidecar


def restore_run(path, deriv_dir, out_dir, force=False, device="auto"):
    """Restore one ``*_desc-icainr_bold.icainr``; returns the NIfTI written."""
    from nipype_icainr.codec.api import decompress
    from nipype_icainr.io import atomic_output, copy_atomic

    sidecar_path = path[:-len(".icainr")] + ".json"
    sidecar = read_sidecar(sidecar_path)
    expected = sidecar.get("IcainrSHA256")
    if expected is not None and file_sha256(path) != expected:
        raise ICAINRError(path, "does not match the SHA-256 its sidecar records (changed or "
                                "forged since it was written)")
    native = sidecar["Space"] == "native"
    rel = sidecar.get("SourceFile") if native else os.path.relpath(path, deriv_dir)
    if not isinstance(rel, str) or rel.startswith(("/", "..")) or ".." in rel.split("/") or \
            not rel.endswith((".nii", ".nii.gz", ".icainr")):
        raise ICAINRError(sidecar_path, "SourceFile is not a relative NIfTI path inside the "
                                        "dataset")
    if not native:
        rel = rel[:-len(".icainr")] + ".nii.gz"
    dst = os.path.join(out_dir, rel)
    stem = dst[:-len(".nii.gz")] if dst.endswith(".nii.gz") else dst[:-len(".nii")]
    meta = sidecar.get("SourceSidecar", {}) if native else {
        "RepetitionTime": sidecar.get("RepetitionTime"), "TaskName": sidecar.get("TaskName")}
    text = json.dumps({k: v for k, v in meta.items() if v is not None}, indent=2,
                      sort_keys=True) + "\n"
    try:
        os.makedirs(os.path.dirname(dst), exist_ok=True)
    except OSError as exc:
        raise ICAINRError(os.path.dirname(dst), f"cannot create ({exc.strerror})") from None
    if os.path.exists(stem + ".json") and not force:
        raise ICAINRError(stem + ".json", "already exists; use --force to overwrite")
    # NIfTI and sidecar as one unit: the sidecar's temporary file is complete before the
    # NIfTI is decoded, and a NIfTI whose sidecar cannot be put in place is removed again
    existed = os.path.exists(dst)
    try:
        with atomic_output(stem + ".json") as fh:
            fh.write(text.encode("utf-8"))
            decompress(path, dst, device=device, force=force)
    except BaseException:
        if not existed and os.path.exists(dst):
            os.unlink(dst)
        raise
    events = glob.glob(os.path.join(os.path.dirname(path),
                                    os.path.basename(stem).replace("_bold", "") + "_events.tsv"))
    for ev in events:
        copy_atomic(ev, os.path.join(os.path.dirname(dst), os.path.basename(ev)))
    return dst


def restore(deriv_dir, out_dir, participant_labels=None, force=False, device="auto"):
    """Restore every compressed run; returns the list of NIfTI files written."""
    from nipype_icainr.io import write_json_atomic

    if not os.path.isdir(deriv_dir):
        raise ICAINRError(deriv_dir, "no such directory")
    labels = {p[4:] if p.startswith("sub-") else p for p in participant_labels or []}
    files = sorted(glob.glob(os.path.join(deriv_dir, "sub-*", "**", "*_desc-icainr_bold.icainr"),
                             recursive=True))
    files = [f for f in files if not labels or
             os.path.relpath(f, deriv_dir).split(os.sep)[0][4:] in labels]
    if not files:
        raise ICAINRError(deriv_dir, "no *_desc-icainr_bold.icainr files to restore")
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as exc:
        raise ICAINRError(out_dir, f"cannot create the output folder ({exc.strerror})") from None
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise ICAINRError(out_dir, "the output folder is not writable")
    written = [restore_run(path, deriv_dir, out_dir, force, device) for path in files]
    desc_path = os.path.join(out_dir, "dataset_description.json")
    if not os.path.exists(desc_path):
        write_json_atomic(desc_path, {
            "Name": f"restored from {os.path.abspath(deriv_dir)} by icainr-restore",
            "BIDSVersion": "1.10.0", "DatasetType": "raw"})
    return written


def main(argv=None):
    p = argparse.ArgumentParser(prog="icainr-restore", description=__doc__.splitlines()[0])
    p.add_argument("deriv_dir", help="a derivatives dataset written by icainr-bids")
    p.add_argument("output_dir", help="where to write the restored BIDS dataset")
    p.add_argument("--participant-label", nargs="+")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--force", action="store_true", help="overwrite existing NIfTI files")
    args = p.parse_args(argv)
    try:
        written = restore(args.deriv_dir, args.output_dir, args.participant_label, args.force,
                          args.device)
    except ICAINRError as exc:
        print(f"icainr-restore: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("icainr-restore: interrupted; the run being restored was not written",
              file=sys.stderr)
        return 130
    except MemoryError:
        print(f"icainr-restore: error: {args.deriv_dir}: not enough memory", file=sys.stderr)
        return 2
    except OSError as exc:
        where = exc.filename or args.output_dir
        print(f"icainr-restore: error: {where}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    for path in written:
        print(f"restored {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
