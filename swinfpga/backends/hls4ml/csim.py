"""Project writing and bit-exact C simulation through hls4ml (``compile()`` + ``predict()``).

Values cross the hls4ml boundary as doubles: input ``codes * lsb`` (exact) and output
``value * 2**frac`` (exact, checked to be integral).  C-sim builds are cached under
``$SWINFPGA_CACHE`` (default ``~/.cache/swinfpga``) ``/csim/<sha256 of the generated sources>/``,
so re-verifying an unchanged project does not recompile.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...boards import Board
from ...fixed import Fmt
from ...ir.graph import Model
from ...manifest import Project
from ...verify import CsimReport, Mismatch, compare_codes
from .plan import LayerPlan, plan_model

STACK_BYTES = 1 << 30  # io_parallel keeps whole feature maps on the stack (56x56x96 maps: MBs each)


def cache_root() -> Path:
    return Path(os.environ.get("SWINFPGA_CACHE", Path.home() / ".cache" / "swinfpga"))


@dataclass
class CompiledModel:
    """A loaded C-sim library with its plans; ``predict_codes``/``trace_codes`` work on integer codes."""

    hls_model: Any
    plans: list[LayerPlan]
    lib_path: Path
    cached: bool
    build_seconds: float

    @property
    def in_fmt(self) -> Fmt:
        return self.plans[0].out_fmt

    @property
    def out_fmt(self) -> Fmt:
        return self.plans[-1].out_fmt

    def predict_codes(self, x: np.ndarray) -> np.ndarray:
        """Input codes (B, *in_shape) -> output codes (B, *out_shape), via hls4ml's predict."""
        xs = np.ascontiguousarray(self.in_fmt.to_float(x).reshape(x.shape[0], -1))
        y = _big_stack(lambda: self.hls_model.predict(xs))
        y = np.asarray(y, dtype=np.float64).reshape(x.shape[0], *self.plans[-1].shape)
        return to_codes(y, self.out_fmt, "output")

    def trace_codes(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Every traced layer's output codes, keyed by IR node name (uses the library's trace hooks)."""
        return _big_stack(lambda: self._trace(x))

    def _trace(self, x: np.ndarray) -> dict[str, np.ndarray]:
        lib = self.hls_model._top_function_lib
        layers = [p for p in self.plans[1:]]

        class TraceData(ctypes.Structure):
            _fields_ = [("name", ctypes.c_char_p), ("data", ctypes.c_void_p)]

        top, ctype = self.hls_model._get_top_function(np.zeros(1))
        out: dict[str, list[np.ndarray]] = {p.name: [] for p in layers}
        lib.allocate_trace_storage.argtypes = [ctypes.c_size_t]
        lib.collect_trace_output.argtypes = [ctypes.POINTER(TraceData)]
        lib.allocate_trace_storage(ctypes.sizeof(ctypes.c_double))
        try:
            data = (TraceData * len(layers))()
            ysize = int(np.prod(self.plans[-1].shape))
            for xi in self.in_fmt.to_float(x).reshape(x.shape[0], -1):
                y = np.zeros(ysize)
                top(np.ascontiguousarray(xi), y)
                lib.collect_trace_output(data)
                for d in data:
                    nm = d.name.decode()
                    p = next(q for q in layers if q.name == nm)
                    arr = np.ctypeslib.as_array(ctypes.cast(d.data, ctypes.POINTER(ctypes.c_double)),
                                                shape=(int(np.prod(p.shape)),))
                    out[nm].append(arr.copy())
        finally:
            lib.free_trace_storage()
        res = {}
        for p in layers:
            v = np.asarray(out[p.name]).reshape(x.shape[0], *p.shape)
            res[p.ir_name] = to_codes(v, p.out_fmt, p.ir_name)
        return res


def to_codes(v: np.ndarray, f: Fmt, what: str) -> np.ndarray:
    c = np.ldexp(np.asarray(v, dtype=np.float64), f.frac)
    if not np.all(c == np.round(c)):
        raise AssertionError(f"{what}: C-sim value is not a code of {f}")
    return c.astype(np.int64)


def _big_stack(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` in a thread with a large stack (hls4ml's io_parallel keeps feature maps on the stack)."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["v"] = fn()
        except BaseException as e:  # re-raised in the caller
            box["e"] = e

    old = threading.stack_size(STACK_BYTES)
    try:
        t = threading.Thread(target=run)
        t.start()
        t.join()
    finally:
        threading.stack_size(old)
    if "e" in box:
        raise box["e"]
    return box["v"]


def write_hls_project(model: Model, board: Board, out_dir: Path, reuse_factor: int = 1,
                      backend: str = "Vitis") -> None:
    """Write the hls4ml project of ``model`` (``build_prj.tcl``, ``firmware/``, ...) into ``out_dir``."""
    from .graph import build_graph

    plans = plan_model(model, reuse_factor)
    g = build_graph(plans, Path(out_dir), board.part, board.clock_ns, backend, reuse_factor)
    g.write()


def _source_hash(prj: Path) -> str:
    """SHA-256 of the sources that determine the C-sim library (stamp-independent)."""
    h = hashlib.sha256()
    files = sorted(p for p in (prj / "firmware").rglob("*") if p.is_file() and p.suffix in (".h", ".cpp", ".hpp"))
    files += [prj / "myproject_bridge.cpp", prj / "build_lib.sh"]
    for f in files:
        if not f.exists():
            continue
        txt = f.read_bytes()
        if f.name == "build_lib.sh":
            txt = re.sub(rb"LIB_STAMP=\S*", b"LIB_STAMP=", txt)
        h.update(str(f.relative_to(prj)).encode() + b"\0" + txt + b"\0")
    return h.hexdigest()


def compile_model(model: Model, reuse_factor: int = 1, backend: str = "Vitis", part: str = "xcvu13p-flga2577-2-e",
                  clock_ns: float = 5.0, progress: Callable[[str], None] = lambda s: None,
                  plans: list[LayerPlan] | None = None) -> CompiledModel:
    """Build (or fetch from the cache) the hls4ml C-sim library of ``model`` and load it."""

    plans = plans if plans is not None else plan_model(model, reuse_factor)
    return _compile_plans(plans, reuse_factor, backend, part, clock_ns, progress)


def _compile_plans(plans: list[LayerPlan], reuse_factor: int, backend: str, part: str, clock_ns: float,
                   progress: Callable[[str], None]) -> CompiledModel:
    from .graph import build_graph

    root = cache_root() / "csim"
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="prj-", dir=root))
    g = build_graph(plans, work, part, clock_ns, backend, reuse_factor)
    g.write()
    key = _source_hash(work)
    entry = root / key
    lib = entry / "lib.so"
    t0 = time.perf_counter()
    if lib.exists():
        progress(f"C-sim library cached ({key[:12]})")
        shutil.rmtree(work, ignore_errors=True)
        cached = True
    else:
        progress("C-sim: compiling with g++ through hls4ml")
        g._compile()  # hls4ml: ./build_lib.sh (the project was just written)
        built = Path(work) / "firmware" / f"{g.config.get_project_name()}-{g.config.get_config_value('Stamp')}.so"
        tmp = root / f".{key}.tmp-{os.getpid()}"
        tmp.mkdir(exist_ok=True)
        shutil.copy2(built, tmp / "lib.so")
        try:
            tmp.rename(entry)
        except OSError:  # another process stored it first
            shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
        cached = False
    secs = time.perf_counter() - t0
    g._top_function_lib = ctypes.cdll.LoadLibrary(str(lib))
    return CompiledModel(g, plans, lib, cached, secs)


def verify_csim(project: Project, n: int | None = None,
                progress: Callable[[str], None] = lambda s: None) -> CsimReport:
    """hls4ml C simulation of ``project`` vs its golden vectors (integer codes, exact)."""
    from ... import golden

    model = project.model()
    x, y = project.vectors()
    if n is not None:
        x, y = x[:n], y[:n]
    rf = int(project.manifest.extra.get("reuse_factor", 1))
    cm = compile_model(model, reuse_factor=rf, part=project.manifest.part,
                       clock_ns=1000.0 / project.manifest.clock_mhz, progress=progress)
    t0 = time.perf_counter()
    progress(f"C-sim: predicting {x.shape[0]} samples")
    got = cm.predict_codes(x)
    count, first = compare_codes("output", y, got)
    layers: dict[str, int] = {}
    if count:
        progress("C-sim: mismatches; tracing every layer")
        bad = np.unique(np.argwhere(y != got)[:, 0])[:8]
        tr = cm.trace_codes(x[bad])
        ref = golden.run(model, x[bad]).outputs
        firsts: list[Mismatch] = []
        for name, codes in tr.items():
            c, f = compare_codes(name, ref[name], codes)
            layers[name] = c
            if c and not firsts:
                firsts = [Mismatch(m.layer, (int(bad[m.index[0]]), *m.index[1:]), m.expected, m.got) for m in f]
        first = tuple(firsts) + first
    return CsimReport(mismatches=count, samples=int(x.shape[0]), first=first, layers=layers,
                      build_seconds=cm.build_seconds, run_seconds=time.perf_counter() - t0, cached=cm.cached)
