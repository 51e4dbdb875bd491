"""The default preset against the quantised SVD on the small real runs of ../shared/data/corpus.

A truncated SVD with quantised factors is the simplest strong peer, and the
factor model's rate search contains its operating points; on every small
corpus run and at 50x and 100x the default must come back at least as close
(PSNR in the brain mask) as the SVD peer's best setting; and the decoder's neighbour
reconstruction must beat the plain one on a real run. Skipped without the
corpus. The larger runs are in the committed benchmark (``icainr bench``).
"""

import math
import os

import numpy as np
import pytest

CORPUS = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "corpus")
SMALL_RUNS = ["pymvpa__haxby2001_run001_bold_25mm.nii.gz", "nipy__functional.nii.gz",
              "gift__sub-107_lowres.nii", "gift__sub-112_lowres.nii",
              "gift__sub-133_lowres.nii"]


def _corpus_path(name):
    """The corpus run ``name``; the test is skipped without it."""
    path = os.path.join(CORPUS, name)
    if not os.path.exists(path):
        pytest.skip(f"{path} not present")
    return path


def _load(name):
    return _load_path(_corpus_path(name))


def _load_path(path):
    from nipype_icainr.bench.data import load_input

    return load_input(path)


@pytest.mark.parametrize("name", SMALL_RUNS)
@pytest.mark.parametrize("ratio", [50, 100])
def test_default_is_at_least_as_close_as_the_quantised_svd(name, ratio):
    from nipype_icainr import metrics
    from nipype_icainr.bench.methods import make_method

    from nipype_icainr.bench.search import OutOfReach

    inp = _load(name)

    def quality(values):
        return metrics.psnr(inp.data, values, inp.mask)

    ours = make_method("icainr", inp.context())
    payload = ours.encode(inp.data, inp.mask, {"ratio": float(ratio)})
    assert inp.raw_bytes / len(payload) >= 0.98 * ratio
    svd = make_method("svd", inp.context())
    try:
        choice = svd.search(inp.data, inp.mask, ratio, inp.raw_bytes, quality)
    except OutOfReach:  # nipy's 20 x 1,071 run: even rank 1 is over the budget
        return
    svd_payload = svd.encode(inp.data, inp.mask, choice.knob)
    assert quality(ours.decode(payload)) >= quality(svd.decode(svd_payload))


def test_a_file_of_the_mean_frame_alone_spends_its_budget():
    """nipy (17x21x3x20) at 100x: 428 bytes hold the header, the mask and the mean frame
    alone. The survey's sqrt(2) ladder of mean-frame steps chose a rung that left the
    frame at 15.1 dB, behind ZFP's best fitting setting (15.9 dB); the steps between
    the rungs are tried too."""
    from nipype_icainr import metrics
    from nipype_icainr.bench.methods import make_method

    inp = _load("nipy__functional.nii.gz")

    def quality(values):
        return metrics.psnr(inp.data, values, inp.mask)

    ours = make_method("icainr", inp.context())
    payload = ours.encode(inp.data, inp.mask, {"ratio": 100.0})
    assert inp.raw_bytes / len(payload) >= 98.0
    zfp = make_method("zfp", inp.context())
    choice = zfp.search(inp.data, inp.mask, 100, inp.raw_bytes, quality)
    assert quality(ours.decode(payload)) >= quality(zfp.decode(
        zfp.encode(inp.data, inp.mask, choice.knob)))


def test_a_file_with_no_time_course_says_so(tmp_path):
    """nipy (17x21x3x20) at 100x: the file holds the mean frame alone, so every voxel
    decodes to a constant; ``compress`` warns and the model's line says it. At 50x the
    regional layer keeps a time course and nothing is said."""
    import nibabel as nib

    from nipype_icainr import compress, decompress

    path = _corpus_path("nipy__functional.nii.gz")
    res = compress(path, tmp_path / "r100.icainr", ratio=100)
    assert any("no time course" in note for note in res["warnings"])
    assert "mean frame alone" in res["model"]
    decompress(tmp_path / "r100.icainr", tmp_path / "r100.nii.gz")
    back = np.asanyarray(nib.load(tmp_path / "r100.nii.gz").dataobj)
    assert np.all(back.min(axis=-1) == back.max(axis=-1))
    res = compress(path, tmp_path / "r50.icainr", ratio=50)
    assert not any("no time course" in note for note in res["warnings"])
    assert "regional layer" in res["model"]


