"""Fuzzing every loader (issue 12): IR JSON, manifest, board YAML, ``vectors.npz``, QKeras ``.h5``.  Each input,
valid documents mutated at random places plus arbitrary bytes, either loads or raises a
:class:`swinfpga.errors.SwinfpgaError` subclass; nothing else (no KeyError, TypeError, traceback).

Architecture files are not fuzzed yet: their loader does not exist in this branch (add a test here
with the same shape when it lands).  ``SWINFPGA_FUZZ_EXAMPLES`` raises the example count (>= 500);
``SWINFPGA_FUZZ_RANDOM=1`` draws fresh inputs instead of CI's fixed, reproducible sequence.
"""

from __future__ import annotations

import copy
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swinfpga.boards import load_board_file
from swinfpga.errors import SwinfpgaError
from swinfpga.ir import Model
from swinfpga.ir.build import random_model
from swinfpga.manifest import Manifest, Project, load_vectors
from swinfpga.models import StageSpec, SwinSpec

EXAMPLES = max(500, int(os.environ.get("SWINFPGA_FUZZ_EXAMPLES", "500")))
RANDOM = os.environ.get("SWINFPGA_FUZZ_RANDOM", "") not in ("", "0")  # fresh inputs each run (CI: fixed)
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=not RANDOM, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
TINY = SwinSpec("tiny", (4, 4, 1), 2, 4, (StageSpec(1, 1, 2, 0),), mlp_ratio=1, classes=2)

leaf = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.sampled_from([0, 1, -1, 2, 63, 64, 10**9]),
                 st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
                 st.sampled_from(["", "0", "RND", "SAT", "WindowAttention", "Linear", "__fmt__", "../x", "/etc"]))
