"""Unit tier for the HLS back end: headers compile on their own, plans are exact and consistent."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from swinfpga.backends.hls4ml.plan import (
    HEADERS,
    code_ctype,
    ctype_for,
    hls_name,
    plan_model,
    plan_softmax,
    weights_header,
)
from swinfpga.fixed import Fmt
from swinfpga.ir.build import random_model
from swinfpga.models import SWIN_DIGITS, SWIN_DIGITS_LN, SWIN_T_STAGE1, StageSpec, SwinSpec
from swinfpga.softmax_sizing import design_softmax
from tests.conftest import require_module, require_tool

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "hls_templates"


def _ap_types() -> Path:
    hls4ml = require_module("hls4ml")
    return Path(hls4ml.__file__).parent / "templates" / "vivado" / "ap_types"


@pytest.mark.parametrize("header", HEADERS)
def test_header_compiles_alone(header: str, tmp_path: Path) -> None:
    gxx = require_tool("g++")
    src = tmp_path / "t.cpp"
    src.write_text(f'#include "{header}"\nint main() {{ return 0; }}\n')
    r = subprocess.run([gxx, "-std=c++17", "-fsyntax-only", f"-I{TEMPLATES}", f"-I{_ap_types()}", str(src)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]


def test_headers_have_no_table_code() -> None:
    """Tables come from generated headers: no exp/log/sqrt/division evaluated in the templates."""
    for h in HEADERS:
        text = (TEMPLATES / h).read_text()
        for bad in ("exp(", "log(", "sqrt(", "pow(", "std::"):
            assert bad not in text, f"{h} computes {bad}"
        assert "namespace swin {" in text


def test_code_helpers_roundtrip(tmp_path: Path) -> None:
    """code_of / from_code / lut_lookup on signed, unsigned, RND/SAT formats, run with g++."""
    gxx = require_tool("g++")
    src = tmp_path / "t.cpp"
    src.write_text(r'''
#include <cstdio>
#include "swin_common.h"
struct L { typedef ap_ufixed<6,1> out_t; typedef ap_uint<3> code_t; static const int size = 5, shift = 1, calc_w = 10;
           static const long long offset = -4; };
int main() {
    int bad = 0;
    for (int c = -128; c < 128; c++) {
        ap_fixed<8,3,AP_RND,AP_SAT> x = swin::from_code<ap_fixed<8,3,AP_RND,AP_SAT> >(c);
        if (swin::code_of(x) != c || x.to_double() != c / 32.0) bad++;
    }
    for (int c = 0; c < 256; c++) {
        ap_ufixed<8,0> u = swin::from_code<ap_ufixed<8,0> >(c);
        if (swin::code_of(u) != c) bad++;
    }
    const ap_uint<3> tab[5] = {1, 2, 3, 4, 5};
    for (int c = -20; c < 20; c++) {
        long long a = (c + 4) >> 1; if (a < 0) a = 0; if (a > 4) a = 4;
        ap_ufixed<6,1> v = swin::lut_lookup<L>(ap_int<8>(c), tab);
        if (swin::code_of(v) != tab[a]) bad++;
    }
    ap_fixed<12,4> acc = 2.53125;  // RND: half up; SAT: clip
    ap_fixed<6,3,AP_RND,AP_SAT> r = acc;
    if (r.to_double() != 2.5) bad++;
    ap_fixed<12,4> big = 7.9;
    ap_fixed<6,2,AP_RND,AP_SAT> s = big;
    if (s.to_double() != 1.9375) bad++;
    ap_fixed<12,4> neg = -2.625;  // -2.625 at lsb 1/4 rounds half up to -2.5
    ap_fixed<6,4,AP_RND,AP_SAT> t = neg;
    if (t.to_double() != -2.5) bad++;
    std::printf("%d\n", bad);
    return bad != 0;
}
''')
    exe = tmp_path / "t"
    r = subprocess.run([gxx, "-std=c++17", "-O0", f"-I{TEMPLATES}", f"-I{_ap_types()}", str(src), "-o", str(exe)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    r = subprocess.run([str(exe)], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "0", r.stdout


SEQ_MASK = SwinSpec("seq-mask", (12, 1, 3), 1, 8, (StageSpec(2, 2, (4, 1), 0),), norm="ln", classes=3,
                    in_fmt=Fmt(True, 8, 3, "RND", "SAT"), seq=True, rel_bias=False, pad_mask=True)
RECT = SwinSpec("rect", (4, 8, 8), 0, 8, (StageSpec(2, 2, (2, 4), 1),), norm="bn", classes=3,
                in_fmt=Fmt(True, 8, 3, "RND", "SAT"))


@pytest.mark.parametrize("io_type", ["io_parallel", "io_stream"])
@pytest.mark.parametrize("spec", [SWIN_DIGITS, SWIN_DIGITS_LN, SWIN_T_STAGE1, SEQ_MASK, RECT], ids=lambda s: s.name)
def test_plan_covers_model(spec, io_type) -> None:
    m = random_model(spec)
    plans = plan_model(m, io_type=io_type)
    assert [p.ir_name for p in plans] == [n.name for n in m.nodes]
    assert len({p.name for p in plans}) == len(plans)
    assert plans[0].kind == "Input" and plans[0].name != "input"  # hls4ml reserves 'input'
    info = m.infer()
    for p in plans:
        assert p.out_fmt == info[p.ir_name].fmt
        for key in p.types:
            assert f"{{t:{key}}}" in p.config, f"{p.ir_name}: {key} declared but unused"
        for k, a in p.arrays.items():
            assert a.dtype == np.int64 and a.ndim == 1, k
        if p.kind != "Input":
            assert p.call.startswith("swin::")


def test_linear_accumulator_is_exact() -> None:
    """The accumulator of every Linear holds the worst-case partial sums of its input format."""
    m = random_model(SWIN_DIGITS)
    plans = {p.ir_name: p for p in plan_model(m)}
    pe = plans["patch_embed"]
    node = m.node("patch_embed")
    w = node.linear.weight
    x_fmt = m.input.fmt
    acc = pe.types["lin_acc"]
    assert acc.frac == x_fmt.frac + node.linear.w_fmt.frac
    bal = node.linear.bias << (acc.frac - node.linear.b_fmt.frac)
    worst_hi = np.sum(np.maximum(w, 0) * x_fmt.max_code, axis=0) + bal  # input codes are unsigned
    worst_lo = np.sum(np.minimum(w, 0) * x_fmt.max_code, axis=0) + bal
    assert acc.max_code >= worst_hi.max() and acc.min_code <= worst_lo.min()
    assert acc.width <= int(max(worst_hi.max(), -worst_lo.min())).bit_length() + 1  # and not wastefully wide


def test_weights_header_uses_narrowest_types() -> None:
    """Every ROM is declared in the narrowest ap_int/ap_uint of its codes, the type its config struct names."""
    m = random_model(SWIN_DIGITS)
    att = next(p for p in plan_model(m) if p.kind == "SwinWindowAttention")
    text = weights_header(att)
    decl = [ln for ln in text.splitlines() if ln.startswith("static const")]
    assert len(decl) == len(att.arrays)
    for ln, (k, a) in zip(decl, att.arrays.items(), strict=True):
        t = code_ctype(a)  # what synthesis sees; C simulation uses the smallest C integer (g++ speed)
        assert ln.startswith(f"static const SWIN_ROM_T({t}, {ctype_for(a)}) {k}[{a.size}]"), ln[:80]
    assert f"typedef SWIN_ROM_T({code_ctype(att.arrays[f'{att.name}_q_lin_w'])}, " in att.config
    assert "#ifdef __SYNTHESIS__\n#define SWIN_ROM_T(AP, C) AP" in text
    assert code_ctype(np.array([-128, 127])) == "ap_int<8>" and code_ctype(np.array([-129, 5])) == "ap_int<9>"
    assert code_ctype(np.array([0, 255])) == "ap_uint<8>" and code_ctype(np.array([-1, 0])) == "ap_int<1>"
    assert ctype_for(np.array([2**40])) == "int64_t"


def test_resource_weights_are_reshaped() -> None:
    """Resource strategy: multiplier m = lane*n_out + o reads w[m*reuse + r] = W[lane*reuse + r, o] (0 past n_in)."""
    m = random_model(SWIN_DIGITS)
    node = m.node("s1.merge")
    for rf in (3, 8, 64):
        p = next(q for q in plan_model(m, rf, "resource") if q.ir_name == "s1.merge")
        w = node.linear.weight
        r = min(rf, w.shape[0])
        lanes = -(-w.shape[0] // r)
        got = p.arrays[f"{p.name}_lin_w"].reshape(lanes * w.shape[1], r)
        for lane in range(lanes):
            for o in range(w.shape[1]):
                for cyc in range(r):
                    i = lane * r + cyc
                    assert got[lane * w.shape[1] + o, cyc] == (w[i, o] if i < w.shape[0] else 0)
        assert f"static const int mults = {lanes * w.shape[1]};" in p.config and "strategy = 1;" in p.config


def test_softmax_plan() -> None:
    sm = design_softmax("t", Fmt(True, 8, 4, "RND", "SAT"), 49)
    inp, p = plan_softmax("sm", sm, rows=3)
    assert inp.shape == (147,) and p.out_fmt == sm.prob_fmt and p.kind == "SwinSoftmaxLut"
    assert p.arrays[hls_name(sm.exp.name)].size == sm.exp.size  # the C++ array carries the table's name
    assert hls_name("s0b0.attn") == "s0b0_attn" and hls_name("input") == "x_input"
