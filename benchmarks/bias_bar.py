"""How far the issue-16 bias bar can be reached: |bias| <= 20 % of the measured mean on >= 80 % of the grid glaciers.

A diagnostic of committed tables (nothing is run, fitted or chosen): each grid glacier's bias over its measured mean
for the classical methods and the consensus (``glathida_grids.csv``, the same cells) and for the default (its nested,
out-of-fold rows). It splits the 23 grid glaciers by one survey campaign the kit makes visible: the GlaThiDa glacier
surveys whose remarks cite the South Tyrol glacier inventory (six glaciers surveyed in May-June 2013, 13 years after
their SRTM surface). If no method gets those glaciers within 20 %, the bar can be met only by getting nearly every
other glacier right: at most (23 - 6) / 23 = 74 % < 80 %.

Run: ``GLACIERBED_DATA=../shared/data python benchmarks/bias_bar.py`` → ``benchmarks/results/bias_bar.{csv,md}``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from glacierbed.core.atomic import write_text
from glacierbed.core.errors import run_script
from glacierbed.evaluation.benchmark import to_markdown, write_table
from glacierbed.evaluation.measured_finetune import NESTED_LABEL
from glacierbed.evaluation.recipe_cli import default_results_name

RESULTS = Path(__file__).resolve().parent / "results"
#: the default's nested per-glacier rows (candidate 37's run; candidate 38 changed only the volume interval)
DEFAULT_ROWS = default_results_name("residual+scale+interval~parametric") + "_glaciers.csv"
METHODS = ("va_shaped", "glabtop", "oggm", "consensus_mean")
CAMPAIGN = "South Tyrol glacier inventory"  #: the remark that marks the campaign's GlaThiDa surveys
BAR = 0.2


def relative_biases(results: Path = RESULTS) -> pd.DataFrame:
    """Per grid glacier: its measured mean and each method's bias over it (the default's nested, calibrated)."""
    grids = pd.read_csv(results / "glathida_grids.csv")
    rel = grids.pivot(index="rgi_id", columns="method", values="bias")[list(METHODS)]
    mean_obs = grids.drop_duplicates("rgi_id").set_index("rgi_id")["mean_obs"]
    default = pd.read_csv(results / DEFAULT_ROWS)
    default = default[default["variant"].str.contains(NESTED_LABEL, regex=False)].set_index("rgi_id")["bias"]
    rel["default (nested, calibrated)"] = default
    return rel.div(mean_obs, axis=0).assign(mean_obs_m=mean_obs)


def campaign_glaciers() -> set[str]:
    """The grid glaciers whose GlaThiDa survey cites :data:`CAMPAIGN` in its remarks (held-out rows dropped)."""
    from glacierbed.data import registry
    from glacierbed.data.observations import read_glathida_glaciers

    surveys = read_glathida_glaciers(registry.get_file("glathida/glacier.csv"), for_fitting=True)
    ids = surveys.loc[surveys["remarks"].fillna("").str.contains(CAMPAIGN), "id"]
    grids = registry.glathida_grids()
    return set(grids.loc[grids["glathida_glacier_id"].isin(ids.astype(int)), "rgi_id"])


def reach(rel: pd.DataFrame, campaign: set[str]) -> pd.DataFrame:
    """Per method: the share of glaciers within the bar, over all, the campaign's and the others, and the median
    relative bias of each group."""
    rows = []
    for method in rel.columns.drop("mean_obs_m"):
        r = rel[method].dropna()
        inside = r.index.isin(sorted(campaign))
        rows.append({"method": method, "n": len(r), "share_within_20pct": float((r.abs() <= BAR).mean()),
                     "campaign_n": int(inside.sum()), "campaign_within": int((r[inside].abs() <= BAR).sum()),
                     "campaign_median_rel_bias": float(r[inside].median()),
                     "campaign_min_rel_bias": float(r[inside].min()),
                     "others_share_within_20pct": float((r[~inside].abs() <= BAR).mean()),
                     "others_median_rel_bias": float(r[~inside].median())})
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    rel, campaign = relative_biases(), campaign_glaciers()
    table = reach(rel, campaign)
    n, k = len(rel), len(campaign)
    write_table(table, args.out / "bias_bar.csv")
    write_table(rel.reset_index(), args.out / "bias_bar_glaciers.csv")
    lines = ["# How far the bias bar can be reached (issue 16: |bias| <= 20 % of the measured mean on >= 80 %)", "",
             f"A diagnostic of committed tables ([glathida_grids.csv](glathida_grids.csv): the classical methods and "
             f"the consensus as a constant map on the measured cells; [{DEFAULT_ROWS}]({DEFAULT_ROWS}): the default, "
             "nested). Nothing is run, fitted or chosen. Campaign: the grid glaciers whose GlaThiDa survey cites "
             f"the {CAMPAIGN} ({k} of {n}: {', '.join(sorted(campaign))}; surveyed May-June 2013 on an SRTM 2000 "
             "surface).", "", to_markdown(table, ".3g"), "",
             ("No method has any of the campaign's glaciers within 20 %" if (table["campaign_within"] == 0).all()
              else "Some method has one of the campaign's glaciers within 20 %")
             + f"; while none does, a method that got every other glacier right would reach {n - k}/{n} = "
             f"{(n - k) / n:.0%}, below the bar's 80 %.", "",
             "Per glacier (relative bias = bias / measured mean on the same cells): "
             "[bias_bar_glaciers.csv](bias_bar_glaciers.csv).", ""]
    write_text(args.out / "bias_bar.md", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    run_script(main)
