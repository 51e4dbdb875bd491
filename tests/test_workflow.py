"""The Nipype interfaces and workflows, run for real with MultiProc on a small fixture.

The fixture is nilearn's bundled MNI152 template at 5 mm, moved by a small rigid
transform and given a few blob-shaped activations that follow two conditions'
events, stored as int16 with a scale factor like scanner output: registration
has something to undo and the QC has something to find.
"""

import json
import os

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

pytest.importorskip("nipype")
pytest.importorskip("ants")

from .conftest import QUICK  # noqa: E402

TR = 2.0
N_VOLUMES = 40


def _epi_fixture(folder):
    from nilearn import datasets, image
    from scipy.ndimage import affine_transform

    tpl = datasets.load_mni152_template(resolution=2)
    mask = datasets.load_mni152_brain_mask(resolution=2)
    brain = image.math_img("t * (m > 0)", t=tpl, m=mask)
    target = np.diag([5.0, 5.0, 5.0, 1.0])
    target[:3, 3] = [-90.0, -126.0, -72.0]
    low = image.resample_img(brain, target_affine=target, target_shape=(36, 44, 34),
                             interpolation="continuous", force_resample=True, copy_header=True)
    vol = np.asarray(low.dataobj, dtype=np.float64)
    # a rigid "head position": 3 degrees about z and a 4 mm shift, in voxel space
    ang = np.deg2rad(3.0)
    rot = np.array([[np.cos(ang), -np.sin(ang), 0], [np.sin(ang), np.cos(ang), 0], [0, 0, 1]])
    centre = (np.array(vol.shape) - 1) / 2
    vol = affine_transform(vol, rot, offset=centre - rot @ centre + [0.8, 0, 0], order=1)
    rng = np.random.default_rng(0)
    events = pd.DataFrame({"onset": [8.0, 24.0, 40.0, 56.0], "duration": [8.0] * 4,
                           "trial_type": ["faces", "houses", "faces", "houses"]})
    t = np.arange(N_VOLUMES) * TR
    boxcar = {c: np.zeros(N_VOLUMES) for c in ("faces", "houses")}
    for _, ev in events.iterrows():
        boxcar[ev.trial_type][(t >= ev.onset) & (t < ev.onset + ev.duration)] = 1.0
    x, y, z = np.meshgrid(*[np.arange(n) for n in vol.shape], indexing="ij")
    data = np.repeat(vol[..., None], N_VOLUMES, axis=-1)
    inside = vol > 0.1 * vol.max()
    for (cx, cy, cz), cond in [((12, 12, 14), "faces"), ((24, 14, 14), "houses"),
                               ((18, 30, 20), "faces")]:
        blob = np.exp(-((x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2) / 8.0) * inside
        data += 0.2 * vol.max() * blob[..., None] * np.convolve(
            boxcar[cond], np.exp(-np.arange(8) / 2.0))[:N_VOLUMES]
    data += rng.normal(0, 0.01 * vol.max(), data.shape) * inside[..., None]
    slope = float(data.max() / 30000.0)
    raw = np.round(data / slope).astype(np.int16)
    img = nib.Nifti1Image(raw, target)
    img.header.set_zooms((5.0, 5.0, 5.0, TR))
    img.header.set_xyzt_units("mm", "sec")
    img.header.set_qform(target, code=1)
    img.header.set_sform(target, code=1)
    img.header.set_slope_inter(slope, 0.0)
    from .conftest import save_with_scaling
    bold = os.path.join(folder, "sub-01_task-loc_bold.nii.gz")
    save_with_scaling(img, raw, bold)
    ev_file = os.path.join(folder, "sub-01_task-loc_events.tsv")
    events.to_csv(ev_file, sep="\t", index=False)
    return bold, ev_file


@pytest.fixture(scope="module")
def workflow_run(tmp_path_factory):
    import yaml

    from workflows import init_icainr_wf

    folder = tmp_path_factory.mktemp("wf")
    bold, events = _epi_fixture(str(folder))
    cfg = folder / "fast.yaml"
    cfg.write_text(yaml.safe_dump(QUICK))
    wf = init_icainr_wf(ratio=60, config_file=str(cfg), device="auto", omp_nthreads=1)
    wf.base_dir = str(folder / "work")
    wf.config["execution"]["crashdump_dir"] = str(folder / "crash")
    wf.inputs.inputnode.bold_file = bold
    wf.inputs.inputnode.events_file = events
    graph = wf.run(plugin="MultiProc", plugin_args={"n_procs": 2, "mp_context": "forkserver"})
    nodes = {n.fullname.split(".", 1)[1] if "." in n.fullname else n.fullname: n
             for n in graph.nodes()}
    return bold, nodes


def test_registration_lands_on_the_template_grid(workflow_run):
    from nipype_icainr.template_grid import GRID_SHAPE, grid_affine

    bold, nodes = workflow_run
    out = nib.load(nodes["registration_wf.resample_to_grid"].result.outputs.out_file)
    assert out.shape == GRID_SHAPE + (N_VOLUMES,)
    np.testing.assert_allclose(out.affine, grid_affine(), atol=1e-5)
    assert out.get_data_dtype() == np.int16
    assert out.header.get_zooms()[3] == TR
    assert int(out.header["sform_code"]) == 4
    # Nipype keeps only connected outputs in result files: read the report's record
    qc = json.load(open(nodes["qc_report"].result.outputs.out_json))
    dice = qc["registration"]["dice_brain_mask"]
    assert dice > 0.8, dice


def test_compression_and_qc_figures_are_sensible(workflow_run):
    _, nodes = workflow_run
    comp = nodes["compress"].result.outputs
    assert 54 <= comp.ratio <= 66
    dec = nib.load(nodes["decompress"].result.outputs.out_file)
    assert dec.shape == (64, 64, 48, N_VOLUMES)
    qc = json.load(open(nodes["qc_report"].result.outputs.out_json))
    values = qc["values"]
    assert values["psnr_db"] > qc["psnr_mean_frame_only_db"]
    assert 0.5 < values["ssim"] <= 1.0
    per = qc["metrics"]["fla"]["details"]["per_condition"]
    assert set(per) == {"faces", "houses"}
    # the planted activation is found on the original (40 volumes, two blocks each) ...
    assert per["faces"]["max_abs_t_original"] > 4
    # ... and the decompressed run's t-maps stay within a few t of it
    assert 0 <= values["fla_mean_abs_dt"] < 3
    assert values["fca_regions"] > 50 and "Power" in qc["metrics"]["fca"]["details"]["atlas"]
    # most spheres hold only noise in this fixture, whose correlations the codec does not keep
    assert 0 <= values["fca_mean_abs_dr"] < 1.0
    assert "ICA-INR" in qc["methods"] and "nipype-icainr" in qc["methods"]


def test_report_embeds_every_figure(workflow_run):
    _, nodes = workflow_run
    html = open(nodes["qc_report"].result.outputs.out_report).read()
    assert html.count("data:image/png;base64,") == 4  # slices, time series, t-maps, matrices
    assert "First-level analysis (FLA)" in html and "Functional connectivity (FCA)" in html
    assert "PSNR" in html and "nipype" in html
    assert "Methods" in html and "Li et al. (2024)" in html


def test_compress_node_is_a_gpu_node_only_with_cuda():
    from workflows import init_icainr_wf
    from workflows.icainr import cuda_node

    wf = init_icainr_wf(device="cpu", compress_mem_gb=6.5)
    node = wf.get_node("compress")
    assert node.is_gpu_node() is False and node.mem_gb == 6.5
    # the memory request reaches batch schedulers, which do not read mem_gb themselves
    assert node.plugin_args["sbatch_args"] == "--mem=6656M"
    assert node.plugin_args["qsub_args"] == "-l mem=6656mb"
    wf = init_icainr_wf(device="cuda")
    node = wf.get_node("compress")
    assert node.is_gpu_node() is True
    assert "--gres=gpu:1" in node.plugin_args["sbatch_args"]
    assert "--mem=" in node.plugin_args["sbatch_args"]
    assert cuda_node("auto") == __import__("torch").cuda.is_available()
