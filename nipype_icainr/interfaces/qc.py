"""Quality-control interfaces: any registered QC metric, and FLA, FCA and CTA by name.

``QCMetric`` runs any metric of ``nipype_icainr.qc`` on an original run and its
decompressed version; ``FirstLevelQC`` (FLA), ``ConnectivityQC`` (FCA) and
``DecodingQC`` (CTA) are the same with their options as named inputs. Each
writes ``<metric>.json`` (the metric's values, details and definition) and its
figure under the node's working directory; ``QCReport`` renders any list of
those JSON files.
"""

import base64
import os

import numpy as np
from nipype.interfaces.base import (BaseInterfaceInputSpec, File, SimpleInterface, TraitedSpec,
                                    isdefined, traits)

from .. import io, qc
from ..codec.errors import ICAINRError


def check_pair(original, decoded):
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


def load_mask(original_img, mask_file=None, data=None):
    """The QC mask: ``mask_file`` (> 0) or the codec's own mask of the original
    (``data``: its values, when already read)."""
    import nibabel as nib

    from ..masking import compute_mask

    if mask_file:
        mask = nib.load(mask_file)
        if mask.shape[:3] != original_img.shape[:3]:
            raise ICAINRError(mask_file, f"mask shape {mask.shape} does not match the run's grid")
        return (np.asarray(mask.dataobj) > 0).reshape(original_img.shape[:3])
    if data is None:
        data = np.asarray(original_img.dataobj, dtype=np.float32)
    return compute_mask(data, original_img.affine)


def nan_free_pair(original, orig_img, decoded, dec_img):
    """``(original values, decoded values)``, float64, when the original has NaN voxels:
    voxels NaN at every time point (the codec restores them) must be NaN in the decoded
    run too, and both are read as 0 there, outside any brain mask. Otherwise ``(original
    values, None)``, or ``(None, None)`` without reading a run whose stored dtype cannot
    hold NaN."""
    if np.dtype(orig_img.get_data_dtype()).kind != "f":
        return None, None
    data = np.asarray(orig_img.dataobj, dtype=np.float64)
    nan = np.isnan(data)
    if not nan.any():
        return data, None
    values = np.asarray(dec_img.dataobj, dtype=np.float64)
    if not np.array_equal(nan, np.isnan(values)):
        raise ICAINRError(decoded, f"its NaN values are not where {os.path.basename(original)}"
                                   " has them")
    data[nan] = 0.0
    values[nan] = 0.0
    return data, values


def qc_runs(original, orig_img, decompressed, dec_img, mask_file=None):
    """``(original Run, decoded image, mask)`` for the metrics: the images themselves, or
    for a run with NaN voxels images of their NaN-free values (``nan_free_pair``;
    nilearn's maskers read the images too)."""
    orig_data, dec_data = nan_free_pair(original, orig_img, decompressed, dec_img)
    if dec_data is None:  # no NaN: the values already read, if any, are the run's
        return qc.Run(img=orig_img, data=orig_data), dec_img, load_mask(orig_img, mask_file)
    return (qc.Run(data=orig_data, like=orig_img), qc.Run(data=dec_data, like=orig_img).img,
            load_mask(orig_img, mask_file, orig_data))


def read_events(path):
    """A BIDS events.tsv with its three required columns (one-line errors)."""
    import pandas as pd

    if not os.path.isfile(path):
        raise ICAINRError(path, "events file not found (FLA needs the run's events.tsv)")
    try:
        events = pd.read_csv(path, sep="\t")
    except Exception as exc:
        raise ICAINRError(path, f"cannot read events ({io.first_line(exc)})") from None
    missing = {"onset", "duration", "trial_type"} - set(events.columns)
    if missing:
        raise ICAINRError(path, f"missing columns: {', '.join(sorted(missing))}")
    return events


