"""Every measured thickness of the data kit in one table, with the model's thickness and the baselines.

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
* ``alps-means`` (opt-in): the same for the other region-11 glaciers (:func:`alps_mean_surveys`),
  each on its rgi11-alps tile + neighbouring tiles (``rgi11-alps-<RGI id>``); baselines on it alone;
* ``hintereisferner``: pixels only, a check of the volume against the Farinotti et al.
  (2019) consensus, which is a model, never a measurement: no row, never fitted on.

Every row and pixel carries a **glacier identity** (``group``,
:func:`glacierbed.evaluation.glacier_identity.glacier_groups`): RGI 5 ids become RGI 6 ids
by number (divides ``_dNN`` join their parent), and outlines placed on Earth reliably (the
real cases, tier-A GlaThiDa grids) that overlap by more than half are the same glacier, so
South Glacier's radar and the grid RGI60-01.16195, or the Ötztal survey of Gepatschferner
and its grid, are one group and never sit on both sides of a split. ``region`` is the RGI region.

Runs are cached under ``run_dir/<model tag>/<example>/`` (the estimate's own per-glacier
resume plus this table's ``key.json``) and ``run_dir/baselines/``: a rerun resumes.
:mod:`glacierbed.evaluation.cross_validation` refits a calibration without each glacier or region.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import geopandas as gpd
import numpy as np
import pandas as pd

from glacierbed.core.atomic import replacing
from glacierbed.core.errors import EmptySelectionError
from glacierbed.core.parallel import OK, Checkpoint, Stored
from glacierbed.data.examples import RGI11_EXAMPLE_PREFIX, read_case_inputs
from glacierbed.data.rasters import Raster
from glacierbed.evaluation.glacier_identity import canonical_rgi6, glacier_groups, identity_entries, region_of
from glacierbed.evaluation.glathida_means import ALPS_MAX_PIXELS, alps_mean_surveys, pixel_sample
from glacierbed.evaluation.in_sample import seen_glaciers
from glacierbed.pipeline.workflow import safe_id
from glacierbed.posterior.physics_config import PhysicsConfig, as_physics_config
from glacierbed.posterior.calibration import FEATURES_VERSION, MEAN_UNIT, calibration_features

log = logging.getLogger(__name__)

#: bump when the table's content changes (invalidates cached tables)
TABLE_VERSION = 2
CASES = ("south-glacier", "glathida-grids", "oetztal-means", "hintereisferner")
#: cases run only when asked for (``collect(cases=...)``)
OPTIONAL_CASES = ("alps-means",)
#: baselines sampled on the same rows (their maps cached per example, model-independent)
BASELINES = ("va_shaped", "glabtop", "oggm")
#: the Farinotti et al. (2019) consensus volume of Hintereisferner (a model, for checking only)
HEF_CONSENSUS_KM3 = 0.572


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


def model_tag(predictor: Any, physics: Any) -> str:
    """Folder name of a model's run: name, physics on/off (+ a hash of non-default settings), start of its identity."""
    cfg = as_physics_config(physics)
    on = "nophysics" if cfg is None else "physics" if cfg == PhysicsConfig() else (
        "physics-" + hashlib.sha256(cfg.to_yaml().encode()).hexdigest()[:8])
    return f"{safe_id(predictor.name)}-{on}-{str(predictor.identity)[:10]}"


