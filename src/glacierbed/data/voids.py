"""Nodata in DEMs: fill small voids by harmonic interpolation, or every NaN by its nearest value."""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
from scipy import ndimage

from glacierbed.data.raster_io import Raster, VoidReport

log = logging.getLogger(__name__)


def fill_voids(raster: Raster, max_void_px: int = 64) -> Raster:
    """Fill nodata voids of up to ``max_void_px`` pixels by harmonic interpolation.

    Larger voids are left as NaN and reported in ``raster.voids``; nodata connected to the
    raster's edge is treated as outside the footprint and neither filled nor reported.
    """
    from glacierbed.core.fill import harmonic_fill  # local import: fill depends on nothing of ours

    void = ~np.isfinite(raster.data)
    labels, n = ndimage.label(void)
    # nodata touching the raster's edge is outside the footprint (e.g. after warping), not a void
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    labels[np.isin(labels, edge[edge > 0])] = 0
    void = labels > 0
    report = VoidReport(n_void_px=int(void.sum()), n_voids=int(n - (edge > 0).sum()))
    if report.n_voids == 0:
        return replace(raster, voids=report)
    idx = np.setdiff1d(np.arange(1, n + 1), edge)
    sizes = ndimage.sum(void, labels, index=idx).astype(int)
    report.largest_void_px = int(sizes.max())
    small = np.isin(labels, idx[sizes <= max_void_px])
    data = raster.data
    if small.any():
        # harmonic_fill would also fill every other NaN (big voids, outside the footprint):
        # give those a dummy value first (a small void has no NaN 4-neighbour, and only
        # 4-neighbours enter the stencil) and keep them NaN in the result
        other_nan = ~np.isfinite(raster.data) & ~small
        filled = harmonic_fill(np.where(other_nan, 0.0, raster.data), small)
        data = np.where(small, filled, raster.data)
    report.n_filled_px = int(small.sum())
    report.n_left_px = report.n_void_px - report.n_filled_px
    if report.n_left_px:
        log.warning("%s: %d nodata pixels in %d voids left unfilled (largest %d px)",
                    raster.source or "DEM", report.n_left_px, int((sizes > max_void_px).sum()), report.largest_void_px)
    return replace(raster, data=data.astype(np.float32), voids=report)



def fill_nearest(a: np.ndarray) -> np.ndarray:
    """NaNs replaced by the nearest finite value (for inputs that cannot hold NaN)."""
    bad = ~np.isfinite(a)
    if not bad.any():
        return a
    idx = ndimage.distance_transform_edt(bad, return_distances=False, return_indices=True)
    return a[tuple(idx)]
