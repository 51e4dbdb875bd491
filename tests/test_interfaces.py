"""The interfaces in a user's own workflow (examples/custom_workflow.py), and the report
rendered in headless Chromium."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("nipype")

from .conftest import QUICK  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def example_run(bold_file, tmp_path_factory):
    import yaml

    sys.path.insert(0, os.path.join(ROOT, "examples"))
    try:
        import custom_workflow
    finally:
        sys.path.pop(0)
    work = tmp_path_factory.mktemp("example")
    cfg = work / "fast.yaml"
    cfg.write_text(yaml.safe_dump(QUICK))
    graph = custom_workflow.main([bold_file, "-w", str(work), "--ratio", "20",
                                  "--config", str(cfg)])
    return {n.name: n for n in graph.nodes()}


def test_example_workflow_runs_the_interfaces(example_run, bold_file):
    import nibabel as nib

    # Nipype keeps only connected outputs in a node's result file
    comp = example_run["compress"].result.outputs
    assert comp.fit_seconds > 0
    assert comp.out_file.endswith(".icainr") and os.path.dirname(comp.out_file) != \
        os.path.dirname(bold_file)  # written under the node's working directory
    dec = nib.load(example_run["decompress"].result.outputs.out_file)
    assert dec.shape == nib.load(bold_file).shape
    rep = example_run["report"].result.outputs
    assert 18 <= rep.ratio <= 22
    qc = json.load(open(rep.out_json))
    assert qc["values"]["psnr_db"] == pytest.approx(rep.psnr)
    assert qc["values"]["psnr_db"] > qc["psnr_mean_frame_only_db"] + 3
    assert "fla" not in qc["metrics"]  # no events were given


def test_interfaces_refuse_mismatched_runs(bold_file, tmp_path):
    import nibabel as nib

    from nipype_icainr.interfaces import FirstLevelQC

    img = nib.load(bold_file)
    short = nib.Nifti1Image(np.asarray(img.dataobj)[..., :10], img.affine, img.header)
    short_file = tmp_path / "short.nii.gz"
    short.to_filename(str(short_file))
    events = tmp_path / "events.tsv"
    events.write_text("onset\tduration\ttrial_type\n0\t4\ta\n")
    iface = FirstLevelQC(original=bold_file, decompressed=str(short_file),
                         events_file=str(events))
    with pytest.raises(Exception, match="does not match the original's"):
        iface.run(cwd=str(tmp_path))
    iface = FirstLevelQC(original=bold_file, decompressed=bold_file,
                         events_file=str(tmp_path / "missing.tsv"))
    with pytest.raises(Exception, match="events file not found"):
        iface.run(cwd=str(tmp_path))


def test_connectivity_of_a_run_flat_in_time_is_left_undefined(bold_file, tmp_path):
    """A decompressed run that keeps no time course (every voxel its mean) has no
    region-to-region correlation to compare: the interface runs, leaves the figures
    undefined and its JSON says why."""
    import json

    import nibabel as nib
    from nipype.interfaces.base import isdefined

    from nipype_icainr.interfaces import ConnectivityQC

    img = nib.load(bold_file)
    data = np.asarray(img.dataobj, dtype=np.float32)
    flat = np.repeat(data.mean(axis=-1, keepdims=True), data.shape[-1], axis=-1)
    flat_file = tmp_path / "flat.nii.gz"
    out = nib.Nifti1Image(flat, img.affine)
    out.header.set_zooms(img.header.get_zooms())
    out.header.set_xyzt_units("mm", "sec")
    out.to_filename(str(flat_file))
    res = ConnectivityQC(original=bold_file, decompressed=str(flat_file), atlas="compact",
                         n_parcels=8).run(cwd=str(tmp_path))
    assert not isdefined(res.outputs.mean_abs_dr)
    record = json.loads(open(res.outputs.out_json).read())
    assert "fewer than two regions have signal in the decoded run" in json.dumps(record)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                    reason="Debian's chromium is not installed (CI installs it)")
def test_report_figures_load_in_headless_chromium(example_run, tmp_path):
    assert CHROMIUM, "chromium must be installed in CI"
    report = example_run["report"].result.outputs.out_report
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000"]
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", f"file://{report}"],
                         capture_output=True, text=True, timeout=120).stdout
    assert 'data-images-total="2"' in dom, dom[:300]
    assert 'data-images-loaded="2"' in dom
    shot = tmp_path / "report.png"
    subprocess.run([CHROMIUM, *flags, f"--screenshot={shot}", "--window-size=1200,2400",
                    f"file://{report}"], capture_output=True, timeout=120)
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    # a page of figures, not a blank page: plenty of non-white pixels with real variation
    assert (pixels < 200).mean() > 0.05 and pixels.std() > 20


def test_compress_interface_takes_lossless_and_error_bounded_targets(tmp_path):
    import nibabel as nib

    from nipype_icainr.interfaces import ICAINRCompress, ICAINRDecompress

    rng = np.random.default_rng(0)
    data = (1000 + rng.normal(0, 30, (8, 9, 6, 12))).astype(np.int16)
    src = tmp_path / "run.nii.gz"
    nib.save(nib.Nifti1Image(data, np.eye(4)), src)
    for inputs, mode in (({"lossless": True}, "lossless"),
                         ({"max_error": "2u"}, "error-bounded")):
        wd = tmp_path / mode
        wd.mkdir()
        os.chdir(wd)
        res = ICAINRCompress(in_file=str(src), **inputs).run()
        assert res.outputs.mode == mode
        back = ICAINRDecompress(in_file=res.outputs.out_file).run().outputs.out_file
        out = np.asanyarray(nib.load(back).dataobj)
        err = np.abs(out.astype(int) - data.astype(int)).max()
        bound = 0.0 if mode == "lossless" else 2.0  # scl_slope 1: 2u is 2
        assert res.outputs.bound == bound and err <= bound
    with pytest.raises(Exception, match="mutually exclusive|xor"):
        ICAINRCompress(in_file=str(src), ratio=50, lossless=True).run()
