"""Round trips through the codec: header restoration, quality, ratio, determinism."""

import os

import nibabel as nib
import numpy as np
import pytest

from nipype_icainr import compress, decompress, info, metrics
from nipype_icainr.masking import compute_mask

from .conftest import SAMPLE_BOLD, TINY, derivatives


def _decompress(compressed, tmp_path, name="out.nii.gz"):
    out = tmp_path / name
    decompress(compressed, str(out), device="cpu")
    return nib.load(str(out))


def test_header_is_restored_exactly(bold_file, compressed, tmp_path):
    orig = nib.load(bold_file)
    dec = _decompress(compressed[0], tmp_path)
    assert dec.shape == orig.shape
    np.testing.assert_array_equal(dec.affine, orig.affine)
    assert int(dec.header["sform_code"]) == int(orig.header["sform_code"]) == 1
    assert int(dec.header["qform_code"]) == int(orig.header["qform_code"]) == 1
    np.testing.assert_array_equal(dec.header.get_qform(), orig.header.get_qform())
    assert dec.header.get_zooms() == orig.header.get_zooms()
    assert dec.header.get_zooms()[3] == 2.0  # TR
    assert dec.header.get_xyzt_units() == orig.header.get_xyzt_units() == ("mm", "sec")
    assert dec.get_data_dtype() == orig.get_data_dtype() == np.int16
    assert dec.dataobj.slope == orig.dataobj.slope == 2.5
    assert dec.dataobj.inter == orig.dataobj.inter == 10.0
    # integer data are rounded back to stored integers
    vals = np.asarray(dec.dataobj.get_unscaled())
    assert vals.dtype == np.int16


def test_uncompressed_nii_output(compressed, tmp_path):
    dec = _decompress(compressed[0], tmp_path, "out.nii")
    with open(tmp_path / "out.nii", "rb") as fh:
        assert fh.read(2) != b"\x1f\x8b"  # not gzipped
    assert dec.get_data_dtype() == np.int16


def test_reconstruction_beats_the_mean_frame(bold_file, compressed, tmp_path):
    """The network must add signal: PSNR above the mean frame alone, and as reported."""
    orig_img = nib.load(bold_file)
    orig = np.asarray(orig_img.dataobj, dtype=np.float64)
    dec = np.asarray(_decompress(compressed[0], tmp_path).dataobj, dtype=np.float64)
    mask = compute_mask(orig, orig_img.affine)
    mean_only = np.repeat(orig.mean(-1, keepdims=True), orig.shape[-1], axis=-1)
    p_dec = metrics.psnr(orig, dec, mask)
    p_mean = metrics.psnr(orig, mean_only, mask)
    assert p_dec > p_mean + 3.0, (p_dec, p_mean)
    # what compress() measured is what decompress() delivers
    assert abs(compressed[1]["psnr"] - p_dec) < 1e-6


@pytest.mark.parametrize("ratio", [12, 30])
def test_ratio_lands_in_band(bold_file, tmp_path, ratio):
    out = tmp_path / "r.icainr"
    res = compress(bold_file, str(out), ratio=ratio, config=TINY, device="cpu", measure=False)
    achieved = np.prod(nib.load(bold_file).shape) * 2 / os.path.getsize(out)  # int16
    assert abs(achieved - res["ratio"]) < 1e-9
    assert 0.9 * ratio <= achieved <= 1.1 * ratio, achieved
    assert info(str(out))["ratio"] == pytest.approx(achieved)


def test_fixed_seed_is_deterministic_on_cpu(bold_file, tmp_path):
    def run(name, seed):
        out = tmp_path / name
        compress(bold_file, str(out), ratio=20, config=TINY, device="cpu", seed=seed,
                 measure=False)
        return out.read_bytes()

    first = run("a.icainr", 0)
    assert run("b.icainr", 0) == first
    assert run("c.icainr", 1) != first  # the seed drives the network's ICA and batches


def test_default_preset_is_deterministic(bold_file, tmp_path):
    outs = []
    for name in ("a.icainr", "b.icainr"):
        compress(bold_file, str(tmp_path / name), ratio=25, device="cpu", measure=False)
        outs.append((tmp_path / name).read_bytes())
    assert outs[0] == outs[1]


