"""IR and golden model: JSON round-trip, validation errors, and the attention checked against an
independent element-by-element implementation of the Swin semantics."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from swinfpga import golden
from swinfpga.fixed import Fmt, FormatError
from swinfpga.ir import IRError, Model
from swinfpga.ir import nodes as N
from swinfpga.ir.build import random_input, random_model
from swinfpga.models import SWIN_DIGITS, SWIN_DIGITS_LN, SWIN_FREE_DIGITS, StageSpec, SwinSpec
from swinfpga.ops.fx import softmax_codes


def rq(fmt: Fmt, acc: int, frac: int) -> int:
    return int(fmt.requant(np.array([acc]), frac)[0])


def region(pos: int, size: int, window: int, shift: int) -> int:
    if pos < size - window:
        return 0
    return 1 if pos < size - shift else 2


def attention_reference(n: N.WindowAttention, x: np.ndarray, x_fmt: Fmt, real: np.ndarray | None = None) -> np.ndarray:
    """One sample, written from the Swin semantics with explicit loops over windows and tokens
    (window ``wh x ww``; token t of a window at row t // ww, column t % ww).  ``real`` (H, W)
    bool: padded keys are excluded (a window of padding only attends over all of it)."""
    h, w, c = x.shape
    (wh, ww), s, heads, hd = n.window_hw, n.shift, n.heads, n.head_dim
    nt = wh * ww
    out = np.zeros_like(x)
    bias_idx = {}
    for i in range(nt):
        for j in range(nt):
            dy, dx = i // ww - j // ww + wh - 1, i % ww - j % ww + ww - 1
            bias_idx[i, j] = dy * (2 * ww - 1) + dx
    for wy in range(h // wh):
        for wx in range(w // ww):
            # token t of this window sits at rolled position (wy*wh + t//ww, wx*ww + t%ww); rolled[p] = x[p + s]
            pos = [((wy * wh + t // ww), (wx * ww + t % ww)) for t in range(nt)]
            toks = np.array([x[(py + s) % h, (px + s) % w] for py, px in pos])
            kv = [True] * nt if real is None else [bool(real[(py + s) % h, (px + s) % w]) for py, px in pos]
            if not any(kv):
                kv = [True] * nt

            def lin(L: N.Linear, v: np.ndarray, f: Fmt) -> np.ndarray:
                af = f.frac + L.w_fmt.frac
                res = []
                for o in range(L.n_out):
                    acc = sum(int(v[i]) * int(L.weight[i, o]) for i in range(L.n_in))
                    acc += int(L.bias[o]) << (af - L.b_fmt.frac)
                    res.append(rq(L.out_fmt, acc, af))
                return np.array(res)

            q = np.array([lin(n.q, t, x_fmt) for t in toks])
            k = np.array([lin(n.k, t, x_fmt) for t in toks])
            v = np.array([lin(n.v, t, x_fmt) for t in toks])
            o = np.zeros((nt, c), dtype=np.int64)
            for hh in range(heads):
                sl = slice(hh * hd, (hh + 1) * hd)
                af = n.q.out_fmt.frac + n.k.out_fmt.frac
                sc = np.zeros((nt, nt), dtype=np.int64)
                valid = np.ones_like(sc, dtype=bool)
                for i in range(nt):
                    for j in range(nt):
                        acc = int(np.dot(q[i, sl], k[j, sl]))
                        if n.rel_bias is not None:
                            acc += int(n.rel_bias[bias_idx[i, j], hh]) << (af - n.bias_fmt.frac)
                        sc[i, j] = rq(n.score_fmt, acc, af)
                        if s:
                            ri = (region(pos[i][0], h, wh, s), region(pos[i][1], w, ww, s))
                            rj = (region(pos[j][0], h, wh, s), region(pos[j][1], w, ww, s))
                            valid[i, j] = ri == rj
                        valid[i, j] &= kv[j]
                p = softmax_codes(n.softmax, sc, valid)
                pf = n.softmax.prob_fmt.frac + n.v.out_fmt.frac
                for i in range(nt):
                    for d in range(hd):
                        o[i, hh * hd + d] = rq(n.attn_fmt, int(np.dot(p[i], v[:, hh * hd + d])), pf)
            y = np.array([lin(n.proj, t, n.attn_fmt) for t in o])
            for t, (py, px) in enumerate(pos):
                out[(py + s) % h, (px + s) % w] = y[t]
    return out


@pytest.mark.parametrize("res,window,shift,heads,dim", [
    ((4, 4), 2, 1, 2, 8), ((4, 4), 2, 0, 1, 4), ((6, 6), 3, 1, 3, 6), ((8, 8), 4, 2, 2, 8), ((6, 4), 2, 1, 4, 8),
])
def test_window_attention_matches_loop_reference(res, window, shift, heads, dim) -> None:
    spec = SwinSpec("t", (res[0], res[1], dim), 0, dim, (StageSpec(2, heads, window, shift),), classes=0,
                    in_fmt=Fmt(True, 8, 3, "RND", "SAT"))
    m = random_model(spec, seed=window + heads)
    attn = m.of_type(N.WindowAttention)[1]  # the second block is the shifted one
    assert attn.shift == (shift if min(res) > window else 0)
    x = random_input(m, 3, seed=1)
    outs = golden.run(m, x).outputs
    out, xin = outs[attn.name], outs[attn.src]
    for b in range(x.shape[0]):
        np.testing.assert_array_equal(out[b], attention_reference(attn, xin[b], m.infer()[attn.src].fmt))


@pytest.mark.parametrize("res,window,shift,rel_bias,seq", [
    ((4, 8), (2, 4), 1, True, False),  # rectangular, shifted
    ((6, 4), (3, 2), 1, True, False),
    ((3, 5), "global", 0, True, False),  # 15 tokens, one window
    ((15, 1), "global", 0, False, True),  # a 15-token sequence, no bias
    ((16, 1), "global", 0, True, True),  # a 16-token sequence with a 1-D relative bias
    ((12, 1), (4, 1), 0, False, True),  # local windows of 4 tokens on a sequence
])
def test_rectangular_and_global_attention_match_loop_reference(res, window, shift, rel_bias, seq) -> None:
    dim = 8
    spec = SwinSpec("t", (res[0], res[1], dim), 0, dim, (StageSpec(2, 2, window, shift),), classes=0,
                    in_fmt=Fmt(True, 8, 3, "RND", "SAT"), seq=seq, rel_bias=rel_bias)
    m = random_model(spec, seed=res[0] + res[1])
    attn = m.of_type(N.WindowAttention)[1]
    want_hw = res if window == "global" else window
    assert attn.window_hw == tuple(want_hw) and attn.shift == shift
    assert attn.is_global == (window == "global")
    assert (attn.rel_bias is None) == (not rel_bias)
    x = random_input(m, 2, seed=2)
    outs = golden.run(m, x).outputs
    out, xin = outs[attn.name], outs[attn.src]
    for b in range(x.shape[0]):
        np.testing.assert_array_equal(out[b], attention_reference(attn, xin[b], m.infer()[attn.src].fmt))


def test_square_windows_stay_ints_and_old_json_loads(tmp_path) -> None:
    """Back ends read ``node.window`` as an int: square windows (and JSON written before
    rectangular windows existed) keep it an int; rectangular ones are a tuple after a round trip."""
    m = random_model(SWIN_DIGITS)
    d = m.to_json()
    for nd in d["nodes"]:
        if nd["__type__"] == "WindowAttention":
            assert isinstance(nd["window"], int)
    m2 = Model.from_json(d)
    assert all(type(a.window) is int for a in m2.of_type(N.WindowAttention))
    # unset new optional fields are left out (JSON and build-cache hashes of existing models unchanged)
    assert all("mask" not in nd and "inv_table" not in nd for nd in d["nodes"])
    spec = SwinSpec("r", (4, 8, 8), 0, 8, (StageSpec(1, 2, (2, 4), 0),), classes=3, in_fmt=Fmt(True, 8, 3))
    r = random_model(spec)
    r.save(tmp_path / "r.json")
    r2 = Model.load(tmp_path / "r.json")
    assert r2.of_type(N.WindowAttention)[0].window == (2, 4)
    x = random_input(r, 4)
    np.testing.assert_array_equal(golden.predict(r2, x), golden.predict(r, x))


def test_user_window_never_shrinks_but_swin_int_rule_stays() -> None:
    # an int window on a small image map shrinks to the map (Swin's rule, as before)
    spec = SwinSpec("s", (2, 2, 8), 0, 8, (StageSpec(1, 2, 4, 0),), classes=0, in_fmt=Fmt(True, 8, 3))
    assert spec.stage_window(0) == (2, 2)
    # a rectangular window is used as given: too large is an error naming the layer
    spec = SwinSpec("s", (2, 2, 8), 0, 8, (StageSpec(1, 2, (4, 2), 0),), classes=0, in_fmt=Fmt(True, 8, 3))
    with pytest.raises(IRError, match="s0b0.attn: window 4x2 does not divide"):
        random_model(spec)


def test_relative_position_index_matches_swin_formula() -> None:
    idx = N.relative_position_index(3)
    assert idx.shape == (9, 9) and idx[0, 0] == 12 and idx[0, 8] == 0 and idx[8, 0] == 24
    assert idx.max() == 24 and len(np.unique(idx)) == 25


def test_shift_mask_regions() -> None:
    m = N.shift_valid_mask((4, 4), 2, 1)
    assert m.shape == (4, 4, 4) and m[0].all()  # top-left window: one region
    assert m[3].sum() == 4  # bottom-right window: four regions of one token
    assert np.array_equal(N.shift_valid_mask((4, 4), 2, 0), np.ones((4, 4, 4), bool))


def test_partition_reverse_roundtrip() -> None:
    x = np.arange(2 * 6 * 4 * 3).reshape(2, 6, 4, 3)
    w = N.window_partition(x, 2)
    assert w.shape == (2, 6, 4, 3) and np.array_equal(w[0, 1, 0], x[0, 0, 2])
    assert np.array_equal(N.window_reverse(w, 2, 6, 4), x)


@pytest.mark.parametrize("spec", [SWIN_DIGITS, SWIN_DIGITS_LN, SWIN_FREE_DIGITS], ids=lambda s: s.name)
def test_json_roundtrip_is_bit_exact(spec, tmp_path) -> None:
    m = random_model(spec, seed=3)
    x = random_input(m, 20)
    m.save(tmp_path / "m.json")
    m2 = Model.load(tmp_path / "m.json")
    assert [n.name for n in m2.nodes] == [n.name for n in m.nodes]
    np.testing.assert_array_equal(golden.predict(m2, x), golden.predict(m, x))


def test_taps_and_overflow_counts() -> None:
    m = random_model(SWIN_DIGITS)
    r = golden.run(m, random_input(m, 8), taps=True)
    for name in ("s0b1.attn.scores", "s0b1.attn.probs", "s0b1.attn.q", "s1.merge.concat", "head"):
        assert name in r.taps
    assert r.output.shape == (8, 10)
    assert all(0 <= r.overflow[k] <= r.elements[k] for k in r.overflow)


def test_bad_inputs_give_clear_errors() -> None:
    m = random_model(SWIN_DIGITS)
    attn = m.of_type(N.WindowAttention)[0]
    with pytest.raises(IRError, match="does not divide"):
        dataclasses.replace(attn, resolution=(5, 5))
    with pytest.raises(IRError, match="shift must be 0"):
        dataclasses.replace(m.of_type(N.WindowAttention)[2], shift=1)
    merge = m.node("s1.merge")
    nodes = list(m.nodes)
    nodes[0] = N.Input("input", (10, 10, 1), m.input.fmt)
    with pytest.raises(IRError):
        Model("bad", tuple(nodes), m.output)
    spec = SwinSpec("odd", (6, 6, 1), 2, 8, (StageSpec(1, 2, 3, 0), StageSpec(1, 2, 1, 0, merge=True)), classes=2)
    with pytest.raises(IRError, match="even resolution"):
        random_model(spec)
    lin = attn.q
    with pytest.raises(IRError, match="fraction bits"):
        bad = dataclasses.replace(attn, q=N.Linear(lin.weight, lin.w_fmt, lin.bias, Fmt(True, 24, 2), lin.out_fmt))
        Model("bad", (m.input, m.node("patch_embed"), bad), bad.name)
    with pytest.raises(FormatError, match="does not fit"):
        N.Linear(np.array([[300]]), Fmt(True, 8, 1), None, None, Fmt(True, 8, 3))
    with pytest.raises(FormatError, match="non-integer"):
        N.Linear(np.array([[0.5]]), Fmt(True, 8, 1), None, None, Fmt(True, 8, 3))
    with pytest.raises(FormatError, match="input shape"):
        golden.run(m, np.zeros((1, 4, 4, 1), np.int64))
    with pytest.raises(FormatError, match="does not fit"):
        golden.run(m, np.full((1, 8, 8, 1), 99, np.int64))
    assert merge.linear.n_in == 64


@pytest.mark.parametrize("res,window", [((12, 1), "global"), ((12, 1), (4, 1)), ((4, 4), 2)])
def test_padding_mask_matches_loop_reference(res, window) -> None:
    """Padded tokens (all input codes 0) are neither attended to nor pooled."""
    dim = 8
    spec = SwinSpec("m", (res[0], res[1], dim), 0, dim, (StageSpec(2, 2, window, 0),), classes=3,
                    in_fmt=Fmt(True, 8, 3, "RND", "SAT"), seq=res[1] == 1, rel_bias=True, pad_mask=True)
    m = random_model(spec, seed=5)
    x = random_input(m, 4, seed=3)
    x[0, 5:] = 0  # sample 0: the last 7 tokens (or rows) are padding
    x[1, :, :1] = 0  # sample 1: one column / a scattered pattern
    x[2, ::3] = 0
    x[3] = 0  # all padding: pools to 0
    r = golden.run(m, x)
    real = r.outputs["mask"][..., 0] != 0
    assert not real[0, 5:].any() and real[0, :5].all() and not real[3].any()
    info = m.infer()
    for attn in m.of_type(N.WindowAttention):
        xin = r.outputs[attn.src]
        for b in range(x.shape[0]):
            np.testing.assert_array_equal(r.outputs[attn.name][b],
                                          attention_reference(attn, xin[b], info[attn.src].fmt, real[b]))
    pool = m.node("pool")
    xin = r.outputs[pool.src].reshape(4, -1, dim)
    pf = info[pool.src].fmt.frac + pool.inv_frac
    for b in range(4):
        cnt = int(real[b].sum())
        want = [rq(pool.out_fmt, int(xin[b][real[b].reshape(-1), c].sum()) * int(pool.inv_table[cnt]), pf)
                for c in range(dim)]
        np.testing.assert_array_equal(r.outputs["pool"][b], want)
    np.testing.assert_array_equal(r.outputs["pool"][3], 0)
    # without the mask the padded tokens change the result (the mask is not a no-op)
    nm = random_model(dataclasses.replace(spec, pad_mask=False), seed=5)
    assert not np.array_equal(golden.predict(nm, x[:3]), r.output[:3])
    # JSON round trip keeps the mask; io_stream refuses a mask read by too many layers, by name
    m2 = Model.from_json(m.to_json())
    np.testing.assert_array_equal(golden.predict(m2, x), r.output)
