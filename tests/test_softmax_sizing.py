"""Proven softmax sizing (swinfpga.softmax_sizing): the proofs can fail, agree with each other and
with brute force, and design_softmax's proven widths are no wider than the analytic ones."""

from __future__ import annotations

import numpy as np
import pytest

from swinfpga import softmax_sizing as S
from swinfpga.errors import SwinfpgaError
from swinfpga.fixed import Fmt
from swinfpga.ops import softmax_codes
from swinfpga.softmax_sizing import design_softmax

S8 = Fmt(True, 8, 4, "RND", "SAT")
S85 = Fmt(True, 8, 5, "RND", "SAT")


def _float_softmax(s: np.ndarray, lsb: float, valid: np.ndarray) -> np.ndarray:
    z = np.where(valid, s * lsb, -np.inf)
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_prob_step_matches_softmax_codes() -> None:
    """The proof's copy of the last line of the definition equals softmax_codes on real rows."""
    spec = S.build_spec("t", S8, 9, 8, 13, 9, 10)
    rng = np.random.default_rng(1)
    s = rng.integers(S8.min_code, S8.max_code + 1, (3000, 9))
    m = s.max(-1, keepdims=True)
    e = spec.exp.lookup(m - s)
    tot = e.sum(-1, keepdims=True)
    k = np.zeros_like(tot)
    for j in range(1, spec.max_k + 1):
        k += tot >= (1 << (spec.exp_frac + j))
    r = spec.recip.lookup(tot >> k)
    np.testing.assert_array_equal(S._prob(spec, e, r, k), softmax_codes(spec, s))


def test_exhaustive_row_count_and_brute_force() -> None:
    """n = 3 over a small exp table: the multiset enumeration covers every ordered row (brute force
    over all score triples, masked or not, gives the same worst error and no flips)."""
    f = Fmt(True, 5, 3, "RND", "SAT")  # 32 codes, lsb 1/4
    spec = design_softmax("t", f, 3)
    err, flips, rows = S.exhaustive(spec)
    assert rows == S.exhaustive_rows(spec)
    c = np.arange(f.min_code, f.max_code + 1)
    s = np.stack(np.meshgrid(c, c, c, indexing="ij"), -1).reshape(-1, 3)
    worst = 0.0
    for mask in ([1, 1, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1], [1, 0, 0]):
        v = np.broadcast_to(np.array(mask, bool), s.shape)
        p = spec.prob_fmt.to_float(softmax_codes(spec, s, v))
        ref = _float_softmax(s, f.lsb, v)
        worst = max(worst, float((np.abs(p - ref) * v).max() / spec.prob_fmt.lsb))
    assert worst <= err + 1e-9  # the exhaustive proof's box bound covers every concrete row
    assert err <= 1.0 and flips == 0


@pytest.mark.parametrize("widths", [(8, 13, 9, 11), (8, 10, 9, 8), (8, 12, 8, 9), (8, 11, 10, 10)])
def test_bound_is_above_exhaustive(widths) -> None:
    """The rigorous bound never undercuts the exhaustive maximum (n = 4, 8-bit scores)."""
    spec = S.build_spec("t", S85, 4, *widths)
    err, _, _ = S.exhaustive(spec)
    bound, _ = S.error_bound(spec)
    assert bound >= err


def test_proofs_reject_narrow_designs() -> None:
    """Too few exp / reciprocal bits fail the error proof; too few probability bits fail the flip proof."""
    narrow = S.build_spec("t", S85, 4, 8, 8, 6, 7)
    assert not S.prove(narrow, "exhaustive").ok and not S.prove(narrow, "bound").ok
    assert S.prove(narrow, "exhaustive").max_err_lsb > 1.0
    coarse = S.build_spec("t", S8, 16, 5, 12, 7, 8)  # P = 5: 1/16 x (1 - e**-1/16) is 0.12 LSB
    assert not S.flip_free(coarse)
    err, flips, _ = S.exhaustive(S.build_spec("t", S8, 4, 3, 10, 5, 6))
    assert flips > 0


@pytest.mark.parametrize("fmt,n", [(S8, 4), (S85, 4), (S8, 9), (S8, 16), (S8, 49),
                                   (Fmt(True, 10, 5, "RND", "SAT"), 16)])
def test_proven_design_is_proven_and_no_wider(fmt: Fmt, n: int) -> None:
    new = design_softmax("t", fmt, n)
    old = design_softmax("t", fmt, n, design="analytic")
    proof = S.prove(new)
    assert proof.ok, proof
    assert S.prove(old).ok  # the analytic design passes the same proofs
    (p1, e1, b1, r1), (p0, e0, b0, r0) = S.widths(new), S.widths(old)
    assert p1 <= p0 and e1 <= e0 and b1 <= b0 and r1 <= r0
    assert S.cost_proxy(n, p1, e1, b1, r1, new.exp.size) < S.cost_proxy(n, p0, e0, b0, r0, old.exp.size)
    # and the random-row check of the guarantees (not a proof: the adversarial rows too)
    err, flips = S.adversarial_check(new, rows=3000)
    assert err <= 1.0 and flips == 0


def test_analytic_design_keeps_old_widths() -> None:
    assert S.widths(design_softmax("t", S8, 4, design="analytic")) == (8, 13, 9, 11)
    assert S.widths(design_softmax("t", S8, 16, design="analytic")) == (10, 17, 11, 13)
    with pytest.raises(SwinfpgaError, match="design"):
        design_softmax("t", S8, 4, design="cheap")


def test_keras_layer_softmax_design_config() -> None:
    """New layers size their softmax 'proven'; a saved config without the key loads 'analytic'."""
    pytest.importorskip("keras")
    from swinfpga.keras.layers import QWindowAttention

    a = QWindowAttention(2, 2, name="a")
    assert a.get_config()["softmax_design"] == "proven"
    cfg = a.get_config()
    del cfg["softmax_design"]
    assert QWindowAttention.from_config(cfg).softmax_design == "analytic"
    assert "softmax_design" not in QWindowAttention.from_config(cfg).get_config()


@pytest.mark.csim
@pytest.mark.parametrize("fmt,n", [(S85, 4), (S8, 9), (S8, 16)])
def test_csim_with_proven_widths(fmt: Fmt, n: int, tmp_path_factory) -> None:
    """hls_templates/swin_softmax.h with the proven (narrower, R < E) widths: C-sim == softmax_codes,
    on random, normal, all-equal and one-repeated-d rows."""
    from tests.conftest import csim_cache

    with csim_cache(tmp_path_factory):
        from swinfpga.backends.hls4ml.csim import compile_plans
        from swinfpga.backends.hls4ml.plan import plan_softmax

        sm = design_softmax(f"pv{n}", fmt, n)
        rows = 64
        cm = compile_plans(plan_softmax(f"pv{n}", sm, rows), 1, "Vitis", "xcvu13p-flga2577-2-e", 5.0, lambda s: None)
        rng = np.random.default_rng(n)
        s = rng.integers(fmt.min_code, fmt.max_code + 1, size=(6, rows, n))
        s[0] = np.clip(rng.normal(0, 1 / fmt.lsb, (rows, n)).round(), fmt.min_code, fmt.max_code)
        s[1] = fmt.max_code  # all equal: the largest normalisation shift
        s[2, :, 1:] = fmt.max_code - (np.arange(rows) % sm.exp.size)[:, None]  # one d repeated
        s[2, :, 0] = fmt.max_code
        got = cm.predict_codes(s.reshape(6, -1)).reshape(s.shape)
        np.testing.assert_array_equal(got, softmax_codes(sm, s))
