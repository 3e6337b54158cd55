"""Thickness predictors: what the estimate stage asks of a model, one glacier window at a time.

A predictor takes a :class:`GlacierWindow` (the DEM window with the ice surface visible,
this glacier's mask, every glacier's mask, the pixel size and optional velocity/SMB) and
returns a :class:`Prediction`: the bed under every glacier pixel of the window as an
ensemble (K members, K >= 1) and, where the model has one, its own 1-sigma thickness
uncertainty (used by the physics stage as the data term's sigma).

* :class:`InpaintingPredictor`: the terrain-only inpainters (biharmonic, harmonic, the
  gated-convolution network): every glacier is hidden and the bed inpainted from the
  terrain around it; the ensemble flips the window and dilates the hole; windows larger
  than the inpainter's patch get a coarse pass plus overlapping fine tiles.

:func:`glacierbed.pipeline.store.load_predictor` resolves a name or weights path once.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
from scipy import ndimage
from skimage.measure import block_reduce

from glacierbed.data.rasters import fill_nearest
from glacierbed.models.inpainters import Inpainter

#: ensemble members in order: (flipped axes, mask dilation in pixels)
MEMBERS: tuple[tuple[tuple[int, ...], int], ...] = (
    ((), 0), ((0,), 0), ((1,), 0), ((), 1), ((0, 1), 0), ((), 2), ((0,), 1), ((1,), 1),
)


@dataclass
class GlacierWindow:
    """One glacier's inputs on its working grid (array axes; square pixels)."""

    surface: np.ndarray  #: m, the DEM with the ice surface on glaciers; NaN off the DEM
    own: np.ndarray  #: bool, this glacier
    ice: np.ndarray  #: bool, every glacier in the window (this one included)
    pixel_size_m: float
    calving: bool = False  #: water-terminating (RGI TermType 1/2)
    velocity: tuple[np.ndarray, np.ndarray] | None = None  #: (ux, uy) m/yr, array axes
    smb: np.ndarray | None = None  #: surface mass balance, m of ice / yr (the pipeline converts a w.e. raster)
    ids: np.ndarray | None = None  #: glacier labels of the window (0 = no ice); None: connected ice bodies


@dataclass
class Prediction:
    """A predictor's answer on the window's grid."""

    bed_members: np.ndarray  #: (K, ny, nx) bed elevation (m) of each ensemble member
    sigma_m: np.ndarray | None = None  #: the model's own 1-sigma thickness uncertainty, or None
    info: dict[str, float | int | str] = field(default_factory=dict)  #: recorded with the glacier (e.g. n_tiles)


@runtime_checkable
class ThicknessPredictor(Protocol):
    name: str
    #: what identifies the model's results (sha256 of its weights, or of its name): keys resuming
    identity: str
    patch_size: int
    resolution_range_m: tuple[float, float]

    def predict(self, window: GlacierWindow, ensemble: int) -> Prediction: ...


def identity_of(obj: object) -> str:
    """sha256 of a model's weights when it has them, else of its name."""
    sha = getattr(obj, "weights_sha256", None) or getattr(obj, "identity", None)
    return str(sha) if sha else hashlib.sha256(str(getattr(obj, "name", type(obj).__name__)).encode()).hexdigest()


# --------------------------------------------------------------------------------------
# working resolution
# --------------------------------------------------------------------------------------
@dataclass
class Plan:
    resolution_m: float
    mode: str  #: "native", "coarsened", "refined", "tiny", "tiled"
    resampling: str  #: "none", "average", "bilinear"


