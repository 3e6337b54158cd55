"""The thickness-for-area check of simulated glaciers (glacierbed.simulation.thickness_area), on hand-made windows."""

from __future__ import annotations

import numpy as np
import pytest

from glacierbed.core.glaciology import va_mean_thickness_m, va_volume_km3
from glacierbed.simulation.thickness_area import glacier_sizes, inner_glaciers, thickness_for_area


def test_volume_area_scaling_mean_thickness() -> None:
    """V = 0.034 A^1.375 km3: a 1 km2 glacier is 34 m thick on average, and V / A agrees for any area."""
    assert va_mean_thickness_m(1.0) == pytest.approx(34.0)
    a = np.array([0.1, 5.0, 300.0])
    np.testing.assert_allclose(va_mean_thickness_m(a) * a / 1e3, va_volume_km3(a))


def test_glacier_sizes_count_only_glaciers_inside_the_window() -> None:
    """Glacier 1 (4 x 5 pixels of 100 m, 10-30 m thick) is inside; glacier 2 touches the edge and is left out."""
    ids = np.zeros((12, 12), int)
    thick = np.zeros((12, 12))
    ids[4:8, 3:8] = 1
    thick[4:8, 3:8] = np.linspace(10.0, 30.0, 20).reshape(4, 5)
    ids[0:3, 9:12] = 2
    thick[0:3, 9:12] = 100.0
    assert inner_glaciers(ids).sum() == 20
    area, mean = glacier_sizes(thick, ids, 100.0)
    assert area.tolist() == pytest.approx([0.2]) and mean.tolist() == pytest.approx([20.0])
    empty = glacier_sizes(thick, np.where(ids == 2, 2, 0), 100.0)
    assert empty[0].size == 0 and empty[1].size == 0


def test_thickness_for_area_by_class_on_hand_values() -> None:
    """Two 1 km2 glaciers at 1x and 2x the scaling's 34 m, one of 20 km2 at half of it."""
    area = np.array([1.0, 1.0, 20.0])
    thick = np.array([34.0, 68.0, 0.5 * va_mean_thickness_m(20.0)])
    t = thickness_for_area(area, thick).set_index("area_km2")
    assert list(t.index) == ["(0.0, 1.0]", "(10.0, 50.0]"]  # empty classes are left out
    assert t.loc["(0.0, 1.0]", "glaciers"] == 2 and t.loc["(0.0, 1.0]", "median_over_va"] == pytest.approx(1.5)
    assert t.loc["(0.0, 1.0]", "volume_over_va"] == pytest.approx(1.5)
    assert t.loc["(10.0, 50.0]", "median_over_va"] == pytest.approx(0.5)
    assert t.loc["(0.0, 1.0]", "median_thickness_m"] == pytest.approx(51.0)
    assert t.loc["(0.0, 1.0]", "mean_thickness_m"] == pytest.approx(51.0)  # the class's volume over its area
    wide = thickness_for_area(area, thick, classes_km2=(0.0, np.inf)).set_index("area_km2")
    assert wide.loc["(0.0, inf]", "glaciers"] == 3
