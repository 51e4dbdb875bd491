"""The BIDS derivatives dataset: names, sidecars, ``dataset_description.json``."""

import json
import os

from nipype.interfaces.base import (BaseInterfaceInputSpec, Directory, File, SimpleInterface,
                                    TraitedSpec, isdefined, traits)

from nipype_icainr import __version__, qc
from nipype_icainr.io import copy_atomic, write_json_atomic, write_text_atomic

from .restore import file_sha256

PIPELINE = "nipype-icainr"
MNI_SPACE = "_space-MNI152NLin2009cAsym_res-grid64"
#: files BIDS has no name for: the validator is told to skip them
BIDSIGNORE = ["*.icainr", "*_desc-icainr_bold.json", "*_report.html", "*_qc.tsv", "group_*", "logs/"]
#: the per-run QC table: the run, the file, every QC metric's columns (``nipype_icainr.qc``),
#: then registration and timing
QC_COLUMNS = (["source", "space", "ratio", "ratio_disk", "file_bytes"]
              + [c.key for c in qc.columns()]
              + ["psnr_mean_frame_only_db", "registration_dice", "fit_seconds",
                 "compress_seconds", "decompress_seconds"])


def run_prefix(bold_path):
    """``sub-X[_ses-Y]_task-Z[_run-N]...`` of a BOLD file name."""
    name = os.path.basename(bold_path)
    return name.split("_bold.")[0]


#: what a reader of the derivatives must know first: the data are (usually) lossy
LOSSY_NOTE = ("Compressed BOLD runs (.icainr). A run compressed to a ratio is lossy: its "
              "sidecar's LossyImageCompression is \"01\" and CompressionRatio, PSNR and "
              "SSIM say how close it is; lossless runs say \"00\". icainr-restore "
              "DERIVATIVES_DIR OUTPUT_DIR rebuilds the NIfTI files and their sidecars.")


def write_run_record(output_dir, argv, options, runs, config):
    """``logs/icainr-bids_<UTC time>_<id>.json``: this invocation's options, runs,
    configuration and software versions (what fMRIPrep's config file records)."""
    import datetime
    import uuid

    from nipype_icainr.provenance import software_versions

    now = datetime.datetime.now(datetime.timezone.utc)
    record = {"command": ["icainr-bids"] + list(argv), "options": options,
              "runs": [r["relpath"] for r in runs], "configuration": config,
              "software": software_versions(), "container": container_info(),
              "started": now.isoformat(timespec="seconds")}
    name = f"icainr-bids_{now.strftime('%Y%m%dT%H%M%S')}_{uuid.uuid4().hex[:8]}.json"
    os.makedirs(os.path.join(output_dir, "logs"), exist_ok=True)
    return write_json_atomic(os.path.join(output_dir, "logs", name), record)


def write_dataset_description(output_dir, bids_dir, container=None):
    """``dataset_description.json`` (DatasetType derivative, GeneratedBy) and ``.bidsignore``."""
    desc = {"Name": "nipype-icainr: ICA-INR compressed BOLD runs", "BIDSVersion": "1.10.0",
            "DatasetType": "derivative",
            "GeneratedBy": [{"Name": PIPELINE, "Version": __version__,
                             "Description": LOSSY_NOTE,
                             "CodeURL": "https://pypi.org/project/nipype-icainr/"}],
            "SourceDatasets": [{"URL": "file://" + os.path.abspath(bids_dir)}],
            "DatasetLinks": {"raw": "file://" + os.path.abspath(bids_dir)}}
    if container:
        desc["GeneratedBy"][0]["Container"] = container
    write_json_atomic(os.path.join(output_dir, "dataset_description.json"), desc)
    with open(os.path.join(output_dir, ".bidsignore"), "w") as fh:
        fh.write("\n".join(BIDSIGNORE) + "\n")
    readme = os.path.join(output_dir, "README.md")
    if not os.path.exists(readme):
        with open(readme, "w") as fh:
            fh.write(f"# ICA-INR compressed BOLD runs\n\nWritten by {PIPELINE} {__version__} "
                     "from the dataset in `dataset_description.json` (`SourceDatasets`).\n"
                     "Each `*_desc-icainr_bold.icainr` holds one run; its JSON sidecar gives "
                     "the ratio, PSNR and the original sidecar. `icainr-restore` rebuilds "
                     "the NIfTI files.\n")


def container_info():
    """What ``GeneratedBy.Container`` says: set by the Dockerfile's environment."""
    kind = os.environ.get("ICAINR_CONTAINER_TYPE")
    if not kind:
        return None
    return {"Type": kind, "Tag": os.environ.get("ICAINR_CONTAINER_TAG", f"nipype-icainr:{__version__}")}


class _SinkInputSpec(BaseInterfaceInputSpec):
    output_dir = Directory(mandatory=True, desc="root of the derivatives dataset")
    source_file = File(mandatory=True, desc="the raw BOLD run")
    source_relpath = traits.Str(mandatory=True, desc="the raw run, relative to bids_dir")
    metadata = traits.Str("{}", usedefault=True, desc="the raw run's sidecar, as JSON text")
    space = traits.Enum("native", "MNI152NLin2009cAsym", usedefault=True)
    target_ratio = traits.Float(mandatory=True)
    preset = traits.Str(mandatory=True)
    compressed = File(exists=True, mandatory=True)
    qc_json = File(exists=True, mandatory=True)
    report = File(exists=True, mandatory=True)
    decompressed = File(exists=True, desc="save the decompressed run")
    registered = File(exists=True, desc="save the registered run")
    events_file = File(exists=True, desc="the run's events, kept beside it for restoring")


