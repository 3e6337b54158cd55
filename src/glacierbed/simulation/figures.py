"""Figure of simulated glaciers: ice surface, bed, outlines and thickness per window."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from glacierbed.core.figures import hillshade, save_figure, shaded



def simulated_examples_figure(sims, path: str | os.PathLike, n: int = 6, seed: int = 0) -> Path:
    """Rows of simulated windows: ice surface, bed, glacier outlines (labels) and thickness.

    ``sims``: a :class:`glacierbed.simulation.glacier_set.SimulatedSet`; windows drawn at random, one per
    source where possible, titled with source, pixel size, A factor, sliding and retreat.
    """
    rng = np.random.default_rng(seed)
    by_source: dict[str, list[int]] = {}
    for i, s in enumerate(sims.source):
        by_source.setdefault(str(s), []).append(i)
    keys = list(by_source)
    rng.shuffle(keys)
    idx = [int(rng.choice(by_source[k])) for k in keys[:n]]
    fig = Figure(figsize=(13, 3.0 * len(idx)))
    axes = fig.subplots(len(idx), 4, squeeze=False)
    for row, i in zip(axes, idx):
        res, h, bed, ids = float(sims.res[i]), sims.thickness[i], sims.bed[i], sims.ids[i]
        p = sims.params[i]
        surf = bed + h
        lo, hi = float(np.nanmin(surf)), float(np.nanmax(surf))
        shaded(row[0], surf, res, vmin=lo, vmax=hi)
        shaded(row[1], bed, res, vmin=lo, vmax=hi)
        row[2].imshow(hillshade(surf, res), cmap="gray")
        row[2].imshow(np.ma.masked_equal(ids % 20, 0) if ids.max() else np.ma.masked_all(ids.shape), cmap="tab20",
                      alpha=0.6, interpolation="nearest")
        im = row[3].imshow(np.ma.masked_less_equal(h, 0.5), cmap="viridis")
        fig.colorbar(im, ax=row[3], shrink=0.8, label="thickness (m)")
        retreat = f", retreat +{p['retreat_dela_m']:.0f} m / {p['retreat_years']:.0f} yr" if p["retreat_years"] else ""
        row[0].set_ylabel(f"{sims.source[i]} ({sims.split[i]})", fontsize=8)
        row[0].set_title(f"ice surface, {res:g} m", fontsize=9)
        row[1].set_title("bed (real terrain)", fontsize=9)
        row[2].set_title(f"{int(ids.max())} glaciers (outlines)", fontsize=9)
        row[3].set_title(f"A x{p['glen_a'] / 2.4e-24:.2f}, sliding {p['sliding_fraction']:.2f}{retreat}", fontsize=8)
        for ax in row:
            ax.set_xticks([]); ax.set_yticks([])
    fig.tight_layout()
    return save_figure(fig, Path(path), dpi=90)
