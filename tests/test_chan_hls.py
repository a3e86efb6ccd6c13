"""Per-channel formats (``swinfpga.fixed.ChanFmt``) in the HLS C++ back end (issue 9).

- unit: ``swin::requant`` (swin_common.h) on exhaustive accumulators, for signed / unsigned, RND / TRN,
  SAT / SAT_SYM / WRAP channel formats with pruned channels, against ``ChanFmt.requant`` (a g++ harness
  built from the planner's own ``chan_struct`` text);
- plans: a per-channel site gets its table struct, a plain model's C++ has none (unchanged);
- C simulation == golden, every layer, for random per-channel swin-digits, swin-digits-ln and seq-digits
  (with the padding mask), io_parallel and io_stream (one g++ build per case).
"""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from swinfpga import golden
from swinfpga.backends.hls4ml.plan import chan_struct, plan_model
from swinfpga.fixed import ChanFmt, Fmt
from swinfpga.ir import nodes as N
from swinfpga.ir.build import chan_fmt_in, per_channel, random_input, random_model
from swinfpga.ir.graph import Model
from swinfpga.ir.nodes import IRError
from swinfpga.models import SEQ_DIGITS, SWIN_DIGITS, SWIN_DIGITS_LN
from tests.conftest import csim_cache, require_module, require_tool

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "hls_templates"


def _ap_types() -> Path:
    hls4ml = require_module("hls4ml")
    return Path(hls4ml.__file__).parent / "templates" / "vivado" / "ap_types"


# ----- swin::requant against ChanFmt.requant (g++ harness) ---------------------------------------------
# (container ChanFmt, accumulator format): channel frac below / above the accumulator's (right / left
# shift), negative channel frac, pruned channels, unsigned accumulators
CASES = [
    (ChanFmt(True, 8, 3, "RND", "SAT", chans=((8, 3), (6, 3), (0, 0), (5, 2), (2, 1), (3, 3), (7, 3))),
     Fmt(True, 12, 5)),
    (ChanFmt(False, 7, 2, "TRN", "SAT", chans=((7, 2), (3, 2), (0, 0), (5, 1), (1, 2), (6, 1))), Fmt(False, 11, 5)),
    (ChanFmt(True, 8, 2, "RND", "WRAP", chans=((8, 2), (5, 1), (3, 2), (0, 0), (2, 0), (6, 2))), Fmt(True, 10, 5)),
    (ChanFmt(True, 9, 4, "TRN", "SAT_SYM", chans=((9, 4), (6, 3), (4, 4), (0, 0), (3, 1))), Fmt(True, 11, 7)),
    (ChanFmt(False, 6, 3, "RND", "WRAP", chans=((6, 3), (4, 2), (2, 3), (0, 0), (3, 0))), Fmt(True, 10, 4)),
    (ChanFmt(True, 10, 3, "RND", "SAT", chans=((10, 3), (8, 2), (5, 3), (0, 0))), Fmt(True, 9, 5)),  # acc coarser
    (ChanFmt(True, 8, 3, "TRN", "WRAP", chans=((8, 3), (4, 3), (6, 1))), Fmt(False, 10, -1)),  # acc frac > width
    (ChanFmt(True, 8, 6, "RND", "SAT", chans=((8, 6), (2, 4), (3, 6), (0, 0))), Fmt(True, 12, 8)),  # frac < 0
]


