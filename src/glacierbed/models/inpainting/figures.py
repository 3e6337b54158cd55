"""Figures of the terrain-inpainting stage: training patches and training progress."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from glacierbed.core.figures import save_figure, shaded



def patch_grid_figure(dems: np.ndarray, holes: np.ndarray, res: np.ndarray, path: str | os.PathLike,
                      titles: list[str] | None = None, ncols: int = 4) -> Path:
    """Grid of sample patches (hillshade + elevation colours) with their holes outlined."""
    n = len(dems)
    nrows = int(np.ceil(n / ncols))
    fig = Figure(figsize=(3 * ncols, 3 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        if i >= n:
            ax.axis("off")
            continue
        shaded(ax, dems[i], float(res[i]), holes[i])
        ax.set_title(titles[i] if titles else f"{res[i]:g} m, {dems[i].min():.0f}-{dems[i].max():.0f} m", fontsize=8)
    fig.tight_layout()
    return save_figure(fig, Path(path), dpi=90)


def progress_figure(masked_m: np.ndarray, pred_m: np.ndarray, truth_m: np.ndarray, holes: np.ndarray,
                    res: np.ndarray, step: int, path: str | os.PathLike) -> Path:
    """Masked input / reconstruction / truth / error for a few validation patches
    ("training iteration N" images)."""
    n = len(pred_m)
    fig = Figure(figsize=(12, 3 * n))
    axes = fig.subplots(n, 4, squeeze=False)
    im = None
    for i in range(n):
        vmin, vmax = truth_m[i].min(), truth_m[i].max()
        axes[i, 0].imshow(masked_m[i], cmap="terrain", vmin=vmin, vmax=vmax)
        axes[i, 0].set_xticks([]); axes[i, 0].set_yticks([])
        shaded(axes[i, 1], pred_m[i], float(res[i]), holes[i], vmin, vmax)
        shaded(axes[i, 2], truth_m[i], float(res[i]), holes[i], vmin, vmax)
        err = np.where(holes[i], pred_m[i] - truth_m[i], np.nan)
        im = axes[i, 3].imshow(err, cmap="RdBu_r", vmin=-100, vmax=100)
        axes[i, 3].set_xticks([]); axes[i, 3].set_yticks([])
        axes[i, 3].set_title(f"error, RMSE {np.sqrt(np.nanmean(err ** 2)):.1f} m", fontsize=8)
    for ax, t in zip(axes[0], ("masked input", "reconstruction", "truth")):
        ax.set_title(t, fontsize=8)
    fig.colorbar(im, ax=axes[:, 3].tolist(), shrink=0.6, label="m")
    fig.suptitle(f"training iteration {step}")
    return save_figure(fig, Path(path), dpi=90)


def validation_curve_figure(validation_csv: str | os.PathLike, path: str | os.PathLike) -> Path:
    """The run's validation RMSE against step, beside the biharmonic fill's on the same holes,
    one panel per hole kind (``validation.csv`` of a training run)."""
    import pandas as pd

    df = pd.read_csv(validation_csv)
    kinds = [k for k in ("glacier", "box") if f"{k}_rmse_m" in df]
    fig = Figure(figsize=(5 * len(kinds), 3.6))
    for i, kind in enumerate(kinds):
        ax = fig.add_subplot(1, len(kinds), i + 1)
        ax.plot(df["step"], df[f"{kind}_rmse_m"], "o-", label="network")
        ax.plot(df["step"], df[f"{kind}_rmse_biharmonic_m"], "k--", label="biharmonic fill")
        ratio = df[f"{kind}_rmse_m"].iloc[-1] / df[f"{kind}_rmse_biharmonic_m"].iloc[-1]
        ax.set(title=f"{kind} holes (last: {ratio:.3f} x fill)", xlabel="step", ylabel="validation RMSE (m)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)
