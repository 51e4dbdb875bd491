"""The ICA-INR paper's INR baselines: SIREN and NeRF on 4D coordinates.

Both map ``(x, y, z, t)`` (voxel indices and volume index, each scaled to
[-1, 1] over its axis; an axis of length 1 maps to -1) to the intensity, scaled
to [-1, 1] by the masked voxels' minimum and maximum (float64, stored). Only
brain-mask voxels are fitted and decoded; the mask travels as packed bits and
voxels outside it decode to 0.

* ``siren``: 5 linear layers (4 -> w, 3 x w -> w, w -> 1), ``sin(w0 (W x + b))``
  after the first four, ``w0 = 30``, initialised as in Sitzmann et al. (2020);
  Adam, learning rate 1e-4.
* ``nerf``: positional encoding of the 4 coordinates with 10 frequencies,
  ``(p, sin(2^k pi p), cos(2^k pi p)) k < 10`` (84 inputs), then 5 linear
  layers with ReLU between them (84 -> w, 3 x w -> w, w -> 1); Adam, learning
  rate 5e-4.

Training: ``inr_steps`` (context, default 300) Adam steps on 8192 random
(voxel, time) points each, mean squared error, seeded (``seed``, default 0).
The paper trains for far longer on a GPU: the step count is in every table row.

Coding: every parameter tensor is quantised uniformly to 8 bits between its
minimum and maximum (two float32 per tensor), the codes concatenated and
zstd-compressed (level 19; stored raw if zstd would not shrink them). 8 bits
rather than float16: at a fixed byte budget float16 halves the width's
parameter count, while 8-bit quantisation of these small networks costs far
less than halving them (both are standard INR-compression practice; 8 bits
per tensor is the paper's own).

Knob: the width ``w``, the largest whose parameter count (one byte each) plus
the header, mask and per-tensor ranges fits the budget; zstd can only make the
trained payload smaller, so the achieved ratio is at least the target.
"""

import math
import os
import time

import numpy as np

from .methods import Method, check_array
from ..io import pack_mask, unpack_mask
from .payload import pack, unpack, unzstd, zstd
from .search import Choice, OutOfReach, budget_bytes

BATCH = 8192
LAYERS = 5
PE_FREQUENCIES = 10
W0 = 30.0


def normalised_coordinates(shape, mask):
    """``(xyz (N, 3), t (T,))`` float32 in [-1, 1] for the masked voxels (C order)."""
    idx = np.argwhere(mask).astype(np.float64)
    extent = np.maximum(np.asarray(shape[:3], dtype=np.float64) - 1.0, 1.0)
    xyz = 2.0 * idx / extent - 1.0
    t = 2.0 * np.arange(shape[3]) / max(shape[3] - 1, 1) - 1.0
    return xyz.astype(np.float32), t.astype(np.float32)