def _examples(cases: Sequence[str], glaciers: Sequence[str] | None) -> list[tuple[str, str]]:
    """(case, example name) pairs to run (grids of held-out GlaThiDa surveys left out)."""
    from glacierbed.data import registry
    from glacierbed.data.observations import held_out_glathida_ids

    out = []
    for case in cases:
        if case == "south-glacier":
            out.append((case, "south-glacier"))
        elif case == "oetztal-means":
            out.append((case, "oetztal"))
        elif case == "hintereisferner":
            out.append((case, "hintereisferner"))
        elif case == "alps-means":
            out += [(case, RGI11_EXAMPLE_PREFIX + r) for r in alps_mean_surveys()["rgi_id"]
                    if glaciers is None or r in glaciers]
        elif case == "glathida-grids":
            held = held_out_glathida_ids()  # never fitted on: blind validation
            out += [(case, e) for e in registry.glathida_grids(glaciers)["example"]
                    if registry.glathida_grid_meta(e.removeprefix(registry.GLATHIDA_EXAMPLE_PREFIX)).get(
                        "glathida_glacier_id") not in held]
        else:
            raise EmptySelectionError(f"unknown measured case {case!r}; choose from {', '.join(CASES + OPTIONAL_CASES)}")
    return out


def _run_grid(example: str, out: Path, predictor: Any, physics: Any, ensemble: int, smb: Path | None = None) -> _Grid:
    """The pipeline on one example (resumes in ``out``) and the feature maps on its DEM grid; ``smb``: its
    surface mass-balance raster, given to the estimate as a user's ``--smb``."""
    from glacierbed.data.outlines import rasterize_ids
    from glacierbed.pipeline.estimate import EstimateConfig, estimate

    dem, outlines, _ = read_case_inputs(example)
    # the raw model: a shipped calibration was fitted on these very rows
    cfg = EstimateConfig(ensemble=ensemble, physics=as_physics_config(physics), calibrate=False)
    res = estimate(dem, outlines, out, model=predictor, config=cfg, maps=False, smb=smb)
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


def baseline_maps(example: str, cache: Path, with_oggm: bool = True) -> dict[str, np.ndarray]:
    """VA (shaped), GlabTop and OGGM thickness maps on the example's DEM grid (cached npz)."""
    path = cache / f"{safe_id(example)}.npz"
    if path.exists():
        with np.load(path) as z:
            maps = {k: z[k] for k in z.files}
        if with_oggm or "oggm" not in BASELINES:
            return maps
    from glacierbed.evaluation.methods import run_methods

    dem, outlines, ex = read_case_inputs(example)
    if ex.glaciers:  # only these are scored
        outlines = outlines[outlines["rgi_id"].isin(ex.glaciers)]
    res = run_methods(dem, outlines, with_oggm=with_oggm, with_physics=False, only=BASELINES)
    maps = {}
    for name in BASELINES:
        r = res.get(name)
        maps[name] = (r.thickness.data.astype(np.float32) if r is not None and r.thickness is not None
                      else np.full(dem.shape, np.nan, np.float32))
        if r is not None and r.thickness is None:
            log.warning("%s: baseline %s: %s", example, name, r.status)
    with replacing(path, keep_suffix=True) as tmp:
        np.savez_compressed(tmp, **maps)
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


