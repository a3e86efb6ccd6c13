"""Softmax benchmark: swinfpga's softmax LUT vs hls4ml 1.3.0's default softmax vs float softmax.

Rows are attention score codes taken from the golden model's taps:

* n = 4: ``swin-digits`` (the trained copy in ``swinfpga/models`` if present, else random weights) on
  sklearn digits images, every attention layer, rows whose shift mask keeps all 4 entries;
* n = 49: a random-weight ``swin-t-stage1`` block on random inputs (W-MSA-sized rows, shift mask all
  valid rows only).

Both C++ implementations run as compiled by hls4ml with g++: swinfpga's ``swin::softmax_lut`` layer,
and hls4ml's own ``Softmax`` layer with every setting at its hls4ml 1.3.0 default (implementation
'stable', table_size 1024, exp/inv tables ap_fixed<18,8,AP_RND,AP_SAT>, output ap_fixed<16,6>), fed
the same score codes in the same ap_fixed input type.  Reference: float64 softmax of the score values.

Reported per implementation: argmax flips (the output's argmax is not a float argmax) and max |error|
in LSBs of that implementation's output format (and as probability).

    python bench/softmax/run.py [--rows 10000] [--out bench/results]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from swinfpga import golden  # noqa: E402
from swinfpga.fixed import Fmt  # noqa: E402
from swinfpga.ir import nodes as N  # noqa: E402
from swinfpga.ir.graph import Model  # noqa: E402
from swinfpga.lut import SoftmaxSpec  # noqa: E402
from swinfpga.ops.fx import softmax_codes  # noqa: E402


@dataclass
class Stats:
    impl: str
    rows: int
    argmax_flips: int
    max_err_lsb: float
    max_err_prob: float
    mean_err_lsb: float
    out_type: str
    table: str


def attention_rows(model: Model, x: np.ndarray, rows: int) -> tuple[np.ndarray, SoftmaxSpec, str]:
    """(rows, n) score codes with every pair valid, from all attention layers of ``model``."""
    res = golden.run(model, x, taps=True)
    out, spec = [], None
    for n in model.of_type(N.WindowAttention):
        s = res.taps[f"{n.name}.scores"]  # B, nW, heads, N, N
        valid = n.valid_mask()  # nW, N, N
        full = np.broadcast_to(valid.all(axis=-1)[None, :, None, :], s.shape[:-1])
        out.append(s[full])
        spec = n.softmax
    assert spec is not None
    allrows = np.concatenate(out)
    return allrows[:rows], spec, f"{len(allrows)} available"


def float_softmax(s: np.ndarray, f: Fmt) -> np.ndarray:
    v = f.to_float(s)
    e = np.exp(v - v.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def stats(impl: str, p: np.ndarray, ref: np.ndarray, out_fmt: Fmt, table: str) -> Stats:
    err = np.abs(p - ref)
    pick = np.argmax(p, axis=-1)
    chosen = np.take_along_axis(ref, pick[:, None], axis=-1)[:, 0]
    flips = int(np.count_nonzero(chosen < ref.max(axis=-1) * (1 - 1e-12)))
    return Stats(impl, int(p.shape[0]), flips, float(err.max() / out_fmt.lsb), float(err.max()),
                 float(err.mean() / out_fmt.lsb), out_fmt.ap_type, table)


def hls4ml_default_softmax(scores: np.ndarray, score_fmt: Fmt, work: Path) -> tuple[np.ndarray, Fmt, str]:
    """hls4ml's own Softmax layer, all defaults, compiled with g++ (one row per predict sample)."""
    from hls4ml.backends import get_backend
    from hls4ml.model.graph import ModelGraph

    from swinfpga.backends.hls4ml.csim import _no_keras_import

    n = scores.shape[1]
    b = get_backend("Vitis")
    cfg = b.create_initial_config(io_type="io_parallel", write_weights_txt=False)
    cfg.update(OutputDir=str(work / f"hls4ml_softmax_{n}"), ProjectName="myproject", Backend="Vitis")
    cfg["HLSConfig"] = {"Model": {"Precision": "ap_fixed<16,6>", "ReuseFactor": 1, "Strategy": "Latency"},
                        "LayerName": {"scores": {"Precision": {"result": score_fmt.ap_type}}}}
    layers = [{"class_name": "InputLayer", "name": "scores", "input_shape": [n]},
              {"class_name": "Softmax", "name": "softmax", "activation": "softmax", "axis": -1,
               "inputs": ["scores"]}]
    g = ModelGraph.from_layer_list(cfg, layers)
    sm = g.graph["softmax"]
    desc = (f"{sm.get_attr('implementation')}, table_size {sm.get_attr('table_size')}, exp_table "
            f"{sm.get_attr('exp_table_t').precision.definition_cpp()}, inv_table "
            f"{sm.get_attr('inv_table_t').precision.definition_cpp()}")
    with _no_keras_import():
        g.compile()
    out_fmt = Fmt.parse(sm.get_output_variable().type.precision.definition_cpp())
    y = np.asarray(g.predict(np.ascontiguousarray(score_fmt.to_float(scores))), dtype=np.float64)
    return y.reshape(scores.shape), out_fmt, desc


