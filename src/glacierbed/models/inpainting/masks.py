"""Hole (mask) generators for training: centred boxes and real glacier shapes.

Every generator takes an explicit ``numpy.random.Generator`` so masks are reproducible
and workers never draw identical masks. A mask is a boolean array, True = hidden.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import shapely
import shapely.affinity
from rasterio.features import rasterize
from rasterio.transform import from_origin
from scipy import ndimage


def box_mask(size: int, rng: np.random.Generator, mean: float | None = None, spread: float | None = None) -> np.ndarray:
    """A square-ish box of side ``mean ± spread`` px (default size/2 ± size/8), randomly offset.

    For 256 px patches this is the seed pipeline's 128 ± 32 px box.
    """
    mean = size / 2 if mean is None else mean
    spread = size / 8 if spread is None else spread
    h, w = (int(np.clip(rng.uniform(mean - spread, mean + spread), 4, size - 4)) for _ in range(2))
    max_off = (size - max(h, w)) // 4
    r0 = (size - h) // 2 + int(rng.integers(-max_off, max_off + 1))
    c0 = (size - w) // 2 + int(rng.integers(-max_off, max_off + 1))
    m = np.zeros((size, size), dtype=bool)
    m[r0 : r0 + h, c0 : c0 + w] = True
    return m


@dataclass
class OutlineShapes:
    """A library of real glacier outline shapes (metric, centred at the origin)."""

    shapes: list[shapely.Geometry]
    source: str = ""

    @classmethod
    def from_outlines(cls, paths: Sequence[str | Path], min_area_km2: float = 0.05) -> "OutlineShapes":
        from glacierbed.data.outlines import read_outlines

        shapes: list[shapely.Geometry] = []
        for p in paths:
            g = read_outlines(p)
            g = g.to_crs(g.estimate_utm_crs())
            for geom in g.geometry:
                if geom.area / 1e6 < min_area_km2:
                    continue
                c = geom.centroid
                shapes.append(shapely.affinity.translate(geom, -c.x, -c.y))
        if not shapes:
            raise ValueError(f"no outline shapes above {min_area_km2} km2 in {list(map(str, paths))}")
        return cls(shapes, ";".join(map(str, paths)))

    def sample(
        self,
        size: int,
        rng: np.random.Generator,
        extent_frac: tuple[float, float] = (0.25, 0.75),
        centre: tuple[float, float] | None = None,
        angle_deg: float | None = None,
    ) -> np.ndarray:
        """Rasterize a random shape: rotated, scaled so its longest side spans
        ``extent_frac`` of the patch, centred at ``centre`` (row, col) or randomly."""
        geom = self.shapes[int(rng.integers(len(self.shapes)))]
        angle = rng.uniform(0, 360) if angle_deg is None else angle_deg
        geom = shapely.affinity.rotate(geom, angle, origin=(0, 0))
        if rng.random() < 0.5:
            geom = shapely.affinity.scale(geom, xfact=-1, origin=(0, 0))
        minx, miny, maxx, maxy = geom.bounds
        target = rng.uniform(*extent_frac) * size
        scale = target / max(maxx - minx, maxy - miny)
        geom = shapely.affinity.scale(geom, scale, scale, origin=(0, 0))
        if centre is None:
            centre = (size / 2 + rng.normal(0, size / 10), size / 2 + rng.normal(0, size / 10))
        r, c = centre
        # pixel space: x = col, y = -row (north up)
        geom = shapely.affinity.translate(geom, c, -r)
        transform = from_origin(0, 0, 1, 1)
        m = rasterize([(geom, 1)], out_shape=(size, size), transform=transform, fill=0, dtype="uint8").astype(bool)
        if m.sum() < 4:  # degenerate after scaling: fall back to a small disc
            yy, xx = np.mgrid[:size, :size]
            m = (yy - r) ** 2 + (xx - c) ** 2 <= (size / 10) ** 2
        return m


def valley_centre(dem: np.ndarray, rng: np.random.Generator, margin: int, sigma_px: float = 8.0,
                  temperature: float = 0.5) -> tuple[float, float]:
    """Pick a hole centre biased towards hollows (negative topographic position, TPI),
    where glaciers sit: probability ∝ exp(-TPI / (temperature * std(TPI)))."""
    smooth = ndimage.gaussian_filter(np.nan_to_num(dem, nan=float(np.nanmean(dem))), sigma_px)
    tpi = np.nan_to_num(dem - smooth, nan=0.0)
    n = dem.shape[0]
    inner = tpi[margin : n - margin, margin : n - margin]
    logits = -(inner - inner.min()) / (temperature * max(float(inner.std()), 1e-3))
    p = np.exp(logits - logits.max()).ravel()
    p /= p.sum()
    k = int(rng.choice(p.size, p=p))
    return margin + k // inner.shape[1], margin + k % inner.shape[1]


@dataclass
class MaskGenerator:
    """Mixes box masks and glacier-shaped masks (placed in hollows) for training."""

    shapes: OutlineShapes | None = None
    p_box: float = 0.25
    p_valley: float = 0.7
    extent_frac: tuple[float, float] = (0.25, 0.75)

    def __call__(self, dem: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        size = dem.shape[0]
        if self.shapes is None or rng.random() < self.p_box:
            return box_mask(size, rng)
        centre = valley_centre(dem, rng, margin=size // 4) if rng.random() < self.p_valley else None
        m = self.shapes.sample(size, rng, self.extent_frac, centre=centre)
        if rng.random() < 0.3:  # a neighbouring glacier hidden too, as at inference
            m |= self.shapes.sample(size, rng, (0.1, 0.35))
        return m
