"""Per-channel formats (``swinfpga.fixed.ChanFmt``) through the IR and the golden model."""

from __future__ import annotations

import numpy as np
import pytest

from swinfpga.fixed import ChanFmt
from swinfpga.golden import run
from swinfpga.ir.build import per_channel, random_input, random_model
from swinfpga.ir.graph import Model
from swinfpga.models import SEQ_DIGITS, SWIN_DIGITS, SWIN_DIGITS_LN


@pytest.mark.parametrize("spec", [SWIN_DIGITS, SWIN_DIGITS_LN, SEQ_DIGITS], ids=lambda s: s.name)
def test_per_channel_model_round_trips_and_every_tensor_holds_its_channel_codes(spec, tmp_path):
    pm = per_channel(random_model(spec, 1), seed=2)
    fm = pm.infer()
    chan = [k for k in fm if isinstance(fm[k].fmt, ChanFmt)]
    assert len(chan) >= 10
    x = random_input(pm, 24, seed=3)
    res = run(pm, x)
    for k in chan:  # each channel's codes lie on its own grid and range; pruned channels are 0
        f = fm[k].fmt
        y = res.outputs[k]
        assert f.contains(y), k
        for c, (w, _) in enumerate(f.chans):
            if w == 0:
                np.testing.assert_array_equal(y[..., c], 0, err_msg=f"{k} channel {c}")
    pm.save(tmp_path / "m.json")
    back = Model.load(tmp_path / "m.json")
    assert all(back.infer()[k].fmt == fm[k].fmt for k in fm)
    np.testing.assert_array_equal(run(back, x).output, res.output)
