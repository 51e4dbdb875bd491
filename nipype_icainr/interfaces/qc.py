"""Quality-control interfaces: FLA (first-level GLM), FCA (connectivity), CTA (decoding).

Each compares an original run with its decompressed version using the single
definitions in ``nipype_icainr.metrics``, writes its figures (PNG) and a JSON of
its figures under the node's working directory, and returns the headline
numbers as outputs.
"""

import json
import os

import numpy as np
from nipype.interfaces.base import (BaseInterfaceInputSpec, File, SimpleInterface, TraitedSpec,
                                    isdefined, traits)

from ..codec.errors import ICAINRError


def _check_pair(original, decoded):
    """Load both runs and refuse mismatched grids, lengths or TRs (one-line errors)."""
    import nibabel as nib

    o, d = nib.load(original), nib.load(decoded)
    if o.shape != d.shape:
        raise ICAINRError(decoded, f"shape {d.shape} does not match the original's {o.shape}")
    if not np.allclose(o.affine, d.affine, atol=1e-4):
        raise ICAINRError(decoded, "affine does not match the original's")
    tr_o, tr_d = float(o.header.get_zooms()[3]), float(d.header.get_zooms()[3])
    if abs(tr_o - tr_d) > 1e-4:
        raise ICAINRError(decoded, f"TR {tr_d} does not match the original's {tr_o}")
    return o, d


def _mask_img(original_img, mask_file):
    import nibabel as nib

    from ..codec.prepare import compute_mask

    if mask_file:
        mask = nib.load(mask_file)
        if mask.shape[:3] != original_img.shape[:3]:
            raise ICAINRError(mask_file, f"mask shape {mask.shape} does not match the run's grid")
        return nib.Nifti1Image((np.asarray(mask.dataobj) > 0).astype(np.uint8), original_img.affine)
    data = np.asarray(original_img.dataobj, dtype=np.float32)
    return nib.Nifti1Image(compute_mask(original_img, data).astype(np.uint8),
                           original_img.affine)


def _write_json(path, payload):
    with open(path, "w") as fh:
        json.dump(payload, fh, indent=2, sort_keys=True)
        fh.write("\n")


class _FLAInputSpec(BaseInterfaceInputSpec):
    original = File(exists=True, mandatory=True, desc="original 4D run")
    decompressed = File(exists=True, mandatory=True, desc="decompressed 4D run")
    events_file = File(mandatory=True, desc="BIDS events.tsv (onset, duration, trial_type)")
    tr = traits.Float(desc="repetition time in seconds (default: from the NIfTI header)")
    mask_file = File(exists=True, desc="brain mask (default: nilearn compute_epi_mask)")


class _FLAOutputSpec(TraitedSpec):
    mean_abs_dt = traits.Float(desc="mean |t_original - t_decompressed| over mask and conditions")
    std_abs_dt = traits.Float(desc="std of the same")
    out_json = File(exists=True, desc="all figures, per condition")
    out_figure = File(exists=True, desc="t-maps of original and decompressed, side by side")


