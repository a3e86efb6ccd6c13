"""``swinfpga sweep``: a design-space sweep over HGQ ``beta``, weight-bit granularity, bit budget, pruning
fraction and RTL II on Dask.

Each trained configuration (beta, granularity, bit budget, pruned fraction) trains the model once
(:func:`swinfpga.train.train_spec`, HGQ when ``beta > 0``, gradual magnitude pruning when ``prune > 0``;
``OUT/points/<train key>/model``) and
checks Keras == golden; each point (a trained configuration at one initiation interval ``ii``;
None = the model's natural II) then traces the RTL with da4ml (optional) and records golden
accuracy, da4ml's cost figure (LUT-equivalents) and the predicted latency / II.  The II axis needs
no retraining: the points of one trained configuration share its model.  Trainings and traces run
as Dask tasks (a trace depends on its training): a ``distributed.LocalCluster`` by default, or an
existing cluster given by its scheduler address.  Finished points are kept
(``OUT/points/<key>/point.json``) and skipped when the sweep is re-run; a finished training
(``OUT/points/<train key>/model/metrics.json``, e.g. a ``swinfpga train`` output copied there) is
reused instead of retrained.  Writes ``OUT/sweep.json``, ``OUT/sweep.md`` and ``OUT/pareto.png``
(accuracy vs cost; latency as colour, II as marker).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import SwinfpgaError
from .ir import atomic_write_text

POINT_JSON = "point.json"


class SweepError(SwinfpgaError, ValueError):
    """The sweep is misconfigured (unknown model, no points, bad beta / granularity / prune fraction)."""


@dataclass(frozen=True)
class SweepPoint:
    """One design point: HGQ penalty ``beta`` per EBOP (0: 8-bit per-tensor), weight-bit granularity, bit
    budget, fraction ``prune`` of every linear map's weights pruned to 0 (0: none) and RTL II."""

    beta: float
    granularity: str = "channel"
    bits: int = 8  # calibrated weight / activation width (the budget)
    ii: int | None = None  # RTL initiation interval in clocks (None: the model's natural II)
    prune: float = 0.0  # fraction of every linear map's weights pruned to 0 (gradual magnitude pruning)

    @property
    def train_key(self) -> str:
        """Key of the trained configuration (points differing only in ``ii`` share it); ``-pF`` only when
        ``prune > 0``, so the keys of unpruned points (and old sweep directories) are unchanged."""
        k = f"beta{self.beta:g}-{self.granularity}" if self.beta > 0 else f"beta0-{self.bits}bit"
        k = k if self.beta == 0 or self.bits == 8 else f"{k}-{self.bits}bit"
        return f"{k}-p{self.prune:g}" if self.prune > 0 else k

    @property
    def key(self) -> str:
        return self.train_key if self.ii is None else f"{self.train_key}-ii{self.ii}"


@dataclass(frozen=True)
class SweepConfig:
    """What every point shares: the model (a trainable reference name, or ``spec`` for any digits
    classifier), epochs (None: the model's defaults), a trained directory to start from, the board,
    and whether to trace the RTL (da4ml cost; minutes per point for swin-digits)."""

    model: str
    points: tuple[SweepPoint, ...]
    epochs: int | None = None
    qat_epochs: int | None = None
    finetune_epochs: int | None = None
    hgq_qk: bool = False  # HGQ trains attention's q/k output bits too
    act_granularity: str = "tensor"  # HGQ activation bits per tensor | per channel
    init: str | None = None
    prune_layers: tuple[tuple[str, float], ...] = ()  # per-map pruning overrides (train --prune-layer)
    teacher: str | None = None  # distill every point from this trained directory's float model
    rtl: bool = True
    board: str = "vu13p"
    seed: int = 0
    spec: Any = None  # swinfpga.models.SwinSpec overriding ``model`` (tests: tiny models)


