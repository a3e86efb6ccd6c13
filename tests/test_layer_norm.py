"""LayerNorm kernel (swinfpga/ops/layer_norm.py): its sum of squares is computed as
sum(x*x) + M*(C*M - 2*sum(x)) beside the mean, not as sum((x - M)**2) after it.  Every code must
equal the textbook order's (written out here in numpy) on random and edge inputs, and the traced
RTL program must equal the golden model."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from swinfpga.fixed import Fmt


def _textbook(n, x: np.ndarray, xf: int) -> tuple[np.ndarray, np.ndarray]:
    """(var, out) codes of ``n`` in the textbook order: mean, d = x - mean, sum(d*d)."""
    s = x.sum(-1, keepdims=True)
    mean = n.mean_fmt.requant(s * n.inv_c, xf + n.inv_frac)
    mf = n.mean_fmt.frac
    d = (x << (mf - xf)) - mean
    var = n.var_fmt.requant((d * d).sum(-1, keepdims=True) * n.inv_c, 2 * mf + n.inv_frac)
    y = n.norm_fmt.requant(d * n.rsqrt.lookup(var), mf + n.rsqrt.out_fmt.frac)
    af = n.norm_fmt.frac + n.g_fmt.frac
    return var, n.out_fmt.requant(y * n.gamma + (n.beta << (af - n.b_fmt.frac)), af)


def _inputs(fmt: Fmt, c: int, rng: np.random.Generator) -> np.ndarray:
    lo, hi = fmt.min_code, fmt.max_code
    edge = [np.full(c, lo), np.full(c, hi), np.zeros(c), np.full(c, lo + 1),
            np.where(np.arange(c) % 2, lo, hi), np.where(np.arange(c) == 0, hi, lo),
            np.where(np.arange(c) == 0, lo, hi), np.where(np.arange(c) == c - 1, hi, 0)]
    rand = rng.integers(lo, hi + 1, (500, c))
    narrow = rng.integers(-3, 4, (100, c)).clip(lo, hi)  # small variance: the rsqrt table's steep end
    return np.concatenate([np.stack(edge), rand, narrow]).astype(np.int64)


def _check(n, x_fmt: Fmt, rng: np.random.Generator) -> None:
    from swinfpga.ops.fx import Taps
    from swinfpga.ops.layer_norm import golden

    x = _inputs(x_fmt, int(n.gamma.shape[0]), rng)
    taps = Taps()
    out = golden(n, [x], [x_fmt], taps)
    var, ref = _textbook(n, x, x_fmt.frac)
    np.testing.assert_array_equal(taps.values[f"{n.name}.var"], var, err_msg=f"{n.name}.var")
    np.testing.assert_array_equal(out, ref, err_msg=n.name)


@pytest.mark.parametrize("c", [1, 3, 8, 16, 32, 96])
@pytest.mark.parametrize("x_fmt", [Fmt(True, 8, 3, "RND", "SAT"), Fmt(False, 6, 2, "RND", "SAT"),
                                   Fmt(True, 12, 6, "RND", "SAT")])
def test_sum_of_squares_identity_keeps_every_code(c, x_fmt):
    from swinfpga.ir.build import _layer_norm

    rng = np.random.default_rng(c)
    n = _layer_norm("ln", "x", c, rng, Fmt(True, 8, 3, "RND", "SAT"))
    _check(n, x_fmt, rng)
    # a narrow mean that saturates and truncates: the identity holds for any integer mean code
    _check(dataclasses.replace(n, mean_fmt=Fmt(True, 7, 1, "TRN", "SAT")), x_fmt, rng)
    _check(dataclasses.replace(n, mean_fmt=Fmt(True, 16, 6, "RND", "SAT")), x_fmt, rng)


def test_trained_layer_norms_keep_every_code():
    from swinfpga.ir.nodes import LayerNorm
    from swinfpga.project import resolve_model

    model = resolve_model("swin-digits-ln")
    fmts = {k: v.fmt for k, v in model.infer().items()}
    lns = [nd for nd in model.nodes if isinstance(nd, LayerNorm)]
    assert lns
    for k, n in enumerate(lns):
        _check(n, fmts[n.src], np.random.default_rng(k))


def test_traced_layer_norm_unit_matches_golden():
    from tests.conftest import require_module

    require_module("da4ml")
    from swinfpga.backends.rtl.build import build_model, check_traced
    from swinfpga.ir.build import random_input, random_model
    from swinfpga.models import StageSpec, SwinSpec

    spec = SwinSpec("ln-seq", (6, 1, 3), 1, 4, (StageSpec(1, 2, "global", 0),), norm="ln", classes=3,
                    in_fmt=Fmt(True, 8, 3, "RND", "SAT"), seq=True)
    model = random_model(spec, seed=5)
    built, _ = build_model(model, 200.0)
    x = random_input(model, 32, seed=4)
    x[:4] = 0  # all-equal tokens: zero variance
    bad = check_traced(model, built, x)
    assert bad and not any(bad.values()), bad