def _mean_rows(case: str, example: str, grid: _Grid, pixels: pd.DataFrame, base: dict[str, np.ndarray],
               matched: pd.DataFrame | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One row per glacier with a GlaThiDa mean thickness (latest survey; ``matched``: surveys already
    matched, e.g. region-wide, so a match on the area's edge is not redone in another CRS)."""
    from glacierbed.data import registry
    from glacierbed.data.observations import match_glathida_to_outlines, read_glathida_glaciers

    m = matched
    if m is None:
        glathida = read_glathida_glaciers(registry.get_file("glathida/glacier.csv"), for_fitting=True)
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


def _example_key(example: str, identity: str, physics: Any, ensemble: int, baselines: bool, smb: Path | None) -> str:
    """Hash of what changes an example's table (the physics stage's settings and an SMB raster included)."""
    from glacierbed import __version__
    from glacierbed.core.config import config_to_dict

    h = hashlib.sha256(json.dumps({"table": TABLE_VERSION, "features": FEATURES_VERSION, "example": example,
                                   "model": identity, "ensemble": ensemble, "baselines": baselines,
                                   "physics": config_to_dict(as_physics_config(physics)) if physics else None,
                                   "glacierbed": __version__, **({"max_pixels": ALPS_MAX_PIXELS, "match": 2} if example.startswith(
                                       RGI11_EXAMPLE_PREFIX) else {}),
                                   **({"smb": smb.name} if smb is not None else {})}, sort_keys=True,
                                  default=str).encode())
    return h.hexdigest()[:20]


def _write_csv(path: Path, df: pd.DataFrame) -> None:
    with replacing(path) as tmp:
        df.to_csv(tmp, index=False, float_format="%.10g")


def _read_csv(path: Path) -> pd.DataFrame:
    if path.stat().st_size <= 1:
        return pd.DataFrame()
    return pd.read_csv(path, dtype={"rgi_id": str, "group": str, "region": str})


def _case_rows(case: str, example: str, grid: _Grid, base: dict[str, np.ndarray]
               ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Rows, pixels and info of one example of a case, from its estimate grid."""
    from glacierbed.data import registry
    from glacierbed.data.observations import read_points, read_thickness_grid

    ex = registry.get_example(example)
    info: dict[str, Any] = {}
    pixels = pd.DataFrame()
    if case == "south-glacier":
        rows, info = _points_rows(case, example, grid, read_points(ex.observations), "point", base)
    elif case == "glathida-grids":
        rows, info = _points_rows(case, example, grid, read_thickness_grid(ex.observations), "cell", base)
        meta = registry.glathida_grid_meta(example.removeprefix(registry.GLATHIDA_EXAMPLE_PREFIX))
        info["location_tier"] = meta.get("location_tier")
        rows["name"] = meta.get("name")
    elif case in ("oetztal-means", "hintereisferner"):
        pixels = _glacier_pixels(case, example, grid)
        rows, info = _mean_rows(case, example, grid, pixels, base) if case == "oetztal-means" else \
            (pd.DataFrame(), _hef_info(grid, base))
    elif case == "alps-means":  # one glacier per example; its neighbours only give it context
        (target,) = ex.glaciers
        pixels = _glacier_pixels(case, example, grid)
        pixels = pixel_sample(pixels[pixels["rgi_id"] == target].reset_index(drop=True), target)
        surveys = alps_mean_surveys()
        rows, info = _mean_rows(case, example, grid, pixels, base, surveys[surveys["rgi_id"] == target])
    else:
        raise EmptySelectionError(f"unknown case {case!r}")
    return rows, pixels, info


def _collect_example(case: str, example: str, root: Path, base_dir: Path, predictor: Any, physics: Any,
                     ensemble: int, baselines: bool, fresh: bool = False, smb: Path | None = None
                     ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Rows/pixels of one example, reused under the one resume rule (key + sha256 of the tables); ``smb``: its
    SMB raster given to the estimate (run in a folder of its own, beside the run without)."""
    folder = root / (safe_id(example) + ("-smb" if smb is not None else ""))
    key = _example_key(example, predictor.identity, physics, ensemble, baselines, smb)
    files = {"rows": folder / "rows.csv", "pixels": folder / "pixels.csv"}
    checkpoint = Checkpoint(folder / "key.json", files, key)
    stored = Stored() if fresh else checkpoint.check(lambda f: (_read_csv(f["rows"]), _read_csv(f["pixels"])))
    if stored.reusable:
        rows, pixels = stored.value
        return rows, pixels, stored.record.get("info", {})
    if stored.why_not:
        log.info("%s: cached table not reused (%s): recomputed", example, stored.why_not)
    t0 = time.perf_counter()
    grid = _run_grid(example, folder / "estimate", predictor, physics, ensemble, smb)
    base = baseline_maps(example, base_dir) if baselines else {}
    rows, pixels, case_info = _case_rows(case, example, grid, base)
    info: dict[str, Any] = {"example": example, "case": case, "dem_resolution_m": grid.dem.res[0],
                            "n_glaciers": int(len(grid.outlines)), **case_info,
                            "model_volume_km3": float(grid.glaciers["volume_km3"].sum()),
                            "seconds": time.perf_counter() - t0}
    _write_csv(files["rows"], rows)
    _write_csv(files["pixels"], pixels)
    checkpoint.commit(OK, info=info)
    # what a rerun will read (10 significant digits, the CSV's dtypes): a fit on a fresh table and on its cached
    # copy must be the same fit (boosted-tree bins flip on a 1e-10 rounding)
    return _read_csv(files["rows"]), _read_csv(files["pixels"]), info


def _concat(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    """The non-empty frames in one, or an empty frame with ``columns``."""
    full = [f for f in frames if len(f)]
    return pd.concat(full, ignore_index=True) if full else pd.DataFrame(columns=columns)


def collect(run_dir: str | Path, model: Any = None, physics: Any = True, *, cases: Sequence[str] = CASES,
            glaciers: Sequence[str] | None = None, ensemble: int = 4, baselines: bool = True,
            fresh: bool = False, allow_seen: bool = False, smb: bool = False) -> MeasuredSet:
    """The measured table of the kit for one model (see the module docstring).

    ``model``: a name/path for :func:`glacierbed.pipeline.store.load_predictor` (None = the
    shipped default) or a predictor; ``physics``: the physics stage on/off (or its PhysicsConfig); ``glaciers``:
    a subset of the glaciers of the GlaThiDa grids and the Alps means (RGI ids); ``baselines``: sample VA/GlabTop/OGGM too.
    Cached in ``run_dir`` (resumes); ``fresh`` ignores the cached tables (the estimate
    still resumes its glaciers when their own key matches). A model fine-tuned on any of these glaciers
    raises :class:`~glacierbed.core.errors.InSampleError` unless ``allow_seen`` (for callers that drop them).
    ``smb``: examples with an SMB raster in the kit (South Glacier) get it, as a user's ``--smb``.
    """
    from glacierbed.data import registry
    from glacierbed.pipeline.store import load_predictor

    t0 = time.perf_counter()
    predictor = load_predictor(model)
    run_dir = Path(run_dir)
    root = run_dir / model_tag(predictor, physics)
    pairs = _examples(cases, glaciers)
    mapping, report = glacier_groups(identity_entries(pairs))
    seen = seen_glaciers(predictor, mapping.values(), allow_seen)  # refused before any glacier is run
    all_rows, all_pixels, infos = [], [], {}
    for case, example in pairs:
        rows, pixels, infos[example] = _collect_example(case, example, root, run_dir / "baselines", predictor,
                                                        physics, ensemble, baselines, fresh,
                                                        registry.get_example(example).extras.get("smb") if smb else None)
        log.info("%s: %d rows, %d pixels", example, len(rows), len(pixels))
        all_rows.append(rows)
        all_pixels.append(pixels)
    rows = _concat(all_rows, ["case", "example", "unit", "rgi_id", "obs", "mu", "sigma"])
    pixels = _concat(all_pixels, ["case", "example", "rgi_id", "mu", "sigma"])
    for df in (rows, pixels):
        keys = list(zip(df["example"].astype(str), df["rgi_id"].astype(str)))
        df["group"] = [mapping.get(k, canonical_rgi6(k[1])) for k in keys]
        df["region"] = [region_of(g) for g in df["group"]]
    info = {"model": predictor.name, "model_arg": None if model is None else str(model), "seen_in_training": seen,
            "model_identity": predictor.identity, "physics": bool(physics), "ensemble": ensemble, "run_dir": str(root),
            "physics_config": physics.to_yaml() if isinstance(physics, PhysicsConfig) else None, "smb": smb,
            "examples": infos, "identity_report": report.to_dict("records"),
            "seconds": time.perf_counter() - t0}
    return MeasuredSet(rows, pixels, info)


__all__ = ["CASES", "OPTIONAL_CASES", "BASELINES", "HEF_CONSENSUS_KM3", "MeasuredSet", "canonical_rgi6", "region_of",
           "glacier_groups", "model_tag", "collect", "baseline_maps", "read_case_inputs"]
