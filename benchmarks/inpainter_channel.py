"""Issue 19 item 3, first stage: does the terrain inpainter's bed help the thickness network?

The inpainter hides every glacier of a simulated window and fills the terrain beneath from
the terrain around it; ``surface - that bed`` (clipped at 0, on ice) is offered to the
thickness network as a 16th input channel. Two fine-tunings of the shipped thickness network
are compared, identical but for that channel (same start, seed, batches and steps):

- ``with inpainter``: channel 16 = the inpainter's thickness (/100 m);
- ``control``: channel 16 = 0 (the shipped network fine-tuned the same way).

The new channel's first-layer weights start at zero, so both start as the shipped network.
They are scored on the simulated set's held-out windows (validation: Jura; test: New
Zealand and Cordillera Blanca, terrain no training window saw). Nothing measured is used:
this stage decides only whether the channel carries information the other 15 lack on the
glaciers the simulator makes (protocol: ``results/selection_protocol_inpainter_channel.md``).

    python benchmarks/inpainter_channel.py [--samples runs/span128/train/samples-011d63f13625.npz]
        [--inpainter src/glacierbed/weights/inpainting_net.pt] [--steps 1500]

Writes ``benchmarks/results/inpainter_channel.{csv,md}``; the inpainted channel is cached
beside the samples file (keyed by the inpainter's SHA-256).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from rich.progress import track

from glacierbed.core.atomic import replacing, write_text
from glacierbed.core.threads import torch_threads
from glacierbed.models.inpainting.network import NetworkInpainter
from glacierbed.models.runs import optimiser_step
from glacierbed.models.thickness.features import ELEV_SCALE_M, THICK_SCALE_M
from glacierbed.models.thickness.network import ThicknessNet, load_thickness_net
from glacierbed.models.thickness.training import _augment, _losses, evaluate
from glacierbed.core.errors import run_script

RESULTS = Path(__file__).resolve().parent / "results"


def inpainted_thickness(x: np.ndarray, res: np.ndarray, inpainter: NetworkInpainter) -> np.ndarray:
    """(N, H, W) float16: ``surface - inpainted bed`` on ice (/ THICK_SCALE_M, clipped at 0),
    from the features' relative surface (channel 0) and ice mask (channel 1)."""
    out = np.zeros((len(x), *x.shape[-2:]), np.float16)
    for i in track(range(len(x)), description="inpainting the simulated windows"):
        surface = x[i, 0].astype(np.float64) * ELEV_SCALE_M
        ice = x[i, 1] > 0.5
        if ice.any():
            bed = inpainter.inpaint(surface, ice, float(res[i]))
            out[i] = np.where(ice, np.clip(surface - bed, 0.0, None), 0.0) / THICK_SCALE_M
    return out


def cached_channel(samples: Path, split: str, data: dict, inpainter: NetworkInpainter) -> np.ndarray:
    cache = samples.with_name(f"{samples.stem}-inpainted-{inpainter.weights_sha256[:12]}-{split}.npy")
    if cache.exists():
        return np.load(cache)
    channel = inpainted_thickness(data["x"], data["res"], inpainter)
    with replacing(cache, keep_suffix=True) as tmp:
        np.save(tmp, channel)
    return channel


def widened(start: ThicknessNet) -> ThicknessNet:
    """The start network with one more input whose first-layer weights are zero (same outputs)."""
    net = replace(start.cfg, n_features=start.cfg.n_features + 1).build()
    state = start.state_dict()
    first = "stem.0.weight"
    w = state[first]
    state[first] = torch.cat([w, torch.zeros_like(w[:, :1])], dim=1)
    net.load_state_dict(state)
    return net


def with_channel(data: dict, channel: np.ndarray | None) -> dict:
    """``data`` with the 16th channel (zeros for the control) appended to ``x``."""
    extra = np.zeros((len(data["x"]), *data["x"].shape[-2:]), np.float16) if channel is None else channel
    return {**data, "x": np.concatenate([data["x"], extra[:, None]], axis=1)}


def fine_tune(start: ThicknessNet, train: dict, channel: np.ndarray | None, steps: int, batch: int, lr: float,
              w_mse: float, seed: int) -> ThicknessNet:
    net = widened(start).train()
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps + 1, pct_start=0.05)
    rng = np.random.default_rng(seed)
    zeros = np.zeros((batch, 1, *train["x"].shape[-2:]), np.float16)
    for _ in track(range(steps), description="fine-tuning " + ("with inpainter" if channel is not None else "control")):
        idx = np.sort(rng.integers(0, len(train["x"]), batch))
        extra = zeros if channel is None else channel[idx][:, None]
        b = {"x": np.concatenate([train["x"][idx], extra], axis=1), "truth": train["truth"][idx],
             "weight": train["weight"][idx]}
        nll, mse = _losses(net, _augment(b, rng))
        optimiser_step(net, opt, sched, nll + w_mse * mse)
    return net.eval()


