"""HGQ2 model import at the particle-physics reference shapes: golden vs HGQ2's own inference.

Builds HGQ2 transformer classifiers (random weights, random per-tensor activation / per-element weight
bit widths), imports them with :func:`swinfpga.frontend.hgq2.from_hgq2_model`, and counts differing
logit codes between the golden model and HGQ2's quantized Keras inference on N random input codes.
For contrast it also tries hls4ml's own Keras 3 / HGQ2 converter on the same model (conversion only).

    python bench/hgq2/import_check.py [--n 10000]

Writes bench/results/hgq2_import.json and .md.
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

# name, tokens, features, embed, heads, blocks (Laatu, Sun et al. 2025: 16x3; Jiang et al. 2024: 15x6, 2 heads,
# 3 blocks)
SHAPES = [("jet-16x3", 16, 3, 16, 2, 2), ("jiang-15x6", 15, 6, 16, 2, 3)]


def build(name: str, t: int, f: int, e: int, heads: int, blocks: int, seed: int):
    import keras
    from hgq.config import QuantizerConfigScope
    from hgq.layers import QAdd, QDense, QGlobalAveragePooling1D, QMultiHeadAttention

    keras.utils.set_random_seed(seed)
    with QuantizerConfigScope(place="datalane", heterogeneous_axis=()):
        inp = keras.Input((t, f), name="particles")
        x = QDense(e, name="embed")(inp)
        for b in range(blocks):
            a = QMultiHeadAttention(heads, e // heads, name=f"mha{b}", fuse="qkv")(x, x)
            x = QAdd(name=f"res{b}a")([x, a])
            h = QDense(2 * e, activation="relu", name=f"fc{b}a")(x)
            x = QAdd(name=f"res{b}b")([x, QDense(e, name=f"fc{b}b")(h)])
        model = keras.Model(inp, QDense(5, name="head")(QGlobalAveragePooling1D(name="pool")(x)), name=name)
    randomise(model, np.random.default_rng(seed))
    return model


def randomise(model, rng: np.random.Generator) -> None:
    """Integer bit widths: data quantizers per tensor (i 0..3, f 2..5), softmax tables per tensor, weights per
    element (b 0..6, i -1..1); the pooled mean keeps at least the pool input's fraction bits (exact mean)."""
    from hgq.quantizer.internal.fixed_point_quantizer import FixedPointQuantizerKBI, FixedPointQuantizerKIF

    seen: set[int] = set()
    for layer in model.layers:
        for q in [layer, *layer._flatten_layers(include_self=False, recursive=True)]:
            if id(q) in seen:
                continue
            seen.add(id(q))
            path = getattr(q, "path", q.name)
            if isinstance(q, FixedPointQuantizerKIF):
                lo_i, hi_i, lo_f, hi_f = (2, 4, 1, 4) if "exp_table" in path else \
                    (2, 5, 2, 6) if "inv_table" in path else (0, 4, 2, 6)
                q._i.assign(np.full(q._i.shape, rng.integers(lo_i, hi_i), np.float32))
                q._f.assign(np.full(q._f.shape, rng.integers(lo_f, hi_f), np.float32))
            elif isinstance(q, FixedPointQuantizerKBI):
                if "table" in path:
                    q._b.assign(np.full(q._b.shape, rng.integers(5, 9), np.float32))
                    q._i.assign(np.full(q._i.shape, 1 if "exp" in path else rng.integers(0, 3), np.float32))
                else:
                    q._b.assign(rng.integers(0, 7, q._b.shape).astype(np.float32))
                    q._i.assign(rng.integers(-1, 2, q._i.shape).astype(np.float32))
    fp, fh = model.get_layer("pool").iq.quantizer._f, model.get_layer("head").iq.quantizer._f
    fh.assign(np.full(fh.shape, max(float(np.max(fh.numpy())), float(np.max(fp.numpy()))), np.float32))


def hls4ml_try(model, out: Path) -> str:
    try:
        import hls4ml
    except ImportError:
        return "hls4ml not installed"
    try:
        hls4ml.converters.convert_from_keras_model(model, output_dir=str(out), backend="Vitis")
        return f"hls4ml {hls4ml.__version__}: converted"
    except Exception as e:  # report what hls4ml says, whatever it is
        return f"hls4ml {hls4ml.__version__}: {type(e).__name__}: {' '.join(str(e).split())[:200]}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000, help="random input vectors per model")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    a = ap.parse_args()
    import tempfile

    from swinfpga import golden
    from swinfpga.frontend.hgq2 import from_hgq2_model

    rows = []
    for i, (name, t, f, e, heads, blocks) in enumerate(SHAPES):
        model = build(name, t, f, e, heads, blocks, seed=100 + i)
        t0 = time.perf_counter()
        ir = from_hgq2_model(model)
        t_import = time.perf_counter() - t0
        fin = ir.input.fmt
        codes = np.random.default_rng(i).integers(fin.min_code, fin.max_code + 1, (a.n, t, f))
        y = np.asarray(model.predict(fin.to_float(codes).astype(np.float32), batch_size=1000, verbose=0),
                       dtype=np.float64)
        want = np.ldexp(y, ir.infer()[ir.output].fmt.frac)
        assert np.all(want == np.round(want))
        got = golden.predict(ir, codes.reshape(a.n, t, 1, f))
        with tempfile.TemporaryDirectory() as d:
            h = hls4ml_try(model, Path(d) / "hls")
        rows.append({
            "model": name, "tokens": t, "features": f, "embed": e, "heads": heads, "blocks": blocks,
            "inputs": a.n, "logit_codes": int(got.size), "differing": int(np.sum(got != want)),
            "import_seconds": round(t_import, 2), "ir_nodes": len(ir.nodes),
            "softmax_kind": ir.node("mha0").softmax.kind, "hls4ml": h,
        })
        print(rows[-1])
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "hgq2_import.json").write_text(json.dumps({"rows": rows}, indent=1))
    md = ["# HGQ2 model import: golden vs HGQ2 inference", "",
          f"`python bench/hgq2/import_check.py --n {a.n}`; random weights and bit widths (per-tensor activations, "
          "per-element weights), qkv-fused attention, global over all tokens.", "",
          "| model | tokens x features | embed / heads / blocks | inputs | differing logit codes | import + self-check "
          "(s) | hls4ml's converter on the same model |", "|---|---|---|---:|---:|---:|---|"]
    for r in rows:
        md.append(f"| {r['model']} | {r['tokens']} x {r['features']} | {r['embed']} / {r['heads']} / {r['blocks']} | "
                  f"{r['inputs']} | {r['differing']} of {r['logit_codes']} | {r['import_seconds']} | {r['hls4ml']} |")
    md += ["", "hls4ml 1.3.0 registers its QMultiHeadAttention handler under HGQ2's old module path "
           "(`hgq.layers.multi_head_attention`; HGQ2 0.2.0 has `hgq.layers.attn.mha`), so it falls back to its "
           "distributed-arithmetic (da4ml) handler, which fails on self-attention `mha(x, x)` as shown."]
    (a.out / "hgq2_import.md").write_text("\n".join(md) + "\n")


if __name__ == "__main__":
    main()
