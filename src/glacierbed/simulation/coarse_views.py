"""Coarse views of simulated glaciers: each window block-averaged to a coarser pixel size.

A simulated set holds glaciers simulated at each pixel size on terrain of that pixel size, so a network trained on it
has seen, at 200 m, only glaciers that a 200 m simulation makes: large ones spanning many pixels. A user's coarse DEM
shows glaciers sized for finer pixels spanning few coarse pixels, where the network comes out thin
(``benchmarks/resolution_prior.py``: 6-8 % on block-averaged simulated glaciers of known thickness, 11-25 % on the
kit's DEMs warped to 200 m). A coarse view is what such a DEM sees of a simulated glacier: bed, thickness, surface
speed and mass balance averaged over k x k blocks (a coarse pixel holds the mean surface; its truth is the mean
thickness) and the glacier labels sampled at each block's centre (as a coarse grid samples an outline).
"""

from __future__ import annotations

import numpy as np
from skimage.measure import block_reduce

from glacierbed.simulation.glacier_set import SimulatedSet


def block_average(a: np.ndarray, k: int) -> np.ndarray:
    """The last two axes of ``a`` averaged over k x k blocks (trailing rows and columns that do not fill a block
    dropped)."""
    n0, n1 = (s // k * k for s in a.shape[-2:])
    return block_reduce(np.asarray(a, np.float64)[..., :n0, :n1], (1,) * (a.ndim - 2) + (k, k), np.mean)


def block_centres(labels: np.ndarray, k: int) -> np.ndarray:
    """The label at each k x k block's centre pixel (last two axes), as a grid k times coarser samples an outline."""
    n0, n1 = (s // k for s in labels.shape[-2:])
    return labels[..., k // 2::k, k // 2::k][..., :n0, :n1]


def coarse_window(bed: np.ndarray, thickness: np.ndarray, labels: np.ndarray, k: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(bed, thickness, labels) of a window (or a stack of them) ``k`` times coarser: bed and thickness averaged over
    k x k blocks, the labels of each block's centre pixel."""
    return block_average(bed, k), block_average(thickness, k), block_centres(labels, k)


def coarse_view(sims: SimulatedSet, factor: int, coarsest_m: float = 200.0) -> SimulatedSet:
    """Every window of ``sims`` whose pixel size times ``factor`` is at most ``coarsest_m``, block-averaged
    ``factor`` times (windows ``factor`` times smaller; same splits, sources and parameters)."""
    if factor < 2:
        raise ValueError(f"factor must be at least 2, got {factor}")
    keep = np.asarray(sims.res, float) * factor <= coarsest_m
    if not keep.any():
        raise ValueError(f"no window of {sorted(set(np.asarray(sims.res).tolist()))} m pixels stays within "
                         f"{coarsest_m:g} m when {factor}x coarser")
    avg = lambda a: block_average(a[keep], factor).astype(np.float32)  # noqa: E731
    bed, thickness, ids = coarse_window(sims.bed[keep], sims.thickness[keep], sims.ids[keep], factor)
    return SimulatedSet(bed.astype(np.float32), thickness.astype(np.float32), ids, avg(sims.speed), avg(sims.smb),
                        np.asarray(sims.res, float)[keep] * factor, sims.split[keep], sims.source[keep],
                        [p for p, k in zip(sims.params, keep) if k],
                        {**sims.summary, "coarse_view": {"factor": factor, "coarsest_m": coarsest_m}})


__all__ = ["block_average", "block_centres", "coarse_view", "coarse_window"]