def report(df: pd.DataFrame, meta: dict) -> str:
    piv = df.pivot_table(index=["split", "pixel size"], columns="variant", values="rmse_m").round(2)
    piv["with / control"] = (piv["with inpainter"] / piv["control"]).round(3)
    bias = df[df["pixel size"] == "all"].pivot_table(index="split", columns="variant", values="bias_m").round(2)
    test = df[(df.split == "test") & (df["pixel size"] == "all")].set_index("variant").rmse_m
    ratio = test["with inpainter"] / test["control"]
    verdict = ("**passes** (≤ 0.97×): a measured evaluation is the next stage" if ratio <= 0.97
               else "**fails** (> 0.97×): the channel is not offered to the shipped network")
    return "\n".join([
        "# The inpainter's bed as an input of the thickness network (issue 19 item 3, first stage)", "",
        f"Shipped thickness network (`{meta['start']}`) fine-tuned {meta['steps']} steps (batch {meta['batch']}, "
        f"peak lr {meta['lr']}) on `{meta['samples']}` ({meta['n_train']} training windows), twice: with the "
        f"inpainter's thickness (`{meta['inpainter']}`, sha256 `{meta['inpainter_sha256'][:12]}`) as a 16th input, and "
        "with that input at zero (control). Same seed and batches; the new input's first-layer weights start at 0. "
        f"{meta['minutes']:.0f} min on 2 CPU cores. RMSE (m) over the ice pixels of held-out simulated windows "
        "(validation: Jura; test: New Zealand + Cordillera Blanca).", "",
        piv.to_markdown(), "", "Bias (m, all pixel sizes):", "", bias.to_markdown(), "",
        f"Decision (protocol `selection_protocol_inpainter_channel.md`): pooled test RMSE with / control = "
        f"**{ratio:.3f}** → {verdict}.", ""])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", default="runs/span128/train/samples-011d63f13625.npz",
                    help="prepared thickness-training samples (glacierbed.models.thickness.training.prepare)")
    ap.add_argument("--inpainter", default="src/glacierbed/weights/inpainting_net.pt")
    ap.add_argument("--start", default="src/glacierbed/weights/thickness_net.pt")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--w-mse", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(RESULTS / "inpainter_channel"))
    a = ap.parse_args()
    samples = Path(a.samples)
    with np.load(samples, allow_pickle=False) as z:
        data = {s: {k: z[f"{s}/{k}"] for k in ("x", "truth", "weight", "res")} for s in ("train", "val", "test")}
    inpainter = NetworkInpainter.load(a.inpainter)
    t0 = time.perf_counter()
    rows = []
    with torch_threads(2):
        channels = {s: cached_channel(samples, s, d, inpainter) for s, d in data.items()}
        start, _ = load_thickness_net(a.start)
        for variant, use in (("with inpainter", True), ("control", False)):
            net = fine_tune(start, data["train"], channels["train"] if use else None, a.steps, a.batch, a.lr,
                            a.w_mse, a.seed)
            for split in ("val", "test"):
                scores = evaluate(net, with_channel(data[split], channels[split] if use else None))
                for key, value in scores.items():
                    if key.startswith("rmse_"):
                        size = "all" if key == "rmse_m" else key[len("rmse_"):]
                        rows.append({"variant": variant, "split": split, "pixel size": size, "rmse_m": value,
                                     "bias_m": scores["bias_m"] if size == "all" else np.nan})
    df = pd.DataFrame(rows)
    meta = dict(start=a.start, steps=a.steps, batch=a.batch, lr=a.lr, samples=a.samples, n_train=len(data["train"]["x"]),
                inpainter=a.inpainter, inpainter_sha256=inpainter.weights_sha256,
                minutes=(time.perf_counter() - t0) / 60)
    out = Path(a.out)
    with replacing(out.with_suffix(".csv"), keep_suffix=True) as tmp:
        df.to_csv(tmp, index=False, float_format="%.3f")
    md = report(df, meta)
    write_text(out.with_suffix(".md"), md)
    print(md)


if __name__ == "__main__":
    run_script(main)
