"""``swinfpga train``: train a reference model on scikit-learn's digits and convert it to IR.

Pipeline: float pre-training (BatchNorm/LayerNorm in float, Swin math) -> calibration (formats per
tensor from the observed float ranges on the training split; weights/activations 8 bits, biases 12)
-> quantization-aware fine-tuning (HGQ2 quantizers, BatchNorm folded with frozen statistics,
integer softmax/LUTs with straight-through float gradients) -> IR through the Keras front end ->
golden-model accuracy.  Writes ``model.keras``, ``model.json`` (IR) and ``metrics.json``::

    {"accuracy": {"float": f, "quantized": f, "golden": f}, "test_samples": n, ...}

HGQ (``beta > 0``): the QAT phase trains fractional bits too (per output channel or per weight,
per tensor or, ``act_granularity="channel"``, per channel for the main activations) under the
penalty ``beta * EBOPs`` (see :mod:`swinfpga.keras.hgq`), then the bits are frozen into formats
and ``finetune_epochs`` more QAT epochs run at fixed formats; ``metrics["hgq"]`` holds beta, the
granularity and the frozen bits.
``init``: start from a trained output directory (its quantized ``model.keras``) instead of float
pre-training and calibration.  ``beta == 0`` is the 8-bit per-tensor training of before.

``float`` is the float model before QAT (``float_after_qat``: the fine-tuned weights run in
float mode), ``quantized`` the quantized Keras model, ``golden`` the IR
run by :func:`swinfpga.golden.run` on the same test split (they agree bit for bit;
``keras_golden_mismatches`` counts differing logit codes).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import SwinfpgaError

if TYPE_CHECKING:
    from .models import SwinSpec

TRAINABLE = ("swin-digits", "swin-digits-ln", "swin-free-digits", "seq-digits")
TRAIN_MARKERS = ("metrics.json",)  # what marks a `swinfpga train` output directory (for --force)


class TrainError(SwinfpgaError, RuntimeError):
    """Training cannot start (unknown model, existing output directory)."""


@dataclass(frozen=True)
class TrainConfig:
    """Schedule: ``float_epochs`` at ``lr`` (cosine decay), then ``qat_epochs`` at ``qat_lr``."""

    float_epochs: int = 120
    qat_epochs: int = 30
    batch: int = 64
    lr: float = 2e-3
    qat_lr: float = 2e-4
    weight_decay: float = 1e-4
    augment_shift: int = 1  # random +-1 pixel translation of the training images
    beta: float = 0.0  # HGQ resource penalty per EBOP (0: fixed 8-bit per-tensor formats)
    granularity: str = "channel"  # HGQ weight bits: per output channel | per weight
    finetune_epochs: int | None = None  # HGQ: fixed-format QAT after freezing (default qat_epochs // 4)
    bits: int = 8  # calibrated weight and activation widths (the budget HGQ starts from)
    hgq_qk: bool = False  # HGQ: attention's q and k outputs train their bits too (the q @ k^T products)
    act_granularity: str = "tensor"  # HGQ activation bits: one per tensor | per channel (ChanFmt formats)
    hgq_bits_only: bool = False  # HGQ phase trains the bit variables only (weights fixed until the fine-tune)
    prune: float = 0.0  # fraction of every linear map's weights pruned to 0 (gradual magnitude pruning)
    prune_layers: tuple[tuple[str, float], ...] = ()  # (glob over map names, fraction): per-map overrides
    teacher: str | None = None  # distill from this trained output directory's float model (QAT/HGQ phases)
    distill_alpha: float = 0.5  # weight of the labels against the teacher (swinfpga.keras.distill)
    distill_t: float = 2.0  # distillation temperature


@dataclass(frozen=True)
class TrainResult:
    out_dir: Path
    metrics: dict[str, Any]
    seconds: dict[str, float] = field(default_factory=dict)


# LayerNorm + GELU converges more slowly on digits than folded BatchNorm + ReLU
DEFAULTS: dict[str, TrainConfig] = {"swin-digits-ln": TrainConfig(float_epochs=200, lr=3e-3),
                                     "seq-digits": TrainConfig(float_epochs=200, qat_epochs=40)}


def _config(name: str, epochs: int | None, beta: float = 0.0, granularity: str = "channel",
            qat_epochs: int | None = None, finetune_epochs: int | None = None, hgq_qk: bool = False,
            act_granularity: str = "tensor", qat_lr: float | None = None, hgq_bits_only: bool = False,
            prune: float = 0.0, teacher: str | None = None, distill_alpha: float | None = None,
            prune_layers: tuple[tuple[str, float], ...] = ()) -> TrainConfig:
    base = dataclasses.replace(DEFAULTS.get(name, TrainConfig()), beta=float(beta), granularity=granularity,
                               hgq_qk=bool(hgq_qk), act_granularity=act_granularity)
    if epochs is not None:
        e = max(1, int(epochs))
        base = dataclasses.replace(base, float_epochs=e, qat_epochs=max(1, e // 4))
    if qat_epochs is not None:
        base = dataclasses.replace(base, qat_epochs=max(1, int(qat_epochs)))
    if finetune_epochs is not None:
        base = dataclasses.replace(base, finetune_epochs=max(0, int(finetune_epochs)))
    if qat_lr is not None:
        base = dataclasses.replace(base, qat_lr=float(qat_lr))
    if hgq_bits_only:
        base = dataclasses.replace(base, hgq_bits_only=True)
    if prune:
        base = dataclasses.replace(base, prune=float(prune))
    if prune_layers:
        base = dataclasses.replace(base, prune_layers=tuple((str(g), float(f)) for g, f in prune_layers))
    if teacher is not None:
        base = dataclasses.replace(base, teacher=str(teacher))
    if distill_alpha is not None:
        base = dataclasses.replace(base, distill_alpha=float(distill_alpha))
    return base


def _shift_augment(x: np.ndarray, rng: np.random.Generator, s: int) -> np.ndarray:
    """Random integer translation by up to ``s`` pixels (zero fill), per image.  A sequence of
    image rows ``(n, rows, 1, cols)`` (seq-digits) is shifted as the image it came from."""
    if s <= 0:
        return x
    if x.ndim == 4 and x.shape[2] == 1 and x.shape[3] > 1:
        return _shift_augment(x.transpose(0, 1, 3, 2), rng, s).transpose(0, 1, 3, 2)
    out = np.zeros_like(x)
    h, w = x.shape[1:3]
    dy = rng.integers(-s, s + 1, len(x))
    dx = rng.integers(-s, s + 1, len(x))
    for i in range(len(x)):
        ys, yd = (slice(0, h - dy[i]), slice(dy[i], h)) if dy[i] >= 0 else (slice(-dy[i], h), slice(0, h + dy[i]))
        xs, xd = (slice(0, w - dx[i]), slice(dx[i], w)) if dx[i] >= 0 else (slice(-dx[i], w), slice(0, w + dx[i]))
        out[i, yd, xd] = x[i, ys, xs]
    return out


def _fit(model: Any, x: np.ndarray, y: np.ndarray, epochs: int, lr: float, cfg: TrainConfig, seed: int,
         progress: Callable[[str], None], tag: str, pruner: Any = None, ramp: bool = False,
         teacher: Any = None) -> None:
    """``pruner`` (:class:`swinfpga.keras.prune.Pruner`): keep its masks; ``ramp``: this phase
    raises the sparsity to the pruner's target (else it holds it); ``teacher``: a float-mode model
    to distill from (:mod:`swinfpga.keras.distill`; its logits on the same augmented images)."""
    import keras

    steps = int(np.ceil(len(x) / cfg.batch))
    sched = keras.optimizers.schedules.CosineDecay(lr, decay_steps=max(1, epochs * steps), alpha=0.02)
    rng = np.random.default_rng(seed)
    # all epochs' shuffled, augmented copies up front: one fit() call (per-call overhead dominates)
    order = [rng.permutation(len(x)) for _ in range(epochs)]
    xa = np.concatenate([_shift_augment(x[o], rng, cfg.augment_shift) for o in order])
    ya = np.concatenate([y[o] for o in order])
    loss: Any = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    metric: Any = "accuracy"
    if teacher is not None:  # labels + the teacher's logits on the same augmented images
        from .keras import distill
        from .keras.model import predict_quantized

        n_cls = int(teacher.output_shape[-1])
        ya = distill.targets(ya, predict_quantized(teacher, xa))
        loss, metric = distill.loss(n_cls, cfg.distill_alpha, cfg.distill_t), distill.accuracy(n_cls)
    model.compile(optimizer=keras.optimizers.AdamW(sched, weight_decay=cfg.weight_decay), loss=loss,
                  metrics=[metric])
    t0 = time.perf_counter()
    every = max(1, epochs // 5)

    class _Log(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.ep = 0

        def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            if (batch + 1) % steps and batch + 1 != len(xa) // cfg.batch + bool(len(xa) % cfg.batch):
                return
            self.ep += 1
            if self.ep % every == 0 or self.ep == epochs:
                lg = logs or {}
                progress(f"{tag}: epoch {self.ep}/{epochs} loss {lg.get('loss', float('nan')):.4f} "
                         f"acc {lg.get('accuracy', float('nan')):.4f} ({time.perf_counter() - t0:.0f}s)")

    cbs: list[Any] = [_Log()]
    if pruner is not None:
        cbs.insert(0, pruner.callback(epochs * steps, ramp_frac=0.6 if ramp else 0.0))
    model.fit(xa, ya, batch_size=cfg.batch, epochs=1, verbose=0, shuffle=False, callbacks=cbs)
    if pruner is not None:
        progress(f"{tag}: {pruner.sparsity():.1%} of the linear weights pruned")


def _pruner(model: Any, cfg: TrainConfig) -> Any:
    """The :class:`swinfpga.keras.prune.Pruner` of ``model`` at ``cfg.prune`` (None: no pruning)."""
    if not cfg.prune and not any(f for _, f in cfg.prune_layers):
        return None
    from .keras.prune import Pruner

    try:
        return Pruner(model, cfg.prune, overrides=cfg.prune_layers)
    except ValueError as e:
        raise TrainError(str(e)) from None


def _accuracy(logits: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.argmax(logits, axis=-1) == y))


def train(name: str, out_dir: Path | str, epochs: int | None = None, seed: int = 0, force: bool = False,
          progress: Callable[[str], None] = print, beta: float = 0.0, granularity: str = "channel",
          qat_epochs: int | None = None, init: Path | str | None = None,
          finetune_epochs: int | None = None, hgq_qk: bool = False, act_granularity: str = "tensor",
          qat_lr: float | None = None, hgq_bits_only: bool = False, prune: float = 0.0,
          teacher: Path | str | None = None, distill_alpha: float | None = None,
          prune_layers: tuple[tuple[str, float], ...] = ()) -> TrainResult:
    """Train reference model ``name`` and write ``out_dir`` (see module docstring).

    ``epochs``: float pre-training epochs (QAT gets a quarter, at least 1); default 120 + 30
    (swin-digits-ln: 200 + 30 at a higher learning rate, see ``DEFAULTS``).
    An existing ``out_dir`` is refused unless ``force``.  ``beta``/``granularity``: HGQ (module
    docstring); ``qat_epochs`` overrides the QAT epochs, ``finetune_epochs`` the fixed-format epochs
    after HGQ froze the bits; ``hgq_qk``: HGQ trains attention's q/k output bits too;
    ``act_granularity``: HGQ activation bits per ``tensor`` or per ``channel``; ``qat_lr``: the QAT/HGQ
    learning rate (default 2e-4; fixed-format epochs after HGQ run at half of it); ``hgq_bits_only``: the
    HGQ epochs train the bits only, the weights stay fixed until the fine-tune; ``init``: a trained
    output directory to start from; ``prune``: fraction of every linear map's weights pruned to 0 by
    gradual magnitude pruning (:mod:`swinfpga.keras.prune`) during the first training phase, then held;
    ``prune_layers``: ``(glob, fraction)`` overrides of ``prune`` for the maps whose names match;
    ``teacher``: a trained output directory whose float model every phase distills from, with weight
    ``distill_alpha`` on the labels (:mod:`swinfpga.keras.distill`)."""
    from .models import get_spec

    if name not in TRAINABLE:
        raise TrainError(f"cannot train {name!r}: trainable reference models are {', '.join(TRAINABLE)}")
    cfg = _config(name, epochs, beta, granularity, qat_epochs, finetune_epochs, hgq_qk, act_granularity, qat_lr,
                  hgq_bits_only, prune, None if teacher is None else str(teacher), distill_alpha, prune_layers)
    return train_spec(get_spec(name), out_dir, cfg, seed, force, progress, init=init)


def _load_init(init: Path | str, spec: SwinSpec, what: str = "--init") -> Any:
    import keras

    import swinfpga.keras  # noqa: F401  (registers the layers)

    p = Path(init)
    f = p / "model.keras" if p.is_dir() else p
    if not f.exists():
        raise TrainError(f"{what} {init}: no model.keras there (pass a `swinfpga train` output directory)")
    model = keras.models.load_model(f, compile=False)
    if model.name != spec.name:
        raise TrainError(f"{what} {init}: the model is {model.name!r}, not {spec.name!r}")
    return model


def train_arch(arch: Path | str, data: Path | str, out_dir: Path | str, epochs: int | None = None, seed: int = 0,
               force: bool = False, progress: Callable[[str], None] = print, beta: float = 0.0,
               granularity: str = "channel", qat_epochs: int | None = None) -> TrainResult:
    """Train the architecture file ``arch`` (:mod:`swinfpga.arch`) on the user's ``.npz``
    (``x_train, y_train, x_test, y_test``; see :func:`swinfpga.data.load_user_data`)."""
    from .arch import load_arch
    from .data import load_user_data

    spec = load_arch(arch)
    if not spec.classes:
        raise TrainError(f"{arch}: training needs a classifier; set classes (> 0) in the architecture file")
    d = load_user_data(data, spec)
    return train_spec(spec, out_dir, _config(spec.name, epochs, beta, granularity, qat_epochs), seed, force, progress,
                      data=d,
                      data_name=f"{Path(data).name} ({len(d.y_train)} train / {len(d.y_test)} test)")


def train_spec(spec: SwinSpec, out_dir: Path | str, cfg: TrainConfig | None = None, seed: int = 0,
               force: bool = False, progress: Callable[[str], None] = print, init: Path | str | None = None,
               data: Any = None, data_name: str | None = None) -> TrainResult:
    """:func:`train` for any digits classifier spec (e.g. a tiny one for smoke tests), or for any
    spec on ``data`` (a :class:`swinfpga.data.Split` of input codes, e.g. from
    :func:`swinfpga.data.load_user_data`; ``data_name`` goes into the metadata); ``init`` starts from
    a trained output directory (HGQ fine-tuning)."""
    name = spec.name
    cfg = cfg or TrainConfig()
    out = Path(out_dir).resolve()
    from .outdir import check_output_dir

    check_output_dir(out, force, TRAIN_MARKERS, "a `swinfpga train` output directory", error=TrainError)
    if cfg.beta < 0:
        raise TrainError(f"--beta must be >= 0, got {cfg.beta}")
    if cfg.granularity not in ("channel", "weight"):
        raise TrainError(f"--granularity {cfg.granularity!r} unknown; use channel or weight")
    if cfg.act_granularity not in ("tensor", "channel"):
        raise TrainError(f"--act-granularity {cfg.act_granularity!r} unknown; use tensor or channel")
    if cfg.hgq_bits_only and cfg.beta <= 0:
        raise TrainError("--hgq-bits-only is for HGQ training: it needs --beta > 0")
    if cfg.act_granularity != "tensor" and cfg.beta <= 0:
        raise TrainError("--act-granularity channel trains HGQ activation bits: it needs --beta > 0")
    if not cfg.qat_lr > 0:
        raise TrainError(f"--qat-lr must be > 0, got {cfg.qat_lr}")
    if not 0.0 <= cfg.prune < 1.0:
        raise TrainError(f"--prune must be in [0, 1) (the fraction of weights pruned), got {cfg.prune}")
    if not 0.0 <= cfg.distill_alpha <= 1.0:
        raise TrainError(f"--distill-alpha must be in [0, 1] (the weight of the labels), got {cfg.distill_alpha}")
    if not 2 <= cfg.bits <= 16:
        raise TrainError(f"--bits must be in 2..16, got {cfg.bits}")
    if init is not None and cfg.bits != 8:
        raise TrainError("--bits sets calibration widths, but --init skips calibration: drop one of them")

    import keras

    from . import golden
    from .data import digits_split
    from .frontend.keras import from_keras_model
    from .keras.model import build_model, calibrate, predict_quantized, set_quantized, widen_saturated_weights

    times: dict[str, float] = {}
    keras.utils.set_random_seed(seed)
    if data is not None:
        d = data
    elif spec.seq:
        from .data import digits_seq_split

        d = digits_seq_split()
    else:
        d = digits_split()
    if data is not None:
        cfg = dataclasses.replace(cfg, augment_shift=0)  # pixel shifts only for the digits images
    lsb = spec.in_fmt.lsb
    xtr, xte = d.x_train * lsb, d.x_test * lsb  # real pixel values (codes of ufixed<5,1>)
    teacher = None
    if cfg.teacher is not None:
        teacher = _load_init(cfg.teacher, spec, "--teacher")
        set_quantized(teacher, False)  # its float model
        progress(f"{name}: distilling from {cfg.teacher} (float test accuracy "
                 f"{_accuracy(predict_quantized(teacher, xte), d.y_test):.4f}; labels weighted {cfg.distill_alpha:g})")
    if init is None:
        model = build_model(spec)
        pruner = _pruner(model, cfg)
        t0 = time.perf_counter()
        progress(f"{name}: float pre-training, {cfg.float_epochs} epochs on {len(xtr)} images")
        _fit(model, xtr, d.y_train, cfg.float_epochs, cfg.lr, cfg, seed, progress, "float", pruner, ramp=True,
             teacher=teacher)
        times["float"] = time.perf_counter() - t0
        acc_float = _accuracy(predict_quantized(model, xte), d.y_test)
        progress(f"{name}: float test accuracy {acc_float:.4f}")

        t0 = time.perf_counter()
        from .keras.model import Bits

        fmts = calibrate(model, xtr, Bits(weight=cfg.bits, act=cfg.bits))
        set_quantized(model, True)
        times["calibrate"] = time.perf_counter() - t0
        progress(f"{name}: calibrated {len(fmts)} formats; quantized accuracy before QAT "
                 f"{_accuracy(predict_quantized(model, xte), d.y_test):.4f}")
    else:
        model = _load_init(init, spec)
        set_quantized(model, False)
        acc_float = _accuracy(predict_quantized(model, xte), d.y_test)
        set_quantized(model, True)
        acc0 = _accuracy(predict_quantized(model, xte), d.y_test)
        progress(f"{name}: starting from {init} (quantized accuracy {acc0:.4f})")
        pruner = _pruner(model, cfg)
    ramp = init is not None  # pruning ramps in the first phase that trains the weights
    t0 = time.perf_counter()
    hgq_info: dict[str, Any] | None = None
    if cfg.beta > 0:
        from .keras import hgq_train as hgq

        # per-channel activations from an HGQ-trained model: EBOPs before = the starting model's, before the
        # per-channel integer bits (part of this training's effect) narrow it
        pre = None
        if cfg.act_granularity == "channel" and any(getattr(ly, "hgq", None) for ly in model.layers):
            pre = hgq.total_ebops(model)
        hgq.enable(model, cfg.granularity, cfg.beta, qk=cfg.hgq_qk, act=cfg.act_granularity, x=xtr)
        e0 = hgq.total_ebops(model) if pre is None else pre
        progress(f"{name}: HGQ ({cfg.granularity} weight bits, {cfg.act_granularity} activation bits, "
                 f"beta {cfg.beta:g}): EBOPs before {e0:.0f}")
        held = []
        if cfg.hgq_bits_only:  # weights out of the HGQ epochs (bits only); back for the fine-tune
            bits = {id(v) for ly in model.layers if hasattr(ly, "hgq_vars") for v in ly.hgq_vars()}
            held = [v for v in model.trainable_variables if id(v) not in bits]
            for v in held:
                v.trainable = False
        _fit(model, xtr, d.y_train, cfg.qat_epochs, cfg.qat_lr, cfg, seed + 1, progress, "HGQ", pruner,
             ramp and not cfg.hgq_bits_only, teacher)
        ramp = ramp and cfg.hgq_bits_only
        for v in held:
            v.trainable = True
        summ = hgq.freeze(model)
        ft = cfg.finetune_epochs if cfg.finetune_epochs is not None else max(1, cfg.qat_epochs // 4)
        progress(f"{name}: HGQ froze: EBOPs {summ.ebops:.0f}, {summ.zero_weights}/{summ.weights} weights at 0 bits, "
                 f"mean weight bits {summ.mean_weight_bits:.2f}; quantized accuracy "
                 f"{_accuracy(predict_quantized(model, xte), d.y_test):.4f}; {ft} fixed-format epochs")
        if ft > 0:
            _fit(model, xtr, d.y_train, ft, cfg.qat_lr / 2, cfg, seed + 2, progress, "QAT", pruner, ramp, teacher)
        summ = hgq.summary(model)
        hgq_info = {"beta": cfg.beta, "granularity": cfg.granularity, "ebops_before": e0, **summ.as_dict()}
        if cfg.act_granularity != "tensor":
            hgq_info["act_granularity"] = cfg.act_granularity
    else:
        _fit(model, xtr, d.y_train, cfg.qat_epochs, cfg.qat_lr, cfg, seed + 1, progress, "QAT", pruner, ramp, teacher)
    widened = widen_saturated_weights(model)
    if widened:
        progress(f"{name}: widened {len(widened)} weight formats that saturated after QAT: {'; '.join(widened)}")
    times["qat"] = time.perf_counter() - t0

    logits_q = predict_quantized(model, xte)
    acc_q = _accuracy(logits_q, d.y_test)
    set_quantized(model, False)  # the QAT weights in float mode (informative)
    acc_float_qat = _accuracy(predict_quantized(model, xte), d.y_test)
    set_quantized(model, True)
    ir = from_keras_model(model, name=name)
    ir = type(ir)(ir.name, ir.nodes, ir.output, {**ir.meta, "spec": name, "seed": seed,
                                                   "data": data_name or "sklearn digits, stratified 80/20, seed 0"})
    t0 = time.perf_counter()
    res = golden.run(ir, d.x_test)
    times["golden"] = time.perf_counter() - t0
    out_fmt = ir.infer()[ir.output].fmt
    k_codes = np.round(np.ldexp(logits_q, out_fmt.frac)).astype(np.int64)
    mism = int(np.count_nonzero(k_codes != res.output))
    acc_g = _accuracy(res.output, d.y_test)
    metrics: dict[str, Any] = {
        "accuracy": {"float": acc_float, "quantized": acc_q, "golden": acc_g},
        "test_samples": int(len(d.y_test)),
        "float_after_qat": acc_float_qat,
        "keras_golden_mismatches": mism,
        "keras_golden_elements": int(res.output.size),
        "overflow": {k: v for k, v in res.overflow.items() if v},
        "epochs": {"float": 0 if init is not None else cfg.float_epochs, "qat": cfg.qat_epochs},
        "config": json.loads(json.dumps(dataclasses.asdict(cfg))),  # tuples as the JSON lists
        "seed": seed,
        "train_seconds": {k: round(v, 1) for k, v in times.items()},
    }
    if hgq_info is not None:
        metrics["hgq"] = hgq_info
    if init is not None:
        metrics["init"] = str(init)
    if pruner is not None:
        zero, n = pruner.counts()
        metrics["prune"] = {"target": cfg.prune, "sparsity": pruner.sparsity(), "zero_weights": zero, "weights": n,
                            "overrides": [list(o) for o in cfg.prune_layers]}
    progress(f"{name}: accuracy float {acc_float:.4f} quantized {acc_q:.4f} golden {acc_g:.4f}; "
             f"keras vs golden mismatching logit codes: {mism}/{res.output.size}")

    from .outdir import make_stage, replace_dir

    check_output_dir(out, force, TRAIN_MARKERS, "a `swinfpga train` output directory", error=TrainError)
    stage = make_stage(out)
    try:
        model.save(stage / "model.keras")
        ir.save(stage / "model.json")
        (stage / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
        replace_dir(stage, out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return TrainResult(out, metrics, times)


__all__ = ["train", "train_arch", "train_spec", "TrainResult", "TrainConfig", "TrainError", "TRAINABLE"]
