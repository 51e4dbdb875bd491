"""Bad input: one clear line naming the file, a non-zero exit, no output file."""

import json
import os
import struct
import zlib

import nibabel as nib
import numpy as np
import pytest

from nipype_icainr import ICAINRError, cli
from nipype_icainr.codec import container

from .conftest import TINY


def run_cli(args, capsys):
    code = cli.main([str(a) for a in args])
    err = capsys.readouterr().err.strip()
    return code, err


def assert_one_line_error(code, err, name, problem):
    assert code != 0
    assert len(err.splitlines()) == 1, err
    assert err.startswith("icainr: error:")
    assert name in err and problem in err, err
    assert "Traceback" not in err


def test_3d_image(tmp_path, capsys):
    src = tmp_path / "anat.nii.gz"
    nib.Nifti1Image(np.ones((8, 8, 8), np.int16), np.eye(4)).to_filename(str(src))
    out = tmp_path / "out.icainr"
    code, err = run_cli(["compress", src, out], capsys)
    assert_one_line_error(code, err, "anat.nii.gz", "expected a 4D image")
    assert not out.exists()


def test_not_a_nifti(tmp_path, capsys):
    src = tmp_path / "notes.nii.gz"
    src.write_text("hello, I am not an image\n")
    out = tmp_path / "out.icainr"
    code, err = run_cli(["compress", src, out], capsys)
    assert_one_line_error(code, err, "notes.nii.gz", "not a readable NIfTI")
    assert not out.exists()


