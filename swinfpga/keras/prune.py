"""Gradual magnitude pruning of the linear maps (Zhu & Gupta 2017, "To prune, or not to prune").

Every :class:`~swinfpga.keras.layers.Lin` (patch embedding, q/k/v/proj, MLP, patch merging, head)
keeps a 0/1 mask on its kernel.  During training the target sparsity rises from 0 to ``target``
along ``s(t) = target * (1 - (1 - t / ramp)**3)`` over the first ``ramp`` optimizer steps, the
mask is recomputed every ``every`` steps from the magnitudes of the *effective* (BatchNorm-folded,
scaled) weights, one threshold per linear map, and the kernel is multiplied by its mask after every
step.  A pruned weight is exactly 0.0, so it quantizes to code 0 and every back end drops it (da4ml
emits no adder for it, the C++ multiplies by a constant 0).  Masks only grow: a pruned weight stays
pruned.  ``target`` is the fraction of weights at 0 in every linear map (per map, not global:
the maps' scales differ by their formats); ``overrides`` set other fractions for maps whose name
(:func:`map_name`, e.g. ``s0b0.attn.q``, ``patch_embed``) matches a glob (the last match wins): a map
replicated in hardware (a stage computing several tokens per clock) may be pruned harder.  Every
output channel keeps at least its largest weight."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


def linear_maps(model: Any) -> Iterator[Any]:
    """Every ``Lin`` of the model's quantized layers (model order)."""
    from .layers import QLayer

    for layer in model.layers:
        if isinstance(layer, QLayer):
            yield from layer._lins


def map_name(lin: Any) -> str:
    """A linear map's name: its layer's name, then its role (``s0b0.attn.q``; ``head`` for a layer
    with one map)."""
    role = lin.prefix.rstrip(".")
    return f"{lin.layer.name}.{role}" if role else lin.layer.name


def sparsity_at(step: int, target: float, ramp: int) -> float:
    """Cubic schedule: 0 at step 0, ``target`` from step ``ramp`` on."""
    if ramp <= 0 or step >= ramp:
        return float(target)
    return float(target) * (1.0 - (1.0 - step / ramp) ** 3)


@dataclass
class Pruner:
    """Masks of every linear map of ``model``, kept at ``target`` sparsity (see module docstring).
    ``floor``: maps with fewer weights than this are left dense (e.g. a 4 x 16 patch embedding)."""

    model: Any
    target: float
    floor: int = 0
    overrides: Sequence[tuple[str, float]] = ()
    masks: list[np.ndarray] = field(default_factory=list)
    maps: list[Any] = field(default_factory=list)
    targets: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        for t in (self.target, *(f for _, f in self.overrides)):
            if not 0.0 <= t < 1.0:
                raise ValueError(f"prune target must be in [0, 1), got {t}")
        self.maps = [lin for lin in linear_maps(self.model) if lin.n_in * lin.n_out >= self.floor]
        self.masks = [np.asarray(lin.kernel.numpy()) != 0 for lin in self.maps]
        names = [map_name(lin) for lin in self.maps]
        for glob, _ in self.overrides:
            if not any(fnmatch.fnmatchcase(n, glob) for n in names):
                raise ValueError(f"--prune-layer {glob!r} matches no linear map; the maps are: {', '.join(names)}")
        self.targets = [self.target] * len(self.maps)
        for i, n in enumerate(names):
            for glob, f in self.overrides:
                if fnmatch.fnmatchcase(n, glob):
                    self.targets[i] = f

    def update(self, sparsity: float, scale: bool = False) -> None:
        """Recompute the masks at ``sparsity`` (fraction at 0 per map; already pruned weights stay);
        ``scale``: ``sparsity`` is the schedule's fraction of each map's own target instead."""
        for i, lin in enumerate(self.maps):
            s = sparsity * self.targets[i] if scale else sparsity
            w, _ = lin.effective()
            mag = np.abs(np.asarray(w, dtype=np.float64)) * self.masks[i]
            # every output keeps its largest weight: a column of zeros would leave a BatchNorm folded
            # after it normalizing a constant (its scale blows up and the folded bias saturates)
            mag[np.argmax(mag, axis=0), np.arange(mag.shape[1])] = np.inf
            k = min(int(np.floor(s * mag.size)), mag.size - mag.shape[1])
            if k <= int((~self.masks[i]).sum()):
                continue
            order = np.argsort(mag, axis=None, kind="stable")
            m = np.ones(mag.size, dtype=bool)
            m[order[:k]] = False
            self.masks[i] = m.reshape(mag.shape) & self.masks[i]

    def apply(self) -> None:
        """Zero the pruned kernel entries."""
        for lin, m in zip(self.maps, self.masks, strict=True):
            w = lin.kernel.numpy()
            if (w[~m] != 0).any():
                lin.kernel.assign(np.where(m, w, 0.0).astype(w.dtype))

    def counts(self) -> tuple[int, int]:
        """(weights at 0, weights) over the masked maps."""
        return sum(int((~m).sum()) for m in self.masks), sum(int(m.size) for m in self.masks)

    def sparsity(self) -> float:
        """Fraction of the masked maps' weights at 0."""
        zero, n = self.counts()
        return zero / max(1, n)

    def callback(self, total_steps: int, ramp_frac: float = 0.6, every: int = 20) -> Any:
        """A Keras callback ramping to ``target`` over ``ramp_frac`` of ``total_steps`` (then held)."""
        import keras

        pruner = self
        ramp = int(ramp_frac * total_steps)

        class _Prune(keras.callbacks.Callback):
            def __init__(self) -> None:
                super().__init__()
                self.step = 0

            def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
                self.step += 1
                if self.step % every == 0 or self.step == ramp:
                    pruner.update(sparsity_at(self.step, 1.0, ramp), scale=True)
                pruner.apply()

        return _Prune()


__all__ = ["Pruner", "linear_maps", "map_name", "sparsity_at"]
