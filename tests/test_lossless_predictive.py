"""The predictive lossless engine: exact round trips, error bounds, determinism, hostile streams."""

import math
import os

import nibabel as nib
import numpy as np
import pytest

from nipype_icainr import compress, decompress, info
from nipype_icainr.codec.errors import ICAINRError
from nipype_icainr.codec.lossless import predictive as P

CORPUS = "/work/shared/data/corpus/nipy__functional.nii.gz"
FORREST = "/work/shared/data/studyforrest/sub-02/func/sub-02_task-oneback_run-1_bold.nii.gz"


def _smooth(shape, dtype, seed=0, noise=3.0, level=1000.0):
    rng = np.random.default_rng(seed)
    X, Y, Z, T = shape
    x, y, z = np.meshgrid(np.arange(X), np.arange(Y), np.arange(Z), indexing="ij")
    base = level * (1 + 0.3 * np.sin(x / 3.0) * np.cos(y / 4.0) + 0.1 * z / max(Z, 1))
    drift = np.sin(np.arange(T) / 5.0)
    a = base[..., None] * (1 + 0.01 * drift) + rng.normal(0, noise, shape)
    info = np.iinfo(dtype)
    return np.clip(np.rint(a), info.min, info.max).astype(dtype)


def _roundtrip(a, error=0):
    blob = P.encode(a, error)
    back = P.decode(blob, a.shape, a.dtype, "test", error)
    assert back.dtype == a.dtype and back.shape == a.shape
    return blob, back


# ---------------------------------------------------------------------------- engine
@pytest.mark.parametrize("dtype", [np.int16, np.uint8, np.int32, np.uint16, np.int8])
def test_smooth_runs_round_trip_exactly(dtype):
    level = 100.0 if np.dtype(dtype).itemsize == 1 else 1000.0
    a = _smooth((9, 8, 6, 12), dtype, level=level)
    blob, back = _roundtrip(a)
    assert np.array_equal(back, a)
    assert len(blob) < a.nbytes


@pytest.mark.parametrize("shape", [(4, 5, 6, 1), (4, 5, 6, 2), (1, 1, 1, 5), (1, 1, 1, 1),
                                   (3, 1, 2, 7)])
def test_degenerate_shapes(shape):
    rng = np.random.default_rng(1)
    for a in (rng.integers(-500, 500, shape).astype(np.int16),
              np.full(shape, 7, np.int16)):
        for e in (0, 2):
            _, back = _roundtrip(a, e)
            assert np.abs(back.astype(np.int64) - a).max() <= e


def test_constant_voxels_cost_only_the_mask():
    a = _smooth((8, 8, 6, 20), np.int16)
    a[:3] = 0                       # zero padding, constant over time
    a[5, 5, 5] = -32768
    blob, back = _roundtrip(a)
    assert np.array_equal(back, a)
    blob_const, back_const = _roundtrip(np.full((8, 8, 6, 20), -3, np.int16))
    assert (back_const == -3).all() and len(blob_const) < 200


@pytest.mark.parametrize("dtype", [np.int16, np.uint8, np.int32, np.uint16])
def test_dtype_extremes(dtype):
    info = np.iinfo(dtype)
    rng = np.random.default_rng(2)
    a = np.where(rng.random((5, 6, 4, 9)) < 0.5, info.min, info.max).astype(dtype)
    a[0, 0, 0] = info.min + 1
    if not P.supports(a):        # int32 full range: the model keeps zstd for it
        assert np.iinfo(dtype).bits == 32
        return
    for e in (0, 1, 5):
        _, back = _roundtrip(a, e)
        assert np.abs(back.astype(np.int64) - a.astype(np.int64)).max() <= e