def run_metric(name, original, decompressed, cwd, mask_file=None, events_file=None, tr=None,
               labels_file=None, options=None):
    """Run the QC metric ``name`` on two NIfTI files; write its JSON and figure under ``cwd``.

    Returns the JSON record: ``metric``, ``title``, ``definition``, ``values``,
    ``details``, ``figure`` (a path or None) and ``figure_png`` (the figure itself,
    base64: the record is self-contained, whatever happens to the node's files).
    """
    metric = qc.get(name)
    orig_img, dec_img = check_pair(original, decompressed)
    tr_header = float(orig_img.header.get_zooms()[3])
    if tr is not None and abs(tr - tr_header) > 1e-3:
        raise ICAINRError(original, f"TR {tr} given does not match the header's {tr_header}")
    original_run, decoded_img, mask = qc_runs(original, orig_img, decompressed, dec_img,
                                              mask_file)
    ctx = qc.QCContext(original=original_run, mask=mask,
                       tr=tr_header if tr is None else tr, options=dict(options or {}))
    if events_file:
        ctx.events = read_events(events_file)
    if labels_file:
        from ..qc.decoding import read_labels

        ctx.labels, ctx.chunks = read_labels(labels_file, orig_img.shape[3])
    why = metric.missing(ctx)
    if why:
        raise ICAINRError(original, f"{metric.title} cannot run: {why}")
    result = metric.evaluate(ctx.decoded(img=decoded_img), ctx)
    figure = os.path.join(cwd, f"{name}.png")
    drawn = metric.figure(result, ctx, figure)
    record = {"metric": name, "title": metric.title, "definition": metric.definition,
              "values": result["values"], "details": result["details"],
              "figure": figure if drawn else None,
              "figure_png": base64.b64encode(open(figure, "rb").read()).decode("ascii")
              if drawn else None}
    io.write_json_atomic(os.path.join(cwd, f"{name}.json"), record)
    return record


class _QCInputSpec(BaseInterfaceInputSpec):
    original = File(exists=True, mandatory=True, desc="original 4D run")
    decompressed = File(exists=True, mandatory=True, desc="decompressed 4D run")
    mask_file = File(exists=True, desc="brain mask (default: the codec's mask of the original)")


class _QCOutputSpec(TraitedSpec):
    out_json = File(exists=True, desc="the metric's values, details and definition")
    out_figure = File(desc="the metric's figure, when it has one")
    values = traits.Dict(desc="the metric's values by column")


class _MetricInterface(SimpleInterface):
    """Shared run: subclasses set ``metric`` and map their inputs to ``_arguments``."""

    metric = None

    def _arguments(self):
        return {}

    def _run_interface(self, runtime):
        inp = self.inputs
        record = run_metric(self._metric_name(), inp.original, inp.decompressed, runtime.cwd,
                            mask_file=inp.mask_file if isdefined(inp.mask_file) else None,
                            **self._arguments())
        self._results.update(out_json=os.path.join(runtime.cwd, f"{record['metric']}.json"),
                             values=record["values"])
        if record["figure"]:
            self._results["out_figure"] = record["figure"]
        self._set_outputs(record)
        # a figure the metric could not compute (FCA of a run flat in time) stays
        # undefined; the JSON's note says why
        for key in [k for k, v in self._results.items() if v is None]:
            del self._results[key]
        return runtime

    def _metric_name(self):
        return self.metric

    def _set_outputs(self, record):
        pass


class _MetricInputSpec(_QCInputSpec):
    metric = traits.Enum(*qc.METRICS, mandatory=True, desc="a registered QC metric")
    events_file = File(exists=True, desc="BIDS events.tsv (FLA)")
    labels_file = File(exists=True, desc="per-volume labels and chunks (CTA)")
    options = traits.Dict(desc="metric options: atlas, atlas_file, n_parcels, in_mni, "
                               "classes, n_folds, seed")


class QCMetric(_MetricInterface):
    """Any registered QC metric (``nipype_icainr.qc.METRICS``) on a pair of runs."""

    input_spec = _MetricInputSpec
    output_spec = _QCOutputSpec

    def _metric_name(self):
        return self.inputs.metric

    def _arguments(self):
        inp = self.inputs
        return {"events_file": inp.events_file if isdefined(inp.events_file) else None,
                "labels_file": inp.labels_file if isdefined(inp.labels_file) else None,
                "options": inp.options if isdefined(inp.options) else None}


class _FLAInputSpec(_QCInputSpec):
    events_file = File(mandatory=True, desc="BIDS events.tsv (onset, duration, trial_type)")
    tr = traits.Float(desc="repetition time in seconds (default: from the NIfTI header)")


