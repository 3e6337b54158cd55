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
