"""Project writing and bit-exact C simulation through hls4ml (``compile()`` + ``predict()``).

Values cross the hls4ml boundary as doubles: input ``codes * lsb`` (exact) and output
``value * 2**frac`` (exact, checked to be integral).  C-sim builds are cached under
``$SWINFPGA_CACHE`` (default ``~/.cache/swinfpga``) ``/csim/<sha256 of the generated sources>/``,
so re-verifying an unchanged project does not recompile.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...boards import Board
from ...errors import SwinfpgaError
from ...fixed import Fmt
from ...ir.graph import Model
from ...manifest import Project
from ...results import CsimReport, Mismatch, compare_codes
from .plan import LayerPlan, plan_model
from .preflight import PreflightError, PreflightReport, estimate, preflight, suggest, write_reports

SETTINGS = "swinfpga_hls.json"  # written next to build_prj.tcl: how the project was generated
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


@contextlib.contextmanager
def _no_keras_import() -> Iterator[None]:
    """hls4ml's YAML writer imports Keras only to register a representer for Keras models (our configs
    hold none); that import costs tens of seconds.  Make it fail fast (hls4ml catches the error) unless
    Keras is already loaded."""
    if "keras" in sys.modules:
        yield
        return
    sys.modules["keras"] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        if sys.modules.get("keras", 0) is None:
            del sys.modules["keras"]


def write_hls_project(model: Model, board: Board, out_dir: Path, reuse_factor: int = 1,
                      backend: str = "Vitis", strategy: str = "latency", layout: str = "layers",
                      check: bool = True, io_type: str = "io_parallel") -> PreflightReport:
    """Write the hls4ml project of ``model`` (``build_prj.tcl``, ``firmware/``, ...) into ``out_dir``, with
    ``hls_check.json`` (the synthesizability pre-flight) and ``hls_estimate.json`` (per-layer estimates).
    ``check``: raise :class:`~.preflight.PreflightError` when the pre-flight fails (after writing both)."""
    from .graph import build_graph

    plans = plan_model(model, reuse_factor, strategy, layout, io_type)
    rep = preflight(plans, strategy, reuse_factor, layout, board, io_type)
    g = build_graph(plans, Path(out_dir), board.part, board.clock_ns, backend, reuse_factor, strategy, layout,
                    io_type)
    with _no_keras_import():
        g.write()
    st = {"reuse_factor": int(reuse_factor), "backend": backend, "part": board.part, "clock_ns": board.clock_ns,
          "board": board.name, "project": g.config.get_project_name(), "strategy": strategy, "layout": layout,
          "io_type": io_type, "layers": {p.name: p.ir_name for p in plans}}
    (Path(out_dir) / SETTINGS).write_text(json.dumps(st, indent=1))
    write_reports(rep, estimate(plans, board, io_type), Path(out_dir))
    if check and not rep.ok:
        raise PreflightError(rep, suggest(model, rep))
    return rep


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


class CsimBuildError(SwinfpgaError, RuntimeError):
    """The C++ of an hls4ml project does not compile; the message quotes g++'s first error."""


def _build(g: Any, work: Path, log: Path, src_dir: Path | None) -> None:
    """``g._compile()`` with hls4ml's printed compiler output captured; a failure raises
    :class:`CsimBuildError` naming the project, the first g++ error and the full log."""
    import io

    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf):
            g._compile()
    except Exception as e:
        out = buf.getvalue()
        with contextlib.suppress(OSError):
            log.write_text(out)
        errs = [ln.strip() for ln in out.splitlines() if "error" in ln.lower()]
        first = errs[0] if errs else " ".join(str(e).split())
        where = f"the hls4ml project {src_dir}" if src_dir is not None else "the generated hls4ml project"
        if src_dir is not None:
            first = first.replace("firmware/", f"{src_dir}/firmware/", 1)
        raise CsimBuildError(
            f"C simulation: the C++ of {where} does not compile: {first} ({len(errs)} error lines; full g++ log: "
            f"{log}); if you edited that C++, fix it, else regenerate the project with "
            "`swinfpga convert MODEL -o DIR --force` and report the problem"
        ) from None


def compile_model(model: Model, reuse_factor: int = 1, backend: str = "Vitis", part: str = "xcvu13p-flga2577-2-e",
                  clock_ns: float = 5.0, progress: Callable[[str], None] = lambda s: None,
                  plans: list[LayerPlan] | None = None, strategy: str = "latency",
                  io_type: str = "io_parallel") -> CompiledModel:
    """Build (or fetch from the cache) the hls4ml C-sim library of ``model`` and load it."""

    plans = plans if plans is not None else plan_model(model, reuse_factor, strategy, io_type=io_type)
    return compile_plans(plans, reuse_factor, backend, part, clock_ns, progress, strategy=strategy, io_type=io_type)


def compile_plans(plans: list[LayerPlan], reuse_factor: int, backend: str, part: str, clock_ns: float,
                   progress: Callable[[str], None], src_dir: Path | None = None, strategy: str = "latency",
                   layout: str = "layers", io_type: str = "io_parallel") -> CompiledModel:
    """Build the C-sim library of freshly written sources, or of a copy of ``src_dir`` (a written
    project), unless the cache already holds the library of identical sources."""
    from .graph import build_graph

    root = cache_root() / "csim"
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="prj-", dir=root))
    try:
        g = build_graph(plans, work, part, clock_ns, backend, reuse_factor, strategy, layout, io_type)
        if src_dir is None:
            with _no_keras_import():
                g.write()
        else:
            shutil.copytree(src_dir, work, dirs_exist_ok=True)
            m = re.search(r"LIB_STAMP=(\S+)", (work / "build_lib.sh").read_text())
            if m is None:
                raise RuntimeError(f"{src_dir}/build_lib.sh has no LIB_STAMP: not an hls4ml project")
            g.config.config["Stamp"] = m.group(1)
        key = _source_hash(work)
        entry = root / key
        lib = entry / "lib.so"
        t0 = time.perf_counter()
        if lib.exists():
            progress(f"C-sim library cached ({key[:12]})")
            cached = True
        else:
            progress("C-sim: compiling with g++ through hls4ml")
            _build(g, work, root / f"{key}.log", src_dir)  # hls4ml: ./build_lib.sh in the written project
            built = work / "firmware" / f"{g.config.get_project_name()}-{g.config.get_config_value('Stamp')}.so"
            tmp = root / f".{key}.tmp-{os.getpid()}"
            tmp.mkdir(exist_ok=True)
            shutil.copy2(built, tmp / "lib.so")
            try:
                tmp.rename(entry)
            except OSError:  # another process stored it first
                shutil.rmtree(tmp, ignore_errors=True)
            cached = False
        secs = time.perf_counter() - t0
    finally:
        shutil.rmtree(work, ignore_errors=True)
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
    hls = project.hls_dir
    if hls is None or not (hls / SETTINGS).exists():
        raise FileNotFoundError(f"{project.root} has no hls4ml project written by swinfpga; convert with HLS enabled")
    st = json.loads((hls / SETTINGS).read_text())
    strategy, layout = st.get("strategy", "latency"), st.get("layout", "layers")
    io_type = st.get("io_type", "io_parallel")
    plans = plan_model(model, int(st["reuse_factor"]), strategy, layout, io_type)
    cm = compile_plans(plans, int(st["reuse_factor"]), st["backend"], st["part"], float(st["clock_ns"]), progress,
                        src_dir=hls, strategy=strategy, layout=layout, io_type=io_type)
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