def _harness(cases: list[tuple[ChanFmt, Fmt]]) -> str:
    parts = ["#include <cstdio>", "#include <type_traits>", '#include "swin_common.h"']
    body = []
    for k, (f, a) in enumerate(cases):
        codes = np.arange(a.min_code, a.max_code + 1)
        parts += [f"namespace t{k} {{", *chan_struct("out_chan", f), f"typedef {a.ap_type} acc_t;",
                  f"typedef {f.ap_type} y_t;",
                  f"static const long long codes[{codes.size}] = {{{','.join(map(str, codes))}}};", "}"]
        body += [f"    for (int i = 0; i < {codes.size}; i++) {{",
                 f"        const t{k}::acc_t a = swin::from_code<t{k}::acc_t>(t{k}::codes[i]);",
                 f"        for (int c = 0; c < {f.n_chans}; c++)",
                 f"            std::printf(\"%lld\\n\", (long long)swin::code_of("
                 f"swin::requant<t{k}::y_t, t{k}::out_chan>(a, c)).to_int64());",
                 # the plain path: the ap_fixed cast of the container, unchanged
                 f"        if (swin::code_of(swin::requant<t{k}::y_t, swin::no_chan>(a, 0)) != "
                 f"swin::code_of((t{k}::y_t)a)) bad++;",
                 "    }"]
    parts += ["struct plain { static const int n_out = 1; };", "struct chan { struct out_chan {}; };",
              "int main() {", "    int bad = 0;",
              "    if (!std::is_same<swin::out_chan_of<plain>::type, swin::no_chan>::value) bad++;",
              "    if (!std::is_same<swin::out_chan_of<chan>::type, chan::out_chan>::value) bad++;",
              "    if (!std::is_same<swin::hidden_chan_of<chan>::type, swin::no_chan>::value) bad++;",
              *body, '    std::fprintf(stderr, "bad %d\\n", bad);', "    return bad != 0;", "}", ""]
    return "\n".join(parts)


