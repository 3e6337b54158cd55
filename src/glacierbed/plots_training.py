"""Figures of the training stage: patch grids and progress images (PNG)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import LightSource  # noqa: E402

from glacierbed.model import OUT_SCALE_M  # noqa: E402


def shaded(ax, elev: np.ndarray, res: float, hole: np.ndarray | None = None, vmin=None, vmax=None) -> None:
    """Hillshade blended with elevation colours; the hole outlined in white."""
    ls = LightSource(azdeg=315, altdeg=45)
    rgb = ls.shade(elev, cmap=plt.cm.terrain, vert_exag=1.0, dx=res, dy=res, blend_mode="soft",
                   vmin=vmin if vmin is not None else np.nanmin(elev), vmax=vmax if vmax is not None else np.nanmax(elev))
    ax.imshow(rgb)
    if hole is not None and hole.any():
        ax.contour(hole.astype(float), levels=[0.5], colors="white", linewidths=0.8)
    ax.set_xticks([]); ax.set_yticks([])


def patch_grid_figure(dems: np.ndarray, holes: np.ndarray, res: np.ndarray, path: str | Path,
                      titles: list[str] | None = None, ncols: int = 4) -> Path:
    """Grid of sample patches (hillshade + elevation colours) with their holes outlined."""
    n = len(dems)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3 * ncols, 3 * nrows), squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        if i >= n:
            ax.axis("off"); continue
        shaded(ax, dems[i], float(res[i]), holes[i])
        ax.set_title(titles[i] if titles else f"{res[i]:g} m, {dems[i].min():.0f}-{dems[i].max():.0f} m", fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def progress_figure(batch: dict, pred_m: np.ndarray, step: int, path: str | Path) -> Path:
    """Masked input / reconstruction / truth / error for a few validation patches."""
    n = len(pred_m)
    fig, axes = plt.subplots(n, 4, figsize=(12, 3 * n), squeeze=False)
    for i in range(n):
        hole = batch["x"][i, 1].numpy() > 0.5
        truth = batch["truth"][i].numpy() * OUT_SCALE_M
        res = float(batch["res"][i])
        masked = np.where(hole, np.nan, truth)
        vmin, vmax = truth.min(), truth.max()
        axes[i, 0].imshow(masked, cmap="terrain", vmin=vmin, vmax=vmax)
        axes[i, 0].set_xticks([]); axes[i, 0].set_yticks([])
        shaded(axes[i, 1], pred_m[i], res, hole, vmin, vmax)
        shaded(axes[i, 2], truth, res, hole, vmin, vmax)
        err = np.where(hole, pred_m[i] - truth, np.nan)
        im = axes[i, 3].imshow(err, cmap="RdBu_r", vmin=-100, vmax=100)
        axes[i, 3].set_xticks([]); axes[i, 3].set_yticks([])
        rmse = np.sqrt(np.nanmean(err**2))
        axes[i, 3].set_title(f"error, RMSE {rmse:.1f} m", fontsize=8)
        if i == 0:
            axes[i, 0].set_title("masked input", fontsize=8); axes[i, 1].set_title("reconstruction", fontsize=8)
            axes[i, 2].set_title("truth", fontsize=8)
    fig.colorbar(im, ax=axes[:, 3].tolist(), shrink=0.6, label="m")
    fig.suptitle(f"training iteration {step}")
    return _save(fig, path)


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    tmp.replace(path)
    return path
