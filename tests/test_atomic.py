"""Atomic writes: an existing output is always complete; a failed write leaves no trace."""

import pytest

from glacierbed.core.atomic import replacing, write_json


def test_failed_write_keeps_old_file_and_removes_tmp(tmp_path):
    target = tmp_path / "out" / "a.csv"
    write_json(target, {"v": 1})
    with pytest.raises(RuntimeError):
        with replacing(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text().strip().startswith("{") and not tmp.exists()


def test_keep_suffix_names_tmp_with_extension(tmp_path):
    with replacing(tmp_path / "g.gpkg", keep_suffix=True) as tmp:
        assert tmp.name == "g.tmp.gpkg"
        tmp.write_bytes(b"x")
    assert (tmp_path / "g.gpkg").read_bytes() == b"x" and not tmp.exists()
