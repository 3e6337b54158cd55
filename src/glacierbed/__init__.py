"""glacierbed: glacier bed topography, ice thickness and volume by terrain inpainting."""

__version__ = "0.1.0"
