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
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...fixed import Fmt
from ...ir import Model
from ...ir import nodes as N


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


def _partition(node: N.WindowAttention) -> tuple:
    return (node.resolution, node.window, node.shift)


def _window_tokens(res: tuple[int, int], window: int, shift: int) -> np.ndarray:
    """(G, n, 2) token positions (row, col) of each (rolled) window, Swin order."""
    h, w = res
    pos = np.stack(np.meshgrid(np.arange(h), np.arange(w), indexing="ij"), axis=-1)  # h, w, 2
    if shift:
        pos = np.roll(pos, (-shift, -shift), axis=(0, 1))
    return N.window_partition(pos[None], window)[0]


def split_segments(model: Model) -> list[Segment]:
    """Cut ``model`` into segments (see module docstring)."""
    info = model.infer()
    nodes = list(model.nodes[1:])
    # 1. decide cut points: index of the first node of each segment
    starts = [0]
    part = None  # window partition of the current segment
    has_pool = False
    for i, n in enumerate(nodes):
        if isinstance(n, N.PatchMerging) and i != starts[-1]:
            starts.append(i)
            part, has_pool = None, False
        elif isinstance(n, N.Pool) and part is not None and _n_windows(part) > 1:
            starts.append(i)
            part, has_pool = None, True
        elif isinstance(n, N.WindowAttention):
            p = _partition(n)
            if part is not None and p != part:
                # the new segment starts right after the block input (the residual source)
                block_in = _block_input(nodes, i)
                cut = next(j for j, m in enumerate(nodes) if m.name == block_in) + 1
                if cut <= starts[-1]:
                    raise N.IRError(f"cannot place a segment boundary before {n.name}")
                starts.append(cut)
            part = p
        elif isinstance(n, N.Pool):
            has_pool = True
    del has_pool
    bounds = list(zip(starts, starts[1:] + [len(nodes)], strict=True))
    segs: list[Segment] = []
    prev = model.input.name
    for si, (a, b) in enumerate(bounds):
        seg_nodes = tuple(nodes[a:b])
        segs.append(_make_segment(f"seg{si}", prev, seg_nodes, info))
        prev = seg_nodes[-1].name
    if prev != model.output:
        raise N.IRError(f"the RTL back end expects the output node {model.output!r} to be last")
    return segs


def _n_windows(part: tuple) -> int:
    (h, w), win, _ = part
    return (h // win) * (w // win)


def _block_input(nodes: list[N.Node], i: int) -> str:
    """The residual source of the attention at ``nodes[i]``: its ``src`` through a LayerNorm."""
    att = nodes[i]
    assert isinstance(att, N.WindowAttention)
    src = att.src
    for m in nodes[:i]:
        if m.name == src and isinstance(m, N.LayerNorm):
            return m.src
    return src


def _make_segment(name: str, src: str, seg_nodes: tuple[N.Node, ...], info: dict) -> Segment:
    first = seg_nodes[0]
    in_info = info[src]
    out_info = info[seg_nodes[-1].name]
    prefix = "none"
    if isinstance(first, N.PatchEmbed):
        prefix = "patch_embed"
    elif isinstance(first, N.PatchMerging):
        prefix = "merge"
    names = {n.name for n in seg_nodes} | {src}
    for n in seg_nodes:
        for i in n.inputs:
            if i not in names:
                raise N.IRError(f"{n.name} reads {i!r} from before its RTL segment (only {src!r} crosses)")
        if isinstance(n, (N.PatchEmbed, N.PatchMerging)) and n is not first:
            raise N.IRError(f"{n.name}: patch embedding/merging must start an RTL segment")
    # working resolution (token map seen by the fused nodes)
    if prefix == "patch_embed":
        res = tuple(info[first.name].shape[:2])
    elif prefix == "merge":
        res = tuple(info[first.name].shape[:2])
    elif len(in_info.shape) == 3:
        res = tuple(in_info.shape[:2])
    else:
        res = (1, 1)
    atts = [n for n in seg_nodes if isinstance(n, N.WindowAttention)]
    pooled = any(isinstance(n, N.Pool) for n in seg_nodes)
    if atts:
        a0 = atts[0]
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
                p = first.patch
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
    return Segment(
        name=name, src=src, dst=seg_nodes[-1].name, nodes=seg_nodes, prefix=prefix, resolution=res,
        tokens=tokens, in_shape=tuple(in_info.shape), in_fmt=in_info.fmt, out_shape=tuple(out_info.shape),
        out_fmt=out_info.fmt, in_idx=np.asarray(in_idx, dtype=np.int64), out_idx=np.asarray(out_idx, dtype=np.int64),
        mask=mask,
    )


def gather_groups(seg: Segment, frames: np.ndarray) -> np.ndarray:
    """(B, G, n_in + n_mask) unit input codes from (B, *in_shape) frames."""
    b = frames.shape[0]
    f = frames.reshape(b, -1)
    x = f[:, seg.in_idx]
    if seg.mask is not None:
        m = np.broadcast_to(seg.mask.reshape(1, seg.groups, -1).astype(np.int64), (b, seg.groups, seg.n_mask))
        x = np.concatenate([x, m], axis=-1)
    return x


def scatter_groups(seg: Segment, y: np.ndarray) -> np.ndarray:
    """(B, *out_shape) frames from (B, G, n_out) unit outputs."""
    b = y.shape[0]
    out = np.zeros((b, int(np.prod(seg.out_shape))), dtype=np.int64)
    out[:, seg.out_idx.reshape(-1)] = y.reshape(b, -1)
    return out.reshape(b, *seg.out_shape)
