"""What per-channel integer bits alone save: da4ml cost of a trained model with its activation
formats fitted to the golden ranges, per tensor and per channel.

Every requant site that may carry a per-channel format (``swinfpga.ir.graph.chan_sites``: linear
outputs but a GELU MLP's fc1, a ReLU MLP's hidden layer, LayerNorm, residual adds, pooling) is
refitted from the golden model's codes on the ``--fit`` images (default: the 360 digits test
images), fraction bits unchanged:

* ``per-tensor``: the model as committed (one format per tensor);
* ``fitted per tensor``: each tensor's integer bits cut to the widest code seen in it (a plain,
  narrower format);
* ``fitted per channel``: each channel's integer bits cut to its own widest code (a
  :class:`~swinfpga.fixed.ChanFmt` inside the committed format; a channel that was 0 on every
  image is pruned to 0 bits).

Each variant is traced at the natural II (balanced pipeline) and checked with da4ml's int64
interpreter against golden on the test images; golden accuracy is measured on the test split
(the fit set, where fitted formats cannot saturate) and on the train split (not used for the fit:
saturation shows there), with the saturation count of the refitted sites.  Cost: da4ml's
LUT-equivalent figure (not a synthesis count).

Writes ``bench/results/chan_fit.{json,md}``.

    python bench/rtl/chan_fit.py [--model swin-digits] [--ii N]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def tap_name(n: Any, path: str) -> str:
    """The golden tap holding the codes of site ``path`` of node ``n`` (see ``swinfpga.ops``)."""
    if path in ("linear.out_fmt", "out_fmt"):
        return n.name
    if path == "norm.out_fmt":
        return n.norm.name
    if path == "hidden_fmt":
        return f"{n.name}.act"
    return f"{n.name}.{path.split('.')[0]}"  # q / k / v / proj / fc1 / fc2


def set_field(obj: Any, path: str, value: Any) -> Any:
    """``obj`` with the dotted field ``path`` replaced (frozen dataclasses)."""
    head, _, rest = path.partition(".")
    return replace(obj, **{head: set_field(getattr(obj, head), rest, value) if rest else value})


def ranges(model: Any, x: np.ndarray, chunk: int = 256) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per golden tap: (min, max) code per channel (last axis) over the images ``x``."""
    from swinfpga import golden

    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for s in range(0, len(x), chunk):
        for k, v in golden.run(model, x[s: s + chunk], taps=True).taps.items():
            c = np.asarray(v).reshape(-1, np.asarray(v).shape[-1]) if np.ndim(v) else None
            if c is None or c.size == 0:
                continue
            lo, hi = c.min(axis=0), c.max(axis=0)
            if k in out:
                lo, hi = np.minimum(out[k][0], lo), np.maximum(out[k][1], hi)
            out[k] = (lo, hi)
    return out


def bits_needed(lo: int, hi: int, fmt: Any) -> int:
    """Fewest bits holding codes ``lo..hi`` (codes of ``fmt``, same LSB) in ``fmt``'s signedness and
    overflow mode; 0 when every code is 0; at most ``fmt.width``."""
    lo, hi = min(int(lo), 0), max(int(hi), 0)
    if lo == hi == 0:
        return 0
    if not fmt.signed:
        return min(fmt.width, max(1, hi.bit_length()))
    b_hi = hi.bit_length() + 1 if hi > 0 else 1
    b_lo = ((-lo).bit_length() if fmt.overflow == "SAT_SYM" else (-lo - 1).bit_length()) + 1 if lo < 0 else 1
    return min(fmt.width, max(2, b_hi, b_lo))


def fit(model: Any, rng: dict[str, tuple[np.ndarray, np.ndarray]], per_channel: bool) -> tuple[Any, list[dict]]:
    """``model`` with every per-channel-capable site refitted (see module docstring)."""
    from swinfpga.fixed import ChanFmt, Fmt
    from swinfpga.ir.graph import Model, chan_sites

    info = model.infer()
    nodes, sites = [], []
    for n in model.nodes:
        ins = [info[i] for i in n.inputs]
        for path in chan_sites(n, ins):
            fmt = n
            for part in path.split("."):
                fmt = getattr(fmt, part)
            lo, hi = rng[tap_name(n, path)]
            if per_channel:
                chans = []
                for j in range(len(lo)):
                    b = bits_needed(lo[j], hi[j], fmt)
                    chans.append((b, b - fmt.frac) if b else (0, 0))
                new = ChanFmt(fmt.signed, fmt.width, fmt.int_bits, fmt.rounding, fmt.overflow, chans=tuple(chans))
                bits = [w for w, _ in chans]
            else:
                b = bits_needed(lo.min(), hi.max(), fmt) or fmt.width
                new = Fmt(fmt.signed, b, b - fmt.frac, fmt.rounding, fmt.overflow)
                bits = [b] * len(lo)
            n = set_field(n, path, new)
            sites.append({"site": f"{n.name}.{path}", "tap": tap_name(n, path), "fmt": fmt.ap_type,
                          "channels": len(bits), "bits_before": fmt.width * len(bits), "bits_after": int(sum(bits)),
                          "pruned": int(sum(1 for b in bits if b == 0))})
        nodes.append(n)
    return Model(model.name, tuple(nodes), model.output, {**model.meta, "chan_fit": per_channel}), sites


