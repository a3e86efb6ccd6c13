"""Gradual magnitude pruning of the linear maps (Zhu & Gupta 2017, "To prune, or not to prune").

Every :class:`~swinfpga.keras.layers.Lin` (patch embedding, q/k/v/proj, MLP, patch merging, head)
keeps a 0/1 mask on its kernel.  During training the target sparsity rises from 0 to ``target``
along ``s(t) = target * (1 - (1 - t / ramp)**3)`` over the first ``ramp`` optimizer steps, the
mask is recomputed every ``every`` steps from the magnitudes of the *effective* (BatchNorm-folded,
scaled) weights, one threshold per linear map, and the kernel is multiplied by its mask after every
step.  A pruned weight is exactly 0.0, so it quantizes to code 0 and every back end drops it (da4ml
emits no adder for it, the C++ multiplies by a constant 0).  Masks only grow: a pruned weight stays
pruned.  ``target`` is the fraction of weights at 0 in every linear map (per map, not global:
the maps' scales differ by their formats); every output channel keeps at least its largest weight."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np


def linear_maps(model: Any) -> Iterator[Any]:
    """Every ``Lin`` of the model's quantized layers (model order)."""
    from .layers import QLayer

    for layer in model.layers:
        if isinstance(layer, QLayer):
            yield from layer._lins


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
    masks: list[np.ndarray] = field(default_factory=list)
    maps: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not 0.0 <= self.target < 1.0:
            raise ValueError(f"prune target must be in [0, 1), got {self.target}")
        self.maps = [lin for lin in linear_maps(self.model) if lin.n_in * lin.n_out >= self.floor]
        self.masks = [np.asarray(lin.kernel.numpy()) != 0 for lin in self.maps]

    def update(self, sparsity: float) -> None:
        """Recompute the masks at ``sparsity`` (fraction at 0 per map; already pruned weights stay)."""
        for i, lin in enumerate(self.maps):
            w, _ = lin.effective()
            mag = np.abs(np.asarray(w, dtype=np.float64)) * self.masks[i]
            # every output keeps its largest weight: a column of zeros would leave a BatchNorm folded
            # after it normalizing a constant (its scale blows up and the folded bias saturates)
            mag[np.argmax(mag, axis=0), np.arange(mag.shape[1])] = np.inf
            k = min(int(np.floor(sparsity * mag.size)), mag.size - mag.shape[1])
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
                    pruner.update(sparsity_at(self.step, pruner.target, ramp))
                pruner.apply()

        return _Prune()


__all__ = ["Pruner", "linear_maps", "sparsity_at"]
