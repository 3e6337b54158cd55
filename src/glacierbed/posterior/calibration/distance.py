"""How far a glacier lies from the glaciers a calibration was fitted on, in attributes a user always has.

The attributes (:mod:`glacierbed.data.attributes`, from the surface DEM and the outline):
log10 area, elevation range, median elevation, mean slope, |latitude|, northness, log
hypsometric index and log10 pixel size, standardised on the fitted glaciers. The distance of
a glacier to one fitted glacier is the root-mean-square standardised difference per
attribute (attributes that are NaN, e.g. latitude where the CRS is unknown, are left out);
its distance to the fitted glaciers is the harmonic mean over the ``k`` nearest, so it is 0
at a fitted glacier's own attributes and grows as a glacier is unlike all of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from glacierbed.data.attributes import attributes_of_mask

#: per-glacier attribute columns of a table / keys of a feature mapping, in this order
DISTANCE_ATTRIBUTES: tuple[str, ...] = (
    "attr_log10_area_km2", "attr_z_range_m", "attr_z_median_m", "attr_slope_deg", "attr_abs_latitude_deg",
    "attr_northness", "attr_log_hypsometric_index", "attr_log10_pixel_size_m",
)


def distance_attributes(a: Mapping[str, float]) -> dict[str, float]:
    """:data:`DISTANCE_ATTRIBUTES` of one glacier from its :func:`glacierbed.data.attributes` row."""
    def log(v: float, base: float = np.e) -> float:
        v = float(v)
        return float(np.log(v) / np.log(base)) if np.isfinite(v) and v > 0 else float("nan")

    return {"attr_log10_area_km2": log(a["area_km2"], 10), "attr_z_range_m": float(a["z_range_m"]),
            "attr_z_median_m": float(a["z_median_m"]), "attr_slope_deg": float(a["slope_deg"]),
            "attr_abs_latitude_deg": abs(float(a["latitude_deg"])), "attr_northness": float(a["northness"]),
            "attr_log_hypsometric_index": log(a["hypsometric_index"]),
            "attr_log10_pixel_size_m": log(a["pixel_size_m"], 10)}


def window_attributes(surface: np.ndarray, ids: np.ndarray, pixel_size_m: float, where: np.ndarray,
                      latitude_deg: float = float("nan")) -> dict[str, np.ndarray]:
    """Per-pixel :data:`DISTANCE_ATTRIBUTES` of a window: each glacier label's attributes on its
    pixels inside ``where`` (NaN elsewhere); ``latitude_deg`` NaN leaves latitude out."""
    surface, ids = np.asarray(surface, float), np.asarray(ids)
    out = {n: np.full(ids.shape, np.nan) for n in DISTANCE_ATTRIBUTES}
    for label in np.unique(ids[np.asarray(where, bool) & (ids > 0)]):
        mask = ids == label
        vec = distance_attributes(attributes_of_mask(surface, mask, pixel_size_m, latitude_deg))
        on = mask & np.asarray(where, bool)
        for n in DISTANCE_ATTRIBUTES:
            out[n][on] = vec[n]
    return out


def attribute_matrix(features: Mapping[str, np.ndarray], n: int) -> np.ndarray:
    """(n, len(DISTANCE_ATTRIBUTES)) matrix of the attribute features; missing ones raise KeyError."""
    missing = [a for a in DISTANCE_ATTRIBUTES if a not in features]
    if missing:
        raise KeyError(f"glacier attributes missing: {', '.join(missing)} (see calibration.distance)")
    return np.stack([np.asarray(features[a], float).ravel() for a in DISTANCE_ATTRIBUTES], axis=1).reshape(n, -1)


def rms_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, p) root-mean-square difference per attribute between rows of ``a`` and ``b``, NaN attributes left out."""
    diff = a[:, None, :] - b[None, :, :]
    ok = np.isfinite(diff)
    n_ok = ok.sum(axis=2)
    ss = np.where(ok, diff, 0.0) ** 2
    return np.where(n_ok > 0, np.sqrt(ss.sum(axis=2) / np.maximum(n_ok, 1)), np.nan)


def harmonic_knn(dist: np.ndarray, k: int) -> np.ndarray:
    """Harmonic mean of each row's ``k`` smallest distances (0 when one of them is 0)."""
    d = np.sort(np.where(np.isfinite(dist), dist, np.inf), axis=1)[:, :max(1, min(k, dist.shape[1]))]
    with np.errstate(divide="ignore"):
        inv = np.where(d > 0, 1.0 / d, np.inf)
        h = d.shape[1] / inv.sum(axis=1)
    return np.where(np.isinf(d[:, 0]), np.nan, h)


@dataclass
class AttributeDistance:
    """The fitted glaciers' standardised attribute vectors and the distance of new glaciers to them."""

    k: int = 3
    mean: np.ndarray = field(default_factory=lambda: np.zeros(0))
    scale: np.ndarray = field(default_factory=lambda: np.ones(0))
    vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, len(DISTANCE_ATTRIBUTES))))

    def fit(self, raw: np.ndarray) -> "AttributeDistance":
        """``raw``: (n_glaciers, n_attributes) attribute vectors of the fitted glaciers."""
        raw = np.asarray(raw, float)
        self.mean = np.nanmean(raw, axis=0)
        sd = np.nanstd(raw, axis=0)
        self.scale = np.where(np.isfinite(sd) & (sd > 1e-9), sd, np.nan)  # constant attributes drop out
        self.vectors = self.standardise(raw)
        return self

    def standardise(self, raw: np.ndarray) -> np.ndarray:
        return (np.asarray(raw, float) - self.mean) / self.scale

    def distance(self, raw: np.ndarray, to: np.ndarray | None = None) -> np.ndarray:
        """Distance of each row of ``raw`` to the fitted glaciers (or to the standardised ``to``)."""
        raw = np.atleast_2d(np.asarray(raw, float))
        ref = self.vectors if to is None else to
        if raw.shape[0] == 0 or len(ref) == 0:
            return np.full(raw.shape[0], np.nan)
        keyed = np.nan_to_num(raw, nan=1e300)  # distinct glaciers only (a window has one per label)
        uniq, inverse = np.unique(keyed, axis=0, return_inverse=True)
        uniq = np.where(uniq == 1e300, np.nan, uniq)
        d = harmonic_knn(rms_distance(self.standardise(uniq), ref), self.k)
        return d[np.asarray(inverse).ravel()]

    def to_dict(self) -> dict[str, Any]:
        return {"names": list(DISTANCE_ATTRIBUTES), "k": self.k, "mean": self.mean.tolist(),
                "scale": self.scale.tolist(), "vectors": self.vectors.tolist()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "AttributeDistance":
        if tuple(d["names"]) != DISTANCE_ATTRIBUTES:
            raise ValueError(f"calibration distance on attributes {d['names']}, this glacierbed computes "
                             f"{list(DISTANCE_ATTRIBUTES)}")

        def arr(v: Any) -> np.ndarray:
            return np.array([np.nan if x is None else x for x in v], float)

        vectors = np.array([arr(v) for v in d["vectors"]], float).reshape(-1, len(DISTANCE_ATTRIBUTES))
        return cls(int(d["k"]), arr(d["mean"]), arr(d["scale"]), vectors)
