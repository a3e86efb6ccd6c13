"""fixed.py against exact rational arithmetic (hypothesis)."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swinfpga.fixed import Fmt, FormatError, acc_fmt, fit_fmt, from_hgq, from_qkeras

fmts = st.builds(
    lambda s, w, i, r, o: Fmt(s, w, i, r, o),
    st.booleans(), st.integers(2, 24), st.integers(-4, 12), st.sampled_from(["TRN", "RND"]),
    st.sampled_from(["WRAP", "SAT", "SAT_SYM"]),
)


def ref_quantize(x: Fraction, f: Fmt) -> int:
    """Exact reference: scale, round (floor or floor(x+1/2)), then overflow."""
    scaled = x * (Fraction(2) ** f.frac)
    c = math.floor(scaled + Fraction(1, 2)) if f.rounding == "RND" else math.floor(scaled)
    lo, hi = f.min_code, f.max_code
    if f.overflow == "WRAP":
        span = 1 << f.width
        return (c - lo) % span + lo
    if f.overflow == "SAT_SYM" and f.signed:
        lo = -hi
    return min(max(c, lo), hi)


@given(fmts, st.integers(-(2**40), 2**40), st.integers(-8, 30))
@settings(max_examples=400, deadline=None)
def test_requant_matches_exact_rationals(f: Fmt, code: int, frac_in: int) -> None:
    x = Fraction(code) / (Fraction(2) ** frac_in)
    assert int(f.requant(np.array([code]), frac_in)[0]) == ref_quantize(x, f)


@given(fmts, st.fractions(min_value=-1000, max_value=1000, max_denominator=1 << 12))
@settings(max_examples=300, deadline=None)
def test_from_float_matches_exact(f: Fmt, x: Fraction) -> None:
    # only values exactly representable as float64 are compared
    xf = float(x)
    assert int(f.from_float(xf)) == ref_quantize(Fraction(xf), f)


@given(fmts)
def test_range_and_roundtrip(f: Fmt) -> None:
    lo = -f.max_code if (f.signed and f.overflow == "SAT_SYM") else f.min_code
    codes = np.arange(lo, f.max_code + 1) if f.width <= 12 else np.array([lo, 0, f.max_code])
    assert np.array_equal(f.from_float(f.to_float(codes)), codes)
    assert f.contains(codes)
    assert Fmt.parse(f.ap_type) == f


def test_ap_type_strings() -> None:
    assert Fmt(True, 8, 3).ap_type == "ap_fixed<8,3>"
    assert Fmt(False, 9, 1, "RND", "SAT").ap_type == "ap_ufixed<9,1,AP_RND,AP_SAT>"
    assert Fmt(True, 8, 1, "TRN", "SAT_SYM").ap_type == "ap_fixed<8,1,AP_TRN,AP_SAT_SYM>"
    assert Fmt(True, 8, 3).verilog_decl == "signed [7:0]"


def test_count_overflow() -> None:
    f = Fmt(True, 4, 4, "TRN", "SAT")
    out, n = f.requant_count(np.array([-9, -8, 0, 7, 8, 100]), 0)
    assert out.tolist() == [-8, -8, 0, 7, 7, 7] and n == 3


def test_qkeras_conversion() -> None:
    # quantized_bits(W, I) = ap_fixed<W, I+1>: QKeras' integer bits exclude the sign
    assert from_qkeras("quantized_bits(8,0,alpha=1)").ap_type == "ap_fixed<8,1,AP_RND,AP_SAT>"
    assert from_qkeras({"class_name": "quantized_bits", "config": {"bits": 6, "integer": 2}}) == Fmt(
        True, 6, 3, "RND", "SAT")
    assert from_qkeras("quantized_relu(8,3)") == Fmt(False, 8, 3, "RND", "SAT")
    with pytest.raises(FormatError, match="alpha"):
        from_qkeras("quantized_bits(8,0,alpha='auto_po2')")
    with pytest.raises(FormatError, match="no fixed-point format"):
        from_qkeras({"class_name": "quantized_tanh", "config": {}})


def test_hgq_conversion() -> None:
    assert from_hgq(1, 2, 5, "RND", "SAT") == Fmt(True, 8, 3, "RND", "SAT")
    assert from_hgq(np.array([0, 1]), np.array([1, 3]), np.array([4, 2])) == Fmt(True, 8, 4)


def test_helpers_and_errors() -> None:
    assert acc_fmt(-5, 3, 2) == Fmt(True, 4, 2)
    assert fit_fmt([0.7, -3.2], 8).int_bits == 3
    f = fit_fmt([0.49896], 8, signed=True)  # rounds up to 0.5: needs the extra integer bit
    assert f.to_float(f.from_float(0.49896)) == 0.5
    with pytest.raises(FormatError):
        Fmt(True, 0, 0)
    with pytest.raises(FormatError, match="does not fit"):
        Fmt(True, 4, 2).check_codes(np.array([9]), "weights")
    with pytest.raises(FormatError, match="NaN"):
        Fmt(True, 8, 2).from_float(float("nan"))


# ----- per-channel formats (ChanFmt) ---------------------------------------------------------------
def test_chan_fmt_requant_is_each_channels_requant_in_the_container():
    from swinfpga.fixed import ChanFmt

    rng = np.random.default_rng(0)
    chans = [(4, 2), (0, 0), (6, 3), (4, 2), (2, -1), (5, 1)]
    for signed, rnd, ovf in ((True, "RND", "SAT"), (False, "TRN", "SAT"), (True, "RND", "WRAP")):
        ch = [(w, i) for w, i in chans] if signed else [(max(w - 1, 0), i) for w, i in chans]
        f = ChanFmt.union(signed, ch, rnd, ovf)
        assert isinstance(f, ChanFmt) and f.container.width == f.width
        acc = rng.integers(-3000, 3000, size=(50, len(ch)))
        got, n = f.requant_count(acc, 6)
        want_n = 0
        for c in range(len(ch)):
            g = f.chan(c)
            if g is None:
                np.testing.assert_array_equal(got[:, c], 0, err_msg=f"pruned channel {c}")
                continue
            want, k = g.requant_count(acc[:, c], 6)
            want_n += k
            np.testing.assert_array_equal(got[:, c], want << (f.frac - g.frac), err_msg=f"channel {c} {g}")
        assert n == want_n
        assert f.contains(got) and Fmt.from_json(f.to_json()) == f
        np.testing.assert_array_equal(f.requant(got, f.frac), got)  # idempotent on its own codes


def test_chan_fmt_refuses_channels_outside_the_container_and_wrong_axes():
    from swinfpga.fixed import ChanFmt

    with pytest.raises(FormatError, match="inside the container"):
        ChanFmt(True, 6, 3, "RND", "SAT", chans=((4, 4),))
    with pytest.raises(FormatError, match="inside the container"):
        ChanFmt(True, 6, 3, "RND", "SAT", chans=((6, 2),))
    f = ChanFmt.union(True, [(4, 2), (6, 3)])
    with pytest.raises(FormatError, match="2 channels applied to shape"):
        f.requant(np.zeros((3, 5), dtype=np.int64), 4)
    assert ChanFmt.union(True, [(4, 2), (4, 2)]) == Fmt(True, 4, 2, "RND", "SAT")  # uniform: a plain Fmt
    with pytest.raises(FormatError, match=r"code 1 at \(0, 0\) is not a code of channel 0"):
        f.check_codes(np.array([[1, 0]]), "x")  # channel 0 has frac 2, the container 3: odd codes are off its grid
    with pytest.raises(FormatError, match="channel 1.s format pruned"):
        ChanFmt.union(True, [(4, 2), (0, 0), (6, 3)]).check_codes(np.array([[0, 8, 0]]), "x")
