"""A thickness network without the interior mask against the post-hoc plastic margin (a diagnostic).

Protocol, written first: ``benchmarks/results/selection_protocol_margin_network.md``. Two networks, both the
previous default trained 1,500 more steps on the old simulated set (``benchmarks/configs/thickness_margin_mask.yaml``
and ``thickness_margin_nomask.yaml``): N0 keeps the interior mask and is scored with ``margin_profile: plastic``,
N1 has none and keeps its own margin values (``zero_margin: false``). Both through ``benchmarks/calibration.py``
(LOGO/LORO calibration on each network's own maps), and on the simulated test ranges
(``benchmarks/simulated_glaciers.py`` on ``runs/simtest128.npz``), whose results files this script reads.

Run: ``python benchmarks/margin_network.py --n0 DIR --n1 DIR`` (the two calibration runs' ``--out``).
Writes ``benchmarks/results/margin_network.{md,csv}``.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import pandas as pd

from glacierbed.core.atomic import write_text
from glacierbed.core.errors import run_script
from glacierbed.evaluation.benchmark import load_script, to_markdown, write_table

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
#: the simulated test-range results (benchmarks/simulated_glaciers.py --name ...), network + physics rows
SIMULATED = {"N0, zero margins": "simulated_glaciers_margin_network_n0_zero",
             "N0 + plastic": "simulated_glaciers_margin_network_n0_plastic",
             "N1 (no mask), own margins": "simulated_glaciers_margin_network_n1_free"}


def _margin_profile():
    """benchmarks/margin_profile.py as a module (its scores reader and the protocol's rule)."""
    return load_script(HERE / "margin_profile.py")


def simulated_table(results: Path) -> pd.DataFrame:
    """RMSE (m) and ratio to the clipped fill of the network + physics rows, per pixel size and variant."""
    rows = []
    for label, stem in SIMULATED.items():
        path = results / f"{stem}.csv"
        if not path.exists():
            continue
        df = pd.read_csv(path)
        df = df[(df["method"] == "network_physics") & (df["split"] == "test") & (df["source"] == "all")]
        for r in df.itertuples():
            rows.append({"variant": label, "pixel_m": r.pixel_m, "rmse_m": r.rmse_m,
                         "ratio_to_clipped_fill": r.ratio_to_biharmonic_clipped})
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n0", type=Path, required=True, help="calibration.py --out of N0 + plastic margins")
    ap.add_argument("--n1", type=Path, required=True, help="the same for N1 (no interior mask, own margins)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    mp = _margin_profile()
    n0, n1 = "N0 + plastic", "N1, own margins"
    scores = pd.concat([mp._scores(args.n0, n0), mp._scores(args.n1, n1)], ignore_index=True)
    better, d = mp.decision(scores, base=n0, new=n1)  # the margin benchmark's rule
    write_table(scores, args.out / "margin_network.csv")
    sim = simulated_table(args.out)
    if len(sim):
        write_table(sim, args.out / "margin_network_simulated.csv")
    md = [
        "# A network without the interior mask against the post-hoc plastic margin", "",
        f"{dt.date.today().isoformat()}. Protocol (written first): "
        "[selection_protocol_margin_network.md](selection_protocol_margin_network.md); 2 networks, both the previous "
        "default trained 1,500 more simulated steps (`benchmarks/configs/thickness_margin_mask.yaml`, "
        "`thickness_margin_nomask.yaml`), scored through `benchmarks/calibration.py` (LOGO/LORO calibration on each "
        "network's own maps). Script: `benchmarks/margin_network.py`.", "",
        to_markdown(scores[scores["variant"] == mp.VARIANT].drop(columns=["variant"]).round(3)), "",
        f"- Deciding (grids, LOGO, median per-glacier RMSE / best baseline): N0 + plastic {d['grids'][n0]:.3f}, "
        f"N1 {d['grids'][n1]:.3f}; South Glacier {d['sg'][n0]:.1f} / {d['sg'][n1]:.1f} m; Ötztal means "
        f"{d['oetztal'][n0]:.2f} / {d['oetztal'][n1]:.2f} m.",
        f"- Answer by the rule: **{'the network without the mask is the better fix' if better else 'the post-hoc profile is as good'}**. "
        "Nothing shipped changes.", "",
    ]
    if len(sim):
        md += ["Simulated test ranges (`runs/simtest128.npz`, `benchmarks/configs/simulated_test_ranges_128.yaml`; "
               "network + physics rows; [margin_network_simulated.csv](margin_network_simulated.csv)):", "",
               to_markdown(sim.pivot(index="pixel_m", columns="variant", values="rmse_m").round(2).reset_index()), ""]
    write_text(args.out / "margin_network.md", "\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    run_script(main)
