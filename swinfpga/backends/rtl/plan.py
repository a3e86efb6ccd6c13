"""Split an IR model into *segments*: the pipeline units of the RTL.

A segment is a run of nodes computed group by group: a group is one attention window (all windows
share weights, so one traced unit serves every group, one group per clock).  Segment boundaries
fall where the window partition changes (a shifted block after an unshifted one), at patch merging
(which mixes tokens of different windows) and at global pooling.  Everything between two
boundaries (patch embedding, LayerNorm, residual adds, MLP, head) is token-local and is fused into
the same traced unit.

Frames are the flat per-sample code vectors of node outputs, row-major ``(H, W, C)`` (or ``(C,)``).
For group ``g`` the unit reads ``frame_in[in_idx[g]]`` (plus ``mask[g]`` bits for shifted windows)
and writes ``frame_out[out_idx[g]]``.

Windows are ``(wh, ww)`` rectangles (a square, a run of a ``(N, 1)`` sequence, or one global window
over the map).  A padding mask (a ``TokenMask`` node) is computed from the input tokens inside the
unit that holds it; when a later segment reads it (a masked attention or pool after a segment
boundary), the mask bits (one per token, ``MASK_FMT``) travel as a second field of the frames in
between (frames named ``node+mask``), and the group reads its tokens' bits after their data.

Balanced pipeline (:func:`balance_segments`): the model's initiation interval (II) is the most
groups any unit issues per sample.  A segment with fewer groups than the II would sit idle, so it
is split into parts (one unit each): token-local work (patch merging, q/k/v and output
projections, LayerNorm, MLP, residual adds) runs token-serial on a unit traced for as few tokens
as the II allows; the attention core runs row-serial inside the token-serial unit that follows
the q/k/v projections (the group's query rows against all keys/values of its window, which the
previous unit finished; bias and shift-mask rows enter as per-group constants); pooling and the
head run once on the whole token map.  Frames between parts carry every live value of every
token (fields of one format each, see :class:`Field`).

The planner never switches on node types: what a node does to the structure is its role
(:mod:`.roles`, registered by type; unregistered types are token-local).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...fixed import Fmt
from ...ir import Model
from ...ir import nodes as N
from .roles import reads_writes, role, sub_value


@dataclass(frozen=True, eq=False)
class Segment:
    """One pipeline unit.

    ``src``: node whose output frame feeds the segment; ``dst``: node whose frame it produces;
    ``nodes``: the fused nodes in order; ``prefix``: ``patch_embed`` | ``merge`` | ``none`` (how group
    tokens are gathered from the input frame); ``tokens``: group token positions ``(G, n, 2)`` in the
    working resolution; ``in_idx``/``out_idx``: ``(G, n_in)``/``(G, n_out)`` flat frame indices;
    ``mask``: ``(G, n, n)`` bool or None (shifted windows)."""

    name: str
    src: str
    dst: str
    nodes: tuple[N.Node, ...]
    prefix: str
    resolution: tuple[int, int]
    tokens: np.ndarray
    in_shape: tuple[int, ...]
    in_fmt: Fmt
    out_shape: tuple[int, ...]
    out_fmt: Fmt
    in_idx: np.ndarray
    out_idx: np.ndarray
    mask: np.ndarray | None = None
    meta: dict = field(default_factory=dict)
    # balanced pipeline (see :func:`balance_segments`); the defaults describe a whole segment
    kind: str = "group"
    parent: str = ""
    steps: tuple[tuple[str, str], ...] = ()
    in_values: tuple[tuple[str, int], ...] = ()
    out_values: tuple[tuple[str, int], ...] = ()
    in_fields: tuple[Field, ...] = ()
    out_fields: tuple[Field, ...] = ()
    wide: tuple[str, ...] = ()  # input values read for the whole window of the group's tokens
    win_n: int = 0  # tokens per attention window (for ``wide`` values)
    consts: np.ndarray | None = None  # (G, m) per-group constant codes of ``const_fmt`` (bias rows)
    const_fmt: Fmt | None = None

    @property
    def groups(self) -> int:
        return int(self.in_idx.shape[0])

    @property
    def n_in(self) -> int:
        return int(self.in_idx.shape[1])

    @property
    def n_out(self) -> int:
        return int(self.out_idx.shape[1])

    @property
    def n_mask(self) -> int:
        return 0 if self.mask is None else int(self.mask[0].size)

    @property
    def n_const(self) -> int:
        return 0 if self.consts is None else int(self.consts.shape[1])

    @property
    def frame_in(self) -> tuple[Field, ...]:
        """Fields of the input frame (one field: the ``src`` node's output frame)."""
        return self.in_fields or (Field(self.src, int(np.prod(self.in_shape)), self.in_fmt),)

    @property
    def frame_out(self) -> tuple[Field, ...]:
        return self.out_fields or (Field(self.dst, int(np.prod(self.out_shape)), self.out_fmt),)

    @property
    def labels(self) -> tuple[str, ...]:
        """What the unit computes, in order: node names (``node.phase`` for split attention)."""
        if not self.steps:
            return tuple(n.name for n in self.nodes)
        return tuple(n if ph == "full" else f"{n}.{ph}" for n, ph in self.steps)

    @property
    def in_elem_fmts(self) -> tuple[Fmt, ...]:
        """Format of each of the unit's ``n_in`` input elements."""
        fm = frame_fmts(self.frame_in)
        return tuple(fm[int(i)] for i in self.in_idx[0])

    @property
    def out_elem_fmts(self) -> tuple[Fmt, ...]:
        fm = frame_fmts(self.frame_out)
        return tuple(fm[int(i)] for i in self.out_idx[0])


@dataclass(frozen=True)
class Field:
    """A run of ``size`` elements of one format inside a frame (frames concatenate fields)."""

    name: str
    size: int
    fmt: Fmt


def frame_fmts(fields: tuple[Field, ...]) -> list[Fmt]:
    """Format of every element of a frame."""
    return [f.fmt for f in fields for _ in range(f.size)]


def frame_offsets(fields: tuple[Field, ...]) -> list[int]:
    """Bit offset of every element of a frame (element 0 at bit 0), plus the total width last."""
    out = [0]
    for f in fields:
        for _ in range(f.size):
            out.append(out[-1] + f.fmt.width)
    return out


def _partition(node: Any) -> tuple:
    return (node.resolution, node.window, node.shift)


def _window_tokens(res: tuple[int, int], window: int | tuple[int, int], shift: int) -> np.ndarray:
    """(G, n, 2) token positions (row, col) of each (rolled) window, Swin order; ``window`` is an
    int (square) or ``(wh, ww)`` (rectangular; a sequence is an ``(N, 1)`` map)."""
    h, w = res
    pos = np.stack(np.meshgrid(np.arange(h), np.arange(w), indexing="ij"), axis=-1)  # h, w, 2
    if shift:
        pos = np.roll(pos, (-shift, -shift), axis=(0, 1))
    return N.window_partition(pos[None], window)[0]


def _token_mask(nodes: list[N.Node]) -> str | None:
    """Name of the model's padding mask node (:class:`~swinfpga.ir.nodes.TokenMask`), if any."""
    names = [n.name for n in nodes if role(n).side]
    if len(names) > 1:
        raise N.IRError(f"the RTL back end supports one padding mask per model, got {', '.join(names)}")
    return names[0] if names else None


def split_segments(model: Model) -> list[Segment]:
    """Cut ``model`` into segments (see module docstring)."""
    info = model.infer()
    nodes = list(model.nodes[1:])
    # 1. decide cut points: index of the first node of each segment
    starts = [0]
    part = None  # window partition of the current segment
    has_pool = False
    for i, n in enumerate(nodes):
        r = role(n)
        if r.prefix == "merge" and i != starts[-1]:
            starts.append(i)
            part, has_pool = None, False
        elif r.pooled and part is not None and _n_windows(part) > 1:
            starts.append(i)
            part, has_pool = None, True
        elif r.windowed:
            p = _partition(n)
            if part is not None and p != part:
                # the new segment starts right after the block input (the residual source)
                block_in = _block_input(nodes, i)
                cut = next(j for j, m in enumerate(nodes) if m.name == block_in) + 1
                if cut <= starts[-1]:
                    raise N.IRError(f"cannot place a segment boundary before {n.name}")
                starts.append(cut)
            part = p
        elif r.pooled:
            has_pool = True
    del has_pool
    bounds = list(zip(starts, starts[1:] + [len(nodes)], strict=True))
    # the padding mask is computed where its TokenMask node sits and travels, as an extra frame
    # field of one bit per token, to every later segment that reads it
    tmask = _token_mask(nodes)
    readers = [si for si, (a, b) in enumerate(bounds) if tmask and any(tmask in n.inputs for n in nodes[a:b])]
    home = next((si for si, (a, b) in enumerate(bounds) if any(n.name == tmask for n in nodes[a:b])), -1)
    segs: list[Segment] = []
    prev = model.input.name
    for si, (a, b) in enumerate(bounds):
        seg_nodes = tuple(nodes[a:b])
        carry_in = tmask if tmask and home < si <= max(readers, default=-1) else None
        carry_out = tmask if tmask and home <= si < max(readers, default=-1) else None
        segs.append(_make_segment(f"seg{si}", prev, seg_nodes, info, carry_in, carry_out))
        prev = segs[-1].dst
    if seg_nodes[-1].name != model.output:
        raise N.IRError(f"the RTL back end expects the output node {model.output!r} to be last")
    return segs


def _n_windows(part: tuple) -> int:
    (h, w), win, _ = part
    wh, ww = (win, win) if isinstance(win, int | np.integer) else win
    return (h // wh) * (w // ww)


def _block_input(nodes: list[N.Node], i: int) -> str:
    """The residual source of the attention at ``nodes[i]``: its ``src`` through a pre-norm."""
    src = nodes[i].src  # type: ignore[attr-defined]
    for m in nodes[:i]:
        if m.name == src and role(m).norm:
            return m.src
    return src


def _make_segment(name: str, src: str, seg_nodes: tuple[N.Node, ...], info: dict, carry_in: str | None = None,
                  carry_out: str | None = None) -> Segment:
    """One segment of ``seg_nodes`` fed by frame ``src``.  ``carry_in``/``carry_out``: the padding
    mask node whose bits (one per token, ``MASK_FMT``) arrive with / leave with the frame as a
    second field; such a segment is traced step by step (``steps``, ``in_values``/``out_values``)
    and its frames are named ``node+mask`` (no IR node: checked where the chain ends)."""
    body = [n for n in seg_nodes if not role(n).side]
    if not body:
        raise N.IRError(f"{seg_nodes[0].name}: a padding mask alone cannot form an RTL segment")
    first = body[0]
    src_node = src.split("+")[0] if carry_in else src
    in_info = info[src_node]
    out_info = info[seg_nodes[-1].name]
    prefix = role(first).prefix
    names = {n.name for n in seg_nodes} | {src_node} | ({carry_in} if carry_in else set())
    for n in seg_nodes:
        for i in n.inputs:
            if i not in names:
                raise N.IRError(f"{n.name} reads {i!r} from before its RTL segment (only {src_node!r} crosses)")
        if role(n).starts and n is not first:
            raise N.IRError(f"{n.name}: patch embedding/merging must start an RTL segment")
        if role(n).side and n.src != src_node:  # type: ignore[attr-defined]
            raise N.IRError(f"{n.name}: the RTL back end computes a padding mask from its segment's input "
                            f"{src_node!r} only, not {n.src!r}")  # type: ignore[attr-defined]
    # working resolution (token map seen by the fused nodes)
    if prefix == "patch_embed":
        res = tuple(info[first.name].shape[:2])
    elif prefix == "merge":
        res = tuple(info[first.name].shape[:2])
    elif len(in_info.shape) == 3:
        res = tuple(in_info.shape[:2])
    else:
        res = (1, 1)
    atts = [n for n in seg_nodes if role(n).windowed]
    pooled = any(role(n).pooled for n in seg_nodes)
    if atts:
        a0: Any = atts[0]
        tokens = _window_tokens(a0.resolution, a0.window, a0.shift)
        vm = a0.valid_mask()
        mask = vm if a0.shift and not vm.all() else None
    else:
        h, w = res
        tokens = np.stack(np.meshgrid(np.arange(h), np.arange(w), indexing="ij"), -1).reshape(1, h * w, 2)
        mask = None
    if pooled and tokens.shape[0] != 1:
        raise N.IRError(f"{name}: pooling needs the whole token map in one group")
    # input indices per group
    if len(in_info.shape) == 3:
        _, wi, ci = in_info.shape
    else:
        wi, ci = 1, in_info.shape[0]

    def flat(r: int, c: int, ch: int) -> int:
        return (r * wi + c) * ci + ch

    in_idx = []
    for g in range(tokens.shape[0]):
        idx: list[int] = []
        for r, c in tokens[g]:
            if prefix == "patch_embed":
                p = first.patch  # type: ignore[attr-defined]
                idx += [flat(r * p + dy, c * p + dx, ch) for dy in range(p) for dx in range(p) for ch in range(ci)]
            elif prefix == "merge":
                for rr, cc in ((2 * r, 2 * c), (2 * r + 1, 2 * c), (2 * r, 2 * c + 1), (2 * r + 1, 2 * c + 1)):
                    idx += [flat(rr, cc, ch) for ch in range(ci)]
            else:
                idx += [flat(r, c, ch) for ch in range(ci)]
        in_idx.append(idx)
    out_idx = []
    if len(out_info.shape) == 3:
        ho, wo, co = out_info.shape
        for g in range(tokens.shape[0]):
            out_idx.append([(r * wo + c) * co + ch for r, c in tokens[g] for ch in range(co)])
    else:
        out_idx.append(list(range(out_info.shape[0])))
    in_shape, in_fmt = tuple(in_info.shape), in_info.fmt
    out_shape, out_fmt = tuple(out_info.shape), out_info.fmt
    extra: dict = {}
    if carry_in or carry_out:
        extra = _mask_frames(name, src, src_node, seg_nodes, tokens, res, info, carry_in, carry_out, in_idx, out_idx)
        in_shape, in_fmt = extra.pop("in_shape"), extra.pop("in_fmt")
        out_shape, out_fmt = extra.pop("out_shape"), extra.pop("out_fmt")
    return Segment(
        name=name, src=src, dst=extra.pop("dst", seg_nodes[-1].name), nodes=seg_nodes, prefix=prefix,
        resolution=res, tokens=tokens, in_shape=in_shape, in_fmt=in_fmt, out_shape=out_shape,
        out_fmt=out_fmt, in_idx=np.asarray(in_idx, dtype=np.int64), out_idx=np.asarray(out_idx, dtype=np.int64),
        mask=mask, **extra,
    )


def _mask_frames(name: str, src: str, src_node: str, seg_nodes: tuple[N.Node, ...], tokens: np.ndarray,
                 res: tuple, info: dict, carry_in: str | None, carry_out: str | None, in_idx: list[list[int]],
                 out_idx: list[list[int]]) -> dict:
    """Frame fields, index lists (extended in place: data elements, then the group tokens' mask
    bits) and step description of a segment that receives / passes on the padding mask."""
    tm = carry_in or carry_out
    assert tm is not None
    mshape = tuple(info[tm].shape)  # (H, W, 1) of the input map
    if mshape[:2] != tuple(res):
        raise N.IRError(f"{name}: the padding mask {tm!r} covers a {mshape[0]}x{mshape[1]} map but the segment "
                        f"works on {res[0]}x{res[1]} tokens (a mask needs one token per input position)")
    n_mask = mshape[0] * mshape[1]
    mfield = Field(tm, n_mask, N.MASK_FMT)
    n_tok = int(tokens.shape[1])
    d_in = int(np.prod(info[src_node].shape))
    d_out = int(np.prod(info[seg_nodes[-1].name].shape))
    out: dict = {"in_shape": tuple(info[src_node].shape), "in_fmt": info[src_node].fmt,
                 "out_shape": tuple(info[seg_nodes[-1].name].shape), "out_fmt": info[seg_nodes[-1].name].fmt}
    raw = len(in_idx[0]) // n_tok
    in_values: tuple[tuple[str, int], ...] = ((src_node, raw),)
    in_fields: tuple[Field, ...] = ()
    if carry_in:
        in_fields = (Field(src_node, d_in, info[src_node].fmt), mfield)
        for g, idx in enumerate(in_idx):
            idx += [d_in + int(r) * mshape[1] + int(c) for r, c in tokens[g]]
        in_values += ((tm, 1),)
        out["in_shape"], out["in_fmt"] = (d_in + n_mask,), in_fields[0].fmt
    last = seg_nodes[-1].name
    oshape = info[last].shape
    out_values: tuple[tuple[str, int], ...] = ((last, int(oshape[-1]) if len(oshape) == 3 else int(oshape[0])),)
    out_fields: tuple[Field, ...] = ()
    if carry_out:
        if len(oshape) != 3:
            raise N.IRError(f"{name}: the padding mask cannot travel past {last!r} (no token map)")
        out_fields = (Field(last, d_out, info[last].fmt), mfield)
        for g, idx in enumerate(out_idx):
            idx += [d_out + int(r) * mshape[1] + int(c) for r, c in tokens[g]]
        out_values += ((tm, 1),)
        out["out_shape"], out["out_fmt"] = (d_out + n_mask,), out_fields[0].fmt
        out["dst"] = f"{last}+{tm}"
    out.update(steps=tuple((n.name, "full") for n in seg_nodes), in_values=in_values, out_values=out_values,
               in_fields=in_fields, out_fields=out_fields, win_n=n_tok)
    return out


def gather_groups(seg: Segment, frames: np.ndarray) -> np.ndarray:
    """(B, G, n_in + n_mask + n_const) unit input codes from (B, *in_shape) frames."""
    b = frames.shape[0]
    f = frames.reshape(b, -1)
    x = f[:, seg.in_idx]
    if seg.mask is not None:
        m = np.broadcast_to(seg.mask.reshape(1, seg.groups, -1).astype(np.int64), (b, seg.groups, seg.n_mask))
        x = np.concatenate([x, m], axis=-1)
    if seg.consts is not None:
        c = np.broadcast_to(seg.consts.reshape(1, seg.groups, -1).astype(np.int64), (b, seg.groups, seg.n_const))
        x = np.concatenate([x, c], axis=-1)
    return x


def scatter_groups(seg: Segment, y: np.ndarray) -> np.ndarray:
    """(B, *out_shape) frames from (B, G, n_out) unit outputs."""
    b = y.shape[0]
    out = np.zeros((b, int(np.prod(seg.out_shape))), dtype=np.int64)
    out[:, seg.out_idx.reshape(-1)] = y.reshape(b, -1)
    return out.reshape(b, *seg.out_shape)


# ---------------------------------------------------------------------------------------------
# Balanced pipeline: split a segment with fewer groups than the model's II into parts.


class PlanError(N.IRError):
    """The requested initiation interval cannot be built."""


def natural_ii(segs: list[Segment]) -> int:
    """The II of the unbalanced pipeline: the most groups (windows) any segment issues."""
    return max(s.groups for s in segs)


def _steps(seg: Segment) -> list[tuple[N.Node, str, str]]:
    """(node, phase, kind) per step (the nodes' role phases, e.g. attention: token-local q/k/v
    projections, the core of the group's query rows against the whole window's keys and values,
    the token-local projection); a pooled node and everything after it run once (``global``)."""
    out: list[tuple[N.Node, str, str]] = []
    pooled = False
    for n in seg.nodes:
        r = role(n)
        pooled = pooled or r.pooled
        out += [(n, ph, "global" if pooled else kind) for ph, kind in r.phases]
    return out


def _rw(n: N.Node, ph: str) -> tuple[list[str], list[str]]:
    """Values read and written by one step (e.g. ``att.q``/``.k``/``.v``/``.o`` inside attention)."""
    return reads_writes(n, ph)


def value_fmt(name: str, node_of: dict[str, N.Node], fmts: dict[str, Fmt]) -> Fmt:
    """Format of a value: a node output, or a step value of a node (``att.q``/``.k``/``.v``/``.o``)."""
    if name in fmts:
        return fmts[name]
    base, ph = name.rsplit(".", 1)
    return sub_value(node_of[base], ph)[0]


def _value_channels(name: str, node_of: dict[str, N.Node], info: dict) -> int:
    if name in info:
        return int(info[name].shape[-1])
    base, ph = name.rsplit(".", 1)
    return sub_value(node_of[base], ph)[1]


def _chunk(total: int, ii: int, n: int) -> int:
    """Fewest tokens per clock (a divisor of the window size ``n``, so a group stays inside one
    window) that get ``total`` tokens through in ``ii`` clocks."""
    return next(d for d in range(1, n + 1) if n % d == 0 and total // d <= ii)


def split_balanced(seg: Segment, ii: int, info: dict, node_of: dict[str, N.Node]) -> list[Segment]:
    """Split ``seg`` into parts that each keep busy for up to ``ii`` clocks per sample.

    Parts (each one traced unit in a streaming wrapper): ``token`` runs process a chunk of tokens
    per clock (as few as the II allows, a divisor of the window size: 1 token when ``ii`` >= the
    segment's tokens); a run starting with an attention core takes the chunk's query rows and the
    whole window's keys/values; ``global`` parts (pool, head) take the whole token map once.
    Between parts, frames hold every live value of every token (window token order: token
    ``t = g * n + j`` is token ``j`` of window ``g``).  Returns ``[seg]`` when nothing changes."""
    steps = _steps(seg)
    g_n, n = seg.groups, int(seg.tokens.shape[1])
    total = g_n * n
    runs: list[list[tuple[N.Node, str, str]]] = []
    for st in steps:
        if runs and runs[-1][-1][2] == st[2] and st[1] != "core":  # a core needs k, v of finished tokens
            runs[-1].append(st)
        else:
            runs.append([st])
    if len(runs) == 1 and runs[0][0][2] != "token":
        return [seg]
    chunk = _chunk(total, ii, n)
    if len(runs) == 1 and chunk == n and g_n == total // chunk:
        return [seg]
    if seg.in_fields or seg.out_fields or any(role(m).side or getattr(m, "mask", None) for m in seg.nodes):
        raise PlanError(f"{seg.name}: a padding-masked segment cannot be time-multiplexed yet (it issues "
                        f"{g_n} groups, the II is {ii}); use the same window in every stage, or convert with --no-rtl")
    raw = seg.n_in // n  # raw source elements per token (patch pixels, merged channels)
    reads = [[v for st in r for v in _rw(st[0], st[1])[0]] for r in runs]
    order = [seg.src] + [v for r in runs for st in r for v in _rw(st[0], st[1])[1]]
    defined: set[str] = {seg.src}
    frames: list[tuple[str, ...]] = []  # live values after each run but the last
    for ri, r in enumerate(runs[:-1]):
        for st in r:
            defined.update(_rw(st[0], st[1])[1])
        later = {v for rr in reads[ri + 1:] for v in rr}
        frames.append(tuple(v for v in order if v in defined and v in later))
    flat_tok = seg.tokens.reshape(total, 2)
    fmts = {k: i.fmt for k, i in info.items()}
    parts: list[Segment] = []
    for ri, r in enumerate(runs):
        kind = r[0][2]
        if kind == "token":
            items = [list(range(i * chunk, (i + 1) * chunk)) for i in range(total // chunk)]
        else:
            items = [list(range(total))]
        core: Any = r[0][0] if r[0][1] == "core" else None
        wide = (f"{core.name}.k", f"{core.name}.v") if core is not None else ()
        first, last = ri == 0, ri == len(runs) - 1
        ins = (seg.src,) if first else frames[ri - 1]
        outs = (seg.dst,) if last else frames[ri]
        in_ch = {v: (raw if (first and v == seg.src) else _value_channels(v, node_of, info)) for v in ins}
        out_ch = {v: _value_channels(v, node_of, info) for v in outs}
        fm = {v: value_fmt(v, node_of, fmts) for v in set(ins) | set(outs)}
        if first:
            in_fields, in_shape, in_fmt = (), seg.in_shape, seg.in_fmt
            in_idx = [[int(seg.in_idx[t // n, (t % n) * raw + c]) for t in it for c in range(raw)] for it in items]
        else:
            in_fields = tuple(Field(v, total * in_ch[v], fm[v]) for v in ins)
            in_shape, in_fmt = (sum(f.size for f in in_fields),), in_fields[0].fmt
            in_idx = [_frame_idx(in_fields, in_ch, it, wide, n) for it in items]
        if last:
            out_fields, out_shape, out_fmt = (), seg.out_shape, seg.out_fmt
            if kind == "global" and len(seg.out_shape) != 3:
                out_idx = [list(range(int(np.prod(seg.out_shape))))]
            else:
                co = seg.n_out // n
                out_idx = [[int(seg.out_idx[t // n, (t % n) * co + c]) for t in it for c in range(co)]
                           for it in items]
        else:
            out_fields = tuple(Field(v, total * out_ch[v], fm[v]) for v in outs)
            out_shape, out_fmt = (sum(f.size for f in out_fields),), out_fields[0].fmt
            out_idx = [_frame_idx(out_fields, out_ch, it) for it in items]
        mask, consts, const_fmt = None, None, None
        if core is not None:
            rows = [[t % n for t in it] for it in items]
            if seg.mask is not None and core.shift:
                mask = np.stack([seg.mask[it[0] // n][rw].reshape(-1) for it, rw in zip(items, rows, strict=True)])
            if chunk < n:  # the bias rows differ per group: constant inputs the wrapper supplies
                bm = core.bias_matrix()
                consts = np.stack([bm[:, rw, :].reshape(-1) for rw in rows]).astype(np.int64)
                const_fmt = core.bias_fmt
        tok_pos = np.stack([flat_tok[it] for it in items])
        parts.append(Segment(
            name=f"{seg.name}{chr(ord('a') + ri)}", src=seg.src if first else f"{seg.name}.f{ri - 1}",
            dst=seg.dst if last else f"{seg.name}.f{ri}", nodes=tuple(dict.fromkeys(st[0] for st in r)),
            prefix=seg.prefix if first else "none", resolution=seg.resolution, tokens=tok_pos,
            in_shape=tuple(in_shape), in_fmt=in_fmt, out_shape=tuple(out_shape), out_fmt=out_fmt,
            in_idx=np.asarray(in_idx, dtype=np.int64), out_idx=np.asarray(out_idx, dtype=np.int64), mask=mask,
            kind=kind, parent=seg.name, steps=tuple((st[0].name, st[1]) for st in r),
            in_values=tuple((v, in_ch[v]) for v in ins), out_values=tuple((v, out_ch[v]) for v in outs),
            in_fields=in_fields, out_fields=out_fields, wide=wide, win_n=n, consts=consts, const_fmt=const_fmt))
    return parts


def _frame_idx(fields: tuple[Field, ...], ch: dict[str, int], toks: list[int], wide: tuple[str, ...] = (),
               n: int = 1) -> list[int]:
    """Frame element indices of ``toks`` for every field (value-major, then token, then channel);
    ``wide`` fields give every token of the window of ``toks`` (window size ``n``)."""
    out: list[int] = []
    base = 0
    for f in fields:
        c = ch[f.name]
        tt = list(range(toks[0] // n * n, toks[0] // n * n + n)) if f.name in wide else toks
        out += [base + t * c + j for t in tt for j in range(c)]
        base += f.size
    return out


def balance_segments(model: Model, ii: int | None = None) -> tuple[list[Segment], int]:
    """Segments of ``model`` for a pipeline with initiation interval ``ii`` (clocks per sample;
    None = the natural II).  Every segment with fewer groups than ``ii`` is split by
    :func:`split_balanced` so that its token-local work is time-multiplexed instead of replicated.
    Returns (parts, ii)."""
    segs = split_segments(model)
    nat = natural_ii(segs)
    if ii is None:
        ii = nat
    if ii < nat:
        raise PlanError(f"--ii {ii} is below the natural initiation interval {nat} of {model.name} "
                        f"(its widest segment issues {nat} windows, one per clock); use --ii >= {nat}")
    info = model.infer()
    node_of = {n.name: n for n in model.nodes}
    out: list[Segment] = []
    for s in segs:
        if s.groups < ii:
            out += split_balanced(s, ii, info, node_of)
        else:
            out.append(s)
    return out, ii
