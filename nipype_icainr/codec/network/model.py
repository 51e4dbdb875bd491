"""``NetworkModel``: the ICA-INR network (Li et al., 2024) as a series model.

Fitting: FastICA of the normalised series initialises the K activation
patterns, the coordinate MLPs are pre-trained on the ICA maps, then the whole
network is trained on L2 + sigma (1 - SSIM) (``fit``). Coding: every
parameter tensor is quantised and ANS-coded (``weights``), with one global
step multiplier bisected so that the file lands on the byte budget.

Configuration keys (defaults: the ``network`` preset's)
-------------------------------------------------------
n_components : int, 1..64
    K, the number of ICA activation patterns (rows of the learnable ``C_train``).
ica_max_iter : int
    FastICA iterations.
pattern_channels : int, 1..64
    Conv1d channels computed from each pattern (the raw pattern is kept as one more).
pe_frequencies : int, 0..16
    NeRF positional-encoding frequencies (the paper: 10).
mlp_layers : int, 2..10
    Linear layers per coordinate MLP (the paper: 5).
mlp_width : int or "auto"
    Hidden width of each coordinate MLP; "auto" sizes it from the byte budget.
mlp_width_min, mlp_width_max : int
    Bounds for "auto".
attention_hidden : int
    Hidden size of the channel-attention MLP.
fusion_channels : int
    Channels of the first Down block of the feature-fusion U-Net (doubled per level).
fusion_depth : int, 1..4
    Number of Down blocks (and as many Up blocks).
sigma_ssim : float >= 0
    Weight of ``1 - SSIM`` in the loss.
optimizer : "adamax" or "adam"
lr, pretrain_lr : float > 0
lr_schedule : "constant" or "cosine"
pretrain_epochs, epochs : int >= 0
    Passes over all masked voxels (the paper's schedule).
pretrain_steps, steps : int >= 0
    When above 0, the number of optimiser steps instead, each on a batch of
    voxels drawn without replacement (reshuffled after every pass). A CPU budget
    of work that does not grow with the number of voxels.
batch_voxels, eval_batch_voxels : int
    Voxels per training step and per evaluation batch while fitting (the
    decoder uses its own batch size, whatever a file says).
weight_bits_target : float
    Nominal entropy-coded bits per parameter used to size the model.
voxel_table : bool
    Add an explicitly coded per-voxel correction to the MLPs' weights (beyond the
    paper; see ``net``). false in ``paper``.
table_bits_target : float
    Nominal bits per table entry, reserved before sizing the MLPs.
"""

import math
import os
import sys
import time

import numpy as np

from ..config import Bool, Choice, Float, Int, IntOrAuto
from ..errors import ICAINRError
from ..models import Coded, SeriesModel

TAG = "WGHT"
#: upper bounds of the architecture a file may describe (decompression work is bounded)
ARCH_LIMITS = {"n_components": 64, "pattern_channels": 64, "pe_frequencies": 16,
               "mlp_layers": 10, "mlp_width": 2048, "attention_hidden": 1024,
               "fusion_channels": 256, "fusion_depth": 4}
MAX_PARAMETERS = 1 << 28
#: voxels the decoder evaluates at once (its own choice: a file cannot raise it)
EVAL_BATCH_VOXELS = 8192

CONFIG_SCHEMA = {
    "n_components": Int(1, 64, 16), "ica_max_iter": Int(1, 100000, 400),
    "pattern_channels": Int(1, 64, 3), "pe_frequencies": Int(0, 16, 10),
    "mlp_layers": Int(2, 10, 5), "mlp_width": IntOrAuto(1, 2048, "auto"),
    "mlp_width_min": Int(1, 2048, 8), "mlp_width_max": Int(1, 2048, 160),
    "attention_hidden": Int(1, 1024, 16), "fusion_channels": Int(1, 256, 8),
    "fusion_depth": Int(1, 4, 2), "sigma_ssim": Float(0.0, 100.0, 0.1),
    "optimizer": Choice(("adamax", "adam"), "adamax"), "lr": Float(1e-8, 1.0, 8e-4),
    "lr_schedule": Choice(("constant", "cosine"), "cosine"),
    "pretrain_epochs": Int(0, 100000, 0), "pretrain_lr": Float(1e-8, 1.0, 3e-3),
    "epochs": Int(0, 100000, 0), "pretrain_steps": Int(0, 10000000, 300),
    "steps": Int(0, 10000000, 400), "batch_voxels": Int(1, 1 << 20, 2048),
    "eval_batch_voxels": Int(1, 1 << 22, 8192), "weight_bits_target": Float(1.0, 32.0, 8.0),
    "voxel_table": Bool(True), "table_bits_target": Float(0.5, 32.0, 5.0),
}


def choose_mlp_width(cfg, arch, weight_bytes):
    """Largest MLP width whose parameters fit ``weight_bytes`` at the nominal bit depth."""
    from .net import count_parameters

    if cfg["mlp_width"] != "auto":
        return cfg["mlp_width"]
    best = cfg["mlp_width_min"]
    table = arch["n_voxels"] * arch["n_components"] if arch.get("voxel_table") else 0
    for width in range(cfg["mlp_width_min"], cfg["mlp_width_max"] + 1):
        n = count_parameters(dict(arch, mlp_width=width)) - table
        if n * cfg["weight_bits_target"] / 8.0 <= weight_bytes:
            best = width
    return best