def test_input_is_never_modified(bold_file, tmp_path):
    before = open(bold_file, "rb").read()
    stat = os.stat(bold_file)
    compress(bold_file, str(tmp_path / "x.icainr"), ratio=20, config=TINY, device="cpu",
             measure=False)
    assert open(bold_file, "rb").read() == before
    assert os.stat(bold_file).st_mtime == stat.st_mtime


def test_info_reports_versions_and_sections(compressed):
    res = info(compressed[0])
    if res["arch"]["name"] == "factor":  # the regional layer whenever the header says so
        model_sections = {"FACT"} | ({"REGN"} if "regional_block" in res["arch"] else set())
    else:
        model_sections = {"WGHT"}
    assert set(res["sections"]) == {"MASK", "MEAN"} | model_sections
    assert res["software"]["nipype_icainr"] and res["software"]["numpy"]
    # a file records the libraries its model depends on, no more
    assert ("torch" in res["software"]) == (res["arch"]["name"] == "network")
    assert res["seed"] == 0
    assert sum(res["sections"].values()) + res["header_bytes"] == res["file_bytes"]


def test_float32_input_round_trip(tmp_path):
    from .conftest import synthetic_bold

    img, raw = synthetic_bold(shape=(12, 12, 8, 30), seed=3)
    data = (raw * 2.5 + 10.0).astype(np.float32)
    fimg = nib.Nifti1Image(data, img.affine, img.header)
    fimg.header.set_data_dtype(np.float32)
    fimg.header.set_slope_inter(1.0, 0.0)
    src = tmp_path / "f.nii.gz"
    fimg.to_filename(str(src))
    compress(str(src), str(tmp_path / "f.icainr"), ratio=8, config=TINY, device="cpu",
             measure=False)
    decompress(str(tmp_path / "f.icainr"), str(tmp_path / "f_dec.nii.gz"))
    dec = nib.load(str(tmp_path / "f_dec.nii.gz"))
    assert dec.get_data_dtype() == np.float32
    assert dec.shape == data.shape
    np.testing.assert_array_equal(dec.affine, nib.load(str(src)).affine)


@pytest.mark.parametrize("version, psnr", [(2, 54.26), (3, 53.99), (4, 55.98), (5, 55.95),
                                           (6, 55.88)])
def test_older_factor_files_still_decode(version, psnr):
    """Files written by formats 2 to 6 decode as they did then.

    ``tests/data/v{2,3,4,5,6}_factor.icainr`` are ``synthetic_bold(shape=(10, 12, 6, 30))``
    compressed with the default preset, at ratio 10 by format 2's code (time-domain
    patterns) and format 3's (DCT patterns, JSON header), at ratio 16 by format 4's
    (compact framing, maps coded with a per-symbol Laplace model; at ratio 10 it
    already wrote the run losslessly), format 5's (maps coded with tables, no
    neighbour weights) and format 6's (neighbour weights, no regional layer); the
    PSNR is what each decoded to with the code that wrote it.
    """
    from nipype_icainr.codec.api import decode_array
    from nipype_icainr.codec.container import read_file

    from .conftest import synthetic_bold

    path = os.path.join(os.path.dirname(__file__), "data", f"v{version}_factor.icainr")
    header, _, _, read_version = read_file(path)
    assert read_version == version
    assert header["model"]["patterns"] == ("time" if version == 2 else "dct")
    img, raw = synthetic_bold(shape=(10, 12, 6, 30))
    values, desc = decode_array(path)
    assert desc["dtype"] == "<i2" and desc["scl_slope"] == 2.5 and desc["tr"] == 2.0
    orig = raw * 2.5 + 10.0  # the fixture's scl_slope and scl_inter
    # over every voxel: what the brain mask of this 10 x 12 x 6 grid was when the files
    # were written (nilearn's opening then left no voxel, and the mask fell back to all)
    mask = np.ones(orig.shape[:3], dtype=bool)
    # a misread section decodes to noise (under 10 dB)
    assert metrics.psnr(orig, values, mask) == pytest.approx(psnr, abs=0.05)


