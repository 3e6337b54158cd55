"""Time ``read_dem`` (read + reproject to UTM + void check) on kit DEMs.

Baseline: a bare ``rasterio`` read of the same file in the same run; the ratio says what
the data layer adds. Writes ``benchmarks/results/data_read_dem.{csv,md}``.
Run: ``GLACIERBED_DATA=../shared/data python benchmarks/data_read_dem.py``
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import rasterio

from glacierbed.core.atomic import write_text
from glacierbed.data import registry as reg
from glacierbed.data.rasters import Raster, read_dem
from glacierbed.core.errors import run_script

CASES = [  # (name, registry path, read_dem kwargs); the label's grids are read from the files
    ("oetztal SRTM", "oggm-sample-data/test-workflow/srtm_oetztal.tif", {"resolution": 90.0}),
    ("oetztal SRTM", "oggm-sample-data/test-workflow/srtm_oetztal.tif", {"resolution": 30.0}),
    ("nz-canterbury", "nz-canterbury-25m/dem.tif", {}),
]


def _grid(crs, res: float) -> str:
    unit = "°" if crs.is_geographic else " m"
    size = f'{res * 3600:.0f}"' if crs.is_geographic else f"{res:g}{unit}"
    return f"{crs.name} {size}"


def _label(name: str, raw, dem) -> str:
    src = _grid(raw.crs, raw.res[0])
    out = "native" if raw.crs == dem.crs and abs(raw.res[0] - dem.res[0]) < 1e-9 else _grid(dem.crs, dem.res[0])
    return f"{name} {src} -> {out}"
REPEATS = 5


def _best(func) -> float:
    times = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        func()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    rows = []
    for name, rel, kwargs in CASES:
        path = reg.get_file(rel)
        base = _best(lambda: rasterio.open(path).read(1))
        dem = read_dem(path, **kwargs)
        label = _label(name, Raster.from_file(path), dem)
        t = _best(lambda: read_dem(path, **kwargs))
        sha = _best(lambda: reg._sha256.__wrapped__(str(path), 0, 0))  # uncached checksum of the file
        rows.append(dict(case=label, out_shape=f"{dem.shape[0]}x{dem.shape[1]}", read_dem_s=round(t, 4),
                         rasterio_read_s=round(base, 4), ratio=round(t / base, 1), sha256_s=round(sha, 4)))
        print(rows[-1])
    df = pd.DataFrame(rows)
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    df.to_csv(out / "data_read_dem.csv", index=False)
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in df.itertuples(index=False)]
    write_text(out / "data_read_dem.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    run_script(main)