def build_network(arch, width):
    """The torch module for ``arch`` ('siren' or 'nerf') at ``width``."""
    import torch
    from torch import nn

    class Sine(nn.Module):
        def forward(self, x):
            return torch.sin(W0 * x)

    class PosEnc(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("freqs", (2.0 ** torch.arange(PE_FREQUENCIES)) * math.pi,
                                 persistent=False)

        def forward(self, x):
            xf = x[..., None] * self.freqs  # (B, 4, F)
            return torch.cat([x, torch.sin(xf).flatten(1), torch.cos(xf).flatten(1)], dim=-1)

    n_in = 4 if arch == "siren" else 4 + 4 * 2 * PE_FREQUENCIES
    dims = [n_in] + [width] * (LAYERS - 1) + [1]
    mods = [] if arch == "siren" else [PosEnc()]
    for i in range(LAYERS):
        lin = nn.Linear(dims[i], dims[i + 1])
        if arch == "siren":
            with torch.no_grad():
                bound = 1.0 / dims[i] if i == 0 else math.sqrt(6.0 / dims[i]) / W0
                lin.weight.uniform_(-bound, bound)
        mods.append(lin)
        if i < LAYERS - 1:
            mods.append(Sine() if arch == "siren" else nn.ReLU())
    return nn.Sequential(*mods)


def count_parameters(arch, width):
    n_in = 4 if arch == "siren" else 4 + 4 * 2 * PE_FREQUENCIES
    dims = [n_in] + [width] * (LAYERS - 1) + [1]
    return sum(dims[i] * dims[i + 1] + dims[i + 1] for i in range(LAYERS))


class _INR(Method):
    arch = None
    lr = None

    @property
    def steps(self):
        return int(self.context.get("inr_steps", 300))

    def label(self, knob):
        return f"width={knob['width']}, {self.steps} steps"

    def _overhead(self, shape, mask):
        """Upper bound of every byte but the codes: header, mask, tensor ranges, framing."""
        n_tensors = 2 * LAYERS
        return len(pack_mask(mask)) + 8 * n_tensors + 400 + 32 * len(shape) + 64

    def search(self, data, mask, target_ratio, raw_bytes, quality):
        budget = budget_bytes(raw_bytes, target_ratio) - self._overhead(data.shape, mask)
        width = 0
        while count_parameters(self.arch, width + 1) <= budget:
            width += 1
        if width < 2:
            raise OutOfReach(f"a width-2 {self.name} needs "
                             f"{count_parameters(self.arch, 2):,} bytes, over the budget")
        return Choice(knob={"width": width}, n_bytes=None,
                      note=f"{BATCH} points per Adam step, 8-bit parameters")

    def encode(self, data, mask, knob):
        import torch

        data = check_array(data)
        mask = np.asarray(mask, bool)
        width = int(knob["width"])
        seed = int(self.context.get("seed", 0))
        torch.manual_seed(seed)
        torch.set_num_threads(max(1, os.cpu_count() or 1))
        gen = torch.Generator().manual_seed(seed)
        xyz, tt = normalised_coordinates(data.shape, mask)
        vals = np.asarray(data)[mask]  # (N, T)
        lo, hi = float(vals.min()), float(vals.max())
        span = (hi - lo) or 1.0
        target = torch.from_numpy(((vals - lo) / span * 2.0 - 1.0).astype(np.float32))
        xyz_t, t_t = torch.from_numpy(xyz), torch.from_numpy(tt)
        n_vox, n_t = target.shape
        net = build_network(self.arch, width)
        opt = torch.optim.Adam(net.parameters(), lr=self.lr)
        t0 = time.perf_counter()
        loss = float("nan")
        for _ in range(self.steps):
            idx = torch.randint(0, n_vox * n_t, (BATCH,), generator=gen)
            vi, ti = idx // n_t, idx % n_t
            pred = net(torch.cat([xyz_t[vi], t_t[ti, None]], dim=1)).squeeze(-1)
            loss_t = torch.mean((pred - target[vi, ti]) ** 2)
            opt.zero_grad(set_to_none=True)
            loss_t.backward()
            opt.step()
            loss = float(loss_t.detach())
        train_s = time.perf_counter() - t0
        ranges, codes = [], []
        for name, p in net.state_dict().items():
            w = p.detach().cpu().numpy().astype(np.float64).ravel()
            a, b = float(w.min()), float(w.max())
            a32, b32 = np.float32(a), np.float32(b)
            step = (float(b32) - float(a32)) / 255.0 if b32 > a32 else 1.0
            codes.append(np.clip(np.rint((w - float(a32)) / step), 0, 255).astype(np.uint8))
            ranges += [a32, b32]
        raw = np.concatenate(codes).tobytes()
        packed = zstd(raw)
        use_z = len(packed) < len(raw)
        self.last_info = {"train_seconds": train_s, "steps": self.steps,
                          "seconds_per_step": train_s / max(self.steps, 1),
                          "final_loss": loss, "n_params": int(len(raw)), "width": width}
        header = {"m": self.name, "shape": [int(s) for s in data.shape], "w": width,
                  "lo": lo, "hi": hi, "z": int(use_z)}
        return pack(header, pack_mask(mask), np.array(ranges, np.float32).tobytes(),
                    packed if use_z else raw)

    def decode(self, payload):
        import torch

        header, (mask_blob, range_blob, code_blob) = unpack(payload)
        shape = tuple(header["shape"])
        mask = unpack_mask(mask_blob, shape[:3])
        net = build_network(self.arch, header["w"])
        ranges = np.frombuffer(range_blob, np.float32).astype(np.float64)
        codes = np.frombuffer(unzstd(code_blob) if header["z"] else code_blob, np.uint8)
        state, pos = {}, 0
        for i, (name, p) in enumerate(net.state_dict().items()):
            n = p.numel()
            a, b = ranges[2 * i], ranges[2 * i + 1]
            step = (b - a) / 255.0 if b > a else 1.0
            w = codes[pos:pos + n].astype(np.float64) * step + a
            state[name] = torch.from_numpy(w.astype(np.float32).reshape(p.shape))
            pos += n
        if pos != codes.size:
            raise ValueError("INR payload: parameter count does not match the width")
        net.load_state_dict(state)
        net.eval()
        torch.set_num_threads(max(1, os.cpu_count() or 1))
        xyz, tt = normalised_coordinates(shape, mask)
        n_vox, n_t = xyz.shape[0], shape[3]
        xyz_t, t_t = torch.from_numpy(xyz), torch.from_numpy(tt)
        pred = np.empty((n_vox, n_t), dtype=np.float32)
        chunk = max(1, 65536 // n_t)
        with torch.inference_mode():
            for s in range(0, n_vox, chunk):
                v = xyz_t[s:s + chunk]
                inp = torch.cat([v.repeat_interleave(n_t, 0), t_t.repeat(v.shape[0])[:, None]], 1)
                pred[s:s + chunk] = net(inp).reshape(v.shape[0], n_t).numpy()
        out = np.zeros(shape, dtype=np.float64)
        span = (header["hi"] - header["lo"]) or 1.0
        out[mask] = (pred.astype(np.float64) + 1.0) / 2.0 * span + header["lo"]
        return out


class SIREN(_INR):
    name = "siren"
    arch = "siren"
    lr = 1e-4
    knob_doc = ("width of a 5-layer SIREN (w0=30), largest whose 8-bit parameters fit; "
                "Adam 1e-4, inr_steps x 8192 points")


class NeRF(_INR):
    name = "nerf"
    arch = "nerf"
    lr = 5e-4
    knob_doc = ("width of a 5-layer ReLU MLP on a 10-frequency positional encoding, largest "
                "whose 8-bit parameters fit; Adam 5e-4, inr_steps x 8192 points")
