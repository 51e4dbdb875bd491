"""Unit tests of the parts: metrics, entropy coding, model, configuration."""

import numpy as np
import pytest
import torch

from nipype_icainr import ICAINRError, metrics
from nipype_icainr.codec import entropy
from nipype_icainr.codec.config import available_presets, load_preset, validate_config
from nipype_icainr.codec.fit import ssim_1d
from nipype_icainr.codec.model import ICAINRNet, count_parameters


def test_psnr_against_a_hand_computed_value():
    orig = np.zeros((2, 2, 1, 2))
    orig[0, 0, 0, 0] = 10.0  # range over the mask: 10 - 0
    dec = orig.copy()
    dec[1, 1, 0, 1] = 1.0  # one error of 1 over 8 samples: MSE = 1/8
    mask = np.ones((2, 2, 1), bool)
    assert metrics.psnr(orig, dec, mask) == pytest.approx(10 * np.log10(100 / 0.125))
    # voxels outside the mask do not count, for the error nor for the range
    mask[1, 1, 0] = False
    assert metrics.psnr(orig, dec, mask) == float("inf")
    mask2 = np.array([[[False], [True]], [[True], [True]]])
    orig2 = orig.copy()
    orig2[0, 1, 0, 0] = 4.0
    dec2 = orig2.copy()
    dec2[0, 1, 0, 1] = 2.0  # error 2 over 6 samples, range 4 (the 10 is outside the mask)
    assert metrics.psnr(orig2, dec2, mask2) == pytest.approx(10 * np.log10(16 / (4 / 6)))


def test_ratio_definition():
    assert metrics.compression_ratio(80 * 80 * 35 * 156 * 2, 698880) == pytest.approx(100.0, 1e-3)
    with pytest.raises(ValueError):
        metrics.compression_ratio(10, 0)


def test_ssim_identical_is_one_and_noise_lowers_it():
    rng = np.random.default_rng(0)
    a = rng.normal(100, 10, (9, 9, 9, 3))
    mask = np.ones((9, 9, 9), bool)
    assert metrics.ssim(a, a, mask) == pytest.approx(1.0)
    assert metrics.ssim(a, a + rng.normal(0, 10, a.shape), mask) < 0.9


def test_ssim_1d_loss_matches_definition():
    x = torch.randn(4, 40)
    assert float(ssim_1d(x, x, 6.0)) == pytest.approx(1.0, abs=1e-5)
    # constant series: variances vanish, SSIM is the luminance term (2ab + C1) / (a^2 + b^2 + C1)
    a, b, c1 = 1.0, 2.0, (0.01 * 6.0) ** 2
    got = float(ssim_1d(torch.full((2, 30), a), torch.full((2, 30), b), 6.0))
    assert got == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1), rel=1e-5)


@pytest.mark.parametrize("alpha", [0.01, 0.3, 2.0])
def test_entropy_round_trip_is_exact(alpha):
    rng = np.random.default_rng(1)
    state = {"a": rng.normal(0, 0.1, (16, 63, 20)).astype(np.float32),
             "b": rng.normal(0, 1, (7,)).astype(np.float32),
             "c": np.zeros((3, 3), np.float32)}
    payload, manifest, decoded = entropy.encode_state(state, alpha)
    shapes = {k: v.shape for k, v in state.items()}
    back = entropy.decode_state(payload, manifest, shapes, "x")
    for k in state:
        np.testing.assert_array_equal(back[k], decoded[k])
        step = [m for m in manifest if m["name"] == k][0]["step"]
        assert np.abs(back[k] - state[k]).max() <= step / 2 + 1e-6
    # the coder gets close to the empirical entropy of the symbols
    sym, _ = entropy.quantize_tensor(state["a"], alpha)
    _, counts = np.unique(sym, return_counts=True)
    p = counts / counts.sum()
    ideal_bytes = -(counts * np.log2(p)).sum() / 8
    words = [m for m in manifest if m["name"] == "a"][0]["words"]
    assert words * 4 <= 1.03 * ideal_bytes + 16


def test_entropy_rejects_mismatched_manifest():
    state = {"a": np.ones((4, 4), np.float32) * np.arange(4)}
    payload, manifest, _ = entropy.encode_state(state, 0.1)
    with pytest.raises(ICAINRError, match="shape"):
        entropy.decode_state(payload, manifest, {"a": (4, 5)}, "x")
    with pytest.raises(ICAINRError, match="wrong size"):
        entropy.decode_state(payload + b"\0\0\0\0", manifest, {"a": (4, 4)}, "x")


ARCH = dict(n_components=5, n_timepoints=37, pattern_channels=3, pe_frequencies=10,
            mlp_layers=5, mlp_width=12, attention_hidden=8, fusion_channels=8, fusion_depth=2)


def test_network_starts_as_the_linear_ica_reconstruction():
    torch.manual_seed(0)
    patterns = torch.randn(5, 37)
    net = ICAINRNet(ARCH, patterns)
    coords = torch.rand(50, 3) * 2 - 1
    with torch.no_grad():
        out = net(coords)
        expected = net.voxel_weights(coords) @ patterns
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    assert out.shape == (50, 37)


def test_count_parameters_matches_the_module():
    for depth in (1, 2, 3):
        arch = dict(ARCH, fusion_depth=depth)
        net = ICAINRNet(arch)
        assert count_parameters(arch) == sum(p.numel() for p in net.parameters())


def test_positional_encoding_has_the_nerf_size():
    net = ICAINRNet(ARCH)
    assert net.encoding.out_features == 3 * (1 + 2 * 10)
    assert len(net.mlps.weights) == 5  # five layers per coordinate MLP


def test_presets_are_valid_and_paper_is_faithful():
    assert {"default", "paper"} <= set(available_presets())
    paper = load_preset("paper")
    assert paper["epochs"] == 1500 and paper["lr"] == 8e-4 and paper["optimizer"] == "adamax"
    assert 15 <= paper["n_components"] <= 25 and paper["pe_frequencies"] == 10
    assert paper["mlp_layers"] == 5 and paper["steps"] == 0


def test_config_rejects_unknown_and_bad_values():
    cfg = load_preset("default")
    with pytest.raises(ICAINRError, match="unknown configuration keys: colour"):
        validate_config(dict(cfg, colour="red"))
    with pytest.raises(ICAINRError, match="lr must be a number"):
        validate_config(dict(cfg, lr="fast"))


def test_voxel_table_adds_one_row_per_voxel_and_needs_indices():
    arch = dict(ARCH, voxel_table=1, n_voxels=30)
    net = ICAINRNet(arch, torch.randn(5, 37))
    assert count_parameters(arch) == sum(p.numel() for p in net.parameters())
    assert net.voxel_table.shape == (30, 5)
    coords = torch.rand(30, 3) * 2 - 1
    with pytest.raises(ValueError, match="voxel indices"):
        net(coords)
    with torch.no_grad():
        net.voxel_table[3, 1] = 2.0
        base = net.mlps(net.encoding(coords))
        w = net.voxel_weights(coords, torch.arange(30))
    assert float(w[3, 1] - base[3, 1]) == pytest.approx(2.0)
    assert torch.equal(w[4], base[4])
