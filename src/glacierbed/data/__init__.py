"""Data layer: rasters, outlines, observations and the dataset registry."""

from glacierbed.data.outlines import check_overlap, rasterize_ids, rasterize_mask, read_outlines
from glacierbed.data.rasters import Raster, fill_voids, local_metric_crs, read_dem

__all__ = ["Raster", "read_dem", "fill_voids", "local_metric_crs", "read_outlines", "check_overlap",
           "rasterize_ids", "rasterize_mask"]
