"""The one interface the estimation stage needs: fill a hole in a DEM window.

An :class:`Inpainter` takes a DEM window (metres, float32, NaN allowed outside the
footprint), a boolean hole mask (True = hidden, e.g. every glacier in the window) and
the pixel size in metres, and returns the reconstructed surface (bed) on the same grid.
Visible pixels are returned unchanged. Classical fills and the trained network share it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from glacierbed.core.fill import biharmonic_fill, harmonic_fill


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

    @property
    def weights_sha256(self) -> str:
        """A stable identifier, like a network's weights hash: SHA-256 of "classical:<name>"."""
        return hashlib.sha256(f"classical:{self.name}".encode()).hexdigest()

    def inpaint(self, dem: np.ndarray, hole: np.ndarray, pixel_size_m: float) -> np.ndarray:
        fill = biharmonic_fill if self.name == "biharmonic" else harmonic_fill
        return fill(dem, hole).astype(np.float32)


#: the classical fills' names (loaded by name with :func:`glacierbed.pipeline.store.load_inpainter`)
CLASSICAL = ("biharmonic", "harmonic")


def inpainter_id(inpainter: Inpainter) -> str:
    """What identifies an inpainter's results: its ``weights_sha256`` (networks: the weights
    file's SHA-256; classical fills: a hash of their name), else a hash of its class and
    name for inpainters that do not provide one."""
    sha = getattr(inpainter, "weights_sha256", None)
    if sha:
        return str(sha)
    label = f"{type(inpainter).__module__}.{type(inpainter).__qualname__}:{getattr(inpainter, 'name', '')}"
    return hashlib.sha256(label.encode()).hexdigest()