def fit_quantization(state, target_bytes, build):
    """Find the finest quantisation whose file fits ``target_bytes``.

    ``build(manifest, payload)`` returns the whole file's bytes. The step
    multiplier alpha is bisected on a log scale; the file size falls as alpha
    grows. If even the finest step is under budget, the finest is used.
    Returns ``(file bytes, manifest, payload, dequantised state)``.
    """
    from .weights import encode_state

    def attempt(alpha):
        payload, manifest, decoded = encode_state(state, alpha)
        return build(manifest, payload), manifest, payload, decoded

    lo, hi = math.log(1e-3), math.log(64.0)
    best = attempt(math.exp(lo))
    if len(best[0]) <= target_bytes:
        return best
    best = attempt(math.exp(hi))
    if len(best[0]) > target_bytes:
        return best  # cannot shrink further; the caller reports the achieved ratio
    for _ in range(24):
        mid = 0.5 * (lo + hi)
        trial = attempt(math.exp(mid))
        if len(trial[0]) <= target_bytes:
            hi, best = mid, trial
        else:
            lo = mid
    return best


class StepClock:
    """Forwards training steps to a progress bar, and prints one line with the expected
    training time once the first steps have been timed (a network preset that takes
    minutes on a GPU takes hours on a CPU; the user should know at once, and a log
    without a progress bar should still say how long the fit will take)."""

    # A GPU's first steps include kernel compilation and warm-up: time more of them.
    TIMED_STEPS = {"cpu": 3}
    TIMED_STEPS_GPU = 50

    def __init__(self, bar, total, device):
        self.bar, self.total, self.device = bar, total, device
        self.done, self.start = 0, time.perf_counter()
        self.timed = self.TIMED_STEPS.get(device, self.TIMED_STEPS_GPU)

    def update(self, n):
        before = self.done
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        if before < self.timed <= self.done and self.total > 50:
            per_step = (time.perf_counter() - self.start) / self.done
            minutes = per_step * self.total / 60.0
            where = "the CPU" if self.device == "cpu" else str(self.device)
            hint = " (a CUDA GPU: --device cuda)" if self.device == "cpu" else ""
            print(f"icainr: training the network on {where}: {self.total} steps at "
                  f"{per_step:.3g} s each, about {minutes:.0f} min{hint}",
                  file=sys.stderr, flush=True)

    def set_postfix_str(self, text, refresh=False):
        if self.bar is not None:
            self.bar.set_postfix_str(text, refresh=refresh)

    def close(self):
        if self.bar is not None:
            self.bar.close()