def _check(cfg: SweepConfig) -> None:
    from .models import SPECS
    from .train import TRAINABLE

    if cfg.spec is None and cfg.model not in TRAINABLE:
        raise SweepError(f"cannot sweep {cfg.model!r}: trainable reference models are {', '.join(TRAINABLE)}")
    if cfg.spec is None and cfg.model not in SPECS:
        raise SweepError(f"unknown model {cfg.model!r}")
    if not cfg.points:
        raise SweepError("the sweep has no points: give at least one --beta")
    for p in cfg.points:
        if p.beta < 0:
            raise SweepError(f"--beta must be >= 0, got {p.beta}")
        if p.granularity not in ("channel", "weight"):
            raise SweepError(f"--granularity {p.granularity!r} unknown; use channel or weight")
        if not 2 <= p.bits <= 16 or (cfg.init is not None and p.bits != 8):
            raise SweepError(f"--bits {p.bits}: must be in 2..16, and 8 with --init (it skips calibration)")
        if cfg.act_granularity not in ("tensor", "channel"):
            raise SweepError(f"--act-granularity {cfg.act_granularity!r} unknown; use tensor or channel")
        if p.ii is not None and p.ii < 1:
            raise SweepError(f"--ii {p.ii}: the initiation interval must be >= 1 clock")
        if p.ii is not None and not cfg.rtl:
            raise SweepError("--ii sets the RTL initiation interval, but --no-rtl skips the RTL: drop one of them")
        if not 0.0 <= p.prune < 1.0:
            raise SweepError(f"--prune must be in [0, 1) (the fraction of weights pruned), got {p.prune:g}")
    keys = [p.key for p in cfg.points]
    if len(set(keys)) != len(keys):
        raise SweepError(f"duplicate sweep points: {', '.join(sorted(k for k in keys if keys.count(k) > 1))}")


def _act(cfg: SweepConfig, point: SweepPoint) -> str:
    """The point's activation-bit granularity (8-bit points have no trained bits: per tensor)."""
    return cfg.act_granularity if point.beta > 0 else "tensor"


def train_point(cfg: SweepConfig, point: SweepPoint, out_dir: str) -> dict[str, Any]:
    """Train the configuration of ``point`` into ``OUT/points/<train key>/model`` (runs inside a Dask
    worker), or reuse a finished training there; returns its ``metrics.json`` (``reused`` added)."""
    from .models import get_spec
    from .train import _config, train_spec

    mdir = Path(out_dir) / "points" / point.train_key / "model"
    if (mdir / "metrics.json").exists() and (mdir / "model.json").exists():
        old = json.loads((mdir / "metrics.json").read_text())
        oc = old.get("config", {})
        same = (oc.get("act_granularity", "tensor") == _act(cfg, point) and oc.get("prune", 0.0) == point.prune
                and [list(o) for o in oc.get("prune_layers") or ()] == [list(o) for o in cfg.prune_layers]
                and oc.get("teacher") == cfg.teacher)
        if same:
            return {**old, "reused": True}
    spec = cfg.spec if cfg.spec is not None else get_spec(cfg.model)
    tcfg = dataclasses.replace(_config(spec.name, cfg.epochs, point.beta, point.granularity, cfg.qat_epochs,
                                       cfg.finetune_epochs, cfg.hgq_qk, _act(cfg, point), prune=point.prune,
                                       teacher=cfg.teacher, prune_layers=cfg.prune_layers),
                               bits=point.bits)
    logs: list[str] = []
    res = train_spec(spec, mdir, tcfg, cfg.seed, force=True, progress=logs.append, init=cfg.init)
    return {**res.metrics, "reused": False}


def _zero_weights(m: dict[str, Any]) -> int | None:
    """Linear-map weights at 0 in a training's ``metrics``: HGQ's count of zero weight codes (pruned ones
    included), else the pruner's count of pruned weights (None: neither HGQ nor pruning)."""
    for part in ("hgq", "prune"):
        if (m.get(part) or {}).get("zero_weights") is not None:
            return m[part]["zero_weights"]
    return None