class _FLAOutputSpec(_QCOutputSpec):
    mean_abs_dt = traits.Float(desc="mean |t_original - t_decompressed| over mask and conditions")
    std_abs_dt = traits.Float(desc="std of the same")


class FirstLevelQC(_MetricInterface):
    """FLA: t-maps of every condition on both runs and the residual |dt| (metric ``fla``)."""

    input_spec = _FLAInputSpec
    output_spec = _FLAOutputSpec
    metric = "fla"

    def _arguments(self):
        return {"events_file": self.inputs.events_file,
                "tr": self.inputs.tr if isdefined(self.inputs.tr) else None}

    def _set_outputs(self, record):
        self._results.update(mean_abs_dt=record["values"]["fla_mean_abs_dt"],
                             std_abs_dt=record["values"]["fla_std_abs_dt"])


class _FCAInputSpec(_QCInputSpec):
    atlas_file = File(exists=True, desc="3D integer atlas on the run's grid or resampleable to it")
    atlas = traits.Enum("auto", "power2011", "kmeans", "compact", usedefault=True,
                        desc="without atlas_file: 'power2011' (264 spheres, bundled with "
                             "nilearn; MNI-space data only), 'kmeans' (parcellation of the "
                             "original, any space), 'compact' (k-means on coordinates), "
                             "'auto' (power2011 when in_mni is set, else kmeans)")
    in_mni = traits.Bool(False, usedefault=True, desc="the runs are in MNI space")
    n_parcels = traits.Int(40, usedefault=True, desc="parcels for the k-means atlases")


class _FCAOutputSpec(_QCOutputSpec):
    mean_abs_dr = traits.Float(desc="mean |r_original - r_decompressed| over region pairs")
    std_abs_dr = traits.Float(desc="std of the same")
    n_regions = traits.Int(desc="regions with signal")
    atlas_used = traits.Str(desc="which atlas was used")


class ConnectivityQC(_MetricInterface):
    """FCA: region-to-region correlations of both runs and the residual |dr| (metric ``fca``)."""

    input_spec = _FCAInputSpec
    output_spec = _FCAOutputSpec
    metric = "fca"

    def _arguments(self):
        inp = self.inputs
        options = {"atlas": inp.atlas, "in_mni": inp.in_mni, "n_parcels": inp.n_parcels}
        if isdefined(inp.atlas_file):
            options["atlas_file"] = inp.atlas_file
        return {"options": options}

    def _set_outputs(self, record):
        v = record["values"]
        self._results.update(mean_abs_dr=v["fca_mean_abs_dr"], std_abs_dr=v["fca_std_abs_dr"],
                             n_regions=v["fca_regions"], atlas_used=record["details"]["atlas"])


class _CTAInputSpec(_QCInputSpec):
    labels_file = File(exists=True, mandatory=True,
                       desc="one line per volume: '<label> <chunk>' (PyMVPA attributes) or a "
                            "TSV with columns label and chunk")
    classes = traits.List(traits.Str, desc="labels to decode (default: all but 'rest')")
    n_folds = traits.Int(10, usedefault=True)


class _CTAOutputSpec(_QCOutputSpec):
    accuracy_original = traits.Float()
    accuracy_decompressed = traits.Float()
    auc_original = traits.Float()
    auc_decompressed = traits.Float()


class DecodingQC(_MetricInterface):
    """CTA: linear SVM decoding on both runs (metric ``cta``)."""

    input_spec = _CTAInputSpec
    output_spec = _CTAOutputSpec
    metric = "cta"

    def _arguments(self):
        inp = self.inputs
        options = {"n_folds": inp.n_folds}
        if isdefined(inp.classes):
            options["classes"] = list(inp.classes)
        return {"labels_file": inp.labels_file, "options": options}

    def _set_outputs(self, record):
        d = record["details"]
        self._results.update(accuracy_original=d["original"]["accuracy"],
                             accuracy_decompressed=d["decompressed"]["accuracy"],
                             auc_original=d["original"]["auc"],
                             auc_decompressed=d["decompressed"]["auc"])