class _SinkOutputSpec(TraitedSpec):
    out_files = traits.List(File(exists=True))


class WriteDerivatives(SimpleInterface):
    """Copy a run's outputs into the derivatives dataset under BIDS names, with sidecars."""

    input_spec = _SinkInputSpec
    output_spec = _SinkOutputSpec

    def _run_interface(self, runtime):
        from nipype_icainr.codec.api import info

        inp = self.inputs
        prefix = run_prefix(inp.source_file)
        rel_dir = os.path.dirname(inp.source_relpath)
        folder = os.path.join(inp.output_dir, rel_dir)
        space = "" if inp.space == "native" else MNI_SPACE
        meta = json.loads(inp.metadata)
        record = json.load(open(inp.qc_json))
        values = record["values"]
        codec = info(inp.compressed)
        written = []
        base = os.path.join(folder, f"{prefix}{space}_desc-icainr_bold")
        lossless = codec["mode"] == "lossless"
        sidecar = {
            "Description": "ICA-INR compressed BOLD run; restore with icainr-restore",
            "Sources": [f"bids:raw:{inp.source_relpath}"],
            "SourceFile": inp.source_relpath, "Space": inp.space,
            "CompressionRatio": codec["ratio"], "CompressionRatioAgainstSourceFile":
                codec["ratio_disk"], "TargetRatio": inp.target_ratio or None, "Preset": inp.preset,
            "PSNR": values.get("psnr_db"), "SSIM": values.get("ssim"),
            "CodecVersion": codec["software"]["nipype_icainr"], "Software": codec["software"],
            "RepetitionTime": codec["image"]["tr"], "SourceSidecar": meta,
            "IcainrSHA256": file_sha256(inp.compressed), "CompressionMode": codec["mode"],
            # DICOM's (0028,2110), (0028,2112), (0028,2114): the data are lossy unless exact
            "LossyImageCompression": "00" if lossless else "01",
            "LossyImageCompressionRatio": codec["ratio"],
            "LossyImageCompressionMethod": f"ICA-INR ({codec['model']})",
        }
        if codec.get("bound"):
            sidecar["CompressionBound"] = codec["bound"]
        if "TaskName" in meta:
            sidecar["TaskName"] = meta["TaskName"]
        # the sidecar (with the file's SHA-256) first, the .icainr last: a .icainr in the
        # dataset always has its sidecar, even when the app is killed between the two
        written.append(write_json_atomic(base + ".json", sidecar))
        written.append(copy_atomic(inp.compressed, base + ".icainr"))
        report = os.path.join(folder, f"{prefix}{space}_desc-icainr_report.html")
        written.append(copy_atomic(inp.report, report))
        row = dict({c: values.get(c) for c in QC_COLUMNS}, source=inp.source_relpath,
                   space=inp.space, ratio=record["ratio"], ratio_disk=record["ratio_disk"],
                   file_bytes=record["file_bytes"],
                   psnr_mean_frame_only_db=record["psnr_mean_frame_only_db"],
                   registration_dice=record.get("registration", {}).get("dice_brain_mask"),
                   fit_seconds=record.get("fit_seconds"),
                   compress_seconds=record.get("compress_seconds"),
                   decompress_seconds=record.get("decompress_seconds"))
        tsv = os.path.join(folder, f"{prefix}{space}_desc-icainr_qc.tsv")
        written.append(write_text_atomic(
            tsv, "\t".join(QC_COLUMNS) + "\n"
            + "\t".join("n/a" if row[c] is None else str(row[c]) for c in QC_COLUMNS) + "\n"))
        bold_meta = {k: v for k, v in meta.items() if k in ("RepetitionTime", "TaskName",
                                                           "SliceTiming", "EchoTime")}
        bold_meta["RepetitionTime"] = codec["image"]["tr"]
        bold_meta["SkullStripped"] = False
        bold_meta.pop("SliceTiming", None) if inp.space != "native" else None
        if isdefined(inp.decompressed):
            dst = os.path.join(folder, f"{prefix}{space}_desc-icainrdecompressed_bold.nii.gz")
            written.append(copy_atomic(inp.decompressed, dst))
            written.append(write_json_atomic(dst.replace(".nii.gz", ".json"), dict(
                bold_meta, Description="the run decompressed from its ICA-INR file",
                Sources=[f"bids::{os.path.relpath(base + '.icainr', inp.output_dir)}"])))
        if isdefined(inp.registered) and inp.space != "native":
            dst = os.path.join(folder, f"{prefix}{space}_desc-preproc_bold.nii.gz")
            written.append(copy_atomic(inp.registered, dst))
            written.append(write_json_atomic(dst.replace(".nii.gz", ".json"), dict(
                bold_meta, Description="the run resampled onto the 64x64x48 MNI152 grid",
                Sources=[f"bids:raw:{inp.source_relpath}"])))
        if isdefined(inp.events_file):
            dst = os.path.join(folder, os.path.basename(inp.events_file))
            written.append(copy_atomic(inp.events_file, dst))
        self._results["out_files"] = written
        return runtime