@pytest.mark.parametrize("name", ["gift__sub-112_lowres.nii", "gift__sub-133_lowres.nii"])
def test_bytes_the_regional_layer_leaves_go_to_the_factorization(name, monkeypatch):
    """At 100x these runs' regional layer reaches its finest step with bytes to
    spare; the factorization takes them, and the file lands within 1 % of the
    target (one predicted encoding alone left them at 102.3x and 102.4x). The
    layer is kept whatever it costs here: by default gift-133 is coded without it
    at 100x, where it costs more than the bound
    (``test_a_small_run_keeps_the_layer_only_where_it_is_cheap``)."""
    from nipype_icainr.bench.methods import make_method
    from nipype_icainr.codec import core

    monkeypatch.setattr(core, "LAYER_COST_DB", math.inf)

    inp = _load(name)
    payload = make_method("icainr", inp.context()).encode(inp.data, inp.mask,
                                                          {"ratio": 100.0})
    assert 100.0 <= inp.raw_bytes / len(payload) <= 101.0


def test_a_coarse_grid_keeps_most_of_its_brain_mask():
    """nilearn's default opening erased 66 of the 84 brain voxels of a 25 mm grid."""
    from nipype_icainr.masking import compute_mask

    inp = _load("pymvpa__haxby2001_run001_bold_25mm.nii.gz")
    mask = compute_mask(inp.data, inp.img.affine)
    mean = inp.data.mean(axis=-1)
    assert mask.sum() >= 60
    # the mask is the bright part of the image: every masked voxel brighter than the median
    assert mean[mask].min() > np.median(mean)


def test_maps_moved_towards_neighbours_beat_plain_reconstruction(tmp_path):
    """gift-107 at 200x: the default (map entries moved towards their neighbours' mean in
    their quantisation cells) comes back closer than the plain reconstruction at the same
    ratio, and with a lower connectivity residual under spatially compact parcels (the
    shrunken region averages of the plain reconstruction inflate correlations)."""
    import nibabel as nib

    from nipype_icainr import compress, decompress, metrics
    from nipype_icainr.qc.connectivity import (compact_parcellation, fca_from_signals,
                                               region_signals)

    inp = _load("gift__sub-107_lowres.nii")
    src = os.path.join(CORPUS, "gift__sub-107_lowres.nii")
    mask_img = nib.Nifti1Image(inp.mask.astype(np.uint8), inp.img.affine)
    labels = compact_parcellation(inp.mask, inp.img.affine)
    original = region_signals(inp.img, mask_img, labels)
    results = {}
    # both named custom, so that both headers record every key of the configuration
    for name, config in (("neighbours", {"base": "default", "name": "custom"}),
                         ("centre", {"base": "default", "name": "custom",
                                     "map_reconstruction": "centre"})):
        out, back = tmp_path / f"{name}.icainr", tmp_path / f"{name}.nii.gz"
        compress(src, str(out), ratio=200, config=config, device="cpu")
        assert inp.raw_bytes / out.stat().st_size >= 0.98 * 200
        decompress(str(out), str(back))
        decoded = nib.load(str(back))
        psnr = metrics.psnr(inp.data, np.asarray(decoded.dataobj, dtype=np.float64), inp.mask)
        fca = fca_from_signals(original, region_signals(decoded, mask_img, labels))
        results[name] = (psnr, fca["mean_abs_dr"])
    assert results["neighbours"][0] > results["centre"][0] + 0.1
    assert results["neighbours"][1] < 0.8 * results["centre"][1]


def _with_and_without_layer(path, inp, ratio, tmp_path):
    """``{"layer": (PSNR, compact FCA), "none": ...}`` of the default preset at ``ratio``,
    and of the same with ``regional_share: 0``, through ``compress``/``decompress``
    (FCA infinite for a decoded run flat in time, which has none);
    asserts that each file fits and holds the regional section exactly when expected."""
    import nibabel as nib

    from nipype_icainr import compress, decompress, info, metrics
    from nipype_icainr.qc.connectivity import (compact_parcellation, fca_from_signals,
                                               region_signals)

    mask_img = nib.Nifti1Image(inp.mask.astype(np.uint8), inp.img.affine)
    labels = compact_parcellation(inp.mask, inp.img.affine)
    original = region_signals(inp.img, mask_img, labels)
    results = {}
    for name, config in (("layer", None),
                         ("none", {"base": "default", "regional_share": 0})):
        out, back = tmp_path / f"{name}.icainr", tmp_path / f"{name}.nii.gz"
        compress(str(path), str(out), ratio=ratio, config=config, device="cpu")
        assert inp.raw_bytes / out.stat().st_size >= 0.98 * ratio
        assert ("REGN" in info(str(out))["sections"]) == (name == "layer")
        decompress(str(out), str(back))
        decoded = nib.load(str(back))
        psnr = metrics.psnr(inp.data, np.asarray(decoded.dataobj, dtype=np.float64), inp.mask)
        try:
            fca = fca_from_signals(original, region_signals(decoded, mask_img, labels))["mean_abs_dr"]
        except ValueError:  # flat in time: no region varies, no connectivity at all
            fca = math.inf
        results[name] = (psnr, fca)
    return results


