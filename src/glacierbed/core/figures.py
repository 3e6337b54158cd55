"""Figure helpers shared by every stage: atomic PNG writes, hillshade, shaded elevation.

Uses :class:`matplotlib.figure.Figure` directly (no pyplot state), so it is safe in worker
processes and tests; PNGs are written atomically.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from matplotlib.colors import LightSource
from matplotlib.figure import Figure

from glacierbed.core.atomic import write_bytes


def save_figure(fig: Figure, path: Path, dpi: int = 110) -> Path:
    """Write ``fig`` as a PNG atomically; returns ``path``."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return write_bytes(path, buf.getvalue())


def hillshade(dem: np.ndarray, res_m: float) -> np.ndarray:
    """Hillshade in [0, 1] (light from the north-west, 45 degrees), NaN kept as NaN."""
    filled = np.where(np.isfinite(dem), dem, np.nanmean(dem))
    hs = LightSource(azdeg=315, altdeg=45).hillshade(filled, vert_exag=1.0, dx=res_m, dy=res_m)
    return np.where(np.isfinite(dem), hs, np.nan)


def shaded(ax, elev: np.ndarray, res: float, hole: np.ndarray | None = None, vmin=None, vmax=None) -> None:
    """Hillshade blended with elevation colours; the hole outlined in white."""
    import matplotlib

    vmin = np.nanmin(elev) if vmin is None else vmin
    vmax = np.nanmax(elev) if vmax is None else vmax
    rgb = LightSource(azdeg=315, altdeg=45).shade(elev, cmap=matplotlib.colormaps["terrain"], vert_exag=1.0,
                                                  dx=res, dy=res, blend_mode="soft", vmin=vmin, vmax=vmax)
    ax.imshow(rgb)
    if hole is not None and hole.any():
        ax.contour(hole.astype(float), levels=[0.5], colors="white", linewidths=0.8)
    ax.set_xticks([]); ax.set_yticks([])
