"""Calibration steps applied to arrays and to measured-table rows (glacier-mean rows through their pixels)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from glacierbed.posterior.calibration.features import CELL_UNITS, MEAN_UNIT, rows_arrays


def apply_arrays(steps: Sequence[Any], mu: np.ndarray, sigma: np.ndarray, feats: dict[str, np.ndarray]
                 ) -> tuple[np.ndarray, np.ndarray]:
    """``steps`` in order on (mu, sigma); each sees the previous one's output as ``mu_m``/``sigma_m``
    in ``feats`` (which it updates)."""
    for step in steps:
        feats["mu_m"], feats["sigma_m"] = mu, sigma
        mu, sigma = step.apply(mu, sigma, feats)
    return mu, sigma


def apply_to_rows(steps: Sequence[Any], rows: pd.DataFrame, pixels: pd.DataFrame | None = None,
                  return_pixels: bool = False) -> Any:
    """Copy of ``rows`` with ``mu``/``sigma`` passed through ``steps``.

    Point and cell rows carry their own features. A glacier-mean row (unit
    ``glacier_mean``) is the mean of its glacier's pixels: with ``pixels`` (rows with
    ``example``, ``rgi_id``, ``mu``, ``sigma`` and the features of every pixel of the
    glacier), the steps are applied to those pixels and averaged; without them, steps that
    act on features (the residual) leave the row NaN. ``return_pixels``: also return the
    transformed pixels of the glacier-mean rows, ``(rows, pixels)``.
    """
    out = rows.copy()
    px_out = pixels.iloc[0:0].copy() if pixels is not None else pd.DataFrame()
    if not steps or len(out) == 0:
        if return_pixels and pixels is not None and len(out) and "unit" in out:
            px_out = pixels_of(out[out["unit"] == MEAN_UNIT], pixels)
        return (out, px_out) if return_pixels else out
    mu, sigma, feats = rows_arrays(out)
    unit = out["unit"].to_numpy(object) if "unit" in out else np.full(len(out), "cell", object)
    cell = np.isin(unit, CELL_UNITS)
    new_mu, new_sigma = np.full(len(out), np.nan), np.full(len(out), np.nan)
    if cell.any():
        new_mu[cell], new_sigma[cell] = apply_arrays(steps, mu[cell], sigma[cell],
                                                     {k: v[cell] for k, v in feats.items()})
    mean = unit == MEAN_UNIT
    if mean.any():
        if pixels is not None and len(pixels):
            px_out, found = _through_pixels(steps, out[mean], pixels)
            new_mu[mean], new_sigma[mean] = found["mu"].to_numpy(float), found["sigma"].to_numpy(float)
        elif not any(getattr(s, "needs_features", False) for s in steps):
            new_mu[mean], new_sigma[mean] = apply_arrays(steps, mu[mean], sigma[mean], {})
    out["mu"], out["sigma"] = new_mu, new_sigma
    return (out, px_out) if return_pixels else out


def _through_pixels(steps: Sequence[Any], means: pd.DataFrame, pixels: pd.DataFrame
                    ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The pixels of glacier-mean rows through ``steps``, and per row the mean of its pixels' mu/sigma."""
    px = pixels_of(means, pixels)
    pm, ps, pf = rows_arrays(px)
    pm, ps = apply_arrays(steps, pm, ps, pf)
    agg = (pd.DataFrame({"example": px["example"].astype(str).to_numpy(),
                         "rgi_id": px["rgi_id"].astype(str).to_numpy(), "mu": pm, "sigma": ps})
           .groupby(["example", "rgi_id"]).mean())
    keys = pd.MultiIndex.from_arrays([means["example"].astype(str), means["rgi_id"].astype(str)])
    return px.assign(mu=pm, sigma=ps), agg.reindex(keys)


def pixels_of(rows: pd.DataFrame, pixels: pd.DataFrame) -> pd.DataFrame:
    """The pixels of the glaciers (example, rgi_id) of ``rows``."""
    keys = pd.MultiIndex.from_arrays([rows["example"].astype(str), rows["rgi_id"].astype(str)])
    pkeys = pd.MultiIndex.from_arrays([pixels["example"].astype(str), pixels["rgi_id"].astype(str)])
    return pixels[pkeys.isin(keys)]
