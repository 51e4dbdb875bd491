"""``QCReport``: one self-contained HTML page per run."""

import json
import os

import numpy as np
from nipype.interfaces.base import (BaseInterfaceInputSpec, File, SimpleInterface, TraitedSpec,
                                    isdefined, traits)


class _ReportInputSpec(BaseInterfaceInputSpec):
    original = File(exists=True, mandatory=True, desc="the run that was compressed")
    decompressed = File(exists=True, mandatory=True, desc="its decompressed version")
    compressed = File(exists=True, mandatory=True, desc="the .icainr file")
    fla_json = File(exists=True, desc="FirstLevelQC's JSON")
    fla_figure = File(exists=True, desc="FirstLevelQC's figure")
    fca_json = File(exists=True, desc="ConnectivityQC's JSON")
    fca_figure = File(exists=True, desc="ConnectivityQC's figure")
    cta_json = File(exists=True, desc="DecodingQC's JSON")
    fit_seconds = traits.Float(desc="seconds fitting the network")
    compress_seconds = traits.Float(desc="seconds for the whole compression")
    decompress_seconds = traits.Float(desc="seconds to decompress")
    registration_json = File(exists=True, desc="registration figures (mask overlap, FD)")
    mask_file = File(exists=True, desc="brain mask (default: nilearn compute_epi_mask)")
    title = traits.Str(desc="name shown in the report (default: the original's file name)")


class _ReportOutputSpec(TraitedSpec):
    out_report = File(exists=True, desc="the HTML report")
    out_json = File(exists=True, desc="every figure of the report as JSON")
    psnr = traits.Float(desc="PSNR in dB (metrics.psnr)")
    ssim = traits.Float(desc="SSIM (metrics.ssim)")
    ratio = traits.Float(desc="compression ratio against the raw array")