def test_trailing_singleton_dimensions_are_kept(tmp_path):
    """A run stored as (X, Y, Z, T, 1) compresses and comes back with its five dimensions."""
    from .conftest import synthetic_bold

    img, raw = synthetic_bold(shape=(12, 12, 8, 30), seed=4)
    five = nib.Nifti1Image(raw[..., None], img.affine, img.header)
    src = tmp_path / "five.nii.gz"
    five.to_filename(str(src))
    assert nib.load(str(src)).shape == (12, 12, 8, 30, 1)
    compress(str(src), str(tmp_path / "five.icainr"), ratio=10, device="cpu")
    assert info(str(tmp_path / "five.icainr"))["image"]["shape"] == [12, 12, 8, 30]
    decompress(str(tmp_path / "five.icainr"), str(tmp_path / "back.nii.gz"))
    back = nib.load(str(tmp_path / "back.nii.gz"))
    assert back.shape == (12, 12, 8, 30, 1)
    np.testing.assert_array_equal(back.affine, nib.load(str(src)).affine)


@pytest.mark.parametrize("n_volumes", [2, 3, 7])
def test_short_runs_compress(tmp_path, n_volumes):
    """Runs of 2 to 7 volumes are coded, not refused; one volume is not a run."""
    from .conftest import synthetic_bold

    img, raw = synthetic_bold(shape=(12, 12, 8, n_volumes), seed=5)
    src = tmp_path / "short.nii.gz"
    nib.Nifti1Image(raw, img.affine, img.header).to_filename(str(src))
    res = compress(str(src), str(tmp_path / "short.icainr"), ratio=4, device="cpu")
    assert res["ratio"] >= 0.98 * 4 or res["ratio"] > 1
    values = np.asarray(nib.load(str(src)).dataobj, dtype=np.float64)
    decompress(str(tmp_path / "short.icainr"), str(tmp_path / "back.nii.gz"))
    back = np.asarray(nib.load(str(tmp_path / "back.nii.gz")).dataobj, dtype=np.float64)
    assert back.shape == values.shape
    mask = compute_mask(values, img.affine)
    assert metrics.psnr(values, back, mask) > 30


@pytest.mark.parametrize("target", [42.0, 48.0])
def test_psnr_target_lands_just_above_the_target_on_a_real_run(tmp_path, target):
    """``psnr=P`` gives the smallest file whose masked PSNR, measured on the NIfTI as
    written (rounded to int16), is at least P, and not more than 0.2 dB above it."""
    from nipype_icainr.codec.api import compress

    res = compress(SAMPLE_BOLD, tmp_path / "p.icainr", psnr=target)
    assert target <= res["psnr"] <= target + 0.2, res["psnr"]


def test_a_psnr_target_is_no_larger_than_the_ratio_search_at_that_psnr(tmp_path):
    """The bundled real run: the file for ``psnr=P``, P just under what the 100x file
    reaches, is at least as small as that 100x file (fitting to the error alone had
    coded the mean frame at its finest step: 1.3 to 5x larger files on small runs)."""
    from nipype_icainr.codec.api import compress

    at_ratio = compress(SAMPLE_BOLD, tmp_path / "r.icainr", ratio=100)
    target = at_ratio["psnr"] - 0.05
    res = compress(SAMPLE_BOLD, tmp_path / "p.icainr", psnr=target)
    assert res["psnr"] >= target
    assert res["file_bytes"] <= 1.02 * at_ratio["file_bytes"], (res["ratio"], at_ratio["ratio"])


def _sample_with_nan_background(tmp_path):
    """The bundled real run as float32 with NaN in every voxel outside the brain, as SPM
    writes a masked float image: ``(path, values)``."""
    img = nib.load(SAMPLE_BOLD)
    values = np.asarray(img.dataobj, dtype=np.float32)
    values[~compute_mask(values, img.affine)] = np.nan
    path = tmp_path / "nan_bold.nii.gz"
    out = nib.Nifti1Image(values, img.affine, img.header)
    out.set_data_dtype(np.float32)
    out.header.set_slope_inter(1.0, 0.0)
    out.to_filename(str(path))
    assert np.array_equal(np.asarray(nib.load(str(path)).dataobj), values, equal_nan=True)
    return path, values


