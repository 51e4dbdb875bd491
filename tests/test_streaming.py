"""Reading a run volume by volume (``codec.runs.VolumeRun``) gives what reading it whole does."""

import nibabel as nib
import numpy as np
import pytest

from nipype_icainr import io
from nipype_icainr.codec import core
from nipype_icainr.codec.config import resolve_config
from nipype_icainr.codec.runs import ArrayRun, VolumeRun

from .conftest import save_with_scaling, synthetic_bold


@pytest.fixture(params=["int16.nii.gz", "float32.nii"])
def run_file(tmp_path, request):
    img, raw = synthetic_bold(shape=(14, 16, 9, 40))
    path = tmp_path / request.param
    if request.param.startswith("int16"):
        save_with_scaling(img, raw, str(path))
    else:  # fMRIPrep's float32 output, with noise outside the brain
        rng = np.random.default_rng(3)
        data = (raw * 2.5 + 10.0).astype(np.float32) + rng.normal(0, 4, raw.shape).astype(
            np.float32)
        hdr = nib.Nifti1Header()
        hdr.set_data_dtype(np.float32)
        nib.Nifti1Image(data, img.affine, hdr).to_filename(str(path))
    return str(path)


def _sources(path):
    _, data = io.load_bold(path)
    img, shape = io.open_bold(path, keep_file_open=True)
    return ArrayRun(data), VolumeRun(img, shape, path)


def test_statistics_series_and_volumes_are_identical(run_file):
    whole, streamed = _sources(run_file)
    for a, b in zip(whole.stats(), streamed.stats()):
        np.testing.assert_array_equal(a, b)
    mask = core.series_mask(whole, np.eye(4))
    np.testing.assert_array_equal(mask, core.series_mask(streamed, np.eye(4)))
    np.testing.assert_array_equal(whole.series(mask), streamed.series(mask))
    np.testing.assert_array_equal(whole.array(), streamed.array())
    np.testing.assert_array_equal(whole.volume(7), streamed.volume(7))
    assert streamed.background_noise(~mask) == pytest.approx(whole.background_noise(~mask),
                                                              rel=1e-9)


@pytest.mark.parametrize("ratio", [10.0, 40.0])
def test_streamed_encoding_writes_the_same_file(run_file, ratio):
    whole, streamed = _sources(run_file)
    img = nib.load(run_file)
    desc = io.describe_image(img, run_file)
    cfg = resolve_config("default")
    blobs = [core.encode(source, desc, cfg, core.Target(ratio=ratio), measure=False).blob
             for source in (whole, streamed)]
    assert blobs[0] == blobs[1]


def test_streamed_measurement_matches_the_whole_run_metrics(run_file):
    from nipype_icainr import metrics
    from nipype_icainr.codec.api import SSIM_VOLUMES, measure_streamed
    from nipype_icainr.masking import compute_mask

    whole, streamed = _sources(run_file)
    img = nib.load(run_file)
    desc = io.describe_image(img, run_file)
    enc = core.encode(streamed, desc, resolve_config("default"), core.Target(ratio=20.0))
    psnr, ssim, max_err, at = measure_streamed(streamed, enc.reconstruction, desc)
    decoded = io.as_written(enc.reconstruction.values(), desc["dtype"], desc["scl_slope"],
                            desc["scl_inter"])
    data = whole.array()
    mask = compute_mask(data, desc["affine"])
    assert psnr == pytest.approx(metrics.psnr(data, decoded, mask), rel=1e-12)
    assert max_err == pytest.approx(metrics.max_abs_error(data, decoded), rel=1e-12)
    assert len(at) == min(SSIM_VOLUMES, data.shape[3])
    assert ssim == pytest.approx(metrics.ssim(data, decoded, mask, volumes=at), rel=1e-12)


def test_a_nan_in_a_streamed_run_is_refused_before_anything_is_written(tmp_path):
    from nipype_icainr import compress
    from nipype_icainr.codec.errors import ICAINRError

    img, raw = synthetic_bold(shape=(10, 12, 8, 20))
    data = (raw * 2.5).astype(np.float32)
    data[3, 4, 5, 17] = np.nan
    data[1, 1, 1, 2] = np.inf
    src = tmp_path / "nan.nii.gz"
    nib.Nifti1Image(data, img.affine).to_filename(str(src))
    out = tmp_path / "x.icainr"
    with pytest.raises(ICAINRError, match="1 Inf values"):
        compress(str(src), str(out), ratio=10)
    assert not out.exists()


def test_a_run_too_large_for_the_memory_is_refused_up_front(run_file, tmp_path, monkeypatch):
    from nipype_icainr import compress
    from nipype_icainr.codec import api
    from nipype_icainr.codec.errors import ICAINRError

    need = api.compress_memory_gb(run_file, margin=1.0)
    monkeypatch.setattr(api, "available_memory_gb", lambda: need / 2)
    out = tmp_path / "x.icainr"
    advice = r"needs about .* GB of memory .*(max_components: \d+|more memory)"
    with pytest.raises(ICAINRError, match=advice):
        compress(run_file, str(out), ratio=10)
    assert not out.exists()
    monkeypatch.setattr(api, "available_memory_gb", lambda: need * 2)
    compress(run_file, str(out), ratio=10)
    assert out.exists()
