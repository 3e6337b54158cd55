"""Georeferenced rasters: read, mosaic, reproject, fill voids, write atomically.

A :class:`Raster` is a float32 array with NaN for nodata, plus its affine transform and
CRS, so the grid travels with the pixels (as in geoutils' ``Raster``).

This module is the public face; the code lives in :mod:`glacierbed.data.raster_io` (the
:class:`Raster` class, reading windows, checking and writing files), :mod:`glacierbed.data.units` (stored
values to metres; values and grids that cannot be what they should),
:mod:`glacierbed.data.crs` (is a CRS a local metric grid; UTM zones),
:mod:`glacierbed.data.warping` (the working CRS, DEM reading, mosaics, resampling onto a
grid) and :mod:`glacierbed.data.voids` (void filling).
"""

from __future__ import annotations

from glacierbed.data.crs import MAX_SCALE_ERROR, crs_problem, utm_crs_for
from glacierbed.data.raster_io import NODATA, Raster, VoidReport, checked_rasters, read_window, sample_layers
from glacierbed.data.units import SRTM_VOID, physical_range_problem
from glacierbed.data.voids import fill_nearest, fill_voids
from glacierbed.data.warping import (as_metric_dem, local_metric_crs, mosaic, raster_on_grid, read_dem,
                                     resample_to_grid, velocity_on_grid)

__all__ = [
    "NODATA", "SRTM_VOID", "Raster", "VoidReport", "checked_rasters", "physical_range_problem", "read_window",
    "sample_layers",
    "MAX_SCALE_ERROR", "crs_problem", "utm_crs_for", "local_metric_crs",
    "fill_nearest", "fill_voids",
    "read_dem", "as_metric_dem", "mosaic", "resample_to_grid", "raster_on_grid", "velocity_on_grid",
]
