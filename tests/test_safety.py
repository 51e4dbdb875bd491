"""The tool never destroys data: inputs are never overwritten, outputs appear whole or not
at all, signals and killed runs leave no debris, bad sizes are refused up front."""

import gzip
import hashlib
import os
import signal
import subprocess
import sys
import time

import nibabel as nib
import numpy as np
import pytest

from nipype_icainr import cli
from nipype_icainr.io import TEMP_PREFIX

from .conftest import synthetic_bold, with_default_sigint


def sha256(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def run_cli(args, capsys):
    code = cli.main([str(a) for a in args])
    return code, capsys.readouterr().err.strip()


def _one_line(code, err, name, problem):
    assert code == 2, (code, err)
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert name in err and problem in err, err


@pytest.fixture
def run_copy(bold_file, tmp_path):
    dst = tmp_path / "in.nii.gz"
    dst.write_bytes(open(bold_file, "rb").read())
    return dst


def test_compress_onto_its_input_is_refused_even_with_force(run_copy, tmp_path, capsys,
                                                            monkeypatch):
    before = sha256(run_copy)
    monkeypatch.chdir(tmp_path)
    link = tmp_path / "link.nii.gz"
    link.symlink_to(run_copy)
    hard = tmp_path / "hard.nii.gz"
    os.link(run_copy, hard)
    for out in (run_copy, "./in.nii.gz", link, hard, tmp_path / "sub" / ".." / "in.nii.gz"):
        code, err = run_cli(["compress", run_copy, out, "--ratio", "10", "--force"], capsys)
        _one_line(code, err, str(out), "is the input file")
        assert sha256(run_copy) == before
    # the input named through a link is protected too
    code, err = run_cli(["compress", link, run_copy, "--ratio", "10", "--force"], capsys)
    _one_line(code, err, "in.nii.gz", "is the input file")
    assert sha256(run_copy) == before


def test_decompress_onto_its_input_is_refused_even_with_force(compressed, tmp_path, capsys):
    disguised = tmp_path / "x.nii.gz"  # an .icainr file named like a NIfTI
    disguised.write_bytes(open(compressed[0], "rb").read())
    before = sha256(disguised)
    code, err = run_cli(["decompress", disguised, disguised, "--force"], capsys)
    _one_line(code, err, "x.nii.gz", "is the input file")
    assert sha256(disguised) == before


def test_a_nii_holding_more_volumes_than_its_header_says_is_refused(tmp_path, capsys):
    img, raw = synthetic_bold(shape=(8, 8, 6, 40), seed=1)
    src = tmp_path / "long.nii"
    nib.Nifti1Image(raw, img.affine).to_filename(str(src))
    blob = bytearray(src.read_bytes())
    hdr = nib.Nifti1Header.from_fileobj(open(src, "rb"))
    hdr.set_data_shape((8, 8, 6, 20))  # the header now says 20 of the 40 volumes
    blob[:348] = hdr.binaryblock
    src.write_bytes(bytes(blob))
    code, err = run_cli(["compress", src, tmp_path / "o.icainr"], capsys)
    _one_line(code, err, "long.nii", "holds more data than its header declares")
    assert not (tmp_path / "o.icainr").exists()


def test_a_small_gz_claiming_gigabytes_is_refused_before_reading(tmp_path, capsys):
    hdr = nib.Nifti1Header()
    hdr.set_data_dtype(np.int16)
    hdr.set_data_shape((512, 512, 512, 12))  # 3.2 GB declared
    src = tmp_path / "bomb.nii.gz"
    with gzip.open(src, "wb") as fh:
        fh.write(hdr.binaryblock + b"\0" * 4 + bytes(90_000))
    t0 = time.perf_counter()
    code, err = run_cli(["compress", src, tmp_path / "o.icainr"], capsys)
    _one_line(code, err, "bomb.nii.gz", "more than")
    assert time.perf_counter() - t0 < 5


def test_stale_temp_files_of_dead_writers_are_removed(bold_file, tmp_path, capsys):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    stale = tmp_path / f"{TEMP_PREFIX}{dead}-abcd-out.icainr"
    stale.write_bytes(b"half a file")
    alive = tmp_path / f"{TEMP_PREFIX}{os.getppid()}-abcd-other.icainr"
    alive.write_bytes(b"someone else is writing this")
    code, _ = run_cli(["compress", bold_file, tmp_path / "out.icainr", "--ratio", "10",
                       "--quiet", "--no-measure"], capsys)
    assert code == 0
    assert not stale.exists() and alive.exists()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_compress_leaves_nothing(tmp_path, sig):
    """SIGTERM and SIGINT: exit with one line, no output, no temporary file."""
    # about 10 s to compress here (a 40x48x30x120 run took under 5 s once the encoder
    # got faster, and finished before the signal came)
    img, raw = synthetic_bold(shape=(64, 64, 40, 160), seed=2)
    src = tmp_path / "big.nii"
    nib.Nifti1Image(raw, img.affine).to_filename(str(src))
    out = tmp_path / "out" / "big.icainr"
    out.parent.mkdir()
    icainr = os.path.join(os.path.dirname(sys.executable), "icainr")
    proc = subprocess.Popen([icainr, "compress", str(src), str(out), "--ratio", "50"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=with_default_sigint)
    time.sleep(4.0)  # past start-up, inside the fit
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == (143 if sig == signal.SIGTERM else 130), err
    assert err.strip().splitlines()[-1].startswith("icainr: ")
    assert "Traceback" not in err
    assert os.listdir(out.parent) == []