def test_wide_int32_and_escapes():
    rng = np.random.default_rng(3)
    a = _smooth((6, 7, 5, 16), np.int32, level=1e6, noise=2.0)
    a[2, 3, 1, 7] += 1 << 29           # one huge outlier: an escape
    a[1, 1, 1, 3] -= 1 << 28
    _, back = _roundtrip(a)
    assert np.array_equal(back, a)
    b = rng.integers(-2 ** 30, 2 ** 30, (6, 7, 5, 12)).astype(np.int32)
    _, back = _roundtrip(b)
    assert np.array_equal(back, b)


def test_near_lossless_bound_and_gain():
    a = _smooth((10, 10, 6, 24), np.int16, noise=6.0)
    sizes = []
    for e in (0, 1, 2, 4):
        blob, back = _roundtrip(a, e)
        assert np.abs(back.astype(np.int64) - a).max() <= e
        sizes.append(len(blob))
    assert sizes == sorted(sizes, reverse=True)


def test_out_of_range_codes_are_not_supported():
    a = np.zeros((2, 2, 2, 3), np.int64)
    a[0, 0, 0, 0] = 1 << 40
    assert not P.supports(a)
    assert not P.supports(np.zeros((2, 2, 2, 3), np.float32))


def test_encoding_is_deterministic():
    a = _smooth((20, 20, 10, 30), np.int16)  # large enough for the low-rank term
    assert P.encode(a) == P.encode(a)
    assert P.encode(a, 2) == P.encode(a, 2)


def test_lowrank_term_is_used_and_exact():
    a = _smooth((40, 40, 10, 24), np.int16, noise=2.0)
    blob, back = _roundtrip(a)
    assert np.array_equal(back, a)
    head, _ = P.parse_header(blob, a.shape, "t")
    assert head["K"] > 0


# ---------------------------------------------------------------------------- determinism
def test_det_exp_matches_math_exp():
    z = np.concatenate([np.linspace(-700, 700, 20001), -np.logspace(-12, 2.5, 500),
                        [0.0, -0.5, 0.5, -1e-300, math.log(2)]])
    got = P.det_exp(z)
    want = np.array([math.exp(v) for v in z])
    assert np.all(np.abs(got - want) <= 1e-12 * want)
    assert P.det_exp(np.array([-1000.0]))[0] <= 1e-300


def test_probability_tables_are_integer_normalised(monkeypatch):
    seen = []
    real = P._categorical

    def spy(weights):
        w = np.asarray(weights)
        seen.append(w)
        return real(weights)

    monkeypatch.setattr(P.tables, "_categorical", spy)   # patched where _Tables looks it up
    a = _smooth((8, 8, 6, 12), np.int16)
    P.encode(a)
    assert seen
    for w in seen:
        assert w.dtype.kind in "iu" and (w >= 1).all() and int(w.sum()) < 1 << 53
    tabs = P._Tables(np.linspace(0.01, 50, P.NBUCKET), 1)
    for gid in (0, 5, 17, P.NG * 40 + 3, P.NG * P.NBUCKET - 1):
        prior = tabs.prior(gid)
        assert prior.dtype == np.int64 and (prior >= 1).all()
        assert abs(int(prior.sum()) - (1 << P.PRIOR_BITS)) < prior.size + 8


def test_no_transcendental_on_the_decoding_side(monkeypatch):
    """Decoding must not call numpy's exp/log/power (libm-dependent bits)."""
    a = _smooth((20, 20, 10, 30), np.int16)
    blob = P.encode(a)

    def boom(*args, **kwargs):
        raise AssertionError("a transcendental was called while decoding")

    for name in ("exp", "log", "log2", "power", "exp2", "float_power"):
        monkeypatch.setattr(P.np, name, boom)
    back = P.decode(blob, a.shape, a.dtype, "t")
    assert np.array_equal(back, a)


# ---------------------------------------------------------------------------- hostile streams
def _expect_clean(blob, shape, dtype=np.int16, error=0):
    try:
        P.decode(blob, shape, dtype, "hostile", error)
    except ICAINRError as exc:
        assert "\n" not in str(exc)
        return "refused"
    return "decoded"


