"""The participant level through Nipype's SLURM plugin, against a real SLURM on loopback.

``tools/slurm_up.sh`` (run by ``.ci/run``, as root) installs Debian's slurm-wlm and
munge and starts munged, slurmctld and slurmd on this machine. Skipped where no
SLURM controller answers.
"""

import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

from .conftest import QUICK

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(ROOT, "nipype_icainr", "data", "sample", "studyforrest-slab")


def slurm_up():
    if shutil.which("sinfo") is None:
        return False
    proc = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True)
    return proc.returncode == 0 and re.search(r"idle|mixed|allocated", proc.stdout) is not None


def job_ids():
    proc = subprocess.run(["scontrol", "show", "job", "-o"], capture_output=True, text=True)
    return {int(m) for m in re.findall(r"JobId=(\d+)", proc.stdout)}, proc.stdout


@pytest.mark.skipif(not slurm_up(), reason="no SLURM controller (tools/slurm_up.sh starts one)")
def test_participant_level_through_sbatch(tmp_path):
    bids = tmp_path / "bids"
    shutil.copytree(SAMPLE, bids)
    cfg = tmp_path / "fast.yaml"
    cfg.write_text(yaml.safe_dump(QUICK))
    plugin = tmp_path / "slurm.yml"
    plugin.write_text(yaml.safe_dump({"plugin": "SLURM", "plugin_args": {
        "sbatch_args": f"-p debug -o {tmp_path}/slurm-%j.out", "max_jobs": 4,
        "poll_sleep_duration": 1}}))
    before, _ = job_ids()
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "bids_app.cli", str(bids), str(out), "participant",
         "-w", str(tmp_path / "work"), "--ratio", "60", "--config", str(cfg), "--no-fca",
         "--use-plugin", str(plugin), "--skip-bids-validation"],
        capture_output=True, text=True, timeout=1200, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    _, table = job_ids()
    # this run's jobs: new since it started and writing their output under its tmp_path
    # (another suite sharing the SLURM had its running jobs counted here, and failed this)
    states = {}
    for line in table.splitlines():
        job = re.search(r"JobId=(\d+) JobName=(\S+).*?JobState=(\S+)", line)
        stdout = re.search(r"StdOut=(\S+)", line)
        if job and stdout and stdout.group(1).startswith(str(tmp_path)) and \
                int(job.group(1)) not in before:
            states[int(job.group(1))] = (job.group(2), job.group(3))
    new = sorted(states)
    # every workflow node went through sbatch: compress, decompress, fla, report, sink
    assert len(new) >= 4, table
    assert all(s == "COMPLETED" for _, s in states.values()), states
    with open(tmp_path / "sbatch_jobs.txt", "w") as fh:
        for i in new:
            fh.write(f"{i}\t{states[i][0]}\t{states[i][1]}\n")
    print("sbatch jobs:", ", ".join(f"{i} ({states[i][0]})" for i in new))
    func = out / "sub-02" / "func"
    side = yaml.safe_load((func / "sub-02_task-oneback_run-1_desc-icainr_bold.json").read_text())
    assert 54 <= side["CompressionRatio"] <= 66
    assert (func / "sub-02_task-oneback_run-1_desc-icainr_report.html").stat().st_size > 10000
