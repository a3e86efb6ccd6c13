"""Softmax table sizing: the analytic widths (before) vs the proven narrowest widths (``design_softmax``).

For each score format and row length ``n`` (4, 9, 16, 49), both designs get:

* widths P, E, B, R and table sizes;
* the proof (:func:`swinfpga.softmax_sizing.prove`): ``exhaustive`` over every row where the
  multisets of ``d = max - s`` fit (n = 4), else the rigorous per-cell ``bound``; its max error (LSB
  of the probability output; a bound for ``bound``) and whether no argmax flip is proven;
* a check that is not a proof: 10,000 random rows (uniform and N(0, 2) scores, unmasked and 30 %
  masked) plus structured adversarial rows (:func:`~swinfpga.softmax_sizing.adversarial_check`):
  max error vs float64 softmax and rows with a flip;
* da4ml's LUT-equivalent cost of one traced row (``trace._softmax_rows`` via
  ``bench/rtl/softmax_scaling._trace_row``; 200 MHz-independent combinational cost), split into exp
  lookups, the row sum and the rest (normalise, reciprocal, products), after checking the trace
  bit-exact against ``softmax_codes`` on 3,000 random rows with da4ml's interpreter.

Writes ``bench/results/softmax_sizing.{json,md}``::

    nice -n 10 python bench/softmax/sizing.py [--rows 10000] [--n 4 9 16 49]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench" / "rtl"))

from swinfpga.fixed import Fmt  # noqa: E402
from swinfpga.ops import softmax_codes  # noqa: E402
from swinfpga.softmax_sizing import (  # noqa: E402
    adversarial_check,
    build_spec,
    design_softmax,  # noqa: E402
    exhaustive,
    prove,
    widths,
)

FMTS = {"ap_fixed<8,4>": Fmt(True, 8, 4, "RND", "SAT"), "ap_fixed<8,5>": Fmt(True, 8, 5, "RND", "SAT")}


def cost_row(sm) -> dict:
    from softmax_scaling import _trace_row

    comb, c_exp, c_sum, _ = _trace_row(sm, False)
    f = sm.score_fmt
    rng = np.random.default_rng(sm.n)
    s = np.concatenate([rng.integers(f.min_code, f.max_code + 1, (1500, sm.n)),
                        np.clip(rng.normal(0, 2 / f.lsb, (1500, sm.n)).round(), f.min_code, f.max_code)])
    s = s.astype(np.int64)
    got = np.round(np.asarray(comb.predict(s * f.lsb)) / sm.prob_fmt.lsb).astype(np.int64)
    return {"cost": float(comb.cost), "exp_cost": c_exp, "sum_cost": c_sum,
            "norm_recip_mul_cost": float(comb.cost) - c_exp - c_sum, "latency": float(max(comb.latency)),
            "trace_mismatches": int(np.count_nonzero(got != softmax_codes(sm, s))), "trace_rows": int(len(s))}


def one(fmt_name: str, n: int, design: str, rows: int) -> dict:
    f = FMTS[fmt_name]
    t0 = time.perf_counter()
    sm = design_softmax("t", f, n, design=design)
    t_design = time.perf_counter() - t0
    p, e, b, r = widths(sm)
    t0 = time.perf_counter()
    pr = prove(sm)
    t_proof = time.perf_counter() - t0
    err, flips = adversarial_check(sm, rows=rows)
    row = {"score": fmt_name, "n": n, "design": design, "P": p, "E": e, "B": b, "R": r,
           "exp_entries": sm.exp.size, "recip_entries": sm.recip.size, "product_bits": f"{e + 1}x{r + 1}",
           "proof": pr.method, "proof_max_err_lsb": round(pr.max_err_lsb, 4), "proof_flip_free": pr.flip_free,
           "proof_cases": pr.cases, "proof_seconds": round(t_proof, 2), "design_seconds": round(t_design, 2),
           "check_rows": rows, "check_max_err_lsb": round(err, 4), "check_flips": flips, **cost_row(sm)}
    if design == "proven":  # one bit less in E, B or R: the observed error (exhaustive where the proof is)
        for tag, w in (("E-1", (p, e - 1, b, r)), ("B-1", (p, e, b - 1, r)), ("R-1", (p, e, b, r - 1))):
            if min(w) < 1 or w[2] > w[1]:
                continue
            nar = build_spec("t", f, n, *w)
            if pr.method == "exhaustive":
                ne, nf, _ = exhaustive(nar)
            else:
                ne, nf = adversarial_check(nar, rows=rows)
            row[f"narrower_{tag}"] = {"max_err_lsb": round(ne, 4), "flips": nf}
    print(json.dumps(row), flush=True)
    return row


def markdown(rows: list[dict]) -> str:
    md = ["# Softmax sizing: analytic widths vs proven narrowest widths", "",
          "P: probability fraction bits; E: exp / row-sum fraction bits; B: reciprocal address bits; R: "
          "reciprocal fraction bits. Guarantees: every output within 1 LSB (2^-P) of the float64 softmax of the "
          "same score codes (any subset masked), and no argmax flip (a strictly largest score gets a strictly "
          "larger code). *Proof*: `exhaustive` = every row (multisets of max - s, masked entries included) run "
          "through `softmax_codes`, the float reference bounded over the clipped exp-table tail; `bound` = the "
          "rigorous per-cell bound of `swinfpga/softmax_sizing.py` (an upper bound, not an observed error); "
          "the flip proof evaluates the integer output of the top two exp codes in every reachable "
          "(shift, reciprocal address) cell. *Check*: random rows (half uniform, half N(0, 2); unmasked and 30% "
          "masked) plus structured adversarial rows; not a proof. Cost: da4ml LUT-equivalents of one traced row "
          "(`trace._softmax_rows`), bit-exact to `softmax_codes` on 3,000 rows (mismatches column).", "",
          "| scores | n | design | P | E | B | R | exp x recip entries | product | proof | proven max err (LSB) | "
          "flip-free | check max err (LSB) | check flips | da4ml cost / row | exp | sum | norm+recip+mul | "
          "trace mismatches |",
          "|---|---:|---|---:|---:|---:|---:|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        md.append(f"| {r['score']} | {r['n']} | {r['design']} | {r['P']} | {r['E']} | {r['B']} | {r['R']} | "
                  f"{r['exp_entries']} x {r['recip_entries']} | {r['product_bits']} | {r['proof']} "
                  f"({r['proof_cases']:,} {'rows' if r['proof'] == 'exhaustive' else 'cells'}) | "
                  f"{r['proof_max_err_lsb']:.3f} | {'yes' if r['proof_flip_free'] else 'NO'} | "
                  f"{r['check_max_err_lsb']:.3f} | {r['check_flips']} | {r['cost']:,.0f} | {r['exp_cost']:,.0f} | "
                  f"{r['sum_cost']:,.0f} | {r['norm_recip_mul_cost']:,.0f} | {r['trace_mismatches']} |")
    md += ["", "Is it the narrowest? The proven design with one bit less in E, B or R, checked the same way "
           "(exhaustively where the proof is exhaustive, else the random + adversarial rows): max error in LSB "
           "(> 1 = the guarantee is broken by an actual row).", "",
           "| scores | n | proven P/E/B/R | E-1 | B-1 | R-1 |", "|---|---:|---|---:|---:|---:|"]
    for r in rows:
        if r["design"] == "proven":
            cells = [f"{r[k]['max_err_lsb']:.3f}" if k in r else "-" for k in ("narrower_E-1", "narrower_B-1",
                                                                                "narrower_R-1")]
            md.append(f"| {r['score']} | {r['n']} | {r['P']}/{r['E']}/{r['B']}/{r['R']} | " + " | ".join(cells) + " |")
    md += ["", "Cost per row, analytic -> proven:"]
    for r in rows:
        if r["design"] != "proven":
            continue
        old = next(o for o in rows if o["design"] == "analytic" and o["score"] == r["score"] and o["n"] == r["n"])
        md.append(f"- {r['score']}, n = {r['n']}: {old['cost']:,.0f} -> {r['cost']:,.0f} "
                  f"({r['cost'] / old['cost'] - 1:+.0%}); widths P/E/B/R {old['P']}/{old['E']}/{old['B']}/{old['R']} "
                  f"-> {r['P']}/{r['E']}/{r['B']}/{r['R']}")
    md += ["", "Command: `nice -n 10 python bench/softmax/sizing.py`", ""]
    return "\n".join(md)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--n", type=int, nargs="*", default=[4, 9, 16, 49])
    ap.add_argument("--scores", nargs="*", default=list(FMTS))
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    a = ap.parse_args()
    t0 = time.time()
    rows = [one(fn, n, d, a.rows) for fn in a.scores for n in a.n for d in ("analytic", "proven")]
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    rep = {"bench": "softmax_sizing", "seconds": round(time.time() - t0, 1), "rows": rows}
    (out / "softmax_sizing.json").write_text(json.dumps(rep, indent=1))
    md = markdown(rows)
    (out / "softmax_sizing.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
