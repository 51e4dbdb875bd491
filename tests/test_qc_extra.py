"""DecodingQC on the real Haxby slice, ResampleToGrid on an MNI-space run, a crashed
node's message in the BIDS App, and QC of a run with NaN voxels."""

import json
import os

import nibabel as nib
import numpy as np
import pytest

pytest.importorskip("nipype")

from .conftest import SHARED  # noqa: E402

HAXBY = os.path.join(SHARED, "haxby2001-1slice")


@pytest.mark.skipif(not os.path.isdir(HAXBY), reason="../shared/data is not present")
def test_decoding_qc_on_haxby(tmp_path):
    from nipype_icainr.interfaces import DecodingQC

    bold = os.path.join(HAXBY, "bold.nii.gz")
    # a degraded copy: heavy temporal noise must cost accuracy, the same data must not
    img = nib.load(bold)
    data = np.asarray(img.dataobj, dtype=np.float32)
    rng = np.random.default_rng(0)
    noisy = data + rng.normal(0, 3 * data.std(), data.shape).astype(np.float32)
    noisy_file = tmp_path / "noisy.nii.gz"
    nib.Nifti1Image(noisy, img.affine, img.header).to_filename(str(noisy_file))
    common = dict(original=bold, labels_file=os.path.join(HAXBY, "attributes_literal.txt"),
                  mask_file=os.path.join(HAXBY, "mask.nii.gz"), classes=["face", "house"])
    same = DecodingQC(decompressed=bold, **common).run(cwd=str(tmp_path)).outputs
    assert same.accuracy_original == same.accuracy_decompressed
    assert same.accuracy_original > 0.75  # face vs house is easy in ventral cortex
    assert 0.5 <= same.auc_original <= 1.0
    bad = DecodingQC(decompressed=str(noisy_file), **common).run(cwd=str(tmp_path)).outputs
    assert bad.accuracy_decompressed < same.accuracy_original
    record = json.load(open(bad.out_json))
    assert record["details"]["original"]["n_samples"] == 216  # 12 runs x (9 face + 9 house) volumes


def test_resample_fmriprep_derivative_to_grid(tmp_path):
    from nipype_icainr.interfaces.registration import ResampleToGrid
    from nipype_icainr.template_grid import GRID_SHAPE, grid_affine

    affine = np.diag([2.5, 2.5, 2.5, 1.0])
    affine[:3, 3] = [-96.0, -132.0, -78.0]
    data = np.random.default_rng(0).normal(1000, 10, (78, 94, 77, 6)).astype(np.float32)
    img = nib.Nifti1Image(data, affine)
    img.header.set_zooms((2.5, 2.5, 2.5, 1.5))
    img.header.set_xyzt_units("mm", "sec")
    src = tmp_path / "sub-01_task-x_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz"
    img.to_filename(str(src))
    out = nib.load(ResampleToGrid(in_file=str(src)).run(cwd=str(tmp_path)).outputs.out_file)
    assert out.shape == GRID_SHAPE + (6,)
    np.testing.assert_allclose(out.affine, grid_affine(), atol=1e-5)
    assert out.header.get_zooms()[3] == 1.5 and out.get_data_dtype() == np.float32
    inside = np.asarray(out.dataobj)[20:40, 20:40, 20:30]
    assert abs(float(inside.mean()) - 1000) < 5  # values kept where the source covers


def test_crashed_node_leaves_a_crash_file_and_one_message(tmp_path, capsys, monkeypatch):
    import shutil

    from bids_app import cli
    from nipype_icainr.interfaces import codec as codec_ifaces

    sample = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          "nipype_icainr", "data", "sample", "studyforrest-slab")
    bids = tmp_path / "bids"
    shutil.copytree(sample, bids)

    def boom(self, runtime):
        raise RuntimeError("simulated failure inside the compression node")

    monkeypatch.setattr(codec_ifaces.ICAINRCompress, "_run_interface", boom)
    code = cli.main([str(bids), str(tmp_path / "out"), "participant", "-w",
                     str(tmp_path / "work"), "--nprocs", "1", "--no-fla", "--no-fca",
                     "--use-plugin", str(_linear(tmp_path))])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(err) == 1 and "node(s) failed (crash files in" in err[0], err
    # the line ends with the cause, not with the traceback's first line
    assert err[0].endswith("simulated failure inside the compression node"), err
    logs = os.listdir(tmp_path / "out" / "logs")
    crashes = [c for c in logs if c.startswith("crash-")]
    # beside the crash file only the invocation's run record
    assert crashes and all(c.startswith(("crash-", "icainr-bids_")) for c in logs)
    text = open(tmp_path / "out" / "logs" / crashes[0]).read()
    assert "simulated failure inside the compression node" in text


def _linear(tmp_path):
    path = tmp_path / "linear.yml"
    path.write_text("plugin: Linear\nplugin_args: {}\n")
    return path


def test_qc_of_a_run_with_nan_voxels_reads_them_as_zero(tmp_path):
    """A float run with NaN outside the brain (the bundled real run, as SPM would write
    it), compressed and decompressed: the QC interfaces give finite figures (full-volume
    PSNR, connectivity), and a decoded run whose NaN are elsewhere is refused in one line."""
    from nipype_icainr import compress, decompress
    from nipype_icainr.codec.errors import ICAINRError
    from nipype_icainr.interfaces.qc import run_metric

    from .test_roundtrip import _sample_with_nan_background

    path, values = _sample_with_nan_background(tmp_path)
    compress(str(path), str(tmp_path / "n.icainr"), ratio=50)
    decompress(str(tmp_path / "n.icainr"), str(tmp_path / "back.nii.gz"))
    psnr = run_metric("psnr", str(path), str(tmp_path / "back.nii.gz"), str(tmp_path))
    assert np.isfinite(psnr["values"]["psnr_full_db"]) and psnr["values"]["psnr_db"] > 30
    fca = run_metric("fca", str(path), str(tmp_path / "back.nii.gz"), str(tmp_path))
    assert 0 <= fca["values"]["fca_mean_abs_dr"] < 0.2
    shifted = np.roll(np.asarray(nib.load(str(tmp_path / "back.nii.gz")).dataobj), 1, axis=0)
    img = nib.load(str(path))
    nib.Nifti1Image(shifted, img.affine, img.header).to_filename(str(tmp_path / "bad.nii.gz"))
    with pytest.raises(ICAINRError, match="NaN values are not where"):
        run_metric("psnr", str(path), str(tmp_path / "bad.nii.gz"), str(tmp_path))