def measure(name: str, model: Any, split: Any, ii: int | None, sites: list[dict]) -> dict:
    from swinfpga import golden
    from swinfpga.backends.rtl.build import build_model, check_traced

    row: dict[str, Any] = {"design": name}
    for part, x, y in (("test", split.x_test, split.y_test), ("train", split.x_train, split.y_train)):
        res = golden.run(model, x)
        row[f"acc_{part}"] = float(np.mean(np.argmax(res.output, axis=-1) == y))
        row[f"saturated_{part}"] = int(sum(res.overflow.get(s["tap"], 0) for s in sites))
    t0 = time.perf_counter()
    built, _ = build_model(model, 200.0, top="chanfit", ii=ii)
    row["trace_seconds"] = round(time.perf_counter() - t0, 1)
    row["units"] = [{"unit": b.seg.name, "kind": b.seg.kind, "cost": float(b.cost)} for b in built]
    row["cost"] = float(sum(b.cost for b in built))
    row["traced_mismatches"] = check_traced(model, built, split.x_test)
    row["sites"] = sites
    print(json.dumps({k: v for k, v in row.items() if k not in ("sites", "units")}), flush=True)
    return row


def write(res: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "chan_fit.json").write_text(json.dumps(res, indent=1))
    base = res["rows"][0]["cost"]
    md = [f"# Per-channel integer bits fitted to golden ranges: {res['model']}", "",
          f"Command: `{res['command']}`.  Activation formats at every site that may be per channel "
          f"({len(res['rows'][0]['sites'])} sites: linear outputs, ReLU hidden, LayerNorm, residual adds, pool) "
          "refitted from the golden codes of the digits images (per channel: integer bits from the channel's "
          "widest code, a channel that is 0 on every image pruned; per tensor: from the tensor's widest code), "
          "fraction bits unchanged; weights, attention scores/probabilities and tables as committed.  Fit set "
          f"(test): the {res['fit_images']['test']} test images, as the brief asks (fitted formats cannot saturate "
          f"there, so test accuracy is unchanged; the {res['fit_images']['train']} train images are held out); "
          "(train): the train images (the test images held out).  Cost: da4ml's LUT-equivalent figure at 200 "
          f"MHz, II {res['ii']} (balanced pipeline); not a synthesis count.  Accuracy: golden model.  Saturated: "
          "requant results clipped at the refitted sites (the committed formats clip some already).", "",
          "| design | da4ml cost | vs committed | activation bits (refitted sites) | pruned channels | "
          "acc test | acc train | saturated test | saturated train | traced mismatches |",
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in res["rows"]:
        bits = sum(s["bits_after"] for s in r["sites"])
        before = sum(s["bits_before"] for s in r["sites"])
        md.append(f"| {r['design']} | {r['cost']:,.0f} | {r['cost'] / base:.3f} | {bits:,} / {before:,} | "
                  f"{sum(s['pruned'] for s in r['sites'])} | {r['acc_test']:.4f} | {r['acc_train']:.4f} | "
                  f"{r['saturated_test']:,} | {r['saturated_train']:,} | {r['traced_mismatches']} |")
    md += ["", "## Per unit", "", "| unit | kind | " + " | ".join(r["design"] for r in res["rows"]) + " |",
           "|---|---|" + "---:|" * len(res["rows"])]
    for j, u in enumerate(res["rows"][0]["units"]):
        md.append(f"| {u['unit']} | {u['kind']} | " + " | ".join(f"{r['units'][j]['cost']:,.0f}" for r in res["rows"])
                  + " |")
    pc = next((r for r in res["rows"] if r["design"] == "fitted per channel (test)"), res["rows"][-1])
    md += ["", f"## Sites ({pc['design']})", "", "| site | committed | bits before | bits after | pruned |",
           "|---|---|---:|---:|---:|"]
    for s in pc["sites"]:
        md.append(f"| {s['site']} | {s['fmt']} | {s['bits_before']} | {s['bits_after']} | {s['pruned']} |")
    (out / "chan_fit.md").write_text("\n".join(md) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="swin-digits")
    ap.add_argument("--ii", type=int, default=None, help="initiation interval (default: natural)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    a = ap.parse_args()
    from swinfpga.backends.rtl.plan import balance_segments
    from swinfpga.data import digits_split
    from swinfpga.project import resolve_model

    model = resolve_model(a.model)
    split = digits_split()
    cmd = "python bench/rtl/chan_fit.py" + (f" --model {a.model}" if a.model != "swin-digits" else "") + (
        f" --ii {a.ii}" if a.ii else "")
    res: dict[str, Any] = {"model": a.model, "command": cmd, "fit_images": {"test": int(split.x_test.shape[0]),
                                                                             "train": int(split.x_train.shape[0])},
                           "ii": balance_segments(model, a.ii)[1], "rows": []}
    for fit_on in ("test", "train"):
        rng = ranges(model, split.x_test if fit_on == "test" else split.x_train)
        pt, pt_sites = fit(model, rng, per_channel=False)
        pc, pc_sites = fit(model, rng, per_channel=True)
        todo = [(f"fitted per tensor ({fit_on})", pt, pt_sites), (f"fitted per channel ({fit_on})", pc, pc_sites)]
        if fit_on == "test":
            todo.insert(0, ("committed (per tensor)", model,
                            [{**s, "bits_after": s["bits_before"], "pruned": 0} for s in pt_sites]))
        for name, m, sites in todo:
            res["rows"].append({**measure(name, m, split, a.ii, sites), "fit": fit_on})
            write(res, Path(a.out))

if __name__ == "__main__":
    main()
