"""Glacier identity of the measured table: which outlines of the data kit are the same glacier.

RGI 5 ids become RGI 6 ids by number (divides ``_dNN`` join their parent), and outlines
placed on Earth reliably (the real cases, tier-A GlaThiDa grids) that overlap by more than
half are the same glacier (:func:`glacier_groups`), so a glacier measured in two cases
(South Glacier's radar and its GlaThiDa grid) never sits on both sides of a split.
"""

from __future__ import annotations

import re
from typing import Sequence

import geopandas as gpd
import pandas as pd

from glacierbed.data.region_inputs import rgi_region_number

_RGI = re.compile(r"^RGI(\d)0-(\d\d)\.(\d{5})(?:_d\d+)?$")


def canonical_rgi6(rgi_id: str) -> str:
    """RGI 6 id of an RGI 5/6 id: same region and number, divides ``_dNN`` to their parent.

    (RGI 6.0 kept the RGI 5.0 numbers in region 11; GlaThiDa's RGI50 -> RGI60 link table
    agrees for every Ötztal glacier it covers, see ``benchmarks/validation.py``.) Other
    ids are returned unchanged.
    """
    m = _RGI.match(str(rgi_id).strip())
    return f"RGI60-{m.group(2)}.{m.group(3)}" if m else str(rgi_id)


def region_of(rgi_id: str) -> str:
    """RGI region ("01" .. "19") of an RGI 5/6/7 id (:func:`~glacierbed.data.region_inputs.rgi_region_number`), ""
    if it is not one."""
    region = rgi_region_number(str(rgi_id))
    return "" if region is None else f"{region:02d}"


def glacier_groups(entries: pd.DataFrame, min_overlap: float = 0.5) -> tuple[dict[tuple[str, str], str], pd.DataFrame]:
    """Glacier identity of every (example, rgi_id).

    ``entries``: columns ``example``, ``rgi_id``, ``geometry`` (EPSG:4326 or None) and
    ``located`` (True where the outline's absolute position is reliable). Union of (1) the
    same :func:`canonical_rgi6` id and (2) located outlines overlapping by more than
    ``min_overlap`` of the smaller one. The group is named by the smallest RGI 6 id in it.
    Returns the mapping and a report of every located pair that touches or overlaps
    (``relation``: "same id", "merged by location" or "neighbours (kept apart)").
    """
    keys = list(zip(entries["example"].astype(str), entries["rgi_id"].astype(str)))
    parent = {k: k for k in keys}

    def find(k: tuple[str, str]) -> tuple[str, str]:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    def union(a: tuple[str, str], b: tuple[str, str]) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    canon = {k: canonical_rgi6(k[1]) for k in keys}
    by_id: dict[str, tuple[str, str]] = {}
    for k in keys:
        if canon[k] in by_id:
            union(by_id[canon[k]], k)
        else:
            by_id[canon[k]] = k
    report = []
    loc = entries[entries["located"].astype(bool) & entries["geometry"].notna()].reset_index(drop=True)
    if len(loc) > 1:
        g = gpd.GeoDataFrame(loc, geometry="geometry", crs="EPSG:4326")
        g = g.to_crs(g.estimate_utm_crs()) if len(g) else g
        sindex = g.sindex
        for i in range(len(g)):
            gi = g.geometry.iloc[i]
            for j in sindex.query(gi, predicate="intersects"):
                if j <= i or g["example"].iloc[j] == g["example"].iloc[i]:
                    continue
                gj = g.geometry.iloc[j]
                inter = gi.intersection(gj).area
                frac = inter / max(min(gi.area, gj.area), 1e-9)
                ki = (str(g["example"].iloc[i]), str(g["rgi_id"].iloc[i]))
                kj = (str(g["example"].iloc[j]), str(g["rgi_id"].iloc[j]))
                same = canon[ki] == canon[kj]
                if frac > min_overlap:
                    union(ki, kj)
                relation = "same id" if same else ("merged by location" if frac > min_overlap
                                                    else "neighbours (kept apart)")
                report.append({"a": f"{ki[0]}:{ki[1]}", "b": f"{kj[0]}:{kj[1]}", "overlap_of_smaller": frac,
                               "relation": relation})
    members: dict[tuple[str, str], list[str]] = {}
    for k in keys:
        members.setdefault(find(k), []).append(canon[k])
    mapping = {k: min(members[find(k)]) for k in keys}
    return mapping, pd.DataFrame(report, columns=["a", "b", "overlap_of_smaller", "relation"])


def identity_entries(pairs: Sequence[tuple[str, str]]) -> pd.DataFrame:
    """(example, rgi_id, WGS84 outline, located) of every outline of the examples run."""
    from glacierbed.data import registry
    from glacierbed.data.outlines import read_outlines

    out = []
    for case, example in pairs:
        ex = registry.get_example(example)
        o = read_outlines(ex.outlines)
        if ex.glaciers:  # a region's outline file: only the example's glaciers are scored
            o = o[o["rgi_id"].isin(ex.glaciers)]
        o = o.to_crs("EPSG:4326")
        located = True
        if case == "glathida-grids":
            tier = registry.glathida_grid_meta(example.removeprefix(registry.GLATHIDA_EXAMPLE_PREFIX)).get(
                "location_tier")
            located = tier == "A"
        for rid, geom in zip(o["rgi_id"].astype(str), o.geometry):
            out.append({"example": example, "rgi_id": rid, "geometry": geom, "located": located})
    return pd.DataFrame(out)


__all__ = ["canonical_rgi6", "region_of", "glacier_groups", "identity_entries"]
