"""glacierbed: glacier bed topography, ice thickness and volume from a surface DEM and outlines."""

__version__ = "0.1.0"


def __getattr__(name: str):
    """Lazy API exports, so ``import glacierbed`` stays light (no rasterio/torch/dask)."""
    if name in ("estimate_volume", "EstimateResult", "EstimateConfig"):
        from glacierbed.pipeline import estimate as _estimate

        return {"estimate_volume": _estimate.estimate, "EstimateResult": _estimate.EstimateResult,
                "EstimateConfig": _estimate.EstimateConfig}[name]
    raise AttributeError(f"module 'glacierbed' has no attribute {name!r}")