@pytest.mark.parametrize("target", [{"ratio": 20}, {"lossless": True}, {"max_error": 2.0}])
def test_voxels_nan_at_every_time_point_come_back_as_nan(tmp_path, target):
    """Whole NaN voxels are written back as NaN, every other value finite: a format 8 file
    with a NANS section; lossless is exact (NaN for NaN), the maximum error holds."""
    from nipype_icainr.codec.container import NAN_FORMAT_VERSION

    path, values = _sample_with_nan_background(tmp_path)
    nan = np.isnan(values)
    assert 0 < nan.sum() < nan.size
    res = compress(str(path), str(tmp_path / "n.icainr"), **target)
    described = info(str(tmp_path / "n.icainr"))
    assert described["format_version"] == NAN_FORMAT_VERSION and "NANS" in described["sections"]
    decompress(str(tmp_path / "n.icainr"), str(tmp_path / "back.nii.gz"))
    back = np.asarray(nib.load(str(tmp_path / "back.nii.gz")).dataobj)
    assert back.dtype == np.float32 and np.array_equal(np.isnan(back), nan)
    assert np.isfinite(back[~nan]).all()
    if "lossless" in target:
        assert np.array_equal(back, values, equal_nan=True)
    if "max_error" in target:
        assert np.abs(back[~nan] - values[~nan]).max() <= 2.0
    if "ratio" in target:
        assert res["ratio"] >= 0.98 * 20 and res["psnr"] > 30


@pytest.mark.parametrize("target", [{"ratio": 20}, {"lossless": True}])
def test_nan_voxels_of_an_uncompressed_float64_run(tmp_path, target):
    """A float64 ``.nii`` is read through nibabel's read-only memory map: its NaN voxels
    are set to 0 in a copy (assigning into the map ended in a traceback), and the input
    file is unchanged."""
    path, values = _sample_with_nan_background(tmp_path)
    img = nib.load(str(path))
    raw = tmp_path / "nan64.nii"
    out = nib.Nifti1Image(values.astype(np.float64), img.affine)
    out.set_data_dtype(np.float64)
    out.to_filename(str(raw))
    before = raw.read_bytes()
    compress(str(raw), str(tmp_path / "n.icainr"), **target)
    assert raw.read_bytes() == before
    decompress(str(tmp_path / "n.icainr"), str(tmp_path / "back.nii"))
    back = np.asarray(nib.load(str(tmp_path / "back.nii")).dataobj)
    assert back.dtype == np.float64 and np.array_equal(np.isnan(back), np.isnan(values))


def test_nan_files_without_nan_voxels_stay_format_7(tmp_path):
    """A run with no NaN is written as format 7 (a decoder of format 7 reads it), and a
    NaN at some time points only is still refused in one line."""
    from nipype_icainr.codec.container import FORMAT_VERSION
    from nipype_icainr.codec.errors import ICAINRError

    path, values = _sample_with_nan_background(tmp_path)
    finite = np.nan_to_num(values, nan=0.0)
    plain = tmp_path / "plain.nii.gz"
    nib.Nifti1Image(finite, nib.load(str(path)).affine).to_filename(str(plain))
    compress(str(plain), str(tmp_path / "p.icainr"), ratio=20)
    assert info(str(tmp_path / "p.icainr"))["format_version"] == FORMAT_VERSION
    inside = np.argwhere(~np.isnan(values[..., 0]))[0]
    values[tuple(inside) + (3,)] = np.nan
    partial = tmp_path / "partial.nii.gz"
    nib.Nifti1Image(values, nib.load(str(path)).affine).to_filename(str(partial))
    with pytest.raises(ICAINRError, match="1 voxels are NaN at some time points only"):
        compress(str(partial), str(tmp_path / "x.icainr"), ratio=20)
    assert not (tmp_path / "x.icainr").exists()


