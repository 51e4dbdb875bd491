"""Small synthetic fixtures: a 4D int16 run with scaling, built in memory, never downloaded."""

import os

import nibabel as nib
import numpy as np
import pytest

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
STUDYFORREST = os.path.join(SHARED, "studyforrest", "sub-02", "func",
                            "sub-02_task-oneback_run-1_bold.nii.gz")
#: the bundled real run (a slab of the studyforrest run)
SAMPLE_BOLD = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "nipype_icainr", "data", "sample", "studyforrest-slab", "sub-02",
                           "func", "sub-02_task-oneback_run-1_bold.nii.gz")

#: the default preset (the coded factorization) is fast enough to use as is
QUICK = {"base": "default"}
#: a quick configuration of the ICA-INR network (the network preset's architecture, less work)
FAST = {"base": "network", "n_components": 6, "steps": 150, "pretrain_steps": 150,
        "batch_voxels": 512, "mlp_width_max": 16, "ica_max_iter": 200}
#: even less work, for tests about the container, sizes and errors rather than quality
TINY = dict(FAST, steps=10, pretrain_steps=10)


def synthetic_bold(shape=(18, 20, 10, 48), seed=0, slope=2.5, inter=10.0):
    """A brain-like ellipsoid with four smooth spatial networks and their time courses.

    Returns an int16 image with ``scl_slope``/``scl_inter`` set, a proper
    qform/sform, TR 2 s and units mm/s, like scanner output.
    """
    rng = np.random.default_rng(seed)
    x, y, z = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape[:3]], indexing="ij")
    brain = (x ** 2 / 0.8 + y ** 2 / 0.8 + z ** 2 / 0.9) < 1.0
    base = np.where(brain, 1200.0 + 300.0 * np.cos(2 * x) * np.cos(y), 40.0)
    t = np.arange(shape[3]) * 2.0
    series = base[..., None] * np.ones(shape[3])
    for k in range(4):
        cx, cy, cz = rng.uniform(-0.5, 0.5, 3)
        blob = np.exp(-((x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2) / 0.08) * brain
        course = np.sin(2 * np.pi * t / rng.uniform(20, 60) + rng.uniform(0, 6))
        series += 60.0 * blob[..., None] * course
    series += rng.normal(0, 8.0, shape) * brain[..., None]
    raw = np.clip(np.round((series - inter) / slope), -32768, 32767).astype(np.int16)
    affine = np.array([[-3.0, 0, 0, 30], [0, 3.0, 0, -40], [0, 0, 3.3, -10], [0, 0, 0, 1]])
    img = nib.Nifti1Image(raw, affine)
    img.header.set_xyzt_units("mm", "sec")
    img.header.set_zooms((3.0, 3.0, 3.3, 2.0))
    img.header.set_qform(affine, code=1)
    img.header.set_sform(affine, code=1)
    img.header.set_slope_inter(slope, inter)
    return img, raw


def derivatives(data):
    """``{name: run}``: ``data`` (X, Y, Z, T) demeaned, z-scored and in percent signal
    change, each 0 outside the voxels brighter than the median mean that vary (as a
    derivative is masked): runs with no baseline."""
    mean = data.mean(axis=-1, keepdims=True)
    std = data.std(axis=-1, keepdims=True)
    brain = (mean > np.median(mean)) & (std > 0)
    safe = np.where(std > 0, std, 1.0)
    return {"demeaned": np.where(brain, data - mean, 0.0),
            "zscored": np.where(brain, (data - mean) / safe, 0.0),
            "psc": np.where(brain, 100.0 * (data - mean) / np.maximum(mean, 1.0), 0.0)}


def save_with_scaling(img, raw, path):
    """Save int16 ``raw`` with the image's slope/intercept kept exactly."""
    from nipype_icainr.io import describe_image, write_described

    desc = describe_image(img, __file__)
    desc["scl_slope"], desc["scl_inter"] = img.header.get_slope_inter()
    write_described(path, raw * desc["scl_slope"] + desc["scl_inter"], desc, "fixture")


@pytest.fixture(scope="session")
def bold_file(tmp_path_factory):
    img, raw = synthetic_bold()
    path = tmp_path_factory.mktemp("fixture") / "sub-01_task-test_bold.nii.gz"
    save_with_scaling(img, raw, str(path))
    return str(path)


@pytest.fixture(scope="session", params=["factor", "network"])
def compressed(bold_file, tmp_path_factory, request):
    """The fixture compressed once at ratio 20 by each model (default preset, fast network)."""
    from nipype_icainr import compress

    config = QUICK if request.param == "factor" else FAST
    out = tmp_path_factory.mktemp("compressed") / "run.icainr"
    result = compress(bold_file, str(out), ratio=20, config=config, device="cpu", seed=0)
    return str(out), result


def venv_tool(name):
    """A console script installed beside this Python (the venv's bin/), else on PATH."""
    import shutil
    import sys

    here = os.path.join(os.path.dirname(sys.executable), name)
    return here if os.path.exists(here) else shutil.which(name)


def requires_shared():
    return pytest.mark.skipif(not os.path.exists(STUDYFORREST),
                              reason="../shared/data is not present")


def with_default_sigint():
    """``preexec_fn`` for a child that a test interrupts with SIGINT: a shell starts
    background commands with SIGINT ignored and children inherit that, so a test suite run
    with ``&`` would otherwise send its SIGINT to a process that ignores it."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