def test_hostile_streams_end_in_one_error():
    a = _smooth((6, 6, 4, 10), np.int16)
    a[0] = 5
    blob = P.encode(a)
    rng = np.random.default_rng(12345)
    outcomes = {"refused": 0, "decoded": 0}
    for n in range(0, len(blob), max(1, len(blob) // 40)):  # truncations
        outcomes[_expect_clean(blob[:n], a.shape)] += 1
    for _ in range(300):                                      # random bit flips and bytes
        b = bytearray(blob)
        for _ in range(int(rng.integers(1, 4))):
            pos = int(rng.integers(len(b)))
            if rng.random() < 0.5:
                b[pos] ^= 1 << int(rng.integers(8))
            else:
                b[pos] = int(rng.integers(256))
        outcomes[_expect_clean(bytes(b), a.shape)] += 1
    for _ in range(100):                                      # garbage after a valid header
        b = bytearray(blob)
        start = P._HEAD.size
        b[start:] = rng.integers(0, 256, len(b) - start, dtype=np.uint8).tobytes()
        outcomes[_expect_clean(bytes(b), a.shape)] += 1
    assert outcomes["refused"] > 300


def test_absurd_header_fields_are_refused():
    a = _smooth((6, 6, 4, 10), np.int16)
    blob = P.encode(a)
    f = list(P._HEAD.unpack_from(blob, 0))
    rest = blob[P._HEAD.size:]
    # field indices: 1-4 shape, 5 crc, 6 lo, 7 range, 8 E, 9 F, 10 phases, 11 K, 12 edges,
    # 13-15 edges, 16 k0, 17 k1, 18-22 side dtypes, 23-30 section lengths
    edits = [(1, 7), (4, 10 ** 9), (5, f[5] ^ 1), (7, (1 << 40)), (7, -1), (8, 1 << 31),
             (8, 1), (9, 3), (10, 3), (11, 200), (12, 9), (13, 100), (16, 90), (17, 250),
             (18, 9), (23, 1 << 31), (30, 4 * 10 ** 9), (30, f[30] + 4), (29, 4 * 97),
             (6, (1 << 62))]
    for idx, value in edits:
        g = list(f)
        g[idx] = value
        try:
            head = P._HEAD.pack(*g)
        except Exception:
            continue
        assert _expect_clean(head + rest, a.shape) == "refused", (idx, value)
    # wrong shape, dtype or bound at the caller
    assert _expect_clean(blob, (6, 6, 4, 11)) == "refused"
    assert _expect_clean(blob, (6, 6, 4, 10), np.uint8) in ("refused", "decoded")
    assert _expect_clean(blob, (6, 6, 4, 10), error=1) == "refused"
    with pytest.raises(ICAINRError):
        P.validate_stream(b"ICP\x01" + b"\0" * 10, (2, 2, 2, 2), "t")


# ---------------------------------------------------------------------------- public API
def _nifti(tmp_path, data, name, slope=None):
    img = nib.Nifti1Image(data, np.eye(4))
    img.header.set_data_dtype(data.dtype)
    if slope is not None:
        img.header.set_slope_inter(slope, 0.0)
    path = tmp_path / name
    img.to_filename(str(path))
    return str(path)


def _api_roundtrip(tmp_path, src, **kwargs):
    out = tmp_path / "x.icainr"
    res = compress(src, str(out), device="cpu", force=True, measure=False, **kwargs)
    dec = tmp_path / "x_dec.nii.gz"
    decompress(str(out), str(dec), force=True)
    img = nib.load(str(dec))
    return res, np.asarray(img.dataobj.get_unscaled()), img, out


def _crop(path, size=(20, 20, 10, 30)):
    img = nib.load(path)
    X, Y, Z, T = img.shape[:4]
    sx, sy, sz = (max(0, (n - m) // 2) for n, m in zip((X, Y, Z), size[:3]))
    a = np.asarray(img.dataobj.get_unscaled())[..., :size[3]] if img.ndim == 4 else None
    return np.ascontiguousarray(a[sx:sx + size[0], sy:sy + size[1], sz:sz + size[2]])


@pytest.mark.parametrize("path", [CORPUS, FORREST])
def test_real_crops_round_trip_through_the_api(tmp_path, path):
    if not os.path.exists(path):
        pytest.skip("shared data not available")
    a = _crop(path)
    src = _nifti(tmp_path, a, "crop.nii.gz")
    res, back, _, out = _api_roundtrip(tmp_path, src, lossless=True)
    assert back.dtype == a.dtype and np.array_equal(back, a)
    assert "predictive" in str(info(str(out))) or res["file_bytes"] > 0
    res1, back1, _, _ = _api_roundtrip(tmp_path, src, max_error="1u")
    assert np.abs(back1.astype(np.int64) - a).max() <= 1
    res2, back2, _, _ = _api_roundtrip(tmp_path, src, max_error="2u")
    assert np.abs(back2.astype(np.int64) - a).max() <= 2
    assert res2["file_bytes"] <= res1["file_bytes"] <= res["file_bytes"]


def test_engine_is_predictive_for_integers(tmp_path):
    from nipype_icainr.codec import container

    a = _smooth((12, 12, 8, 20), np.int16)
    src = _nifti(tmp_path, a, "s.nii.gz")
    _api_roundtrip(tmp_path, src, lossless=True)
    header = container.unpack((tmp_path / "x.icainr").read_bytes(), "t")[0]
    assert header["model"]["engine"] == "predictive"


def test_physical_bound_with_slope(tmp_path):
    a = _smooth((10, 10, 6, 16), np.int16)
    src = _nifti(tmp_path, a, "s.nii.gz", slope=0.5)
    _, back, img, _ = _api_roundtrip(tmp_path, src, max_error=1.0)  # 2 stored units
    assert np.abs(back.astype(np.int64) - a).max() <= 2


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_runs(tmp_path, dtype):
    a = _smooth((10, 10, 6, 16), np.int16).astype(dtype) * dtype(0.37)
    src = _nifti(tmp_path, a, "f.nii.gz")
    _, back, _, _ = _api_roundtrip(tmp_path, src, lossless=True)
    assert np.array_equal(np.ascontiguousarray(back).view(np.uint8), np.ascontiguousarray(a).view(np.uint8))
    _, back, _, _ = _api_roundtrip(tmp_path, src, max_error=0.5)
    assert np.abs(back.astype(np.float64) - a.astype(np.float64)).max() <= 0.5


@pytest.mark.parametrize("dtype", [np.int16, np.uint8, np.int32])
def test_noise_falls_back_to_zstd(tmp_path, dtype):
    from nipype_icainr.codec import container

    info_ = np.iinfo(dtype)
    rng = np.random.default_rng(5)
    a = rng.integers(info_.min, info_.max, (8, 8, 6, 10), endpoint=True).astype(dtype)
    src = _nifti(tmp_path, a, "n.nii.gz")
    _, back, _, out = _api_roundtrip(tmp_path, src, lossless=True)
    assert np.array_equal(back, a)
    header = container.unpack(out.read_bytes(), "t")[0]
    assert header["model"]["engine"] == "zstd"


def test_unknown_engine_is_refused():
    from nipype_icainr.codec.lossless.model import LosslessModel

    m = LosslessModel()
    part = {"kind": "exact", "engine": "predictive", "code_dtype": "<i2", "bound": 0.0,
            "error_units": 0}
    assert m.validate(part, [2, 2, 2, 2], None, "t")["engine"] == "predictive"
    for bad in ({"engine": "lzma"}, {"kind": "int-near"}, {"kind": "int-step"},
                {"kind": "int-near", "error_units": 0},
                {"kind": "int-near", "error_units": True, "bound": 1.0}):
        with pytest.raises(ICAINRError):
            m.validate(dict(part, **bad), [2, 2, 2, 2], None, "t")
