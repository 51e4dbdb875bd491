"""``QCReport``: one self-contained HTML page per run, and its figures as JSON."""

import json
import os

import numpy as np
from nipype.interfaces.base import (BaseInterfaceInputSpec, File, InputMultiObject,
                                    SimpleInterface, TraitedSpec, isdefined, traits)


class _ReportInputSpec(BaseInterfaceInputSpec):
    original = File(exists=True, mandatory=True, desc="the run that was compressed")
    decompressed = File(exists=True, mandatory=True, desc="its decompressed version")
    compressed = File(exists=True, mandatory=True, desc="the .icainr file")
    qc_files = InputMultiObject(File(exists=True),
                                desc="JSON records of QC metrics (QCMetric, FirstLevelQC, ...)")
    fit_seconds = traits.Float(desc="seconds fitting the series model")
    compress_seconds = traits.Float(desc="seconds for the whole compression")
    decompress_seconds = traits.Float(desc="seconds to decompress")
    registration_json = File(exists=True, desc="registration figures (mask overlap, FD)")
    mask_file = File(exists=True, desc="brain mask (default: the codec's mask of the original)")
    title = traits.Str(desc="name shown in the report (default: the original's file name)")
    methods = traits.Str(desc="a methods paragraph to show (the workflow's __desc__)")


class _ReportOutputSpec(TraitedSpec):
    out_report = File(exists=True, desc="the HTML report")
    out_json = File(exists=True, desc="every figure of the report as JSON")
    psnr = traits.Float(desc="PSNR in dB inside the mask (qc metric psnr)")
    ssim = traits.Float(desc="SSIM (qc metric ssim; NaN when an axis has under 3 voxels)")
    ratio = traits.Float(desc="compression ratio against the raw array")


class QCReport(SimpleInterface):
    """Ratio, every automatic QC metric, the given metric records, times, versions, figures.

    The automatic metrics (``nipype_icainr.qc``, those needing only the two
    runs: PSNR, SSIM) are computed here; others (FLA, FCA, CTA) come as JSON
    records from the QC interfaces (``qc_files``). ``out_json`` holds
    ``values`` (every metric's columns), ``metrics`` (each record) and the
    codec's figures.
    """

    input_spec = _ReportInputSpec
    output_spec = _ReportOutputSpec

    def _run_interface(self, runtime):
        from .. import io, qc, report
        from ..codec.api import info
        from ..provenance import analysis_versions
        from ..qc.figures import plot_slices, plot_timeseries
        from .qc import check_pair, qc_runs

        def opt(name):
            value = getattr(self.inputs, name)
            return value if isdefined(value) else None

        orig_img, dec_img = check_pair(self.inputs.original, self.inputs.decompressed)
        original_run, decoded_img, mask = qc_runs(self.inputs.original, orig_img,
                                                  self.inputs.decompressed, dec_img,
                                                  opt("mask_file"))
        ctx = qc.QCContext(original=original_run, mask=mask,
                           tr=float(orig_img.header.get_zooms()[3]))
        decoded = ctx.decoded(img=decoded_img)
        meta = info(self.inputs.compressed)
        records = {}
        for metric in qc.METRICS.values():
            if metric.automatic and not metric.missing(ctx):
                res = metric.evaluate(decoded, ctx)
                records[metric.name] = {"metric": metric.name, "title": metric.title,
                                        "definition": metric.definition,
                                        "values": res["values"], "details": res["details"]}
        for path in self.inputs.qc_files or []:
            rec = json.load(open(path))
            records[rec["metric"]] = rec
        values = {k: v for rec in records.values() for k, v in rec["values"].items()}
        orig, dec, mask = ctx.original.data, decoded.data, ctx.mask
        mean_only = np.repeat(orig.mean(-1, keepdims=True), orig.shape[-1], axis=-1)
        psnr_mean = qc.get("psnr").compare(None, qc.Run(data=mean_only), ctx)["values"]["psnr_db"]
        del mean_only

        figures = {"slices": os.path.join(runtime.cwd, "slices.png"),
                   "timeseries": os.path.join(runtime.cwd, "timeseries.png")}
        plot_slices(orig, dec, mask, figures["slices"])
        plot_timeseries(orig, dec, mask, figures["timeseries"])
        name = opt("title") or os.path.basename(self.inputs.original)
        summary = [("compression ratio", report.fmt(meta["ratio"], 1),
                    f"raw {orig_img.get_data_dtype()} array ({meta['raw_bytes']:,} B) / .icainr "
                    f"({meta['file_bytes']:,} B); {meta['ratio_disk']:.1f} against the input "
                    "file")]
        sections = [{"title": "Images", "figures": [
            report.embed_png(figures["slices"], "central slices"),
            report.embed_png(figures["timeseries"], "time series")]}]
        for metric_name, rec in records.items():
            metric = qc.get(metric_name)
            result = {"values": rec["values"], "details": rec["details"]}
            summary += metric.summary(result)
            figs = [{"alt": metric.title, "data": rec["figure_png"]}] \
                if rec.get("figure_png") else []
            text = rec.get("definition", "")
            if rec["details"].get("atlas"):
                text += f"; atlas: {rec['details']['atlas']}"
            sections.append({"title": metric.title, "rows": metric.table(result),
                             "figures": figs, "text": text})
        summary.append(("mean frame alone", f"{psnr_mean:.2f} dB",
                        "PSNR of the original's mean frame repeated: the floor any codec beats"))
        record = {"name": name, "ratio": meta["ratio"], "ratio_disk": meta["ratio_disk"],
                  "file_bytes": meta["file_bytes"], "shape": list(orig.shape),
                  "mask_voxels": int(mask.sum()), "values": values,
                  "metrics": {k: {f: v for f, v in rec.items() if f != "figure_png"}
                              for k, rec in records.items()},
                  "psnr_mean_frame_only_db": psnr_mean, "model": meta["model"]}
        if opt("registration_json"):
            reg = json.load(open(self.inputs.registration_json))
            rows = [[k, report.fmt(v) if isinstance(v, float) else str(v)] for k, v in reg.items()]
            sections.append({"title": "Registration", "rows": rows})
            record["registration"] = reg
        for label in ("fit", "compress", "decompress"):
            secs = opt(f"{label}_seconds")
            if secs is not None:
                summary.append((f"{label} time", f"{secs:.1f} s", ""))
                record[f"{label}_seconds"] = secs
        sections.append({"title": "Codec", "rows": [
            ["model", meta["model"]],
            ["preset", str(meta["config"].get("name"))], ["seed", str(meta["seed"])],
            ["sections", ", ".join(f"{k} {v:,} B" for k, v in meta["sections"].items())]]})
        if opt("methods"):
            sections.append({"title": "Methods", "text": self.inputs.methods})
            record["methods"] = self.inputs.methods
        versions = analysis_versions()
        versions["written by"] = json.dumps(meta["software"])
        html_text = report.render_report(name, summary, sections, versions)
        out = io.write_text_atomic(os.path.join(runtime.cwd, "report.html"), html_text)
        out_json = io.write_json_atomic(os.path.join(runtime.cwd, "qc.json"), record)
        self._results.update(out_report=out, out_json=out_json, ratio=meta["ratio"],
                             psnr=values.get("psnr_db", float("nan")),
                             ssim=values.get("ssim") if values.get("ssim") is not None
                             else float("nan"))
        return runtime