class NetworkModel(SeriesModel):
    """The ICA-INR network: ICA patterns, coordinate MLPs, channel attention, 1D U-Net."""

    name = "network"
    sections = (TAG,)
    config_schema = CONFIG_SCHEMA
    packages = ("torch",)

    def check_config(self, cfg, source):
        if cfg["mlp_width_min"] > cfg["mlp_width_max"]:
            raise ICAINRError(source, "mlp_width_min must not exceed mlp_width_max")

    def resolve_device(self, device):
        """'auto' -> 'cuda' when a CUDA device is usable, else 'cpu'."""
        from ..models import cuda_available, require_torch

        require_torch(f"the {self.name} model")
        super().resolve_device(device)
        if device == "auto":
            return "cuda" if cuda_available() else "cpu"
        return device

    def fit(self, series, mask, budget, cfg, env):
        import torch

        from .fit import (evaluate_network, ica_decomposition, n_steps,
                          pretrain_coordinate_mlps, train_network, voxel_coordinates)
        from .net import ICAINRNet, count_parameters

        scale = float(series.std()) or 1.0
        targets_np = (series / scale).astype(np.float32)
        n_vox, n_t = targets_np.shape
        arch = {"n_components": int(min(cfg["n_components"], n_t - 1, n_vox - 1)),
                "n_timepoints": n_t, "pattern_channels": cfg["pattern_channels"],
                "pe_frequencies": cfg["pe_frequencies"], "mlp_layers": cfg["mlp_layers"],
                "mlp_width": 0, "attention_hidden": cfg["attention_hidden"],
                "fusion_channels": cfg["fusion_channels"], "fusion_depth": cfg["fusion_depth"],
                "voxel_table": int(cfg["voxel_table"]),
                "n_voxels": int(n_vox) if cfg["voxel_table"] else 0}
        overhead = len(budget.build(Coded({TAG: b""}, dict(arch, scale=scale, weights=[]))))
        weight_budget = budget.target_bytes - overhead - 60 * 12 * 3  # room for the manifest
        min_model = dict(arch, mlp_width=cfg["mlp_width_min"], voxel_table=0)
        if weight_budget < count_parameters(min_model) * 1.0 / 8.0:
            raise budget.out_of_reach("smallest network alone",
                                      overhead + count_parameters(min_model) / 8.0)
        table_bytes = (arch["n_voxels"] * arch["n_components"] * cfg["table_bits_target"] / 8.0
                       if cfg["voxel_table"] else 0.0)
        arch["mlp_width"] = choose_mlp_width(cfg, arch, weight_budget - table_bytes)

        # seeded, reproducible fit
        dev = env.device
        torch.manual_seed(env.seed)
        generator = torch.Generator().manual_seed(env.seed)
        maps, patterns = ica_decomposition(targets_np, arch["n_components"], env.seed,
                                           cfg["ica_max_iter"])
        arch["n_components"] = patterns.shape[0]
        net = ICAINRNet(arch, patterns).to(dev)
        coords = torch.from_numpy(voxel_coordinates(mask)).to(dev)
        targets = torch.from_numpy(targets_np).to(dev)
        maps_t = torch.from_numpy(maps).to(dev)
        data_range = float(targets_np.max() - targets_np.min()) or 1.0

        bar = None
        total_steps = (n_steps(n_vox, cfg["batch_voxels"], cfg["pretrain_epochs"],
                               cfg["pretrain_steps"])
                       + n_steps(n_vox, cfg["batch_voxels"], cfg["epochs"], cfg["steps"]))
        if env.progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=total_steps,
                       desc=f"fitting {os.path.basename(os.fspath(env.source or 'run'))}",
                       unit="step", dynamic_ncols=True, disable=None, mininterval=1.0)
        bar = StepClock(bar, total_steps, dev)
        try:
            pretrain_coordinate_mlps(net, coords, maps_t, cfg, generator, bar)
            final_loss = train_network(net, coords, targets, cfg, generator, data_range, bar)
        finally:
            if bar is not None:
                bar.close()
        del maps_t, targets

        state = {name: p.detach().cpu().numpy() for name, p in net.state_dict().items()}
        _, manifest, payload, decoded_state = fit_quantization(
            state, budget.target_bytes,
            lambda man, wts: budget.build(Coded({TAG: wts}, dict(arch, scale=scale, weights=man))))
        approx = None
        if env.measure:
            net.load_state_dict({k: torch.from_numpy(v) for k, v in decoded_state.items()})
            approx = scale * evaluate_network(net, coords, cfg["eval_batch_voxels"]).numpy() \
                .astype(np.float64)
        return Coded({TAG: payload}, dict(arch, scale=scale, weights=manifest), approx,
                     final_loss)

    def validate(self, part, shape, n_voxels, source):
        from .net import ARCH_DEFAULTS, ARCH_KEYS, count_parameters

        arch = {k: int(part.get(k, ARCH_DEFAULTS.get(k, 0)) if k in ARCH_DEFAULTS else part[k])
                for k in ARCH_KEYS}
        if arch["n_timepoints"] != shape[3]:
            raise ICAINRError(source, "the network's length does not match the image")
        for key, top in ARCH_LIMITS.items():
            if not 1 <= arch[key] <= top and not (key == "pe_frequencies" and arch[key] == 0):
                raise ICAINRError(source, f"implausible network setting {key}={arch[key]}")
        if arch["voxel_table"] not in (0, 1) or (arch["voxel_table"] and
                                                 arch["n_voxels"] != n_voxels):
            raise ICAINRError(source, "the voxel table does not match the mask")
        if count_parameters(arch) > MAX_PARAMETERS:
            raise ICAINRError(source, "the network described is implausibly large")
        scale = float(part["scale"])
        if not math.isfinite(scale):
            raise ICAINRError(source, "non-finite scale in the header")
        from .weights import check_manifest

        weights = check_manifest(part["weights"], source)
        return dict(arch, scale=scale, weights=weights)

    def decode(self, sections, part, mask, device, source):
        import torch

        from .fit import evaluate_network, voxel_coordinates
        from .net import ICAINRNet
        from .weights import decode_state

        from .net import count_parameters

        # decoding work grows with the parameters: a file must pay for them in bytes
        # (legitimate files hold one or two parameters per byte)
        if count_parameters(part) > (1 << 20) + 64 * len(sections[TAG]):
            raise ICAINRError(source, "the network described is larger than its weights "
                                      "section can hold")
        dev = self.resolve_device(device)
        net = ICAINRNet(part)
        expected = {k: tuple(v.shape) for k, v in net.state_dict().items()}
        state = decode_state(sections[TAG], part["weights"], expected, source)
        net.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
        net.to(dev)
        coords = torch.from_numpy(voxel_coordinates(mask)).to(dev)
        with torch.no_grad():
            approx = evaluate_network(net, coords, EVAL_BATCH_VOXELS).numpy()
        return part["scale"] * approx.astype(np.float64)

    def describe(self, arch):
        return (f"network K={arch['n_components']} patterns x T={arch['n_timepoints']}, MLP "
                f"{arch['mlp_layers']} layers x {arch['mlp_width']}, "
                f"{arch['pe_frequencies']} PE frequencies, fusion {arch['fusion_channels']}ch "
                f"depth {arch['fusion_depth']}")

    def from_legacy(self, arch, data, header):
        return dict(arch, scale=data["scale"], weights=header["weights"])