#: the 10x10x18x40 blocks of HAPPYTEST and qap that benchmarks/small_cuts.py cuts
HAPPY_CUT = np.s_[27:37, 40:50, 20:38, :40]
QAP_CUT = np.s_[20:30, 20:30, 5:23, :40]


def _write_cut(tmp_path, name, block, filename="cut.nii.gz", unscaled=False):
    """``(path, values)``: ``block`` of the corpus run ``name`` written with its header
    (``unscaled``: the stored integers, as ``small_cuts.py`` writes them)."""
    import nibabel as nib

    img = nib.load(_corpus_path(name))
    values = np.asarray(img.dataobj.get_unscaled() if unscaled else img.dataobj)[block]
    path = tmp_path / filename
    nib.Nifti1Image(values, img.affine, img.header).to_filename(str(path))
    return path, values


def _named_bound(raised):
    """The ratio an ``OutOfReach`` error (``pytest.raises`` info) names as reachable."""
    import re

    return float(re.search(r"ratio below ([0-9.]+)", str(raised.value)).group(1))


def test_regional_layer_keeps_region_averages(tmp_path):
    """RAPIDTIDETEST (64 x 64 x 29 x 260, skull-stripped) at 200x: the default's regional
    layer (block averages of the factorization's residual) keeps region-to-region
    correlations under spatially compact parcels at least twice as close as the same
    codec without it, for at most 0.1 dB of PSNR (measured: 0.0122 against 0.0498,
    46.99 against 46.99 dB)."""
    name = "rapidtide__sub-RAPIDTIDETEST.nii.gz"
    results = _with_and_without_layer(_corpus_path(name), _load(name), 200, tmp_path)
    assert results["layer"][0] > results["none"][0] - 0.1
    assert results["layer"][1] < 0.5 * results["none"][1]


@pytest.mark.parametrize("name, block", [
    ("qap__functional_scan.nii.gz", QAP_CUT),
    ("rapidtide__sub-HAPPYTEST.nii.gz", HAPPY_CUT)])
def test_a_run_of_few_components_keeps_regional_dynamics(name, block, tmp_path):
    """10x10x18x40 cuts of two real int16 runs at 100x: the budget holds the mean frame
    and at most two components; one makes every region-to-region correlation +-1, two
    put every region's series in one plane. The regional layer is given the room it
    needs: correlations between spatially compact parcels come back at least twice as
    close as without the layer, for at most 2 dB (measured: qap FCA 0.23 against 0.62,
    40.26 against 40.68 dB; HAPPYTEST 0.25 against 0.87, 32.18 against 32.38 dB)."""
    path, _ = _write_cut(tmp_path, name, block)
    results = _with_and_without_layer(path, _load_path(str(path)), 100, tmp_path)
    assert results["layer"][0] > results["none"][0] - 2.0
    assert results["layer"][1] < 0.5 * results["none"][1]


@pytest.mark.parametrize("name, block, ratio, kept", [
    ("qap__functional_scan.nii.gz", QAP_CUT, 50, False),
    ("rapidtide__sub-RAPIDTIDETEST.nii.gz", np.s_[:, :, 12:18, :30], 100, True)])
def test_a_small_run_keeps_the_layer_only_where_it_is_cheap(name, block, ratio, kept,
                                                            tmp_path, monkeypatch):
    """Small runs measure what the regional layer costs. The qap 10x10x18x40 cut at 50x:
    the layer at its share cost 0.37 dB (45.08 against 45.45 dB), which left the file
    behind a quantised SVD's 45.31 dB; it is dropped. A 64x64x6x30 slab of RAPIDTIDETEST
    at 100x: the layer costs nothing (45.01 dB either way); it is kept."""
    import nibabel as nib

    from nipype_icainr import compress, decompress, info, metrics
    from nipype_icainr.codec import core

    path, _ = _write_cut(tmp_path, name, block)
    inp = _load_path(str(path))
    psnr, bound_db = {}, core.LAYER_COST_DB
    for arm, bound in (("measured", bound_db), ("always", math.inf)):
        monkeypatch.setattr(core, "LAYER_COST_DB", bound)
        out, back = tmp_path / f"{arm}.icainr", tmp_path / f"{arm}.nii.gz"
        compress(str(path), str(out), ratio=ratio, device="cpu")
        assert inp.raw_bytes / out.stat().st_size >= 0.98 * ratio
        assert ("REGN" in info(str(out))["sections"]) == (kept or arm == "always")
        decompress(str(out), str(back))
        decoded = np.asarray(nib.load(str(back)).dataobj, dtype=np.float64)
        psnr[arm] = metrics.psnr(inp.data, decoded, inp.mask)
    if kept:
        assert psnr["measured"] == psnr["always"]
    else:
        assert psnr["measured"] > psnr["always"] + bound_db


