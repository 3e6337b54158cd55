"""No held-out GlaThiDa survey (``glathida/HELD_OUT.md``) reaches any fit."""

from __future__ import annotations

from pathlib import Path

import pytest

from glacierbed.data.observations import held_out_glathida_ids, read_glathida_glaciers

#: the list as published in the kit's HELD_OUT.md (typed here so a change of the file is noticed)
EXPECTED = {3, 40, 219, 422, 513, 516, 529, 530, 531, 532, 533, 554, 2029, 2030, 2032, 2033, 2083, 2087, 2088,
            2089, 2090}


def test_the_list_is_read_from_the_kit(data_dir: Path) -> None:
    assert held_out_glathida_ids() == EXPECTED


def test_fitting_reader_drops_them(data_dir: Path) -> None:
    path = data_dir / "glathida" / "glacier.csv"
    everything = read_glathida_glaciers(path)
    for_fitting = read_glathida_glaciers(path, for_fitting=True)
    held_with_mean = EXPECTED & set(everything["id"].astype(int))
    assert held_with_mean, "the kit's table holds held-out surveys with a mean thickness"
    assert not EXPECTED & set(for_fitting["id"].astype(int))
    assert len(everything) - len(for_fitting) == len(held_with_mean)


def test_a_list_without_ids_is_refused(tmp_path: Path) -> None:
    from glacierbed.core.errors import CorruptFileError

    (tmp_path / "glathida").mkdir()
    (tmp_path / "glathida" / "HELD_OUT.md").write_text("# Held out\n\nno list here\n")
    with pytest.raises(CorruptFileError, match="HELD_OUT.md"):
        held_out_glathida_ids(tmp_path)


def test_measured_table_never_carries_a_held_out_survey(data_dir: Path, tmp_path: Path, monkeypatch) -> None:
    """With Hintereisferner's survey (1964) and South Glacier's grid (2079) declared held out, the
    rows that every calibration is fitted on hold neither; the kit's real list is applied too."""
    from glacierbed.data import observations
    from glacierbed.evaluation import measured_table

    held = EXPECTED | {1964, 2079}
    monkeypatch.setattr(observations, "held_out_glathida_ids", lambda data_dir=None: frozenset(held))
    grids = [e for _, e in measured_table._examples(("glathida-grids",), None)]
    assert "glathida-RGI60-01.16195" not in grids and len(grids) == 22
    ms = measured_table.collect(tmp_path, "biharmonic", physics=False, cases=("oetztal-means",), ensemble=1,
                                baselines=False)
    ids = set(ms.rows["obs_id"].astype(int))
    assert not ids & held
    # the benchmark matches Hintereisferner to survey 1964 (its latest); held out, an older survey stands in
    hef = ms.rows[ms.rows["rgi_id"] == "RGI50-11.00897"]
    assert len(hef) == 1 and int(hef["obs_id"].iloc[0]) != 1964


def test_alps_means_never_carry_a_held_out_survey(data_dir: Path, monkeypatch) -> None:
    """The Alps glacier means (rgi11-alps): with Pasterze's latest survey (1983) declared held out, an older
    survey of it stands in, and no held-out id is matched."""
    from glacierbed.data import observations
    from glacierbed.evaluation.glathida_means import alps_mean_surveys

    assert not EXPECTED & set(alps_mean_surveys()["id"].astype(int))
    held = EXPECTED | {1983}
    monkeypatch.setattr(observations, "held_out_glathida_ids", lambda data_dir=None: frozenset(held))
    surveys = alps_mean_surveys()
    assert not held & set(surveys["id"].astype(int))
    pasterze = surveys[surveys["rgi_id"] == "RGI60-11.00106"]
    assert len(pasterze) == 1 and int(pasterze["id"].iloc[0]) in (103, 318)
