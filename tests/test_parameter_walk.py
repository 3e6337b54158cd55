"""A walk from the CLI's --dem to thickness.tif crosses each stage once.

On Hintereisferner (geographic SRTM DEM, the shipped default model): no raster is resampled
twice onto the same grid, the model file is read once, and a second run in the same process
does not read it again (the model store's cache).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from typer.testing import CliRunner


def test_dem_to_thickness_crosses_each_stage_once(data_dir: Path, tmp_path: Path, monkeypatch) -> None:
    import onnxruntime
    import torch

    from glacierbed.cli import app
    from glacierbed.data.raster_io import Raster
    from glacierbed.pipeline import store

    store._load_file.cache_clear()
    resamplings: Counter = Counter()
    loads: Counter = Counter()
    original_reproject, original_load = Raster.reproject, torch.load

    def counting_reproject(self, crs=None, resolution=None, resampling="bilinear", bounds=None):
        key = (self.source, self.shape, tuple(self.transform)[:6], str(crs), resolution, resampling,
               None if bounds is None else tuple(bounds))
        resamplings[key] += 1
        return original_reproject(self, crs, resolution, resampling, bounds)

    def counting_load(path, *args, **kwargs):
        loads[Path(path).name] += 1
        return original_load(path, *args, **kwargs)

    monkeypatch.setattr(Raster, "reproject", counting_reproject)
    monkeypatch.setattr(torch, "load", counting_load)  # every torch model file goes through torch.load
    original_session = onnxruntime.InferenceSession

    def counting_session(model, *args, **kwargs):  # ONNX files by path (calibration trees come as bytes)
        if isinstance(model, (str, Path)):
            loads[Path(model).name] += 1
        return original_session(model, *args, **kwargs)

    monkeypatch.setattr(onnxruntime, "InferenceSession", counting_session)
    runner = CliRunner()
    for run in ("a", "b"):
        res = runner.invoke(app, ["estimate", "--example", "hintereisferner", "--out", str(tmp_path / run),
                                  "--no-maps"])
        assert res.exit_code == 0, res.output
        assert (tmp_path / run / "thickness.tif").is_file()
    twice = {k: n for k, n in resamplings.items() if n > 2}  # two runs: each at most once per run
    assert not twice, f"a raster was resampled onto the same grid more than once per run: {twice}"
    assert resamplings, "the geographic DEM must have been warped to a metric grid"
    assert loads == Counter({"thickness_net.onnx": 1}), loads  # the shipped network runs from its ONNX export
