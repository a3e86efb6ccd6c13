"""A TRAINED HGQ2 jet-shape model through swinfpga's HLS and RTL back ends, beside the 279k-LUT anchor.

Trains the HGQ2 jet classifier of ``bench/hgq2/import_check.py`` (16 particles x 3 features, embed 16,
2 heads, 2 blocks of QMultiHeadAttention + MLP, 5 classes; per-tensor data quantizers,
``QuantizerConfigScope(place="datalane", heterogeneous_axis=())``, per-element weight bit widths) with
HGQ2's EBOPs penalty (``--beta``) on a deterministic SYNTHETIC jet-like data set made here (nothing is
downloaded; the accuracy means nothing physical).  Then: ``from_hgq2_model`` (golden vs HGQ2 on the
test set), ``convert`` (HLS io_parallel + RTL), ``verify --csim`` and ``verify --rtl --sim verilator`` on
``--vectors`` vectors, da4ml's int64 interpreter of the traced program vs golden, and optionally Yosys
on the RTL unit(s) (``--yosys SECONDS``).

    TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 nice -n 15 python bench/hgq2/trained_jet.py \
        [--beta 1e-5] [--epochs 16] [--mha-min-frac 5] [--vectors 64] [--sim verilator|icarus|none] [--yosys 1200]

Stages are cached in ``--work`` (the trained ``jet.keras`` is reused when its settings match).
Writes bench/results/hgq2_trained_jet.json and .md (after every stage).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench" / "hgq2"))

T, F, E, HEADS, BLOCKS, CLASSES = 16, 3, 16, 2, 2, 5
ANCHOR = {"ref": "Laatu, Sun et al. 2025 (HGQ + da4ml multi-head attention, 16 particles x 3 features)",
          "lut": 279_000, "latency_ns": 98, "ii": 1}
# class -> (number of prongs, angular width of each prong, prong separation, leading prong pT share)
CLASS_SHAPES = [(1, 0.30, 0.0, 1.0), (1, 0.10, 0.0, 1.0), (2, 0.08, 0.40, 0.5), (3, 0.08, 0.45, 0.4),
                (2, 0.06, 0.20, 0.8)]


def synthetic_jets(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` synthetic jets, float32 ``(n, 16, 3)`` features (log pT - 1, eta, phi relative to the jet axis;
    particles sorted by falling pT) and int labels 0..4.  Classes differ in prong count, width, separation and
    pT sharing (:data:`CLASS_SHAPES`); everything is drawn from ``numpy.random.default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, CLASSES, n)
    x = np.empty((n, T, F), np.float32)
    for c, (prongs, width, sep, lead) in enumerate(CLASS_SHAPES):
        idx = np.flatnonzero(y == c)
        m = idx.size
        ang = rng.uniform(0, 2 * np.pi, (m, 1)) + np.arange(prongs) * 2 * np.pi / prongs
        centre = sep * np.stack([np.cos(ang), np.sin(ang)], -1) * rng.uniform(0.7, 1.3, (m, 1, 1))  # (m, prongs, 2)
        share = np.array([lead] + [(1 - lead) / max(prongs - 1, 1)] * (prongs - 1))
        which = np.stack([rng.choice(prongs, T, p=share) for _ in range(m)])  # (m, T)
        pos = np.take_along_axis(centre, which[..., None].repeat(2, -1), 1) + rng.normal(0, width, (m, T, 2))
        pt = rng.exponential(1.0, (m, T)) * np.where(which == 0, 1.0 + lead, 1.0) + 0.05
        order = np.argsort(-pt, 1)
        pt, pos = np.take_along_axis(pt, order, 1), np.take_along_axis(pos, order[..., None].repeat(2, -1), 1)
        x[idx, :, 0] = np.log(pt)
        x[idx, :, 1:] = pos * 4.0  # eta, phi in units of 0.25
    return x, y


def build(min_frac: int, mha_min_frac: int):
    """The jet classifier of import_check.build (same layers and names), with trainable default bit widths;
    data quantizers keep at least ``min_frac`` fraction bits (so no activation tensor is pruned to 0 bits,
    which swinfpga's import refuses); inside the attention layers at least ``mha_min_frac`` (softmax outputs are
    below 1: with too few fraction bits HGQ2 prunes the whole attention to 0 bits)."""
    import keras
    from hgq.config import QuantizerConfigScope
    from hgq.constraints import MinMax
    from hgq.layers import QAdd, QDense, QGlobalAveragePooling1D, QMultiHeadAttention

    with QuantizerConfigScope(place="datalane", heterogeneous_axis=(), fc=MinMax(min_frac, 24)):
        inp = keras.Input((T, F), name="particles")
        x = QDense(E, name="embed")(inp)
        for b in range(BLOCKS):
            with QuantizerConfigScope(place="datalane", heterogeneous_axis=(),
                                      fc=MinMax(max(min_frac, mha_min_frac), 24)):
                a = QMultiHeadAttention(HEADS, E // HEADS, name=f"mha{b}", fuse="qkv")(x, x)
            x = QAdd(name=f"res{b}a")([x, a])
            h = QDense(2 * E, activation="relu", name=f"fc{b}a")(x)
            x = QAdd(name=f"res{b}b")([x, QDense(E, name=f"fc{b}b")(h)])
        return keras.Model(inp, QDense(CLASSES, name="head")(QGlobalAveragePooling1D(name="pool")(x)),
                           name="jet-16x3-hgq2-trained")


def ebops(model) -> int:
    """HGQ2's effective bit operations of the model (sum of every enabled layer's ``_ebops``)."""
    from hgq.layers import QLayerBase

    return int(sum(float(np.asarray(q._ebops)) for q in model._flatten_layers()
                   if isinstance(q, QLayerBase) and q.enable_ebops))


def train(a: argparse.Namespace, work: Path) -> tuple[object, dict]:
    """Train (or reload) the model; returns (model, training summary)."""
    import keras
    from hgq.config import LayerConfigScope
    from hgq.utils import trace_minmax
    from hgq.utils.sugar import FreeEBOPs

    xtr, ytr = synthetic_jets(a.train, seed=a.seed)
    xte, yte = synthetic_jets(a.test, seed=a.seed + 1)
    path, meta = work / "jet.keras", work / "train.json"
    key = {"beta": a.beta, "epochs": a.epochs, "train": a.train, "test": a.test, "seed": a.seed, "lr": a.lr,
           "min_frac": a.min_frac, "mha_min_frac": a.mha_min_frac}
    if path.exists() and meta.exists() and json.loads(meta.read_text())["key"] == key:
        model = keras.models.load_model(path)
        return model, json.loads(meta.read_text())["summary"]
    keras.utils.set_random_seed(a.seed)
    with LayerConfigScope(beta0=a.beta):
        model = build(a.min_frac, a.mha_min_frac)
    model.compile(optimizer=keras.optimizers.Adam(a.lr),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    t0 = time.perf_counter()
    hist = model.fit(xtr, ytr, batch_size=128, epochs=a.epochs, validation_data=(xte, yte), verbose=2,
                     callbacks=[FreeEBOPs()])
    t_train = time.perf_counter() - t0
    trace_minmax(model, xtr, batch_size=1024)  # WRAP data quantizers: integer bits from the training data
    acc = float(np.mean(np.argmax(np.asarray(model.predict(xte, batch_size=1024, verbose=0)), 1) == yte))
    summary = {"train_seconds": round(t_train, 1), "keras_test_accuracy": round(acc, 4), "ebops": ebops(model),
               "history": {k: [round(float(v), 5) for v in vs] for k, vs in hist.history.items()}}
    model.save(path)
    meta.write_text(json.dumps({"key": key, "summary": summary}, indent=1))
    return model, summary


def widen_zero_bit_softmax(model, x: np.ndarray, bits: int) -> list[str]:
    """Give every QMultiHeadAttention softmax output quantizer that training pruned to 0 bits (one per-tensor
    format: the attention output is then all zeros, which swinfpga's import refuses) ``bits`` bits, by raising
    its fraction bits; re-traces min/max on ``x``.  Returns what was changed (the model is then no longer
    exactly the trained one; accuracies and EBOPs are reported after the change)."""
    from hgq.layers import QMultiHeadAttention
    from hgq.utils import trace_minmax

    changed = []
    for _ in range(3):
        again = False
        for layer in model.layers:
            if not isinstance(layer, QMultiHeadAttention):
                continue
            for q in layer._flatten_layers(include_self=False, recursive=True):
                if not re.fullmatch(r"q_softmax(_\d+)?_oq", q.path.split("/")[-1]):
                    continue
                fq = q.quantizer
                k, i, f = (float(np.round(np.max(np.asarray(v)))) for v in (fq.k, fq.i, fq.f))
                if k + i + f >= bits:
                    continue
                new_f = bits - k - i
                changed.append(f"{q.path}: k={k:g} i={i:g} f={f:g} -> f={new_f:g}")
                fq._f.assign(np.full(fq._f.shape, new_f, np.float32))
                again = True
        if not again:
            break
        trace_minmax(model, x, batch_size=1024)
    return changed


def golden_check(model, a: argparse.Namespace) -> dict:
    """Import with from_hgq2_model; golden vs HGQ2 inference on the (input-quantized) synthetic test set."""
    from swinfpga import golden
    from swinfpga.frontend.hgq2 import from_hgq2_model

    t0 = time.perf_counter()
    ir = from_hgq2_model(model)
    t_imp = time.perf_counter() - t0
    xte, yte = synthetic_jets(a.test, seed=a.seed + 1)
    fin = ir.input.fmt
    codes = np.asarray(fin.from_float(xte.astype(np.float64)), np.int64)  # the embed layer's input quantizer
    y = np.asarray(model.predict(fin.to_float(codes).astype(np.float32), batch_size=1024, verbose=0), np.float64)
    want = np.ldexp(y, ir.infer()[ir.output].fmt.frac)
    got = golden.predict(ir, codes.reshape(len(codes), T, 1, F))
    return {"import_seconds": round(t_imp, 1), "input_format": str(fin), "hgq2_check": ir.meta.get("hgq2_check"),
            "test_jets": int(len(codes)), "logit_codes": int(got.size),
            "hgq2_vs_golden_differing": int(np.sum(got != want)),
            "golden_test_accuracy": round(float(np.mean(np.argmax(got.reshape(len(codes), -1), 1) == yte)), 4)}


def backends(a: argparse.Namespace, work: Path, res: dict, flush) -> None:
    """convert (HLS + RTL), verify --csim, traced interpreter check, verify --rtl; fills ``res`` stage by stage."""
    from backends import _timed, interpreter_check

    from swinfpga.cli import main as cli

    out = work / "proj"
    if not (out / "rtl" / "rtl.json").exists() or a.force:
        rc, t = _timed(cli, ["convert", str(work / "jet_used.keras"), "-o", str(out), "--vectors", str(a.vectors),
                             "--force"])
        res["seconds"]["convert"] = t
        if rc != 0:
            raise SystemExit(f"convert failed (exit {rc})")
    rtl_json = json.loads((out / "rtl" / "rtl.json").read_text())
    est = json.loads((out / "hls" / "hls_estimate.json").read_text())["CSynthesisReport"]
    ir = json.loads((out / "model.json").read_text())
    sms = [n["softmax"]["__softmax__"] for n in ir["nodes"] if n["__type__"] == "WindowAttention"]
    res.update({
        "clock_mhz": rtl_json["clock_mhz"], "da4ml_cost_total": rtl_json["da4ml_cost_total"],
        "da4ml_cost_per_unit": _unit_costs(rtl_json),
        "rtl_planned_latency_cycles": sum(rtl_json["layer_cycles"].values()),
        "layer_cycles": rtl_json["layer_cycles"], "hls_estimate_latency_cycles": est["WorstLatency"],
        "softmax_kinds": sorted({s.get("kind", "swinfpga") for s in sms}),
        "exp_table_entries": [2 ** s["exp"]["in_fmt"]["width"] for s in sms],
        "inverse_table_entries": [2 ** s["recip"]["in_fmt"]["width"] for s in sms]})
    flush()
    rep = work / "csim.json"
    rc, t = _timed(cli, ["verify", str(out), "--csim", "--json", str(rep)])
    c = json.loads(rep.read_text())["csim"] if rep.exists() else {}
    res["seconds"]["csim"] = t
    res.update({"csim_exit": rc, "csim_mismatches": c.get("mismatches"), "csim_samples": c.get("samples")})
    res["traced_interpreter_mismatches"] = interpreter_check(out, rtl_json["clock_mhz"])
    flush()
    if a.sim == "none":
        return
    rep = work / "rtl.json"
    rc, t = _timed(cli, ["verify", str(out), "--rtl", "--sim", a.sim, "--json", str(rep)])
    r = json.loads(rep.read_text())["rtl"] if rep.exists() else {}
    res["seconds"]["rtl_sim"] = t
    res.update({"rtl_exit": rc, "simulator": a.sim, "rtl_mismatches": r.get("mismatches"),
                "rtl_samples": r.get("samples"), "rtl_latency_cycles": r.get("latency_cycles"),
                "rtl_ii_cycles": r.get("ii_cycles"), "rtl_build_seconds": r.get("build_seconds"),
                "rtl_run_seconds": r.get("run_seconds")})
    flush()


def _unit_costs(rtl_json: dict) -> dict:
    """da4ml LUT-eq per traced unit (rtl.json ``units``)."""
    return {u["unit"]: u["da4ml_cost"] for u in rtl_json["units"]}


def yosys(a: argparse.Namespace, work: Path) -> dict:
    """Yosys ``synth_xilinx`` on every traced unit (bench/yosys/run.py's synth_unit; native yosys, cached)."""
    import importlib.util

    from swinfpga.backends.rtl.build import build_model
    from swinfpga.ir.graph import Model

    spec = importlib.util.spec_from_file_location("yosys_run", ROOT / "bench" / "yosys" / "run.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = work / "proj"
    clock = json.loads((out / "rtl" / "rtl.json").read_text())["clock_mhz"]
    built, _ = build_model(Model.load(out / "model.json"), clock)
    rows = [mod.synth_unit("jet-16x3-hgq2-trained", b, a.yosys) for b in built]
    ok = all(r["status"] == "ok" for r in rows)
    tot = {k: sum(r[k] or 0 for r in rows) for k in ("lut", "ff", "dsp")}
    summary = (f"{tot['lut']:,} / {tot['ff']:,} / {tot['dsp']:,}" if ok else
               "not finished: " + ", ".join(f"{r['unit']} {r['status']} after {r['seconds']} s" for r in rows))
    return {"units": rows, "total": tot if ok else None, "summary": summary, "budget_seconds": a.yosys}


def write(res: dict, a: argparse.Namespace) -> None:
    a.out.mkdir(parents=True, exist_ok=True)
    side = a.work / "yosys.json"
    if "yosys" not in res and side.exists():
        res["yosys"] = json.loads(side.read_text())
    (a.out / "hgq2_trained_jet.json").write_text(json.dumps(res, indent=1) + "\n")
    g = res.get("golden", {})
    tr = res.get("training", {})
    cyc = res.get("rtl_latency_cycles")
    ns = round(cyc * 1000 / res["clock_mhz"], 1) if cyc is not None else None
    pl = res.get("rtl_planned_latency_cycles")
    pl_ns = round(pl * 1000 / res["clock_mhz"], 1) if pl is not None else None
    cost = res.get("da4ml_cost_total")
    yo = res.get("yosys") or {}
    yo_other = [(o["command"].split("trained_jet.py")[-1].strip(), o["yosys"]["summary"])
                for o in res.get("other_runs", []) if o.get("yosys")]
    fmt = lambda v: "-" if v is None else (f"{v:,}" if isinstance(v, int) else str(v))  # noqa: E731
    md = ["# A trained HGQ2 jet-shape model through HLS and RTL, beside the 279k-LUT anchor", "",
          f"`{res['command']}`", "",
          f"HGQ2 jet classifier ({T} particles x {F} features, embed {E}, {HEADS} heads, {BLOCKS} blocks of "
          "QMultiHeadAttention + MLP, 5 classes; per-tensor data quantizers, per-element weight bit widths, the "
          f"layers of bench/hgq2/import_check.py) trained {a.epochs} epochs with HGQ2's EBOPs penalty beta = "
          f"{a.beta:g} on {a.train:,} **synthetic** jets (made in the bench: 5 classes of 16 (log pT, eta, phi) "
          "particles from class-dependent prong counts / widths; nothing physical, the accuracy means nothing "
          "physical), imported from `.keras` by swinfpga, converted (HLS io_parallel + RTL, natural II).", "",
          "| | this model | anchor (Laatu, Sun et al. 2025) |", "|---|---:|---:|",
          f"| Keras (HGQ2) test accuracy as trained, synthetic data | {fmt(tr.get('keras_test_accuracy'))} | - |",
          *([f"| Keras (HGQ2) test accuracy after widening the 0-bit softmax output (see notes) | "
             f"{fmt(tr.get('keras_test_accuracy_after_widening'))} | - |"] if res.get("widened") else []),
          f"| golden test accuracy, synthetic data ({fmt(g.get('test_jets'))} jets) | "
          f"{fmt(g.get('golden_test_accuracy'))} | - |",
          f"| HGQ2 vs swinfpga golden, differing logit codes | {fmt(g.get('hgq2_vs_golden_differing'))} of "
          f"{fmt(g.get('logit_codes'))} | - |",
          f"| C-sim mismatches (vs golden) | {fmt(res.get('csim_mismatches'))} of {fmt(res.get('csim_samples'))} | - |",
          f"| traced RTL program (da4ml int64 interpreter) mismatches | "
          f"{res.get('traced_interpreter_mismatches', '-')} on {a.vectors} vectors | - |",
          f"| RTL simulation ({res.get('simulator', a.sim)}) mismatches | {fmt(res.get('rtl_mismatches'))} of "
          f"{fmt(res.get('rtl_samples'))} | - |",
          f"| RTL latency (simulated) | {fmt(cyc)} cycles = {fmt(ns)} ns at {res.get('clock_mhz', 200):g} MHz | "
          f"{ANCHOR['latency_ns']} ns |",
          f"| RTL latency (planned, sum of layer cycles) | {fmt(pl)} cycles = {fmt(pl_ns)} ns | - |",
          f"| II (simulated) | {fmt(res.get('rtl_ii_cycles'))} | {ANCHOR['ii']} |",
          f"| da4ml cost estimate | {fmt(round(cost) if cost is not None else None)} LUT-eq | - |",
          f"| Yosys synth_xilinx LUT / FF / DSP | {yo.get('summary', 'not run')}"
          + "".join(f" (variant `{c}`: {y})" for c, y in yo_other) + f" | {ANCHOR['lut']:,} LUT |",
          f"| HGQ2 EBOPs (as trained) | {fmt(tr.get('ebops'))} | - |",
          *([f"| HGQ2 EBOPs (as converted, after widening) | {fmt(tr.get('ebops_after_widening'))} | - |"]
            if res.get("widened") else []),
          f"| HLS latency (swinfpga's estimate, not synthesis) | {fmt(res.get('hls_estimate_latency_cycles'))} cycles "
          "| - |", ""]
    if res.get("da4ml_cost_per_unit"):
        md += ["da4ml cost per unit (LUT-eq): " + ", ".join(f"{u} {round(c):,}" for u, c in
                                                          res["da4ml_cost_per_unit"].items()), ""]
    md += [f"Softmax: kind {res.get('softmax_kinds')}, exp tables {res.get('exp_table_entries')} entries, inverse "
           f"tables {res.get('inverse_table_entries')}.", "",
           f"Wall times (s): {res.get('seconds')}; training {tr.get('train_seconds')} s.", ""]
    if res.get("widened"):
        md += ["Widened after training (`--softmax-bits`): training pruned this softmax output quantizer to 0 bits "
               "(that attention's output was all zeros; swinfpga's import refuses a 0-bit tensor, see notes), so its "
               "fraction bits were raised and min/max re-traced; every number above except 'as trained' is for the "
               "widened model: " + "; ".join(f"`{w}`" for w in res["widened"]) + ".", ""]
    md += res.get("notes", [])
    (a.out / "hgq2_trained_jet.md").write_text("\n".join(md) + "\n")


def _args_without_notes(argv: list[str]) -> list[str]:
    out, skip = [], False
    for x in argv:
        if skip or x == "--note":
            skip = not skip
            continue
        if not x.startswith("--note="):
            out.append(x)
    return out


def rewrite(a: argparse.Namespace) -> None:
    """Re-render the Markdown from the results JSON (``--rewrite``), adding ``--note`` lines."""
    res = json.loads((a.out / "hgq2_trained_jet.json").read_text())
    res["notes"] = res.get("notes", []) + [f"- {n}" for n in a.note]
    res.setdefault("yosys", None)  # never merge a --work sidecar here: it may belong to another run
    write(res, a)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--beta", type=float, default=1e-5, help="HGQ2 EBOPs penalty (LayerConfigScope beta0)")
    ap.add_argument("--epochs", type=int, default=16)
    ap.add_argument("--min-frac", type=int, default=2, help="lower bound of every data quantizer's fraction bits")
    ap.add_argument("--mha-min-frac", type=int, default=5,
                    help="lower bound of the fraction bits of the data quantizers inside QMultiHeadAttention")
    ap.add_argument("--softmax-bits", type=int, default=2,
                    help="a softmax output quantizer pruned below this many bits is widened to it (0: never)")
    ap.add_argument("--lr", type=float, default=5e-3)
    ap.add_argument("--train", type=int, default=20_000, help="synthetic training jets")
    ap.add_argument("--test", type=int, default=4_000, help="synthetic test jets")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--vectors", type=int, default=64)
    ap.add_argument("--sim", choices=("verilator", "icarus", "none"), default="verilator")
    ap.add_argument("--stop-after", choices=("train", "import", "all"), default="all")
    ap.add_argument("--yosys", type=float, default=0, help="Yosys budget per unit in seconds (0: not run)")
    ap.add_argument("--yosys-only", action="store_true",
                    help="only run Yosys on the converted project and add it to the existing results JSON")
    ap.add_argument("--note", action="append", default=[], help="a line for the results' notes (repeatable)")
    ap.add_argument("--rewrite", action="store_true", help="only re-render the Markdown from the results JSON")
    ap.add_argument("--force", action="store_true", help="re-run convert even if the project exists")
    ap.add_argument("--work", type=Path, default=Path.home() / ".cache" / "swinfpga-bench" / "hgq2_trained_jet")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    a = ap.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    res: dict = {"command": "TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 nice -n 15 python "
                 "bench/hgq2/trained_jet.py " + " ".join(_args_without_notes(sys.argv[1:])),
                 "data": "synthetic (bench/hgq2/trained_jet.py synthetic_jets); accuracy means nothing physical",
                 "anchor": ANCHOR, "seconds": {}, "notes": [f"- {n}" for n in a.note]}
    flush = lambda: write(res, a)  # noqa: E731
    if a.rewrite:
        rewrite(a)
        return
    if a.yosys_only:  # a side run next to a running bench: the result goes to a sidecar that write() merges
        y = yosys(a, a.work)
        (a.work / "yosys.json").write_text(json.dumps(y, indent=1))
        res = json.loads((a.out / "hgq2_trained_jet.json").read_text())
        res["yosys"] = y
        write(res, a)
        print(y["summary"])
        return
    (a.work / "yosys.json").unlink(missing_ok=True)
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
    model, res["training"] = train(a, a.work)
    if a.softmax_bits:
        from hgq.utils import trace_minmax

        xtr, _ = synthetic_jets(a.train, seed=a.seed)
        xte, yte = synthetic_jets(a.test, seed=a.seed + 1)
        res["widened"] = widen_zero_bit_softmax(model, xtr, a.softmax_bits)
        if res["widened"]:
            res["training"]["ebops_after_widening"] = int(trace_minmax(model, xtr, batch_size=1024))
            y = np.asarray(model.predict(xte, batch_size=1024, verbose=0))
            res["training"]["keras_test_accuracy_after_widening"] = round(float(np.mean(np.argmax(y, 1) == yte)), 4)
    model.save(a.work / "jet_used.keras")  # what convert reads (the trained model, widened if so)
    flush()
    if a.stop_after == "train":
        return
    res["golden"] = golden_check(model, a)
    flush()
    print(res["golden"])
    if a.stop_after == "import":
        return
    backends(a, a.work, res, flush)
    if a.yosys:
        res["yosys"] = yosys(a, a.work)
        flush()
    print({k: v for k, v in res.items() if k not in ("layer_cycles",)})


if __name__ == "__main__":
    main()
