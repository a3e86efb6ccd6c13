"""Re-derive the softmax tables of a trained model with the proven sizing (``design_softmax`` default).

Loads ``DIR/model.keras`` (its attention layers load with ``softmax_design="analytic"``, the sizing
they were trained with), switches every ``QWindowAttention`` to ``"proven"``, converts to the IR,
and checks it before writing anything:

* Keras (quantized) logits == golden logits on the 360 digits test images, 0 mismatching codes;
* the re-saved ``model.keras`` converts to exactly the new ``model.json``;
* only softmax specs changed (every other node's JSON is identical).

Then writes ``model.keras``, ``model.json`` and ``metrics.json`` (golden / quantized accuracy and the
mismatch count recomputed; ``softmax_resized`` records the old and new widths) into ``--out`` (default:
``DIR`` itself) and prints old vs new accuracy.  Limit TensorFlow to one thread on shared machines::

    TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 python bench/softmax/rederive.py swinfpga/models/swin-digits
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def widths_of(ir) -> dict[str, list[int]]:
    from swinfpga.ir import nodes as N
    from swinfpga.softmax_sizing import widths

    return {n.name: list(widths(n.softmax)) for n in ir.of_type(N.WindowAttention)}


def rederive(src: Path, out: Path, accept_drop: float) -> dict:
    import keras

    from swinfpga import golden
    from swinfpga.data import digits_seq_split, digits_split
    from swinfpga.frontend.keras import from_keras_file, from_keras_model
    from swinfpga.ir import Model
    from swinfpga.keras.layers import QWindowAttention
    from swinfpga.keras.model import predict_quantized

    old_ir = Model.load(src / "model.json")
    metrics = json.loads((src / "metrics.json").read_text())
    model = keras.models.load_model(src / "model.keras", compile=False)
    n_att = 0
    for layer in model.layers:
        if isinstance(layer, QWindowAttention):
            layer.softmax_design, layer._softmax = "proven", None
            n_att += 1
    ir = from_keras_model(model, name=old_ir.name)
    ir = Model(ir.name, ir.nodes, ir.output, dict(old_ir.meta))
    a, b = old_ir.to_json(), ir.to_json()
    changed = [n["name"] for n, m in zip(a["nodes"], b["nodes"], strict=True) if n != m]
    for n, m in zip(a["nodes"], b["nodes"], strict=True):
        if n != m:
            diff = {k for k in n if n[k] != m.get(k)}
            if diff != {"softmax"}:
                raise SystemExit(f"{n['name']}: fields other than the softmax changed: {sorted(diff)}")
    d = digits_seq_split() if old_ir.meta.get("spec") == "seq-digits" else digits_split()
    logits = predict_quantized(model, d.x_test * ir.input.fmt.lsb)
    res = golden.run(ir, d.x_test)
    out_fmt = ir.infer()[ir.output].fmt
    mism = int(np.count_nonzero(np.round(np.ldexp(logits, out_fmt.frac)).astype(np.int64) != res.output))
    acc_g = float(np.mean(res.output.argmax(-1) == d.y_test))
    acc_k = float(np.mean(logits.argmax(-1) == d.y_test))
    acc_old = float(np.mean(golden.predict(old_ir, d.x_test).argmax(-1) == d.y_test))
    report = {"model": str(src), "attention_layers": n_att, "changed_nodes": changed,
              "widths_old_PEBR": widths_of(old_ir), "widths_new_PEBR": widths_of(ir),
              "golden_accuracy_old": acc_old, "golden_accuracy_new": acc_g, "keras_accuracy_new": acc_k,
              "keras_golden_mismatches": mism, "keras_golden_elements": int(res.output.size)}
    print(json.dumps(report, indent=1), flush=True)
    if mism:
        raise SystemExit(f"Keras != golden: {mism} mismatching logit codes; nothing written")
    if acc_g < acc_old - accept_drop:
        raise SystemExit(f"golden accuracy {acc_g:.4f} < {acc_old:.4f} - {accept_drop}; nothing written")
    with tempfile.TemporaryDirectory() as td:
        kf = Path(td) / "model.keras"
        model.save(kf)
        again = from_keras_file(kf)
        again = Model(again.name, again.nodes, again.output, dict(old_ir.meta))
        if again.to_json() != ir.to_json():
            raise SystemExit("the re-saved model.keras does not convert to the new IR; nothing written")
        out.mkdir(parents=True, exist_ok=True)
        shutil.copy(kf, out / "model.keras")
    ir.save(out / "model.json")
    metrics["accuracy"]["golden"] = acc_g
    metrics["accuracy"]["quantized"] = acc_k
    metrics["keras_golden_mismatches"] = mism
    metrics["softmax_resized"] = {"design": "proven", "widths_old_PEBR": report["widths_old_PEBR"],
                                  "widths_new_PEBR": report["widths_new_PEBR"], "golden_accuracy_before": acc_old,
                                  "command": "python bench/softmax/rederive.py " + str(src.relative_to(ROOT))
                                  if src.is_relative_to(ROOT) else str(src)}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    return report


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model_dir", help="a `swinfpga train` output directory (model.keras, model.json, metrics.json)")
    ap.add_argument("--out", default=None, help="write here instead of MODEL_DIR")
    ap.add_argument("--accept-drop", type=float, default=0.0, help="largest golden accuracy drop written (fraction)")
    a = ap.parse_args()
    src = Path(a.model_dir).resolve()
    rederive(src, Path(a.out).resolve() if a.out else src, a.accept_drop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
