"""Models that turn a DEM and outlines into a bed: the predictor contract, classical fills,
the terrain-inpainting network (``models.inpainting``), the surface-aware thickness network
(``models.thickness``), what their trainers share (``models.runs``) and safe reading of torch
files (``models.files``). Model names are resolved by :mod:`glacierbed.pipeline.store`."""
