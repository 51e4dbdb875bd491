"""Figures of the QC: slices, time series, t-maps and connectivity matrices (PNG).

matplotlib with the Agg backend (no display on clusters and in CI) and nilearn's
plotting functions.
"""

import numpy as np


def pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display on clusters and in CI
    import matplotlib.pyplot as plt

    return plt


def plot_slices(original, decoded, mask, out_png, volume=None):
    """Central axial, coronal and sagittal slices of original, decompressed and error."""
    plt = pyplot()
    t = original.shape[3] // 2 if volume is None else volume
    o, d = original[..., t], decoded[..., t]
    err = np.where(mask, d - o, 0.0)
    vmin, vmax = np.percentile(o[mask], [1, 99.5])
    emax = max(np.percentile(np.abs(err[mask]), 99.5), 1e-9)
    cx, cy, cz = [s // 2 for s in o.shape]
    views = [("axial", lambda a: a[:, :, cz].T), ("coronal", lambda a: a[:, cy, :].T),
             ("sagittal", lambda a: a[cx, :, :].T)]
    fig, axes = plt.subplots(3, 3, figsize=(9, 8.4))
    for row, (name, cut) in enumerate(views):
        for col, (title, vol, kw) in enumerate([
                ("original", o, dict(cmap="gray", vmin=vmin, vmax=vmax)),
                ("decompressed", d, dict(cmap="gray", vmin=vmin, vmax=vmax)),
                ("error (decompressed - original)", err, dict(cmap="RdBu_r", vmin=-emax,
                                                              vmax=emax))]):
            ax = axes[row, col]
            im = ax.imshow(cut(vol), origin="lower", interpolation="nearest", **kw)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(title, fontsize=10)
            if col == 0:
                ax.set_ylabel(name)
            if col == 2:
                fig.colorbar(im, ax=ax, fraction=0.046)
    fig.suptitle(f"volume {t}: central slices", fontsize=11)
    fig.tight_layout()
    fig.savefig(out_png, dpi=80)
    plt.close(fig)


def plot_timeseries(original, decoded, mask, out_png, n_voxels=4):
    """A few voxel time series, original and decompressed overlaid.

    Voxels are taken at evenly spaced quantiles of temporal standard deviation
    within the mask (deterministic, from quiet to busy voxels).
    """
    plt = pyplot()
    idx = np.argwhere(mask)
    sd = original[mask].std(axis=1)
    order = np.argsort(sd)
    picks = order[(np.linspace(0.1, 0.99, n_voxels) * (len(order) - 1)).astype(int)]
    fig, axes = plt.subplots(len(picks), 1, figsize=(9, 1.9 * len(picks)), sharex=True)
    axes = np.atleast_1d(axes)
    for ax, p in zip(axes, picks):
        x, y, z = idx[p]
        ax.plot(original[x, y, z], color="0.2", lw=1.0, label="original")
        ax.plot(decoded[x, y, z], color="tab:red", lw=1.0, alpha=0.85, label="decompressed")
        ax.set_ylabel(f"({x},{y},{z})", fontsize=8)
    axes[0].legend(loc="upper right", fontsize=8, ncol=2)
    axes[-1].set_xlabel("volume")
    fig.tight_layout()
    fig.savefig(out_png, dpi=80)
    plt.close(fig)


def plot_tmaps(tmaps, affine, mask_img, out_png, max_conditions=6, bg_img=None):
    """t-maps per condition: original and decompressed side by side (nilearn plot_stat_map),
    thresholded at |t| = 3 over ``bg_img`` (e.g. the mean EPI)."""
    import nibabel as nib
    from nilearn import plotting

    plt = pyplot()
    conds = list(tmaps)[:max_conditions]
    mask = np.asarray(mask_img.dataobj).astype(bool)
    fig, axes = plt.subplots(len(conds), 2, figsize=(8, 2.6 * len(conds)))
    axes = np.atleast_2d(axes)
    for row, cond in enumerate(conds):
        t_o, t_d = tmaps[cond]
        vmax = float(np.abs(t_o[mask]).max()) or 1.0
        peak = np.unravel_index(np.argmax(np.where(mask, np.abs(t_o), -1)), t_o.shape)
        z_mm = float(nib.affines.apply_affine(affine, peak)[2])
        for col, (name, tmap) in enumerate([("original", t_o), ("decompressed", t_d)]):
            plotting.plot_stat_map(nib.Nifti1Image(tmap.astype(np.float32), affine),
                                   bg_img=bg_img, display_mode="z", cut_coords=[z_mm],
                                   axes=axes[row, col], vmax=vmax, threshold=3.0,
                                   colorbar=col == 1, title=f"{cond}: {name}",
                                   draw_cross=False, annotate=False, black_bg=True)
    fig.savefig(out_png, dpi=80)
    plt.close(fig)


def plot_connectivity(r_original, r_decoded, out_png):
    """Both correlation matrices and their difference (nilearn plot_matrix)."""
    from nilearn import plotting

    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2))
    for ax, (name, mat, vmax) in zip(axes, [("original r", r_original, 1.0),
                                             ("decompressed r", r_decoded, 1.0),
                                             ("difference", r_decoded - r_original, 0.5)]):
        m = mat.copy()
        np.fill_diagonal(m, 0)
        plotting.plot_matrix(m, axes=ax, vmin=-vmax, vmax=vmax, colorbar=True, title=name,
                             cmap="RdBu_r")
    fig.savefig(out_png, dpi=80)
    plt.close(fig)
