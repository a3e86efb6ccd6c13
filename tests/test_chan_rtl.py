"""Per-channel formats (``swinfpga.fixed.ChanFmt``) in the RTL back end and the IR.

(a) every traced unit of random per-channel models equals golden bit for bit under da4ml's int64
interpreter, whole and time-multiplexed (balanced) pipelines; (b) one small per-channel design
(attention, LayerNorm, MLP, residual adds, pooling, head) simulated on Icarus with 0 mismatches,
its pruned channels constant outputs and narrower formats cheaper than the per-tensor design;
(c) the IR refuses per-channel formats where no back end carries them."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from tests.conftest import icarus_bit_exact, require_module


def _chan_model(spec, seed: int, p_zero: float = 0.1):
    from swinfpga.ir.build import per_channel, random_model

    return per_channel(random_model(spec, seed), seed=seed + 1, p_zero=p_zero)


# ----- (a) traced units == golden ------------------------------------------------------------------------
@pytest.mark.rtl
@pytest.mark.parametrize("name,ii", [("swin-digits", 4), ("swin-digits", 8), ("swin-digits-ln", 4),
                                     ("seq-digits", 1), ("seq-digits", 4)])
def test_traced_units_bit_exact_per_channel(name, ii):
    require_module("da4ml")
    from swinfpga.backends.rtl.build import build_model, check_traced
    from swinfpga.backends.rtl.plan import natural_ii, split_segments
    from swinfpga.fixed import ChanFmt
    from swinfpga.ir.build import random_input
    from swinfpga.models import SEQ_DIGITS, SWIN_DIGITS, SWIN_DIGITS_LN

    spec = {"swin-digits": SWIN_DIGITS, "swin-digits-ln": SWIN_DIGITS_LN, "seq-digits": SEQ_DIGITS}[name]
    m = _chan_model(spec, 1)
    fm = m.infer()
    assert sum(isinstance(t.fmt, ChanFmt) and any(w == 0 for w, _ in t.fmt.chans) for t in fm.values()) >= 3
    built, _ = build_model(m, 200.0, top=f"ch_{name.replace('-', '_')}_{ii}", ii=ii)
    assert max(b.seg.groups for b in built) == ii
    if ii > natural_ii(split_segments(m)):
        assert any(b.seg.kind == "token" for b in built)  # time-multiplexed: frames carry per-channel fields
    bad = check_traced(m, built, random_input(m, 64, seed=3))
    assert bad and all(v == 0 for v in bad.values()), bad


def test_trace_requant_refuses_a_wrong_channel_axis():
    require_module("da4ml")
    from swinfpga.backends.rtl.trace import TraceError, _q, tracer
    from swinfpga.fixed import ChanFmt

    f = ChanFmt.union(True, [(4, 2), (0, 0), (6, 3)])
    x = tracer().inputs((2, 4)).quantize(1, 6, 6)
    with pytest.raises(TraceError, match=r"format of 3 channels requantizes a traced value of shape \(2, 4\)"):
        _q(x, f)


def test_trace_requant_per_channel_values():
    """``_q`` to a ChanFmt: each element at its channel's grid (da4ml's Python interpreter on a ramp
    of inputs equals ``ChanFmt.requant``), pruned channel constant 0, narrower output ports."""
    require_module("da4ml")
    from swinfpga.backends.rtl.trace import _elems, _q, tracer
    from swinfpga.fixed import ChanFmt

    tr = tracer()
    f = ChanFmt(True, 8, 4, "RND", "SAT", chans=((6, 3), (0, 0), (8, 4), (3, 1)))
    inp = tr.inputs((4,))
    acc = inp.quantize(1, 6, 6)  # frac 6: every channel rounds
    y = _q(acc.reshape(1, 4), f)
    comb = tr.trace(inp, y.reshape(4))
    kif = [tr.kif(q) for q in comb.out_qint]
    assert kif[1] == (0, 0, 0) and sum(kif[3]) <= 3 and kif[0][2] <= 3 and kif[3][2] <= 2
    rng = np.random.default_rng(0)
    codes = rng.integers(-(1 << 12), 1 << 12, size=(200, 4))
    got = np.round(np.asarray(comb.predict(codes * 2.0**-6)) / f.lsb).astype(np.int64)
    np.testing.assert_array_equal(got, f.requant(codes, 6))
    assert float(_elems(y)[0, 1].low) == 0.0 == float(_elems(y)[0, 1].high)


# ----- (b) one RTL simulation -----------------------------------------------------------------------------
def _sim_model(chan: bool = True):
    """A sequence of 8 tokens (2 windows of 4, 2 heads, dim 8), LayerNorm, ReLU MLP, pool, head; with
    ``chan``: per-channel formats (20% pruned channels) on every linear, hidden, residual, LayerNorm
    and pool output."""
    from swinfpga.fixed import Fmt
    from swinfpga.ir import nodes as N
    from swinfpga.ir.build import chan_fmt_in, random_model
    from swinfpga.ir.graph import Model
    from swinfpga.models import StageSpec, SwinSpec

    spec = SwinSpec("chan-sim", (8, 1, 4), 1, 8, (StageSpec(1, 2, (4, 1), 0),), norm="ln", act="relu", classes=3,
                    in_fmt=Fmt(True, 8, 3, "RND", "SAT"), seq=True, rel_bias=True)
    if not chan:
        return random_model(spec, seed=5)
    m = _chan_model(spec, 5, p_zero=0.2)
    info, rng = m.infer(), np.random.default_rng(9)
    nodes = tuple(replace(n, out_fmt=chan_fmt_in(n.out_fmt, info[n.name].shape[-1], rng, 0.2))
                  if isinstance(n, N.LayerNorm | N.Pool) else n for n in m.nodes)
    return Model(m.name, nodes, m.output, m.meta)


@pytest.fixture(scope="module")
def chan_projects(tmp_path_factory):
    """Natural II 2 and II 4 (time-multiplexed: per-channel fields in the frames between units), flat
    wrappers, and II 4 with every wrapper in the indexed gather/scatter form."""
    require_module("da4ml")
    from swinfpga.backends.rtl import verilog
    from swinfpga.project import ConvertOptions, convert

    out = {}
    for key in ("2", "4", "4-indexed"):
        out[key] = tmp_path_factory.mktemp(f"chan_rtl_{key}") / "prj"
        with pytest.MonkeyPatch.context() as mp:
            if key.endswith("indexed"):
                mp.setattr(verilog, "INDEXED_MIN_GROUPS", 0)
            convert(_sim_model(), out[key], ConvertOptions(hls=False, n_vectors=12, force=True,
                                                           ii=int(key.split("-")[0])))
    return out


def test_sim_model_covers_every_per_channel_site():
    from swinfpga.fixed import ChanFmt
    from swinfpga.ir import nodes as N

    m = _sim_model()
    fm = m.infer()
    chan = {type(m.node(k)).__name__ for k, t in fm.items() if isinstance(t.fmt, ChanFmt)}
    assert chan == {"PatchEmbed", "LayerNorm", "WindowAttention", "Add", "Mlp", "Pool", "Dense"}
    mlp = m.of_type(N.Mlp)[0]
    assert isinstance(mlp.hidden_fmt, ChanFmt) and isinstance(mlp.fc1.out_fmt, ChanFmt)


@pytest.mark.rtl
@pytest.mark.parametrize("key", ["2", "4", "4-indexed"])
def test_icarus_per_channel_bit_exact(chan_projects, key):
    require_module("cocotb")
    from swinfpga.backends.rtl.contract import RtlInfo
    from swinfpga.fixed import ChanFmt

    prj, ii = chan_projects[key], int(key.split("-")[0])
    if key.endswith("indexed"):
        assert all("indexed gather" in (prj / "rtl" / f"{s['module']}.v").read_text()
                   for s in json.loads((prj / "rtl" / "rtl.json").read_text())["segments"])
    rep = icarus_bit_exact(prj, 12, 6)
    assert rep.samples == 12 and rep.ii_cycles == ii
    d = json.loads((prj / "rtl" / "rtl.json").read_text())
    assert sum(d["traced_check"]["mismatches"].values()) == 0
    info = RtlInfo.load(prj / "rtl")
    assert isinstance(info.out_data.fmt, ChanFmt) and info.to_json() == d  # the output port's format round-trips
    if ii == 4:
        assert any(s.kind == "token" for s in info.segments)


@pytest.mark.rtl
def test_per_channel_units_are_narrower_and_cheaper():
    """Pruned output channels leave the unit as width-0 constants (code 0), narrow channels as
    narrower ports; the per-channel design costs less than the same weights per tensor."""
    require_module("da4ml")
    from swinfpga.backends.rtl.build import build_model

    m, m0 = _sim_model(), _sim_model(chan=False)
    built, _ = build_model(m, 200.0, top="chan_cost", ii=2)
    plain, _ = build_model(m0, 200.0, top="chan_cost", ii=2)
    head = m.node("head").linear.out_fmt
    last = built[-1]
    for c, (w, i) in enumerate(head.chans):
        k = last.out_kif[c]
        if w == 0:
            assert sum(k) == 0 and last.out_const[c] == 0, c
        else:
            assert sum(k) <= w and k[2] <= w - i, (c, k, (w, i))
    assert sum(b.cost for b in built) < 0.9 * sum(b.cost for b in plain)


# ----- (c) IR validation ------------------------------------------------------------------------------------
def _with(m, name, **kw):
    from swinfpga.ir.graph import Model

    return Model(m.name, tuple(replace(n, **kw) if n.name == name else n for n in m.nodes), m.output, m.meta)


def test_ir_refuses_per_channel_score_format():
    from swinfpga.errors import SwinfpgaError
    from swinfpga.fixed import ChanFmt
    from swinfpga.ir.build import random_model
    from swinfpga.ir.nodes import IRError
    from swinfpga.models import SWIN_DIGITS

    m = random_model(SWIN_DIGITS, 1)
    att = m.node("s0b0.attn")
    sf = ChanFmt(True, 8, 4, "RND", "SAT", chans=((8, 4), (6, 3), (0, 0), (8, 4)))
    with pytest.raises(IRError) as e:
        _with(m, att.name, score_fmt=sf, softmax=replace(att.softmax, score_fmt=sf))
    assert str(e.value) == (
        "s0b0.attn: score_fmt is a per-channel format (ap_fixed<8,4,AP_RND,AP_SAT> per channel (4)), but no back "
        "end carries it there (per-channel formats fit WindowAttention fields q.out_fmt, k.out_fmt, v.out_fmt, "
        "proj.out_fmt only); use one format for the whole tensor there, e.g. its container ap_fixed<8,4,AP_RND,AP_SAT>")
    assert isinstance(e.value, SwinfpgaError)


def test_ir_refuses_per_channel_formats_off_the_allowed_sites():
    from swinfpga.fixed import ChanFmt
    from swinfpga.ir import nodes as N
    from swinfpga.ir.build import chan_fmt_in, random_model
    from swinfpga.ir.nodes import IRError
    from swinfpga.models import SWIN_DIGITS, SWIN_DIGITS_LN

    rng = np.random.default_rng(0)
    m = random_model(SWIN_DIGITS, 1)
    with pytest.raises(IRError, match=r"^input: fmt is a per-channel format \(ap_ufixed<5,1> per channel \(1\)\), "
                                      r"but the input path \(data loading, test vectors\) quantizes the whole tensor "
                                      r"to one format \(Input nodes take no per-channel format\)"):
        _with(m, "input", fmt=ChanFmt(False, 5, 1, "TRN", "WRAP", chans=((4, 1),)))
    att = m.node("s0b0.attn")
    with pytest.raises(IRError, match=r"^s0b0\.attn: attn_fmt is a per-channel format"):
        _with(m, att.name, attn_fmt=chan_fmt_in(att.attn_fmt, 16, rng))
    ml = random_model(SWIN_DIGITS_LN, 1)
    ln = ml.of_type(N.LayerNorm)[0]
    with pytest.raises(IRError, match=rf"^{ln.name}: norm_fmt is a per-channel format .*\(per-channel formats fit "
                                      r"LayerNorm fields out_fmt only"):
        _with(ml, ln.name, norm_fmt=chan_fmt_in(ln.norm_fmt, 16, rng))
    _with(ml, ln.name, out_fmt=chan_fmt_in(ln.out_fmt, 16, rng))  # a LayerNorm output may be per channel
    mlp = ml.of_type(N.Mlp)[0]  # GELU: fc1's output addresses the table
    cf = chan_fmt_in(mlp.fc1.out_fmt, mlp.fc1.n_out, rng)
    with pytest.raises(IRError, match=rf"^{mlp.name}: fc1\.out_fmt is a per-channel format .* but its codes "
                                      r"address the GELU table"):
        _with(ml, mlp.name, fc1=replace(mlp.fc1, out_fmt=cf), gelu=replace(mlp.gelu, in_fmt=cf))


def test_ir_refuses_a_channel_count_mismatch():
    from swinfpga.ir.build import chan_fmt_in, random_model
    from swinfpga.ir.nodes import IRError
    from swinfpga.models import SWIN_DIGITS

    rng = np.random.default_rng(0)
    m = random_model(SWIN_DIGITS, 1)
    att = m.node("s0b0.attn")
    with pytest.raises(IRError) as e:
        _with(m, att.name, q=replace(att.q, out_fmt=chan_fmt_in(att.q.out_fmt, 15, rng)))
    assert str(e.value) == ("s0b0.attn: q.out_fmt has formats for 15 channels but the tensor has 16; "
                            "give one (width, int_bits) per channel")
    add = m.node("s0b0.add1")
    with pytest.raises(IRError, match=r"^s0b0\.add1: out_fmt has formats for 8 channels but the tensor has 16"):
        _with(m, add.name, out_fmt=chan_fmt_in(add.out_fmt, 8, rng))


def test_ir_json_file_names_the_file_on_a_refused_per_channel_format(tmp_path):
    from swinfpga.ir.build import chan_fmt_in, random_model
    from swinfpga.ir.graph import Model
    from swinfpga.ir.nodes import IRError
    from swinfpga.models import SWIN_DIGITS

    m = random_model(SWIN_DIGITS, 1)
    d = m.to_json()
    att = next(n for n in d["nodes"] if n["name"] == "s0b0.attn")
    att["attn_fmt"] = {"__fmt__": chan_fmt_in(m.node("s0b0.attn").attn_fmt, 16, np.random.default_rng(0)).to_json()}
    p = tmp_path / "m.json"
    p.write_text(json.dumps(d))
    with pytest.raises(IRError, match=rf"^{p}: s0b0\.attn: attn_fmt is a per-channel format"):
        Model.load(p)


def test_unit_with_every_input_pruned_is_a_user_error():
    """A pool output pruned in every channel leaves the pool/head unit without a live input (da4ml
    would emit a ``[-1:0]`` port): refused with a message naming the unit."""
    require_module("da4ml")
    from swinfpga.backends.rtl.plan import balance_segments
    from swinfpga.backends.rtl.trace import TraceError, trace_segment
    from swinfpga.errors import SwinfpgaError
    from swinfpga.fixed import ChanFmt

    m = _sim_model()
    f = m.node("pool").out_fmt
    m = _with(m, "pool", out_fmt=ChanFmt(f.signed, f.width, f.int_bits, f.rounding, f.overflow, chans=((0, 0),) * 8))
    segs, _ = balance_segments(m, 2)
    assert segs[-1].labels == ("pool", "head")
    with pytest.raises(TraceError, match=r"^seg1 \(pool, head\) reads none of its inputs: per-channel formats") as e:
        trace_segment(segs[-1], {k: v.fmt for k, v in m.infer().items()})
    assert isinstance(e.value, SwinfpgaError)