def run_point(cfg: SweepConfig, point: SweepPoint, out_dir: str, metrics: dict[str, Any] | None = None
              ) -> dict[str, Any]:
    """Check and count one point (runs inside a Dask worker) from its training's ``metrics`` (None:
    :func:`train_point` first); writes and returns its record."""
    t0 = time.perf_counter()
    m = metrics if metrics is not None else train_point(cfg, point, out_dir)
    pdir = Path(out_dir) / "points" / point.key
    mdir = Path(out_dir) / "points" / point.train_key / "model"
    logs: list[str] = []
    rec: dict[str, Any] = {
        "key": point.key, **dataclasses.asdict(point), "train_key": point.train_key,
        "accuracy_golden": m["accuracy"]["golden"], "accuracy_quantized": m["accuracy"]["quantized"],
        "keras_golden_mismatches": m["keras_golden_mismatches"],
        "ebops": (m.get("hgq") or {}).get("ebops"), "zero_weights": _zero_weights(m),
        "train_seconds": m["train_seconds"], "training_reused": bool(m.get("reused")),
    }
    if cfg.rtl:
        from .backends.rtl import write_rtl_project
        from .boards import load_board
        from .ir import Model

        t1 = time.perf_counter()
        ir = Model.load(mdir / "model.json")
        write_rtl_project(ir, load_board(cfg.board), pdir / "rtl", progress=logs.append, ii=point.ii)
        rtl = json.loads((pdir / "rtl" / "rtl.json").read_text())
        rec.update(
            da4ml_cost={s["name"]: s["da4ml_cost"] for s in rtl["segments"]},
            da4ml_cost_total=float(sum(s["da4ml_cost"] for s in rtl["segments"])),
            latency_cycles=rtl["predicted"]["latency_cycles"], ii_cycles=rtl["predicted"]["ii_cycles"],
            clock_mhz=rtl["clock_mhz"], rtl_seconds=round(time.perf_counter() - t1, 1),
        )
    rec["seconds"] = round(time.perf_counter() - t0, 1)
    atomic_write_text(pdir / POINT_JSON, json.dumps(rec, indent=1))
    return rec


def load_points(out_dir: Path) -> dict[str, dict[str, Any]]:
    """Finished points in ``out_dir`` by key."""
    recs = {}
    for f in sorted((Path(out_dir) / "points").glob(f"*/{POINT_JSON}")):
        r = json.loads(f.read_text())
        recs[r["key"]] = r
    return recs


def _objectives(r: dict[str, Any]) -> tuple[float, ...]:
    """What a point minimises: -accuracy, da4ml cost, latency and II in cycles (missing cycles: 0)."""
    return (-r["accuracy_golden"], r["da4ml_cost_total"], r.get("latency_cycles") or 0, r.get("ii_cycles") or 0)


def pareto(rows: list[dict[str, Any]]) -> list[str]:
    """Keys of the points no other point beats on accuracy (higher), cost, latency and II (lower):
    another point at least as good on all four and better on one dominates."""
    pts = [(r, _objectives(r)) for r in rows if r.get("da4ml_cost_total") is not None]
    front = []
    for r, o in pts:
        dominated = any(q is not r and all(x <= y for x, y in zip(p, o, strict=True)) and p != o for q, p in pts)
        if not dominated:
            front.append(r["key"])
    return front


def sweep(cfg: SweepConfig, out_dir: Path | str, scheduler: str | None = None, workers: int = 1,
          progress: Callable[[str], None] = print) -> dict[str, Any]:
    """Run every unfinished point of ``cfg`` on Dask and write the summary files (module docstring)."""
    _check(cfg)
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    done = load_points(out)
    todo = [p for p in cfg.points if p.key not in done]
    progress(f"sweep: {len(cfg.points)} points, {len(cfg.points) - len(todo)} already done, {len(todo)} to run")
    if todo:
        from distributed import Client, LocalCluster, as_completed

        cluster = None if scheduler else LocalCluster(n_workers=max(1, workers), threads_per_worker=1,
                                                      processes=True, dashboard_address=None)
        try:
            with Client(scheduler or cluster) as client:
                trains: dict[str, Any] = {}  # one training per train key, shared by its II points
                for p in todo:
                    if p.train_key not in trains:
                        trains[p.train_key] = client.submit(
                            train_point, cfg, p, str(out), key=f"swinfpga-train-{p.train_key}-{time.time_ns()}",
                            pure=False)
                futs = [client.submit(run_point, cfg, p, str(out), trains[p.train_key],
                                      key=f"swinfpga-sweep-{p.key}-{time.time_ns()}", pure=False) for p in todo]
                for fut in as_completed(futs):
                    r = fut.result()
                    done[r["key"]] = r
                    progress(f"sweep: {r['key']}: golden {r['accuracy_golden']:.4f}"
                             + (f", da4ml cost {r['da4ml_cost_total']:.0f}" if "da4ml_cost_total" in r else "")
                             + f" ({r['seconds']} s)")
        finally:
            if cluster is not None:
                cluster.close()
    rows = [done[p.key] for p in cfg.points]
    front = pareto(rows)
    summary = {"model": cfg.spec.name if cfg.spec is not None else cfg.model, "board": cfg.board,
               # JSON form (prune_layers tuples as lists): the returned summary equals sweep.json
               "config": json.loads(json.dumps({k: v for k, v in dataclasses.asdict(cfg).items()
                                                if k not in ("spec", "points")})),
               "points": rows, "pareto": front}
    atomic_write_text(out / "sweep.json", json.dumps(summary, indent=1))
    atomic_write_text(out / "sweep.md", markdown(summary))
    if any(r.get("da4ml_cost_total") is not None for r in rows):
        plot(rows, front, out / "pareto.png", summary["model"])
    return summary