def test_of_two_masks_the_one_that_keeps_dynamics_is_kept(tmp_path):
    """The HAPPYTEST 10x10x18x40 cut at 200x: the brain mask leaves room for the mean frame
    alone, flat in time; coding every varying voxel (no mask to send) leaves room for the
    regional layer too. The encoder, choosing between the two codings, keeps the one with
    dynamics although its error is larger: compact-parcel FCA at least twice as close as
    without the layer, for at most 3 dB (measured: 0.20, where the file without the layer
    is flat in time and has no connectivity to score, 23.67 against 25.14 dB)."""
    # as benchmarks/small_cuts.py writes it: at 720 bytes, the name's length in the
    # header is enough to move the choice
    path, _ = _write_cut(tmp_path, "rapidtide__sub-HAPPYTEST.nii.gz", HAPPY_CUT,
                         "happycrop_10x10x18x40.nii.gz", unscaled=True)
    results = _with_and_without_layer(path, _load_path(str(path)), 200, tmp_path)
    assert results["layer"][0] > results["none"][0] - 3.0
    assert results["layer"][1] < 0.5 * results["none"][1]


@pytest.mark.parametrize("name, ratio", [("gift__sub-107_lowres.nii", 200),
                                         ("pymvpa__haxby2001_run001_bold_25mm.nii.gz", 100)])
def test_a_psnr_target_is_no_larger_than_the_ratio_search_at_that_psnr(name, ratio,
                                                                      tmp_path):
    """Two small real runs: the file for ``psnr=P``, P just under the PSNR of the file at
    ``ratio``, is within 10 % of that file's size. Fitting to the error alone had coded
    the mean frame at its finest step: on gift at 55 dB a 33x file, where the ratio
    search's 200x file reaches 55.0 dB. (Not closer: at a kilobyte PSNR is not monotone
    in the ratio, pymvpa gave 46.88 dB at 96.7x and 47.40 dB at 100x; measured 8 %.)"""
    from nipype_icainr import compress

    path = _corpus_path(name)
    at_ratio = compress(path, str(tmp_path / "r.icainr"), ratio=ratio)
    target = at_ratio["psnr"] - 0.05
    res = compress(path, str(tmp_path / "p.icainr"), psnr=target)
    assert res["psnr"] >= target
    assert res["file_bytes"] <= 1.1 * at_ratio["file_bytes"], (res["ratio"], ratio)


def test_a_plan_is_refined_with_the_regional_layer_it_was_made_with(tmp_path):
    """A 10x10x18x40 cut of HAPPYTEST at 220x: the survey planned one component with no
    regional layer (the layer at its coarsest step left no room), and the refinement then
    held a layer's reserve back anyway, leaving the factorization no bytes (a traceback:
    ``math domain error``). The file is written, fits and decodes."""
    import nibabel as nib

    from nipype_icainr import compress, decompress

    path, cut = _write_cut(tmp_path, "rapidtide__sub-HAPPYTEST.nii.gz", HAPPY_CUT)
    res = compress(str(path), str(tmp_path / "cut.icainr"), ratio=220, device="cpu")
    assert res["ratio"] >= 0.98 * 220
    decompress(str(tmp_path / "cut.icainr"), str(tmp_path / "back.nii.gz"))
    back = np.asarray(nib.load(str(tmp_path / "back.nii.gz")).dataobj)
    assert back.shape == cut.shape and back.dtype == cut.dtype


def test_an_out_of_reach_ratio_names_the_bound_the_encoder_keeps(tmp_path):
    """On a tiny run the encoder tries two masks; the error names the closer one's bound:
    a ratio 10 % above it is refused too, and 3 % below it is reached (the first mask's
    bound, 82.2, was named while 100x was reached with the other)."""
    from nipype_icainr import compress
    from nipype_icainr.codec.errors import OutOfReach

    path = _corpus_path("nipy__functional.nii.gz")
    with pytest.raises(OutOfReach) as info:
        compress(path, str(tmp_path / "a.icainr"), ratio=150, measure=False)
    bound = _named_bound(info)
    with pytest.raises(OutOfReach):
        compress(path, str(tmp_path / "b.icainr"), ratio=1.1 * bound, measure=False)
    res = compress(path, str(tmp_path / "c.icainr"), ratio=0.97 * bound, measure=False)
    assert res["ratio"] >= 0.97 * bound


