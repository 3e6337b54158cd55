"""Every method on one DEM + outlines: baselines, the OGGM peer and glacierbed's pipeline.

* :func:`run_methods`: volume-area scaling, GlabTop, mass conservation, the SIA band, the
  pipeline rows (:func:`pipeline_rows`, through the real estimate pipeline:
  :func:`estimate_thickness`) and OGGM (:mod:`glacierbed.evaluation.oggm_peer`) when installed,
  each a :class:`MethodResult` on the same cells;
* :class:`CaseResult`: the tables (and figures) of a case, filled by
  :mod:`glacierbed.evaluation.benchmark` and :mod:`glacierbed.evaluation.glathida_case`;
* :func:`write_table`: CSV or Markdown, written atomically.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Collection

import geopandas as gpd
import numpy as np
import pandas as pd

from glacierbed.core.atomic import replacing, write_text
from glacierbed.core.errors import MissingCRSError
from glacierbed.data.rasters import Raster
from glacierbed.evaluation import baselines
from glacierbed.evaluation.glacier_identity import canonical_rgi6
from glacierbed.evaluation.in_sample import calibrated_glaciers, in_sample_message, seen_glaciers
from glacierbed.evaluation.oggm_peer import oggm_thickness_map

log = logging.getLogger(__name__)


@dataclass
class MethodResult:
    """One method's thickness map on a case (or why there is none) and its run time."""

    name: str
    thickness: Raster | None
    status: str
    seconds: float
    details: dict[str, object] = field(default_factory=dict)


def estimate_thickness(dem: Raster, outlines: gpd.GeoDataFrame, model: object, physics: object = None,
                       **kwargs) -> Raster:
    """Thickness of every glacier through the real pipeline (:func:`glacierbed.pipeline.estimate.estimate`:
    per-glacier windows, tiling, ensemble, optional physics), as a map on ``dem``'s grid:
    0 outside the outlines, NaN where the DEM has no data (like the baselines).

    ``model``: as for :func:`glacierbed.pipeline.estimate.estimate`; ``physics``: a
    :class:`~glacierbed.posterior.physics.PhysicsConfig` or None; ``kwargs`` go to ``estimate``
    (e.g. ``velocity``, ``smb``). Runs in a temporary folder, without maps.
    """
    return estimate_with_table(dem, outlines, model, physics, **kwargs)[0]


def estimate_with_table(dem: Raster, outlines: gpd.GeoDataFrame, model: object, physics: object = None,
                        calibrate: bool = False, **kwargs) -> tuple[Raster, pd.DataFrame]:
    """:func:`estimate_thickness` plus the per-glacier table (glaciers.csv: neg_fraction, physics_*).

    ``calibrate``: apply the model's shipped calibration. Off by default: a calibration was
    fitted on the kit's measured glaciers, so scoring it on them here would be in-sample;
    calibrated scores come from :mod:`glacierbed.evaluation.measured_table` (leave one glacier out).
    """
    import tempfile

    from glacierbed.pipeline.estimate import EstimateConfig, estimate

    with tempfile.TemporaryDirectory(prefix="glacierbed-eval-") as tmp:
        res = estimate(dem, outlines, tmp, model=model, config=EstimateConfig(physics=physics, calibrate=calibrate),
                       maps=False, **kwargs)
        thick = Raster.from_file(res.paths["thickness"])
    if not thick.same_grid(dem):
        raise MissingCRSError(f"estimate wrote its thickness on another grid than the DEM {dem.source}")
    data = np.where(np.isfinite(thick.data), thick.data, 0.0)
    data[~np.isfinite(dem.data)] = np.nan
    out = dem.with_data(data)
    out.source = f"estimate({res.summary.get('model', model)})"
    return out, res.glaciers


#: the pipeline row that is what ``glacierbed estimate`` gives a user: network, physics and the shipped calibration
CALIBRATED_ROW = "thickness-net + physics + calibration"