class FirstLevelQC(SimpleInterface):
    """FLA: t-maps of every condition on both runs and the residual |dt| (metrics.fla_residuals)."""

    input_spec = _FLAInputSpec
    output_spec = _FLAOutputSpec

    def _run_interface(self, runtime):
        import pandas as pd

        from .. import metrics
        from ..report import plot_tmaps

        events_file = self.inputs.events_file
        if not os.path.isfile(events_file):
            raise ICAINRError(events_file, "events file not found (FLA needs the run's events.tsv)")
        try:
            events = pd.read_csv(events_file, sep="\t")
        except Exception as exc:
            raise ICAINRError(events_file, f"cannot read events ({str(exc).splitlines()[0]})") \
                from None
        missing = {"onset", "duration", "trial_type"} - set(events.columns)
        if missing:
            raise ICAINRError(events_file, f"missing columns: {', '.join(sorted(missing))}")
        orig, dec = _check_pair(self.inputs.original, self.inputs.decompressed)
        tr_header = float(orig.header.get_zooms()[3])
        tr = self.inputs.tr if isdefined(self.inputs.tr) else tr_header
        if abs(tr - tr_header) > 1e-3:
            raise ICAINRError(self.inputs.original,
                              f"TR {tr} given does not match the header's {tr_header}")
        mask = _mask_img(orig, self.inputs.mask_file if isdefined(self.inputs.mask_file) else None)
        res = metrics.fla_residuals(orig, dec, events, tr, mask)
        fig = os.path.join(runtime.cwd, "fla_tmaps.png")
        from nilearn.image import mean_img

        plot_tmaps(res["tmaps"], orig.affine, mask, fig, bg_img=mean_img(orig, copy_header=True))
        out = os.path.join(runtime.cwd, "fla.json")
        _write_json(out, {"mean_abs_dt": res["mean_abs_dt"], "std_abs_dt": res["std_abs_dt"],
                          "per_condition": res["per_condition"], "tr": tr,
                          "definition": "|t_original - t_decompressed| over the mask; nilearn "
                                        "FirstLevelModel, Glover HRF, cosine drift, AR(1)"})
        self._results.update(mean_abs_dt=res["mean_abs_dt"], std_abs_dt=res["std_abs_dt"],
                             out_json=out, out_figure=fig)
        return runtime


class _FCAInputSpec(BaseInterfaceInputSpec):
    original = File(exists=True, mandatory=True, desc="original 4D run")
    decompressed = File(exists=True, mandatory=True, desc="decompressed 4D run")
    atlas_file = File(exists=True, desc="3D integer atlas on the run's grid or resampleable to it")
    atlas = traits.Enum("auto", "power2011", "kmeans", usedefault=True,
                        desc="without atlas_file: 'power2011' (264 spheres, bundled with "
                             "nilearn; MNI-space data only), 'kmeans' (parcellation of the "
                             "original, any space), 'auto' (power2011 when in_mni is set)")
    in_mni = traits.Bool(False, usedefault=True, desc="the runs are in MNI space")
    n_parcels = traits.Int(40, usedefault=True, desc="parcels for the kmeans atlas")
    mask_file = File(exists=True, desc="brain mask (default: nilearn compute_epi_mask)")


class _FCAOutputSpec(TraitedSpec):
    mean_abs_dr = traits.Float(desc="mean |r_original - r_decompressed| over region pairs")
    std_abs_dr = traits.Float(desc="std of the same")
    n_regions = traits.Int(desc="regions with signal")
    atlas_used = traits.Str(desc="which atlas was used")
    out_json = File(exists=True)
    out_figure = File(exists=True, desc="both correlation matrices and their difference")


class ConnectivityQC(SimpleInterface):
    """FCA: region-to-region correlations of both runs and the residual |dr|."""

    input_spec = _FCAInputSpec
    output_spec = _FCAOutputSpec

    def _run_interface(self, runtime):
        from .. import metrics
        from ..report import plot_connectivity

        orig, dec = _check_pair(self.inputs.original, self.inputs.decompressed)
        mask = _mask_img(orig, self.inputs.mask_file if isdefined(self.inputs.mask_file) else None)
        labels, coords = None, None
        if isdefined(self.inputs.atlas_file):
            labels, used = self.inputs.atlas_file, os.path.basename(self.inputs.atlas_file)
        else:
            kind = self.inputs.atlas
            if kind == "auto":
                kind = "power2011" if self.inputs.in_mni else "kmeans"
            if kind == "power2011":
                from nilearn.datasets import fetch_coords_power_2011

                rois = fetch_coords_power_2011()["rois"]  # bundled with nilearn: no download
                coords = np.stack([rois["x"], rois["y"], rois["z"]], axis=1).astype(float)
                used = "Power et al. 2011, 264 spheres of 6 mm"
            else:
                labels = metrics.kmeans_parcellation(orig, mask, self.inputs.n_parcels)
                used = f"k-means parcellation of the original ({self.inputs.n_parcels} parcels)"
        res = metrics.fca_residuals(orig, dec, mask, labels_img=labels, coords=coords)
        fig = os.path.join(runtime.cwd, "fca_matrices.png")
        plot_connectivity(res["r_original"], res["r_decoded"], fig)
        out = os.path.join(runtime.cwd, "fca.json")
        _write_json(out, {"mean_abs_dr": res["mean_abs_dr"], "std_abs_dr": res["std_abs_dr"],
                          "n_regions": res["n_regions"], "atlas": used,
                          "definition": "|r_original - r_decompressed| over region pairs above "
                                        "the diagonal; Pearson r of detrended region signals"})
        self._results.update(mean_abs_dr=res["mean_abs_dr"], std_abs_dr=res["std_abs_dr"],
                             n_regions=res["n_regions"], atlas_used=used, out_json=out,
                             out_figure=fig)
        return runtime


