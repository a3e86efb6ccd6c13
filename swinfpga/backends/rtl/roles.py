"""How each operator shapes the RTL pipeline: its segmenting role, registered by node type.

The planner (:mod:`.plan`) cuts a model into segments and splits segments into balanced parts by
these roles only; it never switches on node types.  A node type without a registration is
token-local (fused into the current segment, computed per token, one ``full`` step).  A new
operator registers here only if it changes the streaming structure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...fixed import Fmt
from ...ir import nodes as N
from ...registry import Registry


@dataclass(frozen=True)
class Role:
    """The segmenting role of one node.

    ``starts``: the node starts a segment, gathering its group's raw tokens from the input frame as
    ``prefix`` says (``patch_embed``: p x p pixels; ``merge``: the 2x2 neighbourhood; the planner's
    :func:`~.plan._make_segment` knows both); ``windowed``: an attention over windows (attributes
    ``resolution``, ``window``, ``shift``, ``valid_mask()``, ``bias_matrix()``, ``bias_fmt``): its
    window partition sets the segment's groups, and a change of partition cuts before the block's
    input; ``pooled``: needs the whole token map in one group (a cut before it when the segment has
    several windows; later steps of a balanced segment run once per sample); ``side``: a side value
    (the padding mask) computed from the segment input, not passed to the next node; ``norm``: a
    pre-norm (the residual source of a following attention is this node's input); ``phases``:
    (phase, kind) steps of a balanced segment (``kind`` ``token``: per token chunk); ``values``:
    per phase value suffix (``q``, ``k``...), its format and channels; ``rw``: per phase the values
    read and written (default ``full``: the node's inputs, its output)."""

    prefix: str = "none"
    windowed: bool = False
    pooled: bool = False
    side: bool = False
    norm: bool = False
    phases: tuple[tuple[str, str], ...] = (("full", "token"),)
    values: tuple[tuple[str, Fmt, int], ...] = ()
    rw: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = ()

    @property
    def starts(self) -> bool:
        return self.prefix != "none"


ROLES = Registry("RTL segmenting", N.IRError)
TOKEN_LOCAL = Role()


def role(node: N.Node) -> Role:
    """The role of ``node`` (token-local unless its type registered one)."""
    return ROLES.handler(node)(node) if type(node) in ROLES else TOKEN_LOCAL


@ROLES.handles(N.PatchEmbed)
def _patch_embed(n: N.PatchEmbed) -> Role:
    return Role(prefix="patch_embed")


@ROLES.handles(N.PatchMerging)
def _patch_merging(n: N.PatchMerging) -> Role:
    return Role(prefix="merge")


@ROLES.handles(N.Pool)
def _pool(n: N.Pool) -> Role:
    return Role(pooled=True)


@ROLES.handles(N.TokenMask)
def _token_mask(n: N.TokenMask) -> Role:
    return Role(side=True)


@ROLES.handles(N.LayerNorm)
def _layer_norm(n: N.LayerNorm) -> Role:
    return Role(norm=True)


@ROLES.handles(N.WindowAttention)
def _window_attention(n: N.WindowAttention) -> Role:
    """Three steps when balanced: token-local q/k/v, the core (the group's query rows against the
    whole window's keys and values), the token-local output projection."""
    q, k, v, o = (f"{n.name}.{s}" for s in "qkvo")
    return Role(
        windowed=True, phases=(("qkv", "token"), ("core", "token"), ("proj", "token")),
        values=(("q", n.q.out_fmt, n.q.n_out), ("k", n.k.out_fmt, n.k.n_out), ("v", n.v.out_fmt, n.v.n_out),
                ("o", n.attn_fmt, n.proj.n_in)),
        rw=(("qkv", (n.src,), (q, k, v)), ("core", (q, k, v), (o,)), ("proj", (o,), (n.name,))),
    )


def reads_writes(node: N.Node, phase: str) -> tuple[list[str], list[str]]:
    """Values read and written by one step of ``node``."""
    for ph, r, w in role(node).rw:
        if ph == phase:
            return list(r), list(w)
    return list(node.inputs), [node.name]


def sub_value(node: N.Node, suffix: str) -> tuple[Fmt, int]:
    """Format and channels of the value ``node.name + "." + suffix`` (e.g. an attention's ``q``)."""
    for s, fmt, ch in role(node).values:
        if s == suffix:
            return fmt, ch
    raise N.IRError(f"{node.name}: no RTL value {suffix!r}")


__all__: list[Any] = ["ROLES", "Role", "TOKEN_LOCAL", "role", "reads_writes", "sub_value"]