def markdown(summary: dict[str, Any]) -> str:
    md = [f"# Sweep: {summary['model']} ({summary['board']})", "",
          "| point | beta | granularity | bits | prune | golden acc | Keras vs golden | EBOPs | zero weights | "
          "da4ml cost | latency (cycles) | II | Pareto |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in summary["points"]:
        cost = r.get("da4ml_cost_total")
        md.append(f"| {r['key']} | {r['beta']:g} | {r['granularity']} | {r.get('bits', 8)} | {r.get('prune', 0.0):g} | "
                  f"{100 * r['accuracy_golden']:.2f}% | "
                  f"{r['keras_golden_mismatches']} | {r['ebops'] if r['ebops'] is not None else '-'} | "
                  f"{r['zero_weights'] if r['zero_weights'] is not None else '-'} | "
                  f"{f'{cost:,.0f}' if cost is not None else '-'} | {r.get('latency_cycles', '-')} | "
                  f"{r.get('ii_cycles', '-')} | {'yes' if r['key'] in summary['pareto'] else ''} |")
    md += ["", "da4ml cost: LUT-equivalents of the traced RTL units (da4ml's figure, not Yosys); latency and II: "
           "predicted by the RTL schedule (clock cycles). Accuracy: golden model on the 360 digits test images. "
           "Pareto: no other point is at least as good in accuracy, cost, latency and II and better in one. "
           "Points `...-iiN` reuse the training of the point without the suffix at RTL II N. "
           "prune: fraction of every linear map's weights pruned to 0 in training (points `...-pF`)."]
    return "\n".join(md) + "\n"


def plot(rows: list[dict[str, Any]], front: list[str], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = [r for r in rows if r.get("da4ml_cost_total") is not None]
    fig, ax = plt.subplots(figsize=(7.2, 4.8))
    lat = [r.get("latency_cycles") or 0 for r in pts]
    norm = matplotlib.colors.Normalize(min(lat), max(max(lat), min(lat) + 1))
    markers = "osD^vP*X"
    iis = sorted({r.get("ii_cycles") or 0 for r in pts})
    sc = None
    for j, ii in enumerate(iis):
        sel = [r for r in pts if (r.get("ii_cycles") or 0) == ii]
        sc = ax.scatter([r["da4ml_cost_total"] for r in sel], [100 * r["accuracy_golden"] for r in sel],
                        c=[r.get("latency_cycles") or 0 for r in sel], cmap="viridis", norm=norm, s=46,
                        marker=markers[j % len(markers)], zorder=3, label=f"II {ii}" if ii else "II ?")
    if sc is not None:
        fig.colorbar(sc, ax=ax, label="latency (cycles)")
    fr = [r for r in pts if r["key"] in front]
    ax.scatter([r["da4ml_cost_total"] for r in fr], [100 * r["accuracy_golden"] for r in fr], s=150,
               facecolors="none", edgecolors="r", zorder=4, label="Pareto (acc, cost, latency, II)")
    # the accuracy-vs-cost staircase of the Pareto points
    fr2, best = [], -1.0
    for r in sorted(fr, key=lambda r: (r["da4ml_cost_total"], -r["accuracy_golden"])):
        if r["accuracy_golden"] > best:
            fr2.append(r)
            best = r["accuracy_golden"]
    ax.plot([r["da4ml_cost_total"] for r in fr2], [100 * r["accuracy_golden"] for r in fr2], "r--", lw=1,
            label="accuracy vs cost front")
    for r in pts:
        ax.annotate(r["key"], (r["da4ml_cost_total"], 100 * r["accuracy_golden"]), fontsize=6,
                    xytext=(3, 3), textcoords="offset points")
    ax.margins(x=0.15, y=0.08)
    ax.set_xlabel("da4ml cost (LUT-equivalents)")
    ax.set_ylabel("golden accuracy (%)")
    ax.set_title(f"{title}: accuracy vs area vs latency")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


__all__ = ["SweepConfig", "SweepPoint", "SweepError", "sweep", "train_point", "run_point", "load_points", "pareto"]