def swinfpga_softmax(scores: np.ndarray, spec: SoftmaxSpec) -> np.ndarray:
    """swinfpga's swin::softmax_lut layer compiled through hls4ml; returns probability codes."""
    from swinfpga.backends.hls4ml.csim import compile_plans
    from swinfpga.backends.hls4ml.plan import plan_softmax

    rows = 100
    pad = (-scores.shape[0]) % rows
    s = np.concatenate([scores, np.zeros((pad, scores.shape[1]), dtype=np.int64)])
    cm = compile_plans(plan_softmax("bench_sm", spec, rows), 1, "Vitis", "xcvu13p-flga2577-2-e", 5.0, print)
    got = cm.predict_codes(s.reshape(-1, rows * s.shape[1])).reshape(s.shape)
    return got[: scores.shape[0]]


def bench_case(label: str, scores: np.ndarray, spec: SoftmaxSpec, work: Path) -> dict:
    f = spec.score_fmt
    ref = float_softmax(scores, f)
    ours = swinfpga_softmax(scores, spec)
    gold = softmax_codes(spec, scores)
    assert np.array_equal(ours, gold), "swinfpga C++ softmax differs from the golden definition"
    theirs, hfmt, hdesc = hls4ml_default_softmax(scores, f, work)
    sw_table = (f"exp {spec.exp.size} x {spec.exp.out_fmt.ap_type}, "
                f"recip {spec.recip.size} x {spec.recip.out_fmt.ap_type}")
    res = [stats("swinfpga softmax LUT (C++)", spec.prob_fmt.to_float(ours), ref, spec.prob_fmt, sw_table),
           stats("hls4ml 1.3.0 default softmax (C++)", theirs, ref, hfmt, hdesc)]
    return {"case": label, "n": int(scores.shape[1]), "score_type": f.ap_type, "rows": int(scores.shape[0]),
            "results": [asdict(r) for r in res]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    ap.add_argument("--skip-49", action="store_true", help="only the swin-digits rows (n = 4)")
    a = ap.parse_args()
    out = Path(a.out)
    work = out / "tmp"
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.time()

    from swinfpga.data import digits_split
    from swinfpga.ir.build import random_input, random_model
    from swinfpga.models import SWIN_DIGITS, SWIN_T_STAGE1
    from swinfpga.project import reference_model_path

    path = reference_model_path("swin-digits")
    if path.exists():
        model, which = Model.load(path), f"trained swin-digits ({path.relative_to(ROOT)})"
    else:
        model, which = random_model(SWIN_DIGITS), "random-weight swin-digits (no trained copy found)"
    d = digits_split()
    x = np.concatenate([d.x_test, d.x_train])
    rows, spec, avail = attention_rows(model, x, a.rows)
    cases = [bench_case(f"{which}, digits images, all attention layers ({avail})", rows, spec, work)]
    if not a.skip_49:
        m49 = random_model(SWIN_T_STAGE1)
        r49, s49, av49 = attention_rows(m49, random_input(m49, 2, seed=7), a.rows)
        cases.append(bench_case(f"random-weight swin-t-stage1 block, random inputs ({av49})", r49, s49, work))
    report = {"bench": "softmax", "seconds": round(time.time() - t0, 1), "cases": cases}
    out.mkdir(parents=True, exist_ok=True)
    (out / "softmax.json").write_text(json.dumps(report, indent=1))
    md = ["# Softmax: swinfpga LUT vs hls4ml default vs float", "",
          "Reference: float64 softmax of the same score codes. Flip: the implementation's argmax is not a float "
          "argmax. Error in LSBs of each implementation's own output type.", ""]
    for c in cases:
        md += [f"## {c['case']}", "", f"{c['rows']} rows of {c['n']} scores ({c['score_type']})", "",
               "| implementation | argmax flips | max err (LSB) | max err (prob) | mean err (LSB) | output | tables |",
               "|---|---|---|---|---|---|---|"]
        for r in c["results"]:
            md.append(f"| {r['impl']} | {r['argmax_flips']} | {r['max_err_lsb']:.3f} | {r['max_err_prob']:.5f} | "
                      f"{r['mean_err_lsb']:.3f} | `{r['out_type']}` | {r['table']} |")
        md.append("")
    (out / "softmax.md").write_text("\n".join(md))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