def plan_resolution(dem_pixel_size_m: float, window_px: int, glacier_px: int, glacier_area_m2: float,
                    predictor: ThicknessPredictor, tiny_px: int = 30, tiny_target_px: int = 200,
                    patch_slack: float = 1.15, refine_coarse_dem_m: float | None = None) -> Plan:
    """The working resolution of one glacier: the DEM's, brought into the model's
    ``resolution_range_m`` and coarsened until the window fits ~one ``patch_size`` (else
    "tiled"); a glacier of fewer than ``tiny_px`` pixels gets a finer grid where it covers
    ~``tiny_target_px`` pixels ("tiny"). For a predictor whose ``refine_coarse_dem`` is true, on a
    DEM coarser than ``refine_coarse_dem_m`` a glacier whose window fits one patch at that pixel size
    is refined to it ("refined": the thickness network gives too little ice to a glacier spanning few
    pixels, ``benchmarks/resolution_prior.py``)."""
    patch = int(predictor.patch_size)
    rmin, rmax = (float(v) for v in predictor.resolution_range_m)
    extent_m = window_px * dem_pixel_size_m
    if glacier_px < tiny_px:
        # finer grid so the outline covers ~tiny_target_px pixels, the window still fits one patch
        r = max(math.sqrt(glacier_area_m2 / tiny_target_px), rmin, extent_m / patch)
        if r < dem_pixel_size_m * 0.99:
            return Plan(r, "tiny", "bilinear")
        return Plan(dem_pixel_size_m, "tiny", "none")
    r = min(max(dem_pixel_size_m, rmin), rmax)  # into the model's range first
    if (refine_coarse_dem_m is not None and getattr(predictor, "refine_coarse_dem", False)
            and dem_pixel_size_m > refine_coarse_dem_m and extent_m / refine_coarse_dem_m <= patch * patch_slack):
        r = max(float(refine_coarse_dem_m), rmin)
    if extent_m / r > patch * patch_slack:
        r = min(max(r, extent_m / patch), rmax)
    if extent_m / r > patch * patch_slack:
        mode = "tiled"
    elif r > dem_pixel_size_m * 1.01:
        mode = "coarsened"
    elif r < dem_pixel_size_m * 0.99:
        mode = "refined"
    else:
        return Plan(dem_pixel_size_m, "native", "none")
    if abs(r - dem_pixel_size_m) <= 0.01 * dem_pixel_size_m:
        return Plan(dem_pixel_size_m, mode, "none")
    return Plan(r, mode, "average" if r > dem_pixel_size_m else "bilinear")


# --------------------------------------------------------------------------------------
# inpainting at the right size: one call, or coarse pass + overlapping fine tiles
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TilingConfig:
    """How windows larger than an inpainter's patch are split."""

    #: a window may exceed ``patch_size`` by this factor before it is coarsened or tiled
    patch_slack: float = 1.15
    #: overlap of fine tiles (fraction of the patch) and width of the coarse-guide band (px)
    tile_overlap: float = 0.25
    tile_band_px: int = 4


