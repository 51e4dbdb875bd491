"""Fitting the network: FastICA initialisation, ICA-map pre-training, then L2 +
sigma (1 - SSIM) training.

Both training stages draw shuffled batches of voxels from a seeded generator, so
a run with a fixed seed on the CPU is repeatable bit for bit.
"""

import math
import warnings

import numpy as np
import torch
from torch.nn import functional as F


def voxel_coordinates(mask):
    """Masked voxel indices scaled to [-1, 1] per axis, as float32 (N, 3), C order."""
    idx = np.argwhere(mask).astype(np.float32)
    extent = np.maximum(np.array(mask.shape, dtype=np.float32) - 1.0, 1.0)
    return 2.0 * idx / extent - 1.0


def ica_decomposition(series, n_components, seed, max_iter):
    """Spatial ICA of the mean-removed masked series with scikit-learn's FastICA.

    Parameters
    ----------
    series : ndarray (N voxels, T)
        Mean-removed, normalised time series (voxels are the samples).
    n_components : int
        K; reduced to ``min(K, T - 1, N - 1)``.

    Returns
    -------
    maps : ndarray (N, K), float32
        Spatial maps, unit variance each.
    patterns : ndarray (K, T), float32
        Activation patterns such that ``maps @ patterns`` approximates ``series``
        (up to the per-timepoint voxel mean).
    """
    from sklearn.decomposition import FastICA
    from sklearn.exceptions import ConvergenceWarning

    k = int(min(n_components, series.shape[1] - 1, series.shape[0] - 1))
    ica = FastICA(n_components=k, whiten="unit-variance", random_state=seed,
                  max_iter=max_iter, tol=1e-4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        maps = ica.fit_transform(series)
    patterns = ica.mixing_.T
    # order by explained energy so that truncation keeps the strongest patterns
    energy = (patterns ** 2).sum(axis=1)
    order = np.argsort(-energy)
    return maps[:, order].astype(np.float32), patterns[order].astype(np.float32)


def gaussian_window(size=11, sigma=1.5, device=None):
    """The 1D Gaussian window of the SSIM of Wang et al. (2004), summing to 1."""
    x = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2.0
    w = torch.exp(-(x ** 2) / (2.0 * sigma ** 2))
    return (w / w.sum()).view(1, 1, size)


def ssim_1d(pred, target, data_range, window=None):
    """Mean SSIM between the time series of a batch of voxels, (B, T) each.

    Local statistics use an 11-sample Gaussian window (sigma 1.5) along time,
    valid positions only (shorter series use a window of length T), with
    C1 = (0.01 L)^2 and C2 = (0.03 L)^2 for data range L.
    """
    t = pred.shape[-1]
    if window is None or window.shape[-1] > t:
        window = gaussian_window(min(11, t), 1.5, pred.device)
    x, y = pred[:, None, :], target[:, None, :]
    mu_x, mu_y = F.conv1d(x, window), F.conv1d(y, window)
    sxx = F.conv1d(x * x, window) - mu_x ** 2
    syy = F.conv1d(y * y, window) - mu_y ** 2
    sxy = F.conv1d(x * y, window) - mu_x * mu_y
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    ssim = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / (
        (mu_x ** 2 + mu_y ** 2 + c1) * (sxx + syy + c2))
    return ssim.mean()


def icainr_loss(pred, target, sigma, data_range, window=None):
    """The paper's loss: mean squared error + sigma * (1 - SSIM)."""
    loss = F.mse_loss(pred, target)
    if sigma > 0:
        loss = loss + sigma * (1.0 - ssim_1d(pred, target, data_range, window))
    return loss


def _optimizer(name, params, lr):
    if name == "adamax":
        return torch.optim.Adamax(params, lr=lr)
    return torch.optim.Adam(params, lr=lr)


def n_steps(n_voxels, batch, epochs, steps):
    """Optimiser steps of a stage: ``steps`` when above 0, else whole epochs."""
    return steps if steps > 0 else epochs * math.ceil(n_voxels / batch)


def _batches(n, batch, total, generator, device):
    """``total`` batches of voxel indices; each pass over the voxels is a new permutation."""
    done = 0
    while done < total:
        order = torch.randperm(n, generator=generator).to(device)
        for start in range(0, n, batch):
            if done == total:
                return
            yield order[start:start + batch]
            done += 1


def _lr_factor(schedule, step, total):
    if schedule == "cosine" and total > 1:
        return 0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * step / total))
    return 1.0