class _CTAInputSpec(BaseInterfaceInputSpec):
    original = File(exists=True, mandatory=True, desc="original 4D run(s), runs concatenated")
    decompressed = File(exists=True, mandatory=True, desc="decompressed 4D run(s)")
    labels_file = File(exists=True, mandatory=True,
                       desc="one line per volume: '<label> <chunk>' (PyMVPA attributes) or a "
                            "TSV with columns label and chunk")
    classes = traits.List(traits.Str, desc="labels to decode (default: all but 'rest')")
    mask_file = File(exists=True, desc="brain mask (default: nilearn compute_epi_mask)")
    n_folds = traits.Int(10, usedefault=True)


class _CTAOutputSpec(TraitedSpec):
    accuracy_original = traits.Float()
    accuracy_decompressed = traits.Float()
    auc_original = traits.Float()
    auc_decompressed = traits.Float()
    out_json = File(exists=True)


def read_labels(path, n_volumes):
    """Labels and chunks per volume from a PyMVPA attributes file or a TSV."""
    import pandas as pd

    try:
        with open(path) as fh:
            first = fh.readline()
        if "\t" in first and "label" in first:
            table = pd.read_csv(path, sep="\t")
            labels, chunks = table["label"].astype(str).values, table["chunk"].values
        else:
            table = pd.read_csv(path, sep=r"\s+", header=None, names=["label", "chunk"])
            labels, chunks = table["label"].astype(str).values, table["chunk"].values
    except Exception as exc:
        raise ICAINRError(path, f"cannot read labels ({str(exc).splitlines()[0]})") from None
    if len(labels) != n_volumes:
        raise ICAINRError(path, f"{len(labels)} labels for {n_volumes} volumes")
    return labels, chunks


class DecodingQC(SimpleInterface):
    """CTA: linear SVM decoding on both runs (metrics.decoding_scores)."""

    input_spec = _CTAInputSpec
    output_spec = _CTAOutputSpec

    def _run_interface(self, runtime):
        from .. import metrics

        orig, dec = _check_pair(self.inputs.original, self.inputs.decompressed)
        labels, chunks = read_labels(self.inputs.labels_file, orig.shape[3])
        mask = _mask_img(orig, self.inputs.mask_file if isdefined(self.inputs.mask_file) else None)
        classes = self.inputs.classes if isdefined(self.inputs.classes) else None
        a = metrics.decoding_scores(orig, labels, chunks, mask, classes, self.inputs.n_folds)
        b = metrics.decoding_scores(dec, labels, chunks, mask, classes, self.inputs.n_folds)
        out = os.path.join(runtime.cwd, "cta.json")
        _write_json(out, {"original": a, "decompressed": b, "classes": classes or "all but rest"})
        self._results.update(accuracy_original=a["accuracy"], accuracy_decompressed=b["accuracy"],
                             auc_original=a["auc"], auc_decompressed=b["auc"], out_json=out)
        return runtime
