"""The inpainting benchmark's per-network summary, checked against hand-computed values."""

import importlib.util
from pathlib import Path

import pandas as pd

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "inpainting.py"


def _bench():
    spec = importlib.util.spec_from_file_location("inpainting_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_network_summary_ranks_only_groups_with_enough_patches():
    bench = _bench()
    rows = [("a@50m", "glacier", 40, 0.70), ("a@50m", "box", 40, 0.90), ("b@30m", "glacier", 12, 1.10),
            ("b@30m", "box", 12, 0.80), ("c@100m", "glacier", 3, 0.10),  # too few patches: not ranked
            ("peru@90m (unseen range)", "glacier", 20, 1.02), ("peru@90m (unseen range)", "box", 20, 0.95)]
    df = pd.DataFrame([dict(set=s, holes=h, n_patches=n, method="network", ratio_to_best_classical=r)
                       for s, h, n, r in rows]
                      + [dict(set="a@50m", holes="glacier", n_patches=40, method="biharmonic",
                              ratio_to_best_classical=1.0)])
    summary = bench.network_summary(df).loc["network"]
    ranked = [0.70, 0.90, 1.10, 0.80, 1.02, 0.95]  # median of six = mean of 0.90 and 0.95
    assert summary["median ratio"] == round(sorted(ranked)[2] / 2 + sorted(ranked)[3] / 2, 3) == 0.925
    assert summary["worst ratio"] == 1.10
    assert summary["groups ≤ 0.8×"] == "2 of 6"
    assert summary["unseen glacier"] == 1.02 and summary["unseen box"] == 0.95
