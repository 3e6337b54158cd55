"""Models that turn a DEM and outlines into a bed: the predictor contract, classical fills,
the terrain-inpainting network (``models.inpainting``) and the surface-aware thickness
network (``models.thickness``)."""