def test_requant_helper_is_chan_fmt_requant_on_every_accumulator(tmp_path: Path) -> None:
    gxx = require_tool("g++")
    src, exe = tmp_path / "t.cpp", tmp_path / "t"
    src.write_text(_harness(CASES))
    r = subprocess.run([gxx, "-std=c++11", "-O0", f"-I{TEMPLATES}", f"-I{_ap_types()}", str(src), "-o", str(exe)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    r = subprocess.run([str(exe)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    got = np.array(r.stdout.split(), dtype=np.int64)
    pos = 0
    for f, a in CASES:
        codes = np.arange(a.min_code, a.max_code + 1)
        want = f.requant(np.repeat(codes[:, None], f.n_chans, axis=1), a.frac)
        g = got[pos: pos + want.size].reshape(want.shape)
        pos += want.size
        bad = np.argwhere(g != want)
        assert bad.size == 0, (f"{f.to_json()} from {a}: {len(bad)} mismatches; first: acc code "
                               f"{codes[bad[0][0]]}, channel {bad[0][1]} {f.chan(bad[0][1])}: "
                               f"C++ {g[tuple(bad[0])]} != {want[tuple(bad[0])]}")
        for c, (w, _) in enumerate(f.chans):  # the cases exercise what they claim
            if w == 0:
                assert not g[:, c].any()
        assert f.container.requant(codes, a.frac).tolist() != want[:, 1].tolist()
    assert pos == got.size


# ----- plans --------------------------------------------------------------------------------------------
def _more_sites(model: Model, seed: int) -> Model:
    """Per-channel formats also on LayerNorm outputs (patch merging's too) and the Pool output."""
    rng = np.random.default_rng(seed)
    info = model.infer()
    out: list[N.Node] = []
    for n in model.nodes:
        if isinstance(n, N.LayerNorm | N.Pool):
            n = replace(n, out_fmt=chan_fmt_in(n.out_fmt.container, info[n.name].shape[-1], rng))
        elif isinstance(n, N.PatchMerging) and n.norm is not None:
            c = 4 * info[n.src].shape[-1]
            n = replace(n, norm=replace(n.norm, out_fmt=chan_fmt_in(n.norm.out_fmt.container, c, rng)))
        out.append(n)
    return Model(model.name, tuple(out), model.output, model.meta)


def _chan_model(spec, seed: int = 1) -> Model:
    return _more_sites(per_channel(random_model(spec, seed), seed + 1), seed + 2)


def _containers(model: Model) -> Model:
    """The same model with every per-channel format replaced by its container (what a plain cast computes)."""
    def fix(v):
        if isinstance(v, ChanFmt):
            return v.container
        if isinstance(v, N.Linear | N.LayerNorm):
            return replace(v, **{k: fix(getattr(v, k)) for k in ("out_fmt",)})
        return v

    nodes = []
    for n in model.nodes:
        kw = {k: fix(getattr(n, k)) for k in ("out_fmt", "hidden_fmt", "linear", "q", "k", "v", "proj", "fc1", "fc2",
                                              "norm") if getattr(n, k, None) is not None}
        nodes.append(replace(n, **kw))
    return Model(model.name, tuple(nodes), model.output, model.meta)


SEQ_MASK_DIGITS = replace(SEQ_DIGITS, pad_mask=True)  # seq-digits with the padding mask (masked pool)


@pytest.mark.parametrize("spec", [SWIN_DIGITS, SWIN_DIGITS_LN, SEQ_MASK_DIGITS], ids=lambda s: s.name)
def test_plans_emit_a_table_per_chan_site_and_none_for_plain_formats(spec) -> None:
    m = _chan_model(spec)
    plain = random_model(spec, 1)
    for io in ("io_parallel", "io_stream"):
        for p in plan_model(plain, io_type=io):
            assert "_chan" not in p.config, p.ir_name  # plain formats: the ap_fixed cast, as before
        plans = plan_model(m, io_type=io)
        n_struct = sum(p.config.count("struct out_chan {") + p.config.count("struct hidden_chan {") for p in plans)
        sites = 0
        for n in m.nodes:
            lins = [getattr(n, k) for k in ("linear", "q", "k", "v", "proj", "fc1", "fc2") if hasattr(n, k)]
            fmts = [lin.out_fmt for lin in lins]
            fmts += [getattr(n, k) for k in ("hidden_fmt", "out_fmt") if isinstance(n, N.Mlp | N.Add | N.Pool |
                                                                                    N.LayerNorm) and hasattr(n, k)]
            if isinstance(n, N.PatchMerging) and n.norm is not None:
                fmts.append(n.norm.out_fmt)
            sites += sum(isinstance(f, ChanFmt) for f in fmts)
        assert sites >= 10 and n_struct == sites
        for p in plans:  # every tensor type is the container's ap_fixed
            for f in p.types.values():
                assert "chan" not in f.ap_type


def test_per_channel_score_format_is_refused() -> None:
    m = random_model(SEQ_DIGITS, 1)
    a = m.of_type(N.WindowAttention)[0]
    bad = ChanFmt.union(a.attn_fmt.signed, [(a.attn_fmt.width, a.attn_fmt.int_bits)] * (a.dim - 1) + [(0, 0)],
                        a.attn_fmt.rounding, a.attn_fmt.overflow)
    nodes = tuple(replace(n, attn_fmt=bad) if n is a else n for n in m.nodes)
    # the IR refuses it before any back end sees it (the planner's own PlanError is a second guard)
    with pytest.raises(IRError, match=r"s0b0.attn: attn_fmt is a per-channel format .* no back end carries it"):
        plan_model(Model(m.name, nodes, m.output, m.meta))


# ----- C simulation == golden -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def _csim_env(tmp_path_factory):
    with csim_cache(tmp_path_factory):
        yield


@pytest.mark.csim
@pytest.mark.parametrize("spec, io_type, strategy, reuse", [
    (SWIN_DIGITS, "io_parallel", "latency", 1),
    (SWIN_DIGITS, "io_stream", "resource", 2),
    (SWIN_DIGITS_LN, "io_parallel", "latency", 1),
    (SWIN_DIGITS_LN, "io_stream", "latency", 1),
    (SEQ_MASK_DIGITS, "io_parallel", "resource", 2),
    (SEQ_MASK_DIGITS, "io_stream", "latency", 1),
], ids=lambda v: getattr(v, "name", v))
def test_csim_per_channel_model_every_layer_bit_exact(spec, io_type, strategy, reuse, _csim_env) -> None:
    from swinfpga.backends.hls4ml.csim import compile_model

    m = _chan_model(spec)
    x = random_input(m, 48, seed=3)
    ref = golden.run(m, x)
    plain = golden.run(_containers(m), x).outputs  # the formats must matter for this test to mean anything
    differ = [k for k in ref.outputs if k in plain and not np.array_equal(ref.outputs[k], plain[k])]
    assert len(differ) >= 10, differ
    cm = compile_model(m, reuse, strategy=strategy, io_type=io_type)
    traced = cm.trace_codes(x)
    for node in m.nodes[1:]:
        got, want = traced[node.name], ref.outputs[node.name]
        bad = np.argwhere(got != want)
        at = tuple(int(i) for i in bad[0]) if bad.size else ()
        assert bad.size == 0, (f"{spec.name} {io_type}: layer {node.name}: {len(bad)} mismatches; first at "
                               f"(sample, ..., channel) {at}: C-sim {got[at]} != golden {want[at]}")
    np.testing.assert_array_equal(cm.predict_codes(x), ref.output, err_msg=f"{spec.name} {io_type} output")