def test_a_small_run_spends_its_budget(tmp_path):
    """The first three volumes of an MNI run (26x31x22x3) at 128x: one component's section
    jumps from 660 to 76 bytes between two steps 8 % apart, and the file had been written
    at 156x (18 % of the budget unspent, 21.8 dB). The finer mean frames that fit are
    tried too: at most 10 % is left, for more PSNR (measured: 134x, 24.4 dB)."""
    from nipype_icainr import compress

    path, _ = _write_cut(tmp_path, "gift__sub-107_lowres.nii", np.s_[..., :3], "three.nii.gz")
    res = compress(str(path), str(tmp_path / "t.icainr"), ratio=128)
    assert 0.98 * 128 <= res["ratio"] <= 128 / 0.9
    assert res["psnr"] > 23.0


def test_a_two_volume_run_reaches_every_ratio_below_its_bound(tmp_path):
    """The first two volumes of an MNI run (26x31x22x2): the bound the error names
    does not depend on the ratio asked, and a ratio 3 % below it is reached (the
    regional layer's reserve had left no plan at 85x while the error, asked 100x,
    named 88.3; asked 200x, it named 90.6)."""
    from nipype_icainr import compress
    from nipype_icainr.codec.errors import OutOfReach

    path, _ = _write_cut(tmp_path, "gift__sub-107_lowres.nii", np.s_[..., :2], "two.nii.gz")
    path = str(path)
    bounds = []
    for ratio in (100, 200):
        with pytest.raises(OutOfReach) as info:
            compress(path, str(tmp_path / "a.icainr"), ratio=ratio, measure=False)
        bounds.append(_named_bound(info))
    assert bounds[0] == bounds[1]
    res = compress(path, str(tmp_path / "b.icainr"), ratio=0.97 * bounds[0], measure=False)
    assert res["ratio"] >= 0.97 * bounds[0]


@pytest.mark.parametrize("name, ratio", [("gift__sub-107_lowres.nii", 200),
                                         ("gift__sub-133_lowres.nii", 200),
                                         ("pymvpa__haxby2001_run001_bold_25mm.nii.gz", 200),
                                         ("rapidtide__sub-RAPIDTIDETEST.nii.gz", 200)])
def test_the_background_comes_back_within_the_in_mask_error(name, ratio, tmp_path):
    """Voxels the file does not code as series come back as their mean over time,
    within the RMS error of the coded voxels (or within their own fluctuation in
    time, where that is larger). Zero padding comes back exact and is left out of
    that error. The multiple the background is rounded to had been estimated from the
    plan's error, and the first three came back 8, 8 and 19 % over; measured over
    every voxel outside the mask, padding included, the skull-stripped one's
    non-zero background came back 2.6 times the in-mask error."""
    import nibabel as nib

    from nipype_icainr import compress, decompress, io
    from nipype_icainr.codec.container import unpack
    from nipype_icainr.codec.core import MASK_TAG
    from nipype_icainr.codec.runs import ArrayRun

    path = _corpus_path(name)
    original = np.asarray(nib.load(path).dataobj, dtype=np.float64)
    compress(path, tmp_path / "run.icainr", ratio=ratio)
    decompress(tmp_path / "run.icainr", tmp_path / "run.nii.gz")
    back = np.asarray(nib.load(tmp_path / "run.nii.gz").dataobj, dtype=np.float64)
    sections = unpack((tmp_path / "run.icainr").read_bytes(), name)[1]
    coded = io.unpack_mask(sections[MASK_TAG], original.shape[:3], name)
    # zero padding comes back exact, and is left out of the background's error
    padding = (original.min(-1) == 0) & (original.max(-1) == 0)
    assert np.all(back[padding] == 0)
    outside = ~coded & ~padding
    assert outside.sum() > 100  # a background to speak of
    in_mask = np.sqrt(np.mean((back[coded] - original[coded]) ** 2))
    background = np.sqrt(np.mean((back[outside].mean(-1) - original[outside].mean(-1)) ** 2))
    noise = ArrayRun(original).background_noise(~coded)
    # the decoder writes the stored dtype: rounding to it moves either by a little
    assert background <= 1.01 * max(in_mask, noise)
    assert np.all(back[~coded].std(axis=-1) == 0)  # the background's mean, flat in time
