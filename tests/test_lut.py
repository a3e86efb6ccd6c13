"""Lookup tables: every address against float within the stated bound; the integer softmax's
error bound and argmax guarantee."""

from __future__ import annotations

import math

import numpy as np
import pytest

from swinfpga.fixed import Fmt, FormatError
from swinfpga.lut import Lut, exp_table, gelu, gelu_table, recip_table, rsqrt_table
from swinfpga.ops.fx import softmax_codes
from swinfpga.softmax_sizing import design_softmax


def test_exp_table_every_address() -> None:
    d_fmt = Fmt(False, 8, 4)  # d in [0, 16), lsb 1/16
    t = exp_table("e", d_fmt, 12)
    x = np.arange(t.size) * d_fmt.lsb
    err = np.abs(t.out_fmt.to_float(t.array()) - np.exp(-x))
    assert err.max() <= t.out_fmt.lsb / 2 + 1e-12
    assert t.table[0] == 1 << 12 and t.table[-1] == 0
    assert np.all(np.diff(t.array()) <= 0), "exp table must be monotone"
    # beyond the table, lookups clip to the final zero entry
    assert t.lookup(np.array([d_fmt.max_code]))[0] == 0


def test_recip_table_every_address() -> None:
    t = recip_table("r", 14, 9, 11)
    a = np.arange(t.size)
    lo = 1.0 + a * 2.0**-9
    hi = lo + 2.0**-9
    got = t.out_fmt.to_float(t.array())
    bound = 2.0**-10 + 2.0**-12 + 1e-12
    assert np.all(np.abs(got - 1 / lo) <= bound) and np.all(np.abs(got - 1 / hi) <= bound)


def test_rsqrt_and_gelu_tables() -> None:
    var_fmt = Fmt(False, 16, 5)
    t = rsqrt_table("rs", var_fmt, 10, 1e-5, Fmt(False, 12, 5, "RND", "SAT"))
    x = t.input_values()
    ok = 1 / np.sqrt(x + 1e-5) < t.out_fmt.max_value
    err = np.abs(t.out_fmt.to_float(t.array()) - 1 / np.sqrt(x + 1e-5))
    assert err[ok].max() <= t.out_fmt.lsb / 2 + 1e-12
    f = Fmt(True, 8, 3, "RND", "SAT")
    g = gelu_table("g", f, f)
    codes = np.arange(f.min_code, f.max_code + 1)
    assert np.array_equal(g.lookup(codes), f.from_float(gelu(f.to_float(codes))))
    with pytest.raises(FormatError, match="wider than 12"):
        gelu_table("g", Fmt(True, 16, 3), f)


def test_lut_json_hash_roundtrip() -> None:
    t = exp_table("e", Fmt(False, 8, 4), 10)
    t2 = Lut.from_json(t.to_json())
    assert t2 == t and t2.hash == t.hash
    d = t.to_json()
    d["table"][3] += 1
    with pytest.raises(FormatError, match="hash"):
        Lut.from_json(d)


def float_softmax(s: np.ndarray, lsb: float, valid: np.ndarray | None = None) -> np.ndarray:
    z = s * lsb
    if valid is not None:
        z = np.where(valid, z, -np.inf)
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


@pytest.mark.parametrize("width,int_bits,n", [(8, 4, 4), (8, 3, 4), (8, 4, 9), (8, 4, 16), (10, 5, 49)])
def test_softmax_error_at_most_one_lsb_and_no_flips(width: int, int_bits: int, n: int) -> None:
    sf = Fmt(True, width, int_bits, "RND", "SAT")
    spec = design_softmax("t", sf, n)
    rng = np.random.default_rng(n)
    s = np.concatenate([
        rng.integers(sf.min_code, sf.max_code + 1, (4000, n)),
        np.clip(rng.normal(0, 2 / sf.lsb, (4000, n)).round(), sf.min_code, sf.max_code).astype(np.int64),
        np.clip(rng.normal(0, 0.3 / sf.lsb, (2000, n)).round(), sf.min_code, sf.max_code).astype(np.int64),
    ])
    valid = rng.random(s.shape) > 0.3
    valid[:, 0] = True
    for v in (None, valid):
        p = softmax_codes(spec, s, v)
        f = float_softmax(s, sf.lsb, v)
        err = np.abs(spec.prob_fmt.to_float(p) - f) / spec.prob_fmt.lsb
        assert err.max() <= 1.0, f"max error {err.max():.3f} LSB"
        # argmax: no flip unless the top scores tie exactly
        top = np.where(v if v is not None else True, s, -10**9)
        srt = np.sort(top, -1)
        distinct = srt[:, -1] != srt[:, -2] if n > 1 else np.ones(len(s), bool)
        assert np.array_equal(p.argmax(-1)[distinct], f.argmax(-1)[distinct])
        if v is not None:
            assert np.all(p[~v] == 0)


def test_softmax_masked_row_gets_full_probability() -> None:
    spec = design_softmax("t", Fmt(True, 8, 4, "RND", "SAT"), 4)
    valid = np.array([[True, False, False, False]])
    p = softmax_codes(spec, np.array([[5, 100, -3, 7]]), valid)
    assert p.tolist() == [[1 << spec.prob_fmt.frac, 0, 0, 0]]


def test_softmax_sizes_are_bounded() -> None:
    spec = design_softmax("t", Fmt(True, 8, 4, "RND", "SAT"), 4)
    assert spec.prob_fmt.width <= 10 and spec.recip.size <= 1024 and spec.exp.size <= 512
    assert math.isclose(spec.exp.out_fmt.to_float(spec.exp.table[0]), 1.0)