def pipeline_rows(model: object = None) -> list[tuple[str, object, object, bool]]:
    """(label, model, physics, calibrate) of every pipeline row: the terrain-only inpainters, the old
    default (inpainting network + the 50-150 kPa stress band, as shipped before the thickness
    network), and the thickness network ``model`` (default: the shipped one) without and
    with the physics posterior, and with its shipped calibration too (:data:`CALIBRATED_ROW`: scored only on
    glaciers the calibration never saw, e.g. a folder of grids nobody on the team has seen)."""
    from glacierbed.posterior.physics import PhysicsConfig

    old = PhysicsConfig(mass_conservation=False, sia=True)  # data term + stress band: the former default
    net = "thickness-net" if model is None else model
    return [("biharmonic", "biharmonic", None, False), ("biharmonic + physics", "biharmonic", PhysicsConfig(), False),
            ("old default (network + SIA band)", "network", old, False),
            ("thickness-net", net, None, False), ("thickness-net + physics", net, PhysicsConfig(), False),
            (CALIBRATED_ROW, net, PhysicsConfig(), True)]


def run_methods(dem: Raster, outlines: gpd.GeoDataFrame, model: object = None,
                with_oggm: bool = True, with_physics: bool = True,
                only: Collection[str] | None = None, measured: bool = False) -> dict[str, MethodResult]:
    """Every baseline, peer and pipeline row on one DEM + outlines, the same cells for all.

    Baselines: volume-area scaling (uniform, shaped), GlabTop, mass conservation only (the
    apparent balance flux routed down the surface with Glen's law), the SIA stress band only
    (the physics stage without a data term, from the biharmonic fill), and OGGM
    (:func:`glacierbed.evaluation.oggm_peer.oggm_thickness_map`; its status names every glacier it
    failed on). Pipeline rows (:func:`pipeline_rows`) run the real estimate pipeline
    without calibration, except :data:`CALIBRATED_ROW` (with the model's shipped one). ``model``: the thickness
    network to evaluate (default: shipped); a model that fails to load is reported as "model not available".
    ``with_physics=False``
    drops the rows with physics; ``only``: compute just these labels. ``measured``: the glaciers carry measured
    thickness, so a network fine-tuned on any of them (by RGI id) is not run and its rows say why (in-sample).
    """
    from glacierbed.posterior.physics import PhysicsConfig

    wanted = (lambda label: True) if only is None else (lambda label: label in only)  # noqa: E731
    methods: dict[str, Callable[[], Raster]] = {
        "va_uniform": lambda: baselines.volume_area_thickness(dem, outlines, shaped=False),
        "va_shaped": lambda: baselines.volume_area_thickness(dem, outlines, shaped=True),
        "glabtop": lambda: baselines.glabtop_thickness(dem, outlines),
        "mass_conservation": lambda: baselines.mass_conservation_map(dem, outlines),
        "sia_band_only": lambda: estimate_thickness(dem, outlines, "biharmonic", PhysicsConfig().only("sia")),
    }
    out: dict[str, MethodResult] = {}
    for name, fn in methods.items():
        if not wanted(name) or (name == "sia_band_only" and not with_physics):
            continue
        t0 = time.perf_counter()
        out[name] = MethodResult(name, fn(), "ok", time.perf_counter() - t0)
    rows = [r for r in pipeline_rows(model) if wanted(r[0]) and (r[2] is None or with_physics)]
    out.update(_pipeline_results(dem, outlines, rows, measured))
    if with_oggm and wanted("oggm"):
        peer = oggm_thickness_map(dem, outlines)
        out["oggm"] = MethodResult("oggm", peer.thickness, peer.status, peer.seconds,
                                   {"volume_km3": peer.volume_km3, **peer.details})
    return out


def _calibration_unscorable(predictor: Any, glacier_ids: set[str] | None) -> str:
    """Why a calibrated row cannot be scored here ("" when it can): the model ships no calibration, or its
    calibration was fitted on the measured thickness of glaciers here (``glacier_ids``; None: any)."""
    if getattr(predictor, "calibration_path", None) is None:
        return "no calibration ships with this model"
    seen = calibrated_glaciers(predictor, glacier_ids)
    if not seen:
        return ""
    return (f"the calibration of model {predictor.name} was fitted on the measured thickness of {len(seen)} "
            f"glacier(s) here ({', '.join(seen[:4])}{', ...' if len(seen) > 4 else ''}): in-sample")