def pretrain_coordinate_mlps(net, coords, maps, cfg, generator, progress=None):
    """The paper's "ICA output network pre-training": fit w_v to the ICA maps (MSE).

    With a voxel table, the table then takes what the MLPs miss, so ``w_v``
    starts equal to the ICA maps.
    """
    n, batch = coords.shape[0], cfg["batch_voxels"]
    total = n_steps(n, batch, cfg["pretrain_epochs"], cfg["pretrain_steps"])
    if total > 0:
        _fit_mlps(net, coords, maps, cfg, generator, total, progress)
    if net.arch["voxel_table"]:
        with torch.no_grad():
            for i in range(0, n, cfg["eval_batch_voxels"]):
                sl = slice(i, i + cfg["eval_batch_voxels"])
                net.voxel_table[sl] = maps[sl] - net.mlps(net.encoding(coords[sl]))


def _fit_mlps(net, coords, maps, cfg, generator, total, progress):
    n, batch = coords.shape[0], cfg["batch_voxels"]
    opt = _optimizer(cfg["optimizer"], list(net.mlps.parameters()), cfg["pretrain_lr"])
    for step, idx in enumerate(_batches(n, batch, total, generator, coords.device)):
        for group in opt.param_groups:
            group["lr"] = cfg["pretrain_lr"] * _lr_factor(cfg["lr_schedule"], step, total)
        loss = F.mse_loss(net.mlps(net.encoding(coords[idx])), maps[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if progress is not None:
            progress.update(1)
            progress.set_postfix_str(f"pretrain mse {loss.item():.4f}", refresh=False)


def train_network(net, coords, targets, cfg, generator, data_range, progress=None):
    """Train every parameter on L2 + sigma (1 - SSIM) with Adamax (lr from ``cfg``).

    Returns the mean loss over the last tenth of the steps (nan when there are none).
    """
    n, batch = coords.shape[0], cfg["batch_voxels"]
    total = n_steps(n, batch, cfg["epochs"], cfg["steps"])
    opt = _optimizer(cfg["optimizer"], net.parameters(), cfg["lr"])
    window = gaussian_window(min(11, targets.shape[1]), 1.5, targets.device)
    tail = []
    for step, idx in enumerate(_batches(n, batch, total, generator, coords.device)):
        for group in opt.param_groups:
            group["lr"] = cfg["lr"] * _lr_factor(cfg["lr_schedule"], step, total)
        loss = icainr_loss(net(coords[idx], index=idx), targets[idx], cfg["sigma_ssim"],
                           data_range, window)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step >= total - max(1, total // 10):
            tail.append(loss.item())
        if progress is not None:
            progress.update(1)
            progress.set_postfix_str(f"loss {loss.item():.4f}", refresh=False)
    return sum(tail) / len(tail) if tail else float("nan")


@torch.no_grad()
def evaluate_network(net, coords, batch):
    """The network's output at every coordinate, (N, T) float32 on the CPU."""
    net.eval()
    features = net.pattern_features()
    index = torch.arange(coords.shape[0], device=coords.device)
    out = [net(coords[i:i + batch], features, index[i:i + batch]).cpu()
           for i in range(0, coords.shape[0], batch)]
    net.train()
    return torch.cat(out) if out else torch.zeros(0, net.arch["n_timepoints"])
