"""Calibration of thickness maps on measured ice thickness: fitted on tables, applied per pixel.

A model's thickness map (mean ``mu``, 1-sigma ``sigma`` = ``thickness_std``) is corrected
by estimators fitted on measured thickness (radar points, GlaThiDa cells, glacier means;
:mod:`glacierbed.evaluation.measured_table` builds that table by running the real pipeline):

* :class:`ThicknessScale`: one global factor on thickness (equivalently ``A s**-(n+2)``
  on Glen's rate factor), fitted glacier-wise: the weighted median over glaciers of the
  log ratio of measured to predicted mean thickness, every glacier weighing the same
  whatever its number of measured cells;
* :class:`ResidualBooster`: a gradient-boosted residual on physical per-pixel features
  (after IceBoost, Maffezzoli et al. 2025: shallow trees on surface slope at several
  scales, distance to the margin, elevation within the glacier, area, a mass-conservation
  thickness, ...), fitted on ``log((obs + h0) / (mu + h0))`` (by default minus its mean
  per glacier: the shape within a glacier, the level being the scale's) with
  glacier-balanced sample weights and strong regularisation; the trees are scikit-learn's
  histogram GBM, fitted by the library, stored as ONNX graphs and applied by onnxruntime;
* :class:`IntervalCalibrator`: a calibrated 1-sigma (boosted on the same kind of
  features, or ``sqrt((a sigma)^2 + (b mu')^2 + c^2)``) fitted on out-of-fold residuals
  (never on residuals of a model that saw the same glacier), so that ``|obs - mu'| <=
  sigma'`` holds for 68 % of the measurements (glacier-balanced) and ``<= z90 * sigma'``
  for 90 %; at glacier level, the error of a glacier's mean thickness is compared with the
  pixel sigmas combined with a fitted within-glacier correlation (:func:`glacier_volume_std`).

:class:`Calibration` composes them (variants by name; the shipped network's is :data:`SHIPPED_VARIANT`), fits with
inner group-wise cross-fitting where a step needs out-of-fold inputs, and saves to / loads
from JSON with a record of the data it saw and of the model it was fitted for
(:meth:`Calibration.check_model_identity`). :func:`calibration_features` computes the
feature arrays from a DEM window, so the estimate stage applies a calibration on the same
features it was fitted on. :func:`group_splits` gives leave-one-group-out splits (by
glacier identity or region, never by cell).

Volumes: pixel errors within a glacier are correlated (:func:`glacier_volume_std`,
fully correlated by default: sigma_V = sum sigma_i A_i), and glacier errors within a
region too (:func:`regional_volume_std`: linear sum by default), never added in quadrature
unless a measured correlation says so.

Modules: :mod:`.features` (feature names and arrays), :mod:`.stats` (weights, quantiles,
splits), :mod:`.volumes` (error propagation), :mod:`.trees` (the boosted trees and their
storage), :mod:`.steps` (scale, residual), :mod:`.interval` (with :mod:`.distance` and
:mod:`.widening`: intervals widened away from the fitted glaciers), :mod:`.rows` (steps on table
rows), :mod:`.container` (:class:`Calibration`, files). Imports only modules upstream of
the estimate stage. See docs/calibration.md.
"""

from glacierbed.posterior.calibration.container import (BOOSTED_DESIGN, FILE_KIND, FILE_VERSION, SHIPPED_VARIANT,
                                                        STEP_TYPES, Calibration, data_record, make_step)
from glacierbed.posterior.calibration.features import (CELL_UNITS, FEATURE_NAMES, FEATURES_VERSION, GLACIER_KEY,
                                                       LEVELS, MEAN_UNIT, RESIDUAL_FEATURES, SIGMA_FEATURES,
                                                       calibration_features, keep_glacier_means, table_features)
from glacierbed.posterior.calibration.interval import IntervalCalibrator
from glacierbed.posterior.calibration.rows import apply_to_rows
from glacierbed.posterior.calibration.stats import (glacier_weights, group_kfold, group_splits, weighted_coverage,
                                                    weighted_quantile)
from glacierbed.posterior.calibration.steps import ResidualBooster, ThicknessScale
from glacierbed.posterior.calibration.trees import BoostedTrees
from glacierbed.posterior.calibration.volumes import glacier_volume_std, regional_volume_std

__all__ = ["BOOSTED_DESIGN", "SHIPPED_VARIANT",
           "FEATURE_NAMES", "FEATURES_VERSION", "GLACIER_KEY", "RESIDUAL_FEATURES", "SIGMA_FEATURES", "CELL_UNITS",
           "MEAN_UNIT", "LEVELS", "FILE_KIND", "FILE_VERSION", "STEP_TYPES", "calibration_features", "table_features",
           "keep_glacier_means", "glacier_weights", "weighted_quantile", "weighted_coverage", "group_splits",
           "group_kfold", "glacier_volume_std", "regional_volume_std", "BoostedTrees", "ThicknessScale",
           "ResidualBooster", "IntervalCalibrator", "Calibration", "make_step", "apply_to_rows", "data_record"]