def _pipeline_results(dem: Raster, outlines: gpd.GeoDataFrame, rows: list[tuple[str, object, object, bool]],
                      measured: bool) -> dict[str, MethodResult]:
    """The pipeline rows of :func:`run_methods` (each model loaded once), or why a row has no map: the model is
    not available, was fine-tuned on a glacier here (``measured``), or has no calibration for a calibrated row."""
    from glacierbed.pipeline.store import load_predictor

    out: dict[str, MethodResult] = {}
    loaded: dict[object, object] = {}
    # the glaciers here, by RGI id (None: unnamed, so any glacier a network was fine-tuned on counts)
    glacier_ids = {canonical_rgi6(str(r)) for r in outlines["rgi_id"]} if "rgi_id" in outlines else None
    for label, spec, physics, calibrate in rows:
        key = spec if isinstance(spec, (str, Path)) else id(spec)
        try:
            if key not in loaded:
                loaded[key] = load_predictor(spec) if isinstance(spec, (str, Path)) else spec
        except Exception as exc:  # no weights yet, missing module, bad checkpoint: report
            log.warning("model %s not available: %s", spec, exc)
            out[label] = MethodResult(label, None, f"model not available: {type(exc).__name__}: {exc}", 0.0)
            continue
        seen = seen_glaciers(loaded[key], glacier_ids, allow=True) if measured else []
        if seen:
            out[label] = MethodResult(label, None, f"not scored: {in_sample_message(loaded[key], seen)}", 0.0)
            continue
        if calibrate and (why := _calibration_unscorable(loaded[key], glacier_ids if measured else set())):
            out[label] = MethodResult(label, None, f"not scored: {why}", 0.0)
            continue
        t0 = time.perf_counter()
        h = estimate_with_table(dem, outlines, loaded[key], physics, calibrate=calibrate)[0]
        out[label] = MethodResult(label, h, "ok", time.perf_counter() - t0)
    return out


@dataclass
class CaseResult:
    """Tables (and figure paths) of one benchmark case."""

    case: str
    metrics: pd.DataFrame
    details: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: list[Path] = field(default_factory=list)



def methods_table(results: dict[str, MethodResult]) -> pd.DataFrame:
    """Method, status and seconds of every result: the timing part of a case's metrics."""
    return pd.DataFrame([{"method": r.name, "status": r.status, "seconds": r.seconds} for r in results.values()])


def write_table(df: pd.DataFrame, path: Path, floatfmt: str = ".3g") -> Path:
    """Atomic CSV, or Markdown (pipe table) when ``path`` ends with .md."""
    if path.suffix == ".md":
        return write_text(path, to_markdown(df, floatfmt) + "\n")
    with replacing(path) as tmp:
        df.to_csv(tmp, index=False)
    return path


def to_markdown(df: pd.DataFrame, floatfmt: str = ".3g") -> str:
    """A pipe table (pandas + tabulate); NaN as empty cells."""
    return df.to_markdown(index=False, floatfmt=floatfmt, missingval="")


def checklist(checks: dict[str, bool]) -> list[str]:
    """A decision rule's checks as Markdown bullets, a failed one in bold."""
    return [f"- {k}: {'yes' if v else '**no**'}" for k, v in checks.items()]


def load_script(path: Path) -> Any:
    """A benchmark script (``benchmarks/`` is not a package) loaded as a module, for another script that reuses its
    readers or rules; loaded once per path."""
    return _load_script(Path(path).resolve())


@functools.lru_cache(maxsize=None)
def _load_script(path: Path) -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rewrite_report(results: Path, stem: str, report: Callable[[pd.DataFrame, dict], str]) -> str:
    """Rewrite ``<stem>.md`` from the saved ``<stem>.csv`` and ``<stem>.json`` (a benchmark's --report-only)."""
    import json

    text = report(pd.read_csv(results / f"{stem}.csv"), json.loads((results / f"{stem}.json").read_text()))
    write_text(results / f"{stem}.md", text)
    return text