class QCReport(SimpleInterface):
    """Ratio, PSNR, SSIM, FLA, FCA (and CTA when given), times, versions and figures."""

    input_spec = _ReportInputSpec
    output_spec = _ReportOutputSpec

    def _run_interface(self, runtime):

        from .. import metrics, report
        from ..codec.api import info
        from .qc import _check_pair, _mask_img

        orig_img, dec_img = _check_pair(self.inputs.original, self.inputs.decompressed)
        orig = np.asarray(orig_img.dataobj, dtype=np.float32)
        dec = np.asarray(dec_img.dataobj, dtype=np.float32)
        mask_img = _mask_img(orig_img, self.inputs.mask_file
                             if isdefined(self.inputs.mask_file) else None)
        mask = np.asarray(mask_img.dataobj).astype(bool)
        meta = info(self.inputs.compressed)
        psnr = metrics.psnr(orig, dec, mask)
        ssim = metrics.ssim(orig, dec, mask)
        mean_only = np.repeat(orig.mean(-1, keepdims=True), orig.shape[-1], axis=-1)
        psnr_mean = metrics.psnr(orig, mean_only, mask)
        del mean_only

        def opt(name):
            value = getattr(self.inputs, name)
            return value if isdefined(value) else None

        figures = {"slices": os.path.join(runtime.cwd, "slices.png"),
                   "timeseries": os.path.join(runtime.cwd, "timeseries.png")}
        report.plot_slices(orig, dec, mask, figures["slices"])
        report.plot_timeseries(orig, dec, mask, figures["timeseries"])
        name = opt("title") or os.path.basename(self.inputs.original)
        summary = [
            ("compression ratio", report.fmt(meta["ratio"], 1),
             f"raw {orig_img.get_data_dtype()} array ({meta['raw_bytes']:,} B) / .icainr "
             f"({meta['file_bytes']:,} B); {meta['ratio_disk']:.1f} against the input file"),
            ("PSNR", f"{psnr:.2f} dB", f"over the brain mask ({int(mask.sum()):,} voxels), range = "
                                       f"original max - min in the mask; mean frame alone "
                                       f"{psnr_mean:.2f} dB"),
            ("SSIM", f"{ssim:.4f}", "3D per volume (7x7x7), averaged over mask voxels and time"),
        ]
        record = {"name": name, "ratio": meta["ratio"], "ratio_disk": meta["ratio_disk"],
                  "file_bytes": meta["file_bytes"], "psnr_db": psnr, "ssim": ssim,
                  "psnr_mean_frame_only_db": psnr_mean, "shape": list(orig.shape)}
        sections = []
        if opt("fla_json"):
            fla = json.load(open(self.inputs.fla_json))
            summary.append(("FLA mean |dt| (std)", f"{fla['mean_abs_dt']:.3f} "
                            f"({fla['std_abs_dt']:.3f})", "t-maps of every condition"))
            rows = [["condition", "mean |dt|", "std |dt|", "peak |t| original"]] + [
                [c, report.fmt(v["mean_abs_dt"]), report.fmt(v["std_abs_dt"]),
                 report.fmt(v["max_abs_t_original"], 2)] for c, v in fla["per_condition"].items()]
            figs = [report.embed_png(self.inputs.fla_figure, "t-maps")] if opt("fla_figure") else []
            sections.append({"title": "First-level analysis (FLA)", "rows": rows, "figures": figs,
                             "text": fla.get("definition", "")})
            record["fla"] = fla
        if opt("fca_json"):
            fca = json.load(open(self.inputs.fca_json))
            summary.append(("FCA mean |dr| (std)", f"{fca['mean_abs_dr']:.4f} "
                            f"({fca['std_abs_dr']:.4f})", f"{fca['n_regions']} regions"))
            figs = [report.embed_png(self.inputs.fca_figure, "connectivity")] \
                if opt("fca_figure") else []
            sections.append({"title": "Functional connectivity (FCA)", "rows": [],
                             "figures": figs,
                             "text": f"{fca.get('definition', '')}; atlas: {fca['atlas']}"})
            record["fca"] = fca
        if opt("cta_json"):
            cta = json.load(open(self.inputs.cta_json))
            rows = [["", "accuracy", "AUC"],
                    ["original", report.fmt(cta["original"]["accuracy"]),
                     report.fmt(cta["original"]["auc"])],
                    ["decompressed", report.fmt(cta["decompressed"]["accuracy"]),
                     report.fmt(cta["decompressed"]["auc"])]]
            summary.append(("CTA accuracy", f"{cta['decompressed']['accuracy']:.3f} vs "
                            f"{cta['original']['accuracy']:.3f}", "decompressed vs original"))
            sections.append({"title": "Decoding (CTA)", "rows": rows, "figures": [],
                             "text": "Linear SVM, 10-fold cross-validation"})
            record["cta"] = cta
        if opt("registration_json"):
            reg = json.load(open(self.inputs.registration_json))
            rows = [[k, report.fmt(v) if isinstance(v, float) else str(v)] for k, v in reg.items()]
            sections.append({"title": "Registration", "rows": rows, "figures": []})
            record["registration"] = reg
        times = [("fit", opt("fit_seconds")), ("compress", opt("compress_seconds")),
                 ("decompress", opt("decompress_seconds"))]
        for label, secs in times:
            if secs is not None:
                summary.append((f"{label} time", f"{secs:.1f} s", ""))
                record[f"{label}_seconds"] = secs
        sections.insert(0, {"title": "Images", "rows": [], "text": "",
                            "figures": [report.embed_png(figures["slices"], "central slices"),
                                        report.embed_png(figures["timeseries"], "time series")]})
        arch = meta["arch"]
        model = (["model", f"coded factorization, K={arch['n_components']} maps x patterns"]
                 if arch.get("model") == "factor" else
                 ["network", f"K={arch['n_components']}, MLP {arch['mlp_layers']}x"
                             f"{arch['mlp_width']}"])
        sections.append({"title": "Codec", "rows": [
            model,
            ["preset", str(meta["config"].get("name"))], ["seed", str(meta["seed"])],
            ["sections", ", ".join(f"{k} {v:,} B" for k, v in meta["sections"].items())]],
            "figures": []})
        versions = report.software_versions()
        versions["written by"] = json.dumps(meta["software"])
        html_text = report.render_report(name, summary, sections, versions)
        out = report.write_text_atomic(os.path.join(runtime.cwd, "report.html"), html_text)
        out_json = os.path.join(runtime.cwd, "qc.json")
        with open(out_json, "w") as fh:
            json.dump(record, fh, indent=2, default=float)
        self._results.update(out_report=out, out_json=out_json, psnr=psnr, ssim=ssim,
                             ratio=meta["ratio"])
        return runtime