@pytest.mark.parametrize("damage", ["cut", "noise"])
def test_damaged_gzip_stream(tmp_path, capsys, damage):
    """A .nii.gz whose header reads but whose stream is cut or corrupt (compress inflates
    small files into memory in one go): one line, no output, the input untouched."""
    import gzip

    data = np.random.default_rng(0).normal(100, 5, (12, 12, 10, 20)).astype(np.float32)
    raw = nib.Nifti1Image(data, np.eye(4)).to_bytes()
    packed = bytearray(gzip.compress(raw, compresslevel=1))
    if damage == "cut":
        packed = packed[:len(packed) // 2]
    else:  # noise in the middle of the deflate stream, after the header's blocks
        rng = np.random.default_rng(1)
        middle = len(packed) // 2
        packed[middle:middle + 200] = rng.integers(0, 256, 200, dtype=np.uint8).tobytes()
    src = tmp_path / "damaged.nii.gz"
    src.write_bytes(bytes(packed))
    out = tmp_path / "out.icainr"
    code, err = run_cli(["compress", src, out], capsys)
    assert_one_line_error(code, err, "damaged.nii.gz", "")
    assert code == 2
    assert not out.exists()
    assert src.read_bytes() == bytes(packed)


def test_missing_input(tmp_path, capsys):
    code, err = run_cli(["compress", tmp_path / "nope.nii.gz", tmp_path / "o.icainr"], capsys)
    assert_one_line_error(code, err, "nope.nii.gz", "no such file")


def test_nan_values(tmp_path, capsys):
    data = np.random.default_rng(0).normal(100, 1, (8, 8, 8, 12)).astype(np.float32)
    data[2, 3, 4, 5] = np.nan
    data[1, 1, 1, 1] = np.inf
    src = tmp_path / "nan.nii.gz"
    nib.Nifti1Image(data, np.eye(4)).to_filename(str(src))
    out = tmp_path / "out.icainr"
    code, err = run_cli(["compress", src, out], capsys)
    assert_one_line_error(code, err, "nan.nii.gz", "1 Inf values")
    assert not out.exists()


def test_lossless_keeps_nan_and_inf_bit_for_bit(tmp_path, capsys):
    """A float run with a NaN at one time point and an Inf, which the lossy codings
    refuse (their message says what keeps it), comes back bit for bit with --lossless,
    scaled or not."""
    rng = np.random.default_rng(0)
    data = rng.normal(100, 1, (8, 8, 8, 12)).astype(np.float32)
    data[2, 3, 4, 5] = np.nan
    data[1, 1, 1, 1] = -np.inf
    data[5, 5, 5, 0] = np.float32(-0.0)
    src = tmp_path / "nan.nii.gz"
    nib.Nifti1Image(data, np.eye(4)).to_filename(str(src))
    before = src.read_bytes()
    lossy = tmp_path / "lossy.icainr"
    code, err = run_cli(["compress", src, lossy, "--ratio", "5"], capsys)
    assert_one_line_error(code, err, "nan.nii.gz", "--lossless keeps")
    assert not lossy.exists()
    out, back = tmp_path / "out.icainr", tmp_path / "back.nii.gz"
    assert run_cli(["compress", src, out, "--lossless"], capsys)[0] == 0
    assert run_cli(["decompress", out, back], capsys)[0] == 0
    restored = np.asanyarray(nib.load(str(back)).dataobj.get_unscaled())
    assert restored.dtype == np.float32
    np.testing.assert_array_equal(restored.view(np.uint32), data.view(np.uint32))
    assert src.read_bytes() == before
    from nipype_icainr import compress

    res = compress(str(src), str(tmp_path / "api.icainr"), lossless=True)
    assert res["mode"] == "lossless" and res["bit_exact"] and res["psnr"] is None

    # a float run stored with a scaling (nibabel drops it on save: the header by hand)
    header = nib.Nifti1Header()
    header.set_data_shape(data.shape)
    header.set_data_dtype(np.float32)
    header.set_slope_inter(2.0, -1.0)
    header.set_data_offset(352)
    src2 = tmp_path / "scaled.nii"
    src2.write_bytes(header.binaryblock + bytes(4) + data.tobytes(order="F"))
    proxy = nib.load(str(src2)).dataobj  # nibabel moves the scaling to the array proxy
    assert (proxy.slope, proxy.inter) == (2.0, -1.0)
    out2, back2 = tmp_path / "s.icainr", tmp_path / "s.nii.gz"
    assert run_cli(["compress", src2, out2, "--lossless"], capsys)[0] == 0
    assert run_cli(["decompress", out2, back2], capsys)[0] == 0
    img = nib.load(str(back2))
    assert (img.dataobj.slope, img.dataobj.inter) == (2.0, -1.0)
    np.testing.assert_array_equal(
        np.asanyarray(img.dataobj.get_unscaled()).view(np.uint32), data.view(np.uint32))


def test_existing_output_without_force(bold_file, tmp_path, capsys):
    out = tmp_path / "exists.icainr"
    out.write_bytes(b"precious")
    code, err = run_cli(["compress", bold_file, out], capsys)
    assert_one_line_error(code, err, "exists.icainr", "already exists; use --force")
    assert out.read_bytes() == b"precious"


def test_existing_nifti_output_without_force(compressed, tmp_path, capsys):
    out = tmp_path / "exists.nii.gz"
    out.write_bytes(b"precious")
    code, err = run_cli(["decompress", compressed[0], out], capsys)
    assert_one_line_error(code, err, "exists.nii.gz", "already exists")
    assert out.read_bytes() == b"precious"


def test_unreachable_ratio(bold_file, tmp_path, capsys):
    out = tmp_path / "o.icainr"
    code, err = run_cli(["compress", bold_file, out, "--ratio", "5000"], capsys)
    assert_one_line_error(code, err, "sub-01_task-test_bold.nii.gz", "out of reach")
    assert not out.exists()


def _decompress_error(blob, tmp_path, capsys):
    bad = tmp_path / "bad.icainr"
    bad.write_bytes(blob)
    out = tmp_path / "bad.nii.gz"
    code, err = run_cli(["decompress", bad, out], capsys)
    assert not out.exists()
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp-")]
    return code, err


@pytest.mark.parametrize("cut", [0.0, 0.001, 0.3, 0.999])
def test_truncated_file(compressed, tmp_path, capsys, cut):
    blob = open(compressed[0], "rb").read()
    code, err = _decompress_error(blob[:int(len(blob) * cut)], tmp_path, capsys)
    assert code != 0 and "bad.icainr" in err and len(err.splitlines()) == 1
    assert "truncated" in err or "magic" in err, err


def test_every_single_bit_flip_region_is_detected(compressed, tmp_path, capsys):
    blob = bytearray(open(compressed[0], "rb").read())
    # flip one bit at several places: magic, header, each section payload, the end
    for pos in [0, 20, len(blob) // 3, len(blob) // 2, len(blob) - 1]:
        flipped = bytearray(blob)
        flipped[pos] ^= 0x10
        code, err = _decompress_error(bytes(flipped), tmp_path, capsys)
        assert code != 0, pos
        assert len(err.splitlines()) == 1 and "bad.icainr" in err, err


def test_unknown_format_version(compressed, tmp_path, capsys):
    blob = bytearray(open(compressed[0], "rb").read())
    struct.pack_into("<H", blob, 8, 99)
    code, err = _decompress_error(bytes(blob), tmp_path, capsys)
    assert_one_line_error(code, err, "bad.icainr", "format version 99 is not supported")


def test_not_icainr(tmp_path, capsys):
    code, err = _decompress_error(b"GIF89a" + bytes(100), tmp_path, capsys)
    assert_one_line_error(code, err, "bad.icainr", "wrong magic bytes")


def _with_crc(body):
    return body + struct.pack("<I", zlib.crc32(body))


def test_huge_declared_lengths_are_refused_before_allocating():
    preamble = struct.pack("<8sHH", container.MAGIC, container.FORMAT_VERSION, 0)
    blob = _with_crc(preamble + container.uvarint(2 ** 40) + b"x")
    with pytest.raises(ICAINRError, match="header length"):
        container.unpack(blob, "x")
    ok = container.pack({}, {"MASK": b"abc"})
    # claim a 2**60-byte section (the checksum recomputed: only the bound can refuse it)
    pos = ok.index(b"MASK") + 4
    forged = _with_crc(ok[:pos] + container.uvarint(2 ** 60) + ok[pos + 1:-4])
    with pytest.raises(ICAINRError, match="truncated"):
        container.unpack(forged, "x")
    # a header that inflates to more than the limit is refused while inflating
    bomb = container.deflate(b"0" * (container.MAX_HEADER_BYTES + 10))
    blob = _with_crc(preamble + container.frame(bomb, {}))
    with pytest.raises(ICAINRError, match="bounded"):
        container.unpack(blob, "x")


def test_forged_header_with_valid_checksum_is_rejected(compressed, tmp_path, capsys):
    """A rewritten header (valid checksum) that asks for an absurd model is refused."""
    header, sections, block, _ = container.read_file(compressed[0])
    if header["model"]["name"] == "factor":
        header["model"]["n_components"] = 10 ** 6
        problem = "implausible number of components"
    else:
        header["model"]["mlp_width"] = 10 ** 6
        problem = "implausible network setting"
    code, err = _decompress_error(container.pack(header, sections, block), tmp_path, capsys)
    assert_one_line_error(code, err, "bad.icainr", problem)
    header, sections, block, _ = container.read_file(compressed[0])
    header["image"]["shape"] = [100000, 100000, 100000, 10]
    code, err = _decompress_error(container.pack(header, sections, block), tmp_path, capsys)
    assert_one_line_error(code, err, "bad.icainr", "each spatial axis must be between")
    header, sections, block, _ = container.read_file(compressed[0])
    header["frame"]["value_range"] = [5.0, 4.0]
    code, err = _decompress_error(container.pack(header, sections, block), tmp_path, capsys)
    assert_one_line_error(code, err, "bad.icainr", "value_range")
    # JSON's non-standard constants are not numbers a header may hold
    text = json.dumps(dict(header, frame=dict(header["frame"], mean_lo=float("inf"))))
    preamble = struct.pack("<8sHH", container.MAGIC, container.FORMAT_VERSION, 0)
    raw = _with_crc(preamble + container.frame(
        container.deflate(text.encode() + b"\n" + block), sections))
    code, err = _decompress_error(raw, tmp_path, capsys)
    assert_one_line_error(code, err, "bad.icainr", "not valid JSON")


def test_cli_round_trip_prints_ratio(bold_file, tmp_path, capsys):
    import yaml

    cfg = tmp_path / "fast.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    out = tmp_path / "cli.icainr"
    code = cli.main(["compress", bold_file, str(out), "--ratio", "15", "--config", str(cfg),
                     "--device", "cpu", "--quiet"])
    text = capsys.readouterr().out
    assert code == 0
    assert "against the input file on disk" in text
    ratio = float(text.split("ratio ")[1].split()[0])
    assert 13.5 <= ratio <= 16.5
    code = cli.main(["decompress", str(out), str(tmp_path / "cli.nii.gz")])
    assert code == 0 and (tmp_path / "cli.nii.gz").stat().st_size > 0
    code = cli.main(["info", str(out)])
    assert code == 0 and "MASK" in capsys.readouterr().out


def test_bad_config_file(bold_file, tmp_path, capsys):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("base: network\nepochs: -3\n")
    code, err = run_cli(["compress", bold_file, tmp_path / "o.icainr", "--config", cfg], capsys)
    assert_one_line_error(code, err, "bad.yaml", "epochs must be an integer")
    cfg.write_text("epochs: 3\n")  # a network key with the default (factor) model
    code, err = run_cli(["compress", bold_file, tmp_path / "o.icainr", "--config", cfg], capsys)
    assert_one_line_error(code, err, "bad.yaml", "the factor model does not use: epochs")
    cfg.write_text("!!python/object/apply:os.system ['echo pwned']\n")
    code, err = run_cli(["compress", bold_file, tmp_path / "o.icainr", "--config", cfg], capsys)
    assert_one_line_error(code, err, "bad.yaml", "not valid YAML")


def test_one_checksum_guards_the_whole_file():
    blob = container.pack({"a": 1}, {"WGHT": b"0123456789"})
    header, sections, block, version = container.unpack(blob, "x")
    assert header == {"a": 1} and sections == {"WGHT": b"0123456789"} and block == b""
    assert version == container.FORMAT_VERSION == 7
    assert zlib.crc32(blob[:-4]) == struct.unpack_from("<I", blob, len(blob) - 4)[0]
    flipped = bytearray(blob)
    flipped[-6] ^= 1  # one bit of the payload
    with pytest.raises(ICAINRError, match="checksum mismatch"):
        container.unpack(bytes(flipped), "x")


def test_forged_factor_section_is_rejected(bold_file, tmp_path, capsys):
    """A FACT section re-packed with a valid CRC but absurd contents is refused."""
    import numpy as np

    from nipype_icainr import compress

    src = tmp_path / "f.icainr"
    compress(bold_file, str(src), ratio=20, device="cpu", measure=False)
    header, sections, block, _ = container.read_file(str(src))
    fact = bytearray(sections["FACT"])
    forged = dict(sections, FACT=np.uint32(10 ** 6).tobytes() + bytes(fact[4:]))
    code, err = _decompress_error(container.pack(header, forged, block), tmp_path, capsys)
    assert_one_line_error(code, err, "bad.icainr", "claims 1000000 components")
    k = int(np.frombuffer(bytes(fact[:4]), "<u4")[0])
    params = np.frombuffer(bytes(fact[4:4 + 24 * k]), "<f4").copy()
    params[1] = -1.0  # a negative Laplace scale
    forged = dict(sections, FACT=bytes(fact[:4]) + params.astype("<f4").tobytes()
                  + bytes(fact[4 + 24 * k:]))
    code, err = _decompress_error(container.pack(header, forged, block), tmp_path, capsys)
    assert_one_line_error(code, err, "bad.icainr", "invalid model parameters")
    forged = dict(sections, FACT=bytes(fact[:-8]))  # words cut short
    code, err = _decompress_error(container.pack(header, forged, block), tmp_path, capsys)
    assert code == 2 and "bad.icainr" in err and len(err.strip().splitlines()) == 1
