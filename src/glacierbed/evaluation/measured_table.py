"""Every measured thickness of the data kit in one table, and calibrations scored without leakage.

:func:`collect` runs the real pipeline (:func:`glacierbed.pipeline.estimate.estimate`, a given
model, physics on or off) once per example and samples, at every measurement, the
model's thickness ``mu`` and 1-sigma ``sigma`` (``thickness_std``), the per-pixel
features of :func:`glacierbed.posterior.calibration.calibration_features` and the baselines
(volume-area scaling, GlabTop, OGGM) on the same cells. Cases:

* ``south-glacier``: the ITMIX radar points (unit ``point``; points outside the outline
  are dropped and counted, as in :func:`glacierbed.evaluation.against_measurements.evaluate_points`);
* ``glathida-grids``: the measured cells of the 23 GlaThiDa grids (unit ``cell``);
* ``oetztal-means``: GlaThiDa's mean thickness of each matched Ötztal glacier (latest
  survey; unit ``glacier_mean``: one row per glacier, scored on the glacier's mean of the
  calibrated pixels, kept in ``pixels``);
* ``hintereisferner``: pixels only, a check of the volume against the Farinotti et al.
  (2019) consensus, which is a model, never a measurement: no row, never fitted on.

Every row and pixel carries a **glacier identity** (``group``, :func:`glacier_groups`):
RGI 5 ids become RGI 6 ids by number (divides ``_dNN`` join their parent), and outlines
placed on Earth reliably (the real cases, tier-A GlaThiDa grids) that overlap by more
than half are the same glacier, so South Glacier's radar and the grid RGI60-01.16195, or
the Ötztal survey of Gepatschferner and its grid, are one group and never sit on both
sides of a split. ``region`` is the RGI region.

Runs are cached under ``run_dir/<model tag>/<example>/`` (the estimate's own per-glacier
resume plus this table's ``key.json``) and ``run_dir/baselines/``: a rerun resumes.

:func:`cross_validate` refits a calibration without each glacier (``by="group"``) or each
region (``by="region"``) and predicts the held-out rows and pixels; :func:`score` turns
that into the acceptance metrics per case.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import geopandas as gpd
import numpy as np
import pandas as pd

from glacierbed.core.atomic import replacing, write_json
from glacierbed.posterior.calibration import (FEATURES_VERSION, MEAN_UNIT, Calibration, table_features,
                                    apply_to_rows, calibration_features, weighted_coverage)
from glacierbed.data.rasters import Raster
from glacierbed.core.errors import EmptySelectionError
from glacierbed.core.metrics import error_metrics, relative_error

log = logging.getLogger(__name__)

#: bump when the table's content changes (invalidates cached tables)
TABLE_VERSION = 2
CASES = ("south-glacier", "glathida-grids", "oetztal-means", "hintereisferner")
#: baselines sampled on the same rows (their maps cached per example, model-independent)
BASELINES = ("va_shaped", "glabtop", "oggm")
#: calibration variants scored by the benchmark
VARIANTS = ("none", "scale", "residual+scale", "scale+interval", "residual+scale+interval")
#: the Farinotti et al. (2019) consensus volume of Hintereisferner (a model, for checking only)
HEF_CONSENSUS_KM3 = 0.572
SOUTH_GLACIER_ID = "RGI60-01.16195"


# --------------------------------------------------------------------------------------
# glacier identity
# --------------------------------------------------------------------------------------
_RGI = re.compile(r"^RGI(\d)0-(\d\d)\.(\d{5})(?:_d\d+)?$")


def canonical_rgi6(rgi_id: str) -> str:
    """RGI 6 id of an RGI 5/6 id: same region and number, divides ``_dNN`` to their parent.

    (RGI 6.0 kept the RGI 5.0 numbers in region 11; GlaThiDa's RGI50 -> RGI60 link table
    agrees for every Ötztal glacier it covers, see ``benchmarks/validation.py``.) Other
    ids are returned unchanged.
    """
    m = _RGI.match(str(rgi_id).strip())
    return f"RGI60-{m.group(2)}.{m.group(3)}" if m else str(rgi_id)


def region_of(rgi_id: str) -> str:
    """RGI region ("01" .. "19") of an RGI id, "" if it is not one."""
    m = _RGI.match(canonical_rgi6(rgi_id))
    return m.group(2) if m else ""


def glacier_groups(entries: pd.DataFrame, min_overlap: float = 0.5) -> tuple[dict[tuple[str, str], str], pd.DataFrame]:
    """Glacier identity of every (example, rgi_id).

    ``entries``: columns ``example``, ``rgi_id``, ``geometry`` (EPSG:4326 or None) and
    ``located`` (True where the outline's absolute position is reliable). Union of (1) the
    same :func:`canonical_rgi6` id and (2) located outlines overlapping by more than
    ``min_overlap`` of the smaller one. The group is named by the smallest RGI 6 id in it.
    Returns the mapping and a report of every located pair that touches or overlaps
    (``relation``: "same id", "merged by location" or "neighbours (kept apart)").
    """
    keys = list(zip(entries["example"].astype(str), entries["rgi_id"].astype(str)))
    parent = {k: k for k in keys}

    def find(k: tuple[str, str]) -> tuple[str, str]:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    def union(a: tuple[str, str], b: tuple[str, str]) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    canon = {k: canonical_rgi6(k[1]) for k in keys}
    by_id: dict[str, tuple[str, str]] = {}
    for k in keys:
        if canon[k] in by_id:
            union(by_id[canon[k]], k)
        else:
            by_id[canon[k]] = k
    report = []
    loc = entries[entries["located"].astype(bool) & entries["geometry"].notna()].reset_index(drop=True)
    if len(loc) > 1:
        g = gpd.GeoDataFrame(loc, geometry="geometry", crs="EPSG:4326")
        g = g.to_crs(g.estimate_utm_crs()) if len(g) else g
        sindex = g.sindex
        for i in range(len(g)):
            gi = g.geometry.iloc[i]
            for j in sindex.query(gi, predicate="intersects"):
                if j <= i or g["example"].iloc[j] == g["example"].iloc[i]:
                    continue
                gj = g.geometry.iloc[j]
                inter = gi.intersection(gj).area
                frac = inter / max(min(gi.area, gj.area), 1e-9)
                ki = (str(g["example"].iloc[i]), str(g["rgi_id"].iloc[i]))
                kj = (str(g["example"].iloc[j]), str(g["rgi_id"].iloc[j]))
                same = canon[ki] == canon[kj]
                if frac > min_overlap:
                    union(ki, kj)
                relation = "same id" if same else ("merged by location" if frac > min_overlap
                                                    else "neighbours (kept apart)")
                report.append({"a": f"{ki[0]}:{ki[1]}", "b": f"{kj[0]}:{kj[1]}", "overlap_of_smaller": frac,
                               "relation": relation})
    members: dict[tuple[str, str], list[str]] = {}
    for k in keys:
        members.setdefault(find(k), []).append(canon[k])
    mapping = {k: min(members[find(k)]) for k in keys}
    return mapping, pd.DataFrame(report, columns=["a", "b", "overlap_of_smaller", "relation"])


# --------------------------------------------------------------------------------------
# the table
# --------------------------------------------------------------------------------------
@dataclass
class MeasuredSet:
    """``rows``: one per measurement; ``pixels``: every glacier pixel of the mean/volume cases."""

    rows: pd.DataFrame
    pixels: pd.DataFrame
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Grid:
    dem: Raster
    outlines: gpd.GeoDataFrame
    ids: np.ndarray
    mu: np.ndarray
    sigma: np.ndarray
    features: dict[str, np.ndarray]
    glaciers: pd.DataFrame


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-._" else "_" for c in str(name))


def model_tag(predictor: Any, physics: bool) -> str:
    """Folder name of a model's run: name, physics on/off, start of its identity hash."""
    return f"{_safe(predictor.name)}-{'physics' if physics else 'nophysics'}-{str(predictor.identity)[:10]}"


def _examples(cases: Sequence[str], glaciers: Sequence[str] | None) -> list[tuple[str, str]]:
    """(case, example name) pairs to run."""
    from glacierbed.data import registry

    out = []
    for case in cases:
        if case == "south-glacier":
            out.append((case, "south-glacier"))
        elif case == "oetztal-means":
            out.append((case, "oetztal"))
        elif case == "hintereisferner":
            out.append((case, "hintereisferner"))
        elif case == "glathida-grids":
            meta = registry.glathida_grids(glaciers)
            out += [(case, e) for e in meta["example"]]
        else:
            raise EmptySelectionError(f"unknown measured case {case!r}; choose from {', '.join(CASES)}")
    return out


def _read_case_inputs(example: str) -> tuple[Raster, gpd.GeoDataFrame, Any]:
    from glacierbed.data import registry
    from glacierbed.data.outlines import check_overlap, read_outlines
    from glacierbed.data.rasters import read_dem

    ex = registry.get_example(example)
    dem = read_dem(ex.dem)
    outlines = check_overlap(read_outlines(ex.outlines), dem).reset_index(drop=True)
    return dem, outlines, ex


def _run_grid(example: str, out: Path, predictor: Any, physics: bool, ensemble: int) -> _Grid:
    """The pipeline on one example (resumes in ``out``) and the feature maps on its DEM grid."""
    from glacierbed.data.outlines import rasterize_ids
    from glacierbed.pipeline.estimate import EstimateConfig, estimate
    from glacierbed.posterior.physics import PhysicsConfig

    dem, outlines, _ = _read_case_inputs(example)
    # the raw model: a shipped calibration was fitted on these very rows
    cfg = EstimateConfig(ensemble=ensemble, physics=PhysicsConfig() if physics else None, calibrate=False)
    res = estimate(dem, outlines, out, model=predictor, config=cfg, maps=False)
    bad = res.glaciers[res.glaciers["status"] != "ok"]
    if len(bad):
        log.warning("%s: %d glaciers failed: %s", example, len(bad), "; ".join(
            f"{r.rgi_id}: {r.message}" for r in bad.itertuples())[:300])
    thick = Raster.from_file(res.paths["thickness"])
    std = Raster.from_file(res.paths["thickness_std"])
    if not thick.same_grid(dem):
        raise EmptySelectionError(f"{example}: estimate wrote another grid than the DEM")
    inside_dem = np.isfinite(dem.data)
    # like the benchmark maps: 0 off the glaciers, NaN off the DEM
    mu = np.where(inside_dem, np.nan_to_num(thick.data), np.nan)
    sigma = np.where(inside_dem, np.nan_to_num(std.data), np.nan)
    ids = rasterize_ids(outlines, dem)
    feats = calibration_features(dem.data, ids, dem.res[0], np.nan_to_num(mu), np.nan_to_num(sigma))
    return _Grid(dem, outlines, ids, mu, sigma, feats, res.glaciers)


def _baseline_maps(example: str, cache: Path, with_oggm: bool = True) -> dict[str, np.ndarray]:
    """VA (shaped), GlabTop and OGGM thickness maps on the example's DEM grid (cached npz)."""
    from glacierbed.core.atomic import write_bytes

    path = cache / f"{_safe(example)}.npz"
    if path.exists():
        with np.load(path) as z:
            maps = {k: z[k] for k in z.files}
        if with_oggm or "oggm" not in BASELINES:
            return maps
    import io

    from glacierbed.evaluation.benchmark import run_methods

    dem, outlines, _ = _read_case_inputs(example)
    res = run_methods(dem, outlines, with_oggm=with_oggm, with_physics=False, only=BASELINES)
    maps = {}
    for name in BASELINES:
        r = res.get(name)
        maps[name] = (r.thickness.data.astype(np.float32) if r is not None and r.thickness is not None
                      else np.full(dem.shape, np.nan, np.float32))
        if r is not None and r.thickness is None:
            log.warning("%s: baseline %s: %s", example, name, r.status)
    buf = io.BytesIO()
    np.savez_compressed(buf, **maps)
    write_bytes(path, buf.getvalue())
    return maps


def _sample(grid: Raster, arrays: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    return {k: grid.with_data(np.asarray(v, np.float32)).sample(x, y) for k, v in arrays.items()}


def _points_rows(case: str, example: str, grid: _Grid, obs: gpd.GeoDataFrame, unit: str,
                 base: dict[str, np.ndarray]) -> tuple[pd.DataFrame, dict[str, int]]:
    from glacierbed.data.observations import match_points_to_glaciers

    pts = obs.to_crs(grid.dem.crs)
    x, y = pts.geometry.x.to_numpy(), pts.geometry.y.to_numpy()
    rgi = match_points_to_glaciers(pts, grid.outlines)["rgi_id"].to_numpy(object)
    vals = _sample(grid.dem, {"mu": grid.mu, "sigma": grid.sigma, **grid.features,
                              **{f"base_{k}": v for k, v in base.items()}}, x, y)
    df = pd.DataFrame({"case": case, "example": example, "unit": unit, "obs_id": np.arange(len(pts)),
                       "rgi_id": rgi, "x": x, "y": y, "obs": pts["thickness_m"].to_numpy(float), **vals,
                       "pixel_area_m2": grid.dem.pixel_area_m2})
    outside = pd.isna(df["rgi_id"]).to_numpy()
    no_pred = ~outside & ~np.isfinite(df["mu"].to_numpy(float))
    counts = {"n_measurements": int(len(df)), "n_outside_outlines": int(outside.sum()),
              "n_no_prediction": int(no_pred.sum())}
    return df[~outside & ~no_pred].reset_index(drop=True), counts


def _glacier_pixels(case: str, example: str, grid: _Grid) -> pd.DataFrame:
    ok = (grid.ids > 0) & np.isfinite(grid.dem.data)
    gid = grid.ids[ok]
    df = pd.DataFrame({"case": case, "example": example,
                       "rgi_id": grid.outlines["rgi_id"].to_numpy(object)[gid - 1],
                       "mu": grid.mu[ok], "sigma": grid.sigma[ok],
                       **{k: v[ok] for k, v in grid.features.items()}, "pixel_area_m2": grid.dem.pixel_area_m2})
    return df


def _mean_rows(case: str, example: str, grid: _Grid, pixels: pd.DataFrame, base: dict[str, np.ndarray]
               ) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One row per glacier with a GlaThiDa mean thickness (latest survey)."""
    from glacierbed.data import registry
    from glacierbed.data.observations import match_glathida_to_outlines, read_glathida_glaciers

    glathida = read_glathida_glaciers(registry.get_file("glathida/glacier.csv"))
    m = match_glathida_to_outlines(glathida, grid.outlines)
    m = m[m["latest"].astype(bool)]
    ok = (grid.ids > 0) & np.isfinite(grid.dem.data)
    rows = []
    for s in m.itertuples(index=False):
        gi = int(np.flatnonzero(grid.outlines["rgi_id"].to_numpy(object) == s.rgi_id)[0]) + 1
        own = ok & (grid.ids == gi)
        px = pixels[pixels["rgi_id"] == s.rgi_id]
        rows.append({"case": case, "example": example, "unit": MEAN_UNIT, "obs_id": int(s.id), "rgi_id": s.rgi_id,
                     "survey_name": s.name, "survey_year": s.year, "obs": float(s.mean_thickness),
                     "mu": float(px["mu"].mean()), "sigma": float(px["sigma"].mean()),
                     "n_pixels": int(own.sum()), "pixel_area_m2": grid.dem.pixel_area_m2,
                     **{f"base_{k}": float(np.nanmean(np.where(own, v, np.nan))) for k, v in base.items()}})
    unmatched = m.attrs.get("unmatched", pd.DataFrame())
    info = {"n_matched": len(rows),
            "unmatched": [] if not len(unmatched) else
            [f"{r['name']} ({r['reason']})" for _, r in unmatched.iterrows()]}
    return pd.DataFrame(rows), info


def _hef_info(grid: _Grid, base: dict[str, np.ndarray]) -> dict[str, Any]:
    from glacierbed.evaluation import baselines
    from glacierbed.data import registry
    from glacierbed.evaluation.against_measurements import glacier_volumes

    ex = registry.get_example("hintereisferner")
    cons = baselines.external_thickness(ex.consensus, grid.dem, grid.outlines)
    vol = float(glacier_volumes(cons, grid.outlines)["volume_km3"].sum())
    own = (grid.ids > 0) & np.isfinite(grid.dem.data)
    px = grid.dem.pixel_area_m2
    return {"consensus_volume_km3": vol, "consensus_volume_reference_km3": HEF_CONSENSUS_KM3,
            "baseline_volume_km3": {k: float(np.nansum(np.where(own, v, 0.0)) * px / 1e9) for k, v in base.items()}}


def _example_key(example: str, identity: str, physics: bool, ensemble: int, baselines: bool) -> str:
    """Hash of what changes an example's table (the physics stage's settings included)."""
    from glacierbed import __version__
    from glacierbed.core.config import config_to_dict
    from glacierbed.posterior.physics import PhysicsConfig

    h = hashlib.sha256(json.dumps({"table": TABLE_VERSION, "features": FEATURES_VERSION, "example": example,
                                   "model": identity, "ensemble": ensemble, "baselines": baselines,
                                   "physics": config_to_dict(PhysicsConfig()) if physics else None,
                                   "glacierbed": __version__}, sort_keys=True, default=str).encode())
    return h.hexdigest()[:20]


def _write_csv(path: Path, df: pd.DataFrame) -> None:
    with replacing(path) as tmp:
        df.to_csv(tmp, index=False, float_format="%.10g")


def _read_csv(path: Path) -> pd.DataFrame:
    if path.stat().st_size <= 1:
        return pd.DataFrame()
    return pd.read_csv(path, dtype={"rgi_id": str, "group": str, "region": str})


def _collect_example(case: str, example: str, root: Path, base_dir: Path, predictor: Any, physics: bool,
                     ensemble: int, baselines: bool, fresh: bool = False
                     ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Rows/pixels of one example, from the cache when its key matches."""
    from glacierbed.data import registry
    from glacierbed.data.observations import read_points, read_thickness_grid

    folder = root / _safe(example)
    key = _example_key(example, predictor.identity, physics, ensemble, baselines)
    key_path = folder / "key.json"
    if key_path.exists() and not fresh:
        stored = json.loads(key_path.read_text())
        if stored.get("key") == key and (folder / "rows.csv").exists() and (folder / "pixels.csv").exists():
            rows, pixels = _read_csv(folder / "rows.csv"), _read_csv(folder / "pixels.csv")
            return rows, pixels, stored.get("info", {})
    t0 = time.perf_counter()
    grid = _run_grid(example, folder / "estimate", predictor, physics, ensemble)
    base = _baseline_maps(example, base_dir) if baselines else {}
    ex = registry.get_example(example)
    info: dict[str, Any] = {"example": example, "case": case, "dem_resolution_m": grid.dem.res[0],
                            "n_glaciers": int(len(grid.outlines))}
    pixels = pd.DataFrame()
    if case == "south-glacier":
        rows, counts = _points_rows(case, example, grid, read_points(ex.observations), "point", base)
        info.update(counts)
    elif case == "glathida-grids":
        rows, counts = _points_rows(case, example, grid, read_thickness_grid(ex.observations), "cell", base)
        info.update(counts)
        meta = registry.glathida_grid_meta(example.removeprefix(registry.GLATHIDA_EXAMPLE_PREFIX))
        info["location_tier"] = meta.get("location_tier")
        rows["name"] = meta.get("name")
    elif case == "oetztal-means":
        pixels = _glacier_pixels(case, example, grid)
        rows, minfo = _mean_rows(case, example, grid, pixels, base)
        info.update(minfo)
    elif case == "hintereisferner":
        pixels = _glacier_pixels(case, example, grid)
        rows = pd.DataFrame()
        info.update(_hef_info(grid, base))
    else:
        raise EmptySelectionError(f"unknown case {case!r}")
    info["model_volume_km3"] = float(grid.glaciers["volume_km3"].sum())
    info["seconds"] = time.perf_counter() - t0
    _write_csv(folder / "rows.csv", rows)
    _write_csv(folder / "pixels.csv", pixels)
    write_json(key_path, {"key": key, "info": info})
    return rows, pixels, info


def _identity_entries(pairs: Sequence[tuple[str, str]]) -> pd.DataFrame:
    """(example, rgi_id, WGS84 outline, located) of every outline of the examples run."""
    from glacierbed.data import registry
    from glacierbed.data.outlines import read_outlines

    out = []
    for case, example in pairs:
        ex = registry.get_example(example)
        o = read_outlines(ex.outlines).to_crs("EPSG:4326")
        located = True
        if case == "glathida-grids":
            tier = registry.glathida_grid_meta(example.removeprefix(registry.GLATHIDA_EXAMPLE_PREFIX)).get(
                "location_tier")
            located = tier == "A"
        for rid, geom in zip(o["rgi_id"].astype(str), o.geometry):
            out.append({"example": example, "rgi_id": rid, "geometry": geom, "located": located})
    return pd.DataFrame(out)


def collect(run_dir: str | Path, model: Any = None, physics: bool = True, *, cases: Sequence[str] = CASES,
            glaciers: Sequence[str] | None = None, ensemble: int = 4, baselines: bool = True,
            fresh: bool = False) -> MeasuredSet:
    """The measured table of the kit for one model (see the module docstring).

    ``model``: a name/path for :func:`glacierbed.pipeline.store.load_predictor` (None = the
    shipped default) or a predictor; ``physics``: the physics stage on/off; ``glaciers``:
    a subset of the GlaThiDa grids (RGI ids); ``baselines``: sample VA/GlabTop/OGGM too.
    Cached in ``run_dir`` (resumes); ``fresh`` ignores the cached tables (the estimate
    still resumes its glaciers when their own key matches).
    """
    from glacierbed.pipeline.store import load_predictor

    t0 = time.perf_counter()
    predictor = load_predictor(model)
    run_dir = Path(run_dir)
    root = run_dir / model_tag(predictor, physics)
    pairs = _examples(cases, glaciers)
    all_rows, all_pixels, infos = [], [], {}
    for case, example in pairs:
        rows, pixels, info = _collect_example(case, example, root, run_dir / "baselines", predictor, physics,
                                              ensemble, baselines, fresh)
        log.info("%s: %d rows, %d pixels", example, len(rows), len(pixels))
        all_rows.append(rows)
        all_pixels.append(pixels)
        infos[example] = info
    rows = pd.concat([r for r in all_rows if len(r)], ignore_index=True) if any(len(r) for r in all_rows) \
        else pd.DataFrame(columns=["case", "example", "unit", "rgi_id", "obs", "mu", "sigma"])
    pixels = pd.concat([p for p in all_pixels if len(p)], ignore_index=True) if any(len(p) for p in all_pixels) \
        else pd.DataFrame(columns=["case", "example", "rgi_id", "mu", "sigma"])
    mapping, report = glacier_groups(_identity_entries(pairs))
    for df in (rows, pixels):
        keys = list(zip(df["example"].astype(str), df["rgi_id"].astype(str)))
        df["group"] = [mapping.get(k, canonical_rgi6(k[1])) for k in keys]
        df["region"] = [region_of(g) for g in df["group"]]
    info = {"model": predictor.name, "model_arg": None if model is None else str(model),
            "model_identity": predictor.identity, "physics": physics, "ensemble": ensemble, "run_dir": str(root),
            "examples": infos, "identity_report": report.to_dict("records"),
            "seconds": time.perf_counter() - t0}
    return MeasuredSet(rows, pixels, info)


# --------------------------------------------------------------------------------------
# leave-one-glacier/region-out
# --------------------------------------------------------------------------------------
@dataclass
class CrossValidation:
    """Out-of-fold predictions of one calibration variant.

    ``rows``: the measured rows with ``mu_cal``, ``sigma_cal``, ``z90`` and ``fold`` (the
    held-out label whose fit predicted them); glacier-mean rows take the mean of their
    glacier's calibrated pixels (``sigma_cal``: :meth:`Calibration.glacier_mean_std`,
    ``z90``: the glacier-level 90 % multiplier). ``glaciers``: per glacier of ``pixels``:
    calibrated mean thickness, volume and their 1-sigma.
    """

    variant: str
    by: str
    rows: pd.DataFrame
    glaciers: pd.DataFrame
    fits: dict[str, dict[str, Any]] = field(default_factory=dict)


def predict_glaciers(cal: Calibration, pixels: pd.DataFrame) -> pd.DataFrame:
    """Per glacier of ``pixels``: calibrated mean thickness, its 1-sigma, volume and its 1-sigma."""
    out = []
    if len(pixels) == 0:
        return pd.DataFrame(columns=["case", "example", "rgi_id", "group", "region", "mean_thickness_m",
                                     "mean_thickness_std_m", "volume_km3", "volume_std_km3", "n_pixels"])
    mu, sigma = cal.apply(pixels["mu"].to_numpy(float), pixels["sigma"].to_numpy(float), table_features(pixels))
    p = pixels.assign(mu_cal=mu, sigma_cal=sigma)
    for (example, rid), g in p.groupby(["example", "rgi_id"], sort=False):
        area = g["pixel_area_m2"].to_numpy(float)
        out.append({"case": g["case"].iloc[0], "example": example, "rgi_id": rid, "group": g["group"].iloc[0],
                    "region": g["region"].iloc[0], "mean_thickness_m": float(np.nanmean(g["mu_cal"])),
                    "mean_thickness_std_m": cal.glacier_mean_std(g["sigma_cal"].to_numpy(float)),
                    "z90": cal.glacier_z90,
                    "volume_km3": float(np.nansum(g["mu_cal"].to_numpy(float) * area) / 1e9),
                    "volume_std_km3": cal.volume_std_km3(g["sigma_cal"].to_numpy(float), float(area[0])),
                    "n_pixels": int(len(g))})
    return pd.DataFrame(out)


def cross_validate(ms: MeasuredSet, variant: str | Callable[[], Calibration], by: str = "group",
                   progress: Callable[[str], None] | None = None) -> CrossValidation:
    """Refit ``variant`` without each glacier (``by="group"``) or region (``by="region"``).

    Every row and pixel is predicted by the one fit that did not see its ``by`` label (a
    glacier's radar, grid and mean all left out together). Labels that only have pixels
    (no measurement) are predicted by the fit on all rows.
    """
    make = (lambda: Calibration.variant(variant)) if isinstance(variant, str) else variant
    name = variant if isinstance(variant, str) else make().name
    rows, pixels = ms.rows.reset_index(drop=True), ms.pixels.reset_index(drop=True)
    labels = sorted(set(rows[by].astype(str)) | set(pixels[by].astype(str)))
    out_rows, out_glaciers, fits = [], [], {}
    for held in labels:
        train = rows[rows[by].astype(str) != held]
        cal = make().fit(train, pixels)
        fits[held] = {"steps": [{k: v for k, v in s.to_dict().items() if k not in ("trees", "hyperparameters")}
                                for s in cal.steps], "n_train_rows": int(len(train))}
        test = rows[rows[by].astype(str) == held]
        if len(test):
            pred = apply_to_rows(cal.steps, test, pixels)
            out_rows.append(test.assign(mu_cal=pred["mu"].to_numpy(), sigma_cal=pred["sigma"].to_numpy(),
                                        z90=cal.z90, fold=held))
        px = pixels[pixels[by].astype(str) == held]
        if len(px):
            out_glaciers.append(predict_glaciers(cal, px).assign(fold=held))
        if progress:
            progress(held)
    oof = pd.concat(out_rows, ignore_index=True) if out_rows else rows.assign(mu_cal=np.nan, sigma_cal=np.nan)
    gl = pd.concat(out_glaciers, ignore_index=True) if out_glaciers else predict_glaciers(Calibration(), pixels)
    # glacier-mean rows: their glacier's calibrated pixels
    is_mean = (oof["unit"] == MEAN_UNIT).to_numpy()
    if is_mean.any():
        idx = gl.set_index(["example", "rgi_id"])
        keys = list(zip(oof.loc[is_mean, "example"], oof.loc[is_mean, "rgi_id"]))
        oof.loc[is_mean, "mu_cal"] = [idx.loc[k, "mean_thickness_m"] if k in idx.index else np.nan for k in keys]
        oof.loc[is_mean, "sigma_cal"] = [idx.loc[k, "mean_thickness_std_m"] if k in idx.index else np.nan
                                         for k in keys]
        oof.loc[is_mean, "z90"] = [idx.loc[k, "z90"] if k in idx.index else np.nan for k in keys]
    return CrossValidation(name, by, oof, gl, fits)


# --------------------------------------------------------------------------------------
# scores
# --------------------------------------------------------------------------------------
def _coverage(df: pd.DataFrame, weights: np.ndarray | None = None) -> dict[str, float]:
    e = (df["mu_cal"] - df["obs"]).abs().to_numpy(float)
    s = df["sigma_cal"].to_numpy(float)
    z = df["z90"].to_numpy(float)
    return {"coverage68": weighted_coverage(e, s, weights), "coverage90": weighted_coverage(e, z * s, weights)}


def glathida_per_glacier(cv: CrossValidation) -> pd.DataFrame:
    """Per GlaThiDa grid glacier: calibrated RMSE, coverage and the baselines on the same cells."""
    r = cv.rows[cv.rows["case"] == "glathida-grids"]
    out = []
    for rid, g in r.groupby("rgi_id", sort=True):
        row = {"rgi_id": rid, "name": g["name"].iloc[0] if "name" in g else "", "region": g["region"].iloc[0],
               "group": g["group"].iloc[0], **{k: v for k, v in error_metrics(g["mu_cal"], g["obs"]).items()
                                               if k in ("n", "rmse", "mae", "bias")}, **_coverage(g)}
        for b in BASELINES:
            if f"base_{b}" in g:
                row[f"rmse_{b}"] = error_metrics(g[f"base_{b}"], g["obs"])["rmse"]
        bases = {b: row.get(f"rmse_{b}", np.nan) for b in BASELINES}
        finite = {b: v for b, v in bases.items() if np.isfinite(v)}
        row["best_baseline"] = min(finite, key=finite.get) if finite else ""
        row["best_baseline_rmse"] = min(finite.values()) if finite else np.nan
        row["ratio_to_best_baseline"] = row["rmse"] / row["best_baseline_rmse"] if finite else np.nan
        out.append(row)
    return pd.DataFrame(out)


def glathida_regions(per_glacier: pd.DataFrame) -> pd.DataFrame:
    """Per RGI region: median RMSE of the calibrated model and of each baseline, the best baseline."""
    rows = []
    for reg, g in per_glacier.groupby("region", sort=True):
        row = {"region": reg, "n_glaciers": len(g), "median_rmse": float(g["rmse"].median())}
        for b in BASELINES:
            if f"rmse_{b}" in g:
                row[f"median_rmse_{b}"] = float(g[f"rmse_{b}"].median())
        finite = {b: row[f"median_rmse_{b}"] for b in BASELINES
                  if f"median_rmse_{b}" in row and np.isfinite(row[f"median_rmse_{b}"])}
        row["best_baseline"] = min(finite, key=finite.get) if finite else ""
        row["best_baseline_median_rmse"] = min(finite.values()) if finite else np.nan
        row["ratio"] = row["median_rmse"] / row["best_baseline_median_rmse"] if finite else np.nan
        row["median_ratio_per_glacier"] = float(g["ratio_to_best_baseline"].median())
        rows.append(row)
    return pd.DataFrame(rows)


def _pooled_row(rows: pd.DataFrame, case: str, unit: str) -> dict[str, Any]:
    """Acceptance metrics of one case scored over all its rows, with the baselines on the same rows."""
    m = error_metrics(rows["mu_cal"], rows["obs"])
    return {"case": case, "unit": unit, "n": m["n"], "rmse": m["rmse"], "mae": m["mae"], "bias": m["bias"],
            **_coverage(rows), **{f"rmse_{b}": error_metrics(rows[f"base_{b}"], rows["obs"])["rmse"]
                                  for b in BASELINES if f"base_{b}" in rows}}


def score(cv: CrossValidation) -> pd.DataFrame:
    """One row per case with the acceptance metrics (RMSE, bias, ratios, coverage 68/90)."""
    out = []
    r = cv.rows
    sg = r[r["case"] == "south-glacier"]
    if len(sg):
        out.append(_pooled_row(sg, "south-glacier", "radar points"))
    gg = r[r["case"] == "glathida-grids"]
    if len(gg):
        pg = glathida_per_glacier(cv)
        reg = glathida_regions(pg)
        pooled = error_metrics(gg["mu_cal"], gg["obs"])
        base_medians = {b: float(pg[f"rmse_{b}"].median()) for b in BASELINES if f"rmse_{b}" in pg}
        best_median = min(base_medians.values()) if base_medians else np.nan
        out.append({"case": "glathida-grids", "unit": "glaciers (median of per-glacier RMSE)", "n": len(pg),
                    "rmse": float(pg["rmse"].median()), "mae": float(pg["mae"].median()),
                    "bias": float(pg["bias"].median()), **_coverage(gg, _cell_weights(gg)),
                    **{f"{k}_cells": v for k, v in _coverage(gg).items()},
                    "pooled_rmse": pooled["rmse"],
                    "median_ratio_to_best_baseline": float(pg["ratio_to_best_baseline"].median()),
                    "ratio_to_best_baseline_median": float(pg["rmse"].median()) / best_median,
                    "regions_worse_than_best_baseline": int((reg["ratio"] > 1).sum()),
                    "worst_region_ratio": float(reg["ratio"].max()),
                    **{f"rmse_{b}": v for b, v in base_medians.items()}})
    oz = r[r["case"] == "oetztal-means"]
    if len(oz):
        out.append(_pooled_row(oz, "oetztal-means", "glacier means"))
    hef = cv.glaciers[cv.glaciers["case"] == "hintereisferner"] if len(cv.glaciers) else pd.DataFrame()
    if len(hef):
        v, s = float(hef["volume_km3"].sum()), float(hef["volume_std_km3"].sum())
        e = abs(v - HEF_CONSENSUS_KM3)
        out.append({"case": "hintereisferner", "unit": "volume vs consensus (km3)", "n": 1, "volume_km3": v,
                    "volume_std_km3": s, "rel_error_volume": relative_error(v, HEF_CONSENSUS_KM3),
                    "coverage68": float(e <= s), "coverage90": float(e <= float(hef["z90"].iloc[0]) * s)})
    return pd.DataFrame(out)


def _cell_weights(df: pd.DataFrame) -> np.ndarray:
    """Each glacier equal (for coverage over the GlaThiDa grids)."""
    n = df["rgi_id"].map(df["rgi_id"].value_counts()).to_numpy(float)
    return 1.0 / n


__all__ = ["CASES", "BASELINES", "VARIANTS", "HEF_CONSENSUS_KM3", "MeasuredSet", "CrossValidation",
           "canonical_rgi6", "region_of", "glacier_groups", "model_tag", "collect", "cross_validate",
           "predict_glaciers", "score", "glathida_per_glacier", "glathida_regions"]
