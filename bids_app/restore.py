"""``icainr-restore DERIVATIVES_DIR OUTPUT_DIR``: decompress a derivatives dataset back to BIDS.

Every ``*_desc-icainr_bold.icainr`` of a run compressed in native space is
decompressed to its original path (``SourceFile`` in its sidecar) with the
original sidecar (``SourceSidecar``) and events beside it, giving back a raw BIDS
dataset with the original NIfTI headers. MNI-space runs are restored under
their derivative names.
"""

import argparse
import glob
import json
import os
import sys

from nipype_icainr.codec.errors import ICAINRError


def restore(deriv_dir, out_dir, participant_labels=None, force=False, device="auto"):
    """Restore every compressed run; returns the list of NIfTI files written."""
    from nipype_icainr.codec.api import decompress

    from nipype_icainr.io import copy_atomic, write_json_atomic

    if not os.path.isdir(deriv_dir):
        raise ICAINRError(deriv_dir, "no such directory")
    labels = {p[4:] if p.startswith("sub-") else p for p in participant_labels or []}
    files = sorted(glob.glob(os.path.join(deriv_dir, "sub-*", "**", "*_desc-icainr_bold.icainr"),
                             recursive=True))
    files = [f for f in files if not labels or
             os.path.relpath(f, deriv_dir).split(os.sep)[0][4:] in labels]
    if not files:
        raise ICAINRError(deriv_dir, "no *_desc-icainr_bold.icainr files to restore")
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for path in files:
        sidecar_path = path[:-len(".icainr")] + ".json"
        try:
            with open(sidecar_path) as fh:
                sidecar = json.load(fh)
        except (OSError, ValueError):
            raise ICAINRError(sidecar_path, "missing or unreadable sidecar") from None
        native = sidecar.get("Space") == "native"
        rel = sidecar.get("SourceFile") if native else os.path.relpath(path, deriv_dir)
        if not isinstance(rel, str) or rel.startswith(("/", "..")) or ".." in rel.split("/"):
            raise ICAINRError(sidecar_path, "SourceFile is not a relative path inside the dataset")
        if not native:
            rel = rel[:-len(".icainr")] + ".nii.gz"
        dst = os.path.join(out_dir, rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        decompress(path, dst, device=device, force=force)
        written.append(dst)
        meta = sidecar.get("SourceSidecar") if native else {
            "RepetitionTime": sidecar.get("RepetitionTime"), "TaskName": sidecar.get("TaskName")}
        stem = dst[:-len(".nii.gz")] if dst.endswith(".nii.gz") else dst[:-len(".nii")]
        write_json_atomic(stem + ".json",
                          {k: v for k, v in (meta or {}).items() if v is not None})
        events = glob.glob(os.path.join(os.path.dirname(path),
                                        os.path.basename(stem).replace("_bold", "") + "_events.tsv"))
        for ev in events:
            copy_atomic(ev, os.path.join(os.path.dirname(dst), os.path.basename(ev)))
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
    for path in written:
        print(f"restored {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