def test_a_zscored_run_keeps_every_brain_voxels_dynamics(tmp_path):
    """The bundled real run z-scored in its brain, 0 elsewhere (a derivative with no
    baseline), at 100x: no brain voxel comes back flat. Masked from its near-zero
    mean image, 22 % of them did: coded as their mean alone, their series lost."""
    img = nib.load(SAMPLE_BOLD)
    zscored = derivatives(np.asarray(img.dataobj, dtype=np.float64))["zscored"]
    brain = np.ptp(zscored, axis=-1) > 0
    path = tmp_path / "zscored.nii.gz"
    nib.Nifti1Image(zscored.astype(np.float32), img.affine).to_filename(str(path))
    compress(str(path), str(tmp_path / "z.icainr"), ratio=100, device="cpu")
    decoded = np.asarray(_decompress(str(tmp_path / "z.icainr"), tmp_path).dataobj,
                         dtype=np.float64)
    assert np.all(decoded[brain].std(axis=-1) > 0)


@pytest.mark.parametrize("ratio", [25, 200])
def test_zero_padding_of_a_z_scored_run_comes_back_exactly_zero(tmp_path, ratio):
    """A z-scored run (values either side of 0) with 0 outside the brain, as a cleaned
    derivative is written: the padding comes back exactly 0, so a mask of the non-zero
    voxels finds the same brain. It had come back as -1.4e-4 on a z-scored MNI run
    (the mean frame's levels started at its minimum, a fraction of a step from 0)."""
    img = nib.load(SAMPLE_BOLD)
    values = np.asarray(img.dataobj, dtype=np.float64)
    brain = compute_mask(values, img.affine)
    inside = values[brain]
    z = np.zeros(values.shape, dtype=np.float32)
    z[brain] = (inside - inside.mean(-1, keepdims=True)) / inside.std(-1, keepdims=True)
    path = tmp_path / "zscored.nii.gz"
    nib.Nifti1Image(z, img.affine).to_filename(str(path))
    compress(str(path), str(tmp_path / "z.icainr"), ratio=ratio)
    decompress(str(tmp_path / "z.icainr"), str(tmp_path / "back.nii.gz"))
    back = np.asarray(nib.load(str(tmp_path / "back.nii.gz")).dataobj)
    padding = ~brain
    assert padding.any() and np.all(back[padding] == 0)


def test_a_higher_mean_frame_effort_codes_the_same_frame_in_fewer_bytes(tmp_path):
    """``mean_frame_effort: 10`` (JPEG XL's effort for the mean frame) gives the bundled
    run's 200x file the same mean frame in fewer bytes; the default stays at 7."""
    from nipype_icainr.codec import core, frame
    from nipype_icainr.codec.config import load_preset
    from nipype_icainr.codec.container import read_file

    assert load_preset("default")["mean_frame_effort"] == 7
    frames = {}
    for effort in (7, 10):
        out = tmp_path / f"e{effort}.icainr"
        compress(SAMPLE_BOLD, str(out), ratio=200, measure=False,
                 config={"base": "default", "mean_frame_effort": effort})
        header, sections, _, _ = read_file(str(out))
        shape = nib.load(SAMPLE_BOLD).shape[:3]
        info_ = header["frame"]
        frames[effort] = (len(sections[core.MEAN_TAG]), frame.decode_mean_frame(
            sections[core.MEAN_TAG], shape, info_["mean_lo"], info_["mean_step"], str(out)))
    assert frames[10][0] < frames[7][0]
    np.testing.assert_array_equal(frames[10][1], frames[7][1])
    assert info(str(tmp_path / "e10.icainr"))["config"]["mean_frame_effort"] == 10
    # recorded only when set: a custom configuration that leaves it at 7 writes the
    # bytes it wrote before the key existed
    other = tmp_path / "other.icainr"
    compress(SAMPLE_BOLD, str(other), ratio=200, measure=False,
             config={"base": "default", "max_components": 200})
    stored = read_file(str(other))[0]["config"]
    assert stored["max_components"] == 200 and "mean_frame_effort" not in stored
    assert info(str(other))["config"]["mean_frame_effort"] == 7
