"""The one interface the estimation stage needs: fill a hole in a DEM window.

An :class:`Inpainter` takes a DEM window (metres, float32, NaN allowed outside the
footprint), a boolean hole mask (True = hidden, e.g. every glacier in the window) and
the pixel size in metres, and returns the reconstructed surface (bed) on the same grid.
Visible pixels are returned unchanged. Classical fills and the trained network share it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from glacierbed.fill import biharmonic_fill, harmonic_fill


@runtime_checkable
class Inpainter(Protocol):
    name: str
    #: preferred window size in pixels (larger holes are tiled by the caller)
    patch_size: int
    #: pixel sizes (m) the inpainter was made for; callers resample into this range
    resolution_range_m: tuple[float, float]

    def inpaint(self, dem: np.ndarray, hole: np.ndarray, pixel_size_m: float) -> np.ndarray: ...


@dataclass
class ClassicalInpainter:
    """Harmonic or biharmonic interpolation from the hole's border."""

    name: str = "biharmonic"
    patch_size: int = 256
    resolution_range_m: tuple[float, float] = (10.0, 400.0)

    def inpaint(self, dem: np.ndarray, hole: np.ndarray, pixel_size_m: float) -> np.ndarray:
        fill = biharmonic_fill if self.name == "biharmonic" else harmonic_fill
        return fill(dem, hole).astype(np.float32)


CLASSICAL = ("biharmonic", "harmonic")


def load_inpainter(name_or_path: str | Path | None = None) -> Inpainter:
    """``None``/"default" -> the shipped network; "biharmonic"/"harmonic" -> classical;
    anything else -> a checkpoint or weights file path."""
    if name_or_path is not None and str(name_or_path) in CLASSICAL:
        return ClassicalInpainter(name=str(name_or_path))
    from glacierbed.model import NetworkInpainter  # torch only when needed

    return NetworkInpainter.load(name_or_path)