json_any = st.recursive(leaf, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=6), c, max_size=4),
                        max_leaves=8)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every place in a JSON document; a ``__codes__`` array counts as one place plus its first row
    (so weight tables do not drown the structure)."""
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k)) if k != "__codes__" else [(*prefix, k), (*prefix, k, 0)]
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


def _mutate_once(data: st.DataObject, root: Any) -> Any:
    """Pick a place uniformly and replace, delete or insert there."""
    holder = [root]
    path = (0, *data.draw(st.sampled_from(_paths(root))))
    parent: Any = holder
    for k in path[:-1]:
        parent = parent[k]
    key = path[-1]
    op = data.draw(st.sampled_from(["replace", "replace", "delete", "insert"]))
    if op == "replace" or parent is holder:
        parent[key] = data.draw(json_any)
    elif op == "delete":
        del parent[key]
    elif isinstance(parent[key], dict):
        parent[key][data.draw(st.text(max_size=6))] = data.draw(json_any)
    elif isinstance(parent[key], list):
        parent[key].insert(data.draw(st.integers(0, len(parent[key]))), data.draw(json_any))
    else:
        parent[key] = data.draw(json_any)
    return holder[0]


def mutated(data: st.DataObject, doc: Any) -> Any:
    doc = copy.deepcopy(doc)
    for _ in range(data.draw(st.integers(1, 3))):
        doc = _mutate_once(data, doc)
    return doc


def mutated_bytes(data: st.DataObject, raw: bytes,
                  ops: tuple[str, ...] = ("truncate", "flip", "insert", "zero")) -> bytes:
    """Truncate, flip, insert or zero bytes of a valid file."""
    b = bytearray(raw)
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(ops))
        i = data.draw(st.integers(0, max(0, len(b) - 1)))
        if op == "truncate":
            del b[i:]
        elif op == "flip" and b:
            b[i] ^= data.draw(st.integers(1, 255))
        elif op == "insert":
            b[i:i] = data.draw(st.binary(min_size=1, max_size=16))
        elif b:
            b[i:i + 8] = bytes(len(b[i:i + 8]))
    return bytes(b)


def loads_or_swinfpga_error(fn, *args) -> None:
    try:
        fn(*args)
    except SwinfpgaError as e:
        assert str(e), "an error without a message"
    # anything else propagates: hypothesis reports it with the failing input


@pytest.fixture(scope="module")
def valid(tmp_path_factory) -> dict[str, Any]:
    from swinfpga.project import ConvertOptions, convert

    d = tmp_path_factory.mktemp("valid")
    m = random_model(TINY, seed=4)
    res = convert(m, d / "prj", ConvertOptions(hls=False, rtl=False, n_vectors=6))
    board = (Path(__file__).resolve().parent.parent / "boards" / "vu13p.yaml").read_text()
    return {"ir": m.to_json(), "manifest": res.manifest.to_json(), "prj": d / "prj", "board": board,
            "npz": (d / "prj" / "vectors.npz").read_bytes(), "tmp": d}


# ----- IR JSON -----------------------------------------------------------------------------------------
@FUZZ
@given(data=st.data())
def test_fuzz_ir_json_documents(valid, data) -> None:
    if data.draw(st.integers(0, 9)) == 0:
        doc = data.draw(json_any)
    else:
        doc = mutated(data, valid["ir"])
    loads_or_swinfpga_error(Model.from_json, doc, "fuzz.json")


@FUZZ
@given(data=st.data())
def test_fuzz_ir_json_files(valid, data) -> None:
    raw = json.dumps(valid["ir"]).encode()
    p = valid["tmp"] / "fuzz_ir.json"
    p.write_bytes(mutated_bytes(data, raw) if data.draw(st.booleans()) else data.draw(st.binary(max_size=64)))
    loads_or_swinfpga_error(Model.load, p)


# ----- manifest ----------------------------------------------------------------------------------------
@FUZZ
@given(data=st.data())
def test_fuzz_manifest(valid, data) -> None:
    if data.draw(st.integers(0, 4)) == 0:
        p = valid["tmp"] / "fz" / "manifest.json"
        p.parent.mkdir(exist_ok=True)
        raw = json.dumps(valid["manifest"]).encode()
        p.write_bytes(mutated_bytes(data, raw))
        loads_or_swinfpga_error(Project.open, p.parent)
    else:
        loads_or_swinfpga_error(Manifest.from_json, mutated(data, valid["manifest"]), "manifest.json")


# ----- board YAML --------------------------------------------------------------------------------------
@FUZZ
@given(data=st.data())
def test_fuzz_board_yaml(valid, data) -> None:
    import yaml

    p = valid["tmp"] / "fuzz_board.yaml"
    kind = data.draw(st.integers(0, 3))
    if kind == 0:
        p.write_bytes(mutated_bytes(data, valid["board"].encode()))
    elif kind == 1:
        p.write_bytes(data.draw(st.binary(max_size=64)))
    else:
        p.write_text(yaml.safe_dump(mutated(data, yaml.safe_load(valid["board"]))))
    loads_or_swinfpga_error(load_board_file, p)


# ----- vectors.npz -------------------------------------------------------------------------------------
arrays = st.builds(
    lambda dt, shape, seed: np.random.default_rng(seed).integers(-300, 300, size=shape).astype(dt),
    st.sampled_from(["int8", "int64", "uint8", "float32", "bool", "complex64", "U3"]),
    st.lists(st.integers(0, 5), max_size=5).map(tuple), st.integers(0, 9))


@FUZZ
@given(data=st.data())
def test_fuzz_vectors_npz(valid, data) -> None:
    man = Project.open(valid["prj"]).manifest
    p = valid["tmp"] / "fuzz_vectors.npz"
    kind = data.draw(st.integers(0, 3))
    if kind <= 1:
        p.write_bytes(mutated_bytes(data, valid["npz"]))
    elif kind == 2:
        buf = io.BytesIO()
        arrs = data.draw(st.dictionaries(st.sampled_from(["x", "y", "z", "x.npy"]), arrays, max_size=3))
        np.savez(buf, **arrs)
        p.write_bytes(buf.getvalue())
    else:
        p.write_bytes(data.draw(st.binary(max_size=64)))
    loads_or_swinfpga_error(load_vectors, p, man)


# ----- legacy QKeras .h5 (h5py; the HDF5 library must not crash on damaged files) --------------------
# Byte flips and truncations only: inserted / zeroed runs make the HDF5 library loop forever on ~1.5%
# of files, which read_h5_isolated turns into an error after SWINFPGA_H5_TIMEOUT seconds (forking a
# child per file; tests/test_errors.py covers that path).  Here the reader runs in-process (a fork per
# example costs 0.1 s once TensorFlow is loaded) under a watchdog: a hang fails loudly, never freezes.
@FUZZ
@given(data=st.data())
def test_fuzz_qkeras_h5(valid, data, monkeypatch) -> None:
    import faulthandler

    from legacy_fixture import legacy_model

    import swinfpga.frontend.qkeras_h5 as Q

    monkeypatch.setattr(Q, "read_h5_isolated", lambda path, timeout=None: Q.read_h5(path))
    src = valid["tmp"] / "legacy.h5"
    if not src.exists():
        legacy_model(src)
    p = valid["tmp"] / "fuzz.h5"
    p.write_bytes(mutated_bytes(data, src.read_bytes(), ("truncate", "flip")))
    faulthandler.dump_traceback_later(60, exit=True)
    try:
        loads_or_swinfpga_error(Q.from_h5, p)
    finally:
        faulthandler.cancel_dump_traceback_later()


def test_valid_inputs_still_load(valid) -> None:
    """The fuzz tests' seeds are themselves valid (otherwise the fuzzing would prove little)."""
    import yaml

    assert Model.from_json(valid["ir"]).to_json() == valid["ir"]
    assert Manifest.from_json(valid["manifest"]).to_json() == valid["manifest"]
    p = valid["tmp"] / "ok.yaml"
    p.write_text(valid["board"])
    assert load_board_file(p).name == yaml.safe_load(valid["board"])["name"]
    x, y = Project.open(valid["prj"]).vectors()
    assert x.shape == (6, 4, 4, 1) and y.shape == (6, 2)