def upsample_bilinear(coarse: np.ndarray, factor: int, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear upsampling of a block-reduced array back onto the fine grid."""
    rows = (np.arange(shape[0]) + 0.5) / factor - 0.5
    cols = (np.arange(shape[1]) + 0.5) / factor - 0.5
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    return ndimage.map_coordinates(coarse, [rr, cc], order=1, mode="nearest")


def _tile_starts(n: int, size: int, stride: int) -> list[int]:
    if n <= size:
        return [0]
    return list(range(0, n - size, stride)) + [n - size]


def inpaint_sized(dem: np.ndarray, hole: np.ndarray, pixel_size_m: float, inpainter: Inpainter,
                  tiling: TilingConfig = TilingConfig()) -> tuple[np.ndarray, int]:
    """Inpaint ``hole`` with windows of at most ~``patch_size`` pixels; returns (bed, n_tiles).

    Larger arrays get a coarse pass (block means, whole array in one patch) whose bed
    guides overlapping fine tiles: in each tile, hole pixels within ``tile_band_px`` of an
    inner tile edge take the coarse bed as known values, so every fine hole is closed;
    tiles are blended with linear ramps across the overlaps.
    """
    patch = int(inpainter.patch_size)
    if max(dem.shape) <= patch * tiling.patch_slack:
        return inpainter.inpaint(dem, hole, pixel_size_m).astype(np.float32), 1
    f = int(math.ceil(max(dem.shape) / patch))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN blocks -> NaN
        coarse_dem = block_reduce(dem.astype(np.float64), (f, f), np.nanmean, cval=np.nan)
    coarse_hole = block_reduce(hole, (f, f), np.any, cval=False) | ~np.isfinite(coarse_dem)
    coarse_dem = np.where(np.isfinite(coarse_dem), coarse_dem, np.nanmean(coarse_dem)).astype(np.float32)
    coarse_bed, _ = inpaint_sized(coarse_dem, coarse_hole, pixel_size_m * f, inpainter, tiling)
    guide = upsample_bilinear(coarse_bed.astype(np.float64), f, dem.shape)

    overlap = max(int(patch * tiling.tile_overlap), 2 * tiling.tile_band_px + 2)
    band = tiling.tile_band_px
    ny, nx = dem.shape
    acc = np.zeros(dem.shape, np.float64)
    wsum = np.zeros(dem.shape, np.float64)
    n_tiles = 0
    for row0 in _tile_starts(ny, patch, patch - overlap):
        for col0 in _tile_starts(nx, patch, patch - overlap):
            sl = (slice(row0, min(row0 + patch, ny)), slice(col0, min(col0 + patch, nx)))
            d, h = dem[sl].copy(), hole[sl].copy()
            th, tw = d.shape
            # distance (px) from each inner tile edge; window edges are not inner edges
            dr = np.full(th, np.inf)
            dc = np.full(tw, np.inf)
            if row0 > 0:
                dr = np.minimum(dr, np.arange(th))
            if row0 + th < ny:
                dr = np.minimum(dr, np.arange(th)[::-1])
            if col0 > 0:
                dc = np.minimum(dc, np.arange(tw))
            if col0 + tw < nx:
                dc = np.minimum(dc, np.arange(tw)[::-1])
            dist = np.minimum(dr[:, None], dc[None, :])
            in_band = (dist < band) & h
            d[in_band] = guide[sl][in_band]
            h &= ~in_band
            bed = inpainter.inpaint(d.astype(np.float32), h, pixel_size_m).astype(np.float64)
            w = np.clip((dist - band + 1) / max(overlap - band, 1), 1e-3, 1.0)
            acc[sl] += w * bed
            wsum[sl] += w
            n_tiles += 1
    out = np.where(hole, acc / wsum, dem)
    return out.astype(np.float32), n_tiles


@dataclass
class InpaintingPredictor:
    """The bed from the terrain around the glaciers only (an :class:`Inpainter`)."""

    inpainter: Inpainter
    tiling: TilingConfig = TilingConfig()
    #: the model's calibration on measured thickness (a :class:`glacierbed.posterior.calibration.Calibration`)
    #: and its file, given by :func:`glacierbed.pipeline.store.load_predictor`; applied by estimate
    calibration: object | None = None
    calibration_path: str | None = None

    @property
    def name(self) -> str:
        return str(getattr(self.inpainter, "name", type(self.inpainter).__name__))

    @property
    def identity(self) -> str:
        return identity_of(self.inpainter)

    @property
    def patch_size(self) -> int:
        return int(self.inpainter.patch_size)

    @property
    def resolution_range_m(self) -> tuple[float, float]:
        return tuple(float(v) for v in self.inpainter.resolution_range_m)  # type: ignore[return-value]

    @property
    def refine_coarse_dem(self) -> bool:
        """Whether glaciers on a coarse DEM are refined for it (:func:`plan_resolution`): only when the inpainter
        asks (a fill from the terrain does not depend on how many pixels the glacier spans; on the simulated Alpine
        region at 200 m refining made biharmonic's volume lower:
        ``benchmarks/results/region_scale_biharmonic_refined.md``)."""
        return bool(getattr(self.inpainter, "refine_coarse_dem", False))

    def predict(self, window: GlacierWindow, ensemble: int) -> Prediction:
        """Beds of the ensemble members: flips of window and mask, mask dilation (:data:`MEMBERS`)."""
        if not 1 <= ensemble <= len(MEMBERS):
            raise ValueError(f"ensemble must be 1..{len(MEMBERS)}, got {ensemble}")
        hole0 = window.ice | ~np.isfinite(window.surface)
        dem = fill_nearest(window.surface).astype(np.float32)
        beds, n_tiles = [], 1
        for axes, dil in MEMBERS[:ensemble]:
            hole = ndimage.binary_dilation(hole0, iterations=dil) if dil else hole0
            d, h = (np.flip(dem, axes).copy(), np.flip(hole, axes).copy()) if axes else (dem, hole)
            bed, n_tiles = inpaint_sized(d, h, window.pixel_size_m, self.inpainter, self.tiling)
            beds.append(np.flip(bed, axes) if axes else bed)
        return Prediction(np.stack(beds), info={"n_tiles": n_tiles})


__all__ = ["GlacierWindow", "Prediction", "Plan", "plan_resolution", "ThicknessPredictor", "InpaintingPredictor", "TilingConfig",
           "inpaint_sized", "identity_of", "MEMBERS", "upsample_bilinear"]
